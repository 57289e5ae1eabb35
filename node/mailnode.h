/* mailnode's process state: one libev loop serving SMTP (MX and
 * submission) and HTTP, over the shared store, this node's spool, and the
 * shared config cached from Redis. */
#ifndef NODE_MAILNODE_H
#define NODE_MAILNODE_H

#include <ev.h>
#include <openssl/ssl.h>
#include <stdbool.h>

#include "auth/auth_login.h"
#include "auth/auth_pool.h"
#include "config/config.h"
#include "config/directory.h"
#include "store/spool.h"
#include "store/store.h"
#include "store/store_check.h"
#include "../common/connlimit.h"

struct imap_session;
struct queue;	     /* queue/queue.h */
struct queue_runner; /* queue/queue_runner.h */
struct queue_sync;   /* queue/queue_sync.h */
struct mailnode_metrics;

/* What the node counts for GET /metrics: bumped on the loop, one line
 * where it happens (through the inline helpers below), read only by the
 * metrics module (metrics/metrics.h), which the protocols never call. */
#define MAILNODE_LOGIN_RESULTS (AUTH_LOGIN_BUSY + 1)
enum mailnode_delivery {
	MAILNODE_STORED,  /* a message accepted by SMTP, into the store */
	MAILNODE_SPOOLED, /* into the spool: the store failed */
	MAILNODE_DELIVERIES
};
/* A message's result after the milters. */
enum mailnode_milter_result {
	MAILNODE_MILTER_ACCEPT,	  /* delivered as usual */
	MAILNODE_MILTER_JUNK,	  /* marked as spam: into Junk */
	MAILNODE_MILTER_REJECT,	  /* 5xx */
	MAILNODE_MILTER_TEMPFAIL, /* 4xx (a milter's, or one away) */
	MAILNODE_MILTER_DISCARD,  /* 250 and dropped */
	MAILNODE_MILTER_RESULTS
};
struct mailnode_counters {
	long sessions_open[ROLE_COUNT];
	unsigned long sessions[ROLE_COUNT]; /* started since the start */
	unsigned long logins[ROLE_COUNT][MAILNODE_LOGIN_RESULTS];
	unsigned long deliveries[MAILNODE_DELIVERIES];
	unsigned long smtp_rejections[2]; /* replies 4xx, 5xx */
	unsigned long milter_results[MAILNODE_MILTER_RESULTS];
	unsigned long milter_unavailable; /* milters away, timed out, broken */
};

struct mailnode_listener {
	int fd;
	ev_io io;
	enum node_role role;
	struct mailnode *mn;
};

struct mailnode {
	struct ev_loop *loop;
	struct node_config *cfg;
	SSL_CTX *tls; /* NULL: no certificate, no STARTTLS */
	struct redis *redis;
	struct directory *dir;
	struct auth_pool *auth;	  /* password checks, off the loop */
	struct auth_login *login; /* login attempts: limits, then auth */
	struct store store;
	struct store_check *store_check; /* /health's verdict on the store */
	struct connlimit *limit;	 /* max_connections(_per_source) */
	struct spool *spool;
	struct queue *queue;	       /* the shared outbound queue */
	struct queue_sync *queue_sync; /* its group commit, off the loop */
	struct queue_runner *runner;   /* mta role only; else NULL */
	struct mailnode_listener listeners[ROLE_COUNT];
	ev_signal sigterm, sigint;
	ev_signal sighup;	   /* mailnode_reload.h */
	uint64_t settings_version; /* of the cluster settings applied */
	ev_timer grace;
	double grace_end;
	bool stopping;
	ev_timer ready_wait; /* mailnode.c: READY=1 at the latest then */
	bool ready;	     /* READY=1 was sent */
	long sessions; /* open client sessions, all protocols */
	struct imap_session *imap_sessions;  /* imap.h: to wake on changes */
	struct imap_cache *imap_headers;     /* imap_cache.h; NULL: none */
	struct imap_listings *imap_listings; /* imap_listing.h; NULL: none */
	bool uid_lease_away; /* uid_lease.h: the outage is logged */
	struct mailnode_counters counters;
	struct mailnode_metrics *metrics; /* metrics/: NULL when off */
};

static inline void
mailnode_session_opened(struct mailnode *mn, enum node_role role)
{
	mn->sessions++;
	mn->counters.sessions_open[role]++;
	mn->counters.sessions[role]++;
}

static inline void
mailnode_session_closed(struct mailnode *mn, enum node_role role)
{
	mn->sessions--;
	mn->counters.sessions_open[role]--;
}

static inline void
mailnode_login_counted(struct mailnode *mn, enum node_role role,
		       enum auth_login_result res)
{
	if ((unsigned)res < MAILNODE_LOGIN_RESULTS)
		mn->counters.logins[role][res]++;
}

/* An SMTP reply as sent: 4xx and 5xx are rejections. */
static inline void
mailnode_smtp_replied(struct mailnode *mn, const char *reply)
{
	if (reply[0] == '4' || reply[0] == '5')
		mn->counters.smtp_rejections[reply[0] - '4']++;
}

/* Runs the node until SIGTERM/SIGINT; takes cfg. Returns the exit status:
 * 0, or 1 when it could not start. */
int mailnode_run(struct node_config *cfg);

#define NODE_OUTPUT_MAX (4 * 1024 * 1024)

/* A stream_opts for a client of role: line and output bounds, timeouts,
 * implicit TLS, PROXY trust and the connection caps from the config. Inline so
 * that the protocol libraries need nothing of mailnode.c. */
static inline struct stream_opts
mailnode_stream_opts(struct mailnode *mn, enum node_role role, size_t max_line,
		     double idle_timeout)
{
	struct stream_opts o = {
	    .max_line = max_line,
	    .max_output = NODE_OUTPUT_MAX,
	    .idle_timeout = idle_timeout,
	    .tls = node_role_implicit_tls(role) ? mn->tls : NULL,
	    .proxy_from =
		mn->cfg->proxy_protocol ? &mn->cfg->proxy_trusted : NULL,
	    .limit = mn->limit,
	};
	return o;
}

/* The protocol sessions: each takes over an accepted socket. */
void smtp_session_start(struct mailnode *mn, enum node_role role, int fd,
			const struct sockaddr *peer, socklen_t peerlen);
void http_session_start(struct mailnode *mn, int fd,
			const struct sockaddr *peer, socklen_t peerlen);
void pop3_session_start(struct mailnode *mn, enum node_role role, int fd,
			const struct sockaddr *peer, socklen_t peerlen);
void imap_session_start(struct mailnode *mn, enum node_role role, int fd,
			const struct sockaddr *peer, socklen_t peerlen);
/* Stopping: idle keep-alive HTTP sessions close at once, and IMAP
 * sessions between commands get BYE (one busy with a command, a login
 * hashing say, gets it as soon as that command is answered). */
void http_sessions_stop(void);
void imap_sessions_stop(struct mailnode *mn);

#endif
