/* One Maildir message: opening it (following a rename), its flags,
 * expunge and INTERNALDATE; new messages (APPEND, COPY/MOVE) written to
 * tmp/ and published in cur/ under the UID lock, so that UIDs stay
 * unique and rise in the order messages become visible on every node;
 * and the few headers the API shows. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../common/fdio.h"
#include "../../common/log.h"
#include "maildir.h"
#include "maildir_int.h"
#include "quota.h"

#define MAILDIR_COPY_CHUNK 65536
#define MAILDIR_NAME_TRIES 1000
#define MAILDIR_HEAD_READ 65536

/* ---- one message ---- */

/* The name m has in dir/cur now: m->name, or, when another session
 * changed its flags meanwhile, the file with the same base. Returns 0,
 * or -1 with errno (ENOENT: the message is gone). */
static int
maildir_msg_locate(const char *dir, const char *name, char *out, size_t outlen)
{
	char path[MAILDIR_PATH_MAX];
	struct stat st;
	DIR *d = NULL;

	if (!maildir_msg_name_ok(name)) {
		errno = EINVAL;
		return -1;
	}
	snprintf(path, sizeof(path), "%s/cur/%s", dir, name);
	if (lstat(path, &st) == 0) {
		snprintf(out, outlen, "%s", name);
		return 0;
	}
	if (errno != ENOENT)
		return -1;
	size_t baselen = maildir_base_len(name);
	snprintf(path, sizeof(path), "%s/cur", dir);
	if ((d = opendir(path)) == NULL)
		return -1;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL)
			break;
		if (maildir_base_len(de->d_name) == baselen &&
		    strncmp(de->d_name, name, baselen) == 0) {
			snprintf(out, outlen, "%s", de->d_name);
			closedir(d);
			return 0;
		}
	}
	int e = errno ? errno : ENOENT;
	closedir(d);
	errno = e;
	return -1;
}

/* The flags that follow a change of cur's (its info letters; none
 * without ":2," after its base): those letters less del's, plus add's,
 * sorted, into want; with del NULL, add's alone (a replacement). Returns
 * 0 or -1 (EINVAL: not letters, or too many). */
static int
maildir_flags_next(const char *cur, const char *add, const char *del,
		   char *want, size_t wantlen)
{
	char all[MAILDIR_NAME_MAX + 1];
	size_t n = 0;
	const char *info = strstr(cur, ":2,");

	if (del != NULL && info != NULL && info == cur + maildir_base_len(cur))
		for (const char *p = info + 3; *p && n + 1 < sizeof(all); p++)
			if (strchr(del, *p) == NULL)
				all[n++] = *p;
	snprintf(all + n, sizeof(all) - n, "%s", add);
	return maildir_flags_norm(all, want, wantlen);
}

/* The rename is the compare-and-swap: it fails with ENOENT once another
 * session renamed the file since its name was read, and the change is
 * then made again on the new name. */
