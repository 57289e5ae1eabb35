/* Dotlocks: a file replaced whole by whoever holds NAME.lock, created
 * with O_EXCL (atomic on a shared filesystem, so it excludes other nodes
 * and a Dovecot on the same store, which locks dovecot-keywords so). The
 * lock file is the new content: written, fsynced, then renamed over NAME,
 * which releases the lock in the same step. A lock older than
 * MAILDIR_DOTLOCK_STALE seconds was left by a process that died and is
 * broken. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "maildir_int.h"

int
maildir_dotlock(const char *dir, const char *name, int wait_ms, char *lock,
		size_t locklen)
{
	int n = snprintf(lock, locklen, "%s/%s.lock", dir, name);
	if (n < 0 || (size_t)n >= locklen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (int waited = 0; waited <= wait_ms; waited++) {
		int fd = open(
		    lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    0600);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -1;
		struct stat st;
		if (lstat(lock, &st) == 0 &&
		    st.st_mtime + MAILDIR_DOTLOCK_STALE < time(NULL)) {
			log_warn("%s: %s: stale, broken", __func__, lock);
			unlink(lock);
			continue;
		}
		struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
	}
	log_warn("%s: %s: %s", __func__, lock, strerror(ETIMEDOUT));
	errno = ETIMEDOUT;
	return -1;
}

int
maildir_dotlock_commit(int fd, const char *lock, const char *dir,
		       const char *name, bool durable)
{
	char path[MAILDIR_PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int rc = durable ? maildir_sync_close(fd) : close(fd);
	if (rc < 0 || rename(lock, path) < 0 ||
	    (durable && maildir_fsync_dir(dir) < 0)) {
		int e = errno;
		unlink(lock);
		errno = e;
		return -1;
	}
	return 0;
}

void
maildir_dotlock_drop(int fd, const char *lock)
{
	close(fd);
	unlink(lock);
}
