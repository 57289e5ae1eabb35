#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static int
node_redis_timeout(struct conf *c, void *o, const char *k, const char *v)
{
	struct node_config *n = o;
	return conf_int(c, k, v, 10, 60000, &n->redis.timeout_ms);
}

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

static int
node_max_recipients(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 1, 100000,
			&((struct node_config *)o)->max_recipients);
}

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

static int
node_spool_retry(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 1, 3600,
			&((struct node_config *)o)->spool_retry_s);
}

static int
node_grace(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 0, 3600, &((struct node_config *)o)->grace_s);
}

static int
node_auth_threads(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 0, AUTH_POOL_THREADS_MAX,
			&((struct node_config *)o)->auth_threads);
}

static int
node_login_timeout(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 1, 3600,
			&((struct node_config *)o)->login_timeout_s);
}

static int
node_http_request_timeout(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 1, 3600,
			&((struct node_config *)o)->http_request_timeout_s);
}

static int
node_max_connections(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 0, 10000000,
			&((struct node_config *)o)->max_connections);
}

static int
node_max_connections_per_source(struct conf *c, void *o, const char *k,
				const char *v)
{
	return conf_int(c, k, v, 0, 10000000,
			&((struct node_config *)o)->max_connections_per_source);
}

static int
node_login_fail_window(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 1, 86400,
			&((struct node_config *)o)->login.window_s);
}

static int
node_login_fail_limit(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 0, 1000000,
			&((struct node_config *)o)->login.fail_limit);
}

static int
node_login_delay(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 0, 60000,
			&((struct node_config *)o)->login.delay_ms);
}

static int
node_login_delay_max(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 0, 600000,
			&((struct node_config *)o)->login.delay_max_ms);
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

static struct conf_section
node_open_section(struct conf *c, const char *section)
{
	struct node_config *n = c->user;
	if (strcmp(section, "node") == 0)
		return (struct conf_section){n, node_keys, "[node]"};
	if (strcmp(section, "listen") == 0)
		return (struct conf_section){n, listen_keys, "[listen]"};
	conf_error(c, c->section_line,
		   "unknown section [%s] (expected [node] or [listen])",
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
	if (!any)
		conf_error(c, 1, "[listen]: no listener configured");
	if (n->proxy_protocol && n->proxy_trusted.n == 0)
		conf_error(c, 1,
			   "[node]: proxy_protocol = on needs proxy_trusted");
}

struct node_config *
node_config_load(const char *path, char *err, size_t errlen)
{
	struct node_config *n = calloc(1, sizeof(*n));
	if (n == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	snprintf(n->path, sizeof(n->path), "%s", path);
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
	if (gethostname(n->hostname, sizeof(n->hostname)) < 0)
		snprintf(n->hostname, sizeof(n->hostname), "localhost");

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
