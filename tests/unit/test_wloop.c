/* balancer/wloop: the workers' event loop on its own, waiting in
 * epoll_wait and (the *_ring tests) in an io_uring ring that polls the
 * epoll set: timers fire in order and a stopped one never does, an
 * edge-triggered socket reports once per edge and keeps its ready bits
 * until they are used up, wio_feed runs a callback again with no new
 * edge, a forgotten io is not called, a wake-up from another thread
 * reaches on_wake, and the owner's completions reach on_cqe. */
#include <criterion/criterion.h>
#include <liburing.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../balancer/wloop.h"

static int order[8], norder;

static void
record_cb(struct wloop *l, struct wtimer *t)
{
	order[norder++] = (int)(intptr_t)t->data;
	if (norder == 3)
		wloop_break(l);
}

/* A loop, on a ring if `ring` (io_engine = uring). */
static void
open_loop(struct wloop *l, bool ring)
{
	cr_assert_eq(wloop_init(l, 0), 0);
	if (!ring)
		return;
	int rc = wloop_ring_open(l);
	if (rc < 0)
		cr_skip_test("no io_uring here: %s", strerror(-rc));
}

static void
close_loop(struct wloop *l)
{
	wloop_ring_close(l);
	wloop_close(l);
}

static void
timers_case(bool ring)
{
	struct wloop l;
	struct wtimer t[4];
	open_loop(&l, ring);
	double after[4] = {0.03, 0.01, 0.02, 0.015};
	for (int i = 0; i < 4; i++) {
		t[i] = (struct wtimer){.cb = record_cb, .data = (void *)(intptr_t)i};
		wtimer_start(&l, &t[i], after[i]);
	}
	wtimer_stop(&l, &t[3]);
	cr_assert(!wtimer_active(&t[3]));
	norder = 0;
	wloop_run(&l);
	cr_assert_eq(norder, 3);
	cr_assert_eq(order[0], 1);
	cr_assert_eq(order[1], 2);
	cr_assert_eq(order[2], 0);
	close_loop(&l);
}

Test(wloop, timers_fire_in_order_and_stopped_ones_never)
{
	timers_case(false);
}

Test(wloop, timers_fire_in_order_and_stopped_ones_never_ring)
{
	timers_case(true);
}

struct probe {
	struct wio io;
	int calls;
	uint32_t seen;
	int feeds; /* wio_feed this many more times */
};

static void
probe_cb(struct wloop *l, struct wio *io, uint32_t events)
{
	struct probe *p = io->data;
	p->calls++;
	p->seen |= events;
	if (p->feeds-- > 0)
		wio_feed(l, io);
	else
		wloop_break(l);
}

static void
stop_cb(struct wloop *l, struct wtimer *t)
{
	(void)t;
	wloop_break(l);
}

/* Runs l until a callback breaks it or 50 ms pass. */
static void
run_briefly(struct wloop *l)
{
	struct wtimer t = {.cb = stop_cb};
	wtimer_start(l, &t, 0.05);
	wloop_run(l);
	wtimer_stop(l, &t);
}

static void
edge_case(bool ring)
{
	struct wloop l;
	int sv[2];
	open_loop(&l, ring);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	struct probe p = {.io = {.cb = probe_cb}};
	p.io.data = &p;
	cr_assert_eq(wio_add(&l, &p.io, sv[0], true, 0), 0);
	run_briefly(&l); /* the first edge: writable */
	cr_assert_eq(p.calls, 1);
	cr_assert(p.io.ready & EPOLLOUT);
	cr_assert(!(p.io.ready & EPOLLIN));

	cr_assert_eq(write(sv[1], "x", 1), 1);
	run_briefly(&l);
	cr_assert_eq(p.calls, 2);
	cr_assert(p.io.ready & EPOLLIN);
	/* no new edge, nothing read: no call, the bits stay */
	run_briefly(&l);
	cr_assert_eq(p.calls, 2);
	cr_assert(p.io.ready & EPOLLIN);

	/* fed: called again twice with no new edge */
	p.feeds = 2;
	wio_feed(&l, &p.io);
	run_briefly(&l);
	cr_assert_eq(p.calls, 5);

	/* the peer's FIN: in and hang-up */
	shutdown(sv[1], SHUT_WR);
	run_briefly(&l);
	cr_assert_eq(p.calls, 6);
	cr_assert(p.io.ready & EPOLLRDHUP);

	/* forgotten while fed: never called */
	p.feeds = 0;
	wio_feed(&l, &p.io);
	wio_forget(&l, &p.io);
	cr_assert(!p.io.queued);
	close(sv[0]);
	run_briefly(&l);
	cr_assert_eq(p.calls, 6);
	close(sv[1]);
	close_loop(&l);
}

Test(wloop, edge_triggered_ready_bits_stay_until_used_up)
{
	edge_case(false);
}

Test(wloop, edge_triggered_ready_bits_stay_until_used_up_ring)
{
	edge_case(true);
}

static void
woken(struct wloop *l)
{
	*(int *)l->data += 1;
	wloop_break(l);
}

static void *
waker(void *arg)
{
	usleep(10000);
	wloop_wake(arg);
	return NULL;
}

static void
wake_case(bool ring)
{
	struct wloop l;
	int n = 0;
	pthread_t th;
	open_loop(&l, ring);
	l.data = &n;
	l.on_wake = woken;
	cr_assert_eq(pthread_create(&th, NULL, waker, &l), 0);
	wloop_run(&l); /* no timer: waits for the wake-up alone */
	pthread_join(th, NULL);
	cr_assert_eq(n, 1);
	close_loop(&l);
}

Test(wloop, a_wake_up_from_another_thread)
{
	wake_case(false);
}

Test(wloop, a_wake_up_from_another_thread_ring)
{
	wake_case(true);
}

static uint64_t seen[4];
static int nseen;

static bool
record_cqe(struct wloop *l, const struct io_uring_cqe *cqe)
{
	seen[nseen++] = cqe->user_data;
	if (nseen == 2)
		wloop_break(l);
	return true;
}

Test(wloop, completions_reach_on_cqe_but_the_loops_own_ring)
{
	struct wloop l;
	open_loop(&l, true);
	l.on_cqe = record_cqe;
	uint64_t tags[3] = {7, WLOOP_UD_NONE, 9};
	for (int i = 0; i < 3; i++) {
		struct io_uring_sqe *sqe = wloop_sqe(&l);
		io_uring_prep_nop(sqe);
		sqe->user_data = tags[i];
	}
	nseen = 0;
	wloop_run(&l);
	cr_assert_eq(nseen, 2);
	cr_assert_eq(seen[0], 7);
	cr_assert_eq(seen[1], 9);
	close_loop(&l);
}
