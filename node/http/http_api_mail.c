/* The web role's mail changes and reading (DESIGN.md "Web role"):
 * POST /api/messages/UID/flags, POST /api/messages/UID/move,
 * DELETE /api/messages/UID (to Trash; in Trash: expunged),
 * GET /api/messages/UID/parts (the headers and the leaves of the MIME
 * tree), GET /api/messages/UID/parts/N (one leaf decoded, with its type)
 * and GET /api/search. MIME is read with IMAP's parser (imap_mime.h);
 * every change is announced on ms:imap (notice.h) as IMAP's are. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../imap/imap_mime.h"
#include "../mailnode.h"
#include "../store/notice.h"
#include "../store/uid_lease.h"
#include "http_api.h"

#define API_TRASH "Trash"
#define API_QUERY_MAX 256 /* a search's q */
#define API_HDR_MAX 4096  /* a header value in /parts */

/* The message UID of the request's mailbox (mail waiting for UIDs gets
 * them first, as a listing would give them). Returns 0 with *m, 1 (put
 * off: the route runs again), or -1 (answered). */
static int
api_find(struct http_session *s, char *name, size_t namelen, char *dir,
	 size_t dirlen, struct maildir_msg *m)
{
	struct maildir_list l;
	if (api_mailbox_dir(s, name, namelen, dir, dirlen) < 0)
		return -1;
	int rc = api_scan(s, dir, name, &l);
	if (rc != 0)
		return rc;
	const struct maildir_msg *f = maildir_find(&l, api_path_uid(s));
	if (f)
		*m = *f;
	maildir_list_free(&l);
	if (f == NULL) {
		http_respond_error(s, 404, "no such message");
		return -1;
	}
	return 0;
}

/* The whole message, malloc'ed, at most the node's message size. Returns
 * it, or NULL (answered). */
static char *
api_read_msg(struct http_session *s, const char *dir, struct maildir_msg *m,
	     size_t *len)
{
	struct stat st;
	int fd = maildir_open(dir, m);
	char *buf = NULL;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		http_respond_error(s, 404, "no such message");
		goto out;
	}
	if ((size_t)st.st_size > s->mn->cfg->msg_max * 2) {
		http_respond_error(s, 413, "message too large to show");
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		http_respond_error(s, 503, "out of memory");
		goto out;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n =
		    pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
		if (n <= 0) {
			http_respond_error(s, 503, "store unavailable");
			free(buf);
			buf = NULL;
			goto out;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	*len = got;
out:
	if (fd >= 0)
		close(fd);
	return buf;
}

/* The JSON body as an object, or NULL (answered). */
static json_t *
api_body_object(struct http_session *s)
{
	json_error_t err;
	json_t *o =
	    s->bodylen ? json_loadb(s->body, s->bodylen, 0, &err) : NULL;
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		http_respond_error(s, 400, "a JSON object is expected");
		return NULL;
	}
	return o;
}

/* ---- flags ---- */

static const struct {
	char letter;
	const char *name;
} api_flag_names[] = {
    {'S', "\\Seen"},	{'R', "\\Answered"}, {'F', "\\Flagged"},
    {'T', "\\Deleted"}, {'D', "\\Draft"},
};

/* The letters of a JSON array of flag names. Returns 0, or -1 when it is
 * not one or names an unknown flag. */
static int
api_flag_letters(const json_t *a, char *out, size_t outlen)
{
	size_t i, k = 0;
	json_t *v;
	out[0] = '\0';
	if (a == NULL)
		return 0;
	if (!json_is_array(a))
		return -1;
	json_array_foreach(a, i, v)
	{
		const char *name = json_string_value(v);
		size_t j, n = sizeof(api_flag_names) / sizeof(*api_flag_names);
		for (j = 0; name && j < n; j++)
			if (strcasecmp(name, api_flag_names[j].name) == 0)
				break;
		if (name == NULL || j == n || k + 1 >= outlen)
			return -1;
		out[k++] = api_flag_names[j].letter;
		out[k] = '\0';
	}
	return 0;
}

