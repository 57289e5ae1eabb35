#include "connlimit.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "stream.h"

#define CONNLIMIT_BUCKETS 4096 /* a power of two */

struct connlimit_entry {
	struct connlimit_entry *next;
	unsigned char key[17];
	long count;
};

struct connlimit {
	long max_total, max_source;
	const struct netlist *exempt;
	long total;
	struct connlimit_entry *bucket[CONNLIMIT_BUCKETS];
};

struct connlimit *
connlimit_new(long max_total, long max_per_source, const struct netlist *exempt)
{
	struct connlimit *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->max_total = max_total;
	l->max_source = max_per_source;
	l->exempt = exempt;
	return l;
}

void
connlimit_set_caps(struct connlimit *l, long max_total, long max_per_source)
{
	l->max_total = max_total;
	l->max_source = max_per_source;
}

void
connlimit_free(struct connlimit *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < CONNLIMIT_BUCKETS; i++) {
		struct connlimit_entry *e = l->bucket[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(l);
}

bool
connlimit_open(struct connlimit *l, struct connlimit_ticket *t)
{
	if (l->max_total > 0 && l->total >= l->max_total)
		return false;
	l->total++;
	t->total = true;
	return true;
}

static struct connlimit_entry **
connlimit_find(struct connlimit *l, const unsigned char key[17])
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (int i = 0; i < 17; i++)
		h = (h ^ key[i]) * 16777619u;
	struct connlimit_entry **e = &l->bucket[h & (CONNLIMIT_BUCKETS - 1)];
	while (*e && memcmp((*e)->key, key, 17) != 0)
		e = &(*e)->next;
	return e;
}

bool
connlimit_source(struct connlimit *l, struct connlimit_ticket *t,
		 const struct sockaddr *sa, bool proxied)
{
	if (l->max_source <= 0 || addr_source_key(sa, t->key) < 0)
		return true;
	if (!proxied && l->exempt && netlist_match(l->exempt, sa))
		return true;
	struct connlimit_entry **e = connlimit_find(l, t->key);
	if (*e == NULL) {
		if ((*e = calloc(1, sizeof(**e))) == NULL)
			return true; /* out of memory: not counted, not refused
				      */
		memcpy((*e)->key, t->key, sizeof((*e)->key));
	}
	if ((*e)->count >= l->max_source)
		return false;
	(*e)->count++;
	t->source = true;
	return true;
}

void
connlimit_close(struct connlimit *l, struct connlimit_ticket *t)
{
	if (t->total)
		l->total--;
	if (t->source) {
		struct connlimit_entry **e = connlimit_find(l, t->key);
		if (*e && --(*e)->count == 0) {
			struct connlimit_entry *gone = *e;
			*e = gone->next;
			free(gone);
		}
	}
	memset(t, 0, sizeof(*t));
}

long
connlimit_total(const struct connlimit *l)
{
	return l->total;
}