int
maildir_change_flags(const char *dir, struct maildir_msg *m, const char *add,
		     const char *del, bool *renamed)
{
	char want[32], cur[MAILDIR_NAME_MAX + 1], next[MAILDIR_NAME_MAX + 1];
	char src[MAILDIR_PATH_MAX], dst[MAILDIR_PATH_MAX];
	bool moved = false;

	for (int tries = 0; tries < MAILDIR_FLAG_TRIES; tries++) {
		if (maildir_msg_locate(dir, m->name, cur, sizeof(cur)) < 0 ||
		    maildir_flags_next(cur, add ? add : "", del, want,
				       sizeof(want)) < 0)
			goto fail;
		const char *info = strstr(cur, ":2,");
		size_t baselen = maildir_base_len(cur);
		if (info && info == cur + baselen &&
		    strcmp(info + 3, want) == 0)
			goto done;
		int n = snprintf(next, sizeof(next), "%.*s:2,%s", (int)baselen,
				 cur, want);
		if (n < 0 || n > MAILDIR_LISTED_MAX) {
			errno = ENAMETOOLONG;
			goto fail;
		}
		snprintf(src, sizeof(src), "%s/cur/%s", dir, cur);
		snprintf(dst, sizeof(dst), "%s/cur/%s", dir, next);
		if (rename(src, dst) == 0) {
			snprintf(src, sizeof(src), "%s/cur", dir);
			if (maildir_fsync_dir(src) < 0)
				goto fail;
			snprintf(cur, sizeof(cur), "%s", next);
			moved = true;
			goto done;
		}
		if (errno != ENOENT)
			goto fail;
		/* renamed by another session between locate and rename */
	}
	errno = EAGAIN;
	goto fail;
done:
	snprintf(m->name, sizeof(m->name), "%s", cur);
	snprintf(m->flags, sizeof(m->flags), "%s", want);
	if (renamed)
		*renamed = moved;
	return 0;
fail:;
	int e = errno ? errno : EIO;
	if (e != ENOENT && e != EINVAL)
		log_warn("%s: %s/cur/%s: %s", __func__, dir, m->name,
			 strerror(e));
	errno = e;
	return -1;
}

int
maildir_set_flags(const char *dir, struct maildir_msg *m, const char *flags)
{
	return maildir_change_flags(dir, m, flags, NULL, NULL);
}

int
maildir_open(const char *dir, struct maildir_msg *m)
{
	char name[MAILDIR_NAME_MAX + 1], path[MAILDIR_PATH_MAX];
	uint32_t uid;
	uint64_t size;

	if (!maildir_msg_name_ok(m->name)) {
		errno = EINVAL;
		return -1;
	}
	snprintf(name, sizeof(name), "%s", m->name);
	for (int tries = 0; tries < 3; tries++) {
		snprintf(path, sizeof(path), "%s/cur/%s", dir, name);
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			if (strcmp(name, m->name) != 0) {
				snprintf(m->name, sizeof(m->name), "%s", name);
				maildir_parse_name(name, &uid, m->flags,
						   sizeof(m->flags), &size);
			}
			return fd;
		}
		if (errno != ENOENT)
			return -1;
		/* Renamed by another session (its flags): the same base. */
		if (maildir_msg_locate(dir, m->name, name, sizeof(name)) < 0)
			return -1;
	}
	errno = ENOENT;
	return -1;
}

int
maildir_expunge(const char *dir, const struct maildir_msg *m)
{
	char cur[MAILDIR_NAME_MAX + 1], path[MAILDIR_PATH_MAX];
	bool removed = false;

	for (int tries = 0; tries < 3 && !removed; tries++) {
		if (maildir_msg_locate(dir, m->name, cur, sizeof(cur)) < 0) {
			if (errno == ENOENT)
				return 0; /* expunged by another session */
			goto fail;
		}
		snprintf(path, sizeof(path), "%s/cur/%s", dir, cur);
		removed = unlink(path) == 0;
		if (!removed && errno != ENOENT)
			goto fail;
	}
	if (removed) /* by this call: counted once, whoever else tried */
		quota_change(dir, -(int64_t)m->size, -1);
	snprintf(path, sizeof(path), "%s/cur", dir);
	if (maildir_fsync_dir(path) < 0)
		goto fail;
	return 0;
fail:;
	int e = errno ? errno : EIO;
	log_warn("%s: %s/cur/%s: %s", __func__, dir, m->name, strerror(e));
	errno = e;
	return -1;
}

int
maildir_internaldate(const char *dir, const struct maildir_msg *m, time_t *t)
{
	char cur[MAILDIR_NAME_MAX + 1], path[MAILDIR_PATH_MAX];
	struct stat st;

	for (int tries = 0; tries < 3; tries++) {
		if (maildir_msg_locate(dir, m->name, cur, sizeof(cur)) < 0)
			return -1;
		snprintf(path, sizeof(path), "%s/cur/%s", dir, cur);
		if (stat(path, &st) == 0) {
			*t = st.st_mtim.tv_sec;
			return 0;
		}
		if (errno != ENOENT)
			return -1;
	}
	errno = ENOENT;
	return -1;
}

