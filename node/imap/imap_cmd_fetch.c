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
	struct imap_args_fetch a; /* the set and the items */
	size_t next;		  /* index of the next message to look at */
	size_t sent;		  /* bytes queued in this slice */
	size_t missing;		  /* messages whose file could not be read */
	size_t expunged;	  /* asked for, expunged by another session */
	size_t unknown_cte; /* BINARY of a part in an encoding not known */
	bool want_mime;	    /* some item needs the structure */
	bool hdr_only;	    /* the text items need only the top-level header */
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
	case IMAP_FETCH_BINARY:
	case IMAP_FETCH_BINARY_SIZE:
		return true;
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
	case IMAP_FETCH_BINARY:
	case IMAP_FETCH_BINARY_SIZE:
		return false;
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
	imap_fetch_free(&j->a.f);
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

/* ---- one handler per FETCH item ---- */

/* What an item's handler works on: message i of the selected mailbox,
 * its text and structure when the job needs them, and the answer. */
struct imap_fetch_ctx {
	struct imap_session *s;
	size_t i;
	struct imap_msg *m;
	struct imap_loaded *msg;      /* NULL unless the job needs text */
	const struct imap_mime *mime; /* NULL unless the job needs text */
	struct strbuf *sb;	      /* the answer */
	struct strbuf *tmp;	      /* a built section (HEADER.FIELDS) */
	bool uid_told, flags_told;
	bool unknown_cte; /* a BINARY item could not decode its part */
};

/* Appends item it's answer ("FLAGS (\Seen)", "BODY[] {3}\r\nabc") to
 * x->sb. Returns 0, or -1 when x->sb is full. */
typedef int imap_fetch_item_fn(struct imap_fetch_ctx *x,
			       const struct imap_fetch_item *it);

static int
imap_fetch_flags(struct imap_fetch_ctx *x, const struct imap_fetch_item *it)
{
	(void)it;
	x->flags_told = true;
	if (strbuf_appends(x->sb, "FLAGS (") < 0 ||
	    imap_flags_tell(&x->s->box, x->m->flags, x->sb) < 0 ||
	    strbuf_appends(x->sb, ")") < 0)
		return -1;
	return 0;
}

static int
imap_fetch_uid(struct imap_fetch_ctx *x, const struct imap_fetch_item *it)
{
	(void)it;
	x->uid_told = true;
	if (strbuf_appends(x->sb, "UID ") < 0 ||
	    strbuf_append_u64(x->sb, x->m->uid) < 0)
		return -1;
	return 0;
}

/* The size the name gives, else the loaded message's (read now if the
 * name said nothing). */
static int
imap_fetch_size(struct imap_fetch_ctx *x, const struct imap_fetch_item *it)
{
	(void)it;
	uint64_t size = x->m->size;
	if (x->msg)
		size = x->msg->len;
	else if (size == 0 &&
		 (x->msg = imap_mailbox_load(x->s, x->i, false)) != NULL)
		size = x->msg->len;
	if (strbuf_appends(x->sb, "RFC822.SIZE ") < 0 ||
	    strbuf_append_u64(x->sb, size) < 0)
		return -1;
	return 0;
}

static int
imap_fetch_internaldate(struct imap_fetch_ctx *x,
			const struct imap_fetch_item *it)
{
	(void)it;
	struct maildir_msg mm;
	time_t t;
	imap_msg_get(&x->s->box, x->i, &mm);
	if (maildir_internaldate(x->s->box.dir, &mm, &t) < 0)
		t = 0;
	if (strbuf_appends(x->sb, "INTERNALDATE ") < 0 ||
	    imap_date_time_format(t, x->sb) < 0)
		return -1;
	return 0;
}

static int
imap_fetch_envelope(struct imap_fetch_ctx *x, const struct imap_fetch_item *it)
{
	(void)it;
	if (strbuf_appends(x->sb, "ENVELOPE ") < 0 ||
	    imap_mime_envelope(x->mime, x->sb) < 0)
		return -1;
	return 0;
}

/* BODY (non-extensible) and BODYSTRUCTURE. */
static int
imap_fetch_structure(struct imap_fetch_ctx *x, const struct imap_fetch_item *it)
{
	bool ext = it->kind == IMAP_FETCH_BODYSTRUCTURE;
	if (strbuf_appends(x->sb, ext ? "BODYSTRUCTURE " : "BODY ") < 0 ||
	    imap_mime_bodystructure(x->mime, ext, x->sb) < 0)
		return -1;
	return 0;
}

