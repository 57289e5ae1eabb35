/* Claims on queued messages: flock, then the Redis lease. */
#include "queue_claim.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../config/schema.h"
#include "../store/lease.h"

struct queue_claim {
	int lockfd;
	struct lease *lease; /* NULL: flock only */
	enum queue_claim_state state;
	queue_claim_cb cb;
	void *arg;
};

static void
queue_claim_lease_cb(struct lease *l, enum lease_result res, void *arg)
{
	struct queue_claim *c = arg;
	(void)l;
	switch (res) {
	case LEASE_HELD:
		c->state = QC_HELD;
		break;
	case LEASE_BUSY:
		c->state = QC_BUSY;
		break;
	case LEASE_ERROR:
		/* Redis did not answer: the flock alone holds it. */
		lease_release(c->lease);
		c->lease = NULL;
		c->state = QC_HELD;
		break;
	case LEASE_LOST:
		c->state = QC_LOST;
		break;
	}
	c->cb(c, c->state, c->arg);
}

struct queue_claim *
queue_claim_take(struct queue *q, struct redis *r, const char *id, int lease_s,
		 queue_claim_cb cb, void *arg, enum queue_claim_state *st)
{
	char key[64];
	struct queue_claim *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	if ((c->lockfd = queue_lock(q, id)) < 0) {
		free(c);
		return NULL;
	}
	c->cb = cb;
	c->arg = arg;
	snprintf(key, sizeof(key), SCHEMA_QUEUE_LOCK_PREFIX "%s", id);
	int ttl = lease_s * 1000;
	c->lease =
	    r ? lease_acquire(r, key, ttl, ttl / 3, queue_claim_lease_cb, c)
	      : NULL;
	c->state = c->lease ? QC_PENDING : QC_HELD;
	*st = c->state;
	return c;
}

bool
queue_claim_valid(const struct queue_claim *c)
{
	if (c->state != QC_HELD)
		return false;
	return c->lease == NULL || lease_valid(c->lease);
}

void
queue_claim_release(struct queue_claim *c)
{
	if (c == NULL)
		return;
	lease_release(c->lease);
	close(c->lockfd);
	free(c);
}

int
queue_claim_hand_over(struct queue_claim *c)
{
	int fd = c->lockfd;
	lease_release(c->lease);
	free(c);
	return fd;
}
