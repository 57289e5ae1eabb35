#include "stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "log.h"
#include "proxy.h"

#define STREAM_MIN_IN 1024 /* room for the largest PROXY header we take */
/* The input buffer is allocated at this size when input arrives, doubled
 * while a read fills it (up to max_line + 2), and freed whenever every
 * byte in it was handed over: a connection waiting for its next command
 * (an IMAP IDLE) holds no input buffer, nor an output buffer once its
 * answers went out. */
#define STREAM_IN_FIRST 1024

enum stream_phase { PHASE_PROXY, PHASE_HANDSHAKE, PHASE_READY };

struct stream {
	struct ev_loop *loop;
	int fd;
	ev_io io;
	ev_timer timer;		  /* idle: no line or chunk for this long */
	ev_timer deadline;	  /* absolute (stream_set_deadline) */
	double deadline_at_input; /* > 0: armed by the next byte */
	ev_timer yield;		  /* the turn's budget is spent: go on later */
	ev_timer reaper; /* finishes a close from the loop, never inline */
	const struct stream_ops *ops;
	void *arg;
	struct stream_opts opts;
	enum stream_phase phase;

	SSL *ssl;
	SSL_CTX *upgrade; /* STARTTLS requested, waits for output to drain */
	bool tls_client;  /* we are the TLS client (stream_starttls_client) */
	bool tls_verify;
	char *tls_host; /* SNI, and the name checked with tls_verify ("":
			   none; owned, set by stream_starttls_client) */
	bool ssl_want_write;

	char *in; /* NULL while nothing is buffered */
	size_t instart, inlen, incap;
	size_t inmax;	   /* the most it may hold: max_line + 2 */
	char *longhead;	   /* an overlong line's first max_line
			      bytes while its rest is dropped */
	bool longcr;	   /* the last byte dropped was a CR */
	bool inpiece;	   /* in an overlong line handed in pieces */
	size_t want_bytes; /* raw bytes still owed to on_bytes */
	bool eof;

	char *out;
	size_t outoff, outlen, outcap;

	bool paused, closing, dead;
	bool ready_told; /* on_ready (or on_refused) was called */
	bool proxied;	 /* peer and local come from a PROXY header */
	struct connlimit_ticket ticket; /* what opts.limit counts for us */
	bool kick;	 /* run stream_process from the loop once more */
	bool want_drain; /* on_drain is owed once output is low */
	int depth;	 /* nesting of our callbacks into the session */
	const char *why;

	struct sockaddr_storage peer, local;
	char peerstr[ADDR_STRLEN];
};

static void stream_update(struct stream *s);
static void stream_process(struct stream *s);

int
netlist_parse(const char *str, struct netlist *out, char *why, size_t whylen)
{
	char buf[1024], *save, *tok;
	memset(out, 0, sizeof(*out));
	if (strlen(str) >= sizeof(buf)) {
		snprintf(why, whylen, "list too long");
		return -1;
	}
	strcpy(buf, str);
	for (tok = strtok_r(buf, ", \t", &save); tok;
	     tok = strtok_r(NULL, ", \t", &save)) {
		if (out->n == STREAM_MAX_NETS) {
			snprintf(why, whylen, "more than %d networks",
				 STREAM_MAX_NETS);
			return -1;
		}
		char *slash = strchr(tok, '/');
		int bits = -1;
		if (slash) {
			char *end;
			*slash = '\0';
			bits = (int)strtol(slash + 1, &end, 10);
			if (slash[1] == '\0' || *end != '\0' || bits < 0)
				goto bad;
		}
		typeof(out->net[0]) *n = &out->net[out->n];
		if (inet_pton(AF_INET, tok, n->addr) == 1) {
			n->family = AF_INET;
			if (bits < 0)
				bits = 32;
			if (bits > 32)
				goto bad;
		} else if (inet_pton(AF_INET6, tok, n->addr) == 1) {
			n->family = AF_INET6;
			if (bits < 0)
				bits = 128;
			if (bits > 128)
				goto bad;
		} else
			goto bad;
		n->bits = bits;
		out->n++;
		continue;
	bad:
		snprintf(why, whylen, "\"%.64s\" is not an address or network",
			 tok);
		return -1;
	}
	return 0;
}

