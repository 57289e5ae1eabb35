/* The control commands: a bounded tokenizer and a static table, one row and
 * one function per command (as relayctl's parser.c). ctl.c parses and
 * answers; runtime.c changes state. */
#include "ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/decimal.h"
#include "config.h"
#include "runtime.h"
#include "status.h"

struct ctl_words {
	int argc;
	char *argv[CTL_MAX_WORDS];
	char buf[CTL_LINE_MAX + 1];
};

#define CTL_KEYWORDS_MAX 3

struct ctl_cmd {
	const char *keywords[CTL_KEYWORDS_MAX + 1]; /* NULL-terminated */
	int min_args, max_args; /* words after the keywords */
	const char *usage;
	/* argv: the words after the keywords */
	enum ctl_status (*run)(struct lbd *l, int argc, char **argv,
			       struct strbuf *out);
};

static enum ctl_status ctl_ping(struct lbd *, int, char **, struct strbuf *);
static enum ctl_status ctl_help(struct lbd *, int, char **, struct strbuf *);
static enum ctl_status ctl_show_status(struct lbd *, int, char **,
				       struct strbuf *);
static enum ctl_status ctl_show_status_json(struct lbd *, int, char **,
					    struct strbuf *);
static enum ctl_status ctl_pool_add(struct lbd *, int, char **,
				    struct strbuf *);
static enum ctl_status ctl_pool_remove(struct lbd *, int, char **,
				       struct strbuf *);
static enum ctl_status ctl_node_drain(struct lbd *, int, char **,
				      struct strbuf *);
static enum ctl_status ctl_node_disable(struct lbd *, int, char **,
					struct strbuf *);
static enum ctl_status ctl_node_enable(struct lbd *, int, char **,
				       struct strbuf *);
static enum ctl_status ctl_node_weight(struct lbd *, int, char **,
				       struct strbuf *);
static enum ctl_status ctl_watch(struct lbd *, int, char **, struct strbuf *);

static const struct ctl_cmd ctl_cmds[] = {
    {{"ping"}, 0, 0, "ping", ctl_ping},
    {{"show", "status"}, 0, 0, "show status [json]", ctl_show_status},
    {{"show", "status", "json"},
     0,
     0,
     "show status json",
     ctl_show_status_json},
    {{"pool", "add"},
     3,
     5,
     "pool add POOL NODE HOST:PORT [weight=N] [maxconn=N]",
     ctl_pool_add},
    {{"pool", "remove"}, 2, 2, "pool remove POOL NODE", ctl_pool_remove},
    {{"node", "drain"}, 2, 2, "node drain POOL NODE", ctl_node_drain},
    {{"node", "disable"},
     2,
     3,
     "node disable POOL NODE [for=SECONDS]",
     ctl_node_disable},
    {{"node", "enable"}, 2, 2, "node enable POOL NODE", ctl_node_enable},
    {{"node", "weight"}, 3, 3, "node weight POOL NODE N", ctl_node_weight},
    {{"watch"}, 0, 0, "watch", ctl_watch},
    {{"help"}, 0, 0, "help", ctl_help},
};

#define CTL_NCMDS (sizeof(ctl_cmds) / sizeof(ctl_cmds[0]))

static enum ctl_status ctl_fail(struct strbuf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends "error: <fmt>\n". */
static enum ctl_status
ctl_fail(struct strbuf *out, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	strbuf_appendf(out, "error: %s\n", msg);
	return CTL_FAIL;
}

static enum ctl_status
ctl_ok(struct strbuf *out)
{
	strbuf_appends(out, "ok\n");
	return CTL_OK;
}

/* Splits line into words. Bytes other than printable ASCII, space and tab
 * are refused, so every word can be echoed in an answer as it is.
 * Returns 0, or -1 with the answer in out. */
static int
ctl_tokenize(const char *line, size_t len, struct ctl_words *w,
	     struct strbuf *out)
{
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len >= CTL_LINE_MAX) {
		ctl_fail(out, "line too long (max %d bytes)", CTL_LINE_MAX - 1);
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c > 0x7e) {
			ctl_fail(out, "bad byte 0x%02x at offset %zu", c, i);
			return -1;
		}
	}
	memcpy(w->buf, line, len);
	w->buf[len] = '\0';
	w->argc = 0;
	for (char *s = w->buf; *s;) {
		s += strspn(s, " \t");
		if (*s == '\0')
			break;
		size_t n = strcspn(s, " \t");
		if (n > CTL_WORD_MAX) {
			ctl_fail(out, "word too long (max %d bytes)",
				 CTL_WORD_MAX);
			return -1;
		}
		if (w->argc == CTL_MAX_WORDS) {
			ctl_fail(out, "too many words (max %d)", CTL_MAX_WORDS);
			return -1;
		}
		w->argv[w->argc++] = s;
		s += n;
		if (*s != '\0')
			*s++ = '\0';
	}
	if (w->argc == 0) {
		ctl_fail(out, "empty command (try: help)");
		return -1;
	}
	return 0;
}

