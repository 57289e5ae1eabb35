/* node/http_parse.c: the strict HTTP/1.1 request-head parser. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../node/http/http.h"

/* Splits buf into lines as common/stream does (LF ends a line, a CR
 * before it is taken off and reported, a line longer than HTTP_LINE_MAX
 * arrives cut with toolong) and feeds them until the head ends. Returns
 * the bytes used, or len when the head did not end. */
static size_t
feed(struct http_request *rq, const char *buf, size_t len)
{
	static char line[HTTP_LINE_MAX + 2];
	size_t off = 0;
	while (off < len) {
		const char *lf = memchr(buf + off, '\n', len - off);
		if (lf == NULL)
			return len;
		size_t n = (size_t)(lf - (buf + off));
		bool crlf = n > 0 && buf[off + n - 1] == '\r';
		size_t l = crlf ? n - 1 : n;
		bool toolong = l > HTTP_LINE_MAX;
		if (toolong)
			l = HTTP_LINE_MAX;
		memcpy(line, buf + off, l);
		line[l] = '\0';
		off += n + 1;
		if (http_parse_line(rq, line, l, crlf, toolong) ==
		    HTTP_PARSE_END)
			return off;
	}
	return len;
}

static struct http_request rq;

static int
parse(const char *s)
{
	http_request_reset(&rq);
	size_t used = feed(&rq, s, strlen(s));
	cr_assert_eq(rq.state, HTTP_PARSE_DONE, "head did not end: %s", s);
	cr_assert_eq(used, strlen(s));
	return rq.status;
}

Test(http_parse, simple_get)
{
	cr_assert_eq(parse("GET /health HTTP/1.1\r\nHost: n1\r\n\r\n"), 0);
	cr_assert_eq(rq.method, HTTP_GET);
	cr_assert_str_eq(rq.path, "/health");
	cr_assert_null(rq.query);
	cr_assert_eq(rq.minor, 1);
	cr_assert(http_request_keepalive(&rq));
	cr_assert_not(rq.has_length);
	cr_assert_str_eq(rq.token, "");
}

