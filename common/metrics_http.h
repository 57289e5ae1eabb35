/* A Prometheus endpoint (lbd's and mailnode's): a tiny read-only HTTP/1.x
 * server on a loop, over serve.h, answering GET (or HEAD) /metrics with the
 * text exposition format its owner renders, and whatever other paths its
 * owner routes (lbd's status page and its JSON); 404 for other paths, 405
 * for other methods, 400 for what is not a request. A request head is at
 * most METRICS_HTTP_REQ_MAX bytes and must arrive within 5 s; one answer
 * per connection; at most 32 clients at once. */
#ifndef MS_METRICS_HTTP_H
#define MS_METRICS_HTTP_H

#include <ev.h>
#include <stdbool.h>

#include "addr.h"
#include "strbuf.h"

#define METRICS_HTTP_REQ_MAX 8192	  /* a request head */
#define METRICS_HTTP_BODY_MAX (32u << 20) /* an exposition */

/* Writes the exposition into sb. Returns 0, or -1 when sb hit its cap
 * (the client gets a 500). */
typedef int (*metrics_render_fn)(void *arg, struct strbuf *sb);

/* One path served, its body rendered per request with the server's arg.
 * Every answer also says `X-Content-Type-Options: nosniff`. */
struct metrics_http_route {
	const char *path;  /* exact; a query string is ignored */
	const char *ctype; /* Content-Type */
	const char *cache; /* Cache-Control */
	/* true: an ETag from the body's SHA-256, and 304 to a request whose
	 * If-None-Match names it */
	bool etag;
	metrics_render_fn render;
	/* more header lines ("Name: value\r\n" each), or NULL */
	metrics_render_fn headers;
};

struct metrics_http;

/* Listens on a (what is shown as str in logs) and serves render(arg) at
 * /metrics. Returns the endpoint, or NULL (logged). */
struct metrics_http *metrics_http_start(struct ev_loop *loop,
					const struct addr *a, const char *str,
					metrics_render_fn render, void *arg);
/* The same with the paths of routes[0..n) (which must outlive it). */
struct metrics_http *metrics_http_start_routes(
    struct ev_loop *loop, const struct addr *a, const char *str,
    const struct metrics_http_route *routes, size_t n, void *arg);
/* Closes every client and the listener. NULL is fine. */
void metrics_http_stop(struct metrics_http *m);

/* The "# HELP" and "# TYPE" lines of family name. Returns 0 or -1. */
int metrics_http_head(struct strbuf *sb, const char *name, const char *type,
		      const char *help);
/* s as a label value (backslash, quote and newline escaped) in dst,
 * truncated to len - 1 bytes. */
void metrics_http_label(char *dst, size_t len, const char *s);

#endif
