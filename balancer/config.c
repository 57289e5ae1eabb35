#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/conf.h"
#include "../common/decimal.h"
#include "../common/log.h"
#include "../common/redis.h"

/* The state of one config_load(): the config being filled. */
struct lbd_conf {
	struct lbd_config *cfg;
};

static int
conf_atomic_int(struct conf *c, const char *key, const char *val, int min,
		int max, _Atomic int *out)
{
	int v;
	if (conf_int(c, key, val, min, max, &v) < 0)
		return -1;
	atomic_store(out, v);
	return 0;
}

/* [lbd] */

static int
lbd_control(struct conf *c, void *o, const char *k, const char *v)
{
	struct lbd_settings *s = o;
	return conf_string(c, k, v, s->control, sizeof(s->control));
}

static int
lbd_control_mode(struct conf *c, void *o, const char *k, const char *v)
{
	struct lbd_settings *s = o;
	char *end;
	long mode = strtol(v, &end, 8);
	if (*v == '\0' || *end != '\0' || mode < 0 || mode > 0777) {
		conf_error(c, c->line, "%s: \"%s\" is not an octal mode", k, v);
		return -1;
	}
	s->control_mode = (int)mode;
	return 0;
}

static int
lbd_state_file(struct conf *c, void *o, const char *k, const char *v)
{
	struct lbd_settings *s = o;
	return conf_string(c, k, v, s->state_file, sizeof(s->state_file));
}

static int
lbd_redis(struct conf *c, void *o, const char *k, const char *v)
{
	struct lbd_settings *s = o;
	struct addr a;
	char buf[ADDR_STRLEN];
	if (conf_addr(c, k, v, &a, buf, sizeof(buf)) < 0)
		return -1;
	return conf_string(c, k, v, s->redis, sizeof(s->redis));
}

static int
lbd_redis_sentinels(struct conf *c, void *o, const char *k, const char *v)
{
	struct lbd_settings *s = o;
	struct redis_opts ro;
	memset(&ro, 0, sizeof(ro));
	if (redis_sentinels_parse(v, &ro) < 0) {
		conf_error(c, c->line,
			   "%s: \"%s\" is not HOST:PORT,HOST:PORT (at most %d)",
			   k, v, REDIS_MAX_SENTINELS);
		return -1;
	}
	return conf_string(c, k, v, s->redis_sentinels,
			   sizeof(s->redis_sentinels));
}

static int
lbd_redis_master(struct conf *c, void *o, const char *k, const char *v)
{
	struct lbd_settings *s = o;
	return conf_string(c, k, v, s->redis_master, sizeof(s->redis_master));
}

static int
lbd_redis_password(struct conf *c, void *o, const char *k, const char *v)
{
	struct lbd_settings *s = o;
	return conf_string(c, k, v, s->redis_password,
			   sizeof(s->redis_password));
}

static int
lbd_name(struct conf *c, void *o, const char *k, const char *v)
{
	struct lbd_settings *s = o;
	if (v[0] == '\0' || strpbrk(v, " \t:") != NULL) {
		conf_error(c, c->line, "%s: \"%s\": no blanks or colons", k, v);
		return -1;
	}
	return conf_string(c, k, v, s->name, sizeof(s->name));
}

static int
lbd_workers(struct conf *c, void *o, const char *k, const char *v)
{
	struct lbd_settings *s = o;
	return conf_int(c, k, v, 1, LBD_MAX_WORKERS, &s->workers);
}

static int
lbd_metrics(struct conf *c, void *o, const char *k, const char *v)
{
	struct lbd_settings *s = o;
	if (conf_addr(c, k, v, &s->metrics, s->metrics_str,
		      sizeof(s->metrics_str)) < 0)
		return -1;
	s->has_metrics = true;
	return 0;
}

static int
lbd_log_level(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_log_level(c, k, v, &((struct lbd_settings *)o)->log_level);
}

static int
lbd_grace_s(struct conf *c, void *o, const char *k, const char *v)
{
	struct lbd_settings *s = o;
	return conf_int(c, k, v, 0, 86400, &s->grace_s);
}

