/* A user's storage usage against the quota the shared config gives them
 * (`mailctl user quota`), kept on the shared store the way Maildir++
 * keeps it (Courier, Dovecot's maildir quota), so every node reads the
 * same figure, with or without Redis:
 *
 *   USERDIR/maildirsize   "LIMITS\n" then "BYTES COUNT\n" lines
 *
 * The first line is the limit the file was counted for ("0S": none);
 * every other line is a change, appended with one O_APPEND write by
 * whoever changed the mailbox (delivery, APPEND, COPY, expunge), so
 * usage is the sum of the lines. A recount from the store (every
 * message of INBOX and its folders, cur/ and new/, by the size in its
 * name) replaces the file whole: when it is missing or unreadable, when
 * it was counted for another limit, when it grew to QUOTA_FILE_MAX bytes
 * of changes, when its sum is negative, when it says the user is over
 * and was not written for QUOTA_OVER_RECOUNT_S (a change lost on a
 * filesystem whose appends race, a file removed by hand), and on
 * `mailctl user quota-recount`. Sizes are the ones IMAP reports
 * (RFC822.SIZE: ,W= or else ,S= in the name). A change made while a
 * recount runs can be counted twice or not at all until the next one:
 * usage is kept close, not exact, and repaired from the store. */
#ifndef NODE_QUOTA_H
#define NODE_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

#define QUOTA_FILE "maildirsize"
#define QUOTA_FILE_MAX 5120	       /* Maildir++'s recount threshold */
#define QUOTA_OVER_RECOUNT_S (15 * 60) /* Courier's */

struct quota_usage {
	uint64_t bytes;
	uint64_t count; /* messages */
};

/* Usage of the user whose Maildir is userdir, for a limit of limit bytes
 * (0: none), recounting first when the file calls for it (above).
 * Returns 0, or -1 with errno (the store unreadable: the caller must not
 * refuse mail for it). A userdir that does not exist yet uses nothing. */
int quota_get(const char *userdir, uint64_t limit, struct quota_usage *u);

/* Counts userdir's messages and writes the file anew (atomically).
 * Returns 0 with *u, or -1 with errno. */
int quota_recount(const char *userdir, uint64_t limit, struct quota_usage *u);

/* Records a change of bytes and count in the mailbox maildir (INBOX, the
 * user's Maildir, or a folder USERDIR/.Name: the file is its user's).
 * No file, no record: the next quota_get counts. Failures are logged. */
void quota_change(const char *maildir, int64_t bytes, int64_t count);

/* Drops the file so that the next quota_get recounts (a folder deleted
 * with its messages). */
void quota_forget(const char *userdir);

enum quota_verdict {
	QUOTA_OK,     /* room for it, no limit, or usage unknown */
	QUOTA_FULL,   /* at or over the limit already */
	QUOTA_EXCEED, /* bytes more would take it over */
};

/* What adding bytes would do to the user of userdir under limit (0: none:
 * QUOTA_OK without reading anything). An unreadable usage is QUOTA_OK
 * (logged): mail is never refused because usage is unknown. */
enum quota_verdict quota_check(const char *userdir, uint64_t limit,
			       uint64_t bytes);

/* The file's text (NUL-terminated, changed in place) for limit: 0 with
 * *u, or 1 when it calls for a recount (broken, counted for another
 * limit, a negative sum). The file's age is quota_get's to judge. */
int quota_parse(char *text, uint64_t limit, struct quota_usage *u);

/* A limit as mailctl takes it: a whole number of bytes >= 1, or with a
 * suffix K, M, G or T (powers of 1024, either case): "500M". Returns 0
 * with *out, or -1 (not such a size, 0, or over 2^62). */
int quota_parse_limit(const char *s, uint64_t *out);

#endif
