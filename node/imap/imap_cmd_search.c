/* SEARCH and UID SEARCH (RFC 3501 6.4.4), with ESEARCH's RETURN
 * (imap_esearch.c): imap_search.c parses and
 * matches; here each message's text is read only when a key asks for
 * it, and header keys (FROM, SUBJECT, HEADER, SENT*, ...) read only the
 * header section, through the node's header cache. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "imap.h"
#include "imap_mime.h"
#include "imap_search.h"

struct imap_search_arg {
	struct imap_session *s;
	size_t i;
	bool unreadable;
};

static struct imap_mime *
imap_search_mime(struct imap_search_arg *a)
{
	struct imap_loaded *l = imap_mailbox_load(a->s, a->i, true);
	if (l == NULL) {
		a->unreadable = true;
		return NULL;
	}
	return l->mime;
}

/* The message's header section, or NULL (unreadable). */
static const char *
imap_search_header(struct imap_search_arg *a, size_t *len)
{
	const char *hdr;
	if (imap_mailbox_header(a->s, a->i, &hdr, len) < 0) {
		a->unreadable = true;
		return NULL;
	}
	return hdr;
}

static bool
imap_search_header_has(void *arg, const char *field, const char *needle)
{
	size_t len;
	const char *hdr = imap_search_header(arg, &len);
	return hdr && imap_hdr_has(hdr, len, field, needle);
}

static bool
imap_search_body_has(void *arg, const char *needle)
{
	struct imap_mime *m = imap_search_mime(arg);
	return m && imap_mime_body_has(m, needle);
}

static bool
imap_search_text_has(void *arg, const char *needle)
{
	struct imap_mime *m = imap_search_mime(arg);
	return m && (imap_mime_header_has(m, "", needle) ||
		     imap_mime_body_has(m, needle));
}

static bool
imap_search_sent_date(void *arg, time_t *t)
{
	size_t len;
	const char *hdr = imap_search_header(arg, &len);
	return hdr && imap_hdr_date_written(hdr, len, t);
}

/* KEYWORD's bit in the selected mailbox (imap_search_keywords). */
static unsigned
imap_search_keyword(void *arg, const char *name)
{
	const struct imap_mailbox *b = arg;
	int k = b->kw ? maildir_keyword_index(b->kw, name) : -1;
	return k < 0 ? 0 : IMAP_F_KW(k);
}

void
imap_cmd_search(struct imap_session *s, struct imap_cmd *c)
{
	struct imap_search *prog = NULL;
	struct imap_mailbox *b = &s->box;
	struct strbuf sb;

	unsigned ret;
	uint32_t *hits = NULL;
	size_t nhits = 0;
	if (imap_args_search_return(&c->cur, &ret) < 0) {
		imap_bad(s, c, "%s", c->cur.err);
		return;
	}
	if (imap_search_parse(&c->cur, &prog) < 0) {
		if (strncmp(c->cur.err, "[BADCHARSET", 11) == 0)
			imap_no(s, c, "%s", c->cur.err);
		else
			imap_bad(s, c, "%s", c->cur.err);
		return;
	}
	imap_search_keywords(prog, imap_search_keyword, b);
	bool text = imap_search_needs_text(prog);
	bool dates = imap_search_needs_internaldate(prog); /* a stat each */
	uint32_t max_uid = b->n ? b->msg[b->n - 1].uid : 0;
	strbuf_init(&sb, 16 * (b->n + 16));
	if ((hits = malloc((b->n + 1) * sizeof(*hits))) == NULL) {
		imap_search_free(prog);
		strbuf_free(&sb);
		imap_no(s, c, "[SERVERBUG] Out of memory");
		return;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct imap_msg *m = &b->msg[i];
		if (m->gone)
			continue;
		struct imap_search_arg a = {.s = s, .i = i};
		struct imap_search_msg sm = {
		    .seq = (uint32_t)(i + 1),
		    .uid = m->uid,
		    .flags = m->flags,
		    .size = m->size,
		    .arg = &a,
		};
		if (dates) {
			struct maildir_msg mm;
			imap_msg_get(b, i, &mm);
			if (maildir_internaldate(b->dir, &mm,
						 &sm.internaldate) < 0)
				sm.internaldate = 0;
		}
		if (text) {
			sm.header_has = imap_search_header_has;
			sm.body_has = imap_search_body_has;
			sm.text_has = imap_search_text_has;
			sm.sent_date = imap_search_sent_date;
		}
		if (imap_search_match(prog, &sm, (uint32_t)b->n, max_uid))
			hits[nhits++] = c->uid ? m->uid : (uint32_t)(i + 1);
	}
	imap_search_free(prog);
	if (ret & IMAP_ESEARCH) {
		imap_esearch_answer(&sb, c->tag, c->uid, ret, hits, nhits);
	} else {
		strbuf_appends(&sb, "SEARCH");
		for (size_t k = 0; k < nhits; k++)
			strbuf_appendf(&sb, " %u", hits[k]);
	}
	free(hits);
	imap_write(s, "* ", 2);
	imap_write(s, sb.buf, sb.len);
	imap_write(s, "\r\n", 2);
	strbuf_free(&sb);
	imap_ok(s, c, "SEARCH completed");
}
