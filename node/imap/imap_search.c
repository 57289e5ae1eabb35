/* SEARCH (RFC 3501 6.4.4): the search keys parsed into a tree, one table
 * row and one parse function per kind of key, and the tree run against
 * one message at a time. Keys that need the message text run after the
 * others of their AND or OR, so that a cheap key can spare the file. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap_search.h"

#define IMAP_SEARCH_DEPTH 64
#define IMAP_SEARCH_KEYS 256
#define IMAP_SEARCH_STR_MAX 1024 /* one string argument */

enum imap_sop {
	IMAP_S_CONST,	/* BODY "" and the like */
	IMAP_S_KEYWORD, /* KEYWORD, UNKEYWORD (value true) */
	IMAP_S_FLAGS,	/* ALL, SEEN, UNSEEN, NEW, OLD, ... */
	IMAP_S_LARGER,	/* size > n */
	IMAP_S_SMALLER,
	IMAP_S_BEFORE, /* internaldate, by day */
	IMAP_S_ON,
	IMAP_S_SINCE,
	IMAP_S_SENTBEFORE, /* Date: header, by day */
	IMAP_S_SENTON,
	IMAP_S_SENTSINCE,
	IMAP_S_HEADER, /* FROM, TO, CC, BCC, SUBJECT, HEADER */
	IMAP_S_BODY,
	IMAP_S_TEXT,
	IMAP_S_SEQ, /* sequence set */
	IMAP_S_UID,
	IMAP_S_NOT,
	IMAP_S_OR,
	IMAP_S_AND, /* a group, and the whole program */
};

struct imap_snode {
	enum imap_sop op;
	bool costly;	     /* this subtree needs the callbacks */
	bool value;	     /* IMAP_S_CONST; UNKEYWORD */
	unsigned set, unset; /* IMAP_S_FLAGS: bits that must be set, clear */
	uint64_t num;	     /* LARGER, SMALLER */
	int64_t day;	     /* date keys: days since the epoch */
	char *field, *needle;
	struct {
		uint32_t lo, hi;
	} * r; /* IMAP_S_SEQ, IMAP_S_UID */
	size_t nr;
	struct imap_snode *kids, *next; /* NOT, OR, AND; siblings */
};

struct imap_search {
	struct imap_snode *root;
};

/* Parser state. */
struct imap_sparse {
	struct imap_cur *c;
	unsigned nkeys;
	bool ascii; /* CHARSET US-ASCII */
};

struct imap_skey;
typedef int (*imap_skey_fn)(struct imap_sparse *, const struct imap_skey *,
			    struct imap_snode *, int depth);

/* One row of the key table. */
struct imap_skey {
	const char *name;
	imap_skey_fn parse;
	enum imap_sop op;
	unsigned set, unset; /* flag keys; for CONST, set is the value */
	const char *field;   /* FROM, TO, ...: the header field */
};

static struct imap_snode *imap_search_key(struct imap_sparse *ps, int depth);

static void
imap_snode_free(struct imap_snode *n)
{
	while (n != NULL) {
		struct imap_snode *next = n->next;
		imap_snode_free(n->kids);
		free(n->field);
		free(n->needle);
		free(n->r);
		free(n);
		n = next;
	}
}

static void
imap_snode_keywords(struct imap_snode *n,
		    unsigned (*lookup)(void *arg, const char *name), void *arg)
{
	for (; n != NULL; n = n->next) {
		if (n->op == IMAP_S_KEYWORD)
			n->set = lookup(arg, n->needle);
		imap_snode_keywords(n->kids, lookup, arg);
	}
}

void
imap_search_keywords(struct imap_search *s,
		     unsigned (*lookup)(void *arg, const char *name), void *arg)
{
	imap_snode_keywords(s->root, lookup, arg);
}

void
imap_search_free(struct imap_search *s)
{
	if (s == NULL)
		return;
	imap_snode_free(s->root);
	free(s);
}

