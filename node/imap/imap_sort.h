/* SORT and THREAD (RFC 5256) without a session: the sort criteria and
 * their parsing, the base subject, the first address's mailbox, the
 * ordering of messages by their keys, and the two threading algorithms
 * (ORDEREDSUBJECT, REFERENCES). imap_cmd_sort.c reads each message's
 * keys from the selected mailbox and answers. Strings compare with
 * ASCII letters case-folded (i;ascii-casemap; other bytes as they are). */
#ifndef NODE_IMAP_SORT_H
#define NODE_IMAP_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "imap_parse.h"

struct strbuf;

enum imap_sort_key {
	IMAP_SORT_ARRIVAL,
	IMAP_SORT_CC,
	IMAP_SORT_DATE,
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE,
	IMAP_SORT_SUBJECT,
	IMAP_SORT_TO,
};

#define IMAP_SORT_KEYS_MAX 16
#define IMAP_SORT_STR_MAX 512 /* a subject or address kept for sorting */

struct imap_sort_crit {
	enum imap_sort_key key;
	bool reverse;
};

struct imap_sort_prog {
	struct imap_sort_crit crit[IMAP_SORT_KEYS_MAX];
	size_t n;
};

/* "(REVERSE DATE SUBJECT) " and the charset after it (UTF-8 or
 * US-ASCII; another is an error whose c->err starts with
 * "[BADCHARSET"), up to the search program. */
int imap_sort_parse(struct imap_cur *c, struct imap_sort_prog *p);

/* THREAD's "REFERENCES UTF-8 " / "ORDEREDSUBJECT US-ASCII ". */
enum imap_thread_algo { IMAP_THREAD_ORDEREDSUBJECT, IMAP_THREAD_REFERENCES };
int imap_thread_parse(struct imap_cur *c, enum imap_thread_algo *algo);

/* One message's keys (those the criteria need; strings malloc'ed, NULL
 * standing for "", freed by imap_sort_msgs_free). */
struct imap_sort_msg {
	uint32_t seq, uid;
	time_t arrival, date; /* date: the Date: header, else arrival */
	uint64_t size;
	char *subject;	      /* the base subject */
	char *from, *to, *cc; /* first addresses' mailboxes */
	bool refwd;	      /* the subject was a reply or forward */
	/* THREAD=REFERENCES: Message-ID and the IDs it refers to
	 * (References:, else In-Reply-To:) */
	char *msgid, *refs;
};
void imap_sort_msgs_free(struct imap_sort_msg *msgs, size_t n);

/* The base subject (RFC 5256 2.1) of subject (UTF-8, encoded words
 * already decoded) into out; *refwd (may be NULL) tells whether a
 * reply or forward marker was removed. */
void imap_base_subject(const char *subject, char *out, size_t outlen,
		       bool *refwd);
/* The mailbox (local part) of the first address of an address header
 * value, "" when it has none. */
void imap_first_mailbox(const char *value, char *out, size_t outlen);

/* Sorts msgs[0..n) by p (ties by sequence number). */
void imap_sort_msgs(struct imap_sort_msg *msgs, size_t n,
		    const struct imap_sort_prog *p);

/* The THREAD answer's threads "(1 2)(3 (4)(5))" of msgs[0..n) into sb,
 * numbers UIDs (uid) or sequence numbers. msgs is reordered. Returns 0
 * or -1 (out of memory, sb full). */
int imap_thread(struct imap_sort_msg *msgs, size_t n, enum imap_thread_algo a,
		bool uid, struct strbuf *sb);

#endif
