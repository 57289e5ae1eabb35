/* mailctl queue: the shared outbound queue (node/queue/queue.h) seen and
 * changed by an operator. Reading needs only the queue directory; a
 * change (flush, delete, hold, release) takes the message's claim as a
 * queue runner does: flock on ID.msg, and the Redis lease ms:qlock:ID
 * when Redis answers, so it never races a delivery in flight. */
#include "mailctl_queue.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "../common/strbuf.h"
#include "config/schema.h"
#include "queue/queue.h"

#define QCTL_LEASE_MS 30000
#define QCTL_HEADER_MAX 65536

struct qctl {
	struct queue *q;
	const struct redis_opts *opts;
	redisContext *c; /* NULL: Redis not reached, flock alone */
	bool json;
	const char *verb;
	bool busy_ok; /* a message being delivered needs nothing (flush) */
};

/* The held claim: the flock fd and the lease's token. */
struct qctl_claim {
	int fd;
	char key[64];
	char token[33];
	bool leased;
};

static void
qctl_redis(struct qctl *x)
{
	struct timeval t = {3, 0};
	x->c = redisConnectWithTimeout(x->opts->host, x->opts->port, t);
	if (x->c == NULL || x->c->err) {
		fprintf(stderr,
			"mailctl: queue %s: redis %s:%d away, claiming by "
			"flock alone\n",
			x->verb, x->opts->host, x->opts->port);
		redisFree(x->c);
		x->c = NULL;
		return;
	}
	redisSetTimeout(x->c, t);
	if (x->opts->password[0]) {
		redisReply *r =
		    redisCommand(x->c, "AUTH %s", x->opts->password);
		freeReplyObject(r);
	}
}

/* id is being delivered: done for a flush (it is being tried now), an
 * error for the other changes. Returns 1 or -1 (said which). */
static int
qctl_busy(struct qctl *x, const char *id)
{
	if (x->busy_ok) {
		printf("%s: being delivered now\n", id);
		return 1;
	}
	fprintf(stderr, "mailctl: queue %s: %s: being delivered now, try again\n",
		x->verb, id);
	return -1;
}

/* Takes id's claim. Returns 0; 1 when it is being delivered and that is
 * enough (qctl_busy); -1 after saying why (busy, gone). */
static int
qctl_claim(struct qctl *x, const char *id, struct qctl_claim *cl)
{
	unsigned char raw[16];
	memset(cl, 0, sizeof(*cl));
	if ((cl->fd = queue_lock(x->q, id)) < 0) {
		if (errno != ENOENT)
			return qctl_busy(x, id);
		fprintf(stderr, "mailctl: queue %s: %s: no such message\n",
			x->verb, id);
		return -1;
	}
	if (x->c == NULL)
		return 0;
	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
		memset(raw, 0, sizeof(raw));
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(cl->token + 2 * i, 3, "%02x", raw[i]);
	snprintf(cl->key, sizeof(cl->key), SCHEMA_QUEUE_LOCK_PREFIX "%s", id);
	redisReply *r = redisCommand(x->c, "SET %s %s NX PX %d", cl->key,
				     cl->token, QCTL_LEASE_MS);
	bool ok = r && r->type == REDIS_REPLY_STATUS;
	bool busy = r && r->type == REDIS_REPLY_NIL;
	freeReplyObject(r);
	if (busy) {
		close(cl->fd);
		return qctl_busy(x, id);
	}
	cl->leased = ok;
	return 0;
}

static void
qctl_unclaim(struct qctl *x, struct qctl_claim *cl)
{
	if (cl->leased && x->c) {
		redisReply *r = redisCommand(
		    x->c, "EVAL %s 1 %s %s",
		    "if redis.call('get', KEYS[1]) == ARGV[1] then "
		    "return redis.call('del', KEYS[1]) else return 0 end",
		    cl->key, cl->token);
		freeReplyObject(r);
	}
	close(cl->fd);
}

/* A recipient's state as shown: held when the message is. */
static const char *
qctl_state(const struct queue_env *e, const struct queue_rcpt *r)
{
	if (e->held && (r->state == QR_QUEUED || r->state == QR_DEFERRED))
		return "held";
	return queue_state_name(r->state);
}

static long long
qctl_next_try(const struct queue_rcpt *r, long long now)
{
	if (r->state != QR_QUEUED && r->state != QR_DEFERRED)
		return -1;
	return r->next_try > now ? r->next_try - now : 0;
}

struct qctl_list {
	struct qctl *x;
	struct strbuf sb;
	size_t n;
};

