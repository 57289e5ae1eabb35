/* lbd: the mailswitch layer-4 balancer. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "config.h"
#include "lbd_run.h"

#define LBD_DEFAULT_CONFIG "/etc/lbd/lbd.ini"

static void
usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: lbd [-c FILE] [-t] [-d] [-h]\n"
	    "\n"
	    "The mailswitch layer-4 balancer: spreads SMTP, submission, IMAP,\n"
	    "POP3 and HTTP connections over pools of mail nodes, with\n"
	    "protocol-aware health probes and a control socket (lbctl).\n"
	    "\n"
	    "  -c FILE   configuration (default " LBD_DEFAULT_CONFIG ")\n"
	    "  -t        check the configuration and exit (0 valid, 2 not)\n"
	    "  -d        log at debug level (one line per connection)\n"
	    "  -h        this help\n"
	    "\n"
	    "Signals: SIGTERM/SIGINT stop accepting and let connections\n"
	    "finish for grace_s seconds; SIGHUP re-reads the configuration.\n"
	    "Exit status: 0 after a clean stop, 1 when it cannot start, 2 for\n"
	    "a bad configuration or usage.\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"config", required_argument, NULL, 'c'},
	    {"test", no_argument, NULL, 't'},
	    {"debug", no_argument, NULL, 'd'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = LBD_DEFAULT_CONFIG;
	int test = 0, debug = 0, ch;
	char err[4096];

	log_init("lbd", LOG_LVL_INFO);
	while ((ch = getopt_long(argc, argv, "c:tdh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'd':
			debug = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "lbd: unexpected argument \"%s\"\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	struct lbd_config *cfg = config_load(path, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	if (test) {
		printf("lbd: configuration %s is valid\n", path);
		config_free(cfg);
		return 0;
	}
	if (debug)
		cfg->set.log_level = LOG_LVL_DEBUG;
	return lbd_run(cfg);
}
