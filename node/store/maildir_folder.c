/* Maildir++ folders of a user's Maildir: listing, create, delete and
 * rename (INBOX's rename moves its messages under both UID locks), and
 * the subscriptions file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include "quota.h"

#define MAILDIR_SUBS "subscriptions"
#define MAILDIR_SUBS_LOCK "mailswitch-sublock"
#define MAILDIR_TRASH_PREFIX "..mailswitch-deleted."

typedef char maildir_mbox_name[MAILDIR_MBOX_MAX + 1];

/* ---- listing ---- */

static int
maildir_name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

int
maildir_folders(const char *userdir, char (**names)[MAILDIR_MBOX_MAX + 1],
		size_t *n)
{
	char(*list)[MAILDIR_MBOX_MAX + 1] = NULL;
	size_t cap = 0;
	*names = NULL;
	*n = 0;
	DIR *d = opendir(userdir);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	int dfd = dirfd(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		if (name[0] != '.' || !maildir_valid_folder(name + 1))
			continue;
		char cur[MAILDIR_NAME_MAX + 8];
		struct stat st;
		snprintf(cur, sizeof(cur), "%s/cur", name);
		if (fstatat(dfd, cur, &st, 0) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			void *p = realloc(list, cap * sizeof(*list));
			if (p == NULL)
				goto fail;
			list = p;
		}
		snprintf(list[(*n)++], sizeof(*list), "%s", name + 1);
	}
	closedir(d);
	if (*n > 1)
		qsort(list, *n, sizeof(*list), maildir_name_cmp);
	*names = list;
	return 0;
fail:
	closedir(d);
	free(list);
	*n = 0;
	errno = ENOMEM;
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
	quota_forget(userdir); /* its messages went: the next use recounts */
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
	if (maildir_folder_create(userdir, to) < 0 ||
	    maildir_keywords_clone(userdir, dst) < 0)
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
