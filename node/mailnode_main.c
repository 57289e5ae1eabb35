/* mailnode: a mail node of the mailswitch cluster. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "../common/log.h"
#include "config.h"
#include "mailnode.h"

#define NODE_DEFAULT_CONFIG "/etc/mailnode/mailnode.ini"

static void
usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: mailnode [-c FILE] [-t] [-d] [-h]\n"
	    "\n"
	    "A mailswitch mail node: SMTP (MX and submission) and the HTTP\n"
	    "API over a shared Maildir store and a Redis-backed config.\n"
	    "\n"
	    "  -c FILE   configuration (default " NODE_DEFAULT_CONFIG ")\n"
	    "  -t        check the configuration and exit (0 valid, 2 not)\n"
	    "  -d        log at debug level\n"
	    "  -h        this help\n"
	    "\n"
	    "SIGTERM/SIGINT: no new sessions, open ones finish for grace_s.\n");
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
	const char *path = NODE_DEFAULT_CONFIG;
	int test = 0, debug = 0, ch;
	char err[4096];

	log_init("mailnode", LOG_LVL_INFO);
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
		fprintf(stderr, "mailnode: unexpected argument \"%s\"\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	struct node_config *cfg = node_config_load(path, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	if (test) {
		printf("mailnode: configuration %s is valid\n", path);
		free(cfg);
		return 0;
	}
	if (debug)
		cfg->log_level = LOG_LVL_DEBUG;
	return mailnode_run(cfg);
}
