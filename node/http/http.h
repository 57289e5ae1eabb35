/* The node's HTTP/1.1 server (RFC 9112) for the web role: a strict request
 * parser fed one line at a time (http_parse.c), the connection's state
 * machine with keep-alive, pipelining in order, bounded bodies and
 * asynchronous Redis calls (http_session.c), and the API's route table
 * (http_api.c). Every response carries Content-Length. */
#ifndef NODE_HTTP_H
#define NODE_HTTP_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/redis.h"
#include "../../common/stream.h"
#include "../../common/strbuf.h"
#include "../config/directory.h"
#include "../store/maildir.h"

#define HTTP_LINE_MAX 8192	/* request line or one header line */
#define HTTP_TARGET_MAX 2048	/* request-target; longer: 414 */
#define HTTP_HEADERS_MAX 64	/* header fields; more: 431 */
#define HTTP_HEADER_BYTES 16384 /* header section; more: 431 */
#define HTTP_DISCARD_MAX 65536	/* bad request skipped before a close */
#define HTTP_BODY_MAX 65536	/* request body; more: 413 */
#define HTTP_SEND_BODY_MAX (48 * 1024 * 1024) /* POST /api/send's body */
#define HTTP_ETAG_MAX 80      /* If-None-Match kept; longer: "" */
#define HTTP_IDLE_TIMEOUT 60  /* seconds between requests */
#define HTTP_TOKEN_HEX 64     /* session token: 32 random bytes */
#define HTTP_SESSION_TTL 1800 /* seconds, refreshed on each use */
#define HTTP_PASSWORD_MAX 1024
#define HTTP_ORIGIN_MAX 255 /* Host and Origin values kept; longer: "" */
#define HTTP_LIST_MAX (8 * 1024 * 1024) /* a JSON answer */

enum http_method { HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_DELETE, HTTP_OTHER };

enum http_parse_state {
	HTTP_PARSE_LINE,    /* waiting for the request line */
	HTTP_PARSE_HEADERS, /* reading header fields */
	HTTP_PARSE_DONE,    /* the empty line came: see status */
};

enum http_parse_result { HTTP_PARSE_MORE, HTTP_PARSE_END };

/* One request's head, as parsed so far. */
struct http_request {
	enum http_parse_state state;
	int status;	    /* 0: good so far; else the error to answer */
	const char *reason; /* why status, for the answer's body */
	bool must_close;    /* the input cannot be framed any more */
	int empty_lines;    /* before the request line */

	enum http_method method;
	char method_name[16];
	char target[HTTP_TARGET_MAX + 1];
	char *path;  /* in target */
	char *query; /* in target, after '?'; NULL: none */
	int minor;   /* HTTP/1.minor */

	int nheaders;
	size_t header_bytes;
	int hosts;
	bool has_length, has_te, framing_seen;
	size_t content_length;
	bool conn_close;
	bool expect_continue;
	bool json_body; /* Content-Type application/json (or none given) */
	bool has_content_type;
	char token[HTTP_TOKEN_HEX + 1]; /* Bearer or session cookie; "" */
	bool has_origin;
	char origin[HTTP_ORIGIN_MAX + 1]; /* Origin: as sent; "" if too long */
	char host[HTTP_ORIGIN_MAX + 1];	  /* the Host field; "" if too long */
	char if_none_match[HTTP_ETAG_MAX + 1]; /* as sent; "" */
};

/* http_parse.c */
void http_request_reset(struct http_request *rq);
/* Feeds one line of the head (terminator removed; crlf and toolong as
 * stream's on_line gives them). Returns HTTP_PARSE_END when the head is
 * complete: then rq->status is 0 for a good request or the status to
 * answer, and rq->must_close says the connection cannot go on. */
enum http_parse_result http_parse_line(struct http_request *rq,
				       const char *line, size_t len, bool crlf,
				       bool toolong);
