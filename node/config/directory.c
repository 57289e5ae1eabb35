/* The node's copy of the shared config (node/schema.h), kept in sorted
 * arrays searched with bsearch, all keys lowercase.
 *
 * A load reads everything with pipelined async commands: SMEMBERS
 * ms:domains; per domain SMEMBERS of its users and aliases; per user
 * HGETALL (its password and quota), per alias SMEMBERS of its targets.
 * Commands wait in a to-do list and at most DIR_WINDOW are in flight, so
 * a directory of 100k users never puts a long queue in front of a
 * session's own commands (nor near their deadline). The new cache is
 * built on the side and swapped in only when every answer is in, so a
 * load cut short (Redis gone, a timeout, a bad reply) never replaces a
 * good cache: its requests in flight are cancelled and it is dropped.
 * Loads start on every message on SCHEMA_CHANNEL and every reconnect;
 * one that comes while another runs is remembered and started after it.
 *
 * A load first GETs SCHEMA_GEN: below the generation this node holds, the
 * load stops there and the node is "behind" (Redis is, really) until a
 * check finds a generation as high; otherwise the rest is read, and once
 * swapped in, written to the snapshot and published under SCHEMA_NODES
 * (so `mailctl import` can go above every node). The snapshot is written
 * on the loop, once per completed load: loads come with changes. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/decimal.h"
#include "../../common/log.h"
#include "config.h"
#include "confjson.h"
#include "directory.h"
#include "schema.h"

#define DIR_ALIAS_DEPTH 8
#define DIR_RETRY_S 1.0	 /* after a failed load while Redis is up */
#define DIR_BEHIND_S 1.0 /* between checks while Redis is behind */
#define DIR_WINDOW 256	 /* load commands in flight at most */

struct dir_user {
	char *addr;
	char *hash; /* NULL: no password set (receives mail, cannot log in) */
	uint64_t quota; /* bytes; 0: none */
};

struct dir_alias {
	char *addr;
	char **targets;
	size_t ntargets;
};

struct dir_cache {
	char **domains;
	size_t ndomains;
	struct dir_user *users;
	size_t nusers;
	struct dir_alias *aliases;
	size_t naliases;
	struct node_setting *settings; /* sorted by key */
	size_t nsettings;
};

/* One answer awaited by a load: where it goes. Slots live in chunks that
 * never move, so a request's arg stays valid. addr is the member as Redis
 * holds it (the key of its hash or set) until the cache is built. */
struct dir_slot {
	struct dir_load *load;
	char *addr;
	char *hash;
	uint64_t quota;
	char **targets;
	size_t ntargets;
};

struct dir_chunk {
	struct dir_chunk *next;
	bool alias;
	size_t n;
	struct dir_slot slot[];
};

/* A command not sent yet: cmd prefix+name [field]. name points into the
 * load (a slot's addr or a domain), stable until the load ends. */
struct dir_todo {
	redis_cb cb;
	void *arg;
	const char *cmd, *prefix, *name, *field;
};

struct dir_load {
	struct directory *d;
	uint64_t gen;	/* SCHEMA_GEN when the load began */
	bool verifying; /* SCHEMA_GEN asked again, after every other answer */
	bool verified;	/* and it was not below gen */
	char **domains; /* as Redis holds them, lowercased when built */
	size_t ndomains;
	struct node_setting *settings; /* SCHEMA_SETTINGS */
	size_t nsettings;
	struct dir_chunk *chunks;
	struct dir_todo *todo; /* [todo_head, ntodo) still to send */
	size_t todo_head, ntodo, captodo;
	size_t inflight;
	size_t pending;		  /* queued + in flight */
	uint64_t ids[DIR_WINDOW]; /* the last ids sent: all in flight */
	size_t nsent;
};

struct directory {
	struct redis *r;
	struct dir_cache *cache;
	struct dir_load *load;
	bool again;	  /* a change came while load was running */
	bool load_failed; /* the last load did not complete */
	bool behind;	  /* Redis's generation is below gen */
	bool checked;	  /* Redis's generation was read since it came up */
	uint64_t gen;	  /* the highest generation loaded */
	uint64_t settings_version; /* raised when the settings change */
	char *node;		   /* for SCHEMA_NODES */
	char *snapshot;		   /* path, or NULL */
	ev_timer retry;
	void (*on_load)(struct directory *d, void *arg);
	void *on_load_arg;
};

/* Copies s lowercased into out (outlen bytes). Returns 0, or -1 when it
 * does not fit. */
static int
dir_lower(const char *s, size_t len, char *out, size_t outlen)
{
	if (len >= outlen)
		return -1;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)s[i]);
	out[len] = '\0';
	return 0;
}

static char *
dir_strdup_lower(const char *s, size_t len)
{
	char *p = malloc(len + 1);
	if (p && dir_lower(s, len, p, len + 1) < 0) {
		free(p);
		p = NULL;
	}
	return p;
}

static void
dir_lower_inplace(char *s)
{
	for (; *s; s++)
		*s = (char)tolower((unsigned char)*s);
}

