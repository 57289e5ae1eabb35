/* The Prometheus endpoint (metrics_http.h): the request head read by
 * serve.c, its request line checked, the route's body rendered and sent. */
#include "metrics_http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "log.h"
#include "serve.h"

#define METRICS_HTTP_CTYPE "text/plain; version=0.0.4"

struct metrics_http {
	const struct metrics_http_route *routes;
	size_t nroutes;
	struct metrics_http_route own; /* metrics_http_start()'s one route */
	void *arg;
	struct serve *srv;
};

int
metrics_http_head(struct strbuf *sb, const char *name, const char *type,
		  const char *help)
{
	return strbuf_appendf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help,
			      name, type);
}

void
metrics_http_label(char *dst, size_t len, const char *s)
{
	size_t o = 0;
	for (; *s != '\0' && o + 3 < len; s++) {
		if (*s == '\\' || *s == '"') {
			dst[o++] = '\\';
			dst[o++] = *s;
		} else if (*s == '\n') {
			dst[o++] = '\\';
			dst[o++] = 'n';
		} else {
			dst[o++] = *s;
		}
	}
	dst[o] = '\0';
}

/* Queues a whole response and sends it: status, the Content-Type, then
 * the header lines in extra (each ending in CRLF; may be NULL). */
static void
metrics_http_respond(struct serve_client *c, const char *status,
		     const char *ctype, const char *extra,
		     const struct strbuf *body, bool head_only)
{
	strbuf_reset(&c->out);
	strbuf_appendf(&c->out,
		       "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: "
		       "%zu\r\nX-Content-Type-Options: nosniff\r\n%s"
		       "Connection: close\r\n\r\n",
		       status, ctype, body->len, extra ? extra : "");
	if (!head_only)
		strbuf_append(&c->out, strbuf_str(body), body->len);
	serve_answer(c);
}

static void
metrics_http_error(struct serve_client *c, const char *status)
{
	struct strbuf body;
	strbuf_init(&body, 256);
	strbuf_appendf(&body, "%s\n", status);
	metrics_http_respond(c, status, "text/plain", NULL, &body, false);
	strbuf_free(&body);
}

/* The quoted ETag of body: the first 16 bytes of its SHA-256, in hex. */
static int
metrics_http_etag(const struct strbuf *body, char *out, size_t len)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	size_t o = 0;

	if (len < 35 || EVP_Digest(strbuf_str(body), body->len, d, &dlen,
				   EVP_sha256(), NULL) != 1)
		return -1;
	out[o++] = '"';
	for (unsigned int i = 0; i < 16 && i < dlen; i++, o += 2)
		snprintf(out + o, 3, "%02x", d[i]);
	out[o++] = '"';
	out[o] = '\0';
	return 0;
}

/* True when the request head (lines after the request line) has an
 * If-None-Match header naming etag. */
static bool
metrics_http_not_modified(const char *headers, const char *etag)
{
	static const char name[] = "if-none-match:";
	for (const char *l = headers; l != NULL && *l != '\0';) {
		const char *end = strchr(l, '\n');
		size_t n = end ? (size_t)(end - l) : strlen(l);
		if (n > sizeof(name) - 1 &&
		    strncasecmp(l, name, sizeof(name) - 1) == 0 &&
		    memmem(l, n, etag, strlen(etag)) != NULL)
			return true;
		l = end ? end + 1 : NULL;
	}
	return false;
}

/* Renders route r and answers with it (or 304, or 500). */
static void
metrics_http_serve_route(struct serve_client *c,
			 const struct metrics_http_route *r,
			 const char *headers, bool head)
{
	struct metrics_http *m = c->arg;
	struct strbuf body, extra;
	char etag[40];

	strbuf_init(&body, METRICS_HTTP_BODY_MAX);
	strbuf_init(&extra, 4096);
	if (r->render(m->arg, &body) < 0 ||
	    (r->headers != NULL && r->headers(m->arg, &extra) < 0) ||
	    strbuf_appendf(&extra, "Cache-Control: %s\r\n", r->cache) < 0 ||
	    (r->etag && (metrics_http_etag(&body, etag, sizeof(etag)) < 0 ||
			 strbuf_appendf(&extra, "ETag: %s\r\n", etag) < 0))) {
		metrics_http_error(c, "500 Internal Server Error");
		goto out;
	}
	if (r->etag && metrics_http_not_modified(headers, etag)) {
		strbuf_reset(&body);
		metrics_http_respond(c, "304 Not Modified", r->ctype,
				     strbuf_str(&extra), &body, true);
		goto out;
	}
	metrics_http_respond(c, "200 OK", r->ctype, strbuf_str(&extra), &body,
			     head);
out:
	strbuf_free(&extra);
	strbuf_free(&body);
}