static bool
netlist_prefix(const unsigned char *a, const unsigned char *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;
	if (memcmp(a, b, (size_t)bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

bool
netlist_match(const struct netlist *nl, const struct sockaddr *sa)
{
	const unsigned char *a;
	unsigned char mapped[4];
	int family = sa->sa_family;
	if (family == AF_INET)
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)
			->sin_addr;
	else if (family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(
			&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
			memcpy(mapped, a + 12, 4);
			a = mapped;
			family = AF_INET;
		}
	} else
		return false;
	for (int i = 0; i < nl->n; i++)
		if (nl->net[i].family == family &&
		    netlist_prefix(a, nl->net[i].addr, nl->net[i].bits))
			return true;
	return false;
}

static void
stream_destroy(struct stream *s)
{
	ev_io_stop(s->loop, &s->io);
	ev_timer_stop(s->loop, &s->timer);
	ev_timer_stop(s->loop, &s->deadline);
	ev_timer_stop(s->loop, &s->yield);
	ev_timer_stop(s->loop, &s->reaper);
	if (s->opts.limit)
		connlimit_close(s->opts.limit, &s->ticket);
	s->ops->on_close(s->arg, s->why ? s->why : "closed");
	if (s->ssl) {
		if (!s->eof)
			SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
	}
	SSL_CTX_free(s->opts.tls); /* the references taken (NULL: nothing) */
	SSL_CTX_free(s->upgrade);
	close(s->fd);
	free(s->in);
	free(s->longhead);
	free(s->tls_host);
	free(s->out);
	free(s);
}

static void
stream_reaper_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	stream_destroy(t->data);
}

/* Ends the connection now (errors) or once output is flushed. */
static void
stream_finish(struct stream *s, const char *why)
{
	if (s->dead)
		return;
	s->dead = true;
	if (s->why == NULL)
		s->why = why;
	ev_io_stop(s->loop, &s->io);
	ev_timer_stop(s->loop, &s->timer);
	ev_timer_stop(s->loop, &s->deadline);
	ev_timer_stop(s->loop, &s->yield);
	ev_timer_set(&s->reaper, 0., 0.);
	ev_timer_start(s->loop, &s->reaper);
}

void
stream_close(struct stream *s, const char *why)
{
	if (s->dead || s->closing)
		return;
	s->closing = true;
	s->why = why;
	/* The last answer goes out under the idle timer alone. */
	ev_timer_stop(s->loop, &s->deadline);
	s->deadline_at_input = 0;
	stream_update(s);
}

/* Sends pending output. Returns -1 when the connection failed. */
static int
stream_flush(struct stream *s)
{
	s->ssl_want_write = false;
	while (s->outoff < s->outlen) {
		size_t len = s->outlen - s->outoff;
		ssize_t n;
		if (s->ssl) {
			int r = SSL_write(s->ssl, s->out + s->outoff,
					  len > 65536 ? 65536 : (int)len);
			if (r <= 0) {
				int e = SSL_get_error(s->ssl, r);
				if (e == SSL_ERROR_WANT_WRITE) {
					s->ssl_want_write = true;
					return 0;
				}
				if (e == SSL_ERROR_WANT_READ)
					return 0;
				ERR_clear_error();
				return -1;
			}
			n = r;
		} else {
			n = send(s->fd, s->out + s->outoff, len,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0) {
				if (errno == EAGAIN || errno == EINTR) {
					s->ssl_want_write = true;
					return 0;
				}
				return -1;
			}
		}
		s->outoff += (size_t)n;
	}
	s->outoff = s->outlen = 0;
	if (!s->want_drain) {
		/* Answered: no buffer kept while the client thinks (a long
		 * answer's next slice comes soon: its buffer stays). */
		free(s->out);
		s->out = NULL;
		s->outcap = 0;
	}
	return 0;
}

static int
stream_handshake(struct stream *s)
{
	int r = SSL_do_handshake(s->ssl);
	if (r == 1) {
		s->phase = PHASE_READY;
		if (s->tls_client)
			s->ready_told = false; /* on_ready: TLS is up */
		return 0;
	}
	int e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		return 0;
	if (e == SSL_ERROR_WANT_WRITE) {
		s->ssl_want_write = true;
		return 0;
	}
	ERR_clear_error();
	s->eof = true; /* no close_notify on a failed handshake */
	return -1;
}

static int
stream_start_tls(struct stream *s, SSL_CTX *ctx)
{
	s->ssl = SSL_new(ctx);
	if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1)
		return -1;
	/* RELEASE_BUFFERS: an idle TLS connection keeps no record buffers
	 * (about 34 KiB) either. */
	SSL_set_mode(s->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
				 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				 SSL_MODE_RELEASE_BUFFERS);
	if (!s->tls_client)
		SSL_set_accept_state(s->ssl);
	else {
		SSL_set_connect_state(s->ssl);
		if (s->tls_host[0] &&
		    SSL_set_tlsext_host_name(s->ssl, s->tls_host) != 1)
			return -1;
		if (s->tls_verify) {
			if (SSL_set1_host(s->ssl, s->tls_host) != 1)
				return -1;
			SSL_set_verify(s->ssl, SSL_VERIFY_PEER, NULL);
		}
	}
	s->phase = PHASE_HANDSHAKE;
	/* What the client sent before the upgrade does not count. */
	s->instart = s->inlen = 0;
	free(s->longhead);
	s->longhead = NULL;
	s->inpiece = false;
	s->want_bytes = 0;
	return stream_handshake(s);
}

