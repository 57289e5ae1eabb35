/* APPEND (RFC 3501 6.3.11) with UIDPLUS's APPENDUID (RFC 4315): the
 * message is made durable in the mailbox, with its flags and date, and
 * gets the next UID under the mailbox's UID lock. Bare LFs become CRLF
 * on the way in, so every stored message has the size FETCH reports. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/log.h"
#include "imap.h"

void
imap_cmd_append(struct imap_session *s, struct imap_cmd *c)
{
	struct imap_args_append a;
	char dir[4096], letters[IMAP_FLAG_LETTERS];
	char *fixed = NULL;
	uint32_t uidvalidity, uid;
	struct maildir_counter *ctr;

	if (imap_args_append(&c->cur, &a) < 0) {
		imap_bad(s, c, "%s",
			 c->cur.err[0] ? c->cur.err : "Invalid APPEND");
		return;
	}
	const char *name = a.mailbox, *data = a.msg;
	size_t len = a.len;
	if (imap_mailbox_dir(s, name, dir, sizeof(dir)) < 0) {
		imap_no(s, c, "[CANNOT] Invalid mailbox name");
		return;
	}
	if (len > s->mn->cfg->msg_max) {
		imap_no(s, c, "[TOOBIG] Message too large");
		return;
	}
	if (access(dir, F_OK) < 0) {
		imap_no(s, c, "[TRYCREATE] No such mailbox");
		return;
	}
	if (imap_quota_refuses(s, len)) {
		imap_no(s, c, "[OVERQUOTA] Quota exceeded");
		return;
	}
	unsigned kw;
	if (imap_keywords_bits(s, dir, &a.kw, true, &kw) < 0) {
		if (errno == ENOSPC)
			imap_no(s, c, "[LIMIT] Too many keywords in %s", name);
		else
			imap_no(s, c, "[SERVERBUG] Cannot store keywords");
		return;
	}
	if ((ctr = imap_uid_need(s, name, 1)) == NULL)
		return; /* runs again under the mailbox's lease */
	if (imap_crlf(data, len, &fixed, &len) < 0) {
		imap_no(s, c, "[SERVERBUG] Out of memory");
		return;
	}
	if (fixed)
		data = fixed;
	imap_flags_to_maildir(a.flags | kw, letters);
	if (maildir_append(dir, s->mn->store.hostname, data, len, letters,
			   a.when, ctr, &uidvalidity, &uid) < 0) {
		log_err("imap %s: append to %s: %s", s->id, dir,
			strerror(errno));
		imap_no(s, c, "[SERVERBUG] APPEND failed");
		free(fixed);
		return;
	}
	free(fixed);
	notice_changed(s->mn->store.notice, s->user, name);
	imap_ok(s, c, "[APPENDUID %u %u] APPEND completed", uidvalidity, uid);
}
