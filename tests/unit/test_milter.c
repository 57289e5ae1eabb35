/* The milter protocol's pure parts: packets built and read
 * (milter_proto.c), a message's header section read, edited and judged
 * (milter_headers.c), on buffers alone. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../node/smtp/milter_headers.h"
#include "../../node/smtp/milter_proto.h"

/* A packet of the milter's: cmd and len bytes of data. */
static size_t
answer(char *buf, char cmd, const void *data, size_t len)
{
	uint32_t n = htonl((uint32_t)len + 1);
	memcpy(buf, &n, 4);
	buf[4] = cmd;
	memcpy(buf + 5, data, len);
	return len + 5;
}

Test(milter_proto, packets_read_whole_or_not_at_all)
{
	char buf[64];
	struct milter_packet p;
	size_t n = answer(buf, 'y', "554 5.7.1 no\0", 13);
	for (size_t i = 0; i < n; i++) /* a packet arriving byte by byte */
		cr_assert_eq(milter_packet_read(buf, i, &p), 0);
	cr_assert_eq(milter_packet_read(buf, n, &p), (long)n);
	cr_assert_eq(p.cmd, 'y');
	const char *text;
	cr_assert_eq(milter_reply_parse(&p, &text), 0);
	cr_assert_str_eq(text, "554 5.7.1 no");
	memset(buf, 0, 4); /* length 0: no command byte */
	cr_assert_eq(milter_packet_read(buf, 8, &p), -1);
	uint32_t big = htonl(MILTER_PACKET_MAX + 1);
	memcpy(buf, &big, 4);
	cr_assert_eq(milter_packet_read(buf, 8, &p), -1);
}

Test(milter_proto, answers_checked)
{
	char buf[128];
	struct milter_packet p;
	const char *text, *name, *value;
	uint32_t idx;
	const struct {
		char cmd;
		const char *data;
		size_t len;
		int ok;
	} cases[] = {
	    {'y', "250 ok\0", 7, -1},	  /* not 4xx or 5xx */
	    {'y', "45 x\0", 5, -1},	  /* two digits */
	    {'y', "421\0", 4, 0},	  /* the code alone */
	    {'y', "550 a\r\nb\0", 9, -1}, /* two lines */
	    {'y', "550 no nul", 10, -1},  /* not terminated */
	    {'h', "X-A\0v\0", 6, 0},	  /* add */
	    {'h', "X A\0v\0", 6, -1},	  /* a space in the name */
	    {'h', "X:A\0v\0", 6, -1},	  /* a colon in the name */
	    {'h', "\0v\0", 3, -1},	  /* no name */
	    {'h', "X\0a\nb\0", 6, -1},	  /* a line break, no folding */
	    {'h', "X\0a\r\n\tb\0", 8, 0}, /* folded with CRLF */
	    {'m', "\0\0\0\1X\0\0", 7, 0}, /* change #1 to empty */
	    {'m', "\0\0\1", 3, -1},	  /* no index */
	    {'i', "\0\0\0\0X\0v", 7, -1}, /* value not terminated */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		size_t n =
		    answer(buf, cases[i].cmd, cases[i].data, cases[i].len);
		cr_assert_eq(milter_packet_read(buf, n, &p), (long)n);
		int rc = p.cmd == 'y'
			     ? milter_reply_parse(&p, &text)
			     : milter_header_parse(&p, &idx, &name, &value);
		cr_expect_eq(rc, cases[i].ok, "case %zu", i);
	}
}

Test(milter_proto, built_packets)
{
	struct strbuf sb;
	strbuf_init(&sb, 1024);
	const char *names[] = {"i", "{auth_authen}", "{mail_addr}"};
	const char *values[] = {"ID1", "", "a@b"};
	cr_assert_eq(milter_put_macros(&sb, 'M', names, values, 3), 0);
	/* length 1 + 1 + "i\0ID1\0" + "{mail_addr}\0a@b\0": the empty
	 * value is left out */
	const char want[] = "\0\0\0\x18"
			    "DMi\0ID1\0{mail_addr}\0a@b";
	cr_assert_eq(sb.len, sizeof(want));
	cr_assert_eq(memcmp(sb.buf, want, sizeof(want)), 0);
	strbuf_reset(&sb);
	cr_assert_eq(milter_put_connect(&sb, "unknown", '4', 25, "1.2.3.4"), 0);
	cr_assert_eq(sb.len, 4 + 1 + 8 + 1 + 2 + 8);
	cr_assert_eq(sb.buf[4], 'C');
	cr_assert_eq((unsigned char)sb.buf[15], 25);
	strbuf_free(&sb);
	strbuf_init(&sb, 8); /* the cap: nothing half-written */
	cr_assert_eq(milter_put_header(&sb, "Subject", 7, "long value"), -1);
	cr_assert_eq(sb.len, 0);
	strbuf_free(&sb);
}