/* How many leading words of w match cmd's keywords; -1 if not all do. */
static int
ctl_match(const struct ctl_cmd *cmd, const struct ctl_words *w)
{
	int k;
	for (k = 0; cmd->keywords[k] != NULL; k++)
		if (k >= w->argc || strcmp(cmd->keywords[k], w->argv[k]) != 0)
			return -1;
	return k;
}

/* The command names, for "try: ...": every command, or those whose first
 * keyword is first when that is a known group ("pool", "node"). */
static void
ctl_suggest(struct strbuf *sb, const char *first)
{
	bool group = false;
	for (size_t i = 0; i < CTL_NCMDS; i++)
		if (first != NULL &&
		    strcmp(ctl_cmds[i].keywords[0], first) == 0)
			group = true;
	const char *sep = "";
	for (size_t i = 0; i < CTL_NCMDS; i++) {
		if (group && strcmp(ctl_cmds[i].keywords[0], first) != 0)
			continue;
		strbuf_appends(sb, sep);
		for (int k = 0; ctl_cmds[i].keywords[k] != NULL; k++)
			strbuf_appendf(sb, "%s%s", k ? " " : "",
				       ctl_cmds[i].keywords[k]);
		sep = ", ";
	}
}

static enum ctl_status
ctl_unknown(const struct ctl_words *w, struct strbuf *out)
{
	struct strbuf what, names;
	strbuf_init(&what, 2 * CTL_WORD_MAX + 1);
	strbuf_init(&names, 1024);

	strbuf_appends(&what, w->argv[0]);
	if (w->argc > 1 && (strcmp(w->argv[0], "pool") == 0 ||
			    strcmp(w->argv[0], "node") == 0 ||
			    strcmp(w->argv[0], "show") == 0))
		strbuf_appendf(&what, " %s", w->argv[1]);
	ctl_suggest(&names, w->argv[0]);
	strbuf_appends(out, "error: unknown command ");
	strbuf_append_json(out, strbuf_str(&what));
	strbuf_appendf(out, " (try: %s)\n", strbuf_str(&names));
	strbuf_free(&what);
	strbuf_free(&names);
	return CTL_FAIL;
}

enum ctl_status
ctl_execn(struct lbd *l, const char *line, size_t len, struct strbuf *out)
{
	struct ctl_words *w = malloc(sizeof(*w));
	const struct ctl_cmd *best = NULL;
	int best_k = -1;
	enum ctl_status st;

	if (w == NULL)
		return ctl_fail(out, "out of memory");
	if (ctl_tokenize(line, len, w, out) < 0) {
		st = CTL_FAIL;
		goto done;
	}
	/* the command with the most matching keywords: "show status json"
	 * over "show status" */
	for (size_t i = 0; i < CTL_NCMDS; i++) {
		int k = ctl_match(&ctl_cmds[i], w);
		if (k > best_k) {
			best_k = k;
			best = &ctl_cmds[i];
		}
	}
	if (best == NULL) {
		st = ctl_unknown(w, out);
		goto done;
	}
	int nargs = w->argc - best_k;
	if (nargs < best->min_args || nargs > best->max_args) {
		st = ctl_fail(out, "usage: %s", best->usage);
		goto done;
	}
	size_t mark = out->len;
	st = best->run(l, nargs, w->argv + best_k, out);
	if (out->overflow) {
		out->len = mark;
		if (out->buf != NULL)
			out->buf[mark] = '\0';
		out->overflow = false;
		st = ctl_fail(out, "answer too large");
	}
done:
	free(w);
	return st;
}

enum ctl_status
ctl_exec(struct lbd *l, const char *line, struct strbuf *out)
{
	return ctl_execn(l, line, strlen(line), out);
}

/* Finds a pool, or answers why not. */
static struct pool *
ctl_pool(struct lbd *l, const char *name, struct strbuf *out)
{
	struct pool *p = config_pool(l->cfg, name);
	if (p == NULL)
		ctl_fail(out, "unknown pool \"%s\"", name);
	return p;
}

static struct node *
ctl_node(struct pool *p, const char *name, struct strbuf *out)
{
	struct node *n = pool_node(p, name);
	if (n == NULL)
		ctl_fail(out, "unknown node \"%s\" in pool \"%s\"", name,
			 p->name);
	return n;
}

/* The pool and node named by argv[0] and argv[1]; -1 when answered. */
static int
ctl_pool_node(struct lbd *l, char **argv, struct pool **pp, struct node **np,
	      struct strbuf *out)
{
	if ((*pp = ctl_pool(l, argv[0], out)) == NULL)
		return -1;
	if ((*np = ctl_node(*pp, argv[1], out)) == NULL)
		return -1;
	return 0;
}

static enum ctl_status
ctl_ping(struct lbd *l, int argc, char **argv, struct strbuf *out)
{
	(void)l, (void)argc, (void)argv;
	strbuf_appends(out, "pong\n");
	return CTL_OK;
}

static enum ctl_status
ctl_help(struct lbd *l, int argc, char **argv, struct strbuf *out)
{
	(void)l, (void)argc, (void)argv;
	for (size_t i = 0; i < CTL_NCMDS; i++)
		strbuf_appendf(out, "%s\n", ctl_cmds[i].usage);
	return CTL_OK;
}

