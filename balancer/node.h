/* A node: one backend address in one pool. Shared between the main thread
 * (probes, control socket) and the worker threads (picking, relaying), so
 * every field a worker reads or writes is atomic; the rest belongs to the
 * main thread. */
#ifndef LBD_NODE_H
#define LBD_NODE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/addr.h"
#include "lbd_limits.h"

enum node_health { HEALTH_DOWN = 0, HEALTH_UP = 1 };

/* Administrative state, shown over the probes' verdict. */
enum node_admin {
	ADMIN_NONE = 0,
	ADMIN_DRAIN,	/* no new connections, probes go on */
	ADMIN_MAINT,	/* no new connections (node disable) */
	ADMIN_REMOVING, /* pool remove: gone when the last connection ends */
};

struct node {
	char name[NODE_NAME_MAX];
	struct addr addr;
	char addrstr[ADDR_STRLEN];
	int maxconn; /* 0: no limit */

	_Atomic int weight;
	_Atomic int health; /* enum node_health */
	_Atomic int admin;  /* enum node_admin */
	_Atomic long active;
	_Atomic unsigned long total;
	_Atomic unsigned long bytes_in;	 /* client to node */
	_Atomic unsigned long bytes_out; /* node to client */
	_Atomic unsigned long connect_fail;
	_Atomic int refs; /* the pool's reference plus one per connection */

	/* main thread only */
	bool from_config;
	double maint_until; /* ev_time() when a timed disable ends; 0: none */
	double last_change; /* ev_time() of the last state change */
	char check_status[96];
	double check_latency_ms;
	int check_ok;  /* last probe result: 1 ok, 0 failed, -1 none yet */
	void *checker; /* balancer/checker.c's per-node probe state */
};

/* True when a new connection may go to this node. */
static inline bool
node_usable(struct node *n)
{
	if (atomic_load_explicit(&n->admin, memory_order_relaxed) != ADMIN_NONE)
		return false;
	if (atomic_load_explicit(&n->health, memory_order_relaxed) != HEALTH_UP)
		return false;
	if (atomic_load_explicit(&n->weight, memory_order_relaxed) <= 0)
		return false;
	if (n->maxconn > 0 &&
	    atomic_load_explicit(&n->active, memory_order_relaxed) >=
		n->maxconn)
		return false;
	return true;
}

/* Allocates a node with one reference (the pool's), health as given. */
struct node *node_new(const char *name, const struct addr *a, int weight,
		      int maxconn, enum node_health health);
void node_ref(struct node *n);
/* Drops a reference; frees the node at zero. Returns true if freed. */
bool node_unref(struct node *n);

/* "up", "down", "drain", "maint", "removing": the state column. */
const char *node_state_name(struct node *n);
const char *node_health_name(struct node *n);

/* The admin states' one vocabulary, for the state file and the shared
 * state: "none", "drain", "maint", "removing". */
const char *node_admin_name(enum node_admin a);
/* Returns 0 with *out set, or -1 for a name not in the vocabulary. */
int node_admin_parse(const char *s, enum node_admin *out);

/* A maintenance end as the state file and the shared state write it:
 * "-" (none: *out 0) or epoch seconds ("%.3f", above 0). Returns 0, or
 * -1 with *out untouched. */
int node_until_parse(const char *s, double *out);
/* Writes a maintenance end that way ("-" for 0). */
void node_until_fmt(double until, char *buf, size_t len);

#endif
