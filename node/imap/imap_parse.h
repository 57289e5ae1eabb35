/* IMAP4rev1 command syntax (RFC 3501 section 9, LITERAL+ of RFC 7888):
 * a cursor over one whole command, the strings, sequence sets, flag
 * lists, dates and FETCH attributes the commands take.
 *
 * The session hands the parser the command as it came on the wire: each
 * line ending in a literal marker "{N}" or "{N+}" keeps its CRLF and is
 * followed by the N literal bytes, then the rest of the command. Nothing
 * here allocates except imap_fetch_parse's list, and every output has a
 * fixed bound; an input that does not fit is a syntax error (the session
 * answers BAD), never a cut. */
#ifndef NODE_IMAP_PARSE_H
#define NODE_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct strbuf;

/* ---- literals on the wire ---- */

/* Whether the line (without its CRLF) ends in a literal marker "{N}" or
 * "{N+}" (nonsync set for the LITERAL+ form). Returns 1 with *n set, 0
 * when it does not end in one, -1 when it ends in a malformed marker
 * ("{}", "{12x}", N over UINT32_MAX). */
int imap_literal_suffix(const char *line, size_t len, uint64_t *n,
			bool *nonsync);

/* ---- the cursor ---- */

struct imap_cur {
	const char *p, *end;
	char err[128]; /* what was wrong, for "BAD <err>" */
};

void imap_cur_init(struct imap_cur *c, const char *buf, size_t len);
/* Each reader returns 0 and advances, or -1 with c->err set and the
 * cursor wherever it stopped. */

/* Sets c->err (printf-style, cut to fit) and returns -1: for the
 * callers' own syntax errors (SEARCH, the commands). */
