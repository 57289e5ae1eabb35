/* The per-mailbox UID lease (DESIGN.md "Durability and the shared
 * state"). What gives UIDs (a sync that finds mail waiting, APPEND,
 * COPY/MOVE) first takes the Redis lease UID_LEASE_LOCK_PREFIX
 * "USER/MAILBOX" (lease.h) and reads the counter UID_LEASE_NEXT_PREFIX
 * "USER/MAILBOX" ("UIDVALIDITY UIDNEXT"); then, still under the lease, it
 * assigns under the mailbox's flock from max(counter, mark, cur/)
 * (maildir.h), and uid_lease_done() writes the counter back and gives the
 * lease up. The GET goes out right behind the SET NX, so both come back
 * in one round trip.
 *
 * A lease held elsewhere is asked for again (every UID_LEASE_RETRY_MS,
 * doubling up to UID_LEASE_RETRY_MAX_MS) for at most UID_LEASE_WAIT_MS,
 * which is longer than the base ttl: a holder that died has lost it by
 * then. With no Redis configured, Redis away, or that wait over, the
 * assignment goes on under the flock alone (logged once per outage).
 *
 * The assignment runs in one go on the loop, where no renewal can come
 * (the lease's own renewal only covers the wait for the counter), so the
 * ttl is sized for it: UID_LEASE_TTL_MS plus UID_LEASE_TTL_PER_MSG_MS per
 * message, at most UID_LEASE_TTL_MAX_MS, and the counter is written back
 * only while the lease is still valid. */
#ifndef NODE_UID_LEASE_H
#define NODE_UID_LEASE_H

#include <stddef.h>

#include "maildir.h"
#include "../mailnode.h"

#define UID_LEASE_LOCK_PREFIX "ms:uidlock:"
#define UID_LEASE_NEXT_PREFIX "ms:uidnext:"
#define UID_LEASE_TTL_MS 5000
#define UID_LEASE_TTL_PER_MSG_MS 5
#define UID_LEASE_TTL_MAX_MS 60000
#define UID_LEASE_WAIT_MS 10000
#define UID_LEASE_RETRY_MS 5
#define UID_LEASE_RETRY_MAX_MS 100

struct uid_lease;

/* ctr: the counter's floor for maildir_assign, maildir_append or
 * maildir_copy, which set it; zero when there is none (no lease). */
typedef void (*uid_lease_cb)(struct uid_lease *u, struct maildir_counter *ctr,
			     void *arg);

/* Starts taking the lease of user's mailbox ("INBOX" any case, or a
 * folder name) for an assignment of about n messages. cb comes once,
 * later, from the loop (never from within this call); the caller then
 * assigns and calls uid_lease_done(). Returns NULL only when out of
 * memory. */
struct uid_lease *uid_lease_take(struct mailnode *mn, const char *user,
				 const char *mailbox, size_t n, uid_lease_cb cb,
				 void *arg);

/* After the assignment: writes the counter as the assignment left it
 * (while the lease is valid), gives the lease back and frees u. Before cb
 * came (the session closes): cancels, and cb never comes. NULL is fine. */
void uid_lease_done(struct uid_lease *u);

#endif
