/* The probe engine. One probe is one non-blocking connection on a libev
 * loop, driven through explicit phases (connecting, TLS handshake, session,
 * done) by one ev_io and one ev_timer that bounds the whole probe. The
 * protocol files hold the conversation; the engine reads lines, writes
 * commands, does TLS and reports exactly once.
 *
 * Reentrancy: protocol callbacks only record what they want (a verdict,
 * the end, a TLS upgrade); the probe is closed, reported and freed only at
 * the end of the libev callback that got there (probe_settle). */
#include "probe_proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "../common/proxy.h"
#include "../common/tls.h"

#define PROBE_DEFAULT_TIMEOUT_MS 1000

enum probe_phase {
	PHASE_CONNECTING,
	PHASE_HANDSHAKE,
	PHASE_SESSION,
	PHASE_DONE,
};

/* What a transport read or write returned besides a byte count. */
enum { PROBE_IO_EOF = 0, PROBE_IO_AGAIN = -1, PROBE_IO_ERROR = -2 };

struct probe {
	struct ev_loop *loop;
	struct probe_spec spec;
	struct addr addr;
	const struct probe_proto *proto;
	enum probe_tls tls;
	probe_cb cb;
	void *arg;

	enum probe_phase phase;
	int fd;
	ev_io io;
	int io_events;
	ev_timer timer;
	struct timespec start;

	SSL_CTX *ctx;
	SSL *ssl;
	bool tls_want_write; /* the last SSL call needs the socket writable */
	bool tls_broken;     /* a fatal TLS error: no close_notify */

	char in[PROBE_LINE_MAX];
	size_t inlen;
	char out[PROBE_OUT_MAX];
	size_t outlen, outoff;

	struct probe_conv conv;
	bool upgrade_pending; /* probe_starttls() during this line */
	bool quitting;	      /* on_quit was called */
	bool decided;
	struct probe_result result;
};

static const struct probe_kind {
	const struct probe_proto *proto;
	enum probe_tls tls;
} probe_kinds[CHECK_TYPE_COUNT] = {
    [CHECK_NONE] = {NULL, PROBE_TLS_NONE},
    [CHECK_TCP] = {&probe_proto_tcp, PROBE_TLS_NONE},
    [CHECK_SMTP] = {&probe_proto_smtp, PROBE_TLS_NONE},
    [CHECK_IMAP] = {&probe_proto_imap, PROBE_TLS_NONE},
    [CHECK_POP3] = {&probe_proto_pop3, PROBE_TLS_NONE},
    [CHECK_HTTP] = {&probe_proto_http, PROBE_TLS_NONE},
    [CHECK_SMTPS] = {&probe_proto_smtp, PROBE_TLS_IMPLICIT},
    [CHECK_IMAPS] = {&probe_proto_imap, PROBE_TLS_IMPLICIT},
    [CHECK_POP3S] = {&probe_proto_pop3, PROBE_TLS_IMPLICIT},
    [CHECK_HTTPS] = {&probe_proto_http, PROBE_TLS_IMPLICIT},
    [CHECK_SMTP_STARTTLS] = {&probe_proto_smtp, PROBE_TLS_STARTTLS},
    [CHECK_IMAP_STARTTLS] = {&probe_proto_imap, PROBE_TLS_STARTTLS},
    [CHECK_POP3_STARTTLS] = {&probe_proto_pop3, PROBE_TLS_STARTTLS},
};

static void probe_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void probe_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void probe_read(struct probe *p);
static void probe_flush(struct probe *p);

static double
probe_elapsed_ms(const struct probe *p)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - p->start.tv_sec) * 1e3 +
	       (double)(now.tv_nsec - p->start.tv_nsec) / 1e6;
}

/* Records the verdict unless one is in already. */
static void
probe_decide(struct probe *p, bool ok, const char *fmt, va_list ap)
{
	if (p->decided)
		return;
	p->decided = true;
	p->result.ok = ok;
	p->result.latency_ms = probe_elapsed_ms(p);
	vsnprintf(p->result.reason, sizeof(p->result.reason), fmt, ap);
}

static void
probe_verdict(struct probe *p, bool ok, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	probe_decide(p, ok, fmt, ap);
	va_end(ap);
}

void
probe_end(struct probe *p)
{
	p->phase = PHASE_DONE;
}

/* A failure after which there is no session left to end politely. */
static void
probe_abort(struct probe *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	probe_decide(p, false, fmt, ap);
	va_end(ap);
	probe_end(p);
}

