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
#include "relay.h"

#define ACCEPT_BATCH 64
/* accept() failed for want of descriptors or memory: the listener rests
 * this long (the clients wait in the backlog) instead of the loop
 * spinning on a socket that stays readable. */
#define ACCEPT_PAUSE_S 0.1

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

static void worker_accept_cb(struct wloop *loop, struct wio *io,
			     uint32_t events);

/* Watches the listener; returns 0, or -1 (logged). */
static int
worker_listen(struct wloop *loop, struct listener *ls)
{
	ls->io.cb = worker_accept_cb;
	ls->io.data = ls;
	if (wio_add(loop, &ls->io, ls->svc->fds[ls->w->id], false, EPOLLIN) ==
	    0)
		return 0;
	log_err("service %s: epoll_ctl: %s", ls->svc->name, strerror(errno));
	return -1;
}

static void
worker_resume_cb(struct wloop *loop, struct wtimer *t)
{
	struct listener *ls = t->data;
	if (worker_listen(loop, ls) < 0)
		wtimer_start(loop, &ls->pause, ACCEPT_PAUSE_S);
}

/* Out of descriptors or memory: rests the listener for ACCEPT_PAUSE_S,
 * logging once per shortage (until an accept succeeds again). */
static void
worker_accept_pause(struct wloop *loop, struct listener *ls, int err)
{
	if (!ls->told)
		log_warn("service %s: accept: %s (open-file limit: see the log "
			 "line \"open files\" at start): accepting again every "
			 "%.0f ms",
			 ls->svc->name, strerror(err), ACCEPT_PAUSE_S * 1000);
	ls->told = true;
	wio_del(loop, &ls->io);
	wtimer_start(loop, &ls->pause, ACCEPT_PAUSE_S);
}

static void
worker_accept_cb(struct wloop *loop, struct wio *io, uint32_t events)
{
	struct listener *ls = io->data;
	struct worker *w = ls->w;
	(void)events;
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
	/* out of the set first: a successor (lbd -x) may hold the socket */
	if (!wtimer_active(&ls->pause))
		wio_del(&w->loop, &ls->io);
	wtimer_stop(&w->loop, &ls->pause);
	close(ls->svc->fds[w->id]);
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
		ls->w = w;
		ls->pause.cb = worker_resume_cb;
		ls->pause.data = ls;
		if (worker_listen(&w->loop, ls) < 0)
			wtimer_start(&w->loop, &ls->pause, ACCEPT_PAUSE_S);
		ls->next = w->listeners;
		w->listeners = ls;
	}
	pthread_mutex_unlock(&w->l->svc_lock);
}

static void
worker_wake_cb(struct wloop *loop)
{
	struct worker *w = loop->data;
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
		wloop_break(loop);
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	/* the ring is the thread's own (IORING_SETUP_SINGLE_ISSUER) */
	bool ring = w->l->cfg->set.io_uring && ur_open(w);
	log_info("worker %d: io_engine %s", w->id, ring ? "uring" : "epoll");
	wloop_run(&w->loop);
	wloop_ring_close(&w->loop);
	ur_close(w);
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
		/* io_collect_us: while busy, the loop sleeps what is left of
		 * it after an iteration's callbacks before polling again */
		if (wloop_init(&w->loop, l->cfg->set.io_collect_us / 1e6) < 0)
			fatal("%s: cannot create an event loop: %s", __func__,
			      strerror(errno));
		w->loop.data = w;
		w->loop.on_wake = worker_wake_cb;
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
		wloop_wake(&l->workers[i].loop);
	}
}

void
workers_join(struct lbd *l)
{
	for (int i = 0; i < l->nworkers; i++) {
		pthread_join(l->workers[i].thread, NULL);
		wloop_close(&l->workers[i].loop);
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
