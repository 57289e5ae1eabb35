/* A claim on one queued message: only its holder delivers it, rewrites
 * its envelope or removes it. Two locks, both taken: flock on ID.msg
 * (queue_lock), which is all there is while Redis is away, and the Redis
 * lease ms:qlock:ID (node/store/lease.h: owner token, renewed every
 * third of its ttl, queue_lease_s), so that a node that dies with the
 * claim on a shared filesystem whose locks outlive it loses it after
 * queue_lease_s. */
#ifndef NODE_QUEUE_CLAIM_H
#define NODE_QUEUE_CLAIM_H

#include <stdbool.h>

#include "../../common/redis.h"
#include "queue.h"

enum queue_claim_state {
	QC_PENDING, /* the lease's answer is awaited: cb comes */
	QC_HELD,    /* ours (cb gets it when it was pending) */
	QC_BUSY,    /* someone else's: release it */
	QC_LOST,    /* was ours; the lease went: stop, write nothing */
};

struct queue_claim;
typedef void (*queue_claim_cb)(struct queue_claim *c, enum queue_claim_state st,
			       void *arg);

/* Takes the claim on id. Returns NULL when the flock is held elsewhere
 * or ID.msg is gone (nothing to do); otherwise the claim with *st
 * QC_HELD (Redis away: flock only) or QC_PENDING (cb follows with
 * QC_HELD or QC_BUSY). cb may come again, once, with QC_LOST. */
struct queue_claim *queue_claim_take(struct queue *q, struct redis *r,
				     const char *id, int lease_s,
				     queue_claim_cb cb, void *arg,
				     enum queue_claim_state *st);
/* True while the claim certainly holds (check before a step that must
 * not happen twice). */
bool queue_claim_valid(const struct queue_claim *c);
/* Gives it back (lease deleted, flock closed); no callback after this. */
void queue_claim_release(struct queue_claim *c);
/* Gives it back but its flock: the lease is deleted and the flock's fd
 * returned (closing it unlocks), for the removal of the message, which
 * closes it once the files are gone; no callback after this. */
int queue_claim_hand_over(struct queue_claim *c);

#endif