/* Makes room at the end of the full input buffer: moves what is left to
 * the front, or allocates or doubles the buffer. Returns 1, 0 when it
 * holds inmax bytes already, -1 out of memory (s->why says so). */
static int
stream_in_room(struct stream *s)
{
	if (s->instart > 0) {
		memmove(s->in, s->in + s->instart, s->inlen - s->instart);
		s->inlen -= s->instart;
		s->instart = 0;
		return 1;
	}
	if (s->incap == s->inmax)
		return 0;
	size_t cap = s->incap ? 2 * s->incap : STREAM_IN_FIRST;
	if (cap > s->inmax)
		cap = s->inmax;
	char *in = realloc(s->in, cap + 1); /* + 1: a line's NUL */
	if (in == NULL) {
		s->why = "out of memory";
		return -1;
	}
	s->in = in;
	s->incap = cap;
	return 1;
}

/* Everything in the input buffer was handed over: free it. */
static void
stream_in_release(struct stream *s)
{
	free(s->in);
	s->in = NULL;
	s->instart = s->inlen = s->incap = 0;
}

/* Reads what there is into the input buffer. Returns -1 on error, 0
 * otherwise (s->eof set at end of input). */
static int
stream_fill(struct stream *s)
{
	if (s->instart > 0 && s->instart == s->inlen)
		s->instart = s->inlen = 0;
	for (;;) {
		int r;
		if (s->inlen == s->incap && (r = stream_in_room(s)) <= 0)
			return r;
		size_t room = s->incap - s->inlen;
		ssize_t n;
		if (s->ssl) {
			int r = SSL_read(s->ssl, s->in + s->inlen, (int)room);
			if (r <= 0) {
				int e = SSL_get_error(s->ssl, r);
				if (e == SSL_ERROR_WANT_READ)
					return 0;
				if (e == SSL_ERROR_WANT_WRITE) {
					s->ssl_want_write = true;
					return 0;
				}
				ERR_clear_error();
				if (e == SSL_ERROR_ZERO_RETURN ||
				    (e == SSL_ERROR_SYSCALL && r == 0)) {
					s->eof = true;
					return 0;
				}
				s->eof = true;
				return -1;
			}
			n = r;
		} else {
			n = recv(s->fd, s->in + s->inlen, room, MSG_DONTWAIT);
			if (n == 0) {
				s->eof = true;
				return 0;
			}
			if (n < 0)
				return errno == EAGAIN || errno == EINTR ? 0
									 : -1;
		}
		s->inlen += (size_t)n;
		if (s->deadline_at_input > 0) {
			ev_timer_set(&s->deadline, s->deadline_at_input, 0.);
			ev_timer_start(s->loop, &s->deadline);
			s->deadline_at_input = 0;
		}
	}
	return 0;
}

/* PROXY phase: take the header off the front of the input. Returns -1 for
 * a bad header, 0 otherwise. */
static int
stream_take_proxy(struct stream *s)
{
	struct proxy_info pi;
	int n = proxy_decode((unsigned char *)s->in + s->instart,
			     s->inlen - s->instart, &pi);
	if (n < 0)
		return -1;
	if (n == 0)
		return s->inlen - s->instart == s->inmax ? -1 : 0;
	s->instart += (size_t)n;
	if (!pi.local) {
		s->proxied = true;
		memcpy(&s->peer, &pi.src, sizeof(pi.src));
		memcpy(&s->local, &pi.dst, sizeof(pi.dst));
		addr_fmt((struct sockaddr *)&s->peer, s->peerstr,
			 sizeof(s->peerstr));
	}
	if (s->opts.tls)
		return stream_start_tls(s, s->opts.tls) < 0 ? -1 : 0;
	s->phase = PHASE_READY;
	return 0;
}