/* ---- new messages: tmp/ then cur/ under the UID lock ---- */

/* A message made in dir/tmp, waiting for its UID. */
struct maildir_staged {
	char base[MAILDIR_NAME_MAX + 1]; /* its name in tmp/ */
	char flags[32];
	bool in_tmp; /* tmp/base exists */
	bool in_cur; /* moved: cur/cur exists */
	char cur[MAILDIR_NAME_MAX + 1];
};

/* Creates dir/tmp/<unique name for size (and wire, see
 * maildir_unique_name)> with O_EXCL. Returns the fd (base set), or -1
 * with errno. */
static int
maildir_tmp_create(const char *dir, const char *hostname, uint64_t size,
		   uint64_t wire, char *base, size_t baselen)
{
	char path[MAILDIR_PATH_MAX];

	for (unsigned q = 0; q < MAILDIR_NAME_TRIES; q++) {
		if (maildir_unique_name(hostname, q, size, wire, base,
					baselen) < 0)
			return -1;
		snprintf(path, sizeof(path), "%s/tmp/%s", dir, base);
		int fd = open(
		    path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    0600);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	errno = EEXIST;
	return -1;
}

/* Sets fd's mtime (and atime) to t, 0 leaving it as it is. */
static int
maildir_set_mtime(int fd, time_t t)
{
	if (t == 0)
		return 0;
	struct timespec ts[2] = {{t, 0}, {t, 0}};
	return futimens(fd, ts);
}

/* Moves staged[0..n) from dir/tmp to dir/cur with the UIDs first.. under
 * dir's lock (which the caller holds), then fsyncs cur/. On failure the
 * ones already moved are removed again. */
static int
maildir_staged_commit(const char *dir, struct maildir_staged *staged, size_t n,
		      uint32_t first)
{
	char src[MAILDIR_PATH_MAX], dst[MAILDIR_PATH_MAX];

	for (size_t i = 0; i < n; i++) {
		struct maildir_staged *s = &staged[i];
		if (maildir_cur_name(s->base, strlen(s->base),
				     first + (uint32_t)i, s->flags, s->cur,
				     sizeof(s->cur)) < 0)
			goto fail;
		snprintf(src, sizeof(src), "%s/tmp/%s", dir, s->base);
		snprintf(dst, sizeof(dst), "%s/cur/%s", dir, s->cur);
		if (rename(src, dst) < 0)
			goto fail;
		s->in_tmp = false;
		s->in_cur = true;
	}
	snprintf(src, sizeof(src), "%s/cur", dir);
	if (maildir_fsync_dir(src) < 0)
		goto fail;
	return 0;
fail:;
	int e = errno ? errno : EIO;
	for (size_t i = 0; i < n; i++) {
		if (!staged[i].in_cur)
			continue;
		snprintf(dst, sizeof(dst), "%s/cur/%s", dir, staged[i].cur);
		if (unlink(dst) == 0)
			staged[i].in_cur = false;
	}
	snprintf(src, sizeof(src), "%s/cur", dir);
	maildir_fsync_dir(src);
	errno = e;
	return -1;
}

/* Takes dir's UID lock, reserves n UIDs and commits staged[0..n). */
static int
maildir_staged_publish(const char *dir, struct maildir_staged *staged, size_t n,
		       struct maildir_counter *ctr, uint32_t *uidvalidity,
		       uint32_t *first)
{
	int lockfd = maildir_lock(dir);
	if (lockfd < 0)
		return -1;
	int rc = -1;
	if (maildir_uid_reserve(dir, n, ctr, uidvalidity, first) == 0 &&
	    maildir_staged_commit(dir, staged, n, *first) == 0)
		rc = 0;
	int e = errno;
	maildir_unlock(lockfd);
	errno = e;
	return rc;
}

/* Removes what staged[0..n) left in dir/tmp. */
static void
maildir_staged_discard(const char *dir, struct maildir_staged *staged, size_t n)
{
	char path[MAILDIR_PATH_MAX];
	for (size_t i = 0; i < n; i++) {
		if (!staged[i].in_tmp)
			continue;
		snprintf(path, sizeof(path), "%s/tmp/%s", dir, staged[i].base);
		if (unlink(path) < 0 && errno != ENOENT)
			log_warn("%s: %s: %s", __func__, path, strerror(errno));
		staged[i].in_tmp = false;
	}
}

/* ENOENT unless dir is a Maildir (has cur/, new/ and tmp/). */
static int
maildir_check(const char *dir)
{
	const char *sub[] = {"cur", "new", "tmp"};
	char path[MAILDIR_PATH_MAX];
	struct stat st;
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, sub[i]);
		if (stat(path, &st) < 0)
			return -1;
		if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			return -1;
		}
	}
	return 0;
}