static void
qctl_json_env(struct strbuf *sb, const struct queue_env *e, long long now)
{
	strbuf_appends(sb, "{\"id\": ");
	strbuf_append_json(sb, e->id);
	strbuf_appendf(sb, ", \"age_s\": %lld, \"sender\": ", now - e->created);
	strbuf_append_json(sb, e->sender);
	strbuf_appends(sb, ", \"recipients\": [");
	for (size_t i = 0; i < e->nrcpt; i++) {
		const struct queue_rcpt *r = &e->rcpt[i];
		strbuf_appends(sb, i ? ", {\"address\": " : "{\"address\": ");
		strbuf_append_json(sb, r->addr);
		strbuf_appends(sb, ", \"state\": ");
		strbuf_append_json(sb, qctl_state(e, r));
		strbuf_appendf(sb,
			       ", \"attempts\": %d, \"next_try_s\": %lld, "
			       "\"last_reply\": ",
			       r->attempts, qctl_next_try(r, now));
		strbuf_append_json(sb, r->reply);
		strbuf_appends(sb, "}");
	}
	strbuf_appendf(sb, "], \"held\": %s}", e->held ? "true" : "false");
}

static int
qctl_list_one(const char *id, void *arg)
{
	struct qctl_list *l = arg;
	struct queue_env e;
	long long now = (long long)time(NULL);
	if (queue_env_read(l->x->q, id, &e) < 0)
		return 0;
	if (l->x->json) {
		strbuf_appends(&l->sb, l->n ? ",\n " : "");
		qctl_json_env(&l->sb, &e, now);
	} else {
		size_t left = 0;
		long long next = -1;
		const char *last = "";
		for (size_t i = 0; i < e.nrcpt; i++) {
			long long t = qctl_next_try(&e.rcpt[i], now);
			if (t < 0)
				continue;
			left++;
			if (next < 0 || t < next)
				next = t;
			if (e.rcpt[i].reply[0])
				last = e.rcpt[i].reply;
		}
		char nexts[32];
		if (e.held)
			snprintf(nexts, sizeof(nexts), "held");
		else if (next < 0)
			snprintf(nexts, sizeof(nexts), "-");
		else
			snprintf(nexts, sizeof(nexts), "%llds", next);
		printf("%s %llds <%s> %zu %s %s\n", e.id, now - e.created,
		       e.sender, left, nexts, last);
	}
	l->n++;
	queue_env_free(&e);
	return 0;
}

static int
qctl_list(struct qctl *x, int argc, char **argv)
{
	struct qctl_list l = {.x = x};
	(void)argc;
	(void)argv;
	strbuf_init(&l.sb, 64 << 20);
	if (x->json)
		strbuf_appends(&l.sb, "[");
	queue_each(x->q, qctl_list_one, &l);
	if (x->json) {
		strbuf_appends(&l.sb, "]\n");
		if (l.sb.buf)
			fwrite(l.sb.buf, 1, l.sb.len, stdout);
	}
	strbuf_free(&l.sb);
	return 0;
}

static int
qctl_show(struct qctl *x, int argc, char **argv)
{
	struct queue_env e;
	long long now = (long long)time(NULL);
	char name[QUEUE_ID_MAX + 8], buf[QCTL_HEADER_MAX + 1];
	(void)argc;
	if (queue_env_read(x->q, argv[0], &e) < 0) {
		fprintf(stderr, "mailctl: queue show: %s: %s\n", argv[0],
			errno == ENOENT ? "no such message" : strerror(errno));
		return 1;
	}
	printf("id: %s\nage: %lld s\nsender: <%s>\nheld: %s\n", e.id,
	       now - e.created, e.sender, e.held ? "yes" : "no");
	for (size_t i = 0; i < e.nrcpt; i++) {
		const struct queue_rcpt *r = &e.rcpt[i];
		printf("recipient: <%s> %s attempts=%d next_try=%llds %s\n",
		       r->addr, qctl_state(&e, r), r->attempts,
		       qctl_next_try(r, now), r->reply);
	}
	queue_env_free(&e);
	snprintf(name, sizeof(name), "%s.msg", argv[0]);
	int fd = openat(queue_dirfd(x->q), name, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? pread(fd, buf, QCTL_HEADER_MAX, 0) : -1;
	if (fd >= 0)
		close(fd);
	if (n > 0) {
		buf[n] = '\0';
		char *end = strstr(buf, "\r\n\r\n");
		if (end)
			end[2] = '\0';
		printf("\n%s", buf);
	}
	return 0;
}

/* What a change does to a claimed envelope; 1: the message is gone. */
typedef int (*qctl_change_fn)(struct qctl *x, struct queue_env *e);

static int
qctl_do_flush(struct qctl *x, struct queue_env *e)
{
	(void)x;
	for (size_t i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].state == QR_DEFERRED)
			e->rcpt[i].next_try = 0;
	return 0;
}

static int
qctl_do_hold(struct qctl *x, struct queue_env *e)
{
	(void)x;
	e->held = true;
	return 0;
}

static int
qctl_do_release(struct qctl *x, struct queue_env *e)
{
	(void)x;
	e->held = false;
	return 0;
}

static int
qctl_do_delete(struct qctl *x, struct queue_env *e)
{
	if (queue_remove(x->q, e->id) < 0)
		return -1;
	printf("%s: deleted (sender <%s>, %zu recipients)\n", e->id, e->sender,
	       e->nrcpt);
	return 1;
}

