/* Mailboxes as a whole: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE
 * and STATUS (RFC 3501 6.3). Names are checked (modified UTF-7, nothing
 * that leaves the user's Maildir) before anything touches the store. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../../common/log.h"
#include "imap.h"

/* Reads one mailbox name argument. A new name (CREATE, RENAME's
 * target) loses a trailing '.' (RFC 3501 6.3.3: the client means a
 * parent) and may not hold LIST's wildcards '*' and '%', which no LIST
 * could then name alone. Answers BAD and returns -1 on a syntax error, NO
 * on a name the store refuses. */
static int
imap_arg_mailbox(struct imap_session *s, struct imap_cmd *c, char *name,
		 size_t len, bool new_name)
{
	char dir[4096];
	if (imap_astring(&c->cur, name, len, NULL) < 0) {
		imap_bad(s, c, "%s needs a mailbox name", c->name);
		return -1;
	}
	size_t n = strlen(name);
	if (new_name && n > 1 && name[n - 1] == '.')
		name[n - 1] = '\0';
	if ((new_name && strpbrk(name, "*%") != NULL) ||
	    imap_mailbox_dir(s, name, dir, sizeof(dir)) < 0) {
		imap_no(s, c, "[CANNOT] Invalid mailbox name");
		return -1;
	}
	return 0;
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
	char name[MAILDIR_MBOX_MAX + 2];
	if (imap_arg_mailbox(s, c, name, sizeof(name), true) < 0)
		return;
	if (imap_end(&c->cur) < 0) {
		imap_bad(s, c, "%s", c->cur.err);
		return;
	}
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
	char name[MAILDIR_MBOX_MAX + 2];
	if (imap_arg_mailbox(s, c, name, sizeof(name), false) < 0)
		return;
	if (imap_end(&c->cur) < 0) {
		imap_bad(s, c, "%s", c->cur.err);
		return;
	}
	if (strcasecmp(name, "INBOX") == 0) {
		imap_no(s, c, "[CANNOT] INBOX cannot be deleted");
		return;
	}
	if (maildir_folder_delete(s->userdir, name) < 0) {
		imap_folder_fail(s, c, "delete");
		return;
	}
	imap_announce(s->mn, s->user, name);
	imap_ok(s, c, "DELETE completed");
}

void
imap_cmd_rename(struct imap_session *s, struct imap_cmd *c)
{
	char from[MAILDIR_MBOX_MAX + 2], to[MAILDIR_MBOX_MAX + 2];
	if (imap_arg_mailbox(s, c, from, sizeof(from), false) < 0)
		return;
	if (imap_sp(&c->cur) < 0) {
		imap_bad(s, c, "RENAME needs two mailbox names");
		return;
	}
	if (imap_arg_mailbox(s, c, to, sizeof(to), true) < 0)
		return;
	if (imap_end(&c->cur) < 0) {
		imap_bad(s, c, "%s", c->cur.err);
		return;
	}
	if (strcasecmp(to, "INBOX") == 0) {
		imap_no(s, c, "[ALREADYEXISTS] INBOX always exists");
		return;
	}
	if (maildir_folder_rename(s->userdir, imap_mailbox_canon(from), to) <
	    0) {
		imap_folder_fail(s, c, "rename");
		return;
	}
	imap_announce(s->mn, s->user, from);
	imap_ok(s, c, "RENAME completed");
}

void
imap_cmd_subscribe(struct imap_session *s, struct imap_cmd *c)
{
	char name[MAILDIR_MBOX_MAX + 2];
	bool on = strcmp(c->name, "SUBSCRIBE") == 0;
	if (imap_arg_mailbox(s, c, name, sizeof(name), false) < 0)
		return;
	if (imap_end(&c->cur) < 0) {
		imap_bad(s, c, "%s", c->cur.err);
		return;
	}
	if (maildir_subscribe(s->userdir, imap_mailbox_canon(name), on) < 0) {
		imap_folder_fail(s, c, "subscribe");
		return;
	}
	imap_ok(s, c, "%s completed", c->name);
}

