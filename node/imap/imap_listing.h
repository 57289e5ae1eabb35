/* The node's last listings of the mailboxes its IMAP sessions scanned,
 * so that a SELECT of a mailbox nobody changed since (on any node) costs
 * a copy of the listing instead of a readdir and sort of its cur/.
 *
 * A listing is taken as imap_mailbox_sync always checked for changes:
 * the mtimes of cur/ and new/ first, then maildir_scan. Every change to a
 * Maildir (delivery into new/, UIDs given, flags set, expunge, APPEND,
 * COPY) renames or removes a file in cur/ or new/ and so sets that
 * directory's mtime. A listing is reused only while both mtimes are still
 * those read before it was taken, and only when they were at least
 * IMAP_LISTING_SETTLE_S seconds older than the clock then: a change
 * made during or after the scan gets a later mtime, even on a file
 * system whose timestamps move in coarse ticks (Dovecot's maildir code
 * trusts a directory's mtime on the same terms). Otherwise the mailbox is
 * scanned again. The UIDNEXT kept is the listing's.
 *
 * Bounded: at most IMAP_LISTINGS mailboxes and IMAP_LISTING_MSGS
 * messages over all of them (a larger mailbox is not kept), the least
 * recently used dropped first. A listing taken while the mtimes were
 * not yet settled is not kept. One thread (the node's event loop): no
 * lock. */
#ifndef NODE_IMAP_LISTING_H
#define NODE_IMAP_LISTING_H

#include <stdbool.h>
#include <time.h>

#include "../store/maildir.h"

#define IMAP_LISTINGS 16
#define IMAP_LISTING_MSGS 100000
#define IMAP_LISTING_SETTLE_S 2

struct imap_listings;

struct imap_listings *imap_listings_new(void);
void imap_listings_free(struct imap_listings *ls);

/* dir's listing into out (the caller's, freed with maildir_list_free),
 * as maildir_scan gives it: the kept one when dir is unchanged since,
 * else a fresh scan (then kept). *cur_mtime and *new_mtime are what the
 * listing is as of (left alone when a stat fails). ls NULL: always a
 * scan. Returns 0, or -1 with errno as maildir_scan. */
int imap_listing_scan(struct imap_listings *ls, const char *dir,
		      struct maildir_list *out, struct timespec *cur_mtime,
		      struct timespec *new_mtime);

/* dir/sub's mtime into *t; false when it cannot be stat'ed. */
bool imap_mtime(const char *dir, const char *sub, struct timespec *t);
bool imap_ts_eq(struct timespec a, struct timespec b);

#endif
