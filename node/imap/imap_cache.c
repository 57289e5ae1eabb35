/* The node's header cache (imap_cache.h): a hash table of entries keyed
 * by "dir/unique", chained, doubling when it holds as many entries as
 * buckets, and a doubly-linked list in use order for eviction. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap_cache.h"

#define IMAP_CACHE_BUCKETS 1024 /* to start with; a power of two */

struct imap_centry {
	struct imap_centry *hnext;	 /* same bucket */
	struct imap_centry *prev, *next; /* use order: head most recent */
	uint64_t hash;
	size_t keylen, len;
	char *hdr;  /* after the key, in the same block */
	char key[]; /* "dir/unique", NUL-terminated, then the header */
};

struct imap_cache {
	size_t max, bytes, n;
	struct imap_centry **bucket;
	size_t nbucket; /* a power of two */
	struct imap_centry *head, *tail;
};

struct imap_cache *
imap_cache_new(size_t max)
{
	struct imap_cache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->max = max;
	c->nbucket = IMAP_CACHE_BUCKETS;
	c->bucket = calloc(c->nbucket, sizeof(*c->bucket));
	if (c->bucket == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

void
imap_cache_free(struct imap_cache *c)
{
	if (c == NULL)
		return;
	for (struct imap_centry *e = c->head, *next; e; e = next) {
		next = e->next;
		free(e);
	}
	free(c->bucket);
	free(c);
}

/* The key's length: dir, '/', the name up to ":2,". */
static size_t
imap_cache_unique_len(const char *name)
{
	const char *info = strstr(name, ":2,");
	return info ? (size_t)(info - name) : strlen(name);
}

/* FNV-1a over dir, '/', and the unique part of name. */
static uint64_t
imap_cache_hash(const char *dir, const char *name, size_t ulen)
{
	uint64_t h = 14695981039346656037ULL;
	for (const char *p = dir; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ '/') * 1099511628211ULL;
	for (size_t i = 0; i < ulen; i++)
		h = (h ^ (unsigned char)name[i]) * 1099511628211ULL;
	return h;
}

static bool
imap_cache_key_eq(const struct imap_centry *e, const char *dir, size_t dirlen,
		  const char *name, size_t ulen)
{
	return e->keylen == dirlen + 1 + ulen &&
	       memcmp(e->key, dir, dirlen) == 0 && e->key[dirlen] == '/' &&
	       memcmp(e->key + dirlen + 1, name, ulen) == 0;
}

/* The slot pointing at (dir, name)'s entry, or at the bucket's end. */
static struct imap_centry **
imap_cache_slot(struct imap_cache *c, const char *dir, const char *name,
		uint64_t *hash)
{
	size_t ulen = imap_cache_unique_len(name), dirlen = strlen(dir);
	*hash = imap_cache_hash(dir, name, ulen);
	struct imap_centry **p = &c->bucket[*hash & (c->nbucket - 1)];
	while (*p && !((*p)->hash == *hash &&
		       imap_cache_key_eq(*p, dir, dirlen, name, ulen)))
		p = &(*p)->hnext;
	return p;
}

static void
imap_cache_unlink_use(struct imap_cache *c, struct imap_centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
imap_cache_push_use(struct imap_cache *c, struct imap_centry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

static size_t
imap_cache_cost(const struct imap_centry *e)
{
	return sizeof(*e) + e->keylen + 1 + e->len;
}

/* Unhooks e (found at *slot) from both lists and frees it. */
static void
imap_cache_drop(struct imap_cache *c, struct imap_centry **slot)
{
	struct imap_centry *e = *slot;
	*slot = e->hnext;
	imap_cache_unlink_use(c, e);
	c->bytes -= imap_cache_cost(e);
	c->n--;
	free(e);
}

/* Drops the least recently used entry. */
static void
imap_cache_evict(struct imap_cache *c)
{
	struct imap_centry *e = c->tail;
	struct imap_centry **p = &c->bucket[e->hash & (c->nbucket - 1)];
	while (*p != e)
		p = &(*p)->hnext;
	imap_cache_drop(c, p);
}

/* Doubles the buckets (best effort: a failure only lengthens chains). */
static void
imap_cache_grow(struct imap_cache *c)
{
	size_t nb = c->nbucket * 2;
	struct imap_centry **b = calloc(nb, sizeof(*b));
	if (b == NULL)
		return;
	for (size_t i = 0; i < c->nbucket; i++)
		for (struct imap_centry *e = c->bucket[i], *next; e; e = next) {
			next = e->hnext;
			e->hnext = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	free(c->bucket);
	c->bucket = b;
	c->nbucket = nb;
}

const char *
imap_cache_get(struct imap_cache *c, const char *dir, const char *name,
	       size_t *len)
{
	uint64_t hash;
	struct imap_centry *e = *imap_cache_slot(c, dir, name, &hash);
	if (e == NULL)
		return NULL;
	if (c->head != e) {
		imap_cache_unlink_use(c, e);
		imap_cache_push_use(c, e);
	}
	*len = e->len;
	return e->hdr;
}

int
imap_cache_put(struct imap_cache *c, const char *dir, const char *name,
	       const char *hdr, size_t len)
{
	uint64_t hash;
	struct imap_centry **slot = imap_cache_slot(c, dir, name, &hash);
	if (*slot)
		imap_cache_drop(c, slot);
	size_t dirlen = strlen(dir), ulen = imap_cache_unique_len(name);
	size_t keylen = dirlen + 1 + ulen;
	size_t cost = sizeof(struct imap_centry) + keylen + 1 + len;
	if (cost > c->max / 16)
		return -1;
	struct imap_centry *e = malloc(sizeof(*e) + keylen + 1 + len);
	if (e == NULL)
		return -1;
	memcpy(e->key, dir, dirlen);
	e->key[dirlen] = '/';
	memcpy(e->key + dirlen + 1, name, ulen);
	e->key[keylen] = '\0';
	e->hdr = e->key + keylen + 1;
	memcpy(e->hdr, hdr, len);
	e->keylen = keylen;
	e->len = len;
	e->hash = hash;
	while (c->bytes + cost > c->max && c->tail)
		imap_cache_evict(c);
	if (c->n >= c->nbucket)
		imap_cache_grow(c);
	struct imap_centry **b = &c->bucket[hash & (c->nbucket - 1)];
	e->hnext = *b;
	*b = e;
	imap_cache_push_use(c, e);
	c->bytes += cost;
	c->n++;
	return 0;
}

void
imap_cache_forget(struct imap_cache *c, const char *dir, const char *name)
{
	uint64_t hash;
	struct imap_centry **slot = imap_cache_slot(c, dir, name, &hash);
	if (*slot)
		imap_cache_drop(c, slot);
}

size_t
imap_cache_bytes(const struct imap_cache *c)
{
	return c->bytes;
}

size_t
imap_cache_count(const struct imap_cache *c)
{
	return c->n;
}
