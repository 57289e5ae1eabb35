/* mailnode's life: start (TLS, Redis, directory, store, spool,
 * listeners), accept, and the graceful stop. */
#include "mailnode.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/sdnotify.h"
#include "../common/net.h"
#include "../common/tls_server.h"
#include "imap/imap.h"
#include "mailnode_reload.h"
#include "metrics/metrics.h"
#include "queue/queue.h"
#include "queue/queue_runner.h"
#include "queue/queue_sync.h"
#include "store/notice.h"

/* How long READY=1 waits for a first config (mailnode_ready_when_configured). */
#define MAILNODE_READY_WAIT_S 10.

/* Raises the soft open-file limit to the hard one, as lbd does: outside
 * systemd (whose unit sets LimitNOFILE) it is often 1024, which would
 * cut max_connections down to fit. */
static void
mailnode_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == rl.rlim_max)
		return;
	rlim_t was = rl.rlim_cur;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn("open files: cannot raise the limit %lu to %lu: %s",
			 (unsigned long)was, (unsigned long)rl.rlim_max,
			 strerror(errno));
	else
		log_info("open files: limit %lu (was %lu)",
			 (unsigned long)rl.rlim_max, (unsigned long)was);
}

/* The connection caps; max_connections is kept below the descriptors the
 * process may open, so that a flood meets the protocol's answer and not
 * a failing accept(). Returns 0, or -1 when out of memory. */
static int
mailnode_limits(struct mailnode *mn)
{
	struct node_config *cfg = mn->cfg;
	/* proxy_trusted may be set by a reload: always the config's list,
	 * empty or not. */
	mn->limit =
	    connlimit_new(mailnode_max_connections(cfg),
			  cfg->max_connections_per_source, &cfg->proxy_trusted);
	return mn->limit ? 0 : -1;
}

static void
mailnode_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct mailnode_listener *ls = io->data;
	(void)loop;
	(void)revents;
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(io->fd, (struct sockaddr *)&peer, &plen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("%s: accept: %s",
					 node_role_name(ls->role),
					 strerror(errno));
			return;
		}
		if (ls->role == ROLE_HTTP)
			http_session_start(ls->mn, fd, (struct sockaddr *)&peer,
					   plen);
		else if (ls->role == ROLE_POP3 || ls->role == ROLE_POP3S)
			pop3_session_start(ls->mn, ls->role, fd,
					   (struct sockaddr *)&peer, plen);
		else if (ls->role == ROLE_IMAP || ls->role == ROLE_IMAPS)
			imap_session_start(ls->mn, ls->role, fd,
					   (struct sockaddr *)&peer, plen);
		else
			smtp_session_start(ls->mn, ls->role, fd,
					   (struct sockaddr *)&peer, plen);
	}
}

static int
mailnode_listen(struct mailnode *mn)
{
	for (int r = 0; r < ROLE_COUNT; r++) {
		struct node_listen *l = &mn->cfg->listen[r];
		struct mailnode_listener *ls = &mn->listeners[r];
		ls->fd = -1;
		if (!l->on)
			continue;
		ls->fd = net_listen(&l->addr, false);
		if (ls->fd < 0) {
			log_err("listen %s %s: %s", node_role_name(r), l->str,
				strerror(errno));
			return -1;
		}
		ls->role = (enum node_role)r;
		ls->mn = mn;
		ev_io_init(&ls->io, mailnode_accept_cb, ls->fd, EV_READ);
		ls->io.data = ls;
		ev_io_start(mn->loop, &ls->io);
		log_info("%s listens on %s", node_role_name(r), l->str);
	}
	return 0;
}

static void
mailnode_unlisten(struct mailnode *mn)
{
	for (int r = 0; r < ROLE_COUNT; r++) {
		struct mailnode_listener *ls = &mn->listeners[r];
		if (ls->fd < 0)
			continue;
		ev_io_stop(mn->loop, &ls->io);
		close(ls->fd);
		ls->fd = -1;
	}
}

