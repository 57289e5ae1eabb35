/* POST /api/send: a message composed in the browser, as JSON, made into
 * a MIME message (RFC 5322, 2045-2047, 2231) and sent through exactly the
 * submission rules SMTP applies (node/submit): the sender is the user's
 * own address or one of its aliases, Message-ID: and Date: are added,
 * local recipients go to the store (or spool), remote ones to the
 * outbound queue. Lines are CRLF whatever the browser sent (bare CR and
 * LF normalised); text goes quoted-printable, attachments base64. A copy,
 * seen, goes into the user's Sent (made on first use), under its UID
 * lease, which is taken before anything is sent: the route runs again
 * once it is held, so it sends once. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../../common/fdio.h"
#include "../../common/log.h"
#include "../../common/sasl.h"
#include "../../common/token.h"
#include "../mailnode.h"
#include "../store/notice.h"
#include "../submit/submit.h"
#include "http_api.h"

#define SEND_FIELD_MAX 998  /* a header line (RFC 5322 2.1.1) */
#define SEND_ATTACH_MAX 100 /* attachments in one message */
#define SEND_NAME_MAX 255   /* an attachment's file name */
#define SEND_SENT "Sent"    /* the folder of the copies */

struct send_ctx {
	struct http_session *s;
	json_t *o;
	struct strbuf msg;
	struct submit_rcpts rc;
	char sender[DIR_ADDR_MAX];
	char boundary[2][40];
	const char *error; /* 400's reason */
	int status;	   /* of the error; 0: none */
	char why[DIR_ADDR_MAX + 64];
};

static void
send_fail(struct send_ctx *c, int status, const char *why)
{
	if (c->status == 0) {
		c->status = status;
		c->error = why;
	}
}

/* A value of a header: printable, no CR or LF (no header injection). */
static bool
send_header_ok(const char *v)
{
	if (strlen(v) > SEND_FIELD_MAX)
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static bool
send_ascii(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p >= 0x80)
			return false;
	return true;
}

/* The address of "Name <addr>" or "addr" into out; false when it is not
 * one (one '@', no blanks, nothing odd). */
static bool
send_address(const char *entry, char *out, size_t outlen)
{
	const char *lt = strrchr(entry, '<'), *p = entry;
	size_t n = strlen(entry);
	if (lt) {
		const char *gt = strchr(lt, '>');
		if (gt == NULL)
			return false;
		p = lt + 1;
		n = (size_t)(gt - p);
	}
	while (n > 0 && (*p == ' ' || *p == '\t'))
		p++, n--;
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= outlen)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	const char *at = strchr(out, '@');
	if (at == NULL || at == out || at[1] == '\0' || strchr(at + 1, '@'))
		return false;
	for (const unsigned char *q = (const unsigned char *)out; *q; q++)
		if (*q <= 0x20 || *q >= 0x7f || strchr("<>()[]\\,;:\"", *q))
			return false;
	return true;
}

/* An encoded word for UTF-8 text (RFC 2047), split where a word would
 * pass 75 characters and never inside a character. */
static void
send_encoded_words(struct strbuf *sb, const char *v)
{
	size_t n = strlen(v), i = 0;
	while (i < n) {
		size_t k = n - i < 45 ? n - i : 45;
		while (i + k < n && ((unsigned char)v[i + k] & 0xc0) == 0x80)
			k--;
		char b64[64];
		base64_encode((const unsigned char *)v + i, k, b64,
			      sizeof(b64));
		strbuf_appendf(sb, "%s=?UTF-8?B?%s?=", i ? "\r\n " : "", b64);
		i += k;
	}
}

/* "Name: value\r\n", value encoded when it is not ASCII. */
static void
send_header(struct strbuf *sb, const char *name, const char *v)
{
	strbuf_appendf(sb, "%s: ", name);
	if (send_ascii(v))
		strbuf_appends(sb, v);
	else
		send_encoded_words(sb, v);
	strbuf_appends(sb, "\r\n");
}

/* A list of recipients (an array of strings, or one string of them
 * separated by commas) added to the message's recipients and, unless
 * hidden (Bcc), to the header field name. */