/* A line or chunk is handed over: the idle timer starts again, and the
 * turn's budget shrinks. Returns false when it is spent: the rest waits
 * for the yield timer, so that other connections are served first. */
static bool
stream_turn_take(struct stream *s, int *budget)
{
	if (s->dead) /* closed from the callback */
		return false;
	ev_timer_again(s->loop, &s->timer);
	if (--*budget > 0)
		return true;
	ev_timer_set(&s->yield, 0., 0.);
	ev_timer_start(s->loop, &s->yield);
	return false;
}

/* The input holds more than max_line bytes and no LF: the line's first
 * max_line bytes are kept aside (the buffer itself: the next read gets a
 * new one) and the rest is dropped until its LF. */
static void
stream_long_begin(struct stream *s)
{
	char *start = s->in + s->instart;
	s->longcr = start[s->inlen - s->instart - 1] == '\r';
	memmove(s->in, start, s->opts.max_line);
	s->longhead = s->in;
	s->in = NULL;
	s->instart = s->inlen = s->incap = 0;
}

/* Hands one line (or its first max_line bytes) to the session. */
static void
stream_give_line(struct stream *s, char *line, size_t len, bool crlf,
		 bool toolong)
{
	line[len] = '\0';
	s->depth++;
	s->ops->on_line(s->arg, line, len, crlf, toolong);
	s->depth--;
}

/* With on_piece: hands over what the buffer holds of an overlong line,
 * up to its LF (a CR at the end of the buffer stays: it may be the
 * start of the terminator). Returns 1 to go on, 0 to wait for input, -1
 * when the turn's budget is spent. */
static int
stream_piece(struct stream *s, char *start, size_t avail, char *lf, int *budget)
{
	size_t len = lf ? (size_t)(lf - start) : avail;
	bool cr = len > 0 && start[len - 1] == '\r';
	s->instart += lf ? len + 1 : len - cr;
	if (cr)
		len--;
	if (lf == NULL && len == 0)
		return 0;
	s->inpiece = lf == NULL;
	s->depth++;
	s->ops->on_piece(s->arg, start, len, lf != NULL, lf && cr);
	s->depth--;
	return stream_turn_take(s, budget) ? 1 : -1;
}

/* Hands complete lines to the session while it is not paused, at most
 * STREAM_TURN_MAX of them (and raw chunks) in this turn. An overlong line
 * goes over in pieces as it comes (on_piece), or else once its LF arrives,
 * as its first max_line bytes with its real terminator.
 * Returns false when the budget ran out with input perhaps left. */
static bool
stream_lines(struct stream *s)
{
	int budget = STREAM_TURN_MAX;
	if (ev_is_active(&s->yield))
		return false; /* the turn after next goes on */
	while (!s->paused && !s->dead && !s->closing &&
	       s->phase == PHASE_READY && s->upgrade == NULL) {
		size_t avail = s->inlen - s->instart;
		if (avail == 0)
			return true;
		char *start = s->in + s->instart;
		if (s->want_bytes > 0) {
			size_t n =
			    avail < s->want_bytes ? avail : s->want_bytes;
			s->instart += n;
			s->want_bytes -= n;
			s->depth++;
			s->ops->on_bytes(s->arg, start, n, s->want_bytes);
			s->depth--;
			if (!stream_turn_take(s, &budget))
				return false;
			continue;
		}
		char *lf = memchr(start, '\n', avail);
		size_t len = lf ? (size_t)(lf - start) : avail;
		bool over = lf ? len - (len > 0 && start[len - 1] == '\r') >
				     s->opts.max_line
			       : avail > s->opts.max_line + 1;
		if (s->ops->on_piece && (s->inpiece || over)) {
			int r = stream_piece(s, start, avail, lf, &budget);
			if (r <= 0)
				return r == 0;
			continue;
		}
		if (s->longhead) { /* the rest of an overlong line */
			bool crlf =
			    len > 0 ? start[len - 1] == '\r' : s->longcr;
			if (lf == NULL) {
				s->longcr = crlf;
				s->instart = s->inlen;
				return true;
			}
			s->instart += len + 1;
			char *head = s->longhead;
			s->longhead = NULL;
			stream_give_line(s, head, s->opts.max_line, crlf, true);
			free(head);
			if (!stream_turn_take(s, &budget))
				return false;
			continue;
		}
		if (lf == NULL) {
			if (avail > s->opts.max_line + 1)
				stream_long_begin(s);
			return true;
		}
		s->instart += len + 1;
		bool crlf = len > 0 && start[len - 1] == '\r';
		if (crlf)
			len--;
		bool toolong = len > s->opts.max_line;
		if (toolong)
			len = s->opts.max_line;
		stream_give_line(s, start, len, crlf, toolong);
		if (!stream_turn_take(s, &budget))
			return false;
	}
	return true;
}