static void
mailnode_grace_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct mailnode *mn = t->data;
	(void)revents;
	/* Outbound deliveries in flight finish too, so none is cut after
	 * its final dot (which would send it twice). */
	int deliveries = queue_runner_drain(mn->runner);
	if ((mn->sessions > 0 || deliveries > 0) &&
	    ev_now(loop) < mn->grace_end)
		return;
	if (mn->sessions > 0 || deliveries > 0)
		log_warn(
		    "grace period over: %ld sessions and %d deliveries cut",
		    mn->sessions, deliveries);
	ev_break(loop, EVBREAK_ALL);
}

static void
mailnode_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct mailnode *mn = w->data;
	(void)revents;
	if (mn->stopping)
		return;
	mn->stopping = true;
	sdnotify("STOPPING=1");
	log_info("%s received: no new sessions, %ld to finish within %d s",
		 strsignal(w->signum), mn->sessions, mn->cfg->grace_s);
	mailnode_unlisten(mn);
	queue_runner_drain(mn->runner);
	http_sessions_stop();
	imap_sessions_stop(mn);
	mn->grace_end = ev_now(loop) + mn->cfg->grace_s;
	ev_timer_init(&mn->grace, mailnode_grace_cb, 0., 0.1);
	mn->grace.data = mn;
	ev_timer_again(loop, &mn->grace);
}

/* Ready for systemd: the listeners are bound and the config cache can
 * answer (from the snapshot or a first load from Redis), so the first
 * clients meet a node that knows its users. */
static void
mailnode_ready(struct mailnode *mn, const char *why)
{
	if (mn->ready || mn->stopping)
		return;
	mn->ready = true;
	ev_timer_stop(mn->loop, &mn->ready_wait);
	log_info("ready: %s", why);
	sdnotify("READY=1");
}

/* Every directory load: the cluster settings it brought, then (once)
 * readiness. */
static void
mailnode_config_loaded_cb(struct directory *d, void *arg)
{
	(void)d;
	mailnode_reload_settings(arg);
	mailnode_ready(arg, "config loaded from Redis");
}

/* Neither Redis nor a snapshot answered in time: ready all the same
 * (until the config comes, the node answers with temporary errors), so a
 * node never stays "activating" because Redis is away. */
static void
mailnode_ready_wait_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	log_warn("no config yet (Redis away, no snapshot): ready anyway, "
		 "answering with temporary errors until it comes");
	mailnode_ready(w->data, "without config");
}

static void
mailnode_ready_when_configured(struct mailnode *mn)
{
	directory_on_load(mn->dir, mailnode_config_loaded_cb, mn);
	if (directory_loaded(mn->dir)) {
		mailnode_ready(mn, "config from the snapshot");
		return;
	}
	ev_timer_init(&mn->ready_wait, mailnode_ready_wait_cb,
		      MAILNODE_READY_WAIT_S, 0.);
	mn->ready_wait.data = mn;
	ev_timer_start(mn->loop, &mn->ready_wait);
}