/* Whether s is valid UTF-8 (or, ascii, only US-ASCII). */
static bool
imap_search_text_ok(const unsigned char *s, size_t n, bool ascii)
{
	size_t i = 0;
	while (i < n) {
		unsigned char b = s[i];
		size_t k;
		uint32_t cp, min;
		if (b < 0x80) {
			i++;
			continue;
		}
		if (ascii)
			return false;
		if ((b & 0xe0) == 0xc0) {
			k = 1, cp = b & 0x1f, min = 0x80;
		} else if ((b & 0xf0) == 0xe0) {
			k = 2, cp = b & 0x0f, min = 0x800;
		} else if ((b & 0xf8) == 0xf0) {
			k = 3, cp = b & 0x07, min = 0x10000;
		} else
			return false;
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* SP astring, as a malloc'ed C string in the search's charset. */
static int
imap_search_arg(struct imap_sparse *ps, char **out)
{
	char buf[IMAP_SEARCH_STR_MAX + 1];
	size_t n;
	struct imap_cur *c = ps->c;
	if (imap_sp(c) < 0 || imap_astring(c, buf, sizeof(buf), &n) < 0)
		return -1;
	if (memchr(buf, '\0', n) != NULL)
		return imap_cur_fail(c, "NUL in a search string");
	if (!imap_search_text_ok((unsigned char *)buf, n, ps->ascii))
		return imap_cur_fail(c, ps->ascii ? "8-bit text in a "
						    "US-ASCII search"
						  : "search string is not "
						    "UTF-8");
	if ((*out = strdup(buf)) == NULL)
		return imap_cur_fail(c, "out of memory");
	return 0;
}

static int
imap_sk_flags(struct imap_sparse *ps, const struct imap_skey *k,
	      struct imap_snode *n, int depth)
{
	(void)ps, (void)depth;
	n->set = k->set;
	n->unset = k->unset;
	return 0;
}

/* KEYWORD / UNKEYWORD flag: the store keeps no keywords. */
static int
imap_sk_keyword(struct imap_sparse *ps, const struct imap_skey *k,
		struct imap_snode *n, int depth)
{
	char kw[256];
	(void)depth;
	if (imap_sp(ps->c) < 0 || imap_atom(ps->c, kw, sizeof(kw)) < 0)
		return imap_cur_fail(ps->c, "%s needs a keyword", k->name);
	n->value = k->set != 0;
	if ((n->needle = strdup(kw)) == NULL)
		return imap_cur_fail(ps->c, "out of memory");
	return 0;
}

static int
imap_sk_size(struct imap_sparse *ps, const struct imap_skey *k,
	     struct imap_snode *n, int depth)
{
	uint32_t v;
	(void)depth;
	if (imap_sp(ps->c) < 0 || imap_number(ps->c, &v) < 0)
		return imap_cur_fail(ps->c, "%s needs a number", k->name);
	n->num = v;
	return 0;
}

static int64_t
imap_day_of(time_t t)
{
	int64_t s = (int64_t)t;
	return s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
}

static int
imap_sk_date(struct imap_sparse *ps, const struct imap_skey *k,
	     struct imap_snode *n, int depth)
{
	time_t t;
	(void)depth;
	if (imap_sp(ps->c) < 0 || imap_date(ps->c, &t) < 0)
		return imap_cur_fail(ps->c, "%s needs a date", k->name);
	n->day = imap_day_of(t);
	return 0;
}

/* FROM, TO, CC, BCC, SUBJECT string. */
static int
imap_sk_field(struct imap_sparse *ps, const struct imap_skey *k,
	      struct imap_snode *n, int depth)
{
	(void)depth;
	if ((n->field = strdup(k->field)) == NULL)
		return imap_cur_fail(ps->c, "out of memory");
	return imap_search_arg(ps, &n->needle);
}

/* HEADER field-name string. */
static int
imap_sk_header(struct imap_sparse *ps, const struct imap_skey *k,
	       struct imap_snode *n, int depth)
{
	(void)k, (void)depth;
	if (imap_search_arg(ps, &n->field) < 0)
		return -1;
	if (n->field[0] == '\0')
		return imap_cur_fail(ps->c, "empty header field name");
	for (const char *p = n->field; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f ||
		    *p == ':')
			return imap_cur_fail(ps->c, "bad header field name");
	return imap_search_arg(ps, &n->needle);
}

/* BODY, TEXT string: an empty string matches every message. */
static int
imap_sk_text(struct imap_sparse *ps, const struct imap_skey *k,
	     struct imap_snode *n, int depth)
{
	(void)k, (void)depth;
	if (imap_search_arg(ps, &n->needle) < 0)
		return -1;
	if (n->needle[0] == '\0') {
		n->op = IMAP_S_CONST;
		n->value = true;
	}
	return 0;
}

/* A sequence set into n->r (as many ranges as it has). */
static int
imap_search_set(struct imap_sparse *ps, struct imap_snode *n)
{
	struct imap_seqset *set = malloc(sizeof(*set));
	int r = -1;
	if (set == NULL)
		return imap_cur_fail(ps->c, "out of memory");
	if (imap_seqset(ps->c, set) < 0)
		goto fail;
	n->r = calloc(set->n, sizeof(*n->r));
	if (n->r == NULL) {
		imap_cur_fail(ps->c, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < set->n; i++) {
		n->r[i].lo = set->r[i].lo;
		n->r[i].hi = set->r[i].hi;
	}
	n->nr = set->n;
	r = 0;
fail:
	free(set);
	return r;
}

static int
imap_sk_uid(struct imap_sparse *ps, const struct imap_skey *k,
	    struct imap_snode *n, int depth)
{
	(void)k, (void)depth;
	if (imap_sp(ps->c) < 0)
		return -1;
	return imap_search_set(ps, n);
}

/* NOT key, OR key key: the operands one level deeper. */
static int
imap_sk_logic(struct imap_sparse *ps, const struct imap_skey *k,
	      struct imap_snode *n, int depth)
{
	struct imap_snode **tail = &n->kids;
	int count = k->op == IMAP_S_OR ? 2 : 1;
	for (int i = 0; i < count; i++) {
		if (imap_sp(ps->c) < 0)
			return imap_cur_fail(ps->c, "%s needs a search key",
					     k->name);
		if ((*tail = imap_search_key(ps, depth + 1)) == NULL)
			return -1;
		n->costly |= (*tail)->costly;
		tail = &(*tail)->next;
	}
	return 0;
}

static const struct imap_skey imap_skeys[] = {
    {"ALL", imap_sk_flags, IMAP_S_FLAGS, 0, 0, NULL},
    {"ANSWERED", imap_sk_flags, IMAP_S_FLAGS, IMAP_F_ANSWERED, 0, NULL},
    {"BCC", imap_sk_field, IMAP_S_HEADER, 0, 0, "Bcc"},
    {"BEFORE", imap_sk_date, IMAP_S_BEFORE, 0, 0, NULL},
    {"BODY", imap_sk_text, IMAP_S_BODY, 0, 0, NULL},
    {"CC", imap_sk_field, IMAP_S_HEADER, 0, 0, "Cc"},
    {"DELETED", imap_sk_flags, IMAP_S_FLAGS, IMAP_F_DELETED, 0, NULL},
    {"DRAFT", imap_sk_flags, IMAP_S_FLAGS, IMAP_F_DRAFT, 0, NULL},
    {"FLAGGED", imap_sk_flags, IMAP_S_FLAGS, IMAP_F_FLAGGED, 0, NULL},
    {"FROM", imap_sk_field, IMAP_S_HEADER, 0, 0, "From"},
    {"HEADER", imap_sk_header, IMAP_S_HEADER, 0, 0, NULL},
    {"KEYWORD", imap_sk_keyword, IMAP_S_KEYWORD, 0, 0, NULL},
    {"LARGER", imap_sk_size, IMAP_S_LARGER, 0, 0, NULL},
    {"NEW", imap_sk_flags, IMAP_S_FLAGS, IMAP_F_RECENT, IMAP_F_SEEN, NULL},
    {"NOT", imap_sk_logic, IMAP_S_NOT, 0, 0, NULL},
    {"OLD", imap_sk_flags, IMAP_S_FLAGS, 0, IMAP_F_RECENT, NULL},
    {"ON", imap_sk_date, IMAP_S_ON, 0, 0, NULL},
    {"OR", imap_sk_logic, IMAP_S_OR, 0, 0, NULL},
    {"RECENT", imap_sk_flags, IMAP_S_FLAGS, IMAP_F_RECENT, 0, NULL},
    {"SEEN", imap_sk_flags, IMAP_S_FLAGS, IMAP_F_SEEN, 0, NULL},
    {"SENTBEFORE", imap_sk_date, IMAP_S_SENTBEFORE, 0, 0, NULL},
    {"SENTON", imap_sk_date, IMAP_S_SENTON, 0, 0, NULL},
    {"SENTSINCE", imap_sk_date, IMAP_S_SENTSINCE, 0, 0, NULL},
    {"SINCE", imap_sk_date, IMAP_S_SINCE, 0, 0, NULL},
    {"SMALLER", imap_sk_size, IMAP_S_SMALLER, 0, 0, NULL},
    {"SUBJECT", imap_sk_field, IMAP_S_HEADER, 0, 0, "Subject"},
    {"TEXT", imap_sk_text, IMAP_S_TEXT, 0, 0, NULL},
    {"TO", imap_sk_field, IMAP_S_HEADER, 0, 0, "To"},
    {"UID", imap_sk_uid, IMAP_S_UID, 0, 0, NULL},
    {"UNANSWERED", imap_sk_flags, IMAP_S_FLAGS, 0, IMAP_F_ANSWERED, NULL},
    {"UNDELETED", imap_sk_flags, IMAP_S_FLAGS, 0, IMAP_F_DELETED, NULL},
    {"UNDRAFT", imap_sk_flags, IMAP_S_FLAGS, 0, IMAP_F_DRAFT, NULL},
    {"UNFLAGGED", imap_sk_flags, IMAP_S_FLAGS, 0, IMAP_F_FLAGGED, NULL},
    {"UNKEYWORD", imap_sk_keyword, IMAP_S_KEYWORD, 1, 0, NULL},
    {"UNSEEN", imap_sk_flags, IMAP_S_FLAGS, 0, IMAP_F_SEEN, NULL},
};

#define IMAP_NSKEYS (sizeof(imap_skeys) / sizeof(imap_skeys[0]))

static bool
imap_sop_costly(enum imap_sop op)
{
	return op == IMAP_S_HEADER || op == IMAP_S_BODY || op == IMAP_S_TEXT ||
	       op == IMAP_S_SENTBEFORE || op == IMAP_S_SENTON ||
	       op == IMAP_S_SENTSINCE;
}

/* search-key *(SP search-key) into an AND node, up to ')' when group,
 * else to the end of the command. */
static int
imap_search_list(struct imap_sparse *ps, struct imap_snode *and, int depth,
		 bool group)
{
	struct imap_snode **tail = &and->kids;
	for (;;) {
		if ((*tail = imap_search_key(ps, depth)) == NULL)
			return -1;
		and->costly |= (*tail)->costly;
		tail = &(*tail)->next;
		if (group && imap_peek_char(ps->c, ')'))
			return 0;
		if (!group && imap_at_end(ps->c))
			return 0;
		if (imap_sp(ps->c) < 0)
			return imap_cur_fail(ps->c, group ? "expected ')'"
							  : "expected a space "
							    "between keys");
	}
}

/* One search-key, or NULL with c->err set. */
static struct imap_snode *
imap_search_key(struct imap_sparse *ps, int depth)
{
	struct imap_cur *c = ps->c;
	if (depth >= IMAP_SEARCH_DEPTH) {
		imap_cur_fail(c, "search nested too deep");
		return NULL;
	}
	if (++ps->nkeys > IMAP_SEARCH_KEYS) {
		imap_cur_fail(c, "too many search keys");
		return NULL;
	}
	struct imap_snode *n = calloc(1, sizeof(*n));
	if (n == NULL) {
		imap_cur_fail(c, "out of memory");
		return NULL;
	}
	if (imap_peek_char(c, '(')) {
		n->op = IMAP_S_AND;
		if (imap_search_list(ps, n, depth + 1, true) < 0)
			goto fail;
		return n;
	}
	if (c->p < c->end && (*c->p == '*' || (*c->p >= '0' && *c->p <= '9'))) {
		n->op = IMAP_S_SEQ;
		if (imap_search_set(ps, n) < 0)
			goto fail;
		return n;
	}
	char name[16];
	if (imap_atom(c, name, sizeof(name)) < 0) {
		imap_cur_fail(c, "expected a search key");
		goto fail;
	}
	for (size_t i = 0; i < IMAP_NSKEYS; i++) {
		const struct imap_skey *k = &imap_skeys[i];
		if (strcasecmp(name, k->name) != 0)
			continue;
		n->op = k->op;
		n->costly = imap_sop_costly(k->op);
		if (k->parse(ps, k, n, depth) < 0)
			goto fail;
		if (n->op == IMAP_S_CONST)
			n->costly = false;
		return n;
	}
	imap_cur_fail(c, "unknown search key %s", name);
fail:
	imap_snode_free(n);
	return NULL;
}

/* The optional "CHARSET name SP" at the start. */
static int
imap_search_charset(struct imap_sparse *ps)
{
	struct imap_cur *c = ps->c;
	if (c->end - c->p < 8 || strncasecmp(c->p, "CHARSET ", 8) != 0)
		return 0;
	c->p += 8;
	char cs[64];
	if (imap_astring(c, cs, sizeof(cs), NULL) < 0 ||
	    (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0))
		return imap_cur_fail(c, "[BADCHARSET (UTF-8 US-ASCII)] "
					"unsupported charset");
	ps->ascii = strcasecmp(cs, "US-ASCII") == 0;
	if (imap_sp(c) < 0)
		return imap_cur_fail(c, "CHARSET needs search keys after it");
	return 0;
}

int
imap_search_parse(struct imap_cur *c, struct imap_search **out)
{
	struct imap_sparse ps = {c, 0, false};
	struct imap_search *s = NULL;
	*out = NULL;
	if (imap_search_charset(&ps) < 0)
		return -1;
	if (imap_at_end(c))
		return imap_cur_fail(c, "SEARCH needs a search key");
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->root = calloc(1, sizeof(*s->root))) == NULL) {
		imap_cur_fail(c, "out of memory");
		goto fail;
	}
	s->root->op = IMAP_S_AND;
	if (imap_search_list(&ps, s->root, 0, false) < 0 || imap_end(c) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	imap_search_free(s);
	return -1;
}

bool
imap_search_needs_text(const struct imap_search *s)
{
	return s != NULL && s->root != NULL && s->root->costly;
}

static bool
imap_snode_uses_internaldate(const struct imap_snode *n)
{
	for (; n != NULL; n = n->next)
		if (n->op == IMAP_S_BEFORE || n->op == IMAP_S_ON ||
		    n->op == IMAP_S_SINCE ||
		    imap_snode_uses_internaldate(n->kids))
			return true;
	return false;
}

bool
imap_search_needs_internaldate(const struct imap_search *s)
{
	return s != NULL && imap_snode_uses_internaldate(s->root);
}

/* ---- matching ---- */

static bool imap_snode_match(const struct imap_snode *n,
			     const struct imap_search_msg *m, uint32_t max_seq,
			     uint32_t max_uid);

static bool
imap_set_has(const struct imap_snode *n, uint32_t v, uint32_t max)
{
	if (max == 0)
		return false;
	for (size_t i = 0; i < n->nr; i++)
		if (imap_range_has(n->r[i].lo, n->r[i].hi, v, max))
			return true;
	return false;
}

/* The Date: header's day, or false. */
static bool
imap_sent_day(const struct imap_search_msg *m, int64_t *day)
{
	time_t t;
	if (m->sent_date == NULL || !m->sent_date(m->arg, &t))
		return false;
	*day = imap_day_of(t);
	return true;
}

/* AND (want true) or OR (want false): the cheap kids first, stopping at
 * the first kid that settles it. */
static bool
imap_snode_kids(const struct imap_snode *n, const struct imap_search_msg *m,
		uint32_t max_seq, uint32_t max_uid, bool and)
{
	for (int pass = 0; pass < 2; pass++)
		for (const struct imap_snode *k = n->kids; k; k = k->next) {
			if (k->costly != (pass == 1))
				continue;
			if (imap_snode_match(k, m, max_seq, max_uid) != and)
				return !and;
		}
	return and;
}

static bool
imap_snode_match(const struct imap_snode *n, const struct imap_search_msg *m,
		 uint32_t max_seq, uint32_t max_uid)
{
	int64_t d;
	switch (n->op) {
	case IMAP_S_CONST:
		return n->value;
	case IMAP_S_KEYWORD: {
		bool has = n->set != 0 && (m->flags & n->set) == n->set;
		return n->value ? !has : has;
	}
	case IMAP_S_FLAGS:
		return (m->flags & n->set) == n->set && !(m->flags & n->unset);
	case IMAP_S_LARGER:
		return m->size > n->num;
	case IMAP_S_SMALLER:
		return m->size < n->num;
	case IMAP_S_BEFORE:
		return imap_day_of(m->internaldate) < n->day;
	case IMAP_S_ON:
		return imap_day_of(m->internaldate) == n->day;
	case IMAP_S_SINCE:
		return imap_day_of(m->internaldate) >= n->day;
	case IMAP_S_SENTBEFORE:
		return imap_sent_day(m, &d) && d < n->day;
	case IMAP_S_SENTON:
		return imap_sent_day(m, &d) && d == n->day;
	case IMAP_S_SENTSINCE:
		return imap_sent_day(m, &d) && d >= n->day;
	case IMAP_S_HEADER:
		return m->header_has != NULL &&
		       m->header_has(m->arg, n->field, n->needle);
	case IMAP_S_BODY:
		return m->body_has != NULL && m->body_has(m->arg, n->needle);
	case IMAP_S_TEXT:
		return m->text_has != NULL && m->text_has(m->arg, n->needle);
	case IMAP_S_SEQ:
		return imap_set_has(n, m->seq, max_seq);
	case IMAP_S_UID:
		return imap_set_has(n, m->uid, max_uid);
	case IMAP_S_NOT:
		return !imap_snode_match(n->kids, m, max_seq, max_uid);
	case IMAP_S_OR:
		return imap_snode_kids(n, m, max_seq, max_uid, false);
	case IMAP_S_AND:
		return imap_snode_kids(n, m, max_seq, max_uid, true);
	}
	return false;
}

bool
imap_search_match(const struct imap_search *s, const struct imap_search_msg *m,
		  uint32_t max_seq, uint32_t max_uid)
{
	if (s == NULL || s->root == NULL)
		return false;
	return imap_snode_match(s->root, m, max_seq, max_uid);
}