static int
dir_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
dir_settings_free(struct node_setting *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

static int
dir_cmp_setting(const void *a, const void *b)
{
	return strcmp(((const struct node_setting *)a)->key,
		      ((const struct node_setting *)b)->key);
}

/* True when a and b hold the same settings (both sorted). */
static bool
dir_settings_equal(const struct dir_cache *a, const struct dir_cache *b)
{
	size_t na = a ? a->nsettings : 0, nb = b ? b->nsettings : 0;
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a->settings[i].key, b->settings[i].key) != 0 ||
		    strcmp(a->settings[i].value, b->settings[i].value) != 0)
			return false;
	return true;
}

static void
dir_cache_free(struct dir_cache *c)
{
	if (c == NULL)
		return;
	dir_settings_free(c->settings, c->nsettings);
	for (size_t i = 0; i < c->ndomains; i++)
		free(c->domains[i]);
	for (size_t i = 0; i < c->nusers; i++) {
		free(c->users[i].addr);
		free(c->users[i].hash);
	}
	for (size_t i = 0; i < c->naliases; i++) {
		for (size_t k = 0; k < c->aliases[i].ntargets; k++)
			free(c->aliases[i].targets[k]);
		free(c->aliases[i].targets);
		free(c->aliases[i].addr);
	}
	free(c->domains);
	free(c->users);
	free(c->aliases);
	free(c);
}

static void
dir_slot_clear(struct dir_slot *s)
{
	free(s->addr);
	free(s->hash);
	for (size_t k = 0; k < s->ntargets; k++)
		free(s->targets[k]);
	free(s->targets);
}

static void
dir_load_free(struct dir_load *l)
{
	struct dir_chunk *ch, *next;

	for (ch = l->chunks; ch; ch = next) {
		next = ch->next;
		for (size_t i = 0; i < ch->n; i++)
			dir_slot_clear(&ch->slot[i]);
		free(ch);
	}
	for (size_t i = 0; i < l->ndomains; i++)
		free(l->domains[i]);
	free(l->domains);
	dir_settings_free(l->settings, l->nsettings);
	free(l->todo);
	free(l);
}

static void dir_load_start(struct directory *d);
static void dir_domains_cb(struct redis *r, redisReply *reply, void *arg);
static void dir_gen_cb(struct redis *r, redisReply *reply, void *arg);
static void dir_load_finish(struct dir_load *l);
static void dir_settings_cb(struct redis *r, redisReply *reply, void *arg);

/* Cancels what l has in flight: the last ids it sent (ids come back in
 * the order they went, and at most DIR_WINDOW are out). */
static void
dir_load_cancel(struct dir_load *l)
{
	size_t n = l->nsent < DIR_WINDOW ? l->nsent : DIR_WINDOW;

	for (size_t i = 0; i < n; i++)
		redis_cancel(l->d->r, l->ids[i]);
}

/* Drops a load that cannot complete: its other requests are cancelled, the
 * current cache stays. */
static void
dir_load_abort(struct dir_load *l, const char *why)
{
	struct directory *d = l->d;

	dir_load_cancel(l);
	d->load = NULL;
	d->load_failed = true;
	d->again = false; /* the retry or the reconnect loads it all */
	dir_load_free(l);
	if (redis_up(d->r)) {
		log_warn("directory: load failed (%s); retrying in %.0f s", why,
			 DIR_RETRY_S);
		ev_timer_set(&d->retry, DIR_RETRY_S, 0.);
		ev_timer_start(redis_loop(d->r), &d->retry);
	} else {
		log_warn("directory: load failed (%s); serving from the cache "
			 "until Redis is back",
			 why);
	}
}

/* Queues cmd on the key prefix + name for load l. Returns 0, or -1 when
 * out of memory (l is then aborted). */
static int
dir_queue(struct dir_load *l, redis_cb cb, void *arg, const char *cmd,
	  const char *prefix, const char *name, const char *field)
{
	if (l->ntodo == l->captodo) {
		if (l->todo_head > 0) {
			memmove(l->todo, l->todo + l->todo_head,
				(l->ntodo - l->todo_head) * sizeof(*l->todo));
			l->ntodo -= l->todo_head;
			l->todo_head = 0;
		}
		if (l->ntodo == l->captodo) {
			size_t cap = l->captodo ? l->captodo * 2 : 256;
			struct dir_todo *t = realloc(l->todo, cap * sizeof(*t));
			if (t == NULL) {
				dir_load_abort(l, "out of memory");
				return -1;
			}
			l->todo = t;
			l->captodo = cap;
		}
	}
	l->todo[l->ntodo++] =
	    (struct dir_todo){cb, arg, cmd, prefix, name, field};
	l->pending++;
	return 0;
}

/* Sends one queued command. Returns 0, 1 when it was skipped (a member
 * too long to be ours: its slot stays empty), or -1 (l is then
 * aborted). */
