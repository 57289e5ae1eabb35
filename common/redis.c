/* The asynchronous Redis client: hiredis 0.14 on the caller's libev loop.
 *
 * Two connections: "main" for commands, "pubsub" for SUBSCRIBE. Each goes
 * DOWN -> CONNECTING -> UP. Main is UP once its handshake (AUTH, or PING
 * without a password) has been answered, which bounds the connect by the
 * same timeout as any command; a hung Redis (SIGSTOP) still accepts TCP
 * connections, so only an answer proves it alive.
 *
 * Pending commands of main sit in a FIFO in the order they were sent,
 * which is the order Redis answers them: request ids rise along it, so
 * redis_cancel() finds an id by binary search and hiredis's callback, given
 * the id as privdata, finds its request at the head. Each request carries
 * its own deadline (send time + timeout_ms); one ev_timer is armed for the
 * head's, which is always the earliest. When it fires, the connection is
 * dropped: every pending request gets reply NULL, commands fail fast until
 * the reconnect timer brings it back, and the pubsub connection is
 * dropped with it so both come back together.
 *
 * hiredis rules kept here: a context is freed with redisAsyncFree only from
 * our own timers, never from inside one of hiredis's callbacks (there,
 * redisAsyncDisconnect); a context that hiredis is tearing down itself
 * (reply NULL, connect failure, disconnect callback) is only forgotten.
 * A forgotten context has data NULL, so its late callbacks do nothing. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/async.h>
#include <hiredis/adapters/libev.h>

#include "decimal.h"
#include "log.h"
#include "redis.h"

#define REDIS_DEFAULT_PORT 6379
#define REDIS_DEFAULT_TIMEOUT_MS 500
#define REDIS_DEFAULT_RECONNECT_MS 500
#define REDIS_PING_S 1.0 /* keepalive on an idle main connection */

enum redis_state { REDIS_DOWN, REDIS_CONNECTING, REDIS_UP };

struct redis_req {
	uint64_t id;
	redis_cb cb; /* NULL once cancelled */
	void *arg;
	double deadline; /* monotonic seconds */
};

struct redis_conn {
	struct redis *r;
	const char *name; /* "main" or "pubsub", for logs */
	redisAsyncContext *ac;
	enum redis_state state;
	int in_cb;	   /* depth of hiredis callbacks running on ac */
	bool warned;	   /* the current outage has been logged */
	ev_timer deadline; /* main: head request; pubsub: subscriptions */
	ev_timer retry;
};

struct redis_hook {
	void (*cb)(struct redis *r, void *arg);
	void *arg;
};

struct redis_sub {
	char *channel;
	void (*cb)(const char *msg, size_t len, void *arg);
	void *arg;
	bool confirmed;
};

/* With sentinels: the query that finds the master, and the subscription
 * to +switch-master on one sentinel. Their contexts carry the struct
 * redis as data (NULL once dropped). */
struct redis_sentinel {
	redisAsyncContext *ac; /* a query in flight */
	int idx;	       /* the sentinel asked (or to ask next) */
	int tried;	       /* sentinels asked in this round */
	bool resolved;	       /* opts.host is the master's, for now */
	bool warned;
	ev_timer deadline;
	redisAsyncContext *sub; /* SUBSCRIBE +switch-master */
	int sub_idx;
	ev_timer sub_retry;
	int in_cb; /* depth of hiredis callbacks on ac or sub */
};

struct redis {
	struct ev_loop *loop;
	struct redis_opts opts;
	struct redis_sentinel sent;
	struct redis_conn main, pubsub;
	struct redis_req *q; /* pending requests of main: [qhead, qtail) */
	size_t qhead, qtail, qcap;
	uint64_t next_id;
	ev_timer ping;
	struct redis_hook *hooks;
	size_t nhooks;
	struct redis_sub *subs;
	size_t nsubs;
	int busy;   /* depth of our callbacks into the caller */
	bool dying; /* redis_free() called while busy */
};

static void redis_conn_connect(struct redis_conn *c);
static void redis_conn_drop(struct redis_conn *c, const char *why);
static void redis_conn_lost(struct redis_conn *c, const char *why);
static void redis_destroy(struct redis *r);
static void redis_sentinel_ask(struct redis *r);
static void redis_sentinel_sub_start(struct redis *r);

