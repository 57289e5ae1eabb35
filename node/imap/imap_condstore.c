/* CONDSTORE and QRESYNC (RFC 7162) in the session: see
 * imap_condstore.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "imap.h"

/* ---- the selected mailbox's log ---- */

/* Reads the log (all of it when keep_uids just turned on). */
static void
imap_modseq_read(struct imap_session *s)
{
	if (maildir_modseq_read(s->box.dir, &s->modseq.log) < 0)
		log_warn("imap %s: %s/%s: %s", s->id, s->box.dir,
			 MAILDIR_MODSEQ_FILE, strerror(errno));
}

void
imap_condstore_enable(struct imap_session *s, bool qresync)
{
	struct imap_modseq *ms = &s->modseq;
	ms->condstore = true;
	if (qresync)
		ms->qresync = true;
	if (s->state != IMAP_SELECTED || ms->log.keep_uids)
		return;
	/* read again, keeping every UID; the next sync scans again so that
	 * no record is ahead of the listing */
	maildir_modseq_free(&ms->log);
	ms->log.keep_uids = true;
	imap_modseq_read(s);
	s->box.changed = true;
}

void
imap_modseq_open(struct imap_session *s)
{
	maildir_modseq_free(&s->modseq.log);
	s->modseq.log.keep_uids = s->modseq.condstore;
	imap_modseq_read(s);
}

void
imap_modseq_close(struct imap_session *s)
{
	imap_modseq_flush(s);
	maildir_modseq_free(&s->modseq.log);
	free(s->modseq.later);
	s->modseq.later = NULL;
	s->modseq.nlater = s->modseq.caplater = 0;
}

bool
imap_modseq_refresh(struct imap_session *s)
{
	uint64_t k = s->modseq.log.k;
	if (!s->modseq.condstore)
		return false;
	imap_modseq_read(s);
	return s->modseq.log.k != k;
}

uint64_t
imap_modseq_highest(const struct imap_session *s)
{
	return maildir_modseq_highest(&s->modseq.log, s->box.uidnext);
}

uint64_t
imap_modseq_of(const struct imap_session *s, size_t i)
{
	return maildir_modseq_of(&s->modseq.log, s->box.msg[i].uid);
}

const char *
imap_modseq_item(const struct imap_session *s, size_t i, char buf[40])
{
	if (!s->modseq.condstore)
		return "";
	snprintf(buf, 40, " MODSEQ (%" PRIu64 ")", imap_modseq_of(s, i));
	return buf;
}

uint64_t
imap_modseq_records(const char *dir)
{
	struct maildir_modseq ms = {0};
	uint64_t k = maildir_modseq_read(dir, &ms) == 0 ? ms.k : 0;
	maildir_modseq_free(&ms);
	return k;
}

/* ---- changes ---- */

int
imap_modseq_begin(struct imap_session *s)
{
	struct maildir_modseq_tx *tx = malloc(sizeof(*tx));
	if (tx == NULL ||
	    maildir_modseq_begin(s->box.dir, &s->modseq.log, tx) < 0) {
		log_err("imap %s: %s: changes not logged: %s", s->id,
			s->box.dir, strerror(errno));
		free(tx);
		return -1;
	}
	s->modseq.tx = tx;
	return 0;
}

void
imap_modseq_commit(struct imap_session *s, char op)
{
	struct maildir_modseq_tx *tx = s->modseq.tx;
	if (tx == NULL)
		return;
	maildir_modseq_commit(tx, op);
	free(tx);
	s->modseq.tx = NULL;
	/* our own record, and maybe others' whose renames the listing has
	 * not seen yet: the next sync lists cur/ again, so that no message
	 * shows a mod-sequence newer than its flags for longer than this
	 * command */
	imap_modseq_read(s);
	s->box.changed = true;
}

void
imap_modseq_changed(struct imap_session *s, uint32_t uid, char op)
{
	struct imap_modseq *ms = &s->modseq;
	if (ms->tx != NULL) {
		maildir_modseq_note(ms->tx, uid);
		return;
	}
	if (op == 'F' && ms->nlater == ms->caplater) {
		size_t cap = ms->caplater ? ms->caplater * 2 : 64;
		uint32_t *p = realloc(ms->later, cap * sizeof(*p));
		if (p != NULL) {
			ms->later = p;
			ms->caplater = cap;
		}
	}
	if (op == 'F' && ms->nlater < ms->caplater) {
		ms->later[ms->nlater++] = uid;
		return;
	}
	if (imap_modseq_begin(s) < 0)
		return;
	maildir_modseq_note(ms->tx, uid);
	imap_modseq_commit(s, op);
}

void
imap_modseq_flush(struct imap_session *s)
{
	struct imap_modseq *ms = &s->modseq;
	if (ms->nlater == 0 || ms->tx != NULL)
		return;
	if (imap_modseq_begin(s) == 0) {
		for (size_t i = 0; i < ms->nlater; i++)
			maildir_modseq_note(ms->tx, ms->later[i]);
		imap_modseq_commit(s, 'F');
	}
	ms->nlater = 0;
}

/* ---- UID sets as answers ---- */

void
imap_uidlist_flush(struct imap_uidlist *u)
{
	if (!u->open)
		return;
	strbuf_appendf(u->sb, u->n ? ",%u" : "%u", u->lo);
	if (u->hi != u->lo)
		strbuf_appendf(u->sb, ":%u", u->hi);
	u->n++;
	u->open = false;
}