static int
dir_send(struct dir_load *l, const struct dir_todo *t)
{
	char key[DIR_ADDR_MAX + 32];
	size_t plen = strlen(t->prefix), nlen = strlen(t->name);
	const char *argv[3] = {t->cmd, key, t->field};
	size_t argvlen[3] = {strlen(t->cmd), plen + nlen,
			     t->field ? strlen(t->field) : 0};
	uint64_t id;

	if (plen + nlen >= sizeof(key)) {
		log_warn("directory: key too long, skipped: %s%.64s...",
			 t->prefix, t->name);
		return 1;
	}
	memcpy(key, t->prefix, plen);
	memcpy(key + plen, t->name, nlen);
	id = redis_commandargv(l->d->r, t->cb, t->arg, t->field ? 3 : 2, argv,
			       argvlen);
	if (id == 0) {
		dir_load_abort(l, "cannot send a command");
		return -1;
	}
	l->ids[l->nsent++ % DIR_WINDOW] = id;
	l->inflight++;
	return 0;
}

/* Sends queued commands while the window has room, and finishes l when
 * nothing is left. */
static void
dir_pump(struct dir_load *l)
{
	while (l->inflight < DIR_WINDOW && l->todo_head < l->ntodo) {
		struct dir_todo t = l->todo[l->todo_head++];
		int rc = dir_send(l, &t);
		if (rc < 0)
			return; /* aborted */
		if (rc > 0)
			l->pending--; /* skipped */
	}
	if (l->pending > 0)
		return;
	if (l->verified) {
		dir_load_finish(l);
		return;
	}
	l->verifying = true;
	if (dir_queue(l, dir_gen_cb, l, "GET", SCHEMA_GEN, "", NULL) == 0)
		dir_pump(l);
}

/* One answer of l has been taken in, and what it calls for queued. */
static void
dir_load_step(struct dir_load *l)
{
	l->inflight--;
	l->pending--;
	dir_pump(l);
}

/* Checks an answer that must be an array of strings; aborts l if not. */
static bool
dir_reply_ok(struct dir_load *l, redisReply *reply)
{
	if (reply == NULL) {
		dir_load_abort(l, "Redis went away");
		return false;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		dir_load_abort(l, reply->str);
		return false;
	}
	if (reply->type != REDIS_REPLY_ARRAY) {
		dir_load_abort(l, "unexpected reply type");
		return false;
	}
	for (size_t i = 0; i < reply->elements; i++)
		if (reply->element[i]->type != REDIS_REPLY_STRING) {
			dir_load_abort(l, "unexpected element type");
			return false;
		}
	return true;
}

static int
dir_cmp_user(const void *a, const void *b)
{
	return strcmp(((const struct dir_user *)a)->addr,
		      ((const struct dir_user *)b)->addr);
}

static int
dir_cmp_alias(const void *a, const void *b)
{
	return strcmp(((const struct dir_alias *)a)->addr,
		      ((const struct dir_alias *)b)->addr);
}

/* qsort of n elements; an empty array may be NULL, which qsort may not
 * be given even for 0 (a snapshot without aliases, say). */
static void
dir_sort(void *base, size_t n, size_t size,
	 int (*cmp)(const void *, const void *))
{
	if (n > 0)
		qsort(base, n, size, cmp);
}

/* Sorts c's arrays for bsearch. */
static void
dir_cache_sort(struct dir_cache *c)
{
	dir_sort(c->domains, c->ndomains, sizeof(*c->domains), dir_strcmp);
	dir_sort(c->users, c->nusers, sizeof(*c->users), dir_cmp_user);
	dir_sort(c->aliases, c->naliases, sizeof(*c->aliases), dir_cmp_alias);
	dir_sort(c->settings, c->nsettings, sizeof(*c->settings),
		 dir_cmp_setting);
	for (size_t i = 0; i < c->naliases; i++) /* as mailctl export lists */
		dir_sort(c->aliases[i].targets, c->aliases[i].ntargets,
			 sizeof(char *), dir_strcmp);
}

/* Moves what l gathered into a new cache (l keeps nothing). */
static struct dir_cache *
dir_load_build(struct dir_load *l)
{
	struct dir_cache *c = calloc(1, sizeof(*c));
	size_t nu = 0, na = 0;

	if (c == NULL)
		return NULL;
	for (struct dir_chunk *ch = l->chunks; ch; ch = ch->next)
		*(ch->alias ? &na : &nu) += ch->n;
	c->users = calloc(nu ? nu : 1, sizeof(*c->users));
	c->aliases = calloc(na ? na : 1, sizeof(*c->aliases));
	if (c->users == NULL || c->aliases == NULL) {
		dir_cache_free(c);
		return NULL;
	}
	for (struct dir_chunk *ch = l->chunks; ch; ch = ch->next) {
		for (size_t i = 0; i < ch->n; i++) {
			struct dir_slot *s = &ch->slot[i];
			dir_lower_inplace(s->addr);
			if (ch->alias)
				c->aliases[c->naliases++] = (struct dir_alias){
				    s->addr, s->targets, s->ntargets};
			else
				c->users[c->nusers++] = (struct dir_user){
				    s->addr, s->hash, s->quota};
			memset(s, 0, sizeof(*s));
		}
	}
	c->domains = l->domains;
	c->ndomains = l->ndomains;
	l->domains = NULL;
	l->ndomains = 0;
	c->settings = l->settings;
	c->nsettings = l->nsettings;
	l->settings = NULL;
	l->nsettings = 0;
	for (size_t i = 0; i < c->ndomains; i++)
		dir_lower_inplace(c->domains[i]);
	dir_cache_sort(c);
	return c;
}

