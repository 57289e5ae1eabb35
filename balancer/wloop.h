/* A worker's event loop: one epoll set, a timer heap and an eventfd
 * wake-up, no libev. Relay sockets are registered once, edge-triggered,
 * for reading and writing alike (EPOLLIN | EPOLLOUT | EPOLLRDHUP |
 * EPOLLET), and never modified: the relay keeps what it waits for to
 * itself, so a connection whose direction changes costs no epoll_ctl.
 * Listeners, the wake-up and the DNSBL resolver's sockets are
 * level-triggered and may change.
 *
 * With a ring (wloop_ring_open(), io_engine = uring), the loop waits in
 * io_uring_enter instead of epoll_wait: the epoll set is one request on
 * the ring (a poll of its descriptor, read with a non-waiting epoll_wait
 * when it fires), and the owner's own requests complete through on_cqe.
 * A poll, the requests queued meanwhile and the wait are one system call.
 *
 * One thread owns a loop; only wloop_wake() may be called from others. */
#ifndef LBD_WLOOP_H
#define LBD_WLOOP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

struct wloop;
struct wio;
struct wtimer;
struct io_uring;
struct io_uring_cqe;
struct io_uring_sqe;

/* Called with the EPOLL* bits seen. For an edge-triggered io they are
 * io->ready, and stay set until its owner clears them (on EAGAIN, or a
 * read that drained the socket); the callback may run again with no new
 * event, after a wio_feed(). For a level-triggered io they are cleared
 * before each call (the next poll reports what still holds). The
 * callback may free io. */
typedef void wio_fn(struct wloop *l, struct wio *io, uint32_t events);
typedef void wtimer_fn(struct wloop *l, struct wtimer *t);
/* A completion of a request the owner queued with wloop_sqe(): every
 * user_data but WLOOP_UD_NONE and WLOOP_UD_EPOLL. Returns whether it
 * brought work from outside (bytes, a peer's FIN, a connect), which
 * counts towards io_collect_us's busy rate as a readable event does; a
 * send's completion does not, as "writable" does not. */
typedef bool wcqe_fn(struct wloop *l, const struct io_uring_cqe *cqe);

#define WLOOP_UD_NONE 0	 /* a request whose completion nobody reads */
#define WLOOP_UD_EPOLL 1 /* the loop's poll of its epoll set */

struct wio {
	int fd;
	uint32_t ready; /* EPOLL* bits seen and not used up */
	bool et;	/* edge-triggered */
	bool queued;	/* on the loop's run list */
	wio_fn *cb;
	void *data;
	struct wio *qnext, **qprev;
};

struct wtimer {
	double at;  /* monotonic seconds */
	size_t pos; /* 1 + its index in the heap; 0: not running */
	wtimer_fn *cb;
	void *data;
};

struct wloop {
	int epfd;
	int wakefd;	      /* eventfd: wloop_wake() */
	struct wio wake;      /* watches wakefd */
	_Atomic bool woken;   /* a wake-up is posted and not read yet */
	double now;	      /* wall clock (as ev_now), per poll */
	double mono;	      /* monotonic, per poll: the timers' clock */
	struct wtimer **heap; /* timers, earliest first */
	size_t nheap, heapcap;
	struct wio *run, **runtail;	/* to dispatch in this iteration */
	struct wio *again, **againtail; /* fed: dispatch in the next one */
	double collect;			/* io_collect_us in seconds; 0: off */
	bool collecting; /* the interval applies to the next poll */
	bool stop;
	struct io_uring *ring; /* NULL: the loop waits in epoll_wait */
	bool epoll_armed;      /* the ring polls the epoll set */
	wcqe_fn *on_cqe;
	void (*on_wake)(struct wloop *l); /* after a wloop_wake() */
	void *data;
};

/* Returns 0, or -1 with errno set. */
int wloop_init(struct wloop *l, double collect);
/* Closes the loop's descriptors; every io must be gone. */
void wloop_close(struct wloop *l);
/* In the thread that will run the loop: gives it an io_uring ring to
 * wait in. Returns 0, or a negative errno (no io_uring here, or not
 * allowed: the loop stays on epoll). */
int wloop_ring_open(struct wloop *l);
/* Ends the ring's requests and frees it (before what they point at). */
void wloop_ring_close(struct wloop *l);
/* A request to fill in, for the next wait to submit (submits what is
 * queued first when the ring's queue is full). Never NULL. */
struct io_uring_sqe *wloop_sqe(struct wloop *l);
/* Polls and dispatches until wloop_break(). */
void wloop_run(struct wloop *l);
void wloop_break(struct wloop *l);
/* Any thread: makes the loop call on_wake soon (once for any number of
 * calls before it runs). */
void wloop_wake(struct wloop *l);

/* Registers fd: relay sockets with edge = true (in, out, hang-up, edge-
 * triggered, for good), others with their events (level-triggered).
 * Returns 0, or -1 with errno set. */
int wio_add(struct wloop *l, struct wio *io, int fd, bool edge,
	    uint32_t events);
/* A level-triggered io waits for other events. */
int wio_mod(struct wloop *l, struct wio *io, uint32_t events);
/* Takes fd out of the set (it stays open). */
void wio_del(struct wloop *l, struct wio *io);
/* Forgets io whose fd is about to be closed (which takes it out of the
 * set at no cost). */
void wio_forget(struct wloop *l, struct wio *io);
/* An edge-triggered io with work left (ready bits it could not use up
 * yet): its callback runs again in the next iteration, after a poll that
 * does not wait. */
void wio_feed(struct wloop *l, struct wio *io);

/* Starts t to fire after `after` seconds (restarts a running one). */
void wtimer_start(struct wloop *l, struct wtimer *t, double after);
void wtimer_stop(struct wloop *l, struct wtimer *t);
static inline bool
wtimer_active(const struct wtimer *t)
{
	return t->pos != 0;
}

#endif
