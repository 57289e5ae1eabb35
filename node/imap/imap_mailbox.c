/* The selected mailbox of an IMAP session: its messages by sequence
 * number, kept in step with the shared Maildir (what other sessions on
 * any node delivered, flagged or expunged), message reading for FETCH and
 * SEARCH, and the store's change notices that wake IDLE sessions
 * on every node. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/redis.h"
#include "imap.h"
#include "imap_cache.h"
#include "imap_listing.h"
#include "imap_mime.h"

#define IMAP_HDR_READ_MAX 65536 /* read for a header section, at most */

/* ---- names ---- */

int
imap_mailbox_dir(const struct imap_session *s, const char *mailbox, char *out,
		 size_t outlen)
{
	if (!imap_mutf7_valid(mailbox)) {
		errno = EINVAL;
		return -1;
	}
	return maildir_mailbox_path(s->userdir, mailbox, out, outlen);
}

/* ---- \Recent ---- */

/* Claims \Recent for the UIDs below uidnext no session claimed yet
 * (maildir_recent_claim): those are recent to this session alone. A
 * read-only session claims nothing and sees as recent what no one
 * claimed. */
static void
imap_recent_take(struct imap_session *s, uint32_t uidnext)
{
	struct imap_mailbox *b = &s->box;
	uint32_t from;
	if (maildir_recent_claim(b->dir, uidnext, b->readonly, &from) < 0)
		log_warn("imap %s: \\Recent of %s: %s", s->id, b->dir,
			 strerror(errno));
	b->recent_from = from;
	b->recent_to = b->readonly ? UINT32_MAX : uidnext;
}

/* ---- the message list ---- */

static int
imap_box_grow(struct imap_mailbox *b, size_t want)
{
	if (want <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < want)
		cap *= 2;
	struct imap_msg *m = realloc(b->msg, cap * sizeof(*m));
	if (m == NULL)
		return -1;
	b->msg = m;
	b->cap = cap;
	return 0;
}

/* ---- file names: one arena per mailbox ---- */

/* Appends name to b's arena; *off is where. Returns 0 or -1 (ENOMEM). */
static int
imap_names_add(struct imap_mailbox *b, const char *name, uint32_t *off)
{
	size_t len = strlen(name) + 1;
	if (b->names_len + len > UINT32_MAX) {
		errno = ENOMEM;
		return -1;
	}
	if (b->names_len + len > b->names_cap) {
		size_t cap = b->names_cap ? b->names_cap : 4096;
		while (cap < b->names_len + len)
			cap *= 2;
		char *p = realloc(b->names, cap);
		if (p == NULL)
			return -1;
		b->names = p;
		b->names_cap = cap;
	}
	memcpy(b->names + b->names_len, name, len);
	*off = (uint32_t)b->names_len;
	b->names_len += len;
	return 0;
}

/* Rewrites the arena without what renames and expunges left in it, once
 * that is more than half of it (best effort). */
static void
imap_names_compact(struct imap_mailbox *b)
{
	if (b->names_dead * 2 <= b->names_len)
		return;
	size_t live = 1;
	for (size_t i = 0; i < b->n; i++)
		live += strlen(b->names + b->msg[i].name) + 1;
	char *p = malloc(live);
	if (p == NULL)
		return;
	size_t o = 0;
	for (size_t i = 0; i < b->n; i++) {
		const char *name = b->names + b->msg[i].name;
		size_t len = strlen(name) + 1;
		memcpy(p + o, name, len);
		b->msg[i].name = (uint32_t)o;
		o += len;
	}
	free(b->names);
	b->names = p;
	b->names_len = o;
	b->names_cap = live;
	b->names_dead = 0;
}

const char *
imap_msg_name(const struct imap_mailbox *b, size_t i)
{
	return b->names + b->msg[i].name;
}

void
imap_msg_get(const struct imap_mailbox *b, size_t i, struct maildir_msg *out)
{
	const char *name = imap_msg_name(b, i);
	const char *info = strstr(name, ":2,");
	out->uid = b->msg[i].uid;
	out->size = b->msg[i].size;
	snprintf(out->name, sizeof(out->name), "%s", name);
	snprintf(out->flags, sizeof(out->flags), "%s", info ? info + 3 : "");
}

