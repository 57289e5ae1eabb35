/*
 * relay_engines: a measuring instrument for the benchmark, not part of
 * lbd. A minimal single-threaded layer-4 relay (each listening port on
 * 127.0.0.1 to one backend address) with two event engines behind one
 * flag, so that the engine is the only difference between two runs:
 *
 *   relay_engines --engine epoll|uring --route PORT=HOST:PORT [--route ...]
 *                 [--splice on|off] [--max-conns N] [--bufs N]
 *                 [--collect-us N]
 *
 * epoll: what lbd's worker loop does (balancer/wloop.c, relay.c): every
 *   relay socket registered once, edge-triggered, EPOLLIN | EPOLLOUT |
 *   EPOLLRDHUP; accept4() in batches of 64 on a level-triggered listener;
 *   recv() into a 16 KiB buffer and send(); a direction whose read filled
 *   the buffer goes on with splice() through a 1 MiB pipe (--splice on, the
 *   default, as lbd; off: buffers only); at most 4 reads per wake-up and
 *   side; a FIN seen with the last bytes (EPOLLRDHUP) ends the direction
 *   with no read of its own.
 * uring: liburing 2.3 (io_uring_register_buf_ring, no setup_buf_ring):
 *   one ring (SINGLE_ISSUER | DEFER_TASKRUN where the kernel has them), a
 *   multishot accept, IORING_OP_CONNECT, one multishot recv per direction
 *   into a ring of provided 16 KiB buffers, IORING_OP_SEND of each buffer
 *   as it comes, IORING_OP_CLOSE. At most 64 buffers (1 MiB, lbd's pipe)
 *   wait per direction: past that its recv is cancelled and armed again
 *   once half of them are sent. With --splice on, a direction whose recv
 *   filled a buffer goes on with IORING_OP_SPLICE through a 1 MiB pipe
 *   (one splice in and one out at a time): the kernel always runs those
 *   in io-wq threads, blocking (no poll-driven retry for splice), so
 *   that row measures the thread hand-off as much as the ring.
 *   socket(), shutdown() and the TCP_NODELAY setsockopt() are plain
 *   system calls in both engines (IORING_OP_SHUTDOWN is always punted to
 *   an io-wq thread too).
 *
 * Both: --collect-us N does what lbd's io_collect_us does (off by default,
 * lbd's default is 100); the listener has TCP_NODELAY (accepted sockets inherit
 * it), the node's socket gets it before its second write (as lbd); a fixed
 * table of
 * --max-conns connections (a client past it is closed at once); half-close
 * kept (each FIN passed on with shutdown() once its direction is flushed;
 * both sockets closed once both directions are); a reset or a failed
 * connect closes both sides. No timeouts, no health checks, no balancing:
 * a bench instrument. SIGTERM or SIGINT stops it; it then prints its
 * counters on stderr:
 *   relay_engines: accepted N closed N refused N connect_failed N errors N
 * Exit status 0, 1 on a start-up failure, 2 on a usage error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define RELAY_BUF 16384	     /* lbd's RELAY_BUF */
#define SPLICE_CHUNK 1048576 /* lbd's pipe size */
#define PUMP_ROUNDS 4	     /* lbd's RELAY_PUMP_ROUNDS */
#define ACCEPT_BATCH 64	     /* lbd's ACCEPT_BATCH */
#define BACKLOG 1024	     /* lbd's net_listen() */
#define EP_EVENTS 256	     /* lbd's WLOOP_EVENTS */
#define SPARE_PIPES 16	     /* lbd's SPARE_PIPES */
#define HALF_MAX_BUFS (SPLICE_CHUNK / RELAY_BUF)

static const char usage[] =
    "usage: relay_engines --engine epoll|uring --route PORT=HOST:PORT "
    "[--route ...]\n"
    "                     [--splice on|off] [--max-conns N] [--bufs N]\n"
    "                     [--collect-us N]\n"
    "A minimal layer-4 relay from 127.0.0.1:PORT to HOST:PORT (IPv4) with\n"
    "the event engine chosen by --engine (a benchmark instrument; see the\n"
    "comment at the top of bench/relay_engines.c).\n"
    "  --route P=H:Q    listen on 127.0.0.1:P, relay to H:Q (up to 8)\n"
    "  --engine epoll   edge-triggered epoll, sockets registered once (lbd's)\n"
    "  --engine uring   io_uring: multishot accept and recv with provided\n"
    "                   buffers, connect, send, close\n"
    "  --splice on|off  bulk directions through a pipe (default on)\n"
    "  --max-conns N    connection table size (default 16384)\n"
    "  --collect-us N   while busy, wait N µs between polls (lbd's\n"
    "                   io_collect_us; default 0: off)\n"
    "  --bufs N         uring: provided 16 KiB buffers, a power of two\n"
    "                   (default 4096)\n";

static struct {
	unsigned long accepted, closed, refused, connect_failed, errors;
} st;

/* SIGTERM and SIGINT are blocked and come through sigfd, which each
 * engine watches like a socket (no race between a check and a wait) */
static int sigfd = -1;
static bool stopping;

static void
die(const char *what, int err)
{
	fprintf(stderr, "relay_engines: %s: %s\n", what, strerror(err));
	exit(1);
}

#define MAX_ROUTES 8

static struct route {
	int port;
	struct sockaddr_in backend;
	int lfd;
} routes[MAX_ROUTES];
static int nroutes;
static int max_conns = 16384;

/* --collect-us, lbd's io_collect_us: while busy, the loop sleeps what is
 * left of the interval since its last wait returned before it waits again.
 * Busy: a wait that brought COLLECT_BUSY_EVENTS events (CQEs) or more, then
 * COLLECT_BUSY_RATE a second or more (balancer/wloop.c's rule). */
