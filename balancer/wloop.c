/* A worker's event loop; see wloop.h. */
#include "wloop.h"

#include <errno.h>
#include <liburing.h>
#include <math.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"

#define WLOOP_EVENTS 256
/* The ring: requests queued per wait, and completions it can hold (a
 * relay keeps a few requests per connection in flight) */
#define WLOOP_RING_SQ 1024
#define WLOOP_RING_CQ 16384
/* io_collect_us: a poll that brings at least WLOOP_BUSY_EVENTS events,
 * and at WLOOP_BUSY_RATE per second or more since the poll before, makes
 * the loop busy; it stays busy while the events gathered over the
 * interval come at that rate, so that traffic below it is handled as
 * soon as it comes. (The rate on the first poll too: a few events after
 * a long wait are a burst, not load; with the ring, whose completions
 * split what epoll reports as one event, such bursts made a half-loaded
 * worker nap every other poll.) Events that say only "writable" do not
 * count: every relay socket brings one when it is registered (libev,
 * which the rates were set with, never saw those). */
#define WLOOP_BUSY_EVENTS 3
#define WLOOP_BUSY_RATE 50000.

static double
wloop_clock(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
wloop_update(struct wloop *l)
{
	l->now = wloop_clock(CLOCK_REALTIME);
	l->mono = wloop_clock(CLOCK_MONOTONIC);
}

static void
wloop_wake_cb(struct wloop *l, struct wio *io, uint32_t events)
{
	uint64_t n;
	(void)events;
	(void)!read(io->fd, &n, sizeof(n));
	atomic_store(&l->woken, false);
	if (l->on_wake)
		l->on_wake(l);
}

int
wloop_init(struct wloop *l, double collect)
{
	*l = (struct wloop){.epfd = -1, .wakefd = -1, .collect = collect};
	l->runtail = &l->run;
	l->againtail = &l->again;
	wloop_update(l);
	if ((l->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		goto fail;
	l->wake.cb = wloop_wake_cb;
	if (wio_add(l, &l->wake, l->wakefd, false, EPOLLIN) < 0)
		goto fail;
	return 0;
fail:
	wloop_close(l);
	return -1;
}

void
wloop_close(struct wloop *l)
{
	if (l->wakefd >= 0)
		close(l->wakefd);
	if (l->epfd >= 0)
		close(l->epfd);
	l->wakefd = l->epfd = -1;
	free(l->heap);
	l->heap = NULL;
	l->nheap = l->heapcap = 0;
}

void
wloop_break(struct wloop *l)
{
	l->stop = true;
}

void
wloop_wake(struct wloop *l)
{
	uint64_t one = 1;
	if (!atomic_exchange(&l->woken, true))
		(void)!write(l->wakefd, &one, sizeof(one));
}

/* Run lists: an io is on at most one, and leaves it when dispatched or
 * forgotten. */
static void
wio_enqueue(struct wio *io, struct wio ***tail)
{
	if (io->queued)
		return;
	io->queued = true;
	io->qnext = NULL;
	io->qprev = *tail;
	**tail = io;
	*tail = &io->qnext;
}

static void
wio_dequeue(struct wloop *l, struct wio *io)
{
	if (!io->queued)
		return;
	/* which list: the one whose tail pointer points at io's link */
	if (io->qnext)
		io->qnext->qprev = io->qprev;
	else if (l->runtail == &io->qnext)
		l->runtail = io->qprev;
	else
		l->againtail = io->qprev;
	*io->qprev = io->qnext;
	io->queued = false;
}

int
wio_add(struct wloop *l, struct wio *io, int fd, bool edge, uint32_t events)
{
	io->fd = fd;
	io->ready = 0;
	io->et = edge;
	io->queued = false;
	struct epoll_event ev = {
	    .events = edge ? EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET : events,
	    .data.ptr = io};
	return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
}

int
wio_mod(struct wloop *l, struct wio *io, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = io};
	wio_dequeue(l, io);
	io->ready = 0;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev);
}

void
wio_del(struct wloop *l, struct wio *io)
{
	wio_forget(l, io);
	if (io->fd >= 0)
		(void)epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

void
wio_forget(struct wloop *l, struct wio *io)
{
	wio_dequeue(l, io);
	io->ready = 0;
}

void
wio_feed(struct wloop *l, struct wio *io)
{
	wio_enqueue(io, &l->againtail);
}

/* The timer heap: a binary min-heap on `at`; t->pos is 1 + its index. */
static void
wtimer_place(struct wloop *l, struct wtimer *t, size_t i)
{
	l->heap[i] = t;
	t->pos = i + 1;
}

static void
wtimer_up(struct wloop *l, size_t i)
{
	struct wtimer *t = l->heap[i];
	while (i > 0 && l->heap[(i - 1) / 2]->at > t->at) {
		wtimer_place(l, l->heap[(i - 1) / 2], i);
		i = (i - 1) / 2;
	}
	wtimer_place(l, t, i);
}

static void
wtimer_down(struct wloop *l, size_t i)
{
	struct wtimer *t = l->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && l->heap[c + 1]->at < l->heap[c]->at)
			c++;
		if (l->heap[c]->at >= t->at)
			break;
		wtimer_place(l, l->heap[c], i);
		i = c;
	}
	wtimer_place(l, t, i);
}

