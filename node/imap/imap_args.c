/* The arguments of the commands after login: see imap_args.h. */
#include "imap_args.h"

#include <string.h>
#include <strings.h>

int
imap_args_mailbox(struct imap_cur *c, bool new_name, char name[IMAP_ARG_MBOX])
{
	if (imap_astring(c, name, IMAP_ARG_MBOX, NULL) < 0)
		return -1;
	size_t n = strlen(name);
	if (new_name && n > 1 && name[n - 1] == '.')
		name[n - 1] = '\0';
	return imap_end(c);
}

int
imap_args_rename(struct imap_cur *c, struct imap_args_rename *a)
{
	if (imap_astring(c, a->from, sizeof(a->from), NULL) < 0 ||
	    imap_sp(c) < 0)
		return -1;
	return imap_args_mailbox(c, true, a->to);
}

static const struct {
	const char *name;
	unsigned bit;
} imap_status_items[] = {
    {"MESSAGES", IMAP_STATUS_MESSAGES},
    {"RECENT", IMAP_STATUS_RECENT},
    {"UIDNEXT", IMAP_STATUS_UIDNEXT},
    {"UIDVALIDITY", IMAP_STATUS_UIDVALIDITY},
    {"UNSEEN", IMAP_STATUS_UNSEEN},
    {"DELETED-STORAGE", IMAP_STATUS_DELETED_STORAGE},
};

#define IMAP_NSTATUS (sizeof(imap_status_items) / sizeof(*imap_status_items))

/* "(MESSAGES UNSEEN)" into *items. */
static int
imap_status_items_parse(struct imap_cur *c, unsigned *items)
{
	char word[32];
	*items = 0;
	if (!imap_peek_char(c, '('))
		return imap_cur_fail(c, "expected a list of status items");
	do {
		if (imap_atom(c, word, sizeof(word)) < 0)
			return -1;
		size_t k = 0;
		while (k < IMAP_NSTATUS &&
		       strcasecmp(word, imap_status_items[k].name) != 0)
			k++;
		if (k == IMAP_NSTATUS)
			return imap_cur_fail(c, "unknown status item");
		*items |= imap_status_items[k].bit;
	} while (imap_sp(c) == 0);
	if (!imap_peek_char(c, ')'))
		return imap_cur_fail(c, "expected ')'");
	return 0;
}

/* LIST's "RETURN (CHILDREN STATUS (MESSAGES))" after its space. */
static int
imap_list_return(struct imap_cur *c, unsigned *status)
{
	char word[32];
	if (imap_atom(c, word, sizeof(word)) < 0 ||
	    strcasecmp(word, "RETURN") != 0 || imap_sp(c) < 0 ||
	    !imap_peek_char(c, '('))
		return imap_cur_fail(c, "expected RETURN (options)");
	if (imap_peek_char(c, ')'))
		return 0;
	do {
		if (imap_atom(c, word, sizeof(word)) < 0)
			return -1;
		if (strcasecmp(word, "STATUS") == 0) {
			if (imap_sp(c) < 0 ||
			    imap_status_items_parse(c, status) < 0)
				return -1;
		} else if (strcasecmp(word, "CHILDREN") != 0 &&
			   strcasecmp(word, "SPECIAL-USE") != 0) {
			return imap_cur_fail(c, "unknown LIST return option");
		}
	} while (imap_sp(c) == 0);
	if (!imap_peek_char(c, ')'))
		return imap_cur_fail(c, "expected ')'");
	return 0;
}

int
imap_args_list(struct imap_cur *c, bool extended, struct imap_args_list *a)
{
	a->status = 0;
	if (imap_astring(c, a->ref, sizeof(a->ref), NULL) < 0 ||
	    imap_sp(c) < 0 ||
	    imap_list_mailbox(c, a->pattern, sizeof(a->pattern)) < 0)
		return -1;
	if (extended && !imap_at_end(c) &&
	    (imap_sp(c) < 0 || imap_list_return(c, &a->status) < 0))
		return -1;
	return imap_end(c);
}

int
imap_args_status(struct imap_cur *c, struct imap_args_status *a)
{
	if (imap_astring(c, a->mailbox, sizeof(a->mailbox), NULL) < 0 ||
	    imap_sp(c) < 0 || imap_status_items_parse(c, &a->items) < 0)
		return -1;
	return imap_end(c);
}

