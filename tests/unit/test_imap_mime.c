/* node/imap_mime.c, imap_envelope.c, imap_mime_text.c: the part tree,
 * ENVELOPE, BODYSTRUCTURE, BODY[section], SEARCH text and Date, with
 * expected answers worked out by hand from RFC 3501 7.4.2. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/strbuf.h"
#include "../../node/imap/imap_mime.h"

static const char simple[] = "From: Alice <alice@example.com>\r\n"
			     "To: bob@example.org\r\n"
			     "Subject: Hello\r\n"
			     "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
			     "Message-ID: <1@example.com>\r\n"
			     "\r\n"
			     "Hello world\r\n"
			     "Line two\r\n";

static const char alternative[] =
    "From: a@b.c\r\n"
    "Subject: alt\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/alternative; boundary=\"XX\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--XX\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "plain text\r\n"
    "--XX\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "<p>h=C3=A9llo</p>\r\n"
    "--XX--\r\n"
    "epilogue\r\n";

static const char mixed[] =
    "From: \"Doe, John\" <john@example.com>\r\n"
    "To: undisclosed-recipients:;\r\n"
    "Cc: Team: ann@x.org, \"Bob B\" <bob@y.org>;, carol@z.net\r\n"
    "Subject: =?UTF-8?B?SGVsbG8gV8O2cmxk?=\r\n"
    "Content-Type: multipart/mixed;\r\n"
    "\tboundary=outer\r\n"
    "\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=inner\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "see attached\r\n"
    "--inner\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<b>see</b>\r\n"
    "--inner--\r\n"
    "--outer\r\n"
    "Content-Type: application/pdf; name=\"doc.pdf\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "Content-Disposition: attachment; filename=\"doc.pdf\"\r\n"
    "\r\n"
    "SGVsbG8gUERG\r\n"
    "--outer\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "From: x@y.z\r\n"
    "Subject: inner\r\n"
    "Content-Type: multipart/mixed; boundary=b2\r\n"
    "\r\n"
    "--b2\r\n"
    "Content-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "caf=E9\r\n"
    "--b2--\r\n"
    "--outer--\r\n";

static const char latin_subject[] =
    "Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?=\r\n"
    " =?ISO-8859-1?Q?_br=FBl=E9e?=\r\n"
    "X-Plain: folded\r\n"
    "  value here\r\n"
    "\r\n"
    "body\r\n";

static const char odd_addrs[] =
    "From: J\xc3\xb6rg <j@x>\r\n"
    "To: <@route.a,@route.b:user@host>, bare, \"q\\\"uote\" <q@h>,\r\n"
    " a@b (Comment Name), <>\r\n"
    "Subject: a\r\n b\r\n"
    "\r\n";

static const char b64_body[] = "Content-Type: text/plain; charset=utf-8\r\n"
			       "Content-Transfer-Encoding: base64\r\n"
			       "\r\n"
			       "U2VjcmV0IG1l\r\n"
			       "c3NhZ2U=\r\n";

static const char qp_body[] = "Content-Type: text/plain; charset=ISO-8859-1\r\n"
			      "Content-Transfer-Encoding: Quoted-Printable\r\n"
			      "\r\n"
			      "soft=\r\n"
			      "break na=EFve\r\n";

static struct imap_mime *
parse(const char *s)
{
	struct imap_mime *m = imap_mime_parse(s, strlen(s));
	cr_assert_not_null(m);
	return m;
}

/* The output of f for the message s, as a malloc'ed string. */
static char *
envelope_of(const char *s)
{
	struct imap_mime *m = parse(s);
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	cr_assert_eq(imap_mime_envelope(m, &sb), 0);
	char *r = strdup(strbuf_str(&sb));
	strbuf_free(&sb);
	imap_mime_free(m);
	return r;
}

static char *
structure_of(const char *s, bool ext)
{
	struct imap_mime *m = parse(s);
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	cr_assert_eq(imap_mime_bodystructure(m, ext, &sb), 0);
	char *r = strdup(strbuf_str(&sb));
	strbuf_free(&sb);
	imap_mime_free(m);
	return r;
}

#define assert_str_free(got, want)                                             \
	do {                                                                   \
		char *g_ = (got);                                              \
		cr_assert_str_eq(g_, want);                                    \
		free(g_);                                                      \
	} while (0)

/* BODY[section] of s as a malloc'ed string; path "2.1" style or "". */
static char *
section_of(const char *s, const char *path, enum imap_section_spec spec,
	   const char (*fields)[IMAP_FIELD_NAME_MAX], size_t nfields)
{
	uint32_t parts[16];
	size_t n = 0;
	for (const char *p = path; *p != '\0';) {
		parts[n++] = (uint32_t)strtoul(p, (char **)&p, 10);
		if (*p == '.')
			p++;
	}
	struct imap_mime *m = parse(s);
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	const char *data;
	size_t len;
	cr_assert_eq(imap_mime_section(m, parts, n, spec, fields, nfields, &sb,
				       &data, &len),
		     0);
	char *r = strndup(data, len);
	strbuf_free(&sb);
	imap_mime_free(m);
	return r;
}

#define SECT(s, path, spec) section_of(s, path, spec, NULL, 0)

