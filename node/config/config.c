#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../common/conf.h"
#include "../../common/log.h"
#include "../auth/auth_pool.h"

static const char *const role_names[ROLE_COUNT] = {
    [ROLE_SMTP] = "smtp",   [ROLE_SUBMISSION] = "submission",
    [ROLE_SMTPS] = "smtps", [ROLE_IMAP] = "imap",
    [ROLE_IMAPS] = "imaps", [ROLE_POP3] = "pop3",
    [ROLE_POP3S] = "pop3s", [ROLE_HTTP] = "http",
};

const char *
node_role_name(enum node_role r)
{
	return role_names[r];
}

/* Which role runs each listener. */
static const unsigned listener_duty[ROLE_COUNT] = {
    [ROLE_SMTP] = DUTY_MX,	    [ROLE_SUBMISSION] = DUTY_SUBMISSION,
    [ROLE_SMTPS] = DUTY_SUBMISSION, [ROLE_IMAP] = DUTY_ACCESS,
    [ROLE_IMAPS] = DUTY_ACCESS,	    [ROLE_POP3] = DUTY_ACCESS,
    [ROLE_POP3S] = DUTY_ACCESS,	    [ROLE_HTTP] = DUTY_WEB,
};

static const struct {
	const char *name;
	unsigned bit;
} duty_names[] = {
    {"mx", DUTY_MX},	     {"submission", DUTY_SUBMISSION},
    {"access", DUTY_ACCESS}, {"web", DUTY_WEB},
    {"mta", DUTY_MTA},
};

unsigned
node_listener_duty(enum node_role r)
{
	return listener_duty[r];
}

static const char *
node_duty_name(unsigned bit)
{
	for (size_t i = 0; i < sizeof(duty_names) / sizeof(*duty_names); i++)
		if (duty_names[i].bit == bit)
			return duty_names[i].name;
	return "?";
}

int
node_hostport_parse(const char *s, struct node_hostport *hp)
{
	const char *colon, *host = s;
	size_t hlen;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			return -1;
		host = s + 1;
		hlen = (size_t)(close - host);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || strchr(s, ':') != colon)
			return -1;
		hlen = (size_t)(colon - s);
	}
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (hlen == 0 || hlen >= sizeof(hp->host) || colon[1] == '\0' || *end ||
	    port < 1 || port > 65535)
		return -1;
	for (size_t i = 0; i < hlen; i++)
		if ((unsigned char)host[i] <= ' ' || host[i] == '/')
			return -1;
	memcpy(hp->host, host, hlen);
	hp->host[hlen] = '\0';
	hp->port = (int)port;
	return 0;
}

const struct node_hostport *
node_route_find(const struct node_config *cfg, const char *domain)
{
	for (int i = 0; i < cfg->nroutes; i++)
		if (strcasecmp(cfg->routes[i].domain, domain) == 0)
			return &cfg->routes[i].to;
	return NULL;
}

bool
node_role_implicit_tls(enum node_role r)
{
	return r == ROLE_SMTPS || r == ROLE_IMAPS || r == ROLE_POP3S;
}

/* [node] */

#define NODE_STRING_KEY(fn, field)                                             \
	static int fn(struct conf *c, void *o, const char *k, const char *v)   \
	{                                                                      \
		struct node_config *n = o;                                     \
		return conf_string(c, k, v, n->field, sizeof(n->field));       \
	}

/* A key whose value is an integer in [min, max], into field. */
#define NODE_INT_KEY(fn, field, min, max)                                      \
	static int fn(struct conf *c, void *o, const char *k, const char *v)   \
	{                                                                      \
		return conf_int(c, k, v, min, max,                             \
				&((struct node_config *)o)->field);            \
	}

NODE_STRING_KEY(node_name, name)
NODE_STRING_KEY(node_hostname, hostname)
NODE_STRING_KEY(node_store, store)
NODE_STRING_KEY(node_spool, spool)
NODE_STRING_KEY(node_tls_cert, tls_cert)
NODE_STRING_KEY(node_tls_key, tls_key)

