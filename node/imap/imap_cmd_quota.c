/* QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA, and SETQUOTA refused (limits
 * are the shared config's: `mailctl user quota`); and the OVERQUOTA
 * check of APPEND and COPY. Each user has one quota root, "", holding
 * all their mailboxes, with one resource, STORAGE (in units of 1024
 * octets, rounded down, as Dovecot reports it); a user without a limit
 * has no quota root. Usage is store/quota.h's, the same on every node.
 * STATUS's DELETED-STORAGE is counted here for imap_cmd_folder.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../store/quota.h"
#include "imap.h"

#define IMAP_QUOTA_ROOT "" /* the one root of every user */

/* Answers "* QUOTA "" (STORAGE used limit)" for the session's user.
 * Returns 0, or -1 (the user has no limit: nothing said). */
static int
imap_quota_untagged(struct imap_session *s)
{
	uint64_t limit = directory_quota(s->mn->dir, s->user);
	struct quota_usage u;

	if (limit == 0)
		return -1;
	if (quota_get(s->userdir, limit, &u) < 0) {
		log_warn("imap %s: quota of %s: %s", s->id, s->user,
			 strerror(errno));
		memset(&u, 0, sizeof(u)); /* unknown: shown as none used */
	}
	imap_untagged(s, "QUOTA \"%s\" (STORAGE %" PRIu64 " %" PRIu64 ")",
		      IMAP_QUOTA_ROOT, u.bytes / 1024, limit / 1024);
	return 0;
}

void
imap_cmd_getquotaroot(struct imap_session *s, struct imap_cmd *c)
{
	char name[IMAP_ARG_MBOX], dir[4096];
	struct strbuf sb;

	if (imap_args_mailbox(&c->cur, false, name) < 0) {
		imap_bad(s, c, "GETQUOTAROOT needs a mailbox name");
		return;
	}
	if (imap_mailbox_dir(s, name, dir, sizeof(dir)) < 0) {
		imap_no(s, c, "[CANNOT] Invalid mailbox name");
		return;
	}
	if (access(dir, F_OK) < 0) {
		imap_no(s, c, "[NONEXISTENT] No such mailbox");
		return;
	}
	strbuf_init(&sb, 1024);
	strbuf_appends(&sb, "QUOTAROOT ");
	imap_append_string(&sb, maildir_mailbox_canon(name),
			   strlen(maildir_mailbox_canon(name)));
	if (directory_quota(s->mn->dir, s->user))
		strbuf_appends(&sb, " \"" IMAP_QUOTA_ROOT "\"");
	imap_untagged(s, "%s", strbuf_str(&sb));
	strbuf_free(&sb);
	imap_quota_untagged(s);
	imap_ok(s, c, "GETQUOTAROOT completed");
}

void
imap_cmd_getquota(struct imap_session *s, struct imap_cmd *c)
{
	char root[256];

	if (imap_astring(&c->cur, root, sizeof(root), NULL) < 0 ||
	    imap_end(&c->cur) < 0) {
		imap_bad(s, c, "GETQUOTA needs a quota root");
		return;
	}
	if (strcmp(root, IMAP_QUOTA_ROOT) != 0 || imap_quota_untagged(s) < 0) {
		imap_no(s, c, "[NONEXISTENT] No such quota root");
		return;
	}
	imap_ok(s, c, "GETQUOTA completed");
}

void
imap_cmd_setquota(struct imap_session *s, struct imap_cmd *c)
{
	imap_no(s, c,
		"[NOPERM] Quotas are set by the administrator (mailctl user "
		"quota)");
}

uint64_t
imap_quota_deleted_storage(const struct maildir_list *l)
{
	uint64_t bytes = 0;

	for (size_t i = 0; i < l->n; i++)
		if (strchr(l->msg[i].flags, 'T')) /* \Deleted */
			bytes += l->msg[i].size;
	return (bytes + 1023) / 1024;
}

bool
imap_quota_refuses(struct imap_session *s, uint64_t bytes)
{
	uint64_t limit = directory_quota(s->mn->dir, s->user);

	return quota_check(s->userdir, limit, bytes) != QUOTA_OK;
}