Test(imap_mime, simple_structure_and_envelope)
{
	assert_str_free(
	    structure_of(simple, true),
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
	    "\"7BIT\" 23 2 NIL NIL NIL NIL)");
	assert_str_free(
	    structure_of(simple, false),
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
	    "\"7BIT\" 23 2)");
	assert_str_free(envelope_of(simple),
			"(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"Hello\" "
			"((\"Alice\" NIL \"alice\" \"example.com\")) "
			"((\"Alice\" NIL \"alice\" \"example.com\")) "
			"((\"Alice\" NIL \"alice\" \"example.com\")) "
			"((NIL NIL \"bob\" \"example.org\")) NIL NIL NIL "
			"\"<1@example.com>\")");
}

Test(imap_mime, simple_sections)
{
	assert_str_free(SECT(simple, "1", IMAP_SECT_ALL),
			"Hello world\r\nLine two\r\n");
	assert_str_free(SECT(simple, "", IMAP_SECT_ALL), simple);
	assert_str_free(SECT(simple, "", IMAP_SECT_TEXT),
			"Hello world\r\nLine two\r\n");
	assert_str_free(SECT(simple, "2", IMAP_SECT_ALL), "");
	assert_str_free(SECT(simple, "1.1", IMAP_SECT_ALL), "");
	assert_str_free(SECT(simple, "", IMAP_SECT_MIME), "");
	char *h = SECT(simple, "", IMAP_SECT_HEADER);
	cr_assert_eq(strlen(h), strlen(simple) - 23);
	cr_assert(strncmp(h, simple, strlen(h)) == 0);
	free(h);
	const char f[][IMAP_FIELD_NAME_MAX] = {"subject", "FROM", "X-None"};
	assert_str_free(
	    section_of(simple, "", IMAP_SECT_HEADER_FIELDS, f, 3),
	    "From: Alice <alice@example.com>\r\nSubject: Hello\r\n\r\n");
	assert_str_free(
	    section_of(simple, "", IMAP_SECT_HEADER_FIELDS_NOT, f, 3),
	    "To: bob@example.org\r\n"
	    "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
	    "Message-ID: <1@example.com>\r\n\r\n");
}

Test(imap_mime, alternative)
{
	assert_str_free(
	    structure_of(alternative, true),
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 10 "
	    "0 "
	    "NIL NIL NIL NIL)(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL "
	    "NIL \"QUOTED-PRINTABLE\" 17 0 NIL NIL NIL NIL) \"ALTERNATIVE\" "
	    "(\"BOUNDARY\" \"XX\") NIL NIL NIL)");
	assert_str_free(structure_of(alternative, false),
			"((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL "
			"\"7BIT\" 10 0)"
			"(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL "
			"\"QUOTED-PRINTABLE\" 17 0) \"ALTERNATIVE\")");
	assert_str_free(SECT(alternative, "1", IMAP_SECT_ALL), "plain text");
	assert_str_free(SECT(alternative, "2", IMAP_SECT_ALL),
			"<p>h=C3=A9llo</p>");
	assert_str_free(SECT(alternative, "1", IMAP_SECT_MIME),
			"Content-Type: text/plain; charset=utf-8\r\n\r\n");
	assert_str_free(SECT(alternative, "3", IMAP_SECT_ALL), "");
	assert_str_free(SECT(alternative, "0", IMAP_SECT_ALL), "");
	assert_str_free(SECT(alternative, "1", IMAP_SECT_HEADER), "");
	const char f[][IMAP_FIELD_NAME_MAX] = {"subject", "from"};
	assert_str_free(
	    section_of(alternative, "", IMAP_SECT_HEADER_FIELDS, f, 2),
	    "From: a@b.c\r\nSubject: alt\r\n\r\n");

	struct imap_mime *m = parse(alternative);
	cr_assert(imap_mime_body_has(m, "plain TEXT"));
	cr_assert(imap_mime_body_has(m, "h\xc3\xa9llo"));
	cr_assert_not(imap_mime_body_has(m, "preamble"));
	cr_assert_not(imap_mime_body_has(m, "epilogue"));
	cr_assert_not(imap_mime_body_has(m, "=C3"));
	imap_mime_free(m);
}

#define INNER_ENV                                                              \
	"(NIL \"inner\" ((NIL NIL \"x\" \"y.z\")) ((NIL NIL \"x\" \"y.z\")) "  \
	"((NIL NIL \"x\" \"y.z\")) NIL NIL NIL NIL NIL)"

Test(imap_mime, mixed_structure)
{
	assert_str_free(
	    structure_of(mixed, true),
	    "(((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" "
	    "12 0 NIL NIL NIL NIL)(\"TEXT\" \"HTML\" (\"CHARSET\" "
	    "\"US-ASCII\") "
	    "NIL NIL \"7BIT\" 10 0 NIL NIL NIL NIL) \"ALTERNATIVE\" "
	    "(\"BOUNDARY\" \"inner\") NIL NIL NIL)"
	    "(\"APPLICATION\" \"PDF\" (\"NAME\" \"doc.pdf\") NIL NIL "
	    "\"BASE64\" "
	    "12 NIL (\"ATTACHMENT\" (\"FILENAME\" \"doc.pdf\")) NIL NIL)"
	    "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 188 " INNER_ENV " "
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"iso-8859-1\") NIL NIL "
	    "\"QUOTED-PRINTABLE\" 6 0 NIL NIL NIL NIL) \"MIXED\" "
	    "(\"BOUNDARY\" \"b2\") NIL NIL NIL) 9 NIL NIL NIL NIL) \"MIXED\" "
	    "(\"BOUNDARY\" \"outer\") NIL NIL NIL)");
}