static int
node_redis(struct conf *c, void *o, const char *k, const char *v)
{
	struct node_config *n = o;
	struct redis_opts old = n->redis;
	if (redis_opts_parse(v, &n->redis) < 0) {
		conf_error(c, c->line, "%s: bad address \"%s\" (HOST:PORT)", k,
			   v);
		return -1;
	}
	n->redis.timeout_ms = old.timeout_ms;
	memcpy(n->redis.password, old.password, sizeof(old.password));
	memcpy(n->redis.master, old.master, sizeof(old.master));
	n->redis.nsentinels = old.nsentinels;
	memcpy(n->redis.sentinels, old.sentinels, sizeof(old.sentinels));
	explicit_bzero(&old, sizeof(old));
	n->has_redis = true;
	return 0;
}

/* redis_sentinels = HOST:PORT,...: find the master through them. */
static int
node_redis_sentinels(struct conf *c, void *o, const char *k, const char *v)
{
	struct node_config *n = o;
	if (redis_sentinels_parse(v, &n->redis) < 0) {
		conf_error(c, c->line, "%s: bad list \"%s\" (HOST:PORT,...)", k,
			   v);
		return -1;
	}
	if (n->redis.host[0] == '\0') /* no redis =: start at a sentinel */
		snprintf(n->redis.host, sizeof(n->redis.host), "%s",
			 n->redis.sentinels[0].host);
	n->has_redis = true;
	return 0;
}

static int
node_redis_master(struct conf *c, void *o, const char *k, const char *v)
{
	struct node_config *n = o;
	return conf_string(c, k, v, n->redis.master, sizeof(n->redis.master));
}

static int
node_redis_password(struct conf *c, void *o, const char *k, const char *v)
{
	struct node_config *n = o;
	return conf_string(c, k, v, n->redis.password,
			   sizeof(n->redis.password));
}

NODE_INT_KEY(node_redis_timeout, redis.timeout_ms, 10, 60000)

/* A size in bytes, min..max. */
static int
node_size(struct conf *c, const char *k, const char *v, long long min,
	  long long max, long *out)
{
	char *end;
	errno = 0;
	long long size = strtoll(v, &end, 10);
	if (*v == '\0' || *end || errno || size < min || size > max) {
		conf_error(c, c->line,
			   "%s: \"%s\" is not a size in bytes (%lld..%lld)", k,
			   v, min, max);
		return -1;
	}
	*out = (long)size;
	return 0;
}

static int
node_max_message_size(struct conf *c, void *o, const char *k, const char *v)
{
	return node_size(c, k, v, 1024, 2LL * 1024 * 1024 * 1024,
			 &((struct node_config *)o)->max_message_size);
}

static int
node_imap_header_cache(struct conf *c, void *o, const char *k, const char *v)
{
	return node_size(c, k, v, 0, 2LL * 1024 * 1024 * 1024,
			 &((struct node_config *)o)->imap_header_cache);
}

NODE_INT_KEY(node_max_recipients, max_recipients, 1, 100000)

static int
node_proxy_protocol(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_bool(c, k, v, &((struct node_config *)o)->proxy_protocol);
}

static int
node_proxy_trusted(struct conf *c, void *o, const char *k, const char *v)
{
	struct node_config *n = o;
	char why[160];
	if (netlist_parse(v, &n->proxy_trusted, why, sizeof(why)) < 0) {
		conf_error(c, c->line, "%s: %s", k, why);
		return -1;
	}
	return 0;
}

static int
node_allow_plaintext_auth(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_bool(c, k, v,
			 &((struct node_config *)o)->allow_plaintext_auth);
}

static int
node_log_level(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_log_level(c, k, v, &((struct node_config *)o)->log_level);
}

NODE_INT_KEY(node_spool_retry, spool_retry_s, 1, 3600)

NODE_INT_KEY(node_grace, grace_s, 0, 3600)

NODE_INT_KEY(node_auth_threads, auth_threads, 0, AUTH_POOL_THREADS_MAX)

/* roles = mx, submission, access, web, mta */
static int
node_roles(struct conf *c, void *o, const char *k, const char *v)
{
	struct node_config *n = o;
	char buf[256], *save, *p;
	if (snprintf(buf, sizeof(buf), "%s", v) >= (int)sizeof(buf)) {
		conf_error(c, c->line, "%s: too long", k);
		return -1;
	}
	n->roles = 0;
	for (p = strtok_r(buf, ", \t", &save); p;
	     p = strtok_r(NULL, ", \t", &save)) {
		size_t i, nd = sizeof(duty_names) / sizeof(*duty_names);
		for (i = 0; i < nd; i++)
			if (strcasecmp(p, duty_names[i].name) == 0)
				break;
		if (i == nd) {
			conf_error(c, c->line,
				   "%s: unknown role \"%s\" (mx, submission, "
				   "access, web, mta)",
				   k, p);
			return -1;
		}
		n->roles |= duty_names[i].bit;
	}
	if (n->roles == 0) {
		conf_error(c, c->line, "%s: no role listed", k);
		return -1;
	}
	n->roles_line = c->line;
	return 0;
}