/* PROXY and TLS are done: is there room for this connection? Returns
 * false when it was refused (the session told, the close under way). */
static bool
stream_admit(struct stream *s)
{
	struct connlimit *l = s->opts.limit;
	if (l == NULL ||
	    (s->ticket.total &&
	     connlimit_source(l, &s->ticket, stream_peer(s), s->proxied)))
		return true;
	log_info("%s: refused: too many connections%s", s->peerstr,
		 s->ticket.total ? " from this address" : "");
	s->why = "too many connections";
	if (s->ops->on_refused) {
		s->depth++;
		s->ops->on_refused(s->arg);
		s->depth--;
	}
	if (!s->dead)
		stream_close(s, "too many connections");
	return false;
}

static void
stream_process(struct stream *s)
{
	s->kick = false;
	if (s->dead)
		return;
	if (s->phase == PHASE_HANDSHAKE) {
		if (stream_handshake(s) < 0) {
			stream_finish(s, "TLS handshake failed");
			return;
		}
	}
	if (s->phase != PHASE_HANDSHAKE && !s->eof && stream_fill(s) < 0) {
		stream_finish(s, "connection reset");
		return;
	}
	if (s->phase == PHASE_PROXY && stream_take_proxy(s) < 0) {
		stream_finish(s, "bad PROXY header");
		return;
	}
	if (s->phase == PHASE_READY && !s->ready_told) {
		s->ready_told = true;
		if (!stream_admit(s)) {
			stream_update(s);
			return;
		}
		s->ops->on_ready(s->arg);
		if (s->dead)
			return;
	}
	if (s->want_drain && s->phase == PHASE_READY &&
	    s->outlen - s->outoff <= STREAM_DRAIN_LOW) {
		s->want_drain = false;
		s->depth++;
		s->ops->on_drain(s->arg);
		s->depth--;
		if (s->dead)
			return;
	}
	bool all = stream_lines(s);
	if (s->dead)
		return;
	if (!all) { /* lines wait for the yield timer: eof not yet */
		stream_update(s);
		return;
	}
	if (s->eof && s->phase != PHASE_READY) {
		stream_finish(s, "connection closed by peer");
		return;
	}
	if (s->eof && !s->paused) {
		/* Every whole line was handed over; a last one without its
		 * terminator is dropped. Answers already queued still go out
		 * (the peer may have closed only its sending side). */
		s->instart = s->inlen;
		if (!s->closing) {
			s->closing = true;
			s->why = "connection closed by peer";
		}
	}
	if (s->in && s->instart == s->inlen)
		stream_in_release(s);
	stream_update(s);
}

/* Flushes, starts a pending TLS upgrade, and sets what we wait for. */
static void
stream_update(struct stream *s)
{
	if (s->dead)
		return;
	if (stream_flush(s) < 0) {
		stream_finish(s, "connection reset");
		return;
	}
	bool pending = s->outlen > s->outoff;
	if (!pending && s->closing) {
		stream_finish(s, s->why);
		return;
	}
	if (!pending && s->upgrade) {
		SSL_CTX *ctx = s->upgrade;
		s->upgrade = NULL;
		int rc = stream_start_tls(s, ctx);
		SSL_CTX_free(ctx); /* the SSL holds its own reference */
		if (rc < 0) {
			stream_finish(s, "TLS handshake failed");
			return;
		}
		if (s->dead)
			return;
		pending = s->outlen > s->outoff;
	}
	int ev = 0;
	size_t buffered = s->inlen - s->instart;
	if (!s->eof && !s->closing && s->upgrade == NULL &&
	    buffered < s->inmax && (!s->paused || buffered < s->inmax / 2))
		ev |= EV_READ;
	if (pending || s->ssl_want_write)
		ev |= EV_WRITE;
	if (s->want_drain && s->outlen - s->outoff <= STREAM_DRAIN_LOW)
		s->kick = true;
	/* Decrypted bytes waiting inside OpenSSL raise no fd event (while
	 * the turn is over, the yield timer comes back for them). */
	if (s->ssl && SSL_pending(s->ssl) > 0 && !s->paused &&
	    !ev_is_active(&s->yield))
		s->kick = true;
	if ((s->io.events & (EV_READ | EV_WRITE)) != ev ||
	    !ev_is_active(&s->io)) {
		ev_io_stop(s->loop, &s->io); /* drops a fed event too */
		ev_io_set(&s->io, s->fd, ev);
		if (ev)
			ev_io_start(s->loop, &s->io);
	}
	/* Fed after the watcher changed, so that no stop cancels it. */
	if (s->kick)
		ev_feed_event(s->loop, &s->io, EV_CUSTOM);
}

