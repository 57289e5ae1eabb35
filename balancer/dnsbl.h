/* DNSBL lookups on a worker's loop: one c-ares channel per worker (no
 * lock: only that worker's thread touches it), its sockets and timeouts
 * watched by the worker's loop (wloop.h), and a small cache of answers per
 * worker.
 *
 * A client address is looked up in each zone as the reversed address
 * under the zone (1.2.0.192.zen.example for 192.0.2.1; IPv6 by nibbles).
 * An A answer in 127.0.0.0/8 lists it, except 127.255.255.0/24 (the
 * "query refused" codes of public lists); no answer, an error or no
 * answer before the deadline does not. A listing is cached for its TTL,
 * a non-listing for DNSBL_NEG_TTL_S. */
#ifndef LBD_DNSBL_H
#define LBD_DNSBL_H

#include <stddef.h>
#include <sys/socket.h>

#include "edge.h"
#include "wloop.h"

#define DNSBL_NEG_TTL_S 60
#define DNSBL_CACHE_SLOTS 1024	   /* direct-mapped, per worker */
#define DNSBL_ARES_TIMEOUT_MS 5000 /* c-ares's own, one try per server */

struct dnsbl;
struct dnsbl_query;

/* Called once per dnsbl_check() that was not cancelled, on the loop:
 * score is the sum of the weights of the zones that list the address
 * (those that answered in time); zone is the heaviest of them (NULL when
 * none); listed is score >= the threshold. */
typedef void dnsbl_done_fn(void *arg, int score, const char *zone, bool listed);

/* resolver: "HOST:PORT" (numeric), or "" for /etc/resolv.conf. Returns
 * NULL with the reason in err. */
struct dnsbl *dnsbl_new(struct wloop *loop, const char *resolver, char *err,
			size_t errlen);
/* Cancels what is pending (no callback runs) and frees. */
void dnsbl_free(struct dnsbl *d);

/* Looks sa up in zones[0..nzones). done runs later, never from inside
 * this call; at timeout_ms at the latest (what has not answered then
 * counts as not listing). Returns the query (to cancel), or NULL when
 * nothing can be looked up (done does not run: not listed). */
struct dnsbl_query *dnsbl_check(struct dnsbl *d, const struct sockaddr *sa,
				const struct edge_zone *zones, int nzones,
				int threshold, int timeout_ms,
				dnsbl_done_fn *done, void *arg);
/* The caller goes away: done will not run. */
void dnsbl_cancel(struct dnsbl_query *q);

/* Lookups sent to the resolver since start (tests: the cache works). */
unsigned long dnsbl_sent(const struct dnsbl *d);

#endif
