/* Failed-login counters (auth_fails.h): two Lua scripts in Redis and a
 * small open-addressed table in memory. */
#include "auth_fails.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"

#define AUTH_FAILS_ADDR_PREFIX "ms:loginfail:addr:"
#define AUTH_FAILS_USER_PREFIX "ms:loginfail:user:"
#define AUTH_FAILS_PROBES 8 /* slots a key may use in the local table */

/* KEYS: the address and user counters. Returns {n_addr, ttl_addr, n_user,
 * ttl_user}. */
static const char auth_fails_read_lua[] =
    "local r = {}\n"
    "for i, k in ipairs(KEYS) do\n"
    "  r[#r + 1] = tonumber(redis.call('GET', k) or '0') or 0\n"
    "  r[#r + 1] = redis.call('TTL', k)\n"
    "end\n"
    "return r\n";

/* KEYS: the counters; ARGV[1]: the window. INCR, and EXPIRE when the
 * counter is new (or lost its TTL). */
static const char auth_fails_add_lua[] =
    "for i, k in ipairs(KEYS) do\n"
    "  local n = redis.call('INCR', k)\n"
    "  if n == 1 or redis.call('TTL', k) < 0 then\n"
    "    redis.call('EXPIRE', k, ARGV[1])\n"
    "  end\n"
    "end\n"
    "return 1\n";

struct auth_fails_slot {
	char key[AUTH_FAILS_KEY_MAX]; /* the Redis key; "" when free */
	long n;
	double expires; /* ev_now() seconds */
	uint64_t born;	/* f->births when made: the older goes first */
};

struct auth_fails {
	struct redis *redis;
	struct ev_loop *loop;
	int window_s;
	size_t nslots;
	struct auth_fails_slot *slot;
	uint64_t births;
};

struct auth_fails *
auth_fails_new(struct redis *r, int window_s, size_t local_max)
{
	struct auth_fails *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return NULL;
	f->redis = r;
	f->loop = redis_loop(r);
	f->window_s = window_s;
	f->nslots =
	    local_max < AUTH_FAILS_PROBES ? AUTH_FAILS_PROBES : local_max;
	f->slot = calloc(f->nslots, sizeof(*f->slot));
	if (f->slot == NULL) {
		free(f);
		return NULL;
	}
	return f;
}

void
auth_fails_free(struct auth_fails *f)
{
	if (f == NULL)
		return;
	free(f->slot);
	free(f);
}

static void
auth_fails_keys(const char *addr, const char *user, char *kaddr, char *kuser)
{
	snprintf(kaddr, AUTH_FAILS_KEY_MAX, AUTH_FAILS_ADDR_PREFIX "%s", addr);
	snprintf(kuser, AUTH_FAILS_KEY_MAX, AUTH_FAILS_USER_PREFIX "%s", user);
}

/* FNV-1a: where key's probes start. */
static size_t
auth_fails_hash(const char *key, size_t n)
{
	uint32_t h = 2166136261u;

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h % n;
}

/* True when slot a should make room before b: it expires first, or at
 * the same time but was made before. */
static bool
auth_fails_older(const struct auth_fails_slot *a,
		 const struct auth_fails_slot *b)
{
	return a->expires < b->expires ||
	       (a->expires == b->expires && a->born < b->born);
}

/* key's live slot, or (create) the slot it may take: a free or expired
 * one, else the oldest among its probes. NULL when not found and not
 * create. */
static struct auth_fails_slot *
auth_fails_slot(struct auth_fails *f, const char *key, bool create)
{
	double now = ev_now(f->loop);
	size_t i = auth_fails_hash(key, f->nslots);
	struct auth_fails_slot *room = NULL;
	bool room_live = false;

	for (int k = 0; k < AUTH_FAILS_PROBES; k++, i = (i + 1) % f->nslots) {
		struct auth_fails_slot *s = &f->slot[i];
		bool live = s->key[0] != '\0' && s->expires > now;

		if (live && strcmp(s->key, key) == 0)
			return s;
		if (room == NULL ||
		    (room_live && (!live || auth_fails_older(s, room)))) {
			room = s;
			room_live = live;
		}
	}
	if (!create)
		return NULL;
	snprintf(room->key, sizeof(room->key), "%s", key);
	room->n = 0;
	room->expires = now + f->window_s;
	room->born = ++f->births;
	return room;
}

void
auth_fails_local(struct auth_fails *f, const char *addr, const char *user,
		 struct auth_fails_count *c)
{
	char kaddr[AUTH_FAILS_KEY_MAX], kuser[AUTH_FAILS_KEY_MAX];
	struct auth_fails_slot *s;

	auth_fails_keys(addr, user, kaddr, kuser);
	memset(c, 0, sizeof(*c));
	if ((s = auth_fails_slot(f, kaddr, false)) != NULL) {
		c->addr = s->n;
		c->addr_ttl_s = (long)(s->expires - ev_now(f->loop)) + 1;
	}
	if ((s = auth_fails_slot(f, kuser, false)) != NULL)
		c->user = s->n;
}

uint64_t
auth_fails_read(struct auth_fails *f, const char *addr, const char *user,
		redis_cb cb, void *arg)
{
	char kaddr[AUTH_FAILS_KEY_MAX], kuser[AUTH_FAILS_KEY_MAX];

	if (!redis_up(f->redis))
		return 0;
	auth_fails_keys(addr, user, kaddr, kuser);
	return redis_command(f->redis, cb, arg, "EVAL %s 2 %s %s",
			     auth_fails_read_lua, kaddr, kuser);
}

void
auth_fails_merge(const redisReply *reply, struct auth_fails_count *c)
{
	long n[2], ttl[2];

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != 4)
		return;
	for (int i = 0; i < 2; i++) {
		const redisReply *rn = reply->element[2 * i];
		const redisReply *rt = reply->element[2 * i + 1];
		if (rn->type != REDIS_REPLY_INTEGER ||
		    rt->type != REDIS_REPLY_INTEGER)
			return;
		n[i] = (long)rn->integer;
		ttl[i] = (long)rt->integer;
	}
	if (n[0] > c->addr) {
		c->addr = n[0];
		c->addr_ttl_s = ttl[0] > 0 ? ttl[0] : 1;
	}
	if (n[1] > c->user)
		c->user = n[1];
}

uint64_t
auth_fails_add(struct auth_fails *f, const char *addr, const char *user,
	       redis_cb cb, void *arg)
{
	char kaddr[AUTH_FAILS_KEY_MAX], kuser[AUTH_FAILS_KEY_MAX], win[16];

	auth_fails_keys(addr, user, kaddr, kuser);
	auth_fails_slot(f, kaddr, true)->n++;
	auth_fails_slot(f, kuser, true)->n++;
	if (!redis_up(f->redis))
		return 0;
	snprintf(win, sizeof(win), "%d", f->window_s);
	return redis_command(f->redis, cb, arg, "EVAL %s 2 %s %s %s",
			     auth_fails_add_lua, kaddr, kuser, win);
}