static double
redis_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
redis_opts_parse(const char *hostport, struct redis_opts *opts)
{
	const char *host = hostport, *colon;
	size_t hostlen;
	long port = REDIS_DEFAULT_PORT;

	memset(opts, 0, sizeof(*opts));
	opts->timeout_ms = REDIS_DEFAULT_TIMEOUT_MS;
	opts->reconnect_ms = REDIS_DEFAULT_RECONNECT_MS;
	if (hostport[0] == '[') { /* [IPv6]:port */
		const char *end = strchr(hostport, ']');
		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return -1;
		host = hostport + 1;
		hostlen = (size_t)(end - host);
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strrchr(hostport, ':');
		if (colon && strchr(hostport, ':') != colon)
			return -1; /* a bare IPv6 address needs brackets */
		hostlen = colon ? (size_t)(colon - hostport) : strlen(hostport);
	}
	if (colon) {
		if (decimal_long(colon + 1, 1, 65535, &port) < 0)
			return -1;
	}
	if (hostlen == 0 || hostlen >= sizeof(opts->host))
		return -1;
	for (size_t i = 0; i < hostlen; i++)
		if (host[i] <= ' ' || host[i] == '/' || host[i] == 0x7f)
			return -1;
	memcpy(opts->host, host, hostlen);
	opts->host[hostlen] = '\0';
	opts->port = (int)port;
	return 0;
}

int
redis_sentinels_parse(const char *list, struct redis_opts *opts)
{
	char buf[1024], *save = NULL;
	struct redis_opts one;
	int n = 0;

	if (strlen(list) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *tok = strtok_r(buf, ", \t", &save); tok;
	     tok = strtok_r(NULL, ", \t", &save)) {
		if (n == REDIS_MAX_SENTINELS || redis_opts_parse(tok, &one) < 0)
			return -1;
		if (strrchr(tok, ':') == NULL || tok[strlen(tok) - 1] == ']')
			one.port = 26379;
		snprintf(opts->sentinels[n].host,
			 sizeof(opts->sentinels[n].host), "%s", one.host);
		opts->sentinels[n].port = one.port;
		n++;
	}
	if (n == 0)
		return -1;
	opts->nsentinels = n;
	return 0;
}

/* The FIFO of pending requests. */

static size_t
redis_queue_len(const struct redis *r)
{
	return r->qtail - r->qhead;
}

static int
redis_queue_reserve(struct redis *r)
{
	if (r->qtail < r->qcap)
		return 0;
	if (r->qhead > 0) {
		memmove(r->q, r->q + r->qhead,
			redis_queue_len(r) * sizeof(*r->q));
		r->qtail -= r->qhead;
		r->qhead = 0;
		if (r->qtail < r->qcap)
			return 0;
	}
	size_t cap = r->qcap ? r->qcap * 2 : 64;
	struct redis_req *q = realloc(r->q, cap * sizeof(*q));
	if (q == NULL)
		return -1;
	r->q = q;
	r->qcap = cap;
	return 0;
}

