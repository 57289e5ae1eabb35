/* SEARCH (RFC 3501 6.4.4): every search key, parsed into a program, and
 * the program run against one message at a time.
 *
 * The matcher knows nothing of files: it gets a message's numbers and
 * flags, and asks the session, through callbacks, for what needs the
 * message text (header fields, body, the Date: header), so that a search
 * on flags alone never opens a file. Strings compare as UTF-8,
 * case-insensitively for ASCII letters (the session decodes encoded
 * words and transfer encodings before the callbacks compare). */
#ifndef NODE_IMAP_SEARCH_H
#define NODE_IMAP_SEARCH_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "imap_parse.h"

struct imap_search;

/* What the matcher asks of a message (one message per call of
 * imap_search_match). */
struct imap_search_msg {
	uint32_t seq, uid;
	unsigned flags;	     /* IMAP_F_*, \Recent included */
	uint64_t size;	     /* RFC822.SIZE */
	time_t internaldate; /* INTERNALDATE */
	void *arg;	     /* for the callbacks */
	/* Whether some header field `field` (case-insensitive) contains
	 * needle; with needle "" whether the field is there at all. */
	bool (*header_has)(void *arg, const char *field, const char *needle);
	/* Whether the body (text after the header section) contains needle. */
	bool (*body_has)(void *arg, const char *needle);
	/* Whether the whole message (header and body) contains needle. */
	bool (*text_has)(void *arg, const char *needle);
	/* The Date: header's date and time as written, read as UTC (its
	 * zone ignored, so that its day is the one written: RFC 3501
	 * 6.4.4); false when missing or unreadable (then SENT* keys do not
	 * match). */
	bool (*sent_date)(void *arg, time_t *t);
};

/* The search program after "SEARCH " (or "UID SEARCH "), the optional
 * "CHARSET UTF-8" / "CHARSET US-ASCII" included (any other charset is an
 * error whose c->err starts with "[BADCHARSET (UTF-8 US-ASCII)]"), to the
 * end of the command. On success *out is the program (free with
 * imap_search_free); on -1, c->err says why and *out is NULL. Nesting is
 * bounded (64 levels) and so is the number of keys (256). */
int imap_search_parse(struct imap_cur *c, struct imap_search **out);
void imap_search_free(struct imap_search *s);

/* Gives KEYWORD and UNKEYWORD keys their flag bit: lookup(arg, name) is
 * the bit of keyword name in m->flags, 0 when the mailbox has none such
 * (then KEYWORD matches nothing, UNKEYWORD everything). Until then,
 * KEYWORD matches nothing. */
void imap_search_keywords(struct imap_search *s,
			  unsigned (*lookup)(void *arg, const char *name),
			  void *arg);

/* Whether any key needs the callbacks (header, body, text or sent date):
 * if not, they are never called and may be NULL. */
bool imap_search_needs_text(const struct imap_search *s);

/* Whether some key (BEFORE, ON, SINCE) compares INTERNALDATE: if not,
 * m->internaldate is never read. */
bool imap_search_needs_internaldate(const struct imap_search *s);

/* Whether m matches. max_seq and max_uid resolve '*' in sequence sets and
 * UID sets (the mailbox's message count and its highest UID). Dates
 * compare by day, time and zone ignored: BEFORE/ON/SINCE on internaldate
 * (in UTC, as FETCH INTERNALDATE tells it), SENTBEFORE/SENTON/SENTSINCE
 * on the day the Date: header writes (sent_date). */
bool imap_search_match(const struct imap_search *s,
		       const struct imap_search_msg *m, uint32_t max_seq,
		       uint32_t max_uid);

#endif
