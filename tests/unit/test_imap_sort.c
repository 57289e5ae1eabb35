/* node/imap/imap_sort.c and imap_thread.c: RFC 5256's base subject, the
 * first address's mailbox, SORT's ordering and both THREAD algorithms. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/strbuf.h"
#include "../../node/imap/imap_sort.h"

static void
base_is(const char *subject, const char *want, bool want_refwd)
{
	char out[256];
	bool refwd = !want_refwd;
	imap_base_subject(subject, out, sizeof(out), &refwd);
	cr_assert_str_eq(out, want, "base of \"%s\"", subject);
	cr_assert_eq(refwd, want_refwd, "refwd of \"%s\"", subject);
}

Test(imap_sort, base_subject)
{
	base_is("Hello", "Hello", false);
	base_is("Re: Hello", "Hello", true);
	base_is("RE: re:  Fwd:Hello", "Hello", true);
	base_is("Re[2]: Hello", "Hello", true);
	base_is("Re [2]: Hello", "Hello", true);
	base_is("[list] Re: Hello", "Hello", true);
	base_is("[list] Hello", "Hello", false);
	base_is("[list]", "[list]", false); /* the blob alone stays */
	base_is("Hello (fwd)", "Hello", true);
	base_is("Hello (FWD) (fwd)  ", "Hello", true);
	base_is("[Fwd: Re: Hello]", "Hello", true);
	base_is("Fw:  [Fwd: [list] Hello (fwd)]", "Hello", true);
	base_is("  Hello \t  world  ", "Hello world", false);
	base_is("", "", false);
	base_is("Re:", "", true);
}

static void
mailbox_is(const char *value, const char *want)
{
	char out[128];
	imap_first_mailbox(value, out, sizeof(out));
	cr_assert_str_eq(out, want, "first mailbox of \"%s\"", value);
}

Test(imap_sort, first_mailbox)
{
	mailbox_is("alice@example.test", "alice");
	mailbox_is("Alice <alice@example.test>, bob@x", "alice");
	mailbox_is("\"Smith, Bob\" <bob@x>", "bob");
	mailbox_is("carol@x (Carol, C.)", "carol");
	mailbox_is("team: dave@x, erin@x;", "dave");
	mailbox_is("undisclosed-recipients:;", "");
	mailbox_is("", "");
}

static struct imap_sort_msg *
msgs_new(size_t n)
{
	struct imap_sort_msg *m = calloc(n, sizeof(*m));
	for (size_t i = 0; i < n; i++) {
		m[i].seq = (uint32_t)(i + 1);
		m[i].uid = (uint32_t)(i + 11);
	}
	return m;
}

static void
subject(struct imap_sort_msg *m, const char *s)
{
	char base[256];
	imap_base_subject(s, base, sizeof(base), &m->refwd);
	m->subject = strdup(base);
}

Test(imap_sort, sort_by_keys_reverse_and_ties)
{
	struct imap_sort_msg *m = msgs_new(4);
	struct imap_sort_prog p;
	struct imap_cur c;
	const char *arg = "(SUBJECT REVERSE SIZE) UTF-8 ALL";
	subject(&m[0], "b");
	subject(&m[1], "Re: a");
	subject(&m[2], "a");
	subject(&m[3], "B");
	m[0].size = 5, m[1].size = 1, m[2].size = 9, m[3].size = 5;
	imap_cur_init(&c, arg, strlen(arg));
	cr_assert_eq(imap_sort_parse(&c, &p), 0, "%s", c.err);
	cr_assert_str_eq(c.p, "ALL");
	imap_sort_msgs(m, 4, &p);
	uint32_t want[] = {3, 2, 1, 4}; /* a(9) a(1) b(5) B(5): ties by seq */
	for (size_t i = 0; i < 4; i++)
		cr_assert_eq(m[i].seq, want[i], "position %zu", i);
	imap_sort_msgs_free(m, 4);

	const char *bad = "(SUBJECT) KOI8-R ALL";
	imap_cur_init(&c, bad, strlen(bad));
	cr_assert_eq(imap_sort_parse(&c, &p), -1);
	cr_assert(strncmp(c.err, "[BADCHARSET", 11) == 0);
	const char *rev = "(REVERSE) UTF-8 ALL";
	imap_cur_init(&c, rev, strlen(rev));
	cr_assert_eq(imap_sort_parse(&c, &p), -1);
}