static struct redis_req *
redis_queue_find(struct redis *r, uint64_t id)
{
	size_t lo = r->qhead, hi = r->qtail;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->q[mid].id == id)
			return &r->q[mid];
		if (r->q[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static bool
redis_queue_pop(struct redis *r, struct redis_req *out)
{
	if (r->qhead == r->qtail)
		return false;
	*out = r->q[r->qhead++];
	if (r->qhead == r->qtail)
		r->qhead = r->qtail = 0;
	return true;
}

/* Arms main's deadline timer for the head request, or stops it. */
static void
redis_deadline_arm(struct redis *r)
{
	ev_timer *t = &r->main.deadline;

	ev_timer_stop(r->loop, t);
	if (redis_queue_len(r) == 0)
		return;
	double left = r->q[r->qhead].deadline - redis_now();
	ev_timer_set(t, left > 0.001 ? left : 0.001, 0.);
	ev_timer_start(r->loop, t);
}

/* Runs a caller's callback; the caller may call redis_free() from it. */
static void
redis_call(struct redis *r, redis_cb cb, redisReply *reply, void *arg)
{
	r->busy++;
	cb(r, reply, arg);
	r->busy--;
}

/* Finishes a redis_free() made from inside a callback, once the last of
 * our callbacks into the caller has returned. Returns true when r is
 * gone. Called before a hiredis callback's in_cb count drops, so a
 * context whose callback is running is closed, not freed. */
static bool
redis_reap(struct redis *r)
{
	if (r->busy > 0 || !r->dying)
		return false;
	redis_destroy(r);
	return true;
}

/* Gives every pending request reply NULL, oldest first. A callback may
 * cancel later ones or free the client; both are honoured. */
static void
redis_queue_fail(struct redis *r)
{
	struct redis_req req;

	ev_timer_stop(r->loop, &r->main.deadline);
	while (!r->dying && redis_queue_pop(r, &req))
		if (req.cb)
			redis_call(r, req.cb, NULL, req.arg);
}

/* hiredis's callback for every command on main. */
static void
redis_reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis_conn *c = ac->data;
	struct redis *r;
	struct redis_req req;
	uint64_t id = (uint64_t)(uintptr_t)privdata;

	if (c == NULL)
		return; /* a connection we have dropped */
	r = c->r;
	c->in_cb++;
	if (reply == NULL) {
		/* hiredis calls back with NULL only while it frees ac. */
		redis_conn_lost(c, "connection lost");
		goto out;
	}
	if (r->qhead == r->qtail || r->q[r->qhead].id != id) {
		log_err("redis: reply out of order (id %llu)",
			(unsigned long long)id);
		redis_conn_drop(c, "protocol error");
		goto out;
	}
	redis_queue_pop(r, &req);
	redis_deadline_arm(r);
	if (req.cb)
		redis_call(r, req.cb, reply, req.arg);
	/* a failover made our master a replica: ask the sentinels again */
	if (!r->dying && r->opts.nsentinels > 0 && c->ac == ac &&
	    ((redisReply *)reply)->type == REDIS_REPLY_ERROR &&
	    strncmp(((redisReply *)reply)->str, "READONLY", 8) == 0)
		redis_conn_drop(c, "the master is now a replica");
out:
	if (!redis_reap(r))
		c->in_cb--;
}

/* Queues a formatted command on main whatever its state (the handshake
 * is sent while CONNECTING). Returns the id, or 0. */
static uint64_t
redis_send(struct redis *r, redis_cb cb, void *arg, const char *cmd, size_t len)
{
	uint64_t id;

	if (r->main.ac == NULL || r->dying || redis_queue_reserve(r) < 0)
		return 0;
	id = ++r->next_id;
	if (redisAsyncFormattedCommand(r->main.ac, redis_reply_cb,
				       (void *)(uintptr_t)id, cmd,
				       len) != REDIS_OK)
		return 0;
	r->q[r->qtail++] = (struct redis_req){
	    .id = id,
	    .cb = cb,
	    .arg = arg,
	    .deadline = redis_now() + r->opts.timeout_ms / 1000.0,
	};
	if (redis_queue_len(r) == 1)
		redis_deadline_arm(r);
	return id;
}

uint64_t
redis_command(struct redis *r, redis_cb cb, void *arg, const char *fmt, ...)
{
	char *cmd = NULL;
	va_list ap;
	int len;
	uint64_t id;

	if (!redis_up(r))
		return 0;
	va_start(ap, fmt);
	len = redisvFormatCommand(&cmd, fmt, ap);
	va_end(ap);
	if (len < 0)
		return 0;
	id = redis_send(r, cb, arg, cmd, (size_t)len);
	free(cmd);
	return id;
}

uint64_t
redis_commandargv(struct redis *r, redis_cb cb, void *arg, int argc,
		  const char **argv, const size_t *argvlen)
{
	char *cmd = NULL;
	long long len;
	uint64_t id;

	if (!redis_up(r))
		return 0;
	len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
	if (len < 0)
		return 0;
	id = redis_send(r, cb, arg, cmd, (size_t)len);
	free(cmd);
	return id;
}

void
redis_cancel(struct redis *r, uint64_t id)
{
	struct redis_req *req;

	if (r == NULL || id == 0)
		return;
	req = redis_queue_find(r, id);
	if (req)
		req->cb = NULL;
}

bool
redis_up(const struct redis *r)
{
	return r != NULL && !r->dying && r->main.state == REDIS_UP;
}

struct ev_loop *
redis_loop(const struct redis *r)
{
	return r->loop;
}

void
redis_on_up(struct redis *r, void (*cb)(struct redis *r, void *arg), void *arg)
{
	struct redis_hook *h;

	h = realloc(r->hooks, (r->nhooks + 1) * sizeof(*h));
	if (h == NULL) {
		log_err("%s: out of memory", __func__);
		return;
	}
	r->hooks = h;
	r->hooks[r->nhooks++] = (struct redis_hook){cb, arg};
}

/* Connection life. */

/* Main's handshake answered: the connection is usable. */
static void
redis_main_ready(struct redis *r, redisReply *reply, void *arg)
{
	struct redis_conn *c = &r->main;

	(void)arg;
	if (reply == NULL)
		return; /* already dropped */
	if (reply->type == REDIS_REPLY_ERROR) {
		if (!c->warned)
			log_err(
			    "redis %s:%d: %s: %s", r->opts.host, r->opts.port,
			    r->opts.password[0] ? "AUTH" : "PING", reply->str);
		c->warned = true;
		redis_conn_drop(c, "handshake refused");
		return;
	}
	c->state = REDIS_UP;
	if (c->warned)
		log_info("redis %s:%d: connected again", r->opts.host,
			 r->opts.port);
	else
		log_info("redis %s:%d: connected", r->opts.host, r->opts.port);
	c->warned = false;
	ev_timer_again(r->loop, &r->ping);
	for (size_t i = 0; i < r->nhooks && !r->dying && c->state == REDIS_UP;
	     i++) {
		r->busy++;
		r->hooks[i].cb(r, r->hooks[i].arg);
		r->busy--;
	}
}

static void
redis_ping_done(struct redis *r, redisReply *reply, void *arg)
{
	(void)r;
	(void)reply;
	(void)arg;
}

static void
redis_ping_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct redis *r = t->data;
	char *cmd = NULL;
	int len;

	(void)loop;
	(void)revents;
	if (!redis_up(r) || redis_queue_len(r) > 0)
		return; /* a pending command already proves or disproves it */
	len = redisFormatCommand(&cmd, "PING");
	if (len > 0)
		redis_send(r, redis_ping_done, NULL, cmd, (size_t)len);
	free(cmd);
}

