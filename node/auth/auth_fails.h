/* Failed logins counted per client address and per user, cluster-wide in
 * Redis (ms:loginfail:addr:ADDR, ms:loginfail:user:USER, each an INCR
 * whose key expires window_s after its first failure) and in this node's
 * memory too, so that the counts go on while Redis is away: a read takes
 * the larger of the two. The memory table is bounded: when it is full, the
 * entry that expires first among the few a key may use makes room.
 *
 * Addresses are the caller's strings (auth_login.c makes them: an IPv6
 * client counts per /64). */
#ifndef NODE_AUTH_FAILS_H
#define NODE_AUTH_FAILS_H

#include <stdint.h>

#include "../../common/redis.h"

#define AUTH_FAILS_KEY_MAX 320 /* prefix and an address or user name */

struct auth_fails;

struct auth_fails_count {
	long addr, user; /* failures in the window */
	long addr_ttl_s; /* until the address's count ends (>= 1) */
};

/* window_s: how long a count lives after its first failure; local_max:
 * entries in this node's table. NULL on out of memory. */
struct auth_fails *auth_fails_new(struct redis *r, int window_s,
				  size_t local_max);
void auth_fails_free(struct auth_fails *f);

/* This node's own counts of addr and user, into *c. */
void auth_fails_local(struct auth_fails *f, const char *addr, const char *user,
		      struct auth_fails_count *c);
/* Asks Redis for the counts of addr and user: returns the request id
 * (cb gets the reply, for auth_fails_merge), or 0 when Redis is away (no
 * cb). Cancel with redis_cancel(). */
uint64_t auth_fails_read(struct auth_fails *f, const char *addr,
			 const char *user, redis_cb cb, void *arg);
/* Raises *c to the counts in reply (auth_fails_read's), when it holds
 * them; a NULL or bad reply leaves *c alone. */
void auth_fails_merge(const redisReply *reply, struct auth_fails_count *c);
/* Counts one failure of addr and user, here and in Redis. Returns the
 * request id (cb once Redis has counted it, so that the next read
 * anywhere sees it), or 0 when Redis is away (no cb). */
uint64_t auth_fails_add(struct auth_fails *f, const char *addr,
			const char *user, redis_cb cb, void *arg);

#endif
