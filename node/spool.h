/* This node's own spool (local disk): where incoming messages are written
 * while the DATA arrives, and where they wait, durably, when the shared
 * store cannot take them. A timer retries them; a restarted node finishes
 * what its spool holds.
 *
 * Layout: SPOOL/incoming (O_TMPFILE files being received),
 *         SPOOL/queue/ID.msg + SPOOL/queue/ID.env (envelope: sender,
 *         recipients, the prefix), each written and fsynced before rename.
 */
#ifndef NODE_SPOOL_H
#define NODE_SPOOL_H

#include <ev.h>
#include <stddef.h>

#include "store.h"

struct spool;

/* Opens (creating) dir and its subdirectories. retry_s: how often queued
 * messages are retried. Returns NULL with errno set. */
struct spool *spool_open(struct ev_loop *loop, const char *dir,
    struct store *store, int retry_s);
void spool_close(struct spool *sp);

/* A new anonymous file for an incoming message (O_TMPFILE, O_RDWR) in the
 * spool; closing it without spool_enqueue() leaves nothing. Returns the
 * fd or -1. */
int spool_tmpfile(struct spool *sp);

/* Makes the message in fd (len bytes) durable in the queue for rcpts,
 * with prefix to write before it on delivery. Returns 0 once the message
 * and its envelope are fsynced in queue/, or -1 with errno. */
int spool_enqueue(struct spool *sp, int fd, size_t len, const char *sender,
    const char *const *rcpts, size_t n, const char *prefix);

/* Tries to deliver every queued message to the store now (the timer calls
 * it; mailnode calls it at start). Returns how many remain queued. */
size_t spool_run(struct spool *sp);
/* Messages waiting in the queue. */
size_t spool_pending(const struct spool *sp);

#endif