/* lo:hi, joined to the open range when it follows on. */
static void
imap_uidlist_range(struct imap_uidlist *u, uint32_t lo, uint32_t hi)
{
	if (u->open && lo >= u->lo && lo <= (uint64_t)u->hi + 1) {
		if (hi > u->hi)
			u->hi = hi;
		return;
	}
	imap_uidlist_flush(u);
	u->lo = lo;
	u->hi = hi;
	u->open = true;
}

void
imap_uidlist_add(void *arg, uint32_t uid)
{
	imap_uidlist_range(arg, uid, uid);
}

/* The UIDs lo..hi that are in known (NULL: all), max resolving '*'. */
static void
imap_uidlist_known(struct imap_uidlist *u, const struct imap_seqset *known,
		   uint32_t max, uint32_t lo, uint32_t hi)
{
	if (known == NULL) {
		imap_uidlist_range(u, lo, hi);
		return;
	}
	for (size_t k = 0; k < known->n; k++) {
		uint32_t a = known->r[k].lo == IMAP_STAR ? max : known->r[k].lo;
		uint32_t b = known->r[k].hi == IMAP_STAR ? max : known->r[k].hi;
		if (a > b) {
			uint32_t t = a;
			a = b;
			b = t;
		}
		if (a < lo)
			a = lo;
		if (b > hi)
			b = hi;
		if (a <= b)
			imap_uidlist_range(u, a, b);
	}
}

/* "* what uids" when the list has any; returns whether it had. */
static bool
imap_uidlist_send(struct imap_session *s, struct imap_uidlist *u,
		  const char *what)
{
	imap_uidlist_flush(u);
	if (u->n == 0)
		return false;
	imap_write(s, "* ", 2);
	imap_write(s, what, strlen(what));
	imap_write(s, " ", 1);
	imap_write(s, u->sb->buf, u->sb->len);
	imap_write(s, "\r\n", 2);
	return true;
}

/* Gathers UIDs of the known set (NULL: any) not in the mailbox. */
struct imap_vanished {
	struct imap_session *s;
	const struct imap_seqset *known;
	struct imap_uidlist list;
};

static void
imap_vanished_add(void *arg, uint32_t uid)
{
	struct imap_vanished *v = arg;
	if (v->known && !imap_seqset_has(v->known, uid, v->s->box.uidnext - 1))
		return;
	long i = imap_mailbox_find_uid(&v->s->box, uid);
	if (i >= 0 && !v->s->box.msg[i].gone)
		return; /* there after all */
	imap_uidlist_add(&v->list, uid);
}

/* "* VANISHED (EARLIER) uids": the UIDs of known (NULL: 1:UIDNEXT-1)
 * expunged after since; when the log forgot that far back, every UID of
 * known not in the mailbox (RFC 7162 3.2.5.1 lets the client ignore
 * those it never had). */
static void
imap_vanished_earlier(struct imap_session *s, const struct imap_seqset *known,
		      uint64_t since)
{
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	struct imap_vanished v = {.s = s, .known = known, .list = {.sb = &sb}};
	if (!maildir_modseq_vanished(&s->modseq.log, since, imap_vanished_add,
				     &v)) {
		/* forgotten: every UID below UIDNEXT that is not here */
		uint64_t next = 1;
		for (size_t i = 0; i <= s->box.n; i++) {
			uint64_t upto =
			    i < s->box.n ? s->box.msg[i].uid : s->box.uidnext;
			if (i < s->box.n && s->box.msg[i].gone)
				continue;
			if (upto > next)
				imap_uidlist_known(
				    &v.list, known, s->box.uidnext - 1,
				    (uint32_t)next, (uint32_t)(upto - 1));
			next = upto + 1;
		}
	}
	imap_uidlist_send(s, &v.list, "VANISHED (EARLIER)");
	strbuf_free(&sb);
}

void
imap_qresync_fetch_vanished(struct imap_session *s,
			    const struct imap_seqset *set, uint64_t since)
{
	imap_vanished_earlier(s, set, since);
}

bool
imap_qresync_tell_gone(struct imap_session *s)
{
	struct strbuf sb;
	struct imap_uidlist u = {.sb = &sb};
	strbuf_init(&sb, 1 << 20);
	for (size_t i = 0; i < s->box.n; i++)
		if (s->box.msg[i].gone)
			imap_uidlist_add(&u, s->box.msg[i].uid);
	bool any = imap_uidlist_send(s, &u, "VANISHED");
	strbuf_free(&sb);
	return any;
}

/* ---- SELECT ---- */

void
imap_condstore_selected(struct imap_session *s,
			const struct imap_args_select *a)
{
	struct imap_mailbox *b = &s->box;
	imap_untagged(s, "OK [HIGHESTMODSEQ %" PRIu64 "] Highest",
		      imap_modseq_highest(s));
	if (!a->qresync || a->uidvalidity != b->uidvalidity)
		return;
	imap_vanished_earlier(s, a->has_known ? &a->known : NULL, a->modseq);
	struct strbuf flags;
	strbuf_init(&flags, 256);
	uint32_t max = b->n ? b->msg[b->n - 1].uid : 0;
	for (size_t i = 0; i < b->n; i++) {
		if (b->msg[i].gone || imap_modseq_of(s, i) <= a->modseq)
			continue;
		if (a->has_known &&
		    !imap_seqset_has(&a->known, b->msg[i].uid, max))
			continue;
		strbuf_reset(&flags);
		imap_flags_tell(b, b->msg[i].flags, &flags);
		imap_untagged(
		    s, "%zu FETCH (UID %u FLAGS (%s) MODSEQ (%" PRIu64 "))",
		    i + 1, b->msg[i].uid, strbuf_str(&flags),
		    imap_modseq_of(s, i));
	}
	strbuf_free(&flags);
}
