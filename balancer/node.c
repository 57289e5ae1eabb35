#include "node.h"

#include <errno.h>
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

static const char *const node_admin_names[] = {
    [ADMIN_NONE] = "none",
    [ADMIN_DRAIN] = "drain",
    [ADMIN_MAINT] = "maint",
    [ADMIN_REMOVING] = "removing",
};

#define NODE_NADMIN (sizeof(node_admin_names) / sizeof(node_admin_names[0]))

const char *
node_admin_name(enum node_admin a)
{
	return (size_t)a < NODE_NADMIN ? node_admin_names[a] : "none";
}

int
node_admin_parse(const char *s, enum node_admin *out)
{
	for (size_t i = 0; i < NODE_NADMIN; i++)
		if (strcmp(s, node_admin_names[i]) == 0) {
			*out = (enum node_admin)i;
			return 0;
		}
	return -1;
}

const char *
node_state_name(struct node *n)
{
	enum node_admin a = atomic_load(&n->admin);
	return a == ADMIN_NONE ? node_health_name(n) : node_admin_name(a);
}

const char *
node_health_name(struct node *n)
{
	return atomic_load(&n->health) == HEALTH_UP ? "up" : "down";
}

int
node_until_parse(const char *s, double *out)
{
	char *end;

	if (strcmp(s, "-") == 0) {
		*out = 0;
		return 0;
	}
	errno = 0;
	double v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !(v > 0))
		return -1;
	*out = v;
	return 0;
}

void
node_until_fmt(double until, char *buf, size_t len)
{
	if (until > 0)
		snprintf(buf, len, "%.3f", until);
	else
		snprintf(buf, len, "-");
}
