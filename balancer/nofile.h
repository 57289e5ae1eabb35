/* lbd's open-file limit (RLIMIT_NOFILE): raised at start by lbd itself,
 * and checked against what the services' max_connections may open, so
 * that a cap that cannot be reached is refused at start (or at a reload)
 * instead of showing up later as failed accept()s. */
#ifndef LBD_NOFILE_H
#define LBD_NOFILE_H

#include <stddef.h>

#include "lbd.h"

/* Descriptors lbd holds besides its connections and listeners: the
 * control socket and its clients, the metrics listener, probes, the
 * resolvers, Redis, each worker's spare pipes. */
#define NOFILE_MARGIN 256

/* Raises the soft limit to the hard one and, where cfg needs more than
 * the hard limit and the process may (CAP_SYS_RESOURCE, within
 * fs.nr_open), the hard limit to what cfg needs: two descriptors per
 * connection (the client's and the node's) that the services'
 * max_connections allow, one listener per service and each of workers, and
 * NOFILE_MARGIN. A service without max_connections bounds nothing: then
 * the soft limit is raised only. (Pipes for splice() are taken while
 * data is in flight and are not counted: when none can be had, a worker
 * moves bytes through buffers instead.) Logs what it got and about how
 * many connections that holds. Returns the soft limit, or -1 with err
 * naming the limit and the setting when cfg's need does not fit. */
long nofile_raise(const struct lbd_config *cfg, int workers, char *err,
		  size_t len);

#endif
