/* Weighted least connections: the eligible node with the fewest active
 * connections per unit of weight. Loads are compared as (active + 1) /
 * weight, the load the node would have after taking this client (HAProxy's
 * fwlc does the same), so that among idle nodes the heavier goes first;
 * fractions are compared by cross-multiplication, never divided. Equal
 * nodes share: the scan starts after the last node chosen. */
#include "lb.h"

#include <stdlib.h>

struct lc_state {
	size_t next; /* where the next scan starts */
};

static struct lc_state *
lc_of(struct lb_state *st)
{
	return (struct lc_state *)st;
}

static struct lb_state *
lc_create(void)
{
	return (struct lb_state *)calloc(1, sizeof(struct lc_state));
}

static void
lc_destroy(struct lb_state *st)
{
	free(lc_of(st));
}

static int
lc_rebuild(struct lb_state *st, struct node *const *nodes, size_t n)
{
	(void)nodes;
	(void)n;
	lc_of(st)->next = 0;
	return 0;
}

/* True if a (with active connections and weight wa) is strictly less
 * loaded than b: (aa + 1) / wa < (ab + 1) / wb. Weights are positive. */
static int
lc_less(long aa, int wa, long ab, int wb)
{
	return ((int64_t)aa + 1) * wb < ((int64_t)ab + 1) * wa;
}

static struct node *
lc_pick(struct lb_state *st, struct node *const *nodes, size_t n,
	uint32_t client_hash, struct node *const *skip, size_t nskip)
{
	struct lc_state *lc = lc_of(st);
	size_t best = n;
	long best_active = 0;
	int best_weight = 0;

	(void)client_hash;
	for (size_t k = 0; k < n; k++) {
		size_t i = (lc->next + k) % n;
		if (!lb_eligible(nodes[i], skip, nskip))
			continue;
		long a = atomic_load_explicit(&nodes[i]->active,
					      memory_order_relaxed);
		int w = atomic_load_explicit(&nodes[i]->weight,
					     memory_order_relaxed);
		if (a < 0)
			a = 0;
		if (w <= 0)
			continue; /* changed since node_usable() looked */
		if (best == n || lc_less(a, w, best_active, best_weight)) {
			best = i;
			best_active = a;
			best_weight = w;
		}
	}
	if (best == n)
		return NULL;
	lc->next = (best + 1) % n;
	return nodes[best];
}

const struct lb_ops lb_leastconn = {
    .name = "leastconn",
    .create = lc_create,
    .destroy = lc_destroy,
    .rebuild = lc_rebuild,
    .pick = lc_pick,
};