static const char MSG[] = "From: a@b.test\r\n"
			  "Subject: hi\r\n there\r\n"
			  "X-Old: 1\r\n"
			  "x-old: 2\r\n"
			  "\r\n"
			  "body\r\n";

static char *
section(const struct milter_headers *h, char *out, size_t len)
{
	out[0] = '\0';
	for (size_t i = 0; i < h->n; i++)
		strncat(out, h->f[i].text, len - strlen(out) - 1);
	return out;
}

Test(milter_headers, read_and_values)
{
	struct milter_headers h;
	char v[64];
	cr_assert_eq(milter_headers_read(&h, MSG, strlen(MSG)), 0);
	cr_assert_eq(h.n, 4);
	cr_assert_eq(h.end, strlen(MSG) - strlen("\r\nbody\r\n"));
	cr_assert_eq(h.body, strlen(MSG) - strlen("body\r\n"));
	milter_field_value(&h.f[1], false, v, sizeof(v));
	cr_assert_str_eq(v, "hi\n there");
	milter_field_value(&h.f[1], true, v, sizeof(v));
	cr_assert_str_eq(v, " hi\n there");
	cr_assert_not(milter_headers_spam(&h));
	milter_headers_free(&h);

	/* no empty line: the first line that is not a field starts the
	 * body */
	const char odd[] = "A: 1\r\nnot a field\r\nB: 2\r\n";
	cr_assert_eq(milter_headers_read(&h, odd, strlen(odd)), 0);
	cr_assert_eq(h.n, 1);
	cr_assert_eq(h.end, 6);
	cr_assert_eq(h.body, 6);
	milter_headers_free(&h);
}

Test(milter_headers, edits_in_order)
{
	struct milter_headers h;
	char out[512];
	cr_assert_eq(milter_headers_read(&h, MSG, strlen(MSG)), 0);
	cr_assert_eq(milter_headers_insert(&h, 0, "X-First", "top"), 0);
	cr_assert_eq(milter_headers_change(&h, 2, "X-OLD", "two"), 0);
	cr_assert_eq(milter_headers_change(&h, 1, "X-Old", ""), 0);
	cr_assert_eq(milter_headers_change(&h, 5, "X-Missing", ""), 0);
	cr_assert_eq(milter_headers_change(&h, 5, "X-New", "a\n\tb"), 0);
	cr_assert_eq(milter_headers_add(&h, "X-Spam", "Yes"), 0);
	cr_assert(h.changed);
	cr_assert_str_eq(section(&h, out, sizeof(out)),
			 "X-First: top\r\n"
			 "From: a@b.test\r\n"
			 "Subject: hi\r\n there\r\n"
			 "X-OLD: two\r\n"
			 "X-New: a\r\n\tb\r\n"
			 "X-Spam: Yes\r\n");
	cr_assert(milter_headers_spam(&h));
	milter_headers_free(&h);
}

Test(milter_headers, spam_marks)
{
	const char *yes[] = {
	    "X-Spam: yes\r\n\r\n",
	    "X-Spam-Flag: YES\r\n\r\n",
	    "X-Spam-Status: Yes, score=9\r\n\r\n",
	    ("X-Spamd-Result: default: True [16.00 / 15.00];"
	     "\r\n\tGTUBE(0.00)[]\r\n\r\n"),
	};
	const char *no[] = {
	    "X-Spam-Status: No, score=0\r\n\r\n",
	    ("X-Spamd-Result: default: False [0.00 / 15.00]\r\n\r\n"),
	    "X-Spammy: yes\r\n\r\n",
	    "Subject: X-Spam: Yes\r\n\r\n",
	};
	struct milter_headers h;
	for (size_t i = 0; i < 4; i++) {
		cr_assert_eq(milter_headers_read(&h, yes[i], strlen(yes[i])),
			     0);
		cr_expect(milter_headers_spam(&h), "%s", yes[i]);
		milter_headers_free(&h);
		cr_assert_eq(milter_headers_read(&h, no[i], strlen(no[i])), 0);
		cr_expect_not(milter_headers_spam(&h), "%s", no[i]);
		milter_headers_free(&h);
	}
}
