/* This node's own spool (local disk): where incoming messages are written
 * while the DATA arrives, and where they wait, durably, when the shared
 * store cannot take them. A timer retries them; a restarted node finishes
 * what its spool holds.
 *
 * Layout: SPOOL/incoming (O_TMPFILE files being received),
 *         SPOOL/queue/ID.msg + SPOOL/queue/ID.env (envelope: sender,
 *         recipients, the prefix), each written and fsynced before rename.
 *
 * ID is TIME.USEC P<pid> Q<seq>. ID.msg (the message without prefix) is
 * fsynced and linked (or copied) and queue/ fsynced before ID.env
 * appears; ID.env is written as ID.env.tmp, fsynced, renamed, and queue/
 * fsynced. Its format (text, one item a line, then the prefix's bytes):
 *   mailswitch-spool 1
 *   sender ADDRESS        (empty for the null sender)
 *   rcpt ADDRESS          (one line each, at least one)
 *   size N                (bytes of ID.msg)
 *   prefix N              (then exactly N bytes of prefix to end of file)
 * What a crash or a hand can leave is dealt with by spool_run(): *.tmp and
 * an ID.msg with no ID.env are removed; an ID.env that does not parse,
 * whose ID.msg is missing or of the wrong size, or that names a recipient
 * the store refuses as an address, is renamed ID.env.bad (its message
 * ID.msg.bad) with a log line naming the file, and the others go on.
 */
#ifndef NODE_SPOOL_H
#define NODE_SPOOL_H

#include <ev.h>
#include <stddef.h>

#include "store.h"

struct spool;

/* Opens (creating, with its parents, mode 0700) dir and its subdirectories.
 * retry_s (> 0): how often queued messages are retried; the timer runs
 * only while messages are queued, including those found at open. Returns
 * NULL with errno set. */
struct spool *spool_open(struct ev_loop *loop, const char *dir,
    struct store *store, int retry_s);
void spool_close(struct spool *sp);

/* A new anonymous file for an incoming message (O_TMPFILE, O_RDWR) in the
 * spool; closing it without spool_enqueue() leaves nothing. When the
 * filesystem refuses O_TMPFILE, a mkstemp() file unlinked at once (and
 * spool_enqueue() copies instead of linking). Returns the fd or -1. */
int spool_tmpfile(struct spool *sp);

/* Makes the message in fd (its first len bytes) durable in the queue for
 * rcpts, with prefix to write before it on delivery. fd stays the
 * caller's, to close (never to truncate: it may now be ID.msg). sender
 * and rcpts must hold no CR or LF (EINVAL), n > 0. Returns 0 once the
 * message and its envelope are fsynced in queue/, or -1 with errno and
 * nothing left in queue/. */
int spool_enqueue(struct spool *sp, int fd, size_t len, const char *sender,
    const char *const *rcpts, size_t n, const char *prefix);

/* Tries to deliver every queued message to the store now (the timer calls
 * it; mailnode calls it at start). Nothing is tried while
 * store_writable() fails. Each copy delivered is announced, as every
 * delivery is (store_deliver, notice.h). A message delivered to every
 * recipient is removed (ID.env, then ID.msg); one delivered to some has
 * its envelope rewritten with the others. Returns how many remain
 * queued. */
size_t spool_run(struct spool *sp);
/* Messages waiting in the queue. */
size_t spool_pending(const struct spool *sp);

#endif
