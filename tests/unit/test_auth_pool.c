/* The password hashing threads on a real libev loop: results come back
 * on the loop with the caller's arg and user, an unknown user (no hash)
 * costs a crypt call and fails, a full pool refuses at once (id 0, no
 * callback), and a cancelled job, queued or being hashed, never calls
 * back; freeing the pool with jobs in flight calls nothing and leaks
 * nothing (ASan build). Sources (client addresses) take turns and hold
 * at most their share of the queue. */
#include <criterion/criterion.h>

#include <ev.h>
#include <string.h>
#include <time.h>

#include "../../node/auth/auth.h"
#include "../../node/auth/auth_pool.h"

#define HASH_MAX 256
#define WAIT_S 20.0 /* bound on any wait for results */

struct result {
	int calls;
	bool ok;
	char user[DIR_ADDR_MAX];
	double at; /* monotonic seconds */
};

static struct ev_loop *loop;
static int pending; /* callbacks still expected: ev_break at 0 */
static char hash[HASH_MAX];

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
on_result(void *arg, bool ok, const char *user)
{
	struct result *r = arg;
	r->calls++;
	r->ok = ok;
	snprintf(r->user, sizeof(r->user), "%s", user);
	r->at = now_s();
	if (--pending == 0)
		ev_break(loop, EVBREAK_ALL);
}

static void
on_deadline(struct ev_loop *l, ev_timer *t, int revents)
{
	(void)t;
	(void)revents;
	ev_break(l, EVBREAK_ALL);
}

/* Runs the loop until `pending` callbacks came, or WAIT_S passed. */
static void
run_until_done(void)
{
	ev_timer deadline;
	ev_timer_init(&deadline, on_deadline, WAIT_S, 0.);
	ev_timer_start(loop, &deadline);
	if (pending > 0)
		ev_run(loop, 0);
	ev_timer_stop(loop, &deadline);
	cr_assert_eq(pending, 0, "%d results missing after %.0f s", pending,
		     WAIT_S);
}

static void
setup(void)
{
	loop = ev_loop_new(EVFLAG_AUTO);
	cr_assert_not_null(loop);
	pending = 0;
	cr_assert_eq(auth_hash("right one", hash, sizeof(hash)), 0);
}

static void
teardown(void)
{
	ev_loop_destroy(loop);
}

TestSuite(auth_pool, .init = setup, .fini = teardown);

Test(auth_pool, right_wrong_and_unknown_user)
{
	struct auth_pool *p = auth_pool_new(loop, 2, 8, 0);
	struct result right = {0}, wrong = {0}, unknown = {0};

	cr_assert_not_null(p);
	cr_assert_gt(auth_pool_verify(p, hash, "src", "alice@x.test",
				      "right one", on_result, &right),
		     0);
	cr_assert_gt(auth_pool_verify(p, hash, "src", "alice@x.test",
				      "right On", on_result, &wrong),
		     0);
	cr_assert_gt(auth_pool_verify(p, NULL, "src", "nobody@x.test",
				      "right one", on_result, &unknown),
		     0);
	pending = 3;
	run_until_done();
	cr_assert_eq(right.calls, 1);
	cr_assert(right.ok);
	cr_assert_str_eq(right.user, "alice@x.test");
	cr_assert_eq(wrong.calls, 1);
	cr_assert_not(wrong.ok);
	cr_assert_eq(unknown.calls, 1);
	cr_assert_not(unknown.ok);
	cr_assert_str_eq(unknown.user, "nobody@x.test");
	/* A directory-less check is the unknown user's. */
	struct result nodir = {0};
	cr_assert_gt(auth_pool_start(p, NULL, "src", "alice@x.test",
				     "right one", on_result, &nodir),
		     0);
	pending = 1;
	run_until_done();
	cr_assert_not(nodir.ok);
	auth_pool_free(p);
}

/* One thread: jobs run one after the other, so an unknown user's job
 * (the dummy hash) must take about as long as a known user's. */