static void
probe_quit(struct probe *p)
{
	if (p->quitting || p->phase != PHASE_SESSION)
		return;
	p->quitting = true;
	if (p->proto->on_quit == NULL)
		probe_end(p);
	else
		p->proto->on_quit(p, &p->conv);
}

void
probe_pass(struct probe *p)
{
	probe_verdict(p, true, "ok");
	probe_quit(p);
}

void
probe_fail(struct probe *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	probe_decide(p, false, fmt, ap);
	va_end(ap);
	probe_quit(p);
}

void
probe_starttls(struct probe *p)
{
	p->upgrade_pending = true;
}

const struct probe_spec *
probe_spec(const struct probe *p)
{
	return &p->spec;
}

enum probe_tls
probe_tls_mode(const struct probe *p)
{
	return p->tls;
}

/* Closes the connection: close_notify when TLS is healthy, then the
 * socket. Stops both watchers. */
static void
probe_close(struct probe *p)
{
	ev_io_stop(p->loop, &p->io);
	ev_timer_stop(p->loop, &p->timer);
	if (p->ssl != NULL) {
		if (!p->tls_broken && SSL_is_init_finished(p->ssl)) {
			ERR_clear_error();
			SSL_shutdown(p->ssl); /* one try; we do not wait */
		}
		SSL_free(p->ssl);
		p->ssl = NULL;
	}
	SSL_CTX_free(p->ctx);
	p->ctx = NULL;
	if (p->fd != -1)
		close(p->fd);
	p->fd = -1;
	ERR_clear_error();
}

/* At the end of every libev callback: a probe that is done is closed,
 * reported and freed. */
static void
probe_settle(struct probe *p)
{
	struct probe_result r;

	if (p->phase != PHASE_DONE)
		return;
	probe_close(p);
	if (!p->decided)
		probe_verdict(p, false, "internal: no verdict");
	r = p->result;
	p->cb(p->arg, &r);
	free(p);
}

/* Listens for what the current phase waits on. */
static void
probe_io_update(struct probe *p)
{
	int events;

	switch (p->phase) {
	case PHASE_CONNECTING:
		events = EV_WRITE;
		break;
	case PHASE_HANDSHAKE:
		events = p->tls_want_write ? EV_WRITE : EV_READ;
		break;
	case PHASE_SESSION:
		events = EV_READ;
		if (p->outoff < p->outlen || p->tls_want_write)
			events |= EV_WRITE;
		break;
	default:
		return;
	}
	if (events == p->io_events && ev_is_active(&p->io))
		return;
	ev_io_stop(p->loop, &p->io);
	ev_io_set(&p->io, p->fd, events);
	ev_io_start(p->loop, &p->io);
	p->io_events = events;
}

/* Maps an SSL call's failure: PROBE_IO_AGAIN, PROBE_IO_EOF or
 * PROBE_IO_ERROR with the reason in why. */
static int
probe_tls_status(struct probe *p, int ret, char *why, size_t len)
{
	int err = SSL_get_error(p->ssl, ret);

	p->tls_want_write = false;
	switch (err) {
	case SSL_ERROR_WANT_READ:
		return PROBE_IO_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		p->tls_want_write = true;
		return PROBE_IO_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return PROBE_IO_EOF;
	case SSL_ERROR_SYSCALL:
		p->tls_broken = true;
		if (ERR_peek_error() == 0 && errno == 0)
			return PROBE_IO_EOF;
		if (ERR_peek_error() == 0) {
			snprintf(why, len, "%s", strerror(errno));
			return PROBE_IO_ERROR;
		}
		break;
	default:
		p->tls_broken = true;
		break;
	}
	tls_error_string(why, len, "TLS error");
	return PROBE_IO_ERROR;
}

/* Reads what is there: a byte count, PROBE_IO_EOF, PROBE_IO_AGAIN or
 * PROBE_IO_ERROR with the reason in why. */
static int
probe_xread(struct probe *p, char *buf, size_t len, char *why, size_t wlen)
{
	ssize_t n;
	int ret;

	if (p->ssl != NULL) {
		ERR_clear_error();
		errno = 0;
		ret = SSL_read(p->ssl, buf, (int)len);
		if (ret > 0) {
			p->tls_want_write = false;
			return ret;
		}
		return probe_tls_status(p, ret, why, wlen);
	}
	n = recv(p->fd, buf, len, 0);
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return PROBE_IO_AGAIN;
	snprintf(why, wlen, "%s", strerror(errno));
	return PROBE_IO_ERROR;
}

