/* Random bytes and random mutations of valid arguments through every
 * entry point of imap_parse.h, imap_utf7.c and imap_search.h: nothing may
 * crash or read out of bounds (the ASan build checks the latter: each
 * input lives in a buffer of exactly its size). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/strbuf.h"
#include "../../node/imap/imap_search.h"

#define ITERATIONS 20000

static const char *const seeds[] = {
    "1:*,3,5:2 x",
    "UID 1:* FROM alice (SEEN OR DELETED NOT TEXT {3}\r\nabc)",
    "CHARSET UTF-8 OR SUBJECT \"a\\\"b\" HEADER X-A \"\" SINCE 1-Feb-1994",
    "NOT (LARGER 10 SMALLER 20000 BEFORE \"01-Jan-2000\" KEYWORD $x)",
    "SENTON 2-Mar-2020 SENTBEFORE 1-Jan-1970 SENTSINCE 31-Dec-1999 NEW",
    "(FLAGS UID BODY.PEEK[1.2.HEADER.FIELDS (From \"To\")]<0.100>)",
    "BODY[HEADER.FIELDS.NOT (X-A X-B)]",
    "FULL",
    "(BODY[1.MIME] BODY[TEXT]<5.10> RFC822.SIZE ENVELOPE BODYSTRUCTURE)",
    "(\\Seen \\Answered \\Flagged \\Deleted \\Draft $Junk)",
    "\\Seen \\Deleted",
    "\"17-Jul-1996 02:44:25 -0700\"",
    "\" 7-Jul-1996 09:44:25 +0000\"",
    "{5}\r\nhello rest",
    "{4+}\r\n\0\0\0\0",
    "\"quoted \\\\ string\" atom]x",
    "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
    "INBOX.%.*",
    "NIL",
    "a001 LOGIN {3}",
    "OR OR OR SEEN UNSEEN ANSWERED UNANSWERED ALL 1,2,3 UID 4:5",
};

#define NSEEDS (sizeof(seeds) / sizeof(seeds[0]))

static bool
cb_header(void *arg, const char *field, const char *needle)
{
	(void)arg;
	return strlen(field) > strlen(needle);
}

static bool
cb_text(void *arg, const char *needle)
{
	(void)arg;
	return needle[0] == 'a';
}

static bool
cb_date(void *arg, time_t *t)
{
	*t = 760060800;
	return arg != NULL;
}

/* Every entry point on one input of exactly n bytes. */
static void
run_all(const char *in, size_t n)
{
	struct imap_cur c;
	char out[256];
	size_t len;
	bool nil, ns;
	uint32_t v;
	uint64_t n64;
	time_t t;
	unsigned mask;
	static struct imap_kwlist kw;
	const char *data;
	static struct imap_seqset set;

	imap_literal_suffix(in, n, &n64, &ns);
#define ON(call)                                                               \
	do {                                                                   \
		imap_cur_init(&c, in, n);                                      \
		if ((call) == 0)                                               \
			imap_end(&c);                                          \
	} while (0)
	ON(imap_atom(&c, out, sizeof(out)));
	ON(imap_atom(&c, out, 4));
	ON(imap_tag(&c, out, sizeof(out)));
	ON(imap_astring(&c, out, sizeof(out), &len));
	ON(imap_astring(&c, out, 3, NULL));
	ON(imap_string(&c, out, sizeof(out), &len));
	ON(imap_nstring(&c, out, sizeof(out), &len, &nil));
	ON(imap_literal(&c, &data, &len));
	ON(imap_list_mailbox(&c, out, sizeof(out)));
	ON(imap_number(&c, &v));
	ON(imap_nz_number(&c, &v));
	ON(imap_flag_list(&c, false, &mask, &kw));
	ON(imap_flag_list(&c, true, &mask, &kw));
	ON(imap_date(&c, &t));
	ON(imap_date_time(&c, &t));
	imap_cur_init(&c, in, n);
	if (imap_seqset(&c, &set) == 0) {
		imap_seqset_has(&set, 1, 10);
		imap_seqset_has(&set, 7, 0);
	}

	struct imap_fetch f;
	imap_cur_init(&c, in, n);
	if (imap_fetch_parse(&c, &f) == 0) {
		struct strbuf sb;
		strbuf_init(&sb, 65536);
		for (size_t i = 0; i < f.n; i++) {
			strbuf_reset(&sb);
			cr_assert_eq(imap_fetch_item_name(&f.item[i], &sb), 0);
		}
		strbuf_free(&sb);
	}
	imap_fetch_free(&f);

	struct imap_search *s;
	imap_cur_init(&c, in, n);
	if (imap_search_parse(&c, &s) == 0) {
		struct imap_search_msg m = {
		    .seq = 2,
		    .uid = 5,
		    .flags = IMAP_F_SEEN,
		    .size = 100,
		    .internaldate = 760060800,
		    .arg = &m,
		    .header_has = cb_header,
		    .body_has = cb_text,
		    .text_has = cb_text,
		    .sent_date = cb_date,
		};
		imap_search_needs_text(s);
		imap_search_match(s, &m, 3, 9);
		imap_search_match(s, &m, 0, 0);
		imap_search_free(s);
	} else
		cr_assert_null(s);

	/* The UTF-7 functions take C strings. */
	char *z = malloc(n + 1);
	memcpy(z, in, n);
	z[n] = '\0';
	imap_mutf7_valid(z);
	imap_mutf7_to_utf8(z, out, sizeof(out));
	imap_mutf7_to_utf8(z, out, 5);
	imap_utf8_to_mutf7(z, out, sizeof(out));
	imap_utf8_to_mutf7(z, out, 5);
	free(z);
}