/* Tells mailctl which generation this node holds (SCHEMA_NODES), so an
 * import goes above it. Best effort: a replica refuses writes. */
static void
dir_publish_gen(struct directory *d)
{
	if (d->node == NULL || !redis_up(d->r))
		return;
	redis_command(d->r, NULL, NULL, "HSET %s %s %" PRIu64, SCHEMA_NODES,
		      d->node, d->gen);
}

/* Writes the cache to the snapshot, in confjson's format. */
static void
dir_snapshot_save(struct directory *d)
{
	const struct dir_cache *c = d->cache;
	struct confjson_writer w;
	ev_tstamp t0 = ev_time();
	int rc = 0;

	if (d->snapshot == NULL)
		return;
	confjson_writer_init(&w, d->gen);
	for (size_t i = 0; rc == 0 && i < c->ndomains; i++)
		rc = confjson_write_domain(&w, c->domains[i]);
	for (size_t i = 0; rc == 0 && i < c->nusers; i++)
		rc = confjson_write_user(&w, c->users[i].addr, c->users[i].hash,
					 c->users[i].quota);
	for (size_t i = 0; rc == 0 && i < c->naliases; i++)
		rc = confjson_write_alias(
		    &w, c->aliases[i].addr,
		    (const char *const *)c->aliases[i].targets,
		    c->aliases[i].ntargets);
	for (size_t i = 0; rc == 0 && i < c->nsettings; i++)
		rc = confjson_write_setting(&w, c->settings[i].key,
					    c->settings[i].value);
	if (rc < 0)
		errno = ENOMEM;
	if (rc < 0 || confjson_writer_save(&w, d->snapshot) < 0)
		log_warn("directory: snapshot %s: %s", d->snapshot,
			 strerror(errno));
	else
		log_debug("directory: snapshot %s: %zu bytes in %.0f ms",
			  d->snapshot, w.sb.len, (ev_time() - t0) * 1e3);
	confjson_writer_free(&w);
}

/* Redis answered SCHEMA_GEN with gen, below what this node loaded: the
 * load stops, the cache stays, and a check comes back every DIR_BEHIND_S,
 * each publishing this node's generation again (Redis lost that too).
 * Said once per episode. */
static void
dir_load_behind(struct dir_load *l, const char *why)
{
	struct directory *d = l->d;

	d->load = NULL;
	d->again = false; /* the next check loads it all */
	dir_load_free(l);
	dir_publish_gen(d); /* each check: an import may be on its way */
	if (!d->behind) {
		log_warn("directory: Redis has %s (Redis restarted without "
			 "its data, flushed, or a failover to a replica that "
			 "was behind): serving from the cache until Redis has "
			 "it again (mailctl import of the last export, or of "
			 "a node's %s)",
			 why, DIR_SNAPSHOT_NAME);
		d->behind = true;
	}
	ev_timer_set(&d->retry, DIR_BEHIND_S, 0.);
	ev_timer_start(redis_loop(d->r), &d->retry);
}

/* SCHEMA_GEN, read first and again once every other answer is in. Below
 * the node's generation at first, or below the load's at the end (Redis
 * lost the config while it was read: a FLUSHALL, a restart between two
 * answers), the load is dropped and the node is behind; otherwise the
 * load goes on, or is swapped in. */
static void
dir_gen_cb(struct redis *r, redisReply *reply, void *arg)
{
	struct dir_load *l = arg;
	uint64_t gen = 0, floor;
	char *end;

	(void)r;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		dir_load_abort(l, reply ? reply->str : "Redis went away");
		return;
	}
	if (reply->type == REDIS_REPLY_STRING) {
		errno = 0;
		gen = strtoull(reply->str, &end, 10);
		if (errno || end == reply->str || *end != '\0') {
			dir_load_abort(l, "the generation is not a number");
			return;
		}
	} else if (reply->type != REDIS_REPLY_NIL) {
		dir_load_abort(l, "unexpected reply type");
		return;
	}
	floor = l->verifying ? l->gen : l->d->gen;
	if (gen < floor) {
		char why[128], have[32] = "none";
		if (reply->type != REDIS_REPLY_NIL)
			snprintf(have, sizeof(have), "%" PRIu64, gen);
		snprintf(why, sizeof(why),
			 "config generation %s, below the %" PRIu64 " %s", have,
			 floor,
			 l->verifying ? "the load began at"
				      : "this node loaded");
		dir_load_behind(l, why);
		return;
	}
	if (l->verifying) {
		l->verified = true;
		dir_load_step(l);
		return;
	}
	l->gen = gen;
	l->d->checked = true;
	if (dir_queue(l, dir_settings_cb, l, "HGETALL", SCHEMA_SETTINGS, "",
		      NULL) == 0 &&
	    dir_queue(l, dir_domains_cb, l, "SMEMBERS", SCHEMA_DOMAINS, "",
		      NULL) == 0)
		dir_load_step(l);
}