/* Writes what it can; same returns as probe_xread. */
static int
probe_xwrite(struct probe *p, const char *buf, size_t len, char *why,
	     size_t wlen)
{
	ssize_t n;
	int ret;

	if (p->ssl != NULL) {
		ERR_clear_error();
		errno = 0;
		ret = SSL_write(p->ssl, buf, (int)len);
		if (ret > 0) {
			p->tls_want_write = false;
			return ret;
		}
		ret = probe_tls_status(p, ret, why, wlen);
		return ret == PROBE_IO_EOF ? PROBE_IO_ERROR : ret;
	}
	n = send(p->fd, buf, len, MSG_NOSIGNAL);
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return PROBE_IO_AGAIN;
	snprintf(why, wlen, "%s", strerror(errno));
	return PROBE_IO_ERROR;
}

/* A failed read or write: the session is gone. After a verdict this is
 * just the end of the polite ending. */
static void
probe_lost(struct probe *p, int status, const char *why)
{
	if (p->decided)
		probe_end(p);
	else if (status == PROBE_IO_EOF)
		probe_abort(p, "connection closed");
	else
		probe_abort(p, "connection lost: %s", why);
}

static void
probe_flush(struct probe *p)
{
	char why[64];
	int n;

	while (p->phase == PHASE_SESSION && p->outoff < p->outlen) {
		n = probe_xwrite(p, p->out + p->outoff, p->outlen - p->outoff,
				 why, sizeof(why));
		if (n == PROBE_IO_AGAIN)
			return;
		if (n < 0) {
			probe_lost(p, n, why);
			return;
		}
		p->outoff += (size_t)n;
	}
	p->outoff = p->outlen = 0;
}

void
probe_send(struct probe *p, const char *fmt, ...)
{
	size_t room = sizeof(p->out) - p->outlen;
	va_list ap;
	int n;

	if (p->phase != PHASE_SESSION)
		return;
	va_start(ap, fmt);
	n = vsnprintf(p->out + p->outlen, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n + 2 >= room) {
		probe_abort(p, "internal: command too long");
		return;
	}
	memcpy(p->out + p->outlen + n, "\r\n", 2);
	p->outlen += (size_t)n + 2;
	probe_flush(p);
}

/* Hands every complete line to the protocol, until the session leaves
 * the session phase or asks for a TLS upgrade. */
static void
probe_lines(struct probe *p)
{
	size_t off = 0;
	char *line;

	while (p->phase == PHASE_SESSION && !p->upgrade_pending &&
	       (line = probe_line_next(p->in, p->inlen, &off)) != NULL)
		p->proto->on_line(p, &p->conv, line);
	memmove(p->in, p->in + off, p->inlen - off);
	p->inlen -= off;
}

/* Trust is checked only after a STARTTLS upgrade: the chain against
 * ca_file (or the system store) and the days left. The peer is probed by
 * address, so no host name is checked. Returns 0, or -1 with the probe
 * failed politely. */
static int
probe_tls_verify(struct probe *p)
{
	X509 *cert = SSL_get0_peer_certificate(p->ssl);
	long v = SSL_get_verify_result(p->ssl);
	int days, secs;

	if (cert == NULL) {
		probe_fail(p, "no server certificate");
		return -1;
	}
	if (v != X509_V_OK) {
		probe_fail(p, "certificate does not verify: %s",
			   X509_verify_cert_error_string(v));
		return -1;
	}
	if (tls_cert_expiry(cert, &days, &secs) == -1) {
		probe_fail(p, "certificate has an unreadable notAfter");
		return -1;
	}
	(void)secs; /* days counts whole days left: less than cert_days */
	if (p->spec.cert_days > 0 && days < p->spec.cert_days) {
		probe_fail(p, "certificate expires in %d day%s", days,
			   days == 1 ? "" : "s");
		return -1;
	}
	return 0;
}

/* The handshake is done: the protocol goes on inside TLS. */
static void
probe_tls_up(struct probe *p)
{
	p->phase = PHASE_SESSION;
	if (p->tls == PROBE_TLS_IMPLICIT) {
		p->proto->on_connect(p, &p->conv);
	} else if (probe_tls_verify(p) == 0) {
		p->conv.upgraded = true;
		p->proto->on_upgrade(p, &p->conv);
	}
	probe_flush(p);
	probe_read(p);
}