void
api_flags(struct http_session *s)
{
	char name[MAILDIR_MBOX_MAX + 8], dir[API_PATH_MAX];
	char add[8], del[8];
	struct maildir_msg m;
	json_t *o = api_body_object(s);
	if (o == NULL)
		return;
	if (api_flag_letters(json_object_get(o, "add"), add, sizeof(add)) < 0 ||
	    api_flag_letters(json_object_get(o, "remove"), del, sizeof(del)) <
		0) {
		json_decref(o);
		http_respond_error(s, 400,
				   "\"add\" and \"remove\": arrays of flags");
		return;
	}
	json_decref(o);
	if (api_find(s, name, sizeof(name), dir, sizeof(dir), &m) != 0)
		return;
	if (maildir_change_flags(dir, &m, add, del, NULL) < 0) {
		http_respond_error(s, errno == ENOENT ? 404 : 503,
				   errno == ENOENT ? "no such message"
						   : "store unavailable");
		return;
	}
	notice_changed(s->mn->store.notice, s->user, name);
	struct strbuf sb;
	strbuf_init(&sb, 1024);
	strbuf_appendf(&sb, "{\"uid\":%" PRIu32 ",\"flags\":", m.uid);
	api_flags_json(&sb, dir, m.flags, NULL);
	strbuf_appends(&sb, "}");
	api_json(s, 200, NULL, &sb);
	strbuf_free(&sb);
}

/* ---- move and delete ---- */

/* Moves the request's message to mailbox `to` under to's UID lease
 * (taken first: the route runs again with s->uid_ctr), as IMAP's MOVE
 * does: copied, then the original expunged. create: make `to` when it
 * does not exist (Trash). */
static void
api_move_to(struct http_session *s, const char *to, bool create)
{
	char name[MAILDIR_MBOX_MAX + 8], dir[API_PATH_MAX];
	char userdir[API_PATH_MAX], dst[API_PATH_MAX];
	struct maildir_msg m;
	uint32_t uidv, uid;
	if (api_find(s, name, sizeof(name), dir, sizeof(dir), &m) != 0 ||
	    api_user_dir(s, userdir, sizeof(userdir)) < 0)
		return;
	if (maildir_mailbox_path(userdir, to, dst, sizeof(dst)) < 0) {
		http_respond_error(s, 400, "bad mailbox name");
		return;
	}
	if (strcmp(dst, dir) == 0) {
		http_respond_error(s, 400, "the message is there already");
		return;
	}
	if (create && api_folder_ensure(s, to) < 0)
		return;
	struct maildir_counter *ctr = api_lease_of(s, to);
	if (ctr == NULL) {
		if (api_lease_take(s, to, 1) == NULL)
			http_respond_error(s, 503, "out of memory");
		return;
	}
	if (maildir_copy(dir, &m, 1, dst, s->mn->store.hostname, ctr, &uidv,
			 &uid) < 0) {
		if (errno == ENOENT && access(dst, F_OK) < 0)
			http_respond_error(s, 404, "no such mailbox");
		else
			http_respond_error(s, errno == ENOENT ? 404 : 503,
					   errno == ENOENT
					       ? "no such message"
					       : "store unavailable");
		return;
	}
	if (maildir_expunge(dir, &m) < 0)
		log_warn("http %s: expunge after move: %s", s->logid,
			 strerror(errno));
	notice_changed(s->mn->store.notice, s->user, name);
	notice_changed(s->mn->store.notice, s->user, to);
	struct strbuf sb;
	strbuf_init(&sb, 1024);
	strbuf_appendf(&sb, "{\"uid\":%" PRIu32 ",\"mailbox\":", uid);
	strbuf_append_json(&sb, maildir_mailbox_canon(to));
	strbuf_appends(&sb, "}");
	api_json(s, 200, NULL, &sb);
	strbuf_free(&sb);
}

void
api_move(struct http_session *s)
{
	char to[MAILDIR_MBOX_MAX + 8];
	json_t *o = api_body_object(s);
	if (o == NULL)
		return;
	const char *v = json_string_value(json_object_get(o, "mailbox"));
	if (v == NULL || strlen(v) >= sizeof(to)) {
		json_decref(o);
		http_respond_error(s, 400, "\"mailbox\" expected");
		return;
	}
	snprintf(to, sizeof(to), "%s", v);
	json_decref(o);
	api_move_to(s, to, false);
}