int
maildir_append(const char *dir, const char *hostname, const void *data,
	       size_t len, const char *flags, time_t internaldate,
	       struct maildir_counter *ctr, uint32_t *uidvalidity,
	       uint32_t *uid)
{
	struct maildir_staged s = {0};
	int fd = -1;

	if (maildir_flags_norm(flags, s.flags, sizeof(s.flags)) < 0 ||
	    hostname == NULL || (data == NULL && len > 0)) {
		errno = EINVAL;
		return -1;
	}
	if (maildir_check(dir) < 0)
		return -1;
	fd = maildir_tmp_create(dir, hostname, len, 0, s.base, sizeof(s.base));
	if (fd < 0)
		goto fail;
	s.in_tmp = true;
	if (fd_write_all(fd, data, len) < 0 ||
	    maildir_set_mtime(fd, internaldate) < 0)
		goto fail;
	int rc = maildir_sync_close(fd);
	fd = -1;
	if (rc < 0)
		goto fail;
	if (maildir_staged_publish(dir, &s, 1, ctr, uidvalidity, uid) < 0)
		goto fail;
	quota_change(dir, (int64_t)len, 1);
	return 0;
fail:;
	int e = errno ? errno : EIO;
	log_warn("%s: %s: %s", __func__, dir, strerror(e));
	if (fd >= 0)
		close(fd);
	maildir_staged_discard(dir, &s, 1);
	errno = e;
	return -1;
}

