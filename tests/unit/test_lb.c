/* Balancing algorithms: roundrobin's exact weighted windows, leastconn's
 * choice by load per weight, and maglev's spread, stability when a node
 * goes down or leaves, and independence from insertion order. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "../../balancer/lb.h"
#include "../../balancer/node.h"

#define MAXN 16

struct fixture {
	const struct lb_ops *ops;
	struct lb_state *st;
	struct node *nodes[MAXN];
	size_t n;
};

static struct node *
mknode(const char *name, int weight)
{
	struct addr a;
	const char *why;
	cr_assert_eq(addr_parse("127.0.0.1:2525", &a, &why), 0);
	struct node *n = node_new(name, &a, weight, 0, HEALTH_UP);
	cr_assert_not_null(n);
	return n;
}

/* names[i] with weights[i]; the algorithm's state rebuilt over them. */
static void
fx_init(struct fixture *fx, const char *algo, const char *const *names,
	const int *weights, size_t n)
{
	memset(fx, 0, sizeof(*fx));
	fx->ops = lb_find(algo);
	cr_assert_not_null(fx->ops, "no algorithm %s", algo);
	fx->st = fx->ops->create();
	cr_assert_not_null(fx->st);
	for (size_t i = 0; i < n; i++)
		fx->nodes[i] = mknode(names[i], weights[i]);
	fx->n = n;
	cr_assert_eq(fx->ops->rebuild(fx->st, fx->nodes, fx->n), 0);
}

static void
fx_free(struct fixture *fx)
{
	fx->ops->destroy(fx->st);
	for (size_t i = 0; i < fx->n; i++)
		node_unref(fx->nodes[i]);
}

static struct node *
fx_pick(struct fixture *fx, uint32_t h)
{
	return fx->ops->pick(fx->st, fx->nodes, fx->n, h, NULL, 0);
}

static size_t
fx_index(struct fixture *fx, struct node *n)
{
	for (size_t i = 0; i < fx->n; i++)
		if (fx->nodes[i] == n)
			return i;
	cr_assert_fail("picked a node outside the pool");
	return 0;
}

/* Seeded source addresses, hashed as lbd hashes a client. */
static uint32_t rng_state = 2463534242u;

static uint32_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static uint32_t
random_client_hash(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	sin.sin_addr.s_addr = rng();
	return addr_hash_host((struct sockaddr *)&sin);
}