void
imap_msg_put(struct imap_mailbox *b, size_t i, const struct maildir_msg *m)
{
	struct imap_msg *msg = &b->msg[i];
	size_t old = strlen(imap_msg_name(b, i)) + 1;
	msg->size = m->size;
	if (strcmp(imap_msg_name(b, i), m->name) == 0)
		return;
	if (imap_names_add(b, m->name, &msg->name) == 0)
		b->names_dead += old;
}

/* Room for l's messages and names, exactly (a mailbox selected by many
 * sessions is held once per session). Returns 0 or -1. */
static int
imap_box_reserve(struct imap_mailbox *b, const struct maildir_list *l)
{
	size_t names = 1;
	for (size_t i = 0; i < l->n; i++)
		names += strlen(l->msg[i].name) + 1;
	b->msg = malloc((l->n + 1) * sizeof(*b->msg));
	b->names = malloc(names);
	if (b->msg == NULL || b->names == NULL)
		return -1;
	b->cap = l->n + 1;
	b->names_cap = names;
	return 0;
}

/* Message i of a fresh listing: its numbers, name and flags. */
static int
imap_msg_init(struct imap_mailbox *b, struct imap_msg *m,
	      const struct maildir_msg *from)
{
	memset(m, 0, sizeof(*m));
	m->uid = from->uid;
	m->size = from->size;
	m->flags = imap_flags_from_maildir(from->flags);
	if (m->uid >= b->recent_from && m->uid < b->recent_to) {
		m->flags |= IMAP_F_RECENT;
		b->recent++;
	}
	return imap_names_add(b, from->name, &m->name);
}

/* Scans the Maildir, or takes the node's listing of it when nothing
 * changed since (imap_listing.h: the directories' times first, so that a
 * change made during the scan shows at the next check); with ctr (the
 * UID lease held), scans afresh giving UIDs to what waits. */
static int
imap_box_scan(struct imap_session *s, struct maildir_counter *ctr,
	      struct maildir_list *l)
{
	struct imap_mailbox *b = &s->box;
	int rc;
	b->changed = false;
	if (ctr) {
		imap_mtime(b->dir, "cur", &b->cur_mtime);
		imap_mtime(b->dir, "new", &b->new_mtime);
		rc = maildir_assign(b->dir, ctr, l);
	} else {
		rc = imap_listing_scan(s->mn->imap_listings, b->dir, l,
				       &b->cur_mtime, &b->new_mtime);
	}
	b->pending = rc == 0 ? l->pending : 0;
	return rc;
}

bool
imap_mailbox_waiting(struct imap_session *s)
{
	struct imap_mailbox *b = &s->box;
	struct timespec new;
	char path[PATH_MAX + 8];
	if (b->pending > 0)
		return true;
	if (!imap_mtime(b->dir, "new", &new) || imap_ts_eq(new, b->new_mtime))
		return false;
	snprintf(path, sizeof(path), "%s/new", b->dir);
	DIR *d = opendir(path);
	if (d == NULL)
		return false;
	struct dirent *de;
	bool any = false;
	while (!any && (de = readdir(d)) != NULL)
		any = de->d_name[0] != '.';
	closedir(d);
	return any;
}