Test(auth_pool, unknown_user_costs_a_crypt_call)
{
	struct auth_pool *p = auth_pool_new(loop, 1, 8, 0);
	struct result known = {0}, unknown = {0};

	cr_assert_not_null(p);
	double t0 = now_s();
	cr_assert_gt(auth_pool_verify(p, hash, "src", "a@x.test", "nope",
				      on_result, &known),
		     0);
	pending = 1;
	run_until_done();
	double t1 = now_s();
	cr_assert_gt(auth_pool_verify(p, NULL, "src", "b@x.test", "nope",
				      on_result, &unknown),
		     0);
	pending = 1;
	run_until_done();
	double t2 = now_s();
	cr_assert_gt(t2 - t1, 0.3 * (t1 - t0), "unknown %.4f s vs known %.4f s",
		     t2 - t1, t1 - t0);
	auth_pool_free(p);
}

Test(auth_pool, full_pool_refuses_then_takes_again)
{
	struct auth_pool *p = auth_pool_new(loop, 1, 3, 0);
	struct result r[8];
	uint64_t id[8];
	int taken = 0;

	cr_assert_not_null(p);
	memset(r, 0, sizeof(r));
	for (int i = 0; i < 8; i++) {
		id[i] = auth_pool_verify(p, hash, "src", "a@x.test",
					 "right one", on_result, &r[i]);
		if (id[i] > 0)
			taken++;
	}
	cr_assert_eq(taken, 3, "taken %d of 8 with room for 3", taken);
	for (int i = 0; i < 3; i++)
		cr_assert_gt(id[i], 0);
	pending = 3;
	run_until_done();
	for (int i = 0; i < 8; i++)
		cr_assert_eq(r[i].calls, i < 3 ? 1 : 0, "job %d: %d calls", i,
			     r[i].calls);
	for (int i = 0; i < 3; i++)
		cr_assert(r[i].ok);
	/* Delivered jobs leave the pool: there is room again. */
	struct result again = {0};
	cr_assert_gt(auth_pool_verify(p, hash, "src", "a@x.test", "right one",
				      on_result, &again),
		     0);
	pending = 1;
	run_until_done();
	cr_assert(again.ok);
	auth_pool_free(p);
}

/* One thread: the first job is being hashed when cancelled, the second
 * still queued; a third, started last, is answered after both would have
 * been. Neither cancelled callback comes, and the room they held is
 * given back. */
Test(auth_pool, cancel_running_and_queued)
{
	struct auth_pool *p = auth_pool_new(loop, 1, 3, 0);
	struct result running = {0}, queued = {0}, last = {0};
	struct timespec pause = {0, 20 * 1000 * 1000};

	cr_assert_not_null(p);
	uint64_t a = auth_pool_verify(p, hash, "src", "a@x.test", "right one",
				      on_result, &running);
	uint64_t b = auth_pool_verify(p, hash, "src", "b@x.test", "right one",
				      on_result, &queued);
	cr_assert(a > 0 && b > 0 && a != b);
	nanosleep(&pause, NULL); /* the thread takes a */
	auth_pool_cancel(p, a);
	auth_pool_cancel(p, b);
	auth_pool_cancel(p, b); /* twice: ignored */
	auth_pool_cancel(p, 0);
	cr_assert_gt(auth_pool_verify(p, hash, "src", "c@x.test", "right one",
				      on_result, &last),
		     0);
	pending = 1;
	run_until_done();
	cr_assert(last.ok);
	cr_assert_eq(running.calls, 0);
	cr_assert_eq(queued.calls, 0);
	/* All three slots free again (a's once its thread dropped it). */
	uint64_t ids[3];
	struct result more[3];
	memset(more, 0, sizeof(more));
	for (int i = 0; i < 3; i++) {
		ids[i] = auth_pool_verify(p, hash, "src", "d@x.test", "x",
					  on_result, &more[i]);
		cr_assert_gt(ids[i], 0, "slot %d", i);
	}
	pending = 3;
	run_until_done();
	auth_pool_free(p);
}

/* Cancelled after it is done but before the loop delivered it: the loop
 * does not run meanwhile, so the result waits on the done list once the
 * thread is through (given ten times what one check takes here). */
