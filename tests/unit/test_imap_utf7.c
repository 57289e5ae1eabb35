/* node/imap_utf7.c: modified UTF-7 mailbox names (RFC 3501 5.1.3). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../../node/imap/imap_parse.h"

/* RFC 3501 5.1.3's example: "~peter/mail/台北/日本語". */
#define RFC_MUTF7 "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
#define RFC_UTF8                                                               \
	"~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8"    \
	"\xaa\x9e"

Test(imap_utf7, rfc_example)
{
	char out[128];
	cr_assert(imap_mutf7_valid(RFC_MUTF7));
	cr_assert_eq(imap_mutf7_to_utf8(RFC_MUTF7, out, sizeof(out)), 0);
	cr_assert_str_eq(out, RFC_UTF8);
	cr_assert_eq(imap_utf8_to_mutf7(RFC_UTF8, out, sizeof(out)), 0);
	cr_assert_str_eq(out, RFC_MUTF7);
}

Test(imap_utf7, ampersand)
{
	char out[64];
	cr_assert(imap_mutf7_valid("&-"));
	cr_assert(imap_mutf7_valid("Tom &- Jerry"));
	cr_assert_eq(imap_mutf7_to_utf8("a&-b&-", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "a&b&");
	cr_assert_eq(imap_utf8_to_mutf7("a&b", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "a&-b");
}

Test(imap_utf7, plain_ascii)
{
	char out[64];
	cr_assert(imap_mutf7_valid(""));
	cr_assert(imap_mutf7_valid("INBOX.Sent Items"));
	cr_assert_eq(imap_utf8_to_mutf7("INBOX/Sent ~x", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "INBOX/Sent ~x");
	cr_assert_eq(imap_mutf7_to_utf8("", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "");
}

Test(imap_utf7, known_encodings)
{
	char out[64];
	/* U+00E9 (é), U+1F600 (surrogate pair), a control byte. */
	cr_assert_eq(imap_utf8_to_mutf7("caf\xc3\xa9", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "caf&AOk-");
	cr_assert_eq(imap_utf8_to_mutf7("\xf0\x9f\x98\x80", out, sizeof(out)),
		     0);
	cr_assert_str_eq(out, "&2D3eAA-");
	cr_assert_eq(imap_mutf7_to_utf8("&2D3eAA-", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "\xf0\x9f\x98\x80");
	cr_assert_eq(imap_utf8_to_mutf7("a\tb", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "a&AAk-b");
	/* '/' of BASE64 is ',' here. */
	cr_assert_eq(imap_utf8_to_mutf7("\xef\xbf\xbf", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "&,,8-");
}

Test(imap_utf7, round_trips)
{
	const char *names[] = {
	    "",
	    "plain",
	    "&",
	    "&&",
	    "a&b&c",
	    "\xc3\xa9",
	    "\xc3\xa9t\xc3\xa9",
	    "Entw\xc3\xbc rfe",
	    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	    "x\xf0\x9f\x98\x80y\xf0\x9f\x98\x81",
	    "\x7f\x01",
	    "\xef\xbf\xbd",
	    "\xe2\x82\xac&\xe2\x82\xac",
	    "\xc2\x80\xc2\x81\xc2\x82",
	};
	char m[256], u[256];
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		cr_assert_eq(imap_utf8_to_mutf7(names[i], m, sizeof(m)), 0,
			     "%zu", i);
		cr_assert(imap_mutf7_valid(m), "%s", m);
		cr_assert_eq(imap_mutf7_to_utf8(m, u, sizeof(u)), 0, "%s", m);
		cr_assert_str_eq(u, names[i]);
	}
	/* Every BMP code point but surrogates, one at a time. */
	for (uint32_t cp = 0x80; cp < 0x10000; cp += 7) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		char in[8];
		if (cp < 0x800) {
			in[0] = (char)(0xc0 | cp >> 6);
			in[1] = (char)(0x80 | (cp & 0x3f));
			in[2] = 0;
		} else {
			in[0] = (char)(0xe0 | cp >> 12);
			in[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
			in[2] = (char)(0x80 | (cp & 0x3f));
			in[3] = 0;
		}
		cr_assert_eq(imap_utf8_to_mutf7(in, m, sizeof(m)), 0);
		cr_assert_eq(imap_mutf7_to_utf8(m, u, sizeof(u)), 0, "%s", m);
		cr_assert_str_eq(u, in);
	}
}

Test(imap_utf7, invalid_mutf7)
{
	const char *bad[] = {
	    "&",	      /* unterminated */
	    "&U,BTFw",	      /* no '-' */
	    "&AGE-",	      /* encodes printable 'a' */
	    "&ACY-",	      /* encodes '&' itself */
	    "&U,BTF-",	      /* 30 bits: leftover too long */
	    "&U,BTFx-",	      /* nonzero padding bits */
	    "&2D0-",	      /* lone high surrogate */
	    "&3gA-",	      /* lone low surrogate */
	    "&2D3YPQ-",	      /* two high surrogates */
	    "&AAA-",	      /* U+0000 */
	    "&U=BTFw-",	      /* '=' is not modified BASE64 */
	    "&U/BTFw-",	      /* '/' neither */
	    "a\tb",	      /* control byte raw */
	    "caf\xc3\xa9",    /* 8-bit raw */
	    "&A-",	      /* too few bits for a character */
	    "&&-",	      /* '&' inside a run */
	    "&AOk-&AOk-",     /* two runs in a row: not the encoder's */
	    "E&7tnrPw-&7tw-", /* the same, found by fuzz_mutf7 */
	    "\x7f",
	};
	char out[64];
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cr_assert_not(imap_mutf7_valid(bad[i]), "%s", bad[i]);
		cr_assert_eq(imap_mutf7_to_utf8(bad[i], out, sizeof(out)), -1,
			     "%s", bad[i]);
	}
}

Test(imap_utf7, invalid_utf8)
{
	const char *bad[] = {
	    "\xc3",		/* truncated */
	    "\xc0\xaf",		/* overlong '/' */
	    "\xe0\x80\xaf",	/* overlong */
	    "\xed\xa0\x80",	/* surrogate */
	    "\xf4\x90\x80\x80", /* over U+10FFFF */
	    "\xff",
	    "\x80",
	    "a\xe6\x97",
	};
	char out[64];
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		cr_assert_eq(imap_utf8_to_mutf7(bad[i], out, sizeof(out)), -1,
			     "%zu", i);
}

Test(imap_utf7, output_bounds)
{
	char out[64];
	/* "&U,BTFw-" is 8 bytes: 9 with the NUL. */
	cr_assert_eq(imap_utf8_to_mutf7("\xe5\x8f\xb0\xe5\x8c\x97", out, 9), 0);
	cr_assert_eq(imap_utf8_to_mutf7("\xe5\x8f\xb0\xe5\x8c\x97", out, 8),
		     -1);
	cr_assert_eq(imap_utf8_to_mutf7("abc", out, 3), -1);
	cr_assert_eq(imap_utf8_to_mutf7("abc", out, 0), -1);
	cr_assert_eq(imap_mutf7_to_utf8("&U,BTFw-", out, 7), 0);
	cr_assert_eq(imap_mutf7_to_utf8("&U,BTFw-", out, 6), -1);
	cr_assert_eq(imap_mutf7_to_utf8("abc", out, 0), -1);
}

Test(imap_utf7, random_bytes_never_crash)
{
	srand(7);
	char in[40], out[200], back[200];
	for (int i = 0; i < 20000; i++) {
		size_t n = (size_t)(rand() % 39);
		for (size_t j = 0; j < n; j++)
			in[j] = (char)(rand() % 2 ? "&-A,+Z09az~/"[rand() % 12]
						  : rand() % 255 + 1);
		in[n] = '\0';
		bool v = imap_mutf7_valid(in);
		cr_assert_eq(imap_mutf7_to_utf8(in, out, sizeof(out)) == 0, v);
		if (v) {
			/* What decodes encodes back the same way. */
			cr_assert_eq(
			    imap_utf8_to_mutf7(out, back, sizeof(back)), 0);
			(void)back;
		}
		imap_utf8_to_mutf7(in, out, sizeof(out));
	}
}
