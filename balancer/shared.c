/* Runtime state shared with the peer balancer through Redis (shared.h).
 *
 * shared.c keeps one entry per "POOL NODE" it has seen in the shared
 * state or changed itself: the version last applied or written, and
 * whether a local change still waits to be written (pending). A load
 * (HGETALL through a script that also keeps the version counter above
 * every version this balancer knows, so a Redis that lost its data never
 * hands out old versions again) applies records newer than their entry,
 * skips entries with a local change pending, and writes again the entries
 * Redis no longer has. Loads run at connect, on every message of the
 * lbd:state channel, after a resubscribe, and on the 1-second tick when
 * an earlier record could not be applied yet (a node still being
 * removed). The tick also publishes this balancer's verdicts and reads
 * the other balancers'. */
#include "shared.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/decimal.h"
#include "../common/log.h"
#include "../common/redis.h"
#include "config.h"
#include "runtime.h"

#define SHARED_KEY "lbd:state"
#define SHARED_VERSION_KEY "lbd:state:version"
#define SHARED_HEALTH_PREFIX "lbd:health:"
#define SHARED_TICK_S 1.0
#define SHARED_HEALTH_TTL_MS 10000
#define SHARED_HEALTH_FRESH_S 10.0
#define SHARED_MAX_SEEN 8

/* Writes one change: the version and the record go in together. A
 * record whose change was made later (its last field, the epoch time of
 * the change) stays: a change kept while Redis was away does not undo a
 * newer one of the peer. Returns the version, or 0 when it kept the
 * record. */
static const char shared_write_lua[] =
    "local old = redis.call('HGET', KEYS[1], ARGV[1]) "
    "if old then "
    "  local t = tonumber(string.match(old, '(%S+)$')) "
    "  if t and t > tonumber(ARGV[4]) then return 0 end "
    "end "
    "local v = tonumber(redis.call('GET', KEYS[2]) or '0') "
    "if v < tonumber(ARGV[3]) then redis.call('SET', KEYS[2], ARGV[3]) end "
    "v = redis.call('INCR', KEYS[2]) "
    "redis.call('HSET', KEYS[1], ARGV[1], v .. ' ' .. ARGV[2]) "
    "redis.call('PUBLISH', KEYS[1], v) "
    "return v";

/* Reads the whole state, keeping the counter above what we know. */
static const char shared_load_lua[] =
    "local v = tonumber(redis.call('GET', KEYS[2]) or '0') "
    "if v < tonumber(ARGV[1]) then redis.call('SET', KEYS[2], ARGV[1]) end "
    "return redis.call('HGETALL', KEYS[1])";

/* Publishes our verdict on a node, returns every balancer's. */
static const char shared_health_lua[] =
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) "
    "redis.call('PEXPIRE', KEYS[1], ARGV[3]) "
    "return redis.call('HGETALL', KEYS[1])";

struct shared_entry {
	char pool[LBD_NAME_MAX];
	char node[NODE_NAME_MAX];
	unsigned long long version; /* last applied or written; 0: none */
	double changed;		    /* epoch time of that change; 0: unknown */
	bool pending;		    /* a local change not yet written */
	bool writing;		    /* its write is in flight */
	bool seen;		    /* present in the load being applied */
	struct shared_entry *next;
};

/* What the other balancers said about one node. */
struct shared_seen {
	struct shared *sh;
	char pool[LBD_NAME_MAX];
	char node[NODE_NAME_MAX];
	int n;
	char who[SHARED_MAX_SEEN][LBD_NAME_MAX];
	char verdict[SHARED_MAX_SEEN][8];
	double at[SHARED_MAX_SEEN];
	struct shared_seen *next;
};

struct shared {
	struct lbd *l;
	struct redis *r;
	struct shared_entry *entries;
	struct shared_seen *seen;
	unsigned long long max_version;
	bool loading; /* a load is in flight */
	bool again;   /* load once more when it returns */
	bool retry;   /* a record could not be applied yet */
	ev_timer tick;
};

