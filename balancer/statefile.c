#include "statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/decimal.h"
#include "../common/fdio.h"
#include "../common/log.h"
#include "../common/strbuf.h"
#include "config.h"
#include "runtime.h"
#include "shared.h"
#include "status.h"

#define STATEFILE_MAX (64u << 20)
#define STATEFILE_LINE_MAX 4096

/* The whole file's text: version line, node table, removed config nodes
 * that are no longer in their pool. */
static int
statefile_render(struct lbd *l, struct strbuf *sb)
{
	if (strbuf_appendf(sb, "%s %d\n", STATEFILE_MAGIC, STATEFILE_VERSION) <
		0 ||
	    status_state_table(l, sb) < 0)
		return -1;
	for (const struct runtime_removed *r = runtime_removed_list(l); r;
	     r = r->next) {
		struct pool *p = config_pool(l->cfg, r->pool);
		if (p != NULL && pool_node(p, r->node) != NULL)
			continue;
		if (strbuf_appendf(sb, "removed %s %s\n", r->pool, r->node) < 0)
			return -1;
	}
	return shared_state_lines(l, sb);
}

/* fsync of the directory holding path, so the rename is durable. */
static int
statefile_sync_dir(const char *path)
{
	char dir[sizeof(((struct lbd_settings *)0)->state_file)];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

int
statefile_save(struct lbd *l)
{
	const char *path = l->cfg->set.state_file;
	char tmp[sizeof(l->cfg->set.state_file) + 32];
	struct strbuf sb;
	int fd = -1;

	if (path[0] == '\0')
		return 0;
	strbuf_init(&sb, STATEFILE_MAX);
	tmp[0] = '\0';
	if (statefile_render(l, &sb) < 0) {
		log_warn("%s: %s: state too large", __func__, path);
		goto fail;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		log_warn("%s: %s: %s", __func__, tmp, strerror(errno));
		tmp[0] = '\0';
		goto fail;
	}
	if (fd_write_all(fd, sb.buf, sb.len) < 0 || fsync(fd) < 0) {
		log_warn("%s: %s: %s", __func__, tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		log_warn("%s: %s: %s", __func__, tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		log_warn("%s: rename %s: %s", __func__, path, strerror(errno));
		goto fail;
	}
	if (statefile_sync_dir(path) < 0)
		log_warn("%s: fsync of %s's directory: %s", __func__, path,
			 strerror(errno));
	strbuf_free(&sb);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (tmp[0] != '\0')
		unlink(tmp);
	strbuf_free(&sb);
	return -1;
}

void
statefile_on_event(struct lbd *l, const struct event *ev)
{
	if (ev->kind == EVENT_CHANGED && ev->origin != ORIGIN_STATEFILE)
		statefile_save(l);
}

/* The loader's context: where it is, for messages. */
struct statefile_ctx {
	struct lbd *l;
	const char *path;
	int line;
};

static void statefile_skip(struct statefile_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
statefile_skip(struct statefile_ctx *c, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn("%s:%d: %s; line skipped", c->path, c->line, why);
}

/* "removed POOL NODE": a config node removed at run time. */
static void
statefile_apply_removed(struct statefile_ctx *c, char **f)
{
	char err[160];
	struct pool *p = config_pool(c->l->cfg, f[1]);
	struct node *n = p != NULL ? pool_node(p, f[2]) : NULL;

	if (n == NULL) /* the config dropped it too */
		return;
	if (atomic_load(&n->admin) == ADMIN_REMOVING)
		return;
	if (runtime_node_remove(c->l, ORIGIN_STATEFILE, p, n, "state file", err,
				sizeof(err)) < 0)
		statefile_skip(c, "%s", err);
}

enum statefile_field {
	SF_POOL,
	SF_NODE,
	SF_ADDRESS,
	SF_STATE,
	SF_HEALTH,
	SF_WEIGHT,
	SF_ACTIVE,
	SF_TOTAL,
	SF_LAST_CHANGE,
	SF_MAXCONN,
	SF_ORIGIN,
	SF_MAINT_UNTIL,
};

/* A runtime node the config does not have: add it, probed before traffic.
 * Returns the node, or NULL (logged). */
static struct node *
statefile_add_node(struct statefile_ctx *c, struct pool *p, char **f,
		   long weight, long maxconn)
{
	char spec[512], why[160];
	snprintf(spec, sizeof(spec), "%s %s weight=%ld maxconn=%ld", f[SF_NODE],
		 f[SF_ADDRESS], weight, maxconn);
	struct node *n = config_node_parse(spec, HEALTH_DOWN, why, sizeof(why));
	if (n == NULL) {
		statefile_skip(c, "%s", why);
		return NULL;
	}
	n->from_config = false;
	if (runtime_node_add(c->l, ORIGIN_STATEFILE, p, n, "state file", why,
			     sizeof(why)) < 0) {
		statefile_skip(c, "%s", why);
		return NULL;
	}
	return pool_node(p, f[SF_NODE]);
}

static void
statefile_apply_node(struct statefile_ctx *c, char **f)
{
	long weight, maxconn;
	double until = 0;
	char err[160];
	enum node_admin admin;
	const char *st = f[SF_STATE];

	struct pool *p = config_pool(c->l->cfg, f[SF_POOL]);
	if (p == NULL) {
		statefile_skip(c, "unknown pool \"%s\"", f[SF_POOL]);
		return;
	}
	/* the STATE column: the health when no admin state is set */
	if (strcmp(st, "up") == 0 || strcmp(st, "down") == 0)
		admin = ADMIN_NONE;
	else if (node_admin_parse(st, &admin) < 0 || admin == ADMIN_NONE) {
		statefile_skip(c, "bad state \"%s\"", st);
		return;
	}
	if (decimal_long(f[SF_WEIGHT], 0, NODE_WEIGHT_MAX, &weight) < 0) {
		statefile_skip(c, "bad weight \"%s\"", f[SF_WEIGHT]);
		return;
	}
	if (decimal_long(f[SF_MAXCONN], 0, NODE_MAXCONN_MAX, &maxconn) < 0) {
		statefile_skip(c, "bad maxconn \"%s\"", f[SF_MAXCONN]);
		return;
	}
	if (node_until_parse(f[SF_MAINT_UNTIL], &until) < 0) {
		statefile_skip(c, "bad maintenance end \"%s\"",
			       f[SF_MAINT_UNTIL]);
		return;
	}
	bool runtime = strcmp(f[SF_ORIGIN], "runtime") == 0;
	if (!runtime && strcmp(f[SF_ORIGIN], "config") != 0) {
		statefile_skip(c, "bad origin \"%s\"", f[SF_ORIGIN]);
		return;
	}

	struct node *n = pool_node(p, f[SF_NODE]);
	if (n == NULL) {
		if (!runtime) {
			log_info("%s:%d: node %s is no longer in pool %s",
				 c->path, c->line, f[SF_NODE], p->name);
			return;
		}
		if (admin == ADMIN_REMOVING) /* its removal ended with us */
			return;
		n = statefile_add_node(c, p, f, weight, maxconn);
		if (n == NULL)
			return;
	} else if (strcmp(n->addrstr, f[SF_ADDRESS]) != 0) {
		statefile_skip(c, "node %s of pool %s is now %s, not %s",
			       n->name, p->name, n->addrstr, f[SF_ADDRESS]);
		return;
	}

	int rc;
	if (admin == ADMIN_REMOVING) {
		rc = atomic_load(&n->admin) == ADMIN_REMOVING
			 ? 0
			 : runtime_node_remove(c->l, ORIGIN_STATEFILE, p, n,
					       "state file", err, sizeof(err));
	} else {
		rc = runtime_node_weight(c->l, ORIGIN_STATEFILE, p, n,
					 (int)weight, "state file", err,
					 sizeof(err));
		if (rc == 0)
			rc = runtime_node_admin(c->l, ORIGIN_STATEFILE, p, n,
						admin, until, "state file", err,
						sizeof(err));
	}
	if (rc < 0)
		statefile_skip(c, "%s", err);
}

/* Splits line on blanks into at most nmax fields; the last field keeps
 * the rest of the line. Returns the count. */
static int
statefile_split(char *line, char **f, int nmax)
{
	int n = 0;
	char *s = line;

	while (n < nmax) {
		s += strspn(s, " \t");
		if (*s == '\0')
			break;
		f[n++] = s;
		if (n == nmax)
			break;
		s += strcspn(s, " \t");
		if (*s == '\0')
			break;
		*s++ = '\0';
	}
	return n;
}

static int
statefile_version(struct statefile_ctx *c, char *line)
{
	char *f[3];
	long v;
	int n = statefile_split(line, f, 3);

	if (n < 2 || strcmp(f[0], STATEFILE_MAGIC) != 0) {
		log_err("%s:1: not an lbd state file (expected \"%s %d\")",
			c->path, STATEFILE_MAGIC, STATEFILE_VERSION);
		return -1;
	}
	if (n > 2 || decimal_long(f[1], 1, 1000000, &v) < 0 ||
	    v != STATEFILE_VERSION) {
		log_err("%s:1: unknown state file version \"%s\" (this lbd "
			"reads version %d)",
			c->path, f[1], STATEFILE_VERSION);
		return -1;
	}
	return 0;
}

static void
statefile_apply_line(struct statefile_ctx *c, char *line)
{
	char *f[STATUS_STATE_FIELDS + 1];
	int n = statefile_split(line, f, STATUS_STATE_FIELDS + 1);

	if (n == 0 || f[0][0] == '#')
		return;
	if (n >= 3 && strcmp(f[0], "POOL") == 0 && strcmp(f[1], "NODE") == 0 &&
	    strncmp(f[2], "ADDRESS", 7) == 0)
		return; /* the table's title row */
	if (n == 3 && strcmp(f[0], "removed") == 0)
		statefile_apply_removed(c, f);
	else if (n == 4 && strcmp(f[0], "shared") == 0) {
		if (shared_state_line(c->l, f[1], f[2], f[3]) < 0)
			statefile_skip(c, "bad shared version \"%s\"", f[3]);
	} else if (n >= STATUS_STATE_FIELDS)
		statefile_apply_node(c, f);
	else
		statefile_skip(c, "cannot parse");
}

int
statefile_load(struct lbd *l)
{
	struct statefile_ctx c = {.l = l, .path = l->cfg->set.state_file};
	char line[STATEFILE_LINE_MAX];
	int rc = 0;
	bool toolong = false;

	if (c.path[0] == '\0')
		return 0;
	FILE *fp = fopen(c.path, "re");
	if (fp == NULL) {
		if (errno == ENOENT)
			return 0;
		log_err("state file %s: %s", c.path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		size_t len = strlen(line);
		bool whole = len > 0 && line[len - 1] == '\n';
		if (toolong) { /* the tail of a line already skipped */
			toolong = !whole;
			continue;
		}
		c.line++;
		if (!whole && !feof(fp)) {
			statefile_skip(&c, "line too long");
			toolong = true;
			continue;
		}
		line[strcspn(line, "\r\n")] = '\0';
		if (c.line == 1) {
			if (statefile_version(&c, line) < 0) {
				rc = -1;
				break;
			}
			continue;
		}
		statefile_apply_line(&c, line);
	}
	if (rc == 0 && ferror(fp)) {
		log_err("state file %s: read error", c.path);
		rc = -1;
	}
	if (rc == 0 && c.line == 0)
		log_warn("%s: empty state file, nothing to apply", c.path);
	fclose(fp);
	return rc;
}