void
api_delete(struct http_session *s)
{
	char name[MAILDIR_MBOX_MAX + 8], dir[API_PATH_MAX];
	struct maildir_msg m;
	int r = http_query_get(s->rq.query, "mailbox", name, sizeof(name));
	if (r <= 0 || strcmp(name, API_TRASH) != 0) {
		api_move_to(s, API_TRASH, true);
		return;
	}
	if (api_find(s, name, sizeof(name), dir, sizeof(dir), &m) != 0)
		return;
	if (maildir_expunge(dir, &m) < 0) {
		http_respond_error(s, 503, "store unavailable");
		return;
	}
	notice_changed(s->mn->store.notice, s->user, name);
	struct strbuf sb;
	strbuf_init(&sb, 256);
	strbuf_appends(&sb, "{\"expunged\":true}");
	api_json(s, 200, NULL, &sb);
	strbuf_free(&sb);
}

/* ---- parts ---- */

static void
api_json_member(struct strbuf *sb, const char *name, const char *v, bool first)
{
	strbuf_appendf(sb, "%s\"%s\":", first ? "" : ",", name);
	if (v)
		strbuf_append_json(sb, v);
	else
		strbuf_appends(sb, "null");
}

static int
api_leaf_json(void *arg, const struct imap_mime_leaf *l)
{
	struct strbuf *sb = arg;
	char type[160];
	snprintf(type, sizeof(type), "%s/%s", l->type, l->subtype);
	strbuf_appends(sb,
		       sb->len > 0 && sb->buf[sb->len - 1] == '[' ? "{" : ",{");
	api_json_member(sb, "part", l->section, true);
	api_json_member(sb, "type", type, false);
	api_json_member(sb, "charset", l->charset, false);
	api_json_member(sb, "name", l->name, false);
	api_json_member(sb, "cid", l->cid, false);
	api_json_member(sb, "disposition", l->disposition, false);
	strbuf_appendf(sb, ",\"size\":%zu}", l->bodylen);
	return 0;
}

void
api_parts(struct http_session *s)
{
	static const char *const fields[][2] = {
	    {"from", "From"},
	    {"to", "To"},
	    {"cc", "Cc"},
	    {"reply_to", "Reply-To"},
	    {"subject", "Subject"},
	    {"date", "Date"},
	    {"message_id", "Message-ID"},
	    {"in_reply_to", "In-Reply-To"},
	    {"references", "References"},
	};
	char name[MAILDIR_MBOX_MAX + 8], dir[API_PATH_MAX], v[API_HDR_MAX];
	struct maildir_msg m;
	size_t len;
	if (api_find(s, name, sizeof(name), dir, sizeof(dir), &m) != 0)
		return;
	char *msg = api_read_msg(s, dir, &m, &len);
	if (msg == NULL)
		return;
	struct imap_mime *mime = imap_mime_parse(msg, len);
	struct strbuf sb;
	strbuf_init(&sb, HTTP_LIST_MAX);
	if (mime == NULL) {
		http_respond_error(s, 503, "out of memory");
		goto out;
	}
	strbuf_appendf(&sb, "{\"uid\":%" PRIu32 ",\"flags\":", m.uid);
	api_flags_json(&sb, dir, m.flags, NULL);
	strbuf_appends(&sb, ",\"headers\":{");
	for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++)
		api_json_member(
		    &sb, fields[i][0],
		    imap_mime_header_get(mime, fields[i][1], v, sizeof(v))
			? v
			: NULL,
		    i == 0);
	strbuf_appends(&sb, "},\"parts\":[");
	imap_mime_leaves(mime, api_leaf_json, &sb);
	if (strbuf_appends(&sb, "]}") < 0 || sb.overflow)
		http_respond_error(s, 500, "answer too large");
	else
		api_json(s, 200, NULL, &sb);
out:
	imap_mime_free(mime);
	strbuf_free(&sb);
	free(msg);
}

struct api_part_find {
	const char *section;
	struct imap_mime_leaf leaf;
	bool found;
};

static int
api_part_match(void *arg, const struct imap_mime_leaf *l)
{
	struct api_part_find *f = arg;
	if (strcmp(l->section, f->section) != 0)
		return 0;
	f->leaf = *l;
	f->found = true;
	return 1;
}

/* A type or parameter as sent back: token characters only, else the
 * fallback. */
