/* Edge protection of one service: the per-source table (concurrent
 * connections per address, new connections per window), the allow and
 * deny networks, and the SMTP-only settings a connection reads once at
 * accept (pregreet, greet delay, DNSBL zones).
 *
 * One table per service, shared by every worker thread under one mutex
 * (the SO_REUSEPORT listeners spread a source's connections over the
 * workers, so a per-worker count would let a source open workers times
 * max_conn_per_source). The mutex is held for one hash lookup per accept
 * and one per close; a service with no per-source setting never takes it.
 * The table holds at most source_table_size sources; the least recently
 * seen one is dropped first (a dropped source with connections still open
 * starts again from zero). A reload replaces the policy in place and keeps
 * the sources. */
#ifndef LBD_EDGE_H
#define LBD_EDGE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../common/addr.h"
#include "../common/stream.h" /* struct netlist */

/* Why a connection was refused; EDGE_OK: it was not. */
enum edge_reason {
	EDGE_OK,
	EDGE_DENY,     /* in deny */
	EDGE_CONN,     /* at max_conn_per_source */
	EDGE_RATE,     /* over rate_per_source */
	EDGE_PREGREET, /* SMTP: talked before the greeting */
	EDGE_DNSBL,    /* SMTP: listed at dnsbl_threshold or above */
	EDGE_NREASONS
};

#define EDGE_DNSBL_MAX 8
#define EDGE_ZONE_MAX 128

struct edge_zone {
	char name[EDGE_ZONE_MAX];
	int weight;
};

/* What the config says; a value copied whole on reload. */
struct edge_policy {
	int max_conn_per_source; /* 0: no cap */
	int rate_count;		 /* rate_per_source = COUNT/SECONDS; 0: off */
	int rate_window_s;
	long table_size; /* source_table_size */
	struct netlist allow, deny;
	bool pregreet;
	int greet_delay_ms;
	struct edge_zone dnsbl[EDGE_DNSBL_MAX];
	int ndnsbl;
	int dnsbl_threshold;
	int dnsbl_timeout_ms;
};

#define EDGE_TABLE_DEFAULT 100000
#define EDGE_TABLE_MAX 10000000

/* What a connection holds in the table, and what it must do next. */
struct edge_ticket {
	bool counted; /* one of its source's connections */
	bool allowed; /* in allow: no limit, no check */
	unsigned char key[ADDR_SOURCE_KEY];
	/* read at accept, under the lock (the policy may change after) */
	bool pregreet;
	int greet_delay_ms;
	bool dnsbl;
};

struct edge_src;

struct edge {
	pthread_mutex_t lock; /* guards everything below but active */
	struct edge_policy pol;
	_Atomic bool active; /* any setting: accept takes the lock */
	struct edge_src **bucket;
	size_t nbuckets;		      /* a power of two */
	struct edge_src *lru_head, *lru_tail; /* most recently seen first */
	long count;
	long dropped; /* sources dropped for the bound, since start */
};

/* Memory one source takes (the entry, its allocation, its bucket share). */
size_t edge_entry_bytes(void);

void edge_policy_init(struct edge_policy *p);
/* Returns NULL on out of memory. */
struct edge *edge_new(const struct edge_policy *p);
void edge_free(struct edge *e);
/* A reload: the new policy, the sources kept (the oldest dropped when
 * the table shrank). */
void edge_apply(struct edge *e, const struct edge_policy *p);

/* Any thread: a client from sa connected at time now (seconds). Fills t
 * and returns EDGE_OK, or the reason it is refused (then nothing is
 * counted and t needs no release). */
enum edge_reason edge_admit(struct edge *e, const struct sockaddr *sa,
			    double now, struct edge_ticket *t);
/* Any thread: the connection t is over. */
void edge_release(struct edge *e, struct edge_ticket *t);

/* Any thread: the DNSBL settings now (zones into zones[EDGE_DNSBL_MAX]).
 * Returns the number of zones. */
int edge_dnsbl_policy(struct edge *e, struct edge_zone *zones, int *threshold,
		      int *timeout_ms);

/* Sources in the table now (tests, status). */
long edge_sources(struct edge *e);

/* "deny", "max_conn_per_source", ...: the reason's name in status and
 * metrics. */
const char *edge_reason_name(enum edge_reason r);

#endif
