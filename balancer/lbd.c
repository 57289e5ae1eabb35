/* lbd's life: start (listeners, control socket, metrics, probes, workers),
 * signals, and the graceful stop. The reload is reload.c's. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/sdnotify.h"
#include "config.h"
#include "ctl.h"
#include "handover.h"
#include "lbd_run.h"
#include "metrics.h"
#include "nofile.h"
#include "runtime.h"
#include "shared.h"
#include "statefile.h"
#include "worker.h"

#define LBD_STOP_POLL_S 0.1

/* The subscribers of event.h, in the order they hear an event: the
 * watchers first (as the log), then the state file, then the peer. */
static event_fn *const lbd_subscribers[] = {
    ctl_server_on_event,
    statefile_on_event,
    shared_on_event,
};

int
lbd_subscribe(struct lbd *l)
{
	for (size_t i = 0;
	     i < sizeof(lbd_subscribers) / sizeof(*lbd_subscribers); i++)
		if (event_subscribe(l, lbd_subscribers[i]) < 0)
			return -1;
	return 0;
}

/* The grace period: every 100 ms, end when no connection is left or the
 * time is up. */
static void
lbd_grace_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct lbd *l = t->data;
	(void)revents;
	long active = workers_active(l);
	double left = l->grace_end - ev_now(loop);
	if (active > 0 && left > 0)
		return;
	if (active > 0)
		log_warn("grace period over: closing %ld connections", active);
	ev_timer_stop(loop, t);
	ev_break(loop, EVBREAK_ALL);
}

void
lbd_stop(struct lbd *l)
{
	if (l->stopping)
		return;
	l->stopping = true;
	sdnotify("STOPPING=1");
	log_info("stopping: no new connections, %ld to finish within %d s",
		 workers_active(l), l->cfg->set.grace_s);
	ctl_server_stop(l);
	metrics_stop(l);
	workers_post(l, WORKER_STOP_ACCEPT);
	l->grace_end = ev_now(l->loop) + l->cfg->set.grace_s;
	ev_timer_init(&l->grace, lbd_grace_cb, 0., LBD_STOP_POLL_S);
	l->grace.data = l;
	ev_timer_again(l->loop, &l->grace);
}

static void
lbd_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct lbd *l = w->data;
	(void)loop;
	(void)revents;
	if (w->signum == SIGHUP) {
		if (!l->stopping) {
			sdnotify("RELOADING=1");
			lbd_reload(l);
			if (l->ready)
				sdnotify("READY=1");
		}
		return;
	}
	log_info("%s received", strsignal(w->signum));
	lbd_stop(l);
}

static void
lbd_signals(struct lbd *l)
{
	signal(SIGPIPE, SIG_IGN);
	ev_signal_init(&l->sigterm, lbd_signal_cb, SIGTERM);
	ev_signal_init(&l->sigint, lbd_signal_cb, SIGINT);
	ev_signal_init(&l->sighup, lbd_signal_cb, SIGHUP);
	l->sigterm.data = l->sigint.data = l->sighup.data = l;
	ev_signal_start(l->loop, &l->sigterm);
	ev_signal_start(l->loop, &l->sigint);
	ev_signal_start(l->loop, &l->sighup);
}

/* Ready for systemd: the listeners, the control socket and the workers
 * are up and every configured node has its first verdict, so the first
 * clients are not sent to a node that is down. */
static void
lbd_ready(struct lbd *l)
{
	if (l->ready || l->stopping)
		return;
	l->ready = true;
	ev_timer_stop(l->loop, &l->ready_deadline);
	log_info("ready %.0f ms after start (first probe results in)",
		 (ev_time() - l->started) * 1000.);
	sdnotify("READY=1");
}

void
lbd_first_probe_done(struct lbd *l)
{
	/* Only while lbd_ready_when_probed waits, not in the clean-up. */
	if (--l->first_probes <= 0 && ev_is_active(&l->ready_deadline))
		lbd_ready(l);
}

static void
lbd_ready_deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lbd *l = w->data;
	(void)loop;
	(void)revents;
	log_warn("ready without %d first probe results: probes outlived "
		 "their timeout", l->first_probes);
	lbd_ready(l);
}

/* Announces readiness now when no probe result is awaited, otherwise
 * when the last one comes, at the latest one second after the longest
 * probe timeout (a probe is bounded by it). */
