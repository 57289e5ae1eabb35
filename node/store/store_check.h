/* The /health check of the shared store, off the request path and off
 * the loop. Every interval a timer asks one checking thread to run
 * store_writable() (a probe file written, fsynced and unlinked, some
 * milliseconds on a real disk, for ever on a hard-mounted NFS whose server
 * is gone); the thread hands the verdict back through an ev_async, and
 * /health reports the last one. A check never starts while the previous
 * one runs, so a hung store costs one thread, not the loop, and a check
 * running for longer than STORE_CHECK_STALL seconds counts as failed.
 *
 * Threads: the thread and the loop share only the request flag, the
 * verdict and the stop flag, under one mutex (a condition variable wakes
 * the thread). The thread works on its own copy of struct store, so the
 * loop's counter for unique names is never touched from it. */
#ifndef NODE_STORE_CHECK_H
#define NODE_STORE_CHECK_H

#include <ev.h>
#include <stdbool.h>

#include "store.h"

#define STORE_CHECK_INTERVAL 1.0 /* seconds between checks */
#define STORE_CHECK_STALL 5.0	 /* a check running longer has failed */

struct store_check;

/* Starts the thread and the timer; the first check runs at once. Returns
 * NULL when out of memory or no thread can be started. */
struct store_check *store_check_new(struct ev_loop *loop,
				    const struct store *st, double interval);
/* Stops the timer and the thread. A thread stuck in a check is left
 * behind (detached, with what it uses): the process is ending. */
void store_check_free(struct store_check *c);
/* The last verdict: true when the last check succeeded and the one
 * running (if any) started less than STORE_CHECK_STALL seconds ago.
 * False until the first check has answered. */
bool store_check_ok(const struct store_check *c);
/* How long the last check took, in seconds, or how long the one still
 * running has taken when that is longer (a hung store shows growing). */
double store_check_seconds(const struct store_check *c);
/* Checks finished since the start (for tests and logs). */
unsigned long store_check_count(const struct store_check *c);

#endif
