/* The per-source table of a service: a hash of sources with an LRU list
 * through them, bounded by source_table_size. See edge.h for the sharing
 * between workers. */
#include "edge.h"

#include <stdlib.h>
#include <string.h>

#include "../common/log.h"

/* One source: an IPv4 address or an IPv6 /64. */
struct edge_src {
	struct edge_src *hnext;	      /* hash chain */
	struct edge_src *prev, *next; /* LRU list, most recent first */
	double window_start;	      /* rate_per_source's current window */
	uint32_t conns;		      /* open connections */
	uint32_t hits;		      /* connections in the current window */
	unsigned char key[ADDR_SOURCE_KEY];
};

/* malloc's header per allocation, and at most two bucket pointers per
 * entry (buckets: the power of two at or above the bound). */
#define EDGE_MALLOC_OVERHEAD 16

static const char *const edge_reason_names[EDGE_NREASONS] = {
    [EDGE_OK] = "ok",
    [EDGE_DENY] = "deny",
    [EDGE_CONN] = "max_conn_per_source",
    [EDGE_RATE] = "rate_per_source",
    [EDGE_PREGREET] = "pregreet",
    [EDGE_DNSBL] = "dnsbl",
};

const char *
edge_reason_name(enum edge_reason r)
{
	return edge_reason_names[r];
}

size_t
edge_entry_bytes(void)
{
	return sizeof(struct edge_src) + EDGE_MALLOC_OVERHEAD +
	       2 * sizeof(struct edge_src *);
}

void
edge_policy_init(struct edge_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->table_size = EDGE_TABLE_DEFAULT;
	p->dnsbl_threshold = 1;
	p->dnsbl_timeout_ms = 1500;
}

/* Whether the policy needs the table or a check at accept. */
static bool
edge_policy_active(const struct edge_policy *p)
{
	return p->max_conn_per_source > 0 || p->rate_count > 0 ||
	       p->allow.n > 0 || p->deny.n > 0 || p->pregreet ||
	       p->greet_delay_ms > 0 || p->ndnsbl > 0;
}

static size_t
edge_nbuckets(long size)
{
	size_t n = 16;
	while (n < (size_t)size && n < ((size_t)1 << 30))
		n <<= 1;
	return n;
}

static uint32_t
edge_hash(const unsigned char *key)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (int i = 0; i < ADDR_SOURCE_KEY; i++)
		h = (h ^ key[i]) * 16777619u;
	return h;
}