static void
lbd_ready_when_probed(struct lbd *l)
{
	if (l->first_probes <= 0) {
		lbd_ready(l);
		return;
	}
	int longest = 1000; /* probe_start's default timeout */
	for (struct pool *p = l->cfg->pools; p; p = p->next)
		if (p->probe.timeout_ms > longest)
			longest = p->probe.timeout_ms;
	ev_timer_init(&l->ready_deadline, lbd_ready_deadline_cb,
		      longest / 1000. + 1., 0.);
	l->ready_deadline.data = l;
	ev_timer_start(l->loop, &l->ready_deadline);
}

/* Frees what the run left: probes, pools, services. */
static void
lbd_cleanup(struct lbd *l)
{
	for (struct pool *p = l->cfg->pools; p; p = p->next)
		for (size_t i = 0; i < p->nnodes; i++)
			checker_stop_node(p->nodes[i]);
	shared_stop(l);
	runtime_stop(l);
	checker_free(l);
	for (struct service *s = l->cfg->services; s; s = s->next)
		for (int i = 0; i < LBD_MAX_WORKERS; i++)
			if (s->fds[i] >= 0)
				close(s->fds[i]);
	config_free(l->cfg);
	l->cfg = NULL;
	pthread_mutex_destroy(&l->svc_lock);
}

/* lbd -x: the predecessor's listening sockets, before any is bound. */
static int
lbd_take_over(struct lbd *l)
{
	char err[512];
	l->taken = calloc(1, sizeof(*l->taken));
	if (l->taken == NULL) {
		log_err("handover: out of memory");
		return -1;
	}
	if (handover_take(l->cfg->set.control, l->taken, err, sizeof(err)) <
	    0) {
		log_err("handover: %s", err);
		return -1;
	}
	log_info("handover: took %d listening sockets from the running lbd",
		 l->taken->n);
	return 0;
}

int
lbd_run(struct lbd_config *cfg, bool takeover)
{
	struct lbd lbd, *l = &lbd;
	struct sdnotify_watchdog watchdog;
	char err[512];
	int rc = 1;

	memset(l, 0, sizeof(*l));
	l->cfg = cfg;
	snprintf(l->config_path, sizeof(l->config_path), "%s", cfg->path);
	l->loop = ev_default_loop(0);
	l->started = ev_time();
	pthread_mutex_init(&l->svc_lock, NULL);
	log_set_level((enum log_level)cfg->set.log_level);
	lbd_signals(l);
	if (lbd_subscribe(l) < 0)
		fatal("%s: cannot subscribe", __func__);
	if (checker_init(l) < 0)
		fatal("%s: out of memory", __func__);

	for (struct service *s = cfg->services; s; s = s->next)
		for (int i = 0; i < LBD_MAX_WORKERS; i++)
			s->fds[i] = -1;
	if (nofile_raise(cfg, cfg->set.workers, err, sizeof(err)) < 0) {
		log_err("%s", err);
		goto out;
	}
	if (takeover && lbd_take_over(l) < 0)
		goto out;
	for (struct service *s = cfg->services; s; s = s->next)
		if (service_open(l, s, err, sizeof(err)) < 0) {
			log_err("%s", err);
			goto out;
		}
	if (l->taken != NULL) {
		handover_release(l->taken);
		free(l->taken);
		l->taken = NULL;
	}
	if (ctl_server_start(l) < 0)
		goto out;
	if (metrics_start(l) < 0)
		goto out;
	if (runtime_start(l) < 0)
		goto out;
	for (struct pool *p = cfg->pools; p; p = p->next)
		for (size_t i = 0; i < p->nnodes; i++)
			checker_start_node(l, p, p->nodes[i]);
	if (statefile_load(l) < 0)
		goto out;
	if (shared_start(l) < 0) /* config, state file, then shared state */
		goto out;
	if (workers_start(l) < 0)
		goto out;

	int nsvc = 0, npool = 0;
	for (struct service *s = cfg->services; s; s = s->next)
		nsvc++;
	for (struct pool *p = cfg->pools; p; p = p->next)
		npool++;
	log_info("started: %d services, %d pools, %d workers, control %s", nsvc,
		 npool, l->nworkers, cfg->set.control);
	lbd_ready_when_probed(l);
	sdnotify_watchdog_start(l->loop, &watchdog);
	ev_run(l->loop, 0);
	sdnotify_watchdog_stop(l->loop, &watchdog);
	ev_timer_stop(l->loop, &l->ready_deadline);
	ev_timer_stop(l->loop, &l->handover_stop);

	workers_post(l, WORKER_EXIT);
	workers_join(l);
	log_info("stopped");
	rc = 0;
out:
	if (l->taken != NULL) {
		handover_release(l->taken);
		free(l->taken);
	}
	if (!l->stopping) {
		ctl_server_stop(l);
		metrics_stop(l);
	}
	lbd_cleanup(l);
	return rc;
}