static int
lbd_io_collect_us(struct conf *c, void *o, const char *k, const char *v)
{
	struct lbd_settings *s = o;
	return conf_int(c, k, v, 0, 10000, &s->io_collect_us);
}

static int
lbd_io_engine(struct conf *c, void *o, const char *k, const char *v)
{
	static const char *const names[] = {"uring", "epoll"};
	int i;
	if (conf_choice(c, k, v, names, 2, &i) < 0)
		return -1;
	((struct lbd_settings *)o)->io_uring = i == 0;
	return 0;
}

static int
lbd_io_uring_buffers(struct conf *c, void *o, const char *k, const char *v)
{
	struct lbd_settings *s = o;
	if (conf_int(c, k, v, 16, 32768, &s->io_uring_buffers) < 0)
		return -1;
	if ((s->io_uring_buffers & (s->io_uring_buffers - 1)) != 0) {
		conf_error(c, c->line, "%s: %d is not a power of two", k,
			   s->io_uring_buffers);
		return -1;
	}
	return 0;
}

static int
lbd_resolver(struct conf *c, void *o, const char *k, const char *v)
{
	struct lbd_settings *s = o;
	struct addr a;
	return conf_addr(c, k, v, &a, s->resolver, sizeof(s->resolver));
}

/* [service NAME] */

static int
svc_listen(struct conf *c, void *o, const char *k, const char *v)
{
	struct service *s = o;
	s->listen_line = c->line;
	return conf_addr(c, k, v, &s->listen, s->listenstr,
			 sizeof(s->listenstr));
}

static int
svc_protocol(struct conf *c, void *o, const char *k, const char *v)
{
	struct service *s = o;
	if (service_proto_parse(v, &s->protocol) < 0) {
		conf_error(
		    c, c->line,
		    "%s: \"%s\" is not one of smtp, imap, pop3, http, tcp", k,
		    v);
		return -1;
	}
	return 0;
}

static int
svc_pool(struct conf *c, void *o, const char *k, const char *v)
{
	struct service *s = o;
	s->pool_line = c->line;
	return conf_string(c, k, v, s->pool_name, sizeof(s->pool_name));
}

static int
svc_proxy_protocol(struct conf *c, void *o, const char *k, const char *v)
{
	static const char *const names[] = {"off", "v1", "v2"};
	int i;
	if (conf_choice(c, k, v, names, 3, &i) < 0)
		return -1;
	((struct service *)o)->proxy_protocol = i;
	return 0;
}

static int
svc_connect_timeout(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_atomic_int(c, k, v, 1, 600000,
			       &((struct service *)o)->connect_timeout_ms);
}

static int
svc_idle_timeout(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_atomic_int(c, k, v, 1, 7 * 86400,
			       &((struct service *)o)->idle_timeout_s);
}

static int
svc_max_connections(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_atomic_int(c, k, v, 0, 10000000,
			       &((struct service *)o)->max_connections);
}

static int
svc_retries(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_atomic_int(c, k, v, 0, 64, &((struct service *)o)->retries);
}

/* [service NAME]: edge protection (edge.h) */

static int
svc_max_conn_per_source(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 0, 1000000,
			&((struct service *)o)->edge_pol.max_conn_per_source);
}

/* COUNT/SECONDS, or 0 for off. */
static int
svc_rate_per_source(struct conf *c, void *o, const char *k, const char *v)
{
	struct edge_policy *p = &((struct service *)o)->edge_pol;
	char count[32];
	const char *slash = strchr(v, '/');
	long n = 0, secs = 0;
	if (strcmp(v, "0") == 0) {
		p->rate_count = p->rate_window_s = 0;
		return 0;
	}
	if (slash == NULL || (size_t)(slash - v) >= sizeof(count))
		goto bad;
	memcpy(count, v, (size_t)(slash - v));
	count[slash - v] = '\0';
	if (decimal_long(count, 1, 1000000, &n) < 0 ||
	    decimal_long(slash + 1, 1, 86400, &secs) < 0)
		goto bad;
	p->rate_count = (int)n;
	p->rate_window_s = (int)secs;
	return 0;
bad:
	conf_error(c, c->line,
		   "%s: \"%s\" is not COUNT/SECONDS (1..1000000 per 1..86400) "
		   "or 0",
		   k, v);
	return -1;
}

