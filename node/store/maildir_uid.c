/* Maildir reading with cluster-wide UIDs: the lock-file mechanism of
 * DESIGN.md ("Durability and the shared state"), mailbox names, folder
 * listing and the few headers the API shows. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "maildir.h"
#include "maildir_int.h"

#define MAILDIR_HEAD_READ 65536

/* A file of new/ waiting for its UID. */
struct maildir_new {
	char name[MAILDIR_NAME_MAX + 1];
	struct timespec mtime;
};

/* ---- names ---- */

void
maildir_parse_name(const char *name, uint32_t *uid, char *flags,
		   size_t flagslen, uint64_t *size)
{
	uint64_t physical = 0, virtual = 0;
	*uid = 0;
	flags[0] = '\0';
	const char *info = strstr(name, ":2,");
	size_t baselen = info ? (size_t)(info - name) : strlen(name);
	if (info)
		snprintf(flags, flagslen, "%s", info + 3);
	for (const char *p = name; p < name + baselen; p++) {
		if (*p != ',' || p + 3 > name + baselen)
			continue;
		char key = p[1];
		if ((key != 'U' && key != 'S' && key != 'W') || p[2] != '=')
			continue;
		uint64_t v = 0;
		const char *d = p + 3;
		bool ok = d < name + baselen && isdigit((unsigned char)*d);
		for (; d < name + baselen && isdigit((unsigned char)*d); d++) {
			if (v > UINT64_MAX / 10 - 10) {
				ok = false;
				break;
			}
			v = v * 10 + (uint64_t)(*d - '0');
		}
		if (!ok || (d < name + baselen && *d != ','))
			continue;
		if (key == 'U' && v > 0 && v <= UINT32_MAX)
			*uid = (uint32_t)v;
		else if (key == 'S')
			physical = v;
		else if (key == 'W')
			virtual = v;
	}
	*size = virtual ? virtual : physical;
}

int
maildir_unique_name(const char *host, unsigned q, uint64_t size, uint64_t wire,
		    char *out, size_t outlen)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	int n = snprintf(out, outlen, "%lld.M%ldP%ldQ%u.%s,S=%" PRIu64,
			 (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
			 q, host, size);
	/* room left for ",U=4294967295:2," and the flags */
	if (n < 0 || (size_t)n >= outlen || n > MAILDIR_BASE_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (wire != 0 && wire != size) {
		int w =
		    snprintf(out + n, outlen - (size_t)n, ",W=%" PRIu64, wire);
		if (w < 0 || (size_t)(n + w) >= outlen ||
		    n + w > MAILDIR_BASE_MAX)
			out[n] = '\0'; /* no room: the size on disk it is */
	}
	return 0;
}

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
 * UIDVALIDITY) and maxuid. */
static uint32_t
maildir_next_uid(uint32_t mark, uint32_t maxuid, uint32_t uidvalidity,
		 const struct maildir_counter *ctr)
{
	uint32_t next = mark > maxuid ? mark : maxuid + 1;
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
	uint32_t next = maildir_next_uid(mark, maxuid, *uidvalidity, ctr);
	if ((uint64_t)next + want > UINT32_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	if ((want > 0 || next != mark) &&
	    maildir_write_number(dir, MAILDIR_UIDNEXT, next + (uint32_t)want) <
		0)
		return -1;
	*first = next;
	maildir_counter_set(ctr, *uidvalidity, next + (uint32_t)want);
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
	uint32_t next = maildir_next_uid(mark, maxuid, l->uidvalidity, ctr);
	size_t want = nnew + nolabel;
	l->uidnext = next;
	if (!assign) {
		l->pending = want;
		goto done;
	}
	if (want == 0) {
		if (next != mark &&
		    maildir_write_number(dir, MAILDIR_UIDNEXT, next) < 0)
			goto fail;
		maildir_counter_set(ctr, l->uidvalidity, next);
		goto done;
	}
	if ((uint64_t)next + want > UINT32_MAX) {
		errno = EOVERFLOW;
		goto fail;
	}
	/* The mark goes up before any file shows its UID: after a crash a
	 * UID may be skipped, never given twice. */
	l->uidnext = next + (uint32_t)want;
	if (maildir_write_number(dir, MAILDIR_UIDNEXT, l->uidnext) < 0)
		goto fail;
	maildir_counter_set(ctr, l->uidvalidity, l->uidnext);
	for (size_t i = 0; i < nnew; i++) {
		char name[MAILDIR_NAME_MAX + 1];
		uint32_t uid = next++;
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
		uint32_t uid = next++;
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

/* ---- mailboxes ---- */

static bool
maildir_valid_folder(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > MAILDIR_MBOX_MAX || name[0] == '.' ||
	    name[len - 1] == '.' || strstr(name, "..") != NULL)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
			return false;
	}
	return true;
}

int
maildir_mailbox_path(const char *userdir, const char *mailbox, char *out,
		     size_t outlen)
{
	int n;
	if (strcasecmp(mailbox, "INBOX") == 0)
		n = snprintf(out, outlen, "%s", userdir);
	else if (maildir_valid_folder(mailbox) &&
		 strncasecmp(mailbox, "INBOX.", 6) != 0)
		n = snprintf(out, outlen, "%s/.%s", userdir, mailbox);
	else {
		errno = EINVAL;
		return -1;
	}
	if (n < 0 || (size_t)n >= outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

const char *
maildir_mailbox_canon(const char *mailbox)
{
	return strcasecmp(mailbox, "INBOX") == 0 ? "INBOX" : mailbox;
}

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
