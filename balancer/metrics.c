#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/metrics_http.h"
#include "status.h"
#include "status_page.h"

/* One family of series: per service or per node. */
struct metrics_svc_family {
	const char *name, *type, *help;
	double (*value)(struct service *s);
};

struct metrics_node_family {
	const char *name, *type, *help;
	/* writes the family's series for n (labels already formatted) */
	int (*write)(struct strbuf *sb, const char *name, const char *labels,
		     struct node *n);
};

static double
metrics_svc_active(struct service *s)
{
	return (double)atomic_load(&s->active);
}

static double
metrics_svc_total(struct service *s)
{
	return (double)atomic_load(&s->total);
}

static double
metrics_svc_bytes_in(struct service *s)
{
	return (double)atomic_load(&s->bytes_in);
}

static double
metrics_svc_bytes_out(struct service *s)
{
	return (double)atomic_load(&s->bytes_out);
}

static double
metrics_svc_refused(struct service *s)
{
	return (double)atomic_load(&s->refused);
}

static const struct metrics_svc_family metrics_svc[] = {
    {"lbd_service_connections_active", "gauge", "Client connections open now.",
     metrics_svc_active},
    {"lbd_service_connections_total", "counter", "Client connections accepted.",
     metrics_svc_total},
    {"lbd_service_bytes_in_total", "counter", "Bytes from clients to nodes.",
     metrics_svc_bytes_in},
    {"lbd_service_bytes_out_total", "counter", "Bytes from nodes to clients.",
     metrics_svc_bytes_out},
    {"lbd_service_refused_total", "counter",
     "Clients refused: no usable node or over max_connections.",
     metrics_svc_refused},
};

static int
metrics_node_series(struct strbuf *sb, const char *name, const char *labels,
		    double v)
{
	return strbuf_appendf(sb, "%s{%s} %.17g\n", name, labels, v);
}

static int
metrics_node_active(struct strbuf *sb, const char *name, const char *labels,
		    struct node *n)
{
	return metrics_node_series(sb, name, labels,
				   (double)atomic_load(&n->active));
}

static int
metrics_node_total(struct strbuf *sb, const char *name, const char *labels,
		   struct node *n)
{
	return metrics_node_series(sb, name, labels,
				   (double)atomic_load(&n->total));
}

static int
metrics_node_bytes_in(struct strbuf *sb, const char *name, const char *labels,
		      struct node *n)
{
	return metrics_node_series(sb, name, labels,
				   (double)atomic_load(&n->bytes_in));
}

static int
metrics_node_bytes_out(struct strbuf *sb, const char *name, const char *labels,
		       struct node *n)
{
	return metrics_node_series(sb, name, labels,
				   (double)atomic_load(&n->bytes_out));
}

static int
metrics_node_up(struct strbuf *sb, const char *name, const char *labels,
		struct node *n)
{
	return metrics_node_series(
	    sb, name, labels, atomic_load(&n->health) == HEALTH_UP ? 1 : 0);
}

static int
metrics_node_state(struct strbuf *sb, const char *name, const char *labels,
		   struct node *n)
{
	static const char *const states[] = {"up", "down", "drain", "maint",
					     "removing"};
	const char *cur = node_state_name(n);
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		if (strbuf_appendf(sb, "%s{%s,state=\"%s\"} %d\n", name, labels,
				   states[i], strcmp(cur, states[i]) == 0) < 0)
			return -1;
	return 0;
}

static int
metrics_node_check_ok(struct strbuf *sb, const char *name, const char *labels,
		      struct node *n)
{
	return metrics_node_series(sb, name, labels, n->check_ok == 1 ? 1 : 0);
}

static int
metrics_node_check_latency(struct strbuf *sb, const char *name,
			   const char *labels, struct node *n)
{
	return metrics_node_series(sb, name, labels,
				   n->check_latency_ms / 1000.0);
}

static int
metrics_node_connect_failures(struct strbuf *sb, const char *name,
			      const char *labels, struct node *n)
{
	return metrics_node_series(sb, name, labels,
				   (double)atomic_load(&n->connect_fail));
}

static const struct metrics_node_family metrics_node[] = {
    {"lbd_node_connections_active", "gauge",
     "Connections open to the node now.", metrics_node_active},
    {"lbd_node_connections_total", "counter",
     "Connections relayed to the node.", metrics_node_total},
    {"lbd_node_bytes_in_total", "counter", "Bytes from clients to the node.",
     metrics_node_bytes_in},
    {"lbd_node_bytes_out_total", "counter", "Bytes from the node to clients.",
     metrics_node_bytes_out},
    {"lbd_node_up", "gauge", "1 when the probes say the node is up.",
     metrics_node_up},
    {"lbd_node_state", "gauge",
     "The node's state (up, down, drain, maint, removing), one-hot.",
     metrics_node_state},
    {"lbd_node_check_ok", "gauge", "1 when the last probe passed.",
     metrics_node_check_ok},
    {"lbd_node_check_latency_seconds", "gauge", "How long the last probe took.",
     metrics_node_check_latency},
    {"lbd_node_connect_failures_total", "counter",
     "Connects of real traffic to the node that failed.",
     metrics_node_connect_failures},
};

