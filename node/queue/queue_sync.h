/* Group commit of the queue, off the event loop. An fsync costs
 * milliseconds, too long for the one libev loop every session shares,
 * and one message after the other bounds a node's submission rate by the
 * disk: queue_sync runs queue_commit (queue.h) on a few threads of its
 * own (QUEUE_SYNC_THREADS), each taking as one batch every message
 * written since the last batch was taken, and hands each job's verdict
 * back to the loop. While one batch is committed, the messages that
 * sessions write join the next one, which the next free thread commits
 * alongside (their fsyncs overlap: the journal's commits and the disk's
 * cache flushes are shared), so a batch costs about the same few waits
 * on the disk whatever its size.
 *
 * The pattern is auth_pool.h's: queue_sync_start() returns a job id (> 0)
 * and the callback later gets the caller's arg on the loop; a caller that
 * goes away first cancels its id, and then the callback is never called.
 * A cancelled job not yet taken into a batch is dropped (its files
 * removed: nothing was acknowledged); one being committed or committed
 * stays queued, and a runner's scan finds it. At most QUEUE_SYNC_MAX jobs
 * wait at once: past it queue_sync_start() returns 0 and the caller
 * answers a temporary failure.
 *
 * The threads also remove the messages the runner delivered: an unlink
 * or the last close of a file waits for the filesystem's journal, which
 * the commits keep busy, so those too are off the loop.
 *
 * Threads: the syncing threads share with the loop only the lists of
 * jobs waiting, being committed and done, and the removals to do, under
 * one mutex (a condition variable wakes a thread, one ev_async the
 * loop). A job's files are the job's own from queue_sync_start() on;
 * callbacks, ids and args never leave the loop's thread. */
#ifndef NODE_QUEUE_SYNC_H
#define NODE_QUEUE_SYNC_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"

#define QUEUE_SYNC_THREADS 4 /* batches committed at once, at most */
#define QUEUE_SYNC_MAX 4096  /* jobs waiting or being committed, at most */
#define QUEUE_SYNC_BATCH 256 /* jobs one batch takes, at most */
#define QUEUE_SYNC_GROUP 2   /* messages one job commits, at most */
#define QUEUE_SYNC_RM_FDS 2  /* fds one removal closes, at most */

struct queue_sync;

/* On the loop: the job's messages, each with its err (0: durable and
 * visible; otherwise its files are gone). */
typedef void (*queue_sync_cb)(void *arg, const struct queue_pending *p,
			      size_t n);

/* Starts the syncing threads for q. NULL when out of memory or no thread
 * can be started. */
struct queue_sync *queue_sync_new(struct ev_loop *loop, struct queue *q);
/* Stops and joins the threads (each finishes the batch it is on), drops the
 * jobs still waiting and frees the rest: no callback after it. */
void queue_sync_free(struct queue_sync *s);

/* Commits p[0..n) (n at most QUEUE_SYNC_GROUP, as queue_write left
 * them), taking them over. Returns the job id (> 0), or 0 when full or
 * out of memory: then the caller still has them (to drop) and cb is not
 * called. */
uint64_t queue_sync_start(struct queue_sync *s, const struct queue_pending *p,
			  size_t n, queue_sync_cb cb, void *arg);
/* The callback of job id will not be called; 0 or an id already done is
 * ignored. */
void queue_sync_cancel(struct queue_sync *s, uint64_t id);
/* Removes a delivered message off the loop (queue_unlink, then the
 * directory fsynced with the next batch or alone; nobody waits): its
 * files go, then fds[0..nfds) are closed in order (at most
 * QUEUE_SYNC_RM_FDS; the claim's flock last, so that no runner claims
 * the message while its ID.env is still there). A removal a crash undoes
 * only sends the message once more. Returns 0, or -1 (out of memory: the
 * caller still has the fds and removes it itself). */
int queue_sync_remove(struct queue_sync *s, const char *id, const int *fds,
		      size_t nfds);

#endif
