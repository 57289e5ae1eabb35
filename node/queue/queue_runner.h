/* The mta role: queue runners (Postfix's qmgr and smtp together). Every
 * second (a message queued here is looked at at once, and one that
 * waits for a busy next hop as soon as that has a slot), the runner looks over
 * the shared queue for messages whose recipients are due and not held (an
 * envelope unchanged since the last look and not due is not re-read), takes
 * each one's claim (queue_claim.h), re-reads its envelope under the
 * claim, and delivers its due recipients one destination domain after
 * the other: a [route], else relayhost, else the domain's MX hosts
 * (queue_dns.h), through the SMTP client (queue_smtp.h); a local domain
 * straight to the store. Per recipient:
 * 2xx sent, 5xx failed, 4xx or no connection deferred until
 * queue_retry_min_s * 2^(attempts-1), at most queue_retry_max_s; past
 * queue_lifetime_s failed. Recipients failed in a run get one bounce
 * (queue_bounce.h), and once delay_warning_s has passed, deferred ones a
 * delay notice (once per message). A message with nothing left to try is
 * removed. At most queue_concurrency messages at once, and at most
 * queue_per_destination of them (one connection each) per next hop (the
 * MX domain, or a [route]'s or the relayhost's HOST:PORT): a message
 * whose destinations are all busy waits for a later scan (and is not
 * read again while they stay busy). A connection whose message is done
 * idles for the next message to its next hop (queue_smtp.h). Each
 * attempt is logged as Postfix does:
 *   ID: to=<rcpt>, relay=HOST[ADDR]:PORT, delay=S, status=sent (reply) */
#ifndef NODE_QUEUE_RUNNER_H
#define NODE_QUEUE_RUNNER_H

#include <ev.h>

#include "../../common/redis.h"
#include "../config/config.h"
#include "../config/directory.h"
#include "../store/store.h"
#include "queue.h"
#include "queue_sync.h"

struct queue_runner;

struct queue_runner_stats {
	unsigned long sent, deferred, failed; /* recipients, since start */
};

/* dir and store: recipients in local domains (bounces to local senders)
 * are delivered to the store; sync makes the removal of what was
 * delivered durable, off the loop. Returns NULL with a reason in err. */
struct queue_runner *
queue_runner_new(struct ev_loop *loop, const struct node_config *cfg,
		 struct queue *q, struct queue_sync *sync, struct redis *redis,
		 struct directory *dir, struct store *store, char *err,
		 size_t errlen);
/* Stops every delivery in flight (claims given back) and frees r. */
void queue_runner_free(struct queue_runner *r);
/* Stopping: no new delivery starts; those in flight go on. Returns how
 * many are in flight (call again to see them end). */
int queue_runner_drain(struct queue_runner *r);
/* id was just queued here: its delivery starts now when its next hop
 * has a slot (otherwise a later scan takes it). */
void queue_runner_queued(struct queue_runner *r, const char *id);
void queue_runner_stats(const struct queue_runner *r,
			struct queue_runner_stats *st);

#endif
