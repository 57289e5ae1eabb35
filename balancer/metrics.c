#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/log.h"

#define METRICS_REQ_MAX 8192
#define METRICS_TIMEOUT_S 5.0
#define METRICS_MAX_CLIENTS 32
#define METRICS_BODY_MAX (32u << 20)
#define METRICS_LINGER_S 1.0
#define METRICS_LINGER_MAX (1u << 20)

struct metrics_server;

struct metrics_client {
	struct metrics_server *srv;
	int fd;
	ev_io rio, wio;
	ev_timer timer;
	char req[METRICS_REQ_MAX + 1];
	size_t len;
	struct strbuf out;
	bool draining; /* response sent, reading what is left */
	size_t drained;
	struct metrics_client *prev, *next;
};

struct metrics_server {
	struct lbd *l;
	int fd;
	ev_io accept_w;
	struct metrics_client *clients;
	int nclients;
};

/* One family of series: per service or per node. */
struct metrics_svc_family {
	const char *name, *type, *help;
	double (*value)(struct service *s);
};

struct metrics_node_family {
	const char *name, *type, *help;
	/* writes the family's series for n (labels already formatted) */
	int (*write)(struct strbuf *sb, const char *name, const char *labels,
		     struct node *n);
};

static double
svc_active(struct service *s)
{
	return (double)atomic_load(&s->active);
}

static double
svc_total(struct service *s)
{
	return (double)atomic_load(&s->total);
}

static double
svc_bytes_in(struct service *s)
{
	return (double)atomic_load(&s->bytes_in);
}

static double
svc_bytes_out(struct service *s)
{
	return (double)atomic_load(&s->bytes_out);
}

static double
svc_refused(struct service *s)
{
	return (double)atomic_load(&s->refused);
}

static const struct metrics_svc_family metrics_svc[] = {
    {"lbd_service_connections_active", "gauge", "Client connections open now.",
     svc_active},
    {"lbd_service_connections_total", "counter", "Client connections accepted.",
     svc_total},
    {"lbd_service_bytes_in_total", "counter", "Bytes from clients to nodes.",
     svc_bytes_in},
    {"lbd_service_bytes_out_total", "counter", "Bytes from nodes to clients.",
     svc_bytes_out},
    {"lbd_service_refused_total", "counter",
     "Clients refused: no usable node or over max_connections.", svc_refused},
};

static int
node_series(struct strbuf *sb, const char *name, const char *labels, double v)
{
	return strbuf_appendf(sb, "%s{%s} %.17g\n", name, labels, v);
}

static int
node_active(struct strbuf *sb, const char *name, const char *labels,
	    struct node *n)
{
	return node_series(sb, name, labels, (double)atomic_load(&n->active));
}

static int
node_total(struct strbuf *sb, const char *name, const char *labels,
	   struct node *n)
{
	return node_series(sb, name, labels, (double)atomic_load(&n->total));
}

static int
node_bytes_in(struct strbuf *sb, const char *name, const char *labels,
	      struct node *n)
{
	return node_series(sb, name, labels, (double)atomic_load(&n->bytes_in));
}

static int
node_bytes_out(struct strbuf *sb, const char *name, const char *labels,
	       struct node *n)
{
	return node_series(sb, name, labels,
			   (double)atomic_load(&n->bytes_out));
}

static int
node_up(struct strbuf *sb, const char *name, const char *labels, struct node *n)
{
	return node_series(sb, name, labels,
			   atomic_load(&n->health) == HEALTH_UP ? 1 : 0);
}

static int
node_state(struct strbuf *sb, const char *name, const char *labels,
	   struct node *n)
{
	static const char *const states[] = {"up", "down", "drain", "maint",
					     "removing"};
	const char *cur = node_state_name(n);
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (strbuf_appendf(sb, "%s{%s,state=\"%s\"} %d\n", name, labels,
				   states[i], strcmp(cur, states[i]) == 0) < 0)
			return -1;
	return 0;
}

static int
node_check_ok(struct strbuf *sb, const char *name, const char *labels,
	      struct node *n)
{
	return node_series(sb, name, labels, n->check_ok == 1 ? 1 : 0);
}

static int
node_check_latency(struct strbuf *sb, const char *name, const char *labels,
		   struct node *n)
{
	return node_series(sb, name, labels, n->check_latency_ms / 1000.0);
}

static int
node_connect_failures(struct strbuf *sb, const char *name, const char *labels,
		      struct node *n)
{
	return node_series(sb, name, labels,
			   (double)atomic_load(&n->connect_fail));
}