int
imap_args_append(struct imap_cur *c, struct imap_args_append *a)
{
	a->flags = 0;
	a->kw.n = 0;
	a->when = 0;
	if (imap_astring(c, a->mailbox, sizeof(a->mailbox), NULL) < 0 ||
	    imap_sp(c) < 0)
		return -1;
	if (c->p < c->end && *c->p == '(' &&
	    (imap_flag_list(c, false, &a->flags, &a->kw) < 0 || imap_sp(c) < 0))
		return -1;
	if (c->p < c->end && *c->p == '"' &&
	    (imap_date_time(c, &a->when) < 0 || imap_sp(c) < 0))
		return -1;
	imap_peek_char(c, '~'); /* literal8 (BINARY, RFC 3516) */
	if (imap_literal(c, &a->msg, &a->len) < 0)
		return -1;
	return imap_end(c);
}

/* "+FLAGS.SILENT" and the like. */
static int
imap_store_op_parse(struct imap_cur *c, enum imap_store_op *op, bool *silent)
{
	char word[32];
	if (imap_atom(c, word, sizeof(word)) < 0)
		return -1;
	const char *p = word;
	*op = IMAP_STORE_SET;
	if (*p == '+' || *p == '-')
		*op = *p++ == '+' ? IMAP_STORE_ADD : IMAP_STORE_REMOVE;
	if (strcasecmp(p, "FLAGS") == 0)
		*silent = false;
	else if (strcasecmp(p, "FLAGS.SILENT") == 0)
		*silent = true;
	else
		return imap_cur_fail(c, "expected FLAGS, +FLAGS or -FLAGS");
	return 0;
}

int
imap_args_store(struct imap_cur *c, struct imap_args_store *a)
{
	if (imap_seqset(c, &a->set) < 0 || imap_sp(c) < 0 ||
	    imap_store_op_parse(c, &a->op, &a->silent) < 0 || imap_sp(c) < 0 ||
	    imap_flag_list(c, true, &a->flags, &a->kw) < 0)
		return -1;
	return imap_end(c);
}

int
imap_args_copy(struct imap_cur *c, struct imap_args_copy *a)
{
	if (imap_seqset(c, &a->set) < 0 || imap_sp(c) < 0 ||
	    imap_astring(c, a->mailbox, sizeof(a->mailbox), NULL) < 0)
		return -1;
	return imap_end(c);
}

int
imap_args_fetch(struct imap_cur *c, struct imap_args_fetch *a)
{
	memset(&a->f, 0, sizeof(a->f));
	if (imap_seqset(c, &a->set) < 0 || imap_sp(c) < 0 ||
	    imap_fetch_parse(c, &a->f) < 0)
		return -1;
	return imap_end(c);
}

int
imap_args_search_return(struct imap_cur *c, unsigned *ret)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {{"MIN", IMAP_ESEARCH_MIN},
		    {"MAX", IMAP_ESEARCH_MAX},
		    {"COUNT", IMAP_ESEARCH_COUNT},
		    {"ALL", IMAP_ESEARCH_ALL}};
	char word[16];
	*ret = 0;
	if (c->end - c->p < 7 || strncasecmp(c->p, "RETURN ", 7) != 0)
		return 0;
	c->p += 7;
	if (!imap_peek_char(c, '('))
		return imap_cur_fail(c, "expected RETURN (options)");
	while (!imap_peek_char(c, ')')) {
		if ((*ret != 0 && imap_sp(c) < 0) ||
		    imap_atom(c, word, sizeof(word)) < 0)
			return imap_cur_fail(c, "bad RETURN option");
		size_t k = 0;
		while (k < sizeof(opts) / sizeof(*opts) &&
		       strcasecmp(word, opts[k].name) != 0)
			k++;
		if (k == sizeof(opts) / sizeof(*opts))
			return imap_cur_fail(c, "unknown RETURN option %s",
					     word);
		*ret |= opts[k].bit;
	}
	if (*ret == 0)
		*ret = IMAP_ESEARCH_ALL; /* RETURN () is ALL (RFC 4731 3.1) */
	*ret |= IMAP_ESEARCH;
	return imap_sp(c);
}

int
imap_args_expunge(struct imap_cur *c, bool uid, struct imap_seqset *set,
		  bool *has_set)
{
	*has_set = uid;
	if (uid && imap_seqset(c, set) < 0)
		return -1;
	return imap_end(c);
}
