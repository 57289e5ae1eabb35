#include "status.h"

#include <stdio.h>
#include <string.h>

#include "shared.h"

/* One node's values, read once; every format writes from this. */
struct status_row {
	const struct pool *p;
	const struct node *n;
	const char *state, *health;
	int weight;
	long active;
	unsigned long total, bytes_in, bytes_out, connect_fail;
	long last_change_s;
	int maxconn;
	const char *origin;
	double maint_until;
};

enum {
	STATUS_COL_TEXT = 1, /* show status */
	STATUS_COL_STATE = 2 /* state file */
};

struct status_col {
	const char *title;
	int formats;
	void (*cell)(const struct status_row *r, char *buf, size_t len);
};

static void
status_row_fill(struct lbd *l, struct pool *p, struct node *n,
		struct status_row *r)
{
	double since = n->last_change > 0 ? n->last_change : l->started;

	r->p = p;
	r->n = n;
	r->state = node_state_name(n);
	r->health = node_health_name(n);
	r->weight = atomic_load(&n->weight);
	r->active = atomic_load(&n->active);
	r->total = atomic_load(&n->total);
	r->bytes_in = atomic_load(&n->bytes_in);
	r->bytes_out = atomic_load(&n->bytes_out);
	r->connect_fail = atomic_load(&n->connect_fail);
	r->last_change_s = since > 0 ? (long)(ev_now(l->loop) - since) : 0;
	if (r->last_change_s < 0)
		r->last_change_s = 0;
	r->maxconn = n->maxconn;
	r->origin = n->from_config ? "config" : "runtime";
	r->maint_until =
	    atomic_load(&n->admin) == ADMIN_MAINT ? n->maint_until : 0;
}

static void
col_pool(const struct status_row *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s", r->p->name);
}

static void
col_node(const struct status_row *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s", r->n->name);
}

static void
col_address(const struct status_row *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s", r->n->addrstr);
}

static void
col_state(const struct status_row *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s", r->state);
}

static void
col_health(const struct status_row *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s", r->health);
}

static void
col_weight(const struct status_row *r, char *buf, size_t len)
{
	snprintf(buf, len, "%d", r->weight);
}

static void
col_active(const struct status_row *r, char *buf, size_t len)
{
	snprintf(buf, len, "%ld", r->active);
}

static void
col_total(const struct status_row *r, char *buf, size_t len)
{
	snprintf(buf, len, "%lu", r->total);
}

static void
col_last_change(const struct status_row *r, char *buf, size_t len)
{
	snprintf(buf, len, "%lds", r->last_change_s);
}

static void
col_maxconn(const struct status_row *r, char *buf, size_t len)
{
	snprintf(buf, len, "%d", r->maxconn);
}

static void
col_origin(const struct status_row *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s", r->origin);
}

static void
col_maint_until(const struct status_row *r, char *buf, size_t len)
{
	node_until_fmt(r->maint_until, buf, len);
}

static void
col_check(const struct status_row *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s", r->n->check_status);
}

static const struct status_col status_cols[] = {
    {"POOL", STATUS_COL_TEXT | STATUS_COL_STATE, col_pool},
    {"NODE", STATUS_COL_TEXT | STATUS_COL_STATE, col_node},
    {"ADDRESS", STATUS_COL_TEXT | STATUS_COL_STATE, col_address},
    {"STATE", STATUS_COL_TEXT | STATUS_COL_STATE, col_state},
    {"HEALTH", STATUS_COL_TEXT | STATUS_COL_STATE, col_health},
    {"WEIGHT", STATUS_COL_TEXT | STATUS_COL_STATE, col_weight},
    {"ACTIVE", STATUS_COL_TEXT | STATUS_COL_STATE, col_active},
    {"TOTAL", STATUS_COL_TEXT | STATUS_COL_STATE, col_total},
    {"LAST-CHANGE", STATUS_COL_TEXT | STATUS_COL_STATE, col_last_change},
    {"MAXCONN", STATUS_COL_STATE, col_maxconn},
    {"ORIGIN", STATUS_COL_STATE, col_origin},
    {"MAINT-UNTIL", STATUS_COL_STATE, col_maint_until},
    {"CHECK", STATUS_COL_TEXT | STATUS_COL_STATE, col_check},
};

#define STATUS_NCOLS (sizeof(status_cols) / sizeof(status_cols[0]))
#define STATUS_CELL_MAX 128

/* Writes one row: a title row when r is NULL, else r's cells, padded to
 * widths (the last column is not padded). */
static int
status_table_row(const struct status_row *r, int formats, const size_t *widths,
		 struct strbuf *sb)
{
	char cell[STATUS_CELL_MAX];
	size_t last = 0;