enum {
	ST_MESSAGES = 1,
	ST_RECENT = 2,
	ST_UIDNEXT = 4,
	ST_UIDVALIDITY = 8,
	ST_UNSEEN = 16,
};

static const struct {
	const char *name;
	unsigned bit;
} imap_status_items[] = {
    {"MESSAGES", ST_MESSAGES}, {"RECENT", ST_RECENT},
    {"UIDNEXT", ST_UIDNEXT},   {"UIDVALIDITY", ST_UIDVALIDITY},
    {"UNSEEN", ST_UNSEEN},
};

static int
imap_status_parse(struct imap_cur *cur, unsigned *items)
{
	char word[32];
	*items = 0;
	if (!imap_peek_char(cur, '('))
		return -1;
	do {
		if (imap_atom(cur, word, sizeof(word)) < 0)
			return -1;
		size_t k = 0;
		for (;
		     k < sizeof(imap_status_items) / sizeof(*imap_status_items);
		     k++)
			if (strcasecmp(word, imap_status_items[k].name) == 0)
				break;
		if (k == sizeof(imap_status_items) / sizeof(*imap_status_items))
			return -1;
		*items |= imap_status_items[k].bit;
	} while (imap_sp(cur) == 0);
	return imap_peek_char(cur, ')') ? 0 : -1;
}

void
imap_cmd_status(struct imap_session *s, struct imap_cmd *c)
{
	char name[MAILDIR_MBOX_MAX + 2], dir[4096];
	unsigned items;
	struct maildir_list l = {0};
	struct strbuf sb;

	if (imap_arg_mailbox(s, c, name, sizeof(name), false) < 0)
		return;
	if (imap_sp(&c->cur) < 0 || imap_status_parse(&c->cur, &items) < 0 ||
	    imap_end(&c->cur) < 0) {
		imap_bad(s, c, "STATUS needs a mailbox and a list of items");
		return;
	}
	imap_mailbox_dir(s, name, dir, sizeof(dir));
	if (maildir_scan(dir, &l) < 0) {
		maildir_list_free(&l);
		imap_folder_fail(s, c, "status");
		return;
	}
	/* Mail waiting for UIDs counts as the next messages, new and
	 * unseen, without taking the lease for STATUS. */
	uint32_t recent_from = imap_recent_claim(dir, l.uidnext, true);
	size_t recent = l.pending;
	for (size_t i = 0; i < l.n; i++)
		if (l.msg[i].uid >= recent_from)
			recent++;
	strbuf_init(&sb, 1024);
	imap_append_string(&sb, imap_mailbox_canon(name),
			   strlen(imap_mailbox_canon(name)));
	strbuf_appends(&sb, " (");
	const char *sp = "";
	if (items & ST_MESSAGES) {
		strbuf_appendf(&sb, "%sMESSAGES %zu", sp, l.n + l.pending);
		sp = " ";
	}
	if (items & ST_RECENT) {
		strbuf_appendf(&sb, "%sRECENT %zu", sp, recent);
		sp = " ";
	}
	if (items & ST_UIDNEXT) {
		strbuf_appendf(&sb, "%sUIDNEXT %u", sp,
			       l.uidnext + (uint32_t)l.pending);
		sp = " ";
	}
	if (items & ST_UIDVALIDITY) {
		strbuf_appendf(&sb, "%sUIDVALIDITY %u", sp, l.uidvalidity);
		sp = " ";
	}
	if (items & ST_UNSEEN)
		strbuf_appendf(&sb, "%sUNSEEN %zu", sp,
			       maildir_unseen(&l) + l.pending);
	strbuf_appends(&sb, ")");
	imap_untagged(s, "STATUS %s", strbuf_str(&sb));
	strbuf_free(&sb);
	maildir_list_free(&l);
	imap_ok(s, c, "STATUS completed");
}
