/* SORT (RFC 5256): criteria, base subject, first mailbox, ordering (see
 * imap_sort.h). */
#include "imap_sort.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../common/strbuf.h"

/* ---- parsing ---- */

static const struct {
	const char *name;
	enum imap_sort_key key;
} imap_sort_names[] = {
    {"ARRIVAL", IMAP_SORT_ARRIVAL}, {"CC", IMAP_SORT_CC},
    {"DATE", IMAP_SORT_DATE},	    {"FROM", IMAP_SORT_FROM},
    {"SIZE", IMAP_SORT_SIZE},	    {"SUBJECT", IMAP_SORT_SUBJECT},
    {"TO", IMAP_SORT_TO},
};

#define IMAP_NSORT (sizeof(imap_sort_names) / sizeof(*imap_sort_names))

/* " charset " after the criteria or the algorithm. */
static int
imap_sort_charset(struct imap_cur *c)
{
	char cs[64];
	if (imap_sp(c) < 0 || imap_astring(c, cs, sizeof(cs), NULL) < 0)
		return imap_cur_fail(c, "expected a charset");
	if (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0)
		return imap_cur_fail(c, "[BADCHARSET (UTF-8 US-ASCII)] "
					"Unsupported charset");
	return imap_sp(c);
}

int
imap_sort_parse(struct imap_cur *c, struct imap_sort_prog *p)
{
	char word[16];
	memset(p, 0, sizeof(*p));
	if (!imap_peek_char(c, '('))
		return imap_cur_fail(c, "expected sort criteria");
	bool reverse = false;
	do {
		if (imap_atom(c, word, sizeof(word)) < 0)
			return imap_cur_fail(c, "expected a sort key");
		if (strcasecmp(word, "REVERSE") == 0) {
			if (reverse || imap_sp(c) < 0)
				return imap_cur_fail(c, "REVERSE needs a key");
			reverse = true;
			continue;
		}
		size_t k = 0;
		while (k < IMAP_NSORT &&
		       strcasecmp(word, imap_sort_names[k].name) != 0)
			k++;
		if (k == IMAP_NSORT)
			return imap_cur_fail(c, "unknown sort key %s", word);
		if (p->n == IMAP_SORT_KEYS_MAX)
			return imap_cur_fail(c, "too many sort keys");
		p->crit[p->n].key = imap_sort_names[k].key;
		p->crit[p->n++].reverse = reverse;
		reverse = false;
	} while (reverse || imap_peek_char(c, ' '));
	if (!imap_peek_char(c, ')'))
		return imap_cur_fail(c, "expected ')' after sort criteria");
	return imap_sort_charset(c);
}

int
imap_thread_parse(struct imap_cur *c, enum imap_thread_algo *algo)
{
	char word[32];
	if (imap_atom(c, word, sizeof(word)) < 0)
		return imap_cur_fail(c, "expected a threading algorithm");
	if (strcasecmp(word, "ORDEREDSUBJECT") == 0)
		*algo = IMAP_THREAD_ORDEREDSUBJECT;
	else if (strcasecmp(word, "REFERENCES") == 0)
		*algo = IMAP_THREAD_REFERENCES;
	else
		return imap_cur_fail(c, "unknown threading algorithm");
	return imap_sort_charset(c);
}

/* ---- base subject (RFC 5256 2.1) ---- */

/* Past a subj-blob "[...]" *WSP at p, or NULL. */
static const char *
imap_subj_blob(const char *p)
{
	if (*p != '[')
		return NULL;
	for (p++; *p && *p != ']'; p++)
		if (*p == '[')
			return NULL;
	if (*p != ']')
		return NULL;
	for (p++; *p == ' '; p++)
		;
	return p;
}

/* Past a subj-refwd ("re" / "fw" / "fwd") *WSP [subj-blob] ":" at p,
 * or NULL. */
static const char *
imap_subj_refwd(const char *p)
{
	if (strncasecmp(p, "re", 2) == 0)
		p += 2;
	else if (strncasecmp(p, "fwd", 3) == 0)
		p += 3;
	else if (strncasecmp(p, "fw", 2) == 0)
		p += 2;
	else
		return NULL;
	while (*p == ' ')
		p++;
	const char *b = imap_subj_blob(p);
	if (b)
		p = b;
	return *p == ':' ? p + 1 : NULL;
}

/* Past a subj-leader ((*subj-blob subj-refwd) / WSP) at p, or NULL. */
static const char *
imap_subj_leader(const char *p, bool *refwd)
{
	if (*p == ' ')
		return p + 1;
	const char *q = p, *b;
	while ((b = imap_subj_blob(q)) != NULL)
		q = b;
	if ((q = imap_subj_refwd(q)) == NULL)
		return NULL;
	*refwd = true;
	return q;
}

