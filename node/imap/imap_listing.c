/* The node's kept mailbox listings (imap_listing.h): a small table
 * searched by directory, each entry a copy of what maildir_scan gave and
 * the directory mtimes it is as of. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "imap_listing.h"

struct imap_listing {
	char *dir; /* NULL: a free slot */
	struct timespec cur, new;
	uint64_t used;
	struct maildir_list l;
};

struct imap_listings {
	struct imap_listing slot[IMAP_LISTINGS];
	size_t msgs; /* over every slot */
	uint64_t tick;
};

struct imap_listings *
imap_listings_new(void)
{
	return calloc(1, sizeof(struct imap_listings));
}

static void
imap_listing_drop(struct imap_listings *ls, struct imap_listing *e)
{
	ls->msgs -= e->l.n;
	maildir_list_free(&e->l);
	free(e->dir);
	memset(e, 0, sizeof(*e));
}

void
imap_listings_free(struct imap_listings *ls)
{
	if (ls == NULL)
		return;
	for (size_t i = 0; i < IMAP_LISTINGS; i++)
		if (ls->slot[i].dir)
			imap_listing_drop(ls, &ls->slot[i]);
	free(ls);
}

bool
imap_mtime(const char *dir, const char *sub, struct timespec *t)
{
	char path[4096 + 8];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	if (stat(path, &st) < 0)
		return false;
	*t = st.st_mtim;
	return true;
}

bool
imap_ts_eq(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static struct imap_listing *
imap_listing_find(struct imap_listings *ls, const char *dir)
{
	for (size_t i = 0; i < IMAP_LISTINGS; i++)
		if (ls->slot[i].dir && strcmp(ls->slot[i].dir, dir) == 0)
			return &ls->slot[i];
	return NULL;
}

static int
imap_list_copy(const struct maildir_list *from, struct maildir_list *to)
{
	memset(to, 0, sizeof(*to));
	to->uidvalidity = from->uidvalidity;
	to->uidnext = from->uidnext;
	to->pending = from->pending;
	if (from->n == 0)
		return 0;
	to->msg = malloc(from->n * sizeof(*to->msg));
	if (to->msg == NULL)
		return -1;
	memcpy(to->msg, from->msg, from->n * sizeof(*to->msg));
	to->n = to->cap = from->n;
	return 0;
}

static struct imap_listing *
imap_listing_lru(struct imap_listings *ls)
{
	struct imap_listing *lru = NULL;
	for (size_t i = 0; i < IMAP_LISTINGS; i++)
		if (ls->slot[i].dir &&
		    (lru == NULL || ls->slot[i].used < lru->used))
			lru = &ls->slot[i];
	return lru;
}

static struct imap_listing *
imap_listing_free_slot(struct imap_listings *ls)
{
	for (size_t i = 0; i < IMAP_LISTINGS; i++)
		if (ls->slot[i].dir == NULL)
			return &ls->slot[i];
	return NULL;
}

/* Keeps a copy of l for dir, as of cur and new (best effort). */
static void
imap_listing_keep(struct imap_listings *ls, const char *dir,
		  const struct maildir_list *l, struct timespec cur,
		  struct timespec new)
{
	struct imap_listing *e;
	if (l->n > IMAP_LISTING_MSGS)
		return;
	/* Terminates: with every slot free, msgs is 0. */
	while (ls->msgs + l->n > IMAP_LISTING_MSGS ||
	       imap_listing_free_slot(ls) == NULL)
		imap_listing_drop(ls, imap_listing_lru(ls));
	e = imap_listing_free_slot(ls);
	if ((e->dir = strdup(dir)) == NULL)
		return;
	if (imap_list_copy(l, &e->l) < 0) {
		free(e->dir);
		e->dir = NULL;
		return;
	}
	e->cur = cur;
	e->new = new;
	e->used = ++ls->tick;
	ls->msgs += l->n;
}

/* Whether t is at least IMAP_LISTING_SETTLE_S before now. */
static bool
imap_settled(struct timespec t, struct timespec now)
{
	return now.tv_sec - t.tv_sec > IMAP_LISTING_SETTLE_S ||
	       (now.tv_sec - t.tv_sec == IMAP_LISTING_SETTLE_S &&
		now.tv_nsec >= t.tv_nsec);
}

int
imap_listing_scan(struct imap_listings *ls, const char *dir,
		  struct maildir_list *out, struct timespec *cur_mtime,
		  struct timespec *new_mtime)
{
	struct timespec now, cur, new;
	clock_gettime(CLOCK_REALTIME, &now);
	bool stated =
	    imap_mtime(dir, "cur", &cur) && imap_mtime(dir, "new", &new);
	if (stated) {
		*cur_mtime = cur;
		*new_mtime = new;
	}
	struct imap_listing *e = ls ? imap_listing_find(ls, dir) : NULL;
	if (e && stated && imap_ts_eq(e->cur, cur) && imap_ts_eq(e->new, new)) {
		e->used = ++ls->tick;
		if (imap_list_copy(&e->l, out) == 0)
			return 0;
		errno = ENOMEM;
		return -1;
	}
	if (e)
		imap_listing_drop(ls, e);
	if (maildir_scan(dir, out) < 0)
		return -1;
	if (ls && stated && imap_settled(cur, now) && imap_settled(new, now))
		imap_listing_keep(ls, dir, out, cur, new);
	return 0;
}
