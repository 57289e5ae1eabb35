/* Login attempts (auth_login.h): counting, waiting, hashing, recording,
 * one state per step. An attempt is on the node's list from start to
 * its callback (or cancel); whatever it waits for (a Redis request, its
 * timer, a hashing job) is cancelled with it. */
#include "auth_login.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "../../common/log.h"
#include "auth_fails.h"

#define AUTH_LOGIN_LOCAL_MAX 4096 /* addresses and users counted here */
#define AUTH_LOGIN_SOURCE_MAX 64  /* an IPv4 address, an IPv6 /64 */

enum auth_login_state {
	AL_COUNTING,  /* the counters' read in flight (rq) */
	AL_HELD,      /* behind earlier attempts of its address that may
			 still fail and reach the limit: counted again as
			 they end */
	AL_WAITING,   /* the delay, or a zero timer to answer off the stack */
	AL_HASHING,   /* on the hashing threads (job) */
	AL_RECORDING, /* a failure being counted in Redis (rq) */
};

struct auth_attempt {
	TAILQ_ENTRY(auth_attempt) entry;
	struct auth_login *l;
	uint64_t id;
	enum auth_login_state state;
	uint64_t rq;  /* Redis request in flight, 0: none */
	uint64_t job; /* auth_pool job, 0: none */
	ev_timer timer;
	struct auth_fails_count count;
	enum auth_login_result res; /* what the timer answers, if refused */
	long retry_s;
	const struct directory *d;
	char source[AUTH_LOGIN_SOURCE_MAX];
	char user[DIR_ADDR_MAX];
	char *password; /* wiped and freed once hashed */
	size_t passlen;
	auth_login_cb cb;
	void *arg;
};

TAILQ_HEAD(auth_attempts, auth_attempt);

struct auth_login {
	struct auth_pool *pool;
	struct redis *redis;
	struct ev_loop *loop;
	const struct login_limits *lim;
	struct auth_fails *fails;
	struct auth_attempts attempts; /* in the order they started */
	uint64_t next_id;
	bool closing;
};

static void auth_attempt_count(struct auth_attempt *a);

struct auth_login *
auth_login_new(struct auth_pool *pool, struct redis *r,
	       const struct login_limits *lim)
{
	struct auth_login *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->fails = auth_fails_new(r, lim->window_s, AUTH_LOGIN_LOCAL_MAX);
	if (l->fails == NULL) {
		free(l);
		return NULL;
	}
	l->pool = pool;
	l->redis = r;
	l->loop = redis_loop(r);
	l->lim = lim;
	l->next_id = 1;
	TAILQ_INIT(&l->attempts);
	return l;
}

static void
auth_attempt_wipe(struct auth_attempt *a)
{
	if (a->password == NULL)
		return;
	explicit_bzero(a->password, a->passlen);
	free(a->password);
	a->password = NULL;
}

/* The first attempt of source held behind others is counted again: it
 * may go now (and then wakes the next). */
static void
auth_login_wake(struct auth_login *l, const char *source)
{
	struct auth_attempt *o;

	if (l->closing)
		return;
	TAILQ_FOREACH(o, &l->attempts, entry)
	if (o->state == AL_HELD && strcmp(o->source, source) == 0) {
		auth_attempt_count(o);
		return;
	}
}

/* Takes a off the list with whatever it waits for, and frees it; the
 * attempts held behind it are counted again. */
static void
auth_attempt_free(struct auth_attempt *a)
{
	struct auth_login *l = a->l;
	char source[AUTH_LOGIN_SOURCE_MAX];

	TAILQ_REMOVE(&l->attempts, a, entry);
	redis_cancel(l->redis, a->rq);
	auth_pool_cancel(l->pool, a->job);
	ev_timer_stop(l->loop, &a->timer);
	memcpy(source, a->source, sizeof(source));
	auth_attempt_wipe(a);
	free(a);
	auth_login_wake(l, source);
}