Test(imap_mime, mixed_envelope_groups)
{
	assert_str_free(
	    envelope_of(mixed),
	    "(NIL \"=?UTF-8?B?SGVsbG8gV8O2cmxk?=\" "
	    "((\"Doe, John\" NIL \"john\" \"example.com\")) "
	    "((\"Doe, John\" NIL \"john\" \"example.com\")) "
	    "((\"Doe, John\" NIL \"john\" \"example.com\")) "
	    "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
	    "((NIL NIL \"Team\" NIL)(NIL NIL \"ann\" \"x.org\")"
	    "(\"Bob B\" NIL \"bob\" \"y.org\")(NIL NIL NIL NIL)"
	    "(NIL NIL \"carol\" \"z.net\")) NIL NIL NIL)");
}

Test(imap_mime, mixed_sections)
{
	assert_str_free(SECT(mixed, "1.2", IMAP_SECT_ALL), "<b>see</b>");
	assert_str_free(SECT(mixed, "1.1.1", IMAP_SECT_ALL), "");
	assert_str_free(SECT(mixed, "2", IMAP_SECT_ALL), "SGVsbG8gUERG");
	assert_str_free(SECT(mixed, "2.1", IMAP_SECT_ALL), "");
	assert_str_free(SECT(mixed, "3.1", IMAP_SECT_ALL), "caf=E9");
	assert_str_free(SECT(mixed, "3.2", IMAP_SECT_ALL), "");
	assert_str_free(SECT(mixed, "3", IMAP_SECT_MIME),
			"Content-Type: message/rfc822\r\n\r\n");
	assert_str_free(SECT(mixed, "3.1", IMAP_SECT_MIME),
			"Content-Type: text/plain; charset=iso-8859-1\r\n"
			"Content-Transfer-Encoding: quoted-printable\r\n\r\n");
	assert_str_free(SECT(mixed, "3", IMAP_SECT_HEADER),
			"From: x@y.z\r\nSubject: inner\r\n"
			"Content-Type: multipart/mixed; boundary=b2\r\n\r\n");
	assert_str_free(
	    SECT(mixed, "3", IMAP_SECT_TEXT),
	    "--b2\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "caf=E9\r\n--b2--");
	char *whole = SECT(mixed, "3", IMAP_SECT_ALL);
	cr_assert_eq(strlen(whole), 188);
	cr_assert(strncmp(whole, "From: x@y.z\r\n", 13) == 0);
	free(whole);
	const char f[][IMAP_FIELD_NAME_MAX] = {"SUBJECT"};
	assert_str_free(section_of(mixed, "3", IMAP_SECT_HEADER_FIELDS, f, 1),
			"Subject: inner\r\n\r\n");
	/* the folded Content-Type stays folded */
	const char ct[][IMAP_FIELD_NAME_MAX] = {"content-type"};
	assert_str_free(section_of(mixed, "", IMAP_SECT_HEADER_FIELDS, ct, 1),
			"Content-Type: multipart/mixed;\r\n\tboundary=outer\r\n"
			"\r\n");
}

Test(imap_mime, mixed_search)
{
	struct imap_mime *m = parse(mixed);
	cr_assert(imap_mime_body_has(m, "see attached"));
	cr_assert(imap_mime_body_has(m, "caf\xc3\xa9"));
	cr_assert(imap_mime_body_has(m, "CAF\xc3\xa9"));
	cr_assert_not(imap_mime_body_has(m, "Hello PDF"));
	cr_assert(imap_mime_header_has(m, "subject", "w\xc3\xb6rld"));
	cr_assert(imap_mime_header_has(m, "SUBJECT", "hello"));
	cr_assert_not(imap_mime_header_has(m, "subject", "SGVs"));
	cr_assert(imap_mime_header_has(m, "cc", "bob@y.org"));
	cr_assert(imap_mime_header_has(m, "", "carol"));
	cr_assert(imap_mime_header_has(m, "to", ""));
	cr_assert_not(imap_mime_header_has(m, "bcc", ""));
	time_t t;
	cr_assert_not(imap_mime_date(m, &t));
	imap_mime_free(m);
}

/* The header cache's view: the header section alone, as imap_hdr_len
 * cuts it, answers as the whole parsed message does. */
Test(imap_mime, header_section_alone)
{
	size_t n = imap_hdr_len(mixed, strlen(mixed));
	struct imap_mime *m = parse(mixed);
	const char *hdr;
	size_t hlen;
	cr_assert_eq(imap_mime_section(m, NULL, 0, IMAP_SECT_HEADER, NULL, 0,
				       NULL, &hdr, &hlen),
		     0);
	cr_assert_eq(n, hlen);
	cr_assert_eq(memcmp(hdr, mixed, n), 0);
	cr_assert(imap_hdr_has(mixed, n, "subject", "w\xc3\xb6rld"));
	cr_assert(imap_hdr_has(mixed, n, "cc", "bob@y.org"));
	cr_assert_not(imap_hdr_has(mixed, n, "bcc", ""));
	cr_assert_not(imap_hdr_has(mixed, n, "", "see attached"));
	imap_mime_free(m);
	cr_assert_eq(imap_hdr_len("A: b\r\n\r\nbody", 13), 8);
	cr_assert_eq(imap_hdr_len("\r\nbody", 6), 2);
	cr_assert_eq(imap_hdr_len("A: b\r\nB: c\r\n", 12), 0);
	cr_assert_eq(imap_hdr_len("A: b\r\n\r", 7), 0); /* cut: not yet */
	time_t t;
	const char *dated = "Date: Tue, 1 Feb 1994 10:00:00 +0000\r\n\r\n";
	cr_assert(imap_hdr_date(dated, strlen(dated), &t));
	cr_assert_eq(t, 760096800);
}

/* SENT* compare the day the Date: header writes: its zone is ignored,
 * not converted (RFC 3501 6.4.4). */
Test(imap_mime, date_as_written)
{
	time_t t;
	const char *late = "Date: Sun, 25 Mar 2007 23:30:00 -0500\r\n\r\n";
	cr_assert(imap_hdr_date(late, strlen(late), &t));
	cr_assert_eq(t, 1174883400); /* 26-Mar-2007 04:30 UTC */
	cr_assert(imap_hdr_date_written(late, strlen(late), &t));
	cr_assert_eq(t, 1174865400); /* 25-Mar-2007 23:30 */
	const char *early = "Date: 25 Mar 2007 01:00 +1400\r\n\r\n";
	cr_assert(imap_hdr_date_written(early, strlen(early), &t));
	cr_assert_eq(t, 1174784400); /* 25-Mar-2007 01:00 */
	const char *named = "Date: Sun, 25 Mar 2007 20:00:00 PDT\r\n\r\n";
	cr_assert(imap_hdr_date_written(named, strlen(named), &t));
	cr_assert_eq(t, 1174852800); /* 25-Mar-2007 20:00 */
	const char *bad = "Date: yesterday\r\n\r\n";
	cr_assert_not(imap_hdr_date_written(bad, strlen(bad), &t));
}

Test(imap_mime, encoded_words_latin1)
{
	struct imap_mime *m = parse(latin_subject);
	cr_assert(imap_mime_header_has(m, "subject",
				       "caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl"));
	cr_assert(imap_mime_header_has(m, "x-plain", "folded  value"));
	cr_assert_not(imap_mime_header_has(m, "subject", "=E9"));
	imap_mime_free(m);
	/* ENVELOPE keeps the encoded words, unfolded */
	char *env = envelope_of(latin_subject);
	cr_assert(strstr(env, "\"=?ISO-8859-1?Q?Caf=E9_cr=E8me?= "
			      "=?ISO-8859-1?Q?_br=FBl=E9e?=\"") != NULL,
		  "%s", env);
	free(env);
}

Test(imap_mime, odd_addresses)
{
	assert_str_free(envelope_of(odd_addrs),
			"(NIL \"a b\" (({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) "
			"(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) "
			"(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) "
			"((NIL \"@route.a,@route.b\" \"user\" \"host\")"
			"(NIL NIL \"bare\" \"\")(\"q\\\"uote\" NIL \"q\" \"h\")"
			"(\"Comment Name\" NIL \"a\" \"b\")) NIL NIL NIL NIL)");
}

Test(imap_mime, odd_addresses_8bit_name_is_literal)
{
	char *env = envelope_of("From: J\xc3\xb6rg <j@x>\r\n\r\n");
	cr_assert_str_eq(env, "(NIL NIL (({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) "
			      "(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) "
			      "(({5}\r\nJ\xc3\xb6rg NIL \"j\" \"x\")) "
			      "NIL NIL NIL NIL NIL)");
	free(env);
}

/* A trailing comment is the name when there is no phrase; a phrase
 * wins; comments elsewhere in the address are no part of it. */
Test(imap_mime, address_comments)
{
	assert_str_free(
	    envelope_of("From: user@example.org (Real Name)\r\n"
			"To: \"Phrase\" <p@x> (not this), a (c1) @ (c2) b.c "
			"(Trailing \\) one), (only a comment)\r\n"
			"Cc: x@y (), <q@r> (Angle Name)\r\n\r\n"),
	    "(NIL NIL ((\"Real Name\" NIL \"user\" \"example.org\")) "
	    "((\"Real Name\" NIL \"user\" \"example.org\")) "
	    "((\"Real Name\" NIL \"user\" \"example.org\")) "
	    "((\"Phrase\" NIL \"p\" \"x\")"
	    "(\"Trailing ) one\" NIL \"a\" \"b.c\")) "
	    "((NIL NIL \"x\" \"y\")(\"Angle Name\" NIL \"q\" \"r\")) NIL NIL "
	    "NIL)");
	struct strbuf sb;
	strbuf_init(&sb, 4096);
	cr_assert_eq(imap_addr_text("\"J. Doe\" <john(x)@(y)example.com>, "
				    "ann @ b . org (Ann B), team: c@d;",
				    &sb),
		     0);
	cr_assert_str_eq(strbuf_str(&sb), "J. Doe <john@example.com>, "
					  "Ann B <ann@b.org>, c@d");
	strbuf_free(&sb);
}

/* SEARCH FROM/TO/CC/BCC see the addresses without their comments. */
Test(imap_mime, address_search_ignores_comments)
{
	const char *h = "From: john (the boss) @ example (corp) . com\r\n"
			"To: Ann <ann(work)@b.org>\r\n"
			"Subject: x (not an address)\r\n\r\n";
	size_t n = strlen(h);
	cr_assert(imap_hdr_has(h, n, "from", "john@example.com"));
	cr_assert(imap_hdr_has(h, n, "from", "the boss")); /* as written */
	cr_assert(imap_hdr_has(h, n, "to", "ann@b.org"));
	cr_assert(imap_hdr_has(h, n, "to", "Ann <ann@b"));
	cr_assert_not(imap_hdr_has(h, n, "subject", "x not"));
	cr_assert_not(imap_hdr_has(h, n, "from", "john@example.org"));
}

/* BINARY: a part's content with its transfer encoding undone. */
Test(imap_mime, binary_decodes_parts)
{
	const char *msg =
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "--b\r\nContent-Transfer-Encoding: base64\r\n\r\nAGEAYg==\r\n"
	    "--b\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\n"
	    "a=3Db=\r\nc\r\n"
	    "--b\r\nContent-Transfer-Encoding: x-odd\r\n\r\nraw\r\n"
	    "--b--\r\n";
	struct imap_mime *m = parse(msg);
	char *out;
	size_t len;
	bool unknown;
	uint32_t p1[] = {1}, p2[] = {2}, p3[] = {3}, p9[] = {9};
	cr_assert_eq(imap_mime_binary(m, p1, 1, &out, &len, &unknown), 0);
	cr_assert_eq(len, 4);
	cr_assert_eq(memcmp(out, "\0a\0b", 4), 0);
	cr_assert_not(unknown);
	free(out);
	cr_assert_eq(imap_mime_binary(m, p2, 1, &out, &len, &unknown), 0);
	cr_assert_str_eq(out, "a=bc");
	free(out);
	cr_assert_eq(imap_mime_binary(m, p3, 1, &out, &len, &unknown), 0);
	cr_assert_str_eq(out, "raw");
	cr_assert(unknown);
	free(out);
	cr_assert_eq(imap_mime_binary(m, p9, 1, &out, &len, &unknown), 0);
	cr_assert_eq(len, 0);
	free(out);
	cr_assert_eq(imap_mime_binary(m, NULL, 0, &out, &len, &unknown), 0);
	cr_assert_eq(len, strlen(msg)); /* the whole message, as it is */
	free(out);
	imap_mime_free(m);
}

Test(imap_mime, missing_headers_are_nil)
{
	assert_str_free(envelope_of(""),
			"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	assert_str_free(envelope_of("Subject:\r\n\r\n"),
			"(NIL \"\" NIL NIL NIL NIL NIL NIL NIL NIL)");
	assert_str_free(
	    envelope_of("From: a@b\r\nSender: s@b\r\n"
			"Reply-To: r@b\r\n\r\n"),
	    "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"s\" \"b\")) "
	    "((NIL NIL \"r\" \"b\")) NIL NIL NIL NIL NIL)");
	assert_str_free(
	    envelope_of("From: a@b\r\nSender:\r\n"
			"Reply-To: \r\n\r\n"),
	    "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) "
	    "((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL)");
	/* an address field with no address in it */
	assert_str_free(envelope_of("To:  \r\n\r\n"),
			"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
}

Test(imap_mime, body_search_base64_qp)
{
	struct imap_mime *m = parse(b64_body);
	cr_assert(imap_mime_body_has(m, "secret message"));
	cr_assert_not(imap_mime_body_has(m, "U2Vj"));
	imap_mime_free(m);
	m = parse(qp_body);
	cr_assert(imap_mime_body_has(m, "softbreak na\xc3\xafve"));
	cr_assert(imap_mime_body_has(m, ""));
	cr_assert_not(imap_mime_body_has(m, "soft="));
	imap_mime_free(m);
}

Test(imap_mime, bad_mime)
{
	/* no closing boundary: the last part runs to the end */
	const char *unclosed = "Content-Type: multipart/mixed; boundary=z\r\n"
			       "\r\n--z\r\n\r\nabc\r\n";
	assert_str_free(
	    structure_of(unclosed, true),
	    "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
	    "\"7BIT\" 5 1 NIL NIL NIL NIL) \"MIXED\" "
	    "(\"BOUNDARY\" \"z\") NIL NIL NIL)");
	assert_str_free(SECT(unclosed, "1", IMAP_SECT_ALL), "abc\r\n");
	assert_str_free(SECT(unclosed, "1", IMAP_SECT_MIME), "\r\n");
	/* no blank line: all header */
	assert_str_free(
	    structure_of("Subject: x\r\nhello", true),
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
	    "\"7BIT\" 0 0 NIL NIL NIL NIL)");
	assert_str_free(
	    structure_of("", false),
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
	    "\"7BIT\" 0 0)");
	assert_str_free(SECT("", "1", IMAP_SECT_ALL), "");
	assert_str_free(SECT("", "", IMAP_SECT_HEADER), "");
	/* multipart without boundary, or no parts: text/plain */
	assert_str_free(
	    structure_of("Content-Type: multipart/mixed\r\n\r\nx", false),
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
	    "\"7BIT\" 1 0)");
	assert_str_free(
	    structure_of("Content-Type: multipart/mixed; boundary=q\r\n\r\nx",
			 false),
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
	    "\"7BIT\" 1 0)");
	/* a bad Content-Type is the default one */
	assert_str_free(
	    structure_of("Content-Type: garbage\r\n\r\n", false),
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
	    "\"7BIT\" 0 0)");
	/* RFC 2231 continuations are tolerated (kept as they are) */
	assert_str_free(
	    structure_of("Content-Type: application/x; name*0=\"a\";\r\n"
			 " name*1=\"b\"; ;=; x\r\n\r\n",
			 false),
	    "(\"APPLICATION\" \"X\" (\"NAME*0\" \"a\" \"NAME*1\" \"b\") NIL "
	    "NIL "
	    "\"7BIT\" 0)");
	/* binary garbage and lines without colons */
	static const char junk[] = "\x01\xff:\x80\r\nno colon here\r\n"
				   " fold\r\n\x00\x00:\r\n\r\n\xfe\xfe";
	struct imap_mime *m = imap_mime_parse(junk, sizeof(junk) - 1);
	cr_assert_not_null(m);
	struct strbuf sb;
	strbuf_init(&sb, 1 << 16);
	cr_assert_eq(imap_mime_envelope(m, &sb), 0);
	cr_assert_eq(imap_mime_bodystructure(m, true, &sb), 0);
	strbuf_free(&sb);
	imap_mime_free(m);
}

Test(imap_mime, digest_default_and_language)
{
	const char *d = "Content-Type: multipart/digest; boundary=d\r\n\r\n"
			"--d\r\n\r\nSubject: s\r\n\r\nhi\r\n"
			"--d\r\nContent-Language: en, fr\r\n"
			"Content-Location: http://x/\r\n"
			"Content-Type: text/plain\r\nContent-ID: <c@x>\r\n"
			"Content-Description: desc\r\n"
			"Content-MD5: abc=\r\n\r\nyo\r\n--d--\r\n";
	assert_str_free(
	    structure_of(d, true),
	    "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 16 "
	    "(NIL \"s\" NIL NIL NIL NIL NIL NIL NIL NIL) "
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 2 "
	    "0 "
	    "NIL NIL NIL NIL) 2 NIL NIL NIL NIL)"
	    "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") \"<c@x>\" \"desc\" "
	    "\"7BIT\" 2 0 \"abc=\" NIL (\"en\" \"fr\") \"http://x/\") "
	    "\"DIGEST\" (\"BOUNDARY\" \"d\") NIL NIL NIL)");
}

Test(imap_mime, strbuf_full_is_an_error)
{
	struct imap_mime *m = parse(mixed);
	struct strbuf sb;
	strbuf_init(&sb, 40);
	cr_assert_eq(imap_mime_bodystructure(m, true, &sb), -1);
	cr_assert_eq(sb.len, 0);
	cr_assert_eq(imap_mime_envelope(m, &sb), -1);
	cr_assert_eq(sb.len, 0);
	const char f[][IMAP_FIELD_NAME_MAX] = {"cc"};
	const char *data;
	size_t len;
	cr_assert_eq(imap_mime_section(m, NULL, 0, IMAP_SECT_HEADER_FIELDS, f,
				       1, &sb, &data, &len),
		     -1);
	strbuf_free(&sb);
	imap_mime_free(m);
}

static bool
date_of(const char *value, time_t *t)
{
	char msg[256];
	snprintf(msg, sizeof(msg), "Date: %s\r\n\r\n", value);
	struct imap_mime *m = parse(msg);
	bool ok = imap_mime_date(m, t);
	imap_mime_free(m);
	return ok;
}

Test(imap_mime, date)
{
	time_t t;
	cr_assert(date_of("Mon, 7 Feb 1994 21:52:25 -0800", &t));
	cr_assert_eq(t, 760686745);
	cr_assert(date_of("7 Feb 94 21:52 EST", &t));
	cr_assert_eq(t, 760675920);
	cr_assert(date_of("Tue,  1 Jul 2003 10:52:37 +0200 (CEST)", &t));
	cr_assert_eq(t, 1057049557);
	cr_assert(date_of("(c) Tue , 01 jul 2003 (x) 10:52:37 +0200", &t));
	cr_assert_eq(t, 1057049557);
	cr_assert(date_of("Fri, 31 Dec 49 23:59:60 GMT", &t));
	cr_assert_eq(t, 2524608000);
	cr_assert_not(date_of("yesterday", &t));
	cr_assert_not(date_of("32 Jan 2020 10:00 +0000", &t));
	cr_assert_not(date_of("29 Feb 2021 10:00 +0000", &t));
	cr_assert_not(date_of("1 Foo 2020 10:00 +0000", &t));
	cr_assert_not(date_of("1 Jan 2020 24:00 +0000", &t));
	cr_assert_not(date_of("1 Jan 2020 10:00 +00", &t));
	cr_assert_not(date_of("1 Jan 2020", &t));
	cr_assert_not(date_of("", &t));
	struct imap_mime *m = parse("Subject: x\r\n\r\n");
	cr_assert_not(imap_mime_date(m, &t));
	imap_mime_free(m);
}

Test(imap_mime, nesting_and_part_limits)
{
	/* 40 nested messages: parsing stops descending at 32 levels */
	struct strbuf msg;
	strbuf_init(&msg, 1 << 20);
	for (int i = 0; i < 40; i++)
		strbuf_appends(&msg, "Content-Type: message/rfc822\r\n\r\n");
	strbuf_appends(&msg, "Subject: deep\r\n\r\nx\r\n");
	struct imap_mime *m = imap_mime_parse(msg.buf, msg.len);
	cr_assert_not_null(m);
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	cr_assert_eq(imap_mime_bodystructure(m, true, &sb), 0);
	cr_assert(imap_mime_body_has(m, "Subject: deep"));
	uint32_t parts[16];
	for (int i = 0; i < 16; i++)
		parts[i] = 1;
	const char *data;
	size_t len;
	cr_assert_eq(imap_mime_section(m, parts, 16, IMAP_SECT_ALL, NULL, 0,
				       &sb, &data, &len),
		     0);
	imap_mime_free(m);

	/* 20,000 parts: the rest past 10,000 is not split */
	strbuf_reset(&msg);
	strbuf_appends(&msg,
		       "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
	for (int i = 0; i < 20000; i++)
		strbuf_appends(&msg, "--b\r\n\r\nx\r\n");
	strbuf_appends(&msg, "--b--\r\n");
	m = imap_mime_parse(msg.buf, msg.len);
	cr_assert_not_null(m);
	strbuf_reset(&sb);
	cr_assert_eq(imap_mime_bodystructure(m, false, &sb), 0);
	size_t nparts = 0;
	for (const char *p = sb.buf; (p = strstr(p, "\"PLAIN\"")); p++)
		nparts++;
	cr_assert_eq(nparts, 9999);
	imap_mime_free(m);
	strbuf_free(&sb);
	strbuf_free(&msg);
}

/* ---- fuzz ---- */

static uint64_t fuzz_state = 0x9e3779b97f4a7c15ull;

static uint32_t
fuzz_rand(void)
{
	fuzz_state ^= fuzz_state << 13;
	fuzz_state ^= fuzz_state >> 7;
	fuzz_state ^= fuzz_state << 17;
	return (uint32_t)(fuzz_state >> 16);
}

/* One random change of buf[0..*len) (room for cap bytes). */
static void
fuzz_mutate(char *buf, size_t *len, size_t cap)
{
	static const char *snips[] = {
	    "\r\n",
	    "\r\n\r\n",
	    "--outer",
	    "--inner--",
	    "--XX\r\n",
	    "=?",
	    "?=",
	    "=?UTF-8?B?",
	    "=?iso-8859-1?q?=E9",
	    "\"",
	    "(",
	    ")",
	    "<",
	    ">",
	    ":",
	    ";",
	    ",",
	    "@",
	    "\\",
	    "=",
	    "=\r\n",
	    " ",
	    "\t",
	    "Content-Type: multipart/mixed; boundary=outer\r\n",
	    "Content-Type: message/rfc822\r\n\r\n",
	    "Content-Transfer-Encoding: base64\r\n",
	    "\xff",
	    "\0"};
	size_t n = *len;
	size_t at = n ? fuzz_rand() % (n + 1) : 0;
	switch (fuzz_rand() % 5) {
	case 0: /* flip a byte */
		if (n > 0)
			buf[at % n] = (char)fuzz_rand();
		break;
	case 1: { /* delete a range */
		size_t k = fuzz_rand() % 16;
		if (at + k > n)
			k = n - at;
		memmove(buf + at, buf + at + k, n - at - k);
		*len = n - k;
		break;
	}
	case 2: { /* insert a snippet */
		const char *s =
		    snips[fuzz_rand() % (sizeof(snips) / sizeof(snips[0]))];
		size_t k = *s ? strlen(s) : 1;
		if (n + k > cap)
			break;
		memmove(buf + at + k, buf + at, n - at);
		memcpy(buf + at, s, k);
		*len = n + k;
		break;
	}
	case 3: { /* duplicate a range */
		size_t k = fuzz_rand() % 64;
		if (at + k > n)
			k = n - at;
		if (n + k > cap)
			break;
		memmove(buf + at + k, buf + at, n - at);
		*len = n + k;
		break;
	}
	default: /* truncate */
		*len = at;
		break;
	}
}

static void
fuzz_outputs(const char *msg, size_t len)
{
	struct imap_mime *m = imap_mime_parse(msg, len);
	cr_assert_not_null(m);
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	imap_mime_envelope(m, &sb);
	imap_mime_bodystructure(m, true, &sb);
	imap_mime_bodystructure(m, false, &sb);
	static const uint32_t paths[][3] = {{1, 0, 0}, {2, 0, 0}, {3, 0, 0},
					    {1, 1, 0}, {1, 2, 0}, {3, 1, 0},
					    {3, 1, 1}, {0, 0, 0}};
	const char f[][IMAP_FIELD_NAME_MAX] = {"subject", "content-type"};
	for (size_t p = 0; p < sizeof(paths) / sizeof(paths[0]); p++) {
		size_t np = 0;
		while (np < 3 && paths[p][np] != 0)
			np++;
		for (int spec = IMAP_SECT_ALL; spec <= IMAP_SECT_MIME; spec++) {
			const char *data;
			size_t dlen;
			strbuf_reset(&sb);
			if (imap_mime_section(m, paths[p], np, spec, f, 2, &sb,
					      &data, &dlen) == 0 &&
			    dlen > 0) {
				/* the answer must be readable to its end */
				volatile char c = data[dlen - 1];
				(void)c;
			}
		}
	}
	imap_mime_header_has(m, "subject", "w\xc3\xb6rld");
	imap_mime_header_has(m, "", "x");
	imap_mime_body_has(m, "caf");
	time_t t;
	imap_mime_date(m, &t);
	strbuf_free(&sb);
	imap_mime_free(m);
}

Test(imap_mime, fuzz_mutations, .timeout = 300)
{
	const char *samples[] = {simple,    alternative, mixed,	 latin_subject,
				 odd_addrs, b64_body,	 qp_body};
	size_t ns = sizeof(samples) / sizeof(samples[0]);
	/* IMAP_MIME_FUZZ_SEED=n runs another sequence */
	const char *seed = getenv("IMAP_MIME_FUZZ_SEED");
	if (seed != NULL)
		fuzz_state = strtoull(seed, NULL, 10) | 1;
	enum { CAP = 4096 };
	char work[CAP];
	for (int iter = 0; iter < 20000; iter++) {
		const char *s = samples[fuzz_rand() % ns];
		size_t len = strlen(s);
		memcpy(work, s, len);
		int rounds = 1 + (int)(fuzz_rand() % 8);
		for (int r = 0; r < rounds; r++)
			fuzz_mutate(work, &len, CAP);
		/* an exact-size copy, so ASan sees any read past the end */
		char *msg = malloc(len ? len : 1);
		cr_assert_not_null(msg);
		memcpy(msg, work, len);
		fuzz_outputs(msg, len);
		free(msg);
	}
}

/* The web role's view (imap_mime_leaf.c): the leaves numbered as
 * BODY[section], each decoded, and a top-level header decoded. */
struct leaf_seen {
	char sections[8][96], types[8][64];
	char *data[8];
	size_t len[8], n;
};

static int
leaf_collect(void *arg, const struct imap_mime_leaf *l)
{
	struct leaf_seen *s = arg;
	cr_assert_lt(s->n, 8);
	snprintf(s->sections[s->n], sizeof(s->sections[0]), "%s", l->section);
	snprintf(s->types[s->n], sizeof(s->types[0]), "%s/%s %s %s", l->type,
		 l->subtype, l->name ? l->name : "-", l->cid ? l->cid : "-");
	s->data[s->n] = imap_mime_leaf_decode(l, &s->len[s->n]);
	s->n++;
	return 0;
}

Test(imap_mime, leaves_for_the_web)
{
	const char *msg =
	    "Subject: =?UTF-8?Q?caf=C3=A9?= menu\r\n"
	    "Content-Type: multipart/mixed; boundary=o\r\n\r\n"
	    "--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n"
	    "--i\r\nContent-Type: text/plain\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "a=3Db soft=\r\nbreak\r\n"
	    "--i\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--i--\r\n"
	    "--o\r\nContent-Type: image/png; name=\"p.png\"\r\n"
	    "Content-ID: <img1@x>\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--o--\r\n";
	struct imap_mime *m = imap_mime_parse(msg, strlen(msg));
	struct leaf_seen s = {0};
	char subject[64];
	cr_assert_not_null(m);
	cr_assert_eq(imap_mime_leaves(m, leaf_collect, &s), 0);
	cr_assert_eq(s.n, 3);
	cr_assert_str_eq(s.sections[0], "1.1");
	cr_assert_str_eq(s.types[0], "text/plain - -");
	cr_assert_eq(s.len[0], strlen("a=b softbreak"));
	cr_assert_str_eq(s.data[0], "a=b softbreak");
	cr_assert_str_eq(s.sections[1], "1.2");
	cr_assert_str_eq(s.data[1], "<p>x</p>");
	cr_assert_str_eq(s.sections[2], "2");
	cr_assert_str_eq(s.types[2], "image/png p.png <img1@x>");
	cr_assert_str_eq(s.data[2], "hello");
	cr_assert(imap_mime_header_get(m, "subject", subject, sizeof(subject)));
	cr_assert_str_eq(subject, "café menu");
	cr_assert_not(imap_mime_header_get(m, "cc", subject, sizeof(subject)));
	cr_assert_str_eq(subject, "");
	for (size_t i = 0; i < s.n; i++)
		free(s.data[i]);
	imap_mime_free(m);

	/* A message without MIME is its own part 1. */
	m = imap_mime_parse("Subject: x\r\n\r\nbody\r\n", 20);
	memset(&s, 0, sizeof(s));
	imap_mime_leaves(m, leaf_collect, &s);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.sections[0], "1");
	cr_assert_str_eq(s.types[0], "text/plain - -");
	cr_assert_str_eq(s.data[0], "body\r\n");
	free(s.data[0]);
	imap_mime_free(m);
}