static struct edge_src **
edge_find(struct edge *e, const unsigned char *key)
{
	struct edge_src **pp = &e->bucket[edge_hash(key) & (e->nbuckets - 1)];
	while (*pp && memcmp((*pp)->key, key, ADDR_SOURCE_KEY) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

static void
edge_lru_unlink(struct edge *e, struct edge_src *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		e->lru_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		e->lru_tail = s->prev;
	s->prev = s->next = NULL;
}

static void
edge_lru_push(struct edge *e, struct edge_src *s)
{
	s->prev = NULL;
	s->next = e->lru_head;
	if (e->lru_head)
		e->lru_head->prev = s;
	e->lru_head = s;
	if (e->lru_tail == NULL)
		e->lru_tail = s;
}

/* Drops the least recently seen source. */
static void
edge_drop_oldest(struct edge *e)
{
	struct edge_src *s = e->lru_tail;
	if (s == NULL)
		return;
	struct edge_src **pp = edge_find(e, s->key);
	*pp = s->hnext;
	edge_lru_unlink(e, s);
	free(s);
	e->count--;
	e->dropped++;
}

/* Rehashes into n buckets (a reload changed the bound). Keeps the old
 * buckets when the allocation fails. */
static void
edge_rehash(struct edge *e, size_t n)
{
	struct edge_src **b = calloc(n, sizeof(*b));
	if (b == NULL)
		return;
	free(e->bucket);
	e->bucket = b;
	e->nbuckets = n;
	for (struct edge_src *s = e->lru_head; s; s = s->next) {
		struct edge_src **head = &b[edge_hash(s->key) & (n - 1)];
		s->hnext = *head;
		*head = s;
	}
}

struct edge *
edge_new(const struct edge_policy *p)
{
	struct edge *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	pthread_mutex_init(&e->lock, NULL);
	e->pol = *p;
	e->active = edge_policy_active(p);
	e->nbuckets = edge_nbuckets(p->table_size);
	if ((e->bucket = calloc(e->nbuckets, sizeof(*e->bucket))) == NULL) {
		free(e);
		return NULL;
	}
	return e;
}

void
edge_free(struct edge *e)
{
	if (e == NULL)
		return;
	while (e->lru_head) {
		struct edge_src *s = e->lru_head;
		e->lru_head = s->next;
		free(s);
	}
	free(e->bucket);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

void
edge_apply(struct edge *e, const struct edge_policy *p)
{
	pthread_mutex_lock(&e->lock);
	e->pol = *p;
	atomic_store(&e->active, edge_policy_active(p));
	while (e->count > p->table_size)
		edge_drop_oldest(e);
	if (edge_nbuckets(p->table_size) != e->nbuckets)
		edge_rehash(e, edge_nbuckets(p->table_size));
	pthread_mutex_unlock(&e->lock);
}

/* The source of key, seen now: found or added (the oldest dropped at the
 * bound), moved to the LRU head. NULL on out of memory. Lock held. */
static struct edge_src *
edge_touch(struct edge *e, const unsigned char *key)
{
	struct edge_src **pp = edge_find(e, key);
	struct edge_src *s = *pp;
	if (s != NULL) {
		edge_lru_unlink(e, s);
		edge_lru_push(e, s);
		return s;
	}
	if (e->count >= e->pol.table_size) {
		edge_drop_oldest(e);
		pp = edge_find(e, key); /* the chain may have changed */
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	memcpy(s->key, key, ADDR_SOURCE_KEY);
	s->window_start = -1;
	*pp = s;
	edge_lru_push(e, s);
	e->count++;
	return s;
}

/* The per-source limits for a source not allowed. Lock held. */
static enum edge_reason
edge_limits(struct edge *e, struct edge_ticket *t, double now)
{
	const struct edge_policy *p = &e->pol;
	if (p->max_conn_per_source <= 0 && p->rate_count <= 0)
		return EDGE_OK;
	struct edge_src *s = edge_touch(e, t->key);
	if (s == NULL)
		return EDGE_OK; /* out of memory: not counted, not refused */
	if (p->rate_count > 0) {
		/* every attempt counts, refused ones too: a source that
		 * keeps hammering stays out until a window passes */
		if (s->window_start < 0 ||
		    now - s->window_start >= p->rate_window_s) {
			s->window_start = now;
			s->hits = 0;
		}
		if (s->hits < UINT32_MAX)
			s->hits++;
		if (s->hits > (uint32_t)p->rate_count)
			return EDGE_RATE;
	}
	if (p->max_conn_per_source > 0 &&
	    s->conns >= (uint32_t)p->max_conn_per_source)
		return EDGE_CONN;
	s->conns++;
	t->counted = true;
	return EDGE_OK;
}

enum edge_reason
edge_admit(struct edge *e, const struct sockaddr *sa, double now,
	   struct edge_ticket *t)
{
	enum edge_reason r = EDGE_OK;
	memset(t, 0, sizeof(*t));
	if (!atomic_load(&e->active))
		return EDGE_OK;
	pthread_mutex_lock(&e->lock);
	const struct edge_policy *p = &e->pol;
	if (p->allow.n > 0 && netlist_match(&p->allow, sa))
		t->allowed = true;
	else if (p->deny.n > 0 && netlist_match(&p->deny, sa))
		r = EDGE_DENY;
	else if (addr_source_key(sa, t->key) == 0)
		r = edge_limits(e, t, now);
	if (r == EDGE_OK && !t->allowed) {
		t->pregreet = p->pregreet;
		t->greet_delay_ms = p->greet_delay_ms;
		t->dnsbl = p->ndnsbl > 0;
	}
	pthread_mutex_unlock(&e->lock);
	return r;
}

void
edge_release(struct edge *e, struct edge_ticket *t)
{
	if (!t->counted)
		return;
	pthread_mutex_lock(&e->lock);
	struct edge_src *s = *edge_find(e, t->key);
	if (s != NULL && s->conns > 0)
		s->conns--;
	pthread_mutex_unlock(&e->lock);
	t->counted = false;
}

long
edge_sources(struct edge *e)
{
	pthread_mutex_lock(&e->lock);
	long n = e->count;
	pthread_mutex_unlock(&e->lock);
	return n;
}

int
edge_dnsbl_policy(struct edge *e, struct edge_zone *zones, int *threshold,
		  int *timeout_ms)
{
	pthread_mutex_lock(&e->lock);
	int n = e->pol.ndnsbl;
	memcpy(zones, e->pol.dnsbl, (size_t)n * sizeof(*zones));
	*threshold = e->pol.dnsbl_threshold;
	*timeout_ms = e->pol.dnsbl_timeout_ms;
	pthread_mutex_unlock(&e->lock);
	return n;
}
