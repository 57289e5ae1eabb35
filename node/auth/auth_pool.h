/* Password checks off the event loop. A crypt(3) check costs tens of
 * milliseconds (yescrypt about 85 ms), too long for the one libev loop
 * every session shares: auth_pool runs auth_verify() (auth.h) on a small
 * fixed set of hashing threads and hands each result back to the loop.
 *
 * The pattern is common/redis.h's: auth_pool_start() returns a job id
 * (> 0) and the callback later gets the caller's arg on the loop; a
 * session that closes first cancels its id, and then the callback is never
 * called (a job already being hashed finishes and its result is dropped).
 * The pool is bounded: when it holds queue_max jobs, or source_max jobs
 * of one source (a client address), auth_pool_start() returns 0 and the
 * caller answers a temporary failure. Sources take turns, one job each:
 * a flood from one address cannot starve the others.
 *
 * Threads: the hashing threads share with the loop only the pool's queue
 * of jobs to hash, its list of jobs done and its counters, all under one
 * mutex (a condition variable wakes the threads, one ev_async the loop).
 * A job's hash and password are copies the job owns; its password is
 * wiped as soon as it is hashed (or cancelled). Callbacks, ids and the
 * user names never leave the loop's thread. */
#ifndef NODE_AUTH_POOL_H
#define NODE_AUTH_POOL_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../config/directory.h"

#define AUTH_POOL_THREADS_MAX 16
#define AUTH_POOL_QUEUE 256	/* jobs the node's pool holds at most */
#define AUTH_POOL_PER_SOURCE 32 /* ... of them from one client address */
#define AUTH_POOL_SOURCE_MAX 64 /* a source's key, NUL included */

struct auth_pool;

/* On the loop: ok as auth_verify() answers it, for the user (lowercase,
 * as given to auth_pool_start) the job checked. */
typedef void (*auth_pool_cb)(void *arg, bool ok, const char *user);

/* Starts nthreads hashing threads (0: one per CPU, at most 4; at most
 * AUTH_POOL_THREADS_MAX) holding at most queue_max jobs, source_max of
 * them from one source (0: queue_max). Returns NULL on out of memory or
 * when no thread can be started. */
struct auth_pool *auth_pool_new(struct ev_loop *loop, int nthreads,
				size_t queue_max, size_t source_max);
/* Stops and joins the threads (each finishes the job it is on) and frees
 * every job left: no callback is called after it. */
void auth_pool_free(struct auth_pool *p);

/* Checks password against user's hash in d (d NULL or an unknown user:
 * the dummy hash, same cost, answer false) for source (the client's
 * address, as auth_login.h keys it; cut to AUTH_POOL_SOURCE_MAX). Returns
 * the job id (> 0), or 0 when the pool or source is full or out of
 * memory: then cb is not called. */
uint64_t auth_pool_start(struct auth_pool *p, const struct directory *d,
			 const char *source, const char *user,
			 const char *password, auth_pool_cb cb, void *arg);
/* The same for a hash the caller has (NULL: unknown user). */
uint64_t auth_pool_verify(struct auth_pool *p, const char *hash,
			  const char *source, const char *user,
			  const char *password, auth_pool_cb cb, void *arg);
/* The callback of job id will not be called; 0 or an id already done is
 * ignored. */
void auth_pool_cancel(struct auth_pool *p, uint64_t id);

#endif
