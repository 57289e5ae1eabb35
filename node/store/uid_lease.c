/* Taking the per-mailbox UID lease and its counter before an assignment
 * of UIDs, and giving them back after (uid_lease.h). */
#include "uid_lease.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../common/log.h"
#include "lease.h"

#define UID_LEASE_KEY_MAX (DIR_ADDR_MAX + MAILDIR_MBOX_MAX + 32)

struct uid_lease {
	struct mailnode *mn;
	char lockkey[sizeof(UID_LEASE_LOCK_PREFIX) + UID_LEASE_KEY_MAX];
	char nextkey[sizeof(UID_LEASE_NEXT_PREFIX) + UID_LEASE_KEY_MAX];
	int ttl_ms;
	struct lease *lease; /* NULL: none (yet, or given up on) */
	bool held;
	uint64_t get;  /* the counter's GET in flight, 0: none */
	bool got;      /* its answer came */
	bool called;   /* cb ran */
	bool without;  /* going on under the flock alone */
	ev_timer wait; /* the next try, or cb without a lease */
	double deadline;
	double backoff;
	struct maildir_counter ctr;
	uid_lease_cb cb;
	void *arg;
};

static void uid_lease_try(struct uid_lease *u);

static void
uid_lease_run(struct uid_lease *u)
{
	ev_timer_stop(u->mn->loop, &u->wait);
	u->called = true;
	u->cb(u, &u->ctr, u->arg);
}

/* Gives up this try: the lease (held or asked for) and the counter's
 * GET, whatever of them came. */
static void
uid_lease_drop(struct uid_lease *u)
{
	lease_release(u->lease);
	u->lease = NULL;
	u->held = false;
	if (u->get)
		redis_cancel(u->mn->redis, u->get);
	u->get = 0;
	u->got = false;
	memset(&u->ctr, 0, sizeof(u->ctr));
}

/* Runs cb (from the loop) under the flock alone. */
static void
uid_lease_without(struct uid_lease *u, const char *why)
{
	if (why && !u->mn->uid_lease_away) {
		log_warn("uid lease %s: %s: UIDs under the flock alone until "
			 "Redis answers again",
			 u->lockkey, why);
		u->mn->uid_lease_away = true;
	}
	u->without = true;
	uid_lease_drop(u);
	ev_timer_stop(u->mn->loop, &u->wait);
	ev_timer_set(&u->wait, 0., 0.);
	ev_timer_start(u->mn->loop, &u->wait);
}

static void
uid_lease_wait_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct uid_lease *u = t->data;
	(void)loop;
	(void)revents;
	if (u->without)
		uid_lease_run(u);
	else
		uid_lease_try(u);
}

/* "UIDVALIDITY UIDNEXT" into u->ctr; anything else is no floor. */
static void
uid_lease_got(struct redis *r, redisReply *reply, void *arg)
{
	struct uid_lease *u = arg;
	unsigned long v, n;
	char end;
	(void)r;
	u->get = 0;
	u->got = true;
	if (reply && reply->type == REDIS_REPLY_STRING &&
	    sscanf(reply->str, "%lu %lu%c", &v, &n, &end) == 2 &&
	    v <= UINT32_MAX && n <= UINT32_MAX) {
		u->ctr.uidvalidity = (uint32_t)v;
		u->ctr.uidnext = (uint32_t)n;
	}
	if (u->held)
		uid_lease_run(u);
}

static void
uid_lease_cb_lease(struct lease *l, enum lease_result res, void *arg)
{
	struct uid_lease *u = arg;
	(void)l;
	switch (res) {
	case LEASE_HELD:
		if (u->mn->uid_lease_away)
			log_info("uid lease %s: taken again", u->lockkey);
		u->mn->uid_lease_away = false;
		u->held = true;
		if (u->got)
			uid_lease_run(u);
		return;
	case LEASE_BUSY:
		uid_lease_drop(u);
		if (ev_now(u->mn->loop) + u->backoff >= u->deadline) {
			uid_lease_without(u, "still held elsewhere");
			return;
		}
		ev_timer_set(&u->wait, u->backoff, 0.);
		ev_timer_start(u->mn->loop, &u->wait);
		u->backoff *= 2;
		if (u->backoff > UID_LEASE_RETRY_MAX_MS / 1000.)
			u->backoff = UID_LEASE_RETRY_MAX_MS / 1000.;
		return;
	case LEASE_ERROR:
		uid_lease_without(u, "Redis away");
		return;
	case LEASE_LOST:
		/* Before the counter came (after it, the assignment has run
		 * in one go): go on without. */
		if (!u->called)
			uid_lease_without(u, "lost while waiting");
		return;
	}
}

static void
uid_lease_try(struct uid_lease *u)
{
	struct redis *r = u->mn->redis;
	if (r == NULL) {
		uid_lease_without(u, NULL);
		return;
	}
	u->lease = lease_acquire(r, u->lockkey, u->ttl_ms, u->ttl_ms / 3,
				 uid_lease_cb_lease, u);
	if (u->lease == NULL) {
		uid_lease_without(u, "Redis away");
		return;
	}
	/* Behind the SET NX on the same connection: read under the lease
	 * when that is granted, thrown away when not. */
	u->get = redis_command(r, uid_lease_got, u, "GET %s", u->nextkey);
	if (u->get == 0)
		uid_lease_without(u, "Redis away");
}

struct uid_lease *
uid_lease_take(struct mailnode *mn, const char *user, const char *mailbox,
	       size_t n, uid_lease_cb cb, void *arg)
{
	char who[UID_LEASE_KEY_MAX];
	struct uid_lease *u = calloc(1, sizeof(*u));
	if (u == NULL)
		return NULL;
	u->mn = mn;
	u->cb = cb;
	u->arg = arg;
	snprintf(who, sizeof(who), "%s/%s", user,
		 strcasecmp(mailbox, "INBOX") == 0 ? "INBOX" : mailbox);
	for (char *p = who; *p && *p != '/'; p++)
		*p = (char)tolower((unsigned char)*p);
	snprintf(u->lockkey, sizeof(u->lockkey), "%s%s", UID_LEASE_LOCK_PREFIX,
		 who);
	snprintf(u->nextkey, sizeof(u->nextkey), "%s%s", UID_LEASE_NEXT_PREFIX,
		 who);
	size_t ttl = UID_LEASE_TTL_MS + n * UID_LEASE_TTL_PER_MSG_MS;
	u->ttl_ms =
	    ttl > UID_LEASE_TTL_MAX_MS ? UID_LEASE_TTL_MAX_MS : (int)ttl;
	u->backoff = UID_LEASE_RETRY_MS / 1000.;
	u->deadline = ev_now(mn->loop) + UID_LEASE_WAIT_MS / 1000.;
	ev_init(&u->wait, uid_lease_wait_cb);
	u->wait.data = u;
	uid_lease_try(u);
	return u;
}

void
uid_lease_done(struct uid_lease *u)
{
	char val[32];
	if (u == NULL)
		return;
	ev_timer_stop(u->mn->loop, &u->wait);
	if (u->get)
		redis_cancel(u->mn->redis, u->get);
	/* Written before the release on the same connection, so the next
	 * holder reads it. */
	if (u->called && u->held && lease_valid(u->lease) &&
	    u->ctr.uidnext > 0) {
		snprintf(val, sizeof(val), "%" PRIu32 " %" PRIu32,
			 u->ctr.uidvalidity, u->ctr.uidnext);
		redis_command(u->mn->redis, NULL, NULL, "SET %s %s", u->nextkey,
			      val);
	}
	lease_release(u->lease);
	free(u);
}
