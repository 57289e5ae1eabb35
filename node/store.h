/* The shared message store: Maildir (Maildir++ folders), one tree per
 * domain, mailboxes spread over two levels of hash prefixes:
 *   STORE/example.test/a7/3f/alice/{cur,new,tmp}
 * Delivery writes tmp/, fsyncs the file and tmp/, renames into new/ and
 * fsyncs new/: a message is durable when store_deliver() returns 0. */
#ifndef NODE_STORE_H
#define NODE_STORE_H

#include <stdbool.h>
#include <stddef.h>

#define STORE_ADDR_MAX 256

struct store {
	char root[4096];
	char hostname[256]; /* part of unique file names */
	unsigned long seq;  /* per-process counter for unique names */
};

/* Checks that root exists and is a directory. Returns 0, or -1 with errno
 * set. */
int store_init(struct store *s, const char *root, const char *hostname);

/* The Maildir of address ("local@domain", matched case-insensitively:
 * lowercased before hashing) into out. With create, makes the Maildir
 * (cur, new, tmp) and its parents. Refuses addresses whose parts could
 * escape the store ("..", "/", empty parts, control bytes). Returns 0, or
 * -1 with errno set (EINVAL for a refused address). */
int store_user_dir(const struct store *s, const char *address, char *out,
    size_t outlen, bool create);

/* Delivers one message to every address in rcpts[0..n): for each, a new
 * file in its Maildir holding `prefix` (e.g. Return-Path: and Received:
 * lines, may be empty) followed by len bytes of fd from offset 0; durable
 * as described above before it returns. Returns 0 when every copy is
 * durable; -1 with errno set when any copy failed (copies already made
 * stay: Maildir delivery is idempotent only per copy, so the caller spools
 * only the failed recipients, listed in failed[] (size n) as true). */
int store_deliver(struct store *s, const char *const *rcpts, size_t n,
    int fd, size_t len, const char *prefix, bool *failed);

/* True when a file can be created, written and fsynced under root now
 * (the /health check: the shared filesystem is there). */
bool store_writable(struct store *s);

#endif
