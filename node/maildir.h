/* Reading a user's Maildir (and its Maildir++ folders) for the API and,
 * later, IMAP: messages of new/ and cur/ with IMAP-style UIDs that are the
 * same on every node and rise in the order messages become visible.
 *
 * A message gets its UID the first time a session sees it, under an
 * exclusive flock on MAILDIR/mailswitch-uidlock: the high-water mark
 * MAILDIR/mailswitch-uidnext is raised first (temp file, fsync, rename),
 * then new/NAME moves to cur/NAME,U=<uid>:2,<flags> (Maildir info: S seen,
 * R replied, F flagged, T trashed, D draft) and both directories are
 * fsynced, all before the lock is released. The UID travels with the file
 * name; the mark is reconciled with max() of what cur/ holds.
 * MAILDIR/mailswitch-uidvalidity is written once and never changed. */
#ifndef NODE_MAILDIR_H
#define NODE_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAILDIR_NAME_MAX 255	   /* a file name in cur/ */
#define MAILDIR_MBOX_MAX 200	   /* a folder name, without its dot */
#define MAILDIR_HDR_MAX 1024	   /* a header value we report */
#define MAILDIR_LOCK_WAIT_MS 10000 /* then the scan fails with ETIMEDOUT */

struct maildir_msg {
	uint32_t uid;
	char name[MAILDIR_NAME_MAX + 1]; /* in cur/ */
	char flags[32];			 /* the letters after ":2," */
	uint64_t size;			 /* ,S= or the file's size */
};

struct maildir_list {
	uint32_t uidvalidity;
	uint32_t uidnext;
	struct maildir_msg *msg; /* sorted by uid */
	size_t n, cap;
};

/* Gives UIDs to what new/ holds (and to files in cur/ without one), then
 * lists cur/ into out, sorted by UID. dir is a Maildir (cur, new, tmp).
 * Returns 0, or -1 with errno (ENOENT: no such Maildir, ETIMEDOUT: the
 * lock stayed taken). out is empty on failure; free it either way. */
int maildir_scan(const char *dir, struct maildir_list *out);
void maildir_list_free(struct maildir_list *l);

const struct maildir_msg *maildir_find(const struct maildir_list *l,
				       uint32_t uid);
/* Messages without the S (seen) flag. */
size_t maildir_unseen(const struct maildir_list *l);

/* The Maildir of mailbox under the user's Maildir: "INBOX" (any case) is
 * userdir itself, a Maildir++ folder "Name" (or "Parent.Child") is
 * userdir/.Name. Refuses (EINVAL) names that could leave userdir or are
 * not folder names: empty, "/", "..", a leading or trailing '.', empty
 * levels, control bytes, longer than MAILDIR_MBOX_MAX. Returns 0 or -1. */
int maildir_mailbox_path(const char *userdir, const char *mailbox, char *out,
			 size_t outlen);

/* The Maildir++ folders of userdir (directories ".Name" holding cur/),
 * names without the dot, sorted, into a malloc'ed array the caller frees.
 * A missing userdir has none. Returns 0, or -1 with errno. */
int maildir_folders(const char *userdir, char (**names)[MAILDIR_MBOX_MAX + 1],
		    size_t *n);

struct maildir_headers {
	char from[MAILDIR_HDR_MAX];
	char subject[MAILDIR_HDR_MAX];
	char date[MAILDIR_HDR_MAX];
};

/* From, Subject and Date of the message in fd (read from offset 0, header
 * section only, at most 64 KiB): unfolded, trimmed, cut to fit, bytes that
 * are not valid UTF-8 replaced by '?'. A missing field is "". Returns 0,
 * or -1 with errno on a read error. */
int maildir_read_headers(int fd, struct maildir_headers *h);

#endif