static int
imap_fetch_rfc822(struct imap_fetch_ctx *x, const struct imap_fetch_item *it)
{
	(void)it;
	return imap_fetch_literal(x->sb, NULL, "RFC822", x->msg->data,
				  x->msg->len);
}

/* RFC822.HEADER and RFC822.TEXT: BODY[HEADER] and BODY[TEXT] by their
 * old names. */
static int
imap_fetch_rfc822_part(struct imap_fetch_ctx *x,
		       const struct imap_fetch_item *it)
{
	bool hdr = it->kind == IMAP_FETCH_RFC822_HEADER;
	const char *data;
	size_t len;
	if (imap_mime_section(x->mime, NULL, 0,
			      hdr ? IMAP_SECT_HEADER : IMAP_SECT_TEXT, NULL, 0,
			      x->tmp, &data, &len) < 0)
		return -1;
	return imap_fetch_literal(
	    x->sb, NULL, hdr ? "RFC822.HEADER" : "RFC822.TEXT", data, len);
}

/* BODY[section]<partial> and BODY.PEEK[...]. */
static int
imap_fetch_section(struct imap_fetch_ctx *x, const struct imap_fetch_item *it)
{
	const char *data;
	size_t len;
	struct strbuf name;
	int rc = -1;
	if (it->nparts == 0 && it->spec == IMAP_SECT_ALL) {
		data = x->msg->data;
		len = x->msg->len;
	} else if (imap_mime_section(
		       x->mime, it->part, it->nparts, it->spec,
		       (const char(*)[IMAP_FIELD_NAME_MAX])it->fields,
		       it->nfields, x->tmp, &data, &len) < 0)
		return -1;
	strbuf_init(&name, 4096);
	if (imap_fetch_item_name(it, &name) == 0 &&
	    imap_fetch_literal(x->sb, it, strbuf_str(&name), data, len) == 0)
		rc = 0;
	strbuf_free(&name);
	return rc;
}

/* BINARY[part]<partial>, BINARY.PEEK[...] and BINARY.SIZE[part] (RFC
 * 3516): the part decoded, as a literal8 ("~{n}") when it holds a NUL. A
 * part in an encoding not known goes as it is, and the FETCH ends NO
 * [UNKNOWN-CTE]. */
static int
imap_fetch_binary(struct imap_fetch_ctx *x, const struct imap_fetch_item *it)
{
	char *data;
	size_t len;
	bool unknown;
	struct strbuf name;
	int rc = -1;
	if (imap_mime_binary(x->mime, it->part, it->nparts, &data, &len,
			     &unknown) < 0)
		return -1;
	x->unknown_cte |= unknown;
	strbuf_init(&name, 4096);
	if (imap_fetch_item_name(it, &name) < 0)
		goto out;
	if (it->kind == IMAP_FETCH_BINARY_SIZE) {
		rc = strbuf_appendf(x->sb, "%s %zu", strbuf_str(&name), len);
		goto out;
	}
	const char *d = data;
	if (it->partial) {
		size_t off = it->offset < len ? it->offset : len;
		d += off;
		len -= off;
		if (it->count < len)
			len = it->count;
	}
	rc = strbuf_appendf(x->sb, "%s %s{%zu}\r\n", strbuf_str(&name),
			    memchr(d, '\0', len) ? "~" : "", len) < 0
		 ? -1
		 : strbuf_append(x->sb, d, len);
out:
	strbuf_free(&name);
	free(data);
	return rc;
}

/* The handlers, by item kind (as imap_cmd.c's table is by command). */
static imap_fetch_item_fn *const imap_fetch_items[] = {
    [IMAP_FETCH_FLAGS] = imap_fetch_flags,
    [IMAP_FETCH_INTERNALDATE] = imap_fetch_internaldate,
    [IMAP_FETCH_RFC822_SIZE] = imap_fetch_size,
    [IMAP_FETCH_UID] = imap_fetch_uid,
    [IMAP_FETCH_ENVELOPE] = imap_fetch_envelope,
    [IMAP_FETCH_BODY] = imap_fetch_structure,
    [IMAP_FETCH_BODYSTRUCTURE] = imap_fetch_structure,
    [IMAP_FETCH_RFC822] = imap_fetch_rfc822,
    [IMAP_FETCH_RFC822_HEADER] = imap_fetch_rfc822_part,
    [IMAP_FETCH_RFC822_TEXT] = imap_fetch_rfc822_part,
    [IMAP_FETCH_SECTION] = imap_fetch_section,
    [IMAP_FETCH_BINARY] = imap_fetch_binary,
    [IMAP_FETCH_BINARY_SIZE] = imap_fetch_binary,
};