void
auth_login_free(struct auth_login *l)
{
	if (l == NULL)
		return;
	l->closing = true;
	while (!TAILQ_EMPTY(&l->attempts))
		auth_attempt_free(TAILQ_FIRST(&l->attempts));
	auth_fails_free(l->fails);
	free(l);
}

/* The end of a: its callback, then nothing more of it. */
static void
auth_attempt_answer(struct auth_attempt *a, enum auth_login_result res,
		    long retry_s)
{
	auth_login_cb cb = a->cb;
	void *arg = a->arg;
	char user[DIR_ADDR_MAX];

	memcpy(user, a->user, sizeof(user));
	auth_attempt_free(a);
	cb(arg, res, user, retry_s);
}

/* ---- recording ---- */

static void
auth_attempt_recorded(struct redis *r, redisReply *reply, void *arg)
{
	struct auth_attempt *a = arg;

	(void)r;
	a->rq = 0;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		log_warn("auth: failure of %s from %s counted here only: %s",
			 a->user, a->source,
			 reply ? reply->str : "no answer from Redis");
	auth_attempt_answer(a, AUTH_LOGIN_FAILED, 0);
}

/* ---- hashing ---- */

static void
auth_attempt_hashed(void *arg, bool ok, const char *user)
{
	struct auth_attempt *a = arg;

	(void)user;
	a->job = 0;
	if (ok) {
		auth_attempt_answer(a, AUTH_LOGIN_OK, 0);
		return;
	}
	a->state = AL_RECORDING;
	a->rq = auth_fails_add(a->l->fails, a->source, a->user,
			       auth_attempt_recorded, a);
	if (a->rq == 0)
		auth_attempt_answer(a, AUTH_LOGIN_FAILED, 0);
}

static void
auth_attempt_hash(struct auth_attempt *a)
{
	a->state = AL_HASHING;
	a->job = auth_pool_start(a->l->pool, a->d, a->source, a->user,
				 a->password, auth_attempt_hashed, a);
	auth_attempt_wipe(a); /* the job has its own copy */
	if (a->job == 0)
		auth_attempt_answer(a, AUTH_LOGIN_BUSY, 0);
}

/* ---- waiting ---- */

static void
auth_attempt_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct auth_attempt *a = t->data;

	(void)loop;
	(void)revents;
	if (a->res == AUTH_LOGIN_REFUSED)
		auth_attempt_answer(a, AUTH_LOGIN_REFUSED, a->retry_s);
	else
		auth_attempt_hash(a);
}

/* The delay before the n-th try after failures: delay_ms doubled per
 * failure beyond the first, at most delay_max_ms. Seconds. */
static double
auth_login_delay(const struct login_limits *lim, long fails)
{
	double ms = lim->delay_ms;

	if (fails <= 0 || lim->delay_ms <= 0)
		return 0.;
	for (long i = 1; i < fails && ms < lim->delay_max_ms; i++)
		ms *= 2;
	if (ms > lim->delay_max_ms)
		ms = lim->delay_max_ms;
	return ms / 1000.;
}

/* Attempts of a's address on this node that started before a, are not
 * refused and not yet known to have failed (those are counted): each
 * may still be a failure. */
static long
auth_attempt_ahead(const struct auth_attempt *a)
{
	const struct auth_attempt *o;
	long n = 0;

	TAILQ_FOREACH(o, &a->l->attempts, entry)
	if (o != a && o->id < a->id && o->state != AL_RECORDING &&
	    o->res != AUTH_LOGIN_REFUSED && strcmp(o->source, a->source) == 0)
		n++;
	return n;
}

/* The counts are known: refused, or waits its delay (on the timer in
 * both cases, so that no callback comes from inside the caller), or is
 * held while the address's failures and its earlier attempts still in
 * progress here (each may fail) reach the limit: a burst of parallel
 * guesses cannot pass the limit before the first is counted, and
 * parallel logins that succeed only wait for each other. */
