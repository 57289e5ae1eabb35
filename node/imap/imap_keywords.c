/* Keywords of the selected mailbox: its dovecot-keywords (maildir.h) as
 * flag bits (IMAP_F_KW), the names told in FLAGS, PERMANENTFLAGS and
 * FETCH FLAGS, read again when the file changes (another session, on any
 * node, added one) and told then as a new FLAGS (RFC 3501 7.2.6). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../common/log.h"
#include "imap.h"

_Static_assert(IMAP_KEYWORD_MAX == MAILDIR_KEYWORD_MAX,
	       "a keyword IMAP reads is one the store keeps");
_Static_assert(IMAP_F_KEYWORDS >> IMAP_F_KW_SHIFT ==
		   (1u << MAILDIR_KEYWORDS) - 1,
	       "a flag bit per Maildir keyword letter");

#define IMAP_SYSTEM_FLAGS "\\Answered \\Flagged \\Deleted \\Seen \\Draft"

int
imap_flags_tell(const struct imap_mailbox *b, unsigned mask, struct strbuf *sb)
{
	if (imap_flags_format(mask, sb) < 0)
		return -1;
	bool sp = (mask & ~IMAP_F_KEYWORDS) != 0;
	for (int k = 0; b->kw && k < MAILDIR_KEYWORDS; k++) {
		if (!(mask & IMAP_F_KW(k)) || !b->kw->name[k][0])
			continue;
		if (strbuf_appendf(sb, "%s%s", sp ? " " : "", b->kw->name[k]) <
		    0)
			return -1;
		sp = true;
	}
	return 0;
}

unsigned
imap_keywords_named(const struct imap_mailbox *b)
{
	unsigned mask = 0;
	for (int k = 0; b->kw && k < MAILDIR_KEYWORDS; k++)
		if (b->kw->name[k][0])
			mask |= IMAP_F_KW(k);
	return mask;
}

/* The mailbox's keywords, space first, into sb. */
static void
imap_keywords_list(const struct imap_mailbox *b, struct strbuf *sb)
{
	for (int k = 0; b->kw && k < MAILDIR_KEYWORDS; k++)
		if (b->kw->name[k][0])
			strbuf_appendf(sb, " %s", b->kw->name[k]);
}

void
imap_keywords_announce(struct imap_session *s)
{
	struct imap_mailbox *b = &s->box;
	struct strbuf sb;
	strbuf_init(&sb, 4096);
	imap_keywords_list(b, &sb);
	imap_untagged(s, "FLAGS (" IMAP_SYSTEM_FLAGS "%s)", strbuf_str(&sb));
	/* \* only while a letter is left for a new keyword */
	bool room = imap_keywords_named(b) != IMAP_F_KEYWORDS;
	if (b->readonly)
		imap_untagged(s, "OK [PERMANENTFLAGS ()] Read-only mailbox");
	else
		imap_untagged(s,
			      "OK [PERMANENTFLAGS (" IMAP_SYSTEM_FLAGS
			      "%s%s)] Flags permitted",
			      strbuf_str(&sb), room ? " \\*" : "");
	strbuf_free(&sb);
}

/* Takes kw as the mailbox's keywords; tells them when tell and they
 * differ from what the client knew. */
static void
imap_keywords_take(struct imap_session *s, const struct maildir_keywords *kw,
		   bool tell)
{
	struct imap_mailbox *b = &s->box;
	bool any = false;
	for (int k = 0; k < MAILDIR_KEYWORDS; k++)
		any |= kw->name[k][0] != '\0';
	if (b->kw == NULL && !any)
		return;
	if (b->kw != NULL && memcmp(b->kw, kw, sizeof(*kw)) == 0)
		return;
	if (b->kw == NULL && (b->kw = malloc(sizeof(*b->kw))) == NULL) {
		log_warn("imap %s: out of memory for keywords", s->id);
		return;
	}
	memcpy(b->kw, kw, sizeof(*kw));
	if (tell)
		imap_keywords_announce(s);
}

void
imap_keywords_sync(struct imap_session *s, bool tell)
{
	struct imap_mailbox *b = &s->box;
	char path[PATH_MAX + 32];
	struct stat st;
	struct maildir_keywords kw;
	snprintf(path, sizeof(path), "%s/%s", b->dir, MAILDIR_KEYWORDS_FILE);
	if (stat(path, &st) < 0)
		memset(&st, 0, sizeof(st));
	if (st.st_ino == b->kw_ino && st.st_size == b->kw_size &&
	    st.st_mtim.tv_sec == b->kw_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == b->kw_mtime.tv_nsec)
		return;
	if (maildir_keywords_read(b->dir, &kw) < 0) {
		log_warn("imap %s: keywords of %s: %s", s->id, b->dir,
			 strerror(errno));
		return;
	}
	b->kw_ino = st.st_ino;
	b->kw_size = st.st_size;
	b->kw_mtime = st.st_mtim;
	imap_keywords_take(s, &kw, tell);
}

int
imap_keywords_bits(struct imap_session *s, const char *dir,
		   const struct imap_kwlist *list, bool create, unsigned *mask)
{
	struct maildir_keywords kw;
	uint32_t bits = 0;
	*mask = 0;
	if (list->n == 0)
		return 0;
	bool selected =
	    s->state == IMAP_SELECTED && strcmp(dir, s->box.dir) == 0;
	if (!create) { /* taking away: unknown names have no letter */
		if (selected)
			imap_keywords_sync(s, true);
		for (size_t i = 0; selected && s->box.kw && i < list->n; i++) {
			int k = maildir_keyword_index(s->box.kw, list->name[i]);
			if (k >= 0)
				*mask |= IMAP_F_KW(k);
		}
		return 0;
	}
	int rc = maildir_keywords_add(dir, list->name, list->n, &kw, &bits);
	if (rc < 0 && errno != ENOSPC)
		log_err("imap %s: keywords of %s: %s", s->id, dir,
			strerror(errno));
	if (selected) {
		int e = errno;
		imap_keywords_sync(s, true);
		errno = e;
	}
	if (rc < 0)
		return -1;
	*mask = bits << IMAP_F_KW_SHIFT;
	return 0;
}