/* in copied into a heap buffer of exactly its size. */
static void
run_exact(const char *in, size_t n)
{
	char *b = malloc(n ? n : 1);
	memcpy(b, in, n);
	run_all(b, n);
	free(b);
}

Test(imap_fuzz, seeds_as_they_are)
{
	for (size_t i = 0; i < NSEEDS; i++)
		run_exact(seeds[i], strlen(seeds[i]));
}

Test(imap_fuzz, random_bytes)
{
	static const char alphabet[] = "(){}[]<>\"\\%*+-.,:0123456789 \r\n"
				       "&ABCNOTHEADERSEENUIDBODY";
	char buf[200];
	srand(1);
	for (int i = 0; i < ITERATIONS / 2; i++) {
		size_t n = (size_t)rand() % sizeof(buf);
		for (size_t j = 0; j < n; j++)
			buf[j] =
			    rand() % 2
				? (char)(rand() % 256)
				: alphabet[rand() % (sizeof(alphabet) - 1)];
		run_exact(buf, n);
	}
}

Test(imap_fuzz, mutations_of_valid_commands)
{
	static const char bytes[] =
	    "(){}[]<>\"\\%*+-.:,0123456789 \r\n\0\x80\xff";
	char buf[512];
	srand(2);
	for (int i = 0; i < ITERATIONS / 2; i++) {
		const char *seed = seeds[rand() % NSEEDS];
		size_t n = strlen(seed);
		memcpy(buf, seed, n);
		int edits = 1 + rand() % 4;
		for (int e = 0; e < edits; e++) {
			size_t at = n ? (size_t)rand() % n : 0;
			char ch = bytes[rand() % (sizeof(bytes) - 1)];
			switch (rand() % 4) {
			case 0: /* replace */
				if (n)
					buf[at] = ch;
				break;
			case 1: /* insert */
				if (n < sizeof(buf) - 1) {
					memmove(buf + at + 1, buf + at, n - at);
					buf[at] = ch;
					n++;
				}
				break;
			case 2: /* delete */
				if (n) {
					memmove(buf + at, buf + at + 1,
						n - at - 1);
					n--;
				}
				break;
			default: /* cut */
				n = at;
			}
		}
		run_exact(buf, n);
	}
}
