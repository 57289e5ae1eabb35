/* STORE and UID STORE (RFC 3501 6.4.6): FLAGS, +FLAGS, -FLAGS and their
 * .SILENT forms. Flags and keywords live in the Maildir file names (the
 * keywords' letters named in the mailbox's dovecot-keywords), so every
 * node sees them. +FLAGS, -FLAGS and FLAGS change the
 * flags as they are on the store at that moment, so that two sessions
 * (on any nodes) changing different flags of one message both hold. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../../common/log.h"
#include "imap.h"

/* The flags a STORE may change: all but \Recent. */
#define IMAP_STORE_FLAGS                                                       \
	(IMAP_F_SEEN | IMAP_F_ANSWERED | IMAP_F_FLAGGED | IMAP_F_DELETED |     \
	 IMAP_F_DRAFT | IMAP_F_KEYWORDS)

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
	struct strbuf sb;
	strbuf_init(&sb, 256);
	for (size_t i = 0; i < b->n; i++) {
		struct imap_msg *m = &b->msg[i];
		if (!imap_mailbox_in_set(b, i, &a.set, c->uid))
			continue;
		if (m->gone) { /* as FETCH tells it (imap_cmd_fetch.c) */
			if (!c->uid)
				expunged++;
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
		if (silent && (m->flags & IMAP_STORE_FLAGS) == expect)
			continue;
		strbuf_reset(&sb);
		imap_flags_tell(b, m->flags, &sb);
		if (c->uid)
			imap_untagged(s, "%zu FETCH (UID %u FLAGS (%s))", i + 1,
				      m->uid, strbuf_str(&sb));
		else
			imap_untagged(s, "%zu FETCH (FLAGS (%s))", i + 1,
				      strbuf_str(&sb));
	}
	strbuf_free(&sb);
	if (changed)
		notice_changed(s->mn->store.notice, s->user, b->name);
	if (failed)
		imap_no(s, c, "Some messages could not be changed");
	else if (expunged)
		imap_no(s, c, "%s", IMAP_EXPUNGEISSUED);
	else
		imap_ok(s, c, "STORE completed");
}
