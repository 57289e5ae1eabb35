/* A user's Maildir (and its Maildir++ folders) for IMAP, POP3 and the
 * API: messages of new/ and cur/ with IMAP-style UIDs that are the same
 * on every node and rise in the order messages become visible. One file
 * per thing it holds: names (maildir_name.c), scanning and UIDs
 * (maildir_uid.c), messages (maildir_msg.c), folders (maildir_folder.c).
 *
 * A message gets its UID the first time a session sees it
 * (maildir_assign), under the mailbox's Redis lease when the node has one
 * (uid_lease.h) and an exclusive flock on MAILDIR/mailswitch-uidlock: the
 * high-water mark MAILDIR/mailswitch-uidnext is raised first (temp file,
 * fsync, rename) from max(the mark, the lease's counter, the highest U=
 * in cur/), then new/NAME moves to cur/NAME,U=<uid>:2,<flags> (Maildir
 * info: S seen, R replied, F flagged, T trashed, D draft) and both
 * directories are fsynced, all before the locks are released. The UID
 * travels with the file name. A scan that finds nothing to assign
 * (maildir_scan) needs no lease: it lists cur/ under the flock and counts
 * what waits as `pending`. APPEND and COPY reserve from the mark and the
 * counter alone, without reading cur/.
 * MAILDIR/mailswitch-uidvalidity is written once and never changed.
 *
 * Test only: MAILSWITCH_TEST_NO_FLOCK=1 in the environment (read once)
 * makes the UID flock a no-op, as on a store whose flock does not reach
 * other hosts, so that tests show the lease alone keeps UIDs ordered. */
#ifndef NODE_MAILDIR_H
#define NODE_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MAILDIR_NAME_MAX 255	   /* a file name in cur/ */
#define MAILDIR_MBOX_MAX 200	   /* a folder name, without its dot */
#define MAILDIR_HDR_MAX 1024	   /* a header value we report */
#define MAILDIR_LOCK_WAIT_MS 10000 /* then the scan fails with ETIMEDOUT */
#define MAILDIR_FLAG_TRIES 64	   /* renames lost in a row, then EAGAIN */

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
	size_t pending; /* waiting for maildir_assign: files of new/, and of
			   cur/ without a UID */
};

/* The copy of a mailbox's UID counter kept with its lease (uid_lease.h):
 * given to an assignment as a floor for the next UID, set by it to the
 * mailbox's UIDVALIDITY and UIDNEXT. A floor of another UIDVALIDITY (the
 * mailbox was made again) is ignored. */
struct maildir_counter {
	uint32_t uidvalidity;
	uint32_t uidnext;
};

/* ---- names (maildir_name.c) ---- */

/* A Maildir unique name for a file of size bytes, as the store delivers:
 * TIME.M<usec>P<pid>Q<q>.HOST,S=<size>, host already escaped (struct
 * store's hostname, which store_init escapes once), short enough that
 * ",U=<uid>:2,<flags>" still fits in a name. wire, when neither 0 nor
 * size, is the size with CRLF line ends of a file stored with LF (a copy
 * of a message from another program): ",W=<wire>" follows when the name
 * has room. The caller makes it unique in its directory by creating it
 * with O_EXCL (and trying another q on EEXIST). Returns 0, or -1 with
 * errno (ENAMETOOLONG). */
int maildir_unique_name(const char *host, unsigned q, uint64_t size,
			uint64_t wire, char *out, size_t outlen);

/* The Maildir of mailbox under the user's Maildir: "INBOX" (any case) is
 * userdir itself, a Maildir++ folder "Name" (or "Parent.Child") is
 * userdir/.Name. Refuses (EINVAL) names that could leave userdir or are
 * not folder names: empty, "/", "..", a leading or trailing '.', empty
 * levels, control bytes, longer than MAILDIR_MBOX_MAX. Returns 0 or -1. */
int maildir_mailbox_path(const char *userdir, const char *mailbox, char *out,
			 size_t outlen);
/* A mailbox's name as every module tells it (notices, IMAP's answers):
 * "INBOX" for INBOX in any case, any other name as it is. */
const char *maildir_mailbox_canon(const char *mailbox);

/* ---- scanning and UIDs (maildir_uid.c) ---- */

/* Lists cur/ into out, sorted by UID, under the flock: what has a UID.
 * Gives none; out->pending counts what waits for one. dir is
 * a Maildir (cur, new, tmp). Returns 0, or -1 with errno (ENOENT: no such
 * Maildir, ETIMEDOUT: the lock stayed taken). out is empty on failure;
 * free it either way. */
int maildir_scan(const char *dir, struct maildir_list *out);
/* Gives UIDs to what new/ holds (and to files in cur/ without one) under
 * the flock, as the caller holds the mailbox's lease (or runs without
 * one), from the floor in *ctr (NULL: none), then lists as maildir_scan
 * does and sets *ctr. pending is 0 unless the UID space is spent (a
 * message holds 4294967295): then what is new waits, unlisted. Same
 * returns. */
