/* Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
 * Software Network Load Balancer", NSDI 2016, section 3.4): a lookup table
 * of a prime size M, filled by letting the nodes take turns, each claiming
 * the next free slot of its own permutation of the table; a client goes to
 * table[client_hash % M].
 *
 * The table depends only on the node names and weights: nodes are sorted by
 * name and each permutation comes from two hashes of the name, so two
 * balancers that learned the same nodes in any order build the same table.
 * A node with weight w takes w turns for every wmax turns of the heaviest.
 * Health and admin state stay out of the table: a node that goes down or
 * drains keeps its slots, and only its own clients are sent elsewhere. */
#include "lb.h"

#include <stdlib.h>
#include <string.h>

#define MG_M 65537u /* table size: a prime */
#define MG_TRIES 8  /* rehashes before the linear scan */

struct mg_entry {
	struct node *node;
	int weight;
	uint32_t offset, skip, next; /* permutation and fill cursor */
	int64_t credit;		     /* weighted turns owed */
};

struct mg_state {
	struct mg_entry *ent; /* the weighted nodes, sorted by name */
	size_t nent;
	int32_t *table; /* MG_M indexes into ent[] */
	/* the pool's nodes and weights at the last rebuild, to notice a
	 * change that came without a rebuild */
	struct node **seen;
	int *seen_weight;
	size_t nseen;
};

static struct mg_state *
mg_of(struct lb_state *st)
{
	return (struct mg_state *)st;
}