/* Sends the subscriptions not yet confirmed on pubsub. */
static void redis_pubsub_cb(redisAsyncContext *ac, void *reply, void *priv);

static int
redis_pubsub_send(struct redis_conn *c, size_t i)
{
	struct redis *r = c->r;

	r->subs[i].confirmed = false;
	if (redisAsyncCommand(c->ac, redis_pubsub_cb, (void *)(uintptr_t)i,
			      "SUBSCRIBE %s", r->subs[i].channel) != REDIS_OK)
		return -1;
	if (!ev_is_active(&c->deadline)) {
		ev_timer_set(&c->deadline, r->opts.timeout_ms / 1000.0, 0.);
		ev_timer_start(r->loop, &c->deadline);
	}
	return 0;
}

static void
redis_pubsub_auth_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis_conn *c = ac->data;
	redisReply *rep = reply;

	(void)priv;
	if (c == NULL)
		return;
	c->in_cb++;
	if (rep == NULL)
		redis_conn_lost(c, "connection lost");
	else if (rep->type == REDIS_REPLY_ERROR)
		redis_conn_drop(c, "AUTH refused");
	if (!redis_reap(c->r))
		c->in_cb--;
}

/* Every reply on pubsub: ["subscribe", channel, n] confirms, and
 * ["message", channel, payload] is passed on. */
static void
redis_pubsub_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis_conn *c = ac->data;
	redisReply *rep = reply;
	size_t i = (size_t)(uintptr_t)priv;
	struct redis *r;

	if (c == NULL)
		return;
	r = c->r;
	c->in_cb++;
	if (rep == NULL) {
		redis_conn_lost(c, "connection lost");
		goto out;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
	    rep->element[0]->type != REDIS_REPLY_STRING || i >= r->nsubs)
		goto out;
	if (strcmp(rep->element[0]->str, "subscribe") == 0) {
		bool all = true;
		r->subs[i].confirmed = true;
		for (size_t k = 0; k < r->nsubs; k++)
			all = all && r->subs[k].confirmed;
		if (all) {
			ev_timer_stop(r->loop, &c->deadline);
			c->state = REDIS_UP;
			c->warned = false;
		}
		/* Messages may have been missed while unsubscribed. */
		if (r->subs[i].cb) {
			r->busy++;
			r->subs[i].cb(NULL, 0, r->subs[i].arg);
			r->busy--;
		}
	} else if (strcmp(rep->element[0]->str, "message") == 0 &&
		   rep->element[2]->type == REDIS_REPLY_STRING &&
		   r->subs[i].cb) {
		r->busy++;
		r->subs[i].cb(rep->element[2]->str, rep->element[2]->len,
			      r->subs[i].arg);
		r->busy--;
	}
out:
	if (!redis_reap(r))
		c->in_cb--;
}

static void
redis_connect_cb(const redisAsyncContext *ac, int status)
{
	struct redis_conn *c = ac->data;

	if (c == NULL || status == REDIS_OK)
		return;
	c->in_cb++;
	/* hiredis frees ac after this returns. */
	redis_conn_lost(c, ac->errstr[0] ? ac->errstr : "connect failed");
	if (!redis_reap(c->r))
		c->in_cb--;
}

static void
redis_disconnect_cb(const redisAsyncContext *ac, int status)
{
	struct redis_conn *c = ac->data;

	(void)status;
	if (c == NULL)
		return;
	c->in_cb++;
	redis_conn_lost(c, ac->errstr[0] ? ac->errstr : "disconnected");
	if (!redis_reap(c->r))
		c->in_cb--;
}

