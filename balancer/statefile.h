/* The state file: what run time changed (nodes added and removed, weights,
 * admin states with a timed maintenance's end), so it survives a restart.
 *
 *   lbd-state 1
 *   POOL NODE ADDRESS STATE ... MAXCONN ORIGIN MAINT-UNTIL CHECK   (status.h)
 *   mx   n1   127.0.0.1:25 drain ... 0 config - ok
 *   removed mx n3          (a config node removed at run time)
 *   shared mx n4 17        (the shared state's version last applied for
 *                           mx/n4, shared.h; older lbds skip the line)
 *
 * An empty state_file setting means no persistence. */
#ifndef LBD_STATEFILE_H
#define LBD_STATEFILE_H

#include "lbd.h"

#define STATEFILE_MAGIC "lbd-state"
#define STATEFILE_VERSION 1

/* Writes the state atomically (temp file in the same directory, fsync,
 * rename, fsync of the directory). Returns 0, or -1 (logged). */
int statefile_save(struct lbd *l);
/* Re-applies the state file to the running config: after the config is
 * applied, before traffic. A missing file is fine; lines that cannot be
 * applied are logged with file:line and skipped; the changes go through
 * runtime.c as ORIGIN_STATEFILE. Returns 0, or -1 (logged)
 * when the file cannot be read or names an unknown version. */
int statefile_load(struct lbd *l);
/* Subscriber (event.h): saves on every EVENT_CHANGED but those of the
 * state file itself (loading it saves nothing). */
void statefile_on_event(struct lbd *l, const struct event *ev);

#endif
