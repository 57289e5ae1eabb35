/* The HTTP/1.1 request head, parsed strictly (RFC 9112): request line,
 * header fields, the few fields the node acts on. A bad head is not
 * answered at once: the rest of it is read (within bounds) so that the
 * answer comes at the right place and the connection can go on. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define HTTP_MAX_EMPTY_LINES 4 /* CRLFs taken before a request line */

void
http_request_reset(struct http_request *rq)
{
	memset(rq, 0, sizeof(*rq));
	rq->state = HTTP_PARSE_LINE;
	rq->json_body = true;
	rq->minor = 1; /* until a request line says otherwise */
}

/* Records the first error only: it is the one answered. */
static void
http_parse_error(struct http_request *rq, int status, const char *reason)
{
	if (rq->status != 0)
		return;
	rq->status = status;
	rq->reason = reason;
}

/* RFC 9110 5.6.2 tchar. */
static bool
http_tchar(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
http_is_token(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!http_tchar((unsigned char)s[i]))
			return false;
	return true;
}

static bool
http_hex(unsigned char c)
{
	return isxdigit(c) != 0;
}

/* origin-form (RFC 9112 3.2.1): absolute-path [ "?" query ], pchar,
 * '/', '?' and well-formed percent escapes only. */
static bool
http_valid_target(const char *t, size_t len)
{
	static const char extra[] = "-._~!$&'()*+,;=:@/?";
	if (len == 0 || t[0] != '/')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)t[i];
		if (c == '%') {
			if (i + 2 >= len)
				return false;
			if (!http_hex((unsigned char)t[i + 1]) ||
			    !http_hex((unsigned char)t[i + 2]))
				return false;
			i += 2;
			continue;
		}
		if (!isalnum(c) && (c == 0 || strchr(extra, c) == NULL))
			return false;
	}
	return true;
}

static void
http_parse_method(struct http_request *rq, const char *m, size_t len)
{
	memcpy(rq->method_name, m, len);
	rq->method_name[len] = '\0';
	if (strcmp(rq->method_name, "GET") == 0)
		rq->method = HTTP_GET;
	else if (strcmp(rq->method_name, "HEAD") == 0)
		rq->method = HTTP_HEAD;
	else if (strcmp(rq->method_name, "POST") == 0)
		rq->method = HTTP_POST;
	else if (strcmp(rq->method_name, "DELETE") == 0)
		rq->method = HTTP_DELETE;
	else
		rq->method = HTTP_OTHER;
}

/* method SP request-target SP HTTP-version, single spaces, nothing else.
 */
static void
http_parse_request_line(struct http_request *rq, const char *line, size_t len)
{
	const char *sp1 = memchr(line, ' ', len);
	if (sp1 == NULL) {
		http_parse_error(rq, 400, "malformed request line");
		return;
	}
	size_t mlen = (size_t)(sp1 - line);
	const char *t = sp1 + 1;
	const char *sp2 = memchr(t, ' ', len - mlen - 1);
	if (sp2 == NULL) {
		http_parse_error(rq, 400, "malformed request line");
		return;
	}
	size_t tlen = (size_t)(sp2 - t);
	const char *v = sp2 + 1;
	size_t vlen = len - mlen - tlen - 2;

	if (!http_is_token(line, mlen)) {
		http_parse_error(rq, 400, "malformed method");
		return;
	}
	if (mlen >= sizeof(rq->method_name)) {
		http_parse_error(rq, 501, "method not implemented");
		return;
	}
	http_parse_method(rq, line, mlen);

	/* Version first: an HTTP/2 preface or garbage is not a URI error. */
	if (vlen != 8 || memcmp(v, "HTTP/", 5) != 0 || !isdigit(v[5]) ||
	    v[6] != '.' || !isdigit(v[7])) {
		http_parse_error(rq, 400, "malformed HTTP version");
		return;
	}
	if (v[5] != '1') {
		http_parse_error(rq, 505, "HTTP version not supported");
		return;
	}
	rq->minor = v[7] - '0';
	if (rq->minor > 1)
		rq->minor = 1; /* a later 1.x is answered as 1.1 */

	if (tlen > HTTP_TARGET_MAX) {
		http_parse_error(rq, 414, "request target too long");
		return;
	}
	if (!http_valid_target(t, tlen)) {
		http_parse_error(rq, 400, "malformed request target");
		return;
	}
	memcpy(rq->target, t, tlen);
	rq->target[tlen] = '\0';
	rq->path = rq->target;
	char *q = strchr(rq->target, '?');
	if (q) {
		*q = '\0';
		rq->query = q + 1;
	}
}

