/* The relay: one client connection, its node connection, and the bytes in
 * between. States: HOLDING (SMTP edge checks before any node: the greet
 * delay, a pregreet watch, the DNSBL answers), CONNECTING (to a node, with
 * retries on other nodes; the client's first bytes are read and held meanwhile,
 * and the first byte moved to or from the node proves the connect), RELAYING
 * (full duplex, half-close kept), REPLYING (no node: the protocol's
 * "unavailable" answer, then a lingering close). Bytes move with splice()
 * through a pipe where the kernel allows it, through a buffer otherwise; pipes
 * and buffers are taken only while data is in flight, so an idle connection
 * holds neither.
 *
 * Both sockets are in the worker's epoll set once, edge-triggered for
 * reading and writing (wloop.h): what each side waits for (cwant, swant)
 * is the relay's own, and a socket's ready bits are used up only by a call
 * that returns EAGAIN or a read that drains it. A side that is ready for
 * what it now waits for runs again in the next loop iteration
 * (relay_kick).
 *
 * With io_engine = uring, a connection the SMTP edge does not hold is
 * relayed by relay_uring.c instead, on the worker's ring; both share
 * relay.h. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/proxy.h"
#include "relay.h"

#define SPARE_BUFS 256
/* few: a user's pipes count against fs.pipe-user-pages-soft (64 MiB) by
 * their size, full or empty, and past it new pipes get a page or two */
#define SPARE_PIPES 16
#define SPARE_CONNS 1024

static void relay_connect_next(struct conn *c);
static void relay_connect_failed(struct conn *c, int err);
static void relay_update(struct conn *c);

static inline size_t
half_pending(const struct half *h)
{
	return (h->buf ? h->len - h->off : 0) + h->inpipe;
}

static inline struct wio *
relay_io(struct conn *c, int fd)
{
	return fd == c->cfd ? &c->cio : &c->sio;
}

/* A call on fd returned EAGAIN, or a read drained it: fd's `bit` waits
 * for its next edge. */
static inline void
relay_used_up(struct conn *c, int fd, uint32_t bit)
{
	relay_io(c, fd)->ready &= ~bit;
}

/* A call on fd moved bytes (or read the node's FIN): when fd is the node's
 * socket, that proves the connect, with no getsockopt(SO_ERROR). */
static inline void
relay_moved(struct conn *c, int fd)
{
	if (c->state == CONN_CONNECTING && fd == c->sfd)
		relay_established(c);
}

/* A call on fd failed: returns -1, remembering the errno when fd is the
 * node's socket (a connect that failed shows up here). */
static int
relay_failed(struct conn *c, int fd)
{
	if (fd == c->sfd)
		c->node_err = errno;
	return -1;
}

char *
relay_buf_get(struct worker *w)
{
	if (w->nfree_bufs > 0)
		return w->free_bufs[--w->nfree_bufs];
	return malloc(RELAY_BUF);
}

void
relay_buf_put(struct worker *w, struct half *h)
{
	if (h->buf == NULL)
		return;
	if (w->free_bufs == NULL)
		w->free_bufs = calloc(SPARE_BUFS, sizeof(*w->free_bufs));
	if (w->free_bufs && w->nfree_bufs < SPARE_BUFS)
		w->free_bufs[w->nfree_bufs++] = h->buf;
	else
		free(h->buf);
	h->buf = NULL;
	h->off = h->len = 0;
}

