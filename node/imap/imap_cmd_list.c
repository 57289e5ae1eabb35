/* LIST and LSUB (RFC 3501 6.3.8-9), with CHILDREN (RFC 3348) and
 * SPECIAL-USE (RFC 6154) attributes, and LIST's RETURN (STATUS (...))
 * of LIST-STATUS (RFC 5819): a STATUS after each selectable name. The names are
 * INBOX, the Maildir++ folders, and the parents a folder "a.b" implies when "a"
 * itself does not exist (\Noselect). '*' matches anything, '%' anything but the
 * delimiter '.'. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap.h"

#define IMAP_LIST_MAX 4096    /* names answered at most */
#define IMAP_LIST_WILDCARDS 8 /* in one pattern */

typedef char imap_name[MAILDIR_MBOX_MAX + 1];

struct imap_names {
	imap_name *v;
	bool *real; /* false: only implied by a child */
	size_t n;
};

/* Whether name matches pattern (RFC 3501 6.3.8); INBOX case-blind. */
static bool
imap_list_match(const char *pat, const char *name)
{
	for (; *pat; pat++, name++) {
		if (*pat == '*' || *pat == '%') {
			for (const char *p = name;; p++) {
				if (imap_list_match(pat + 1, p))
					return true;
				if (*p == '\0' || (*pat == '%' && *p == '.'))
					return false;
			}
		}
		if (*pat != *name)
			return false;
	}
	return *name == '\0';
}

static bool
imap_names_has(const struct imap_names *ns, const char *name)
{
	for (size_t i = 0; i < ns->n; i++)
		if (strcmp(ns->v[i], name) == 0)
			return true;
	return false;
}

static int
imap_names_add(struct imap_names *ns, size_t cap, const char *name, bool real)
{
	for (size_t i = 0; i < ns->n; i++)
		if (strcmp(ns->v[i], name) == 0) {
			ns->real[i] |= real;
			return 0;
		}
	if (ns->n >= cap)
		return -1;
	snprintf(ns->v[ns->n], sizeof(*ns->v), "%s", name);
	ns->real[ns->n++] = real;
	return 0;
}

/* Every name: INBOX, the folders (or, for LSUB, the subscriptions) and
 * their implied parents. */
static int
imap_names_load(struct imap_session *s, bool lsub, struct imap_names *ns)
{
	imap_name *raw = NULL;
	size_t n = 0;
	int rc = lsub ? maildir_subscriptions(s->userdir, &raw, &n)
		      : maildir_folders(s->userdir, &raw, &n);
	if (rc < 0)
		return -1;
	size_t cap = 2 * n + 2;
	ns->v = calloc(cap, sizeof(*ns->v));
	ns->real = calloc(cap, sizeof(*ns->real));
	ns->n = 0;
	if (ns->v == NULL || ns->real == NULL) {
		free(raw);
		return -1;
	}
	if (!lsub)
		imap_names_add(ns, cap, "INBOX", true);
	for (size_t i = 0; i < n; i++) {
		imap_names_add(ns, cap, raw[i], true);
		/* The closest missing parent is enough for '%' listings. */
		char parent[sizeof(imap_name)];
		snprintf(parent, sizeof(parent), "%s", raw[i]);
		char *dot = strrchr(parent, '.');
		if (dot) {
			*dot = '\0';
			if (!imap_names_has(ns, parent))
				imap_names_add(ns, cap, parent, false);
		}
	}
	free(raw);
	return 0;
}

static bool
imap_names_has_children(const struct imap_names *ns, const char *name)
{
	size_t len = strlen(name);
	for (size_t i = 0; i < ns->n; i++)
		if (strncmp(ns->v[i], name, len) == 0 && ns->v[i][len] == '.')
			return true;
	return false;
}

static const char *
imap_special_use(const char *name)
{
	static const struct {
		const char *name, *attr;
	} use[] = {{"Drafts", "\\Drafts"},
		   {"Sent", "\\Sent"},
		   {"Trash", "\\Trash"},
		   {"Junk", "\\Junk"}};
	for (size_t i = 0; i < sizeof(use) / sizeof(*use); i++)
		if (strcmp(name, use[i].name) == 0)
			return use[i].attr;
	return NULL;
}

void
imap_cmd_list(struct imap_session *s, struct imap_cmd *c)
{
	struct imap_args_list a;
	char full[2 * IMAP_ARG_MBOX];
	bool lsub = strcmp(c->name, "LSUB") == 0;
	struct imap_names ns = {0};

	if (imap_args_list(&c->cur, !lsub, &a) < 0) {
		imap_bad(s, c, "%s needs a reference and a mailbox pattern: %s",
			 c->name, c->cur.err);
		return;
	}
	const char *ref = a.ref, *pat = a.pattern;
	if (pat[0] == '\0') { /* the delimiter and root (RFC 3501 6.3.8) */
		if (!lsub)
			imap_untagged(s, "LIST (\\Noselect) \".\" \"\"");
		imap_ok(s, c, "%s completed", c->name);
		return;
	}
	snprintf(full, sizeof(full), "%s%s", ref, pat);
	/* Matching backtracks on each wildcard: bound them. */
	int wild = 0;
	for (const char *p = full; *p; p++)
		wild += *p == '*' || *p == '%';
	if (wild > IMAP_LIST_WILDCARDS) {
		imap_bad(s, c, "Too many wildcards");
		return;
	}
	if (imap_names_load(s, lsub, &ns) < 0) {
		free(ns.v);
		free(ns.real);
		imap_no(s, c, "[SERVERBUG] Cannot list mailboxes now");
		return;
	}
	size_t told = 0;
	struct strbuf sb;
	strbuf_init(&sb, 1024);
	for (size_t i = 0; i < ns.n && told < IMAP_LIST_MAX; i++) {
		const char *name = ns.v[i];
		bool inbox = strcmp(name, "INBOX") == 0;
		if (!imap_list_match(full, name) &&
		    !(inbox && strncasecmp(full, "INBOX", 5) == 0 &&
		      imap_list_match(full + 5, "")))
			continue;
		const char *use = imap_special_use(name);
		strbuf_reset(&sb);
		strbuf_appendf(&sb, "%s (", c->name);
		const char *sp = "";
		if (!ns.real[i]) {
			strbuf_appends(&sb, "\\Noselect");
			sp = " ";
		}
		if (!lsub) {
			strbuf_appendf(&sb, "%s%s", sp,
				       imap_names_has_children(&ns, name)
					   ? "\\HasChildren"
					   : "\\HasNoChildren");
			sp = " ";
			if (use)
				strbuf_appendf(&sb, " %s", use);
		}
		strbuf_appends(&sb, ") \".\" ");
		imap_append_string(&sb, name, strlen(name));
		imap_untagged(s, "%s", strbuf_str(&sb));
		/* LIST-STATUS: a mailbox gone meanwhile has none */
		if (a.status && ns.real[i])
			imap_status_tell(s, name, a.status);
		told++;
	}
	strbuf_free(&sb);
	free(ns.v);
	free(ns.real);
	imap_ok(s, c, "%s completed", c->name);
}
