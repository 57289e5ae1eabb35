/* SORT, UID SORT, THREAD and UID THREAD (RFC 5256): the search program
 * picks the messages (imap_search_run), their keys are read here (the
 * header through the node's header cache, the arrival from the file),
 * imap_sort.c orders and threads them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "imap.h"
#include "imap_mime.h"
#include "imap_search.h"
#include "imap_sort.h"

#define IMAP_SORT_HDR_MAX 4096 /* a header value read for a key */

/* What the keys need of the message's header. */
struct imap_sort_need {
	bool header, subject, from, to, cc, date, arrival, refs;
};

static char *
imap_sort_dup(const char *s)
{
	return *s ? strdup(s) : NULL;
}

/* The first mailbox of field into *out (NULL when none). */
static void
imap_sort_addr(const char *hdr, size_t len, const char *field, char **out)
{
	char v[IMAP_SORT_HDR_MAX], mbox[IMAP_SORT_STR_MAX];
	*out = NULL;
	if (!imap_hdr_text(hdr, len, field, v, sizeof(v)))
		return;
	imap_first_mailbox(v, mbox, sizeof(mbox));
	*out = imap_sort_dup(mbox);
}

/* Message i's keys into m. */
static void
imap_sort_keys(struct imap_session *s, size_t i,
	       const struct imap_sort_need *need, struct imap_sort_msg *m)
{
	struct imap_mailbox *b = &s->box;
	char v[IMAP_SORT_HDR_MAX];
	m->seq = (uint32_t)(i + 1);
	m->uid = b->msg[i].uid;
	m->size = b->msg[i].size;
	if (need->arrival) {
		struct maildir_msg mm;
		imap_msg_get(b, i, &mm);
		if (maildir_internaldate(b->dir, &mm, &m->arrival) < 0)
			m->arrival = 0;
		m->date = m->arrival;
	}
	const char *hdr;
	size_t len;
	if (!need->header || imap_mailbox_header(s, i, &hdr, &len) < 0)
		return; /* unreadable: empty keys, sorted first */
	time_t sent;
	if (need->date && imap_hdr_date(hdr, len, &sent))
		m->date = sent; /* else the arrival (RFC 5256 2.2) */
	if (need->subject) {
		char base[IMAP_SORT_STR_MAX];
		if (!imap_hdr_text(hdr, len, "Subject", v, sizeof(v)))
			v[0] = '\0';
		imap_base_subject(v, base, sizeof(base), &m->refwd);
		m->subject = imap_sort_dup(base);
	}
	if (need->from)
		imap_sort_addr(hdr, len, "From", &m->from);
	if (need->to)
		imap_sort_addr(hdr, len, "To", &m->to);
	if (need->cc)
		imap_sort_addr(hdr, len, "Cc", &m->cc);
	if (need->refs) {
		char refs[4 * IMAP_SORT_HDR_MAX];
		if (imap_hdr_text(hdr, len, "Message-ID", v, sizeof(v)))
			m->msgid = imap_sort_dup(v);
		if (imap_hdr_text(hdr, len, "References", refs, sizeof(refs)) ||
		    imap_hdr_text(hdr, len, "In-Reply-To", refs, sizeof(refs)))
			m->refs = imap_sort_dup(refs);
	}
}

/* The messages the search program after c's cursor matches, with their
 * keys; NULL (answered) on a bad program or when memory is short. */
static struct imap_sort_msg *
imap_sort_select(struct imap_session *s, struct imap_cmd *c,
		 const struct imap_sort_need *need, size_t *n)
{
	struct imap_mailbox *b = &s->box;
	struct imap_search *prog = NULL;
	uint64_t maxmod;
	if (imap_search_parse(&c->cur, &prog) < 0) {
		imap_bad(s, c, "%s", c->cur.err);
		return NULL;
	}
	bool *match = calloc(b->n + 1, sizeof(*match));
	struct imap_sort_msg *msgs = calloc(b->n + 1, sizeof(*msgs));
	if (match == NULL || msgs == NULL) {
		imap_search_free(prog);
		free(match);
		free(msgs);
		imap_no(s, c, "[SERVERBUG] Out of memory");
		return NULL;
	}
	imap_search_run(s, prog, match, &maxmod);
	imap_search_free(prog);
	*n = 0;
	for (size_t i = 0; i < b->n; i++)
		if (match[i])
			imap_sort_keys(s, i, need, &msgs[(*n)++]);
	free(match);
	return msgs;
}

void
imap_cmd_sort(struct imap_session *s, struct imap_cmd *c)
{
	struct imap_sort_prog p;
	struct imap_sort_need need = {0};
	struct strbuf sb;
	size_t n;
	if (imap_sort_parse(&c->cur, &p) < 0) {
		if (strncmp(c->cur.err, "[BADCHARSET", 11) == 0)
			imap_no(s, c, "%s", c->cur.err);
		else
			imap_bad(s, c, "%s", c->cur.err);
		return;
	}
	for (size_t k = 0; k < p.n; k++) {
		switch (p.crit[k].key) {
		case IMAP_SORT_ARRIVAL:
			need.arrival = true;
			break;
		case IMAP_SORT_DATE:
			need.arrival = need.date = need.header = true;
			break;
		case IMAP_SORT_SUBJECT:
			need.subject = need.header = true;
			break;
		case IMAP_SORT_FROM:
			need.from = need.header = true;
			break;
		case IMAP_SORT_TO:
			need.to = need.header = true;
			break;
		case IMAP_SORT_CC:
			need.cc = need.header = true;
			break;
		case IMAP_SORT_SIZE:
			break;
		}
	}
	struct imap_sort_msg *msgs = imap_sort_select(s, c, &need, &n);
	if (msgs == NULL)
		return;
	imap_sort_msgs(msgs, n, &p);
	strbuf_init(&sb, 16 * (n + 16));
	strbuf_appends(&sb, "* SORT");
	for (size_t i = 0; i < n; i++)
		strbuf_appendf(&sb, " %u", c->uid ? msgs[i].uid : msgs[i].seq);
	strbuf_appends(&sb, "\r\n");
	imap_write(s, sb.buf, sb.len);
	strbuf_free(&sb);
	imap_sort_msgs_free(msgs, n);
	imap_ok(s, c, "SORT completed");
}

void
imap_cmd_thread(struct imap_session *s, struct imap_cmd *c)
{
	enum imap_thread_algo algo;
	struct strbuf sb;
	size_t n;
	if (imap_thread_parse(&c->cur, &algo) < 0) {
		if (strncmp(c->cur.err, "[BADCHARSET", 11) == 0)
			imap_no(s, c, "%s", c->cur.err);
		else
			imap_bad(s, c, "%s", c->cur.err);
		return;
	}
	struct imap_sort_need need = {.header = true,
				      .subject = true,
				      .arrival = true,
				      .date = true,
				      .refs = algo == IMAP_THREAD_REFERENCES};
	struct imap_sort_msg *msgs = imap_sort_select(s, c, &need, &n);
	if (msgs == NULL)
		return;
	strbuf_init(&sb, 32 * (n + 16));
	strbuf_appends(&sb, n ? "* THREAD " : "* THREAD");
	int rc = imap_thread(msgs, n, algo, c->uid, &sb);
	imap_sort_msgs_free(msgs, n);
	if (rc < 0 || strbuf_appends(&sb, "\r\n") < 0) {
		strbuf_free(&sb);
		imap_no(s, c, "[SERVERBUG] Out of memory");
		return;
	}
	imap_write(s, sb.buf, sb.len);
	strbuf_free(&sb);
	imap_ok(s, c, "THREAD completed");
}