/* A decimal Content-Length: digits only, no sign, no list. */
static void
http_header_content_length(struct http_request *rq, const char *v, size_t len)
{
	size_t n = 0;
	if (len == 0) {
		http_parse_error(rq, 400, "bad Content-Length");
		rq->must_close = true;
		return;
	}
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)v[i]) ||
		    n > HTTP_SEND_BODY_MAX * 10UL) {
			http_parse_error(rq, 400, "bad Content-Length");
			rq->must_close = true;
			return;
		}
		n = n * 10 + (size_t)(v[i] - '0');
	}
	if (rq->has_length && rq->content_length != n) {
		http_parse_error(rq, 400, "conflicting Content-Length");
		rq->must_close = true;
		return;
	}
	rq->has_length = true;
	rq->content_length = n;
}

/* Connection: a comma-separated token list; "close" ends after the
 * answer. */
static void
http_header_connection(struct http_request *rq, const char *v, size_t len)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t start = i;
		while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		if (i - start == 5 && strncasecmp(v + start, "close", 5) == 0)
			rq->conn_close = true;
	}
}

static bool
http_token_hex(const char *v, size_t len)
{
	if (len != HTTP_TOKEN_HEX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)v[i]) &&
		    !(v[i] >= 'a' && v[i] <= 'f'))
			return false;
	return true;
}

static void
http_take_token(struct http_request *rq, const char *v, size_t len)
{
	if (!http_token_hex(v, len))
		return;
	memcpy(rq->token, v, len);
	rq->token[len] = '\0';
}

/* Authorization: Bearer TOKEN (RFC 6750). It wins over the cookie; a
 * malformed one just leaves no session (401 where one is needed). */
static void
http_header_authorization(struct http_request *rq, const char *v, size_t len)
{
	if (len < 7 || strncasecmp(v, "Bearer ", 7) != 0)
		return;
	v += 7;
	len -= 7;
	while (len > 0 && *v == ' ') {
		v++;
		len--;
	}
	rq->token[0] = '\0';
	http_take_token(rq, v, len);
}

/* Cookie: name=value pairs separated by "; " (RFC 6265 4.2.1); the first
 * well-formed "session" is ours, unless a Bearer token came. */
static void
http_header_cookie(struct http_request *rq, const char *v, size_t len,
		   bool bearer)
{
	size_t i = 0;
	if (bearer || rq->token[0])
		return;
	while (i < len) {
		size_t start = i;
		while (i < len && v[i] != ';')
			i++;
		const char *pair = v + start;
		size_t plen = i - start;
		while (plen > 0 && *pair == ' ') {
			pair++;
			plen--;
		}
		if (plen > 8 && memcmp(pair, "session=", 8) == 0) {
			http_take_token(rq, pair + 8, plen - 8);
			if (rq->token[0])
				return;
		}
		i++;
	}
}

static void
http_header_expect(struct http_request *rq, const char *v, size_t len)
{
	if (len == 12 && strncasecmp(v, "100-continue", 12) == 0)
		rq->expect_continue = true;
	else
		http_parse_error(rq, 417, "expectation not supported");
}

static void
http_header_content_type(struct http_request *rq, const char *v, size_t len)
{
	static const char json[] = "application/json";
	size_t n = sizeof(json) - 1;
	rq->has_content_type = true;
	rq->json_body = len >= n && strncasecmp(v, json, n) == 0 &&
			(len == n || v[n] == ';' || v[n] == ' ');
}

/* Keeps a field's value when it fits, else leaves "". */
static void
http_keep_value(char *out, size_t outlen, const char *v, size_t len)
{
	if (len < outlen) {
		memcpy(out, v, len);
		out[len] = '\0';
	}
}

/* name ":" OWS value OWS; no space before the colon, no obs-fold, no
 * control bytes but HTAB in the value. */