/* The largest body the request takes: HTTP_SEND_BODY_MAX for POST
 * /api/send with a session token (a message with its attachments), else
 * HTTP_BODY_MAX. */
size_t http_body_limit(const struct http_request *rq);
/* After a complete head: may the connection carry another request? */
bool http_request_keepalive(const struct http_request *rq);
/* The value of query parameter name, percent-decoded ('+' is a space),
 * into out. Returns 1 when found, 0 when absent, -1 when the query or the
 * value is bad (bad escape, NUL, too long, given twice). */
int http_query_get(const char *query, const char *name, char *out,
		   size_t outlen);
/* "Not Found" for 404, ... */
const char *http_status_text(int status);

struct mailnode;
struct http_session;
struct uid_lease;

/* A Redis answer for the session that asked (never called for a closed
 * session): reply NULL on timeout or when Redis is away. */
typedef void (*http_redis_cb)(struct http_session *s, redisReply *reply);

enum http_state {
	HTTP_READ_HEAD, /* lines of the next request */
	HTTP_READ_BODY, /* Content-Length bytes */
	HTTP_BUSY,	/* a handler waits on Redis or a password check,
			   input paused */
	HTTP_CLOSING,	/* the last answer is going out */
};

struct http_session {
	struct mailnode *mn;
	struct stream *st;
	uint64_t id; /* registry key for asynchronous answers */
	char logid[24];
	char peerhost[64];
	enum http_state state;
	struct http_request rq;
	bool request_started;

	char *body; /* bodycap bytes: HTTP_BODY_MAX + 1, allocated on the
		       first body, or one larger body's, freed after it */
	size_t bodylen, bodycap;

	uint64_t redis_req; /* in flight; 0: none */
	http_redis_cb redis_cb;
	uint64_t auth_job;     /* a login attempt (auth_login.h); 0: none */
	struct uid_lease *uid; /* a listing's UID lease (uid_lease.h) */
	struct maildir_counter *uid_ctr; /* settled: the route runs again */
	char uid_mailbox[MAILDIR_MBOX_MAX + 8]; /* whose lease uid is */

	/* the API's per-request state */
	int route;
	char user[DIR_ADDR_MAX]; /* the session's or the login's user */
	char token[HTTP_TOKEN_HEX + 1];
	char password[HTTP_PASSWORD_MAX];
	bool head_only; /* HEAD: the body is not sent */
	bool response_started;
	bool close_after; /* the connection ends after this answer */
	int status;	  /* of the answer, for the log */
};

/* http_session.c: answers. A response is a head (status, type, extra
 * header lines each ending in CRLF, and the body's length), then exactly
 * that many body bytes, then http_response_end(), which readies the
 * session for the next request (or closes it). */
void http_response_head(struct http_session *s, int status, const char *ctype,
			const char *extra, size_t length);
void http_response_body(struct http_session *s, const void *data, size_t len);
void http_response_end(struct http_session *s);
/* All three at once. */
void http_respond(struct http_session *s, int status, const char *ctype,
		  const char *extra, const void *body, size_t len);
/* {"error":"msg"} with status. */
void http_respond_error(struct http_session *s, int status, const char *msg);
/* After a route ran (at dispatch, or on from a Redis reply, a password
 * check or a UID lease): one that neither answered nor waits on anything
 * gets a 500, logged. */
void http_route_done(struct http_session *s);
/* Sends a Redis command for s and pauses its input until cb has run.
 * Returns 0, or -1 when Redis is away (cb will not run). */
int http_redis(struct http_session *s, http_redis_cb cb, int argc,
	       const char **argv, const size_t *argvlen);

/* http_assets.c: GET / and the webmail's files (webmail/, embedded at
 * build time). Returns true when the path is one of them (answered). */
bool http_assets_serve(struct http_session *s);

/* http_api.c: runs the request whose head and body the session holds;
 * the route answers now or after its Redis calls. */
void http_api_dispatch(struct http_session *s);

#endif
