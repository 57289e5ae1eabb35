/* node/imap_parse.c: literals, strings, numbers, sequence sets, flags,
 * dates and FETCH attributes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/strbuf.h"
#include "../../node/imap/imap_parse.h"

/* A cursor over a string constant (NULs included with CUR_BIN). */
#define CUR(c, s) imap_cur_init((c), (s), strlen(s))
#define CUR_BIN(c, s) imap_cur_init((c), (s), sizeof(s) - 1)

/* ---- literal suffix ---- */

Test(imap_literal_suffix, forms)
{
	uint64_t n = 99;
	bool ns = true;
	const char *l = "a1 LOGIN {5}";
	cr_assert_eq(imap_literal_suffix(l, strlen(l), &n, &ns), 1);
	cr_assert_eq(n, 5);
	cr_assert_not(ns);
	l = "a1 APPEND INBOX {123+}";
	cr_assert_eq(imap_literal_suffix(l, strlen(l), &n, &ns), 1);
	cr_assert_eq(n, 123);
	cr_assert(ns);
	l = "a1 LOGIN {0}";
	cr_assert_eq(imap_literal_suffix(l, strlen(l), &n, &ns), 1);
	cr_assert_eq(n, 0);
	l = "{4294967295}";
	cr_assert_eq(imap_literal_suffix(l, strlen(l), &n, &ns), 1);
	cr_assert_eq(n, 4294967295u);
}

Test(imap_literal_suffix, none_and_malformed)
{
	uint64_t n;
	bool ns;
	const char *none[] = {"", "a1 NOOP", "a1 LOGIN foo}", "{5} x", "}"};
	for (size_t i = 0; i < sizeof(none) / sizeof(*none); i++)
		cr_assert_eq(
		    imap_literal_suffix(none[i], strlen(none[i]), &n, &ns), 0,
		    "%s", none[i]);
	const char *bad[] = {"a {}",
			     "a {12x}",
			     "a {+}",
			     "a {4294967296}",
			     "a {1 2}",
			     "a {-1}",
			     "a {99999999999999999999}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		cr_assert_eq(
		    imap_literal_suffix(bad[i], strlen(bad[i]), &n, &ns), -1,
		    "%s", bad[i]);
}

/* ---- cursor, atoms, tags ---- */

Test(imap_cur, sp_end_peek)
{
	struct imap_cur c;
	CUR(&c, " x");
	cr_assert_eq(imap_sp(&c), 0);
	cr_assert_not(imap_at_end(&c));
	cr_assert_eq(imap_end(&c), -1);
	cr_assert_str_neq(c.err, "");
	cr_assert_not(imap_peek_char(&c, 'y'));
	cr_assert(imap_peek_char(&c, 'x'));
	cr_assert(imap_at_end(&c));
	cr_assert_eq(imap_end(&c), 0);
	cr_assert_eq(imap_sp(&c), -1);
	CUR(&c, "\r\n");
	cr_assert(imap_at_end(&c));
}

Test(imap_cur, fail_sets_err)
{
	struct imap_cur c;
	CUR(&c, "");
	cr_assert_eq(imap_cur_fail(&c, "bad %d", 42), -1);
	cr_assert_str_eq(c.err, "bad 42");
	char big[400];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(imap_cur_fail(&c, "%s", big), -1);
	cr_assert_eq(strlen(c.err), sizeof(c.err) - 1);
}