/* A complete request head: its request line ("GET /metrics HTTP/1.1")
 * picks the route; the header lines after it are looked at by routes with
 * an ETag. */
static void
metrics_http_handle(struct serve_client *c)
{
	struct metrics_http *m = c->arg;
	char method[16], path[1024], version[16];
	size_t eol = strcspn(c->in, "\r\n");
	const char *headers = c->in + eol;

	c->in[eol] = '\0';
	if (sscanf(c->in, "%15s %1023s %15s", method, path, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7) != 0 ||
	    (version[7] != '0' && version[7] != '1') || version[8] != '\0' ||
	    path[0] != '/') {
		metrics_http_error(c, "400 Bad Request");
		return;
	}
	if (eol < c->inlen)
		headers++; /* past the NUL that was the CR or LF */
	bool head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		metrics_http_error(c, "405 Method Not Allowed");
		return;
	}
	path[strcspn(path, "?")] = '\0';
	for (size_t i = 0; i < m->nroutes; i++)
		if (strcmp(path, m->routes[i].path) == 0) {
			metrics_http_serve_route(c, &m->routes[i], headers,
						 head);
			return;
		}
	metrics_http_error(c, "404 Not Found");
}

/* serve.c's input: a request head, up to its empty line. */
static void
metrics_http_input(struct serve_client *c, bool eof)
{
	if (eof) {
		serve_close(c);
		return;
	}
	if (memchr(c->in, '\0', c->inlen) != NULL) {
		metrics_http_error(c, "400 Bad Request");
		return;
	}
	if (strstr(c->in, "\r\n\r\n") != NULL ||
	    strstr(c->in, "\n\n") != NULL) {
		metrics_http_handle(c);
		return;
	}
	if (c->inlen == METRICS_HTTP_REQ_MAX)
		metrics_http_error(c, "400 Bad Request");
}

static const struct serve_proto metrics_http_proto = {
    .name = "metrics",
    .max_clients = 32,
    .busy = NULL,
    .in_max = METRICS_HTTP_REQ_MAX,
    .out_max = METRICS_HTTP_BODY_MAX + 1024,
    .read_s = 5.0,
    .write_s = 5.0,
    .linger_s = 1.0,
    .linger_max = 1u << 20,
    .input = metrics_http_input,
    .timeout = NULL,
};

struct metrics_http *
metrics_http_start_routes(struct ev_loop *loop, const struct addr *a,
			  const char *str,
			  const struct metrics_http_route *routes, size_t n,
			  void *arg)
{
	struct metrics_http *m = calloc(1, sizeof(*m));
	int fd, one = 1;

	if (m == NULL) {
		log_err("metrics %s: out of memory", str);
		return NULL;
	}
	m->routes = routes;
	m->nroutes = n;
	m->arg = arg;
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		log_err("metrics %s: socket: %s", str, strerror(errno));
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
	    listen(fd, 64) < 0) {
		log_err("metrics %s: %s", str, strerror(errno));
		close(fd);
		goto fail;
	}
	if ((m->srv = serve_start(loop, fd, &metrics_http_proto, m)) == NULL)
		goto fail;
	log_info("metrics on http://%s/metrics", str);
	return m;
fail:
	free(m);
	return NULL;
}

struct metrics_http *
metrics_http_start(struct ev_loop *loop, const struct addr *a, const char *str,
		   metrics_render_fn render, void *arg)
{
	struct metrics_http *m;
	struct metrics_http_route r = {
	    .path = "/metrics",
	    .ctype = METRICS_HTTP_CTYPE,
	    .cache = "no-store",
	    .render = render,
	};

	m = metrics_http_start_routes(loop, a, str, NULL, 0, arg);
	if (m != NULL) {
		m->own = r;
		m->routes = &m->own;
		m->nroutes = 1;
	}
	return m;
}

void
metrics_http_stop(struct metrics_http *m)
{
	if (m == NULL)
		return;
	serve_stop(m->srv);
	free(m);
}
