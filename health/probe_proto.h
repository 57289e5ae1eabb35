/* Inside the probe engine: the table of function pointers each protocol
 * file fills in (probe_tcp.c, probe_smtp.c, ...), and the engine calls a
 * protocol's state machine makes. Not for users of health.h. */
#ifndef MS_PROBE_PROTO_H
#define MS_PROBE_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include "health.h"
#include "probe_reply.h"

#define PROBE_LINE_MAX 1024 /* longest server line, CRLF included */
#define PROBE_OUT_MAX 1024  /* longest output waiting to be written */
#define PROBE_EXCERPT 40    /* server text quoted in a reason */

enum probe_tls {
	PROBE_TLS_NONE,
	PROBE_TLS_IMPLICIT, /* smtps, imaps, pop3s, https */
	PROBE_TLS_STARTTLS, /* smtp-starttls, imap-starttls, pop3-starttls */
};

/* A protocol's memory of one probe. The engine zeroes it and sets
 * upgraded; the rest belongs to the protocol file. */
struct probe_conv {
	int state;     /* the protocol's own enum */
	int tag;       /* imap: number of the last tag sent */
	bool offered;  /* smtp: the EHLO answer listed STARTTLS */
	bool upgraded; /* -starttls: TLS is up and the certificate passed */
};

struct probe;

struct probe_proto {
	const char *name;
	/* The transport is up: TCP connected, and for implicit TLS the
	 * handshake done. */
	void (*on_connect)(struct probe *p, struct probe_conv *c);
	/* One server line without its line end, NUL-terminated. */
	void (*on_line)(struct probe *p, struct probe_conv *c,
			const char *line);
	/* -starttls: the handshake that probe_starttls() began is done and
	 * the certificate passed; c->upgraded is set. */
	void (*on_upgrade)(struct probe *p, struct probe_conv *c);
	/* The verdict is in: send the polite ending (QUIT, LOGOUT) and call
	 * probe_end() once it is answered. NULL: the engine just closes. An
	 * EOF or the timeout ends the session too. */
	void (*on_quit)(struct probe *p, struct probe_conv *c);
};

extern const struct probe_proto probe_proto_tcp;
extern const struct probe_proto probe_proto_smtp;
extern const struct probe_proto probe_proto_imap;
extern const struct probe_proto probe_proto_pop3;
extern const struct probe_proto probe_proto_http;

const struct probe_spec *probe_spec(const struct probe *p);
enum probe_tls probe_tls_mode(const struct probe *p);

/* Queues one command line (CRLF appended) and starts writing it. A line
 * that does not fit PROBE_OUT_MAX fails the probe. */
void probe_send(struct probe *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The verdict: passed, or failed for a reason. The first verdict counts.
 * Both go on to the protocol's on_quit, once. */
void probe_pass(struct probe *p);
void probe_fail(struct probe *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The server said go ahead: start the TLS handshake after this line. Any
 * further plaintext already received fails the probe (an injection). */
void probe_starttls(struct probe *p);
/* The session is over: the engine closes and reports after the current
 * callback returns. */
void probe_end(struct probe *p);

/* Our end of the connection as an address literal for EHLO: "[127.0.0.1]"
 * or "[IPv6:::1]". Returns buf. */
const char *probe_local_literal(const struct probe *p, char *buf, size_t len);
/* The probed address as "1.2.3.4:80" or "[::1]:80", for Host:. */
const char *probe_peer(const struct probe *p, char *buf, size_t len);

#endif
