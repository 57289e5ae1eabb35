/* Accept-and-serve (serve.h): the accept loop, the client list, reading,
 * writing, lingering and streaming, for lbd's control socket and the
 * metrics endpoints alike. */
#include "serve.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#define SERVE_ACCEPT_BURST 32
#define SERVE_DRAIN_BURST 16

struct serve {
	struct ev_loop *loop;
	const struct serve_proto *proto;
	void *arg;
	int fd;
	ev_io accept_w;
	struct serve_client *clients;
	int nclients;
};

void
serve_close(struct serve_client *c)
{
	struct serve *srv = c->srv;

	ev_io_stop(srv->loop, &c->rio);
	ev_io_stop(srv->loop, &c->wio);
	ev_timer_stop(srv->loop, &c->timer);
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

/* (Re)arms c's one timer; 0 stops it. */
static void
serve_timer(struct serve_client *c, double after)
{
	ev_timer_stop(c->srv->loop, &c->timer);
	if (after > 0) {
		ev_timer_set(&c->timer, after, 0.);
		ev_timer_start(c->srv->loop, &c->timer);
	}
}

/* The answer is out: shut our side and drain the client's until it
 * closes. */
static void
serve_linger(struct serve_client *c)
{
	shutdown(c->fd, SHUT_WR);
	c->state = SERVE_LINGER;
	ev_io_stop(c->srv->loop, &c->wio);
	ev_io_start(c->srv->loop, &c->rio);
	serve_timer(c, c->srv->proto->linger_s);
}

/* Sends what it can of c->out. Returns -1 when c was closed. */
static int
serve_flush(struct serve_client *c)
{
	while (c->out.len > 0) {
		ssize_t n = send(c->fd, c->out.buf, c->out.len,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(c->srv->loop, &c->wio);
			return 0;
		}
		if (n <= 0) {
			serve_close(c);
			return -1;
		}
		strbuf_consume(&c->out, (size_t)n);
	}
	ev_io_stop(c->srv->loop, &c->wio);
	if (c->state == SERVE_WRITING)
		serve_linger(c);
	return 0;
}

void
serve_answer(struct serve_client *c)
{
	c->state = SERVE_WRITING;
	ev_io_stop(c->srv->loop, &c->rio);
	serve_timer(c, c->srv->proto->write_s);
	serve_flush(c);
}

void
serve_stream(struct serve_client *c, size_t out_max)
{
	c->state = SERVE_STREAMING;
	c->out.max = out_max;
	serve_timer(c, 0);
	/* rio stays on: input is drained, and EOF ends the stream */
}

void
serve_push_all(struct serve *srv, const char *buf, size_t len)
{
	struct serve_client *c, *next;

	for (c = srv->clients; c != NULL; c = next) {
		next = c->next;
		if (c->state != SERVE_STREAMING)
			continue;
		if (strbuf_append(&c->out, buf, len) < 0) {
			log_warn("%s: dropping a watcher %zu bytes behind",
				 srv->proto->name, c->out.len);
			serve_close(c);
			continue;
		}
		ev_io_start(srv->loop, &c->wio);
	}
}

/* Reads and throws away; on EOF or error, or past linger_max while
 * lingering, closes c. */
static void
serve_drain(struct serve_client *c)
{
	char scratch[4096];

	for (int i = 0; i < SERVE_DRAIN_BURST; i++) {
		ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			serve_close(c);
			return;
		}
		c->drained += (size_t)n;
		if (c->state == SERVE_LINGER &&
		    c->drained > c->srv->proto->linger_max) {
			serve_close(c);
			return;
		}
	}
}

static void
serve_read(struct serve_client *c)
{
	const struct serve_proto *proto = c->srv->proto;
	ssize_t n;

	do {
		n = recv(c->fd, c->in + c->inlen, proto->in_max - c->inlen, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n < 0) {
		serve_close(c);
		return;
	}
	c->inlen += (size_t)n;
	c->in[c->inlen] = '\0';
	proto->input(c, n == 0);
}

static void
serve_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct serve_client *c = w->data;
	(void)loop, (void)revents;
	if (c->state == SERVE_READING)
		serve_read(c);
	else
		serve_drain(c);
}

static void
serve_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	serve_flush(w->data);
}

static void
serve_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct serve_client *c = w->data;
	(void)loop, (void)revents;
	if (c->state == SERVE_READING && c->srv->proto->timeout != NULL)
		c->srv->proto->timeout(c);
	else
		serve_close(c);
}

static void
serve_client_new(struct serve *srv, int fd)
{
	const struct serve_proto *proto = srv->proto;
	struct serve_client *c = calloc(1, sizeof(*c) + proto->in_max + 1);

	if (c == NULL) {
		log_warn("%s: %s: out of memory", __func__, proto->name);
		close(fd);
		return;
	}
	c->srv = srv;
	c->arg = srv->arg;
	c->fd = fd;
	c->state = SERVE_READING;
	strbuf_init(&c->out, proto->out_max);
	ev_io_init(&c->rio, serve_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, serve_write_cb, fd, EV_WRITE);
	ev_init(&c->timer, serve_timer_cb);
	c->rio.data = c->wio.data = c->timer.data = c;
	c->next = srv->clients;
	if (srv->clients != NULL)
		srv->clients->prev = c;
	srv->clients = c;
	srv->nclients++;
	ev_io_start(srv->loop, &c->rio);
	serve_timer(c, proto->read_s);
}

/* A client over max_clients hears proto->busy, if anything, and goes. */
static void
serve_refuse(struct serve *srv, int fd)
{
	const char *busy = srv->proto->busy;

	if (busy != NULL &&
	    send(fd, busy, strlen(busy), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("%s: %s: busy answer: %s", __func__, srv->proto->name,
			  strerror(errno));
	close(fd);
}

static void
serve_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct serve *srv = w->data;
	(void)loop, (void)revents;

	for (int i = 0; i < SERVE_ACCEPT_BURST; i++) {
		int fd =
		    accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("%s: %s: accept: %s", __func__,
					 srv->proto->name, strerror(errno));
			return;
		}
		if (srv->nclients >= srv->proto->max_clients)
			serve_refuse(srv, fd);
		else
			serve_client_new(srv, fd);
	}
}

struct serve *
serve_start(struct ev_loop *loop, int fd, const struct serve_proto *proto,
	    void *arg)
{
	struct serve *srv = calloc(1, sizeof(*srv));

	if (srv == NULL) {
		log_err("%s: %s: out of memory", __func__, proto->name);
		close(fd);
		return NULL;
	}
	srv->loop = loop;
	srv->proto = proto;
	srv->arg = arg;
	srv->fd = fd;
	ev_io_init(&srv->accept_w, serve_accept_cb, fd, EV_READ);
	srv->accept_w.data = srv;
	ev_io_start(loop, &srv->accept_w);
	return srv;
}

void
serve_stop(struct serve *srv)
{
	if (srv == NULL)
		return;
	while (srv->clients != NULL)
		serve_close(srv->clients);
	ev_io_stop(srv->loop, &srv->accept_w);
	close(srv->fd);
	free(srv);
}
