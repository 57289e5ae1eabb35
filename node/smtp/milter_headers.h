/* A message's header section as the milters see it and change it: the
 * fields read from the start of the message, the edits milters ask for
 * (add, insert, change, delete) applied in order, and the section written
 * back in front of the unchanged rest of the message. Pure but for
 * milter_headers_write's fd. */
#ifndef NODE_MILTER_HEADERS_H
#define NODE_MILTER_HEADERS_H

#include <stdbool.h>
#include <stddef.h>

#define MILTER_HEADERS_MAX (256 * 1024) /* header bytes read */
#define MILTER_FIELDS_READ 1000		/* fields read */
#define MILTER_FIELDS_MAX 2000		/* fields kept, edits included */

struct milter_field {
	char *text;	/* "Name: value\r\n" with folding lines, malloc'ed */
	size_t len;	/* of text */
	size_t namelen; /* bytes before ':' */
};

struct milter_headers {
	struct milter_field *f;
	size_t n, cap;
	size_t end;   /* bytes of the message the fields took */
	size_t body;  /* the body's offset: after the empty line */
	bool changed; /* an edit was applied */
};

/* Reads the fields at the start of buf[0..len) (the message's first bytes,
 * CRLF line ends). A line that is not a field ("Name:" or a folded
 * continuation) ends the section, as does the empty line (which is then
 * skipped: the body follows it). Past MILTER_FIELDS_READ fields, or a
 * field cut by len, the rest counts as body (milters see it as such; it
 * is written back as it was). Returns 0, or -1 out of memory. */
int milter_headers_read(struct milter_headers *h, const char *buf, size_t len);
void milter_headers_free(struct milter_headers *h);

/* Field i's name (namelen bytes, not NUL-terminated) and its value as the
 * milter protocol carries it into out: after the colon, without the one
 * leading space unless leadspace, line breaks as LF, no final line end.
 * Cut to outlen - 1 bytes. */
void milter_field_value(const struct milter_field *f, bool leadspace, char *out,
			size_t outlen);

/* The edits. name and value as milter_header_parse checks them. Each
 * returns 0, or -1 (out of memory or MILTER_FIELDS_MAX reached). */
/* SMFIR_ADDHEADER: at the end. */
int milter_headers_add(struct milter_headers *h, const char *name,
		       const char *value);
/* SMFIR_INSHEADER: before field index (0: first), at the end when past it. */
int milter_headers_insert(struct milter_headers *h, size_t index,
			  const char *name, const char *value);
/* SMFIR_CHGHEADER: the index-th (1-based) field called name (any case)
 * gets value; an empty value deletes it; no such field: added at the end
 * (as Sendmail does) unless value is empty. */
int milter_headers_change(struct milter_headers *h, size_t index,
			  const char *name, const char *value);

/* True when the fields mark the message as spam (names and values in any
 * case): "X-Spam: Yes" (rspamd's spam_header), "X-Spam-Flag: Yes"
 * (SpamAssassin), "X-Spam-Status: Yes, ..." (both), or rspamd's
 * "X-Spamd-Result: default: True [...]" (an action past the spam score). */
bool milter_headers_spam(const struct milter_headers *h);

/* Writes the fields, then the message from offset h->end on (src, len
 * bytes in all), to out; with body >= 0, the first body_len bytes of body
 * instead of the message's own body (after its empty line, which is
 * added when it had none). Returns the bytes written, or -1 with errno. */
long milter_headers_write(const struct milter_headers *h, int src, size_t len,
			  int body, size_t body_len, int out);

#endif
