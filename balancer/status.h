/* One serializer for what lbd tells about its pools: `show status` (an
 * aligned table, one row per node), `show status json`, and the node table
 * of the state file, which is the status table plus the columns a restart
 * needs (as HAProxy's `show servers state` is its state file). */
#ifndef LBD_STATUS_H
#define LBD_STATUS_H

#include "../common/strbuf.h"
#include "lbd.h"

/* Each appends to sb and returns 0, or -1 when sb hit its cap. */

/* POOL NODE ADDRESS STATE HEALTH WEIGHT ACTIVE TOTAL LAST-CHANGE CHECK */
int status_text(struct lbd *l, struct strbuf *sb);
/* The DESIGN.md document, one line. */
int status_json(struct lbd *l, struct strbuf *sb);
/* The state file's node table: header row, then POOL NODE ADDRESS STATE
 * HEALTH WEIGHT ACTIVE TOTAL LAST-CHANGE MAXCONN ORIGIN MAINT-UNTIL CHECK,
 * where MAINT-UNTIL is epoch seconds or "-" and CHECK, which may hold
 * spaces, comes last. */
int status_state_table(struct lbd *l, struct strbuf *sb);

/* The state file's column count up to and including MAINT-UNTIL. */
#define STATUS_STATE_FIELDS 12

#endif