static const struct metrics_node_family metrics_node[] = {
    {"lbd_node_connections_active", "gauge",
     "Connections open to the node now.", node_active},
    {"lbd_node_connections_total", "counter",
     "Connections relayed to the node.", node_total},
    {"lbd_node_bytes_in_total", "counter", "Bytes from clients to the node.",
     node_bytes_in},
    {"lbd_node_bytes_out_total", "counter", "Bytes from the node to clients.",
     node_bytes_out},
    {"lbd_node_up", "gauge", "1 when the probes say the node is up.", node_up},
    {"lbd_node_state", "gauge",
     "The node's state (up, down, drain, maint, removing), one-hot.",
     node_state},
    {"lbd_node_check_ok", "gauge", "1 when the last probe passed.",
     node_check_ok},
    {"lbd_node_check_latency_seconds", "gauge", "How long the last probe took.",
     node_check_latency},
    {"lbd_node_connect_failures_total", "counter",
     "Connects of real traffic to the node that failed.",
     node_connect_failures},
};

/* A label value: '\\', '"' and newlines escaped. */
static void
metrics_label(char *dst, size_t len, const char *s)
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

static int
metrics_head(struct strbuf *sb, const char *name, const char *type,
	     const char *help)
{
	return strbuf_appendf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help,
			      name, type);
}

int
metrics_render(struct lbd *l, struct strbuf *sb)
{
	char a[3 * LBD_NAME_MAX], b[3 * NODE_NAME_MAX], c[3 * ADDR_STRLEN];
	char labels[3 * (LBD_NAME_MAX + NODE_NAME_MAX + ADDR_STRLEN) + 64];

	for (size_t f = 0; f < sizeof(metrics_svc) / sizeof(metrics_svc[0]);
	     f++) {
		const struct metrics_svc_family *fam = &metrics_svc[f];
		if (metrics_head(sb, fam->name, fam->type, fam->help) < 0)
			return -1;
		for (struct service *s = l->cfg->services; s; s = s->next) {
			metrics_label(a, sizeof(a), s->name);
			if (strbuf_appendf(sb, "%s{service=\"%s\"} %.17g\n",
					   fam->name, a, fam->value(s)) < 0)
				return -1;
		}
	}
	for (size_t f = 0; f < sizeof(metrics_node) / sizeof(metrics_node[0]);
	     f++) {
		const struct metrics_node_family *fam = &metrics_node[f];
		if (metrics_head(sb, fam->name, fam->type, fam->help) < 0)
			return -1;
		for (struct pool *p = l->cfg->pools; p; p = p->next)
			for (size_t i = 0; i < p->nnodes; i++) {
				struct node *n = p->nodes[i];
				metrics_label(a, sizeof(a), p->name);
				metrics_label(b, sizeof(b), n->name);
				metrics_label(c, sizeof(c), n->addrstr);
				snprintf(
				    labels, sizeof(labels),
				    "pool=\"%s\",node=\"%s\",address=\"%s\"", a,
				    b, c);
				if (fam->write(sb, fam->name, labels, n) < 0)
					return -1;
			}
	}
	return 0;
}

static void
metrics_client_close(struct metrics_client *c)
{
	struct metrics_server *srv = c->srv;
	struct ev_loop *loop = srv->l->loop;

	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	ev_timer_stop(loop, &c->timer);
	close(c->fd);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->nclients--;
	strbuf_free(&c->out);
	free(c);
}

static void metrics_drain_cb(struct ev_loop *loop, ev_io *w, int revents);

/* The response is out: shut our side and drain the rest of the request
 * for a moment, so that unread input does not turn close into a reset
 * that could destroy the response. */
static void
metrics_client_linger(struct metrics_client *c)
{
	struct ev_loop *loop = c->srv->l->loop;
	c->draining = true;
	shutdown(c->fd, SHUT_WR);
	ev_io_stop(loop, &c->wio);
	ev_io_stop(loop, &c->rio);
	ev_set_cb(&c->rio, metrics_drain_cb);
	ev_io_start(loop, &c->rio);
	ev_timer_stop(loop, &c->timer);
	ev_timer_set(&c->timer, METRICS_LINGER_S, 0.);
	ev_timer_start(loop, &c->timer);
}

static void
metrics_drain_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct metrics_client *c = w->data;
	char scratch[4096];
	(void)loop, (void)revents;
	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0 || (c->drained += (size_t)n) > METRICS_LINGER_MAX) {
			metrics_client_close(c);
			return;
		}
	}
}

static void
metrics_client_flush(struct metrics_client *c)
{
	while (c->out.len > 0) {
		ssize_t n = send(c->fd, c->out.buf, c->out.len,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(c->srv->l->loop, &c->wio);
			return;
		}
		if (n <= 0)
			break;
		strbuf_consume(&c->out, (size_t)n);
	}
	if (c->out.len > 0 || c->draining) {
		metrics_client_close(c);
		return;
	}
	metrics_client_linger(c);
}

/* Queues a whole response and starts sending it. */
static void
metrics_respond(struct metrics_client *c, const char *status, const char *ctype,
		const struct strbuf *body, bool head_only)
{
	ev_io_stop(c->srv->l->loop, &c->rio);
	strbuf_reset(&c->out);
	strbuf_appendf(
	    &c->out,
	    "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n",
	    status, ctype, body->len);
	if (!head_only)
		strbuf_append(&c->out, strbuf_str(body), body->len);
	ev_timer_stop(c->srv->l->loop, &c->timer);
	ev_timer_set(&c->timer, METRICS_TIMEOUT_S, 0.);
	ev_timer_start(c->srv->l->loop, &c->timer);
	metrics_client_flush(c);
}

