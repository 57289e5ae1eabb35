#include "fdio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
fd_write_all(int fd, const void *p, size_t len)
{
	const char *c = p;
	while (len > 0) {
		ssize_t w = write(fd, c, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		c += w;
		len -= (size_t)w;
	}
	return 0;
}

/* fd_write_replace's fill for a buffer: fwrite's errors show in ferror. */
struct fd_buf {
	const void *p;
	size_t len;
};

static void
fd_buf_fill(FILE *f, void *arg)
{
	struct fd_buf *b = arg;
	if (b->len > 0)
		fwrite(b->p, 1, b->len, f);
}

int
fd_replace_file(const char *path, const void *p, size_t len)
{
	char dir[PATH_MAX], tmp[NAME_MAX + 1];
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	struct fd_buf b = {p, len};
	int dirfd, rc, saved;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else if ((size_t)(slash - path) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", name, (long)getpid()) >=
	    (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -1;
	rc = fd_write_replace(dirfd, tmp, name, fd_buf_fill, &b);
	saved = errno;
	close(dirfd);
	errno = saved;
	return rc;
}

int
fd_copy(int in, int out, size_t len)
{
	return fd_copy_range(in, 0, out, len);
}

int
fd_copy_range(int in, off_t from, int out, size_t len)
{
	char buf[65536];
	off_t off = from;
	while ((size_t)(off - from) < len) {
		size_t want = len - (size_t)(off - from);
		if (want > sizeof(buf))
			want = sizeof(buf);
		ssize_t n = pread(in, buf, want, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		if (fd_write_all(out, buf, (size_t)n) < 0)
			return -1;
		off += n;
	}
	return 0;
}

int
mkdirs(const char *path, mode_t mode)
{
	char buf[4096];
	size_t i, len = strlen(path);

	if (len == 0 || len >= sizeof(buf)) {
		errno = len ? ENAMETOOLONG : EINVAL;
		return -1;
	}
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -1;
		buf[i] = path[i];
	}
	return 0;
}

int
fd_write_replace(int dirfd, const char *tmp, const char *name,
		 void (*fill)(FILE *f, void *arg), void *arg)
{
	FILE *f;
	int saved;
	int fd =
	    openat(dirfd, tmp,
		   O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if ((f = fdopen(fd, "w")) == NULL) {
		saved = errno;
		close(fd);
		goto fail;
	}
	fill(f, arg);
	if (fflush(f) != 0 || ferror(f) || fsync(fd) < 0) {
		saved = errno ? errno : EIO;
		fclose(f);
		goto fail;
	}
	if (fclose(f) != 0) {
		saved = errno;
		goto fail;
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		saved = errno;
		goto fail;
	}
	return fsync(dirfd); /* -1: name is there, not known durable */
fail:
	unlinkat(dirfd, tmp, 0);
	errno = saved;
	return -1;
}

char *
fd_read_small(int dirfd, const char *name, size_t max, size_t *lenp)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, saved;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		goto fail;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		goto fail;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	*lenp = got;
	close(fd);
	return buf;
fail:
	saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return NULL;
}

DIR *
fd_opendir(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL && fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return d;
}