void
imap_base_subject(const char *subject, char *out, size_t outlen, bool *refwd)
{
	bool rf = false;
	size_t n = 0;
	if (outlen == 0)
		return;
	/* (1) blanks made one space */
	for (const char *p = subject; *p && n + 1 < outlen; p++) {
		bool blank =
		    *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n';
		if (blank && n > 0 && out[n - 1] == ' ')
			continue;
		out[n++] = blank ? ' ' : *p;
	}
	out[n] = '\0';
	char *s = out;
	for (;;) {
		/* (2) trailers "(fwd)" and blanks */
		for (;;) {
			size_t len = strlen(s);
			if (len > 0 && s[len - 1] == ' ')
				s[len - 1] = '\0';
			else if (len >= 5 &&
				 strcasecmp(s + len - 5, "(fwd)") == 0) {
				s[len - 5] = '\0';
				rf = true;
			} else
				break;
		}
		/* (3)-(5) leaders, and a leading blob that leaves something */
		for (;;) {
			const char *q = imap_subj_leader(s, &rf);
			if (q == NULL) {
				q = imap_subj_blob(s);
				if (q == NULL || *q == '\0')
					break;
			}
			s = (char *)q;
		}
		/* (6) "[fwd: ... ]" */
		size_t len = strlen(s);
		if (len >= 6 && strncasecmp(s, "[fwd:", 5) == 0 &&
		    s[len - 1] == ']') {
			s[len - 1] = '\0';
			s += 5;
			rf = true;
			continue;
		}
		break;
	}
	memmove(out, s, strlen(s) + 1);
	if (refwd)
		*refwd = rf;
}

/* ---- the first address's mailbox ---- */

void
imap_first_mailbox(const char *v, char *out, size_t outlen)
{
	const char *start = v, *angle = NULL, *p;
	bool quoted = false;
	if (outlen == 0)
		return;
	out[0] = '\0';
	/* the first address: up to a ',' or ';' outside quotes, comments
	 * and angle brackets; after a group's "name:" */
	for (p = v; *p; p++) {
		if (quoted) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				quoted = false;
			continue;
		}
		if (*p == '"')
			quoted = true;
		else if (*p == '(') {
			int depth = 0;
			for (; *p; p++) {
				if (*p == '\\' && p[1])
					p++;
				else if (*p == '(')
					depth++;
				else if (*p == ')' && --depth == 0)
					break;
			}
			if (!*p)
				break;
		} else if (*p == '<' && angle == NULL)
			angle = p + 1;
		else if (*p == ':' && angle == NULL)
			start = p + 1;
		else if ((*p == ',' || *p == ';') && angle == NULL) {
			if (p > start)
				break;
			start = p + 1; /* an empty group or list entry */
		} else if (*p == '>' && angle != NULL)
			break;
	}
	const char *a = angle ? angle : start, *end = p;
	size_t o = 0;
	for (const char *q = a; q < end && *q != '@' && o + 1 < outlen; q++) {
		if (*q == '(') { /* a comment inside: left out */
			int depth = 0;
			for (; q < end; q++)
				if (*q == '(')
					depth++;
				else if (*q == ')' && --depth == 0)
					break;
			continue;
		}
		if (*q == ' ' || *q == '\t' || *q == '"' || *q == '<' ||
		    *q == '>')
			continue;
		out[o++] = *q;
	}
	out[o] = '\0';
}

/* ---- ordering ---- */

static int
imap_sort_str(const char *a, const char *b)
{
	return strcasecmp(a ? a : "", b ? b : "");
}

static int
imap_sort_cmp(const void *x, const void *y, void *arg)
{
	const struct imap_sort_msg *a = x, *b = y;
	const struct imap_sort_prog *by = arg;
	for (size_t k = 0; k < by->n; k++) {
		const struct imap_sort_crit *cr = &by->crit[k];
		int r = 0;
		switch (cr->key) {
		case IMAP_SORT_ARRIVAL:
			r = (a->arrival > b->arrival) -
			    (a->arrival < b->arrival);
			break;
		case IMAP_SORT_DATE:
			r = (a->date > b->date) - (a->date < b->date);
			break;
		case IMAP_SORT_SIZE:
			r = (a->size > b->size) - (a->size < b->size);
			break;
		case IMAP_SORT_SUBJECT:
			r = imap_sort_str(a->subject, b->subject);
			break;
		case IMAP_SORT_FROM:
			r = imap_sort_str(a->from, b->from);
			break;
		case IMAP_SORT_TO:
			r = imap_sort_str(a->to, b->to);
			break;
		case IMAP_SORT_CC:
			r = imap_sort_str(a->cc, b->cc);
			break;
		}
		if (r != 0)
			return cr->reverse ? -r : r;
	}
	return (a->seq > b->seq) - (a->seq < b->seq);
}

void
imap_sort_msgs(struct imap_sort_msg *msgs, size_t n,
	       const struct imap_sort_prog *p)
{
	if (n > 1)
		qsort_r(msgs, n, sizeof(*msgs), imap_sort_cmp, (void *)p);
}

void
imap_sort_msgs_free(struct imap_sort_msg *msgs, size_t n)
{
	for (size_t i = 0; msgs && i < n; i++) {
		free(msgs[i].subject);
		free(msgs[i].from);
		free(msgs[i].to);
		free(msgs[i].cc);
		free(msgs[i].msgid);
		free(msgs[i].refs);
	}
	free(msgs);
}
