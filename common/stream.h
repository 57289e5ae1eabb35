/* A connection of a line protocol (SMTP, IMAP, POP3, HTTP), server side
 * (and the outbound SMTP client's, once connected):
 * non-blocking, an optional PROXY header first (from trusted peers only),
 * optional TLS (implicit, or upgraded by STARTTLS/STLS), a bounded input
 * line and a bounded output buffer (both freed while empty: an idle
 * connection holds neither), an idle timeout, an optional absolute
 * deadline, and an optional cap on connections (connlimit.h). The
 * protocol sessions sit on top and see whole lines.
 *
 * Fairness: one connection never holds the loop. At most
 * STREAM_TURN_MAX lines (or raw chunks) are handed over per loop turn;
 * then the stream yields (a zero timer: every other ready socket is served
 * first) and goes on with what it has buffered at the next turn. */
#ifndef MS_STREAM_H
#define MS_STREAM_H

#include <ev.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "addr.h"
#include "connlimit.h"

struct stream;

struct stream_ops {
	/* The connection is ready (PROXY header read, TLS handshake done):
	 * time to greet. */
	void (*on_ready)(void *arg);
	/* One line, without its terminator. crlf: it ended in CRLF (false:
	 * a bare LF). toolong: it was longer than max_line; line holds its
	 * first max_line bytes and the rest was dropped; it comes once the
	 * line ended (its terminator in crlf), so that the next line is
	 * the next line. The session may call stream_close() or
	 * stream_pause() from here. */
	void (*on_line)(void *arg, char *line, size_t len, bool crlf,
			bool toolong);
	/* Optional: a line longer than max_line is handed over whole, in
	 * pieces, instead of cut (on_line then never sees toolong): its
	 * pieces in order, the first starting the line, the last with end
	 * set and crlf telling its terminator (no piece holds the
	 * terminator). SMTP keeps a long message line so. As on_line for
	 * what the session may call. */
	void (*on_piece)(void *arg, char *data, size_t len, bool end,
			 bool crlf);
	/* The connection is over (peer closed, reset, timeout, TLS error,
	 * output overflow, or stream_close() done): the session frees what it
	 * owns; the stream frees itself after this returns. */
	void (*on_close)(void *arg, const char *why);
	/* Optional: no input for idle_timeout seconds (no whole line nor raw
	 * chunk: a line trickled a byte at a time does not count as input
	 * until it ends). The session may answer and stream_close(); without
	 * this hook the stream just closes. */
	void (*on_timeout)(void *arg);
	/* Optional: after stream_read_bytes(), the raw input in order, in one
	 * or more chunks; left is how many bytes are still to come after this
	 * chunk (0: the last one, line mode is back). The session may pause or
	 * close from here. */
	void (*on_bytes)(void *arg, char *data, size_t len, size_t left);
	/* Optional: after stream_wait_drain(), pending output fell to
	 * STREAM_DRAIN_LOW bytes or less: time to produce more of a long
	 * answer. Called from the loop, before further lines. */
	void (*on_drain)(void *arg);
	/* Optional: the deadline of stream_set_deadline() passed. As
	 * on_timeout (which is called instead when this is NULL). */
	void (*on_deadline)(void *arg);
	/* Optional: the connection is over a limit of opts.limit (total or
	 * per client address), called instead of on_ready: the session writes
	 * its protocol's temporary refusal; the stream closes after it. */
	void (*on_refused)(void *arg);
};

/* Lines or raw chunks handed over per connection per loop turn. */
#define STREAM_TURN_MAX 64

/* The pending output at which on_drain is called. */
#define STREAM_DRAIN_LOW 65536

/* Networks allowed to send a PROXY header: "10.0.0.0/24, 127.0.0.0/8". */
#define STREAM_MAX_NETS 16
struct netlist {
	int n;
	struct {
		int family;
		unsigned char addr[16];
		int bits;
	} net[STREAM_MAX_NETS];
};
/* Parses a comma-separated list of CIDR networks (or bare addresses).
 * Returns 0, or -1 with the bad element in why. */
