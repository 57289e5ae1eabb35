/* Mailboxes as a whole: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE
 * and STATUS (RFC 3501 6.3). Names are checked (modified UTF-7, nothing
 * that leaves the user's Maildir) before anything touches the store. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../../common/log.h"
#include "imap.h"

/* Whether the store may take name (imap_args.h read it); a new name
 * (CREATE, RENAME's target) may not hold LIST's wildcards '*' and '%',
 * which no LIST could then name alone. Answers NO and returns -1 when
 * not. */
static int
imap_check_mailbox(struct imap_session *s, struct imap_cmd *c, const char *name,
		   bool new_name)
{
	char dir[4096];
	if ((new_name && strpbrk(name, "*%") != NULL) ||
	    imap_mailbox_dir(s, name, dir, sizeof(dir)) < 0) {
		imap_no(s, c, "[CANNOT] Invalid mailbox name");
		return -1;
	}
	return 0;
}

/* Reads the one name argument (new_name: CREATE's) and checks it. */
static int
imap_arg_mailbox(struct imap_session *s, struct imap_cmd *c,
		 char name[IMAP_ARG_MBOX], bool new_name)
{
	if (imap_args_mailbox(&c->cur, new_name, name) < 0) {
		imap_bad(s, c, "%s needs a mailbox name: %s", c->name,
			 c->cur.err);
		return -1;
	}
	return imap_check_mailbox(s, c, name, new_name);
}

/* The answer for a failed store operation. */
static void
imap_folder_fail(struct imap_session *s, struct imap_cmd *c, const char *what)
{
	int e = errno;
	if (e == EEXIST)
		imap_no(s, c, "[ALREADYEXISTS] Mailbox already exists");
	else if (e == ENOENT)
		imap_no(s, c, "[NONEXISTENT] No such mailbox");
	else if (e == EINVAL)
		imap_no(s, c, "[CANNOT] Invalid mailbox name");
	else {
		log_err("imap %s: %s for %s: %s", s->id, what, s->user,
			strerror(e));
		imap_no(s, c, "[SERVERBUG] %s failed", c->name);
	}
}

void
imap_cmd_create(struct imap_session *s, struct imap_cmd *c)
{
	char name[IMAP_ARG_MBOX];
	if (imap_arg_mailbox(s, c, name, true) < 0)
		return;
	if (strcasecmp(name, "INBOX") == 0) {
		imap_no(s, c, "[ALREADYEXISTS] INBOX always exists");
		return;
	}
	/* Superior names first (RFC 3501 6.3.3: the server SHOULD create
	 * them), so that "a.b" comes with a selectable "a". */
	for (char *dot = strchr(name, '.'); dot; dot = strchr(dot + 1, '.')) {
		*dot = '\0';
		int rc = maildir_folder_create(s->userdir, name);
		*dot = '.';
		if (rc < 0 && errno != EEXIST) {
			imap_folder_fail(s, c, "create");
			return;
		}
	}
	if (maildir_folder_create(s->userdir, name) < 0) {
		imap_folder_fail(s, c, "create");
		return;
	}
	imap_ok(s, c, "CREATE completed");
}

void
imap_cmd_delete(struct imap_session *s, struct imap_cmd *c)
{
	char name[IMAP_ARG_MBOX];
	if (imap_arg_mailbox(s, c, name, false) < 0)
		return;
	if (strcasecmp(name, "INBOX") == 0) {
		imap_no(s, c, "[CANNOT] INBOX cannot be deleted");
		return;
	}
	if (maildir_folder_delete(s->userdir, name) < 0) {
		imap_folder_fail(s, c, "delete");
		return;
	}
	notice_changed(s->mn->store.notice, s->user, name);
	imap_ok(s, c, "DELETE completed");
}