static void
send_rcpt_list(struct send_ctx *c, const char *key, const char *name,
	       bool hidden)
{
	json_t *v = json_object_get(c->o, key);
	char *copy = NULL, addr[DIR_ADDR_MAX];
	const char *entries[DIR_MAX_TARGETS * 16];
	size_t n = 0;
	struct strbuf line;
	strbuf_init(&line, 64 * 1024);
	if (v == NULL)
		goto out;
	if (json_is_string(v)) {
		copy = strdup(json_string_value(v));
		if (copy == NULL) {
			send_fail(c, 503, "out of memory");
			goto out;
		}
		for (char *save, *t = strtok_r(copy, ",", &save); t;
		     t = strtok_r(NULL, ",", &save)) {
			if (strspn(t, " \t") == strlen(t))
				continue;
			if (n == sizeof(entries) / sizeof(*entries)) {
				send_fail(c, 400, "too many recipients");
				goto out;
			}
			entries[n++] = t;
		}
	} else if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			if (!json_is_string(e)) {
				send_fail(c, 400, "recipients: strings");
				goto out;
			}
			if (n == sizeof(entries) / sizeof(*entries)) {
				send_fail(c, 400, "too many recipients");
				goto out;
			}
			entries[n++] = json_string_value(e);
		}
	} else {
		send_fail(c, 400, "recipients: a string or an array");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *e = entries[i];
		while (*e == ' ' || *e == '\t')
			e++;
		if (!send_header_ok(e) ||
		    !send_address(e, addr, sizeof(addr))) {
			snprintf(c->why, sizeof(c->why), "bad address: %.200s",
				 e);
			send_fail(c, 400, c->why);
			goto out;
		}
		if (c->rc.nrcpt >= (size_t)c->s->mn->cfg->max_recipients) {
			send_fail(c, 400, "too many recipients");
			goto out;
		}
		/* the size is known at the end (send_deliver) */
		switch (submit_add_rcpt(c->s->mn, &c->rc, addr, true, 0)) {
		case SUBMIT_RCPT_OK:
			break;
		case SUBMIT_RCPT_UNKNOWN:
		case SUBMIT_RCPT_RELAY_DENIED:
			snprintf(c->why, sizeof(c->why), "%s: no such user",
				 addr);
			send_fail(c, 400, c->why);
			goto out;
		case SUBMIT_RCPT_NOT_LOADED:
			send_fail(c, 503, "directory not loaded yet");
			goto out;
		case SUBMIT_RCPT_FULL:
		case SUBMIT_RCPT_TOO_BIG:
			snprintf(c->why, sizeof(c->why),
				 "%s: mailbox full (over its quota)", addr);
			send_fail(c, 507, c->why);
			goto out;
		case SUBMIT_RCPT_NOMEM:
			send_fail(c, 503, "out of memory");
			goto out;
		}
		if (hidden)
			continue;
		/* a display name that is not ASCII: the address alone */
		strbuf_appends(&line, line.len ? ",\r\n " : "");
		strbuf_appends(&line, send_ascii(e) ? e : addr);
	}
	if (line.len)
		strbuf_appendf(&c->msg, "%s: %s\r\n", name, strbuf_str(&line));
out:
	free(copy);
	strbuf_free(&line);
}

/* Optional string member; NULL when absent, "" for null. Fails the send
 * when it is another type or (header) not a header value. */
static const char *
send_string(struct send_ctx *c, const char *key, bool header)
{
	json_t *v = json_object_get(c->o, key);
	if (v == NULL || json_is_null(v))
		return NULL;
	if (!json_is_string(v) ||
	    (header && !send_header_ok(json_string_value(v)))) {
		snprintf(c->why, sizeof(c->why), "\"%s\": a string%s", key,
			 header ? " without control characters" : "");
		send_fail(c, 400, c->why);
		return NULL;
	}
	return json_string_value(v);
}

/* text quoted-printable (RFC 2045 6.7), its line ends made CRLF: lines
 * of at most 76 characters with soft breaks, '=' and bytes outside
 * printable ASCII escaped, blanks before a line end escaped. */
