/* The checker: runs each node's probe every check_interval_ms on the main
 * loop, feeds the results and the connect failures of real traffic into the
 * node's rise/fall counter, and announces every change of verdict. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "lbd.h"

#define CHECKER_QUEUE 256

struct checker_node {
	struct lbd *l;
	struct pool *pool;
	struct node *node;
	ev_timer timer;
	struct probe *probe;
	struct health_track track;
	bool awaited; /* lbd waits for this node's first result to be ready */
};

struct checker_failure {
	struct pool *pool;
	struct node *node; /* referenced while queued */
	int err;
};

/* Failures reported by workers, handed to the main loop. */
struct checker {
	pthread_mutex_t lock;
	ev_async wake;
	struct checker_failure q[CHECKER_QUEUE];
	size_t head, len;
};

static void checker_probe_start(struct checker_node *cn);

/* Applies one result to the node: status, counter, and on a new verdict
 * the state change with its reason, "connect refused (2/2)". */
static void
checker_feed(struct checker_node *cn, bool ok, const char *reason)
{
	struct node *n = cn->node;
	bool was_up = cn->track.up;
	if (!health_track_feed(&cn->track, ok))
		return;
	char why[160];
	if (cn->track.up)
		snprintf(why, sizeof(why), "%s (%d/%d)", reason,
			 cn->track.passes, cn->track.rise);
	else
		snprintf(why, sizeof(why), "%s (%d/%d)", reason,
			 cn->track.fails, cn->track.fall);
	atomic_store(&n->health, cn->track.up ? HEALTH_UP : HEALTH_DOWN);
	n->last_change = ev_now(cn->l->loop);
	event_state(cn->l, ORIGIN_PROBE, cn->pool, n, was_up ? "up" : "down",
		    cn->track.up ? "up" : "down", why);
}

static void
checker_probe_done(void *arg, const struct probe_result *r)
{
	struct checker_node *cn = arg;
	struct node *n = cn->node;
	cn->probe = NULL;
	n->check_ok = r->ok;
	n->check_latency_ms = r->latency_ms;
	snprintf(n->check_status, sizeof(n->check_status), "%s", r->reason);
	checker_feed(cn, r->ok, r->reason);
	if (cn->awaited) {
		cn->awaited = false;
		lbd_first_probe_done(cn->l);
	}
	ev_timer_set(&cn->timer, cn->pool->check_interval_ms / 1000.0, 0.);
	ev_timer_start(cn->l->loop, &cn->timer);
}

static void
checker_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	checker_probe_start(w->data);
}

static void
checker_probe_start(struct checker_node *cn)
{
	cn->probe = probe_start(cn->l->loop, &cn->node->addr, &cn->pool->probe,
				checker_probe_done, cn);
	if (cn->probe == NULL) {
		log_warn("%s: pool %s node %s: cannot start a probe", __func__,
			 cn->pool->name, cn->node->name);
		ev_timer_set(&cn->timer, cn->pool->check_interval_ms / 1000.0,
			     0.);
		ev_timer_start(cn->l->loop, &cn->timer);
	}
}

void
checker_start_node(struct lbd *l, struct pool *p, struct node *n)
{
	if (n->checker != NULL)
		return;
	if (n->last_change == 0)
		n->last_change = ev_now(l->loop);
	if (p->probe.type == CHECK_NONE) {
		/* Always up as far as probes go. */
		if (atomic_exchange(&n->health, HEALTH_UP) != HEALTH_UP) {
			n->last_change = ev_now(l->loop);
			event_state(l, ORIGIN_PROBE, p, n, "down", "up",
				    "check none");
		}
		snprintf(n->check_status, sizeof(n->check_status), "none");
		return;
	}
	struct checker_node *cn = calloc(1, sizeof(*cn));
	if (cn == NULL)
		fatal("%s: out of memory", __func__);
	cn->l = l;
	cn->pool = p;
	cn->node = n;
	node_ref(n);
	n->checker = cn;
	bool up = atomic_load(&n->health) == HEALTH_UP;
	/* Config nodes start up pending their first probe; runtime nodes
	 * start down until `rise` probes pass. */
	health_track_init(&cn->track, p->rise, p->fall, up, up);
	if (!l->ready) { /* started with lbd: its verdict makes lbd ready */
		cn->awaited = true;
		l->first_probes++;
	}
	ev_init(&cn->timer, checker_timer_cb);
	cn->timer.data = cn;
	/* The first probe soon, spread a little so a big pool does not probe
	 * every node in the same millisecond. */
	double first = (rand() % 100) / 1000.0;
	if (first > p->check_interval_ms / 1000.0)
		first = 0;
	ev_timer_set(&cn->timer, first, 0.);
	ev_timer_start(l->loop, &cn->timer);
}