#define COLLECT_BUSY_EVENTS 3
#define COLLECT_BUSY_RATE 50000.
static double collect_s;
static bool collecting;
static struct timespec last_wait;

static double
elapsed_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) +
	       (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

/* Before a wait: the collect interval's nap, when busy. */
static void
collect_nap(void)
{
	if (!collecting)
		return;
	double left = collect_s - elapsed_since(&last_wait);
	if (left > 0) {
		struct timespec ts = {0, (long)(left * 1e9)};
		nanosleep(&ts, NULL);
	}
}

/* After a wait that brought n events. */
static void
collect_update(int n)
{
	if (collect_s <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &last_wait);
	collecting = collecting ? n >= collect_s * COLLECT_BUSY_RATE
				: n >= COLLECT_BUSY_EVENTS;
}

static int
listen_on(int port, bool nonblock)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int one = 1;
	int fd = socket(
	    AF_INET,
	    SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, BACKLOG) < 0)
		die("listen", errno);
	return fd;
}

static void
set_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---- epoll ---------------------------------------------------------- */

struct ep_conn;

struct ep_io {
	int fd;
	uint32_t ready;	     /* EPOLL* bits seen and not used up */
	struct ep_conn *c;   /* NULL: a listener, or sigfd */
	struct route *route; /* a listener's; NULL: sigfd */
};

/* One direction: bytes read from one socket, pending for the other. */
struct ep_half {
	int pipe[2];
	size_t inpipe;
	char *buf; /* pending bytes buf[off..len) */
	size_t off, len;
	bool eof, shut, bulk;
};

struct ep_conn {
	struct ep_io cio, sio;
	struct ep_half up, down; /* client to node, node to client */
	bool used, connecting, node_written, node_nodelay;
	bool again;		     /* on ep.again */
	struct ep_conn *next;	     /* on ep.free or ep.again */
	struct ep_conn *next_closed; /* on ep.closed */
};

/* Spare pipes for bulk directions, one pool per engine (the epoll
 * engine's are non-blocking, the ring's blocking: its splices run in
 * io-wq threads). */
struct pipes {
	int spare[SPARE_PIPES][2];
	int n;
	int flags; /* for pipe2() */
};

/* A pipe into fd[2]: a spare one, or a new one of SPLICE_CHUNK. */
static int
pipes_get(struct pipes *p, int fd[2])
{
	if (p->n > 0) {
		p->n--;
		fd[0] = p->spare[p->n][0];
		fd[1] = p->spare[p->n][1];
		return 0;
	}
	if (pipe2(fd, p->flags | O_CLOEXEC) < 0)
		return -1;
	(void)fcntl(fd[1], F_SETPIPE_SZ, SPLICE_CHUNK);
	return 0;
}

/* Gives fd[2] back (kept while empty and the pool has room, else
 * closed); fd[] becomes -1. */
static void
pipes_put(struct pipes *p, int fd[2], bool empty)
{
	if (fd[0] < 0)
		return;
	if (empty && p->n < SPARE_PIPES) {
		p->spare[p->n][0] = fd[0];
		p->spare[p->n++][1] = fd[1];
	} else {
		close(fd[0]);
		close(fd[1]);
	}
	fd[0] = fd[1] = -1;
}

static struct {
	int epfd;
	bool splice;
	struct ep_conn *conns, *free, *again, *closed;
	struct pipes pipes;
	char **spare_bufs;
	int nbufs;
} ep;

static inline size_t
ep_pending(const struct ep_half *h)
{
	return (h->buf ? h->len - h->off : 0) + h->inpipe;
}

static void
ep_buf_put(struct ep_half *h)
{
	if (h->buf)
		ep.spare_bufs[ep.nbufs++] = h->buf; /* 2 per conn at most */
	h->buf = NULL;
	h->off = h->len = 0;
}

static void
ep_pipe_put(struct ep_half *h)
{
	pipes_put(&ep.pipes, h->pipe, h->inpipe == 0);
	h->inpipe = 0;
}

/* Ends c: closes both sockets (which takes them out of the set); the slot
 * goes back to the free list once this batch of events is done and c is
 * not on the run-again list. */
static void
ep_close(struct ep_conn *c)
{
	close(c->cio.fd);
	close(c->sio.fd);
	ep_buf_put(&c->up);
	ep_buf_put(&c->down);
	ep_pipe_put(&c->up);
	ep_pipe_put(&c->down);
	c->used = false;
	c->cio.ready = c->sio.ready = 0;
	c->next_closed = ep.closed;
	ep.closed = c;
	st.closed++;
}

/* A call on io's socket moved bytes: when it is the node's, the connect
 * is proven (no getsockopt). */
static inline void
ep_moved(struct ep_conn *c, struct ep_io *io)
{
	if (io == &c->sio)
		c->connecting = false;
}

static int
ep_failed(struct ep_conn *c)
{
	if (c->connecting)
		st.connect_failed++;
	else
		st.errors++;
	return -1;
}

/* Moves h's pending bytes to io's socket. Returns 0, -1 to end c. */
static int
ep_flush(struct ep_conn *c, struct ep_half *h, struct ep_io *io)
{
	while (h->buf && h->off < h->len) {
		if (io == &c->sio && c->node_written && !c->node_nodelay) {
			set_nodelay(io->fd);
			c->node_nodelay = true;
		}
		ssize_t n = send(io->fd, h->buf + h->off, h->len - h->off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN)
				io->ready &= ~EPOLLOUT;
			return errno == EAGAIN || errno == EINTR ? 0
								 : ep_failed(c);
		}
		h->off += (size_t)n;
		c->node_written |= io == &c->sio;
		ep_moved(c, io);
	}
	ep_buf_put(h);
	while (h->inpipe > 0) {
		ssize_t n = splice(h->pipe[0], NULL, io->fd, NULL, h->inpipe,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0) {
			if (errno == EAGAIN)
				io->ready &= ~EPOLLOUT;
			return errno == EAGAIN || errno == EINTR ? 0
								 : ep_failed(c);
		}
		h->inpipe -= (size_t)n;
		c->node_written |= io == &c->sio;
		ep_moved(c, io);
	}
	ep_pipe_put(h);
	return 0;
}

