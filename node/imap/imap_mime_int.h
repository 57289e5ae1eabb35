/* The inside of imap_mime: the part tree and the header-field helpers
 * shared by imap_mime.c (tree, sections), imap_envelope.c (ENVELOPE,
 * BODYSTRUCTURE) and imap_mime_text.c (decoding, SEARCH, Date). Not for
 * other modules: they use imap_mime.h. */
#ifndef NODE_IMAP_MIME_INT_H
#define NODE_IMAP_MIME_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "imap_mime.h"

#define IMAP_MIME_DEPTH_MAX 32
#define IMAP_MIME_PARTS_MAX 10000
#define IMAP_MIME_PARAMS_MAX 32 /* parameters kept per header */

struct imap_mime_param {
	char *name; /* lowercase */
	char *value;
};

/* A parsed Content-Type or Content-Disposition: type and subtype in
 * lowercase (subtype unused for a disposition), parameters in order. */
struct imap_mime_ctype {
	char *type, *subtype;
	struct imap_mime_param *param;
	size_t nparam;
};

struct imap_mime_part {
	const char *hdr; /* the header, with its blank line when it has one */
	size_t hdrlen;
	const char *body; /* the content after the header */
	size_t bodylen;
	struct imap_mime_ctype ct;
	struct imap_mime_ctype disp; /* disp.type NULL: no disposition */
	/* Unfolded header values, NULL when absent: Content-ID,
	 * -Description, -Transfer-Encoding, -MD5, -Language, -Location. */
	char *id, *desc, *enc, *md5, *lang, *loc;
	struct imap_mime_part *child, *next; /* multipart: the parts */
	size_t nchild;
	struct imap_mime_part *msg; /* message/rfc822: the enclosed message */
};

struct imap_mime_block;

struct imap_mime {
	struct imap_mime_block *blocks; /* arena: freed all at once */
	struct imap_mime_part *root;
	size_t nparts;
	bool nomem;
};

/* One header field as it stands in the message: the raw lines
 * [line, line + linelen) with their CRLFs and folds, the name (trailing
 * blanks dropped) and the raw value after the colon. */
struct imap_mime_field {
	const char *line;
	size_t linelen;
	const char *name;
	size_t namelen;
	const char *value;
	size_t valuelen;
};

/* The next field of the header h[0..hlen) from *pos (0 to start),
 * skipping lines without a colon; stops at the blank line. Returns false
 * when there is none left. */
bool imap_mime_next_field(const char *h, size_t hlen, size_t *pos,
			  struct imap_mime_field *f);
/* The first field named name (case-insensitive). */
bool imap_mime_find_field(const char *h, size_t hlen, const char *name,
			  struct imap_mime_field *f);
/* Copies v[0..n) to out (n + 1 bytes) without its CRs and LFs and
 * without leading and trailing blanks, NUL-terminated. Returns the
 * length written. */
size_t imap_mime_unfold(const char *v, size_t n, char *out);
/* Walks the part numbers: *node is the part reached (NULL for none: the
 * whole message; the message itself for part 1 of a message that is not
 * multipart). Returns false when a part does not exist. */
bool imap_mime_walk(const struct imap_mime *m, const uint32_t *parts,
		    size_t nparts, const struct imap_mime_part **node);
/* p at a '(': past its (nested, backslash-quoting) comment, or at the
 * end of the string when it is not closed. */
const char *imap_mime_skip_comment(const char *p);
/* Case-insensitive (ASCII) comparison of a[0..alen) with the C string b. */
bool imap_mime_name_eq(const char *a, size_t alen, const char *b);
/* The value of the parameter name (lowercase) of ct, or NULL. */
const char *imap_mime_param_get(const struct imap_mime_ctype *ct,
				const char *name);
/* The length of the first token of the Content-Transfer-Encoding value
 * enc (up to a blank, '(' or ';'). */
size_t imap_mime_enc_len(const char *enc);
/* Whether the part's type is type/subtype (subtype NULL: any). */
bool imap_mime_is(const struct imap_mime_part *p, const char *type,
		  const char *subtype);

/* Decoders (imap_mime_text.c), each writing at most its input's length
 * to out: base64 of s[0..n), bytes outside the alphabet skipped, up to
 * '='; quoted-printable (q: RFC 2047's Q, where '_' is a space; a bad "="
 * escape stays as it is); a header value with its RFC 2047 encoded words
 * decoded, into out (2 n + 1 bytes), blanks between two encoded words
 * dropped. Each returns the length written. */
size_t imap_text_base64(const char *s, size_t n, char *out);
size_t imap_text_qp(const char *s, size_t n, bool q, char *out);
size_t imap_text_decode_header(const char *v, size_t n, char *out);

/* Appends s[0..n) as an IMAP string: quoted when every byte is
 * printable 7-bit, a literal otherwise. upper: ASCII letters uppercased. */
int imap_env_string(struct strbuf *sb, const char *s, size_t n, bool upper);
/* A C string, or NIL when s is NULL. */
int imap_env_nstring(struct strbuf *sb, const char *s, bool upper);

#endif