static void
send_qp(struct strbuf *sb, const char *t)
{
	size_t col = 0;
	for (const unsigned char *p = (const unsigned char *)t; *p; p++) {
		if (*p == '\r' || *p == '\n') {
			if (*p == '\r' && p[1] == '\n')
				p++;
			strbuf_appends(sb, "\r\n");
			col = 0;
			continue;
		}
		bool end = p[1] == '\0' || p[1] == '\r' || p[1] == '\n';
		bool plain = (*p >= 33 && *p <= 126 && *p != '=') ||
			     ((*p == ' ' || *p == '\t') && !end);
		size_t w = plain ? 1 : 3;
		if (col + w > 75) {
			strbuf_appends(sb, "=\r\n");
			col = 0;
		}
		if (plain)
			strbuf_append(sb, p, 1);
		else
			strbuf_appendf(sb, "=%02X", *p);
		col += w;
	}
	strbuf_appends(sb, "\r\n");
}

static void
send_text_part(struct strbuf *sb, const char *subtype, const char *t)
{
	strbuf_appendf(sb,
		       "Content-Type: text/%s; charset=utf-8\r\n"
		       "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
		       subtype);
	send_qp(sb, t);
}

/* The text, or text and HTML as multipart/alternative. */
static void
send_body(struct send_ctx *c, const char *text, const char *html)
{
	if (html == NULL) {
		send_text_part(&c->msg, "plain", text ? text : "");
		return;
	}
	strbuf_appendf(&c->msg,
		       "Content-Type: multipart/alternative; "
		       "boundary=\"%s\"\r\n\r\n--%s\r\n",
		       c->boundary[1], c->boundary[1]);
	send_text_part(&c->msg, "plain", text ? text : "");
	strbuf_appendf(&c->msg, "--%s\r\n", c->boundary[1]);
	send_text_part(&c->msg, "html", html);
	strbuf_appendf(&c->msg, "--%s--\r\n", c->boundary[1]);
}

/* A type as given when it is type/subtype of token characters. */
static const char *
send_type(const char *t)
{
	static const char tchar[] = "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
				    "!#$&-^_.+";
	const char *slash = t ? strchr(t, '/') : NULL;
	if (slash == NULL || slash == t || strlen(t) > 127 ||
	    strspn(t, tchar) != (size_t)(slash - t) ||
	    strspn(slash + 1, tchar) != strlen(slash + 1) || slash[1] == '\0')
		return "application/octet-stream";
	return t;
}

/* One attachment {"name":..,"type":..,"data":BASE64}: its part. */
static void
send_attachment(struct send_ctx *c, json_t *a)
{
	const char *name = json_string_value(json_object_get(a, "name"));
	const char *type = json_string_value(json_object_get(a, "type"));
	const char *data = json_string_value(json_object_get(a, "data"));
	if (name == NULL || data == NULL || strlen(name) > SEND_NAME_MAX ||
	    !send_header_ok(name)) {
		send_fail(c, 400, "an attachment: name and data (base64)");
		return;
	}
	size_t dlen = strlen(data);
	unsigned char *raw = malloc(dlen / 4 * 3 + 3);
	long n = raw ? base64_decode(data, dlen, raw, dlen / 4 * 3 + 3) : -1;
	if (n < 0) {
		free(raw);
		send_fail(c, 400, "an attachment's data is not base64");
		return;
	}
	strbuf_appendf(&c->msg, "--%s\r\nContent-Type: %s\r\n", c->boundary[0],
		       send_type(type));
	/* the name in RFC 2231's form: UTF-8, percent-encoded */
	strbuf_appends(&c->msg, "Content-Disposition: attachment;\r\n "
				"filename*=UTF-8''");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (strchr(
			"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"0123456789.-_",
			*p) &&
		    *p)
			strbuf_append(&c->msg, p, 1);
		else
			strbuf_appendf(&c->msg, "%%%02X", *p);
	strbuf_appends(&c->msg,
		       "\r\nContent-Transfer-Encoding: base64\r\n\r\n");
	for (long i = 0; i < n; i += 57) {
		char line[80];
		size_t k = n - i < 57 ? (size_t)(n - i) : 57;
		base64_encode(raw + i, k, line, sizeof(line));
		strbuf_appendf(&c->msg, "%s\r\n", line);
	}
	free(raw);
}