/* Moves what `from` has to `to` (lbd's relay_pump, less its counters).
 * Returns 0, -1 to end c. */
static int
ep_pump(struct ep_conn *c, struct ep_half *h, struct ep_io *from,
	struct ep_io *to)
{
	for (int round = 0; round < PUMP_ROUNDS; round++) {
		ssize_t n;
		size_t want = RELAY_BUF;
		bool fin = false;
		if (h->bulk &&
		    (h->pipe[0] >= 0 || pipes_get(&ep.pipes, h->pipe) == 0)) {
			want = SPLICE_CHUNK;
			n = splice(from->fd, NULL, h->pipe[1], NULL, want,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0)
				h->inpipe += (size_t)n;
		} else {
			if (h->buf == NULL &&
			    (h->buf = ep.nbufs > 0 ? ep.spare_bufs[--ep.nbufs]
						   : malloc(RELAY_BUF)) == NULL)
				return ep_failed(c);
			n = recv(from->fd, h->buf, RELAY_BUF, MSG_DONTWAIT);
			if (n > 0) {
				h->off = 0;
				h->len = (size_t)n;
				h->bulk = ep.splice && n == RELAY_BUF;
			}
			if (n > 0 && n < RELAY_BUF) {
				from->ready &= ~EPOLLIN;
				fin = (from->ready & (EPOLLRDHUP | EPOLLERR)) ==
				      EPOLLRDHUP;
			}
		}
		if (n < 0) {
			if (errno == EAGAIN)
				from->ready &= ~EPOLLIN;
			if (errno == EAGAIN || errno == EINTR)
				return ep_flush(c, h, to);
			return ep_failed(c);
		}
		ep_moved(c, from);
		if (n == 0 || fin)
			h->eof = true;
		if (ep_flush(c, h, to) < 0)
			return -1;
		if (n == 0 || ep_pending(h) > 0 || (size_t)n < want)
			return 0;
	}
	return 0;
}

/* The node's socket is writable while connecting, and only the client's
 * FIN waits to be passed on: asks how the connect ended (otherwise the
 * first byte moved either way proves it, as in lbd). */
static int
ep_connect_check(struct ep_conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->sio.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err != 0)
		return ep_failed(c);
	c->connecting = false;
	return 0;
}

/* Passes h's FIN on once h is flushed. */
static void
ep_pass_fin(struct ep_conn *c, struct ep_half *h, struct ep_io *to)
{
	if (h->eof && !h->shut && ep_pending(h) == 0 &&
	    !(to == &c->sio && c->connecting)) {
		shutdown(to->fd, SHUT_WR);
		h->shut = true;
	}
}

/* Runs what c's sockets are ready for. */
static void
ep_run(struct ep_conn *c)
{
	int rc = 0;
	if (c->cio.ready & (EPOLLERR | EPOLLHUP))
		c->cio.ready |= EPOLLIN | EPOLLOUT; /* the calls tell what */
	if (c->sio.ready & (EPOLLERR | EPOLLHUP))
		c->sio.ready |= EPOLLIN | EPOLLOUT;
	if ((c->sio.ready & EPOLLOUT) && ep_pending(&c->up) > 0)
		rc = ep_flush(c, &c->up, &c->sio);
	if (rc == 0 && (c->cio.ready & EPOLLOUT) && ep_pending(&c->down) > 0)
		rc = ep_flush(c, &c->down, &c->cio);
	if (rc == 0 && (c->cio.ready & EPOLLIN) && !c->up.eof &&
	    ep_pending(&c->up) == 0)
		rc = ep_pump(c, &c->up, &c->cio, &c->sio);
	if (rc == 0 && (c->sio.ready & EPOLLIN) && !c->down.eof &&
	    ep_pending(&c->down) == 0)
		rc = ep_pump(c, &c->down, &c->sio, &c->cio);
	/* (after the client's pump, which may have read its FIN) */
	if (rc == 0 && c->connecting && (c->sio.ready & EPOLLOUT) &&
	    c->up.eof && ep_pending(&c->up) == 0)
		rc = ep_connect_check(c);
	if (rc < 0) {
		ep_close(c);
		return;
	}
	if (c->up.eof && c->down.eof && ep_pending(&c->up) == 0 &&
	    ep_pending(&c->down) == 0) {
		ep_close(c); /* close() sends the FINs not passed on yet */
		return;
	}
	ep_pass_fin(c, &c->up, &c->sio);
	ep_pass_fin(c, &c->down, &c->cio);
	/* a side still readable after PUMP_ROUNDS reads gets no new edge:
	 * it runs again after the next poll (which then does not wait) */
	bool more = ((c->cio.ready & EPOLLIN) && !c->up.eof &&
		     ep_pending(&c->up) == 0) ||
		    ((c->sio.ready & EPOLLIN) && !c->down.eof &&
		     ep_pending(&c->down) == 0);
	if (more && !c->again) {
		c->again = true;
		c->next = ep.again;
		ep.again = c;
	}
}