/* Every answer of l is in: swap the new cache in. */
static void
dir_load_finish(struct dir_load *l)
{
	struct directory *d = l->d;
	struct dir_cache *c;

	uint64_t gen = l->gen;

	c = dir_load_build(l);
	d->load = NULL;
	dir_load_free(l);
	if (c == NULL) {
		log_err("directory: out of memory building the cache");
		d->load_failed = true;
		return;
	}
	if (!dir_settings_equal(d->cache, c))
		d->settings_version++;
	dir_cache_free(d->cache);
	d->cache = c;
	d->load_failed = false;
	if (d->behind)
		log_info("directory: Redis is at generation %" PRIu64
			 " again; leaving the stale state",
			 gen);
	d->behind = false;
	d->gen = gen;
	log_info("directory: loaded %zu domains, %zu users, %zu aliases "
		 "(generation %" PRIu64 ")",
		 c->ndomains, c->nusers, c->naliases, gen);
	dir_snapshot_save(d);
	dir_publish_gen(d);
	if (d->again) {
		d->again = false;
		dir_load_start(d);
	}
	if (d->on_load)
		d->on_load(d, d->on_load_arg);
}

void
directory_on_load(struct directory *d,
		  void (*cb)(struct directory *d, void *arg), void *arg)
{
	d->on_load = cb;
	d->on_load_arg = arg;
}

/* A user's hash, HGETALL: field, value, ... ("password", "quota"; other
 * fields are left alone). A quota that is not a whole number of bytes is
 * said and taken as none: mail is never refused for a field mailctl
 * would not write. */
static void
dir_hash_cb(struct redis *r, redisReply *reply, void *arg)
{
	struct dir_slot *s = arg;
	struct dir_load *l = s->load;

	(void)r;
	if (!dir_reply_ok(l, reply))
		return;
	for (size_t i = 0; i + 1 < reply->elements; i += 2) {
		const redisReply *k = reply->element[i];
		const redisReply *v = reply->element[i + 1];
		if (strcmp(k->str, "password") == 0 && s->hash == NULL) {
			s->hash = strndup(v->str, v->len);
			if (s->hash == NULL) {
				dir_load_abort(l, "out of memory");
				return;
			}
		} else if (strcmp(k->str, "quota") == 0) {
			unsigned long long q;
			if (decimal_ullong(v->str, UINT64_MAX, &q) == 0)
				s->quota = q;
			else
				log_warn("directory: %s: quota \"%.32s\" is "
					 "not a number of bytes, ignored",
					 s->addr, v->str);
		}
	}
	dir_load_step(l);
}

static void
dir_targets_cb(struct redis *r, redisReply *reply, void *arg)
{
	struct dir_slot *s = arg;
	struct dir_load *l = s->load;

	(void)r;
	if (!dir_reply_ok(l, reply))
		return;
	s->targets =
	    calloc(reply->elements ? reply->elements : 1, sizeof(*s->targets));
	if (s->targets == NULL) {
		dir_load_abort(l, "out of memory");
		return;
	}
	for (size_t i = 0; i < reply->elements; i++) {
		redisReply *e = reply->element[i];
		char *t = dir_strdup_lower(e->str, e->len);
		if (t == NULL) {
			dir_load_abort(l, "out of memory");
			return;
		}
		s->targets[s->ntargets++] = t;
	}
	dir_load_step(l);
}

/* The members of ms:users:D or ms:aliases:D: one slot each, and for each
 * the HGETALL of its hash or the SMEMBERS of its targets. */
static void
dir_members(struct dir_load *l, redisReply *reply, bool alias)
{
	struct dir_chunk *ch;
	size_t n = reply->elements;

	ch = calloc(1, sizeof(*ch) + n * sizeof(ch->slot[0]));
	if (ch == NULL) {
		dir_load_abort(l, "out of memory");
		return;
	}
	ch->alias = alias;
	ch->next = l->chunks;
	l->chunks = ch;
	for (size_t i = 0; i < n; i++) {
		redisReply *e = reply->element[i];
		struct dir_slot *s = &ch->slot[ch->n];
		s->load = l;
		s->addr = strndup(e->str, e->len);
		if (s->addr == NULL) {
			dir_load_abort(l, "out of memory");
			return;
		}
		ch->n++;
		if (alias ? dir_queue(l, dir_targets_cb, s, "SMEMBERS",
				      SCHEMA_ALIAS_PREFIX, s->addr, NULL)
			  : dir_queue(l, dir_hash_cb, s, "HGETALL",
				      SCHEMA_USER_PREFIX, s->addr, NULL))
			return; /* aborted */
	}
	dir_load_step(l);
}

static void
dir_users_cb(struct redis *r, redisReply *reply, void *arg)
{
	(void)r;
	if (dir_reply_ok(arg, reply))
		dir_members(arg, reply, false);
}

static void
dir_aliases_cb(struct redis *r, redisReply *reply, void *arg)
{
	(void)r;
	if (dir_reply_ok(arg, reply))
		dir_members(arg, reply, true);
}