static void
auth_attempt_counted(struct auth_attempt *a)
{
	const struct login_limits *lim = a->l->lim;
	const struct auth_fails_count *c = &a->count;
	double delay = 0.;

	if (lim->fail_limit > 0 && c->addr < lim->fail_limit &&
	    c->addr + auth_attempt_ahead(a) >= lim->fail_limit) {
		a->state = AL_HELD;
		return;
	}
	a->state = AL_WAITING;
	if (lim->fail_limit > 0 && c->addr >= lim->fail_limit) {
		a->res = AUTH_LOGIN_REFUSED;
		a->retry_s = c->addr_ttl_s > 0 ? c->addr_ttl_s : 1;
		auth_attempt_wipe(a);
		log_warn("auth: login of %s from %s refused: %ld failures from "
			 "the address, %ld s to go",
			 a->user, a->source, c->addr, a->retry_s);
	} else {
		delay = auth_login_delay(lim,
					 c->addr > c->user ? c->addr : c->user);
		if (delay > 0)
			log_info("auth: login of %s from %s waits %.2f s (%ld "
				 "failures from the address, %ld of the user)",
				 a->user, a->source, delay, c->addr, c->user);
	}
	ev_timer_set(&a->timer, delay, 0.);
	ev_timer_start(a->l->loop, &a->timer);
	auth_login_wake(a->l, a->source);
}

/* ---- counting ---- */

static void
auth_attempt_read(struct redis *r, redisReply *reply, void *arg)
{
	struct auth_attempt *a = arg;

	(void)r;
	a->rq = 0;
	/* This node's counts as they are now, when the attempts ahead are
	 * looked at: a failure is in one or the other, never in neither. */
	auth_fails_local(a->l->fails, a->source, a->user, &a->count);
	auth_fails_merge(reply, &a->count);
	auth_attempt_counted(a);
}

/* Reads the counts of a's address and user (again, after being held). */
static void
auth_attempt_count(struct auth_attempt *a)
{
	struct auth_login *l = a->l;

	a->state = AL_COUNTING;
	a->rq =
	    auth_fails_read(l->fails, a->source, a->user, auth_attempt_read, a);
	if (a->rq == 0) { /* Redis away: this node's counts */
		auth_fails_local(l->fails, a->source, a->user, &a->count);
		auth_attempt_counted(a);
	}
}

/* The key an address counts under: IPv4 (also IPv4-mapped IPv6) as it
 * is, IPv6 by its /64, since one client holds a whole /64. */
static void
auth_login_source(const struct sockaddr *sa, char *out, size_t len)
{
	if (sa->sa_family == AF_INET6) {
		struct in6_addr a =
		    ((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&a)) {
			inet_ntop(AF_INET, &a.s6_addr[12], out, (socklen_t)len);
			return;
		}
		memset(&a.s6_addr[8], 0, 8);
		char host[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, &a, host, sizeof(host));
		snprintf(out, len, "%s/64", host);
		return;
	}
	addr_host(sa, out, len);
}

uint64_t
auth_login_start(struct auth_login *l, const struct directory *d,
		 const struct sockaddr *peer, const char *user,
		 const char *password, auth_login_cb cb, void *arg)
{
	struct auth_attempt *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return 0;
	a->passlen = strlen(password);
	a->password = malloc(a->passlen + 1);
	if (a->password == NULL) {
		free(a);
		return 0;
	}
	memcpy(a->password, password, a->passlen + 1);
	a->l = l;
	a->id = l->next_id++;
	a->d = d;
	a->cb = cb;
	a->arg = arg;
	a->res = AUTH_LOGIN_OK;
	snprintf(a->user, sizeof(a->user), "%s", user);
	auth_login_source(peer, a->source, sizeof(a->source));
	ev_init(&a->timer, auth_attempt_timer_cb);
	a->timer.data = a;
	TAILQ_INSERT_TAIL(&l->attempts, a, entry);

	auth_attempt_count(a);
	return a->id;
}

void
auth_login_cancel(struct auth_login *l, uint64_t id)
{
	struct auth_attempt *a;

	if (id == 0)
		return;
	TAILQ_FOREACH(a, &l->attempts, entry)
	if (a->id == id) {
		auth_attempt_free(a);
		return;
	}
}