int
imap_mailbox_open(struct imap_session *s, const char *mailbox, bool readonly)
{
	struct imap_mailbox *b = &s->box;
	struct maildir_list l = {0};
	char dir[PATH_MAX];
	struct stat st;
	char cur[sizeof(dir) + 8];

	imap_mailbox_close(s);
	if (imap_mailbox_dir(s, mailbox, dir, sizeof(dir)) < 0)
		return -1;
	snprintf(cur, sizeof(cur), "%s/cur", dir);
	if (stat(cur, &st) < 0 || !S_ISDIR(st.st_mode)) {
		errno = ENOENT;
		return -1;
	}
	memset(b, 0, sizeof(*b));
	if ((b->dir = strdup(dir)) == NULL)
		goto fail;
	snprintf(b->name, sizeof(b->name), "%s",
		 maildir_mailbox_canon(mailbox));
	b->readonly = readonly;
	imap_modseq_open(s); /* the log before the scan */
	if (imap_box_scan(s, NULL, &l) < 0)
		goto fail;
	if (imap_box_reserve(b, &l) < 0) {
		errno = ENOMEM;
		goto fail;
	}
	imap_keywords_sync(s, false);
	b->uidvalidity = l.uidvalidity;
	b->uidnext = l.uidnext;
	imap_recent_take(s, l.uidnext);
	for (size_t i = 0; i < l.n; i++)
		if (imap_msg_init(b, &b->msg[i], &l.msg[i]) < 0)
			goto fail;
	b->n = l.n;
	maildir_list_free(&l);
	return 0;
fail:;
	int e = errno;
	maildir_list_free(&l);
	free(b->dir);
	free(b->kw);
	free(b->msg);
	free(b->names);
	memset(b, 0, sizeof(*b));
	errno = e;
	return -1;
}

void
imap_mailbox_close(struct imap_session *s)
{
	imap_loaded_free(&s->cache);
	imap_modseq_close(s);
	free(s->box.dir);
	free(s->box.kw);
	free(s->box.msg);
	free(s->box.names);
	memset(&s->box, 0, sizeof(s->box));
}

