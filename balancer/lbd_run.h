/* The lbd process's entry points: run, stop, reload. */
#ifndef LBD_RUN_H
#define LBD_RUN_H

#include "lbd.h"

/* Runs lbd with cfg (which it takes over) until SIGTERM/SIGINT and the
 * grace period end. Returns the exit status: 0, or 1 when it could not
 * start (a listener, the control socket). With takeover, the listening
 * sockets come from the lbd running with the same control socket, which
 * then stops (handover.h): an upgrade that refuses no connection. */
int lbd_run(struct lbd_config *cfg, bool takeover);
/* Stops accepting and lets connections finish for grace_s. */
void lbd_stop(struct lbd *l);
/* SIGHUP: re-reads the config file and applies it in place. */
void lbd_reload(struct lbd *l);
/* Registers who hears "a node changed" (event.h): the watch stream, the
 * state file, the shared state, in that order. lbd_run() calls it first;
 * a test that builds a struct lbd by hand calls it too. */
int lbd_subscribe(struct lbd *l);

#endif
