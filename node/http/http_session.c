/* An HTTP connection's life: the head line by line, the body as raw bytes,
 * one request at a time (pipelined ones wait in the stream's buffer, so
 * answers go out in order), keep-alive, timeouts, and the Redis calls of
 * the API, whose answers find their session through a registry of ids:
 * a closed session is simply not found (and its call is cancelled). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "http.h"
#include "../mailnode.h"
#include "../store/uid_lease.h"

#define HTTP_HEAD_MAX 4096 /* our response heads */

/* Open sessions by id: slot index in the low 32 bits, a generation in
 * the high ones, so an id is never reused while the process lives. */
struct http_registry {
	struct http_session **slot;
	uint32_t *free; /* a stack of unused slots */
	size_t nslots, nfree;
	uint32_t gen;
};

static struct http_registry http_reg;

static int
http_register(struct http_session *s)
{
	struct http_registry *r = &http_reg;
	uint32_t i;
	if (r->nfree > 0) {
		i = r->free[--r->nfree];
	} else {
		size_t n = r->nslots ? r->nslots * 2 : 64;
		if (n > UINT32_MAX)
			return -1;
		struct http_session **slot =
		    realloc(r->slot, n * sizeof(*slot));
		if (slot == NULL)
			return -1;
		r->slot = slot;
		uint32_t *fr = realloc(r->free, n * sizeof(*fr));
		if (fr == NULL)
			return -1;
		r->free = fr;
		for (size_t k = n; k > r->nslots + 1; k--)
			r->free[r->nfree++] = (uint32_t)(k - 1);
		i = (uint32_t)r->nslots;
		for (size_t k = r->nslots; k < n; k++)
			r->slot[k] = NULL;
		r->nslots = n;
	}
	if (++r->gen == 0)
		r->gen = 1;
	r->slot[i] = s;
	s->id = ((uint64_t)r->gen << 32) | i;
	return 0;
}

static void
http_unregister(struct http_session *s)
{
	struct http_registry *r = &http_reg;
	uint32_t i = (uint32_t)(s->id & 0xffffffffu);
	if (i < r->nslots && r->slot[i] == s) {
		r->slot[i] = NULL;
		r->free[r->nfree++] = i;
	}
	s->id = 0;
}

static struct http_session *
http_lookup(uint64_t id)
{
	struct http_registry *r = &http_reg;
	uint32_t i = (uint32_t)(id & 0xffffffffu);
	if (i >= r->nslots || r->slot[i] == NULL || r->slot[i]->id != id)
		return NULL;
	return r->slot[i];
}

/* mailnode is stopping: sessions waiting for their next request close
 * now; the others close after their answer (http_closing_after). */
void
http_sessions_stop(void)
{
	struct http_registry *r = &http_reg;
	for (size_t i = 0; i < r->nslots; i++) {
		struct http_session *s = r->slot[i];
		if (s && s->state == HTTP_READ_HEAD && !s->request_started)
			stream_close(s->st, "node stopping");
	}
}

/* ---- answers ---- */

static bool
http_closing_after(struct http_session *s)
{
	return s->close_after || !http_request_keepalive(&s->rq) ||
	       s->mn->stopping;
}

/* The next request must come whole within http_request_timeout_s of its
 * first byte (off: the session works on one, or answers). */
static void
http_request_deadline(struct http_session *s, bool on)
{
	stream_set_deadline(s->st, on ? s->mn->cfg->http_request_timeout_s : 0,
			    true);
}

void
http_response_head(struct http_session *s, int status, const char *ctype,
		   const char *extra, size_t length)
{
	char head[HTTP_HEAD_MAX], date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	s->close_after = http_closing_after(s);
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\n"
			 "Date: %s\r\n"
			 "Server: mailnode\r\n"
			 "X-Served-By: %s\r\n"
			 "%s%s%s"
			 "Content-Length: %zu\r\n"
			 "%s"
			 "%s"
			 "%s"
			 "\r\n",
			 status, http_status_text(status), date,
			 s->mn->cfg->name, ctype ? "Content-Type: " : "",
			 ctype ? ctype : "", ctype ? "\r\n" : "", length,
			 extra && strstr(extra, "Cache-Control:")
			     ? ""
			     : "Cache-Control: no-store\r\n",
			 s->close_after ? "Connection: close\r\n" : "",
			 extra ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		fatal("%s: response head over %d bytes", __func__,
		      HTTP_HEAD_MAX);
	s->response_started = true;
	s->status = status;
	stream_write(s->st, head, (size_t)n);
}

void
http_response_body(struct http_session *s, const void *data, size_t len)
{
	if (!s->head_only)
		stream_write(s->st, data, len);
}