static int
node_resolver(struct conf *c, void *o, const char *k, const char *v)
{
	struct node_config *n = o;
	if (conf_addr(c, k, v, &n->resolver, n->resolver_str,
		      sizeof(n->resolver_str)) < 0)
		return -1;
	n->has_resolver = true;
	return 0;
}

static int
node_relayhost(struct conf *c, void *o, const char *k, const char *v)
{
	struct node_config *n = o;
	if (*v == '\0') {
		n->relayhost.host[0] = '\0';
		return 0;
	}
	if (node_hostport_parse(v, &n->relayhost) < 0) {
		conf_error(c, c->line, "%s: bad \"%s\" (HOST:PORT)", k, v);
		return -1;
	}
	return 0;
}

static int
node_smtp_tls(struct conf *c, void *o, const char *k, const char *v)
{
	static const char *const names[] = {"may", "encrypt", "verify"};
	for (int i = 0; i < 3; i++)
		if (strcasecmp(v, names[i]) == 0) {
			((struct node_config *)o)->smtp_tls =
			    (enum node_smtp_tls)i;
			return 0;
		}
	conf_error(c, c->line, "%s: \"%s\" is not may, encrypt or verify", k,
		   v);
	return -1;
}

NODE_INT_KEY(node_queue_retry_min, queue_retry_min_s, 1, 86400)
NODE_INT_KEY(node_queue_retry_max, queue_retry_max_s, 1, 86400)
NODE_INT_KEY(node_queue_lifetime, queue_lifetime_s, 1, 100 * 86400)
NODE_INT_KEY(node_delay_warning, delay_warning_s, 0, 100 * 86400)
NODE_INT_KEY(node_queue_concurrency, queue_concurrency, 1, 10000)
NODE_INT_KEY(node_queue_per_destination, queue_per_destination, 1, 10000)
NODE_INT_KEY(node_queue_lease, queue_lease_s, 2, 3600)
NODE_INT_KEY(node_mx_port, mx_port, 1, 65535)
NODE_INT_KEY(node_smtp_timeout, smtp_timeout_s, 1, 3600)
NODE_INT_KEY(node_login_timeout, login_timeout_s, 1, 3600)
NODE_INT_KEY(node_http_request_timeout, http_request_timeout_s, 1, 3600)
NODE_INT_KEY(node_max_connections, max_connections, 0, 10000000)
NODE_INT_KEY(node_max_connections_per_source, max_connections_per_source, 0,
	     10000000)
NODE_INT_KEY(node_login_fail_window, login.window_s, 1, 86400)
NODE_INT_KEY(node_login_fail_limit, login.fail_limit, 0, 1000000)
NODE_INT_KEY(node_login_delay, login.delay_ms, 0, 60000)
NODE_INT_KEY(node_login_delay_max, login.delay_max_ms, 0, 600000)
NODE_STRING_KEY(node_queue, queue)
NODE_STRING_KEY(node_smtp_tls_ca, smtp_tls_ca)
NODE_STRING_KEY(node_relayhost_user, relayhost_user)
NODE_STRING_KEY(node_relayhost_password_file, relayhost_password_file)

static int
node_relay_networks(struct conf *c, void *o, const char *k, const char *v)
{
	struct node_config *n = o;
	char why[160];
	if (*v == '\0') {
		n->relay_networks.n = 0;
		return 0;
	}
	if (netlist_parse(v, &n->relay_networks, why, sizeof(why)) < 0) {
		conf_error(c, c->line, "%s: %s", k, why);
		return -1;
	}
	return 0;
}

/* One milter socket: "unix:/abs/path" or "inet:HOST:PORT" (HOST numeric
 * or localhost, IPv6 in brackets). Returns 0 or -1 with why set. */
