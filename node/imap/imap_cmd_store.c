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

enum imap_store_op { STORE_SET, STORE_ADD, STORE_REMOVE };

static int
imap_store_parse_op(struct imap_cur *cur, enum imap_store_op *op, bool *silent)
{
	char word[32];
	if (imap_atom(cur, word, sizeof(word)) < 0)
		return -1;
	const char *p = word;
	*op = STORE_SET;
	if (*p == '+' || *p == '-')
		*op = *p++ == '+' ? STORE_ADD : STORE_REMOVE;
	if (strcasecmp(p, "FLAGS") == 0)
		*silent = false;
	else if (strcasecmp(p, "FLAGS.SILENT") == 0)
		*silent = true;
	else
		return -1;
	return 0;
}

void
imap_cmd_store(struct imap_session *s, struct imap_cmd *c)
{
	struct imap_seqset set;
	enum imap_store_op op;
	bool silent;
	unsigned mask, keywords;
	struct imap_mailbox *b = &s->box;

	if (imap_seqset(&c->cur, &set) < 0 || imap_sp(&c->cur) < 0 ||
	    imap_store_parse_op(&c->cur, &op, &silent) < 0 ||
	    imap_sp(&c->cur) < 0 ||
	    imap_flag_list(&c->cur, true, &mask, &keywords) < 0 ||
	    imap_end(&c->cur) < 0) {
		imap_bad(s, c, "%s",
			 c->cur.err[0] ? c->cur.err : "Invalid STORE");
		return;
	}
	if (b->readonly) {
		imap_no(s, c, "[READ-ONLY] Mailbox is read-only");
		return;
	}
	size_t failed = 0, changed = 0;
	struct strbuf sb;
	strbuf_init(&sb, 256);
	for (size_t i = 0; i < b->n; i++) {
		struct imap_msg *m = &b->msg[i];
		if (m->gone || !imap_mailbox_in_set(b, i, &set, c->uid))
			continue;
		unsigned now = m->flags & ~(unsigned)IMAP_F_RECENT;
		unsigned want = op == STORE_SET	  ? mask
				: op == STORE_ADD ? now | mask
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
		if (silent)
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
		notice_changed(s->mn->store.notice, s->user, b->name);
	if (failed)
		imap_no(s, c,
			"Some messages could not be changed "
			"(expunged meanwhile?)");
	else
		imap_ok(s, c, "STORE completed");
}
