/* FETCH and UID FETCH (RFC 3501 6.4.5, 7.4.2). The answer goes out in
 * slices: after IMAP_OUT_SLICE bytes the job waits for the client to
 * read (stream_wait_drain) with input held, so a FETCH 1:* of a large
 * mailbox never sits whole in memory. A FETCH whose items need only the
 * top-level header (ENVELOPE, RFC822.HEADER, BODY[HEADER...]) reads it
 * through the node's header cache, not the whole message. A message
 * another session expunged (known gone, or its file missing when read)
 * gets no answer, and the command NO [EXPUNGEISSUED] (RFC 5530, RFC 2180
 * 4.1.2), but for one known gone in a UID FETCH, whose answer tells its
 * EXPUNGE; the others are answered. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "imap.h"
#include "imap_mime.h"

struct imap_fetch_job {
	char tag[IMAP_TAG_MAX + 1];
	bool uid;
	struct imap_fetch f;
	struct imap_seqset set;
	size_t next;	 /* index of the next message to look at */
	size_t sent;	 /* bytes queued in this slice */
	size_t missing;	 /* messages whose file could not be read */
	size_t expunged; /* asked for, expunged by another session */
	bool want_mime;	 /* some item needs the structure */
	bool hdr_only;	 /* the text items need only the top-level header */
};

static bool
imap_item_needs_mime(const struct imap_fetch_item *it)
{
	switch (it->kind) {
	case IMAP_FETCH_ENVELOPE:
	case IMAP_FETCH_BODY:
	case IMAP_FETCH_BODYSTRUCTURE:
	case IMAP_FETCH_RFC822_HEADER:
	case IMAP_FETCH_RFC822_TEXT:
		return true;
	case IMAP_FETCH_SECTION:
		return it->nparts > 0 || it->spec != IMAP_SECT_ALL;
	default:
		return false;
	}
}

/* Whether the item's answer depends on the top-level header alone. */
static bool
imap_item_header_only(const struct imap_fetch_item *it)
{
	switch (it->kind) {
	case IMAP_FETCH_ENVELOPE:
	case IMAP_FETCH_RFC822_HEADER:
		return true;
	case IMAP_FETCH_SECTION:
		return it->nparts == 0 &&
		       (it->spec == IMAP_SECT_HEADER ||
			it->spec == IMAP_SECT_HEADER_FIELDS ||
			it->spec == IMAP_SECT_HEADER_FIELDS_NOT);
	default: /* the rest needs no text, or more than the header */
		return !imap_item_needs_mime(it) &&
		       it->kind != IMAP_FETCH_RFC822;
	}
}

/* The structure of message i's header section alone (from the header
 * cache), for the items imap_item_header_only accepts; NULL with errno. */
static struct imap_mime *
imap_fetch_header_mime(struct imap_session *s, size_t i)
{
	const char *hdr;
	size_t len;
	if (imap_mailbox_header(s, i, &hdr, &len) < 0)
		return NULL;
	struct imap_mime *m = imap_mime_parse(hdr, len);
	if (m == NULL)
		errno = ENOMEM;
	return m;
}

static void
imap_job_free(struct imap_fetch_job *j)
{
	if (j == NULL)
		return;
	imap_fetch_free(&j->f);
	free(j);
}

/* "NAME {len}\r\n" and the bytes, with <partial> applied. */
static int
imap_fetch_literal(struct strbuf *sb, const struct imap_fetch_item *it,
		   const char *name, const char *data, size_t len)
{
	if (it && it->partial) {
		size_t off = it->offset < len ? it->offset : len;
		data += off;
		len -= off;
		if (it->count < len)
			len = it->count;
	}
	if (strbuf_appendf(sb, "%s {%zu}\r\n", name, len) < 0)
		return -1;
	return strbuf_append(sb, data, len);
}

/* One message's FETCH answer into sb. Returns 0, 1 when the message file
 * could not be read (nothing appended), -1 when sb is full. */
static int
imap_fetch_one(struct imap_session *s, struct imap_fetch_job *j, size_t i,
	       struct strbuf *sb)
{
	struct imap_msg *m = &s->box.msg[i];
	struct imap_loaded *msg = NULL;
	struct imap_mime *hmime = NULL; /* hdr_only: the header's */
	const struct imap_mime *mime = NULL;
	struct strbuf tmp, name;
	int rc = -1;