static int
node_milter_parse(const char *s, struct node_milter *m, const char **why)
{
	memset(m, 0, sizeof(*m));
	if (strlen(s) >= sizeof(m->str)) {
		*why = "too long";
		return -1;
	}
	snprintf(m->str, sizeof(m->str), "%s", s);
	if (strncmp(s, "unix:", 5) == 0) {
		struct sockaddr_un *un = (struct sockaddr_un *)&m->addr.ss;
		if (s[5] != '/' || strlen(s + 5) >= sizeof(un->sun_path)) {
			*why = "unix: needs an absolute path (at most 107 "
			       "bytes)";
			return -1;
		}
		un->sun_family = AF_UNIX;
		snprintf(un->sun_path, sizeof(un->sun_path), "%s", s + 5);
		m->addr.len = sizeof(*un);
		return 0;
	}
	if (strncmp(s, "inet:", 5) != 0) {
		*why = "not unix:PATH or inet:HOST:PORT";
		return -1;
	}
	char hp[ADDR_STRLEN + 16];
	if (strncmp(s + 5, "localhost:", 10) == 0)
		snprintf(hp, sizeof(hp), "127.0.0.1:%s", s + 15);
	else
		snprintf(hp, sizeof(hp), "%s", s + 5);
	return addr_parse(hp, &m->addr, why);
}

/* milters = unix:PATH, inet:HOST:PORT, ... (in order; empty: none) */
static int
node_milters(struct conf *c, void *o, const char *k, const char *v)
{
	struct node_config *n = o;
	char list[NODE_MILTERS_MAX * 256], *save = NULL;
	n->nmilters = 0;
	if (strlen(v) >= sizeof(list)) {
		conf_error(c, c->line, "%s: list too long", k);
		return -1;
	}
	snprintf(list, sizeof(list), "%s", v);
	for (char *t = strtok_r(list, ", \t", &save); t;
	     t = strtok_r(NULL, ", \t", &save)) {
		const char *why = "";
		if (n->nmilters == NODE_MILTERS_MAX) {
			conf_error(c, c->line, "%s: more than %d milters", k,
				   NODE_MILTERS_MAX);
			return -1;
		}
		if (node_milter_parse(t, &n->milters[n->nmilters], &why) < 0) {
			conf_error(c, c->line, "%s: \"%s\": %s", k, t, why);
			return -1;
		}
		n->nmilters++;
	}
	return 0;
}

static int
node_milter_default_action(struct conf *c, void *o, const char *k,
			   const char *v)
{
	/* in enum node_milter_default's order */
	static const char *const names[] = {"tempfail", "accept"};
	int i;
	if (conf_choice(c, k, v, names, 2, &i) < 0)
		return -1;
	((struct node_config *)o)->milter_default_action =
	    (enum node_milter_default)i;
	return 0;
}

NODE_INT_KEY(node_milter_timeout, milter_timeout_s, 1, 3600)

static int
node_milter_submission(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_bool(c, k, v,
			 &((struct node_config *)o)->milter_submission);
}

static int
node_spam_to_junk(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_bool(c, k, v, &((struct node_config *)o)->spam_to_junk);
}

static const struct conf_key node_keys[] = {
    {"name", node_name},
    {"hostname", node_hostname},
    {"redis", node_redis},
    {"redis_password", node_redis_password},
    {"redis_sentinels", node_redis_sentinels},
    {"redis_master", node_redis_master},
    {"redis_timeout_ms", node_redis_timeout},
    {"store", node_store},
    {"spool", node_spool},
    {"tls_cert", node_tls_cert},
    {"tls_key", node_tls_key},
    {"max_message_size", node_max_message_size},
    {"imap_header_cache", node_imap_header_cache},
    {"max_recipients", node_max_recipients},
    {"proxy_protocol", node_proxy_protocol},
    {"proxy_trusted", node_proxy_trusted},
    {"allow_plaintext_auth", node_allow_plaintext_auth},
    {"log_level", node_log_level},
    {"spool_retry_s", node_spool_retry},
    {"grace_s", node_grace},
    {"auth_threads", node_auth_threads},
    {"login_timeout_s", node_login_timeout},
    {"http_request_timeout_s", node_http_request_timeout},
    {"max_connections", node_max_connections},
    {"max_connections_per_source", node_max_connections_per_source},
    {"login_fail_window_s", node_login_fail_window},
    {"login_fail_limit", node_login_fail_limit},
    {"login_delay_ms", node_login_delay},
    {"login_delay_max_ms", node_login_delay_max},
    {"roles", node_roles},
    {"queue", node_queue},
    {"resolver", node_resolver},
    {"relayhost", node_relayhost},
    {"relayhost_user", node_relayhost_user},
    {"relayhost_password_file", node_relayhost_password_file},
    {"smtp_tls", node_smtp_tls},
    {"smtp_tls_ca", node_smtp_tls_ca},
    {"queue_retry_min_s", node_queue_retry_min},
    {"queue_retry_max_s", node_queue_retry_max},
    {"queue_lifetime_s", node_queue_lifetime},
    {"delay_warning_s", node_delay_warning},
    {"queue_concurrency", node_queue_concurrency},
    {"queue_per_destination", node_queue_per_destination},
    {"queue_lease_s", node_queue_lease},
    {"mx_port", node_mx_port},
    {"smtp_timeout_s", node_smtp_timeout},
    {"relay_networks", node_relay_networks},
    {"milters", node_milters},
    {"milter_default_action", node_milter_default_action},
    {"milter_timeout_s", node_milter_timeout},
    {"milter_submission", node_milter_submission},
    {"spam_to_junk", node_spam_to_junk},
    {NULL, NULL},
};