/* HGETALL SCHEMA_SETTINGS: KEY VALUE pairs, at most NODE_SETTINGS_MAX
 * (mailctl keeps to it; more are said and left out). */
static void
dir_settings_cb(struct redis *r, redisReply *reply, void *arg)
{
	struct dir_load *l = arg;
	size_t n;

	(void)r;
	if (!dir_reply_ok(l, reply))
		return;
	n = reply->elements / 2;
	if (n > NODE_SETTINGS_MAX) {
		log_warn("directory: %zu cluster settings, only the first %d "
			 "taken",
			 n, NODE_SETTINGS_MAX);
		n = NODE_SETTINGS_MAX;
	}
	l->settings = calloc(n ? n : 1, sizeof(*l->settings));
	if (l->settings == NULL) {
		dir_load_abort(l, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		redisReply *k = reply->element[2 * i],
			   *v = reply->element[2 * i + 1];
		struct node_setting *s = &l->settings[l->nsettings];
		s->key = strndup(k->str, k->len);
		s->value = strndup(v->str, v->len);
		l->nsettings++;
		if (s->key == NULL || s->value == NULL) {
			dir_load_abort(l, "out of memory");
			return;
		}
	}
	dir_load_step(l);
}

static void
dir_domains_cb(struct redis *r, redisReply *reply, void *arg)
{
	struct dir_load *l = arg;
	size_t n;

	(void)r;
	if (!dir_reply_ok(l, reply))
		return;
	n = reply->elements;
	/* Generation 0 is a config from before generations (never changed
	 * since: every change raises it); with no domain at all while this
	 * node holds some, it is that config lost. */
	if (l->gen == 0 && n == 0 && l->d->cache && l->d->cache->ndomains) {
		char why[128];
		snprintf(why, sizeof(why),
			 "no config generation and no domain, while this node "
			 "has %zu",
			 l->d->cache->ndomains);
		dir_load_behind(l, why);
		return;
	}
	l->domains = calloc(n ? n : 1, sizeof(*l->domains));
	if (l->domains == NULL) {
		dir_load_abort(l, "out of memory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		redisReply *e = reply->element[i];
		char *dom = strndup(e->str, e->len);
		if (dom == NULL) {
			dir_load_abort(l, "out of memory");
			return;
		}
		l->domains[l->ndomains++] = dom;
		if (dir_queue(l, dir_users_cb, l, "SMEMBERS",
			      SCHEMA_USERS_PREFIX, dom, NULL) ||
		    dir_queue(l, dir_aliases_cb, l, "SMEMBERS",
			      SCHEMA_ALIASES_PREFIX, dom, NULL))
			return; /* aborted */
	}
	dir_load_step(l);
}

/* Starts a full load, or remembers to run one after the current one. */
static void
dir_load_start(struct directory *d)
{
	struct dir_load *l;

	if (d->load) {
		d->again = true;
		return;
	}
	if (!redis_up(d->r))
		return; /* the reconnect hook loads */
	ev_timer_stop(redis_loop(d->r), &d->retry);
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		log_err("directory: out of memory");
		return;
	}
	l->d = d;
	d->load = l;
	if (dir_queue(l, dir_gen_cb, l, "GET", SCHEMA_GEN, "", NULL) == 0)
		dir_pump(l);
}

static void
dir_on_up(struct redis *r, void *arg)
{
	struct directory *d = arg;

	(void)r;
	d->checked = false; /* it may have come back empty */
	dir_load_start(d);
}

static void
dir_on_message(const char *msg, size_t len, void *arg)
{
	struct directory *d = arg;

	if (msg)
		log_debug("directory: config version %.*s", (int)len, msg);
	dir_load_start(d);
}

static void
dir_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	dir_load_start(t->data);
}

/* Growing arrays while a snapshot is read; sorted at the end. */
struct dir_reader {
	struct dir_cache *c;
	size_t capd, capu, capa, caps;
};

static int
dir_grow(void *pp, size_t *cap, size_t n, size_t size)
{
	void *p;

	if (n < *cap)
		return 0;
	*cap = *cap ? *cap * 2 : 64;
	p = realloc(*(void **)pp, *cap * size);
	if (p == NULL)
		return -1;
	*(void **)pp = p;
	return 0;
}

static int
dir_read_domain(void *arg, const char *domain)
{
	struct dir_reader *rd = arg;
	struct dir_cache *c = rd->c;
	char *dom;

	if (dir_grow(&c->domains, &rd->capd, c->ndomains, sizeof(char *)) < 0 ||
	    (dom = dir_strdup_lower(domain, strlen(domain))) == NULL)
		return -1;
	c->domains[c->ndomains++] = dom;
	return 0;
}

static int
dir_read_user(void *arg, const char *address, const char *hash, uint64_t quota)
{
	struct dir_reader *rd = arg;
	struct dir_cache *c = rd->c;
	struct dir_user u = {NULL, NULL, quota};

	if (dir_grow(&c->users, &rd->capu, c->nusers, sizeof(u)) < 0 ||
	    (u.addr = dir_strdup_lower(address, strlen(address))) == NULL)
		return -1;
	if (hash && (u.hash = strdup(hash)) == NULL) {
		free(u.addr);
		return -1;
	}
	c->users[c->nusers++] = u;
	return 0;
}