int imap_cur_fail(struct imap_cur *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One space. */
int imap_sp(struct imap_cur *c);
/* True at the end of the command. */
bool imap_at_end(const struct imap_cur *c);
/* -1 ("unexpected ...") unless at the end. */
int imap_end(struct imap_cur *c);
/* True (and advances) if the next byte is ch. */
bool imap_peek_char(struct imap_cur *c, char ch);

/* An atom (RFC 3501 ATOM-CHAR: no CTL, SP, "(){%*\"\\" or "]") into out
 * (NUL-terminated); the tag and command name use this. */
int imap_atom(struct imap_cur *c, char *out, size_t outlen);
/* A tag: ATOM-CHAR but no '+'. */
int imap_tag(struct imap_cur *c, char *out, size_t outlen);

/* A string (quoted or literal) or, for astring, also an atom with ']'
 * allowed. The value (quoted: unescaped) goes to out, NUL-terminated;
 * *len (may be NULL) is its length, which may include NULs from a literal.
 * Too long for out is an error. */
int imap_astring(struct imap_cur *c, char *out, size_t outlen, size_t *len);
int imap_string(struct imap_cur *c, char *out, size_t outlen, size_t *len);
/* nstring: NIL (*is_nil set) or a string. */
int imap_nstring(struct imap_cur *c, char *out, size_t outlen, size_t *len,
		 bool *is_nil);
/* A literal, by reference into the command buffer (APPEND's message). */
int imap_literal(struct imap_cur *c, const char **data, size_t *len);
/* list-mailbox of LIST/LSUB: astring or atom with the wildcards '%' and
 * '*' (and ']'). */
int imap_list_mailbox(struct imap_cur *c, char *out, size_t outlen);
/* A number (RFC 3501 number: up to 2^32-1), or nz-number (> 0). */
int imap_number(struct imap_cur *c, uint32_t *v);
int imap_nz_number(struct imap_cur *c, uint32_t *v);

/* ---- the start of a command ---- */

/* "tag NAME" or "tag UID NAME": the tag, the name uppercased and *uid.
 * Leaves c before the arguments' space. Returns 0, or -1 with c->err
 * "Missing or invalid tag" (tag[0] is then '\0'), "Missing or invalid
 * command" or "UID needs a command". */
int imap_command_start(struct imap_cur *c, char *tag, size_t taglen, char *name,
		       size_t namelen, bool *uid);

/* ---- sequence sets ---- */

/* "*" stands for the largest number in use; it is kept as IMAP_STAR and
 * resolved when the set is used. A seq-number is an nz-number (1 to
 * 4294967295, all valid) or "*", so 0 is the one value free to mark it. */
#define IMAP_STAR 0u
#define IMAP_SEQSET_MAX 1024 /* ranges in one set */

struct imap_seqset {
	size_t n;
	struct {
		uint32_t lo, hi; /* as written: lo may exceed hi, either may
				    be IMAP_STAR */
	} r[IMAP_SEQSET_MAX];
};

int imap_seqset(struct imap_cur *c, struct imap_seqset *out);
/* Whether v is in the set, with '*' meaning max (RFC 3501: "3:*" and
 * "*:3" are the same range; with max 0 nothing matches). */
bool imap_seqset_has(const struct imap_seqset *s, uint32_t v, uint32_t max);
/* The same for one range lo:hi as written (max > 0). */
bool imap_range_has(uint32_t lo, uint32_t hi, uint32_t v, uint32_t max);

/* ---- flags ---- */

enum {
	IMAP_F_SEEN = 1u << 0,
	IMAP_F_ANSWERED = 1u << 1,
	IMAP_F_FLAGGED = 1u << 2,
	IMAP_F_DELETED = 1u << 3,
	IMAP_F_DRAFT = 1u << 4,
	IMAP_F_RECENT = 1u << 5, /* session state, never stored */
};

/* Keyword i of the mailbox (its Maildir letter 'a' + i, maildir.h):
 * the bits above the system flags, 26 of them. */
#define IMAP_F_KW_SHIFT 6
#define IMAP_F_KW(i) (1u << (IMAP_F_KW_SHIFT + (i)))
#define IMAP_F_KEYWORDS (0x3ffffffu << IMAP_F_KW_SHIFT)
#define IMAP_KEYWORD_MAX 64	 /* bytes of one keyword */
#define IMAP_KEYWORD_LIST_MAX 32 /* keywords in one flag list */

/* The keywords of a flag list, by name as written, each once (compared
 * case-insensitively). */
struct imap_kwlist {
	size_t n;
	char name[IMAP_KEYWORD_LIST_MAX][IMAP_KEYWORD_MAX + 1];
};

/* A parenthesized flag list (APPEND, STORE; STORE also takes a bare list
 * of flags without parentheses: paren_optional). System flags go to *mask;
 * keywords to *kw (more than IMAP_KEYWORD_LIST_MAX different ones, or one
 * longer than IMAP_KEYWORD_MAX, is an error) and \Recent is an error. */
int imap_flag_list(struct imap_cur *c, bool paren_optional, unsigned *mask,
		   struct imap_kwlist *kw);
/* "\Seen \Flagged" (no parentheses) for mask's system flags, into sb. */
int imap_flags_format(unsigned mask, struct strbuf *sb);
/* Maildir info letters (S R F T D, and a-z for keywords) <-> mask. out
 * gets the letters in ASCII order, NUL-terminated (IMAP_FLAG_LETTERS
 * bytes at most). Unknown letters are ignored by imap_flags_from_maildir. */
#define IMAP_FLAG_LETTERS 32
unsigned imap_flags_from_maildir(const char *letters);
void imap_flags_to_maildir(unsigned mask, char *out);

/* ---- dates ---- */

/* SEARCH's date: "d-Mon-yyyy" (day 1 or 2 digits, optionally quoted);
 * *t is 00:00:00 UTC of that day. */
int imap_date(struct imap_cur *c, time_t *t);
/* APPEND's date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" (quoted; the day may
 * be space-padded); *t is the instant it names. */
int imap_date_time(struct imap_cur *c, time_t *t);
/* t as a quoted date-time in UTC, "\"23-Nov-2026 14:03:05 +0000\"". */
int imap_date_time_format(time_t t, struct strbuf *sb);

/* ---- FETCH attributes ---- */

enum imap_fetch_kind {
	IMAP_FETCH_FLAGS,
	IMAP_FETCH_INTERNALDATE,
	IMAP_FETCH_RFC822_SIZE,
	IMAP_FETCH_UID,
	IMAP_FETCH_ENVELOPE,
	IMAP_FETCH_BODY, /* non-extensible BODYSTRUCTURE */
	IMAP_FETCH_BODYSTRUCTURE,
	IMAP_FETCH_RFC822,	  /* = BODY[], sets \Seen */
	IMAP_FETCH_RFC822_HEADER, /* = BODY.PEEK[HEADER] */
	IMAP_FETCH_RFC822_TEXT,	  /* = BODY[TEXT], sets \Seen */
	IMAP_FETCH_SECTION,	  /* BODY[section]<partial>, BODY.PEEK[...] */
	IMAP_FETCH_BINARY,	  /* BINARY[part]<partial>, BINARY.PEEK[...]
				     (RFC 3516): the part decoded */
	IMAP_FETCH_BINARY_SIZE,	  /* BINARY.SIZE[part] */
};

enum imap_section_spec {
	IMAP_SECT_ALL,		     /* BODY[] or BODY[1.2] */
	IMAP_SECT_HEADER,	     /* [HEADER], [1.HEADER] */
	IMAP_SECT_HEADER_FIELDS,     /* [HEADER.FIELDS (A B)] */
	IMAP_SECT_HEADER_FIELDS_NOT, /* [HEADER.FIELDS.NOT (A B)] */
	IMAP_SECT_TEXT,		     /* [TEXT], [1.TEXT] */
	IMAP_SECT_MIME,		     /* [1.MIME]: needs a part number */
};

#define IMAP_SECTION_DEPTH 16 /* part numbers in a section */
#define IMAP_FIELDS_MAX 32    /* header names in HEADER.FIELDS */
#define IMAP_FIELD_NAME_MAX 64

struct imap_fetch_item {
	enum imap_fetch_kind kind;
	/* IMAP_FETCH_SECTION (and BINARY: peek, part, partial): */
	bool peek;
	uint32_t part[IMAP_SECTION_DEPTH];
	size_t nparts;
	enum imap_section_spec spec;
	char fields[IMAP_FIELDS_MAX][IMAP_FIELD_NAME_MAX];
	size_t nfields;
	bool partial;
	uint32_t offset, count; /* <offset.count> */
};

struct imap_fetch {
	struct imap_fetch_item *item; /* malloc'ed */
	size_t n;
	bool sets_seen;	 /* some item sets \Seen (BODY[...] not PEEK, RFC822,
			    RFC822.TEXT) */
	bool needs_text; /* some item needs the message file read */
};

/* A fetch-att, a parenthesized list of them, or the macros ALL, FAST,
 * FULL. At most 64 items. out is emptied first; free it with
 * imap_fetch_free() whatever this returns. */
int imap_fetch_parse(struct imap_cur *c, struct imap_fetch *out);
void imap_fetch_free(struct imap_fetch *f);
/* The item's name as the answer carries it: "BODY[HEADER.FIELDS (FROM
 * TO)]<0>" (the origin octet only, RFC 3501 7.4.2), "RFC822.SIZE", ... */
int imap_fetch_item_name(const struct imap_fetch_item *it, struct strbuf *sb);

/* ---- mailbox names (modified UTF-7, RFC 3501 5.1.3) ---- */

/* Whether name is valid modified UTF-7: printable US-ASCII with '&' as
 * "&-" or a "&...-" run of modified BASE64 of UTF-16 that decodes to
 * something other than printable ASCII, with no bad padding. */
bool imap_mutf7_valid(const char *name);
/* Conversions; each returns 0, or -1 when the input is invalid or out
 * (outlen, NUL included) is too small. */
int imap_mutf7_to_utf8(const char *in, char *out, size_t outlen);
int imap_utf8_to_mutf7(const char *in, char *out, size_t outlen);

#endif
