/* INI config files (inih) with line numbers: every problem is reported as
 * "FILE:LINE: what is wrong", all of them at once. A program describes
 * each section kind by a static table of keys, one row and one setter per
 * key, and a function that opens a section. */
#ifndef MS_CONF_H
#define MS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "addr.h"

struct conf;

struct conf_key {
	const char *name; /* "*" (last row): any key, e.g. [route]'s domains */
	/* Applies val to obj; on a bad value calls conf_error() and returns
	 * -1. */
	int (*set)(struct conf *c, void *obj, const char *key, const char *val);
};

/* What a section header opens: the object its keys fill, their table,
 * and the section kind's name for messages ("[pool]"). */
struct conf_section {
	void *obj; /* NULL: the header was refused (already reported) */
	const struct conf_key *keys;
	const char *kind;
};

struct conf {
	const char *path;
	/* Called once per section header, with c->section_line set. */
	struct conf_section (*open_section)(struct conf *c,
					    const char *section);
	void *user; /* the program's, for open_section and the setters */

	/* filled while parsing */
	FILE *f;
	int line;	  /* line being read */
	int section_line; /* line of the last section header read */
	int opened_line;  /* section_line when c->cur was opened */
	bool line_toolong;
	char section[128];
	struct conf_section cur;
	char *err;
	size_t errlen;
	int nerrors;
};

/* Parses c->path, calling the setters. Returns the number of errors
 * (written to err as lines); 0 means every key was applied. */
int conf_parse(struct conf *c, char *err, size_t errlen);

/* Adds "PATH:LINE: message" to the errors; "PATH: message" when line is
 * 0 (the whole file, or settings that come from no file). */
void conf_error(struct conf *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Setter helpers: report at the current line, return 0 or -1. */
int conf_int(struct conf *c, const char *key, const char *val, int min, int max,
	     int *out);
int conf_string(struct conf *c, const char *key, const char *val, char *out,
		size_t outlen);
int conf_addr(struct conf *c, const char *key, const char *val, struct addr *a,
	      char *str, size_t strlen_);
/* err, warn, info, debug: an enum log_level as int. */
int conf_log_level(struct conf *c, const char *key, const char *val, int *out);
/* One of the n names: its index into *out; else "KEY: "VAL" is not one
 * of A, B, C". */
int conf_choice(struct conf *c, const char *key, const char *val,
		const char *const *names, int n, int *out);
/* yes/no, on/off, true/false, 1/0. */
int conf_bool(struct conf *c, const char *key, const char *val, bool *out);

/* Names of sections, nodes, pools: letters, digits, '-', '_', '.', shorter
 * than max. */
bool conf_name_ok(const char *s, size_t max);

#endif
