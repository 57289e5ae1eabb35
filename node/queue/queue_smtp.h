/* The SMTP client of outbound delivery (Postfix's smtp(8)): one message
 * to some recipients of one destination, over the addresses a lookup
 * found, tried in order until one holds a transaction. RFC 5321 with
 * the extensions a server offers: EHLO (HELO after a 5xx), STARTTLS (RFC
 * 3207, SNI sent) and EHLO again, AUTH PLAIN to a relayhost (inside TLS
 * only), PIPELINING (RFC 2920: MAIL, the RCPTs
 * and DATA in one write), SIZE (the message's, and refused with 552 when
 * over the server's limit), BODY=8BITMIME for 8-bit messages, SMTPUTF8
 * for non-ASCII addresses; the body dot-stuffed with CRLF line ends;
 * QUIT. Every step has its timeout. Non-blocking, on the event loop.
 *
 * smtp_tls = may, as Postfix: STARTTLS refused (4xx/5xx) goes on in
 * plain text on the same connection; a failed TLS handshake tries the
 * same address again in plain text on a new connection (the session's
 * state is unknown after it). encrypt and verify never fall back.
 *
 * Connection reuse (Postfix's connection cache): with a cache, a
 * connection whose transaction ended cleanly idles there under its next
 * hop (the MX domain, or the route's or relayhost's HOST:PORT) for
 * QSMTP_IDLE_S, and the next message to that next hop goes over it,
 * after an RSET, instead of a new connection: at most QSMTP_REUSE_MAX
 * messages per connection. An RSET refused, or a connection found closed
 * at the RSET, gives that message a new connection to the addresses the
 * old one was made for. */
#ifndef NODE_QUEUE_SMTP_H
#define NODE_QUEUE_SMTP_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "../config/config.h"
#include "queue.h"
#include "queue_dns.h"

/* What became of one recipient: code 2xx sent, 4xx try later, 5xx never;
 * reply is the server's (or ours: "451 4.4.1 connect to ...: refused"). */
struct queue_smtp_result {
	int code;
	char reply[QUEUE_REPLY_MAX];
};

struct queue_smtp_job {
	const char *helo;   /* our name in EHLO */
	const char *sender; /* "" for the null sender */
	const char *const *rcpts;
	size_t nrcpt;
	int msgfd; /* the message (read with mmap), the caller's */
	size_t msgsize;
	const char *prefix; /* sent before it (a DKIM-Signature:); or NULL */
	double timeout;	    /* caps each step's timeout (smtp_timeout_s) */
	/* AUTH PLAIN after EHLO, only inside TLS (a relayhost's); NULL:
	 * none. */
	const char *auth_user, *auth_password;
	/* STARTTLS when offered (may), or required (encrypt; verify: the
	 * chain against tls's anchors and the MX host's name). tls NULL: no
	 * TLS at all. */
	SSL_CTX *tls;
	enum node_smtp_tls tls_policy;
	/* Asked just before the final dot: false aborts (the claim went). */
	bool (*may_commit)(void *arg);
	/* Where the connection idles after the transaction, under nexthop
	 * (copied); cache NULL: QUIT at the end. */
	struct queue_smtp_cache *cache;
	const char *nexthop;
};

/* Idle connections by next hop. */
struct queue_smtp_cache;
struct queue_smtp_cache *queue_smtp_cache_new(void);
/* QUITs every idle connection (they close from the loop). */
void queue_smtp_cache_flush(struct queue_smtp_cache *cache);
/* Flushes, then frees the cache. */
void queue_smtp_cache_free(struct queue_smtp_cache *cache);

struct queue_smtp;
/* Called once at the end with one result per recipient (in rcpts'
 * order) and the relay that answered last ("host[addr]:port", or "none"
 * when no connection was made). Never called from queue_smtp_send(). */
typedef void (*queue_smtp_cb)(const struct queue_smtp_result *res,
			      const char *relay, void *arg);

/* Starts delivering job (its strings must live until cb) to the
 * addresses of dest (dest is copied). Returns NULL on out of memory. */
struct queue_smtp *queue_smtp_send(struct ev_loop *loop,
				   const struct queue_dest *dest,
				   const struct queue_smtp_job *job,
				   queue_smtp_cb cb, void *arg);
/* Starts job (job->cache and job->nexthop are the connection's own)
 * over a connection idle in cache for nexthop. Returns NULL when none
 * is (or out of memory). */
struct queue_smtp *queue_smtp_reuse(struct queue_smtp_cache *cache,
				    const char *nexthop,
				    const struct queue_smtp_job *job,
				    queue_smtp_cb cb, void *arg);
/* Drops the connection at once (no final dot is sent if not sent yet);
 * cb is not called. */
void queue_smtp_abort(struct queue_smtp *c);

#endif
