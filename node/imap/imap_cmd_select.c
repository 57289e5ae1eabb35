/* The selected state's coming and going: SELECT and EXAMINE (RFC 3501
 * 6.3.1-2), CHECK, CLOSE, UNSELECT (RFC 3691), EXPUNGE and UID EXPUNGE
 * (RFC 4315). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../../common/log.h"
#include "imap.h"

void
imap_cmd_select(struct imap_session *s, struct imap_cmd *c)
{
	char name[IMAP_ARG_MBOX];
	bool readonly = strcmp(c->name, "EXAMINE") == 0;
	if (imap_args_mailbox(&c->cur, false, name) < 0) {
		imap_bad(s, c, "%s needs a mailbox name", c->name);
		return;
	}
	/* A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1). */
	if (s->state == IMAP_SELECTED) {
		imap_mailbox_close(s);
		s->state = IMAP_AUTH;
		imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
	}
	if (imap_mailbox_open(s, name, readonly) < 0) {
		if (errno == ENOENT || errno == EINVAL)
			imap_no(s, c, "[NONEXISTENT] No such mailbox");
		else {
			log_err("imap %s: open %s of %s: %s", s->id, name,
				s->user, strerror(errno));
			imap_no(s, c,
				"[UNAVAILABLE] Cannot open the mailbox "
				"now");
		}
		return;
	}
	struct imap_mailbox *b = &s->box;
	if (b->pending > 0) {
		struct maildir_counter *ctr =
		    imap_uid_need(s, b->name, b->pending);
		if (ctr == NULL)
			return; /* runs again under the mailbox's lease */
		imap_mailbox_assign(s, ctr, false);
	}
	s->state = IMAP_SELECTED;
	imap_keywords_announce(s);
	imap_untagged(s, "%zu EXISTS", b->n);
	imap_untagged(s, "%zu RECENT", b->recent);
	for (size_t i = 0; i < b->n; i++)
		if (!(b->msg[i].flags & IMAP_F_SEEN)) {
			imap_untagged(s, "OK [UNSEEN %zu] First unseen", i + 1);
			break;
		}
	imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", b->uidvalidity);
	imap_untagged(s, "OK [UIDNEXT %u] Predicted next UID", b->uidnext);
	imap_ok(s, c, "[%s] %s completed",
		readonly ? "READ-ONLY" : "READ-WRITE", c->name);
}

void
imap_cmd_check(struct imap_session *s, struct imap_cmd *c)
{
	if (!imap_at_end(&c->cur)) {
		imap_bad(s, c, "CHECK takes no arguments");
		return;
	}
	imap_mailbox_sync(s, true, true);
	imap_ok(s, c, "CHECK completed");
}

/* Removes the \Deleted messages (those in set too when set is given).
 * Each goes as the next sync tells it. Returns how many could not be
 * removed. */
static size_t
imap_expunge_deleted(struct imap_session *s, const struct imap_seqset *set)
{
	struct imap_mailbox *b = &s->box;
	size_t failed = 0, removed = 0;
	for (size_t i = 0; i < b->n; i++) {
		struct imap_msg *m = &b->msg[i];
		if (m->gone || !(m->flags & IMAP_F_DELETED))
			continue;
		if (set && !imap_mailbox_in_set(b, i, set, true))
			continue;
		struct maildir_msg mm;
		imap_msg_get(b, i, &mm);
		if (maildir_expunge(b->dir, &mm) < 0) {
			log_err("imap %s: expunge %s/%s: %s", s->id, b->dir,
				mm.name, strerror(errno));
			failed++;
			continue;
		}
		m->gone = true;
		removed++;
	}
	if (removed)
		notice_changed(s->mn->store.notice, s->user, b->name);
	return failed;
}

void
imap_cmd_expunge(struct imap_session *s, struct imap_cmd *c)
{
	struct imap_seqset uidset;
	bool has_set;
	if (imap_args_expunge(&c->cur, c->uid, &uidset, &has_set) < 0) {
		imap_bad(s, c, "%s",
			 c->uid ? "UID EXPUNGE needs a UID set"
				: "EXPUNGE takes no arguments");
		return;
	}
	const struct imap_seqset *set = has_set ? &uidset : NULL;
	if (s->box.readonly) {
		imap_no(s, c, "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (imap_expunge_deleted(s, set) > 0) {
		imap_no(s, c, "Some messages could not be expunged");
		return;
	}
	imap_ok(s, c, "EXPUNGE completed");
}

void
imap_cmd_close(struct imap_session *s, struct imap_cmd *c)
{
	if (!imap_at_end(&c->cur)) {
		imap_bad(s, c, "CLOSE takes no arguments");
		return;
	}
	if (!s->box.readonly)
		imap_expunge_deleted(s, NULL); /* silently (RFC 3501 6.4.2) */
	imap_mailbox_close(s);
	s->state = IMAP_AUTH;
	imap_ok(s, c, "CLOSE completed");
}

void
imap_cmd_unselect(struct imap_session *s, struct imap_cmd *c)
{
	if (!imap_at_end(&c->cur)) {
		imap_bad(s, c, "UNSELECT takes no arguments");
		return;
	}
	imap_mailbox_close(s);
	s->state = IMAP_AUTH;
	imap_ok(s, c, "UNSELECT completed");
}