static void
ep_accept(struct route *r)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd =
		    accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or a shortage: the next poll retries
				 */
		st.accepted++;
		struct ep_conn *c = ep.free;
		if (c == NULL) {
			st.refused++;
			close(fd);
			continue;
		}
		int sfd = socket(AF_INET,
				 SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (sfd < 0) {
			st.errors++;
			close(fd);
			continue;
		}
		ep.free = c->next;
		*c = (struct ep_conn){.used = true, .connecting = true};
		c->up.pipe[0] = c->up.pipe[1] = -1;
		c->down.pipe[0] = c->down.pipe[1] = -1;
		c->cio = (struct ep_io){.fd = fd, .c = c};
		c->sio = (struct ep_io){.fd = sfd, .c = c};
		struct epoll_event ce = {.events = EPOLLIN | EPOLLOUT |
						   EPOLLRDHUP | EPOLLET,
					 .data.ptr = &c->cio};
		struct epoll_event se = ce;
		se.data.ptr = &c->sio;
		if (epoll_ctl(ep.epfd, EPOLL_CTL_ADD, fd, &ce) < 0 ||
		    epoll_ctl(ep.epfd, EPOLL_CTL_ADD, sfd, &se) < 0 ||
		    (connect(sfd, (struct sockaddr *)&r->backend,
			     sizeof(r->backend)) < 0 &&
		     errno != EINPROGRESS)) {
			st.connect_failed++;
			ep_close(c);
		}
	}
}

static void
ep_main(void)
{
	struct epoll_event evs[EP_EVENTS];
	static struct ep_io lio[MAX_ROUTES], sio = {.fd = -1};
	ep.conns = calloc((size_t)max_conns, sizeof(*ep.conns));
	ep.spare_bufs = calloc(2 * (size_t)max_conns, sizeof(char *));
	ep.pipes.flags = O_NONBLOCK;
	if ((ep.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || !ep.conns ||
	    !ep.spare_bufs)
		die("epoll", errno ? errno : ENOMEM);
	for (int i = max_conns - 1; i >= 0; i--) {
		ep.conns[i].next = ep.free;
		ep.free = &ep.conns[i];
	}
	for (int i = 0; i < nroutes; i++) {
		routes[i].lfd = listen_on(routes[i].port, true);
		lio[i] =
		    (struct ep_io){.fd = routes[i].lfd, .route = &routes[i]};
		struct epoll_event le = {.events = EPOLLIN,
					 .data.ptr = &lio[i]};
		if (epoll_ctl(ep.epfd, EPOLL_CTL_ADD, lio[i].fd, &le) < 0)
			die("epoll_ctl", errno);
	}
	struct epoll_event se = {.events = EPOLLIN, .data.ptr = &sio};
	if (epoll_ctl(ep.epfd, EPOLL_CTL_ADD, sigfd, &se) < 0)
		die("epoll_ctl", errno);
	while (!stopping) {
		if (!ep.again)
			collect_nap();
		int n = epoll_wait(ep.epfd, evs, EP_EVENTS, ep.again ? 0 : -1);
		if (n < 0 && errno != EINTR)
			die("epoll_wait", errno);
		int busy = 0; /* (writable alone does not count, as in lbd) */
		for (int i = 0; i < n; i++)
			busy += evs[i].events != EPOLLOUT;
		collect_update(busy);
		/* what was left to run first, then what this poll brought;
		 * every socket's bits are set before any connection runs */
		struct ep_conn *again = ep.again;
		ep.again = NULL;
		for (int i = 0; i < n; i++) {
			struct ep_io *io = evs[i].data.ptr;
			if (io->c)
				io->ready |= evs[i].events;
		}
		for (struct ep_conn *c = again, *next; c; c = next) {
			next = c->next;
			c->again = false;
			if (c->used)
				ep_run(c);
		}
		for (int i = 0; i < n; i++) {
			struct ep_io *io = evs[i].data.ptr;
			if (io == &sio)
				stopping = true;
			else if (io->c == NULL)
				ep_accept(io->route);
			else if (io->c->used) /* not closed earlier */
				ep_run(io->c);
		}
		/* slots closed in this batch are free again only now, so an
		 * event later in the batch never reaches a new connection */
		struct ep_conn *closed = ep.closed;
		ep.closed = NULL;
		for (struct ep_conn *c = closed, *next; c; c = next) {
			next = c->next_closed;
			if (c->again) { /* still listed: next time */
				c->next_closed = ep.closed;
				ep.closed = c;
				continue;
			}
			c->next = ep.free;
			ep.free = c;
		}
	}
}

/* ---- io_uring ------------------------------------------------------- */

enum ur_op {
	OP_ACCEPT = 1,
	OP_CONNECT,
	OP_RECV,
	OP_SEND,
	OP_CLOSE,
	OP_CANCEL,
	OP_SPLICE_IN,
	OP_SPLICE_OUT,
	OP_SIGNAL
};

/* One direction: buffers received from `from`, queued for `to`. */
struct ur_half {
	int from, to;
	int head, tail; /* queued buffer ids, linked by ur.next; -1: none */
	unsigned off;	/* bytes of head sent */
	unsigned queued;
	bool armed;   /* its multishot recv is on */
	bool paused;  /* cancelled: too many buffers queued */
	bool starved; /* ended for want of buffers: on ur.starved */
	bool sending; /* a send (or a splice out of the pipe) is on */
	bool eof, shut;
	bool bulk;   /* --splice on and a recv filled a buffer: the pipe */
	bool spl_in; /* a splice into the pipe is on */
	int pipe[2]; /* -1: none held */
	unsigned inpipe;
};

struct ur_conn {
	struct ur_half h[2]; /* 0: client to node, 1: node to client */
	int cfd, sfd;
	int inflight; /* requests whose last completion has not come */
	bool used, connected, failing, done, node_written, node_nodelay;
	struct ur_conn *next_free;
};

static struct {
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	char *bufs;
	unsigned nbufs, mask;
	int *len, *next; /* per buffer id */
	struct ur_conn *conns, *free;
	bool splice;
	struct pipes pipes;
	uint32_t *starved; /* conn index << 1 | half */
	int nstarved;
	bool recycled;
} ur;

static inline uint64_t
ur_data(struct ur_conn *c, int half, enum ur_op op)
{
	return (uint64_t)(c - ur.conns) << 8 | (uint64_t)half << 4 | op;
}

static struct io_uring_sqe *
ur_sqe(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ur.ring);
	if (sqe == NULL) {
		io_uring_submit(&ur.ring);
		sqe = io_uring_get_sqe(&ur.ring);
	}
	if (sqe == NULL)
		die("io_uring_get_sqe", EBUSY);
	return sqe;
}

