/* The shared message store: Maildir (Maildir++ folders), one tree per
 * domain, mailboxes spread over two levels of hash prefixes:
 *   STORE/example.test/a7/3f/alice/{cur,new,tmp}
 * Delivery writes tmp/NAME, fsyncs the file, renames it into new/ and
 * fsyncs new/ (tmp/ needs no fsync: the name only has to last in new/);
 * every directory is fsynced in its parent when it is created. A message
 * is durable when store_deliver() returns 0.
 *
 * Mailbox directory: STORE/DOMAIN/H1/H2/LOCAL, DOMAIN and LOCAL lowercased
 * (ASCII), H1 H2 the first two bytes, in hex, of the 32-bit FNV-1a hash of
 * LOCAL. File names: TIME.M<usec>P<pid>Q<seq>.HOST,S=<size>, size being
 * the bytes of the file (prefix included). Directories are mode 0700,
 * files 0600; the store is walked without following symlinks. */
#ifndef NODE_STORE_H
#define NODE_STORE_H

#include <stdbool.h>
#include <stddef.h>

#define STORE_ADDR_MAX 256
/* The host part of file names, escaped: longer would leave no room for
 * ",U=<uid>:2,<flags>" in a 255-byte name (maildir_unique_name). */
#define STORE_HOST_MAX 120

struct notice;

struct store {
	char root[4096];
	char hostname[STORE_HOST_MAX + 1]; /* part of unique file names */
	unsigned long seq;     /* per-process counter for unique names */
	struct notice *notice; /* notice.h: deliveries told; NULL: not */
};

/* Checks that root exists and is a directory (s->notice is NULL after
 * it: the caller sets it once it has Redis). hostname goes into file
 * names with Maildir's escapes ('/' -> \057, ':' -> \072, and ',' ->
 * \054 so that ",S=" stays unambiguous). Returns 0, or -1 with errno set
 * (EINVAL for an empty root or hostname, ENAMETOOLONG for a hostname
 * over STORE_HOST_MAX bytes once escaped). */
int store_init(struct store *s, const char *root, const char *hostname);

/* The Maildir of address ("local@domain", matched case-insensitively:
 * lowercased before hashing) into out. With create, makes the Maildir
 * (cur, new, tmp) and its parents. Refuses addresses whose parts could
 * escape the store: an empty part, a local part over 64 or a domain over
 * 253 bytes, a second '@', '/', '\\', control bytes, "..", a leading or
 * trailing dot. Returns 0, or -1 with errno set (EINVAL for a refused
 * address, ENOTDIR when something in the way is not a directory). */
int store_user_dir(const struct store *s, const char *address, char *out,
		   size_t outlen, bool create);

/* Delivers one message to every address in rcpts[0..n): for each, a new
 * file in its Maildir holding `prefix` (e.g. Return-Path: and Received:
 * lines, may be empty) followed by len bytes of fd from offset 0; durable
 * as described above before it returns, and each copy then told to
 * s->notice (that recipient's INBOX changed). Returns 0 when every copy is
 * durable; -1 with errno set when any copy failed (copies already made
 * stay: Maildir delivery is idempotent only per copy, so the caller spools
 * only the failed recipients, listed in failed[] (size n) as true). */
int store_deliver(struct store *s, const char *const *rcpts, size_t n, int fd,
		  size_t len, const char *prefix, bool *failed);
/* The same into each recipient's Maildir++ folder `folder` ("Junk": a
 * milter's spam), made and subscribed first when missing; NULL: INBOX. */
int store_deliver_to(struct store *s, const char *const *rcpts, size_t n,
		     const char *folder, int fd, size_t len, const char *prefix,
		     bool *failed);

/* True when a file can be created, written and fsynced under root now
 * (the /health check: the shared filesystem is there): a probe file in
 * ROOT/.health/ is written, fsynced and unlinked. */
bool store_writable(struct store *s);

#endif