static char *
thread_of(struct imap_sort_msg *m, size_t n, enum imap_thread_algo a)
{
	struct strbuf sb;
	strbuf_init(&sb, 65536);
	cr_assert_eq(imap_thread(m, n, a, false, &sb), 0);
	char *out = strdup(strbuf_str(&sb));
	strbuf_free(&sb);
	return out;
}

Test(imap_sort, thread_orderedsubject)
{
	struct imap_sort_msg *m = msgs_new(5);
	const char *subj[] = {"x", "Re: y", "y", "Re: x", "x"};
	time_t date[] = {100, 50, 60, 200, 300};
	for (size_t i = 0; i < 5; i++) {
		subject(&m[i], subj[i]);
		m[i].date = date[i];
	}
	char *t = thread_of(m, 5, IMAP_THREAD_ORDEREDSUBJECT);
	/* y's thread starts first (50): 2 then 3; x's: 1, then 4 and 5 */
	cr_assert_str_eq(t, "(2 3)(1 (4)(5))");
	free(t);
	imap_sort_msgs_free(m, 5);
}

Test(imap_sort, thread_references)
{
	/* 1 <a>; 2 replies to 1; 3 replies to 2; 4 replies to 1; 5 refers
	 * to a missing <z> only; 6 and 7 refer to the missing <m> (a dummy
	 * with two children at the top); 8 has 1's subject without refs */
	struct imap_sort_msg *m = msgs_new(8);
	const char *id[] = {"<a>", "<b>", "<c>", "<d>",
			    "<e>", "<f>", "<g>", "<h>"};
	const char *refs[] = {NULL,  "<a>", "<a> <b>", "<a>",
			      "<z>", "<m>", "<m>",     NULL};
	const char *subj[] = {"one",  "Re: one", "Re: one", "Re: one",
			      "five", "six",	 "Re: six", "Re: one"};
	for (size_t i = 0; i < 8; i++) {
		m[i].msgid = strdup(id[i]);
		m[i].refs = refs[i] ? strdup(refs[i]) : NULL;
		subject(&m[i], subj[i]);
		m[i].date = (time_t)(100 + i);
	}
	char *t = thread_of(m, 8, IMAP_THREAD_REFERENCES);
	cr_assert_str_eq(t, "(1 (2 3)(4)(8))(5)((6)(7))");
	free(t);
	imap_sort_msgs_free(m, 8);
}

Test(imap_sort, thread_references_no_loops_and_duplicates)
{
	/* 1 says it follows 2, 2 says it follows 1: no loop; 3 repeats 1's
	 * Message-ID: its own thread */
	struct imap_sort_msg *m = msgs_new(3);
	const char *id[] = {"<p>", "<q>", "<p>"};
	const char *refs[] = {"<q>", "<p>", NULL};
	for (size_t i = 0; i < 3; i++) {
		m[i].msgid = strdup(id[i]);
		m[i].refs = refs[i] ? strdup(refs[i]) : NULL;
		m[i].date = (time_t)(100 + i);
	}
	char *t = thread_of(m, 3, IMAP_THREAD_REFERENCES);
	cr_assert_str_eq(t, "(2 1)(3)");
	free(t);
	imap_sort_msgs_free(m, 3);
}

Test(imap_sort, thread_references_deep_chain)
{
	/* each message replies to the one before: one thread, 20,000 deep */
	size_t n = 20000;
	struct imap_sort_msg *m = msgs_new(n);
	for (size_t i = 0; i < n; i++) {
		char id[32], ref[32];
		snprintf(id, sizeof(id), "<%zu@x>", i);
		snprintf(ref, sizeof(ref), "<%zu@x>", i - 1);
		m[i].msgid = strdup(id);
		m[i].refs = i ? strdup(ref) : NULL;
		m[i].date = (time_t)i;
	}
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	cr_assert_eq(imap_thread(m, n, IMAP_THREAD_REFERENCES, false, &sb), 0);
	cr_assert_eq(strncmp(strbuf_str(&sb), "(1 2 3 ", 7), 0);
	cr_assert_eq(strbuf_str(&sb)[sb.len - 1], ')');
	strbuf_free(&sb);
	imap_sort_msgs_free(m, n);
}
