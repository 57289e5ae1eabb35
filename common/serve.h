/* Accept-and-serve for small servers on a loop: lbd's control socket
 * (balancer/ctl_server.c) and the Prometheus endpoints of lbd and mailnode
 * (metrics_http.c). serve.c owns
 * the listening socket's accept loop and a bounded list of clients, each a
 * small state machine; the protocol (struct serve_proto) only says when a
 * request is whole and what the answer is.
 *
 *   READING    bytes go to c->in (bounded) until the protocol answers;
 *              read_s to send a whole request
 *   WRITING    c->out goes out without blocking; write_s to read it
 *   LINGER     answer sent, write side shut, input drained (linger_s,
 *              linger_max bytes) so that unread input does not turn the
 *              close into a reset that would destroy the answer
 *   STREAMING  answered and kept: serve_push_all() queues to it, input
 *              is drained, EOF ends it; one that falls out_max behind is
 *              dropped
 *
 * The loop's thread only. */
#ifndef MS_SERVE_H
#define MS_SERVE_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

enum serve_state {
	SERVE_READING,
	SERVE_WRITING,
	SERVE_LINGER,
	SERVE_STREAMING
};

struct serve;
struct serve_client;

struct serve_proto {
	const char *name; /* in logs: "control", "metrics" */
	int max_clients;  /* more are refused */
	const char *busy; /* said to a refused client; NULL: just closed */
	size_t in_max;	  /* request bytes kept in c->in */
	size_t out_max;	  /* cap of an answer (c->out) */
	double read_s, write_s, linger_s;
	size_t linger_max; /* bytes drained after the answer */
	/* Bytes arrived in c->in (c->inlen of them, NUL-terminated), or the
	 * client shut its side (eof; nothing new). It answers (fill c->out,
	 * serve_answer), streams (serve_stream), closes (serve_close) or
	 * returns to wait for more: then, with c->inlen == in_max, nothing
	 * more can come. */
	void (*input)(struct serve_client *c, bool eof);
	/* read_s ran out in READING: answer, or NULL to close. */
	void (*timeout)(struct serve_client *c);
};

struct serve_client {
	struct serve *srv;
	void *arg; /* the server's, from serve_start() */
	int fd;
	enum serve_state state;
	struct strbuf out; /* the answer, then the stream */
	size_t inlen;
	size_t drained;
	ev_io rio, wio;
	ev_timer timer;
	struct serve_client *prev, *next;
	char in[]; /* in_max + 1 */
};

/* Serves the listening socket fd (non-blocking, listen() done; serve
 * takes it, also on failure) with proto, which must outlive the server.
 * Returns the server, or NULL (logged). */
struct serve *serve_start(struct ev_loop *loop, int fd,
			  const struct serve_proto *proto, void *arg);
/* Closes every client and the listening socket. NULL is fine. */
void serve_stop(struct serve *srv);

/* Sends c->out, then lingers and closes. */
void serve_answer(struct serve_client *c);
/* Keeps c open for serve_push_all(), c->out capped at out_max. */
void serve_stream(struct serve_client *c, size_t out_max);
void serve_close(struct serve_client *c);
/* Queues len bytes to every streaming client; drops (logged) those that
 * cannot take them. */
void serve_push_all(struct serve *srv, const char *buf, size_t len);

#endif
