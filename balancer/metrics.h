/* lbd's metrics listener: when [lbd] metrics is set, served on the main
 * loop by common/metrics_http.h: GET / the status page (status_page.h),
 * /status.json the `show status json` document, /metrics the Prometheus
 * exposition; 404 for other paths, 405 for other methods, 400 for what is
 * not a request. */
#ifndef LBD_METRICS_H
#define LBD_METRICS_H

#include "../common/strbuf.h"
#include "lbd.h"

/* Listens on l->cfg->set.metrics when has_metrics. Returns 0 (also when
 * not configured), or -1 (logged). */
int metrics_start(struct lbd *l);
void metrics_stop(struct lbd *l);
/* The exposition text. Returns 0, or -1 when sb hit its cap. */
int metrics_render(struct lbd *l, struct strbuf *sb);

#endif
