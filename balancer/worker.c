#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/net.h"
#include "dnsbl.h"
#include "handover.h"

#define ACCEPT_BATCH 64
/* accept() failed for want of descriptors or memory: the listener rests
 * this long (the clients wait in the backlog) instead of the loop
 * spinning on a socket that stays readable. */
#define ACCEPT_PAUSE_S 0.1
/* When io_collect_us delays a worker's polls: a poll that brings at
 * least WORKER_BUSY_EVENTS events starts it; it goes on while the events
 * gathered over the interval come at WORKER_BUSY_RATE per second or more,
 * so that traffic below that rate is handled as soon as it comes. */
#define WORKER_BUSY_EVENTS 3
#define WORKER_BUSY_RATE 50000.

int
service_open(struct lbd *l, struct service *svc, char *err, size_t len)
{
	for (int i = 0; i < LBD_MAX_WORKERS; i++)
		svc->fds[i] = -1;
	if (svc->edge == NULL &&
	    (svc->edge = edge_new(&svc->edge_pol)) == NULL) {
		snprintf(err, len, "service %s: out of memory", svc->name);
		return -1;
	}
	for (int i = 0; i < l->cfg->set.workers; i++) {
		/* the predecessor's socket if it had one here (lbd -x) */
		svc->fds[i] = handover_claim(l->taken, &svc->listen);
		if (svc->fds[i] >= 0)
			continue;
		svc->fds[i] = net_listen(&svc->listen, true);
		int one = 1; /* accepted sockets inherit it (Linux) */
		if (svc->fds[i] >= 0 &&
		    setsockopt(svc->fds[i], IPPROTO_TCP, TCP_NODELAY, &one,
			       sizeof(one)) < 0) {
			int saved = errno;
			close(svc->fds[i]);
			svc->fds[i] = -1;
			errno = saved;
		}
		if (svc->fds[i] < 0) {
			snprintf(err, len, "service %s: listen %s: %s",
				 svc->name, svc->listenstr, strerror(errno));
			for (int j = 0; j < i; j++) {
				close(svc->fds[j]);
				svc->fds[j] = -1;
			}
			return -1;
		}
	}
	return 0;
}

static void
worker_resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct listener *ls = t->data;
	(void)revents;
	ev_io_start(loop, &ls->io);
}

/* Out of descriptors or memory: rests the listener for ACCEPT_PAUSE_S,
 * logging once per shortage (until an accept succeeds again). */
static void
worker_accept_pause(struct ev_loop *loop, struct listener *ls, int err)
{
	if (!ls->told)
		log_warn("service %s: accept: %s (open-file limit: see the log "
			 "line \"open files\" at start): accepting again every "
			 "%.0f ms",
			 ls->svc->name, strerror(err), ACCEPT_PAUSE_S * 1000);
	ls->told = true;
	ev_io_stop(loop, &ls->io);
	ev_timer_set(&ls->pause, ACCEPT_PAUSE_S, 0.);
	ev_timer_start(loop, &ls->pause);
}

static void
worker_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct listener *ls = io->data;
	struct worker *w = ev_userdata(loop);
	(void)revents;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(io->fd, (struct sockaddr *)&peer, &plen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				worker_accept_pause(loop, ls, errno);
			return;
		}
		ls->told = false;
		relay_accept(w, ls->svc, fd, (struct sockaddr *)&peer, plen);
	}
}

static void
worker_listener_close(struct worker *w, struct listener *ls)
{
	ev_io_stop(w->loop, &ls->io);
	ev_timer_stop(w->loop, &ls->pause);
	close(ls->io.fd);
	ls->svc->fds[w->id] = -1;
	free(ls);
}

/* Starts a watcher for each service listener this worker does not watch
 * yet, and closes those of services a reload removed. */