int maildir_assign(const char *dir, struct maildir_counter *ctr,
		   struct maildir_list *out);
void maildir_list_free(struct maildir_list *l);

const struct maildir_msg *maildir_find(const struct maildir_list *l,
				       uint32_t uid);
/* Finds m again by its UID after another session renamed its file (new
 * flags): a fresh maildir_scan, *m updated. Returns 0, or -1 with errno
 * (ENOENT: the message is gone). */
int maildir_refind(const char *dir, struct maildir_msg *m);
/* Messages without the S (seen) flag. */
size_t maildir_unseen(const struct maildir_list *l);

/* \Recent (maildir_recent.c): a message is recent in exactly one
 * session (RFC 3501 2.3.2), the first to see it. MAILDIR/mailswitch-recent
 * holds the first UID no session has claimed, raised under its dotlock
 * (maildir_dotlock.c), so that sessions on different nodes claim
 * disjoint ranges. Claims [*from, uidnext) for the caller, raising the
 * mark to uidnext (*from is uidnext when others claimed it all); with
 * peek (EXAMINE, STATUS) claims nothing and *from is the mark. Returns
 * 0, or -1 with errno (*from then uidnext: nothing recent). */
int maildir_recent_claim(const char *dir, uint32_t uidnext, bool peek,
			 uint32_t *from);

/* ---- messages (maildir_msg.c) ----
 * dir is a mailbox's Maildir (as maildir_mailbox_path gives it). Every
 * change is durable when it returns 0 (files and the directories they
 * moved in fsynced). */

/* Opens m's file in cur/ for reading, following a rename by another
 * session (new flags: the file with m's base name, which holds its UID,
 * is opened instead, and m->name and m->flags are updated). The one way
 * to open a message. Returns the fd, or -1 with errno (ENOENT: the
 * message is gone, expunged). */
int maildir_open(const char *dir, struct maildir_msg *m);

/* Sets m's flags to the Maildir info letters `flags` (any order; stored
 * sorted, duplicates dropped): renames cur/NAME within cur/ and updates
 * m->name and m->flags. Returns 0 (also when nothing changes), or -1 with
 * errno (ENOENT: the message is gone, expunged by another session). */
int maildir_set_flags(const char *dir, struct maildir_msg *m,
		      const char *flags);
/* Adds the letters of add to m's flags and takes those of del away, as
 * the flags are on the store at that moment, not as m remembers them: the
 * file's current name is read, changed and renamed; a rename lost to
 * another session's (the name changed in between) starts again from the
 * new name, up to MAILDIR_FLAG_TRIES times, so concurrent changes of
 * different letters, from any node, all hold. m->name and m->flags become
 * the file's; *renamed (NULL: not wanted) tells whether this call changed
 * them on the store. del NULL takes every letter away (the flags become
 * add's, as maildir_set_flags sets them). Returns 0, or -1 with errno
 * (ENOENT: the message is gone; EAGAIN: every try lost). */
int maildir_change_flags(const char *dir, struct maildir_msg *m,
			 const char *add, const char *del, bool *renamed);

/* Removes m's file, following a rename as maildir_open does, and fsyncs
 * cur/. A file already gone counts as done. Returns 0 or -1 with errno. */
int maildir_expunge(const char *dir, const struct maildir_msg *m);

/* The message's INTERNALDATE: its file's mtime (APPEND and COPY set it).
 * Returns 0 or -1 with errno. */
int maildir_internaldate(const char *dir, const struct maildir_msg *m,
			 time_t *t);

/* APPEND: writes data[0..len) to dir/tmp and fsyncs it, sets its mtime
 * to internaldate (0: now), then, under the mailbox's UID flock (the
 * caller holds its lease, or runs without one), gives it the next UID
 * from the mark and the floor in *ctr (NULL: none), and renames it into
 * cur/ with the info letters flags, so that it becomes visible in UID
 * order; *ctr is set as maildir_assign sets it. hostname, escaped as
 * struct store's is, makes the name unique. *uid is the new UID;
 * *uidvalidity the mailbox's. Returns 0, or -1 with errno (nothing left
 * in tmp/ or cur/). */
int maildir_append(const char *dir, const char *hostname, const void *data,
		   size_t len, const char *flags, time_t internaldate,
		   struct maildir_counter *ctr, uint32_t *uidvalidity,
		   uint32_t *uid);

/* COPY/MOVE: copies msgs[0..n) of srcdir into dstdir (a hard link when
 * both are on one filesystem, else a copy written as maildir_append
 * does), keeping flags (keywords as dstdir names them:
 * maildir_keywords_map) and mtime, under dstdir's UID flock taken once
 * (and its lease, which the caller holds), so the copies get consecutive
 * UIDs in the order given; uids[i] is the UID of msgs[i]'s copy,
 * *uidvalidity dstdir's, *ctr (NULL: none) as maildir_append. A source
 * file gone meanwhile fails the whole copy with ENOENT, and copies
 * already made are removed (all or nothing, RFC 3501 6.4.7). Returns 0 or
 * -1 with errno. */