static void
stream_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct stream *s = io->data;
	(void)loop;
	(void)revents;
	s->depth++;
	stream_process(s);
	s->depth--;
}

/* The idle timer or the deadline: the session's hook may answer. */
static void
stream_expire(struct stream *s, void (*hook)(void *), const char *why)
{
	if (hook == NULL || s->phase != PHASE_READY || !s->ready_told ||
	    s->closing) {
		stream_finish(s, why);
		return;
	}
	s->depth++;
	hook(s->arg);
	s->depth--;
	if (!s->closing)
		stream_close(s, why);
	else
		stream_update(s);
}

static void
stream_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct stream *s = t->data;
	(void)loop;
	(void)revents;
	stream_expire(s, s->ops->on_timeout, "timeout");
}

static void
stream_deadline_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct stream *s = t->data;
	(void)loop;
	(void)revents;
	stream_expire(
	    s, s->ops->on_deadline ? s->ops->on_deadline : s->ops->on_timeout,
	    "deadline passed");
}

static void
stream_yield_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct stream *s = t->data;
	(void)loop;
	(void)revents;
	s->depth++;
	stream_process(s);
	s->depth--;
}

struct stream *
stream_new(struct ev_loop *loop, int fd, const struct sockaddr *peer,
	   socklen_t peerlen, const struct stream_opts *opts,
	   const struct stream_ops *ops, void *arg)
{
	struct stream *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		return NULL;
	}
	s->loop = loop;
	s->fd = fd;
	s->ops = ops;
	s->arg = arg;
	s->opts = *opts;
	/* A reference of its own: the server may replace its context (a
	 * reload) while this stream still waits for a PROXY header. */
	if (s->opts.tls)
		SSL_CTX_up_ref(s->opts.tls);
	s->inmax = opts->max_line + 2 > STREAM_MIN_IN ? opts->max_line + 2
						      : STREAM_MIN_IN;
	memcpy(&s->peer, peer, peerlen);
	socklen_t llen = sizeof(s->local);
	getsockname(fd, (struct sockaddr *)&s->local, &llen);
	addr_fmt(peer, s->peerstr, sizeof(s->peerstr));
	ev_init(&s->io, stream_io_cb);
	s->io.data = s;
	ev_init(&s->timer, stream_timer_cb);
	s->timer.data = s;
	s->timer.repeat = opts->idle_timeout > 0 ? opts->idle_timeout : 300;
	ev_timer_again(loop, &s->timer);
	ev_init(&s->deadline, stream_deadline_cb);
	s->deadline.data = s;
	ev_init(&s->yield, stream_yield_cb);
	s->yield.data = s;
	ev_init(&s->reaper, stream_reaper_cb);
	s->reaper.data = s;
	if (opts->limit)
		connlimit_open(opts->limit, &s->ticket); /* else refused */

	/* Nothing is called back from here: the first step runs from the
	 * loop, once the caller holds the stream. */
	if (opts->proxy_from && netlist_match(opts->proxy_from, peer))
		s->phase = PHASE_PROXY;
	else if (opts->tls) {
		if (stream_start_tls(s, opts->tls) < 0)
			stream_finish(s, "TLS handshake failed");
	} else
		s->phase = PHASE_READY;
	if (!s->dead) {
		ev_io_set(&s->io, fd, EV_READ);
		ev_io_start(loop, &s->io);
		ev_feed_event(loop, &s->io, EV_CUSTOM);
	}
	return s;
}