/* [listen]: one key per role, the key is the role's name. */
static int
listen_role(struct conf *c, void *o, const char *k, const char *v)
{
	struct node_config *n = o;
	for (int r = 0; r < ROLE_COUNT; r++) {
		if (strcmp(k, role_names[r]) != 0)
			continue;
		struct node_listen *l = &n->listen[r];
		if (conf_addr(c, k, v, &l->addr, l->str, sizeof(l->str)) < 0)
			return -1;
		l->on = true;
		l->line = c->line;
		return 0;
	}
	return -1;
}

/* [listen] metrics: the Prometheus endpoint, no role of its own. */
static int
listen_metrics(struct conf *c, void *o, const char *k, const char *v)
{
	struct node_listen *l = &((struct node_config *)o)->metrics;
	if (conf_addr(c, k, v, &l->addr, l->str, sizeof(l->str)) < 0)
		return -1;
	l->on = true;
	l->line = c->line;
	return 0;
}

static const struct conf_key listen_keys[] = {
    {"smtp", listen_role},	 {"submission", listen_role},
    {"smtps", listen_role},	 {"imap", listen_role},
    {"imaps", listen_role},	 {"pop3", listen_role},
    {"pop3s", listen_role},	 {"http", listen_role},
    {"metrics", listen_metrics}, {NULL, NULL},
};

/* [route]: DOMAIN = HOST:PORT, any domain as the key. */
static int
route_set(struct conf *c, void *o, const char *k, const char *v)
{
	struct node_config *n = o;
	struct node_route spare, *r;
	/* Full: parse into spare, which only a replacement may take. */
	r = n->nroutes < NODE_ROUTES_MAX ? &n->routes[n->nroutes] : &spare;
	if (strlen(k) >= sizeof(r->domain) || strchr(k, '@') || k[0] == '\0') {
		conf_error(c, c->line, "[route]: bad domain \"%s\"", k);
		return -1;
	}
	if (node_hostport_parse(v, &r->to) < 0) {
		conf_error(c, c->line, "[route]: %s: bad \"%s\" (HOST:PORT)", k,
			   v);
		return -1;
	}
	size_t i;
	for (i = 0; k[i]; i++)
		r->domain[i] = (char)tolower((unsigned char)k[i]);
	r->domain[i] = '\0';
	/* The same domain again (the INI over a cluster route): replaces. */
	for (int j = 0; j < n->nroutes; j++)
		if (strcmp(n->routes[j].domain, r->domain) == 0) {
			n->routes[j].to = r->to;
			return 0;
		}
	if (r == &spare) {
		conf_error(c, c->line, "[route]: more than %d routes",
			   NODE_ROUTES_MAX);
		return -1;
	}
	n->nroutes++;
	return 0;
}

static const struct conf_key route_keys[] = {
    {"*", route_set},
    {NULL, NULL},
};

static struct conf_section
node_open_section(struct conf *c, const char *section)
{
	struct node_config *n = c->user;
	if (strcmp(section, "node") == 0)
		return (struct conf_section){n, node_keys, "[node]"};
	if (strcmp(section, "listen") == 0)
		return (struct conf_section){n, listen_keys, "[listen]"};
	if (strcmp(section, "route") == 0)
		return (struct conf_section){n, route_keys, "[route]"};
	conf_error(c, c->section_line,
		   "unknown section [%s] (expected [node], [listen] or "
		   "[route])",
		   section);
	return (struct conf_section){NULL, NULL, NULL};
}

