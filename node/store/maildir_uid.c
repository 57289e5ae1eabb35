/* Maildir scanning with cluster-wide UIDs: the lock-file mechanism of
 * maildir.h (the UID flock, the high-water mark, UIDVALIDITY), the
 * listing of cur/ and new/, and the small durable-file helpers the other
 * Maildir files share. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "maildir.h"
#include "maildir_int.h"

/* A file of new/ waiting for its UID. */
struct maildir_new {
	char name[MAILDIR_NAME_MAX + 1];
	struct timespec mtime;
};

/* ---- small file helpers ---- */

int
maildir_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

/* Closes fd after an fsync; -1 with errno if either fails. */
int
maildir_sync_close(int fd)
{
	int rc = fsync(fd);
	int e = errno;
	if (close(fd) < 0 && rc == 0)
		return -1;
	errno = e;
	return rc;
}

int
maildir_read_number(const char *dir, const char *name, uint32_t *v)
{
	char path[MAILDIR_PATH_MAX], buf[32];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int e = errno;
	close(fd);
	if (n < 0) {
		errno = e;
		return -1;
	}
	buf[n] = '\0';
	char *end;
	errno = 0;
	unsigned long long x = strtoull(buf, &end, 10);
	if (errno || end == buf || (*end != '\n' && *end != '\0') ||
	    x > UINT32_MAX) {
		log_warn("%s: %s holds no number, reconciling", __func__, path);
		return 0;
	}
	*v = (uint32_t)x;
	return 1;
}

int
maildir_write_number(const char *dir, const char *name, uint32_t v)
{
	char path[MAILDIR_PATH_MAX], tmp[MAILDIR_PATH_MAX], buf[32];
	int fd = -1;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.tmp", dir, name, (long)getpid());
	int len = snprintf(buf, sizeof(buf), "%" PRIu32 "\n", v);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	if (write(fd, buf, (size_t)len) != len || fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0 || maildir_fsync_dir(dir) < 0)
		goto fail;
	return 0;
fail:;
	int e = errno ? errno : EIO;
	log_err("%s: %s: %s", __func__, path, strerror(e));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = e;
	return -1;
}

int
maildir_lock_file(const char *dir, const char *name)
{
	char path[MAILDIR_PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	for (int waited = 0; waited <= MAILDIR_LOCK_WAIT_MS; waited++) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR)
			break;
		struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
	}
	int e = errno == EWOULDBLOCK ? ETIMEDOUT : errno;
	log_warn("%s: %s: %s", __func__, path, strerror(e));
	close(fd);
	errno = e;
	return -1;
}

/* MAILSWITCH_TEST_NO_FLOCK (maildir.h), read once: tests only. */
static bool
maildir_test_no_flock(void)
{
	static int no_flock = -1;
	if (no_flock < 0) {
		const char *v = getenv("MAILSWITCH_TEST_NO_FLOCK");
		no_flock = v != NULL && strcmp(v, "1") == 0;
		if (no_flock)
			log_warn("MAILSWITCH_TEST_NO_FLOCK: the UID flock is "
				 "off (tests only)");
	}
	return no_flock == 1;
}

int
maildir_lock(const char *dir)
{
	if (maildir_test_no_flock()) {
		char path[MAILDIR_PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", dir, MAILDIR_LOCK);
		return open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	}
	return maildir_lock_file(dir, MAILDIR_LOCK);
}

void
maildir_unlock(int fd)
{
	flock(fd, LOCK_UN);
	close(fd);
}

/* ---- the list ---- */

static int
maildir_list_add(struct maildir_list *l, const char *name, uint32_t uid,
		 const char *flags, uint64_t size)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct maildir_msg *m = realloc(l->msg, cap * sizeof(*m));
		if (m == NULL)
			return -1;
		l->msg = m;
		l->cap = cap;
	}
	struct maildir_msg *m = &l->msg[l->n++];
	m->uid = uid;
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->flags, sizeof(m->flags), "%s", flags);
	m->size = size;
	return 0;
}

