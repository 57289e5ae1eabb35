/* The header cache of a node: the header section of messages (CRLF
 * lines, the blank line included, as the session reads them), shared by
 * the node's IMAP sessions, for SEARCH on header fields (FROM, SUBJECT,
 * HEADER, SENT*) and FETCH of ENVELOPE and BODY[HEADER...] without
 * opening and parsing each message again.
 *
 * Why in memory, per node, and not on disk beside the Maildir (as
 * Dovecot's dovecot.index.cache): a Maildir message file never changes
 * after delivery, only its name after ":2," (the flags) does, so an entry
 * keyed by the mailbox and the name's unique part (before ":2,") is right
 * for as long as the file exists, whatever flags other nodes set; nothing
 * needs invalidating but memory. An on-disk cache shared by every node
 * would survive restarts and warm once for all nodes, but would need
 * locking between nodes on the shared store, crash-safe appends and a
 * format to check on every read; a node's private memory needs none of
 * that, at the price of each node reading a message once before its
 * header is cached. Whether a message still exists is never the cache's
 * business: the session asks only for messages its synced list holds,
 * and forgets (imap_cache_forget) what it saw expunged.
 *
 * Bounded: entries (key, header and bookkeeping) sum to at most the
 * configured bytes ([node] imap_header_cache); the least recently used
 * go first. A header section larger than a sixteenth of the bound is not
 * kept. One thread (the node's event loop) uses it: no lock. */
#ifndef NODE_IMAP_CACHE_H
#define NODE_IMAP_CACHE_H

#include <stddef.h>

struct imap_cache;

/* A cache of at most max bytes; max 0 keeps nothing (every get misses).
 * NULL when memory is short. */
struct imap_cache *imap_cache_new(size_t max);
void imap_cache_free(struct imap_cache *c);

/* The cached header of the message file `name` (its unique part counts;
 * flags after ":2," do not) of the Maildir dir, or NULL. The pointer
 * stays valid until the next put or forget on c. A hit makes the entry
 * the most recently used. */
const char *imap_cache_get(struct imap_cache *c, const char *dir,
			   const char *name, size_t *len);
/* Keeps hdr[0..len) for (dir, name), replacing what was there, evicting
 * the least recently used entries to stay within the bound. Returns 0,
 * or -1 when it is not kept (too large, or memory short). */
int imap_cache_put(struct imap_cache *c, const char *dir, const char *name,
		   const char *hdr, size_t len);
/* Drops the entry of (dir, name), if any. */
void imap_cache_forget(struct imap_cache *c, const char *dir, const char *name);

/* Bytes held and entries, for tests and logs. */
size_t imap_cache_bytes(const struct imap_cache *c);
size_t imap_cache_count(const struct imap_cache *c);

#endif
