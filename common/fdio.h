/* Whole writes to a file descriptor. */
#ifndef MS_FDIO_H
#define MS_FDIO_H

#include <stddef.h>
#include <sys/types.h>

/* Writes all len bytes of p to fd, going on after EINTR and short writes.
 * Returns 0, or -1 with errno set. */
int fd_write_all(int fd, const void *p, size_t len);

/* Copies the first len bytes of in (from offset 0, pread) to out's
 * position. Returns 0, or -1 with errno (EIO: in is shorter). */
int fd_copy(int in, int out, size_t len);

/* mkdir -p path, each missing directory with mode. Returns 0 or -1 with
 * errno. */
int mkdirs(const char *path, mode_t mode);

#endif
