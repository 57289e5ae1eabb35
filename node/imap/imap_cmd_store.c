/* STORE and UID STORE (RFC 3501 6.4.6): FLAGS, +FLAGS, -FLAGS and their
 * .SILENT forms. Flags live in the Maildir file names, so every node sees
 * them; keywords are not kept (PERMANENTFLAGS does not offer \*), and a
 * STORE of keywords alone changes nothing. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../../common/log.h"
#include "imap.h"

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
	const unsigned mask = a.flags;
	if (b->readonly) {
		imap_no(s, c, "[READ-ONLY] Mailbox is read-only");
		return;
	}
	size_t failed = 0, changed = 0;
	struct strbuf sb;
	strbuf_init(&sb, 256);
	for (size_t i = 0; i < b->n; i++) {
		struct imap_msg *m = &b->msg[i];
		if (m->gone || !imap_mailbox_in_set(b, i, &a.set, c->uid))
			continue;
		unsigned now = m->flags & ~(unsigned)IMAP_F_RECENT;
		unsigned want = op == IMAP_STORE_SET   ? mask
				: op == IMAP_STORE_ADD ? now | mask
						       : now & ~mask;
		if (want != now) {
			if (imap_mailbox_set_flags(s, i, want) < 0) {
				if (errno != ENOENT)
					log_err("imap %s: flags of %s/%s: %s",
						s->id, b->dir,
						imap_msg_name(b, i),
						strerror(errno));
				failed++;
				continue;
			}
			changed++;
		}
		if (a.silent)
			continue;
		strbuf_reset(&sb);
		imap_flags_format(m->flags, &sb);
		if (c->uid)
			imap_untagged(s, "%zu FETCH (UID %u FLAGS (%s))", i + 1,
				      m->uid, strbuf_str(&sb));
		else
			imap_untagged(s, "%zu FETCH (FLAGS (%s))", i + 1,
				      strbuf_str(&sb));
	}
	strbuf_free(&sb);
	if (changed)
		imap_announce(s->mn, s->user, b->name);
	if (failed)
		imap_no(s, c,
			"Some messages could not be changed "
			"(expunged meanwhile?)");
	else
		imap_ok(s, c, "STORE completed");
}
