/* rise/fall: turns a stream of probe results into up or down.
 *
 * While up, failures count in fails and a pass resets it; fall failures in
 * a row take the node down. While down, passes count in passes and a
 * failure resets it; rise passes in a row bring it up. The counter that
 * caused a transition keeps its value until the next opposite result, so
 * the caller can log it as "(fails/fall)". A node up pending its first
 * probe goes down at once when that probe fails (fails is then 1). */
#include "health.h"

void
health_track_init(struct health_track *t, int rise, int fall, bool up,
		  bool first_pending)
{
	t->rise = rise > 0 ? rise : 1;
	t->fall = fall > 0 ? fall : 1;
	t->up = up;
	t->first_pending = first_pending;
	t->passes = 0;
	t->fails = 0;
}

static bool
health_track_pass(struct health_track *t)
{
	t->fails = 0;
	if (t->up)
		return false;
	if (t->passes < t->rise)
		t->passes++;
	if (t->passes < t->rise)
		return false;
	t->up = true;
	return true;
}

static bool
health_track_fail(struct health_track *t, bool first)
{
	t->passes = 0;
	if (!t->up)
		return false;
	if (t->fails < t->fall)
		t->fails++;
	if (t->fails < t->fall && !first)
		return false;
	t->up = false;
	return true;
}

bool
health_track_feed(struct health_track *t, bool ok)
{
	bool first = t->first_pending;

	t->first_pending = false;
	return ok ? health_track_pass(t) : health_track_fail(t, first);
}