long
imap_mailbox_find_uid(const struct imap_mailbox *b, uint32_t uid)
{
	size_t lo = 0, hi = b->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->msg[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < b->n && b->msg[lo].uid == uid ? (long)lo : -1;
}

bool
imap_mailbox_in_set(const struct imap_mailbox *b, size_t i,
		    const struct imap_seqset *set, bool uid)
{
	if (!uid)
		return imap_seqset_has(set, (uint32_t)(i + 1), (uint32_t)b->n);
	uint32_t max = b->n ? b->msg[b->n - 1].uid : 0;
	return imap_seqset_has(set, b->msg[i].uid, max);
}

/* Tells the flags of message i (after a change by someone else). */
static void
imap_tell_flags(struct imap_session *s, size_t i)
{
	struct strbuf sb;
	char modseq[40];
	strbuf_init(&sb, 256);
	imap_flags_tell(&s->box, s->box.msg[i].flags, &sb);
	imap_untagged(s, "%zu FETCH (UID %u FLAGS (%s)%s)", i + 1,
		      s->box.msg[i].uid, strbuf_str(&sb),
		      imap_modseq_item(s, i, modseq));
	strbuf_free(&sb);
}

/* Merges a fresh listing into the session's view: flags of messages both
 * know, new messages (UIDs above ours) at the end, and messages gone
 * marked. Returns 0 or -1 (out of memory). */
static int
imap_box_merge(struct imap_session *s, const struct maildir_list *l,
	       bool *flags_changed)
{
	struct imap_mailbox *b = &s->box;
	size_t j = 0;
	for (size_t i = 0; i < b->n; i++) {
		struct imap_msg *m = &b->msg[i];
		while (j < l->n && l->msg[j].uid < m->uid)
			j++; /* a UID below ours we never knew: cannot be */
		if (j >= l->n || l->msg[j].uid != m->uid) {
			m->gone = true;
			continue;
		}
		unsigned f = imap_flags_from_maildir(l->msg[j].flags) |
			     (m->flags & IMAP_F_RECENT);
		imap_msg_put(b, i, &l->msg[j]);
		if (f != m->flags) {
			m->flags = f;
			flags_changed[i] = true;
		}
		j++;
	}
	uint32_t max = b->n ? b->msg[b->n - 1].uid : 0;
	if (l->n > 0 && l->msg[l->n - 1].uid > max &&
	    l->msg[l->n - 1].uid >= b->recent_to)
		imap_recent_take(s, l->uidnext);
	for (j = 0; j < l->n; j++) {
		if (l->msg[j].uid <= max)
			continue;
		if (imap_box_grow(b, b->n + 1) < 0 ||
		    imap_msg_init(b, &b->msg[b->n], &l->msg[j]) < 0)
			return -1;
		b->n++;
	}
	imap_names_compact(b);
	if (l->uidnext > b->uidnext)
		b->uidnext = l->uidnext;
	return 0;
}

/* Scans (with ctr: assigning) and tells what changed. Returns 1, 0 when
 * the scan failed (logged; a deleted mailbox's messages are marked gone),
 * -1 when out of memory. */
static int
imap_box_update(struct imap_session *s, struct maildir_counter *ctr)
{
	struct imap_mailbox *b = &s->box;
	struct maildir_list l = {0};
	size_t before = b->n, recent_before = b->recent;
	imap_keywords_sync(s, s->state == IMAP_SELECTED);
	if (imap_box_scan(s, ctr, &l) < 0) {
		if (errno == ENOENT) /* the mailbox was deleted */
			for (size_t i = 0; i < b->n; i++)
				b->msg[i].gone = true;
		else
			log_warn("imap %s: scan %s: %s", s->id, b->dir,
				 strerror(errno));
		maildir_list_free(&l);
		return 0;
	}
	bool *changed = calloc(b->n + 1, sizeof(bool));
	if (changed == NULL || imap_box_merge(s, &l, changed) < 0) {
		log_warn("imap %s: out of memory syncing %s", s->id, b->dir);
		free(changed);
		maildir_list_free(&l);
		return -1;
	}
	maildir_list_free(&l);
	bool tell = s->state == IMAP_SELECTED;
	for (size_t i = 0; i < before && tell; i++)
		if (changed[i] && !b->msg[i].gone)
			imap_tell_flags(s, i);
	free(changed);
	if (tell && b->n != before)
		imap_untagged(s, "%zu EXISTS", b->n);
	if (tell && b->recent != recent_before)
		imap_untagged(s, "%zu RECENT", b->recent);
	return 1;
}

void
imap_mailbox_assign(struct imap_session *s, struct maildir_counter *ctr,
		    bool expunges)
{
	if (imap_box_update(s, ctr) >= 0 && s->state == IMAP_SELECTED)
		imap_mailbox_sync(s, expunges, false);
}

void
imap_mailbox_sync(struct imap_session *s, bool expunges, bool force)
{
	struct imap_mailbox *b = &s->box;
	struct timespec cur, new;

	if (s->state != IMAP_SELECTED)
		return;
	if (imap_modseq_refresh(s)) /* the log before the scan */
		force = true;
	if (!force && !b->changed && imap_mtime(b->dir, "cur", &cur) &&
	    imap_mtime(b->dir, "new", &new) && imap_ts_eq(cur, b->cur_mtime) &&
	    imap_ts_eq(new, b->new_mtime)) {
		goto tell_expunges; /* nothing new; earlier expunges maybe */
	}
	if (imap_box_update(s, NULL) < 0)
		return;
tell_expunges:
	if (!expunges)
		return;
	/* From the highest sequence number down, so that each number is
	 * still right when the client reads it. */
	size_t kept = 0;
	bool any = s->modseq.qresync && imap_qresync_tell_gone(s);
	for (size_t i = b->n; i-- > 0 && !s->modseq.qresync;)
		if (b->msg[i].gone) {
			imap_untagged(s, "%zu EXPUNGE", i + 1);
			any = true;
		}
	if (!any)
		return;
	for (size_t i = 0; i < b->n; i++) {
		if (b->msg[i].gone) {
			if (b->msg[i].flags & IMAP_F_RECENT)
				b->recent--;
			if (s->mn->imap_headers)
				imap_cache_forget(s->mn->imap_headers, b->dir,
						  imap_msg_name(b, i));
			b->names_dead += strlen(imap_msg_name(b, i)) + 1;
			continue;
		}
		b->msg[kept++] = b->msg[i];
	}
	b->n = kept;
	imap_names_compact(b);
	imap_loaded_free(&s->cache);
}

/* ---- messages ---- */

void
imap_loaded_free(struct imap_loaded *l)
{
	imap_mime_free(l->mime);
	free(l->data);
	memset(l, 0, sizeof(*l));
}

/* Opens message i (maildir_open: following a rename by another
 * session, whose new name is kept). Returns the fd or -1. */
static int
imap_msg_open(struct imap_session *s, size_t i)
{
	struct maildir_msg m;
	imap_msg_get(&s->box, i, &m);
	int fd = maildir_open(s->box.dir, &m);
	if (fd >= 0)
		imap_msg_put(&s->box, i, &m);
	return fd;
}

/* Reads fd whole, every line ending made CRLF. */
static int
imap_read_crlf(int fd, size_t max, char **out, size_t *outlen)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	if ((uint64_t)st.st_size > max) {
		errno = EFBIG;
		return -1;
	}
	size_t size = (size_t)st.st_size;
	char *raw = malloc(size + 1);
	if (raw == NULL)
		return -1;
	size_t got = 0;
	while (got < size) {
		ssize_t n = read(fd, raw + got, size - got);
		if (n < 0) {
			free(raw);
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	char *fixed;
	size_t fixedlen;
	if (imap_crlf(raw, got, &fixed, &fixedlen) < 0) {
		free(raw);
		return -1;
	}
	if (fixed == NULL) {
		raw[got] = '\0';
		*out = raw;
		*outlen = got;
		return 0;
	}
	free(raw);
	*out = fixed;
	*outlen = fixedlen;
	return 0;
}

int
imap_crlf(const char *data, size_t len, char **out, size_t *outlen)
{
	size_t bare = 0;
	*out = NULL;
	for (size_t k = 0; k < len; k++)
		if (data[k] == '\n' && (k == 0 || data[k - 1] != '\r'))
			bare++;
	if (bare == 0)
		return 0;
	char *b = malloc(len + bare + 1);
	if (b == NULL)
		return -1;
	size_t o = 0;
	for (size_t k = 0; k < len; k++) {
		if (data[k] == '\n' && (k == 0 || data[k - 1] != '\r'))
			b[o++] = '\r';
		b[o++] = data[k];
	}
	b[o] = '\0';
	*out = b;
	*outlen = o;
	return 0;
}

struct imap_loaded *
imap_mailbox_load(struct imap_session *s, size_t i, bool mime)
{
	struct imap_loaded *c = &s->cache;
	uint32_t uid = s->box.msg[i].uid;
	if (c->data == NULL || c->uid != uid) {
		imap_loaded_free(c);
		int fd = imap_msg_open(s, i);
		if (fd < 0)
			return NULL;
		size_t max = s->mn->cfg->msg_max_sent + 65536;
		int rc = imap_read_crlf(fd, max, &c->data, &c->len);
		int e = errno;
		close(fd);
		if (rc < 0) {
			errno = e;
			return NULL;
		}
		c->uid = uid;
	}
	if (mime && c->mime == NULL) {
		c->mime = imap_mime_parse(c->data, c->len);
		if (c->mime == NULL) {
			errno = ENOMEM;
			return NULL;
		}
	}
	return c;
}

/* Reads up to IMAP_HDR_READ_MAX bytes from fd's start, line ends made
 * CRLF, into *out (malloc'ed, for the caller to free); *hdrlen is the
 * length of the header section they hold, 0 when it does not end within
 * them. Returns 0 or -1 with errno. */
static int
imap_read_header(int fd, char **out, size_t *hdrlen)
{
	char *raw = malloc(IMAP_HDR_READ_MAX + 1);
	size_t got = 0;
	bool eof = false;
	*out = NULL;
	if (raw == NULL)
		return -1;
	while (got < IMAP_HDR_READ_MAX) {
		ssize_t n = read(fd, raw + got, IMAP_HDR_READ_MAX - got);
		if (n < 0) {
			free(raw);
			return -1;
		}
		if (n == 0) {
			eof = true;
			break;
		}
		got += (size_t)n;
	}
	char *fixed;
	size_t len;
	if (imap_crlf(raw, got, &fixed, &len) < 0) {
		free(raw);
		return -1;
	}
	if (fixed != NULL) {
		free(raw);
		raw = fixed;
	} else {
		len = got;
	}
	*hdrlen = imap_hdr_len(raw, len);
	if (*hdrlen == 0 && eof) /* no blank line: all header */
		*hdrlen = len;
	*out = raw;
	return 0;
}

int
imap_mailbox_header(struct imap_session *s, size_t i, const char **hdr,
		    size_t *len)
{
	struct imap_cache *hc = s->mn->imap_headers;
	if (hc != NULL) {
		const char *dir = s->box.dir;
		if ((*hdr = imap_cache_get(hc, dir, imap_msg_name(&s->box, i),
					   len)))
			return 0;
		int fd = imap_msg_open(s, i); /* may rename: name after it */
		if (fd < 0)
			return -1;
		char *buf;
		size_t hlen;
		int rc = imap_read_header(fd, &buf, &hlen);
		int e = errno;
		close(fd);
		if (rc < 0) {
			errno = e;
			return -1;
		}
		const char *name = imap_msg_name(&s->box, i);
		rc = hlen > 0 ? imap_cache_put(hc, dir, name, buf, hlen) : -1;
		free(buf);
		if (rc == 0 && (*hdr = imap_cache_get(hc, dir, name, len)))
			return 0;
	}
	struct imap_loaded *l = imap_mailbox_load(s, i, true);
	if (l == NULL)
		return -1;
	return imap_mime_section(l->mime, NULL, 0, IMAP_SECT_HEADER, NULL, 0,
				 NULL, hdr, len);
}

int
imap_mailbox_change_flags(struct imap_session *s, size_t i, unsigned add,
			  unsigned del, bool *renamed)
{
	struct imap_msg *m = &s->box.msg[i];
	struct maildir_msg mm;
	char plus[IMAP_FLAG_LETTERS], minus[IMAP_FLAG_LETTERS];
	imap_flags_to_maildir(add & ~(unsigned)IMAP_F_RECENT, plus);
	imap_flags_to_maildir(del & ~(unsigned)IMAP_F_RECENT, minus);
	imap_msg_get(&s->box, i, &mm);
	if (maildir_change_flags(s->box.dir, &mm, plus, minus, renamed) < 0)
		return -1;
	if (renamed && *renamed)
		imap_modseq_changed(s, m->uid, 'F');
	imap_msg_put(&s->box, i, &mm);
	m->flags =
	    imap_flags_from_maildir(mm.flags) | (m->flags & IMAP_F_RECENT);
	return 0;
}

/* ---- change notices ---- */

/* A notice (notice.h): the sessions that have user's mailbox selected
 * look again at their next sync, at once when idle; all of them when
 * everything may have changed (user NULL). */
static void
imap_on_notice(void *arg, const char *user, const char *mailbox)
{
	struct mailnode *mn = arg;

	for (struct imap_session *s = mn->imap_sessions; s; s = s->next) {
		if (s->state != IMAP_SELECTED)
			continue;
		/* (re)subscribed: something may have been missed */
		if (user == NULL) {
			s->box.changed = true;
			continue;
		}
		if (strcmp(s->user, user) != 0 ||
		    strcmp(s->box.name, mailbox) != 0)
			continue;
		s->box.changed = true;
		if (s->wait == IMAP_W_IDLE) {
			imap_mailbox_sync(s, true, true);
			imap_uid_idle(s);
		}
	}
}

int
imap_node_init(struct mailnode *mn)
{
	mn->imap_sessions = NULL;
	mn->imap_headers = imap_cache_new((size_t)mn->cfg->imap_header_cache);
	mn->imap_listings = imap_listings_new();
	if (mn->imap_headers == NULL || mn->imap_listings == NULL)
		return -1;
	return notice_listen(mn->store.notice, imap_on_notice, mn);
}

void
imap_node_free(struct mailnode *mn)
{
	imap_cache_free(mn->imap_headers);
	mn->imap_headers = NULL;
	imap_listings_free(mn->imap_listings);
	mn->imap_listings = NULL;
	notice_forget(mn->store.notice, mn);
}