static const char *const ABC[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
static const int ONES[] = {1, 1, 1, 1, 1, 1, 1, 1};

/* ---- every algorithm ---- */

Test(lb, find_by_name)
{
	cr_assert_eq(lb_find("roundrobin"), &lb_roundrobin);
	cr_assert_eq(lb_find("leastconn"), &lb_leastconn);
	cr_assert_eq(lb_find("maglev"), &lb_maglev);
	cr_assert_null(lb_find("random"));
	cr_assert_null(lb_find(""));
	cr_assert_str_eq(lb_maglev.name, "maglev");
}

static void
check_edge_cases(const char *algo)
{
	struct fixture fx;
	const int w[] = {1, 0, 2};

	/* no nodes */
	fx_init(&fx, algo, ABC, ONES, 0);
	cr_assert_null(fx_pick(&fx, 1));
	fx_free(&fx);

	/* weight 0 is never picked, even when it is the only one up */
	fx_init(&fx, algo, ABC, w, 3);
	for (uint32_t h = 0; h < 1000; h++)
		cr_assert_neq(fx_pick(&fx, rng()), fx.nodes[1], "%s", algo);
	atomic_store(&fx.nodes[0]->health, HEALTH_DOWN);
	atomic_store(&fx.nodes[2]->admin, ADMIN_MAINT);
	cr_assert_null(fx_pick(&fx, 7), "%s: weight 0 picked", algo);
	fx_free(&fx);

	/* all unusable, each for its own reason */
	fx_init(&fx, algo, ABC, ONES, 4);
	atomic_store(&fx.nodes[0]->health, HEALTH_DOWN);
	atomic_store(&fx.nodes[1]->admin, ADMIN_DRAIN);
	atomic_store(&fx.nodes[2]->admin, ADMIN_REMOVING);
	fx.nodes[3]->maxconn = 2;
	atomic_store(&fx.nodes[3]->active, 2);
	for (uint32_t h = 0; h < 100; h++)
		cr_assert_null(fx_pick(&fx, rng()), "%s", algo);
	/* below maxconn it is usable again */
	atomic_store(&fx.nodes[3]->active, 1);
	cr_assert_eq(fx_pick(&fx, 3), fx.nodes[3], "%s", algo);
	fx_free(&fx);

	/* everything usable is in skip[] */
	fx_init(&fx, algo, ABC, ONES, 2);
	cr_assert_null(fx.ops->pick(fx.st, fx.nodes, fx.n, 5, fx.nodes, 2));
	cr_assert_eq(fx.ops->pick(fx.st, fx.nodes, fx.n, 5, fx.nodes, 1),
		     fx.nodes[1]);
	fx_free(&fx);
}

Test(lb, edge_cases_roundrobin)
{
	check_edge_cases("roundrobin");
}

Test(lb, edge_cases_leastconn)
{
	check_edge_cases("leastconn");
}

Test(lb, edge_cases_maglev)
{
	check_edge_cases("maglev");
}

/* ---- roundrobin ---- */

Test(roundrobin, exact_counts_per_window)
{
	struct fixture fx;
	const int w[] = {1, 2, 3, 4};
	fx_init(&fx, "roundrobin", ABC, w, 4);
	for (int window = 0; window < 50; window++) {
		int count[4] = {0};
		for (int i = 0; i < 10; i++)
			count[fx_index(&fx, fx_pick(&fx, 0))]++;
		for (int k = 0; k < 4; k++)
			cr_assert_eq(count[k], w[k], "window %d node %d: %d",
				     window, k, count[k]);
	}
	fx_free(&fx);
}

Test(roundrobin, interleaves)
{
	/* weights 5, 1, 1: the heavy node's turns are spread, never five
	 * in a row (the sequence nginx documents for smooth WRR) */
	struct fixture fx;
	const int w[] = {5, 1, 1};
	const char want[] = "aabacaa";
	fx_init(&fx, "roundrobin", ABC, w, 3);
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < strlen(want); i++)
			cr_assert_eq(fx_pick(&fx, 0)->name[0], want[i],
				     "round %d pick %zu", round, i);
	fx_free(&fx);

	/* equal weights: strict rotation */
	fx_init(&fx, "roundrobin", ABC, ONES, 3);
	for (int i = 0; i < 30; i++)
		cr_assert_eq(fx_pick(&fx, 0), fx.nodes[i % 3]);
	fx_free(&fx);
}

Test(roundrobin, skips_down_and_skip_listed)
{
	struct fixture fx;
	const int w[] = {1, 2, 3};
	fx_init(&fx, "roundrobin", ABC, w, 3);
	atomic_store(&fx.nodes[1]->health, HEALTH_DOWN);
	int count[3] = {0};
	for (int i = 0; i < 40; i++)
		count[fx_index(&fx, fx_pick(&fx, 0))]++;
	cr_assert_eq(count[0], 10);
	cr_assert_eq(count[1], 0);
	cr_assert_eq(count[2], 30);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(
		    fx.ops->pick(fx.st, fx.nodes, fx.n, 0, &fx.nodes[2], 1),
		    fx.nodes[0]);
	fx_free(&fx);
}

Test(roundrobin, follows_a_changed_node_set)
{
	struct fixture fx;
	fx_init(&fx, "roundrobin", ABC, ONES, 3);
	/* the pool dropped node c without telling: the state notices */
	fx.n = 2;
	for (int i = 0; i < 10; i++)
		cr_assert_neq(fx_pick(&fx, 0), fx.nodes[2]);
	fx.n = 3;
	fx_free(&fx);
}

/* ---- leastconn ---- */

Test(leastconn, least_loaded_per_weight)
{
	struct fixture fx;
	const int w[] = {1, 2, 1, 4};
	fx_init(&fx, "leastconn", ABC, w, 4);
	/* active/weight: a 6, b 3, c 4, d 5 */
	atomic_store(&fx.nodes[0]->active, 6);
	atomic_store(&fx.nodes[1]->active, 6);
	atomic_store(&fx.nodes[2]->active, 4);
	atomic_store(&fx.nodes[3]->active, 20);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(fx_pick(&fx, 0), fx.nodes[1]);
	/* b gets busier (11/2 = 5.5): c is the least loaded now */
	atomic_store(&fx.nodes[1]->active, 11);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(fx_pick(&fx, 0), fx.nodes[2]);
	/* c skipped: d (20/4) before b (11/2) and a (6/1) */
	cr_assert_eq(fx.ops->pick(fx.st, fx.nodes, fx.n, 0, &fx.nodes[2], 1),
		     fx.nodes[3]);
	fx_free(&fx);
}

