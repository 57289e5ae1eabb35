/* A lease in Redis: an exclusive lock across the cluster that lives only
 * while its holder does. Taken with `SET key token NX PX ttl`, renewed
 * every renew_ms by a compare-and-PEXPIRE script, given back by a
 * compare-and-DEL script, so a holder never extends or drops a lease that
 * has passed to someone else. When the holder dies, the key expires
 * within ttl. Used for POP3's maildrop lock (and IMAP's per-mailbox UID
 * lock).
 *
 * Callbacks never outlive the lease: lease_release() cancels what is in
 * flight, so the owner calls it from its close path and is never called
 * back afterwards. */
#ifndef NODE_LEASE_H
#define NODE_LEASE_H

#include <stdbool.h>

#include "../../common/redis.h"

struct lease;

enum lease_result {
	LEASE_HELD,  /* acquired */
	LEASE_BUSY,  /* someone else holds it */
	LEASE_ERROR, /* Redis away, timed out or answered an error */
	LEASE_LOST,  /* was held; a renewal found it gone or taken, or it
			went too long without a successful renewal */
};

/* Called once with LEASE_HELD, LEASE_BUSY or LEASE_ERROR, and later (only
 * after LEASE_HELD) at most once with LEASE_LOST. The lease stays the
 * caller's to release in every case. */
typedef void (*lease_cb)(struct lease *l, enum lease_result res, void *arg);

/* Starts taking key. Returns NULL (nothing sent, cb never called) when
 * Redis is down or memory is short: the caller treats that as
 * LEASE_ERROR. */
struct lease *lease_acquire(struct redis *r, const char *key, int ttl_ms,
			    int renew_ms, lease_cb cb, void *arg);

/* True while held and renewed recently enough that it cannot have expired
 * in Redis (the last successful renewal is younger than ttl minus a
 * margin). Check it before acting on what the lease protects. */
bool lease_valid(const struct lease *l);

/* Gives the lease back: compare-and-delete, sent also if the acquisition
 * is still in flight (Redis runs commands in order) or timed out (its SET
 * may run later), and again while Redis is away or silent, until Redis
 * answers; l is freed then, not by the caller. No callback of the
 * caller's comes after this. NULL is fine. */
void lease_release(struct lease *l);

#endif