static void
probe_handshake(struct probe *p)
{
	char why[64];
	int ret;

	ERR_clear_error();
	errno = 0;
	ret = SSL_connect(p->ssl);
	if (ret == 1) {
		p->tls_want_write = false;
		probe_tls_up(p);
		return;
	}
	ret = probe_tls_status(p, ret, why, sizeof(why));
	if (ret == PROBE_IO_AGAIN)
		return;
	if (ret == PROBE_IO_EOF)
		snprintf(why, sizeof(why), "connection closed");
	probe_abort(p, "TLS handshake failed: %s", why);
}

/* Implicit TLS does not verify the certificate: nodes commonly serve
 * self-signed ones there, and the probe asks whether the service answers.
 * The -starttls forms verify (probe_tls_verify). Each probe makes its own
 * context: a probe every few seconds per node makes that cheap next to
 * the handshake, and a changed CA file is read at the next probe. */
static void
probe_tls_begin(struct probe *p)
{
	bool verify = p->tls == PROBE_TLS_STARTTLS;
	char why[64];

	p->phase = PHASE_HANDSHAKE;
	p->ctx = tls_client_ctx(p->spec.ca_file, verify, why, sizeof(why));
	if (p->ctx == NULL) {
		probe_abort(p, "TLS setup failed: %s", why);
		return;
	}
	if ((p->ssl = SSL_new(p->ctx)) == NULL ||
	    SSL_set_fd(p->ssl, p->fd) != 1) {
		probe_abort(
		    p, "TLS setup failed: %s",
		    tls_error_string(why, sizeof(why), "out of memory"));
		return;
	}
	SSL_set_connect_state(p->ssl);
	probe_handshake(p);
}

/* After probe_starttls(): the go-ahead must be the last thing the server
 * sent in plaintext. */
static void
probe_upgrade(struct probe *p)
{
	p->upgrade_pending = false;
	if (p->inlen > 0 || p->outoff < p->outlen) {
		probe_abort(p, "plaintext after the STARTTLS go-ahead");
		return;
	}
	probe_tls_begin(p);
}

static void
probe_read(struct probe *p)
{
	char why[64];
	int n;

	while (p->phase == PHASE_SESSION) {
		if (p->inlen == sizeof(p->in)) {
			if (!p->decided) {
				probe_fail(p, "line too long");
				if (p->phase != PHASE_SESSION)
					return;
			}
			p->inlen =
			    0; /* ending: what is said no longer counts */
		}
		n = probe_xread(p, p->in + p->inlen, sizeof(p->in) - p->inlen,
				why, sizeof(why));
		if (n == PROBE_IO_AGAIN)
			return;
		if (n <= 0) {
			probe_lost(p, n, why);
			return;
		}
		p->inlen += (size_t)n;
		probe_lines(p);
		if (p->upgrade_pending) {
			probe_upgrade(p);
			return;
		}
	}
}

/* A node behind lbd with proxy_protocol expects a header first; a probe
 * says it speaks for itself (v1 UNKNOWN, v2 LOCAL), so the node keeps the
 * real peer. It fits any fresh socket buffer, so it goes out whole. */
static int
probe_send_proxy(struct probe *p)
{
	unsigned char buf[PROXY_V2_MAX];
	struct sockaddr unspec = {.sa_family = AF_UNSPEC};
	int n =
	    p->spec.proxy_version == 1
		? proxy_v1_encode((char *)buf, sizeof(buf), &unspec, &unspec)
		: proxy_v2_encode(buf, sizeof(buf), &unspec, &unspec);
	if (n < 0 || send(p->fd, buf, (size_t)n, MSG_NOSIGNAL) != n) {
		probe_abort(p, "cannot send the PROXY header");
		return -1;
	}
	return 0;
}

static void
probe_connected(struct probe *p)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return;
	if (err == ECONNREFUSED) {
		probe_abort(p, "connect refused");
		return;
	}
	if (err != 0) {
		probe_abort(p, "connect: %s", strerror(err));
		return;
	}
	if (p->spec.proxy_version && probe_send_proxy(p) < 0)
		return;
	if (p->tls == PROBE_TLS_IMPLICIT) {
		probe_tls_begin(p);
		return;
	}
	p->phase = PHASE_SESSION;
	p->proto->on_connect(p, &p->conv);
	probe_flush(p);
	probe_read(p);
}