static void
redis_retry_start(struct redis_conn *c)
{
	struct redis *r = c->r;

	if (r->dying || ev_is_active(&c->retry))
		return;
	/* A timer that has run must be set again before a restart. */
	ev_timer_set(&c->retry, r->opts.reconnect_ms / 1000.0, 0.);
	ev_timer_start(r->loop, &c->retry);
}

static void
redis_conn_connect(struct redis_conn *c)
{
	struct redis *r = c->r;
	redisAsyncContext *ac;
	char *cmd = NULL;
	int len;

	ev_timer_stop(r->loop, &c->retry);
	if (c->ac != NULL || r->dying)
		return;
	if (c == &r->pubsub && r->nsubs == 0)
		return;
	if (r->opts.nsentinels > 0 && !r->sent.resolved) {
		if (c == &r->main)
			redis_sentinel_ask(r); /* connects main when answered */
		else
			redis_retry_start(c);
		return;
	}
	ac = redisAsyncConnect(r->opts.host, r->opts.port);
	if (ac == NULL || ac->err) {
		if (!c->warned)
			log_warn("redis %s:%d (%s): %s", r->opts.host,
				 r->opts.port, c->name,
				 ac ? ac->errstr : "out of memory");
		c->warned = true;
		if (ac)
			redisAsyncFree(ac);
		redis_retry_start(c);
		return;
	}
	ac->data = c;
	c->ac = ac;
	c->state = REDIS_CONNECTING;
	redisLibevAttach(r->loop, ac);
	redisAsyncSetConnectCallback(ac, redis_connect_cb);
	redisAsyncSetDisconnectCallback(ac, redis_disconnect_cb);
	if (c == &r->main) {
		/* Queued now, written once connected: its deadline bounds the
		 * connect as well. */
		if (r->opts.password[0])
			len = redisFormatCommand(&cmd, "AUTH %s",
						 r->opts.password);
		else
			len = redisFormatCommand(&cmd, "PING");
		if (len < 0 || redis_send(r, redis_main_ready, NULL, cmd,
					  (size_t)len) == 0)
			redis_conn_drop(c, "out of memory");
		free(cmd);
		return;
	}
	if (r->opts.password[0] &&
	    redisAsyncCommand(ac, redis_pubsub_auth_cb, NULL, "AUTH %s",
			      r->opts.password) != REDIS_OK)
		goto fail;
	for (size_t i = 0; i < r->nsubs; i++)
		if (redis_pubsub_send(c, i) < 0)
			goto fail;
	return;
fail:
	redis_conn_drop(c, "cannot queue SUBSCRIBE");
}

/* Marks c down after its context went away, and schedules a reconnect.
 * Dropping main drops pubsub too: both come back together. */
static void
redis_conn_down(struct redis_conn *c, const char *why)
{
	struct redis *r = c->r;
	bool was_up = c->state == REDIS_UP;

	c->state = REDIS_DOWN;
	ev_timer_stop(r->loop, &c->deadline);
	if (!c->warned) {
		log_warn("redis %s:%d (%s): %s%s; retrying every %d ms",
			 r->opts.host, r->opts.port, c->name, why,
			 was_up ? "" : " while connecting",
			 r->opts.reconnect_ms);
		c->warned = true;
	} else {
		log_debug("redis %s:%d (%s): %s", r->opts.host, r->opts.port,
			  c->name, why);
	}
	redis_retry_start(c);
	if (c == &r->main) {
		r->sent.resolved = false; /* where is the master now? */
		ev_timer_stop(r->loop, &r->ping);
		if (r->pubsub.ac)
			redis_conn_drop(&r->pubsub, "main connection down");
		redis_queue_fail(r);
	}
}

/* We give up on c's context: free it (or, from inside one of its
 * callbacks, let hiredis close it), then down. */
static void
redis_conn_drop(struct redis_conn *c, const char *why)
{
	redisAsyncContext *ac = c->ac;

	c->ac = NULL;
	if (ac) {
		ac->data = NULL;
		if (c->in_cb)
			redisAsyncDisconnect(ac);
		else
			redisAsyncFree(ac);
	}
	redis_conn_down(c, why);
}

/* hiredis is freeing c's context itself: forget it, then down. */
static void
redis_conn_lost(struct redis_conn *c, const char *why)
{
	if (c->ac)
		c->ac->data = NULL;
	c->ac = NULL;
	redis_conn_down(c, why);
}

