/* Runtime changes to pools, whoever asks for them (the control socket, the
 * state file at start, the peer balancer through Redis): add and remove
 * nodes, admin states, weights; and the 1-second housekeeping that ends
 * timed maintenance and completes removals. Every change is announced
 * through event.h (an EVENT_STATE per state moved, then one EVENT_CHANGED
 * with the caller's origin); runtime.c calls none of the subscribers.
 * Main thread only. */
#ifndef LBD_RUNTIME_H
#define LBD_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>

#include "lbd.h"

/* A config node removed at run time: the state file must say so, since
 * the config would bring it back at the next start. */
struct runtime_removed {
	char pool[LBD_NAME_MAX];
	char node[NODE_NAME_MAX];
	struct runtime_removed *next;
};

/* Starts the housekeeping timer (l->housekeeping). Returns 0 or -1. */
int runtime_start(struct lbd *l);
/* Stops the timer and frees l->removed. Safe to call twice. */
void runtime_stop(struct lbd *l);

/* Each operation returns 0, or -1 with the reason in err (a phrase such
 * as `node "n1" already exists in pool "mx"`, no "error: " prefix).
 * o says who asks (the events carry it); reason goes to the log and the
 * watchers. */

/* Adds n (fresh from node_new() or config_node_parse(), health down; the
 * pool takes the caller's reference, also on failure) and starts its
 * probes: it gets traffic once they pass. */
int runtime_node_add(struct lbd *l, enum event_origin o, struct pool *p,
		     struct node *n, const char *reason, char *err,
		     size_t errlen);
/* No new connections, probes stop; gone once its last connection ends. */
int runtime_node_remove(struct lbd *l, enum event_origin o, struct pool *p,
			struct node *n, const char *reason, char *err,
			size_t errlen);
/* ADMIN_NONE, ADMIN_DRAIN or ADMIN_MAINT; maint_until (epoch seconds, 0
 * for none) ends a maintenance by itself. */
int runtime_node_admin(struct lbd *l, enum event_origin o, struct pool *p,
		       struct node *n, enum node_admin admin,
		       double maint_until, const char *reason, char *err,
		       size_t errlen);
int runtime_node_weight(struct lbd *l, enum event_origin o, struct pool *p,
			struct node *n, int weight, const char *reason,
			char *err, size_t errlen);

/* Housekeeping, also run by the timer: ends timed maintenance that is
 * due and detaches removed nodes without connections (ORIGIN_TIMER). */
void runtime_tick(struct lbd *l);

/* The config nodes removed at run time, for the state file. */
const struct runtime_removed *runtime_removed_list(struct lbd *l);

#endif