static int
dir_read_alias(void *arg, const char *address, const char *const *targets,
	       size_t ntargets)
{
	struct dir_reader *rd = arg;
	struct dir_cache *c = rd->c;
	struct dir_alias a = {NULL, NULL, 0};

	if (dir_grow(&c->aliases, &rd->capa, c->naliases, sizeof(a)) < 0 ||
	    (a.targets = calloc(ntargets, sizeof(*a.targets))) == NULL)
		return -1;
	c->aliases[c->naliases++] = a; /* freed with c from here */
	struct dir_alias *p = &c->aliases[c->naliases - 1];
	if ((p->addr = dir_strdup_lower(address, strlen(address))) == NULL)
		return -1;
	for (size_t i = 0; i < ntargets; i++) {
		p->targets[i] =
		    dir_strdup_lower(targets[i], strlen(targets[i]));
		if (p->targets[i] == NULL)
			return -1;
		p->ntargets++;
	}
	return 0;
}

static int
dir_read_setting(void *arg, const char *key, const char *value)
{
	struct dir_reader *rd = arg;
	struct dir_cache *c = rd->c;
	struct node_setting s = {NULL, NULL};

	if (c->nsettings == NODE_SETTINGS_MAX)
		return 0; /* as a load takes them */
	if (dir_grow(&c->settings, &rd->caps, c->nsettings, sizeof(s)) < 0 ||
	    (s.key = strdup(key)) == NULL)
		return -1;
	if ((s.value = strdup(value)) == NULL) {
		free(s.key);
		return -1;
	}
	c->settings[c->nsettings++] = s;
	return 0;
}

/* Loads the snapshot into the cache, if there is one. A missing one is a
 * first start; a broken one is said and left alone (Redis loads). */
static void
dir_snapshot_load(struct directory *d)
{
	static const struct confjson_visitor v = {
	    dir_read_domain, dir_read_user, dir_read_alias, dir_read_setting};
	struct dir_reader rd = {NULL, 0, 0, 0, 0};
	struct confjson *doc;
	char err[512];

	if (access(d->snapshot, F_OK) < 0 && errno == ENOENT)
		return;
	doc = confjson_load(d->snapshot, err, sizeof(err));
	if (doc == NULL) {
		log_warn("directory: snapshot not used: %s", err);
		return;
	}
	rd.c = calloc(1, sizeof(*rd.c));
	if (rd.c == NULL || confjson_walk(doc, &v, &rd) != 0) {
		log_warn("directory: snapshot %s: out of memory", d->snapshot);
		dir_cache_free(rd.c);
		confjson_free(doc);
		return;
	}
	dir_cache_sort(rd.c);
	d->cache = rd.c;
	if (d->cache->nsettings)
		d->settings_version++;
	d->gen = confjson_generation(doc);
	confjson_free(doc);
	/* Not "loaded": that says Redis was read (tests wait on it). */
	log_info("directory: from the snapshot: %zu domains, %zu users, %zu "
		 "aliases (generation %" PRIu64 ") in %s",
		 d->cache->ndomains, d->cache->nusers, d->cache->naliases,
		 d->gen, d->snapshot);
}

struct directory *
directory_new(struct redis *r, const struct directory_opts *opts)
{
	struct directory *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->r = r;
	if (opts->node && (d->node = strdup(opts->node)) == NULL)
		goto fail;
	if (opts->spool) {
		size_t n = strlen(opts->spool) + sizeof(DIR_SNAPSHOT_NAME) + 1;
		if ((d->snapshot = malloc(n)) == NULL)
			goto fail;
		snprintf(d->snapshot, n, "%s/%s", opts->spool,
			 DIR_SNAPSHOT_NAME);
		dir_snapshot_load(d);
	}
	ev_init(&d->retry, dir_retry_cb);
	d->retry.data = d;
	redis_on_up(r, dir_on_up, d);
	if (redis_subscribe(r, SCHEMA_CHANNEL, dir_on_message, d) < 0) {
		redis_forget(r, d);
		goto fail;
	}
	dir_load_start(d);
	return d;
fail:
	dir_cache_free(d->cache);
	free(d->snapshot);
	free(d->node);
	free(d);
	return NULL;
}

void
directory_free(struct directory *d)
{
	if (d == NULL)
		return;
	ev_timer_stop(redis_loop(d->r), &d->retry);
	redis_forget(d->r, d);
	if (d->load) {
		dir_load_cancel(d->load);
		dir_load_free(d->load);
	}
	dir_cache_free(d->cache);
	free(d->snapshot);
	free(d->node);
	free(d);
}

bool
directory_loaded(const struct directory *d)
{
	return d->cache != NULL;
}

bool
directory_stale(const struct directory *d)
{
	return d->cache == NULL || d->load_failed || d->behind || !d->checked ||
	       !redis_up(d->r);
}

uint64_t
directory_generation(const struct directory *d)
{
	return d->gen;
}