/* Applies fn to id under its claim. Returns 0, or -1 (said why). */
static int
qctl_change(struct qctl *x, const char *id, qctl_change_fn fn)
{
	struct qctl_claim cl;
	struct queue_env e;
	int rc = -1;
	if (!queue_id_ok(id)) {
		fprintf(stderr, "mailctl: queue %s: %s: not a queue ID\n",
			x->verb, id);
		return -1;
	}
	int claimed = qctl_claim(x, id, &cl);
	if (claimed != 0)
		return claimed > 0 ? 0 : -1;
	if (queue_env_read(x->q, id, &e) < 0) {
		fprintf(stderr, "mailctl: queue %s: %s: %s\n", x->verb, id,
			errno == ENOENT ? "no such message" : strerror(errno));
		goto out;
	}
	int r = fn(x, &e);
	if (r == 0)
		r = queue_env_write(x->q, &e);
	if (r < 0)
		fprintf(stderr, "mailctl: queue %s: %s: %s\n", x->verb, id,
			strerror(errno));
	else
		rc = 0;
	queue_env_free(&e);
out:
	qctl_unclaim(x, &cl);
	return rc;
}

struct qctl_all {
	struct qctl *x;
	qctl_change_fn fn;
	int failed;
};

static int
qctl_change_one(const char *id, void *arg)
{
	struct qctl_all *a = arg;
	if (qctl_change(a->x, id, a->fn) < 0)
		a->failed++;
	return 0;
}

static const struct {
	const char *verb;
	int min, max;
	qctl_change_fn change; /* NULL: a reading command */
	bool busy_ok;	       /* see struct qctl */
	int (*read)(struct qctl *x, int argc, char **argv);
	const char *usage;
} qctl_cmds[] = {
    {"list", 0, 0, NULL, false, qctl_list, "queue list [--json]"},
    {"show", 1, 1, NULL, false, qctl_show, "queue show ID"},
    {"flush", 0, 1, qctl_do_flush, true, NULL, "queue flush [ID]"},
    {"delete", 1, 1, qctl_do_delete, false, NULL, "queue delete ID"},
    {"hold", 1, 1, qctl_do_hold, false, NULL, "queue hold ID"},
    {"release", 1, 1, qctl_do_release, false, NULL, "queue release ID"},
};

void
mailctl_queue_usage(FILE *f)
{
	for (size_t i = 0; i < sizeof(qctl_cmds) / sizeof(*qctl_cmds); i++)
		fprintf(f, "  mailctl [-q DIR] %s\n", qctl_cmds[i].usage);
}

int
mailctl_queue(int argc, char **argv, const char *dir,
	      const struct redis_opts *opts)
{
	struct qctl x = {.opts = opts};
	char *args[2];
	int nargs = 0, rc = 1;
	size_t i;

	for (i = 0; i < sizeof(qctl_cmds) / sizeof(*qctl_cmds); i++)
		if (argc > 0 && strcmp(argv[0], qctl_cmds[i].verb) == 0)
			break;
	if (i == sizeof(qctl_cmds) / sizeof(*qctl_cmds)) {
		fprintf(stderr, "mailctl: queue: unknown command\n");
		mailctl_queue_usage(stderr);
		return 2;
	}
	x.verb = qctl_cmds[i].verb;
	x.busy_ok = qctl_cmds[i].busy_ok;
	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--json") == 0 && i == 0) {
			x.json = true;
			continue;
		}
		if (nargs == qctl_cmds[i].max || argv[a][0] == '-') {
			fprintf(stderr, "usage: mailctl %s\n",
				qctl_cmds[i].usage);
			return 2;
		}
		for (char *p = argv[a]; *p; p++) /* IDs are upper-case hex */
			*p = (char)toupper((unsigned char)*p);
		args[nargs++] = argv[a];
	}
	if (nargs < qctl_cmds[i].min) {
		fprintf(stderr, "usage: mailctl %s\n", qctl_cmds[i].usage);
		return 2;
	}
	if (dir == NULL || dir[0] == '\0') {
		fprintf(stderr,
			"mailctl: queue %s: no queue directory (-q DIR "
			"or $MAILCTL_QUEUE)\n",
			x.verb);
		return 2;
	}
	if ((x.q = queue_open(dir)) == NULL) {
		fprintf(stderr, "mailctl: queue %s: %s: %s\n", x.verb, dir,
			strerror(errno));
		return 1;
	}
	if (qctl_cmds[i].read)
		rc = qctl_cmds[i].read(&x, nargs, args) ? 1 : 0;
	else {
		qctl_redis(&x);
		if (nargs == 1)
			rc = qctl_change(&x, args[0], qctl_cmds[i].change) ? 1
									   : 0;
		else {
			struct qctl_all a = {&x, qctl_cmds[i].change, 0};
			queue_each(x.q, qctl_change_one, &a);
			rc = a.failed ? 1 : 0;
		}
		redisFree(x.c);
	}
	queue_close(x.q);
	return rc;
}