int
mailnode_run(struct node_config *cfg)
{
	struct mailnode node, *mn = &node;
	struct sdnotify_watchdog watchdog;
	char err[512];
	int rc = 1;

	memset(mn, 0, sizeof(*mn));
	for (int r = 0; r < ROLE_COUNT; r++)
		mn->listeners[r].fd = -1;
	mn->cfg = cfg;
	mn->loop = ev_default_loop(0);
	log_set_level(cfg->log_debug ? LOG_LVL_DEBUG
				     : (enum log_level)cfg->log_level);
	signal(SIGPIPE, SIG_IGN);

	if (cfg->tls_cert[0]) {
		mn->tls = tls_server_ctx(cfg->tls_cert, cfg->tls_key, err,
					 sizeof(err));
		if (mn->tls == NULL) {
			log_err("%s", err);
			goto out;
		}
	}
	if (store_init(&mn->store, cfg->store, cfg->hostname) < 0) {
		if (errno == ENAMETOOLONG && strlen(cfg->store) < 4096)
			log_err("hostname \"%s\": longer than %d bytes once "
				"escaped for Maildir file names",
				cfg->hostname, STORE_HOST_MAX);
		else
			log_err("store %s: %s", cfg->store, strerror(errno));
		goto out;
	}
	mn->spool =
	    spool_open(mn->loop, cfg->spool, &mn->store, cfg->spool_retry_s);
	if (mn->spool == NULL) {
		log_err("spool %s: %s", cfg->spool, strerror(errno));
		goto out;
	}
	mn->redis = redis_new(mn->loop, &cfg->redis);
	mn->dir = mn->redis ? directory_new(mn->redis,
					    &(struct directory_opts){
						.node = cfg->name,
						.spool = cfg->spool,
					    })
			    : NULL;
	mn->store.notice = mn->redis ? notice_new(mn->redis) : NULL;
	if (mn->dir == NULL || mn->store.notice == NULL) {
		log_err("out of memory");
		goto out;
	}
	mn->auth = auth_pool_new(mn->loop, cfg->auth_threads, AUTH_POOL_QUEUE,
				 AUTH_POOL_PER_SOURCE);
	if (mn->auth == NULL) {
		log_err("cannot start the password hashing threads");
		goto out;
	}
	mn->queue = queue_open(cfg->queue);
	if (mn->queue == NULL) {
		log_err("queue %s: %s", cfg->queue, strerror(errno));
		goto out;
	}
	mn->queue_sync = queue_sync_new(mn->loop, mn->queue);
	if (mn->queue_sync == NULL) {
		log_err("cannot start the queue's syncing thread");
		goto out;
	}
	if (cfg->roles & DUTY_MTA) {
		mn->runner =
		    queue_runner_new(mn->loop, cfg, mn->queue, mn->queue_sync,
				     mn->redis, mn->dir, &mn->store, err,
				     sizeof(err));
		if (mn->runner == NULL) {
			log_err("queue runner: %s", err);
			goto out;
		}
	}
	mn->login = auth_login_new(mn->auth, mn->redis, &cfg->login);
	if (mn->login == NULL) {
		log_err("out of memory");
		goto out;
	}
	mailnode_nofile();
	if (imap_node_init(mn) < 0 || mailnode_limits(mn) < 0) {
		log_err("out of memory");
		goto out;
	}
	mn->store_check =
	    store_check_new(mn->loop, &mn->store, STORE_CHECK_INTERVAL);
	if (mn->store_check == NULL) {
		log_err("cannot start the store check");
		goto out;
	}
	mailnode_reload_start(mn);
	if (mailnode_listen(mn) < 0 || mailnode_metrics_start(mn) < 0)
		goto out;
	size_t queued = spool_run(mn->spool);
	if (queued)
		log_warn("spool: %zu messages wait for the store", queued);

	ev_signal_init(&mn->sigterm, mailnode_signal_cb, SIGTERM);
	ev_signal_init(&mn->sigint, mailnode_signal_cb, SIGINT);
	mn->sigterm.data = mn->sigint.data = mn;
	ev_signal_start(mn->loop, &mn->sigterm);
	ev_signal_start(mn->loop, &mn->sigint);
	log_info("node %s (%s) started, roles:%s%s%s%s%s", cfg->name,
		 cfg->hostname, cfg->roles & DUTY_MX ? " mx" : "",
		 cfg->roles & DUTY_SUBMISSION ? " submission" : "",
		 cfg->roles & DUTY_ACCESS ? " access" : "",
		 cfg->roles & DUTY_WEB ? " web" : "",
		 cfg->roles & DUTY_MTA ? " mta" : "");
	mailnode_ready_when_configured(mn);
	sdnotify_watchdog_start(mn->loop, &watchdog);
	ev_run(mn->loop, 0);
	sdnotify_watchdog_stop(mn->loop, &watchdog);
	ev_timer_stop(mn->loop, &mn->ready_wait);
	log_info("stopped");
	rc = 0;
out:
	mailnode_reload_stop(mn);
	mailnode_unlisten(mn);
	mailnode_metrics_stop(mn);
	store_check_free(mn->store_check);
	queue_runner_free(mn->runner);
	queue_sync_free(mn->queue_sync);
	queue_close(mn->queue);
	imap_node_free(mn);
	notice_free(mn->store.notice);
	auth_login_free(mn->login);
	auth_pool_free(mn->auth);
	if (mn->dir)
		directory_free(mn->dir);
	if (mn->redis)
		redis_free(mn->redis);
	if (mn->spool)
		spool_close(mn->spool);
	if (mn->tls)
		SSL_CTX_free(mn->tls);
	connlimit_free(mn->limit);
	free(cfg);
	return rc;
}