const struct node_setting *
directory_settings(const struct directory *d, size_t *n)
{
	*n = d->cache ? d->cache->nsettings : 0;
	return d->cache ? d->cache->settings : NULL;
}

uint64_t
directory_settings_version(const struct directory *d)
{
	return d->settings_version;
}

static bool
dir_has_domain(const struct dir_cache *c, const char *domain)
{
	if (c == NULL)
		return false;
	return bsearch(&domain, c->domains, c->ndomains, sizeof(*c->domains),
		       dir_strcmp) != NULL;
}

static const struct dir_user *
dir_find_user(const struct dir_cache *c, const char *addr)
{
	struct dir_user key = {(char *)addr, NULL, 0};

	if (c == NULL)
		return NULL;
	return bsearch(&key, c->users, c->nusers, sizeof(*c->users),
		       dir_cmp_user);
}

static const struct dir_alias *
dir_find_alias(const struct dir_cache *c, const char *addr)
{
	struct dir_alias key = {(char *)addr, NULL, 0};

	if (c == NULL)
		return NULL;
	return bsearch(&key, c->aliases, c->naliases, sizeof(*c->aliases),
		       dir_cmp_alias);
}

bool
directory_domain_local(const struct directory *d, const char *domain)
{
	char buf[DIR_ADDR_MAX];

	if (dir_lower(domain, strlen(domain), buf, sizeof(buf)) < 0)
		return false;
	return dir_has_domain(d->cache, buf);
}

/* Adds the mailboxes addr (lowercase) delivers to. */
/* Adds addr to out[0..*n) unless it is there or out is full. */
static void
dir_add_once(char (*out)[DIR_ADDR_MAX], size_t max, size_t *n, const char *addr)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp(out[i], addr) == 0)
			return;
	if (*n < max && strlen(addr) < DIR_ADDR_MAX)
		strcpy(out[(*n)++], addr);
}

static void
dir_expand(const struct dir_cache *c, const char *addr, int depth,
	   char (*out)[DIR_ADDR_MAX], size_t max, size_t *n)
{
	const struct dir_alias *a;

	if (dir_find_user(c, addr)) {
		dir_add_once(out, max, n, addr);
		return;
	}
	if (depth >= DIR_ALIAS_DEPTH || (a = dir_find_alias(c, addr)) == NULL)
		return;
	for (size_t i = 0; i < a->ntargets && *n < max; i++)
		dir_expand(c, a->targets[i], depth + 1, out, max, n);
}

enum dir_result
directory_resolve(const struct directory *d, const char *address,
		  char (*out)[DIR_ADDR_MAX], size_t max, size_t *n)
{
	char buf[DIR_ADDR_MAX];
	const char *at;

	*n = 0;
	if (dir_lower(address, strlen(address), buf, sizeof(buf)) < 0)
		return DIR_UNKNOWN;
	at = strrchr(buf, '@');
	if (at == NULL || !dir_has_domain(d->cache, at + 1))
		return DIR_NOT_LOCAL;
	if (max > DIR_MAX_TARGETS)
		max = DIR_MAX_TARGETS;
	dir_expand(d->cache, buf, 0, out, max, n);
	return *n ? DIR_OK : DIR_UNKNOWN;
}

/* Adds the targets outside the local domains that addr leads to. */
static void
dir_expand_remote(const struct dir_cache *c, const char *addr, int depth,
		  char (*out)[DIR_ADDR_MAX], size_t max, size_t *n)
{
	const struct dir_alias *a;
	const char *at = strrchr(addr, '@');

	if (at && !dir_has_domain(c, at + 1)) {
		dir_add_once(out, max, n, addr);
		return;
	}
	if (depth >= DIR_ALIAS_DEPTH || dir_find_user(c, addr) ||
	    (a = dir_find_alias(c, addr)) == NULL)
		return;
	for (size_t i = 0; i < a->ntargets && *n < max; i++)
		dir_expand_remote(c, a->targets[i], depth + 1, out, max, n);
}

size_t
directory_forwards(const struct directory *d, const char *address,
		   char (*out)[DIR_ADDR_MAX], size_t max)
{
	char buf[DIR_ADDR_MAX];
	const char *at;
	size_t n = 0;

	if (dir_lower(address, strlen(address), buf, sizeof(buf)) < 0)
		return 0;
	at = strrchr(buf, '@');
	if (at == NULL || !dir_has_domain(d->cache, at + 1))
		return 0;
	dir_expand_remote(d->cache, buf, 0, out, max, &n);
	return n;
}

const char *
directory_password_hash(const struct directory *d, const char *address)
{
	char buf[DIR_ADDR_MAX];
	const struct dir_user *u;

	if (dir_lower(address, strlen(address), buf, sizeof(buf)) < 0)
		return NULL;
	u = dir_find_user(d->cache, buf);
	return u ? u->hash : NULL;
}

uint64_t
directory_quota(const struct directory *d, const char *address)
{
	char buf[DIR_ADDR_MAX];
	const struct dir_user *u;

	if (dir_lower(address, strlen(address), buf, sizeof(buf)) < 0)
		return 0;
	u = dir_find_user(d->cache, buf);
	return u ? u->quota : 0;
}