static int
maildir_msg_cmp(const void *a, const void *b)
{
	const struct maildir_msg *x = a, *y = b;
	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int
maildir_new_cmp(const void *a, const void *b)
{
	const struct maildir_new *x = a, *y = b;
	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

static bool
maildir_skip_entry(const char *name)
{
	return name[0] == '.' || strlen(name) > MAILDIR_LISTED_MAX;
}

/* Lists dir/sub: every message file, with what its name says. In new/,
 * the files in the order they arrived (mtime, then name). *maxuid gets
 * the highest UID seen. */
static int
maildir_read_dir(const char *dir, const char *sub, struct maildir_list *l,
		 struct maildir_new **news, size_t *nnew, uint32_t *maxuid)
{
	char path[MAILDIR_PATH_MAX];
	size_t cap = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	DIR *d = opendir(path);
	if (d == NULL)
		return -1;
	int dfd = dirfd(d);
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL)
			break;
		if (maildir_skip_entry(de->d_name))
			continue;
		uint32_t uid;
		uint64_t size;
		char flags[32];
		struct stat st = {0};
		if (!news)
			maildir_parse_name(de->d_name, &uid, flags,
					   sizeof(flags), &size);
		/* A file of cur/ whose name gives its size needs no stat when
		 * the directory says it is a regular file: a SELECT of a large
		 * mailbox is then one readdir. new/ wants the mtime. */
		if (news || size == 0 || de->d_type != DT_REG) {
			if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) <
				0 ||
			    !S_ISREG(st.st_mode))
				continue; /* gone meanwhile, or not a message */
		}
		if (news) {
			if (*nnew == cap) {
				cap = cap ? cap * 2 : 64;
				struct maildir_new *p =
				    realloc(*news, cap * sizeof(**news));
				if (p == NULL)
					goto fail;
				*news = p;
			}
			struct maildir_new *m = &(*news)[(*nnew)++];
			snprintf(m->name, sizeof(m->name), "%s", de->d_name);
			m->mtime = st.st_mtim;
			continue;
		}
		if (uid > *maxuid)
			*maxuid = uid;
		if (maildir_list_add(l, de->d_name, uid, flags,
				     size ? size : (uint64_t)st.st_size) < 0)
			goto fail;
	}
	if (errno != 0)
		goto fail;
	closedir(d);
	if (news && *nnew > 1)
		qsort(*news, *nnew, sizeof(**news), maildir_new_cmp);
	return 0;
fail:;
	int e = errno ? errno : ENOMEM;
	closedir(d);
	errno = e;
	return -1;
}

/* Renames dir/from/old to dir/cur/<base>,U=uid:2,<flags>. */
static int
maildir_give_uid(const char *dir, const char *from, const char *old,
		 uint32_t uid, char *newname, size_t newlen)
{
	char src[MAILDIR_PATH_MAX], dst[MAILDIR_PATH_MAX];
	const char *info = strstr(old, ":2,");
	int baselen = info ? (int)(info - old) : (int)strlen(old);
	/* Maildir info other than ":2," (":1,..." is experimental) is
	 * dropped, as it has no flags. */
	const char *colon = memchr(old, ':', (size_t)baselen);
	if (colon)
		baselen = (int)(colon - old);
	snprintf(newname, newlen, "%.*s,U=%" PRIu32 ":2,%s", baselen, old, uid,
		 info ? info + 3 : "");
	snprintf(src, sizeof(src), "%s/%s/%s", dir, from, old);
	snprintf(dst, sizeof(dst), "%s/cur/%s", dir, newname);
	return rename(src, dst);
}

/* The user's Maildir of mailbox dir: dir itself for INBOX, its parent
 * for a Maildir++ folder (".Name"). */
static void
maildir_user_of(const char *dir, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s", dir);
	char *slash = strrchr(out, '/');
	if (slash && slash[1] == '.')
		*slash = '\0';
}

int
maildir_uidvalidity(const char *dir, uint32_t *v)
{
	char user[MAILDIR_PATH_MAX];
	uint32_t floor = 0;
	int r = maildir_read_number(dir, MAILDIR_UIDVALIDITY, v);
	if (r < 0)
		return -1;
	if (r > 0 && *v != 0)
		return 0;
	/* New: above every UIDVALIDITY the user's mailboxes ever had, so a
	 * name deleted or renamed and made again within the same second
	 * still gets a new one (RFC 3501 2.3.1.1). */
	maildir_user_of(dir, user, sizeof(user));
	if (maildir_read_number(user, MAILDIR_UIDVALIDITY_FLOOR, &floor) < 0)
		floor = 0;
	*v = (uint32_t)time(NULL);
	if (*v <= floor)
		*v = floor + 1;
	if (maildir_write_number(user, MAILDIR_UIDVALIDITY_FLOOR, *v) < 0 ||
	    maildir_write_number(dir, MAILDIR_UIDVALIDITY, *v) < 0)
		return -1;
	return 0;
}

/* The highest UID a message of dir/cur shows (0: none), as a scan lists
 * them: for a lost mark only, so the list is not kept. */
static int
maildir_max_uid(const char *dir, uint32_t *max)
{
	struct maildir_list l = {0};
	*max = 0;
	int rc = maildir_read_dir(dir, "cur", &l, NULL, NULL, max);
	maildir_list_free(&l);
	return rc;
}