/* Gives buffer bid back to the kernel's ring. */
static void
ur_recycle(int bid)
{
	io_uring_buf_ring_add(ur.br, ur.bufs + (size_t)bid * RELAY_BUF,
			      RELAY_BUF, (unsigned short)bid, (int)ur.mask, 0);
	io_uring_buf_ring_advance(ur.br, 1);
	ur.recycled = true;
}

/* user_data: the route's index << 8 | OP_ACCEPT */
static void
ur_arm_accept(int route)
{
	struct io_uring_sqe *sqe = ur_sqe();
	io_uring_prep_multishot_accept(sqe, routes[route].lfd, NULL, NULL,
				       SOCK_CLOEXEC);
	sqe->user_data = (uint64_t)route << 8 | OP_ACCEPT;
}

static void
ur_arm_recv(struct ur_conn *c, int half)
{
	struct ur_half *h = &c->h[half];
	struct io_uring_sqe *sqe = ur_sqe();
	io_uring_prep_recv_multishot(sqe, h->from, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = 0;
	sqe->user_data = ur_data(c, half, OP_RECV);
	h->armed = true;
	h->paused = false;
	c->inflight++;
}

static void
ur_send_next(struct ur_conn *c, int half)
{
	struct ur_half *h = &c->h[half];
	if (h->sending || h->head < 0 || (half == 0 && !c->connected))
		return;
	if (h->to == c->sfd && c->node_written && !c->node_nodelay) {
		set_nodelay(c->sfd);
		c->node_nodelay = true;
	}
	struct io_uring_sqe *sqe = ur_sqe();
	io_uring_prep_send(sqe, h->to,
			   ur.bufs + (size_t)h->head * RELAY_BUF + h->off,
			   (size_t)ur.len[h->head] - h->off, MSG_NOSIGNAL);
	sqe->user_data = ur_data(c, half, OP_SEND);
	h->sending = true;
	c->inflight++;
}

static void
ur_free_queue(struct ur_half *h)
{
	while (h->head >= 0) {
		int bid = h->head;
		h->head = ur.next[bid];
		ur_recycle(bid);
	}
	h->tail = -1;
	h->queued = 0;
}

static void
ur_pipe_put(struct ur_half *h)
{
	pipes_put(&ur.pipes, h->pipe, h->inpipe == 0);
	h->inpipe = 0;
}

/* Both ends of h are done: its FIN seen, nothing pending or on. */
static inline bool
ur_drained(const struct ur_half *h)
{
	return h->eof && !h->sending && h->head < 0 && h->inpipe == 0 &&
	       !h->armed && !h->spl_in;
}

/* The slot is free once no request of c can complete any more. */
static void
ur_maybe_release(struct ur_conn *c)
{
	if (!c->done || c->inflight > 0)
		return;
	c->used = false;
	c->next_free = ur.free;
	ur.free = c;
}

/* Both directions are over (or c failed): close both sockets. */
static void
ur_finish(struct ur_conn *c)
{
	if (c->done)
		return;
	c->done = true;
	for (int i = 0; i < 2; i++) {
		ur_free_queue(&c->h[i]);
		ur_pipe_put(&c->h[i]);
	}
	int fds[2] = {c->cfd, c->sfd};
	for (int i = 0; i < 2; i++) {
		struct io_uring_sqe *sqe = ur_sqe();
		io_uring_prep_close(sqe, fds[i]);
		sqe->user_data = OP_CLOSE;
	}
	st.closed++;
	ur_maybe_release(c);
}

/* A reset or a failed connect: cancel what is pending on both sockets,
 * then close them once it has all completed. */
static void
ur_fail(struct ur_conn *c)
{
	if (c->failing || c->done)
		return;
	c->failing = true;
	ur_free_queue(&c->h[0]);
	ur_free_queue(&c->h[1]);
	/* a splice into a pipe is the pipe's request, not the socket's */
	int fds[4] = {c->cfd, c->sfd, c->h[0].pipe[1], c->h[1].pipe[1]};
	for (int i = 0; i < 4; i++) {
		if (fds[i] < 0)
			continue;
		struct io_uring_sqe *sqe = ur_sqe();
		io_uring_prep_cancel_fd(sqe, fds[i], IORING_ASYNC_CANCEL_ALL);
		sqe->user_data = ur_data(c, 0, OP_CANCEL);
		c->inflight++;
	}
}

/* Passes h's FIN on once h is flushed; finishes c once both are. */
static void
ur_check_fin(struct ur_conn *c, int half)
{
	struct ur_half *h = &c->h[half], *o = &c->h[!half];
	if (c->failing || c->done || !ur_drained(h) ||
	    (half == 0 && !c->connected))
		return;
	if (ur_drained(o)) {
		ur_finish(c); /* close() sends the FINs not passed on yet */
		return;
	}
	if (h->shut)
		return;
	/* a plain call: IORING_OP_SHUTDOWN always goes to an io-wq thread,
	 * which looks the descriptor up only when it runs, maybe after the
	 * close and on the next connection that got the same number */
	shutdown(h->to, SHUT_WR);
	h->shut = true;
}

static void
ur_on_accept(struct io_uring_cqe *cqe)
{
	int route = (int)(cqe->user_data >> 8);
	if (!(cqe->flags & IORING_CQE_F_MORE))
		ur_arm_accept(route);
	if (cqe->res < 0)
		return; /* EMFILE and the like: the next one may do */
	int fd = cqe->res;
	st.accepted++;
	struct ur_conn *c = ur.free;
	int sfd = c ? socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
	if (sfd < 0) {
		if (c)
			st.errors++;
		else
			st.refused++;
		close(fd);
		return;
	}
	ur.free = c->next_free;
	*c = (struct ur_conn){.used = true, .cfd = fd, .sfd = sfd};
	c->h[0] = (struct ur_half){
	    .from = fd, .to = sfd, .head = -1, .tail = -1, .pipe = {-1, -1}};
	c->h[1] = (struct ur_half){
	    .from = sfd, .to = fd, .head = -1, .tail = -1, .pipe = {-1, -1}};
	struct io_uring_sqe *sqe = ur_sqe();
	io_uring_prep_connect(sqe, sfd,
			      (struct sockaddr *)&routes[route].backend,
			      sizeof(routes[route].backend));
	sqe->user_data = ur_data(c, 0, OP_CONNECT);
	c->inflight++;
	ur_arm_recv(c, 0); /* the client's first bytes wait in buffers */
}

/* A bulk direction whose recv has ended: splices from its socket into
 * its pipe while the pipe has room, and out of the pipe once the buffers
 * received before are sent. Both kinds run in io-wq threads, blocking
 * (IORING_OP_SPLICE is never driven by poll); one of each at a time. */
static void
ur_splice_pump(struct ur_conn *c, int half)
{
	struct ur_half *h = &c->h[half];
	if (h->armed || c->failing || c->done)
		return;
	if (h->pipe[0] < 0 && pipes_get(&ur.pipes, h->pipe) < 0) {
		st.errors++;
		ur_fail(c);
		return;
	}
	if (!h->sending && h->head < 0 && h->inpipe > 0 &&
	    (half == 1 || c->connected)) {
		if (h->to == c->sfd && c->node_written && !c->node_nodelay) {
			set_nodelay(c->sfd);
			c->node_nodelay = true;
		}
		struct io_uring_sqe *sqe = ur_sqe();
		io_uring_prep_splice(sqe, h->pipe[0], -1, h->to, -1, h->inpipe,
				     SPLICE_F_MOVE);
		sqe->user_data = ur_data(c, half, OP_SPLICE_OUT);
		h->sending = true;
		c->inflight++;
	}
	if (!h->spl_in && !h->eof && h->inpipe < SPLICE_CHUNK) {
		struct io_uring_sqe *sqe = ur_sqe();
		io_uring_prep_splice(sqe, h->from, -1, h->pipe[1], -1,
				     SPLICE_CHUNK - h->inpipe, SPLICE_F_MOVE);
		sqe->user_data = ur_data(c, half, OP_SPLICE_IN);
		h->spl_in = true;
		c->inflight++;
	}
}

/* A completion of c's came: one fewer in flight. Returns false when c is
 * ending (what is left of it is let go) or when res, the result, is a
 * failure (counted in *failures; c fails); true to go on. A caller that
 * reads its own failures passes res 0. */
static bool
ur_settled(struct ur_conn *c, int res, unsigned long *failures)
{
	c->inflight--;
	if (c->failing || c->done) {
		ur_maybe_release(c);
		return false;
	}
	if (res < 0) {
		(*failures)++;
		ur_fail(c);
		return false;
	}
	return true;
}

static void
ur_on_recv(struct ur_conn *c, int half, struct io_uring_cqe *cqe)
{
	struct ur_half *h = &c->h[half];
	bool more = cqe->flags & IORING_CQE_F_MORE;
	if (cqe->res > 0) {
		int bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		if (c->failing || c->done) {
			ur_recycle(bid);
		} else {
			ur.len[bid] = cqe->res;
			ur.next[bid] = -1;
			if (h->tail >= 0)
				ur.next[h->tail] = bid;
			else
				h->head = bid;
			h->tail = bid;
			h->queued++;
			ur_send_next(c, half);
			if (ur.splice && cqe->res == RELAY_BUF)
				h->bulk = true; /* the pipe, once recv ends */
			if (more && !h->paused &&
			    (h->queued >= HALF_MAX_BUFS || h->bulk)) {
				struct io_uring_sqe *sqe = ur_sqe();
				io_uring_prep_cancel64(
				    sqe, ur_data(c, half, OP_RECV), 0);
				sqe->user_data = ur_data(c, half, OP_CANCEL);
				h->paused = true;
				c->inflight++;
			}
		}
	}
	if (more)
		return;
	h->armed = false;
	if (!ur_settled(c, 0, NULL))
		return;
	if (cqe->res == 0)
		h->eof = true;
	else if (h->bulk && (cqe->res > 0 || cqe->res == -ECANCELED ||
			     cqe->res == -ENOBUFS))
		ur_splice_pump(c, half);
	else if (cqe->res == -ENOBUFS && !h->starved) {
		if (ur.nstarved < 4 * max_conns) {
			h->starved = true;
			ur.starved[ur.nstarved++] =
			    (uint32_t)(c - ur.conns) << 1 | (uint32_t)half;
		} else
			ur_arm_recv(c, half); /* (the list is full) */
	} else if (cqe->res == -ECANCELED) {
		if (h->queued <= HALF_MAX_BUFS / 2)
			ur_arm_recv(c, half); /* sent meanwhile */
	} else if (cqe->res < 0 && cqe->res != -ENOBUFS) {
		st.errors++;
		ur_fail(c);
		return;
	} else if (cqe->res > 0 && !h->paused)
		ur_arm_recv(c, half);
	ur_check_fin(c, half);
}

static void
ur_on_send(struct ur_conn *c, int half, struct io_uring_cqe *cqe)
{
	struct ur_half *h = &c->h[half];
	h->sending = false;
	if (!ur_settled(c, cqe->res, &st.errors))
		return;
	if (h->to == c->sfd)
		c->node_written = true;
	h->off += (unsigned)cqe->res;
	if ((int)h->off >= ur.len[h->head]) {
		int bid = h->head;
		h->head = ur.next[bid];
		if (h->head < 0)
			h->tail = -1;
		h->off = 0;
		h->queued--;
		ur_recycle(bid);
	}
	ur_send_next(c, half);
	if (h->bulk)
		ur_splice_pump(c, half);
	else if (h->paused && !h->armed && !h->eof &&
		 h->queued <= HALF_MAX_BUFS / 2)
		ur_arm_recv(c, half);
	ur_check_fin(c, half);
}

/* A splice into or out of h's pipe completed. */
static void
ur_on_splice(struct ur_conn *c, int half, bool in, struct io_uring_cqe *cqe)
{
	struct ur_half *h = &c->h[half];
	if (in)
		h->spl_in = false;
	else
		h->sending = false;
	if (!ur_settled(c, cqe->res, &st.errors))
		return;
	if (in && cqe->res == 0)
		h->eof = true;
	else if (in)
		h->inpipe += (unsigned)cqe->res;
	else {
		h->inpipe -= (unsigned)cqe->res;
		if (h->to == c->sfd)
			c->node_written = true;
	}
	ur_splice_pump(c, half);
	ur_check_fin(c, half);
}

static void
ur_on_connect(struct ur_conn *c, struct io_uring_cqe *cqe)
{
	if (!ur_settled(c, cqe->res, &st.connect_failed))
		return;
	c->connected = true;
	ur_arm_recv(c, 1);
	ur_send_next(c, 0);
	ur_check_fin(c, 0);
}

static void
ur_on_cqe(struct io_uring_cqe *cqe)
{
	enum ur_op op = (enum ur_op)(cqe->user_data & 0xf);
	if (op == OP_ACCEPT) {
		ur_on_accept(cqe);
		return;
	}
	if (op == OP_SIGNAL)
		stopping = true;
	if (op == OP_CLOSE || op == OP_SIGNAL)
		return;
	struct ur_conn *c = &ur.conns[cqe->user_data >> 8];
	int half = (int)(cqe->user_data >> 4 & 1);
	switch (op) {
	case OP_CONNECT:
		ur_on_connect(c, cqe);
		break;
	case OP_RECV:
		ur_on_recv(c, half, cqe);
		break;
	case OP_SEND:
		ur_on_send(c, half, cqe);
		break;
	case OP_SPLICE_IN:
	case OP_SPLICE_OUT:
		ur_on_splice(c, half, op == OP_SPLICE_IN, cqe);
		break;
	case OP_CANCEL:
		c->inflight--;
		ur_maybe_release(c);
		break;
	default:
		break;
	}
	if (c->failing && !c->done && c->inflight == 0)
		ur_finish(c);
}

/* Buffers came back: the directions that ran out of them read again. */
static void
ur_feed_starved(void)
{
	int n = ur.nstarved;
	ur.nstarved = 0;
	for (int i = 0; i < n; i++) {
		struct ur_conn *c = &ur.conns[ur.starved[i] >> 1];
		int half = (int)(ur.starved[i] & 1);
		struct ur_half *h = &c->h[half];
		/* (an entry may be stale: its slot ended and was taken again)
		 */
		if (h->starved && c->used && !c->failing && !c->done &&
		    !h->armed && !h->eof && (half == 0 || c->connected))
			ur_arm_recv(c, half);
		h->starved = false;
	}
}

static void
ur_main(unsigned nbufs)
{
	struct io_uring_params p = {0};
	const unsigned flag_sets[] = {IORING_SETUP_SINGLE_ISSUER |
					  IORING_SETUP_DEFER_TASKRUN,
				      IORING_SETUP_COOP_TASKRUN, 0};
	int rc = -EINVAL;
	for (size_t i = 0; i < 3 && rc < 0; i++) {
		p = (struct io_uring_params){.flags = flag_sets[i] |
						      IORING_SETUP_CQSIZE,
					     .cq_entries = 16384};
		rc = io_uring_queue_init_params(2048, &ur.ring, &p);
		if (rc == 0)
			fprintf(stderr, "relay_engines: io_uring flags %#x\n",
				p.flags);
	}
	if (rc < 0)
		die("io_uring_queue_init_params", -rc);
	(void)io_uring_register_ring_fd(&ur.ring);
	ur.nbufs = nbufs;
	ur.mask = (unsigned)io_uring_buf_ring_mask(nbufs);
	size_t ringsz = nbufs * sizeof(struct io_uring_buf);
	ur.br = mmap(NULL, ringsz, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ur.bufs = mmap(NULL, (size_t)nbufs * RELAY_BUF, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ur.len = calloc(nbufs, sizeof(int));
	ur.next = calloc(nbufs, sizeof(int));
	ur.conns = calloc((size_t)max_conns, sizeof(*ur.conns));
	ur.starved = calloc(4 * (size_t)max_conns, sizeof(*ur.starved));
	if (ur.br == MAP_FAILED || ur.bufs == MAP_FAILED || !ur.len ||
	    !ur.next || !ur.conns || !ur.starved)
		die("buffers", ENOMEM);
	io_uring_buf_ring_init(ur.br);
	struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)ur.br,
				       .ring_entries = nbufs,
				       .bgid = 0};
	if ((rc = io_uring_register_buf_ring(&ur.ring, &reg, 0)) < 0)
		die("io_uring_register_buf_ring", -rc);
	for (unsigned i = 0; i < nbufs; i++)
		io_uring_buf_ring_add(ur.br, ur.bufs + (size_t)i * RELAY_BUF,
				      RELAY_BUF, (unsigned short)i,
				      (int)ur.mask, (int)i);
	io_uring_buf_ring_advance(ur.br, (int)nbufs);
	for (int i = max_conns - 1; i >= 0; i--) {
		ur.conns[i].next_free = ur.free;
		ur.free = &ur.conns[i];
	}
	for (int i = 0; i < nroutes; i++) {
		routes[i].lfd = listen_on(routes[i].port, false);
		ur_arm_accept(i);
	}
	static struct signalfd_siginfo si;
	struct io_uring_sqe *sqe = ur_sqe();
	io_uring_prep_read(sqe, sigfd, &si, sizeof(si), 0);
	sqe->user_data = OP_SIGNAL;
	while (!stopping) {
		if (collecting) { /* what was queued goes now, not after */
			io_uring_submit(&ur.ring);
			collect_nap();
		}
		rc = io_uring_submit_and_wait(&ur.ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY &&
		    rc != -ETIME)
			die("io_uring_submit_and_wait", -rc);
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		io_uring_for_each_cqe(&ur.ring, head, cqe)
		{
			ur_on_cqe(cqe);
			n++;
		}
		io_uring_cq_advance(&ur.ring, n);
		collect_update((int)n);
		if (ur.recycled && ur.nstarved > 0)
			ur_feed_starved();
		ur.recycled = false;
	}
}

/* ---- main ----------------------------------------------------------- */

static long
parse_num(const char *opt, const char *v, long lo, long hi)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *end || end == v || n < lo || n > hi) {
		fprintf(
		    stderr,
		    "relay_engines: %s %s: not a number from %ld to %ld\n%s",
		    opt, v, lo, hi, usage);
		exit(2);
	}
	return n;
}

