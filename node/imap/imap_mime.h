/* The MIME structure of a message for IMAP FETCH and SEARCH (RFC 3501
 * 6.4.5 and 7.4.2, RFC 2045-2047): ENVELOPE, BODY and BODYSTRUCTURE,
 * BODY[section] extraction, and the decoded text SEARCH compares.
 *
 * A message is a buffer of CRLF lines (the session normalizes bare LFs
 * before) that must outlive the tree built on it. Parsing never fails on
 * bad MIME: a part it cannot make sense of is text/plain (RFC 2045's
 * default), a multipart without its closing boundary ends at the end of
 * its parent. Nesting (multipart inside multipart, message/rfc822) is
 * bounded at 32 levels, parts at 10,000; deeper or further content is
 * treated as opaque body. */
#ifndef NODE_IMAP_MIME_H
#define NODE_IMAP_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "imap_parse.h"

struct strbuf;
struct imap_mime;

/* Parses msg[0..len). Returns NULL only when memory is short. */
struct imap_mime *imap_mime_parse(const char *msg, size_t len);
void imap_mime_free(struct imap_mime *m);

/* The top-level ENVELOPE as an IMAP parenthesized list (RFC 3501 7.4.2:
 * date subject from sender reply-to to cc bcc in-reply-to message-id;
 * sender and reply-to default to from; address groups as RFC 3501
 * describes; strings quoted, or literals when they hold CR, LF, '"'
 * with other specials, or 8-bit bytes), appended to sb. */
int imap_mime_envelope(const struct imap_mime *m, struct strbuf *sb);
/* BODYSTRUCTURE (extended: true) or BODY (extended: false), appended to
 * sb: type, subtype, parameters, id, description, encoding, size, and
 * lines for text parts, envelope, body and lines for message/rfc822;
 * extension data (md5 NIL, disposition, language, location) when
 * extended. */
int imap_mime_bodystructure(const struct imap_mime *m, bool extended,
			    struct strbuf *sb);

/* The bytes of BODY[section] (before <partial>, which the caller
 * applies): parts[0..nparts) walks the part numbers (a non-multipart
 * message has part 1 itself; a message/rfc822 part's numbers walk into
 * the enclosed message), then spec picks HEADER (with its blank line),
 * HEADER.FIELDS[.NOT] (the matching fields, unfolded not, then the blank
 * line), TEXT, MIME (the part's own header) or everything. When the
 * result is a plain slice of the message, *data points into it and sb is
 * untouched; when it must be built (HEADER.FIELDS), it is appended to sb
 * and *data points into sb. A part that does not exist gives "" (RFC 3501
 * says the answer is empty, not an error). Returns 0, or -1 when sb is
 * full. */
int imap_mime_section(const struct imap_mime *m, const uint32_t *parts,
		      size_t nparts, enum imap_section_spec spec,
		      const char (*fields)[IMAP_FIELD_NAME_MAX], size_t nfields,
		      struct strbuf *sb, const char **data, size_t *len);

/* BINARY[parts] (RFC 3516): the content of the part with its
 * Content-Transfer-Encoding (base64, quoted-printable) undone, into
 * *out (malloc'ed, for the caller to free); the whole message as it is
 * for no parts, "" for a part that does not exist. An encoding that is
 * not known leaves the content as it is and sets *unknown. Returns 0 or
 * -1 (out of memory). */
int imap_mime_binary(const struct imap_mime *m, const uint32_t *parts,
		     size_t nparts, char **out, size_t *len, bool *unknown);

/* SEARCH: whether a header field named field (case-insensitive; "" for
 * any field) of the top-level header contains needle after unfolding and
 * decoding RFC 2047 encoded words to UTF-8, case-insensitively for ASCII;
 * needle "" asks whether the field exists. An address field (From, To,
 * Cc, Bcc, Sender, Reply-To) also matches when its addresses written
 * without comments (imap_addr_text) contain needle. */
bool imap_mime_header_has(const struct imap_mime *m, const char *field,
			  const char *needle);
/* The same on a header section alone (hdr[0..hdrlen), as
 * imap_hdr_len delimits it), for the header cache. */
bool imap_hdr_has(const char *hdr, size_t hdrlen, const char *field,
		  const char *needle);
/* The address list v (an unfolded header value) as "name <local@domain>,
 * ..." (or "local@domain" without a name): comments and the blanks
 * around '@' and '.' gone, a trailing comment "user@domain (Real Name)"
 * the name when there is no phrase (as ENVELOPE takes it), groups as
 * their members. Appended to sb; returns 0 or -1 (sb full, no memory). */
int imap_addr_text(const char *v, struct strbuf *sb);
/* SEARCH BODY: whether some text part's content (after its
 * Content-Transfer-Encoding, base64 or quoted-printable, is undone, and
 * converted to UTF-8 when its charset is ISO-8859-1 or US-ASCII; other
 * charsets are compared as they are) contains needle, case-insensitively
 * for ASCII. */
bool imap_mime_body_has(const struct imap_mime *m, const char *needle);
/* The Date: header (RFC 5322 date-time, with the obsolete forms of
 * section 4.3 tolerated) as an instant; false when missing or bad. */
bool imap_mime_date(const struct imap_mime *m, time_t *t);
bool imap_hdr_date(const char *hdr, size_t hdrlen, time_t *t);
/* The Date: header's date and time as written, its zone ignored: read as
 * if UTC ("Sun, 25 Mar 2007 23:30 -0500" gives 25-Mar-2007 23:30 UTC), the
 * day SENTBEFORE, SENTON and SENTSINCE compare (RFC 3501 6.4.4). */
bool imap_hdr_date_written(const char *hdr, size_t hdrlen, time_t *t);

/* For the web role (imap_mime_leaf.c): the leaves of the part tree,
 * depth-first, numbered as BODY[section] numbers them ("1", "2.1"); a
 * message/rfc822 part is a leaf, not entered. Strings are the parser's
 * (lowercase type and subtype) or NULL when absent; body is the content
 * as stored, enc its Content-Transfer-Encoding. */
struct imap_mime_leaf {
	char section[96];
	const char *type, *subtype;
	const char *charset, *name, *cid, *disposition;
	const char *body, *enc;
	size_t bodylen;
};
/* Calls fn for each leaf until it returns nonzero (returned then).
 * Returns 0 when every leaf was seen. */
int imap_mime_leaves(const struct imap_mime *m,
		     int (*fn)(void *arg, const struct imap_mime_leaf *l),
		     void *arg);
/* A leaf's content with its transfer encoding (base64,
 * quoted-printable) undone, malloc'ed (the caller frees), NUL after it;
 * NULL when memory is short. */
char *imap_mime_leaf_decode(const struct imap_mime_leaf *l, size_t *len);
/* The top-level header field named field, unfolded, RFC 2047 words
 * decoded, into out (cut to outlen); false (out "") when absent. */
bool imap_mime_header_get(const struct imap_mime *m, const char *field,
			  char *out, size_t outlen);

/* A header value v with its RFC 2047 encoded words decoded (to UTF-8
 * when their charset is, as SEARCH decodes them), into out (cut to
 * outlen). */
void imap_mime_decode_words(const char *v, char *out, size_t outlen);

/* The length of the header section at the start of msg[0..len) (CRLF
 * lines), its blank line included, as the parser splits a message; 0
 * when msg holds no blank line (then a whole message is all header, and
 * a prefix of one says nothing yet). */
size_t imap_hdr_len(const char *msg, size_t len);

#endif