void
wtimer_stop(struct wloop *l, struct wtimer *t)
{
	if (t->pos == 0)
		return;
	size_t i = t->pos - 1;
	t->pos = 0;
	struct wtimer *last = l->heap[--l->nheap];
	if (i == l->nheap)
		return;
	l->heap[i] = last;
	last->pos = i + 1;
	wtimer_up(l, i);
	wtimer_down(l, last->pos - 1);
}

void
wtimer_start(struct wloop *l, struct wtimer *t, double after)
{
	wtimer_stop(l, t);
	if (l->nheap == l->heapcap) {
		size_t cap = l->heapcap ? 2 * l->heapcap : 64;
		struct wtimer **h = realloc(l->heap, cap * sizeof(*h));
		if (h == NULL)
			fatal("%s: out of memory", __func__);
		l->heap = h;
		l->heapcap = cap;
	}
	t->at = l->mono + after;
	wtimer_place(l, t, l->nheap++);
	wtimer_up(l, l->nheap - 1);
}

/* Runs the timers that are due. */
static void
wloop_timers(struct wloop *l)
{
	while (l->nheap > 0 && l->heap[0]->at <= l->mono) {
		struct wtimer *t = l->heap[0];
		wtimer_stop(l, t);
		t->cb(l, t);
	}
}

/* How long the next poll may wait, in ms (-1: no limit). With
 * io_collect_us while busy, first sleeps what is left of the interval
 * since the last poll returned. */
static int
wloop_timeout(struct wloop *l)
{
	if (l->again)
		return 0;
	double wait = -1;
	if (l->nheap > 0)
		wait = l->heap[0]->at > l->mono ? l->heap[0]->at - l->mono : 0;
	if (l->collecting) {
		double sleep =
		    l->collect - (wloop_clock(CLOCK_MONOTONIC) - l->mono);
		if (wait >= 0 && sleep > wait)
			sleep = wait;
		if (sleep > 0) {
			struct timespec ts = {0, (long)(sleep * 1e9)};
			if (l->ring) /* what is queued goes now, not after */
				io_uring_submit(l->ring);
			nanosleep(&ts, NULL);
			if (wait >= 0)
				wait -= sleep;
		}
	}
	if (wait < 0)
		return -1;
	return (int)ceil(wait * 1000);
}

/* Dispatches what was fed, then the n events of a poll (busy: the
 * completions that came with them; prev: when the poll before returned). */
static void
wloop_dispatch(struct wloop *l, const struct epoll_event *evs, int n, int busy,
	       double prev)
{
	/* what was fed runs first, then what this poll brought; every io's
	 * ready bits are set before any callback runs, so that a callback
	 * sees what its connection's other socket has */
	l->run = l->again;
	l->runtail = l->again ? l->againtail : &l->run;
	if (l->run)
		l->run->qprev = &l->run;
	l->again = NULL;
	l->againtail = &l->again;
	for (int i = 0; i < n; i++) {
		struct wio *io = evs[i].data.ptr;
		io->ready |= evs[i].events;
		wio_enqueue(io, &l->runtail);
		busy += evs[i].events != EPOLLOUT;
	}
	if (l->collect > 0)
		l->collecting =
		    l->collecting
			? busy >= l->collect * WLOOP_BUSY_RATE
			: busy >= WLOOP_BUSY_EVENTS &&
			      busy >= (l->mono - prev) * WLOOP_BUSY_RATE;
	while (l->run && !l->stop) {
		struct wio *io = l->run;
		uint32_t events = io->ready;
		wio_dequeue(l, io);
		if (!io->et)
			io->ready = 0;
		io->cb(l, io, events);
	}
	wloop_timers(l);
}

