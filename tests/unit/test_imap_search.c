/* node/imap_search.c: every search key, their combinations, and the
 * callbacks asked only when needed. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../node/imap/imap_search.h"

#define DAY 86400
#define D_1FEB1994 760060800 /* 00:00 UTC */

/* A fake message: headers as "Field: value" lines, a body, counters of
 * the callbacks' calls. */
struct fake {
	const char *headers[8];
	const char *body;
	bool has_date;
	time_t date;
	int calls;
};

static bool
contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = hay; *p; p++)
		if (strncasecmp(p, needle, n) == 0)
			return true;
	return n == 0;
}

static bool
f_header_has(void *arg, const char *field, const char *needle)
{
	struct fake *f = arg;
	size_t fl = strlen(field);
	f->calls++;
	for (int i = 0; i < 8 && f->headers[i]; i++)
		if (strncasecmp(f->headers[i], field, fl) == 0 &&
		    f->headers[i][fl] == ':' &&
		    contains_ci(f->headers[i] + fl + 1, needle))
			return true;
	return false;
}

static bool
f_body_has(void *arg, const char *needle)
{
	struct fake *f = arg;
	f->calls++;
	return contains_ci(f->body ? f->body : "", needle);
}

static bool
f_text_has(void *arg, const char *needle)
{
	struct fake *f = arg;
	f->calls++;
	for (int i = 0; i < 8 && f->headers[i]; i++)
		if (contains_ci(f->headers[i], needle))
			return true;
	return contains_ci(f->body ? f->body : "", needle);
}

static bool
f_sent_date(void *arg, time_t *t)
{
	struct fake *f = arg;
	f->calls++;
	*t = f->date;
	return f->has_date;
}

static struct fake fk;
static struct imap_search_msg msg;

static void
setup(void)
{
	memset(&fk, 0, sizeof(fk));
	fk.headers[0] = "From: Alice <alice@example.org>";
	fk.headers[1] = "To: bob@example.org";
	fk.headers[2] = "Cc: carol@example.org";
	fk.headers[3] = "Subject: Quarterly report";
	fk.headers[4] = "X-Mailer: mutt";
	fk.body = "Numbers are up.\r\n";
	fk.has_date = true;
	fk.date = D_1FEB1994 + 23 * 3600; /* 23:00 UTC */
	memset(&msg, 0, sizeof(msg));
	msg.seq = 3;
	msg.uid = 30;
	msg.flags = IMAP_F_SEEN | IMAP_F_FLAGGED;
	msg.size = 1000;
	msg.internaldate = D_1FEB1994 + 12 * 3600;
	msg.arg = &fk;
	msg.header_has = f_header_has;
	msg.body_has = f_body_has;
	msg.text_has = f_text_has;
	msg.sent_date = f_sent_date;
}

TestSuite(imap_search, .init = setup);

static struct imap_search *
parse(const char *in)
{
	struct imap_cur c;
	struct imap_search *s = (void *)1;
	imap_cur_init(&c, in, strlen(in));
	int r = imap_search_parse(&c, &s);
	cr_assert_eq(r, 0, "%s: %s", in, c.err);
	cr_assert_not_null(s);
	return s;
}

/* Parses in and matches msg against it (max seq 10, max uid 100). */
static bool
match(const char *in)
{
	struct imap_search *s = parse(in);
	bool m = imap_search_match(s, &msg, 10, 100);
	imap_search_free(s);
	return m;
}

static void
refused(const char *in, const char *err_prefix)
{
	struct imap_cur c;
	struct imap_search *s = (void *)1;
	imap_cur_init(&c, in, strlen(in));
	cr_assert_eq(imap_search_parse(&c, &s), -1, "%s", in);
	cr_assert_null(s, "%s", in);
	cr_assert_str_neq(c.err, "", "%s", in);
	if (err_prefix)
		cr_assert_eq(strncmp(c.err, err_prefix, strlen(err_prefix)), 0,
			     "%s: %s", in, c.err);
}