static void
redis_deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct redis_conn *c = t->data;
	struct redis *r = c->r;
	char why[64];

	(void)loop;
	(void)revents;
	if (c == &r->main && (redis_queue_len(r) == 0 ||
			      r->q[r->qhead].deadline > redis_now() + 0.0005)) {
		redis_deadline_arm(r); /* not due yet (or nothing pending) */
		return;
	}
	snprintf(why, sizeof(why), "no answer within %d ms",
		 r->opts.timeout_ms);
	redis_conn_drop(c, why);
	redis_reap(r);
}

static void
redis_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct redis_conn *c = t->data;

	(void)loop;
	(void)revents;
	redis_conn_connect(c);
	redis_reap(c->r);
}

/* Sentinels. */

/* Closes a sentinel context of ours (data already NULL). */
static void
redis_sentinel_ac_close(struct redis *r, redisAsyncContext *ac)
{
	if (ac == NULL)
		return;
	ac->data = NULL;
	if (r->sent.in_cb)
		redisAsyncDisconnect(ac);
	else
		redisAsyncFree(ac);
}

static void
redis_sentinel_close(struct redis *r)
{
	redisAsyncContext *ac = r->sent.ac, *sub = r->sent.sub;

	ev_timer_stop(r->loop, &r->sent.deadline);
	ev_timer_stop(r->loop, &r->sent.sub_retry);
	r->sent.ac = r->sent.sub = NULL;
	redis_sentinel_ac_close(r, ac);
	redis_sentinel_ac_close(r, sub);
}

static void redis_sentinel_next(struct redis *r);

/* The query failed on the sentinel asked (its context is gone or being
 * freed by hiredis): ask the next one. */
static void
redis_sentinel_failed(struct redis *r, const char *why)
{
	const struct redis_hostport *s = &r->opts.sentinels[r->sent.idx];

	log_debug("redis sentinel %s:%d: %s", s->host, s->port, why);
	ev_timer_stop(r->loop, &r->sent.deadline);
	r->sent.idx = (r->sent.idx + 1) % r->opts.nsentinels;
	redis_sentinel_next(r);
}

/* The master's address came: connect main (and pubsub) there. */
static void
redis_sentinel_found(struct redis *r, const char *host, int port)
{
	if (strcmp(host, r->opts.host) != 0 || port != r->opts.port ||
	    r->sent.warned)
		log_info("redis sentinel: master %s is %s:%d", r->opts.master,
			 host, port);
	snprintf(r->opts.host, sizeof(r->opts.host), "%s", host);
	r->opts.port = port;
	r->sent.resolved = true;
	r->sent.warned = false;
	redis_conn_connect(&r->main);
	if (!r->dying && r->pubsub.ac == NULL && r->nsubs > 0)
		redis_conn_connect(&r->pubsub);
	if (!r->dying && r->sent.sub == NULL &&
	    !ev_is_active(&r->sent.sub_retry))
		redis_sentinel_sub_start(r);
}

static void
redis_sentinel_reply_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis *r = ac->data;
	redisReply *rep = reply;
	char host[256];
	long port = 0;

	(void)priv;
	if (r == NULL)
		return;
	r->sent.in_cb++;
	if (rep == NULL) { /* hiredis is freeing ac */
		ac->data = NULL;
		r->sent.ac = NULL;
		redis_sentinel_failed(r, "connection lost");
		goto out;
	}
	r->sent.ac = NULL;
	redis_sentinel_ac_close(r, ac);
	ev_timer_stop(r->loop, &r->sent.deadline);
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    rep->element[0]->type == REDIS_REPLY_STRING &&
	    rep->element[1]->type == REDIS_REPLY_STRING &&
	    rep->element[0]->len < sizeof(host)) {
		snprintf(host, sizeof(host), "%s", rep->element[0]->str);
		port = strtol(rep->element[1]->str, NULL, 10);
	}
	if (port < 1 || port > 65535)
		redis_sentinel_failed(r, rep->type == REDIS_REPLY_ERROR
					     ? rep->str
					     : "master unknown");
	else
		redis_sentinel_found(r, host, (int)port);
out:
	r->sent.in_cb--;
	redis_reap(r);
}

static void
redis_sentinel_connect_cb(const redisAsyncContext *ac, int status)
{
	struct redis *r = ac->data;

	if (r == NULL || status == REDIS_OK)
		return;
	r->sent.in_cb++;
	((redisAsyncContext *)ac)->data = NULL;
	if (ac == r->sent.ac) {
		r->sent.ac = NULL;
		redis_sentinel_failed(r, ac->errstr);
	} else if (ac == r->sent.sub) {
		r->sent.sub = NULL;
		r->sent.sub_idx = (r->sent.sub_idx + 1) % r->opts.nsentinels;
		ev_timer_set(&r->sent.sub_retry, r->opts.reconnect_ms / 1000.0,
			     0.);
		ev_timer_start(r->loop, &r->sent.sub_retry);
	}
	r->sent.in_cb--;
	redis_reap(r);
}

