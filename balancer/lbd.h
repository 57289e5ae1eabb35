/* lbd's process state: services (listeners), pools (nodes and their
 * balancing), and the settings of [lbd]. One struct lbd per process; the
 * main thread owns it, worker threads read services and pools through the
 * pools' locks and the atomics of node.h and of struct service. */
#ifndef LBD_LBD_H
#define LBD_LBD_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "../common/addr.h"
#include "../health/health.h"
#include "edge.h"
#include "event.h"
#include "lb.h"
#include "lbd_limits.h"
#include "node.h"

#define LBD_MAX_WORKERS 64

enum service_proto {
	PROTO_TCP,
	PROTO_SMTP,
	PROTO_IMAP,
	PROTO_POP3,
	PROTO_HTTP
};

struct pool {
	char name[LBD_NAME_MAX];
	int line; /* where [pool NAME] starts in the config */
	const struct lb_ops *lb;
	struct probe_spec probe; /* probe.type CHECK_NONE: always up */
	int check_interval_ms;
	int rise, fall;
	int check_proxy; /* -1 auto: as the pool's services send; 0, 1, 2 */

	pthread_mutex_t lock; /* guards nodes, nnodes and lbst */
	struct node **nodes;
	size_t nnodes, cap;
	struct lb_state *lbst;
	_Atomic unsigned long rr_hint; /* spare counter for algorithms */

	struct pool *next;
};

struct service {
	char name[LBD_NAME_MAX];
	int line, listen_line, pool_line; /* for config errors */
	struct addr listen;
	char listenstr[ADDR_STRLEN];
	enum service_proto protocol;
	char pool_name[LBD_NAME_MAX];
	struct pool *_Atomic pool;  /* a reload may point it elsewhere */
	_Atomic int proxy_protocol; /* 0 off, 1 v1, 2 v2 */
	int fds[LBD_MAX_WORKERS];   /* one SO_REUSEPORT listener per worker */

	/* settings a reload may change while workers read them */
	_Atomic int connect_timeout_ms;
	_Atomic int idle_timeout_s;
	_Atomic int max_connections;
	_Atomic int retries;

	_Atomic long active;
	_Atomic unsigned long total;
	_Atomic unsigned long refused; /* pool empty or over max_connections */

	/* edge protection (edge.h): the parsed keys, the runtime table (made
	 * by service_open, kept across reloads), refusals per reason */
	struct edge_policy edge_pol;
	int smtp_only_line; /* a pregreet/greet_delay_ms/dnsbl key, or 0 */
	struct edge *edge;
	_Atomic unsigned long edge_refused[EDGE_NREASONS];
	_Atomic unsigned long bytes_in, bytes_out;

	_Atomic bool closing; /* removed by a reload: listeners close */
	struct service *next;
};

struct lbd_settings {
	char control[108]; /* sun_path */
	int control_mode;  /* default 0660 */
	char state_file[256];
	char redis[128];
	char redis_sentinels[256]; /* HOST:PORT,...: find redis through them */
	char redis_master[128];	   /* the master's name at the sentinels */
	char redis_password[128];
	char name[LBD_NAME_MAX]; /* this balancer, in the shared state */
	int workers;
	struct addr metrics;
	bool has_metrics;
	char metrics_str[ADDR_STRLEN];
	int log_level;
	int grace_s;
	int io_collect_us;    /* workers gather events this long per poll */
	bool io_uring;	      /* io_engine = uring (the default), not epoll */
	int io_uring_buffers; /* per worker, RELAY_BUF bytes each */
	char resolver[ADDR_STRLEN]; /* DNSBL's DNS server; "": resolv.conf */
};

/* A parsed configuration: what config_load() returns. */
struct lbd_config {
	char path[256];
	struct lbd_settings set;
	struct service *services;
	struct pool *pools;
};

struct worker;
struct ctl_server;
struct metrics_http;
struct shared;
struct runtime_removed;

