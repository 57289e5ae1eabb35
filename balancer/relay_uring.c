/* The relay on the worker's io_uring ring (io_engine = uring): what
 * relay.c does with readiness, done with completions. A connection the
 * SMTP edge holds (greet delay, pregreet, DNSBL) stays on relay.c.
 *
 * Each direction has a multishot receive on its socket into the worker's
 * provided buffers (a buffer is taken only when bytes come, so an idle
 * connection holds none), and one send at a time of the buffers it
 * received, in order. A direction that holds UR_HALF_MAX buffers pauses
 * its receive (cancelled, armed again once half are sent), so a peer that
 * does not read pins few; one that finds no buffer free moves its bytes
 * as a bulk direction does, with no buffer at all (below), so a worker
 * whose buffers are all taken still relays every connection.
 * The client's receive starts at accept, so its first bytes wait in
 * buffers while the node's connect (a request too) runs; a failed or
 * timed-out connect gives the client to the next node, as relay.c does.
 *
 * A direction whose receive fills a buffer is bulk: its receive is
 * cancelled and the bytes move with splice() through a pipe, called here
 * (with the socket non-blocking), and a one-shot poll on the ring waits
 * when a side is not ready. (IORING_OP_SPLICE would run in an io-wq
 * thread, blocking.)
 *
 * Every request carries its connection, direction and kind in user_data;
 * a connection is let go only once none of its requests can complete any
 * more (inflight). Ending one (a reset, the idle timeout, the worker's
 * stop) cancels what is on its sockets first; the sockets are closed on
 * the ring. shutdown() is a plain call: IORING_OP_SHUTDOWN runs in an
 * io-wq thread that looks the descriptor up only when it runs, maybe once
 * it is another connection's. */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../common/log.h"
#include "relay.h"

#define UR_HALF_MAX 4 /* a direction's buffers before its receive pauses */
#define UR_BUF_GROUP 0

/* user_data: the connection's address | direction << 3 | kind (a conn is
 * malloc()ed, so 16-byte aligned); 0 and 1 are the loop's (wloop.h). */
enum ur_op {
	UR_RECV = 2,
	UR_SEND,
	UR_CONNECT,
	UR_CANCEL,
	UR_POLLIN,
	UR_POLLOUT
};
#define UR_OP_MASK 7u
#define UR_HALF_BIT 8u
#define UR_TAG_MASK 15u

struct relay_ring {
	struct io_uring_buf_ring *br;
	char *bufs;
	unsigned nbufs, mask; /* io_uring_buffers */
	int *len, *next;      /* per buffer id */
	bool told;	      /* a shortage is logged */
};

static inline struct half *
ur_half(struct conn *c, int half)
{
	return half ? &c->down : &c->up;
}

static inline int
ur_from(const struct conn *c, int half)
{
	return half ? c->sfd : c->cfd;
}

static inline int
ur_to(const struct conn *c, int half)
{
	return half ? c->cfd : c->sfd;
}

static inline uint64_t
ur_data(const struct conn *c, int half, enum ur_op op)
{
	return (uint64_t)(uintptr_t)c | (half ? UR_HALF_BIT : 0) | (uint64_t)op;
}

/* Tags sqe as c's request of kind op on direction half. */
static void
ur_tag(struct io_uring_sqe *sqe, struct conn *c, int half, enum ur_op op)
{
	sqe->user_data = ur_data(c, half, op);
	c->inflight++;
}

static void
ur_recycle(struct relay_ring *rr, int bid)
{
	io_uring_buf_ring_add(rr->br, rr->bufs + (size_t)bid * RELAY_BUF,
			      RELAY_BUF, (unsigned short)bid, (int)rr->mask, 0);
	io_uring_buf_ring_advance(rr->br, 1);
}

static void
ur_free_queue(struct relay_ring *rr, struct half *h)
{
	while (h->head >= 0) {
		int bid = h->head;
		h->head = rr->next[bid];
		ur_recycle(rr, bid);
	}
	h->tail = -1;
	h->queued = 0;
	h->qoff = 0;
}

/* No buffer was free for direction h's receive. */
static void
ur_short(struct relay_ring *rr, struct conn *c)
{
	if (!rr->told)
		log_info("worker %d: all %u receive buffers in use "
			 "(io_uring_buffers): receives splice meanwhile "
			 "(logged once)",
			 c->w->id, rr->nbufs);
	rr->told = true;
}