static void
metrics_error(struct metrics_client *c, const char *status)
{
	struct strbuf body;
	strbuf_init(&body, 256);
	strbuf_appendf(&body, "%s\n", status);
	metrics_respond(c, status, "text/plain", &body, false);
	strbuf_free(&body);
}

/* The request line of a complete request head: "GET /metrics HTTP/1.1". */
static void
metrics_handle(struct metrics_client *c)
{
	char method[16], path[1024], version[16];
	struct strbuf body;

	c->req[strcspn(c->req, "\r\n")] = '\0';
	if (sscanf(c->req, "%15s %1023s %15s", method, path, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7) != 0 ||
	    (version[7] != '0' && version[7] != '1') || version[8] != '\0' ||
	    path[0] != '/') {
		metrics_error(c, "400 Bad Request");
		return;
	}
	bool head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		metrics_error(c, "405 Method Not Allowed");
		return;
	}
	path[strcspn(path, "?")] = '\0';
	if (strcmp(path, "/metrics") != 0) {
		metrics_error(c, "404 Not Found");
		return;
	}
	strbuf_init(&body, METRICS_BODY_MAX);
	c->out.max = METRICS_BODY_MAX + 1024;
	if (metrics_render(c->srv->l, &body) < 0) {
		strbuf_free(&body);
		metrics_error(c, "500 Internal Server Error");
		return;
	}
	metrics_respond(c, "200 OK", "text/plain; version=0.0.4", &body, head);
	strbuf_free(&body);
}

static void
metrics_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct metrics_client *c = w->data;
	(void)loop, (void)revents;

	ssize_t n;
	do {
		n = recv(c->fd, c->req + c->len, METRICS_REQ_MAX - c->len, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		metrics_client_close(c);
		return;
	}
	c->len += (size_t)n;
	c->req[c->len] = '\0';
	if (memchr(c->req, '\0', c->len) != NULL) {
		metrics_error(c, "400 Bad Request");
		return;
	}
	if (strstr(c->req, "\r\n\r\n") != NULL ||
	    strstr(c->req, "\n\n") != NULL) {
		metrics_handle(c);
		return;
	}
	if (c->len == METRICS_REQ_MAX)
		metrics_error(c, "400 Bad Request");
}

static void
metrics_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	metrics_client_flush(w->data);
}

static void
metrics_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop, (void)revents;
	metrics_client_close(w->data);
}

static void
metrics_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct metrics_server *srv = w->data;
	(void)revents;

	for (int i = 0; i < 32; i++) {
		int fd =
		    accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (srv->nclients >= METRICS_MAX_CLIENTS) {
			close(fd);
			continue;
		}
		struct metrics_client *c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->srv = srv;
		c->fd = fd;
		strbuf_init(&c->out, 4096);
		ev_io_init(&c->rio, metrics_read_cb, fd, EV_READ);
		ev_io_init(&c->wio, metrics_write_cb, fd, EV_WRITE);
		ev_timer_init(&c->timer, metrics_timer_cb, METRICS_TIMEOUT_S,
			      0.);
		c->rio.data = c->wio.data = c->timer.data = c;
		c->next = srv->clients;
		if (srv->clients != NULL)
			srv->clients->prev = c;
		srv->clients = c;
		srv->nclients++;
		ev_io_start(loop, &c->rio);
		ev_timer_start(loop, &c->timer);
	}
}

int
metrics_start(struct lbd *l)
{
	const struct addr *a = &l->cfg->set.metrics;
	struct metrics_server *srv = NULL;
	int fd = -1, one = 1;

	if (!l->cfg->set.has_metrics)
		return 0;
	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		log_err("metrics %s: socket: %s", l->cfg->set.metrics_str,
			strerror(errno));
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
	    listen(fd, 64) < 0) {
		log_err("metrics %s: %s", l->cfg->set.metrics_str,
			strerror(errno));
		goto fail;
	}
	if ((srv = calloc(1, sizeof(*srv))) == NULL) {
		log_err("%s: out of memory", __func__);
		goto fail;
	}
	srv->l = l;
	srv->fd = fd;
	ev_io_init(&srv->accept_w, metrics_accept_cb, fd, EV_READ);
	srv->accept_w.data = srv;
	ev_io_start(l->loop, &srv->accept_w);
	l->metrics = srv;
	log_info("metrics on http://%s/metrics", l->cfg->set.metrics_str);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(srv);
	return -1;
}

void
metrics_stop(struct lbd *l)
{
	struct metrics_server *srv = l->metrics;
	if (srv == NULL)
		return;
	while (srv->clients != NULL)
		metrics_client_close(srv->clients);
	ev_io_stop(l->loop, &srv->accept_w);
	close(srv->fd);
	free(srv);
	l->metrics = NULL;
}