void
stream_write(struct stream *s, const void *buf, size_t len)
{
	if (s->dead || s->closing)
		return;
	size_t pending = s->outlen - s->outoff;
	if (pending + len > s->opts.max_output) {
		stream_finish(s, "client does not read its answers");
		return;
	}
	if (s->outlen + len > s->outcap) {
		if (s->outoff > 0) {
			memmove(s->out, s->out + s->outoff, pending);
			s->outoff = 0;
			s->outlen = pending;
		}
		if (s->outlen + len > s->outcap) {
			size_t cap = s->outcap ? s->outcap : 4096;
			while (cap < s->outlen + len)
				cap *= 2;
			char *out = realloc(s->out, cap);
			if (out == NULL) {
				stream_finish(s, "out of memory");
				return;
			}
			s->out = out;
			s->outcap = cap;
		}
	}
	memcpy(s->out + s->outlen, buf, len);
	s->outlen += len;
	if (s->depth == 0)
		stream_update(s);
}

void
stream_printf(struct stream *s, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	stream_write(s, buf,
		     (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

int
stream_vline(struct stream *s, char *buf, size_t buflen, const char *fmt,
	     va_list ap)
{
	int n = vsnprintf(buf, buflen - 2, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > buflen - 3)
		n = (int)buflen - 3;
	buf[n] = '\r';
	buf[n + 1] = '\n';
	stream_write(s, buf, (size_t)n + 2);
	buf[n] = '\0';
	return n;
}

int
stream_starttls(struct stream *s, SSL_CTX *ctx)
{
	if (s->ssl || s->upgrade)
		return -1;
	SSL_CTX_up_ref(ctx); /* held until the upgrade (see stream_new) */
	s->upgrade = ctx;
	if (s->depth == 0)
		stream_update(s);
	return 0;
}

int
stream_starttls_client(struct stream *s, SSL_CTX *ctx, const char *host,
		       bool verify)
{
	if (s->ssl || s->upgrade)
		return -1;
	if ((s->tls_host = strdup(host ? host : "")) == NULL)
		return -1;
	s->tls_client = true;
	s->tls_verify = verify;
	return stream_starttls(s, ctx);
}

bool
stream_is_tls(const struct stream *s)
{
	return s->ssl != NULL;
}

void
stream_pause(struct stream *s)
{
	s->paused = true;
}

void
stream_resume(struct stream *s)
{
	if (!s->paused)
		return;
	s->paused = false;
	if (s->dead)
		return;
	/* Buffered lines go from the loop, not from inside the caller; a
	 * stream_update() before then re-feeds the event it would drop. */
	s->kick = true;
	ev_feed_event(s->loop, &s->io, EV_CUSTOM);
}

void
stream_batch_begin(struct stream *s)
{
	s->depth++;
}

void
stream_batch_end(struct stream *s)
{
	if (--s->depth == 0)
		stream_update(s);
}

void
stream_read_bytes(struct stream *s, size_t n)
{
	if (s->ops->on_bytes == NULL)
		fatal("%s: no on_bytes callback", __func__);
	s->want_bytes = n;
}

void
stream_wait_drain(struct stream *s)
{
	if (s->ops->on_drain == NULL)
		fatal("%s: no on_drain callback", __func__);
	s->want_drain = true;
	if (s->depth == 0)
		stream_update(s);
}

void
stream_set_timeout(struct stream *s, double seconds)
{
	s->timer.repeat = seconds;
	if (!s->dead)
		ev_timer_again(s->loop, &s->timer);
}

void
stream_set_deadline(struct stream *s, double seconds, bool at_input)
{
	ev_timer_stop(s->loop, &s->deadline);
	s->deadline_at_input = 0;
	if (seconds <= 0 || s->dead || s->closing)
		return;
	if (at_input && s->instart == s->inlen) {
		s->deadline_at_input = seconds;
		return;
	}
	ev_timer_set(&s->deadline, seconds, 0.);
	ev_timer_start(s->loop, &s->deadline);
}

const struct sockaddr *
stream_peer(const struct stream *s)
{
	return (const struct sockaddr *)&s->peer;
}

const char *
stream_peer_str(const struct stream *s)
{
	return s->peerstr;
}

const struct sockaddr *
stream_local(const struct stream *s)
{
	return (const struct sockaddr *)&s->local;
}
