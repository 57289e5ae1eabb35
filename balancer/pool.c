#include "lbd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"

struct pool *
pool_new(const char *name)
{
	struct pool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->lb = &lb_roundrobin;
	p->probe.type = CHECK_TCP;
	p->probe.timeout_ms = 1000;
	p->probe.cert_days = 7;
	snprintf(p->probe.path, sizeof(p->probe.path), "/");
	p->check_interval_ms = 2000;
	p->rise = 2;
	p->fall = 3;
	p->check_proxy = -1;
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nnodes; i++)
		node_unref(p->nodes[i]);
	if (p->lbst)
		p->lb->destroy(p->lbst);
	free(p->nodes);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* Caller holds the lock. Creates the algorithm's state on first use. */
static void
pool_rebuild_locked(struct pool *p)
{
	if (p->lbst == NULL)
		p->lbst = p->lb->create();
	if (p->lbst == NULL || p->lb->rebuild(p->lbst, p->nodes, p->nnodes) < 0)
		log_err("%s: pool %s: out of memory rebuilding %s", __func__,
			p->name, p->lb->name);
}

int
pool_insert(struct pool *p, struct node *n)
{
	pthread_mutex_lock(&p->lock);
	if (p->nnodes == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 8;
		struct node **nodes = realloc(p->nodes, cap * sizeof(*nodes));
		if (nodes == NULL) {
			pthread_mutex_unlock(&p->lock);
			return -1;
		}
		p->nodes = nodes;
		p->cap = cap;
	}
	p->nodes[p->nnodes++] = n;
	pool_rebuild_locked(p);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void
pool_detach(struct pool *p, struct node *n)
{
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->nnodes; i++) {
		if (p->nodes[i] != n)
			continue;
		memmove(&p->nodes[i], &p->nodes[i + 1],
			(p->nnodes - i - 1) * sizeof(*p->nodes));
		p->nnodes--;
		pool_rebuild_locked(p);
		pthread_mutex_unlock(&p->lock);
		node_unref(n);
		return;
	}
	pthread_mutex_unlock(&p->lock);
}

void
pool_rebuild(struct pool *p)
{
	pthread_mutex_lock(&p->lock);
	pool_rebuild_locked(p);
	pthread_mutex_unlock(&p->lock);
}

/* Swaps the balancing algorithm (a reload changed `balance`). */
void
pool_set_lb(struct pool *p, const struct lb_ops *lb)
{
	pthread_mutex_lock(&p->lock);
	if (p->lb != lb) {
		if (p->lbst)
			p->lb->destroy(p->lbst);
		p->lbst = NULL;
		p->lb = lb;
		pool_rebuild_locked(p);
	}
	pthread_mutex_unlock(&p->lock);
}

struct node *
pool_node(struct pool *p, const char *name)
{
	for (size_t i = 0; i < p->nnodes; i++)
		if (strcmp(p->nodes[i]->name, name) == 0)
			return p->nodes[i];
	return NULL;
}

struct node *
pool_pick(struct pool *p, uint32_t client_hash, struct node *const *skip,
	  size_t nskip)
{
	struct node *n = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->lbst)
		n = p->lb->pick(p->lbst, p->nodes, p->nnodes, client_hash, skip,
				nskip);
	if (n) {
		node_ref(n);
		atomic_fetch_add_explicit(&n->active, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* Worker: gives back what pool_pick took. */
void
pool_release(struct node *n)
{
	atomic_fetch_sub_explicit(&n->active, 1, memory_order_relaxed);
	node_unref(n);
}
