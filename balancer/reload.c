/* SIGHUP: re-read the config and apply it in place, as keepalived does:
 * what is unchanged is kept (node objects with their health history and
 * connections, listeners with their sockets), what is new starts, what is
 * gone stops taking new connections while established ones finish. A
 * config with errors changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "config.h"
#include "lbd_run.h"
#include "nofile.h"
#include "worker.h"

/* Settings of [lbd] that only a restart can change. */
static void
reload_settings(struct lbd *l, const struct lbd_settings *n)
{
	struct lbd_settings *s = &l->cfg->set;
	if (strcmp(s->control, n->control) != 0 ||
	    s->control_mode != n->control_mode)
		log_warn("reload: control socket changes need a restart");
	if (s->workers != n->workers)
		log_warn("reload: workers changes need a restart");
	if (strcmp(s->resolver, n->resolver) != 0)
		log_warn("reload: resolver changes need a restart");
	if (s->io_collect_us != n->io_collect_us)
		log_warn("reload: io_collect_us changes need a restart");
	if (s->io_uring != n->io_uring ||
	    s->io_uring_buffers != n->io_uring_buffers)
		log_warn("reload: io_engine and io_uring_buffers changes need "
			 "a restart");
	if (s->has_metrics != n->has_metrics ||
	    strcmp(s->metrics_str, n->metrics_str) != 0)
		log_warn("reload: metrics changes need a restart");
	if (strcmp(s->state_file, n->state_file) != 0 ||
	    strcmp(s->redis, n->redis) != 0)
		log_warn("reload: state_file and redis changes need a restart");
	s->log_level = n->log_level;
	s->grace_s = n->grace_s;
	log_set_level((enum log_level)n->log_level);
}

/* Replaces lp's config nodes by those of np, keeping every node whose
 * name and address are unchanged. */
static void
reload_nodes(struct lbd *l, struct pool *lp, struct pool *np)
{
	for (size_t i = 0; i < np->nnodes; i++) {
		struct node *nn = np->nodes[i];
		struct node *ln = pool_node(lp, nn->name);
		if (ln && addr_equal(&ln->addr, &nn->addr)) {
			ln->from_config = true;
			ln->maxconn = nn->maxconn;
			if (atomic_exchange(&ln->weight,
					    atomic_load(&nn->weight)) !=
			    atomic_load(&nn->weight))
				pool_rebuild(lp);
			continue;
		}
		if (ln) {
			log_info("reload: pool %s node %s moves %s -> %s",
				 lp->name, ln->name, ln->addrstr, nn->addrstr);
			checker_stop_node(ln);
			pool_detach(lp, ln);
		} else
			log_info("reload: pool %s node %s added (%s)", lp->name,
				 nn->name, nn->addrstr);
		node_ref(nn);
		if (pool_insert(lp, nn) < 0) {
			log_err("reload: pool %s node %s: out of memory",
				lp->name, nn->name);
			node_unref(nn);
			continue;
		}
		checker_start_node(l, lp, nn);
	}
	/* Config nodes the new config no longer has. */
	for (size_t i = 0; i < lp->nnodes;) {
		struct node *ln = lp->nodes[i];
		if (!ln->from_config || pool_node(np, ln->name) != NULL) {
			i++;
			continue;
		}
		log_info("reload: pool %s node %s removed", lp->name, ln->name);
		checker_stop_node(ln);
		pool_detach(lp, ln);
	}
}

static void
reload_pools(struct lbd *l, struct lbd_config *n)
{
	struct pool *np;
	while ((np = n->pools) != NULL) {
		n->pools = np->next;
		np->next = NULL;
		struct pool *lp = config_pool(l->cfg, np->name);
		if (lp == NULL) {
			struct pool **tail = &l->cfg->pools;
			while (*tail)
				tail = &(*tail)->next;
			*tail = np;
			for (size_t i = 0; i < np->nnodes; i++)
				checker_start_node(l, np, np->nodes[i]);
			log_info("reload: pool %s added", np->name);
			continue;
		}
		lp->line = np->line;
		lp->probe = np->probe;
		lp->check_interval_ms = np->check_interval_ms;
		lp->rise = np->rise;
		lp->fall = np->fall;
		pool_set_lb(lp, np->lb);
		checker_pool_changed(lp);
		reload_nodes(l, lp, np);
		pool_free(np);
	}
}

/* Copies what a running service may change. */
static void
reload_service_settings(struct lbd *l, struct service *ls, struct service *ns)
{
	ls->line = ns->line;
	snprintf(ls->pool_name, sizeof(ls->pool_name), "%s", ns->pool_name);
	atomic_store(&ls->pool, config_pool(l->cfg, ns->pool_name));
	atomic_store(&ls->proxy_protocol, atomic_load(&ns->proxy_protocol));
	atomic_store(&ls->connect_timeout_ms,
		     atomic_load(&ns->connect_timeout_ms));
	atomic_store(&ls->idle_timeout_s, atomic_load(&ns->idle_timeout_s));
	atomic_store(&ls->max_connections, atomic_load(&ns->max_connections));
	atomic_store(&ls->retries, atomic_load(&ns->retries));
	ls->edge_pol = ns->edge_pol; /* (main thread only reads it) */
	edge_apply(ls->edge, &ns->edge_pol);
}

static void
reload_services(struct lbd *l, struct lbd_config *n)
{
	struct service *ns;
	char err[256];

	/* Services gone, or whose address or protocol changed, close. */
	for (struct service *ls = l->cfg->services; ls; ls = ls->next) {
		if (atomic_load(&ls->closing))
			continue;
		struct service *match = config_service(n, ls->name);
		if (match && addr_equal(&match->listen, &ls->listen) &&
		    match->protocol == ls->protocol)
			continue;
		log_info("reload: service %s (%s) closes", ls->name,
			 ls->listenstr);
		atomic_store(&ls->closing, true);
	}
	while ((ns = n->services) != NULL) {
		n->services = ns->next;
		ns->next = NULL;
		struct service *ls = config_service(l->cfg, ns->name);
		if (ls != NULL) {
			reload_service_settings(l, ls, ns);
			free(ns);
			continue;
		}
		atomic_store(&ns->pool, config_pool(l->cfg, ns->pool_name));
		if (service_open(l, ns, err, sizeof(err)) < 0) {
			log_err("reload: %s", err);
			free(ns);
			continue;
		}
		pthread_mutex_lock(&l->svc_lock);
		struct service **tail = &l->cfg->services;
		while (*tail)
			tail = &(*tail)->next;
		*tail = ns;
		pthread_mutex_unlock(&l->svc_lock);
		log_info("reload: service %s listens on %s", ns->name,
			 ns->listenstr);
	}
	workers_post(l, WORKER_SYNC);
}

void
lbd_reload(struct lbd *l)
{
	char err[4096];
	struct lbd_config *n = config_load(l->config_path, err, sizeof(err));
	if (n == NULL) {
		char *save, *line;
		log_err("reload of %s refused, the running config stays:",
			l->config_path);
		for (line = strtok_r(err, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			log_err("%s", line);
		return;
	}
	/* workers: the running count (a change needs a restart) */
	if (nofile_raise(n, l->nworkers, err, sizeof(err)) < 0) {
		log_err("reload of %s refused, the running config stays: %s",
			l->config_path, err);
		config_free(n);
		return;
	}
	reload_settings(l, &n->set);
	reload_pools(l, n);
	reload_services(l, n);
	config_free(n);
	log_info("reloaded %s", l->config_path);
}
