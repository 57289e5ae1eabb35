/* Runtime pool changes: one function per operation, shared by the control
 * socket, the state file loader and (later) Redis sharing. runtime.c's own
 * state (the config nodes removed at run time, the loading flag) hangs off
 * l->housekeeping.data, the timer that is runtime.c's; the timer callback
 * finds the struct lbd around its watcher. */
#include "runtime.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "shared.h"
#include "statefile.h"

struct runtime {
	struct runtime_removed *removed;
	bool loading;
	bool started;
};

static struct runtime *
runtime_get(struct lbd *l)
{
	if (l->housekeeping.data == NULL) {
		struct runtime *rt = calloc(1, sizeof(*rt));
		if (rt == NULL)
			fatal("%s: out of memory", __func__);
		l->housekeeping.data = rt;
	}
	return l->housekeeping.data;
}

static void
runtime_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lbd *l =
	    (struct lbd *)((char *)w - offsetof(struct lbd, housekeeping));
	(void)loop;
	(void)revents;
	runtime_tick(l);
}

int
runtime_start(struct lbd *l)
{
	struct runtime *rt = runtime_get(l);
	if (rt->started)
		return 0;
	ev_timer_init(&l->housekeeping, runtime_timer_cb, 1., 1.);
	ev_timer_start(l->loop, &l->housekeeping);
	rt->started = true;
	return 0;
}

void
runtime_stop(struct lbd *l)
{
	struct runtime *rt = l->housekeeping.data;
	if (rt == NULL)
		return;
	if (rt->started)
		ev_timer_stop(l->loop, &l->housekeeping);
	while (rt->removed != NULL) {
		struct runtime_removed *r = rt->removed;
		rt->removed = r->next;
		free(r);
	}
	free(rt);
	l->housekeeping.data = NULL;
}

void
runtime_set_loading(struct lbd *l, bool on)
{
	runtime_get(l)->loading = on;
}

const struct runtime_removed *
runtime_removed_list(struct lbd *l)
{
	return runtime_get(l)->removed;
}

int
runtime_persist(struct lbd *l)
{
	if (runtime_get(l)->loading)
		return 0;
	return statefile_save(l);
}

/* A change made here (not while loading the state file): shared with the
 * peer balancer, which shared.c skips while applying the peer's own. */
static void
runtime_share(struct lbd *l, struct pool *p, const char *name)
{
	if (!runtime_get(l)->loading)
		shared_note_change(l, p, name);
}

/* Forgets that p's config node `name` was removed (it is back). */
static void
runtime_removed_forget(struct lbd *l, const char *pool, const char *name)
{
	struct runtime_removed **rp = &runtime_get(l)->removed;
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
	struct runtime *rt = runtime_get(l);
	struct runtime_removed *r = calloc(1, sizeof(*r));
	if (r == NULL) {
		log_warn("%s: out of memory: removal of %s/%s not persisted",
			 __func__, pool, name);
		return;
	}
	runtime_removed_forget(l, pool, name);
	snprintf(r->pool, sizeof(r->pool), "%s", pool);
	snprintf(r->node, sizeof(r->node), "%s", name);
	r->next = rt->removed;
	rt->removed = r;
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
runtime_node_add(struct lbd *l, struct pool *p, struct node *n,
		 const char *reason, char *err, size_t errlen)
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
	lbd_state_event(l, p, n, "new", node_state_name(n), reason);
	checker_start_node(l, p, n);
	runtime_persist(l);
	runtime_share(l, p, n->name);
	return 0;
fail:
	node_unref(n);
	return -1;
}

/* Detaches n if it has no connection left. Returns true if it did. */
static bool
runtime_reap(struct lbd *l, struct pool *p, struct node *n)
{
	if (atomic_load(&n->admin) != ADMIN_REMOVING ||
	    atomic_load(&n->active) > 0)
		return false;
	if (n->from_config)
		runtime_removed_note(l, p->name, n->name);
	lbd_state_event(l, p, n, "removing", "gone", "no connections left");
	pool_detach(p, n); /* may free n */
	return true;
}

int
runtime_node_remove(struct lbd *l, struct pool *p, struct node *n,
		    const char *reason, char *err, size_t errlen)
{
	if (runtime_not_removing(p, n, err, errlen) < 0)
		return -1;
	char from[16];
	snprintf(from, sizeof(from), "%s", node_state_name(n));
	atomic_store(&n->admin, ADMIN_REMOVING);
	n->maint_until = 0;
	n->last_change = ev_now(l->loop);
	checker_stop_node(n);
	lbd_state_event(l, p, n, from, "removing", reason);
	char name[NODE_NAME_MAX];
	snprintf(name, sizeof(name), "%s", n->name);
	runtime_reap(l, p, n); /* may free n */
	runtime_persist(l);
	runtime_share(l, p, name);
	return 0;
}

int
runtime_node_admin(struct lbd *l, struct pool *p, struct node *n,
		   enum node_admin admin, double maint_until,
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
		if (until_changed) {
			runtime_persist(l);
			runtime_share(l, p, n->name);
		}
		return 0;
	}
	char from[16];
	snprintf(from, sizeof(from), "%s", node_state_name(n));
	atomic_store(&n->admin, admin);
	n->last_change = ev_now(l->loop);
	lbd_state_event(l, p, n, from, node_state_name(n), reason);
	runtime_persist(l);
	runtime_share(l, p, n->name);
	return 0;
}

int
runtime_node_weight(struct lbd *l, struct pool *p, struct node *n, int weight,
		    const char *reason, char *err, size_t errlen)
{
	if (runtime_not_removing(p, n, err, errlen) < 0)
		return -1;
	int old = atomic_exchange(&n->weight, weight);
	if (old == weight)
		return 0;
	pool_rebuild(p);
	log_info("pool %s node %s weight %d -> %d: %s", p->name, n->name, old,
		 weight, reason);
	runtime_persist(l);
	runtime_share(l, p, n->name);
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
	lbd_state_event(l, p, n, "maint", node_state_name(n),
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
			else if (runtime_reap(l, p, n))
				changed = true;
		}
	}
	if (changed)
		runtime_persist(l);
}