static struct shared *
shared_get(struct lbd *l)
{
	if (l->shared == NULL) {
		l->shared = calloc(1, sizeof(*l->shared));
		if (l->shared == NULL)
			fatal("%s: out of memory", __func__);
		l->shared->l = l;
	}
	return l->shared;
}

static struct shared_entry *
shared_entry(struct shared *sh, const char *pool, const char *node, bool make)
{
	struct shared_entry *e;

	for (e = sh->entries; e; e = e->next)
		if (strcmp(e->pool, pool) == 0 && strcmp(e->node, node) == 0)
			return e;
	if (!make || strlen(pool) >= LBD_NAME_MAX ||
	    strlen(node) >= NODE_NAME_MAX)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		log_warn("%s: out of memory", __func__);
		return NULL;
	}
	snprintf(e->pool, sizeof(e->pool), "%s", pool);
	snprintf(e->node, sizeof(e->node), "%s", node);
	e->next = sh->entries;
	sh->entries = e;
	return e;
}

static void
shared_version_seen(struct shared *sh, unsigned long long v)
{
	if (v > sh->max_version)
		sh->max_version = v;
}

/* The record of e as this balancer has it now, without the version. */
static void
shared_record(struct shared *sh, struct shared_entry *e, char *buf, size_t len)
{
	struct pool *p = config_pool(sh->l->cfg, e->pool);
	struct node *n = p != NULL ? pool_node(p, e->node) : NULL;
	int admin = n != NULL ? atomic_load(&n->admin) : ADMIN_REMOVING;

	if (admin == ADMIN_REMOVING) {
		snprintf(buf, len, "removed - 0 0 none -");
		return;
	}
	char until[32];
	node_until_fmt(admin == ADMIN_MAINT ? n->maint_until : 0, until,
		       sizeof(until));
	snprintf(buf, len, "node %s %d %d %s %s", n->addrstr,
		 atomic_load(&n->weight), n->maxconn,
		 node_admin_name((enum node_admin)admin), until);
}

static void
shared_write_done(struct redis *r, redisReply *reply, void *arg)
{
	struct shared_entry *e = arg;

	(void)r;
	e->writing = false;
	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER &&
	    reply->integer == 0) {
		log_info("shared state: %s/%s changed later on the peer; its "
			 "change wins",
			 e->pool, e->node);
		return;
	}
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
		e->pending = true; /* written again at the next load */
		log_warn("shared state: write of %s/%s failed%s%s; kept for "
			 "later",
			 e->pool, e->node,
			 reply && reply->type == REDIS_REPLY_ERROR ? ": " : "",
			 reply && reply->type == REDIS_REPLY_ERROR ? reply->str
								   : "");
		return;
	}
	/* a newer local change may have come meanwhile: still pending */
	if ((unsigned long long)reply->integer > e->version)
		e->version = (unsigned long long)reply->integer;
}

/* Writes e's current record. The entry stays pending until the answer
 * (shared_write_done): a failed write is tried again at the next load. */
static void
shared_write(struct shared *sh, struct shared_entry *e)
{
	char field[LBD_NAME_MAX + NODE_NAME_MAX + 2], rec[256], floor[32];
	char changed[32];

	if (!redis_up(sh->r) || e->writing)
		return;
	snprintf(field, sizeof(field), "%s %s", e->pool, e->node);
	shared_record(sh, e, rec, sizeof(rec));
	snprintf(changed, sizeof(changed), "%.3f", e->changed);
	strncat(rec, " ", sizeof(rec) - strlen(rec) - 1);
	strncat(rec, changed, sizeof(rec) - strlen(rec) - 1);
	snprintf(floor, sizeof(floor), "%llu", sh->max_version);
	if (redis_command(sh->r, shared_write_done, e,
			  "EVAL %s 2 %s %s %s %s %s %s", shared_write_lua,
			  SHARED_KEY, SHARED_VERSION_KEY, field, rec, floor,
			  changed) == 0)
		return;
	e->pending = false;
	e->writing = true;
	log_debug("shared state: %s -> %s", field, rec);
}

