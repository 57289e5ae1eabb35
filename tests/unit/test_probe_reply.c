/* probe_reply: the probes' line splitter and reply parsers on buffers. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../health/probe_reply.h"

Test(probe_reply, lines_split_on_lf_with_or_without_cr)
{
	char buf[] = "220 a\r\n250-b\n250 c\r\npartial";
	size_t off = 0, len = strlen(buf);
	cr_assert_str_eq(probe_line_next(buf, len, &off), "220 a");
	cr_assert_str_eq(probe_line_next(buf, len, &off), "250-b");
	cr_assert_str_eq(probe_line_next(buf, len, &off), "250 c");
	cr_assert_null(probe_line_next(buf, len, &off));
	cr_assert_str_eq(buf + off, "partial");
	char empty[] = "\r\n";
	off = 0;
	cr_assert_str_eq(probe_line_next(empty, 2, &off), "");
	cr_assert_eq(off, 2);
}

Test(probe_reply, smtp_reply_lines)
{
	const char *text;
	bool more;
	int code;
	cr_assert_eq(probe_smtp_reply("250-SIZE 10", &code, &more, &text), 0);
	cr_assert_eq(code, 250);
	cr_assert(more);
	cr_assert_str_eq(text, "SIZE 10");
	cr_assert_eq(probe_smtp_reply("221", &code, &more, &text), 0);
	cr_assert_not(more);
	cr_assert_str_eq(text, "");
	cr_assert_eq(probe_smtp_reply("22", &code, &more, &text), -1);
	cr_assert_eq(probe_smtp_reply("2x0 ", &code, &more, &text), -1);
	cr_assert_eq(probe_smtp_reply("250x", &code, &more, &text), -1);
}

/* A bare "250" in a buffer whose old bytes spell STARTTLS after the NUL
 * (what the engine's buffer holds after a greeting that said it): the
 * keyword must be read from the line alone. */
Test(probe_reply, bare_code_reads_nothing_past_the_line)
{
	char buf[] = "250\0STARTTLS";
	cr_assert_not(probe_smtp_offers_starttls(buf));
	cr_assert(probe_smtp_offers_starttls("250-starttls"));
	cr_assert(probe_smtp_offers_starttls("250 STARTTLS"));
	cr_assert_not(probe_smtp_offers_starttls("220 STARTTLS"));
	cr_assert_not(probe_smtp_offers_starttls("250-STARTTLSX"));
}

Test(probe_reply, imap_pop3_http)
{
	cr_assert(probe_imap_greeting_ok("* OK ready"));
	cr_assert(probe_imap_greeting_ok("* ok"));
	cr_assert_not(probe_imap_greeting_ok("* OKAY"));
	cr_assert_not(probe_imap_greeting_ok("* PREAUTH x"));
	cr_assert_str_eq(probe_imap_tagged(3, "a3 OK done"), "OK done");
	cr_assert_null(probe_imap_tagged(3, "a33 OK done"));
	cr_assert_null(probe_imap_tagged(3, "a3"));
	cr_assert(probe_imap_ok("OK"));
	cr_assert_not(probe_imap_ok("OKX"));
	cr_assert(probe_pop3_ok("+OK 2 320"));
	cr_assert_not(probe_pop3_ok("+OKAY"));
	cr_assert_not(probe_pop3_ok("-ERR"));
	cr_assert_eq(probe_http_status("HTTP/1.1 204 No Content"), 204);
	cr_assert_eq(probe_http_status("HTTP/1.0 200"), 200);
	cr_assert_eq(probe_http_status("HTTP/1.0 20"), -1);
	cr_assert_eq(probe_http_status("HTTP/1.0 2000"), -1);
	cr_assert_eq(probe_http_status("HTTP/1.0"), -1);
	cr_assert_eq(probe_http_status("FTP/1.0 200"), -1);
}

Test(probe_reply, excerpt_and_text)
{
	char ex[41];
	cr_assert_str_eq(probe_excerpt("a\tb\xff", ex, sizeof(ex)), "a?b?");
	cr_assert(probe_text_ok("user@x"));
	cr_assert_not(probe_text_ok("a\r\nb"));
	cr_assert_not(probe_text_ok("\xc3\xa9"));
}
