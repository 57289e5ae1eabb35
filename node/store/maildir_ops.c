/* Changing a Maildir for IMAP: flags, expunge, APPEND, COPY, folders and
 * subscriptions. New messages get their UIDs under the same lock and
 * high-water mark as maildir_scan (maildir_int.h), so UIDs stay unique
 * and rise in the order messages become visible, on every node. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../common/fdio.h"
#include "../../common/log.h"
#include "maildir.h"
#include "maildir_int.h"

#define MAILDIR_SUBS "subscriptions"
#define MAILDIR_SUBS_LOCK "mailswitch-sublock"
#define MAILDIR_COPY_CHUNK 65536
#define MAILDIR_NAME_TRIES 1000
#define MAILDIR_TRASH_PREFIX "..mailswitch-deleted."

typedef char maildir_mbox_name[MAILDIR_MBOX_MAX + 1];

/* ---- names ---- */

/* Sorted, duplicate-free copy of the Maildir info letters in. Refuses
 * (EINVAL) anything but ASCII letters, or more than fit a maildir_msg. */
static int
maildir_flags_norm(const char *in, char *out, size_t outlen)
{
	bool seen[128] = {false};
	size_t o = 0;

	for (const char *p = in ? in : ""; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) {
			errno = EINVAL;
			return -1;
		}
		seen[c] = true;
	}
	for (int c = 0; c < 128; c++) {
		if (!seen[c])
			continue;
		if (o + 1 >= outlen ||
		    o + 1 >= sizeof(((struct maildir_msg *)0)->flags)) {
			errno = EINVAL;
			return -1;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* A message file name we may touch: one path component, not hidden. */
static bool
maildir_msg_name_ok(const char *name)
{
	size_t len = strnlen(name, MAILDIR_NAME_MAX + 1);
	return len > 0 && len <= MAILDIR_NAME_MAX && name[0] != '.' &&
	       strchr(name, '/') == NULL;
}

/* Length of name's base: what precedes its Maildir info ":". */
static size_t
maildir_base_len(const char *name)
{
	const char *colon = strchr(name, ':');
	return colon ? (size_t)(colon - name) : strlen(name);
}

/* base ",U=uid:2," flags into out. */
static int
maildir_cur_name(const char *base, size_t baselen, uint32_t uid,
		 const char *flags, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%.*s,U=%" PRIu32 ":2,%s", (int)baselen,
			 base, uid, flags);
	if (n < 0 || (size_t)n >= outlen || n > MAILDIR_LISTED_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

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

/* ---- one message ---- */

int
maildir_set_flags(const char *dir, struct maildir_msg *m, const char *flags)
{
	char want[32], cur[MAILDIR_NAME_MAX + 1], next[MAILDIR_NAME_MAX + 1];
	char src[MAILDIR_PATH_MAX], dst[MAILDIR_PATH_MAX];

	if (maildir_flags_norm(flags, want, sizeof(want)) < 0)
		goto fail;
	for (int tries = 0; tries < 3; tries++) {
		if (maildir_msg_locate(dir, m->name, cur, sizeof(cur)) < 0)
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
			goto done;
		}
		if (errno != ENOENT)
			goto fail;
		/* renamed by another session between locate and rename */
	}
	errno = ENOENT;
	goto fail;
done:
	snprintf(m->name, sizeof(m->name), "%s", cur);
	snprintf(m->flags, sizeof(m->flags), "%s", want);
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

	for (int tries = 0; tries < 3; tries++) {
		if (maildir_msg_locate(dir, m->name, cur, sizeof(cur)) < 0) {
			if (errno == ENOENT)
				return 0; /* expunged by another session */
			goto fail;
		}
		snprintf(path, sizeof(path), "%s/cur/%s", dir, cur);
		if (unlink(path) == 0)
			break;
		if (errno != ENOENT)
			goto fail;
	}
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

/* Closes fd after an fsync; -1 with errno if either fails. */
static int
maildir_sync_close(int fd)
{
	int rc = fsync(fd);
	int e = errno;
	if (close(fd) < 0 && rc == 0)
		return -1;
	errno = e;
	return rc;
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
	/* the links and copies are in dstdir/tmp: make sure they last */
	char tmp[MAILDIR_PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s/tmp", dstdir);
	if (maildir_fsync_dir(tmp) < 0)
		goto fail;
	if (maildir_staged_publish(dstdir, staged, n, ctr, uidvalidity,
				   &first) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++)
		uids[i] = first + (uint32_t)i;
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

/* ---- folders ---- */

/* The path of folder name (not INBOX) under userdir, checked. */
static int
maildir_folder_path(const char *userdir, const char *name, char *out,
		    size_t outlen)
{
	if (name == NULL || strcasecmp(name, "INBOX") == 0) {
		errno = EINVAL;
		return -1;
	}
	return maildir_mailbox_path(userdir, name, out, outlen);
}

/* Removes name under dirfd: a file or symlink, or a directory and what
 * it holds, at most depth levels down; never follows a symlink. */
static int
maildir_remove_at(int dirfd, const char *name, int depth)
{
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if ((errno != EISDIR && errno != EPERM) || depth == 0)
		return -1;
	int fd = openat(dirfd, name,
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (maildir_remove_at(fd, de->d_name, depth - 1) < 0)
			rc = -1;
	}
	int e = errno;
	closedir(d);
	if (rc < 0) {
		errno = e;
		return -1;
	}
	return unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* Writes an empty dir/name, fsynced. */
static int
maildir_touch(const char *dir, const char *name)
{
	char path[MAILDIR_PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(
	    path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	return maildir_sync_close(fd);
}

int
maildir_folder_create(const char *userdir, const char *name)
{
	char path[MAILDIR_PATH_MAX], sub[MAILDIR_PATH_MAX + 8];
	bool made = false;
	uint32_t v;

	if (maildir_folder_path(userdir, name, path, sizeof(path)) < 0)
		return -1;
	if (mkdir(path, 0700) < 0)
		goto fail;
	made = true;
	/* cur/ last: maildir_folders lists a folder once it has cur/ */
	const char *subs[] = {"new", "tmp", "cur"};
	for (size_t i = 0; i < 3; i++) {
		if (i == 2 && (maildir_touch(path, "maildirfolder") < 0 ||
			       maildir_uidvalidity(path, &v) < 0))
			goto fail;
		snprintf(sub, sizeof(sub), "%s/%s", path, subs[i]);
		if (mkdir(sub, 0700) < 0)
			goto fail;
	}
	if (maildir_fsync_dir(path) < 0 || maildir_fsync_dir(userdir) < 0)
		goto fail;
	return 0;
fail:;
	int e = errno ? errno : EIO;
	if (e != EEXIST && e != ENOENT)
		log_warn("%s: %s: %s", __func__, path, strerror(e));
	if (made) {
		int dfd = open(userdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			maildir_remove_at(dfd, strrchr(path, '/') + 1, 2);
			close(dfd);
		}
	}
	errno = e;
	return -1;
}

int
maildir_folder_delete(const char *userdir, const char *name)
{
	char path[MAILDIR_PATH_MAX], trash[MAILDIR_PATH_MAX];
	char tname[MAILDIR_NAME_MAX + 1];
	int dfd = -1;
	struct stat st;

	if (maildir_folder_path(userdir, name, path, sizeof(path)) < 0)
		return -1;
	if (lstat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOENT;
		return -1;
	}
	/* Out of sight at once (a name no folder can have), then removed:
	 * a crash in between leaves only the trash. */
	if (maildir_unique_name("d", 0, 0, 0, tname, sizeof(tname)) < 0)
		goto fail;
	snprintf(trash, sizeof(trash), "%s/%s%s", userdir, MAILDIR_TRASH_PREFIX,
		 tname);
	if (rename(path, trash) < 0 || maildir_fsync_dir(userdir) < 0)
		goto fail;
	if ((dfd = open(userdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto fail;
	if (maildir_remove_at(dfd, strrchr(trash, '/') + 1, 2) < 0)
		goto fail;
	if (fsync(dfd) < 0)
		goto fail;
	close(dfd);
	return 0;
fail:;
	int e = errno ? errno : EIO;
	if (e != ENOENT)
		log_warn("%s: %s: %s", __func__, path, strerror(e));
	if (dfd >= 0)
		close(dfd);
	errno = e;
	return -1;
}

/* rename(from, to) that refuses (EEXIST) to replace what to names, also
 * an empty directory, where the filesystem can say so. */
static int
maildir_rename_new(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	struct stat st;
	if (lstat(to, &st) == 0) {
		errno = EEXIST;
		return -1;
	}
	return rename(from, to);
}

/* The children of folder name (".name.X" with cur/), X into a malloc'ed
 * array. */
static int
maildir_folder_children(const char *userdir, const char *name,
			maildir_mbox_name **kids, size_t *nkids)
{
	maildir_mbox_name *all;
	size_t n, len = strlen(name), k = 0;

	*kids = NULL;
	*nkids = 0;
	if (maildir_folders(userdir, &all, &n) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strncmp(all[i], name, len) == 0 && all[i][len] == '.')
			memmove(all[k++], all[i] + len + 1,
				strlen(all[i] + len + 1) + 1);
	*kids = all;
	*nkids = k;
	return 0;
}

/* Moves every message of INBOX (userdir) into the folder at dst, in UID
 * order, under both UID locks (INBOX's first). */
static int
maildir_inbox_move(const char *userdir, const char *dst)
{
	struct maildir_list l = {0};
	char src[MAILDIR_PATH_MAX], to[MAILDIR_PATH_MAX];
	char name[MAILDIR_NAME_MAX + 1];
	int inlock = -1, outlock = -1;
	uint32_t v, first;

	if ((inlock = maildir_lock(userdir)) < 0)
		goto fail;
	if (maildir_scan_locked(userdir, true, NULL, &l) < 0)
		goto fail;
	if ((outlock = maildir_lock(dst)) < 0)
		goto fail;
	if (maildir_uid_reserve(dst, l.n, NULL, &v, &first) < 0)
		goto fail;
	for (size_t i = 0; i < l.n; i++) {
		const char *b = l.msg[i].name;
		const char *info = strstr(b, ":2,");
		/* drop the INBOX UID: the base before its ",U=" */
		const char *u = strstr(b, ",U=");
		size_t baselen = u && u < b + maildir_base_len(b)
				     ? (size_t)(u - b)
				     : maildir_base_len(b);
		if (maildir_cur_name(b, baselen, first + (uint32_t)i,
				     info ? info + 3 : "", name,
				     sizeof(name)) < 0)
			goto fail;
		if (snprintf(src, sizeof(src), "%s/cur/%s", userdir, b) >=
			(int)sizeof(src) ||
		    snprintf(to, sizeof(to), "%s/cur/%s", dst, name) >=
			(int)sizeof(to)) {
			errno = ENAMETOOLONG;
			goto fail;
		}
		if (rename(src, to) < 0 && errno != ENOENT)
			goto fail;
	}
	if (snprintf(src, sizeof(src), "%s/cur", dst) >= (int)sizeof(src) ||
	    maildir_fsync_dir(src) < 0)
		goto fail;
	if (snprintf(src, sizeof(src), "%s/cur", userdir) >= (int)sizeof(src) ||
	    maildir_fsync_dir(src) < 0)
		goto fail;
	maildir_unlock(outlock);
	maildir_unlock(inlock);
	maildir_list_free(&l);
	return 0;
fail:;
	int e = errno ? errno : EIO;
	if (outlock >= 0)
		maildir_unlock(outlock);
	if (inlock >= 0)
		maildir_unlock(inlock);
	maildir_list_free(&l);
	errno = e;
	return -1;
}

/* RENAME INBOX to: a new folder to gets INBOX's messages. */
static int
maildir_inbox_rename(const char *userdir, const char *to)
{
	char dst[MAILDIR_PATH_MAX];

	if (maildir_folder_path(userdir, to, dst, sizeof(dst)) < 0)
		return -1;
	if (maildir_folder_create(userdir, to) < 0)
		return -1;
	return maildir_inbox_move(userdir, dst);
}

int
maildir_folder_rename(const char *userdir, const char *from, const char *to)
{
	char src[MAILDIR_PATH_MAX], dst[MAILDIR_PATH_MAX];
	maildir_mbox_name *kids = NULL;
	size_t nkids = 0, tolen;
	struct stat st;

	if (from != NULL && strcasecmp(from, "INBOX") == 0)
		return maildir_inbox_rename(userdir, to);
	if (maildir_folder_path(userdir, from, src, sizeof(src)) < 0 ||
	    maildir_folder_path(userdir, to, dst, sizeof(dst)) < 0)
		return -1;
	tolen = strlen(to);
	/* into itself or one of its children */
	size_t fromlen = strlen(from);
	if (strcmp(from, to) == 0 ||
	    (strncmp(to, from, fromlen) == 0 && to[fromlen] == '.')) {
		errno = EINVAL;
		return -1;
	}
	if (lstat(src, &st) < 0 || !S_ISDIR(st.st_mode)) {
		errno = ENOENT;
		return -1;
	}
	if (lstat(dst, &st) == 0) {
		errno = EEXIST;
		return -1;
	}
	if (maildir_folder_children(userdir, from, &kids, &nkids) < 0)
		goto fail;
	/* check every new name before moving anything */
	for (size_t i = 0; i < nkids; i++) {
		char name[2 * MAILDIR_MBOX_MAX + 2];
		snprintf(name, sizeof(name), "%s.%s", to, kids[i]);
		if (strlen(name) > MAILDIR_MBOX_MAX ||
		    maildir_folder_path(userdir, name, dst, sizeof(dst)) < 0) {
			errno = strlen(name) > MAILDIR_MBOX_MAX ? ENAMETOOLONG
								: errno;
			goto fail;
		}
		if (lstat(dst, &st) == 0) {
			errno = EEXIST;
			goto fail;
		}
	}
	maildir_folder_path(userdir, to, dst, sizeof(dst));
	if (maildir_rename_new(src, dst) < 0)
		goto fail;
	for (size_t i = 0; i < nkids; i++) {
		snprintf(src, sizeof(src), "%s/.%s.%s", userdir, from, kids[i]);
		snprintf(dst, sizeof(dst), "%s/.%.*s.%s", userdir, (int)tolen,
			 to, kids[i]);
		if (maildir_rename_new(src, dst) < 0 && errno != ENOENT)
			goto fail;
	}
	if (maildir_fsync_dir(userdir) < 0)
		goto fail;
	free(kids);
	return 0;
fail:;
	int e = errno ? errno : EIO;
	if (e != EEXIST && e != ENOENT)
		log_warn("%s: %s to %s: %s", __func__, from, to, strerror(e));
	free(kids);
	errno = e;
	return -1;
}

/* ---- subscriptions ---- */

static int
maildir_subs_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Reads userdir/subscriptions: names sorted, duplicates dropped, lines
 * that are no mailbox name skipped. */
static int
maildir_subs_read(const char *userdir, maildir_mbox_name **names, size_t *n)
{
	char path[MAILDIR_PATH_MAX], check[MAILDIR_PATH_MAX];
	maildir_mbox_name *list = NULL;
	size_t cap = 0, k = 0;
	char *line = NULL;
	size_t linecap = 0;
	FILE *f;

	*names = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "%s/%s", userdir, MAILDIR_SUBS);
	if ((f = fopen(path, "re")) == NULL)
		return errno == ENOENT ? 0 : -1;
	ssize_t len;
	while ((len = getline(&line, &linecap, f)) >= 0) {
		while (len > 0 &&
		       (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || maildir_mailbox_path(userdir, line, check,
						     sizeof(check)) < 0)
			continue;
		if (k == cap) {
			cap = cap ? cap * 2 : 16;
			void *p = realloc(list, cap * sizeof(*list));
			if (p == NULL)
				goto fail;
			list = p;
		}
		snprintf(list[k++], sizeof(*list), "%s", line);
	}
	if (ferror(f))
		goto fail;
	fclose(f);
	free(line);
	if (k > 1)
		qsort(list, k, sizeof(*list), maildir_subs_cmp);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (u == 0 || strcmp(list[u - 1], list[i]) != 0)
			memmove(list[u++], list[i], sizeof(*list));
	*names = list;
	*n = u;
	return 0;
fail:;
	int e = errno ? errno : ENOMEM;
	fclose(f);
	free(line);
	free(list);
	errno = e;
	return -1;
}

/* Replaces userdir/subscriptions with names[0..n): temp file, fsync,
 * rename, fsync of userdir. */
static int
maildir_subs_write(const char *userdir, maildir_mbox_name *names, size_t n)
{
	char path[MAILDIR_PATH_MAX], tmp[MAILDIR_PATH_MAX];
	int fd = -1;

	snprintf(path, sizeof(path), "%s/%s", userdir, MAILDIR_SUBS);
	snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.tmp", userdir, MAILDIR_SUBS,
		 (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (fd_write_all(fd, names[i], strlen(names[i])) < 0 ||
		    fd_write_all(fd, "\n", 1) < 0)
			goto fail;
	int rc = maildir_sync_close(fd);
	fd = -1;
	if (rc < 0 || rename(tmp, path) < 0 || maildir_fsync_dir(userdir) < 0)
		goto fail;
	return 0;
fail:;
	int e = errno ? errno : EIO;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = e;
	return -1;
}

int
maildir_subscriptions(const char *userdir, maildir_mbox_name **names, size_t *n)
{
	return maildir_subs_read(userdir, names, n);
}

int
maildir_subscribe(const char *userdir, const char *name, bool on)
{
	char path[MAILDIR_PATH_MAX], want[MAILDIR_MBOX_MAX + 1];
	maildir_mbox_name *list = NULL;
	size_t n = 0;
	int lockfd = -1;

	if (name == NULL ||
	    maildir_mailbox_path(userdir, name, path, sizeof(path)) < 0) {
		errno = EINVAL;
		return -1;
	}
	snprintf(want, sizeof(want), "%s",
		 strcasecmp(name, "INBOX") == 0 ? "INBOX" : name);
	/* one writer at a time, or two subscribes could lose one */
	if ((lockfd = maildir_lock_file(userdir, MAILDIR_SUBS_LOCK)) < 0)
		goto fail;
	if (maildir_subs_read(userdir, &list, &n) < 0)
		goto fail;
	size_t at = n;
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], want) == 0)
			at = i;
	if (on == (at < n))
		goto done;
	if (on) {
		void *p = realloc(list, (n + 1) * sizeof(*list));
		if (p == NULL)
			goto fail;
		list = p;
		snprintf(list[n++], sizeof(*list), "%s", want);
		qsort(list, n, sizeof(*list), maildir_subs_cmp);
	} else {
		memmove(list[at], list[at + 1], (n - at - 1) * sizeof(*list));
		n--;
	}
	if (maildir_subs_write(userdir, list, n) < 0)
		goto fail;
done:
	maildir_unlock(lockfd);
	free(list);
	return 0;
fail:;
	int e = errno ? errno : EIO;
	log_warn("%s: %s: %s", __func__, userdir, strerror(e));
	if (lockfd >= 0)
		maildir_unlock(lockfd);
	free(list);
	errno = e;
	return -1;
}