Test(auth_pool, cancel_done_not_delivered)
{
	struct auth_pool *p = auth_pool_new(loop, 1, 3, 0);
	struct result r = {0}, next = {0};

	cr_assert_not_null(p);
	double t0 = now_s();
	auth_verify(hash, "x");
	double cost = now_s() - t0;
	uint64_t id = auth_pool_verify(p, hash, "src", "a@x.test", "right one",
				       on_result, &r);
	cr_assert_gt(id, 0);
	double wait = 10 * cost < 0.2 ? 0.2 : 10 * cost;
	struct timespec ts = {(time_t)wait,
			      (long)((wait - (double)(time_t)wait) * 1e9)};
	nanosleep(&ts, NULL);
	auth_pool_cancel(p, id);
	cr_assert_gt(auth_pool_verify(p, hash, "src", "b@x.test", "right one",
				      on_result, &next),
		     0);
	pending = 1;
	run_until_done();
	cr_assert_eq(r.calls, 0);
	cr_assert(next.ok);
	auth_pool_free(p);
}

/* Freed with a job being hashed and others queued: no callback, no leak
 * (the ASan build checks), threads joined. */
Test(auth_pool, free_with_jobs_in_flight)
{
	struct auth_pool *p = auth_pool_new(loop, 2, 8, 0);
	struct result r[5];

	cr_assert_not_null(p);
	memset(r, 0, sizeof(r));
	for (int i = 0; i < 5; i++)
		cr_assert_gt(auth_pool_verify(p, hash, "src", "a@x.test",
					      "right one", on_result, &r[i]),
			     0);
	auth_pool_free(p);
	ev_run(loop, EVRUN_NOWAIT);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(r[i].calls, 0);
}

/* One thread, six jobs from one source, then one from another: sources
 * take turns, so the other's job is not answered last but at most after
 * two of the first source's (the one being hashed and the next). */
Test(auth_pool, sources_take_turns)
{
	struct auth_pool *p = auth_pool_new(loop, 1, 16, 0);
	struct result a[6], b = {0};
	int before = 0;

	cr_assert_not_null(p);
	memset(a, 0, sizeof(a));
	for (int i = 0; i < 6; i++)
		cr_assert_gt(auth_pool_verify(p, hash, "192.0.2.1", "a@x.test",
					      "right one", on_result, &a[i]),
			     0);
	cr_assert_gt(auth_pool_verify(p, hash, "198.51.100.1", "b@x.test",
				      "right one", on_result, &b),
		     0);
	pending = 7;
	run_until_done();
	for (int i = 0; i < 6; i++)
		if (a[i].at < b.at)
			before++;
	cr_assert_leq(before, 2, "%d of the flood's jobs answered first",
		      before);
	auth_pool_free(p);
}

/* One source holds at most its share of the queue; others still get in. */
Test(auth_pool, one_source_holds_its_share)
{
	struct auth_pool *p = auth_pool_new(loop, 1, 16, 3);
	struct result a[4], b = {0};

	cr_assert_not_null(p);
	memset(a, 0, sizeof(a));
	for (int i = 0; i < 3; i++)
		cr_assert_gt(auth_pool_verify(p, hash, "192.0.2.1", "a@x.test",
					      "right one", on_result, &a[i]),
			     0);
	cr_assert_eq(auth_pool_verify(p, hash, "192.0.2.1", "a@x.test",
				      "right one", on_result, &a[3]),
		     0);
	cr_assert_gt(auth_pool_verify(p, hash, "198.51.100.1", "b@x.test",
				      "right one", on_result, &b),
		     0);
	pending = 4;
	run_until_done();
	cr_assert(b.ok);
	cr_assert_eq(a[3].calls, 0);
	/* Answered jobs give the share back. */
	cr_assert_gt(auth_pool_verify(p, hash, "192.0.2.1", "a@x.test",
				      "right one", on_result, &a[3]),
		     0);
	pending = 1;
	run_until_done();
	auth_pool_free(p);
}