static int
svc_source_table_size(struct conf *c, void *o, const char *k, const char *v)
{
	int n;
	if (conf_int(c, k, v, 1, EDGE_TABLE_MAX, &n) < 0)
		return -1;
	((struct service *)o)->edge_pol.table_size = n;
	return 0;
}

static int
svc_netlist(struct conf *c, const char *k, const char *v, struct netlist *out)
{
	char why[128];
	if (netlist_parse(v, out, why, sizeof(why)) < 0) {
		conf_error(c, c->line, "%s: %s", k, why);
		return -1;
	}
	return 0;
}

static int
svc_allow(struct conf *c, void *o, const char *k, const char *v)
{
	return svc_netlist(c, k, v, &((struct service *)o)->edge_pol.allow);
}

static int
svc_deny(struct conf *c, void *o, const char *k, const char *v)
{
	return svc_netlist(c, k, v, &((struct service *)o)->edge_pol.deny);
}

static int
svc_pregreet(struct conf *c, void *o, const char *k, const char *v)
{
	struct service *s = o;
	s->smtp_only_line = c->line;
	return conf_bool(c, k, v, &s->edge_pol.pregreet);
}

static int
svc_greet_delay(struct conf *c, void *o, const char *k, const char *v)
{
	struct service *s = o;
	s->smtp_only_line = c->line;
	return conf_int(c, k, v, 0, 60000, &s->edge_pol.greet_delay_ms);
}