/* This balancer changed NODE of pool p: write it to Redis now, or once
 * Redis is back. */
static void
shared_note_change(struct lbd *l, struct pool *p, const char *node)
{
	struct shared *sh = l->shared;
	struct shared_entry *e;

	if (sh == NULL || sh->r == NULL)
		return;
	if ((e = shared_entry(sh, p->name, node, true)) == NULL)
		return;
	e->pending = true;
	e->changed = ev_now(l->loop);
	/* a write in flight carries the old record: this one follows it */
	if (e->writing) {
		sh->retry = true;
		return;
	}
	shared_write(sh, e);
}

void
shared_on_event(struct lbd *l, const struct event *ev)
{
	/* the state file's changes were shared when made, the peer's are
	 * the peer's own: only the control socket's go out */
	if (ev->kind == EVENT_CHANGED && ev->origin == ORIGIN_CONTROL &&
	    ev->pool != NULL)
		shared_note_change(l, ev->pool, ev->name);
}

/* A record of the shared state, parsed. */
struct shared_rec {
	unsigned long long version;
	bool removed;
	char address[ADDR_STRLEN];
	long weight, maxconn;
	enum node_admin admin;
	double until;
	double changed;
};

static int
shared_rec_parse(const char *s, struct shared_rec *rec)
{
	char kind[16], addr[ADDR_STRLEN], admin[16], until[32];

	memset(rec, 0, sizeof(*rec));
	if (sscanf(s, "%llu %15s %63s %ld %ld %15s %31s %lf", &rec->version,
		   kind, addr, &rec->weight, &rec->maxconn, admin, until,
		   &rec->changed) != 8 ||
	    rec->version == 0)
		return -1;
	if (strcmp(kind, "removed") == 0) {
		rec->removed = true;
		return 0;
	}
	if (strcmp(kind, "node") != 0 || rec->weight < 0 ||
	    rec->weight > NODE_WEIGHT_MAX || rec->maxconn < 0 ||
	    rec->maxconn > NODE_MAXCONN_MAX)
		return -1;
	snprintf(rec->address, sizeof(rec->address), "%s", addr);
	if (node_admin_parse(admin, &rec->admin) < 0 ||
	    rec->admin == ADMIN_REMOVING) /* a removal is KIND removed */
		return -1;
	return node_until_parse(until, &rec->until);
}

/* Applies a peer's record to pool p through runtime.c (ORIGIN_PEER, so
 * shared_on_event does not write it back). Returns 0 when
 * done (or nothing to do), 1 to try again later, -1 when it never can. */
static int
shared_apply(struct shared *sh, struct pool *p, const char *name,
	     const struct shared_rec *rec, char *err, size_t errlen)
{
	struct lbd *l = sh->l;
	struct node *n = pool_node(p, name);
	const char *why = "peer balancer";

	if (rec->removed) {
		if (n == NULL || atomic_load(&n->admin) == ADMIN_REMOVING)
			return 0;
		return runtime_node_remove(l, ORIGIN_PEER, p, n, why, err,
					   errlen);
	}
	if (n != NULL && atomic_load(&n->admin) == ADMIN_REMOVING) {
		snprintf(err, errlen, "node \"%s\" still being removed", name);
		return 1;
	}
	if (n == NULL) {
		char spec[512];
		snprintf(spec, sizeof(spec), "%s %s weight=%ld maxconn=%ld",
			 name, rec->address, rec->weight, rec->maxconn);
		n = config_node_parse(spec, HEALTH_DOWN, err, errlen);
		if (n == NULL)
			return -1;
		n->from_config = false;
		if (runtime_node_add(l, ORIGIN_PEER, p, n, why, err, errlen) <
		    0)
			return -1;
		if ((n = pool_node(p, name)) == NULL)
			return -1;
	} else if (strcmp(n->addrstr, rec->address) != 0) {
		snprintf(err, errlen,
			 "address differs here: %.60s, there: %.60s",
			 n->addrstr, rec->address);
		return -1;
	}
	if (runtime_node_weight(l, ORIGIN_PEER, p, n, (int)rec->weight, why,
				err, errlen) < 0)
		return -1;
	return runtime_node_admin(l, ORIGIN_PEER, p, n, rec->admin, rec->until,
				  why, err, errlen);
}