int maildir_copy(const char *srcdir, const struct maildir_msg *msgs, size_t n,
		 const char *dstdir, const char *hostname,
		 struct maildir_counter *ctr, uint32_t *uidvalidity,
		 uint32_t *uids);

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

/* ---- keywords (maildir_keywords.c) ----
 * IMAP keywords as Dovecot keeps them: MAILDIR/dovecot-keywords lists
 * "index name" lines, and the letter 'a' + index follows the standard
 * flags in a message's name (":2,Sab"). 26 letters: a mailbox holds at
 * most 26 keywords. The file is replaced whole under its dotlock
 * (dovecot-keywords.lock, O_EXCL, as Dovecot locks it), re-read under
 * it, so keywords two nodes add at once all stay. */
#define MAILDIR_KEYWORDS 26
#define MAILDIR_KEYWORD_MAX 64 /* bytes of one keyword */
#define MAILDIR_KEYWORDS_FILE "dovecot-keywords"

struct maildir_keywords {
	char name[MAILDIR_KEYWORDS][MAILDIR_KEYWORD_MAX + 1]; /* "": free */
};

/* A keyword that may be stored: an IMAP atom not starting with a backslash, at
 * most MAILDIR_KEYWORD_MAX bytes. */
bool maildir_keyword_valid(const char *name);
/* dir's keywords into kw (none when the file is missing; lines that are
 * not a valid "index name" skipped). Returns 0 or -1 with errno. */
int maildir_keywords_read(const char *dir, struct maildir_keywords *kw);
/* The index of name (case-insensitive) in kw, or -1. */
int maildir_keyword_index(const struct maildir_keywords *kw, const char *name);
/* The indexes of names[0..n) in dir's keywords as *bits (bit i: letter
 * 'a' + i), adding those missing to the file under its dotlock; kw
 * becomes the file's content. Returns 0, or -1 with errno (ENOSPC: no
 * letter left for one of them, nothing added; EINVAL: a name not
 * valid; ETIMEDOUT: the lock stayed taken). */
int maildir_keywords_add(const char *dir,
			 const char (*names)[MAILDIR_KEYWORD_MAX + 1], size_t n,
			 struct maildir_keywords *kw, uint32_t *bits);
/* For a copy from srcdir to dstdir: map[i] is the letter in dstdir of
 * srcdir's keyword 'a' + i, for the letters in used (added to dstdir's
 * file when missing); 0 for letters unused, unnamed or for which dstdir
 * has no letter left (logged: that keyword is not copied). Returns 0 or
 * -1 with errno. */
int maildir_keywords_map(const char *srcdir, const char *dstdir, uint32_t used,
			 char map[MAILDIR_KEYWORDS]);

/* ---- folders (maildir_folder.c) ----
 * userdir is the user's top Maildir (INBOX); changes are durable as
 * messages' are. */

/* The Maildir++ folders of userdir (directories ".Name" holding cur/),
 * names without the dot, sorted, into a malloc'ed array the caller frees.
 * A missing userdir has none. Returns 0, or -1 with errno. */
int maildir_folders(const char *userdir, char (**names)[MAILDIR_MBOX_MAX + 1],
		    size_t *n);

/* Maildir++ folders (name without the leading dot, '.' the hierarchy
 * separator, checked as maildir_mailbox_path does; "INBOX" refused):
 * create makes .name/{cur,new,tmp} and .name/maildirfolder (EEXIST when
 * there); delete removes the folder's own Maildir (its messages and
 * files, not its children .name.Child: RFC 3501 6.3.4), ENOENT when
 * absent; rename moves .from to .to and every .from.X to .to.X (EEXIST
 * when .to exists, ENOENT when .from does not). Renaming INBOX moves its
 * messages (cur/ and new/) into a new folder `to` and leaves INBOX empty
 * (RFC 3501 6.3.5): pass from = "INBOX". Each returns 0 or -1 with errno. */
int maildir_folder_create(const char *userdir, const char *name);
int maildir_folder_delete(const char *userdir, const char *name);
int maildir_folder_rename(const char *userdir, const char *from,
			  const char *to);

/* Subscriptions, in userdir/subscriptions (one name per line, as Courier
 * and Dovecot keep it; rewritten whole: temp file, fsync, rename). list
 * gives them sorted, malloc'ed, for the caller to free; subscribe adds
 * (on) or removes (!on) name, doing nothing when already so. */
int maildir_subscriptions(const char *userdir,
			  char (**names)[MAILDIR_MBOX_MAX + 1], size_t *n);
int maildir_subscribe(const char *userdir, const char *name, bool on);

#endif