/* One "ZONE[=WEIGHT]" of dnsbl. */
static int
svc_dnsbl_zone(struct conf *c, const char *k, char *tok, struct edge_zone *z)
{
	char *eq = strchr(tok, '=');
	long w = 1;
	if (eq != NULL) {
		*eq = '\0';
		if (decimal_long(eq + 1, 1, 1000, &w) < 0) {
			conf_error(c, c->line,
				   "%s: weight \"%s\" is not 1..1000", k,
				   eq + 1);
			return -1;
		}
	}
	if (tok[0] == '\0' || tok[0] == '.' || strlen(tok) >= sizeof(z->name) ||
	    strspn(tok,
		   "abcdefghijklmnopqrstuvwxyz"
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != strlen(tok)) {
		conf_error(c, c->line, "%s: \"%s\" is not a DNS zone", k, tok);
		return -1;
	}
	snprintf(z->name, sizeof(z->name), "%s", tok);
	z->weight = (int)w;
	return 0;
}

/* ZONE[=WEIGHT], ... */
static int
svc_dnsbl(struct conf *c, void *o, const char *k, const char *v)
{
	struct service *s = o;
	struct edge_policy *p = &s->edge_pol;
	char buf[EDGE_DNSBL_MAX * (EDGE_ZONE_MAX + 8)], *save, *tok;
	s->smtp_only_line = c->line;
	p->ndnsbl = 0;
	if (strlen(v) >= sizeof(buf)) {
		conf_error(c, c->line, "%s: too long", k);
		return -1;
	}
	memcpy(buf, v, strlen(v) + 1);
	for (tok = strtok_r(buf, ", \t", &save); tok;
	     tok = strtok_r(NULL, ", \t", &save)) {
		if (p->ndnsbl == EDGE_DNSBL_MAX) {
			conf_error(c, c->line, "%s: more than %d zones", k,
				   EDGE_DNSBL_MAX);
			return -1;
		}
		if (svc_dnsbl_zone(c, k, tok, &p->dnsbl[p->ndnsbl]) < 0)
			return -1;
		p->ndnsbl++;
	}
	return 0;
}

static int
svc_dnsbl_threshold(struct conf *c, void *o, const char *k, const char *v)
{
	struct service *s = o;
	s->smtp_only_line = c->line;
	return conf_int(c, k, v, 1, 100000, &s->edge_pol.dnsbl_threshold);
}

static int
svc_dnsbl_timeout(struct conf *c, void *o, const char *k, const char *v)
{
	struct service *s = o;
	s->smtp_only_line = c->line;
	return conf_int(c, k, v, 10, 5000, &s->edge_pol.dnsbl_timeout_ms);
}

/* [pool NAME] */

static int
pool_balance(struct conf *c, void *o, const char *k, const char *v)
{
	struct pool *p = o;
	const struct lb_ops *lb = lb_find(v);
	if (lb == NULL) {
		conf_error(
		    c, c->line,
		    "%s: \"%s\" is not one of roundrobin, leastconn, maglev", k,
		    v);
		return -1;
	}
	pool_set_lb(p, lb); /* node lines may have come first */
	return 0;
}

static int
pool_check(struct conf *c, void *o, const char *k, const char *v)
{
	struct pool *p = o;
	if (check_type_parse(v, &p->probe.type) < 0) {
		conf_error(c, c->line, "%s: unknown check \"%s\"", k, v);
		return -1;
	}
	return 0;
}

static int
pool_check_user(struct conf *c, void *o, const char *k, const char *v)
{
	struct pool *p = o;
	return conf_string(c, k, v, p->probe.user, sizeof(p->probe.user));
}

static int
pool_check_password(struct conf *c, void *o, const char *k, const char *v)
{
	struct pool *p = o;
	return conf_string(c, k, v, p->probe.password,
			   sizeof(p->probe.password));
}

static int
pool_check_path(struct conf *c, void *o, const char *k, const char *v)
{
	struct pool *p = o;
	if (v[0] != '/' || strpbrk(v, " \r\n") != NULL) {
		conf_error(c, c->line,
			   "%s: \"%s\" must start with / and hold no spaces", k,
			   v);
		return -1;
	}
	return conf_string(c, k, v, p->probe.path, sizeof(p->probe.path));
}

static int
pool_check_ca(struct conf *c, void *o, const char *k, const char *v)
{
	struct pool *p = o;
	if (access(v, R_OK) < 0) {
		conf_error(c, c->line, "%s: cannot read \"%s\": %s", k, v,
			   strerror(errno));
		return -1;
	}
	return conf_string(c, k, v, p->probe.ca_file, sizeof(p->probe.ca_file));
}

static int
pool_check_interval(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 10, 3600000,
			&((struct pool *)o)->check_interval_ms);
}

static int
pool_check_timeout(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 10, 600000,
			&((struct pool *)o)->probe.timeout_ms);
}

static int
pool_check_cert_days(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 0, 3650, &((struct pool *)o)->probe.cert_days);
}

static int
pool_rise(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 1, 100, &((struct pool *)o)->rise);
}

static int
pool_fall(struct conf *c, void *o, const char *k, const char *v)
{
	return conf_int(c, k, v, 1, 100, &((struct pool *)o)->fall);
}

static int
pool_check_proxy(struct conf *c, void *o, const char *k, const char *v)
{
	static const char *const names[] = {"auto", "off", "v1", "v2"};
	int i;
	if (conf_choice(c, k, v, names, 4, &i) < 0)
		return -1;
	((struct pool *)o)->check_proxy = i - 1; /* auto: -1 */
	return 0;
}

static int
pool_node_line(struct conf *c, void *o, const char *k, const char *v)
{
	struct pool *p = o;
	char why[160];
	(void)k;
	struct node *n = config_node_parse(v, HEALTH_UP, why, sizeof(why));
	if (n == NULL) {
		conf_error(c, c->line, "node: %s", why);
		return -1;
	}
	if (pool_node(p, n->name) != NULL) {
		conf_error(c, c->line, "node: \"%s\" already in pool %s",
			   n->name, p->name);
		node_unref(n);
		return -1;
	}
	n->from_config = true;
	if (pool_insert(p, n) < 0) {
		conf_error(c, c->line, "node: out of memory");
		node_unref(n);
		return -1;
	}
	return 0;
}