static void
node_dir_check(struct conf *c, const char *key, const char *path)
{
	struct stat st;
	if (path[0] == '\0')
		conf_error(c, 1, "[node]: %s = DIRECTORY is required", key);
	else if (path[0] != '/')
		conf_error(c, 1, "[node]: %s = %s must be an absolute path",
			   key, path);
	else if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		conf_error(c, 1, "[node]: %s = %s: %s", key, path,
			   errno ? strerror(errno) : "not a directory");
}

static void
node_validate(struct conf *c, struct node_config *n)
{
	if (n->name[0] == '\0')
		conf_error(c, 1, "[node]: name is required");
	if (!n->has_redis)
		conf_error(c, 1, "[node]: redis = HOST:PORT is required");
	if ((n->redis.nsentinels > 0) != (n->redis.master[0] != '\0'))
		conf_error(
		    c, 1,
		    "[node]: redis_sentinels and redis_master go together");
	node_dir_check(c, "store", n->store);
	node_dir_check(c, "spool", n->spool);
	if ((n->tls_cert[0] == '\0') != (n->tls_key[0] == '\0'))
		conf_error(c, 1, "[node]: tls_cert and tls_key go together");
	bool any = false;
	for (int r = 0; r < ROLE_COUNT; r++) {
		struct node_listen *l = &n->listen[r];
		if (!l->on)
			continue;
		any = true;
		if (!(n->roles & listener_duty[r]))
			conf_error(c, l->line,
				   "[listen]: %s is a listener of role %s, "
				   "which roles does not list",
				   role_names[r],
				   node_duty_name(listener_duty[r]));
		if (node_role_implicit_tls(r) && n->tls_cert[0] == '\0')
			conf_error(c, l->line, "[listen]: %s needs tls_cert",
				   role_names[r]);
		for (int q = 0; q < r; q++)
			if (n->listen[q].on &&
			    addr_equal(&n->listen[q].addr, &l->addr))
				conf_error(c, l->line,
					   "[listen]: %s %s already used by %s",
					   role_names[r], l->str,
					   role_names[q]);
		if (n->metrics.on && addr_equal(&n->metrics.addr, &l->addr))
			conf_error(c, n->metrics.line,
				   "[listen]: metrics %s already used by %s",
				   n->metrics.str, role_names[r]);
	}
	if (!any && !(n->roles & DUTY_MTA))
		conf_error(c, 1, "[listen]: no listener configured");
	if ((n->relayhost_user[0] != '\0') !=
	    (n->relayhost_password_file[0] != '\0'))
		conf_error(c, 1,
			   "[node]: relayhost_user and relayhost_password_file "
			   "go together");
	if (n->queue_retry_max_s < n->queue_retry_min_s)
		conf_error(c, 1,
			   "[node]: queue_retry_max_s is below "
			   "queue_retry_min_s");
	if (n->queue[0] == '\0' && n->store[0] != '\0' &&
	    snprintf(n->queue, sizeof(n->queue), "%s/.queue", n->store) >=
		(int)sizeof(n->queue))
		conf_error(c, 1, "[node]: store path too long for its queue");
	else if (n->queue[0] != '/')
		conf_error(c, 1, "[node]: queue = %s must be an absolute path",
			   n->queue);
	if (n->proxy_protocol && n->proxy_trusted.n == 0)
		conf_error(c, 1,
			   "[node]: proxy_protocol = on needs proxy_trusted");
}

/* The [node] keys that may also be set cluster-wide: those that must
 * agree on every node (limits, who may relay and send PROXY headers, how
 * mail leaves), each read where it is used, so a change applies without a
 * restart (node/mailnode_reload.c). Plus "route:DOMAIN". */
static const char *const node_cluster_keys[] = {
    "max_message_size",
    "max_recipients",
    "max_connections",
    "max_connections_per_source",
    "proxy_protocol",
    "proxy_trusted",
    "allow_plaintext_auth",
    "login_timeout_s",
    "http_request_timeout_s",
    "login_fail_window_s",
    "login_fail_limit",
    "login_delay_ms",
    "login_delay_max_ms",
    "relay_networks",
    "relayhost",
    "smtp_tls",
    "mx_port",
    "smtp_timeout_s",
    "queue_retry_min_s",
    "queue_retry_max_s",
    "queue_lifetime_s",
    "delay_warning_s",
    "queue_per_destination",
};