	for (size_t c = 0; c < STATUS_NCOLS; c++)
		if (status_cols[c].formats & formats)
			last = c;
	for (size_t c = 0; c < STATUS_NCOLS; c++) {
		if (!(status_cols[c].formats & formats))
			continue;
		if (r != NULL)
			status_cols[c].cell(r, cell, sizeof(cell));
		else
			snprintf(cell, sizeof(cell), "%s",
				 status_cols[c].title);
		if (c == last) {
			if (strbuf_appendf(sb, "%s\n", cell) < 0)
				return -1;
		} else if (strbuf_append_padded(sb, cell, widths[c] + 2) < 0) {
			return -1;
		}
	}
	return 0;
}

/* The aligned table of every node, for the columns in formats: one pass
 * to measure, one to write. */
static int
status_table(struct lbd *l, int formats, struct strbuf *sb)
{
	size_t widths[STATUS_NCOLS];
	char cell[STATUS_CELL_MAX];
	struct status_row r;

	for (size_t c = 0; c < STATUS_NCOLS; c++)
		widths[c] = strlen(status_cols[c].title);
	for (struct pool *p = l->cfg->pools; p; p = p->next)
		for (size_t i = 0; i < p->nnodes; i++) {
			status_row_fill(l, p, p->nodes[i], &r);
			for (size_t c = 0; c < STATUS_NCOLS; c++) {
				status_cols[c].cell(&r, cell, sizeof(cell));
				if (strlen(cell) > widths[c])
					widths[c] = strlen(cell);
			}
		}
	if (status_table_row(NULL, formats, widths, sb) < 0)
		return -1;
	for (struct pool *p = l->cfg->pools; p; p = p->next)
		for (size_t i = 0; i < p->nnodes; i++) {
			status_row_fill(l, p, p->nodes[i], &r);
			if (status_table_row(&r, formats, widths, sb) < 0)
				return -1;
		}
	return 0;
}

/* The edge protection table, after the nodes', for the services that use
 * it: SERVICE SOURCES, then a column per refusal reason. */
static int
status_edge_text(struct lbd *l, struct strbuf *sb)
{
	static const char *const titles[EDGE_NREASONS] = {
	    [EDGE_DENY] = "DENY",   [EDGE_CONN] = "MAX-CONN",
	    [EDGE_RATE] = "RATE",   [EDGE_PREGREET] = "PREGREET",
	    [EDGE_DNSBL] = "DNSBL",
	};
	char cell[32];
	bool head = false;
	for (struct service *s = l->cfg->services; s; s = s->next) {
		if (s->edge == NULL || !atomic_load(&s->edge->active))
			continue;
		if (!head) {
			if (strbuf_appends(sb, "\n") < 0 ||
			    strbuf_append_padded(sb, "SERVICE", LBD_NAME_MAX) <
				0 ||
			    strbuf_append_padded(sb, "SOURCES", 10) < 0)
				return -1;
			for (int r = EDGE_DENY; r < EDGE_NREASONS; r++)
				if (strbuf_append_padded(sb, titles[r], 10) < 0)
					return -1;
			if (strbuf_appends(sb, "\n") < 0)
				return -1;
			head = true;
		}
		snprintf(cell, sizeof(cell), "%ld", edge_sources(s->edge));
		if (strbuf_append_padded(sb, s->name, LBD_NAME_MAX) < 0 ||
		    strbuf_append_padded(sb, cell, 10) < 0)
			return -1;
		for (int r = EDGE_DENY; r < EDGE_NREASONS; r++) {
			snprintf(cell, sizeof(cell), "%lu",
				 atomic_load(&s->edge_refused[r]));
			if (strbuf_append_padded(sb, cell, 10) < 0)
				return -1;
		}
		if (strbuf_appends(sb, "\n") < 0)
			return -1;
	}
	return 0;
}

int
status_text(struct lbd *l, struct strbuf *sb)
{
	if (status_table(l, STATUS_COL_TEXT, sb) < 0)
		return -1;
	return status_edge_text(l, sb);
}

int
status_state_table(struct lbd *l, struct strbuf *sb)
{
	return status_table(l, STATUS_COL_STATE, sb);
}

/* "name": value pairs, the value a JSON string. */
static int
status_json_str(struct strbuf *sb, const char *sep, const char *key,
		const char *val)
{
	if (strbuf_appendf(sb, "%s\"%s\": ", sep, key) < 0)
		return -1;
	return strbuf_append_json(sb, val);
}