static const struct conf_key lbd_keys[] = {
    {"control", lbd_control},
    {"control_mode", lbd_control_mode},
    {"state_file", lbd_state_file},
    {"redis", lbd_redis},
    {"redis_sentinels", lbd_redis_sentinels},
    {"redis_master", lbd_redis_master},
    {"redis_password", lbd_redis_password},
    {"name", lbd_name},
    {"workers", lbd_workers},
    {"metrics", lbd_metrics},
    {"log_level", lbd_log_level},
    {"grace_s", lbd_grace_s},
    {"io_collect_us", lbd_io_collect_us},
    {"io_engine", lbd_io_engine},
    {"io_uring_buffers", lbd_io_uring_buffers},
    {"resolver", lbd_resolver},
    {NULL, NULL},
};

static const struct conf_key service_keys[] = {
    {"listen", svc_listen},
    {"protocol", svc_protocol},
    {"pool", svc_pool},
    {"proxy_protocol", svc_proxy_protocol},
    {"connect_timeout_ms", svc_connect_timeout},
    {"idle_timeout_s", svc_idle_timeout},
    {"max_connections", svc_max_connections},
    {"retries", svc_retries},
    {"max_conn_per_source", svc_max_conn_per_source},
    {"rate_per_source", svc_rate_per_source},
    {"source_table_size", svc_source_table_size},
    {"allow", svc_allow},
    {"deny", svc_deny},
    {"pregreet", svc_pregreet},
    {"greet_delay_ms", svc_greet_delay},
    {"dnsbl", svc_dnsbl},
    {"dnsbl_threshold", svc_dnsbl_threshold},
    {"dnsbl_timeout_ms", svc_dnsbl_timeout},
    {NULL, NULL},
};

static const struct conf_key pool_keys[] = {
    {"balance", pool_balance},
    {"check", pool_check},
    {"check_user", pool_check_user},
    {"check_password", pool_check_password},
    {"check_path", pool_check_path},
    {"check_ca", pool_check_ca},
    {"check_cert_days", pool_check_cert_days},
    {"check_interval_ms", pool_check_interval},
    {"check_timeout_ms", pool_check_timeout},
    {"rise", pool_rise},
    {"fall", pool_fall},
    {"check_proxy", pool_check_proxy},
    {"node", pool_node_line},
    {NULL, NULL},
};

static struct service *
conf_service_new(struct conf *c, const char *name)
{
	struct service *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->line = c->section_line;
	s->protocol = PROTO_TCP;
	atomic_init(&s->connect_timeout_ms, 1000);
	atomic_init(&s->idle_timeout_s, 1800);
	atomic_init(&s->max_connections, 0);
	atomic_init(&s->retries, 2);
	edge_policy_init(&s->edge_pol);
	struct service **tail = &((struct lbd_config *)c->user)->services;
	while (*tail)
		tail = &(*tail)->next;
	*tail = s;
	return s;
}

static struct pool *
conf_pool_new(struct conf *c, const char *name)
{
	struct pool *p = pool_new(name);
	if (p == NULL)
		return NULL;
	p->line = c->section_line;
	struct pool **tail = &((struct lbd_config *)c->user)->pools;
	while (*tail)
		tail = &(*tail)->next;
	*tail = p;
	return p;
}

/* A section header: [lbd], [service NAME] or [pool NAME], each once. */
static struct conf_section
conf_open_section(struct conf *c, const char *section)
{
	struct lbd_config *cfg = c->user;
	int line = c->section_line;
	struct conf_section none = {NULL, NULL, NULL};

	if (strcmp(section, "lbd") == 0)
		return (struct conf_section){&cfg->set, lbd_keys, "[lbd]"};
	const char *name = strchr(section, ' ');
	int is_service = strncmp(section, "service ", 8) == 0;
	int is_pool = strncmp(section, "pool ", 5) == 0;
	if ((!is_service && !is_pool) || name == NULL) {
		conf_error(
		    c, line,
		    "unknown section [%s] (expected [lbd], [service NAME] or "
		    "[pool NAME])",
		    section);
		return none;
	}
	name += strspn(name, " ");
	if (!conf_name_ok(name, LBD_NAME_MAX)) {
		conf_error(
		    c, line,
		    "[%s]: bad name \"%s\" (letters, digits, - _ . and at most "
		    "%d bytes)",
		    section, name, LBD_NAME_MAX - 1);
		return none;
	}
	if (is_service) {
		if (config_service(cfg, name)) {
			conf_error(c, line, "service %s defined twice", name);
			return none;
		}
		return (struct conf_section){conf_service_new(c, name),
					     service_keys, "[service]"};
	}
	if (config_pool(cfg, name)) {
		conf_error(c, line, "pool %s defined twice", name);
		return none;
	}
	return (struct conf_section){conf_pool_new(c, name), pool_keys,
				     "[pool]"};
}

