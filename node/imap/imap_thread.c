/* THREAD (RFC 5256 3): ORDEREDSUBJECT and REFERENCES over a tree of
 * containers (a message, or a dummy standing for one referred to and
 * not here), answered as nested parenthesized lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../common/strbuf.h"
#include "imap_sort.h"

#define IMAP_NONE ((size_t)-1)
#define IMAP_REFS_MAX 256 /* Message-IDs of References: used */

struct imap_tnode {
	struct imap_sort_msg *msg; /* NULL: a dummy */
	size_t parent, child, next;
	const char *id; /* into the messages' strings; NULL: none */
	size_t idlen;
};

struct imap_tree {
	struct imap_tnode *t;
	size_t n, cap;
	size_t *hash; /* id -> node, open addressing; hcap a power of 2 */
	size_t hcap;
	size_t root; /* a dummy whose children are the threads */
};

static size_t
imap_tree_new(struct imap_tree *tr, struct imap_sort_msg *msg)
{
	if (tr->n == tr->cap) {
		size_t cap = tr->cap ? tr->cap * 2 : 64;
		void *p = realloc(tr->t, cap * sizeof(*tr->t));
		if (p == NULL)
			return IMAP_NONE;
		tr->t = p;
		tr->cap = cap;
	}
	tr->t[tr->n] = (struct imap_tnode){.msg = msg,
					   .parent = IMAP_NONE,
					   .child = IMAP_NONE,
					   .next = IMAP_NONE};
	return tr->n++;
}

/* ---- tree edits ---- */

static void
imap_tree_unlink(struct imap_tree *tr, size_t c)
{
	size_t p = tr->t[c].parent;
	if (p == IMAP_NONE)
		return;
	size_t *link = &tr->t[p].child;
	while (*link != c)
		link = &tr->t[*link].next;
	*link = tr->t[c].next;
	tr->t[c].parent = tr->t[c].next = IMAP_NONE;
}

/* c becomes p's last child. */
static void
imap_tree_adopt(struct imap_tree *tr, size_t p, size_t c)
{
	imap_tree_unlink(tr, c);
	size_t *link = &tr->t[p].child;
	while (*link != IMAP_NONE)
		link = &tr->t[*link].next;
	*link = c;
	tr->t[c].parent = p;
}

/* Whether b is a or lies under it (a's descendants). */
static bool
imap_tree_under(const struct imap_tree *tr, size_t b, size_t a)
{
	if (tr->t[a].child == IMAP_NONE) /* a leaf: nothing under it */
		return b == a;
	for (size_t x = b; x != IMAP_NONE; x = tr->t[x].parent)
		if (x == a)
			return true;
	return false;
}

/* ---- dates ---- */

/* The date a node sorts by: its message's, or its first child's. */
static const struct imap_sort_msg *
imap_tree_first_msg(const struct imap_tree *tr, size_t c)
{
	while (c != IMAP_NONE && tr->t[c].msg == NULL)
		c = tr->t[c].child;
	return c == IMAP_NONE ? NULL : tr->t[c].msg;
}