/* A label value: '\\', '"' and newlines escaped. */
/* Edge protection: refusals per service and reason, sources per table. */
static int
metrics_edge(struct lbd *l, struct strbuf *sb)
{
	char a[3 * LBD_NAME_MAX];
	if (metrics_http_head(
		sb, "lbd_service_edge_refused_total", "counter",
		"Clients refused by edge protection, per reason.") < 0)
		return -1;
	for (struct service *s = l->cfg->services; s; s = s->next) {
		metrics_http_label(a, sizeof(a), s->name);
		for (int r = EDGE_DENY; r < EDGE_NREASONS; r++)
			if (strbuf_appendf(
				sb, "%s{service=\"%s\",reason=\"%s\"} %lu\n",
				"lbd_service_edge_refused_total", a,
				edge_reason_name(r),
				atomic_load(&s->edge_refused[r])) < 0)
				return -1;
	}
	if (metrics_http_head(sb, "lbd_service_edge_sources", "gauge",
			      "Sources in the service's per-source table.") < 0)
		return -1;
	for (struct service *s = l->cfg->services; s; s = s->next) {
		metrics_http_label(a, sizeof(a), s->name);
		if (strbuf_appendf(sb, "%s{service=\"%s\"} %ld\n",
				   "lbd_service_edge_sources", a,
				   s->edge ? edge_sources(s->edge) : 0L) < 0)
			return -1;
	}
	return 0;
}

int
metrics_render(struct lbd *l, struct strbuf *sb)
{
	char a[3 * LBD_NAME_MAX], b[3 * NODE_NAME_MAX], c[3 * ADDR_STRLEN];
	char labels[3 * (LBD_NAME_MAX + NODE_NAME_MAX + ADDR_STRLEN) + 64];

	for (size_t f = 0; f < sizeof(metrics_svc) / sizeof(metrics_svc[0]);
	     f++) {
		const struct metrics_svc_family *fam = &metrics_svc[f];
		if (metrics_http_head(sb, fam->name, fam->type, fam->help) < 0)
			return -1;
		for (struct service *s = l->cfg->services; s; s = s->next) {
			metrics_http_label(a, sizeof(a), s->name);
			if (strbuf_appendf(sb, "%s{service=\"%s\"} %.17g\n",
					   fam->name, a, fam->value(s)) < 0)
				return -1;
		}
	}
	if (metrics_edge(l, sb) < 0)
		return -1;
	for (size_t f = 0; f < sizeof(metrics_node) / sizeof(metrics_node[0]);
	     f++) {
		const struct metrics_node_family *fam = &metrics_node[f];
		if (metrics_http_head(sb, fam->name, fam->type, fam->help) < 0)
			return -1;
		for (struct pool *p = l->cfg->pools; p; p = p->next)
			for (size_t i = 0; i < p->nnodes; i++) {
				struct node *n = p->nodes[i];
				metrics_http_label(a, sizeof(a), p->name);
				metrics_http_label(b, sizeof(b), n->name);
				metrics_http_label(c, sizeof(c), n->addrstr);
				snprintf(
				    labels, sizeof(labels),
				    "pool=\"%s\",node=\"%s\",address=\"%s\"", a,
				    b, c);
				if (fam->write(sb, fam->name, labels, n) < 0)
					return -1;
			}
	}
	return 0;
}

static int
metrics_render_cb(void *arg, struct strbuf *sb)
{
	return metrics_render(arg, sb);
}

static int
metrics_status_json_cb(void *arg, struct strbuf *sb)
{
	return status_json(arg, sb);
}

/* What lbd's metrics listener serves: the status page at /, which
 * fetches /status.json (the `show status json` document) every few
 * seconds, and the exposition. */
static const struct metrics_http_route metrics_routes[] = {
    {"/", "text/html; charset=utf-8", "no-cache", true, status_page_render,
     status_page_headers},
    {"/status.json", "application/json", "no-store", false,
     metrics_status_json_cb, NULL},
    {"/metrics", "text/plain; version=0.0.4", "no-store", false,
     metrics_render_cb, NULL},
};

int
metrics_start(struct lbd *l)
{
	if (!l->cfg->set.has_metrics)
		return 0;
	l->metrics = metrics_http_start_routes(
	    l->loop, &l->cfg->set.metrics, l->cfg->set.metrics_str,
	    metrics_routes, sizeof(metrics_routes) / sizeof(metrics_routes[0]),
	    l);
	if (l->metrics == NULL)
		return -1;
	log_info("status page on http://%s/", l->cfg->set.metrics_str);
	return 0;
}

void
metrics_stop(struct lbd *l)
{
	metrics_http_stop(l->metrics);
	l->metrics = NULL;
}