Test(imap_search, flag_keys)
{
	cr_assert(match("ALL"));
	cr_assert(match("SEEN"));
	cr_assert(match("seen"));
	cr_assert_not(match("UNSEEN"));
	cr_assert(match("FLAGGED"));
	cr_assert_not(match("UNFLAGGED"));
	cr_assert_not(match("ANSWERED"));
	cr_assert(match("UNANSWERED"));
	cr_assert_not(match("DELETED"));
	cr_assert(match("UNDELETED"));
	cr_assert_not(match("DRAFT"));
	cr_assert(match("UNDRAFT"));
	cr_assert_not(match("RECENT"));
	cr_assert(match("OLD"));
	cr_assert_not(match("NEW"));
	msg.flags =
	    IMAP_F_ANSWERED | IMAP_F_DELETED | IMAP_F_DRAFT | IMAP_F_RECENT;
	cr_assert(match("ANSWERED DELETED DRAFT RECENT UNSEEN UNFLAGGED"));
	cr_assert(match("NEW"));
	cr_assert_not(match("OLD"));
	msg.flags = IMAP_F_RECENT | IMAP_F_SEEN;
	cr_assert_not(match("NEW"));
	cr_assert_eq(fk.calls, 0);
}

/* The mailbox of the keyword tests: $Junk is letter c, $Other d. */
static unsigned
kw_lookup(void *arg, const char *name)
{
	(void)arg;
	return strcasecmp(name, "$Junk") == 0	 ? IMAP_F_KW(2)
	       : strcasecmp(name, "$Other") == 0 ? IMAP_F_KW(3)
						 : 0;
}

Test(imap_search, keywords)
{
	cr_assert_not(match("KEYWORD $Junk"));
	cr_assert(match("UNKEYWORD $Junk"));
	cr_assert(match("NOT KEYWORD foo"));
	refused("KEYWORD", NULL);
	refused("KEYWORD (x)", NULL);
	struct imap_search *s = parse("KEYWORD x");
	cr_assert_not(imap_search_needs_text(s));
	imap_search_free(s);
	/* bound to the mailbox's letters: $Junk is keyword 2, set */
	msg.flags |= IMAP_F_KW(2);
	const char *t[] = {
	    "KEYWORD $junk", "NOT UNKEYWORD $Junk", "UNKEYWORD nothere",
	    "OR KEYWORD nothere KEYWORD $Junk", "(KEYWORD $Junk SEEN)"};
	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		s = parse(t[i]);
		imap_search_keywords(s, kw_lookup, NULL);
		cr_assert(imap_search_match(s, &msg, 10, 100), "%s", t[i]);
		imap_search_free(s);
	}
	const char *f[] = {"UNKEYWORD $Junk", "KEYWORD nothere",
			   "KEYWORD $Other"};
	for (size_t i = 0; i < sizeof(f) / sizeof(*f); i++) {
		s = parse(f[i]);
		imap_search_keywords(s, kw_lookup, NULL);
		cr_assert_not(imap_search_match(s, &msg, 10, 100), "%s", f[i]);
		imap_search_free(s);
	}
}

Test(imap_search, sizes)
{
	cr_assert(match("LARGER 999"));
	cr_assert_not(match("LARGER 1000"));
	cr_assert(match("SMALLER 1001"));
	cr_assert_not(match("SMALLER 1000"));
	cr_assert(match("LARGER 0"));
	cr_assert_not(match("SMALLER 0"));
	msg.size = 5000000000ull;
	cr_assert(match("LARGER 4294967295"));
	refused("LARGER", NULL);
	refused("LARGER x", NULL);
	refused("LARGER 4294967296", NULL);
	refused("SMALLER -1", NULL);
}