	if (j->f.needs_text && j->hdr_only) {
		if ((hmime = imap_fetch_header_mime(s, i)) == NULL)
			return 1;
		mime = hmime;
	} else if (j->f.needs_text) {
		msg = imap_mailbox_load(s, i, j->want_mime);
		if (msg == NULL)
			return 1;
		mime = msg->mime;
	}
	/* Fetching the body sets \Seen (RFC 3501 6.4.5), and the answer
	 * then carries the new flags. */
	bool add_flags = false;
	if (j->f.sets_seen && !s->box.readonly && !(m->flags & IMAP_F_SEEN)) {
		bool renamed;
		if (imap_mailbox_change_flags(s, i, IMAP_F_SEEN, 0, &renamed) ==
		    0) {
			add_flags = true;
			if (renamed)
				notice_changed(s->mn->store.notice, s->user,
					       s->box.name);
		}
	}
	strbuf_init(&tmp, s->mn->cfg->msg_max + 65536);
	strbuf_init(&name, 4096);
	if (strbuf_appends(sb, "* ") < 0 || strbuf_append_u64(sb, i + 1) < 0 ||
	    strbuf_appends(sb, " FETCH (") < 0)
		goto out;
	const char *sp = "";
	bool uid_told = false, flags_told = false;
	for (size_t k = 0; k < j->f.n; k++) {
		const struct imap_fetch_item *it = &j->f.item[k];
		const char *data;
		size_t len;
		if (strbuf_appends(sb, sp) < 0)
			goto out;
		sp = " ";
		strbuf_reset(&tmp);
		switch (it->kind) {
		case IMAP_FETCH_FLAGS:
			flags_told = true;
			if (strbuf_appends(sb, "FLAGS (") < 0 ||
			    imap_flags_format(m->flags, sb) < 0 ||
			    strbuf_appends(sb, ")") < 0)
				goto out;
			break;
		case IMAP_FETCH_UID:
			uid_told = true;
			if (strbuf_appends(sb, "UID ") < 0 ||
			    strbuf_append_u64(sb, m->uid) < 0)
				goto out;
			break;
		case IMAP_FETCH_RFC822_SIZE: {
			uint64_t size = m->size;
			if (msg)
				size = msg->len;
			else if (size == 0 &&
				 (msg = imap_mailbox_load(s, i, false)))
				size = msg->len;
			if (strbuf_appends(sb, "RFC822.SIZE ") < 0 ||
			    strbuf_append_u64(sb, size) < 0)
				goto out;
			break;
		}
		case IMAP_FETCH_INTERNALDATE: {
			time_t t;
			struct maildir_msg mm;
			imap_msg_get(&s->box, i, &mm);
			if (maildir_internaldate(s->box.dir, &mm, &t) < 0)
				t = 0;
			if (strbuf_appends(sb, "INTERNALDATE ") < 0 ||
			    imap_date_time_format(t, sb) < 0)
				goto out;
			break;
		}
		case IMAP_FETCH_ENVELOPE:
			if (strbuf_appends(sb, "ENVELOPE ") < 0 ||
			    imap_mime_envelope(mime, sb) < 0)
				goto out;
			break;
		case IMAP_FETCH_BODY:
		case IMAP_FETCH_BODYSTRUCTURE: {
			bool ext = it->kind == IMAP_FETCH_BODYSTRUCTURE;
			if (strbuf_appends(sb, ext ? "BODYSTRUCTURE "
						   : "BODY ") < 0 ||
			    imap_mime_bodystructure(mime, ext, sb) < 0)
				goto out;
			break;
		}
		case IMAP_FETCH_RFC822:
			if (imap_fetch_literal(sb, NULL, "RFC822", msg->data,
					       msg->len) < 0)
				goto out;
			break;
		case IMAP_FETCH_RFC822_HEADER:
		case IMAP_FETCH_RFC822_TEXT: {
			bool hdr = it->kind == IMAP_FETCH_RFC822_HEADER;
			if (imap_mime_section(mime, NULL, 0,
					      hdr ? IMAP_SECT_HEADER
						  : IMAP_SECT_TEXT,
					      NULL, 0, &tmp, &data, &len) < 0 ||
			    imap_fetch_literal(
				sb, NULL, hdr ? "RFC822.HEADER" : "RFC822.TEXT",
				data, len) < 0)
				goto out;
			break;
		}
		case IMAP_FETCH_SECTION:
			if (it->nparts == 0 && it->spec == IMAP_SECT_ALL) {
				data = msg->data;
				len = msg->len;
			} else if (imap_mime_section(
				       mime, it->part, it->nparts, it->spec,
				       (const char(*)[IMAP_FIELD_NAME_MAX])
					   it->fields,
				       it->nfields, &tmp, &data, &len) < 0)
				goto out;
			strbuf_reset(&name);
			if (imap_fetch_item_name(it, &name) < 0 ||
			    imap_fetch_literal(sb, it, strbuf_str(&name), data,
					       len) < 0)
				goto out;
			break;
		}
	}
	if (j->uid && !uid_told &&
	    (strbuf_appends(sb, sp) < 0 || strbuf_appends(sb, "UID ") < 0 ||
	     strbuf_append_u64(sb, m->uid) < 0))
		goto out;
	if (add_flags && !flags_told &&
	    (strbuf_appends(sb, " FLAGS (") < 0 ||
	     imap_flags_format(m->flags, sb) < 0 ||
	     strbuf_appends(sb, ")") < 0))
		goto out;
	if (strbuf_appends(sb, ")\r\n") < 0)
		goto out;
	rc = 0;
out:
	strbuf_free(&tmp);
	strbuf_free(&name);
	imap_mime_free(hmime);
	return rc;
}

