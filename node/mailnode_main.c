/* mailnode: a mail node of the mailswitch cluster. */
#include <stdio.h>
#include <stdlib.h>

#include "../common/cli.h"
#include "../common/log.h"
#include "../common/version.h"
#include "config/config.h"
#include "mailnode.h"

#define NODE_DEFAULT_CONFIG "/etc/mailswitch/mailnode.ini"

static void
usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: mailnode [-c FILE] [-t] [-d] [-h] [-V]\n"
	    "\n"
	    "A mailswitch mail node: SMTP (MX and submission) and the HTTP\n"
	    "API over a shared Maildir store and a Redis-backed config.\n"
	    "\n"
	    "  -c FILE   configuration (default " NODE_DEFAULT_CONFIG ")\n"
	    "  -t        check the configuration and exit (0 valid, 2 not)\n"
	    "  -d        log at debug level\n"
	    "  -h        this help\n"
	    "  -V        print the version and exit\n"
	    "\n"
	    "SIGTERM/SIGINT: no new sessions, open ones finish for grace_s.\n"
	    "SIGHUP: reads the configuration and the TLS certificate again;\n"
	    "a configuration with errors is refused whole and logged.\n");
}

int
main(int argc, char **argv)
{
	struct cli_opts o = {.config = NODE_DEFAULT_CONFIG};
	char err[4096];

	log_init("mailnode", LOG_LVL_INFO);
	int rc = cli_parse(argc, argv, "mailnode", usage, &o);
	if (rc >= 0)
		return rc;
	struct node_config *cfg =
	    node_config_load(o.config, NULL, 0, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	if (o.test) {
		printf("mailnode: configuration %s is valid\n", o.config);
		free(cfg);
		return 0;
	}
	if (o.debug)
		cfg->log_debug = true;
	log_info("mailnode %s starting with %s", ms_version, o.config);
	return mailnode_run(cfg);
}