/* One field/value pair of a load. Returns true when it changed what was
 * applied. */
static bool
shared_load_one(struct shared *sh, const redisReply *f, const redisReply *v)
{
	char pool[LBD_NAME_MAX], node[NODE_NAME_MAX], err[256];
	struct shared_rec rec;
	struct shared_entry *e;

	if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
	    sscanf(f->str, "%63s %63s", pool, node) != 2 ||
	    shared_rec_parse(v->str, &rec) < 0) {
		log_warn("shared state: bad entry \"%s\": \"%s\"",
			 f->type == REDIS_REPLY_STRING ? f->str : "?",
			 v->type == REDIS_REPLY_STRING ? v->str : "?");
		return false;
	}
	shared_version_seen(sh, rec.version);
	if ((e = shared_entry(sh, pool, node, true)) == NULL)
		return false;
	e->seen = true;
	if (e->pending || e->writing || rec.version <= e->version)
		return false;
	struct pool *p = config_pool(sh->l->cfg, pool);
	if (p == NULL) {
		log_warn("shared state: %s/%s: no pool \"%s\" here; skipped",
			 pool, node, pool);
		e->version = rec.version;
		return true;
	}
	int rc = shared_apply(sh, p, node, &rec, err, sizeof(err));
	if (rc > 0) {
		sh->retry = true;
		return false;
	}
	if (rc < 0)
		log_warn("shared state: %s/%s version %llu: %s; skipped", pool,
			 node, rec.version, err);
	e->version = rec.version;
	e->changed = rec.changed;
	return true;
}

static void shared_load(struct shared *sh);

static void
shared_load_done(struct redis *r, redisReply *reply, void *arg)
{
	struct shared *sh = arg;
	bool changed = false;

	(void)r;
	sh->loading = false;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
		if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
			log_warn("shared state: load: %s", reply->str);
		sh->retry = true;
		return;
	}
	for (struct shared_entry *e = sh->entries; e; e = e->next)
		e->seen = false;
	for (size_t i = 0; i + 1 < reply->elements; i += 2)
		if (shared_load_one(sh, reply->element[i],
				    reply->element[i + 1]))
			changed = true;
	/* what Redis lost (a restart without persistence), or what changed
	 * here while it was away */
	for (struct shared_entry *e = sh->entries; e; e = e->next) {
		if (!e->seen && e->version > 0 && !e->writing)
			e->pending = true;
		if (e->pending)
			shared_write(sh, e);
	}
	if (changed) /* the versions the state file keeps */
		event_changed(sh->l, ORIGIN_PEER, NULL, NULL);
	if (sh->again) {
		sh->again = false;
		shared_load(sh);
	}
}

static void
shared_load(struct shared *sh)
{
	char floor[32];

	if (sh->loading) {
		sh->again = true;
		return;
	}
	if (!redis_up(sh->r))
		return;
	/* pending local changes first: they answer before the load does */
	for (struct shared_entry *e = sh->entries; e; e = e->next)
		if (e->pending)
			shared_write(sh, e);
	snprintf(floor, sizeof(floor), "%llu", sh->max_version);
	if (redis_command(sh->r, shared_load_done, sh, "EVAL %s 2 %s %s %s",
			  shared_load_lua, SHARED_KEY, SHARED_VERSION_KEY,
			  floor) != 0) {
		sh->loading = true;
		sh->retry = false;
	}
}

static void
shared_on_up(struct redis *r, void *arg)
{
	(void)r;
	shared_load(arg);
}

