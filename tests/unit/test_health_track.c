/* health_track: rise/fall sequences, the first-probe rule, flapping. */
#include <criterion/criterion.h>

#include "../../health/health.h"

/* Feeds a string of results ('+' pass, '-' fail) and returns how many
 * times the verdict changed. */
static int
feed(struct health_track *t, const char *results)
{
	int changes = 0;

	for (; *results != '\0'; results++)
		changes += health_track_feed(t, *results == '+');
	return changes;
}

Test(health_track, init_clamps_and_zeroes)
{
	struct health_track t;

	health_track_init(&t, 0, -3, true, false);
	cr_assert_eq(t.rise, 1);
	cr_assert_eq(t.fall, 1);
	cr_assert(t.up);
	cr_assert_eq(t.passes, 0);
	cr_assert_eq(t.fails, 0);
}

Test(health_track, goes_down_after_fall_failures_in_a_row)
{
	struct health_track t;

	health_track_init(&t, 2, 3, true, false);
	cr_assert_not(health_track_feed(&t, false));
	cr_assert_not(health_track_feed(&t, false));
	cr_assert(t.up);
	cr_assert_eq(t.fails, 2);
	cr_assert(health_track_feed(&t, false));
	cr_assert_not(t.up);
	cr_assert_eq(t.fails, 3, "the counter keeps fall for the log line");
}

Test(health_track, comes_up_after_rise_passes_in_a_row)
{
	struct health_track t;

	health_track_init(&t, 2, 2, false, false);
	cr_assert_not(health_track_feed(&t, true));
	cr_assert_not(t.up);
	cr_assert_eq(t.passes, 1);
	cr_assert(health_track_feed(&t, true));
	cr_assert(t.up);
	cr_assert_eq(t.passes, 2);
}

Test(health_track, counter_keeps_value_until_opposite_result)
{
	struct health_track t;

	health_track_init(&t, 2, 2, true, false);
	cr_assert_eq(feed(&t, "--"), 1);
	cr_assert_eq(t.fails, 2);
	cr_assert_eq(feed(&t, "--"), 0, "down stays down");
	cr_assert_eq(t.fails, 2, "still the count that took it down");
	cr_assert_eq(feed(&t, "+"), 0);
	cr_assert_eq(t.fails, 0, "reset by the first pass");
	cr_assert_eq(t.passes, 1);
	cr_assert_eq(feed(&t, "+"), 1);
	cr_assert(t.up);
	cr_assert_eq(feed(&t, "++"), 0);
	cr_assert_eq(t.passes, 2, "still the count that brought it up");
	cr_assert_eq(feed(&t, "-"), 0);
	cr_assert_eq(t.passes, 0);
	cr_assert_eq(t.fails, 1);
}

Test(health_track, first_probe_failure_takes_it_down_at_once)
{
	struct health_track t;

	health_track_init(&t, 2, 3, true, true);
	cr_assert(health_track_feed(&t, false));
	cr_assert_not(t.up);
	cr_assert_not(t.first_pending);
	cr_assert_eq(t.fails, 1);
	cr_assert_eq(feed(&t, "+"), 0, "rise applies from then on");
	cr_assert_eq(feed(&t, "+"), 1);
	cr_assert(t.up);
}

Test(health_track, first_probe_pass_keeps_it_up_then_fall_applies)
{
	struct health_track t;

	health_track_init(&t, 2, 3, true, true);
	cr_assert_not(health_track_feed(&t, true));
	cr_assert(t.up);
	cr_assert_not(t.first_pending);
	cr_assert_eq(feed(&t, "--"), 0, "a later failure waits for fall");
	cr_assert(t.up);
	cr_assert_eq(feed(&t, "-"), 1);
	cr_assert_not(t.up);
}

Test(health_track, runtime_node_starts_down_until_rise)
{
	struct health_track t;

	health_track_init(&t, 3, 2, false, false);
	cr_assert_eq(feed(&t, "-"), 0);
	cr_assert_eq(feed(&t, "++"), 0);
	cr_assert_not(t.up);
	cr_assert_eq(feed(&t, "+"), 1);
	cr_assert(t.up);
}

Test(health_track, flapping_never_changes_the_verdict)
{
	struct health_track t;

	health_track_init(&t, 2, 2, true, false);
	cr_assert_eq(feed(&t, "-+-+-+-+-+-+"), 0);
	cr_assert(t.up);
	health_track_init(&t, 2, 2, false, false);
	cr_assert_eq(feed(&t, "+-+-+-+-+-+-"), 0);
	cr_assert_not(t.up);
}

Test(health_track, flapping_with_runs_long_enough_changes_each_time)
{
	struct health_track t;

	health_track_init(&t, 2, 2, true, false);
	cr_assert_eq(feed(&t, "--++--++"), 4);
	cr_assert(t.up);
	cr_assert_eq(feed(&t, "-+--"), 1);
	cr_assert_not(t.up);
}

Test(health_track, rise_and_fall_of_one)
{
	struct health_track t;

	health_track_init(&t, 1, 1, true, false);
	cr_assert_eq(feed(&t, "-"), 1);
	cr_assert_eq(t.fails, 1);
	cr_assert_eq(feed(&t, "+"), 1);
	cr_assert_eq(t.passes, 1);
	cr_assert_eq(feed(&t, "-+-+"), 4);
}
