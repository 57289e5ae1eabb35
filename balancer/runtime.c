/* Runtime pool changes: one function per operation, shared by the control
 * socket, the state file loader and the peer balancer (shared.c). Each
 * announces what it did through event.h and calls none of those who
 * listen. runtime.c's state (the housekeeping timer, the config nodes
 * removed at run time) lives in struct lbd. */
#include "runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"

static void
runtime_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	runtime_tick(w->data);
}

int
runtime_start(struct lbd *l)
{
	if (ev_is_active(&l->housekeeping))
		return 0;
	ev_timer_init(&l->housekeeping, runtime_timer_cb, 1., 1.);
	l->housekeeping.data = l;
	ev_timer_start(l->loop, &l->housekeeping);
	return 0;
}

void
runtime_stop(struct lbd *l)
{
	if (ev_is_active(&l->housekeeping))
		ev_timer_stop(l->loop, &l->housekeeping);
	while (l->removed != NULL) {
		struct runtime_removed *r = l->removed;
		l->removed = r->next;
		free(r);
	}
}

const struct runtime_removed *
runtime_removed_list(struct lbd *l)
{
	return l->removed;
}

/* Forgets that p's config node `name` was removed (it is back). */
static void
runtime_removed_forget(struct lbd *l, const char *pool, const char *name)
{
	struct runtime_removed **rp = &l->removed;
	while (*rp != NULL) {
		struct runtime_removed *r = *rp;
		if (strcmp(r->pool, pool) == 0 && strcmp(r->node, name) == 0) {
			*rp = r->next;
			free(r);
		} else {
			rp = &r->next;
		}
	}
}

static void
runtime_removed_note(struct lbd *l, const char *pool, const char *name)
{
	struct runtime_removed *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		log_warn("%s: out of memory: removal of %s/%s not persisted",
			 __func__, pool, name);
		return;
	}
	runtime_removed_forget(l, pool, name);
	snprintf(r->pool, sizeof(r->pool), "%s", pool);
	snprintf(r->node, sizeof(r->node), "%s", name);
	r->next = l->removed;
	l->removed = r;
}

static int
runtime_not_removing(struct pool *p, struct node *n, char *err, size_t errlen)
{
	if (atomic_load(&n->admin) != ADMIN_REMOVING)
		return 0;
	snprintf(err, errlen, "node \"%s\" in pool \"%s\" is being removed",
		 n->name, p->name);
	return -1;
}

int
runtime_node_add(struct lbd *l, enum event_origin o, struct pool *p,
		 struct node *n, const char *reason, char *err, size_t errlen)
{
	struct node *old = pool_node(p, n->name);
	if (old != NULL) {
		if (atomic_load(&old->admin) == ADMIN_REMOVING)
			snprintf(
			    err, errlen,
			    "node \"%s\" in pool \"%s\" is still being removed",
			    n->name, p->name);
		else
			snprintf(err, errlen,
				 "node \"%s\" already exists in pool \"%s\"",
				 n->name, p->name);
		goto fail;
	}
	n->last_change = ev_now(l->loop);
	if (pool_insert(p, n) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	runtime_removed_forget(l, p->name, n->name);
	event_state(l, o, p, n, "new", node_state_name(n), reason);
	checker_start_node(l, p, n);
	event_changed(l, o, p, n->name);
	return 0;
fail:
	node_unref(n);
	return -1;
}

/* Detaches n if it has no connection left. Returns true if it did. */
static bool
runtime_reap(struct lbd *l, enum event_origin o, struct pool *p, struct node *n)
{
	if (atomic_load(&n->admin) != ADMIN_REMOVING ||
	    atomic_load(&n->active) > 0)
		return false;
	if (n->from_config)
		runtime_removed_note(l, p->name, n->name);
	event_state(l, o, p, n, "removing", "gone", "no connections left");
	pool_detach(p, n); /* may free n */
	return true;
}

int
runtime_node_remove(struct lbd *l, enum event_origin o, struct pool *p,
		    struct node *n, const char *reason, char *err,
		    size_t errlen)
{
	if (runtime_not_removing(p, n, err, errlen) < 0)
		return -1;
	char from[16];
	snprintf(from, sizeof(from), "%s", node_state_name(n));
	atomic_store(&n->admin, ADMIN_REMOVING);
	n->maint_until = 0;
	n->last_change = ev_now(l->loop);
	checker_stop_node(n);
	event_state(l, o, p, n, from, "removing", reason);
	char name[NODE_NAME_MAX];
	snprintf(name, sizeof(name), "%s", n->name);
	runtime_reap(l, o, p, n); /* may free n */
	event_changed(l, o, p, name);
	return 0;
}

int
runtime_node_admin(struct lbd *l, enum event_origin o, struct pool *p,
		   struct node *n, enum node_admin admin, double maint_until,
		   const char *reason, char *err, size_t errlen)
{
	if (admin == ADMIN_REMOVING) {
		snprintf(err, errlen, "%s: use runtime_node_remove", __func__);
		return -1;
	}
	if (runtime_not_removing(p, n, err, errlen) < 0)
		return -1;
	if (admin != ADMIN_MAINT)
		maint_until = 0;
	int old = atomic_load(&n->admin);
	bool until_changed = n->maint_until != maint_until;
	n->maint_until = maint_until;
	if (old == (int)admin) {
		if (until_changed)
			event_changed(l, o, p, n->name);
		return 0;
	}
	char from[16];
	snprintf(from, sizeof(from), "%s", node_state_name(n));
	atomic_store(&n->admin, admin);
	n->last_change = ev_now(l->loop);
	event_state(l, o, p, n, from, node_state_name(n), reason);
	event_changed(l, o, p, n->name);
	return 0;
}

int
runtime_node_weight(struct lbd *l, enum event_origin o, struct pool *p,
		    struct node *n, int weight, const char *reason, char *err,
		    size_t errlen)
{
	if (runtime_not_removing(p, n, err, errlen) < 0)
		return -1;
	int old = atomic_exchange(&n->weight, weight);
	if (old == weight)
		return 0;
	pool_rebuild(p);
	log_info("pool %s node %s weight %d -> %d: %s", p->name, n->name, old,
		 weight, reason);
	event_changed(l, o, p, n->name);
	return 0;
}

/* Ends n's maintenance if its time has come. Returns true if it did. */
static bool
runtime_maint_due(struct lbd *l, struct pool *p, struct node *n, double now)
{
	if (atomic_load(&n->admin) != ADMIN_MAINT || n->maint_until <= 0 ||
	    now < n->maint_until)
		return false;
	n->maint_until = 0;
	atomic_store(&n->admin, ADMIN_NONE);
	n->last_change = now;
	event_state(l, ORIGIN_TIMER, p, n, "maint", node_state_name(n),
		    "maintenance ended");
	return true;
}

void
runtime_tick(struct lbd *l)
{
	double now = ev_now(l->loop);
	bool changed = false;

	if (l->cfg == NULL)
		return;
	for (struct pool *p = l->cfg->pools; p; p = p->next) {
		/* backwards: a detach moves the nodes after it */
		for (size_t i = p->nnodes; i-- > 0;) {
			if (i >= p->nnodes)
				continue;
			struct node *n = p->nodes[i];
			if (runtime_maint_due(l, p, n, now))
				changed = true;
			else if (runtime_reap(l, ORIGIN_TIMER, p, n))
				changed = true;
		}
	}
	if (changed)
		event_changed(l, ORIGIN_TIMER, NULL, NULL);
}
