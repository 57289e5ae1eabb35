/* Balancing algorithms: one per file (lb_roundrobin.c, lb_leastconn.c,
 * lb_maglev.c) behind this table of functions. A pool owns one lb_state;
 * the pool's lock is held around every call, so an algorithm needs no
 * locking of its own. Node fields are read with the atomics of node.h. */
#ifndef LBD_LB_H
#define LBD_LB_H

#include <stddef.h>
#include <stdint.h>

#include "node.h"

struct lb_state;

struct lb_ops {
	const char *name;
	/* Returns a fresh state, or NULL on allocation failure. */
	struct lb_state *(*create)(void);
	void (*destroy)(struct lb_state *st);
	/* The node set or a weight changed: nodes[0..n) is the whole pool,
	 * usable or not, in the pool's order. */
	int (*rebuild)(struct lb_state *st, struct node *const *nodes,
		       size_t n);
	/* Chooses a usable node (node_usable()) not in skip[0..nskip), for a
	 * client whose source-address hash is client_hash; NULL if none. */
	struct node *(*pick)(struct lb_state *st, struct node *const *nodes,
			     size_t n, uint32_t client_hash,
			     struct node *const *skip, size_t nskip);
};

extern const struct lb_ops lb_roundrobin;
extern const struct lb_ops lb_leastconn;
extern const struct lb_ops lb_maglev;

/* Looks an algorithm up by its config name; NULL if unknown. */
const struct lb_ops *lb_find(const char *name);

/* Helper for pick(): true if n is in skip[0..nskip). */
static inline int
lb_skipped(const struct node *n, struct node *const *skip, size_t nskip)
{
	for (size_t i = 0; i < nskip; i++)
		if (skip[i] == n)
			return 1;
	return 0;
}

/* Helper for pick(): true if n may take this client (usable, not skipped). */
static inline int
lb_eligible(struct node *n, struct node *const *skip, size_t nskip)
{
	return node_usable(n) && !lb_skipped(n, skip, nskip);
}

#endif