Test(imap_search, internal_dates_by_day)
{
	/* internaldate is 1-Feb-1994 12:00 UTC. */
	cr_assert(match("ON 1-Feb-1994"));
	cr_assert(match("ON \"01-FEB-1994\""));
	cr_assert_not(match("ON 2-Feb-1994"));
	cr_assert(match("SINCE 1-Feb-1994"));
	cr_assert(match("SINCE 31-Jan-1994"));
	cr_assert_not(match("SINCE 2-Feb-1994"));
	cr_assert(match("BEFORE 2-Feb-1994"));
	cr_assert_not(match("BEFORE 1-Feb-1994"));
	msg.internaldate = D_1FEB1994; /* the first second of the day */
	cr_assert(match("ON 1-Feb-1994"));
	cr_assert_not(match("BEFORE 1-Feb-1994"));
	msg.internaldate = D_1FEB1994 + DAY - 1; /* the last */
	cr_assert(match("ON 1-Feb-1994"));
	cr_assert(match("BEFORE 2-Feb-1994"));
	msg.internaldate = -1; /* 31-Dec-1969 23:59:59 */
	cr_assert(match("ON 31-Dec-1969"));
	cr_assert(match("BEFORE 1-Jan-1970"));
	cr_assert_eq(fk.calls, 0);
	refused("ON", NULL);
	refused("ON 30-Feb-1994", NULL);
	refused("SINCE yesterday", NULL);
	refused("BEFORE 1-Feb-94", NULL);
}

Test(imap_search, sent_dates)
{
	/* Date: is 1-Feb-1994 23:00 UTC. */
	cr_assert(match("SENTON 1-Feb-1994"));
	cr_assert_not(match("SENTON 2-Feb-1994"));
	cr_assert(match("SENTSINCE 1-Feb-1994"));
	cr_assert_not(match("SENTSINCE 2-Feb-1994"));
	cr_assert(match("SENTBEFORE 2-Feb-1994"));
	cr_assert_not(match("SENTBEFORE 1-Feb-1994"));
	fk.has_date = false;
	cr_assert_not(match("SENTON 1-Feb-1994"));
	cr_assert_not(match("SENTSINCE 1-Jan-1900"));
	cr_assert_not(match("SENTBEFORE 1-Jan-9999"));
	cr_assert(match("NOT SENTON 1-Feb-1994"));
}

Test(imap_search, header_keys)
{
	cr_assert(match("FROM alice"));
	cr_assert(match("FROM \"ALICE <\""));
	cr_assert_not(match("FROM bob"));
	cr_assert(match("TO bob"));
	cr_assert(match("CC carol"));
	cr_assert_not(match("BCC carol"));
	cr_assert(match("SUBJECT quarterly"));
	cr_assert(match("SUBJECT {6}\r\nreport"));
	cr_assert_not(match("SUBJECT annual"));
	cr_assert(match("HEADER X-Mailer mutt"));
	cr_assert(match("HEADER x-mailer \"\""));
	cr_assert_not(match("HEADER X-Spam \"\""));
	cr_assert(match("FROM \"\""));
	cr_assert_not(match("BCC \"\""));
	refused("FROM", NULL);
	refused("HEADER X-Mailer", NULL);
	refused("HEADER \"\" x", NULL);
	refused("HEADER \"a:b\" x", NULL);
	refused("HEADER \"a b\" x", NULL);
	refused("SUBJECT (x)", NULL);
}

Test(imap_search, body_and_text)
{
	cr_assert(match("BODY numbers"));
	cr_assert_not(match("BODY quarterly"));
	cr_assert(match("TEXT quarterly"));
	cr_assert(match("TEXT numbers"));
	cr_assert_not(match("TEXT absent"));
	fk.calls = 0;
	cr_assert(match("BODY \"\""));
	cr_assert(match("TEXT \"\""));
	cr_assert_eq(fk.calls, 0);
	struct imap_search *s = parse("TEXT \"\"");
	cr_assert_not(imap_search_needs_text(s));
	imap_search_free(s);
}

Test(imap_search, sequence_and_uid_sets)
{
	/* seq 3 of 10, uid 30 of 100 */
	cr_assert(match("3"));
	cr_assert(match("1:5"));
	cr_assert(match("5:1"));
	cr_assert_not(match("4:*"));
	cr_assert(match("*:2"));
	cr_assert(match("1,3,5"));
	cr_assert_not(match("*"));
	msg.seq = 10;
	cr_assert(match("*"));
	cr_assert(match("10:*"));
	cr_assert(match("UID 30"));
	cr_assert(match("UID 1:*"));
	cr_assert(match("UID *:30"));
	cr_assert_not(match("UID 31:*"));
	cr_assert_not(match("UID *"));
	msg.uid = 100;
	cr_assert(match("UID *"));
	cr_assert(match("UID 200:*"));
	cr_assert_eq(fk.calls, 0);
	/* With an empty mailbox nothing matches a set. */
	struct imap_search *s = parse("1:*");
	cr_assert_not(imap_search_match(s, &msg, 0, 100));
	imap_search_free(s);
	refused("UID", NULL);
	refused("UID 0", NULL);
	refused("0", NULL);
	refused("1:", NULL);
	refused("UID 1,", NULL);
	refused("1:4294967296", NULL);
}