/* Forgets the request; input goes on with the next one. */
static void
http_request_next(struct http_session *s)
{
	explicit_bzero(s->password, sizeof(s->password));
	http_request_reset(&s->rq);
	s->request_started = false;
	s->bodylen = 0;
	if (s->bodycap > HTTP_BODY_MAX + 1) { /* one large body: not kept */
		explicit_bzero(s->body, s->bodycap);
		free(s->body);
		s->body = NULL;
		s->bodycap = 0;
	}
	s->user[0] = s->token[0] = '\0';
	s->route = -1;
	s->head_only = s->response_started = false;
	s->state = HTTP_READ_HEAD;
	http_request_deadline(s, true);
	stream_resume(s->st);
}

void
http_response_end(struct http_session *s)
{
	log_info("http %s: %s \"%s %s\" %d", s->logid, s->peerhost,
		 s->rq.method_name[0] ? s->rq.method_name : "-",
		 s->rq.path ? s->rq.path : "-", s->status);
	if (s->close_after) {
		s->state = HTTP_CLOSING;
		http_request_deadline(s, false);
		stream_close(s->st, "done");
		return;
	}
	http_request_next(s);
}

void
http_respond(struct http_session *s, int status, const char *ctype,
	     const char *extra, const void *body, size_t len)
{
	http_response_head(s, status, ctype, extra, len);
	http_response_body(s, body, len);
	http_response_end(s);
}

void
http_respond_error(struct http_session *s, int status, const char *msg)
{
	struct strbuf sb;
	const char *extra = NULL;
	strbuf_init(&sb, 1024);
	if (strbuf_appends(&sb, "{\"error\":") < 0 ||
	    strbuf_append_json(&sb, msg) < 0 || strbuf_appends(&sb, "}") < 0)
		fatal("%s: error body too long", __func__);
	if (status == 401)
		extra = "WWW-Authenticate: Bearer\r\n";
	else if (status == 503)
		extra = "Retry-After: 1\r\n";
	http_respond(s, status, "application/json", extra, strbuf_str(&sb),
		     sb.len);
	strbuf_free(&sb);
}

/* ---- Redis ---- */

/* A route waits on Redis, a password check or a UID lease: it answers
 * later. */
static bool
http_waiting(const struct http_session *s)
{
	return s->redis_req != 0 || s->auth_job != 0 || s->uid != NULL;
}

void
http_route_done(struct http_session *s)
{
	if (s->state == HTTP_BUSY && !http_waiting(s) && !s->response_started) {
		log_err("http %s: route left the request unanswered", s->logid);
		http_respond_error(s, 500, "internal error");
	}
}

static void
http_redis_done(struct redis *r, redisReply *reply, void *arg)
{
	(void)r;
	struct http_session *s = http_lookup((uint64_t)(uintptr_t)arg);
	if (s == NULL)
		return; /* closed meanwhile */
	http_redis_cb cb = s->redis_cb;
	s->redis_req = 0;
	s->redis_cb = NULL;
	if (cb == NULL)
		return;
	cb(s, reply);
	http_route_done(s);
}

int
http_redis(struct http_session *s, http_redis_cb cb, int argc,
	   const char **argv, const size_t *argvlen)
{
	if (s->redis_req != 0)
		fatal("%s: a second Redis call in flight", __func__);
	s->redis_cb = cb;
	uint64_t req =
	    redis_commandargv(s->mn->redis, http_redis_done,
			      (void *)(uintptr_t)s->id, argc, argv, argvlen);
	if (req == 0) {
		s->redis_cb = NULL;
		return -1;
	}
	s->redis_req = req;
	s->state = HTTP_BUSY;
	stream_pause(s->st);
	return 0;
}

/* ---- the request ---- */

static void
http_dispatch(struct http_session *s)
{
	http_request_deadline(s, false);
	s->state = HTTP_BUSY;
	s->head_only = s->rq.method == HTTP_HEAD;
	http_api_dispatch(s);
	http_route_done(s);
}

/* The head is complete: answer a bad one, read the body of a good one. */
static void
http_head_done(struct http_session *s)
{
	struct http_request *rq = &s->rq;
	if (rq->status != 0) {
		s->state = HTTP_BUSY;
		http_request_deadline(s, false);
		log_debug("http %s: %d: %s", s->logid, rq->status, rq->reason);
		http_respond_error(s, rq->status, rq->reason);
		return;
	}
	if (!rq->has_length || rq->content_length == 0) {
		http_dispatch(s);
		return;
	}
	size_t cap = rq->content_length > HTTP_BODY_MAX ? rq->content_length + 1
							: HTTP_BODY_MAX + 1;
	if (s->bodycap < cap) {
		if (s->body)
			explicit_bzero(s->body, s->bodycap);
		free(s->body);
		s->bodycap = 0;
		if ((s->body = malloc(cap)) == NULL) {
			s->close_after = true;
			s->state = HTTP_BUSY;
			http_respond_error(s, 503, "out of memory");
			return;
		}
		s->bodycap = cap;
	}
	if (rq->expect_continue)
		stream_printf(s->st, "HTTP/1.1 100 Continue\r\n\r\n");
	s->bodylen = 0;
	s->state = HTTP_READ_BODY;
	stream_read_bytes(s->st, rq->content_length);
}

