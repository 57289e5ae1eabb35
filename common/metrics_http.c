/* The Prometheus endpoint (metrics_http.h): the request head read by
 * serve.c, its request line checked, the exposition rendered and sent. */
#include "metrics_http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "serve.h"

struct metrics_http {
	metrics_render_fn render;
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

/* Queues a whole response and sends it. */
static void
metrics_http_respond(struct serve_client *c, const char *status,
		     const char *ctype, const struct strbuf *body,
		     bool head_only)
{
	strbuf_reset(&c->out);
	strbuf_appendf(
	    &c->out,
	    "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n",
	    status, ctype, body->len);
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
	metrics_http_respond(c, status, "text/plain", &body, false);
	strbuf_free(&body);
}

/* The request line of a complete request head: "GET /metrics HTTP/1.1". */
static void
metrics_http_handle(struct serve_client *c)
{
	struct metrics_http *m = c->arg;
	char method[16], path[1024], version[16];
	struct strbuf body;

	c->in[strcspn(c->in, "\r\n")] = '\0';
	if (sscanf(c->in, "%15s %1023s %15s", method, path, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7) != 0 ||
	    (version[7] != '0' && version[7] != '1') || version[8] != '\0' ||
	    path[0] != '/') {
		metrics_http_error(c, "400 Bad Request");
		return;
	}
	bool head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		metrics_http_error(c, "405 Method Not Allowed");
		return;
	}
	path[strcspn(path, "?")] = '\0';
	if (strcmp(path, "/metrics") != 0) {
		metrics_http_error(c, "404 Not Found");
		return;
	}
	strbuf_init(&body, METRICS_HTTP_BODY_MAX);
	if (m->render(m->arg, &body) < 0) {
		strbuf_free(&body);
		metrics_http_error(c, "500 Internal Server Error");
		return;
	}
	metrics_http_respond(c, "200 OK", "text/plain; version=0.0.4", &body,
			     head);
	strbuf_free(&body);
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
metrics_http_start(struct ev_loop *loop, const struct addr *a, const char *str,
		   metrics_render_fn render, void *arg)
{
	struct metrics_http *m = calloc(1, sizeof(*m));
	int fd, one = 1;

	if (m == NULL) {
		log_err("metrics %s: out of memory", str);
		return NULL;
	}
	m->render = render;
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

void
metrics_http_stop(struct metrics_http *m)
{
	if (m == NULL)
		return;
	serve_stop(m->srv);
	free(m);
}