void
checker_stop_node(struct node *n)
{
	struct checker_node *cn = n->checker;
	if (cn == NULL)
		return;
	if (cn->probe)
		probe_cancel(cn->probe);
	ev_timer_stop(cn->l->loop, &cn->timer);
	if (cn->awaited)
		lbd_first_probe_done(cn->l);
	n->checker = NULL;
	free(cn);
	node_unref(n);
}

/* Settings of the pool changed (reload): the new interval and rise/fall
 * apply from the next result, the verdict is kept. */
void
checker_pool_changed(struct pool *p)
{
	for (size_t i = 0; i < p->nnodes; i++) {
		struct checker_node *cn = p->nodes[i]->checker;
		if (cn == NULL)
			continue;
		cn->track.rise = p->rise;
		cn->track.fall = p->fall;
	}
}

static const char *
checker_errno_reason(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return "connect refused";
	case ETIMEDOUT:
		return "connect timeout";
	case EHOSTUNREACH:
	case ENETUNREACH:
		return "unreachable";
	default:
		return strerror(err);
	}
}

void
checker_report_connect_failure(struct lbd *l, struct pool *p, struct node *n,
			       int err)
{
	struct checker *c = l->checker;
	atomic_fetch_add_explicit(&n->connect_fail, 1, memory_order_relaxed);
	pthread_mutex_lock(&c->lock);
	if (c->len < CHECKER_QUEUE) {
		struct checker_failure *f =
		    &c->q[(c->head + c->len++) % CHECKER_QUEUE];
		f->pool = p;
		f->node = n;
		f->err = err;
		node_ref(n);
	}
	pthread_mutex_unlock(&c->lock);
	ev_async_send(l->loop, &c->wake);
}

static void
checker_wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct lbd *l = w->data;
	struct checker *c = l->checker;
	(void)loop;
	(void)revents;
	for (;;) {
		struct checker_failure f;
		pthread_mutex_lock(&c->lock);
		if (c->len == 0) {
			pthread_mutex_unlock(&c->lock);
			break;
		}
		f = c->q[c->head];
		c->head = (c->head + 1) % CHECKER_QUEUE;
		c->len--;
		pthread_mutex_unlock(&c->lock);
		struct checker_node *cn = f.node->checker;
		char reason[96];
		snprintf(reason, sizeof(reason), "%s (traffic)",
			 checker_errno_reason(f.err));
		log_warn("pool %s node %s: %s", f.pool->name, f.node->name,
			 reason);
		if (cn != NULL) {
			snprintf(f.node->check_status,
				 sizeof(f.node->check_status), "%s", reason);
			checker_feed(cn, false, reason);
		}
		node_unref(f.node);
	}
}

int
checker_init(struct lbd *l)
{
	struct checker *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -1;
	pthread_mutex_init(&c->lock, NULL);
	ev_async_init(&c->wake, checker_wake_cb);
	c->wake.data = l;
	ev_async_start(l->loop, &c->wake);
	ev_unref(l->loop); /* the async alone does not keep the loop alive */
	l->checker = c;
	return 0;
}

void
checker_free(struct lbd *l)
{
	struct checker *c = l->checker;
	if (c == NULL)
		return;
	ev_ref(l->loop);
	ev_async_stop(l->loop, &c->wake);
	while (c->len > 0) {
		node_unref(c->q[c->head].node);
		c->head = (c->head + 1) % CHECKER_QUEUE;
		c->len--;
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
	l->checker = NULL;
}