static void
http_on_line(void *arg, char *line, size_t len, bool crlf, bool toolong)
{
	struct http_session *s = arg;
	if (s->state != HTTP_READ_HEAD)
		return; /* cannot happen: input waits while we are busy */
	s->request_started = true;
	if (http_parse_line(&s->rq, line, len, crlf, toolong) == HTTP_PARSE_END)
		http_head_done(s);
}

static void
http_on_bytes(void *arg, char *data, size_t len, size_t left)
{
	struct http_session *s = arg;
	if (s->state != HTTP_READ_BODY)
		return;
	if (s->bodylen + len >= s->bodycap)
		fatal("%s: body past its Content-Length", __func__);
	memcpy(s->body + s->bodylen, data, len);
	s->bodylen += len;
	if (left == 0) {
		s->body[s->bodylen] = '\0';
		http_dispatch(s);
	}
}

static void
http_on_ready(void *arg)
{
	struct http_session *s = arg;
	addr_host(stream_peer(s->st), s->peerhost, sizeof(s->peerhost));
}

/* Idle: between requests just close; inside one, 408 first. */
static void
http_on_timeout(void *arg)
{
	struct http_session *s = arg;
	if (s->request_started &&
	    (s->state == HTTP_READ_HEAD || s->state == HTTP_READ_BODY)) {
		s->close_after = true;
		s->state = HTTP_BUSY;
		http_respond_error(s, 408, "request timeout");
	}
}

/* A request came in part but not whole within its deadline. */
static void
http_on_deadline(void *arg)
{
	struct http_session *s = arg;
	if (s->state != HTTP_READ_HEAD && s->state != HTTP_READ_BODY)
		return;
	s->close_after = true;
	s->state = HTTP_BUSY;
	http_respond_error(s, 408, "request timeout");
}

/* Over a connection cap: 503 with Retry-After, then the close. */
static void
http_on_refused(void *arg)
{
	struct http_session *s = arg;
	addr_host(stream_peer(s->st), s->peerhost, sizeof(s->peerhost));
	s->close_after = true;
	s->state = HTTP_BUSY;
	http_respond_error(s, 503, "too many connections, try again later");
}

static void
http_on_close(void *arg, const char *why)
{
	struct http_session *s = arg;
	log_debug("http %s: closed: %s", s->logid, why);
	if (s->redis_req)
		redis_cancel(s->mn->redis, s->redis_req);
	auth_login_cancel(s->mn->login, s->auth_job);
	uid_lease_done(s->uid);
	http_unregister(s);
	explicit_bzero(s->password, sizeof(s->password));
	if (s->body) {
		explicit_bzero(s->body, s->bodycap);
		free(s->body);
	}
	mailnode_session_closed(s->mn, ROLE_HTTP);
	free(s);
}

static const struct stream_ops http_stream_ops = {
    .on_ready = http_on_ready,
    .on_line = http_on_line,
    .on_close = http_on_close,
    .on_timeout = http_on_timeout,
    .on_bytes = http_on_bytes,
    .on_deadline = http_on_deadline,
    .on_refused = http_on_refused,
};

void
http_session_start(struct mailnode *mn, int fd, const struct sockaddr *peer,
		   socklen_t peerlen)
{
	static unsigned long seq;
	struct http_session *s = calloc(1, sizeof(*s));
	if (s == NULL || http_register(s) < 0) {
		log_err("%s: out of memory", __func__);
		free(s);
		close(fd);
		return;
	}
	s->mn = mn;
	s->route = -1;
	s->state = HTTP_READ_HEAD;
	http_request_reset(&s->rq);
	snprintf(s->logid, sizeof(s->logid), "%08lX%04lX",
		 (unsigned long)time(NULL), ++seq & 0xffff);
	addr_host(peer, s->peerhost, sizeof(s->peerhost));
	mailnode_session_opened(mn, ROLE_HTTP);

	struct stream_opts o = mailnode_stream_opts(
	    mn, ROLE_HTTP, HTTP_LINE_MAX, HTTP_IDLE_TIMEOUT);
	/* A whole message goes out in one answer. */
	size_t need = mn->cfg->msg_max + 1024 * 1024;
	if (need < HTTP_LIST_MAX + 1024 * 1024)
		need = HTTP_LIST_MAX + 1024 * 1024;
	if (o.max_output < need)
		o.max_output = need;
	s->st =
	    stream_new(mn->loop, fd, peer, peerlen, &o, &http_stream_ops, s);
	if (s->st == NULL) {
		mailnode_session_closed(mn, ROLE_HTTP);
		http_unregister(s);
		free(s);
		return;
	}
	http_request_deadline(s, true);
}
