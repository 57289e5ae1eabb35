/* The command line the daemons share: -c FILE, -t, -d, -h, -V; and -x
 * for a program that sets takeover_ok. */
#ifndef MS_CLI_H
#define MS_CLI_H

#include <stdbool.h>
#include <stdio.h>

struct cli_opts {
	const char *config; /* preset to the default path */
	bool test;	    /* -t: check the config and exit */
	bool debug;	    /* -d: log at debug level */
	bool takeover_ok;   /* set by the program: it accepts -x */
	bool takeover;	    /* -x: take the running instance's sockets */
};

/* Parses argv into o. Returns -1 to go on, or the status to exit with:
 * 0 after -h (usage on stdout) or -V ("PROG VERSION" on stdout), 2 on bad
 * usage (usage on stderr). */
int cli_parse(int argc, char **argv, const char *prog, void (*usage)(FILE *out),
	      struct cli_opts *o);

#endif
