/* mailnode's INI configuration: [node] and [listen]. */
#ifndef NODE_CONFIG_H
#define NODE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "../../common/addr.h"
#include "../../common/redis.h"
#include "../../common/stream.h"

enum node_role {
	ROLE_SMTP,	 /* MX: mail for local domains, no AUTH */
	ROLE_SUBMISSION, /* AUTH required */
	ROLE_SMTPS,	 /* submission in implicit TLS */
	ROLE_IMAP,
	ROLE_IMAPS,
	ROLE_POP3,
	ROLE_POP3S,
	ROLE_HTTP,
	ROLE_COUNT
};

/* What a failed login costs (node/auth/auth_login.h). */
struct login_limits {
	int window_s;	  /* failures counted over this window */
	int fail_limit;	  /* from one address: then refused (0: never) */
	int delay_ms;	  /* the wait after a first failure, doubling */
	int delay_max_ms; /* the longest wait */
};

/* [node] roles: what a node does. A listener belongs to one role (smtp:
 * mx; submission, smtps: submission; imap(s), pop3(s): access; http:
 * web); mta runs the queue runners and has no listener. */
enum node_duty {
	DUTY_MX = 1 << 0,
	DUTY_SUBMISSION = 1 << 1,
	DUTY_ACCESS = 1 << 2,
	DUTY_WEB = 1 << 3,
	DUTY_MTA = 1 << 4,
	DUTY_ALL = (1 << 5) - 1,
};

/* Outbound TLS (smtp_tls). */
enum node_smtp_tls { SMTP_TLS_MAY, SMTP_TLS_ENCRYPT, SMTP_TLS_VERIFY };

/* A host and port of the outbound side: a name or a numeric address. */
struct node_hostport {
	char host[256]; /* empty: not set */
	int port;
};

/* [route] DOMAIN = HOST:PORT */
#define NODE_ROUTES_MAX 64
struct node_route {
	char domain[256]; /* lowercase */
	struct node_hostport to;
};

/* [node] milters: a milter's socket, "unix:PATH" or "inet:HOST:PORT". */
#define NODE_MILTERS_MAX 8
struct node_milter {
	char str[256]; /* as written, for the log */
	struct addr addr;
};

enum node_milter_default {
	MILTER_DEFAULT_TEMPFAIL, /* 451 while a milter is away */
	MILTER_DEFAULT_ACCEPT,	 /* go on without it */
};

struct node_listen {
	bool on;
	int line;
	struct addr addr;
	char str[ADDR_STRLEN];
};

struct node_config {
	char path[256];
	char name[64];
	char hostname[256];
	bool has_redis;
	struct redis_opts redis;
	char store[1024];
	char spool[1024];
	char tls_cert[1024];
	char tls_key[1024];
	long max_message_size;
	/* The buffer bounds derived from max_message_size, computed once by
	 * node_config_load: every protocol sizes its buffers from these. */
	size_t msg_max;		/* a message as received or stored, in bytes */
	size_t msg_max_sent;	/* the same as sent: bare LFs made CRLF and
				 * lines dot-stuffed, at most twice msg_max */
	long imap_header_cache; /* bytes; 0: no header cache */
	int max_recipients;
	bool proxy_protocol;
	struct netlist proxy_trusted;
	bool allow_plaintext_auth;
	int log_level;
	bool log_debug; /* mailnode -d: debug whatever log_level says */
	int spool_retry_s;
	int grace_s;
	int auth_threads;    /* password hashing threads; 0: one per CPU */
	int login_timeout_s; /* IMAP, POP3, submission: log in by then */
	int http_request_timeout_s; /* a whole HTTP request, first byte on */
	int max_connections;	    /* open client connections; 0: none */
	int max_connections_per_source; /* per client address; 0: no cap */
	struct login_limits login;
	struct node_listen listen[ROLE_COUNT];
	struct node_listen metrics; /* [listen] metrics: GET /metrics; off */

	/* roles and the outbound queue */
	unsigned roles; /* enum node_duty bits; default DUTY_ALL */
	int roles_line;
	char queue[1024]; /* shared queue directory; default STORE/.queue */
	bool has_resolver;
	struct addr resolver; /* DNS server; else /etc/resolv.conf */
	char resolver_str[ADDR_STRLEN];
	struct node_hostport relayhost;
	char relayhost_user[256]; /* AUTH PLAIN to the relayhost, in TLS */
	char relayhost_password_file[1024];
	enum node_smtp_tls smtp_tls;
	char smtp_tls_ca[1024]; /* trust anchors for verify; "": system's */
	int queue_retry_min_s, queue_retry_max_s, queue_lifetime_s;
	int delay_warning_s, queue_concurrency, queue_per_destination;
	int queue_lease_s;
	int mx_port;
	int smtp_timeout_s; /* caps every step of an outbound dialogue */
	struct netlist relay_networks; /* may relay on the MX listener */

	/* milters (node/smtp/milter.h): in order, MX mail (and submission's
	 * with milter_submission) */
	struct node_milter milters[NODE_MILTERS_MAX];
	int nmilters;
	enum node_milter_default milter_default_action;
	int milter_timeout_s; /* each step: connect, every answer */
	bool milter_submission;
	bool spam_to_junk; /* a milter's spam mark files into Junk */
	struct node_route routes[NODE_ROUTES_MAX];
	int nroutes;
};

/* A cluster-wide setting (`mailctl config set KEY VALUE`, kept in Redis
 * under SCHEMA_SETTINGS): one of the [node] keys that must agree on every
 * node, or "route:DOMAIN" for a [route]. Parsed by the INI's own setters,
 * so the values and bounds are the INI's. */
struct node_setting {
	char *key;
	char *value;
};

#define NODE_SETTINGS_MAX 256 /* cluster settings at most */
#define NODE_SETTING_ROUTE "route:"

/* Reads and validates path over the cluster settings (n of them, NULL if
 * none): a key the INI sets wins over the cluster's value for this node.
 * Returns the config, or NULL with every problem as "path:line: what is
 * wrong" lines in err (a bad cluster setting as "cluster setting: ..."). */
struct node_config *node_config_load(const char *path,
				     const struct node_setting *settings,
				     size_t n, char *err, size_t errlen);
/* Checks one cluster setting: key may be set cluster-wide and value is
 * what the INI would take. Returns 0, or -1 with why in err. */
int node_setting_check(const char *key, const char *value, char *err,
		       size_t errlen);
/* The keys that may be set cluster-wide, comma-separated (for help). */
const char *node_setting_keys(void);
const char *node_role_name(enum node_role r);
/* The role (enum node_duty bit) a listener belongs to. */
unsigned node_listener_duty(enum node_role r);
/* "HOST:PORT" or "[V6]:PORT" into hp. Returns 0 or -1. */
int node_hostport_parse(const char *s, struct node_hostport *hp);
/* The static route of domain (case-insensitive), or NULL. */
const struct node_hostport *node_route_find(const struct node_config *cfg,
					    const char *domain);
/* True for the roles that speak TLS from the first byte. */
bool node_role_implicit_tls(enum node_role r);

#endif
