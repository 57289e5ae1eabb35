/* mailnode's reload (mailnode_reload.h): SIGHUP and a change of the
 * cluster settings both end in reload_apply, which builds the new config on the
 * side, keeps the keys fixed at start, and swaps the rest in place (every part
 * holds mn->cfg, never a copy). */
#include "mailnode_reload.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../common/log.h"
#include "../common/sdnotify.h"
#include "../common/tls_server.h"

long
mailnode_max_connections(const struct node_config *cfg)
{
	long max = cfg->max_connections;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur > 128 &&
	    (max == 0 || (rlim_t)max > rl.rlim_cur - 128)) {
		max = (long)(rl.rlim_cur - 128);
		log_warn("max_connections: %ld (open file limit %ld)", max,
			 (long)rl.rlim_cur);
	}
	return max;
}

/* The keys a running node cannot change: what they made at start (a
 * socket, a thread, a file opened, a connection) stays. Compared as bytes:
 * each field is written whole by its setter. */
#define RELOAD_FIXED(key, field)                                               \
	{                                                                      \
		key, offsetof(struct node_config, field),                      \
		    sizeof(((struct node_config *)0)->field)                   \
	}
static const struct reload_fixed {
	const char *key;
	size_t off, len;
} reload_fixed[] = {
    RELOAD_FIXED("name", name),
    RELOAD_FIXED("hostname", hostname),
    RELOAD_FIXED("redis (and its other keys)", redis),
    RELOAD_FIXED("store", store),
    RELOAD_FIXED("spool", spool),
    RELOAD_FIXED("spool_retry_s", spool_retry_s),
    RELOAD_FIXED("auth_threads", auth_threads),
    RELOAD_FIXED("imap_header_cache", imap_header_cache),
    RELOAD_FIXED("roles", roles),
    RELOAD_FIXED("queue", queue),
    RELOAD_FIXED("resolver", resolver_str),
    RELOAD_FIXED("relayhost_user", relayhost_user),
    RELOAD_FIXED("relayhost_password_file", relayhost_password_file),
    RELOAD_FIXED("smtp_tls_ca", smtp_tls_ca),
};

/* Puts back into n the fixed keys of old that n changes, saying so. The
 * listeners compare by their address as written. */
static void
reload_keep_fixed(const struct node_config *old, struct node_config *n)
{
	for (size_t i = 0; i < sizeof(reload_fixed) / sizeof(*reload_fixed);
	     i++) {
		const struct reload_fixed *f = &reload_fixed[i];
		const char *o = (const char *)old + f->off;
		char *p = (char *)n + f->off;
		if (memcmp(o, p, f->len) == 0)
			continue;
		log_warn("reload: %s changed in %s: needs a restart, the "
			 "running value stays",
			 f->key, old->path);
		memcpy(p, o, f->len);
	}
	n->has_redis = old->has_redis;
	n->has_resolver = old->has_resolver;
	n->resolver = old->resolver;
	n->roles_line = old->roles_line;
	n->log_debug = old->log_debug; /* a command-line option */
	for (int r = 0; r <= ROLE_COUNT; r++) {
		const struct node_listen *ol =
		    r < ROLE_COUNT ? &old->listen[r] : &old->metrics;
		struct node_listen *nl =
		    r < ROLE_COUNT ? &n->listen[r] : &n->metrics;
		if (ol->on != nl->on || strcmp(ol->str, nl->str) != 0)
			log_warn("reload: [listen] %s changed in %s: needs a "
				 "restart, the running listener stays",
				 r < ROLE_COUNT ? node_role_name(r) : "metrics",
				 old->path);
		*nl = *ol;
	}
}

/* Logs a refused config, one line per problem. */
static void
reload_refused(const char *path, const char *why, char *err)
{
	char *save, *line;
	log_err("reload (%s) of %s refused, the running config stays:", why,
		path);
	for (line = strtok_r(err, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		log_err("%s", line);
}

/* Builds and applies the config: the INI on disk under the directory's
 * settings, and with files the TLS certificate and key read again.
 * Returns 0, or -1 when refused (nothing changed). */
static int
reload_apply(struct mailnode *mn, bool files, const char *why)
{
	struct node_config *old = mn->cfg, *n;
	const struct node_setting *set;
	SSL_CTX *tls = NULL;
	size_t nset;
	char err[4096];

	set = directory_settings(mn->dir, &nset);
	n = node_config_load(old->path, set, nset, err, sizeof(err));
	if (n == NULL) {
		reload_refused(old->path, why, err);
		return -1;
	}
	reload_keep_fixed(old, n);
	if (!files) { /* the certificate is read on SIGHUP only */
		memcpy(n->tls_cert, old->tls_cert, sizeof(n->tls_cert));
		memcpy(n->tls_key, old->tls_key, sizeof(n->tls_key));
	} else if (n->tls_cert[0]) {
		tls = tls_server_ctx(n->tls_cert, n->tls_key, err, sizeof(err));
		if (tls == NULL) {
			reload_refused(old->path, why, err);
			free(n);
			return -1;
		}
	}
	if (files) {
		/* Streams hold their own reference (stream.h): a handshake
		 * under way finishes with the old context. */
		if (mn->tls)
			SSL_CTX_free(mn->tls);
		mn->tls = tls;
	}
	*old = *n; /* in place: the parts hold mn->cfg and its fields */
	free(n);
	log_set_level(old->log_debug ? LOG_LVL_DEBUG
				     : (enum log_level)old->log_level);
	connlimit_set_caps(mn->limit, mailnode_max_connections(old),
			   old->max_connections_per_source);
	log_info("reloaded %s (%s; %zu cluster settings)", old->path, why,
		 nset);
	return 0;
}

static void
reload_sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct mailnode *mn = w->data;
	(void)loop;
	(void)revents;
	if (mn->stopping)
		return;
	if (mn->ready) /* before, systemd waits for the first READY=1 */
		sdnotify("RELOADING=1");
	reload_apply(mn, true, "SIGHUP");
	mn->settings_version = directory_settings_version(mn->dir);
	/* Refused or not, the node runs: systemd's reload is over. */
	if (mn->ready)
		sdnotify("READY=1");
}

void
mailnode_reload_settings(struct mailnode *mn)
{
	uint64_t v = directory_settings_version(mn->dir);
	if (v == mn->settings_version || mn->stopping)
		return;
	mn->settings_version = v;
	reload_apply(mn, false, "cluster settings changed");
}

void
mailnode_reload_start(struct mailnode *mn)
{
	size_t n;
	mn->settings_version = directory_settings_version(mn->dir);
	if (directory_settings(mn->dir, &n) && n > 0)
		reload_apply(mn, false, "cluster settings from the snapshot");
	ev_signal_init(&mn->sighup, reload_sighup_cb, SIGHUP);
	mn->sighup.data = mn;
	ev_signal_start(mn->loop, &mn->sighup);
}

void
mailnode_reload_stop(struct mailnode *mn)
{
	ev_signal_stop(mn->loop, &mn->sighup);
}