static void
http_parse_header(struct http_request *rq, const char *line, size_t len)
{
	bool bearer_seen = rq->token[0] != '\0';
	if (line[0] == ' ' || line[0] == '\t') {
		http_parse_error(rq, 400, "obsolete line folding");
		return;
	}
	const char *colon = memchr(line, ':', len);
	if (colon == NULL || !http_is_token(line, (size_t)(colon - line))) {
		http_parse_error(rq, 400, "malformed header field");
		return;
	}
	size_t nlen = (size_t)(colon - line);
	const char *v = colon + 1;
	size_t vlen = len - nlen - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
	for (size_t i = 0; i < vlen; i++) {
		unsigned char c = (unsigned char)v[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			http_parse_error(rq, 400, "control byte in header");
			return;
		}
	}
#define NAME_IS(s) (nlen == sizeof(s) - 1 && strncasecmp(line, s, nlen) == 0)
	if (NAME_IS("content-length")) {
		rq->framing_seen = true;
		http_header_content_length(rq, v, vlen);
	} else if (NAME_IS("transfer-encoding")) {
		rq->framing_seen = true;
		rq->has_te = true;
	} else if (NAME_IS("host")) {
		if (rq->hosts++ == 0)
			http_keep_value(rq->host, sizeof(rq->host), v, vlen);
	} else if (NAME_IS("origin")) {
		if (rq->has_origin) /* twice: matches nothing */
			rq->origin[0] = '\0';
		else
			http_keep_value(rq->origin, sizeof(rq->origin), v,
					vlen);
		rq->has_origin = true;
	} else if (NAME_IS("connection")) {
		http_header_connection(rq, v, vlen);
	} else if (NAME_IS("authorization")) {
		http_header_authorization(rq, v, vlen);
	} else if (NAME_IS("cookie")) {
		http_header_cookie(rq, v, vlen, bearer_seen);
	} else if (NAME_IS("expect")) {
		http_header_expect(rq, v, vlen);
	} else if (NAME_IS("content-type")) {
		http_header_content_type(rq, v, vlen);
	} else if (NAME_IS("if-none-match")) {
		http_keep_value(rq->if_none_match, sizeof(rq->if_none_match), v,
				vlen);
	}
#undef NAME_IS
}

/* In a head already refused, only what framing needs is looked at. */
static void
http_skim_header(struct http_request *rq, const char *line, size_t len)
{
	if ((len >= 15 && strncasecmp(line, "content-length:", 15) == 0) ||
	    (len >= 18 && strncasecmp(line, "transfer-encoding:", 18) == 0))
		rq->framing_seen = true;
	if (len >= 11 && strncasecmp(line, "connection:", 11) == 0)
		http_header_connection(rq, line + 11, len - 11);
}

size_t
http_body_limit(const struct http_request *rq)
{
	/* only with a session token: an anonymous client gets the small
	 * limit (whether the token is good is known once the body is in) */
	bool send = rq->method == HTTP_POST && rq->path != NULL &&
		    strcmp(rq->path, "/api/send") == 0 && rq->token[0] != '\0';
	return send ? HTTP_SEND_BODY_MAX : HTTP_BODY_MAX;
}

static void http_parse_check(struct http_request *rq);

/* The empty line: checks that need the whole head. */
static void
http_parse_end(struct http_request *rq)
{
	rq->state = HTTP_PARSE_DONE;
	if (rq->status == 0)
		http_parse_check(rq);
	/* What follows a refused head cannot be framed if it announced a
	 * body. */
	if (rq->status != 0 && rq->framing_seen)
		rq->must_close = true;
}

static void
http_parse_check(struct http_request *rq)
{
	if (rq->has_te) {
		rq->must_close = true;
		if (rq->has_length)
			http_parse_error(rq, 400,
					 "both Transfer-Encoding and "
					 "Content-Length");
		else
			http_parse_error(rq, 411,
					 "a Content-Length is required");
		return;
	}
	if (rq->minor == 1 && rq->hosts != 1) {
		http_parse_error(rq, 400,
				 rq->hosts ? "more than one Host"
					   : "no Host header");
		return;
	}
	if (rq->has_length && rq->content_length > http_body_limit(rq)) {
		rq->must_close = true;
		http_parse_error(rq, 413, "request body too large");
	}
}

