/* systemd's service notifications (sd_notify(3)) spoken directly on
 * $NOTIFY_SOCKET, the documented datagram protocol, without libsystemd:
 * readiness (READY=1), reloads (RELOADING=1, then READY=1), the stop
 * (STOPPING=1) and the watchdog (WATCHDOG=1 every half of $WATCHDOG_USEC,
 * from the caller's event loop, so a stuck loop stops feeding it). Outside
 * systemd (no NOTIFY_SOCKET) every call does nothing. */
#ifndef MS_SDNOTIFY_H
#define MS_SDNOTIFY_H

#include <ev.h>

/* The caller's: lives as long as the loop runs the watchdog. */
struct sdnotify_watchdog {
	ev_timer timer;
	double interval; /* seconds between WATCHDOG=1; 0: not running */
};

/* Sends state, newline-separated VAR=VALUE lines ("READY=1\nSTATUS=..."),
 * as one datagram to $NOTIFY_SOCKET (a path, or "@name" for an abstract
 * socket). Returns 1 when sent, 0 when there is no socket to tell, -1 on
 * an error (logged once per call; the daemon goes on). */
int sdnotify(const char *state);

/* Starts sending WATCHDOG=1 from loop every half of $WATCHDOG_USEC, when
 * it is set (and $WATCHDOG_PID, if set, is this process). Returns 1 when
 * started, 0 when systemd asked for no watchdog. */
int sdnotify_watchdog_start(struct ev_loop *loop, struct sdnotify_watchdog *w);
void sdnotify_watchdog_stop(struct ev_loop *loop, struct sdnotify_watchdog *w);

#endif
