/* The milter client: hands one received message to the milters of
 * `[node] milters` in order (rspamd, clamav-milter, ...), speaking the
 * Sendmail milter protocol version 6 as Postfix does (milter_proto.h), on
 * the event loop: non-blocking sockets, one connection per milter per
 * message, every step (connect, each answer, stalled output) bounded by
 * milter_timeout_s.
 *
 * The whole conversation runs once the message is in (after the client's
 * final dot, before the node answers it): connect, helo, envelope,
 * headers, body in chunks, end of message. So a verdict given at an
 * earlier step (a recipient refused at RCPT, say) applies to the whole
 * message, answered at end of data. Header edits (add, insert, change,
 * delete) are applied to the message's header section as they come, a
 * replaced body is written aside, and the next milter sees both. A milter that
 * cannot be reached, times out or breaks the protocol gets
 * milter_default_action: tempfail ends the run with a 451; accept goes on
 * without it. */
#ifndef NODE_MILTER_H
#define NODE_MILTER_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../config/config.h"
#include "milter_headers.h"

/* What the milters are told of one message; the caller keeps it (and what
 * it points to) alive until the run ends or is cancelled. */
struct milter_message {
	const char *queue_id;	 /* macro i */
	const char *hostname;	 /* j */
	const char *daemon;	 /* {daemon_name}: the listener's role */
	const char *client_addr; /* {client_addr} */
	const char *client_name; /* {client_name}: "unknown" (no lookups) */
	char family;		 /* '4' or '6' */
	uint16_t client_port;
	const char *helo;
	const char *auth_user; /* {auth_authen}; "" when not logged in */
	const char *tls;       /* {tls_version}; "" without TLS */
	const char *sender;
	const char *const *rcpts;
	size_t nrcpts;
	int fd; /* the message, size bytes, CRLF; read with pread */
	size_t size;
	struct milter_headers *headers; /* read from fd; the edits land here */

	/* SMFIR_REPLBODY: body_file(body_arg) gives an empty file for the
	 * new body (or -1 with errno); the run writes it (line ends made
	 * CRLF, at most body_max bytes) into body_fd, body_len bytes, which
	 * the next milters see instead. body_fd starts at -1; the caller
	 * closes it. */
	int (*body_file)(void *arg);
	void *body_arg;
	size_t body_max;
	int body_fd;
	size_t body_len;
};

enum milter_verdict {
	MILTER_V_ACCEPT,
	MILTER_V_REJECT,
	MILTER_V_TEMPFAIL,
	MILTER_V_DISCARD,
};

struct milter_result {
	enum milter_verdict verdict;
	char reply[512];  /* SMFIR_REPLYCODE's text; "": the default */
	bool quarantined; /* SMFIR_QUARANTINE */
	char reason[256]; /* the quarantine's reason, or why a milter failed */
	char by[256];	  /* the milter that gave the verdict */
	int unavailable;  /* milters that failed (default action taken) */
};

/* Called once, from the loop, never from milter_run_start. r is valid
 * during the call only. */
typedef void (*milter_done_fn)(void *arg, const struct milter_result *r);

struct milter_run;

/* Starts the conversation with cfg's milters (at least one). Returns the
 * run, or NULL out of memory. */
struct milter_run *milter_run_start(struct ev_loop *loop,
				    const struct node_config *cfg,
				    struct milter_message *m,
				    milter_done_fn done, void *arg);
/* Stops a run before its end (the client went away): done is not called.
 * NULL does nothing. */
void milter_run_cancel(struct milter_run *r);

#endif