static void
shared_on_message(const char *msg, size_t len, void *arg)
{
	struct shared *sh = arg;

	/* msg NULL: (re)subscribed, messages may have been missed. Every
	 * message loads: versions published by two balancers at once may
	 * arrive after the answer to our own write. */
	(void)msg;
	(void)len;
	shared_load(sh);
}

/* Health verdicts. */

static struct shared_seen *
shared_seen_get(struct shared *sh, const char *pool, const char *node,
		bool make)
{
	struct shared_seen *s;

	for (s = sh->seen; s; s = s->next)
		if (strcmp(s->pool, pool) == 0 && strcmp(s->node, node) == 0)
			return s;
	if (!make)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->sh = sh;
	snprintf(s->pool, sizeof(s->pool), "%s", pool);
	snprintf(s->node, sizeof(s->node), "%s", node);
	s->next = sh->seen;
	sh->seen = s;
	return s;
}

static void
shared_health_done(struct redis *r, redisReply *reply, void *arg)
{
	struct shared_seen *s = arg;
	char verdict[8];
	double at;

	(void)r;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
		return;
	s->n = 0;
	for (size_t i = 0; i + 1 < reply->elements && s->n < SHARED_MAX_SEEN;
	     i += 2) {
		const redisReply *f = reply->element[i];
		const redisReply *v = reply->element[i + 1];
		if (f->type != REDIS_REPLY_STRING ||
		    v->type != REDIS_REPLY_STRING || f->len >= LBD_NAME_MAX ||
		    strcmp(f->str, s->sh->l->cfg->set.name) == 0 ||
		    sscanf(v->str, "%7s %lf", verdict, &at) != 2)
			continue;
		snprintf(s->who[s->n], sizeof(s->who[s->n]), "%s", f->str);
		snprintf(s->verdict[s->n], sizeof(s->verdict[s->n]), "%s",
			 verdict);
		s->at[s->n] = at;
		s->n++;
	}
}

/* Publishes our verdict on every node and reads the others'. */
static void
shared_health(struct shared *sh)
{
	struct lbd *l = sh->l;
	char key[256], val[64], ttl[16];

	snprintf(ttl, sizeof(ttl), "%d", SHARED_HEALTH_TTL_MS);
	for (struct pool *p = l->cfg->pools; p; p = p->next)
		for (size_t i = 0; i < p->nnodes; i++) {
			struct node *n = p->nodes[i];
			struct shared_seen *s =
			    shared_seen_get(sh, p->name, n->name, true);
			if (s == NULL)
				return;
			snprintf(key, sizeof(key), SHARED_HEALTH_PREFIX "%s:%s",
				 p->name, n->name);
			snprintf(val, sizeof(val), "%s %.3f",
				 node_health_name(n), ev_now(l->loop));
			redis_command(sh->r, shared_health_done, s,
				      "EVAL %s 1 %s %s %s %s",
				      shared_health_lua, key, l->cfg->set.name,
				      val, ttl);
		}
}

static void
shared_tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct shared *sh = w->data;

	(void)loop;
	(void)revents;
	if (!redis_up(sh->r) || sh->l->cfg == NULL)
		return;
	if (sh->retry)
		shared_load(sh);
	shared_health(sh);
}

int
shared_seen_by_json(struct lbd *l, struct pool *p, struct node *n,
		    struct strbuf *sb)
{
	struct shared *sh = l->shared;
	struct shared_seen *s =
	    sh != NULL ? shared_seen_get(sh, p->name, n->name, false) : NULL;
	double now = ev_now(l->loop);