/* Reads what the job's items need of message i into x: the header's
 * structure alone (hdr_only) or the whole message. Returns 0, or 1 when
 * the file could not be read (errno set); *hmime is the header's
 * structure to free. */
static int
imap_fetch_text(struct imap_fetch_ctx *x, const struct imap_fetch_job *j,
		struct imap_mime **hmime)
{
	*hmime = NULL;
	if (!j->a.f.needs_text)
		return 0;
	if (j->hdr_only) {
		if ((*hmime = imap_fetch_header_mime(x->s, x->i)) == NULL)
			return 1;
		x->mime = *hmime;
		return 0;
	}
	if ((x->msg = imap_mailbox_load(x->s, x->i, j->want_mime)) == NULL)
		return 1;
	x->mime = x->msg->mime;
	return 0;
}

/* One message's FETCH answer into sb. Returns 0, 1 when the message file
 * could not be read (nothing appended), -1 when sb is full. */
static int
imap_fetch_one(struct imap_session *s, struct imap_fetch_job *j, size_t i,
	       struct strbuf *sb)
{
	struct imap_mime *hmime;
	struct strbuf tmp;
	struct imap_fetch_ctx x = {
	    .s = s, .i = i, .m = &s->box.msg[i], .sb = sb, .tmp = &tmp};
	int rc = -1;

	if (imap_fetch_text(&x, j, &hmime) != 0)
		return 1;
	/* Fetching the body sets \Seen (RFC 3501 6.4.5), and the answer
	 * then carries the new flags. */
	bool add_flags = false;
	if (j->a.f.sets_seen && !s->box.readonly &&
	    !(x.m->flags & IMAP_F_SEEN)) {
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
	if (strbuf_appends(sb, "* ") < 0 || strbuf_append_u64(sb, i + 1) < 0 ||
	    strbuf_appends(sb, " FETCH (") < 0)
		goto out;
	for (size_t k = 0; k < j->a.f.n; k++) {
		const struct imap_fetch_item *it = &j->a.f.item[k];
		strbuf_reset(&tmp);
		if ((k > 0 && strbuf_appends(sb, " ") < 0) ||
		    imap_fetch_items[it->kind](&x, it) < 0)
			goto out;
	}
	if (j->uid && !x.uid_told &&
	    ((j->a.f.n > 0 && strbuf_appends(sb, " ") < 0) ||
	     imap_fetch_uid(&x, NULL) < 0))
		goto out;
	if (add_flags && !x.flags_told &&
	    (strbuf_appends(sb, " ") < 0 || imap_fetch_flags(&x, NULL) < 0))
		goto out;
	if (strbuf_appends(sb, ")\r\n") < 0)
		goto out;
	if (x.unknown_cte)
		j->unknown_cte++;
	rc = 0;
out:
	strbuf_free(&tmp);
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
	size_t unknown_cte = j->unknown_cte;
	s->job = NULL;
	imap_job_free(j);
	if (missing)
		imap_no(s, &c, "Some messages could not be read");
	else if (expunged) /* RFC 5530; EXPUNGE is told when it may be */
		imap_no(s, &c, "%s", IMAP_EXPUNGEISSUED);
	else if (unknown_cte)
		imap_no(s, &c, "[UNKNOWN-CTE] Cannot decode some parts");
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
		if (!imap_mailbox_in_set(&s->box, i, &j->a.set, j->uid))
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
	if (imap_args_fetch(&c->cur, &j->a) < 0) {
		imap_bad(s, c, "%s",
			 c->cur.err[0] ? c->cur.err : "Invalid FETCH");
		imap_job_free(j);
		return;
	}
	snprintf(j->tag, sizeof(j->tag), "%s", c->tag);
	j->uid = c->uid;
	j->hdr_only = true;
	for (size_t k = 0; k < j->a.f.n; k++) {
		if (imap_item_needs_mime(&j->a.f.item[k]))
			j->want_mime = true;
		if (!imap_item_header_only(&j->a.f.item[k]))
			j->hdr_only = false;
	}
	s->job = j;
	imap_fetch_continue(s);
}