static const char *
api_token_or(const char *v, const char *fallback)
{
	if (v == NULL || v[0] == '\0' || strlen(v) > 64 ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789!#$&-^_.+") != strlen(v))
		return fallback;
	return v;
}

/* GET /api/messages/UID/parts/N: the leaf decoded, with its type (and
 * charset for text), never run by the browser as a page of ours: a CSP
 * of its own that allows nothing, in a sandbox. ?download=1 makes it an
 * attachment with its file name. */
void
api_part(struct http_session *s)
{
	char name[MAILDIR_MBOX_MAX + 8], dir[API_PATH_MAX];
	char ctype[256], extra[1024], dl[8];
	struct maildir_msg m;
	struct api_part_find f = {.section = api_path_part(s)};
	size_t len, dlen = 0;
	if (api_find(s, name, sizeof(name), dir, sizeof(dir), &m) != 0)
		return;
	char *msg = api_read_msg(s, dir, &m, &len);
	if (msg == NULL)
		return;
	struct imap_mime *mime = imap_mime_parse(msg, len);
	char *data = NULL;
	if (mime == NULL) {
		http_respond_error(s, 503, "out of memory");
		goto out;
	}
	imap_mime_leaves(mime, api_part_match, &f);
	if (!f.found) {
		http_respond_error(s, 404, "no such part");
		goto out;
	}
	data = imap_mime_leaf_decode(&f.leaf, &dlen);
	if (data == NULL) {
		http_respond_error(s, 503, "out of memory");
		goto out;
	}
	const char *type = api_token_or(f.leaf.type, "application");
	const char *sub = api_token_or(f.leaf.subtype, "octet-stream");
	const char *cs = api_token_or(f.leaf.charset, NULL);
	snprintf(ctype, sizeof(ctype), "%s/%s%s%s", type, sub,
		 cs && strcmp(type, "text") == 0 ? "; charset=" : "",
		 cs && strcmp(type, "text") == 0 ? cs : "");
	bool download =
	    http_query_get(s->rq.query, "download", dl, sizeof(dl)) == 1 &&
	    strcmp(dl, "1") == 0;
	int n = snprintf(extra, sizeof(extra),
			 "Content-Security-Policy: default-src 'none'; "
			 "style-src 'unsafe-inline'; sandbox\r\n"
			 "X-Content-Type-Options: nosniff\r\n"
			 "Cache-Control: private, max-age=3600\r\n");
	if (download) {
		/* the name percent-encoded (RFC 6266, RFC 8187) */
		const char *fn = f.leaf.name ? f.leaf.name : "part";
		n += snprintf(extra + n, sizeof(extra) - (size_t)n,
			      "Content-Disposition: attachment; "
			      "filename*=UTF-8''");
		for (const unsigned char *p = (const unsigned char *)fn;
		     *p && (size_t)n + 8 < sizeof(extra); p++)
			n += snprintf(extra + n, sizeof(extra) - (size_t)n,
				      strchr("abcdefghijklmnopqrstuvwxyz"
					     "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					     "0123456789.-_",
					     *p)
					  ? "%c"
					  : "%%%02X",
				      *p);
		snprintf(extra + n, sizeof(extra) - (size_t)n, "\r\n");
	}
	http_respond(s, 200, ctype, extra, data, dlen);
out:
	free(data);
	imap_mime_free(mime);
	free(msg);
}

/* ---- search ---- */

/* Whether the message m of dir holds the query q (arg) in From, To, Cc,
 * Subject or a text part; messages over twice msg_max are not read. */
static bool
api_search_match(struct http_session *s, const char *dir,
		 const struct maildir_msg *m, void *arg)
{
	const char *q = arg;
	size_t max = s->mn->cfg->msg_max * 2;
	static const char *const fields[] = {"From", "To", "Cc", "Subject"};
	struct maildir_msg at = *m;
	struct stat st;
	bool hit = false;
	int fd = maildir_open(dir, &at);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) < 0 || (size_t)st.st_size > max) {
		close(fd);
		return false;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	ssize_t got = buf ? pread(fd, buf, (size_t)st.st_size, 0) : -1;
	close(fd);
	struct imap_mime *mime =
	    got >= 0 ? imap_mime_parse(buf, (size_t)got) : NULL;
	for (size_t i = 0; mime && !hit && i < sizeof(fields) / sizeof(*fields);
	     i++)
		hit = imap_mime_header_has(mime, fields[i], q);
	if (mime && !hit)
		hit = imap_mime_body_has(mime, q);
	imap_mime_free(mime);
	free(buf);
	return hit;
}

void
api_search(struct http_session *s)
{
	char q[API_QUERY_MAX];
	if (http_query_get(s->rq.query, "q", q, sizeof(q)) != 1 ||
	    q[0] == '\0') {
		http_respond_error(s, 400, "a search text q is expected");
		return;
	}
	api_message_list(s, api_search_match, q);
}