static int
imap_tree_date_cmp(const struct imap_tree *tr, size_t a, size_t b)
{
	const struct imap_sort_msg *x = imap_tree_first_msg(tr, a),
				   *y = imap_tree_first_msg(tr, b);
	if (x == NULL || y == NULL)
		return (x != NULL) - (y != NULL);
	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* The nodes under c (c included), each after all of its descendants,
 * in a new array (*n of them; NULL when memory is short). No recursion:
 * a thread may be as deep as the mailbox is large. */
static size_t *
imap_tree_postorder(const struct imap_tree *tr, size_t c, size_t *n)
{
	size_t *order = malloc(tr->n * sizeof(*order));
	size_t *stack = malloc(tr->n * sizeof(*stack));
	size_t top = 0;
	*n = 0;
	if (order == NULL || stack == NULL) {
		free(order);
		free(stack);
		return NULL;
	}
	stack[top++] = c;
	while (top > 0) {
		size_t x = stack[--top];
		order[(*n)++] = x; /* parents first, */
		for (size_t k = tr->t[x].child; k != IMAP_NONE;
		     k = tr->t[k].next)
			stack[top++] = k;
	}
	for (size_t i = 0; i < *n / 2; i++) { /* then reversed */
		size_t t = order[i];
		order[i] = order[*n - 1 - i];
		order[*n - 1 - i] = t;
	}
	free(stack);
	return order;
}

/* Sorts c's children by date (insertion sort on the list). */
static void
imap_tree_sort_kids(struct imap_tree *tr, size_t c)
{
	size_t sorted = IMAP_NONE, k = tr->t[c].child;
	while (k != IMAP_NONE) {
		size_t next = tr->t[k].next, *link = &sorted;
		while (*link != IMAP_NONE &&
		       imap_tree_date_cmp(tr, *link, k) <= 0)
			link = &tr->t[*link].next;
		tr->t[k].next = *link;
		*link = k;
		k = next;
	}
	tr->t[c].child = sorted;
}

/* Sorts every set of siblings under c by date, the deepest first.
 * Returns 0 or -1 (out of memory). */
static int
imap_tree_sort(struct imap_tree *tr, size_t c)
{
	size_t n, *order = imap_tree_postorder(tr, c, &n);
	if (order == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		imap_tree_sort_kids(tr, order[i]);
	free(order);
	return 0;
}

/* ---- the answer ---- */

/* One thread from c: numbers in a row while each has one child, then
 * each of several children as its own parenthesized list. open holds
 * the children whose lists are being written (room for tr->n): no
 * recursion, however deep the thread. */
static int
imap_tree_emit(const struct imap_tree *tr, size_t c, bool uid,
	       struct strbuf *sb, size_t *open)
{
	size_t depth = 0;
	bool space = false;
	for (;;) {
		const struct imap_sort_msg *m = tr->t[c].msg;
		if (m != NULL) {
			if (strbuf_appendf(sb, space ? " %u" : "%u",
					   uid ? m->uid : m->seq) < 0)
				return -1;
			space = true;
		}
		size_t k = tr->t[c].child;
		if (k != IMAP_NONE && tr->t[k].next == IMAP_NONE && m != NULL) {
			c = k; /* the only child: in the same list */
			continue;
		}
		if (k != IMAP_NONE) { /* several: the first opens a list */
			if (strbuf_appends(sb, space ? " (" : "(") < 0)
				return -1;
			open[depth++] = c = k;
			space = false;
			continue;
		}
		/* c's list ends: close it and those it ends, open the next */
		for (;;) {
			if (depth == 0)
				return 0;
			if (strbuf_appends(sb, ")") < 0)
				return -1;
			size_t next = tr->t[open[depth - 1]].next;
			if (next != IMAP_NONE) {
				if (strbuf_appends(sb, "(") < 0)
					return -1;
				open[depth - 1] = c = next;
				space = false;
				break;
			}
			depth--;
		}
	}
}

static int
imap_tree_answer(const struct imap_tree *tr, bool uid, struct strbuf *sb)
{
	int rc = 0;
	size_t *open = malloc(tr->n * sizeof(*open));
	if (open == NULL)
		return -1;
	for (size_t k = tr->t[tr->root].child; k != IMAP_NONE && rc == 0;
	     k = tr->t[k].next)
		if (strbuf_appends(sb, "(") < 0 ||
		    imap_tree_emit(tr, k, uid, sb, open) < 0 ||
		    strbuf_appends(sb, ")") < 0)
			rc = -1;
	free(open);
	return rc;
}

/* ---- ORDEREDSUBJECT ---- */

static int
imap_subject_date_cmp(const void *x, const void *y)
{
	const struct imap_sort_msg *a = x, *b = y;
	int r = strcasecmp(a->subject ? a->subject : "",
			   b->subject ? b->subject : "");
	if (r != 0)
		return r;
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* Messages of one base subject, by date: the first the parent of the
 * others; threads by their first message's date. */
static int
imap_thread_subject(struct imap_tree *tr, struct imap_sort_msg *msgs, size_t n)
{
	if (n > 1)
		qsort(msgs, n, sizeof(*msgs), imap_subject_date_cmp);
	size_t first = IMAP_NONE;
	for (size_t i = 0; i < n; i++) {
		size_t c = imap_tree_new(tr, &msgs[i]);
		if (c == IMAP_NONE)
			return -1;
		if (first != IMAP_NONE &&
		    strcasecmp(msgs[i].subject ? msgs[i].subject : "",
			       tr->t[first].msg->subject
				   ? tr->t[first].msg->subject
				   : "") == 0) {
			imap_tree_adopt(tr, first, c);
			continue;
		}
		first = c;
		imap_tree_adopt(tr, tr->root, c);
	}
	/* threads by date; children are in date order already */
	imap_tree_sort_kids(tr, tr->root);
	return 0;
}

/* ---- REFERENCES ---- */

static size_t
imap_id_hash(const char *id, size_t len)
{
	size_t h = 5381;
	for (size_t i = 0; i < len; i++)
		h = h * 33 + (unsigned char)id[i];
	return h;
}

/* The node of Message-ID id[0..len), made (a dummy) when missing.
 * IMAP_NONE when out of memory. */
static size_t
imap_tree_id(struct imap_tree *tr, const char *id, size_t len)
{
	size_t h = imap_id_hash(id, len) & (tr->hcap - 1);
	for (; tr->hash[h] != IMAP_NONE; h = (h + 1) & (tr->hcap - 1)) {
		const struct imap_tnode *t = &tr->t[tr->hash[h]];
		if (t->idlen == len && memcmp(t->id, id, len) == 0)
			return tr->hash[h];
	}
	size_t c = imap_tree_new(tr, NULL);
	if (c == IMAP_NONE)
		return IMAP_NONE;
	tr->t[c].id = id;
	tr->t[c].idlen = len;
	tr->hash[h] = c;
	return c;
}

/* The next "<...>" of s from *p: its start and length (brackets
 * included), false at the end. */
static bool
imap_next_msgid(const char *s, const char **p, const char **id, size_t *len)
{
	const char *a = strchr(*p, '<');
	const char *b = a ? strchr(a, '>') : NULL;
	(void)s;
	if (b == NULL)
		return false;
	*id = a;
	*len = (size_t)(b + 1 - a);
	*p = b + 1;
	return true;
}

/* Steps 1 and 2 of RFC 5256's REFERENCES: the containers, linked by
 * References:, the messages without a parent under the root. */
static int
imap_thread_link(struct imap_tree *tr, struct imap_sort_msg *msgs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct imap_sort_msg *m = &msgs[i];
		const char *p = m->msgid ? m->msgid : "", *id;
		size_t len, c = IMAP_NONE;
		if (imap_next_msgid(p, &p, &id, &len) &&
		    (c = imap_tree_id(tr, id, len)) == IMAP_NONE)
			return -1;
		if (c == IMAP_NONE || tr->t[c].msg != NULL) /* none, or again */
			c = imap_tree_new(tr, NULL);
		if (c == IMAP_NONE)
			return -1;
		tr->t[c].msg = m;
		size_t prev = IMAP_NONE;
		p = m->refs ? m->refs : "";
		for (int k = 0;
		     k < IMAP_REFS_MAX && imap_next_msgid(p, &p, &id, &len);
		     k++) {
			size_t r = imap_tree_id(tr, id, len);
			if (r == IMAP_NONE)
				return -1;
			if (prev != IMAP_NONE && tr->t[r].parent == IMAP_NONE &&
			    !imap_tree_under(tr, prev, r))
				imap_tree_adopt(tr, prev, r);
			prev = r;
		}
		if (prev != IMAP_NONE && prev != c &&
		    !imap_tree_under(tr, prev, c))
			imap_tree_adopt(tr, prev, c);
		else if (prev == IMAP_NONE && tr->t[c].parent != IMAP_NONE)
			imap_tree_unlink(tr, c);
	}
	for (size_t c = 0; c < tr->n; c++)
		if (c != tr->root && tr->t[c].parent == IMAP_NONE)
			imap_tree_adopt(tr, tr->root, c);
	return 0;
}

/* Step 3 at parent: of its children (theirs done already), dummies
 * without children go, and those with children give them to parent,
 * but at the top where they hold more than one. */
static void
imap_thread_prune_kids(struct imap_tree *tr, size_t parent)
{
	size_t k = tr->t[parent].child;
	while (k != IMAP_NONE) {
		size_t next = tr->t[k].next;
		if (tr->t[k].msg == NULL &&
		    (parent != tr->root || tr->t[k].child == IMAP_NONE ||
		     tr->t[tr->t[k].child].next == IMAP_NONE)) {
			/* its children take its place, in order */
			size_t *link = &tr->t[parent].child;
			while (*link != k)
				link = &tr->t[*link].next;
			size_t kid = tr->t[k].child, last = IMAP_NONE;
			*link = kid != IMAP_NONE ? kid : tr->t[k].next;
			for (; kid != IMAP_NONE; kid = tr->t[kid].next) {
				tr->t[kid].parent = parent;
				last = kid;
			}
			if (last != IMAP_NONE)
				tr->t[last].next = tr->t[k].next;
			tr->t[k].parent = tr->t[k].next = tr->t[k].child =
			    IMAP_NONE;
		}
		k = next;
	}
}

/* Step 3 over the whole tree, the deepest first. Returns 0 or -1. */
static int
imap_thread_prune(struct imap_tree *tr)
{
	size_t n, *order = imap_tree_postorder(tr, tr->root, &n);
	if (order == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		imap_thread_prune_kids(tr, order[i]);
	free(order);
	return 0;
}

/* The subject a top-level container is grouped by, "" for none. */
static const char *
imap_thread_subj(const struct imap_tree *tr, size_t c, bool *refwd)
{
	const struct imap_sort_msg *m =
	    tr->t[c].msg ? tr->t[c].msg : imap_tree_first_msg(tr, c);
	*refwd = m && m->refwd && tr->t[c].msg != NULL;
	return m && m->subject ? m->subject : "";
}

/* Step 5: top-level threads of one base subject gathered. */
static int
imap_thread_group(struct imap_tree *tr)
{
	size_t k = tr->t[tr->root].child;
	while (k != IMAP_NONE) {
		size_t next = tr->t[k].next;
		bool krf;
		const char *ks = imap_thread_subj(tr, k, &krf);
		if (*ks == '\0') {
			k = next;
			continue;
		}
		/* the first earlier top-level thread of that subject */
		size_t o = tr->t[tr->root].child;
		bool orf = false;
		for (; o != k; o = tr->t[o].next)
			if (strcasecmp(imap_thread_subj(tr, o, &orf), ks) == 0)
				break;
		if (o == k) {
			k = next;
			continue;
		}
		bool odummy = tr->t[o].msg == NULL,
		     kdummy = tr->t[k].msg == NULL;
		if (odummy && kdummy) {
			while (tr->t[k].child != IMAP_NONE)
				imap_tree_adopt(tr, o, tr->t[k].child);
			imap_tree_unlink(tr, k);
		} else if (odummy || (!orf && krf)) {
			imap_tree_adopt(tr, o, k);
		} else if (kdummy || (orf && !krf)) {
			/* o goes under k, which takes o's place */
			size_t *link = &tr->t[tr->root].child;
			imap_tree_unlink(tr, k);
			while (*link != o)
				link = &tr->t[*link].next;
			tr->t[k].next = tr->t[o].next;
			tr->t[k].parent = tr->root;
			*link = k;
			tr->t[o].parent = tr->t[o].next = IMAP_NONE;
			imap_tree_adopt(tr, k, o);
		} else {
			/* both messages, neither a reply: a new dummy */
			size_t d = imap_tree_new(tr, NULL);
			if (d == IMAP_NONE)
				return -1;
			size_t *link = &tr->t[tr->root].child;
			while (*link != o)
				link = &tr->t[*link].next;
			tr->t[d].next = tr->t[o].next;
			tr->t[d].parent = tr->root;
			*link = d;
			tr->t[o].parent = tr->t[o].next = IMAP_NONE;
			imap_tree_adopt(tr, d, o);
			imap_tree_adopt(tr, d, k);
		}
		k = next;
	}
	return 0;
}

static int
imap_thread_references(struct imap_tree *tr, struct imap_sort_msg *msgs,
		       size_t n)
{
	size_t ids = n + 1; /* every Message-ID the table may hold */
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		for (const char *p = msgs[i].refs; p && (p = strchr(p, '<'));
		     p++)
			k++;
		ids += k < IMAP_REFS_MAX ? k : IMAP_REFS_MAX;
	}
	tr->hcap = 64;
	while (tr->hcap < 2 * ids)
		tr->hcap *= 2;
	if ((tr->hash = malloc(tr->hcap * sizeof(*tr->hash))) == NULL)
		return -1;
	for (size_t i = 0; i < tr->hcap; i++)
		tr->hash[i] = IMAP_NONE;
	if (imap_thread_link(tr, msgs, n) < 0)
		return -1;
	if (imap_thread_prune(tr) < 0 || imap_tree_sort(tr, tr->root) < 0 ||
	    imap_thread_group(tr) < 0)
		return -1;
	return imap_tree_sort(tr, tr->root);
}

int
imap_thread(struct imap_sort_msg *msgs, size_t n, enum imap_thread_algo a,
	    bool uid, struct strbuf *sb)
{
	struct imap_tree tr = {0};
	int rc = -1;
	if ((tr.root = imap_tree_new(&tr, NULL)) == IMAP_NONE)
		goto out;
	if (a == IMAP_THREAD_ORDEREDSUBJECT) {
		if (imap_thread_subject(&tr, msgs, n) < 0)
			goto out;
	} else if (imap_thread_references(&tr, msgs, n) < 0)
		goto out;
	rc = imap_tree_answer(&tr, uid, sb);
out:
	free(tr.t);
	free(tr.hash);
	return rc;
}