enum http_parse_result
http_parse_line(struct http_request *rq, const char *line, size_t len,
		bool crlf, bool toolong)
{
	if (rq->state == HTTP_PARSE_DONE)
		return HTTP_PARSE_END;
	if (rq->state == HTTP_PARSE_LINE && len == 0 && !toolong) {
		if (++rq->empty_lines > HTTP_MAX_EMPTY_LINES) {
			http_parse_error(rq, 400, "no request line");
			rq->must_close = true;
			rq->state = HTTP_PARSE_DONE;
			return HTTP_PARSE_END;
		}
		return HTTP_PARSE_MORE;
	}

	rq->header_bytes += len + 2;
	if (rq->header_bytes > HTTP_HEADER_BYTES + HTTP_DISCARD_MAX) {
		/* Too much to skip: answer and close. */
		http_parse_error(rq, 431, "request header too large");
		rq->must_close = true;
		rq->state = HTTP_PARSE_DONE;
		return HTTP_PARSE_END;
	}
	bool bad_end = !crlf || memchr(line, '\0', len) != NULL ||
		       memchr(line, '\r', len) != NULL;

	if (rq->state == HTTP_PARSE_LINE) {
		rq->state = HTTP_PARSE_HEADERS;
		if (toolong)
			http_parse_error(rq, 414, "request line too long");
		else if (bad_end)
			http_parse_error(rq, 400, "bad line ending");
		else
			http_parse_request_line(rq, line, len);
		return HTTP_PARSE_MORE;
	}

	if (len == 0 && !toolong) {
		if (!crlf)
			http_parse_error(rq, 400, "bad line ending");
		http_parse_end(rq);
		return HTTP_PARSE_END;
	}
	if (rq->status != 0) {
		http_skim_header(rq, line, len);
		return HTTP_PARSE_MORE;
	}
	if (toolong || ++rq->nheaders > HTTP_HEADERS_MAX ||
	    rq->header_bytes > HTTP_HEADER_BYTES) {
		http_parse_error(rq, 431, "request header too large");
		http_skim_header(rq, line, len);
		return HTTP_PARSE_MORE;
	}
	if (bad_end) {
		http_parse_error(rq, 400, "bad line ending");
		return HTTP_PARSE_MORE;
	}
	http_parse_header(rq, line, len);
	return HTTP_PARSE_MORE;
}

bool
http_request_keepalive(const struct http_request *rq)
{
	return !rq->must_close && !rq->conn_close && rq->minor >= 1;
}

static int
http_unhex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	return (tolower(c) - 'a') + 10;
}

/* Decodes len bytes of a query component into out. Returns 0 or -1. */
static int
http_query_decode(const char *s, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= len)
				return -1;
			if (!http_hex((unsigned char)s[i + 1]) ||
			    !http_hex((unsigned char)s[i + 2]))
				return -1;
			c = (unsigned char)(http_unhex(
						(unsigned char)s[i + 1]) *
						16 +
					    http_unhex(
						(unsigned char)s[i + 2]));
			i += 2;
			if (c == 0)
				return -1;
		} else if (c == '+')
			c = ' ';
		if (o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

int
http_query_get(const char *query, const char *name, char *out, size_t outlen)
{
	int found = 0;
	size_t nlen = strlen(name);
	if (query == NULL)
		return 0;
	const char *p = query;
	while (*p) {
		const char *amp = strchr(p, '&');
		size_t plen = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', plen);
		size_t klen = eq ? (size_t)(eq - p) : plen;
		if (klen == nlen && memcmp(p, name, nlen) == 0) {
			if (found)
				return -1;
			found = 1;
			const char *v = eq ? eq + 1 : p + plen;
			size_t vlen = (size_t)(p + plen - v);
			if (http_query_decode(v, vlen, out, outlen) < 0)
				return -1;
		}
		if (amp == NULL)
			break;
		p = amp + 1;
	}
	return found;
}

const char *
http_status_text(int status)
{
	static const struct {
		int status;
		const char *text;
	} texts[] = {
	    {100, "Continue"},
	    {200, "OK"},
	    {304, "Not Modified"},
	    {400, "Bad Request"},
	    {401, "Unauthorized"},
	    {403, "Forbidden"},
	    {404, "Not Found"},
	    {405, "Method Not Allowed"},
	    {408, "Request Timeout"},
	    {411, "Length Required"},
	    {413, "Content Too Large"},
	    {414, "URI Too Long"},
	    {415, "Unsupported Media Type"},
	    {417, "Expectation Failed"},
	    {429, "Too Many Requests"},
	    {431, "Request Header Fields Too Large"},
	    {500, "Internal Server Error"},
	    {501, "Not Implemented"},
	    {503, "Service Unavailable"},
	    {505, "HTTP Version Not Supported"},
	    {507, "Insufficient Storage"},
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(*texts); i++)
		if (texts[i].status == status)
			return texts[i].text;
	return "Unknown";
}
