/* Smooth weighted round robin (as nginx does it): at each pick every
 * eligible node gains its weight, the node with the most is chosen and
 * loses the sum of the weights. Over a window of sum(weights) picks each
 * node is chosen exactly weight times, and a heavy node's turns are spread
 * among the others' instead of coming in a burst. */
#include "lb.h"

#include <stdlib.h>
#include <string.h>

struct rr_state {
	struct node **nodes; /* the pool's nodes at the last rebuild */
	int64_t *current;    /* current[i]: nodes[i]'s running credit */
	size_t n, cap;
};

static struct rr_state *
rr_of(struct lb_state *st)
{
	return (struct rr_state *)st;
}

static struct lb_state *
rr_create(void)
{
	return (struct lb_state *)calloc(1, sizeof(struct rr_state));
}

static void
rr_destroy(struct lb_state *st)
{
	struct rr_state *rr = rr_of(st);
	if (rr == NULL)
		return;
	free(rr->nodes);
	free(rr->current);
	free(rr);
}

/* Starts a new cycle over nodes[0..n). Returns 0, or -1 on allocation
 * failure, leaving the state empty. */
static int
rr_rebuild(struct lb_state *st, struct node *const *nodes, size_t n)
{
	struct rr_state *rr = rr_of(st);

	if (n > rr->cap) {
		struct node **nn = realloc(rr->nodes, n * sizeof(*nn));
		if (nn == NULL)
			goto fail;
		rr->nodes = nn;
		int64_t *cur = realloc(rr->current, n * sizeof(*cur));
		if (cur == NULL)
			goto fail;
		rr->current = cur;
		rr->cap = n;
	}
	if (n > 0) {
		memcpy(rr->nodes, nodes, n * sizeof(*nodes));
		memset(rr->current, 0, n * sizeof(*rr->current));
	}
	rr->n = n;
	return 0;
fail:
	rr->n = 0;
	return -1;
}

/* True if nodes[0..n) is still the set of the last rebuild. */
static int
rr_current(const struct rr_state *rr, struct node *const *nodes, size_t n)
{
	return rr->n == n &&
	       (n == 0 || memcmp(rr->nodes, nodes, n * sizeof(*nodes)) == 0);
}

/* Without a state (allocation failed): the first eligible node. */
static struct node *
rr_pick_plain(struct node *const *nodes, size_t n, struct node *const *skip,
	      size_t nskip)
{
	for (size_t i = 0; i < n; i++)
		if (lb_eligible(nodes[i], skip, nskip))
			return nodes[i];
	return NULL;
}

static struct node *
rr_pick(struct lb_state *st, struct node *const *nodes, size_t n,
	uint32_t client_hash, struct node *const *skip, size_t nskip)
{
	struct rr_state *rr = rr_of(st);
	int64_t total = 0;
	size_t best = n;

	(void)client_hash;
	if (!rr_current(rr, nodes, n) && rr_rebuild(st, nodes, n) < 0)
		return rr_pick_plain(nodes, n, skip, nskip);
	for (size_t i = 0; i < n; i++) {
		if (!lb_eligible(nodes[i], skip, nskip))
			continue;
		int w = atomic_load_explicit(&nodes[i]->weight,
					     memory_order_relaxed);
		rr->current[i] += w;
		total += w;
		if (best == n || rr->current[i] > rr->current[best])
			best = i;
	}
	if (best == n)
		return NULL;
	rr->current[best] -= total;
	return nodes[best];
}

const struct lb_ops lb_roundrobin = {
    .name = "roundrobin",
    .create = rr_create,
    .destroy = rr_destroy,
    .rebuild = rr_rebuild,
    .pick = rr_pick,
};