static void
ur_arm_recv(struct conn *c, int half)
{
	struct half *h = ur_half(c, half);
	struct io_uring_sqe *sqe = wloop_sqe(&c->w->loop);
	io_uring_prep_recv_multishot(sqe, ur_from(c, half), NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = UR_BUF_GROUP;
	ur_tag(sqe, c, half, UR_RECV);
	h->armed = true;
	h->paused = false;
}

static void
ur_poll(struct conn *c, int half, bool in)
{
	struct half *h = ur_half(c, half);
	struct io_uring_sqe *sqe = wloop_sqe(&c->w->loop);
	if (in) {
		io_uring_prep_poll_add(sqe, ur_from(c, half),
				       POLLIN | POLLRDHUP);
		ur_tag(sqe, c, half, UR_POLLIN);
		h->pollin = true;
	} else {
		io_uring_prep_poll_add(sqe, ur_to(c, half), POLLOUT);
		ur_tag(sqe, c, half, UR_POLLOUT);
		h->pollout = true;
	}
}

/* Sends what comes next in direction half: the PROXY header, then the
 * buffers in order; one send at a time. */
static void
ur_send_next(struct conn *c, int half)
{
	struct relay_ring *rr = c->w->ring;
	struct half *h = ur_half(c, half);
	const char *p;
	size_t n;
	if (h->sending || c->state != CONN_RELAYING)
		return;
	if (h->buf && h->off < h->len) {
		p = h->buf + h->off;
		n = h->len - h->off;
	} else if (h->head >= 0) {
		p = rr->bufs + (size_t)h->head * RELAY_BUF + h->qoff;
		n = (size_t)rr->len[h->head] - h->qoff;
	} else
		return;
	int to = ur_to(c, half);
	relay_nodelay(c, to);
	struct io_uring_sqe *sqe = wloop_sqe(&c->w->loop);
	io_uring_prep_send(sqe, to, p, n, MSG_NOSIGNAL);
	ur_tag(sqe, c, half, UR_SEND);
	h->sending = true;
}

/* Direction h is over: its FIN seen, nothing pending, nothing on. */
static bool
ur_drained(const struct half *h)
{
	return h->eof && !h->sending && h->head < 0 && h->inpipe == 0 &&
	       !h->armed && !h->pollin && !h->pollout &&
	       !(h->buf && h->off < h->len);
}

/* Queues, for each of c's open sockets, its close (no completion read)
 * or the cancel of every request on it. */
static void
ur_sockets(struct conn *c, bool close)
{
	int fds[2] = {c->cfd, c->sfd};
	for (int i = 0; i < 2; i++) {
		if (fds[i] < 0)
			continue;
		struct io_uring_sqe *sqe = wloop_sqe(&c->w->loop);
		if (close) {
			io_uring_prep_close(sqe, fds[i]);
			sqe->user_data = WLOOP_UD_NONE;
		} else {
			io_uring_prep_cancel_fd(sqe, fds[i],
						IORING_ASYNC_CANCEL_ALL);
			ur_tag(sqe, c, 0, UR_CANCEL);
		}
	}
}

/* Closes c's sockets on the ring; c is let go once nothing is on. */
static void
ur_finish(struct conn *c)
{
	struct relay_ring *rr = c->w->ring;
	if (c->done)
		return;
	c->done = true;
	ur_free_queue(rr, &c->up);
	ur_free_queue(rr, &c->down);
	wtimer_stop(&c->w->loop, &c->timer);
	ur_sockets(c, true);
	c->cfd = c->sfd = -1;
}

void
ur_fail(struct conn *c)
{
	if (c->failing || c->done)
		return;
	c->failing = true;
	/* the buffers queued stay until ur_finish(): a send may be on */
	wtimer_stop(&c->w->loop, &c->timer);
	ur_sockets(c, false);
}

void
ur_abort(struct conn *c)
{
	ur_free_queue(c->w->ring, &c->up);
	ur_free_queue(c->w->ring, &c->down);
	if (c->cfd >= 0)
		close(c->cfd);
	if (c->sfd >= 0)
		close(c->sfd);
	relay_release(c);
}

/* Passes direction half's FIN on once it is flushed; closes both sockets
 * once both directions are over (close() sends a FIN not passed on). */
static void
ur_check_fin(struct conn *c, int half)
{
	struct half *h = ur_half(c, half);
	if (c->failing || c->done || c->state != CONN_RELAYING ||
	    !ur_drained(h))
		return;
	if (ur_drained(ur_half(c, !half))) {
		ur_finish(c);
		return;
	}
	if (h->shut)
		return;
	shutdown(ur_to(c, half), SHUT_WR);
	h->shut = true;
}

/* Answers the client (no node could take it), then reads and drops what
 * it still sends until it closes or the linger ends. */
static void
ur_reply(struct conn *c, const char *reply)
{
	size_t len = strlen(reply);
	c->state = CONN_REPLYING;
	ur_free_queue(c->w->ring, &c->up);
	if (len > 0)
		(void)!send(c->cfd, reply, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (len == 0 || c->up.eof) { /* nothing to linger for */
		ur_fail(c);
		return;
	}
	shutdown(c->cfd, SHUT_WR);
	if (!c->up.armed)
		ur_arm_recv(c, 0);
	c->timer.cb = relay_linger_cb;
	wtimer_start(&c->w->loop, &c->timer, RELAY_LINGER_S);
}

static void
ur_connect_timeout_cb(struct wloop *loop, struct wtimer *t)
{
	struct conn *c = t->data;
	struct io_uring_sqe *sqe = wloop_sqe(loop);
	c->timed_out = true;
	io_uring_prep_cancel64(sqe, ur_data(c, 0, UR_CONNECT), 0);
	ur_tag(sqe, c, 0, UR_CANCEL);
}

/* Picks the next node and connects to it on the ring. */
static void
ur_connect_next(struct conn *c)
{
	if (!relay_pick(c)) {
		ur_reply(c, relay_unavailable(c));
		return;
	}
	struct io_uring_sqe *sqe = wloop_sqe(&c->w->loop);
	io_uring_prep_connect(sqe, c->sfd, (struct sockaddr *)&c->node->addr.ss,
			      c->node->addr.len);
	ur_tag(sqe, c, 0, UR_CONNECT);
	c->timed_out = false;
	c->timer.cb = ur_connect_timeout_cb;
	wtimer_start(&c->w->loop, &c->timer,
		     atomic_load(&c->svc->connect_timeout_ms) / 1000.0);
}

void
ur_start(struct conn *c)
{
	if ((uintptr_t)c & UR_TAG_MASK)
		fatal("%s: a connection is not 16-byte aligned", __func__);
	c->ur = true;
	c->up.head = c->up.tail = c->down.head = c->down.tail = -1;
	ur_arm_recv(c, 0); /* the client's first bytes wait in buffers */
	ur_connect_next(c);
}

/* Bulk: moves what `from` has through the pipe to `to` with splice(),
 * waiting on a poll where a side is not ready. A splice into the pipe
 * that cannot move anything while the pipe holds bytes may be a full
 * pipe, not an empty socket: the next splice out of it tries again. */
static void
ur_pump(struct conn *c, int half)
{
	struct worker *w = c->w;
	struct half *h = ur_half(c, half);
	int from = ur_from(c, half), to = ur_to(c, half);
	if (h->armed || c->failing || c->done)
		return;
	if (h->pipe[0] < 0 && relay_pipe_get(w, h) < 0) {
		log_warn("service %s: pipe: %s", c->svc->name, strerror(errno));
		ur_fail(c);
		return;
	}
	for (int round = 0; round < RELAY_PUMP_ROUNDS; round++) {
		bool moved = false;
		if (!h->eof && !h->pollin && h->inpipe < RELAY_SPLICE_CHUNK) {
			ssize_t n = splice(from, NULL, h->pipe[1], NULL,
					   RELAY_SPLICE_CHUNK - h->inpipe,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				h->inpipe += (size_t)n;
				relay_count(c, h, (size_t)n);
				c->last = w->loop.mono;
				moved = true;
			} else if (n == 0)
				h->eof = true;
			else if (errno == EAGAIN && h->inpipe == 0)
				ur_poll(c, half, true);
			else if (errno != EAGAIN && errno != EINTR) {
				ur_fail(c);
				return;
			}
		}
		if (!h->sending && h->head < 0 && h->inpipe > 0 &&
		    !h->pollout && c->state == CONN_RELAYING) {
			relay_nodelay(c, to);
			ssize_t n =
			    splice(h->pipe[0], NULL, to, NULL, h->inpipe,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				h->inpipe -= (size_t)n;
				if (to == c->sfd)
					c->node_written = true;
				moved = true;
			} else if (n < 0 && errno == EAGAIN)
				ur_poll(c, half, false);
			else if (n < 0 && errno != EINTR) {
				ur_fail(c);
				return;
			}
		}
		if (!moved)
			break;
		if (round == RELAY_PUMP_ROUNDS - 1 && !h->eof && !h->pollin)
			ur_poll(c, half, true); /* more later: others' turn */
	}
	if (h->inpipe == 0)
		relay_pipe_put(w, h);
}

static void
ur_on_connect(struct conn *c, int res)
{
	if (res < 0) {
		int err = c->timed_out && res == -ECANCELED ? ETIMEDOUT : -res;
		close(c->sfd); /* nothing else is on it */
		c->sfd = -1;
		relay_node_failed(c, err);
		ur_connect_next(c);
		return;
	}
	relay_established(c);
	ur_arm_recv(c, 1);
	ur_send_next(c, 0);
	ur_check_fin(c, 0);
}

static void
ur_on_recv(struct conn *c, int half, const struct io_uring_cqe *cqe, int bid)
{
	struct relay_ring *rr = c->w->ring;
	struct half *h = ur_half(c, half);
	bool more = cqe->flags & IORING_CQE_F_MORE;
	int res = cqe->res;
	if (c->state == CONN_REPLYING) { /* the linger: dropped */
		if (bid >= 0)
			ur_recycle(rr, bid);
		if (!more && res == -ENOBUFS)
			ur_poll(c, half, true);	     /* ur_sink() reads */
		else if (!more && res == -ECANCELED) /* a pause */
			ur_arm_recv(c, half);
		else if (!more)
			ur_fail(c);
		return;
	}
	if (res > 0) {
		rr->len[bid] = res;
		rr->next[bid] = -1;
		if (h->tail >= 0)
			rr->next[h->tail] = bid;
		else
			h->head = bid;
		h->tail = bid;
		h->queued++;
		c->last = c->w->loop.mono;
		relay_count(c, h, (size_t)res);
		ur_send_next(c, half);
		if (res == RELAY_BUF && c->w->splice_ok)
			h->bulk = true; /* the pipe, once the receive ends */
		if (more && !h->paused &&
		    (h->queued >= UR_HALF_MAX || h->bulk)) {
			struct io_uring_sqe *sqe = wloop_sqe(&c->w->loop);
			io_uring_prep_cancel64(sqe, ur_data(c, half, UR_RECV),
					       0);
			ur_tag(sqe, c, half, UR_CANCEL);
			h->paused = true;
		}
	} else if (bid >= 0)
		ur_recycle(rr, bid);
	if (more)
		return;
	if (res == 0)
		h->eof = true;
	else if (h->bulk && (res > 0 || res == -ECANCELED || res == -ENOBUFS))
		ur_pump(c, half);
	else if (res == -ENOBUFS) {
		ur_short(rr, c);
		h->bulk = true;
		ur_pump(c, half);
	} else if (res == -ECANCELED) {
		if (h->queued <= UR_HALF_MAX / 2)
			ur_arm_recv(c, half); /* sent meanwhile */
	} else if (res < 0) {
		ur_fail(c);
		return;
	} else if (!h->paused)
		ur_arm_recv(c, half); /* the multishot ended early */
	ur_check_fin(c, half);
}

static void
ur_on_send(struct conn *c, int half, int res)
{
	struct relay_ring *rr = c->w->ring;
	struct half *h = ur_half(c, half);
	if (res < 0) {
		ur_fail(c);
		return;
	}
	c->last = c->w->loop.mono;
	if (ur_to(c, half) == c->sfd)
		c->node_written = true;
	if (h->buf && h->off < h->len) {
		h->off += (size_t)res;
		if (h->off >= h->len)
			relay_buf_put(c->w, h);
	} else {
		h->qoff += (unsigned)res;
		if ((int)h->qoff >= rr->len[h->head]) {
			int bid = h->head;
			h->head = rr->next[bid];
			if (h->head < 0)
				h->tail = -1;
			h->qoff = 0;
			h->queued--;
			ur_recycle(rr, bid);
		}
	}
	ur_send_next(c, half);
	if (h->bulk)
		ur_pump(c, half);
	else if (h->paused && !h->armed && !h->eof &&
		 h->queued <= UR_HALF_MAX / 2)
		ur_arm_recv(c, half);
	ur_check_fin(c, half);
}

/* While lingering with no buffer free: reads and drops what the client
 * sends (at most 16 reads a turn), then polls again; ends c once the
 * client closed or failed. */
static void
ur_sink(struct conn *c)
{
	if (relay_drop(c->cfd) < 0)
		ur_fail(c);
	else
		ur_poll(c, 0, true);
}

bool
ur_on_cqe(struct wloop *loop, const struct io_uring_cqe *cqe)
{
	struct worker *w = loop->data;
	struct conn *c =
	    (struct conn *)(uintptr_t)(cqe->user_data & ~(uint64_t)UR_TAG_MASK);
	int half = (cqe->user_data & UR_HALF_BIT) != 0;
	enum ur_op op = (enum ur_op)(cqe->user_data & UR_OP_MASK);
	struct half *h = ur_half(c, half);
	int bid = cqe->flags & IORING_CQE_F_BUFFER
		      ? (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT)
		      : -1;
	bool more = op == UR_RECV && (cqe->flags & IORING_CQE_F_MORE);
	if (!more)
		c->inflight--;
	switch (op) {
	case UR_RECV:
		h->armed = h->armed && more;
		break;
	case UR_SEND:
		h->sending = false;
		break;
	case UR_POLLIN:
		h->pollin = false;
		break;
	case UR_POLLOUT:
		h->pollout = false;
		break;
	default:
		break;
	}
	if (c->failing || c->done) {
		if (bid >= 0)
			ur_recycle(w->ring, bid);
	} else
		switch (op) {
		case UR_CONNECT:
			ur_on_connect(c, cqe->res);
			break;
		case UR_RECV:
			ur_on_recv(c, half, cqe, bid);
			break;
		case UR_SEND:
			ur_on_send(c, half, cqe->res);
			break;
		case UR_POLLIN:
		case UR_POLLOUT:
			if (c->state == CONN_REPLYING) {
				ur_sink(c);
				break;
			}
			ur_pump(c, half);
			ur_check_fin(c, half);
			break;
		default:
			break;
		}
	if (c->failing && !c->done && c->inflight == 0)
		ur_finish(c);
	if (c->done && c->inflight == 0)
		relay_release(c);
	return op == UR_RECV || op == UR_CONNECT || op == UR_POLLIN;
}

bool
ur_open(struct worker *w)
{
	struct relay_ring *rr = calloc(1, sizeof(*rr));
	int rc = rr ? wloop_ring_open(&w->loop) : -ENOMEM;
	if (rc < 0) {
		log_warn("worker %d: io_engine uring: no ring (%s): epoll "
			 "instead",
			 w->id, strerror(-rc));
		free(rr);
		return false;
	}
	w->ring = rr;
	rr->nbufs = (unsigned)w->l->cfg->set.io_uring_buffers;
	rr->br =
	    mmap(NULL, rr->nbufs * sizeof(struct io_uring_buf),
		 PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rr->bufs =
	    mmap(NULL, (size_t)rr->nbufs * RELAY_BUF, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	rr->len = calloc(rr->nbufs, sizeof(*rr->len));
	rr->next = calloc(rr->nbufs, sizeof(*rr->next));
	struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)rr->br,
				       .ring_entries = rr->nbufs,
				       .bgid = UR_BUF_GROUP};
	if (rr->br == MAP_FAILED || rr->bufs == MAP_FAILED || !rr->len ||
	    !rr->next)
		rc = -ENOMEM;
	else
		rc = io_uring_register_buf_ring(w->loop.ring, &reg, 0);
	if (rc < 0) {
		log_warn("worker %d: io_engine uring: no buffer ring (%s): "
			 "epoll instead",
			 w->id, strerror(-rc));
		wloop_ring_close(&w->loop);
		ur_close(w);
		return false;
	}
	rr->mask = (unsigned)io_uring_buf_ring_mask(rr->nbufs);
	io_uring_buf_ring_init(rr->br);
	for (unsigned i = 0; i < rr->nbufs; i++)
		io_uring_buf_ring_add(rr->br, rr->bufs + (size_t)i * RELAY_BUF,
				      RELAY_BUF, (unsigned short)i,
				      (int)rr->mask, (int)i);
	io_uring_buf_ring_advance(rr->br, (int)rr->nbufs);
	w->loop.on_cqe = ur_on_cqe;
	return true;
}

void
ur_close(struct worker *w)
{
	struct relay_ring *rr = w->ring;
	if (rr == NULL)
		return;
	if (rr->br && rr->br != MAP_FAILED)
		munmap(rr->br, rr->nbufs * sizeof(struct io_uring_buf));
	if (rr->bufs && rr->bufs != MAP_FAILED)
		munmap(rr->bufs, (size_t)rr->nbufs * RELAY_BUF);
	free(rr->len);
	free(rr->next);
	free(rr);
	w->ring = NULL;
}
