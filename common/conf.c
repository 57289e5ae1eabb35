#include "conf.h"

#include "decimal.h"
#include "log.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CONF_MAX_ERRORS 20

void
conf_error(struct conf *c, int line, const char *fmt, ...)
{
	char msg[320];
	va_list ap;
	if (c->nerrors++ >= CONF_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	size_t used = strlen(c->err);
	if (used < c->errlen && line > 0)
		snprintf(c->err + used, c->errlen - used, "%s%s:%d: %s",
			 used ? "\n" : "", c->path, line, msg);
	else if (used < c->errlen) /* no line: the file, or not a file */
		snprintf(c->err + used, c->errlen - used, "%s%s: %s",
			 used ? "\n" : "", c->path, msg);
}

int
conf_int(struct conf *c, const char *key, const char *val, int min, int max,
	 int *out)
{
	long v;
	if (decimal_long(val, min, max, &v) < 0) {
		conf_error(c, c->line, "%s: \"%s\" is not a number in %d..%d",
			   key, val, min, max);
		return -1;
	}
	*out = (int)v;
	return 0;
}

int
conf_string(struct conf *c, const char *key, const char *val, char *out,
	    size_t outlen)
{
	size_t len = strlen(val);
	if (len >= outlen) {
		conf_error(c, c->line, "%s: value longer than %zu bytes", key,
			   outlen - 1);
		return -1;
	}
	memcpy(out, val, len + 1);
	return 0;
}

int
conf_addr(struct conf *c, const char *key, const char *val, struct addr *a,
	  char *str, size_t strlen_)
{
	const char *why;
	if (addr_parse(val, a, &why) < 0) {
		conf_error(c, c->line, "%s: bad address \"%s\": %s", key, val,
			   why);
		return -1;
	}
	if (str)
		addr_fmt((struct sockaddr *)&a->ss, str, strlen_);
	return 0;
}

int
conf_log_level(struct conf *c, const char *key, const char *val, int *out)
{
	enum log_level lvl;
	if (log_level_parse(val, &lvl) < 0) {
		conf_error(c, c->line,
			   "%s: \"%s\" is not one of err, warn, info, debug",
			   key, val);
		return -1;
	}
	*out = (int)lvl;
	return 0;
}

int
conf_choice(struct conf *c, const char *key, const char *val,
	    const char *const *names, int n, int *out)
{
	char list[256] = "";
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		if (strcmp(val, names[i]) == 0) {
			*out = i;
			return 0;
		}
		int w = snprintf(list + len, sizeof(list) - len, "%s%s",
				 i ? ", " : "", names[i]);
		if (w > 0 && (size_t)w < sizeof(list) - len)
			len += (size_t)w;
	}
	conf_error(c, c->line, "%s: \"%s\" is not one of %s", key, val, list);
	return -1;
}

int
conf_bool(struct conf *c, const char *key, const char *val, bool *out)
{
	static const char *const yes[] = {"yes", "on", "true", "1"};
	static const char *const no[] = {"no", "off", "false", "0"};
	for (int i = 0; i < 4; i++) {
		if (strcmp(val, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(val, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	conf_error(c, c->line, "%s: \"%s\" is not yes or no", key, val);
	return -1;
}

bool
conf_name_ok(const char *s, size_t max)
{
	if (*s == '\0' || strlen(s) >= max)
		return false;
	for (; *s; s++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && *s != '-' && *s != '_' &&
		    *s != '.')
			return false;
	return true;
}

static int
conf_handler(void *user, const char *section, const char *name,
	     const char *value)
{
	struct conf *c = user;

	if (c->line_toolong) {
		conf_error(c, c->line, "line too long");
		return 1;
	}
	/* A new header, even one repeating the last name ([a] [a]): inih
	 * passes only the name, the reader saw the header's line. */
	if (strcmp(section, c->section) != 0 ||
	    c->section_line != c->opened_line) {
		snprintf(c->section, sizeof(c->section), "%s", section);
		c->opened_line = c->section_line;
		memset(&c->cur, 0, sizeof(c->cur));
		if (section[0] != '\0')
			c->cur = c->open_section(c, section);
	}
	if (c->cur.obj == NULL) {
		if (section[0] == '\0')
			conf_error(c, c->line, "%s = ... outside any section",
				   name);
		return 1;
	}
	for (const struct conf_key *k = c->cur.keys; k->name; k++)
		if (strcmp(k->name, name) == 0 || strcmp(k->name, "*") == 0) {
			k->set(c, c->cur.obj, name, value);
			return 1;
		}
	conf_error(c, c->line, "unknown key \"%s\" in %s", name, c->cur.kind);
	return 1;
}

/* inih's reader: one line per call, so the line number is ours to keep. */
static char *
conf_reader(char *str, int num, void *stream)
{
	struct conf *c = stream;
	if (fgets(str, num, c->f) == NULL)
		return NULL;
	c->line++;
	if (str[strspn(str, " \t")] == '[')
		c->section_line = c->line;
	size_t len = strlen(str);
	c->line_toolong = false;
	if (len > 0 && str[len - 1] != '\n' && !feof(c->f)) {
		/* Skip the rest: the line is reported, never split. */
		int ch;
		c->line_toolong = true;
		while ((ch = fgetc(c->f)) != EOF && ch != '\n')
			;
	}
	return str;
}

int
conf_parse(struct conf *c, char *err, size_t errlen)
{
	c->err = err;
	c->errlen = errlen;
	err[0] = '\0';
	c->f = fopen(c->path, "r");
	if (c->f == NULL) {
		snprintf(err, errlen, "%s: %s", c->path, strerror(errno));
		return ++c->nerrors;
	}
	int rc = ini_parse_stream(conf_reader, c, conf_handler, c);
	fclose(c->f);
	c->f = NULL;
	if (rc > 0 && c->nerrors == 0)
		conf_error(c, rc,
			   "syntax error (expected [section] or key = value)");
	else if (rc < 0)
		conf_error(c, 0, "cannot read the file");
	return c->nerrors;
}
