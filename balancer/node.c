#include "node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node *
node_new(const char *name, const struct addr *a, int weight, int maxconn,
	 enum node_health health)
{
	struct node *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return NULL;
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->addr = *a;
	addr_fmt((const struct sockaddr *)&a->ss, n->addrstr,
		 sizeof(n->addrstr));
	n->maxconn = maxconn;
	atomic_init(&n->weight, weight);
	atomic_init(&n->health, health);
	atomic_init(&n->admin, ADMIN_NONE);
	atomic_init(&n->refs, 1);
	n->check_ok = -1;
	snprintf(n->check_status, sizeof(n->check_status), "none");
	return n;
}

void
node_ref(struct node *n)
{
	atomic_fetch_add_explicit(&n->refs, 1, memory_order_relaxed);
}

bool
node_unref(struct node *n)
{
	if (atomic_fetch_sub_explicit(&n->refs, 1, memory_order_acq_rel) != 1)
		return false;
	free(n);
	return true;
}

const char *
node_state_name(struct node *n)
{
	switch (atomic_load(&n->admin)) {
	case ADMIN_DRAIN:
		return "drain";
	case ADMIN_MAINT:
		return "maint";
	case ADMIN_REMOVING:
		return "removing";
	default:
		return node_health_name(n);
	}
}

const char *
node_health_name(struct node *n)
{
	return atomic_load(&n->health) == HEALTH_UP ? "up" : "down";
}