static void
conf_validate(struct conf *c)
{
	struct lbd_config *cfg = c->user;
	if (cfg->set.control[0] == '\0')
		conf_error(c, 1, "[lbd]: control = PATH is required");
	if ((cfg->set.redis_sentinels[0] == '\0') !=
	    (cfg->set.redis_master[0] == '\0'))
		conf_error(
		    c, 1,
		    "[lbd]: redis_sentinels and redis_master go together");
	for (struct service *s = cfg->services; s; s = s->next) {
		if (s->listen.len == 0)
			conf_error(c, s->line, "service %s: listen is required",
				   s->name);
		if (s->smtp_only_line && s->protocol != PROTO_SMTP)
			conf_error(c, s->smtp_only_line,
				   "service %s: pregreet, greet_delay_ms and "
				   "dnsbl are for protocol = smtp",
				   s->name);
		if (s->pool_name[0] == '\0')
			conf_error(c, s->line, "service %s: pool is required",
				   s->name);
		else {
			/* s->pool is _Atomic: clang refuses the assignment
			 * as an expression, so store then test. */
			struct pool *p = config_pool(cfg, s->pool_name);
			s->pool = p;
			if (p == NULL)
				conf_error(
				    c, s->pool_line,
				    "service %s: pool \"%s\" does not exist",
				    s->name, s->pool_name);
		}
		for (struct service *t = cfg->services; t != s; t = t->next)
			if (s->listen.len && addr_equal(&s->listen, &t->listen))
				conf_error(
				    c, s->listen_line,
				    "service %s: listen %s already used by "
				    "service %s (line %d)",
				    s->name, s->listenstr, t->name,
				    t->listen_line);
	}
	/* Probes speak PROXY as the pool's services do (check_proxy auto);
	 * services that share a pool reach the same node ports, so they
	 * must agree. */
	for (struct pool *p = cfg->pools; p; p = p->next) {
		const struct service *first = NULL;
		for (struct service *s = cfg->services; s; s = s->next) {
			if (s->pool != p)
				continue;
			if (first == NULL)
				first = s;
			else if (atomic_load(&s->proxy_protocol) !=
				 atomic_load(&first->proxy_protocol))
				conf_error(
				    c, s->line,
				    "service %s: proxy_protocol differs from "
				    "service %s's, and both use pool %s",
				    s->name, first->name, p->name);
		}
		if (p->check_proxy >= 0)
			p->probe.proxy_version = p->check_proxy;
		else if (first)
			p->probe.proxy_version =
			    atomic_load(&first->proxy_protocol);
	}
	if (cfg->set.has_metrics)
		for (struct service *s = cfg->services; s; s = s->next)
			if (addr_equal(&s->listen, &cfg->set.metrics))
				conf_error(
				    c, s->listen_line,
				    "service %s: listen %s is the metrics "
				    "address",
				    s->name, s->listenstr);
	for (struct pool *p = cfg->pools; p; p = p->next)
		if ((p->probe.type == CHECK_NONE ||
		     p->probe.type == CHECK_TCP) &&
		    p->probe.user[0])
			conf_error(
			    c, p->line,
			    "pool %s: check_user needs check = imap or pop3 "
			    "(or their TLS forms)",
			    p->name);
}

