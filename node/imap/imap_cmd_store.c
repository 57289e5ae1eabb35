/* STORE and UID STORE (RFC 3501 6.4.6): FLAGS, +FLAGS, -FLAGS and their
 * .SILENT forms, with CONDSTORE's (UNCHANGEDSINCE n) (RFC 7162 3.1.3):
 * the whole STORE runs under the mailbox's flock and is logged as one
 * mod-sequence (imap_condstore.h); a change of keywords is a change of
 * flags there too. Flags and keywords live in the Maildir file names (the
 * keywords' letters named in the mailbox's dovecot-keywords), so every
 * node sees them. +FLAGS, -FLAGS and FLAGS change the flags as they are on
 * the store at that moment, so that two sessions (on any nodes) changing
 * different flags of one message both hold. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../common/log.h"
#include "imap.h"

/* The flags a STORE may change: all but \Recent. */
#define IMAP_STORE_FLAGS                                                       \
	(IMAP_F_SEEN | IMAP_F_ANSWERED | IMAP_F_FLAGGED | IMAP_F_DELETED |     \
	 IMAP_F_DRAFT | IMAP_F_KEYWORDS)

/* What each message's answer tells: nothing, its flags, or (a .SILENT
 * change under CONDSTORE, RFC 7162 3.1.3) its new mod-sequence alone. */
enum imap_store_tell { TELL_NONE, TELL_FLAGS, TELL_MODSEQ };

/* The untagged FETCH answers, once the change is logged (so that the
 * mod-sequences told are the new ones). */
static void
imap_store_tell(struct imap_session *s, const struct imap_cmd *c,
		const enum imap_store_tell *tell)
{
	struct imap_mailbox *b = &s->box;
	struct strbuf sb;
	strbuf_init(&sb, 256);
	for (size_t i = 0; i < b->n; i++) {
		char modseq[40], uid[24] = "";
		if (tell[i] == TELL_NONE)
			continue;
		if (c->uid)
			snprintf(uid, sizeof(uid), "UID %u ", b->msg[i].uid);
		if (tell[i] == TELL_MODSEQ) {
			imap_untagged(s, "%zu FETCH (%s%s)", i + 1, uid,
				      imap_modseq_item(s, i, modseq) + 1);
			continue;
		}
		strbuf_reset(&sb);
		imap_flags_tell(b, b->msg[i].flags, &sb);
		imap_untagged(s, "%zu FETCH (%sFLAGS (%s)%s)", i + 1, uid,
			      strbuf_str(&sb), imap_modseq_item(s, i, modseq));
	}
	strbuf_free(&sb);
}

void
imap_cmd_store(struct imap_session *s, struct imap_cmd *c)
{
	struct imap_args_store a;
	struct imap_mailbox *b = &s->box;

	if (imap_args_store(&c->cur, &a) < 0) {
		imap_bad(s, c, "%s",
			 c->cur.err[0] ? c->cur.err : "Invalid STORE");
		return;
	}
	const enum imap_store_op op = a.op;
	const bool silent = a.silent;
	unsigned kw;
	if (b->readonly) {
		imap_no(s, c, "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (imap_keywords_bits(s, b->dir, &a.kw, op != IMAP_STORE_REMOVE, &kw) <
	    0) {
		if (errno == ENOSPC)
			imap_no(s, c, "[LIMIT] Too many keywords in %s",
				b->name);
		else
			imap_no(s, c, "[SERVERBUG] Cannot store keywords");
		return;
	}
	const unsigned mask = a.flags | kw;
	/* What changes, applied to the flags as they are on the store (not
	 * as this session last saw them); FLAGS replaces the flags and
	 * keywords and keeps what IMAP does not show. */
	unsigned add = op == IMAP_STORE_REMOVE ? 0 : mask;
	unsigned del = op == IMAP_STORE_SET
			   ? (IMAP_STORE_FLAGS & ~IMAP_F_KEYWORDS & ~mask) |
				 (imap_keywords_named(b) & ~mask)
		       : op == IMAP_STORE_REMOVE ? mask
						 : 0;
	size_t failed = 0, expunged = 0, changed = 0;
	enum imap_store_tell *tell = calloc(b->n + 1, sizeof(*tell));
	struct strbuf mod;
	struct imap_uidlist modified = {.sb = &mod};
	strbuf_init(&mod, 1 << 20);
	if (tell == NULL) {
		imap_no(s, c, "[SERVERBUG] Out of memory");
		goto out;
	}
	if (a.mods.unchangedsince)
		imap_condstore_enable(s, false);
	imap_modseq_begin(s); /* the flock: UNCHANGEDSINCE holds */
	for (size_t i = 0; i < b->n; i++) {
		struct imap_msg *m = &b->msg[i];
		if (!imap_mailbox_in_set(b, i, &a.set, c->uid))
			continue;
		if (m->gone) { /* as FETCH tells it (imap_cmd_fetch.c) */
			if (!c->uid)
				expunged++;
			continue;
		}
		if (a.mods.unchangedsince &&
		    imap_modseq_of(s, i) > a.mods.since) {
			imap_uidlist_add(&modified,
					 c->uid ? m->uid : (uint32_t)(i + 1));
			continue;
		}
		unsigned expect = ((m->flags | add) & ~del) & IMAP_STORE_FLAGS;
		bool renamed;
		if (imap_mailbox_change_flags(s, i, add, del, &renamed) < 0) {
			if (errno == ENOENT) {
				expunged++;
				continue;
			}
			log_err("imap %s: flags of %s/%s: %s", s->id, b->dir,
				imap_msg_name(b, i), strerror(errno));
			failed++;
			continue;
		}
		if (renamed)
			changed++;
		/* .SILENT still tells what another session changed too */
		if (!silent || (m->flags & IMAP_STORE_FLAGS) != expect)
			tell[i] = TELL_FLAGS;
		else if (renamed && s->modseq.condstore)
			tell[i] = TELL_MODSEQ;
	}
	imap_modseq_commit(s, 'F');
	imap_store_tell(s, c, tell);
	if (changed)
		notice_changed(s->mn->store.notice, s->user, b->name);
	imap_uidlist_flush(&modified);
	if (failed)
		imap_no(s, c, "Some messages could not be changed");
	else if (expunged)
		imap_no(s, c, "%s", IMAP_EXPUNGEISSUED);
	else if (modified.n)
		imap_ok(s, c, "[MODIFIED %.3900s] Conditional STORE failed",
			strbuf_str(&mod));
	else
		imap_ok(s, c, "STORE completed");
out:
	free(tell);
	strbuf_free(&mod);
}