static enum ctl_status
ctl_show_status(struct lbd *l, int argc, char **argv, struct strbuf *out)
{
	(void)argc, (void)argv;
	status_text(l, out);
	return CTL_OK;
}

static enum ctl_status
ctl_show_status_json(struct lbd *l, int argc, char **argv, struct strbuf *out)
{
	(void)argc, (void)argv;
	status_json(l, out);
	return CTL_OK;
}

/* pool add POOL NODE HOST:PORT [weight=N] [maxconn=N]: the rest of the
 * line is a config `node` line, and parsed as one. */
static enum ctl_status
ctl_pool_add(struct lbd *l, int argc, char **argv, struct strbuf *out)
{
	char spec[CTL_LINE_MAX], why[160];
	size_t off = 0;

	struct pool *p = ctl_pool(l, argv[0], out);
	if (p == NULL)
		return CTL_FAIL;
	spec[0] = '\0';
	for (int i = 1; i < argc; i++)
		off += (size_t)snprintf(spec + off, sizeof(spec) - off, "%s%s",
					i > 1 ? " " : "", argv[i]);
	struct node *n = config_node_parse(spec, HEALTH_DOWN, why, sizeof(why));
	if (n == NULL)
		return ctl_fail(out, "%s", why);
	n->from_config = false;
	if (runtime_node_add(l, ORIGIN_CONTROL, p, n, "pool add", why,
			     sizeof(why)) < 0)
		return ctl_fail(out, "%s", why);
	return ctl_ok(out);
}

static enum ctl_status
ctl_pool_remove(struct lbd *l, int argc, char **argv, struct strbuf *out)
{
	struct pool *p;
	struct node *n;
	char why[160];

	(void)argc;
	if (ctl_pool_node(l, argv, &p, &n, out) < 0)
		return CTL_FAIL;
	if (runtime_node_remove(l, ORIGIN_CONTROL, p, n, "pool remove", why,
				sizeof(why)) < 0)
		return ctl_fail(out, "%s", why);
	return ctl_ok(out);
}

/* The admin commands share this: parse, change, answer. */
static enum ctl_status
ctl_node_admin(struct lbd *l, char **argv, enum node_admin admin, double until,
	       const char *reason, struct strbuf *out)
{
	struct pool *p;
	struct node *n;
	char why[160];

	if (ctl_pool_node(l, argv, &p, &n, out) < 0)
		return CTL_FAIL;
	if (runtime_node_admin(l, ORIGIN_CONTROL, p, n, admin, until, reason,
			       why, sizeof(why)) < 0)
		return ctl_fail(out, "%s", why);
	return ctl_ok(out);
}

static enum ctl_status
ctl_node_drain(struct lbd *l, int argc, char **argv, struct strbuf *out)
{
	(void)argc;
	return ctl_node_admin(l, argv, ADMIN_DRAIN, 0, "node drain", out);
}

static enum ctl_status
ctl_node_enable(struct lbd *l, int argc, char **argv, struct strbuf *out)
{
	(void)argc;
	return ctl_node_admin(l, argv, ADMIN_NONE, 0, "node enable", out);
}

static enum ctl_status
ctl_node_disable(struct lbd *l, int argc, char **argv, struct strbuf *out)
{
	double until = 0;
	long secs;
	char reason[64] = "node disable";

	if (argc == 3) {
		if (strncmp(argv[2], "for=", 4) != 0)
			return ctl_fail(
			    out, "unexpected \"%s\" (expected for=SECONDS)",
			    argv[2]);
		if (decimal_long(argv[2] + 4, 1, NODE_MAINT_MAX_S, &secs) < 0)
			return ctl_fail(out, "bad duration \"%s\" (1..%ld)",
					argv[2] + 4, NODE_MAINT_MAX_S);
		until = ev_now(l->loop) + (double)secs;
		snprintf(reason, sizeof(reason), "node disable for %lds", secs);
	}
	return ctl_node_admin(l, argv, ADMIN_MAINT, until, reason, out);
}

static enum ctl_status
ctl_node_weight(struct lbd *l, int argc, char **argv, struct strbuf *out)
{
	struct pool *p;
	struct node *n;
	long w;
	char why[160];

	(void)argc;
	if (ctl_pool_node(l, argv, &p, &n, out) < 0)
		return CTL_FAIL;
	if (decimal_long(argv[2], 0, NODE_WEIGHT_MAX, &w) < 0)
		return ctl_fail(out, "bad weight \"%s\" (0..%d)", argv[2],
				NODE_WEIGHT_MAX);
	if (runtime_node_weight(l, ORIGIN_CONTROL, p, n, (int)w, "node weight",
				why, sizeof(why)) < 0)
		return ctl_fail(out, "%s", why);
	return ctl_ok(out);
}

static enum ctl_status
ctl_watch(struct lbd *l, int argc, char **argv, struct strbuf *out)
{
	(void)l, (void)argc, (void)argv, (void)out;
	return CTL_WATCH;
}