Test(http_parse, query_and_methods)
{
	cr_assert_eq(parse("HEAD /api/messages/7?mailbox=INBOX HTTP/1.1\r\n"
			   "host: x\r\n\r\n"),
		     0);
	cr_assert_eq(rq.method, HTTP_HEAD);
	cr_assert_str_eq(rq.path, "/api/messages/7");
	cr_assert_str_eq(rq.query, "mailbox=INBOX");
	cr_assert_eq(parse("POST /api/login HTTP/1.1\r\nHost: x\r\n"
			   "Content-Type: application/json; charset=utf-8\r\n"
			   "Content-Length: 42\r\n\r\n"),
		     0);
	cr_assert_eq(rq.method, HTTP_POST);
	cr_assert(rq.has_length);
	cr_assert_eq(rq.content_length, 42);
	cr_assert(rq.json_body);
	cr_assert_eq(parse("DELETE /x HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	cr_assert_eq(rq.method, HTTP_DELETE);
	cr_assert_eq(parse("PUT /x HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	cr_assert_eq(rq.method, HTTP_OTHER);
	cr_assert_str_eq(rq.method_name, "PUT");
	cr_assert_eq(parse("POST /api/login HTTP/1.1\r\nHost: x\r\n"
			   "Content-Type: text/plain\r\n\r\n"),
		     0);
	cr_assert_not(rq.json_body);
}

Test(http_parse, versions_and_connection)
{
	cr_assert_eq(parse("GET / HTTP/1.0\r\n\r\n"), 0); /* no Host: fine */
	cr_assert_eq(rq.minor, 0);
	cr_assert_not(http_request_keepalive(&rq));
	cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: x\r\n"
			   "Connection: keep-alive, Close\r\n\r\n"),
		     0);
	cr_assert_not(http_request_keepalive(&rq));
	cr_assert_eq(parse("GET / HTTP/1.9\r\nHost: x\r\n\r\n"), 0);
	cr_assert_eq(rq.minor, 1);
	cr_assert_eq(parse("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
	cr_assert_eq(parse("GET / HTTP/0.9\r\n\r\n"), 505);
}

Test(http_parse, leading_empty_lines)
{
	cr_assert_eq(parse("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	http_request_reset(&rq);
	feed(&rq, "\r\n\r\n\r\n\r\n\r\n", 10);
	cr_assert_eq(rq.status, 400);
	cr_assert(rq.must_close);
}

Test(http_parse, session_tokens)
{
	char tok[HTTP_TOKEN_HEX + 1], req[512];
	for (int i = 0; i < HTTP_TOKEN_HEX; i++)
		tok[i] = "0123456789abcdef"[i % 16];
	tok[HTTP_TOKEN_HEX] = '\0';

	snprintf(
	    req, sizeof(req),
	    "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: bearer %s\r\n\r\n",
	    tok);
	cr_assert_eq(parse(req), 0);
	cr_assert_str_eq(rq.token, tok);

	snprintf(req, sizeof(req),
		 "GET / HTTP/1.1\r\nHost: x\r\nCookie: a=b; session=%s; c=d"
		 "\r\n\r\n",
		 tok);
	cr_assert_eq(parse(req), 0);
	cr_assert_str_eq(rq.token, tok);

	/* Bearer wins over the cookie, whatever the order. */
	snprintf(req, sizeof(req),
		 "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
		 "Cookie: session=%064d\r\n\r\n",
		 tok, 0);
	cr_assert_eq(parse(req), 0);
	cr_assert_str_eq(rq.token, tok);

	/* Malformed tokens are no session, not an error. */
	cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: x\r\n"
			   "Authorization: Bearer abc\r\n"
			   "Cookie: session=../../etc\r\n\r\n"),
		     0);
	cr_assert_str_eq(rq.token, "");
	snprintf(req, sizeof(req),
		 "GET / HTTP/1.1\r\nHost: x\r\nCookie: session=%.63sG\r\n\r\n",
		 tok);
	cr_assert_eq(parse(req), 0);
	cr_assert_str_eq(rq.token, "");
	snprintf(req, sizeof(req),
		 "GET / HTTP/1.1\r\nHost: x\r\nCookie: session=%sA\r\n\r\n",
		 tok);
	cr_assert_eq(parse(req), 0);
	cr_assert_str_eq(rq.token, "");
}

struct bad_case {
	const char *req;
	int status;
	bool must_close;
};

Test(http_parse, malformed)
{
	static const struct bad_case bad[] = {
	    {"GET /\r\n\r\n", 400, false},
	    {"GET\r\n\r\n", 400, false},
	    {"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
	    {"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400, false},
	    {"GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
	    {"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
	    {"GET / HTTP/1.1\nHost: x\r\n\r\n", 400, false},
	    {"GET / HTTP/1.1\r\nHost: x\n\r\n", 400, false},
	    {"GET / HTTP/1.1\r\nHost: x\r\n\n", 400, false},
	    {"GET / HTTX/1.1\r\nHost: x\r\n\r\n", 400, false},
	    {"GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400, false},
	    {"GET / http/1.1\r\nHost: x\r\n\r\n", 400, false},
	    {"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
	    {"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
	    {"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
	    {"GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
	    {"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
	    {"GET /%4 HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
	    {"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
	    {"GET /\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
	    {"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400, false},
	    {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, false},
	    {"GET / HTTP/1.1\r\n: x\r\nHost: x\r\n\r\n", 400, false},
	    {"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", 400,
	     false},
	    {"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400, false},
	    {"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400, false},
	    {"GET / HTTP/1.1\r\nHost: x\r\nX(A): 1\r\n\r\n", 400, false},
	    {"GET / HTTP/1.1\r\n\r\n", 400, false},
	    {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, false},
	    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400,
	     true},
	    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400,
	     true},
	    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n", 400,
	     true},
	    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", 400,
	     true},
	    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
	     "Content-Length: 2\r\n\r\n",
	     400, true},
	    {"POST / HTTP/1.1\r\nHost: x\r\n"
	     "Content-Length: 99999999999999999999999999\r\n\r\n",
	     400, true},
	    {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n\r\n", 413,
	     true},
	    {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
	     411, true},
	    {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
	     "Content-Length: 5\r\n\r\n",
	     400, true},
	    {"POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417,
	     false},
	    {"NOTAMETHODTHATISLONG / HTTP/1.1\r\nHost: x\r\n\r\n", 501, false},
	    /* A refused head that announced a body cannot be framed. */
	    {"GET /a b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n", 400,
	     true},
	    {"GET / HTTP/1.1\r\nBad Header\r\nTransfer-Encoding: x\r\n\r\n",
	     400, true},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		http_request_reset(&rq);
		size_t len = strlen(bad[i].req);
		size_t used = feed(&rq, bad[i].req, len);
		cr_expect_eq(rq.state, HTTP_PARSE_DONE, "case %zu not done", i);
		cr_expect_eq(used, len, "case %zu: used %zu of %zu", i, used,
			     len);
		cr_expect_eq(rq.status, bad[i].status, "case %zu: %d, not %d",
			     i, rq.status, bad[i].status);
		cr_expect_not_null(rq.reason, "case %zu: no reason", i);
		cr_expect_eq(rq.must_close, bad[i].must_close,
			     "case %zu: must_close %d", i, rq.must_close);
	}
}

/* A bad head is read to its end, so the next request on the connection is
 * parsed from its start. */
Test(http_parse, bad_head_then_good_one)
{
	const char *two = "GET / HTTP/1.1\r\nHost: x\r\nBad\r\nX: y\r\n\r\n"
			  "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
	http_request_reset(&rq);
	size_t used = feed(&rq, two, strlen(two));
	cr_assert_eq(rq.status, 400);
	cr_assert(http_request_keepalive(&rq));
	http_request_reset(&rq);
	feed(&rq, two + used, strlen(two + used));
	cr_assert_eq(rq.status, 0);
	cr_assert_str_eq(rq.path, "/health");
}

static char *
repeat_line(const char *prefix, size_t n, const char *suffix)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);
	char *s = malloc(pl + n + sl + 1);
	memcpy(s, prefix, pl);
	memset(s + pl, 'a', n);
	memcpy(s + pl + n, suffix, sl + 1);
	return s;
}

/* The webmail's: If-None-Match kept (a long one dropped), and a body
 * limit that only POST /api/send raises. */
Test(http_parse, webmail_fields)
{
	cr_assert_eq(parse("GET / HTTP/1.1\r\nHost: x\r\n"
			   "If-None-Match: \"0123abcd\"\r\n\r\n"),
		     0);
	cr_assert_str_eq(rq.if_none_match, "\"0123abcd\"");
	char *s = repeat_line("GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: ",
			      HTTP_ETAG_MAX + 1, "\r\n\r\n");
	cr_assert_eq(parse(s), 0);
	cr_assert_str_eq(rq.if_none_match, "");
	free(s);

	char buf[512];
	static const char bearer[] =
	    "Authorization: Bearer "
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	    "\r\n";
	snprintf(buf, sizeof(buf),
		 "POST /api/send HTTP/1.1\r\nHost: x\r\n%s"
		 "Content-Length: %d\r\n\r\n",
		 bearer, HTTP_SEND_BODY_MAX);
	cr_assert_eq(parse(buf), 0);
	cr_assert_eq(http_body_limit(&rq), HTTP_SEND_BODY_MAX);
	snprintf(buf, sizeof(buf),
		 "POST /api/send HTTP/1.1\r\nHost: x\r\n%s"
		 "Content-Length: %d\r\n\r\n",
		 bearer, HTTP_SEND_BODY_MAX + 1);
	cr_assert_eq(parse(buf), 413);
	snprintf(buf, sizeof(buf), /* no session: the small limit */
		 "POST /api/send HTTP/1.1\r\nHost: x\r\n"
		 "Content-Length: %d\r\n\r\n",
		 HTTP_BODY_MAX + 1);
	cr_assert_eq(parse(buf), 413);
	snprintf(buf, sizeof(buf),
		 "POST /api/login HTTP/1.1\r\nHost: x\r\n"
		 "Content-Length: %d\r\n\r\n",
		 HTTP_BODY_MAX + 1);
	cr_assert_eq(parse(buf), 413);
	snprintf(buf, sizeof(buf),
		 "GET /api/send HTTP/1.1\r\nHost: x\r\n"
		 "Content-Length: %d\r\n\r\n",
		 HTTP_BODY_MAX + 1);
	cr_assert_eq(parse(buf), 413);
}

Test(http_parse, oversize)
{
	/* A header line over HTTP_LINE_MAX. */
	char *s = repeat_line(
	    "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ", HTTP_LINE_MAX, "\r\n\r\n");
	cr_assert_eq(parse(s), 431);
	cr_assert(http_request_keepalive(&rq));
	free(s);

	/* A request line over HTTP_LINE_MAX, and a target over
	 * HTTP_TARGET_MAX. */
	s = repeat_line("GET /", HTTP_LINE_MAX, " HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert_eq(parse(s), 414);
	free(s);
	s = repeat_line("GET /", HTTP_TARGET_MAX,
			" HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert_eq(parse(s), 414);
	free(s);
	s = repeat_line("GET /", HTTP_TARGET_MAX - 1,
			" HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert_eq(parse(s), 0);
	free(s);

	/* Too many fields; too many bytes in all. */
	char buf[HTTP_HEADER_BYTES * 2];
	size_t n =
	    (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < HTTP_HEADERS_MAX; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: y\r\n",
				      i);
	snprintf(buf + n, sizeof(buf) - n, "\r\n");
	cr_assert_eq(parse(buf), 431);
	cr_assert(http_request_keepalive(&rq));
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: x\r\n");
	for (int i = 0; i < 8; i++) {
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: ", i);
		memset(buf + n, 'v', 2500);
		n += 2500;
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
	}
	snprintf(buf + n, sizeof(buf) - n, "\r\n");
	cr_assert_eq(parse(buf), 431);

	/* An endless head: answered and closed once past the skip bound. */
	http_request_reset(&rq);
	feed(&rq, "GET / HTTP/1.1\r\n", 16);
	enum http_parse_result r = HTTP_PARSE_MORE;
	for (int i = 0; i < 100000 && r == HTTP_PARSE_MORE; i++)
		r = http_parse_line(&rq, "X-Flood: 0123456789", 19, true,
				    false);
	cr_assert_eq(r, HTTP_PARSE_END);
	cr_assert_eq(rq.status, 431);
	cr_assert(rq.must_close);
}

Test(http_parse, query_get)
{
	char v[16];
	cr_assert_eq(http_query_get("mailbox=INBOX", "mailbox", v, sizeof(v)),
		     1);
	cr_assert_str_eq(v, "INBOX");
	cr_assert_eq(http_query_get("a=1&mailbox=Sent%20Items&b", "mailbox", v,
				    sizeof(v)),
		     1);
	cr_assert_str_eq(v, "Sent Items");
	cr_assert_eq(http_query_get("mailbox=A+B", "mailbox", v, sizeof(v)), 1);
	cr_assert_str_eq(v, "A B");
	cr_assert_eq(http_query_get("mailbox", "mailbox", v, sizeof(v)), 1);
	cr_assert_str_eq(v, "");
	cr_assert_eq(http_query_get("mailboxes=x", "mailbox", v, sizeof(v)), 0);
	cr_assert_eq(http_query_get(NULL, "mailbox", v, sizeof(v)), 0);
	cr_assert_eq(http_query_get("mailbox=%2", "mailbox", v, sizeof(v)), -1);
	cr_assert_eq(http_query_get("mailbox=%00", "mailbox", v, sizeof(v)),
		     -1);
	cr_assert_eq(
	    http_query_get("mailbox=a&mailbox=b", "mailbox", v, sizeof(v)), -1);
	cr_assert_eq(
	    http_query_get("mailbox=0123456789abcdef", "mailbox", v, sizeof(v)),
	    -1);
}

Test(http_parse, status_texts)
{
	cr_assert_str_eq(http_status_text(431),
			 "Request Header Fields Too Large");
	cr_assert_str_eq(http_status_text(404), "Not Found");
}

/* Random and mutated heads: never a crash or an out-of-bounds access
 * (the sanitizer build checks), always a sane verdict. */
Test(http_parse, fuzz)
{
	static const char *seeds[] = {
	    "GET /api/messages?mailbox=INBOX HTTP/1.1\r\nHost: n\r\n"
	    "Cookie: a=b; session=0123456789abcdef0123456789abcdef0123456789a"
	    "bcdef0123456789abcdef\r\n\r\n",
	    "POST /api/login HTTP/1.1\r\nHost: n\r\nContent-Length: 40\r\n"
	    "Content-Type: application/json\r\nExpect: 100-continue\r\n\r\n",
	    "GET / HTTP/1.0\r\nConnection: close\r\nAuthorization: Bearer x\r\n"
	    "\r\n",
	};
	static const char alphabet[] = "GETPOST /?%:;=\r\n\t\x00\x7f\x80\xff"
				       "HTTP/1.0aZ-,";
	static char buf[4096];
	srand(4242);
	for (int i = 0; i < 10000; i++) {
		size_t len;
		if (i % 3 != 2) {
			const char *seed = seeds[i % 3];
			len = strlen(seed);
			memcpy(buf, seed, len);
			int muts = 1 + rand() % 6;
			for (int m = 0; m < muts; m++) {
				size_t at = (size_t)rand() % len;
				switch (rand() % 4) {
				case 0:
					buf[at] = (char)(rand() % 256);
					break;
				case 1:
					buf[at] =
					    alphabet[rand() %
						     (sizeof(alphabet) - 1)];
					break;
				case 2: /* duplicate a slice */
					if (len + 64 < sizeof(buf)) {
						memmove(buf + at + 32, buf + at,
							len - at);
						len += 32;
					}
					break;
				default:
					len = at + 1;
					break;
				}
			}
		} else {
			len = (size_t)rand() % sizeof(buf);
			for (size_t k = 0; k < len; k++)
				buf[k] =
				    alphabet[rand() % (sizeof(alphabet) - 1)];
		}
		char *exact = malloc(len ? len : 1);
		memcpy(exact, buf, len);
		http_request_reset(&rq);
		size_t used = feed(&rq, exact, len);
		cr_assert_leq(used, len);
		if (rq.state == HTTP_PARSE_DONE) {
			if (rq.status == 0) {
				cr_assert_eq(rq.path[0], '/');
				cr_assert_leq(rq.content_length, HTTP_BODY_MAX);
				cr_assert_not(rq.has_te);
			} else {
				cr_assert_geq(rq.status, 400);
				cr_assert_not_null(rq.reason);
				cr_assert_str_neq(http_status_text(rq.status),
						  "Unknown");
			}
		}
		free(exact);
	}
}