/* The next UID: above the mark, the counter's floor (when it is of this
 * UIDVALIDITY) and maxuid. UINT32_MAX + 1 once a message holds the
 * highest UID: the mailbox can take no more, and nothing wraps to 1. */
static uint64_t
maildir_next_uid(uint32_t mark, uint32_t maxuid, uint32_t uidvalidity,
		 const struct maildir_counter *ctr)
{
	uint64_t next = mark > maxuid ? mark : (uint64_t)maxuid + 1;
	if (ctr && ctr->uidvalidity == uidvalidity && ctr->uidnext > next)
		next = ctr->uidnext;
	return next == 0 ? 1 : next;
}

static void
maildir_counter_set(struct maildir_counter *ctr, uint32_t uidvalidity,
		    uint32_t uidnext)
{
	if (ctr == NULL)
		return;
	ctr->uidvalidity = uidvalidity;
	ctr->uidnext = uidnext;
}

int
maildir_uid_reserve(const char *dir, size_t want, struct maildir_counter *ctr,
		    uint32_t *uidvalidity, uint32_t *first)
{
	uint32_t mark = 0, maxuid = 0;

	if (maildir_uidvalidity(dir, uidvalidity) < 0)
		return -1;
	int r = maildir_read_number(dir, MAILDIR_UIDNEXT, &mark);
	if (r < 0)
		return -1;
	/* Every UID given was below the mark when its file appeared: only a
	 * lost mark needs cur/ read again. */
	if (r == 0 && maildir_max_uid(dir, &maxuid) < 0)
		return -1;
	uint64_t next = maildir_next_uid(mark, maxuid, *uidvalidity, ctr);
	if (next + want > UINT32_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	if ((want > 0 || next != mark) &&
	    maildir_write_number(dir, MAILDIR_UIDNEXT,
				 (uint32_t)(next + want)) < 0)
		return -1;
	*first = (uint32_t)next;
	maildir_counter_set(ctr, *uidvalidity, (uint32_t)(next + want));
	return 0;
}

/* Under the lock: UIDVALIDITY, the mark, and, with assign, UIDs for what
 * has none (else only counted in l->pending). */
static int
maildir_assign_locked(const char *dir, bool assign, struct maildir_counter *ctr,
		      struct maildir_list *l)
{
	struct maildir_new *news = NULL;
	size_t nnew = 0;
	uint32_t maxuid = 0, mark = 0;
	char path[MAILDIR_PATH_MAX];

	if (maildir_uidvalidity(dir, &l->uidvalidity) < 0)
		goto fail;
	if (maildir_read_number(dir, MAILDIR_UIDNEXT, &mark) < 0)
		goto fail;
	if (maildir_read_dir(dir, "cur", l, NULL, NULL, &maxuid) < 0)
		goto fail;
	if (maildir_read_dir(dir, "new", l, &news, &nnew, &maxuid) < 0)
		goto fail;

	/* Files of cur/ without a UID (put there by another program) are
	 * new too, after new/'s. */
	size_t nolabel = 0;
	for (size_t i = 0; i < l->n; i++)
		if (l->msg[i].uid == 0)
			nolabel++;
	uint64_t next = maildir_next_uid(mark, maxuid, l->uidvalidity, ctr);
	size_t want = nnew + nolabel;
	/* A full mailbox reports the highest UID as UIDNEXT: no better
	 * 32-bit answer exists, and nothing new gets a UID. */
	l->uidnext = next > UINT32_MAX ? UINT32_MAX : (uint32_t)next;
	if (!assign) {
		l->pending = want;
		goto done;
	}
	if (want == 0) {
		if (next != mark && next <= UINT32_MAX &&
		    maildir_write_number(dir, MAILDIR_UIDNEXT, l->uidnext) < 0)
			goto fail;
		maildir_counter_set(ctr, l->uidvalidity, l->uidnext);
		goto done;
	}
	if (next + want > UINT32_MAX) {
		/* The UID space is spent: what is new waits unlisted (RFC
		 * 3501 2.3.1.1 would need a new UIDVALIDITY), the rest of
		 * the mailbox stays usable, and no UID is given twice. */
		l->pending = want;
		goto done;
	}
	/* The mark goes up before any file shows its UID: after a crash a
	 * UID may be skipped, never given twice. */
	l->uidnext = (uint32_t)(next + want);
	if (maildir_write_number(dir, MAILDIR_UIDNEXT, l->uidnext) < 0)
		goto fail;
	maildir_counter_set(ctr, l->uidvalidity, l->uidnext);
	for (size_t i = 0; i < nnew; i++) {
		char name[MAILDIR_NAME_MAX + 1];
		uint32_t uid = (uint32_t)next++;
		if (maildir_give_uid(dir, "new", news[i].name, uid, name,
				     sizeof(name)) < 0) {
			if (errno == ENOENT)
				continue; /* taken by another program */
			goto fail;
		}
		struct stat st;
		snprintf(path, sizeof(path), "%s/cur/%s", dir, name);
		uint64_t size = 0;
		uint32_t u;
		char flags[32];
		maildir_parse_name(name, &u, flags, sizeof(flags), &size);
		if (size == 0 && stat(path, &st) == 0)
			size = (uint64_t)st.st_size;
		if (maildir_list_add(l, name, uid, flags, size) < 0)
			goto fail;
	}
	for (size_t i = 0; i < l->n; i++) {
		struct maildir_msg *m = &l->msg[i];
		if (m->uid != 0)
			continue;
		char name[MAILDIR_NAME_MAX + 1];
		uint32_t uid = (uint32_t)next++;
		if (maildir_give_uid(dir, "cur", m->name, uid, name,
				     sizeof(name)) < 0) {
			if (errno == ENOENT) {
				m->uid = 0; /* dropped below */
				continue;
			}
			goto fail;
		}
		m->uid = uid;
		snprintf(m->name, sizeof(m->name), "%s", name);
	}
	snprintf(path, sizeof(path), "%s/cur", dir);
	if (maildir_fsync_dir(path) < 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/new", dir);
	if (maildir_fsync_dir(path) < 0)
		goto fail;
done:
	free(news);
	return 0;
fail:;
	int e = errno ? errno : EIO;
	free(news);
	errno = e;
	return -1;
}

int
maildir_scan_locked(const char *dir, bool assign, struct maildir_counter *ctr,
		    struct maildir_list *out)
{
	memset(out, 0, sizeof(*out));
	if (maildir_assign_locked(dir, assign, ctr, out) < 0) {
		int e = errno;
		maildir_list_free(out);
		errno = e;
		return -1;
	}
	/* Drop what vanished while we renamed, and what has no UID yet; sort
	 * by UID. */
	size_t k = 0;
	for (size_t i = 0; i < out->n; i++)
		if (out->msg[i].uid != 0)
			out->msg[k++] = out->msg[i];
	out->n = k;
	if (out->n > 1)
		qsort(out->msg, out->n, sizeof(*out->msg), maildir_msg_cmp);
	return 0;
}

static int
maildir_scan_under_lock(const char *dir, bool assign,
			struct maildir_counter *ctr, struct maildir_list *out)
{
	int lockfd = -1;
	memset(out, 0, sizeof(*out));
	struct stat st;
	char cur[MAILDIR_PATH_MAX];
	snprintf(cur, sizeof(cur), "%s/cur", dir);
	if (stat(cur, &st) < 0)
		goto fail;
	if ((lockfd = maildir_lock(dir)) < 0)
		goto fail;
	if (maildir_scan_locked(dir, assign, ctr, out) < 0)
		goto fail;
	maildir_unlock(lockfd);
	return 0;
fail:;
	int e = errno ? errno : EIO;
	if (lockfd >= 0)
		maildir_unlock(lockfd);
	maildir_list_free(out);
	errno = e;
	return -1;
}

int
maildir_scan(const char *dir, struct maildir_list *out)
{
	return maildir_scan_under_lock(dir, false, NULL, out);
}

int
maildir_assign(const char *dir, struct maildir_counter *ctr,
	       struct maildir_list *out)
{
	return maildir_scan_under_lock(dir, true, ctr, out);
}

int
maildir_refind(const char *dir, struct maildir_msg *m)
{
	struct maildir_list now = {0};
	const struct maildir_msg *found = NULL;
	if (maildir_scan(dir, &now) == 0)
		found = maildir_find(&now, m->uid);
	if (found)
		*m = *found;
	maildir_list_free(&now);
	if (found == NULL) {
		errno = ENOENT;
		return -1;
	}
	return 0;
}

void
maildir_list_free(struct maildir_list *l)
{
	free(l->msg);
	memset(l, 0, sizeof(*l));
}

const struct maildir_msg *
maildir_find(const struct maildir_list *l, uint32_t uid)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (l->msg[mid].uid == uid)
			return &l->msg[mid];
		if (l->msg[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

size_t
maildir_unseen(const struct maildir_list *l)
{
	size_t n = 0;
	for (size_t i = 0; i < l->n; i++)
		if (strchr(l->msg[i].flags, 'S') == NULL)
			n++;
	return n;
}