static void
redis_sentinel_disconnect_cb(const redisAsyncContext *ac, int status)
{
	redis_sentinel_connect_cb(ac, status == REDIS_OK ? REDIS_ERR : status);
}

/* Opens a context to sentinel i, or NULL (logged at debug). */
static redisAsyncContext *
redis_sentinel_open(struct redis *r, int i)
{
	const struct redis_hostport *s = &r->opts.sentinels[i];
	redisAsyncContext *ac = redisAsyncConnect(s->host, s->port);

	if (ac == NULL || ac->err) {
		log_debug("redis sentinel %s:%d: %s", s->host, s->port,
			  ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		return NULL;
	}
	ac->data = r;
	redisLibevAttach(r->loop, ac);
	redisAsyncSetConnectCallback(ac, redis_sentinel_connect_cb);
	redisAsyncSetDisconnectCallback(ac, redis_sentinel_disconnect_cb);
	return ac;
}

/* Asks the next sentinel of this round; after all of them, main waits
 * for its retry timer and a new round. */
static void
redis_sentinel_next(struct redis *r)
{
	while (!r->dying && r->sent.tried < r->opts.nsentinels) {
		int i = r->sent.idx;
		r->sent.tried++;
		redisAsyncContext *ac = redis_sentinel_open(r, i);
		if (ac == NULL) {
			r->sent.idx = (i + 1) % r->opts.nsentinels;
			continue;
		}
		if (redisAsyncCommand(ac, redis_sentinel_reply_cb, NULL,
				      "SENTINEL get-master-addr-by-name %s",
				      r->opts.master) != REDIS_OK) {
			ac->data = NULL;
			redisAsyncFree(ac);
			r->sent.idx = (i + 1) % r->opts.nsentinels;
			continue;
		}
		r->sent.ac = ac;
		ev_timer_set(&r->sent.deadline, r->opts.timeout_ms / 1000.0,
			     0.);
		ev_timer_start(r->loop, &r->sent.deadline);
		return;
	}
	if (r->dying)
		return;
	if (!r->sent.warned)
		log_warn("redis sentinel: no sentinel knows master %s; "
			 "asking again every %d ms",
			 r->opts.master, r->opts.reconnect_ms);
	r->sent.warned = true;
	redis_retry_start(&r->main);
}

static void
redis_sentinel_ask(struct redis *r)
{
	if (r->sent.ac != NULL || r->dying)
		return; /* a query is on its way */
	r->sent.tried = 0;
	redis_sentinel_next(r);
}

static void
redis_sentinel_deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct redis *r = t->data;
	redisAsyncContext *ac = r->sent.ac;

	(void)loop;
	(void)revents;
	r->sent.ac = NULL;
	redis_sentinel_ac_close(r, ac);
	redis_sentinel_failed(r, "no answer in time");
	redis_reap(r);
}

/* +switch-master NAME OLDHOST OLDPORT NEWHOST NEWPORT */
static void
redis_sentinel_sub_cb(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis *r = ac->data;
	redisReply *rep = reply;
	char name[128], host[256];
	int port;

	(void)priv;
	if (r == NULL || rep == NULL)
		return; /* the disconnect callback deals with it */
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(rep->element[0]->str, "message") != 0 ||
	    rep->element[2]->type != REDIS_REPLY_STRING ||
	    sscanf(rep->element[2]->str, "%127s %*s %*s %255s %d", name, host,
		   &port) != 3 ||
	    strcmp(name, r->opts.master) != 0 || port < 1 || port > 65535)
		return;
	if (r->main.state == REDIS_UP && strcmp(host, r->opts.host) == 0 &&
	    port == r->opts.port)
		return; /* already there */
	r->sent.in_cb++;
	log_info("redis sentinel: %s switched to %s:%d", name, host, port);
	if (r->main.ac != NULL)
		redis_conn_drop(&r->main, "the master switched");
	if (!r->dying && r->sent.ac == NULL)
		redis_sentinel_found(r, host, port);
	r->sent.in_cb--;
	redis_reap(r);
}

static void
redis_sentinel_sub_start(struct redis *r)
{
	if (r->sent.sub != NULL || r->dying)
		return;
	redisAsyncContext *ac = redis_sentinel_open(r, r->sent.sub_idx);
	if (ac != NULL &&
	    redisAsyncCommand(ac, redis_sentinel_sub_cb, NULL,
			      "SUBSCRIBE +switch-master") == REDIS_OK) {
		r->sent.sub = ac;
		return;
	}
	if (ac != NULL) {
		ac->data = NULL;
		redisAsyncFree(ac);
	}
	r->sent.sub_idx = (r->sent.sub_idx + 1) % r->opts.nsentinels;
	ev_timer_set(&r->sent.sub_retry, r->opts.reconnect_ms / 1000.0, 0.);
	ev_timer_start(r->loop, &r->sent.sub_retry);
}