Test(leastconn, equal_nodes_share)
{
	struct fixture fx;
	fx_init(&fx, "leastconn", ABC, ONES, 3);
	int count[3] = {0};
	for (int i = 0; i < 300; i++)
		count[fx_index(&fx, fx_pick(&fx, 0))]++; /* never released */
	cr_assert_eq(count[0], 100);
	cr_assert_eq(count[1], 100);
	cr_assert_eq(count[2], 100);
	fx_free(&fx);
}

Test(leastconn, long_connections_follow_weights)
{
	struct fixture fx;
	const int w[] = {1, 2, 3};
	fx_init(&fx, "leastconn", ABC, w, 3);
	for (int i = 0; i < 600; i++) {
		struct node *n = fx_pick(&fx, 0);
		atomic_fetch_add(&n->active, 1); /* as pool_pick does */
	}
	for (int k = 0; k < 3; k++) {
		long a = atomic_load(&fx.nodes[k]->active);
		cr_assert(a >= 100 * w[k] - 1 && a <= 100 * w[k] + 1,
			  "node %d: %ld", k, a);
	}
	fx_free(&fx);
}

/* ---- maglev ---- */

#define CLIENTS 100000

static void
maglev_spread(const int *w, size_t n, int *count)
{
	struct fixture fx;
	fx_init(&fx, "maglev", ABC, w, n);
	for (int i = 0; i < CLIENTS; i++)
		count[fx_index(&fx, fx_pick(&fx, random_client_hash()))]++;
	fx_free(&fx);
}

Test(maglev, spread_equal_weights)
{
	int count[3] = {0};
	maglev_spread(ONES, 3, count);
	for (int k = 0; k < 3; k++) {
		double share = (double)count[k] / CLIENTS;
		fprintf(stderr, "maglev 1:1:1 node %d: %.4f\n", k, share);
		cr_assert(share > (1.0 / 3) * 0.9 && share < (1.0 / 3) * 1.1,
			  "node %d share %.4f", k, share);
	}
}

Test(maglev, spread_follows_weights)
{
	const int w[] = {1, 2};
	int count[2] = {0};
	maglev_spread(w, 2, count);
	double ratio = (double)count[1] / count[0];
	fprintf(stderr, "maglev 1:2 ratio: %.4f\n", ratio);
	cr_assert(ratio > 2 * 0.9 && ratio < 2 * 1.1, "ratio %.4f", ratio);
}

/* A node that goes down, drains or is skipped moves its own clients and
 * not a single other one. */
static void
maglev_only_own_clients_move(void (*take_out)(struct node *), int skip)
{
	struct fixture fx;
	static struct node *before[CLIENTS];
	uint32_t hashes[1000];
	int moved_other = 0, moved_own = 0;

	fx_init(&fx, "maglev", ABC, ONES, 5);
	rng_state = 12345;
	for (int i = 0; i < CLIENTS; i++)
		before[i] = fx_pick(&fx, random_client_hash());
	struct node *out = fx.nodes[2];
	if (take_out)
		take_out(out);
	rng_state = 12345;
	for (int i = 0; i < CLIENTS; i++) {
		uint32_t h = random_client_hash();
		struct node *now = fx.ops->pick(
		    fx.st, fx.nodes, fx.n, h, skip ? &out : NULL, skip ? 1 : 0);
		cr_assert_not_null(now);
		cr_assert_neq(now, out);
		if (before[i] != out && now != before[i])
			moved_other++;
		if (before[i] == out)
			moved_own++;
		if (i < 1000)
			hashes[i] = h;
	}
	cr_assert_eq(moved_other, 0);
	cr_assert_gt(moved_own, CLIENTS / 10);
	/* the fallback is deterministic */
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(fx.ops->pick(fx.st, fx.nodes, fx.n, hashes[i],
					  skip ? &out : NULL, skip ? 1 : 0),
			     fx.ops->pick(fx.st, fx.nodes, fx.n, hashes[i],
					  skip ? &out : NULL, skip ? 1 : 0));
	fx_free(&fx);
}