int
wloop_ring_open(struct wloop *l)
{
	static const unsigned flags[] = {IORING_SETUP_SINGLE_ISSUER |
					     IORING_SETUP_DEFER_TASKRUN,
					 IORING_SETUP_COOP_TASKRUN, 0};
	struct io_uring *ring = calloc(1, sizeof(*ring));
	int rc = -ENOMEM;
	if (ring == NULL)
		return rc;
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct io_uring_params p = {.flags =
						flags[i] | IORING_SETUP_CQSIZE,
					    .cq_entries = WLOOP_RING_CQ};
		rc = io_uring_queue_init_params(WLOOP_RING_SQ, ring, &p);
		if (rc != -EINVAL)
			break; /* (EINVAL: a kernel without these flags) */
	}
	if (rc < 0) {
		free(ring);
		return rc;
	}
	(void)io_uring_register_ring_fd(ring);
	l->ring = ring;
	l->epoll_armed = false;
	return 0;
}

void
wloop_ring_close(struct wloop *l)
{
	if (l->ring == NULL)
		return;
	io_uring_queue_exit(l->ring);
	free(l->ring);
	l->ring = NULL;
}

struct io_uring_sqe *
wloop_sqe(struct wloop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(l->ring);
	if (sqe == NULL) {
		io_uring_submit(l->ring);
		sqe = io_uring_get_sqe(l->ring);
	}
	if (sqe == NULL)
		fatal("%s: the ring's queue stays full", __func__);
	return sqe;
}

/* One iteration with the ring: submit and wait, the completions, then
 * the epoll set when its poll fired. */
static void
wloop_ring_iterate(struct wloop *l, struct epoll_event *evs)
{
	if (!l->epoll_armed) {
		struct io_uring_sqe *sqe = wloop_sqe(l);
		io_uring_prep_poll_add(sqe, l->epfd, POLLIN);
		sqe->user_data = WLOOP_UD_EPOLL;
		l->epoll_armed = true;
	}
	int ms = wloop_timeout(l);
	struct __kernel_timespec ts = {.tv_sec = ms / 1000,
				       .tv_nsec = (ms % 1000) * 1000000L};
	struct io_uring_cqe *cqe;
	int rc = io_uring_submit_and_wait_timeout(l->ring, &cqe, 1,
						  ms >= 0 ? &ts : NULL, NULL);
	if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN &&
	    rc != -EBUSY)
		fatal("%s: io_uring_enter: %s", __func__, strerror(-rc));
	double prev = l->mono;
	wloop_update(l);
	bool epoll_ready = false;
	int busy = 0;
	unsigned head, seen = 0;
	io_uring_for_each_cqe(l->ring, head, cqe)
	{
		seen++;
		if (cqe->user_data == WLOOP_UD_EPOLL) {
			epoll_ready = true;
			l->epoll_armed = false;
		} else if (cqe->user_data != WLOOP_UD_NONE) {
			busy += l->on_cqe(l, cqe);
			if (l->stop)
				break;
		}
	}
	io_uring_cq_advance(l->ring, seen);
	if (l->stop)
		return;
	int n = 0;
	if (epoll_ready &&
	    (n = epoll_wait(l->epfd, evs, WLOOP_EVENTS, 0)) < 0) {
		if (errno != EINTR)
			fatal("%s: epoll_wait: %s", __func__, strerror(errno));
		n = 0;
	}
	wloop_dispatch(l, evs, n, busy, prev);
}

void
wloop_run(struct wloop *l)
{
	struct epoll_event evs[WLOOP_EVENTS];
	l->stop = false;
	while (!l->stop) {
		if (l->ring) {
			wloop_ring_iterate(l, evs);
			continue;
		}
		int n =
		    epoll_wait(l->epfd, evs, WLOOP_EVENTS, wloop_timeout(l));
		if (n < 0 && errno != EINTR)
			fatal("%s: epoll_wait: %s", __func__, strerror(errno));
		double prev = l->mono;
		wloop_update(l);
		wloop_dispatch(l, evs, n < 0 ? 0 : n, 0, prev);
	}
}