Test(imap_atom, chars)
{
	struct imap_cur c;
	char out[32];
	CUR(&c, "a1.b+c[d SELECT");
	cr_assert_eq(imap_atom(&c, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "a1.b+c[d");
	cr_assert_eq(imap_sp(&c), 0);
	cr_assert_eq(imap_atom(&c, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "SELECT");
	const char *stop = "(){%*\"\\] \x01\x7f\x80";
	for (const char *s = stop; *s; s++) {
		char in[4] = {'a', *s, 'b', 0};
		CUR(&c, in);
		cr_assert_eq(imap_atom(&c, out, sizeof(out)), 0);
		cr_assert_str_eq(out, "a", "stop at 0x%02x", *s & 0xff);
		CUR(&c, in + 1);
		cr_assert_eq(imap_atom(&c, out, sizeof(out)), -1);
	}
	CUR(&c, "");
	cr_assert_eq(imap_atom(&c, out, sizeof(out)), -1);
	CUR(&c, "abcdef");
	cr_assert_eq(imap_atom(&c, out, 6), -1); /* 5 chars fit */
	CUR(&c, "abcde");
	cr_assert_eq(imap_atom(&c, out, 6), 0);
	CUR(&c, "abc");
	cr_assert_eq(imap_atom(&c, out, 0), -1);
}

Test(imap_tag, no_plus)
{
	struct imap_cur c;
	char out[32];
	CUR(&c, "A001 NOOP");
	cr_assert_eq(imap_tag(&c, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "A001");
	CUR(&c, "a+b");
	cr_assert_eq(imap_tag(&c, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "a");
	CUR(&c, "+ x");
	cr_assert_eq(imap_tag(&c, out, sizeof(out)), -1);
	CUR(&c, "*");
	cr_assert_eq(imap_tag(&c, out, sizeof(out)), -1);
	CUR(&c, "(a");
	cr_assert_eq(imap_tag(&c, out, sizeof(out)), -1);
}

/* ---- strings ---- */

Test(imap_string, quoted_escapes)
{
	struct imap_cur c;
	char out[64];
	size_t n;
	CUR(&c, "\"a \\\"b\\\" \\\\c\" x");
	cr_assert_eq(imap_string(&c, out, sizeof(out), &n), 0);
	cr_assert_str_eq(out, "a \"b\" \\c");
	cr_assert_eq(n, 8);
	cr_assert_eq(*c.p, ' ');
	CUR(&c, "\"\"");
	cr_assert_eq(imap_string(&c, out, sizeof(out), &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_str_eq(out, "");
	CUR(&c, "\"caf\xc3\xa9\"");
	cr_assert_eq(imap_string(&c, out, sizeof(out), NULL), 0);
	cr_assert_str_eq(out, "caf\xc3\xa9");
	const char *bad[] = {"\"abc", "\"a\\nb\"", "\"a\rb\"", "\"a\nb\"",
			     "\"a\\", "abc",	   "",	       "\"\\"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		CUR(&c, bad[i]);
		cr_assert_eq(imap_string(&c, out, sizeof(out), &n), -1, "%s",
			     bad[i]);
		cr_assert_str_neq(c.err, "");
	}
	CUR_BIN(&c, "\"a\0b\"");
	cr_assert_eq(imap_string(&c, out, sizeof(out), &n), -1);
}

Test(imap_string, literal_with_nul)
{
	struct imap_cur c;
	char out[64];
	size_t n;
	CUR_BIN(&c, "{5}\r\na\0b\"c x");
	cr_assert_eq(imap_string(&c, out, sizeof(out), &n), 0);
	cr_assert_eq(n, 5);
	cr_assert_eq(memcmp(out, "a\0b\"c", 6), 0);
	cr_assert_eq(imap_sp(&c), 0);
	CUR(&c, "{3+}\r\nabc");
	cr_assert_eq(imap_string(&c, out, sizeof(out), &n), 0);
	cr_assert_str_eq(out, "abc");
	cr_assert(imap_at_end(&c));
	CUR(&c, "{0}\r\n");
	cr_assert_eq(imap_string(&c, out, sizeof(out), &n), 0);
	cr_assert_eq(n, 0);
	const char *bad[] = {"{5}\r\nabc",  "{}\r\nabc", "{3}abc",
			     "{3x}\r\nabc", "{3",	 "{4294967296}\r\n",
			     "{-1}\r\n",    "{3}\r"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		CUR(&c, bad[i]);
		cr_assert_eq(imap_string(&c, out, sizeof(out), &n), -1, "%s",
			     bad[i]);
	}
}

Test(imap_string, literal_by_reference)
{
	struct imap_cur c;
	const char *data;
	size_t n;
	const char *in = "{11}\r\nFrom: a\r\n\r\n";
	CUR(&c, in);
	cr_assert_eq(imap_literal(&c, &data, &n), 0);
	cr_assert_eq(n, 11);
	cr_assert_eq(data, in + 6);
	cr_assert(imap_at_end(&c));
	CUR(&c, "\"abc\"");
	cr_assert_eq(imap_literal(&c, &data, &n), -1);
}

Test(imap_string, oversize)
{
	struct imap_cur c;
	char out[4];
	CUR(&c, "\"abcd\"");
	cr_assert_eq(imap_string(&c, out, sizeof(out), NULL), -1);
	CUR(&c, "\"abc\"");
	cr_assert_eq(imap_string(&c, out, sizeof(out), NULL), 0);
	CUR(&c, "{4}\r\nabcd");
	cr_assert_eq(imap_string(&c, out, sizeof(out), NULL), -1);
	CUR(&c, "abcd");
	cr_assert_eq(imap_astring(&c, out, sizeof(out), NULL), -1);
	char *big = malloc(100001);
	memset(big, 'a', 100000);
	big[0] = '"';
	big[100000] = '\0';
	char out2[1024];
	imap_cur_init(&c, big, 100000);
	cr_assert_eq(imap_string(&c, out2, sizeof(out2), NULL), -1);
	free(big);
}

Test(imap_string, astring_vs_string)
{
	struct imap_cur c;
	char out[64];
	size_t n;
	CUR(&c, "INBOX]x y");
	cr_assert_eq(imap_astring(&c, out, sizeof(out), &n), 0);
	cr_assert_str_eq(out, "INBOX]x");
	cr_assert_eq(n, 7);
	CUR(&c, "INBOX");
	cr_assert_eq(imap_string(&c, out, sizeof(out), &n), -1);
	CUR(&c, "\"my box\"");
	cr_assert_eq(imap_astring(&c, out, sizeof(out), &n), 0);
	cr_assert_str_eq(out, "my box");
	CUR(&c, "{2}\r\nab");
	cr_assert_eq(imap_astring(&c, out, sizeof(out), &n), 0);
	cr_assert_str_eq(out, "ab");
	CUR(&c, "(a)");
	cr_assert_eq(imap_astring(&c, out, sizeof(out), &n), -1);
	CUR(&c, "a%b");
	cr_assert_eq(imap_astring(&c, out, sizeof(out), &n), 0);
	cr_assert_str_eq(out, "a");
}

Test(imap_string, nstring)
{
	struct imap_cur c;
	char out[64];
	size_t n;
	bool nil;
	CUR(&c, "NIL");
	cr_assert_eq(imap_nstring(&c, out, sizeof(out), &n, &nil), 0);
	cr_assert(nil);
	CUR(&c, "nil x");
	cr_assert_eq(imap_nstring(&c, out, sizeof(out), &n, &nil), 0);
	cr_assert(nil);
	cr_assert_eq(*c.p, ' ');
	CUR(&c, "\"NIL\"");
	cr_assert_eq(imap_nstring(&c, out, sizeof(out), &n, &nil), 0);
	cr_assert_not(nil);
	cr_assert_str_eq(out, "NIL");
	CUR(&c, "NILS");
	cr_assert_eq(imap_nstring(&c, out, sizeof(out), &n, &nil), -1);
	CUR(&c, "foo");
	cr_assert_eq(imap_nstring(&c, out, sizeof(out), &n, &nil), -1);
}

Test(imap_string, list_mailbox)
{
	struct imap_cur c;
	char out[64];
	CUR(&c, "INBOX.*");
	cr_assert_eq(imap_list_mailbox(&c, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "INBOX.*");
	CUR(&c, "%/a]b* x");
	cr_assert_eq(imap_list_mailbox(&c, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "%/a]b*");
	CUR(&c, "\"\"");
	cr_assert_eq(imap_list_mailbox(&c, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "");
	CUR(&c, "\"a b%\"");
	cr_assert_eq(imap_list_mailbox(&c, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "a b%");
	CUR(&c, "{1}\r\n*");
	cr_assert_eq(imap_list_mailbox(&c, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "*");
	CUR_BIN(&c, "{3}\r\na\0b");
	cr_assert_eq(imap_list_mailbox(&c, out, sizeof(out)), -1);
	CUR(&c, "(x");
	cr_assert_eq(imap_list_mailbox(&c, out, sizeof(out)), -1);
	CUR(&c, "");
	cr_assert_eq(imap_list_mailbox(&c, out, sizeof(out)), -1);
}

Test(imap_number, bounds)
{
	struct imap_cur c;
	uint32_t v;
	CUR(&c, "0");
	cr_assert_eq(imap_number(&c, &v), 0);
	cr_assert_eq(v, 0);
	CUR(&c, "4294967295 ");
	cr_assert_eq(imap_number(&c, &v), 0);
	cr_assert_eq(v, 4294967295u);
	CUR(&c, "4294967296");
	cr_assert_eq(imap_number(&c, &v), -1);
	CUR(&c, "99999999999999999999999");
	cr_assert_eq(imap_number(&c, &v), -1);
	CUR(&c, "-1");
	cr_assert_eq(imap_number(&c, &v), -1);
	CUR(&c, "");
	cr_assert_eq(imap_number(&c, &v), -1);
	CUR(&c, "0");
	cr_assert_eq(imap_nz_number(&c, &v), -1);
	CUR(&c, "7x");
	cr_assert_eq(imap_nz_number(&c, &v), 0);
	cr_assert_eq(v, 7);
}

/* ---- sequence sets ---- */

Test(imap_seqset, forms)
{
	struct imap_cur c;
	static struct imap_seqset s;
	CUR(&c, "1,3:5,*,7:*,*:2 x");
	cr_assert_eq(imap_seqset(&c, &s), 0);
	cr_assert_eq(s.n, 5);
	cr_assert_eq(s.r[0].lo, 1);
	cr_assert_eq(s.r[0].hi, 1);
	cr_assert_eq(s.r[1].lo, 3);
	cr_assert_eq(s.r[1].hi, 5);
	cr_assert_eq(s.r[2].lo, IMAP_STAR);
	cr_assert_eq(s.r[3].hi, IMAP_STAR);
	cr_assert_eq(s.r[4].lo, IMAP_STAR);
	cr_assert_eq(s.r[4].hi, 2);
	cr_assert_eq(*c.p, ' ');
}

Test(imap_seqset, has_with_star_both_ways)
{
	struct imap_cur c;
	static struct imap_seqset s;
	CUR(&c, "3:*");
	cr_assert_eq(imap_seqset(&c, &s), 0);
	cr_assert_not(imap_seqset_has(&s, 2, 10));
	cr_assert(imap_seqset_has(&s, 3, 10));
	cr_assert(imap_seqset_has(&s, 10, 10));
	cr_assert(imap_seqset_has(&s, 2, 2)); /* "3:*" with max 2 is 2:3 */
	cr_assert_not(imap_seqset_has(&s, 3, 0));
	CUR(&c, "*:3");
	cr_assert_eq(imap_seqset(&c, &s), 0);
	cr_assert(imap_seqset_has(&s, 5, 10));
	cr_assert_not(imap_seqset_has(&s, 2, 10));
	CUR(&c, "5:2");
	cr_assert_eq(imap_seqset(&c, &s), 0);
	cr_assert(imap_seqset_has(&s, 3, 10));
	cr_assert_not(imap_seqset_has(&s, 6, 10));
	CUR(&c, "*");
	cr_assert_eq(imap_seqset(&c, &s), 0);
	cr_assert(imap_seqset_has(&s, 9, 9));
	cr_assert_not(imap_seqset_has(&s, 8, 9));
}

Test(imap_seqset, garbage_and_overflow)
{
	struct imap_cur c;
	static struct imap_seqset s;
	const char *bad[] = {
	    "",	    "0",	  "1:0",	   "a", ",1", "1,", "1:", ":1",
	    "1::2", "4294967296", "1:99999999999", "**"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		CUR(&c, bad[i]);
		int r = imap_seqset(&c, &s);
		/* "**" reads one star and leaves the rest to imap_end. */
		if (r == 0)
			r = imap_end(&c);
		cr_assert_eq(r, -1, "%s", bad[i]);
	}
	CUR(&c, "4294967294");
	cr_assert_eq(imap_seqset(&c, &s), 0);
}

/* RFC 3501's nz-number goes up to 4294967295, which is not "*". */
Test(imap_seqset, largest_number_is_not_star)
{
	struct imap_cur c;
	static struct imap_seqset s;
	CUR(&c, "1:4294967295");
	cr_assert_eq(imap_seqset(&c, &s), 0);
	cr_assert_eq(s.r[0].hi, 4294967295u);
	cr_assert(imap_seqset_has(&s, 7, 10));
	cr_assert(imap_seqset_has(&s, 4294967295u, 10));
	CUR(&c, "4294967295");
	cr_assert_eq(imap_seqset(&c, &s), 0);
	cr_assert_not(imap_seqset_has(&s, 10, 10)); /* not the largest */
	cr_assert(imap_seqset_has(&s, 4294967295u, 4294967295u));
}

Test(imap_seqset, too_many_ranges)
{
	struct imap_cur c;
	static struct imap_seqset s;
	size_t len = (IMAP_SEQSET_MAX + 1) * 2;
	char *in = malloc(len);
	for (size_t i = 0; i < IMAP_SEQSET_MAX + 1; i++) {
		in[2 * i] = '1';
		in[2 * i + 1] = ',';
	}
	imap_cur_init(&c, in, len - 1);
	cr_assert_eq(imap_seqset(&c, &s), -1);
	imap_cur_init(&c, in, len - 3);
	cr_assert_eq(imap_seqset(&c, &s), 0);
	cr_assert_eq(s.n, IMAP_SEQSET_MAX);
	free(in);
}

/* ---- flags ---- */

Test(imap_flags, list)
{
	struct imap_cur c;
	unsigned mask;
	static struct imap_kwlist kw;
	CUR(&c, "(\\Seen \\answered \\FLAGGED \\Deleted \\Draft $Junk foo "
		"$junk)");
	cr_assert_eq(imap_flag_list(&c, false, &mask, &kw), 0);
	cr_assert_eq(mask, IMAP_F_SEEN | IMAP_F_ANSWERED | IMAP_F_FLAGGED |
			       IMAP_F_DELETED | IMAP_F_DRAFT);
	cr_assert_eq(kw.n, 2); /* $junk is $Junk */
	cr_assert_str_eq(kw.name[0], "$Junk");
	cr_assert_str_eq(kw.name[1], "foo");
	cr_assert(imap_at_end(&c));
	CUR(&c, "()");
	cr_assert_eq(imap_flag_list(&c, false, &mask, &kw), 0);
	cr_assert_eq(mask, 0);
	cr_assert_eq(kw.n, 0);
	CUR(&c, "\\Seen \\Deleted");
	cr_assert_eq(imap_flag_list(&c, false, &mask, &kw), -1);
	CUR(&c, "\\Seen \\Deleted");
	cr_assert_eq(imap_flag_list(&c, true, &mask, &kw), 0);
	cr_assert_eq(mask, IMAP_F_SEEN | IMAP_F_DELETED);
	cr_assert(imap_at_end(&c));
	CUR(&c, "(\\Seen)");
	cr_assert_eq(imap_flag_list(&c, true, &mask, &kw), 0);
	cr_assert_eq(mask, IMAP_F_SEEN);
	/* more keywords than a list holds; one longer than a store keeps */
	char many[IMAP_KEYWORD_LIST_MAX * 8 + 8] = "(", *p = many + 1;
	for (int i = 0; i <= IMAP_KEYWORD_LIST_MAX; i++)
		p += sprintf(p, "%sk%d", i ? " " : "", i);
	strcpy(p, ")");
	CUR(&c, many);
	cr_assert_eq(imap_flag_list(&c, false, &mask, &kw), -1);
	char longkw[IMAP_KEYWORD_MAX + 4] = "(";
	memset(longkw + 1, 'x', IMAP_KEYWORD_MAX + 1);
	strcpy(longkw + IMAP_KEYWORD_MAX + 2, ")");
	CUR(&c, longkw);
	cr_assert_eq(imap_flag_list(&c, false, &mask, &kw), -1);
	const char *bad[] = {"(\\Recent)",	  "(\\Bogus)", "(\\Seen",
			     "(\\Seen  \\Draft)", "( )",       "(\\)",
			     "(\\Seen\")",	  "((a))"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		CUR(&c, bad[i]);
		cr_assert_eq(imap_flag_list(&c, false, &mask, &kw), -1, "%s",
			     bad[i]);
		cr_assert_str_neq(c.err, "");
	}
}

Test(imap_flags, format_and_maildir)
{
	struct strbuf sb;
	strbuf_init(&sb, 256);
	cr_assert_eq(imap_flags_format(0, &sb), 0);
	cr_assert_str_eq(strbuf_str(&sb), "");
	cr_assert_eq(imap_flags_format(IMAP_F_SEEN | IMAP_F_FLAGGED, &sb), 0);
	cr_assert_str_eq(strbuf_str(&sb), "\\Seen \\Flagged");
	strbuf_reset(&sb);
	cr_assert_eq(imap_flags_format(0x3f, &sb), 0);
	cr_assert_str_eq(strbuf_str(&sb), "\\Seen \\Answered \\Flagged "
					  "\\Deleted \\Draft \\Recent");
	strbuf_free(&sb);
	strbuf_init(&sb, 4);
	cr_assert_eq(imap_flags_format(IMAP_F_SEEN, &sb), -1);
	strbuf_free(&sb);

	cr_assert_eq(imap_flags_from_maildir("STRFDP?"),
		     IMAP_F_SEEN | IMAP_F_DELETED | IMAP_F_ANSWERED |
			 IMAP_F_FLAGGED | IMAP_F_DRAFT);
	cr_assert_eq(imap_flags_from_maildir(""), 0);
	char out[IMAP_FLAG_LETTERS];
	imap_flags_to_maildir(0x3f, out);
	cr_assert_str_eq(out, "DFRST");
	imap_flags_to_maildir(IMAP_F_SEEN | IMAP_F_ANSWERED, out);
	cr_assert_str_eq(out, "RS");
	imap_flags_to_maildir(IMAP_F_RECENT, out);
	cr_assert_str_eq(out, "");
	for (unsigned m = 0; m < 32; m++) {
		imap_flags_to_maildir(m, out);
		cr_assert_eq(imap_flags_from_maildir(out), m);
	}
	/* keywords: letters a-z after the system flags, as Dovecot names */
	cr_assert_eq(imap_flags_from_maildir("RSaz"),
		     IMAP_F_SEEN | IMAP_F_ANSWERED | IMAP_F_KW(0) |
			 IMAP_F_KW(25));
	imap_flags_to_maildir(~0u, out);
	cr_assert_str_eq(out, "DFRSTabcdefghijklmnopqrstuvwxyz");
	imap_flags_to_maildir(IMAP_F_SEEN | IMAP_F_KW(2), out);
	cr_assert_str_eq(out, "Sc");
}

/* ---- dates ---- */

Test(imap_date, forms)
{
	struct imap_cur c;
	time_t t;
	CUR(&c, "1-Feb-1994");
	cr_assert_eq(imap_date(&c, &t), 0);
	cr_assert_eq(t, 760060800);
	CUR(&c, "\"01-feb-1994\" x");
	cr_assert_eq(imap_date(&c, &t), 0);
	cr_assert_eq(t, 760060800);
	cr_assert_eq(*c.p, ' ');
	CUR(&c, "29-Feb-2000");
	cr_assert_eq(imap_date(&c, &t), 0);
	cr_assert_eq(t, 951782400);
	CUR(&c, "1-Jan-1970");
	cr_assert_eq(imap_date(&c, &t), 0);
	cr_assert_eq(t, 0);
	CUR(&c, "31-Dec-1969");
	cr_assert_eq(imap_date(&c, &t), 0);
	cr_assert_eq(t, -86400);
	const char *bad[] = {"",
			     "0-Feb-1994",
			     "32-Jan-1994",
			     "29-Feb-1900",
			     "30-Feb-2000",
			     "1-Foo-1994",
			     "1-Feb-94",
			     "1 Feb 1994",
			     "\"1-Feb-1994",
			     "123-Feb-1994",
			     "1-Feb-",
			     "31-Apr-2020",
			     "1-Fe"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		CUR(&c, bad[i]);
		cr_assert_eq(imap_date(&c, &t), -1, "%s", bad[i]);
	}
}

Test(imap_date, date_time)
{
	struct imap_cur c;
	time_t t;
	CUR(&c, "\"17-Jul-1996 02:44:25 -0700\"");
	cr_assert_eq(imap_date_time(&c, &t), 0);
	cr_assert_eq(t, 837596665);
	CUR(&c, "\" 7-Jul-1996 09:44:25 +0000\"");
	cr_assert_eq(imap_date_time(&c, &t), 0);
	cr_assert_eq(t, 836732665);
	CUR(&c, "\"07-Jul-1996 11:14:25 +0130\"");
	cr_assert_eq(imap_date_time(&c, &t), 0);
	cr_assert_eq(t, 836732665);
	const char *bad[] = {"17-Jul-1996 02:44:25 -0700",
			     "\"17-Jul-1996 02:44:25\"",
			     "\"17-Jul-1996 24:00:00 +0000\"",
			     "\"17-Jul-1996 02:60:00 +0000\"",
			     "\"17-Jul-1996 02:44:25 0700\"",
			     "\"17-Jul-1996 02:44:25 +07\"",
			     "\"17-Jul-1996 2:44:25 +0000\"",
			     "\"31-Jun-1996 02:44:25 +0000\"",
			     "\"17-Jul-1996 02:44:25 +0760\"",
			     "\"17-Jul-1996 02:44:25 +0000",
			     "\"\"",
			     ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		CUR(&c, bad[i]);
		cr_assert_eq(imap_date_time(&c, &t), -1, "%s", bad[i]);
	}
}

Test(imap_date, format_round_trip)
{
	struct strbuf sb;
	strbuf_init(&sb, 256);
	cr_assert_eq(imap_date_time_format(837596665, &sb), 0);
	cr_assert_str_eq(strbuf_str(&sb), "\"17-Jul-1996 09:44:25 +0000\"");
	strbuf_reset(&sb);
	cr_assert_eq(imap_date_time_format(836732665, &sb), 0);
	cr_assert_str_eq(strbuf_str(&sb), "\"07-Jul-1996 09:44:25 +0000\"");
	for (time_t t = 0; t < 4000000000; t += 123456789) {
		strbuf_reset(&sb);
		cr_assert_eq(imap_date_time_format(t, &sb), 0);
		struct imap_cur c;
		time_t back;
		imap_cur_init(&c, strbuf_str(&sb), sb.len);
		cr_assert_eq(imap_date_time(&c, &back), 0);
		cr_assert_eq(back, t);
	}
	strbuf_free(&sb);
}

/* ---- FETCH ---- */

static int
fetch(const char *in, struct imap_fetch *f)
{
	struct imap_cur c;
	CUR(&c, in);
	int r = imap_fetch_parse(&c, f);
	if (r == 0 && imap_end(&c) < 0)
		r = -1;
	return r;
}

/* The name of every item, space-separated. */
static char *
names(const struct imap_fetch *f)
{
	static char out[4096];
	struct strbuf sb;
	strbuf_init(&sb, sizeof(out) - 1);
	for (size_t i = 0; i < f->n; i++) {
		if (i)
			strbuf_appends(&sb, " ");
		cr_assert_eq(imap_fetch_item_name(&f->item[i], &sb), 0);
	}
	snprintf(out, sizeof(out), "%s", strbuf_str(&sb));
	strbuf_free(&sb);
	return out;
}

Test(imap_fetch, simple_items)
{
	struct {
		const char *in;
		enum imap_fetch_kind kind;
		const char *name;
		bool seen, text;
	} t[] = {
	    {"FLAGS", IMAP_FETCH_FLAGS, "FLAGS", false, false},
	    {"internaldate", IMAP_FETCH_INTERNALDATE, "INTERNALDATE", false,
	     false},
	    {"RFC822.SIZE", IMAP_FETCH_RFC822_SIZE, "RFC822.SIZE", false,
	     false},
	    {"UID", IMAP_FETCH_UID, "UID", false, false},
	    {"ENVELOPE", IMAP_FETCH_ENVELOPE, "ENVELOPE", false, true},
	    {"BODY", IMAP_FETCH_BODY, "BODY", false, true},
	    {"BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE, "BODYSTRUCTURE", false,
	     true},
	    {"RFC822", IMAP_FETCH_RFC822, "RFC822", true, true},
	    {"RFC822.HEADER", IMAP_FETCH_RFC822_HEADER, "RFC822.HEADER", false,
	     true},
	    {"rfc822.text", IMAP_FETCH_RFC822_TEXT, "RFC822.TEXT", true, true},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		struct imap_fetch f;
		cr_assert_eq(fetch(t[i].in, &f), 0, "%s", t[i].in);
		cr_assert_eq(f.n, 1);
		cr_assert_eq(f.item[0].kind, t[i].kind, "%s", t[i].in);
		cr_assert_str_eq(names(&f), t[i].name);
		cr_assert_eq(f.sets_seen, t[i].seen, "%s", t[i].in);
		cr_assert_eq(f.needs_text, t[i].text, "%s", t[i].in);
		imap_fetch_free(&f);
	}
}

/* BINARY (RFC 3516): part numbers alone, partial but for .SIZE. */
Test(imap_fetch, binary)
{
	struct imap_fetch f;
	cr_assert_eq(
	    fetch("(BINARY[] binary.peek[1.2]<5.10> BINARY.SIZE[3])", &f), 0);
	cr_assert_eq(f.n, 3);
	cr_assert_eq(f.item[0].kind, IMAP_FETCH_BINARY);
	cr_assert_not(f.item[0].peek);
	cr_assert(f.item[1].peek);
	cr_assert_eq(f.item[1].nparts, 2);
	cr_assert_eq(f.item[1].offset, 5);
	cr_assert_eq(f.item[2].kind, IMAP_FETCH_BINARY_SIZE);
	cr_assert(f.sets_seen);
	cr_assert(f.needs_text);
	cr_assert_str_eq(names(&f), "BINARY[] BINARY[1.2]<5> BINARY.SIZE[3]");
	imap_fetch_free(&f);
	cr_assert_eq(fetch("BINARY.PEEK[1]", &f), 0);
	cr_assert_not(f.sets_seen);
	imap_fetch_free(&f);
	const char *bad[] = {
	    "BINARY",	"BINARY[TEXT]", "BINARY[1.]",	      "BINARY[0]",
	    "BINARY[1", "BINARY[.1]",	"BINARY.SIZE[1]<0.1>"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cr_assert_eq(fetch(bad[i], &f), -1, "%s", bad[i]);
		imap_fetch_free(&f);
	}
}

Test(imap_fetch, macros)
{
	struct imap_fetch f;
	cr_assert_eq(fetch("FAST", &f), 0);
	cr_assert_str_eq(names(&f), "FLAGS INTERNALDATE RFC822.SIZE");
	cr_assert_not(f.needs_text);
	imap_fetch_free(&f);
	cr_assert_eq(fetch("all", &f), 0);
	cr_assert_str_eq(names(&f), "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE");
	cr_assert(f.needs_text);
	cr_assert_not(f.sets_seen);
	imap_fetch_free(&f);
	cr_assert_eq(fetch("FULL", &f), 0);
	cr_assert_str_eq(names(&f),
			 "FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY");
	imap_fetch_free(&f);
	/* Macros stand alone, never inside a list. */
	cr_assert_eq(fetch("(ALL)", &f), -1);
	imap_fetch_free(&f);
	cr_assert_eq(fetch("(FLAGS FAST)", &f), -1);
	imap_fetch_free(&f);
	cr_assert_eq(fetch("ALL[]", &f), -1);
	imap_fetch_free(&f);
}

Test(imap_fetch, list)
{
	struct imap_fetch f;
	cr_assert_eq(fetch("(UID FLAGS BODY.PEEK[HEADER] RFC822.SIZE)", &f), 0);
	cr_assert_eq(f.n, 4);
	cr_assert_str_eq(names(&f), "UID FLAGS BODY[HEADER] RFC822.SIZE");
	cr_assert(f.item[2].peek);
	cr_assert_not(f.sets_seen);
	cr_assert(f.needs_text);
	imap_fetch_free(&f);
	const char *bad[] = {"()",
			     "(FLAGS",
			     "(FLAGS  UID)",
			     "FLAGS UID",
			     "(FLAGS)x",
			     "BOGUS",
			     "",
			     "(FLAGS) ",
			     "BODY.PEEK",
			     "BODY[",
			     "BODY[]<",
			     "((FLAGS))",
			     "RFC822.SIZEX",
			     "BODY.PEEK[]]",
			     "(UID,FLAGS)"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cr_assert_eq(fetch(bad[i], &f), -1, "%s", bad[i]);
		imap_fetch_free(&f);
	}
}

Test(imap_fetch, sections)
{
	struct {
		const char *in, *name;
		enum imap_section_spec spec;
		size_t nparts;
	} t[] = {
	    {"BODY[]", "BODY[]", IMAP_SECT_ALL, 0},
	    {"BODY[HEADER]", "BODY[HEADER]", IMAP_SECT_HEADER, 0},
	    {"body[text]", "BODY[TEXT]", IMAP_SECT_TEXT, 0},
	    {"BODY[1]", "BODY[1]", IMAP_SECT_ALL, 1},
	    {"BODY[1.2.3]", "BODY[1.2.3]", IMAP_SECT_ALL, 3},
	    {"BODY[1.HEADER]", "BODY[1.HEADER]", IMAP_SECT_HEADER, 1},
	    {"BODY[2.1.TEXT]", "BODY[2.1.TEXT]", IMAP_SECT_TEXT, 2},
	    {"BODY[1.MIME]", "BODY[1.MIME]", IMAP_SECT_MIME, 1},
	    {"BODY[HEADER.FIELDS (From To)]", "BODY[HEADER.FIELDS (From To)]",
	     IMAP_SECT_HEADER_FIELDS, 0},
	    {"BODY.PEEK[HEADER.FIELDS.NOT (\"X-A\" {3}\r\nX-B)]",
	     "BODY[HEADER.FIELDS.NOT (X-A X-B)]", IMAP_SECT_HEADER_FIELDS_NOT,
	     0},
	    {"BODY[3.HEADER.FIELDS (SUBJECT)]",
	     "BODY[3.HEADER.FIELDS (SUBJECT)]", IMAP_SECT_HEADER_FIELDS, 1},
	    {"BODY[HEADER.FIELDS (\"a(b\")]", "BODY[HEADER.FIELDS (\"a(b\")]",
	     IMAP_SECT_HEADER_FIELDS, 0},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		struct imap_fetch f;
		cr_assert_eq(fetch(t[i].in, &f), 0, "%s", t[i].in);
		cr_assert_eq(f.n, 1);
		cr_assert_eq(f.item[0].kind, IMAP_FETCH_SECTION);
		cr_assert_eq(f.item[0].spec, t[i].spec, "%s", t[i].in);
		cr_assert_eq(f.item[0].nparts, t[i].nparts, "%s", t[i].in);
		cr_assert_str_eq(names(&f), t[i].name);
		cr_assert_eq(f.sets_seen, !f.item[0].peek, "%s", t[i].in);
		cr_assert(f.needs_text);
		imap_fetch_free(&f);
	}
}

Test(imap_fetch, section_fields_and_parts)
{
	struct imap_fetch f;
	cr_assert_eq(fetch("BODY[4.2.HEADER.FIELDS (DATE FROM)]", &f), 0);
	cr_assert_eq(f.item[0].part[0], 4);
	cr_assert_eq(f.item[0].part[1], 2);
	cr_assert_eq(f.item[0].nfields, 2);
	cr_assert_str_eq(f.item[0].fields[0], "DATE");
	cr_assert_str_eq(f.item[0].fields[1], "FROM");
	imap_fetch_free(&f);
}

Test(imap_fetch, bad_sections)
{
	const char *bad[] = {
	    "BODY[MIME]",
	    "BODY[0]",
	    "BODY[1.0]",
	    "BODY[1.]",
	    "BODY[.1]",
	    "BODY[HEADER.FIELDS]",
	    "BODY[HEADER.FIELDS ()]",
	    "BODY[HEADER.FIELDS (A]",
	    "BODY[HEADER.FIELDS (A B:C)]",
	    "BODY[HEADER.FIELDS (\"\")]",
	    "BODY[HEADER.FIELDS (\"a b\")]",
	    "BODY[HEADER.FIELDS.NOT]",
	    "BODY[TEXT.MIME]",
	    "BODY[1.HEADER.2]",
	    "BODY[1.TEXT5]",
	    "BODY[HEADER]x",
	    "BODY[BOGUS]",
	    "BODY[1.HEADER.FIELDS (A)2]",
	    "BODY[4294967296]",
	    "BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct imap_fetch f;
		cr_assert_eq(fetch(bad[i], &f), -1, "%s", bad[i]);
		imap_fetch_free(&f);
	}
	struct imap_fetch f;
	cr_assert_eq(fetch("BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16]", &f),
		     0);
	cr_assert_eq(f.item[0].nparts, 16);
	imap_fetch_free(&f);
}

Test(imap_fetch, partials)
{
	struct imap_fetch f;
	cr_assert_eq(fetch("BODY[]<0.2048>", &f), 0);
	cr_assert(f.item[0].partial);
	cr_assert_eq(f.item[0].offset, 0);
	cr_assert_eq(f.item[0].count, 2048);
	cr_assert_str_eq(names(&f), "BODY[]<0>");
	imap_fetch_free(&f);
	cr_assert_eq(fetch("BODY.PEEK[1.TEXT]<100.4294967295>", &f), 0);
	cr_assert_str_eq(names(&f), "BODY[1.TEXT]<100>");
	cr_assert_eq(f.item[0].count, 4294967295u);
	imap_fetch_free(&f);
	const char *bad[] = {
	    "BODY[]<0>",   "BODY[]<0.0>",  "BODY[]<.5>",	   "BODY[]<1.5",
	    "BODY[]<a.b>", "BODY[]<-1.5>", "BODY[]<4294967296.1>", "BODY<0.1>"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cr_assert_eq(fetch(bad[i], &f), -1, "%s", bad[i]);
		imap_fetch_free(&f);
	}
}

Test(imap_fetch, too_many_items)
{
	struct imap_fetch f;
	char in[64 * 5 + 8] = "(";
	for (int i = 0; i < 64; i++)
		strcat(in, i ? " UID" : "UID");
	strcat(in, ")");
	cr_assert_eq(fetch(in, &f), 0);
	cr_assert_eq(f.n, 64);
	imap_fetch_free(&f);
	in[strlen(in) - 1] = '\0';
	strcat(in, " UID)");
	cr_assert_eq(fetch(in, &f), -1);
	imap_fetch_free(&f);
	char many[2200] = "BODY[HEADER.FIELDS (";
	for (int i = 0; i < 33; i++)
		strcat(many, i ? " X" : "X");
	strcat(many, ")]");
	cr_assert_eq(fetch(many, &f), -1);
	imap_fetch_free(&f);
	char longname[200] = "BODY[HEADER.FIELDS (";
	memset(longname + strlen(longname), 'A', 64);
	strcat(longname, ")]");
	cr_assert_eq(fetch(longname, &f), -1);
	imap_fetch_free(&f);
}

Test(imap_fetch, free_is_idempotent)
{
	struct imap_fetch f;
	cr_assert_eq(fetch("BOGUS", &f), -1);
	imap_fetch_free(&f);
	imap_fetch_free(&f);
	cr_assert_null(f.item);
}

Test(imap_fetch, name_overflow)
{
	struct imap_fetch f;
	struct strbuf sb;
	strbuf_init(&sb, 8);
	cr_assert_eq(fetch("BODY[HEADER.FIELDS (SUBJECT)]", &f), 0);
	cr_assert_eq(imap_fetch_item_name(&f.item[0], &sb), -1);
	imap_fetch_free(&f);
	strbuf_free(&sb);
}
