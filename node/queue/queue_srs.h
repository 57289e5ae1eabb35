/* SRS, the Sender Rewriting Scheme (SRS0 form), for mail forwarded by an
 * alias to a remote address: the envelope sender local@origin.example
 * becomes SRS0=HASH=TT=origin.example=local@our.domain, so SPF at the
 * destination checks our domain, and a bounce to that address finds its
 * way back: queue_srs_reverse() turns it into the original sender again.
 * HASH is 6 base32 characters of HMAC-SHA256 over TT, the origin domain
 * and the local part (lowercased) with the cluster's secret; TT the day
 * (days since 1970, modulo 1024) in 2 base32 characters; an address older
 * than SRS_MAX_AGE_DAYS is refused. The secret lives on the shared
 * filesystem, QUEUE/.srs-secret (mode 0600), made by the first node that
 * needs it, so every node computes the same hashes. */
#ifndef NODE_QUEUE_SRS_H
#define NODE_QUEUE_SRS_H

#include <stddef.h>

#include "queue.h"

#define SRS_MAX_AGE_DAYS 21

/* The SRS0 form of sender for forwarding through domain, into out.
 * Returns 0, or -1 with errno (ENAMETOOLONG, or the secret unreadable).
 * The null sender is not rewritten (out ""). */
int queue_srs_forward(struct queue *q, const char *sender, const char *domain,
		      char *out, size_t outlen);

/* When rcpt's local part is an SRS0 address: 1 with the original address
 * in out; -1 when it is one but its hash or age is wrong; 0 when it is
 * not SRS at all. */
int queue_srs_reverse(struct queue *q, const char *rcpt, char *out,
		      size_t outlen);

#endif
