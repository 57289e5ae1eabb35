/* The arguments CONDSTORE and QRESYNC (RFC 7162) add: SELECT's
 * parameters, FETCH's and STORE's modifiers (imap_condstore.h). Like
 * imap_args.c, nothing here touches a session. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "imap_condstore.h"

#define IMAP_MODSEQ_MAX 9223372036854775807ull /* 2^63-1 (RFC 7162 7) */

int
imap_modseq_number(struct imap_cur *c, bool zero_ok, uint64_t *v)
{
	uint64_t x = 0;
	const char *start = c->p;
	while (c->p < c->end && isdigit((unsigned char)*c->p)) {
		x = x * 10 + (uint64_t)(*c->p++ - '0');
		if (x > IMAP_MODSEQ_MAX)
			return imap_cur_fail(c, "mod-sequence too large");
	}
	if (c->p == start || (x == 0 && !zero_ok))
		return imap_cur_fail(c, "expected a mod-sequence");
	*v = x;
	return 0;
}

/* A word (letters) of a modifier list into out. */
static int
imap_modifier_name(struct imap_cur *c, char *out, size_t outlen)
{
	return imap_atom(c, out, outlen);
}

/* seq-match-data "(seqs uids)": read, not used. */
static int
imap_seq_match(struct imap_cur *c)
{
	struct imap_seqset ignored;
	if (!imap_peek_char(c, '(') || imap_seqset(c, &ignored) < 0 ||
	    imap_sp(c) < 0 || imap_seqset(c, &ignored) < 0 ||
	    !imap_peek_char(c, ')'))
		return imap_cur_fail(c, "bad sequence match data");
	return 0;
}

/* "(uidvalidity modseq [known-uids] [seq-match-data])", after
 * "QRESYNC ". */
static int
imap_qresync_params(struct imap_cur *c, struct imap_args_select *a)
{
	if (!imap_peek_char(c, '(') || imap_nz_number(c, &a->uidvalidity) < 0 ||
	    imap_sp(c) < 0 || imap_modseq_number(c, false, &a->modseq) < 0)
		return imap_cur_fail(c, "QRESYNC needs (uidvalidity modseq)");
	if (imap_peek_char(c, ' ')) {
		if (c->p < c->end && *c->p != '(') {
			if (imap_seqset(c, &a->known) < 0)
				return -1;
			a->has_known = true;
			if (imap_peek_char(c, ' ') && imap_seq_match(c) < 0)
				return -1;
		} else if (imap_seq_match(c) < 0)
			return -1;
	}
	if (!imap_peek_char(c, ')'))
		return imap_cur_fail(c, "expected ')' after QRESYNC");
	a->qresync = true;
	return 0;
}

int
imap_args_select(struct imap_cur *c, char *name, size_t namelen,
		 struct imap_args_select *a)
{
	char word[32];
	memset(a, 0, sizeof(*a));
	if (imap_astring(c, name, namelen, NULL) < 0)
		return -1;
	if (imap_at_end(c))
		return 0;
	if (imap_sp(c) < 0 || !imap_peek_char(c, '('))
		return imap_cur_fail(c, "expected SELECT parameters");
	do {
		if (imap_modifier_name(c, word, sizeof(word)) < 0)
			return -1;
		if (strcasecmp(word, "CONDSTORE") == 0)
			a->condstore = true;
		else if (strcasecmp(word, "QRESYNC") == 0) {
			if (imap_sp(c) < 0 || imap_qresync_params(c, a) < 0)
				return -1;
		} else
			return imap_cur_fail(c, "unknown SELECT parameter");
	} while (imap_peek_char(c, ' '));
	if (!imap_peek_char(c, ')'))
		return imap_cur_fail(c, "expected ')'");
	return imap_end(c);
}

int
imap_args_fetch_mods(struct imap_cur *c, struct imap_fetch_mods *m)
{
	char word[32];
	memset(m, 0, sizeof(*m));
	if (!imap_peek_char(c, '('))
		return imap_cur_fail(c, "expected FETCH modifiers");
	do {
		if (imap_modifier_name(c, word, sizeof(word)) < 0)
			return -1;
		if (strcasecmp(word, "CHANGEDSINCE") == 0) {
			if (imap_sp(c) < 0 ||
			    imap_modseq_number(c, false, &m->since) < 0)
				return -1;
			m->changedsince = true;
		} else if (strcasecmp(word, "VANISHED") == 0)
			m->vanished = true;
		else
			return imap_cur_fail(c, "unknown FETCH modifier");
	} while (imap_peek_char(c, ' '));
	if (!imap_peek_char(c, ')'))
		return imap_cur_fail(c, "expected ')'");
	if (m->vanished && !m->changedsince)
		return imap_cur_fail(c, "VANISHED needs CHANGEDSINCE");
	return 0;
}

int
imap_args_store_mods(struct imap_cur *c, struct imap_store_mods *m)
{
	char word[32];
	memset(m, 0, sizeof(*m));
	if (!imap_peek_char(c, '('))
		return 0;
	if (imap_modifier_name(c, word, sizeof(word)) < 0)
		return -1;
	if (strcasecmp(word, "UNCHANGEDSINCE") != 0)
		return imap_cur_fail(c, "unknown STORE modifier");
	if (imap_sp(c) < 0 || imap_modseq_number(c, true, &m->since) < 0 ||
	    !imap_peek_char(c, ')') || imap_sp(c) < 0)
		return imap_cur_fail(c, "bad UNCHANGEDSINCE");
	m->unchangedsince = true;
	return 0;
}