int
relay_pipe_get(struct worker *w, struct half *h)
{
	if (w->nfree_pipes > 0) {
		w->nfree_pipes--;
		h->pipe[0] = w->free_pipes[w->nfree_pipes][0];
		h->pipe[1] = w->free_pipes[w->nfree_pipes][1];
		return 0;
	}
	if (pipe2(h->pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	/* Best effort: a bigger pipe moves more per splice() call. */
	(void)fcntl(h->pipe[1], F_SETPIPE_SZ, RELAY_SPLICE_CHUNK);
	return 0;
}

/* Keeps an empty pipe for reuse; closes one that still holds bytes. */
void
relay_pipe_put(struct worker *w, struct half *h)
{
	if (h->pipe[0] < 0)
		return;
	if (w->free_pipes == NULL)
		w->free_pipes = calloc(SPARE_PIPES, sizeof(*w->free_pipes));
	if (h->inpipe == 0 && w->free_pipes && w->nfree_pipes < SPARE_PIPES) {
		w->free_pipes[w->nfree_pipes][0] = h->pipe[0];
		w->free_pipes[w->nfree_pipes][1] = h->pipe[1];
		w->nfree_pipes++;
	} else {
		close(h->pipe[0]);
		close(h->pipe[1]);
	}
	h->pipe[0] = h->pipe[1] = -1;
	h->inpipe = 0;
}

void
relay_release(struct conn *c)
{
	struct worker *w = c->w;
	wtimer_stop(&w->loop, &c->timer);
	dnsbl_cancel(c->dq);
	c->dq = NULL;
	relay_buf_put(w, &c->up);
	relay_buf_put(w, &c->down);
	relay_pipe_put(w, &c->up);
	relay_pipe_put(w, &c->down);
	if (c->node)
		pool_release(c->node);
	edge_release(c->svc->edge, &c->edge);
	atomic_fetch_sub_explicit(&c->svc->active, 1, memory_order_relaxed);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (w->nfree_conns < SPARE_CONNS) {
		c->next = w->free_conns;
		w->free_conns = c;
		w->nfree_conns++;
	} else
		free(c);
}

static void
relay_free(struct conn *c)
{
	struct wloop *loop = &c->w->loop;
	/* closing the sockets takes them out of the epoll set */
	wio_forget(loop, &c->cio);
	wio_forget(loop, &c->sio);
	if (c->cfd >= 0)
		close(c->cfd);
	if (c->sfd >= 0)
		close(c->sfd);
	relay_release(c);
}

void
relay_end(struct conn *c)
{
	if (c->ur)
		ur_fail(c);
	else
		relay_free(c);
}

/* A side that is ready for what it waits for runs again in the next
 * iteration (its edge has come already and will not come again). */
static void
relay_kick(struct conn *c, struct wio *io, int fd, uint32_t want)
{
	if (fd >= 0 && (io->ready & want))
		wio_feed(&c->w->loop, io);
}

/* A write to fd moved bytes. */
static inline void
relay_sent(struct conn *c, int fd)
{
	if (fd == c->sfd)
		c->node_written = true;
	else
		c->pregreet = false; /* the greeting reached the client */
	relay_moved(c, fd);
}

/* Moves pending bytes of h to fd. Returns 0, or -1 when the connection
 * must end (the peer reset it). */
static int
relay_flush(struct conn *c, struct half *h, int fd)
{
	while (h->buf && h->off < h->len) {
		relay_nodelay(c, fd);
		ssize_t n = send(fd, h->buf + h->off, h->len - h->off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			relay_used_up(c, fd, EPOLLOUT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR
				   ? 0
				   : relay_failed(c, fd);
		h->off += (size_t)n;
		relay_sent(c, fd);
	}
	relay_buf_put(c->w, h);
	while (h->inpipe > 0) {
		relay_nodelay(c, fd);
		ssize_t n = splice(h->pipe[0], NULL, fd, NULL, h->inpipe,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EAGAIN)
			relay_used_up(c, fd, EPOLLOUT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR
				   ? 0
				   : relay_failed(c, fd);
		h->inpipe -= (size_t)n;
		relay_sent(c, fd);
	}
	relay_pipe_put(c->w, h);
	return 0;
}

void
relay_count(struct conn *c, struct half *h, size_t n)
{
	if (h == &c->up) {
		atomic_fetch_add_explicit(&c->node->bytes_in, n,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&c->svc->bytes_in, n,
					  memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&c->node->bytes_out, n,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&c->svc->bytes_out, n,
					  memory_order_relaxed);
	}
}

/* Moves what `from` has to `to`. Small transfers go through a buffer
 * (one recv, one send); once a read fills the buffer the direction is
 * bulk and goes through a pipe with splice(), since splicing a few bytes
 * costs more than copying them. Pumps again while the other side keeps
 * up and the socket had more, up to RELAY_PUMP_ROUNDS times per wake-up.
 * A recv that drains the socket after its peer's FIN was seen
 * (EPOLLRDHUP) is the end of that direction: no read for the FIN itself
 * (a splice may stop short with bytes left, so it does not tell).
 * Returns -1 when the connection must end. */
static int
relay_pump(struct conn *c, struct half *h, int from, int to)
{
	struct worker *w = c->w;

	for (int round = 0; round < RELAY_PUMP_ROUNDS; round++) {
		ssize_t n = 0;
		size_t want = RELAY_BUF;
		bool spliced = false, fin = false;
		if (h->bulk && w->splice_ok) {
			if (h->pipe[0] < 0 && relay_pipe_get(w, h) < 0)
				w->splice_ok = 0;
			else {
				want = RELAY_SPLICE_CHUNK;
				n = splice(from, NULL, h->pipe[1], NULL, want,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
				if (n < 0 &&
				    (errno == EINVAL || errno == ENOSYS)) {
					w->splice_ok = 0; /* not spliceable */
					relay_pipe_put(w, h);
				} else
					spliced = true;
				if (n > 0)
					h->inpipe += (size_t)n;
			}
		}
		if (!spliced) {
			if (h->buf == NULL &&
			    (h->buf = relay_buf_get(w)) == NULL)
				return -1;
			n = recv(from, h->buf, RELAY_BUF, MSG_DONTWAIT);
			if (n > 0) {
				h->off = 0;
				h->len = (size_t)n;
				if (n == RELAY_BUF)
					h->bulk = true;
			}
			if (n > 0 && n < RELAY_BUF) {
				/* drained, unless an error or hang-up came
				 * with the bytes: a read after them tells
				 * which (its edge will not come again) */
				struct wio *io = relay_io(c, from);
				if (!(io->ready & (EPOLLERR | EPOLLHUP)))
					io->ready &= ~EPOLLIN;
				fin = (io->ready & (EPOLLRDHUP | EPOLLERR)) ==
				      EPOLLRDHUP;
			}
		}
		if (n < 0 && errno == EAGAIN)
			relay_used_up(c, from, EPOLLIN);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR
				   ? relay_flush(c, h, to)
				   : relay_failed(c, from);
		relay_moved(c, from);
		if (n == 0 || fin)
			h->eof = true;
		if (fin)
			c->fin_hold = true;
		if (n > 0)
			relay_count(c, h, (size_t)n);
		if (relay_flush(c, h, to) < 0)
			return -1;
		if (n == 0 || half_pending(h) > 0 || (size_t)n < want)
			return 0; /* EOF, the other side is slow, or drained */
	}
	return 0;
}

/* The node's socket is writable while connecting and nothing waits to be
 * sent (only the client's FIN does): ask how the connect ended. */
static int
relay_connect_check(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->sfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0) {
		errno = err;
		return relay_failed(c, c->sfd);
	}
	relay_established(c);
	return 0;
}

static void relay_pregreet(struct conn *c);

/* Pregreet watch: whether the client sent a byte before the greeting
 * reached it. Returns 1 (it did), 0 (it closed), -1 (nothing yet). */
static int
relay_pregreet_peek(struct conn *c)
{
	char b;
	ssize_t n = recv(c->cfd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && errno == EAGAIN)
		relay_used_up(c, c->cfd, EPOLLIN);
	return n > 0 ? 1 : n == 0 ? 0 : -1;
}

static void
relay_io_cb(struct wloop *loop, struct wio *io, uint32_t events)
{
	struct conn *c = io->data;
	int rc = 0;
	if (events & (EPOLLERR | EPOLLHUP))
		io->ready |= EPOLLIN | EPOLLOUT; /* the calls tell what */
	uint32_t rev = io->ready & (io == &c->cio ? c->cwant : c->swant);
	if (rev == 0 && !c->fin_hold)
		return;
	c->fin_hold = false;
	c->last = loop->mono;
	if (io == &c->cio && (rev & EPOLLIN) && c->pregreet) {
		int seen = relay_pregreet_peek(c);
		if (seen > 0) {
			relay_pregreet(c);
			return;
		}
		if (c->state == CONN_HOLDING) {
			if (seen == 0) /* gone before its greeting */
				relay_free(c);
			return;
		}
		if (seen == 0) /* its FIN: read as usual once up is empty */
			c->pregreet = false;
		if (seen < 0 || half_pending(&c->up) > 0)
			rev &= ~EPOLLIN; /* nothing, or up's buffer is taken */
	}
	if (io == &c->cio) {
		if (rev & EPOLLOUT)
			rc = relay_flush(c, &c->down, c->cfd);
		if (rc == 0 && (rev & EPOLLIN))
			rc = relay_pump(c, &c->up, c->cfd, c->sfd);
	} else {
		if ((rev & EPOLLOUT) && c->state == CONN_CONNECTING &&
		    half_pending(&c->up) == 0)
			rc = relay_connect_check(c);
		else if (rev & EPOLLOUT)
			rc = relay_flush(c, &c->up, c->sfd);
		if (rc == 0 && (rev & EPOLLIN))
			rc = relay_pump(c, &c->down, c->sfd, c->cfd);
	}
	if (rc < 0 && c->state == CONN_CONNECTING && c->node_err != 0)
		relay_connect_failed(c, c->node_err);
	else if (rc < 0)
		relay_free(c);
	else
		relay_update(c);
}

/* Passes h's FIN on to fd once h is flushed, unless the socket the other
 * direction reads from is about to be read (ready, and queued to run):
 * that is often its peer's FIN too, and then both sockets close with no
 * shutdown() (close() sends the FINs). `io` is the socket the other
 * direction reads from; it must be kicked already. */
static void
relay_pass_fin(struct half *h, int fd, const struct wio *io)
{
	if (h->shut || !h->eof || half_pending(h) > 0 ||
	    (io->queued && (io->ready & EPOLLIN)))
		return;

	shutdown(fd, SHUT_WR);
	h->shut = true;
}

/* Recomputes what each side waits for; ends the connection once both
 * directions have seen their FIN and flushed. */
static void
relay_update(struct conn *c)
{
	size_t up = half_pending(&c->up), down = half_pending(&c->down);
	if (c->up.eof && c->down.eof && up == 0 && down == 0) {
		relay_free(c);
		return;
	}
	uint32_t cev = 0, sev = 0;
	if (!c->up.eof && (up == 0 || c->pregreet))
		cev |= EPOLLIN;
	if (up > 0 || (c->state == CONN_CONNECTING && c->up.eof))
		sev |= EPOLLOUT; /* (a FIN to pass on once connected) */
	if (!c->down.eof && down == 0)
		sev |= EPOLLIN;
	if (down > 0)
		cev |= EPOLLOUT;
	c->cwant = cev;
	c->swant = sev;
	relay_kick(c, &c->cio, c->cfd, cev);
	relay_kick(c, &c->sio, c->sfd, sev);
	if (c->state == CONN_CONNECTING)
		return;
	if (c->fin_hold) {
		/* A FIN that came with the last bytes (no read of its own):
		 * the other side often closes as soon as it has them, and
		 * then both close with no shutdown(), as they do when the FIN
		 * is read a turn later. So the FIN waits that turn. */
		wio_feed(&c->w->loop, &c->cio);
		return;
	}
	relay_pass_fin(&c->up, c->sfd, &c->sio);
	relay_pass_fin(&c->down, c->cfd, &c->cio);
}

static void
relay_idle_cb(struct wloop *loop, struct wtimer *t)
{
	struct conn *c = t->data;
	double idle = atomic_load(&c->svc->idle_timeout_s);
	double left = c->last + idle - loop->mono;
	if (left > 0.01) {
		wtimer_start(loop, t, left);
		return;
	}
	log_debug("service %s: idle timeout, closing", c->svc->name);
	relay_end(c);
}

/* The address the client connected to: the service's listen address,
 * unless that is a wildcard (0.0.0.0, ::), which only getsockname() can
 * make precise. Returns 0, or -1 with errno set. */
static int
relay_local_addr(struct conn *c, struct sockaddr_storage *local)
{
	const struct sockaddr_storage *ls = &c->svc->listen.ss;
	socklen_t len = sizeof(*local);
	bool any = ls->ss_family == AF_INET6
		       ? IN6_IS_ADDR_UNSPECIFIED(
			     &((const struct sockaddr_in6 *)ls)->sin6_addr)
		       : ((const struct sockaddr_in *)ls)->sin_addr.s_addr ==
			     htonl(INADDR_ANY);
	if (!any) {
		memcpy(local, ls, sizeof(*local));
		return 0;
	}
	return getsockname(c->cfd, (struct sockaddr *)local, &len);
}

/* Puts the PROXY header for the client's connection first in the
 * client-to-node direction. */
static int
relay_proxy_header(struct conn *c)
{
	int version = atomic_load(&c->svc->proxy_protocol);
	struct sockaddr_storage local;
	int n;
	if (version == 0)
		return 0;
	if (relay_local_addr(c, &local) < 0)
		return -1;
	if ((c->up.buf = relay_buf_get(c->w)) == NULL)
		return -1;
	if (version == 1)
		n = proxy_v1_encode(c->up.buf, RELAY_BUF,
				    (struct sockaddr *)&c->peer,
				    (struct sockaddr *)&local);
	else
		n = proxy_v2_encode((unsigned char *)c->up.buf, RELAY_BUF,
				    (struct sockaddr *)&c->peer,
				    (struct sockaddr *)&local);
	if (n < 0)
		return -1;
	c->up.off = 0;
	c->up.len = (size_t)n;
	return 0;
}

/* The node's socket moved a byte either way (or a silent connect proved
 * complete at the connect timeout): the connect is done, the timer is the
 * idle one from now on. */
void
relay_established(struct conn *c)
{
	struct wloop *loop = &c->w->loop;
	atomic_fetch_add_explicit(&c->node->total, 1, memory_order_relaxed);
	c->state = CONN_RELAYING;
	c->last = loop->mono;
	c->timer.cb = relay_idle_cb;
	wtimer_start(loop, &c->timer, atomic_load(&c->svc->idle_timeout_s));
	if (log_debug_enabled()) {
		char from[ADDR_STRLEN];
		addr_fmt((struct sockaddr *)&c->peer, from, sizeof(from));
		log_debug("service %s: %s -> pool %s node %s (%s)",
			  c->svc->name, from, c->pool->name, c->node->name,
			  c->node->addrstr);
	}
}

/* The node refused, timed out or reset before any byte moved: count it
 * against the node, and give the client to the next one. What the client
 * sent meanwhile is still in c->up, unsent. */
void
relay_node_failed(struct conn *c, int err)
{
	wtimer_stop(&c->w->loop, &c->timer);
	c->node_err = 0;
	checker_report_connect_failure(c->w->l, c->pool, c->node, err);
	pool_release(c->node);
	c->node = NULL;
}

static void
relay_connect_failed(struct conn *c, int err)
{
	wio_forget(&c->w->loop, &c->sio);
	close(c->sfd);
	c->sfd = -1;
	relay_node_failed(c, err);
	relay_connect_next(c);
}

/* No byte has moved to or from the node within the connect timeout. The
 * connect may have completed all the same (a node that waits for the
 * client, a client that waits for the node): ask the kernel. */
static void
relay_connect_timeout_cb(struct wloop *loop, struct wtimer *t)
{
	struct conn *c = t->data;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	(void)loop;
	if (getpeername(c->sfd, (struct sockaddr *)&ss, &len) == 0) {
		relay_established(c);
		relay_update(c);
	} else
		relay_connect_failed(c, ETIMEDOUT);
}

void
relay_linger_cb(struct wloop *loop, struct wtimer *t)
{
	(void)loop;
	relay_end(t->data);
}

/* Reads and drops what io's socket has (at most 16 reads a turn, then
 * again in the next iteration). Returns true while more may come, false
 * once the peer closed or failed. */
int
relay_drop(int fd)
{
	char sink[4096];
	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
		if (n > 0)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		return n < 0 && errno == EINTR ? 1 : -1;
	}
	return 1;
}

static bool
relay_sink(struct wloop *loop, struct wio *io)
{
	if (io->ready & (EPOLLERR | EPOLLHUP))
		io->ready |= EPOLLIN;
	if (!(io->ready & EPOLLIN))
		return true;
	int r = relay_drop(io->fd);
	if (r == 0)
		io->ready &= ~EPOLLIN;
	else if (r > 0)
		wio_feed(loop, io);
	return r >= 0;
}

/* While lingering: read and drop what the client still sends, until it
 * closes or the linger timer fires, so our answer is not lost to a RST. */
static void
relay_drain_cb(struct wloop *loop, struct wio *io, uint32_t events)
{
	struct conn *c = io->data;
	(void)events;
	if (!relay_sink(loop, io))
		relay_free(c);
}

/* Answers the client with reply (len bytes; 0: none), then closes after
 * a lingering drain. */
static void
relay_reply(struct conn *c, const char *reply, size_t len)
{
	struct wloop *loop = &c->w->loop;
	c->state = CONN_REPLYING;
	dnsbl_cancel(c->dq); /* no verdict matters now */
	c->dq = NULL;
	if (len == 0) {
		relay_free(c);
		return;
	}
	(void)!send(c->cfd, reply, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(c->cfd, SHUT_WR);
	c->cio.cb = relay_drain_cb;
	if (c->cio.ready & EPOLLIN)
		wio_feed(loop, &c->cio);
	c->timer.cb = relay_linger_cb;
	wtimer_start(loop, &c->timer, RELAY_LINGER_S);
}

/* No node can take the client: answer in the service's protocol. */
const char *
relay_unavailable(struct conn *c)
{
	atomic_fetch_add_explicit(&c->svc->refused, 1, memory_order_relaxed);
	return service_empty_reply(c->svc->protocol);
}

static void
relay_reply_unavailable(struct conn *c)
{
	const char *reply = relay_unavailable(c);
	relay_reply(c, reply, strlen(reply));
}

/* Edge protection refuses the client for reason r (zone: the DNSBL zone
 * that tipped it): its protocol's answer, counted per reason. */
static void
relay_refuse(struct conn *c, enum edge_reason r, const char *zone)
{
	char text[SERVICE_REFUSAL_MAX], addr[ADDR_STRLEN];
	atomic_fetch_add_explicit(&c->svc->edge_refused[r], 1,
				  memory_order_relaxed);
	addr_host((struct sockaddr *)&c->peer, addr, sizeof(addr));
	log_debug("service %s: %s refused: %s%s%s", c->svc->name, addr,
		  edge_reason_name(r), zone ? " " : "", zone ? zone : "");
	int n = service_refusal(c->svc->protocol, r, addr, zone, text,
				sizeof(text));
	relay_reply(c, text, n > 0 ? (size_t)n : 0);
}

/* While the node's session is ended: reads and drops its answer to QUIT
 * until it closes. */
static void
relay_node_drain_cb(struct wloop *loop, struct wio *io, uint32_t events)
{
	struct conn *c = io->data;
	(void)events;
	if (relay_sink(loop, io))
		return;
	wio_forget(loop, io);
	close(c->sfd);
	c->sfd = -1;
}

/* The client talked before its greeting: 554 5.5.1 and the close. A node
 * already connected gets what it is owed (the PROXY header) and QUIT, and
 * its answer is read until it closes (or the client's linger ends); one
 * still connecting is closed before it ever greets. */
static void
relay_pregreet(struct conn *c)
{
	struct wloop *loop = &c->w->loop;
	if (c->sfd >= 0 && half_pending(&c->up) > 0)
		(void)relay_flush(c, &c->up, c->sfd); /* what fails stays */
	if (c->sfd >= 0 &&
	    (half_pending(&c->up) > 0 ||
	     send(c->sfd, "QUIT\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT) != 6)) {
		wio_forget(loop, &c->sio);
		close(c->sfd);
		c->sfd = -1;
	}
	if (c->sfd >= 0) {
		shutdown(c->sfd, SHUT_WR);
		c->sio.cb = relay_node_drain_cb;
		if (c->sio.ready & EPOLLIN)
			wio_feed(loop, &c->sio);
	}
	c->pregreet = false;
	relay_refuse(c, EDGE_PREGREET, NULL);
}

/* One reason to hold is over; with the last, on to a node. */
static void
relay_hold_release(struct conn *c)
{
	if (--c->holds > 0)
		return;
	c->cwant = 0;
	c->state = CONN_CONNECTING;
	relay_connect_next(c);
}

static void
relay_hold_cb(struct wloop *loop, struct wtimer *t)
{
	(void)loop;
	relay_hold_release(t->data);
}

static void
relay_dnsbl_done(void *arg, int score, const char *zone, bool listed)
{
	struct conn *c = arg;
	c->dq = NULL;
	if (listed) {
		log_debug("service %s: DNSBL score %d", c->svc->name, score);
		relay_refuse(c, EDGE_DNSBL, zone);
	} else
		relay_hold_release(c);
}

/* Starts the DNSBL lookups of the client (the worker's resolver made at
 * its first use). Returns the query, or NULL when there is none to wait
 * for (no resolver: the mail goes through). */
static struct dnsbl_query *
relay_dnsbl_start(struct conn *c)
{
	struct worker *w = c->w;
	struct edge_zone zones[EDGE_DNSBL_MAX];
	int threshold, timeout_ms;
	char err[256];
	if (w->dnsbl == NULL && !w->dnsbl_failed &&
	    (w->dnsbl = dnsbl_new(&w->loop, w->l->cfg->set.resolver, err,
				  sizeof(err))) == NULL) {
		log_err("worker %d: no DNSBL lookups: %s", w->id, err);
		w->dnsbl_failed = true;
	}
	if (w->dnsbl == NULL)
		return NULL;
	int n = edge_dnsbl_policy(c->svc->edge, zones, &threshold, &timeout_ms);
	return dnsbl_check(w->dnsbl, (struct sockaddr *)&c->peer, zones, n,
			   threshold, timeout_ms, relay_dnsbl_done, c);
}

/* SMTP: hold the client before any node for greet_delay_ms and its DNSBL
 * answers, watching for a pregreet meanwhile. */
static void
relay_hold(struct conn *c)
{
	struct wloop *loop = &c->w->loop;
	c->state = CONN_HOLDING;
	c->holds = 1; /* this function's own, released at its end */
	if (c->edge.greet_delay_ms > 0) {
		c->holds++;
		c->timer.cb = relay_hold_cb;
		wtimer_start(loop, &c->timer, c->edge.greet_delay_ms / 1000.0);
	}
	if (c->edge.dnsbl && (c->dq = relay_dnsbl_start(c)) != NULL)
		c->holds++;
	if (c->pregreet) {
		c->cwant = EPOLLIN;
		relay_kick(c, &c->cio, c->cfd, c->cwant);
	}
	relay_hold_release(c);
}

bool
relay_pick(struct conn *c)
{
	int tries = 1 + atomic_load(&c->svc->retries);
	if (tries > RELAY_MAX_TRIES)
		tries = RELAY_MAX_TRIES;
	if (c->ntried >= tries)
		return false;
	struct node *n =
	    pool_pick(c->pool, c->hash, c->tried, (size_t)c->ntried);
	if (n == NULL)
		return false;
	c->tried[c->ntried++] = n;
	c->node = n;
	c->node_written = c->node_nodelay = false;
	c->sfd = socket(n->addr.ss.ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->sfd >= 0)
		return true;
	log_warn("service %s: socket: %s", c->svc->name, strerror(errno));
	pool_release(n);
	c->node = NULL;
	return false;
}

/* Picks the next node not tried yet and starts connecting to it. */
static void
relay_connect_next(struct conn *c)
{
	struct wloop *loop = &c->w->loop;
	if (!relay_pick(c)) {
		relay_reply_unavailable(c);
		return;
	}
	if (wio_add(loop, &c->sio, c->sfd, true, 0) < 0) {
		log_warn("service %s: epoll_ctl: %s", c->svc->name,
			 strerror(errno));
		close(c->sfd);
		c->sfd = -1;
		pool_release(c->node);
		c->node = NULL;
		relay_reply_unavailable(c);
		return;
	}
	struct node *n = c->node;
	if (connect(c->sfd, (struct sockaddr *)&n->addr.ss, n->addr.len) == 0)
		relay_established(c);
	else if (errno != EINPROGRESS) {
		relay_connect_failed(c, errno);
		return;
	} else {
		/* No wait for writability: the node's socket is watched for
		 * what the relay needs, and the first byte moved, an error,
		 * or the timeout tells. */
		c->timer.cb = relay_connect_timeout_cb;
		wtimer_start(loop, &c->timer,
			     atomic_load(&c->svc->connect_timeout_ms) / 1000.0);
	}
	relay_update(c);
}

void
relay_accept(struct worker *w, struct service *svc, int fd,
	     const struct sockaddr *peer, socklen_t peerlen)
{
	struct conn *c = w->free_conns;
	if (c) {
		w->free_conns = c->next;
		w->nfree_conns--;
	} else if ((c = malloc(sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	memset(c, 0, sizeof(*c));
	c->w = w;
	c->svc = svc;
	c->pool = atomic_load(&svc->pool);
	c->cfd = fd;
	c->sfd = -1;
	c->up.pipe[0] = c->up.pipe[1] = -1;
	c->down.pipe[0] = c->down.pipe[1] = -1;
	memcpy(&c->peer, peer, peerlen);
	c->hash = addr_hash_host(peer);
	c->cio.cb = c->sio.cb = relay_io_cb;
	c->cio.data = c->sio.data = c;
	c->sio.fd = -1;
	c->timer.data = c;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;

	/* TCP_NODELAY: accepted sockets inherit it from the listener */
	atomic_fetch_add_explicit(&svc->total, 1, memory_order_relaxed);
	long active =
	    atomic_fetch_add_explicit(&svc->active, 1, memory_order_relaxed);
	int max = atomic_load(&svc->max_connections);
	bool full = max > 0 && active >= max;
	enum edge_reason why = EDGE_OK;
	if (full)
		log_debug("service %s: max_connections %d reached", svc->name,
			  max);
	else
		why = edge_admit(svc->edge, peer, w->loop.now, &c->edge);
	c->pregreet = c->edge.pregreet;
	bool held = c->edge.greet_delay_ms > 0 || c->edge.dnsbl || c->pregreet;
	if (w->loop.ring && !full && why == EDGE_OK && !held) {
		if (relay_proxy_header(c) < 0) {
			close(fd);
			relay_release(c);
		} else
			ur_start(c); /* the ring's path */
		return;
	}
	if (wio_add(&w->loop, &c->cio, fd, true, 0) < 0) {
		log_warn("service %s: epoll_ctl: %s", svc->name,
			 strerror(errno));
		relay_free(c);
		return;
	}
	if (full)
		relay_reply_unavailable(c);
	else if (why != EDGE_OK)
		relay_refuse(c, why, NULL);
	else if (relay_proxy_header(c) < 0)
		relay_free(c);
	else if (c->edge.greet_delay_ms > 0 || c->edge.dnsbl)
		relay_hold(c);
	else
		relay_connect_next(c);
}

void
relay_close_all(struct worker *w)
{
	while (w->conns) {
		if (w->conns->ur)
			ur_abort(w->conns);
		else
			relay_free(w->conns);
	}
}

void
relay_free_pools(struct worker *w)
{
	while (w->free_conns) {
		struct conn *c = w->free_conns;
		w->free_conns = c->next;
		free(c);
	}
	for (size_t i = 0; i < w->nfree_bufs; i++)
		free(w->free_bufs[i]);
	free(w->free_bufs);
	for (size_t i = 0; i < w->nfree_pipes; i++) {
		close(w->free_pipes[i][0]);
		close(w->free_pipes[i][1]);
	}
	free(w->free_pipes);
	w->free_bufs = NULL;
	w->free_pipes = NULL;
	w->nfree_bufs = w->nfree_pipes = 0;
}
