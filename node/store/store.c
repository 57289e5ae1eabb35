/* The shared message store: Maildir per user, one tree per domain, two
 * levels of hash prefixes (FNV-1a of the lowercased local part). Every
 * directory below the root is walked with openat(O_NOFOLLOW), so neither
 * a crafted address nor a symlink planted in the store leads outside it. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/fdio.h"
#include "../../common/log.h"
#include "maildir.h"
#include "notice.h"
#include "quota.h"
#include "store.h"

#define STORE_LOCAL_MAX 64
#define STORE_DOMAIN_MAX 253
#define STORE_COPY_CHUNK (1 << 20)
#define STORE_NAME_MAX 512

/* An address split, checked and lowercased. */
struct store_addr {
	char local[STORE_LOCAL_MAX + 1];
	char domain[STORE_DOMAIN_MAX + 1];
	char hash[2][3]; /* the two directory levels, "a7", "3f" */
};

/* A Maildir opened for delivery: the directories' fds. */
struct store_maildir {
	int tmp;
	int new;
};

int
store_init(struct store *s, const char *root, const char *hostname)
{
	struct stat st;
	size_t i, o = 0;

	memset(s, 0, sizeof(*s));
	if (root == NULL || root[0] == '\0' || hostname == NULL ||
	    hostname[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	if (strlen(root) >= sizeof(s->root)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (stat(root, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	memcpy(s->root, root, strlen(root) + 1);
	/* Maildir's own encoding of the host part: '/' and ':' (and ',',
	 * which would confuse the ",S=" field) become octal escapes. */
	for (i = 0; hostname[i] != '\0'; i++) {
		unsigned char c = (unsigned char)hostname[i];
		bool esc =
		    c == '/' || c == ':' || c == ',' || c < 0x20 || c == 0x7f;
		if (o + (esc ? 4 : 1) > STORE_HOST_MAX) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (esc)
			o += (size_t)snprintf(s->hostname + o,
					      sizeof(s->hostname) - o, "\\%03o",
					      c);
		else
			s->hostname[o++] = (char)c;
	}
	s->hostname[o] = '\0';
	return 0;
}

static uint32_t
store_fnv1a(const char *p)
{
	uint32_t h = 2166136261u;
	for (; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 16777619u;
	}
	return h;
}

/* Checks one part (local or domain) of an address and copies it,
 * lowercased, into out. Refused: empty, over max bytes, control bytes,
 * '/', '\\', a leading or trailing dot, "..". */
static int
store_addr_part(const char *p, size_t len, size_t max, char *out)
{
	size_t i;

	if (len == 0 || len > max || p[0] == '.' || p[len - 1] == '.')
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '@')
			return -1;
		if (c == '.' && p[i + 1] == '.')
			return -1;
		out[i] = (char)(c < 0x80 ? tolower(c) : c);
	}
	out[len] = '\0';
	return 0;
}

static int
store_addr_parse(const char *address, struct store_addr *a)
{
	const char *at;
	size_t len;
	uint32_t h;

	if (address == NULL ||
	    (len = strnlen(address, STORE_ADDR_MAX)) == STORE_ADDR_MAX)
		goto fail;
	if ((at = strchr(address, '@')) == NULL)
		goto fail;
	if (store_addr_part(address, (size_t)(at - address), STORE_LOCAL_MAX,
			    a->local) < 0)
		goto fail;
	if (store_addr_part(at + 1, len - (size_t)(at + 1 - address),
			    STORE_DOMAIN_MAX, a->domain) < 0)
		goto fail;
	h = store_fnv1a(a->local);
	snprintf(a->hash[0], sizeof(a->hash[0]), "%02x",
		 (unsigned)(h >> 24) & 0xff);
	snprintf(a->hash[1], sizeof(a->hash[1]), "%02x",
		 (unsigned)(h >> 16) & 0xff);
	return 0;
fail:
	errno = EINVAL;
	return -1;
}

/* Opens directory name under dirfd, creating it (mode 0700) when it is
 * missing and create is set; a directory just made has its entry fsynced
 * in dirfd. Tries open first: on a shared filesystem a mkdir of what
 * exists costs a round trip. Refuses to follow a symlink. Returns the new
 * fd or -1 with errno. */
static int
store_subdir(int dirfd, const char *name, bool create)
{
	const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	int fd = openat(dirfd, name, flags);

	if (fd >= 0 || errno != ENOENT || !create)
		return fd;
	if (mkdirat(dirfd, name, 0700) == 0) {
		if (fsync(dirfd) < 0)
			return -1;
	} else if (errno != EEXIST) /* EEXIST: another node made it */
		return -1;
	return openat(dirfd, name, flags);
}

/* Walks root/domain/h1/h2/local, creating what is missing when create is
 * set, and returns the fd of the user's Maildir, or -1 with errno. */
static int
store_open_user(const struct store *s, const struct store_addr *a, bool create)
{
	const char *path[] = {a->domain, a->hash[0], a->hash[1], a->local};
	int fd, next;
	size_t i;

	fd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (i = 0; i < sizeof(path) / sizeof(*path); i++) {
		next = store_subdir(fd, path[i], create);
		int saved = errno;
		close(fd);
		errno = saved;
		if (next < 0)
			return -1;
		fd = next;
	}
	return fd;
}

/* The folder's directory under the user's (user, closed here), made
 * (subscribed, with its special use from its name: "Junk") when missing.
 * Returns its fd or -1 with errno. */
static int
store_folder_open(const struct store *s, const struct store_addr *a, int user,
		  const char *folder)
{
	char userdir[4096], dot[MAILDIR_MBOX_MAX + 2];
	snprintf(dot, sizeof(dot), ".%s", folder);
	int fd = store_subdir(user, dot, false);
	if (fd >= 0 || errno != ENOENT)
		goto out;
	int n = snprintf(userdir, sizeof(userdir), "%s/%s/%s/%s/%s", s->root,
			 a->domain, a->hash[0], a->hash[1], a->local);
	if (n < 0 || (size_t)n >= sizeof(userdir)) {
		errno = ENAMETOOLONG;
		goto out;
	}
	if (maildir_folder_create(userdir, folder) == 0)
		maildir_subscribe(userdir, folder, true);
	else if (errno != EEXIST)
		goto out;
	fd = store_subdir(user, dot, false);
out:;
	int saved = errno;
	close(user);
	errno = saved;
	return fd;
}

static void
store_maildir_close(struct store_maildir *md)
{
	if (md->tmp >= 0)
		close(md->tmp);
	if (md->new >= 0)
		close(md->new);
	md->tmp = md->new = -1;
}

/* Opens (creating) the Maildir of a: its tmp/ and new/ (and cur/); of
 * its folder `folder` (a Maildir++ ".folder", made first when missing)
 * unless that is NULL. */
static int
store_maildir_open(const struct store *s, const struct store_addr *a,
		   const char *folder, struct store_maildir *md)
{
	int user, cur = -1, saved;

	md->tmp = md->new = -1;
	if ((user = store_open_user(s, a, true)) < 0)
		return -1;
	if (folder && (user = store_folder_open(s, a, user, folder)) < 0)
		return -1;
	if ((cur = store_subdir(user, "cur", true)) < 0)
		goto fail;
	if ((md->new = store_subdir(user, "new", true)) < 0)
		goto fail;
	if ((md->tmp = store_subdir(user, "tmp", true)) < 0)
		goto fail;
	close(cur);
	close(user);
	return 0;
fail:
	saved = errno;
	if (cur >= 0)
		close(cur);
	close(user);
	store_maildir_close(md);
	errno = saved;
	return -1;
}

int
store_user_dir(const struct store *s, const char *address, char *out,
	       size_t outlen, bool create)
{
	struct store_addr a;
	struct store_maildir md;
	int n;

	if (store_addr_parse(address, &a) < 0)
		return -1;
	n = snprintf(out, outlen, "%s/%s/%s/%s/%s", s->root, a.domain,
		     a.hash[0], a.hash[1], a.local);
	if (n < 0 || (size_t)n >= outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (create) {
		if (store_maildir_open(s, &a, NULL, &md) < 0)
			return -1;
		store_maildir_close(&md);
	}
	return 0;
}

/* Copies len bytes of in from offset 0 to out's current offset, in the
 * kernel when it can (copy_file_range, then sendfile), never holding more
 * than one chunk in memory otherwise. A source shorter than len is EIO. */
static int
store_copy(int in, int out, size_t len)
{
	off_t off = 0;
	size_t left = len;
	int how = 0; /* 0: copy_file_range, 1: sendfile, 2: pread/write */
	char *buf = NULL;

	while (left > 0) {
		size_t want = left < STORE_COPY_CHUNK ? left : STORE_COPY_CHUNK;
		ssize_t n;
		if (how == 0)
			n = copy_file_range(in, &off, out, NULL, want, 0);
		else if (how == 1)
			n = sendfile(out, in, &off, want);
		else {
			n = pread(in, buf, want, off);
			if (n > 0 && fd_write_all(out, buf, (size_t)n) < 0)
				goto fail;
			if (n > 0)
				off += n;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && how < 2 &&
		    (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
		     errno == EOPNOTSUPP || errno == EBADF)) {
			/* only before anything moved: a partial kernel copy
			 * followed by another method would be wrong */
			if (off != 0)
				goto fail;
			how++;
			if (how == 2 &&
			    (buf = malloc(STORE_COPY_CHUNK)) == NULL)
				goto fail;
			continue;
		}
		if (n < 0)
			goto fail;
		if (n == 0) {
			errno = EIO; /* the source is shorter than promised */
			goto fail;
		}
		left -= (size_t)n;
	}
	free(buf);
	return 0;
fail:;
	int saved = errno;
	free(buf);
	errno = saved;
	return -1;
}

/* Counts a delivered copy in the recipient's usage (quota.h). */
static void
store_quota_add(const struct store *s, const char *rcpt, size_t size)
{
	char dir[4096];

	if (store_user_dir(s, rcpt, dir, sizeof(dir), false) == 0)
		quota_change(dir, (int64_t)size, 1);
}

/* One copy into one Maildir: tmp/NAME written and fsynced, renamed to
 * new/NAME, new/ fsynced. On failure nothing is left in tmp/. */
static int
store_deliver_one(struct store *s, const char *rcpt, const char *folder, int fd,
		  size_t len, const char *prefix, size_t plen)
{
	struct store_addr a;
	struct store_maildir md = {-1, -1};
	char name[STORE_NAME_MAX];
	int out = -1, saved;
	bool created = false;

	if (store_addr_parse(rcpt, &a) < 0)
		goto fail;
	if (store_maildir_open(s, &a, folder, &md) < 0)
		goto fail;
	if (maildir_unique_name(s->hostname, (unsigned)++s->seq, plen + len, 0,
				name, sizeof(name)) < 0)
		goto fail;
	out =
	    openat(md.tmp, name,
		   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		goto fail;
	created = true;
	if (fd_write_all(out, prefix, plen) < 0)
		goto fail;
	if (store_copy(fd, out, len) < 0)
		goto fail;
	if (fsync(out) < 0)
		goto fail;
	if (close(out) < 0) {
		out = -1;
		goto fail;
	}
	out = -1;
	if (renameat(md.tmp, name, md.new, name) < 0)
		goto fail;
	created = false;
	if (fsync(md.new) < 0)
		goto fail; /* in new/ but not known durable: report it */
	store_maildir_close(&md);
	store_quota_add(s, rcpt, plen + len);
	return 0;
fail:
	saved = errno;
	log_warn("store: deliver to %s: %s", rcpt ? rcpt : "(null)",
		 strerror(saved));
	if (out >= 0)
		close(out);
	if (created && unlinkat(md.tmp, name, 0) < 0)
		log_warn("store: remove tmp/%s for %s: %s", name, rcpt,
			 strerror(errno));
	store_maildir_close(&md);
	errno = saved;
	return -1;
}

int
store_deliver(struct store *s, const char *const *rcpts, size_t n, int fd,
	      size_t len, const char *prefix, bool *failed)
{
	return store_deliver_to(s, rcpts, n, NULL, fd, len, prefix, failed);
}

int
store_deliver_to(struct store *s, const char *const *rcpts, size_t n,
		 const char *folder, int fd, size_t len, const char *prefix,
		 bool *failed)
{
	size_t i, plen = prefix ? strlen(prefix) : 0;
	int first_errno = 0;

	for (i = 0; i < n; i++) {
		failed[i] = store_deliver_one(s, rcpts[i], folder, fd, len,
					      prefix ? prefix : "", plen) < 0;
		if (!failed[i]) /* wakes IMAP IDLE on every node */
			notice_changed(s->notice, rcpts[i],
				       folder ? folder : "INBOX");
		else if (first_errno == 0)
			first_errno = errno;
	}
	if (first_errno != 0) {
		errno = first_errno;
		return -1;
	}
	return 0;
}

bool
store_writable(struct store *s)
{
	char name[STORE_NAME_MAX];
	int dir = -1, fd = -1, root;
	bool ok = false, created = false;

	if ((root = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto out;
	if ((dir = store_subdir(root, ".health", true)) < 0)
		goto out;
	if (maildir_unique_name(s->hostname, (unsigned)++s->seq, 5, 0, name,
				sizeof(name)) < 0)
		goto out;
	fd = openat(dir, name,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	created = true;
	if (fd_write_all(fd, "probe", 5) < 0 || fsync(fd) < 0)
		goto out;
	ok = true;
out:
	if (!ok)
		log_debug("store: %s not writable: %s", s->root,
			  strerror(errno));
	if (fd >= 0)
		close(fd);
	if (created && unlinkat(dir, name, 0) < 0) {
		log_warn("store: remove .health/%s: %s", name, strerror(errno));
		ok = false;
	}
	if (dir >= 0)
		close(dir);
	if (root >= 0)
		close(root);
	return ok;
}
