/* mailnode's Prometheus endpoint: with [listen] metrics = HOST:PORT, GET
 * /metrics on that address (common/metrics_http.h: 404 for other paths,
 * 405 for other methods, bounded requests, 5 s to send one) answers with
 * the counters of struct mailnode_counters (mailnode.h), the spool's
 * depth, Redis's state and the round trip of a PING sent every
 * METRICS_PING_INTERVAL seconds (the first 1 s after the start), the store
 * check's verdict and how long it took, and the version. mailnode.c starts and
 * stops it; the protocols never call it (they only bump the counters). */
#ifndef NODE_METRICS_H
#define NODE_METRICS_H

#include "../../common/strbuf.h"
#include "../mailnode.h"

#define METRICS_PING_INTERVAL 5.0 /* seconds between Redis PINGs */

struct mailnode_metrics;

/* Starts the endpoint and the PING timer when mn->cfg->metrics is on.
 * Returns 0 (mn->metrics NULL when off), or -1 (logged). */
int mailnode_metrics_start(struct mailnode *mn);
/* Stops both. mn->metrics NULL is fine. */
void mailnode_metrics_stop(struct mailnode *mn);
/* The exposition text. Returns 0, or -1 when sb hit its cap. */
int mailnode_metrics_render(struct mailnode *mn, struct strbuf *sb);

#endif
