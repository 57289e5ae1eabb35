/* Listening sockets. */
#ifndef MS_NET_H
#define MS_NET_H

#include <stdbool.h>

#include "addr.h"

/* Opens a non-blocking, close-on-exec TCP listener on a (IPv6 listeners
 * are IPv6-only), with SO_REUSEPORT when reuseport is set so that several
 * threads can each own one. Returns the fd, or -1 with errno set. */
int net_listen(const struct addr *a, bool reuseport);

#endif
