/* mailnode's exposition (metrics.h): one table of families per kind of
 * label (per listener, per login result, per delivery, per reply class),
 * and the gauges read from the parts themselves; the Redis PING timer. */
#include "metrics.h"

#include <stdlib.h>

#include "../../common/log.h"
#include "../../common/metrics_http.h"
#include "../../common/redis.h"
#include "../../common/version.h"

struct mailnode_metrics {
	struct mailnode *mn;
	struct metrics_http *http;
	ev_timer ping;
	uint64_t ping_id;	   /* the PING in flight; 0: none */
	double ping_sent;	   /* ev_time when sent */
	double ping_s;		   /* the last round trip; < 0: none yet */
	unsigned long ping_failed; /* PINGs unanswered or refused */
};

static const char *const metrics_login_results[MAILNODE_LOGIN_RESULTS] = {
    [AUTH_LOGIN_OK] = "ok",
    [AUTH_LOGIN_FAILED] = "failed",
    [AUTH_LOGIN_REFUSED] = "refused",
    [AUTH_LOGIN_BUSY] = "busy",
};

static const char *const metrics_deliveries[MAILNODE_DELIVERIES] = {
    [MAILNODE_STORED] = "store",
    [MAILNODE_SPOOLED] = "spool",
};

static const char *const metrics_milter_results[MAILNODE_MILTER_RESULTS] = {
    [MAILNODE_MILTER_ACCEPT] = "accept",
    [MAILNODE_MILTER_JUNK] = "junk",
    [MAILNODE_MILTER_REJECT] = "reject",
    [MAILNODE_MILTER_TEMPFAIL] = "tempfail",
    [MAILNODE_MILTER_DISCARD] = "discard",
};

/* A family with one series per listener that is on. */
struct metrics_role_family {
	const char *name, *type, *help;
	double (*value)(const struct mailnode_counters *k, enum node_role r);
};

static double
metrics_sessions_open(const struct mailnode_counters *k, enum node_role r)
{
	return (double)k->sessions_open[r];
}

static double
metrics_sessions_total(const struct mailnode_counters *k, enum node_role r)
{
	return (double)k->sessions[r];
}

static const struct metrics_role_family metrics_roles[] = {
    {"mailnode_sessions_open", "gauge",
     "Client sessions open now, per listener.", metrics_sessions_open},
    {"mailnode_sessions_total", "counter",
     "Client sessions started, per listener.", metrics_sessions_total},
};

/* A gauge of the node as a whole. */
struct metrics_gauge {
	const char *name, *type, *help;
	double (*value)(struct mailnode_metrics *m);
};

static double
metrics_spool(struct mailnode_metrics *m)
{
	return (double)spool_pending(m->mn->spool);
}

static double
metrics_redis_up(struct mailnode_metrics *m)
{
	return redis_up(m->mn->redis) ? 1 : 0;
}

static double
metrics_redis_ping(struct mailnode_metrics *m)
{
	return m->ping_s;
}

static double
metrics_redis_ping_failed(struct mailnode_metrics *m)
{
	return (double)m->ping_failed;
}

static double
metrics_store_ok(struct mailnode_metrics *m)
{
	return store_check_ok(m->mn->store_check) ? 1 : 0;
}

static double
metrics_store_seconds(struct mailnode_metrics *m)
{
	return store_check_seconds(m->mn->store_check);
}

static double
metrics_store_checks(struct mailnode_metrics *m)
{
	return (double)store_check_count(m->mn->store_check);
}

static const struct metrics_gauge metrics_gauges[] = {
    {"mailnode_spool_messages", "gauge",
     "Messages in this node's spool, waiting for the store.", metrics_spool},
    {"mailnode_redis_up", "gauge",
     "1 while the connection to Redis is up, else 0.", metrics_redis_up},
    {"mailnode_redis_ping_seconds", "gauge",
     "Round trip of the last PING to Redis (its timeout when unanswered; -1 "
     "before the first).",
     metrics_redis_ping},
    {"mailnode_redis_ping_failures_total", "counter",
     "PINGs to Redis unanswered, refused or not sent.",
     metrics_redis_ping_failed},
    {"mailnode_store_writable", "gauge",
     "1 when the last check of the store wrote, synced and removed its "
     "probe file, else 0.",
     metrics_store_ok},
    {"mailnode_store_check_seconds", "gauge",
     "How long the last store check took (the running one when longer).",
     metrics_store_seconds},
    {"mailnode_store_checks_total", "counter", "Store checks finished.",
     metrics_store_checks},
};

#define METRICS_N(a) (sizeof(a) / sizeof((a)[0]))

static int
metrics_render_roles(struct mailnode *mn, struct strbuf *sb)
{
	const struct mailnode_counters *k = &mn->counters;
	for (size_t f = 0; f < METRICS_N(metrics_roles); f++) {
		const struct metrics_role_family *fam = &metrics_roles[f];
		if (metrics_http_head(sb, fam->name, fam->type, fam->help) < 0)
			return -1;
		for (int r = 0; r < ROLE_COUNT; r++)
			if (mn->cfg->listen[r].on &&
			    strbuf_appendf(sb, "%s{protocol=\"%s\"} %.17g\n",
					   fam->name, node_role_name(r),
					   fam->value(k, r)) < 0)
				return -1;
	}
	if (metrics_http_head(sb, "mailnode_logins_total", "counter",
			      "Login attempts, per listener and result (ok, "
			      "failed: wrong user or password, refused: too "
			      "many failures, busy: hashing queue full).") < 0)
		return -1;
	for (int r = 0; r < ROLE_COUNT; r++) {
		if (!mn->cfg->listen[r].on || r == ROLE_SMTP)
			continue; /* MX: no AUTH */
		for (int i = 0; i < MAILNODE_LOGIN_RESULTS; i++)
			if (strbuf_appendf(
				sb,
				"mailnode_logins_total{protocol=\"%s\","
				"result=\"%s\"} %lu\n",
				node_role_name(r), metrics_login_results[i],
				k->logins[r][i]) < 0)
				return -1;
	}
	return 0;
}

