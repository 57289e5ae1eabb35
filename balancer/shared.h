/* The runtime state two balancers share through Redis ([lbd] redis, or
 * redis_sentinels with redis_master).
 *
 *   lbd:state           hash, field "POOL NODE" -> "VERSION KIND ADDRESS
 *                       WEIGHT MAXCONN ADMIN MAINT-UNTIL CHANGED", KIND
 *                       node or removed, ADMIN none, drain or maint,
 *                       MAINT-UNTIL epoch seconds or "-", CHANGED the
 *                       epoch time of the change
 *   lbd:state:version   the counter every change takes its version from
 *   lbd:state           channel: VERSION, published with every change
 *   lbd:health:POOL:NODE  hash BALANCER -> "up|down EPOCH", each
 *                       balancer's own probe verdict, with a TTL
 *
 * A change made on this balancer (the control socket) is written and
 * published in one server-side script, so the version and the record go
 * in together. Changes of the peer are applied through runtime.c's
 * operations (persisted, shown, not published again) when newer than the
 * version last applied for that entry, which the state file keeps. While
 * Redis is away changes stay local and pending; they are written when it
 * is back, and entries Redis lost are written again. Main thread only;
 * the workers never see any of it. */
#ifndef LBD_SHARED_H
#define LBD_SHARED_H

#include <stdbool.h>

#include "../common/strbuf.h"
#include "lbd.h"

/* Connects to Redis in the background and loads the shared state, after
 * the state file was applied. Nothing to do without redis. Returns 0 or
 * -1 (logged). */
int shared_start(struct lbd *l);
/* Closes the connection and frees shared.c's state. Safe to call twice. */
void shared_stop(struct lbd *l);

/* Subscriber (event.h): an EVENT_CHANGED from the control socket is
 * written to Redis now, or once Redis is back; the state file's and the
 * peer's are not. */
void shared_on_event(struct lbd *l, const struct event *ev);

/* The state file's "shared POOL NODE VERSION" lines: the version last
 * applied or written for each entry. */
int shared_state_lines(struct lbd *l, struct strbuf *sb);
/* statefile.c: one such line read back. Returns 0, or -1 if malformed. */
int shared_state_line(struct lbd *l, const char *pool, const char *node,
		      const char *version);

/* status.c: `, "seen_by": {"lb1": "up", ...}` for n, this balancer's own
 * verdict and the fresh ones other balancers published; nothing without
 * redis. */
int shared_seen_by_json(struct lbd *l, struct pool *p, struct node *n,
			struct strbuf *sb);

#endif