int netlist_parse(const char *s, struct netlist *out, char *why, size_t whylen);
bool netlist_match(const struct netlist *nl, const struct sockaddr *sa);

struct stream_opts {
	size_t max_line;     /* bytes, terminator excluded */
	size_t max_output;   /* pending output beyond this closes */
	double idle_timeout; /* seconds without input */
	SSL_CTX *tls;	     /* implicit TLS when set (the stream holds a
			      * reference: the caller may free its own) */
	const struct netlist *proxy_from; /* PROXY header expected from these
					     peers; NULL: never */
	struct connlimit *limit; /* counts this connection; NULL: no cap */
};

/* Takes over fd (accepted, non-blocking). ops->on_ready comes once the
 * PROXY header and the TLS handshake are done. Returns NULL (fd closed)
 * on allocation failure. */
struct stream *stream_new(struct ev_loop *loop, int fd,
			  const struct sockaddr *peer, socklen_t peerlen,
			  const struct stream_opts *opts,
			  const struct stream_ops *ops, void *arg);

/* Queues output; it goes out as the socket allows. */
void stream_write(struct stream *s, const void *buf, size_t len);
void stream_printf(struct stream *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A protocol's answer line: formats into buf (cut to fit), adds CRLF and
 * queues it. Returns the length of the text in buf, CRLF excluded, for
 * the caller's log. buflen must be at least 3. */
int stream_vline(struct stream *s, char *buf, size_t buflen, const char *fmt,
		 va_list ap) __attribute__((format(printf, 4, 0)));

/* Upgrades to TLS once pending output is flushed. Input that arrived
 * before the upgrade is discarded (no command injection across STARTTLS).
 * The stream holds a reference on ctx until then. Returns -1 if TLS is
 * already on. */
int stream_starttls(struct stream *s, SSL_CTX *ctx);
/* The client's side of STARTTLS (an outbound SMTP client): the same
 * upgrade, as the TLS client, with host as SNI; with verify the handshake
 * fails unless the chain verifies against ctx's trust anchors and the
 * certificate names host. on_ready is called again once TLS is up. */
int stream_starttls_client(struct stream *s, SSL_CTX *ctx, const char *host,
			   bool verify);
bool stream_is_tls(const struct stream *s);

/* Holds back lines (an asynchronous lookup is in flight) / delivers them
 * again, starting with those already buffered. */
void stream_pause(struct stream *s);
void stream_resume(struct stream *s);

/* Around answers written from outside the stream's own callbacks (an
 * asynchronous reply): they go out together at stream_batch_end(), as
 * from a callback, not one small segment per line for Nagle to hold
 * back. Pairs nest. */
void stream_batch_begin(struct stream *s);
void stream_batch_end(struct stream *s);

/* The next n input bytes go to ops->on_bytes (which must be set) instead
 * of on_line: a request body, an IMAP literal. Call it from on_line (or
 * before any input); n == 0 does nothing. */
void stream_read_bytes(struct stream *s, size_t n);

/* Asks for one on_drain call (which must be set) once pending output is
 * at most STREAM_DRAIN_LOW: a long answer (an IMAP FETCH of many
 * messages) is produced in slices instead of whole in memory. */
void stream_wait_drain(struct stream *s);
void stream_set_timeout(struct stream *s, double seconds);
/* An absolute limit that input does not move: seconds from now, or with
 * at_input from the first byte that arrives after this call (from now
 * when input is already buffered). Then on_deadline (or on_timeout) is
 * called, whatever trickles in meanwhile. seconds <= 0 removes it. */
void stream_set_deadline(struct stream *s, double seconds, bool at_input);

/* Flushes pending output, then closes; on_close gets why. */
void stream_close(struct stream *s, const char *why);

/* The client's address: from the PROXY header when one was accepted. */
const struct sockaddr *stream_peer(const struct stream *s);
/* "1.2.3.4:5678" or "[::1]:5678". */
const char *stream_peer_str(const struct stream *s);
/* The local address the client reached (from PROXY when accepted). */
const struct sockaddr *stream_local(const struct stream *s);

#endif