/* The whole message into c->msg. */
static void
send_build(struct send_ctx *c)
{
	const char *subject = send_string(c, "subject", true);
	const char *text = send_string(c, "text", false);
	const char *html = send_string(c, "html", false);
	const char *irt = send_string(c, "in_reply_to", true);
	const char *refs = send_string(c, "references", true);
	json_t *att = json_object_get(c->o, "attachments");
	if (att && !json_is_array(att))
		send_fail(c, 400, "\"attachments\": an array");
	if (att && json_array_size(att) > SEND_ATTACH_MAX)
		send_fail(c, 400, "too many attachments");
	if (c->status)
		return;
	strbuf_appendf(&c->msg, "From: %s\r\n", c->sender);
	send_rcpt_list(c, "to", "To", false);
	send_rcpt_list(c, "cc", "Cc", false);
	send_rcpt_list(c, "bcc", "Bcc", true);
	if (c->status)
		return;
	if (c->rc.nrcpt == 0) {
		send_fail(c, 400, "no recipient");
		return;
	}
	send_header(&c->msg, "Subject", subject ? subject : "");
	if (irt && irt[0])
		send_header(&c->msg, "In-Reply-To", irt);
	if (refs && refs[0])
		send_header(&c->msg, "References", refs);
	strbuf_appends(&c->msg, "MIME-Version: 1.0\r\n");
	if (att == NULL || json_array_size(att) == 0) {
		send_body(c, text, html);
		return;
	}
	strbuf_appendf(&c->msg,
		       "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
		       "--%s\r\n",
		       c->boundary[0], c->boundary[0]);
	send_body(c, text, html);
	size_t i;
	json_t *a;
	json_array_foreach(att, i, a) send_attachment(c, a);
	strbuf_appendf(&c->msg, "--%s--\r\n", c->boundary[0]);
}

/* The copy in Sent: the message with the headers submission added. A
 * failure is logged, not answered: the message is on its way. */
static void
send_keep_copy(struct send_ctx *c, const char *added)
{
	struct http_session *s = c->s;
	char userdir[API_PATH_MAX], dir[API_PATH_MAX];
	uint32_t uidv, uid;
	size_t alen = strlen(added);
	char *copy = malloc(alen + c->msg.len);
	if (copy == NULL || api_user_dir(s, userdir, sizeof(userdir)) < 0 ||
	    maildir_mailbox_path(userdir, SEND_SENT, dir, sizeof(dir)) < 0)
		goto fail;
	memcpy(copy, added, alen);
	memcpy(copy + alen, strbuf_str(&c->msg), c->msg.len);
	if (maildir_append(dir, s->mn->store.hostname, copy, alen + c->msg.len,
			   "S", 0, api_lease_of(s, SEND_SENT), &uidv, &uid) < 0)
		goto fail;
	notice_changed(s->mn->store.notice, s->user, SEND_SENT);
	free(copy);
	return;
fail:
	log_warn("http %s: no copy in %s for %s: %s", s->logid, SEND_SENT,
		 s->user, strerror(errno));
	free(copy);
}