/* The last probe's duration in ms, null before the first. */
static int
status_json_latency(const struct node *n, struct strbuf *sb)
{
	if (n->check_ok < 0)
		return strbuf_appends(sb, ", \"check_latency_ms\": null");
	return strbuf_appendf(sb, ", \"check_latency_ms\": %.1f",
			      n->check_latency_ms);
}

static int
status_json_node(struct lbd *l, const struct status_row *r, struct strbuf *sb)
{
	if (status_json_str(sb, "{", "name", r->n->name) < 0 ||
	    status_json_str(sb, ", ", "address", r->n->addrstr) < 0 ||
	    status_json_str(sb, ", ", "state", r->state) < 0 ||
	    status_json_str(sb, ", ", "health", r->health) < 0 ||
	    strbuf_appendf(sb,
			   ", \"weight\": %d, \"active\": %ld, \"total\": %lu",
			   r->weight, r->active, r->total) < 0 ||
	    status_json_str(sb, ", ", "check_status", r->n->check_status) < 0 ||
	    status_json_latency(r->n, sb) < 0 ||
	    strbuf_appendf(sb, ", \"last_change_s\": %ld", r->last_change_s) <
		0 ||
	    strbuf_appendf(sb,
			   ", \"bytes_in\": %lu, \"bytes_out\": %lu, "
			   "\"connect_failures\": %lu",
			   r->bytes_in, r->bytes_out, r->connect_fail) < 0 ||
	    shared_seen_by_json(l, (struct pool *)r->p, (struct node *)r->n,
				sb) < 0 ||
	    strbuf_appends(sb, "}") < 0)
		return -1;
	return 0;
}

static int
status_json_pool(struct lbd *l, struct pool *p, struct strbuf *sb)
{
	struct status_row r;

	if (status_json_str(sb, "{", "name", p->name) < 0 ||
	    status_json_str(sb, ", ", "balance",
			    p->lb != NULL ? p->lb->name : "roundrobin") < 0 ||
	    status_json_str(sb, ", ", "check", check_type_name(p->probe.type)) <
		0 ||
	    strbuf_appends(sb, ", \"nodes\": [") < 0)
		return -1;
	for (size_t i = 0; i < p->nnodes; i++) {
		status_row_fill(l, p, p->nodes[i], &r);
		if ((i > 0 && strbuf_appends(sb, ", ") < 0) ||
		    status_json_node(l, &r, sb) < 0)
			return -1;
	}
	return strbuf_appends(sb, "]}");
}

static int
status_json_service(struct service *s, struct strbuf *sb)
{
	if (status_json_str(sb, "{", "name", s->name) < 0 ||
	    status_json_str(sb, ", ", "listen", s->listenstr) < 0 ||
	    status_json_str(sb, ", ", "protocol",
			    service_proto_name(s->protocol)) < 0 ||
	    status_json_str(sb, ", ", "pool", s->pool_name) < 0 ||
	    strbuf_appendf(
		sb, ", \"active\": %ld, \"total\": %lu, \"refused\": %lu",
		atomic_load(&s->active), atomic_load(&s->total),
		atomic_load(&s->refused)) < 0 ||
	    strbuf_appendf(sb, ", \"bytes_in\": %lu, \"bytes_out\": %lu",
			   atomic_load(&s->bytes_in),
			   atomic_load(&s->bytes_out)) < 0 ||
	    strbuf_appendf(sb, ", \"sources\": %ld, \"refused_by\": {",
			   s->edge ? edge_sources(s->edge) : 0L) < 0)
		return -1;
	for (int r = EDGE_DENY; r < EDGE_NREASONS; r++)
		if (strbuf_appendf(sb, "%s\"%s\": %lu",
				   r == EDGE_DENY ? "" : ", ",
				   edge_reason_name(r),
				   atomic_load(&s->edge_refused[r])) < 0)
			return -1;
	return strbuf_appends(sb, "}}");
}

int
status_json(struct lbd *l, struct strbuf *sb)
{
	if (strbuf_appends(sb, "{\"services\": [") < 0)
		return -1;
	for (struct service *s = l->cfg->services; s; s = s->next)
		if ((s != l->cfg->services && strbuf_appends(sb, ", ") < 0) ||
		    status_json_service(s, sb) < 0)
			return -1;
	if (strbuf_appends(sb, "], \"pools\": [") < 0)
		return -1;
	for (struct pool *p = l->cfg->pools; p; p = p->next)
		if ((p != l->cfg->pools && strbuf_appends(sb, ", ") < 0) ||
		    status_json_pool(l, p, sb) < 0)
			return -1;
	return strbuf_appends(sb, "]}\n");
}
