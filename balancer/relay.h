/* The relay's insides, shared by its two paths: relay.c (readiness: the
 * worker's epoll set, and every connection held at the SMTP edge) and
 * relay_uring.c (completions: the worker's io_uring ring, for the plain
 * relays when io_engine = uring). Not for other modules: worker.h has
 * the relay's interface. */
#ifndef LBD_RELAY_H
#define LBD_RELAY_H

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dnsbl.h"
#include "worker.h"

#define RELAY_BUF 16384
/* and the pipe's size: the default fs.pipe-max-size, the most an
 * unprivileged process may ask for */
#define RELAY_SPLICE_CHUNK 1048576
#define RELAY_PUMP_ROUNDS 4
#define RELAY_MAX_TRIES 17 /* one try + at most 16 retries are tracked */
/* an answer without a node: read and drop what the client sends this
 * long, so the answer is not lost to a reset */
#define RELAY_LINGER_S 2.0

enum conn_state {
	CONN_CONNECTING, /* 0: what a cleared conn starts in */
	CONN_RELAYING,
	CONN_REPLYING,
	CONN_HOLDING
};

/* One direction: bytes read from one socket, pending for the other. */
struct half {
	int pipe[2]; /* -1: none held */
	size_t inpipe;
	char *buf; /* pending bytes buf[off..len); NULL: none held */
	size_t off, len;
	bool eof;  /* the reading side sent FIN */
	bool shut; /* FIN passed on to the writing side by shutdown() */
	bool bulk; /* a read filled the buffer: splice from now on */
	/* the ring's path: buffers received, queued for the other side */
	int head, tail;	      /* their ids, linked (relay_uring.c); -1: none */
	unsigned qoff;	      /* bytes of head sent */
	unsigned queued;      /* how many */
	bool armed;	      /* the multishot receive is on */
	bool paused;	      /* it was cancelled: too many buffers queued */
	bool sending;	      /* a send is on */
	bool pollin, pollout; /* bulk: a poll of the socket is on */
};

struct conn {
	struct worker *w;
	struct service *svc;
	struct pool *pool;
	struct node *node;
	enum conn_state state;
	int cfd, sfd;
	struct wio cio, sio;
	uint32_t cwant, swant; /* EPOLLIN, EPOLLOUT: what each side waits for */
	struct wtimer timer;
	double last;	  /* last I/O (monotonic), for the idle timeout */
	struct half up;	  /* client to node */
	struct half down; /* node to client */
	struct node *tried[RELAY_MAX_TRIES];
	int ntried;
	int node_err;	   /* errno of the last failed call on sfd, or 0 */
	bool node_written; /* a write to sfd moved bytes */
	bool node_nodelay; /* TCP_NODELAY is set on sfd */
	bool pregreet; /* SMTP pregreet: no byte relayed to the client yet */
	bool fin_hold; /* a FIN seen with the last bytes: pass it on a turn
			  later */
	/* the ring's path (relay_uring.c) */
	bool ur;	/* on it: no wio, completions instead */
	bool failing;	/* its requests are being cancelled */
	bool done;	/* its sockets are closed: let go once nothing is on */
	bool timed_out; /* the connect was cancelled by its timer */
	int inflight;	/* requests whose last completion has not come */
	uint32_t hash;
	struct edge_ticket edge; /* its place in the service's source table */
	struct dnsbl_query *dq;	 /* HOLDING: the DNSBL lookups pending */
	int holds;		 /* HOLDING: the greet delay, the lookups */
	struct sockaddr_storage peer;
	struct conn *prev, *next;
};

/* relay.c, for both paths */
char *relay_buf_get(struct worker *w);
void relay_buf_put(struct worker *w, struct half *h);
int relay_pipe_get(struct worker *w, struct half *h);
void relay_pipe_put(struct worker *w, struct half *h);
void relay_count(struct conn *c, struct half *h, size_t n);
void relay_established(struct conn *c);
/* Picks the next node not tried yet and opens a socket for it (c->node,
 * c->sfd). Returns false when no node (more) may take the client. */
bool relay_pick(struct conn *c);
/* A connect to c->node failed (err): counted against the node, which c
 * lets go of; c->sfd must be closed. */
void relay_node_failed(struct conn *c, int err);
/* The answer when no node can take the client, counted. */
const char *relay_unavailable(struct conn *c);
/* Lets go of what c holds but its sockets, and of c. */
void relay_release(struct conn *c);
/* Reads and drops what fd has, at most 16 reads a call. Returns 0 once
 * it is drained, 1 while more may be there, -1 once the peer closed or
 * failed. */
int relay_drop(int fd);
/* Ends c, on either path. */
void relay_end(struct conn *c);
/* The linger after an answer with no node is over: ends the connection. */
void relay_linger_cb(struct wloop *loop, struct wtimer *t);

/* Before a write to fd. Accepted sockets inherit TCP_NODELAY from the
 * listener; the node's socket gets it just before its second write.
 * Linux's Nagle (Minshall's form) holds a small segment back only while an
 * earlier small one is unacknowledged, so a connection's first write never
 * waits for it, and a connection with one request (W1) saves the call. */
static inline void
relay_nodelay(struct conn *c, int fd)
{
	if (fd == c->sfd && c->node_written && !c->node_nodelay) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->node_nodelay = true;
	}
}

/* relay_uring.c */
/* Relays c (accepted, admitted, its PROXY header in c->up) on the ring. */
void ur_start(struct conn *c);
/* Ends c: cancels its requests; it is let go once they have completed. */
void ur_fail(struct conn *c);
/* The worker stops: closes c's sockets and lets go of it now (the ring
 * is closed next, which ends its requests). */
void ur_abort(struct conn *c);
/* The loop's completions of the relay's requests (wloop.h's on_cqe). */
bool ur_on_cqe(struct wloop *loop, const struct io_uring_cqe *cqe);
/* Opens the worker's ring and its buffers; false: it stays on epoll. */
bool ur_open(struct worker *w);
/* After wloop_ring_close(): frees the buffers. */
void ur_close(struct worker *w);

#endif