/* PORT=HOST:PORT; exits with a usage error if it is not one */
static void
parse_route(const char *v)
{
	char host[64];
	const char *eq = strchr(v, '='), *colon = strrchr(v, ':');
	if (nroutes == MAX_ROUTES || !eq || !colon || colon < eq ||
	    (size_t)(colon - eq - 1) >= sizeof(host)) {
		fprintf(stderr,
			"relay_engines: --route %s: not PORT=HOST:PORT "
			"(at most %d)\n%s",
			v, MAX_ROUTES, usage);
		exit(2);
	}
	char port[8];
	snprintf(port, sizeof(port), "%.*s", (int)(eq - v), v);
	struct route *r = &routes[nroutes++];
	r->port = (int)parse_num("--route", port, 1, 65535);
	memcpy(host, eq + 1, (size_t)(colon - eq - 1));
	host[colon - eq - 1] = 0;
	r->backend.sin_family = AF_INET;
	r->backend.sin_port =
	    htons((uint16_t)parse_num("--route", colon + 1, 1, 65535));
	if (inet_pton(AF_INET, host, &r->backend.sin_addr) != 1) {
		fprintf(stderr,
			"relay_engines: --route %s: %s is not an IPv4 "
			"address\n%s",
			v, host, usage);
		exit(2);
	}
}

