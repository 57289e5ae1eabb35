/* Whole writes to a file descriptor. */
#ifndef MS_FDIO_H
#define MS_FDIO_H

#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* Writes all len bytes of p to fd, going on after EINTR and short writes.
 * Returns 0, or -1 with errno set. */
int fd_write_all(int fd, const void *p, size_t len);

/* Replaces the file at path with len bytes of p, atomically and durably
 * (fd_write_replace in path's directory, through path.tmp.PID; a new file
 * is mode 0600), so a crash leaves the old file or the new one, never a
 * part. Returns 0, or -1 with errno set. */
int fd_replace_file(const char *path, const void *p, size_t len);

/* Copies the first len bytes of in (from offset 0, pread) to out's
 * position. Returns 0, or -1 with errno (EIO: in is shorter). */
int fd_copy(int in, int out, size_t len);
/* The same from offset from of in. */
int fd_copy_range(int in, off_t from, int out, size_t len);

/* Replaces dirfd/name atomically and durably: fill writes the new
 * content through f into dirfd/tmp (created 0600), which is flushed,
 * fsynced, renamed over name, and dirfd fsynced. Returns 0, or -1 with
 * errno and tmp removed (when only the last fsync failed, name is new but
 * not known durable). */
int fd_write_replace(int dirfd, const char *tmp, const char *name,
		     void (*fill)(FILE *f, void *arg), void *arg);

/* Reads dirfd/name (a regular file, not followed if a symlink) whole
 * into a NUL-terminated buffer, at most max bytes. Returns it (the caller
 * frees) with its length in *lenp, or NULL with errno (EFBIG: bigger than
 * max; EINVAL: not a regular file). */
char *fd_read_small(int dirfd, const char *name, size_t max, size_t *lenp);

/* A directory stream over dirfd (its own descriptor: closedir() leaves
 * dirfd open). Returns NULL with errno. */
DIR *fd_opendir(int dirfd);

/* mkdir -p path, each missing directory with mode. Returns 0 or -1 with
 * errno. */
int mkdirs(const char *path, mode_t mode);

#endif