static void
probe_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct probe *p = w->data;

	(void)loop;
	(void)revents;
	switch (p->phase) {
	case PHASE_CONNECTING:
		probe_connected(p);
		break;
	case PHASE_HANDSHAKE:
		probe_handshake(p);
		break;
	case PHASE_SESSION:
		/* TLS may need a write to read or a read to write: try both. */
		probe_flush(p);
		probe_read(p);
		break;
	case PHASE_DONE:
		break;
	}
	probe_io_update(p);
	probe_settle(p);
}

/* The whole probe's time is up; also delivers a verdict reached in
 * probe_start() (a zero timer), so that cb never runs inside it. */
static void
probe_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct probe *p = w->data;

	(void)loop;
	(void)revents;
	if (p->phase == PHASE_CONNECTING)
		probe_verdict(p, false, "connect timeout");
	else if (p->phase == PHASE_HANDSHAKE)
		probe_verdict(p, false, "TLS handshake timeout");
	else
		probe_verdict(p, false, "timeout");
	probe_end(p);
	probe_settle(p);
}

/* Opens the socket and starts connecting. Returns -1 only when there is
 * no socket; a connect that fails at once leaves a verdict. */
static int
probe_connect(struct probe *p)
{
	const struct sockaddr *sa = (const struct sockaddr *)&p->addr.ss;

	p->fd = socket(sa->sa_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd == -1)
		return -1;
	if (connect(p->fd, sa, p->addr.len) == 0 || errno == EINPROGRESS ||
	    errno == EINTR)
		return 0; /* probe_connected() reads the outcome */
	if (errno == ECONNREFUSED)
		probe_abort(p, "connect refused");
	else
		probe_abort(p, "connect: %s", strerror(errno));
	return 0;
}

struct probe *
probe_start(struct ev_loop *loop, const struct addr *addr,
	    const struct probe_spec *spec, probe_cb cb, void *arg)
{
	struct probe *p;
	int timeout_ms;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->loop = loop;
	p->spec = *spec;
	p->addr = *addr;
	p->cb = cb;
	p->arg = arg;
	p->fd = -1;
	clock_gettime(CLOCK_MONOTONIC, &p->start);
	if ((unsigned)spec->type < CHECK_TYPE_COUNT) {
		p->proto = probe_kinds[spec->type].proto;
		p->tls = probe_kinds[spec->type].tls;
	}
	timeout_ms =
	    spec->timeout_ms > 0 ? spec->timeout_ms : PROBE_DEFAULT_TIMEOUT_MS;
	ev_init(&p->io, probe_io_cb);
	p->io.data = p;
	ev_timer_init(&p->timer, probe_timer_cb, timeout_ms / 1e3, 0.);
	p->timer.data = p;

	if (p->proto == NULL) /* check = none: always passes */
		probe_verdict(p, spec->type == CHECK_NONE, "%s",
			      spec->type == CHECK_NONE ? "ok"
						       : "unknown check type");
	else if (probe_connect(p) == -1)
		goto fail;

	if (p->decided) {
		ev_timer_set(&p->timer, 0., 0.);
	} else {
		ev_io_set(&p->io, p->fd, EV_WRITE);
		ev_io_start(loop, &p->io);
		p->io_events = EV_WRITE;
	}
	ev_timer_start(loop, &p->timer);
	return p;
fail:
	free(p);
	return NULL;
}

void
probe_cancel(struct probe *p)
{
	if (p == NULL)
		return;
	probe_close(p);
	free(p);
}

const char *
probe_local_literal(const struct probe *p, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN];
	const void *src;

	memset(&ss, 0, sizeof(ss));
	if (getsockname(p->fd, (struct sockaddr *)&ss, &sl) == -1)
		ss.ss_family = AF_UNSPEC;
	if (ss.ss_family == AF_INET6) {
		src = &((struct sockaddr_in6 *)&ss)->sin6_addr;
		if (inet_ntop(AF_INET6, src, host, sizeof(host)) != NULL) {
			snprintf(buf, len, "[IPv6:%s]", host);
			return buf;
		}
	} else if (ss.ss_family == AF_INET) {
		src = &((struct sockaddr_in *)&ss)->sin_addr;
		if (inet_ntop(AF_INET, src, host, sizeof(host)) != NULL) {
			snprintf(buf, len, "[%s]", host);
			return buf;
		}
	}
	snprintf(buf, len, "[127.0.0.1]");
	return buf;
}

const char *
probe_peer(const struct probe *p, char *buf, size_t len)
{
	return addr_fmt((const struct sockaddr *)&p->addr.ss, buf, len);
}