/* The process. */
struct lbd {
	struct ev_loop *loop; /* main thread: probes, control, metrics */
	struct lbd_config *cfg;
	char config_path[256];
	double started; /* ev_time() at start */
	struct worker *workers;
	int nworkers;
	struct ctl_server *ctl;
	struct metrics_http *metrics; /* metrics.c: the endpoint */
	struct checker *checker; /* checker.c's queue of traffic failures */
	ev_timer housekeeping; /* runtime.c, 1 s: maintenance ends, removals */
	struct runtime_removed *removed; /* runtime.c: config nodes removed */
	event_fn *subscribers[EVENT_SUBSCRIBERS_MAX]; /* event.h */
	int nsubscribers;
	struct shared *shared;	  /* shared.c: the state shared through Redis */
	pthread_mutex_t svc_lock; /* the service list, against worker syncs */
	ev_signal sigterm, sigint, sighup;
	ev_timer grace;
	double grace_end;
	bool stopping;
	/* Readiness (lbd.c): READY=1 once every configured node had its first
	 * probe verdict, or when ready_deadline fires first. */
	int first_probes; /* checker.c: first results still awaited */
	bool ready;
	ev_timer ready_deadline;
	/* handover.h: sockets taken from the predecessor while starting
	 * (`lbd -x`), else NULL; the stop after giving ours away */
	struct handover *taken;
	ev_timer handover_stop;
};

/* service.c */
const char *service_proto_name(enum service_proto p);
int service_proto_parse(const char *s, enum service_proto *out);
/* What a client of this protocol hears when no node can take it. */
const char *service_empty_reply(enum service_proto p);
/* What a client refused for reason r hears (edge.h), in buf; addr and
 * zone name a DNSBL listing. Returns its length (0: close without a word),
 * or -1 when it does not fit. */
#define SERVICE_REFUSAL_MAX 512
int service_refusal(enum service_proto p, enum edge_reason r, const char *addr,
		    const char *zone, char *buf, size_t len);

struct pool *pool_new(const char *name);
void pool_free(struct pool *p);
/* Appends a node (pool takes its reference) and rebuilds the balancing
 * state. Takes the pool lock. Returns 0, or -1 on allocation failure. */
int pool_insert(struct pool *p, struct node *n);
/* Unlinks n from the pool and drops the pool's reference. */
void pool_detach(struct pool *p, struct node *n);
/* Rebuilds the balancing state (after a weight change). */
void pool_rebuild(struct pool *p);
/* Main thread: the node named name, or NULL. No lock needed: only the
 * main thread changes the node list. */
struct node *pool_node(struct pool *p, const char *name);
/* Worker: a usable node not in skip[], with a reference taken, and its
 * active count raised; NULL when none. */
struct node *pool_pick(struct pool *p, uint32_t client_hash,
		       struct node *const *skip, size_t nskip);

/* Worker: gives back what pool_pick took (active count and reference). */
void pool_release(struct node *n);
/* Swaps the balancing algorithm (a reload changed `balance`). */
void pool_set_lb(struct pool *p, const struct lb_ops *lb);

struct pool *config_pool(struct lbd_config *c, const char *name);
struct service *config_service(struct lbd_config *c, const char *name);

/* lbd.c: a first probe result came (checker.c); the last one makes lbd
 * ready for systemd. */
void lbd_first_probe_done(struct lbd *l);

/* checker.c: probes each node of each pool on the main loop. */
int checker_init(struct lbd *l);
void checker_free(struct lbd *l);
/* Starts probing n (a new node, or one a reload kept). */
void checker_start_node(struct lbd *l, struct pool *p, struct node *n);
/* Stops n's probes (the node is being removed). */
void checker_stop_node(struct node *n);
/* A reload changed the pool's rise/fall: counters follow, verdicts stay. */
void checker_pool_changed(struct pool *p);

/* Any thread: a connect of real traffic to n failed (errno err); the
 * checker counts it as a probe failure on the main loop. */
void checker_report_connect_failure(struct lbd *l, struct pool *p,
				    struct node *n, int err);

#endif