static int
metrics_render_smtp(struct mailnode *mn, struct strbuf *sb)
{
	const struct mailnode_counters *k = &mn->counters;
	if (metrics_http_head(sb, "mailnode_deliveries_total", "counter",
			      "Messages accepted by SMTP, per where they went: "
			      "the store, or the spool when the store "
			      "failed.") < 0)
		return -1;
	for (int i = 0; i < MAILNODE_DELIVERIES; i++)
		if (strbuf_appendf(sb,
				   "mailnode_deliveries_total{to=\"%s\"} %lu\n",
				   metrics_deliveries[i], k->deliveries[i]) < 0)
			return -1;
	if (metrics_http_head(sb, "mailnode_smtp_rejections_total", "counter",
			      "SMTP replies refusing a command or closing, per "
			      "class (4xx temporary, 5xx permanent).") < 0)
		return -1;
	for (int i = 0; i < 2; i++)
		if (strbuf_appendf(
			sb,
			"mailnode_smtp_rejections_total{class=\"%dxx\"} %lu\n",
			4 + i, k->smtp_rejections[i]) < 0)
			return -1;
	if (metrics_http_head(sb, "mailnode_milter_results_total", "counter",
			      "Messages after the milters, per result: "
			      "accept, junk (marked as spam, into Junk), "
			      "reject, tempfail, discard.") < 0)
		return -1;
	for (int i = 0; i < MAILNODE_MILTER_RESULTS; i++)
		if (strbuf_appendf(
			sb,
			"mailnode_milter_results_total{result=\"%s\"} %lu\n",
			metrics_milter_results[i], k->milter_results[i]) < 0)
			return -1;
	if (metrics_http_head(sb, "mailnode_milter_unavailable_total",
			      "counter",
			      "Milters that could not be reached, timed out "
			      "or broke the protocol: milter_default_action "
			      "applied.") < 0 ||
	    strbuf_appendf(sb, "mailnode_milter_unavailable_total %lu\n",
			   k->milter_unavailable) < 0)
		return -1;
	return 0;
}

int
mailnode_metrics_render(struct mailnode *mn, struct strbuf *sb)
{
	char name[3 * sizeof(mn->cfg->name)], version[64];

	metrics_http_label(name, sizeof(name), mn->cfg->name);
	metrics_http_label(version, sizeof(version), ms_version);
	if (metrics_http_head(sb, "mailnode_build_info", "gauge",
			      "Always 1: the version and the node's name.") <
		0 ||
	    strbuf_appendf(
		sb, "mailnode_build_info{version=\"%s\",node=\"%s\"} 1\n",
		version, name) < 0)
		return -1;
	if (metrics_render_roles(mn, sb) < 0 || metrics_render_smtp(mn, sb) < 0)
		return -1;
	for (size_t g = 0; g < METRICS_N(metrics_gauges); g++) {
		const struct metrics_gauge *fam = &metrics_gauges[g];
		if (metrics_http_head(sb, fam->name, fam->type, fam->help) <
			0 ||
		    strbuf_appendf(sb, "%s %.17g\n", fam->name,
				   fam->value(mn->metrics)) < 0)
			return -1;
	}
	return 0;
}

static int
metrics_render_cb(void *arg, struct strbuf *sb)
{
	return mailnode_metrics_render(arg, sb);
}

/* The PING's answer, or NULL: timed out, failed or disconnected. */
static void
metrics_ping_cb(struct redis *r, redisReply *reply, void *arg)
{
	struct mailnode_metrics *m = arg;
	(void)r;
	m->ping_id = 0;
	m->ping_s = ev_time() - m->ping_sent;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		m->ping_failed++;
}

static void
metrics_ping_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct mailnode_metrics *m = t->data;
	(void)loop;
	(void)revents;
	if (m->ping_id != 0)
		return; /* still waiting: its timeout answers */
	m->ping_sent = ev_time();
	m->ping_id = redis_command(m->mn->redis, metrics_ping_cb, m, "PING");
	if (m->ping_id == 0)
		m->ping_failed++;
}

int
mailnode_metrics_start(struct mailnode *mn)
{
	struct node_listen *l = &mn->cfg->metrics;
	struct mailnode_metrics *m;

	mn->metrics = NULL;
	if (!l->on)
		return 0;
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		log_err("metrics: out of memory");
		return -1;
	}
	m->mn = mn;
	m->ping_s = -1;
	m->http = metrics_http_start(mn->loop, &l->addr, l->str,
				     metrics_render_cb, mn);
	if (m->http == NULL) {
		free(m);
		return -1;
	}
	/* the first a second in, once Redis had its time to connect */
	ev_timer_init(&m->ping, metrics_ping_timer_cb, 1.,
		      METRICS_PING_INTERVAL);
	m->ping.data = m;
	ev_timer_start(mn->loop, &m->ping);
	mn->metrics = m;
	return 0;
}

void
mailnode_metrics_stop(struct mailnode *mn)
{
	struct mailnode_metrics *m = mn->metrics;
	if (m == NULL)
		return;
	ev_timer_stop(mn->loop, &m->ping);
	redis_cancel(mn->redis, m->ping_id);
	metrics_http_stop(m->http);
	free(m);
	mn->metrics = NULL;
}
