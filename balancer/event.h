/* "A node changed": the one message lbd's parts send each other, as
 * relayd's imsg carries a state change from the process that sees it to
 * those that care. Runtime changes (runtime.c) and probes (checker.c)
 * announce; the subscribers lbd_subscribe() registers at start (the watch
 * stream, the state file, the shared Redis state) listen. The announcers
 * call none of the subscribers, nor the subscribers each other. Main
 * thread only. */
#ifndef LBD_EVENT_H
#define LBD_EVENT_H

struct lbd;
struct pool;
struct node;

enum event_kind {
	/* A node's state moved, from -> to ("up", "drain", "gone", ...):
	 * logged, and streamed to `watch` clients. */
	EVENT_STATE,
	/* What the state file keeps changed (nodes added or removed, admin
	 * states, weights, a maintenance's end, the shared versions). Sent
	 * once per operation, after its EVENT_STATEs. */
	EVENT_CHANGED,
};

/* Who asked for the change. */
enum event_origin {
	ORIGIN_CONTROL,	  /* the control socket */
	ORIGIN_STATEFILE, /* the state file, read at start */
	ORIGIN_PEER,	  /* the peer balancer, through Redis */
	ORIGIN_PROBE,	  /* the checker: probes, failures of real traffic */
	ORIGIN_TIMER,	  /* housekeeping: maintenance ends, removals end */
};

struct event {
	enum event_kind kind;
	enum event_origin origin;
	struct pool *pool; /* NULL: several nodes, or none named */
	struct node *node; /* EVENT_STATE only: alive while announced */
	const char *name;  /* the node's name; NULL when pool is NULL */
	const char *from, *to, *reason; /* EVENT_STATE; reason may be NULL */
};

/* A subscriber: called for every event, in the order of subscription.
 * It must not announce events itself. */
typedef void event_fn(struct lbd *l, const struct event *ev);

#define EVENT_SUBSCRIBERS_MAX 8

/* Adds fn to l's subscribers. Returns 0, or -1 when they are full. */
int event_subscribe(struct lbd *l, event_fn *fn);

/* Announces that n of pool p moved from -> to, because of reason. Logged
 * ("pool P node N TO: REASON") before the subscribers hear it. */
void event_state(struct lbd *l, enum event_origin o, struct pool *p,
		 struct node *n, const char *from, const char *to,
		 const char *reason);
/* Announces that what the state file keeps changed for node `name` of p
 * (p NULL, name NULL: for several nodes). */
void event_changed(struct lbd *l, enum event_origin o, struct pool *p,
		   const char *name);

#endif