/* Copies in (from offset 0) to out, until the end of in. */
static int
maildir_copy_data(int in, int out)
{
	char *buf = malloc(MAILDIR_COPY_CHUNK);
	off_t off = 0;
	int rc = -1;

	if (buf == NULL)
		return -1;
	for (;;) {
		ssize_t n = pread(in, buf, MAILDIR_COPY_CHUNK, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		if (fd_write_all(out, buf, (size_t)n) < 0)
			goto out;
		off += n;
	}
	rc = 0;
out:;
	int e = errno;
	free(buf);
	errno = e;
	return rc;
}

/* Writes a copy of the file src (st its stat, wire its size as IMAP
 * sends it) to dstdir/tmp/base as maildir_append does, with src's mtime. */
static int
maildir_copy_file(const char *src, const struct stat *st, uint64_t wire,
		  const char *dstdir, const char *hostname,
		  struct maildir_staged *s)
{
	int in = -1, out = -1;

	if ((in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		goto fail;
	out = maildir_tmp_create(dstdir, hostname, (uint64_t)st->st_size, wire,
				 s->base, sizeof(s->base));
	if (out < 0)
		goto fail;
	s->in_tmp = true;
	if (maildir_copy_data(in, out) < 0 ||
	    maildir_set_mtime(out, st->st_mtim.tv_sec) < 0)
		goto fail;
	int rc = maildir_sync_close(out);
	out = -1;
	if (rc < 0)
		goto fail;
	close(in);
	return 0;
fail:;
	int e = errno ? errno : EIO;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	errno = e;
	return -1;
}

/* Stages a copy of srcdir/cur/name in dstdir/tmp: a hard link, or a
 * copy when the filesystem will not link. s->flags are the source's
 * flags now. ENOENT when the source is gone. */
static int
maildir_copy_stage(const char *srcdir, const char *name, const char *dstdir,
		   const char *hostname, struct maildir_staged *s)
{
	char cur[MAILDIR_NAME_MAX + 1], src[MAILDIR_PATH_MAX];
	char dst[MAILDIR_PATH_MAX];
	struct stat st;

	for (int tries = 0; tries < 3; tries++) {
		if (maildir_msg_locate(srcdir, name, cur, sizeof(cur)) < 0)
			return -1;
		snprintf(src, sizeof(src), "%s/cur/%s", srcdir, cur);
		if (lstat(src, &st) < 0) {
			if (errno == ENOENT)
				continue;
			return -1;
		}
		if (!S_ISREG(st.st_mode)) {
			errno = EINVAL;
			return -1;
		}
		uint32_t uid;
		uint64_t size;
		maildir_parse_name(cur, &uid, s->flags, sizeof(s->flags),
				   &size);
		unsigned q = 0;
		for (; q < MAILDIR_NAME_TRIES; q++) {
			if (maildir_unique_name(hostname, q,
						(uint64_t)st.st_size, size,
						s->base, sizeof(s->base)) < 0)
				return -1;
			snprintf(dst, sizeof(dst), "%s/tmp/%s", dstdir,
				 s->base);
			if (link(src, dst) == 0) {
				s->in_tmp = true;
				return 0;
			}
			if (errno != EEXIST)
				break;
		}
		if (errno == ENOENT)
			continue; /* renamed or expunged meanwhile */
		if (errno != EXDEV && errno != EPERM && errno != EMLINK &&
		    errno != ENOTSUP && errno != ENOSYS)
			return -1;
		if (maildir_copy_file(src, &st, size, dstdir, hostname, s) == 0)
			return 0;
		if (errno != ENOENT)
			return -1;
	}
	errno = ENOENT;
	return -1;
}

/* The keywords of staged[0..n) (letters of srcdir's dovecot-keywords)
 * as dstdir names them (maildir_keywords_map). Returns 0 or -1. */
static int
maildir_copy_keywords(const char *srcdir, const char *dstdir,
		      struct maildir_staged *staged, size_t n)
{
	uint32_t used = 0;
	char map[MAILDIR_KEYWORDS];
	for (size_t i = 0; i < n; i++)
		for (const char *p = staged[i].flags; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				used |= 1u << (*p - 'a');
	if (used == 0 || strcmp(srcdir, dstdir) == 0)
		return 0;
	if (maildir_keywords_map(srcdir, dstdir, used, map) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char *o = staged[i].flags;
		for (const char *p = staged[i].flags; *p; p++)
			if (*p < 'a' || *p > 'z')
				*o++ = *p;
			else if (map[*p - 'a'])
				*o++ = map[*p - 'a'];
		*o = '\0';
		if (maildir_flags_norm(staged[i].flags, staged[i].flags,
				       sizeof(staged[i].flags)) < 0)
			return -1;
	}
	return 0;
}

int
maildir_copy(const char *srcdir, const struct maildir_msg *msgs, size_t n,
	     const char *dstdir, const char *hostname,
	     struct maildir_counter *ctr, uint32_t *uidvalidity, uint32_t *uids)
{
	struct maildir_staged *staged = NULL;
	uint32_t first;

	if (hostname == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (maildir_check(srcdir) < 0 || maildir_check(dstdir) < 0)
		return -1;
	if (n == 0) {
		int lockfd = maildir_lock(dstdir);
		if (lockfd < 0)
			return -1;
		int rc = maildir_uidvalidity(dstdir, uidvalidity);
		int e = errno;
		maildir_unlock(lockfd);
		errno = e;
		return rc;
	}
	if ((staged = calloc(n, sizeof(*staged))) == NULL)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (maildir_copy_stage(srcdir, msgs[i].name, dstdir, hostname,
				       &staged[i]) < 0)
			goto fail;
	if (maildir_copy_keywords(srcdir, dstdir, staged, n) < 0)
		goto fail;
	/* the links and copies are in dstdir/tmp: make sure they last */
	char tmp[MAILDIR_PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s/tmp", dstdir);
	if (maildir_fsync_dir(tmp) < 0)
		goto fail;
	if (maildir_staged_publish(dstdir, staged, n, ctr, uidvalidity,
				   &first) < 0)
		goto fail;
	int64_t bytes = 0;
	for (size_t i = 0; i < n; i++) {
		uids[i] = first + (uint32_t)i;
		bytes += (int64_t)msgs[i].size;
	}
	quota_change(dstdir, bytes, (int64_t)n);
	free(staged);
	return 0;
fail:;
	int e = errno ? errno : EIO;
	if (e != ENOENT)
		log_warn("%s: %s to %s: %s", __func__, srcdir, dstdir,
			 strerror(e));
	if (staged) {
		maildir_staged_discard(dstdir, staged, n);
		free(staged);
	}
	errno = e;
	return -1;
}

/* ---- headers ---- */

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t
maildir_utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp, min;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
		min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
		min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Copies an unfolded header value: CR and LF dropped, tabs and runs of
 * white space made one space, control bytes and invalid UTF-8 made '?',
 * trimmed, cut at a character boundary to fit out. */
static void
maildir_copy_value(const char *v, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	bool space = false;
	const unsigned char *s = (const unsigned char *)v;
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		if (c == '\r' || c == '\n' || c == ' ' || c == '\t') {
			space = o > 0;
			i++;
			continue;
		}
		size_t n = maildir_utf8_len(s + i, len - i);
		const char *piece = (const char *)s + i;
		if (n == 0 || c < 0x20 || c == 0x7f) {
			piece = "?";
			n = 1;
			i++;
		} else
			i += n;
		if (o + (space ? 1 : 0) + n >= outlen)
			break;
		if (space)
			out[o++] = ' ';
		space = false;
		memcpy(out + o, piece, n);
		o += n;
	}
	out[o] = '\0';
}

int
maildir_read_headers(int fd, struct maildir_headers *h)
{
	char *buf = malloc(MAILDIR_HEAD_READ + 1);
	size_t len = 0;
	memset(h, 0, sizeof(*h));
	if (buf == NULL)
		return -1;
	while (len < MAILDIR_HEAD_READ) {
		ssize_t n =
		    pread(fd, buf + len, MAILDIR_HEAD_READ - len, (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	size_t i = 0;
	while (i < len) {
		/* One field: its first line and continuation lines. */
		size_t start = i;
		if (buf[i] == '\n' ||
		    (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n'))
			break; /* end of the header section */
		do {
			char *lf = memchr(buf + i, '\n', len - i);
			i = lf ? (size_t)(lf - buf) + 1 : len;
		} while (i < len && (buf[i] == ' ' || buf[i] == '\t'));
		const char *colon = memchr(buf + start, ':', i - start);
		if (colon == NULL)
			continue;
		size_t nlen = (size_t)(colon - (buf + start));
		char *dst = NULL;
		if (nlen == 4 && strncasecmp(buf + start, "from", 4) == 0)
			dst = h->from;
		else if (nlen == 7 &&
			 strncasecmp(buf + start, "subject", 7) == 0)
			dst = h->subject;
		else if (nlen == 4 && strncasecmp(buf + start, "date", 4) == 0)
			dst = h->date;
		if (dst == NULL || dst[0] != '\0')
			continue; /* not ours, or a repeat: the first wins */
		maildir_copy_value(colon + 1, (size_t)(buf + i - colon - 1),
				   dst, MAILDIR_HDR_MAX);
	}
	free(buf);
	return 0;
}
