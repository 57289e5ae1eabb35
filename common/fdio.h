/* Whole writes to a file descriptor. */
#ifndef MS_FDIO_H
#define MS_FDIO_H

#include <stddef.h>

/* Writes all len bytes of p to fd, going on after EINTR and short writes.
 * Returns 0, or -1 with errno set. */
int fd_write_all(int fd, const void *p, size_t len);

#endif
