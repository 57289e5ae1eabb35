/* Upgrades without a refused connection: the running lbd gives its
 * listening sockets to its successor (`lbd -x`) over the control socket,
 * then stops accepting and lets its connections finish. Both processes
 * hold the same sockets, so a connection waiting in a listen queue is
 * accepted by the successor instead of being reset.
 *
 * On the control socket: the successor sends "handover\n"; the running
 * lbd answers "handover N\n", then N bytes, each carrying one listening
 * socket (SCM_RIGHTS), then stops: its control socket closes (EOF on this
 * connection) and the successor may bind the control socket and the
 * metrics listener itself. An error is one line "error: ...\n". */
#ifndef LBD_HANDOVER_H
#define LBD_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/addr.h"
#include "../common/serve.h"

struct lbd;

#define HANDOVER_COMMAND "handover"
#define HANDOVER_MAX 256 /* sockets: services x workers */

/* Sockets taken from the predecessor and not yet given to a service. */
struct handover {
	int fds[HANDOVER_MAX];
	struct addr addrs[HANDOVER_MAX]; /* each socket's local address */
	int n;
};

/* Old side, control client c sent HANDOVER_COMMAND: sends every service's
 * listening sockets on c and schedules the stop. */
void handover_give(struct lbd *l, struct serve_client *c);

/* New side: takes the listening sockets of the lbd whose control socket
 * is at path and waits until it has closed it. Returns 0, or -1 with
 * err (nothing taken). */
int handover_take(const char *path, struct handover *h, char *err,
		  size_t len);
/* A taken socket listening on a (now the caller's), or -1. */
int handover_claim(struct handover *h, const struct addr *a);
/* Closes the sockets no service claimed (logged: a service gone from the
 * config, or fewer workers than before). */
void handover_release(struct handover *h);

#endif
