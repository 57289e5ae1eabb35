/* Whole writes to a file descriptor. */
#ifndef MS_FDIO_H
#define MS_FDIO_H

#include <stddef.h>

/* Writes all len bytes of p to fd, going on after EINTR and short writes.
 * Returns 0, or -1 with errno set. */
int fd_write_all(int fd, const void *p, size_t len);

/* Replaces the file at path with len bytes of p, atomically: written to
 * path.tmp.PID, fsynced, renamed over path, and the directory fsynced, so
 * a crash leaves the old file or the new one, never a part. mode is for a
 * new file. Returns 0, or -1 with errno set (the temporary file removed). */
int fd_replace_file(const char *path, const void *p, size_t len, int mode);

#endif