static void
worker_sync(struct worker *w)
{
	struct listener **pp = &w->listeners;
	pthread_mutex_lock(&w->l->svc_lock);
	while (*pp) {
		struct listener *ls = *pp;
		if (atomic_load(&ls->svc->closing)) {
			*pp = ls->next;
			worker_listener_close(w, ls);
		} else
			pp = &ls->next;
	}
	for (struct service *s = w->l->cfg->services; s; s = s->next) {
		if (atomic_load(&s->closing) || s->fds[w->id] < 0)
			continue;
		struct listener *ls;
		for (ls = w->listeners; ls; ls = ls->next)
			if (ls->svc == s)
				break;
		if (ls)
			continue;
		ls = calloc(1, sizeof(*ls));
		if (ls == NULL)
			fatal("%s: out of memory", __func__);
		ls->svc = s;
		ev_io_init(&ls->io, worker_accept_cb, s->fds[w->id], EV_READ);
		ls->io.data = ls;
		ev_init(&ls->pause, worker_resume_cb);
		ls->pause.data = ls;
		ev_io_start(w->loop, &ls->io);
		ls->next = w->listeners;
		w->listeners = ls;
	}
	pthread_mutex_unlock(&w->l->svc_lock);
}

static void
worker_wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct worker *w = a->data;
	(void)revents;
	int cmd = atomic_exchange(&w->cmd, 0);
	if (cmd & WORKER_SYNC)
		worker_sync(w);
	if (cmd & (WORKER_STOP_ACCEPT | WORKER_EXIT)) {
		while (w->listeners) {
			struct listener *ls = w->listeners;
			w->listeners = ls->next;
			worker_listener_close(w, ls);
		}
	}
	if (cmd & WORKER_EXIT) {
		relay_close_all(w);
		ev_break(loop, EVBREAK_ALL);
	}
}

/* After each poll, before its callbacks (highest priority): io_collect_us
 * applies to the next poll only while the worker is busy. Under load it
 * then takes more events per wake-up (less CPU per unit of work); at a
 * lighter rate every event is handled as soon as it comes. */
static void
worker_busy_cb(struct ev_loop *loop, ev_check *c, int revents)
{
	struct worker *w = c->data;
	(void)revents;
	double n = ev_pending_count(loop);
	bool busy = w->collecting ? n >= w->collect * WORKER_BUSY_RATE
				  : n >= WORKER_BUSY_EVENTS;
	if (busy != w->collecting) {
		w->collecting = busy;
		ev_set_io_collect_interval(loop, busy ? w->collect : 0.);
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	ev_run(w->loop, 0);
	relay_free_pools(w);
	dnsbl_free(w->dnsbl);
	w->dnsbl = NULL;
	return NULL;
}

int
workers_start(struct lbd *l)
{
	sigset_t all, old;
	l->nworkers = l->cfg->set.workers;
	l->workers = calloc((size_t)l->nworkers, sizeof(*l->workers));
	if (l->workers == NULL)
		return -1;
	/* Workers take no signals: the main loop handles them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < l->nworkers; i++) {
		struct worker *w = &l->workers[i];
		w->l = l;
		w->id = i;
		w->splice_ok = 1;
		w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
		if (w->loop == NULL)
			fatal("%s: cannot create an event loop", __func__);
		ev_set_userdata(w->loop, w);
		/* io_collect_us: while busy, libev sleeps what is left of it
		 * after an iteration's callbacks before polling again */
		w->collect = l->cfg->set.io_collect_us / 1e6;
		if (w->collect > 0) {
			ev_check_init(&w->busy, worker_busy_cb);
			w->busy.data = w;
			ev_set_priority(&w->busy, EV_MAXPRI);
			ev_check_start(w->loop, &w->busy);
			ev_unref(w->loop); /* it keeps no loop alive */
		}
		ev_async_init(&w->wake, worker_wake_cb);
		w->wake.data = w;
		ev_async_start(w->loop, &w->wake);
		worker_sync(w);
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
			fatal("%s: cannot start worker %d", __func__, i);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}

void
workers_post(struct lbd *l, int cmd)
{
	for (int i = 0; i < l->nworkers; i++) {
		atomic_fetch_or(&l->workers[i].cmd, cmd);
		ev_async_send(l->workers[i].loop, &l->workers[i].wake);
	}
}

void
workers_join(struct lbd *l)
{
	for (int i = 0; i < l->nworkers; i++) {
		pthread_join(l->workers[i].thread, NULL);
		ev_loop_destroy(l->workers[i].loop);
	}
	free(l->workers);
	l->workers = NULL;
	l->nworkers = 0;
}

long
workers_active(struct lbd *l)
{
	long n = 0;
	for (struct service *s = l->cfg->services; s; s = s->next)
		n += atomic_load(&s->active);
	return n;
}