void
imap_cmd_rename(struct imap_session *s, struct imap_cmd *c)
{
	struct imap_args_rename a;
	if (imap_args_rename(&c->cur, &a) < 0) {
		imap_bad(s, c, "RENAME needs two mailbox names: %s",
			 c->cur.err);
		return;
	}
	const char *from = a.from, *to = a.to;
	if (imap_check_mailbox(s, c, from, false) < 0 ||
	    imap_check_mailbox(s, c, to, true) < 0)
		return;
	if (strcasecmp(to, "INBOX") == 0) {
		imap_no(s, c, "[ALREADYEXISTS] INBOX always exists");
		return;
	}
	if (maildir_folder_rename(s->userdir, maildir_mailbox_canon(from), to) <
	    0) {
		imap_folder_fail(s, c, "rename");
		return;
	}
	notice_changed(s->mn->store.notice, s->user, from);
	imap_ok(s, c, "RENAME completed");
}

void
imap_cmd_subscribe(struct imap_session *s, struct imap_cmd *c)
{
	char name[IMAP_ARG_MBOX];
	bool on = strcmp(c->name, "SUBSCRIBE") == 0;
	if (imap_arg_mailbox(s, c, name, false) < 0)
		return;
	if (maildir_subscribe(s->userdir, maildir_mailbox_canon(name), on) <
	    0) {
		imap_folder_fail(s, c, "subscribe");
		return;
	}
	imap_ok(s, c, "%s completed", c->name);
}

int
imap_status_tell(struct imap_session *s, const char *name, unsigned items)
{
	char dir[4096];
	struct maildir_list l = {0};
	struct strbuf sb;

	if (imap_mailbox_dir(s, name, dir, sizeof(dir)) < 0)
		return -1;
	if (maildir_scan(dir, &l) < 0) {
		int e = errno;
		maildir_list_free(&l);
		errno = e;
		return -1;
	}
	/* Mail waiting for UIDs counts as the next messages, new and
	 * unseen, without taking the lease for STATUS. */
	uint32_t recent_from;
	if (maildir_recent_claim(dir, l.uidnext, true, &recent_from) < 0)
		recent_from = l.uidnext;
	size_t recent = l.pending;
	for (size_t i = 0; i < l.n; i++)
		if (l.msg[i].uid >= recent_from)
			recent++;
	strbuf_init(&sb, 1024);
	imap_append_string(&sb, maildir_mailbox_canon(name),
			   strlen(maildir_mailbox_canon(name)));
	strbuf_appends(&sb, " (");
	const char *sp = "";
	if (items & IMAP_STATUS_MESSAGES) {
		strbuf_appendf(&sb, "%sMESSAGES %zu", sp, l.n + l.pending);
		sp = " ";
	}
	if (items & IMAP_STATUS_RECENT) {
		strbuf_appendf(&sb, "%sRECENT %zu", sp, recent);
		sp = " ";
	}
	if (items & IMAP_STATUS_UIDNEXT) {
		strbuf_appendf(&sb, "%sUIDNEXT %u", sp,
			       l.uidnext + (uint32_t)l.pending);
		sp = " ";
	}
	if (items & IMAP_STATUS_UIDVALIDITY) {
		strbuf_appendf(&sb, "%sUIDVALIDITY %u", sp, l.uidvalidity);
		sp = " ";
	}
	if (items & IMAP_STATUS_UNSEEN) {
		strbuf_appendf(&sb, "%sUNSEEN %zu", sp,
			       maildir_unseen(&l) + l.pending);
		sp = " ";
	}
	if (items & IMAP_STATUS_DELETED_STORAGE)
		strbuf_appendf(&sb, "%sDELETED-STORAGE %" PRIu64, sp,
			       imap_quota_deleted_storage(&l));
	strbuf_appends(&sb, ")");
	imap_untagged(s, "STATUS %s", strbuf_str(&sb));
	strbuf_free(&sb);
	maildir_list_free(&l);
	return 0;
}

void
imap_cmd_status(struct imap_session *s, struct imap_cmd *c)
{
	struct imap_args_status a;

	if (imap_args_status(&c->cur, &a) < 0) {
		imap_bad(s, c, "STATUS needs a mailbox and a list of items");
		return;
	}
	if (imap_check_mailbox(s, c, a.mailbox, false) < 0)
		return;
	if (imap_status_tell(s, a.mailbox, a.items) < 0) {
		imap_folder_fail(s, c, "status");
		return;
	}
	imap_ok(s, c, "STATUS completed");
}
