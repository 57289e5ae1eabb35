/* mailctl user quota-recount: a user's usage counted again from the
 * shared store (mailctl_quota.c). */
#ifndef NODE_MAILCTL_QUOTA_H
#define NODE_MAILCTL_QUOTA_H

#include <stdint.h>

/* Recounts address's usage in the store at root for limit (0: none),
 * rewriting its maildirsize (store/quota.h), and prints it: "ADDRESS
 * BYTES bytes, COUNT messages, limit LIMIT|none". Returns 0, or -1 after
 * saying why on stderr. */
int mailctl_quota_recount(const char *root, const char *address,
			  uint64_t limit);

#endif