struct lbd_config *
config_load(const char *path, char *err, size_t errlen)
{
	struct lbd_config *cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	snprintf(cfg->path, sizeof(cfg->path), "%s", path);
	cfg->set.control_mode = 0660;
	cfg->set.workers = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (cfg->set.workers < 1 || cfg->set.workers > LBD_MAX_WORKERS)
		cfg->set.workers = 1;
	cfg->set.log_level = LOG_LVL_INFO;
	cfg->set.grace_s = 30;
	cfg->set.io_collect_us = 100;
	cfg->set.io_uring = true;
	cfg->set.io_uring_buffers = 256;
	if (gethostname(cfg->set.name, sizeof(cfg->set.name) - 1) < 0 ||
	    cfg->set.name[0] == '\0')
		snprintf(cfg->set.name, sizeof(cfg->set.name), "lbd");

	struct conf c = {
	    .path = path, .open_section = conf_open_section, .user = cfg};
	if (conf_parse(&c, err, errlen) == 0)
		conf_validate(&c);
	if (c.nerrors > 0) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

void
config_free(struct lbd_config *c)
{
	if (c == NULL)
		return;
	while (c->services) {
		struct service *s = c->services;
		c->services = s->next;
		edge_free(s->edge);
		free(s);
	}
	while (c->pools) {
		struct pool *p = c->pools;
		c->pools = p->next;
		pool_free(p);
	}
	free(c);
}

struct pool *
config_pool(struct lbd_config *c, const char *name)
{
	for (struct pool *p = c->pools; p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

struct service *
config_service(struct lbd_config *c, const char *name)
{
	for (struct service *s = c->services; s; s = s->next)
		if (strcmp(s->name, name) == 0 && !atomic_load(&s->closing))
			return s;
	return NULL;
}

struct node *
config_node_parse(const char *spec, enum node_health health, char *why,
		  size_t whylen)
{
	char buf[512], *save, *tok;
	char name[NODE_NAME_MAX] = "";
	struct addr a;
	const char *awhy;
	int weight = 1, maxconn = 0, have_addr = 0;

	if (strlen(spec) >= sizeof(buf)) {
		snprintf(why, whylen, "too long");
		return NULL;
	}
	memcpy(buf, spec, strlen(spec) + 1);
	for (tok = strtok_r(buf, " \t", &save); tok;
	     tok = strtok_r(NULL, " \t", &save)) {
		if (name[0] == '\0') {
			if (!conf_name_ok(tok, sizeof(name))) {
				snprintf(why, whylen, "bad node name \"%.64s\"",
					 tok);
				return NULL;
			}
			snprintf(name, sizeof(name), "%s", tok);
		} else if (!have_addr) {
			if (addr_parse(tok, &a, &awhy) < 0) {
				snprintf(why, whylen,
					 "bad address \"%.64s\": %s", tok,
					 awhy);
				return NULL;
			}
			have_addr = 1;
		} else if (strncmp(tok, "weight=", 7) == 0 ||
			   strncmp(tok, "maxconn=", 8) == 0) {
			int is_weight = tok[0] == 'w';
			const char *v = strchr(tok, '=') + 1;
			long n, max = is_weight ? NODE_WEIGHT_MAX
						: NODE_MAXCONN_MAX;
			if (decimal_long(v, 0, max, &n) < 0) {
				snprintf(
				    why, whylen, "bad %s \"%.32s\" (0..%ld)",
				    is_weight ? "weight" : "maxconn", v, max);
				return NULL;
			}
			if (is_weight)
				weight = (int)n;
			else
				maxconn = (int)n;
		} else {
			snprintf(why, whylen,
				 "unexpected \"%.64s\" (expected weight=N or "
				 "maxconn=N)",
				 tok);
			return NULL;
		}
	}
	if (!have_addr) {
		snprintf(why, whylen,
			 "expected NAME HOST:PORT [weight=N] "
			 "[maxconn=N]");
		return NULL;
	}
	struct node *n = node_new(name, &a, weight, maxconn, health);
	if (n == NULL)
		snprintf(why, whylen, "out of memory");
	return n;
}
