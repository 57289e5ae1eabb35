/* Worker threads: each runs its own event loop (wloop.h) with its own
 * SO_REUSEPORT listener per service, accepts, and relays its connections
 * (relay.c). */
#ifndef LBD_WORKER_H
#define LBD_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "lbd.h"
#include "wloop.h"

struct conn;
struct dnsbl;
struct relay_ring;

struct listener {
	struct service *svc;
	struct worker *w;
	struct wio io;
	struct wtimer pause; /* accept() out of descriptors or memory: a rest */
	bool told;	     /* this shortage is logged */
	struct listener *next;
};

struct worker {
	struct lbd *l;
	int id;
	pthread_t thread;
	struct wloop loop;
	_Atomic int cmd; /* WORKER_* bits for the next wake */
	struct listener *listeners;
	struct conn *conns;	 /* live connections (doubly linked) */
	struct conn *free_conns; /* spare connection structs */
	size_t nfree_conns;
	void **free_bufs; /* spare relay buffers (a stack) */
	size_t nfree_bufs;
	int (*free_pipes)[2]; /* spare empty pipes */
	size_t nfree_pipes;
	int splice_ok;		 /* 0 once splice() proved unusable here */
	struct relay_ring *ring; /* io_engine = uring: relay_uring.c's */
	struct dnsbl *dnsbl;	 /* dnsbl.h: made at the first lookup */
	bool dnsbl_failed;	 /* it could not be made: no lookups */
};

enum {
	WORKER_SYNC = 1,	/* start or stop listeners to match services */
	WORKER_STOP_ACCEPT = 2, /* close every listener */
	WORKER_EXIT = 4,	/* close every connection and return */
};

/* Opens svc's listeners (one per worker). Returns 0, or -1 with the
 * reason in err. */
int service_open(struct lbd *l, struct service *svc, char *err, size_t len);

int workers_start(struct lbd *l);
/* Posts cmd to every worker. */
void workers_post(struct lbd *l, int cmd);
void workers_join(struct lbd *l);
/* Connections open in every worker. */
long workers_active(struct lbd *l);

/* relay.c: takes over an accepted client socket. */
void relay_accept(struct worker *w, struct service *svc, int fd,
		  const struct sockaddr *peer, socklen_t peerlen);
/* Closes every connection of w (a stop after the grace period). */
void relay_close_all(struct worker *w);
/* Frees w's spare buffers, pipes and connection structs. */
void relay_free_pools(struct worker *w);

#endif
