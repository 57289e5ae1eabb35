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
};

/* Reads and validates path. Returns the config, or NULL with every problem
 * as "path:line: what is wrong" lines in err. */
struct node_config *node_config_load(const char *path, char *err,
				     size_t errlen);
const char *node_role_name(enum node_role r);
/* True for the roles that speak TLS from the first byte. */
bool node_role_implicit_tls(enum node_role r);

#endif