/* 64-bit FNV-1a with a seed, then murmur3's fmix64 finalizer. */
static uint64_t
mg_hash_name(const char *s, uint64_t seed)
{
	uint64_t h = 14695981039346656037ull ^ seed;
	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* murmur3's fmix32: a fresh, well-spread hash for a fallback attempt. */
static uint32_t
mg_rehash(uint32_t h, uint32_t attempt)
{
	h ^= attempt * 0x9e3779b9u;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

static struct lb_state *
mg_create(void)
{
	return (struct lb_state *)calloc(1, sizeof(struct mg_state));
}

static void
mg_clear(struct mg_state *mg)
{
	free(mg->ent);
	free(mg->table);
	free(mg->seen);
	free(mg->seen_weight);
	memset(mg, 0, sizeof(*mg));
}

static void
mg_destroy(struct lb_state *st)
{
	struct mg_state *mg = mg_of(st);
	if (mg == NULL)
		return;
	mg_clear(mg);
	free(mg);
}

static int
mg_entry_cmp(const void *a, const void *b)
{
	const struct mg_entry *x = a, *y = b;
	int c = strcmp(x->node->name, y->node->name);
	if (c != 0)
		return c;
	return (x->weight > y->weight) - (x->weight < y->weight);
}

/* Node ent[i] claims the next free slot of its permutation. There is one
 * while the table is not full, since a permutation visits every slot. */
static void
mg_take_turn(struct mg_state *mg, size_t i)
{
	struct mg_entry *e = &mg->ent[i];
	uint32_t c;

	do {
		c = (uint32_t)((e->offset + (uint64_t)e->next * e->skip) %
			       MG_M);
		e->next++;
	} while (mg->table[c] >= 0);
	mg->table[c] = (int32_t)i;
}

/* Fills the table from the sorted entries: rounds in which every node
 * gains its weight in credit and takes a turn per wmax of credit. */
static void
mg_populate(struct mg_state *mg)
{
	int wmax = 0;
	size_t filled = 0;

	for (size_t i = 0; i < MG_M; i++)
		mg->table[i] = -1;
	for (size_t i = 0; i < mg->nent; i++) {
		struct mg_entry *e = &mg->ent[i];
		e->offset =
		    (uint32_t)(mg_hash_name(e->node->name, 0x6d61676c) % MG_M);
		e->skip = (uint32_t)(mg_hash_name(e->node->name, 0x65762121) %
				     (MG_M - 1)) +
			  1;
		e->next = 0;
		e->credit = 0;
		if (e->weight > wmax)
			wmax = e->weight;
	}
	while (filled < MG_M) {
		for (size_t i = 0; i < mg->nent && filled < MG_M; i++) {
			struct mg_entry *e = &mg->ent[i];
			e->credit += e->weight;
			if (e->credit < wmax)
				continue;
			e->credit -= wmax;
			mg_take_turn(mg, i);
			filled++;
		}
	}
}

/* Builds the table for nodes[0..n). Returns 0, or -1 on allocation
 * failure with the state left empty (pick() then scans the pool). */
static int
mg_rebuild(struct lb_state *st, struct node *const *nodes, size_t n)
{
	struct mg_state *mg = mg_of(st);

	mg_clear(mg);
	if (n >= MG_M)
		goto fail;
	if (n == 0)
		return 0;
	mg->seen = malloc(n * sizeof(*mg->seen));
	mg->seen_weight = malloc(n * sizeof(*mg->seen_weight));
	mg->ent = calloc(n, sizeof(*mg->ent));
	if (mg->seen == NULL || mg->seen_weight == NULL || mg->ent == NULL)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		int w = atomic_load_explicit(&nodes[i]->weight,
					     memory_order_relaxed);
		mg->seen[i] = nodes[i];
		mg->seen_weight[i] = w;
		if (w <= 0)
			continue; /* never picked: no slots */
		mg->ent[mg->nent].node = nodes[i];
		mg->ent[mg->nent].weight = w;
		mg->nent++;
	}
	mg->nseen = n;
	if (mg->nent == 0)
		return 0;
	qsort(mg->ent, mg->nent, sizeof(*mg->ent), mg_entry_cmp);
	mg->table = malloc(MG_M * sizeof(*mg->table));
	if (mg->table == NULL)
		goto fail;
	mg_populate(mg);
	return 0;
fail:
	mg_clear(mg);
	return -1;
}

/* True if nodes[0..n) and their weights are those of the last rebuild. */
static int
mg_current(const struct mg_state *mg, struct node *const *nodes, size_t n)
{
	if (mg->nseen != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (mg->seen[i] != nodes[i] ||
		    mg->seen_weight[i] !=
			atomic_load_explicit(&nodes[i]->weight,
					     memory_order_relaxed))
			return 0;
	return 1;
}

/* The client's node, then a few rehashes of its hash (so a down node's
 * clients spread by the table's weights), then a scan of the sorted
 * entries from a point the hash decides: deterministic throughout. */
static struct node *
mg_lookup(struct mg_state *mg, uint32_t client_hash, struct node *const *skip,
	  size_t nskip)
{
	struct node *n;

	n = mg->ent[mg->table[client_hash % MG_M]].node;
	if (lb_eligible(n, skip, nskip))
		return n;
	for (uint32_t a = 1; a <= MG_TRIES; a++) {
		n = mg->ent[mg->table[mg_rehash(client_hash, a) % MG_M]].node;
		if (lb_eligible(n, skip, nskip))
			return n;
	}
	size_t start = client_hash % mg->nent;
	for (size_t k = 0; k < mg->nent; k++) {
		n = mg->ent[(start + k) % mg->nent].node;
		if (lb_eligible(n, skip, nskip))
			return n;
	}
	return NULL;
}

static struct node *
mg_pick(struct lb_state *st, struct node *const *nodes, size_t n,
	uint32_t client_hash, struct node *const *skip, size_t nskip)
{
	struct mg_state *mg = mg_of(st);

	if (!mg_current(mg, nodes, n) && mg_rebuild(st, nodes, n) < 0) {
		/* no memory for a table: any eligible node will do */
		for (size_t i = 0; i < n; i++)
			if (lb_eligible(nodes[i], skip, nskip))
				return nodes[i];
		return NULL;
	}
	if (mg->nent == 0)
		return NULL;
	return mg_lookup(mg, client_hash, skip, nskip);
}

const struct lb_ops lb_maglev = {
    .name = "maglev",
    .create = mg_create,
    .destroy = mg_destroy,
    .rebuild = mg_rebuild,
    .pick = mg_pick,
};
