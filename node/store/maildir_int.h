/* Inside the Maildir module: what its files share, maildir_name.c
 * (names), maildir_uid.c (scanning and UIDs), maildir_msg.c (messages)
 * and maildir_folder.c (folders). Not for other modules: they use
 * maildir.h. Every path is under the Maildir given; nothing here follows
 * a name it did not check. */
#ifndef NODE_MAILDIR_INT_H
#define NODE_MAILDIR_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "maildir.h"

#define MAILDIR_LOCK "mailswitch-uidlock"
#define MAILDIR_UIDNEXT "mailswitch-uidnext"
#define MAILDIR_UIDVALIDITY "mailswitch-uidvalidity"
/* in the user's Maildir: the highest UIDVALIDITY given in it */
#define MAILDIR_UIDVALIDITY_FLOOR "mailswitch-uidvalidity-floor"
#define MAILDIR_PATH_MAX 4096
/* The longest name a scan lists (longer ones are not messages), and the
 * longest unique base: room for ",U=4294967295:2," and 31 flags. */
#define MAILDIR_LISTED_MAX (MAILDIR_NAME_MAX - 24)
#define MAILDIR_BASE_MAX (MAILDIR_LISTED_MAX - 16 - 31)

/* Splits a cur/ name into its UID (0: none), flags and size: the message
 * with CRLF line ends, as IMAP sends it (0: not in the name). The base is
 * what precedes ":2,"; the UID is a ",U=" field in it, the size ",W="
 * (Dovecot's CRLF size, for files stored with LF) or else ",S=" (the
 * file's size: mailnode's own files are stored with CRLF). */
void maildir_parse_name(const char *name, uint32_t *uid, char *flags,
			size_t flagslen, uint64_t *size);

/* Sorted, duplicate-free copy of the Maildir info letters in. Refuses
 * (EINVAL) anything but ASCII letters, or more than fit a maildir_msg. */
int maildir_flags_norm(const char *in, char *out, size_t outlen);
/* A message file name we may touch: one path component, not hidden. */
bool maildir_msg_name_ok(const char *name);
/* Length of name's base: what precedes its Maildir info ":". */
size_t maildir_base_len(const char *name);
/* base[0..baselen) ",U=uid:2," flags into out (ENAMETOOLONG when it
 * would not be listed). Returns 0 or -1. */
int maildir_cur_name(const char *base, size_t baselen, uint32_t uid,
		     const char *flags, char *out, size_t outlen);
/* A Maildir++ folder name (without its dot) that stays inside the
 * user's Maildir (maildir_mailbox_path's rules). */
bool maildir_valid_folder(const char *name);

int maildir_fsync_dir(const char *path);
/* Closes fd after an fsync; -1 with errno if either fails. */
int maildir_sync_close(int fd);

/* dir/name holding a decimal number: read gives 1 and *v, 0 when the
 * file is missing or holds no number, -1 on a read error; write replaces
 * it atomically and durably (temp file, fsync, rename, fsync of dir). */
int maildir_read_number(const char *dir, const char *name, uint32_t *v);
int maildir_write_number(const char *dir, const char *name, uint32_t v);

/* Takes the exclusive flock of dir/name (created 0600), waiting at most
 * MAILDIR_LOCK_WAIT_MS. maildir_lock is the UID lock, dir/MAILDIR_LOCK
 * (a no-op flock under MAILSWITCH_TEST_NO_FLOCK, maildir.h).
 * Returns the lock's fd, or -1 with errno (ETIMEDOUT). */
int maildir_lock_file(const char *dir, const char *name);
int maildir_lock(const char *dir);
void maildir_unlock(int fd);

/* ---- dotlocks (maildir_dotlock.c) ----
 * dir/name replaced whole under dir/name.lock, made with O_EXCL, which
 * works across nodes (and is how Dovecot locks dovecot-keywords). A
 * holder keeps it for a read and a write; one that died leaves it, broken
 * after MAILDIR_DOTLOCK_STALE seconds (the event loop waits meanwhile, so
 * callers wait little). */
#define MAILDIR_DOTLOCK_STALE 10 /* seconds: a lock this old is broken */
#define MAILDIR_KEYWORDS_WAIT_MS 2000

/* Waits (wait_ms at most) to create dir/name.lock, path in
 * lock[0..locklen). Returns its fd, open for writing the new content, or
 * -1 with errno (ETIMEDOUT). */
int maildir_dotlock(const char *dir, const char *name, int wait_ms, char *lock,
		    size_t locklen);
/* Closes fd, renames the lock over dir/name (which releases it); with
 * durable, fsyncs fd before and dir after. Returns 0, or -1 with errno
 * (the lock removed). */
int maildir_dotlock_commit(int fd, const char *lock, const char *dir,
			   const char *name, bool durable);
/* Releases the lock leaving dir/name as it was. */
void maildir_dotlock_drop(int fd, const char *lock);

/* dovecot-keywords' text (NUL-terminated, changed in place) into kw:
 * lines that are not "index name" with an index below 26, a valid name
 * not named before, are skipped, as Dovecot skips them. */
void maildir_keywords_parse(char *text, struct maildir_keywords *kw);
/* Gives dstdir (a new folder) srcdir's keywords, letter for letter, so
 * that messages moved over keep theirs (RENAME of INBOX). Returns 0 or
 * -1 with errno. */
int maildir_keywords_clone(const char *srcdir, const char *dstdir);

/* The following hold dir's UID lock (the caller took it). */

/* The mailbox's UIDVALIDITY, written the first time: time(NULL), or
 * more when the user's Maildir already gave that much. */
int maildir_uidvalidity(const char *dir, uint32_t *v);

/* Reserves want consecutive UIDs from max(the high-water mark, the floor
 * in *ctr (NULL: none)): the mark is raised (durably) before any file
 * shows one of them, and every UID given was below the mark, so cur/ need
 * not be read; only a missing or unreadable mark is rebuilt from cur/'s
 * highest UID. *first is the first; *uidvalidity the mailbox's; *ctr set
 * to the new UIDNEXT. Returns 0, or -1 with errno (EOVERFLOW: UIDs
 * exhausted). */
int maildir_uid_reserve(const char *dir, size_t want,
			struct maildir_counter *ctr, uint32_t *uidvalidity,
			uint32_t *first);

/* maildir_assign's work once the lock is held (UIDs for new/ and cur/
 * files without one, then cur/ listed into out, sorted by UID); with
 * assign false, maildir_scan's (nothing renamed, pending counted). */
int maildir_scan_locked(const char *dir, bool assign,
			struct maildir_counter *ctr, struct maildir_list *out);

#endif
