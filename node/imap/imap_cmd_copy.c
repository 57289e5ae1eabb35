/* COPY, MOVE (RFC 6851) and their UID forms, with UIDPLUS's COPYUID
 * (RFC 4315). maildir_copy is all or nothing and gives the copies
 * consecutive UIDs in the order of the source's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/log.h"
#include "imap.h"

void
imap_cmd_copy(struct imap_session *s, struct imap_cmd *c)
{
	struct imap_args_copy a;
	char dst[4096];
	const char *name = a.mailbox;
	struct imap_mailbox *b = &s->box;
	bool move = strcmp(c->name, "MOVE") == 0;
	struct maildir_msg *msgs = NULL;
	uint32_t *src = NULL, *uids = NULL, uidvalidity = 0;
	size_t *idx = NULL, n = 0;
	struct maildir_counter *ctr;
	struct strbuf sb;

	strbuf_init(&sb, 65536);
	if (imap_args_copy(&c->cur, &a) < 0) {
		imap_bad(s, c, "%s needs a message set and a mailbox", c->name);
		goto out;
	}
	if (move && b->readonly) {
		imap_no(s, c, "[READ-ONLY] Mailbox is read-only");
		goto out;
	}
	if (imap_mailbox_dir(s, name, dst, sizeof(dst)) < 0) {
		imap_no(s, c, "[CANNOT] Invalid mailbox name");
		goto out;
	}
	msgs = calloc(b->n + 1, sizeof(*msgs));
	src = calloc(b->n + 1, sizeof(*src));
	uids = calloc(b->n + 1, sizeof(*uids));
	idx = calloc(b->n + 1, sizeof(*idx));
	if (msgs == NULL || src == NULL || uids == NULL || idx == NULL) {
		imap_no(s, c, "[SERVERBUG] Out of memory");
		goto out;
	}
	for (size_t i = 0; i < b->n; i++) {
		if (b->msg[i].gone ||
		    !imap_mailbox_in_set(b, i, &a.set, c->uid))
			continue;
		imap_msg_get(b, i, &msgs[n]);
		src[n] = b->msg[i].uid;
		idx[n++] = i;
	}
	if (n == 0) { /* RFC 3501: an empty set is no error */
		imap_ok(s, c, "%s completed, nothing to do", c->name);
		goto out;
	}
	uint64_t bytes = 0; /* MOVE takes no more room than it frees */
	for (size_t k = 0; k < n && !move; k++)
		bytes += msgs[k].size;
	if (!move && imap_quota_refuses(s, bytes)) {
		imap_no(s, c, "[OVERQUOTA] Quota exceeded");
		goto out;
	}
	if ((ctr = imap_uid_need(s, name, n)) == NULL)
		goto out; /* runs again under the mailbox's lease */
	if (maildir_copy(b->dir, msgs, n, dst, s->mn->store.hostname, ctr,
			 &uidvalidity, uids) < 0) {
		if (errno == ENOENT && access(dst, F_OK) < 0)
			imap_no(s, c, "[TRYCREATE] No such mailbox");
		else if (errno == ENOENT)
			imap_no(s, c,
				"[EXPUNGEISSUED] Some messages were "
				"expunged meanwhile");
		else {
			log_err("imap %s: %s to %s: %s", s->id, c->name, dst,
				strerror(errno));
			imap_no(s, c, "[SERVERBUG] %s failed", c->name);
		}
		goto out;
	}
	notice_changed(s->mn->store.notice, s->user, name);
	strbuf_appendf(&sb, "[COPYUID %u ", uidvalidity);
	imap_seqset_format(&sb, src, n);
	strbuf_appends(&sb, " ");
	imap_seqset_format(&sb, uids, n);
	strbuf_appends(&sb, "]");
	if (!move) {
		imap_ok(s, c, "%s COPY completed", strbuf_str(&sb));
		goto out;
	}
	/* MOVE: the copies are durable; now the originals go, told as
	 * EXPUNGE before the tagged answer (RFC 6851 3.3). */
	imap_untagged(s, "OK %s Moved", strbuf_str(&sb));
	for (size_t k = 0; k < n; k++) {
		if (maildir_expunge(b->dir, &msgs[k]) < 0)
			log_err("imap %s: MOVE: remove %s/%s: %s", s->id,
				b->dir, msgs[k].name, strerror(errno));
		else
			b->msg[idx[k]].gone = true;
	}
	notice_changed(s->mn->store.notice, s->user, b->name);
	imap_ok(s, c, "MOVE completed");
out:
	strbuf_free(&sb);
	free(msgs);
	free(src);
	free(uids);
	free(idx);
}