#define NODE_NCLUSTER_KEYS                                                     \
	(sizeof(node_cluster_keys) / sizeof(*node_cluster_keys))

const char *
node_setting_keys(void)
{
	static char list[1024];
	size_t used = 0;
	if (list[0] != '\0')
		return list;
	for (size_t i = 0; i < NODE_NCLUSTER_KEYS; i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used,
					 "%s, ", node_cluster_keys[i]);
	snprintf(list + used, sizeof(list) - used, "%sDOMAIN",
		 NODE_SETTING_ROUTE);
	return list;
}

/* Applies one cluster setting through the INI's own setter. Returns 0, or
 * -1 (reported in c). */
static int
node_setting_apply(struct conf *c, struct node_config *n, const char *key,
		   const char *value)
{
	size_t rlen = strlen(NODE_SETTING_ROUTE);
	if (strncmp(key, NODE_SETTING_ROUTE, rlen) == 0)
		return route_set(c, n, key + rlen, value);
	for (size_t i = 0; i < NODE_NCLUSTER_KEYS; i++) {
		if (strcmp(key, node_cluster_keys[i]) != 0)
			continue;
		for (const struct conf_key *k = node_keys; k->name; k++)
			if (strcmp(k->name, key) == 0)
				return k->set(c, n, key, value);
	}
	conf_error(c, 0, "unknown key \"%s\" (cluster settings: %s)", key,
		   node_setting_keys());
	return -1;
}

int
node_setting_check(const char *key, const char *value, char *err, size_t errlen)
{
	struct node_config *n = calloc(1, sizeof(*n));
	struct conf c = {
	    .path = "cluster setting", .err = err, .errlen = errlen};
	if (n == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	err[0] = '\0';
	node_setting_apply(&c, n, key, value);
	free(n);
	return c.nerrors ? -1 : 0;
}

static void
node_defaults(struct node_config *n)
{
	n->redis.timeout_ms = 500;
	n->max_message_size = 26214400;
	n->imap_header_cache = 33554432;
	n->max_recipients = 100;
	n->log_level = LOG_LVL_INFO;
	n->spool_retry_s = 5;
	n->grace_s = 10;
	n->login_timeout_s = 60;
	n->http_request_timeout_s = 30;
	n->max_connections = 5000;
	n->max_connections_per_source = 100;
	n->login = (struct login_limits){.window_s = 300,
					 .fail_limit = 10,
					 .delay_ms = 250,
					 .delay_max_ms = 5000};
	n->roles = DUTY_ALL;
	n->queue_retry_min_s = 300;
	n->queue_retry_max_s = 3600;
	n->queue_lifetime_s = 432000;
	n->delay_warning_s = 14400;
	n->queue_concurrency = 20;
	n->queue_per_destination = 4;
	n->queue_lease_s = 30;
	n->mx_port = 25;
	n->smtp_timeout_s = 300;
	n->milter_timeout_s = 30;
	if (gethostname(n->hostname, sizeof(n->hostname)) < 0)
		snprintf(n->hostname, sizeof(n->hostname), "localhost");
}

struct node_config *
node_config_load(const char *path, const struct node_setting *settings,
		 size_t nsettings, char *err, size_t errlen)
{
	struct node_config *n = calloc(1, sizeof(*n));
	if (n == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	snprintf(n->path, sizeof(n->path), "%s", path);
	node_defaults(n);
	/* The cluster's settings first: the INI's keys then replace them. */
	struct conf cs = {
	    .path = "cluster setting", .err = err, .errlen = errlen};
	err[0] = '\0';
	for (size_t i = 0; i < nsettings; i++)
		node_setting_apply(&cs, n, settings[i].key, settings[i].value);
	if (cs.nerrors > 0) {
		free(n);
		return NULL;
	}

	struct conf c = {
	    .path = path, .open_section = node_open_section, .user = n};
	if (conf_parse(&c, err, errlen) == 0)
		node_validate(&c, n);
	if (c.nerrors > 0) {
		free(n);
		return NULL;
	}
	n->msg_max = (size_t)n->max_message_size;
	n->msg_max_sent = 2 * n->msg_max;
	return n;
}
