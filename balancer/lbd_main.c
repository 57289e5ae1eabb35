/* lbd: the mailswitch layer-4 balancer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cli.h"
#include "../common/log.h"
#include "../common/version.h"
#include "config.h"
#include "lbd_run.h"

#define LBD_DEFAULT_CONFIG "/etc/mailswitch/lbd.ini"

static void
usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: lbd [-c FILE] [-t] [-d] [-x] [-h] [-V]\n"
	    "\n"
	    "The mailswitch layer-4 balancer: spreads SMTP, submission, IMAP,\n"
	    "POP3 and HTTP connections over pools of mail nodes, with\n"
	    "protocol-aware health probes and a control socket (lbctl).\n"
	    "\n"
	    "  -c FILE   configuration (default " LBD_DEFAULT_CONFIG ")\n"
	    "  -t        check the configuration and exit (0 valid, 2 not)\n"
	    "  -d        log at debug level (one line per connection)\n"
	    "  -x        take over: an upgrade that refuses no connection; the\n"
	    "            listening sockets come from the lbd running with the\n"
	    "            same control socket, which then stops accepting and\n"
	    "            lets its connections finish (--takeover)\n"
	    "  -h        this help\n"
	    "  -V        print the version and exit\n"
	    "\n"
	    "Signals: SIGTERM/SIGINT stop accepting and let connections\n"
	    "finish for grace_s seconds; SIGHUP re-reads the configuration.\n"
	    "Exit status: 0 after a clean stop, 1 when it cannot start, 2 for\n"
	    "a bad configuration or usage.\n");
}

int
main(int argc, char **argv)
{
	struct cli_opts o = {.config = LBD_DEFAULT_CONFIG, .takeover_ok = true};
	char err[4096];

	log_init("lbd", LOG_LVL_INFO);
	int rc = cli_parse(argc, argv, "lbd", usage, &o);
	if (rc >= 0)
		return rc;
	struct lbd_config *cfg = config_load(o.config, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	if (o.test) {
		printf("lbd: configuration %s is valid\n", o.config);
		config_free(cfg);
		return 0;
	}
	if (o.debug)
		cfg->set.log_level = LOG_LVL_DEBUG;
	log_info("lbd %s starting with %s", ms_version, o.config);
	return lbd_run(cfg, o.takeover);
}