	if (sh == NULL || sh->r == NULL)
		return 0; /* no peer: nothing to show */
	if (strbuf_appends(sb, ", \"seen_by\": {") < 0 ||
	    strbuf_append_json(sb, l->cfg->set.name) < 0 ||
	    strbuf_appendf(sb, ": \"%s\"", node_health_name(n)) < 0)
		return -1;
	for (int i = 0; s != NULL && i < s->n; i++) {
		if (now - s->at[i] > SHARED_HEALTH_FRESH_S)
			continue;
		if (strbuf_appends(sb, ", ") < 0 ||
		    strbuf_append_json(sb, s->who[i]) < 0 ||
		    strbuf_appends(sb, ": ") < 0 ||
		    strbuf_append_json(sb, s->verdict[i]) < 0)
			return -1;
	}
	return strbuf_appends(sb, "}");
}

/* The state file's lines. */

int
shared_state_lines(struct lbd *l, struct strbuf *sb)
{
	if (l->shared == NULL)
		return 0;
	for (struct shared_entry *e = l->shared->entries; e; e = e->next)
		if (e->version > 0 &&
		    strbuf_appendf(sb, "shared %s %s %llu\n", e->pool, e->node,
				   e->version) < 0)
			return -1;
	return 0;
}

int
shared_state_line(struct lbd *l, const char *pool, const char *node,
		  const char *version)
{
	struct shared *sh = shared_get(l);
	unsigned long long v;

	if (decimal_ullong(version, ULLONG_MAX, &v) < 0)
		return -1;
	struct shared_entry *e = shared_entry(sh, pool, node, true);
	if (e == NULL)
		return -1;
	e->version = v;
	shared_version_seen(sh, v);
	return 0;
}

/* Life. */

static int
shared_opts(struct lbd *l, struct redis_opts *o)
{
	const struct lbd_settings *s = &l->cfg->set;

	memset(o, 0, sizeof(*o));
	if (s->redis[0] != '\0' && redis_opts_parse(s->redis, o) < 0) {
		log_err("redis = %s: not HOST:PORT", s->redis);
		return -1;
	}
	if (s->redis_sentinels[0] != '\0') {
		if (redis_sentinels_parse(s->redis_sentinels, o) < 0) {
			log_err("redis_sentinels = %s: not HOST:PORT,...",
				s->redis_sentinels);
			return -1;
		}
		snprintf(o->master, sizeof(o->master), "%s", s->redis_master);
		if (o->host[0] == '\0') /* asked before the first connect */
			snprintf(o->host, sizeof(o->host), "%s",
				 o->sentinels[0].host);
	}
	snprintf(o->password, sizeof(o->password), "%s", s->redis_password);
	return 0;
}

int
shared_start(struct lbd *l)
{
	struct redis_opts o;
	struct shared *sh;

	if (l->cfg->set.redis[0] == '\0' &&
	    l->cfg->set.redis_sentinels[0] == '\0')
		return 0;
	if (shared_opts(l, &o) < 0)
		return -1;
	sh = shared_get(l);
	sh->r = redis_new(l->loop, &o);
	explicit_bzero(&o, sizeof(o));
	if (sh->r == NULL) {
		log_err("%s: out of memory", __func__);
		return -1;
	}
	redis_on_up(sh->r, shared_on_up, sh);
	if (redis_subscribe(sh->r, SHARED_KEY, shared_on_message, sh) < 0) {
		log_err("%s: out of memory", __func__);
		return -1;
	}
	ev_timer_init(&sh->tick, shared_tick_cb, SHARED_TICK_S, SHARED_TICK_S);
	sh->tick.data = sh;
	ev_timer_start(l->loop, &sh->tick);
	log_info("shared state: through redis as balancer \"%s\"",
		 l->cfg->set.name);
	return 0;
}

void
shared_stop(struct lbd *l)
{
	struct shared *sh = l->shared;

	if (sh == NULL)
		return;
	if (sh->r != NULL) {
		ev_timer_stop(l->loop, &sh->tick);
		redis_free(sh->r);
	}
	while (sh->entries != NULL) {
		struct shared_entry *e = sh->entries;
		sh->entries = e->next;
		free(e);
	}
	while (sh->seen != NULL) {
		struct shared_seen *s = sh->seen;
		sh->seen = s->next;
		free(s);
	}
	free(sh);
	l->shared = NULL;
}