int
main(int argc, char **argv)
{
	const char *engine = NULL;
	long nbufs = 4096;
	bool splice_on = true;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
			fputs(usage, stdout);
			return 0;
		}
		if (i + 1 >= argc) {
			fprintf(stderr,
				"relay_engines: %s: no value, or not an "
				"option\n%s",
				o, usage);
			return 2;
		}
		const char *v = argv[++i];
		if (!strcmp(o, "--engine"))
			engine = v;
		else if (!strcmp(o, "--route"))
			parse_route(v);
		else if (!strcmp(o, "--max-conns"))
			max_conns = (int)parse_num(o, v, 1, 1 << 20);
		else if (!strcmp(o, "--collect-us"))
			collect_s = parse_num(o, v, 0, 10000) / 1e6;
		else if (!strcmp(o, "--bufs"))
			nbufs = parse_num(o, v, 2, 32768);
		else if (!strcmp(o, "--splice") &&
			 (!strcmp(v, "on") || !strcmp(v, "off")))
			splice_on = !strcmp(v, "on");
		else {
			fprintf(stderr,
				"relay_engines: %s %s: unknown option "
				"or value\n%s",
				o, v, usage);
			return 2;
		}
	}
	if (!engine || (strcmp(engine, "epoll") && strcmp(engine, "uring")) ||
	    nroutes == 0 || (nbufs & (nbufs - 1))) {
		fprintf(stderr,
			"relay_engines: need --engine epoll|uring and "
			"a --route (and --bufs a power of two)\n%s",
			usage);
		return 2;
	}
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	if (sigprocmask(SIG_BLOCK, &stop, NULL) < 0 ||
	    (sigfd = signalfd(-1, &stop, SFD_CLOEXEC)) < 0)
		die("signalfd", errno);
	signal(SIGPIPE, SIG_IGN);
	ep.splice = ur.splice = splice_on;
	if (!strcmp(engine, "epoll"))
		ep_main();
	else
		ur_main((unsigned)nbufs);
	fprintf(stderr,
		"relay_engines: accepted %lu closed %lu refused %lu "
		"connect_failed %lu errors %lu\n",
		st.accepted, st.closed, st.refused, st.connect_failed,
		st.errors);
	return 0;
}