static void
redis_sentinel_sub_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct redis *r = t->data;

	(void)loop;
	(void)revents;
	redis_sentinel_sub_start(r);
}

static void
redis_conn_init(struct redis *r, struct redis_conn *c, const char *name)
{
	c->r = r;
	c->name = name;
	c->state = REDIS_DOWN;
	ev_timer_init(&c->deadline, redis_deadline_cb, 0., 0.);
	c->deadline.data = c;
	ev_init(&c->retry, redis_retry_cb);
	c->retry.data = c;
}

struct redis *
redis_new(struct ev_loop *loop, const struct redis_opts *opts)
{
	struct redis *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->loop = loop;
	r->opts = *opts;
	if (r->opts.port <= 0)
		r->opts.port = REDIS_DEFAULT_PORT;
	if (r->opts.timeout_ms <= 0)
		r->opts.timeout_ms = REDIS_DEFAULT_TIMEOUT_MS;
	if (r->opts.reconnect_ms <= 0)
		r->opts.reconnect_ms = REDIS_DEFAULT_RECONNECT_MS;
	redis_conn_init(r, &r->main, "main");
	redis_conn_init(r, &r->pubsub, "pubsub");
	ev_init(&r->ping, redis_ping_cb);
	r->ping.repeat = REDIS_PING_S;
	r->ping.data = r;
	ev_init(&r->sent.deadline, redis_sentinel_deadline_cb);
	r->sent.deadline.data = r;
	ev_init(&r->sent.sub_retry, redis_sentinel_sub_retry_cb);
	r->sent.sub_retry.data = r;
	if (r->opts.nsentinels > 0)
		redis_sentinel_sub_start(r);
	redis_conn_connect(&r->main);
	return r;
}

int
redis_subscribe(struct redis *r, const char *channel,
		void (*cb)(const char *msg, size_t len, void *arg), void *arg)
{
	struct redis_sub *s;
	char *name = strdup(channel);

	if (name == NULL)
		return -1;
	s = realloc(r->subs, (r->nsubs + 1) * sizeof(*s));
	if (s == NULL) {
		free(name);
		return -1;
	}
	r->subs = s;
	r->subs[r->nsubs++] = (struct redis_sub){name, cb, arg, false};
	if (r->pubsub.ac == NULL) {
		if (!ev_is_active(&r->pubsub.retry))
			redis_conn_connect(&r->pubsub);
	} else if (redis_pubsub_send(&r->pubsub, r->nsubs - 1) < 0) {
		redis_conn_drop(&r->pubsub, "cannot queue SUBSCRIBE");
	}
	return 0;
}

void
redis_forget(struct redis *r, void *arg)
{
	size_t k = 0;

	for (size_t i = 0; i < r->nhooks; i++)
		if (r->hooks[i].arg != arg)
			r->hooks[k++] = r->hooks[i];
	r->nhooks = k;
	/* Kept in place: hiredis holds their index. */
	for (size_t i = 0; i < r->nsubs; i++)
		if (r->subs[i].arg == arg)
			r->subs[i].cb = NULL;
}

static void
redis_conn_close(struct redis_conn *c)
{
	struct redis *r = c->r;
	redisAsyncContext *ac = c->ac;

	ev_timer_stop(r->loop, &c->deadline);
	ev_timer_stop(r->loop, &c->retry);
	c->ac = NULL;
	c->state = REDIS_DOWN;
	if (ac) {
		ac->data = NULL;
		if (c->in_cb)
			redisAsyncDisconnect(ac);
		else
			redisAsyncFree(ac);
	}
}

static void
redis_destroy(struct redis *r)
{
	redis_sentinel_close(r);
	redis_conn_close(&r->main);
	redis_conn_close(&r->pubsub);
	ev_timer_stop(r->loop, &r->ping);
	for (size_t i = 0; i < r->nsubs; i++)
		free(r->subs[i].channel);
	free(r->subs);
	free(r->hooks);
	free(r->q);
	explicit_bzero(&r->opts, sizeof(r->opts));
	free(r);
}

void
redis_free(struct redis *r)
{
	if (r == NULL || r->dying)
		return;
	r->dying = true;
	/* From inside one of our callbacks: finished when it returns. */
	if (r->busy == 0 && r->main.in_cb == 0 && r->pubsub.in_cb == 0)
		redis_destroy(r);
}