Test(imap_search, not_or_nesting)
{
	cr_assert(match("NOT DELETED"));
	cr_assert_not(match("NOT SEEN"));
	cr_assert(match("NOT NOT SEEN"));
	cr_assert(match("OR DELETED SEEN"));
	cr_assert(match("OR SEEN DELETED"));
	cr_assert_not(match("OR DELETED DRAFT"));
	cr_assert(match("OR DELETED OR DRAFT FLAGGED"));
	cr_assert(match("OR (DELETED DRAFT) (SEEN FLAGGED)"));
	cr_assert_not(match("OR (DELETED SEEN) (SEEN DRAFT)"));
	cr_assert(match("NOT OR DELETED DRAFT"));
	cr_assert(match("OR NOT SEEN NOT DELETED"));
	cr_assert(match("NOT (SEEN DELETED)"));
	cr_assert_not(match("NOT (SEEN FLAGGED)"));
	refused("NOT", NULL);
	refused("OR SEEN", NULL);
	refused("OR", NULL);
	refused("NOT  SEEN", NULL);
}

Test(imap_search, groups_and_implicit_and)
{
	cr_assert(match("SEEN FLAGGED"));
	cr_assert_not(match("SEEN DELETED"));
	cr_assert(match("(SEEN FLAGGED)"));
	cr_assert(match("((SEEN) (FLAGGED 3)) UID 30"));
	cr_assert_not(match("(SEEN (FLAGGED (DELETED)))"));
	cr_assert(match("1:5 SEEN FROM alice SINCE 1-Jan-1994 LARGER 10"));
	refused("()", NULL);
	refused("(SEEN", NULL);
	refused("SEEN)", NULL);
	refused("(SEEN))", NULL);
	refused("( SEEN)", NULL);
	refused("(SEEN )", NULL);
	refused("SEEN  FLAGGED", NULL);
	refused("SEEN ", NULL);
	refused(" SEEN", NULL);
	refused("", NULL);
	refused("BOGUS", NULL);
	refused("SEEN BOGUS", NULL);
}

Test(imap_search, callbacks_not_called_when_not_needed)
{
	struct imap_search *s = parse("SEEN FLAGGED 1:* UID 1:* LARGER 1");
	cr_assert_not(imap_search_needs_text(s));
	msg.header_has = NULL;
	msg.body_has = NULL;
	msg.text_has = NULL;
	msg.sent_date = NULL;
	cr_assert(imap_search_match(s, &msg, 10, 100));
	imap_search_free(s);
	setup();

	/* A cheap key that fails spares the text, whatever the order. */
	s = parse("BODY numbers SUBJECT x SENTON 1-Feb-1994 DELETED");
	cr_assert(imap_search_needs_text(s));
	cr_assert_not(imap_search_match(s, &msg, 10, 100));
	cr_assert_eq(fk.calls, 0);
	imap_search_free(s);
	s = parse("OR TEXT x SEEN");
	cr_assert(imap_search_match(s, &msg, 10, 100));
	cr_assert_eq(fk.calls, 0);
	imap_search_free(s);
	s = parse("OR TEXT zzz DELETED");
	cr_assert_not(imap_search_match(s, &msg, 10, 100));
	cr_assert_eq(fk.calls, 1);
	imap_search_free(s);
	s = parse("NOT (BODY x) UID 99");
	cr_assert(imap_search_needs_text(s));
	cr_assert_not(imap_search_match(s, &msg, 10, 100));
	cr_assert_eq(fk.calls, 1); /* from before: UID 99 spared BODY */
	imap_search_free(s);
	s = parse("NOT (BODY x) UID 30");
	cr_assert(imap_search_match(s, &msg, 10, 100));
	cr_assert_eq(fk.calls, 2);
	imap_search_free(s);

	/* Missing callbacks do not crash: the key does not match. */
	msg.header_has = NULL;
	msg.body_has = NULL;
	msg.text_has = NULL;
	msg.sent_date = NULL;
	cr_assert_not(match("FROM alice"));
	cr_assert_not(match("BODY x"));
	cr_assert_not(match("TEXT x"));
	cr_assert_not(match("SENTON 1-Feb-1994"));
}