static void
mark_down(struct node *n)
{
	atomic_store(&n->health, HEALTH_DOWN);
}

static void
mark_drain(struct node *n)
{
	atomic_store(&n->admin, ADMIN_DRAIN);
}

Test(maglev, node_down_moves_only_its_clients)
{
	maglev_only_own_clients_move(mark_down, 0);
}

Test(maglev, node_drain_moves_only_its_clients)
{
	maglev_only_own_clients_move(mark_drain, 0);
}

Test(maglev, skipped_node_moves_only_its_clients)
{
	maglev_only_own_clients_move(NULL, 1);
}

/* Removing one of N nodes from the set: Maglev is near-minimal. Measured
 * with M = 65537, N = 5 equal nodes, 100000 clients: 148 of the other
 * nodes' 80022 clients (0.19%) move; all of the removed node's move. */
Test(maglev, removal_moves_few_other_clients)
{
	struct fixture fx;
	static struct node *before[CLIENTS];
	int others = 0, moved = 0;

	fx_init(&fx, "maglev", ABC, ONES, 5);
	rng_state = 777;
	for (int i = 0; i < CLIENTS; i++)
		before[i] = fx_pick(&fx, random_client_hash());
	struct node *gone = fx.nodes[2];
	struct node *rest[] = {fx.nodes[0], fx.nodes[1], fx.nodes[3],
			       fx.nodes[4]};
	cr_assert_eq(fx.ops->rebuild(fx.st, rest, 4), 0);
	rng_state = 777;
	for (int i = 0; i < CLIENTS; i++) {
		struct node *now =
		    fx.ops->pick(fx.st, rest, 4, random_client_hash(), NULL, 0);
		cr_assert_neq(now, gone);
		if (before[i] == gone)
			continue;
		others++;
		if (now != before[i])
			moved++;
	}
	double frac = (double)moved / others;
	fprintf(stderr, "maglev removal of 1 of 5: %d of %d (%.3f%%) moved\n",
		moved, others, 100 * frac);
	cr_assert_lt(frac, 0.03, "%.4f of the other clients moved", frac);
	fx_free(&fx);
}

Test(maglev, weight_change_rebuilds)
{
	struct fixture fx;
	int count[2] = {0};
	fx_init(&fx, "maglev", ABC, ONES, 2);
	atomic_store(&fx.nodes[1]->weight, 3);
	cr_assert_eq(fx.ops->rebuild(fx.st, fx.nodes, fx.n), 0);
	for (int i = 0; i < CLIENTS; i++)
		count[fx_index(&fx, fx_pick(&fx, random_client_hash()))]++;
	double ratio = (double)count[1] / count[0];
	cr_assert(ratio > 2.7 && ratio < 3.3, "ratio %.3f", ratio);
	/* a change the pool did not announce is noticed too */
	atomic_store(&fx.nodes[1]->weight, 1);
	count[0] = count[1] = 0;
	for (int i = 0; i < CLIENTS; i++)
		count[fx_index(&fx, fx_pick(&fx, random_client_hash()))]++;
	ratio = (double)count[1] / count[0];
	cr_assert(ratio > 0.9 && ratio < 1.1, "ratio %.3f", ratio);
	fx_free(&fx);
}

/* Two balancers that learned the same nodes in different orders (and
 * hold different node objects) send every client to the same name. */
Test(maglev, independent_of_insertion_order)
{
	const char *const n1[] = {"mail1", "mail2", "mail3", "mail4", "mail5"};
	const char *const n2[] = {"mail4", "mail2", "mail5", "mail1", "mail3"};
	const int w1[] = {1, 2, 1, 3, 1};
	const int w2[] = {3, 2, 1, 1, 1};
	struct fixture a, b;

	fx_init(&a, "maglev", n1, w1, 5);
	fx_init(&b, "maglev", n2, w2, 5);
	/* the same down node on both: the fallback agrees as well */
	atomic_store(&a.nodes[2]->health, HEALTH_DOWN);
	atomic_store(&b.nodes[4]->health, HEALTH_DOWN);
	for (int i = 0; i < 10000; i++) {
		uint32_t h = random_client_hash();
		cr_assert_str_eq(fx_pick(&a, h)->name, fx_pick(&b, h)->name,
				 "client %d", i);
	}
	fx_free(&a);
	fx_free(&b);
}
