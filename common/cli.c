#include "cli.h"

#include <getopt.h>

#include "version.h"

int
cli_parse(int argc, char **argv, const char *prog, void (*usage)(FILE *out),
	  struct cli_opts *o)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"config", required_argument, NULL, 'c'},
	    {"test", no_argument, NULL, 't'},
	    {"debug", no_argument, NULL, 'd'},
	    {"version", no_argument, NULL, 'V'},
	    {"takeover", no_argument, NULL, 'x'},
	    {NULL, 0, NULL, 0},
	};
	int ch;
	while ((ch = getopt_long(argc, argv, o->takeover_ok ? "c:tdhVx" : "c:tdhV",
				 longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 't':
			o->test = true;
			break;
		case 'd':
			o->debug = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'x':
			if (!o->takeover_ok) {
				usage(stderr);
				return 2;
			}
			o->takeover = true;
			break;
		case 'V':
			printf("%s %s\n", prog, ms_version);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "%s: unexpected argument \"%s\"\n", prog,
			argv[optind]);
		usage(stderr);
		return 2;
	}
	return -1;
}