Test(imap_search, charset)
{
	cr_assert(match("CHARSET UTF-8 SEEN"));
	cr_assert(match("charset \"utf-8\" SEEN"));
	cr_assert(match("CHARSET US-ASCII FROM alice"));
	fk.headers[3] = "Subject: caf\xc3\xa9";
	cr_assert(match("CHARSET UTF-8 SUBJECT {5}\r\ncaf\xc3\xa9"));
	cr_assert(match("SUBJECT \"caf\xc3\xa9\""));
	refused("CHARSET ISO-8859-1 SEEN", "[BADCHARSET (UTF-8 US-ASCII)]");
	refused("CHARSET KOI8-R SUBJECT x", "[BADCHARSET (UTF-8 US-ASCII)]");
	refused("CHARSET", NULL);
	refused("CHARSET UTF-8", NULL);
	refused("CHARSET UTF-8 ", NULL);
	refused("CHARSET US-ASCII SUBJECT \"caf\xc3\xa9\"", NULL);
	refused("CHARSET UTF-8 SUBJECT \"caf\xe9\"", NULL); /* Latin-1 */
	refused("SUBJECT \"\xc0\xaf\"", NULL);		    /* overlong */
	refused("SUBJECT {3}\r\na\0b", NULL);
	char nul[] = "SUBJECT {3}\r\na\0b";
	struct imap_cur c;
	struct imap_search *s;
	imap_cur_init(&c, nul, sizeof(nul) - 1);
	cr_assert_eq(imap_search_parse(&c, &s), -1);
	cr_assert_null(s);
}

Test(imap_search, deep_nesting_refused)
{
	char in[1024];
	strcpy(in, "");
	for (int i = 0; i < 70; i++)
		strcat(in, "(");
	strcat(in, "SEEN");
	for (int i = 0; i < 70; i++)
		strcat(in, ")");
	refused(in, NULL);
	strcpy(in, "");
	for (int i = 0; i < 70; i++)
		strcat(in, "NOT ");
	strcat(in, "SEEN");
	refused(in, NULL);
	strcpy(in, "");
	for (int i = 0; i < 70; i++)
		strcat(in, "OR SEEN ");
	strcat(in, "SEEN");
	refused(in, NULL);
	/* 60 levels are fine. */
	strcpy(in, "");
	for (int i = 0; i < 60; i++)
		strcat(in, "NOT ");
	strcat(in, "SEEN");
	cr_assert(match(in));
}

Test(imap_search, too_many_keys_refused)
{
	char in[4096] = "";
	for (int i = 0; i < 300; i++)
		strcat(in, i ? " SEEN" : "SEEN");
	refused(in, NULL);
	in[0] = '\0';
	for (int i = 0; i < 256; i++)
		strcat(in, i ? " SEEN" : "SEEN");
	cr_assert(match(in));
}

Test(imap_search, free_null)
{
	imap_search_free(NULL);
	cr_assert_not(imap_search_needs_text(NULL));
}

/* INTERNALDATE costs the session a stat per message: it is asked for only
 * when a key compares it, however deep. */
Test(imap_search, needs_internaldate_only_for_its_keys)
{
	static const struct {
		const char *prog;
		bool dates;
	} cases[] = {
	    {"UNSEEN", false},
	    {"SENTSINCE 1-Feb-1994", false},
	    {"SUBJECT x LARGER 10", false},
	    {"SINCE 1-Feb-1994", true},
	    {"NOT (SEEN OR FLAGGED BEFORE 1-Feb-1994)", true},
	    {"OR ON 1-Feb-1994 ALL", true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct imap_search *s = parse(cases[i].prog);
		cr_expect_eq(imap_search_needs_internaldate(s), cases[i].dates,
			     "%s", cases[i].prog);
		imap_search_free(s);
	}
	cr_expect_not(imap_search_needs_internaldate(NULL));
}
