/* Redis leases: SET NX PX to take, a compare-and-PEXPIRE script to renew,
 * a compare-and-DEL script to give back.
 *
 * Giving back outlives the owner: a SET that timed out may still run in
 * Redis (a stopped Redis reads it from its socket when it goes on, after
 * the node dropped the connection), and then it holds the key for a
 * whole ttl with a token nobody has. So lease_release() keeps the lease
 * (state LS_UNDO, the owner gone) until Redis has answered its
 * compare-and-delete, sent again on a timer while Redis is away or
 * silent. A new connection's commands run after what the dropped one
 * left in Redis's socket, so an answer means the key is no longer ours. */
#include "lease.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "../../common/token.h"

#define LEASE_KEY_MAX 512
#define LEASE_TOKEN_LEN 32    /* hex digits of 128 random bits */
#define LEASE_UNDO_RETRY 0.25 /* s between tries to give a lease back */

static const char lease_renew_lua[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
static const char lease_release_lua[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end";

enum lease_state {
	LS_ACQUIRING,
	LS_HELD,
	LS_DONE, /* busy, lost or failed: the owner has not released yet */
	LS_UNDO, /* released: the compare-and-delete until Redis answers */
};

struct lease {
	struct redis *redis;
	struct ev_loop *loop;
	char key[LEASE_KEY_MAX];
	char token[LEASE_TOKEN_LEN + 1];
	int ttl_ms;
	enum lease_state state;
	uint64_t pending;  /* request id in flight, 0: none */
	double sent_at;	   /* when the pending request went out */
	double valid_from; /* send time of the last successful SET/renewal */
	bool unsure;	   /* a SET got no answer: it may yet run in Redis */
	ev_timer renew;	   /* LS_HELD: renewals; LS_UNDO: the next try */
	lease_cb cb;
	void *arg;
};

/* The lease is gone for us: stop renewing, tell the owner once. */
static void
lease_lost(struct lease *l, const char *why)
{
	if (l->state != LS_HELD)
		return;
	log_warn("lease %s lost: %s", l->key, why);
	l->state = LS_DONE;
	ev_timer_stop(l->loop, &l->renew);
	l->cb(l, LEASE_LOST, l->arg);
}

static void
lease_renew_reply(struct redis *r, redisReply *reply, void *arg)
{
	struct lease *l = arg;
	(void)r;
	l->pending = 0;
	if (reply && reply->type == REDIS_REPLY_INTEGER &&
	    reply->integer == 1) {
		l->valid_from = l->sent_at;
		return;
	}
	if (reply && reply->type == REDIS_REPLY_INTEGER) {
		lease_lost(l, "taken over or expired");
		return;
	}
	/* No answer: keep trying while the lease may still be ours. */
	if (ev_now(l->loop) - l->valid_from >= l->ttl_ms / 1000.)
		lease_lost(l, "no renewal within its ttl");
}

static void
lease_renew_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct lease *l = t->data;
	char ttl[16];
	(void)revents;
	if (l->state != LS_HELD || l->pending)
		return;
	snprintf(ttl, sizeof(ttl), "%d", l->ttl_ms);
	l->sent_at = ev_now(loop);
	l->pending =
	    redis_command(l->redis, lease_renew_reply, l, "EVAL %s 1 %s %s %s",
			  lease_renew_lua, l->key, l->token, ttl);
	if (l->pending == 0 &&
	    ev_now(loop) - l->valid_from >= l->ttl_ms / 1000.)
		lease_lost(l, "Redis away for longer than its ttl");
}

static void
lease_set_reply(struct redis *r, redisReply *reply, void *arg)
{
	struct lease *l = arg;
	(void)r;
	l->pending = 0;
	if (reply && reply->type == REDIS_REPLY_STATUS) {
		l->state = LS_HELD;
		l->valid_from = l->sent_at;
		ev_timer_again(l->loop, &l->renew);
		l->cb(l, LEASE_HELD, l->arg);
		return;
	}
	l->state = LS_DONE;
	l->unsure = reply == NULL;
	if (reply && reply->type == REDIS_REPLY_NIL) {
		l->cb(l, LEASE_BUSY, l->arg);
		return;
	}
	log_warn("lease %s: %s", l->key,
		 reply && reply->type == REDIS_REPLY_ERROR ? reply->str
							   : "no answer");
	l->cb(l, LEASE_ERROR, l->arg);
}

struct lease *
lease_acquire(struct redis *r, const char *key, int ttl_ms, int renew_ms,
	      lease_cb cb, void *arg)
{
	char ttl[16];
	struct lease *l = NULL;

	if (!redis_up(r) || strlen(key) >= LEASE_KEY_MAX || ttl_ms <= 0 ||
	    renew_ms <= 0)
		goto fail;
	l = calloc(1, sizeof(*l));
	if (l == NULL || token_hex(l->token, LEASE_TOKEN_LEN) < 0)
		goto fail;
	l->redis = r;
	l->loop = redis_loop(r);
	snprintf(l->key, sizeof(l->key), "%s", key);
	l->ttl_ms = ttl_ms;
	l->cb = cb;
	l->arg = arg;
	l->state = LS_ACQUIRING;
	ev_init(&l->renew, lease_renew_cb);
	l->renew.repeat = renew_ms / 1000.;
	l->renew.data = l;
	snprintf(ttl, sizeof(ttl), "%d", ttl_ms);
	l->sent_at = ev_now(l->loop);
	l->pending = redis_command(r, lease_set_reply, l, "SET %s %s NX PX %s",
				   l->key, l->token, ttl);
	if (l->pending == 0)
		goto fail;
	return l;
fail:
	free(l);
	return NULL;
}

bool
lease_valid(const struct lease *l)
{
	if (l == NULL || l->state != LS_HELD)
		return false;
	/* The key may expire ttl after the last renewal was sent; keep a
	 * margin of a fifth of it for clocks and delays. */
	return ev_now(l->loop) - l->valid_from < l->ttl_ms * 0.8 / 1000.;
}

/* The compare-and-delete of a released lease was answered (the key is
 * not ours, whatever it held), or not: then again after a while. */
static void
lease_undo_reply(struct redis *r, redisReply *reply, void *arg)
{
	struct lease *l = arg;
	(void)r;
	l->pending = 0;
	if (reply == NULL)
		return; /* the timer tries again */
	if (reply->type == REDIS_REPLY_ERROR)
		log_warn("lease %s: give back: %s", l->key, reply->str);
	else if (l->unsure && reply->integer == 1)
		log_info("lease %s: given back after a SET that timed out",
			 l->key);
	ev_timer_stop(l->loop, &l->renew);
	free(l);
}

/* Sends the compare-and-delete unless one is in flight. The timer stays
 * on until an answer frees l (it also keeps l reachable when the loop
 * ends first). */
static void
lease_undo_send(struct lease *l)
{
	if (l->pending)
		return;
	l->pending =
	    redis_command(l->redis, lease_undo_reply, l, "EVAL %s 1 %s %s",
			  lease_release_lua, l->key, l->token);
}

static void
lease_undo_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	lease_undo_send(t->data);
}

void
lease_release(struct lease *l)
{
	if (l == NULL)
		return;
	ev_timer_stop(l->loop, &l->renew);
	/* Busy, refused or lost, with an answer: nothing of ours is in
	 * Redis. */
	if (l->state == LS_DONE && !l->unsure) {
		free(l);
		return;
	}
	/* A SET or renewal in flight: its answer is of no use now, but the
	 * compare-and-delete goes after it on the same connection. */
	if (l->pending) {
		redis_cancel(l->redis, l->pending);
		l->pending = 0;
		l->unsure = l->unsure || l->state == LS_ACQUIRING;
	}
	l->state = LS_UNDO;
	ev_set_cb(&l->renew, lease_undo_cb);
	ev_timer_set(&l->renew, LEASE_UNDO_RETRY, LEASE_UNDO_RETRY);
	ev_timer_start(l->loop, &l->renew);
	lease_undo_send(l);
}