/* Writes the message to a spool file and delivers it. */
static void
send_deliver(struct send_ctx *c)
{
	struct http_session *s = c->s;
	struct mailnode *mn = s->mn;
	char id[48], added[512], prefix[2048], date[64], qid[64], logid[48];
	char mid[256] = "";
	time_t now = time(NULL);
	struct tm tm;
	int fd = spool_tmpfile(mn->spool);
	if (fd < 0 || fd_write_all(fd, strbuf_str(&c->msg), c->msg.len) < 0) {
		log_err("http %s: spool: %s", s->logid, strerror(errno));
		http_respond_error(s, 503, "spool unavailable");
		goto out;
	}
	snprintf(id, sizeof(id), "W%08lX%s", (unsigned long)now, s->logid);
	submit_added_headers(mn, fd, c->msg.len, id, added, sizeof(added));
	const char *m = strstr(added, "Message-ID: ");
	if (m)
		snprintf(mid, sizeof(mid), "%.*s", (int)strcspn(m + 12, "\r"),
			 m + 12);
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	snprintf(prefix, sizeof(prefix),
		 "Return-Path: <%s>\r\n"
		 "Received: from webmail ([%s])\r\n"
		 "\tby %s (mailnode %s) with HTTP id %s;\r\n"
		 "\t%s\r\n%s",
		 c->sender, s->peerhost, mn->cfg->hostname, mn->cfg->name, id,
		 date, added);
	snprintf(logid, sizeof(logid), "http %s", s->logid);
	struct submit_message qm = {.id = s->logid,
				    .sender = c->sender,
				    .logid = logid,
				    .fd = fd,
				    .datasize = c->msg.len};
	if (submit_quota_data(mn, &c->rc, &qm, c->msg.len + strlen(prefix))) {
		http_respond_error(s, 507, "the message would exceed the "
					   "recipients' quota");
		goto out;
	}
	const char *how = submit_deliver(mn, &c->rc, c->sender, fd, c->msg.len,
					 prefix, logid, qid, sizeof(qid));
	if (how == NULL) {
		http_respond_error(s, 503, "temporary local failure");
		goto out;
	}
	send_keep_copy(c, added);
	log_info("http %s: send from=<%s> rcpts=%zu remote=%zu forwarded=%zu "
		 "size=%zu user=%s %s%s%s",
		 s->logid, c->sender, c->rc.nmbox, c->rc.nremote, c->rc.nfwd,
		 c->msg.len, s->user, how, qid[0] ? " queue_id=" : "", qid);
	struct strbuf sb;
	strbuf_init(&sb, 1024);
	strbuf_appends(&sb, "{\"status\":");
	strbuf_append_json(&sb, how);
	strbuf_appends(&sb, ",\"message_id\":");
	strbuf_append_json(&sb, mid);
	strbuf_appends(&sb, ",\"queue_id\":");
	strbuf_append_json(&sb, qid);
	strbuf_appendf(&sb, ",\"local\":%zu,\"remote\":%zu}", c->rc.nmbox,
		       c->rc.nremote + c->rc.nfwd);
	api_json(s, 200, NULL, &sb);
	strbuf_free(&sb);
out:
	if (fd >= 0)
		close(fd);
}

void
api_send(struct http_session *s)
{
	struct send_ctx c = {.s = s};
	json_error_t err;
	strbuf_init(&c.msg, s->mn->cfg->msg_max);
	c.o = json_loadb(s->body, s->bodylen, 0, &err);
	if (c.o == NULL || !json_is_object(c.o)) {
		http_respond_error(s, 400, "a JSON object is expected");
		goto out;
	}
	const char *from = send_string(&c, "from", true);
	if (c.status)
		goto fail;
	snprintf(c.sender, sizeof(c.sender), "%s", from ? from : s->user);
	if (!submit_sender_allowed(s->mn->dir, s->user, c.sender)) {
		http_respond_error(s, 403, "sender address not owned by user");
		goto out;
	}
	if (api_lease_of(s, SEND_SENT) == NULL) {
		if (api_folder_ensure(s, SEND_SENT) < 0)
			goto out;
		if (api_lease_take(s, SEND_SENT, 1) == NULL)
			http_respond_error(s, 503, "out of memory");
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		char tok[25];
		token_hex(tok, 24);
		snprintf(c.boundary[i], sizeof(c.boundary[i]), "=_ms%d_%s", i,
			 tok);
	}
	send_build(&c);
	if (c.status)
		goto fail;
	if (c.msg.overflow) {
		http_respond_error(s, 413, "message too large");
		goto out;
	}
	send_deliver(&c);
	goto out;
fail:
	http_respond_error(s, c.status, c.error);
out:
	json_decref(c.o);
	strbuf_free(&c.msg);
	submit_free(&c.rc);
}
