/* A login attempt, the same for every protocol (SMTP AUTH, IMAP, POP3,
 * HTTP): what password guessing costs. Each attempt goes through
 *
 *   counting  the failures of its client address and of its user are
 *             read (auth_fails.h: cluster-wide in Redis, this node's own
 *             while Redis is away);
 *   held      while the address's failures plus its earlier attempts
 *             still in progress on this node reach the limit (each may
 *             fail): counted again as those end, so a burst cannot pass
 *             the limit before its first failure is counted;
 *   waiting   refused at once when its address has failed limit times in
 *             the window (AUTH_LOGIN_REFUSED, retry_s until the window
 *             ends); otherwise delayed on a timer, never blocking the
 *             loop, by delay_ms doubled for each failure of the address
 *             or of the user beyond the first (whichever has more), at
 *             most delay_max_ms;
 *   hashing   the password is checked on the hashing threads
 *             (auth_pool.h, queued fairly per address);
 *   recording a failure is counted (and Redis has it) before the answer.
 *
 * A user's failures only delay: a stranger who guesses bob's password
 * from one address gets that address refused, while bob from another
 * address still gets in (as Dovecot's auth penalty, which is per
 * address). An IPv6 client counts per /64.
 *
 * The callback pattern is auth_pool.h's: auth_login_start() returns an id
 * (> 0), the callback comes later on the loop (never from inside
 * auth_login_start), and a session that closes first cancels its id. */
#ifndef NODE_AUTH_LOGIN_H
#define NODE_AUTH_LOGIN_H

#include <stdint.h>
#include <sys/socket.h>

#include "../../common/redis.h"
#include "../config/config.h"
#include "../config/directory.h"
#include "auth_pool.h"

enum auth_login_result {
	AUTH_LOGIN_OK,
	AUTH_LOGIN_FAILED,  /* wrong user or password (counted) */
	AUTH_LOGIN_REFUSED, /* too many failures from the address: retry_s */
	AUTH_LOGIN_BUSY,    /* the hashing queue is full: try again soon */
};

/* On the loop: user (lowercase, as given to auth_login_start) and, for
 * AUTH_LOGIN_REFUSED, the seconds until the address may try again. */
typedef void (*auth_login_cb)(void *arg, enum auth_login_result res,
			      const char *user, long retry_s);

struct auth_login;

/* Attempts use pool for hashing, r for counting, the limits of lim (kept
 * by pointer: the config outlives the node). NULL on out of memory. */
struct auth_login *auth_login_new(struct auth_pool *pool, struct redis *r,
				  const struct login_limits *lim);
/* Frees every attempt left: no callback after it. */
void auth_login_free(struct auth_login *l);

/* Starts an attempt of user (lowercased by the caller) with password
 * against d from the client at peer. Returns its id (> 0), or 0 on out
 * of memory (cb never called). The password is copied and wiped once
 * hashed. */
uint64_t auth_login_start(struct auth_login *l, const struct directory *d,
			  const struct sockaddr *peer, const char *user,
			  const char *password, auth_login_cb cb, void *arg);
/* The callback of attempt id will not be called; 0 or an id already
 * answered is ignored. */
void auth_login_cancel(struct auth_login *l, uint64_t id);

#endif
