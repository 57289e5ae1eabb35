/* The event module (event.h): the subscriber list and the two ways to
 * announce. */
#include "event.h"

#include "../common/log.h"
#include "lbd.h"

int
event_subscribe(struct lbd *l, event_fn *fn)
{
	if (l->nsubscribers >= EVENT_SUBSCRIBERS_MAX) {
		log_err("%s: more than %d subscribers", __func__,
			EVENT_SUBSCRIBERS_MAX);
		return -1;
	}
	l->subscribers[l->nsubscribers++] = fn;
	return 0;
}

static void
event_publish(struct lbd *l, const struct event *ev)
{
	for (int i = 0; i < l->nsubscribers; i++)
		l->subscribers[i](l, ev);
}

void
event_state(struct lbd *l, enum event_origin o, struct pool *p, struct node *n,
	    const char *from, const char *to, const char *reason)
{
	struct event ev = {
	    .kind = EVENT_STATE,
	    .origin = o,
	    .pool = p,
	    .node = n,
	    .name = n->name,
	    .from = from,
	    .to = to,
	    .reason = reason,
	};

	log_info("pool %s node %s %s: %s", p->name, n->name, to,
		 reason != NULL ? reason : "");
	event_publish(l, &ev);
}

void
event_changed(struct lbd *l, enum event_origin o, struct pool *p,
	      const char *name)
{
	struct event ev = {
	    .kind = EVENT_CHANGED,
	    .origin = o,
	    .pool = p,
	    .name = name,
	};

	event_publish(l, &ev);
}