static void
imap_fetch_finish(struct imap_session *s)
{
	struct imap_fetch_job *j = s->job;
	char tag[sizeof(j->tag)];
	memcpy(tag, j->tag, sizeof(tag));
	struct imap_cmd c = {.tag = tag, .name = "FETCH", .uid = j->uid};
	size_t missing = j->missing, expunged = j->expunged;
	s->job = NULL;
	imap_job_free(j);
	if (missing)
		imap_no(s, &c, "Some messages could not be read");
	else if (expunged) /* RFC 5530; EXPUNGE is told when it may be */
		imap_no(s, &c, "%s", IMAP_EXPUNGEISSUED);
	else
		imap_ok(s, &c, "FETCH completed");
}

void
imap_fetch_continue(struct imap_session *s)
{
	struct imap_fetch_job *j = s->job;
	struct strbuf sb;
	if (j == NULL)
		return;
	strbuf_init(&sb, s->mn->cfg->msg_max_sent + 65536);
	j->sent = 0;
	for (; j->next < s->box.n; j->next++) {
		size_t i = j->next;
		if (!imap_mailbox_in_set(&s->box, i, &j->set, j->uid))
			continue;
		if (s->box.msg[i].gone) {
			/* told EXPUNGE with a UID FETCH's answer: no more
			 * there than a UID never given */
			if (!j->uid)
				j->expunged++;
			continue;
		}
		strbuf_reset(&sb);
		int rc = imap_fetch_one(s, j, i, &sb);
		if (rc < 0) {
			log_err("imap %s: FETCH answer of message %zu too "
				"large",
				s->id, i + 1);
			j->missing++;
			continue;
		}
		if (rc > 0 && errno == ENOENT) { /* expunged meanwhile */
			j->expunged++;
			continue;
		}
		if (rc > 0) {
			log_err("imap %s: read %s/%s: %s", s->id, s->box.dir,
				imap_msg_name(&s->box, i), strerror(errno));
			j->missing++;
			continue;
		}
		imap_write(s, sb.buf, sb.len);
		j->sent += sb.len;
		if (s->state == IMAP_LOGOUT) /* the stream gave up */
			break;
		if (j->sent >= IMAP_OUT_SLICE && j->next + 1 < s->box.n) {
			j->next++;
			strbuf_free(&sb);
			if (s->wait != IMAP_W_BUSY)
				imap_hold(s);
			stream_wait_drain(s->st);
			return;
		}
	}
	strbuf_free(&sb);
	bool held = s->wait == IMAP_W_BUSY;
	imap_fetch_finish(s);
	if (held)
		imap_release(s);
}

void
imap_fetch_abort(struct imap_session *s)
{
	imap_job_free(s->job);
	s->job = NULL;
}

void
imap_cmd_fetch(struct imap_session *s, struct imap_cmd *c)
{
	struct imap_fetch_job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		imap_no(s, c, "[SERVERBUG] Out of memory");
		return;
	}
	if (imap_seqset(&c->cur, &j->set) < 0 || imap_sp(&c->cur) < 0 ||
	    imap_fetch_parse(&c->cur, &j->f) < 0 || imap_end(&c->cur) < 0) {
		imap_bad(s, c, "%s",
			 c->cur.err[0] ? c->cur.err : "Invalid FETCH");
		imap_job_free(j);
		return;
	}
	snprintf(j->tag, sizeof(j->tag), "%s", c->tag);
	j->uid = c->uid;
	j->hdr_only = true;
	for (size_t k = 0; k < j->f.n; k++) {
		if (imap_item_needs_mime(&j->f.item[k]))
			j->want_mime = true;
		if (!imap_item_header_only(&j->f.item[k]))
			j->hdr_only = false;
	}
	s->job = j;
	imap_fetch_continue(s);
}
