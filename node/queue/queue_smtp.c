/* The outbound SMTP client: a connect phase (non-blocking connect,
 * watched for writability, with a timeout), then the dialogue over a
 * common/stream.h stream, one state per command awaiting its reply. The
 * whole client ends in one place, qsmtp_end(), reached from the
 * stream's on_close, or from the connect phase when no address is left. */
#include "queue_smtp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/sasl.h"
#include "../../common/stream.h"

/* Timeouts in seconds, as Postfix's smtp_*_timeout defaults; each is
 * capped by the job's timeout (smtp_timeout_s). */
#define QSMTP_CONNECT_TIMEOUT 30
#define QSMTP_HELO_TIMEOUT 300 /* greeting and EHLO */
#define QSMTP_CMD_TIMEOUT 300  /* MAIL, RCPT */
#define QSMTP_DATA_TIMEOUT 120 /* DATA's 354 */
#define QSMTP_BODY_TIMEOUT 180 /* the peer reading the body */
#define QSMTP_DOT_TIMEOUT 300  /* the final dot's reply: twice this */
#define QSMTP_QUIT_TIMEOUT 300
#define QSMTP_LINE_MAX 2048
#define QSMTP_OUTPUT_MAX (8 << 20)
#define QSMTP_SLICE (256 << 10) /* body bytes queued per drain */
/* Connection reuse: idle seconds (Postfix's
 * smtp_connection_cache_time_limit) and messages per connection. */
#define QSMTP_IDLE_S 2.0
#define QSMTP_REUSE_MAX 100
#define QSMTP_NEXTHOP_MAX 300

enum qsmtp_state {
	QS_CONNECT,  /* waiting for the TCP connect */
	QS_GREETING, /* 220 */
	QS_EHLO,
	QS_HELO,
	QS_STARTTLS, /* 220 to STARTTLS */
	QS_TLS,	     /* the handshake */
	QS_AUTH,     /* 235 to AUTH PLAIN */
	QS_MAIL,
	QS_RCPT, /* RCPT rcpt[cur] */
	QS_DATA, /* 354 */
	QS_BODY, /* sending; then the final dot's reply */
	QS_QUIT,
	QS_DONE,
	QS_IDLE, /* in the cache, between transactions */
	QS_RSET, /* 250 to the RSET that begins a reused transaction */
};

static const char *const qsmtp_step[] = {
    [QS_CONNECT] = "connecting",
    [QS_GREETING] = "receiving the greeting",
    [QS_EHLO] = "sending EHLO",
    [QS_HELO] = "sending HELO",
    [QS_STARTTLS] = "sending STARTTLS",
    [QS_TLS] = "starting TLS",
    [QS_AUTH] = "authenticating",
    [QS_MAIL] = "sending MAIL FROM",
    [QS_RCPT] = "sending RCPT TO",
    [QS_DATA] = "sending DATA",
    [QS_BODY] = "sending message body",
    [QS_QUIT] = "sending QUIT",
    [QS_DONE] = "done",
    [QS_IDLE] = "idle",
    [QS_RSET] = "sending RSET",
};

struct queue_smtp_cache {
	struct queue_smtp *idle; /* QS_IDLE connections */
};

struct queue_smtp {
	struct ev_loop *loop;
	struct queue_dest dest;
	size_t addr; /* the address in use */
	struct queue_smtp_job job;
	queue_smtp_cb cb; /* NULL: aborted */
	void *arg;
	enum qsmtp_state state;

	int fd; /* while connecting */
	ev_io cio;
	ev_timer ctimer; /* connect timeout, and the first kick */
	struct stream *st;

	char reply[QUEUE_REPLY_MAX]; /* the reply being read */
	size_t cur;		     /* recipient of the RCPT in flight */
	size_t accepted;	     /* recipients the peer took */
	bool transaction;	     /* MAIL was answered: no next address */
	bool offers_tls;	     /* the last EHLO listed STARTTLS */
	bool offers_pipelining, offers_8bitmime, offers_smtputf8;
	bool offers_size;
	unsigned long long size_max; /* SIZE's limit; 0: none given */
	bool pipelined;		     /* MAIL, RCPTs and DATA went together */
	bool mail_failed;	     /* MAIL refused: the rest is ignored */
	bool eightbit;		     /* the message has 8-bit bytes */
	bool utf8_addrs;	     /* an address is not ASCII */
	bool tls_up;
	bool authed;
	bool committed;	  /* the final dot was answered */
	const char *body; /* mmap of the message */
	size_t off;	  /* body bytes queued */
	char relay[300];
	struct queue_smtp_result *res;

	struct queue_smtp_cache *cache; /* where it idles; NULL: QUIT */
	char nexthop[QSMTP_NEXTHOP_MAX];
	unsigned txns;	   /* transactions begun on the connection */
	bool rset_pending; /* a reused connection's RSET: not yet 250 */
	bool tls_fallback; /* the handshake failed under may */
	bool no_starttls;  /* after that: plain text on this address */
	struct queue_smtp *idle_next, **idle_prevp; /* in cache->idle */
};

static void qsmtp_connect_next(struct queue_smtp *c);

static double
qsmtp_limit(const struct queue_smtp *c, double dflt)
{
	return c->job.timeout > 0 && c->job.timeout < dflt ? c->job.timeout
							   : dflt;
}
static void qsmtp_mail(struct queue_smtp *c);
static void qsmtp_auth(struct queue_smtp *c);
static void qsmtp_line(struct queue_smtp *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
qsmtp_relay_name(struct queue_smtp *c)
{
	const struct queue_dest_addr *a = &c->dest.addr[c->addr];
	char host[ADDR_STRLEN];
	addr_host((const struct sockaddr *)&a->ss, host, sizeof(host));
	snprintf(c->relay, sizeof(c->relay), "%.200s[%s]:%u", a->host, host,
		 addr_port((const struct sockaddr *)&a->ss));
}

/* Sets every recipient still without a final answer (code 0) to reply. */
static void
qsmtp_settle(struct queue_smtp *c, int code, const char *reply)
{
	for (size_t i = 0; i < c->job.nrcpt; i++)
		if (c->res[i].code == 0 ||
		    (c->res[i].code / 100 == 2 && !c->committed && code != 0)) {
			c->res[i].code = code;
			snprintf(c->res[i].reply, sizeof(c->res[i].reply), "%s",
				 reply);
		}
}

/* The transaction's results as the caller gets them: a recipient with
 * no answer, or taken at RCPT but never completed, is deferred. */
static void
qsmtp_results_final(struct queue_smtp *c)
{
	for (size_t i = 0; i < c->job.nrcpt; i++) {
		struct queue_smtp_result *r = &c->res[i];
		if (r->code == 0 || (r->code / 100 == 2 && !c->committed)) {
			if (r->code != 0 || r->reply[0] == '\0')
				snprintf(r->reply, sizeof(r->reply),
					 "451 4.4.2 delivery not completed");
			r->code = 451;
		}
	}
}

static void
qsmtp_unmap(struct queue_smtp *c)
{
	if (c->body)
		munmap((void *)c->body, c->job.msgsize);
	c->body = NULL;
}

/* Out of the cache's idle list (when in it). */
static void
qsmtp_unidle(struct queue_smtp *c)
{
	if (c->idle_prevp == NULL)
		return;
	if ((*c->idle_prevp = c->idle_next) != NULL)
		c->idle_next->idle_prevp = c->idle_prevp;
	c->idle_prevp = NULL;
	c->idle_next = NULL;
}

/* The end: results to the caller, everything freed. */
static void
qsmtp_end(struct queue_smtp *c)
{
	qsmtp_unmap(c);
	qsmtp_unidle(c);
	if (c->cb) {
		qsmtp_results_final(c);
		c->cb(c->res, c->relay[0] ? c->relay : "none", c->arg);
	}
	free(c->res);
	free(c);
}

static void qsmtp_send(struct queue_smtp *c, enum qsmtp_state next,
		       double timeout, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void qsmtp_vline(struct queue_smtp *c, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
qsmtp_vline(struct queue_smtp *c, const char *fmt, va_list ap)
{
	char buf[1024];
	int n = stream_vline(c->st, buf, sizeof(buf), fmt, ap);
	log_debug("qsmtp %s: > %.*s", c->relay, n, buf);
}

static void
qsmtp_send(struct queue_smtp *c, enum qsmtp_state next, double timeout,
	   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	qsmtp_vline(c, fmt, ap);
	va_end(ap);
	c->state = next;
	stream_set_timeout(c->st, timeout);
}

/* A command line that does not change the state (pipelined ones). */
static void
qsmtp_line(struct queue_smtp *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	qsmtp_vline(c, fmt, ap);
	va_end(ap);
}

/* Ends the session politely. */
static void
qsmtp_quit(struct queue_smtp *c)
{
	qsmtp_unidle(c);
	qsmtp_send(c, QS_QUIT, qsmtp_limit(c, QSMTP_QUIT_TIMEOUT), "QUIT");
	stream_close(c->st, "QUIT");
}

/* The transaction ended with every command answered: the results go to
 * the caller, and the connection idles in the cache for the next
 * message to its next hop, or QUITs. The connection joins the cache
 * before the caller hears, so that its next message may take it. */
static void
qsmtp_txn_over(struct queue_smtp *c)
{
	if (c->cache == NULL || c->cb == NULL || c->txns >= QSMTP_REUSE_MAX) {
		qsmtp_quit(c);
		return;
	}
	char relay[sizeof(c->relay)];
	struct queue_smtp_result *res = c->res;
	queue_smtp_cb cb = c->cb;
	void *arg = c->arg;
	qsmtp_results_final(c);
	qsmtp_unmap(c);
	snprintf(relay, sizeof(relay), "%s", c->relay);
	c->res = NULL;
	c->cb = NULL;
	c->state = QS_IDLE;
	if ((c->idle_next = c->cache->idle) != NULL)
		c->idle_next->idle_prevp = &c->idle_next;
	c->cache->idle = c;
	c->idle_prevp = &c->cache->idle;
	stream_set_timeout(c->st, QSMTP_IDLE_S);
	cb(res, relay, arg);
	free(res);
}

/* The session failed before a transaction: this address is done with
 * (reply noted for every recipient if no other address works). */
static void
qsmtp_host_failed(struct queue_smtp *c, const char *reply)
{
	for (size_t i = 0; i < c->job.nrcpt; i++) {
		c->res[i].code = 0;
		snprintf(c->res[i].reply, sizeof(c->res[i].reply), "%s", reply);
	}
	qsmtp_quit(c);
}

/* Queues the next slice of the body; the final dot once all is out. */
static void
qsmtp_body_feed(struct queue_smtp *c)
{
	size_t end = c->job.msgsize, queued = 0;
	while (c->off < end && queued < QSMTP_SLICE) {
		const char *p = c->body + c->off;
		const char *nl = memchr(p, '\n', end - c->off);
		size_t len = nl ? (size_t)(nl - p) : end - c->off;
		c->off += nl ? len + 1 : len;
		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len > 0 && p[0] == '.')
			stream_write(c->st, ".", 1);
		stream_write(c->st, p, len);
		stream_write(c->st, "\r\n", 2);
		queued += len + 3;
	}
	if (c->off < end) {
		stream_wait_drain(c->st);
		return;
	}
	if (c->job.may_commit && !c->job.may_commit(c->arg)) {
		/* No dot: the peer drops the message when we close. */
		qsmtp_settle(c, 451, "451 4.3.0 claim on the message lost");
		stream_close(c->st, "claim lost");
		c->state = QS_DONE;
		return;
	}
	qsmtp_send(c, QS_BODY, qsmtp_limit(c, QSMTP_DOT_TIMEOUT) * 2, ".");
}

static void
qsmtp_on_drain(void *arg)
{
	struct queue_smtp *c = arg;
	if (c->state == QS_DATA && c->body)
		qsmtp_body_feed(c);
}

static void
qsmtp_next_rcpt(struct queue_smtp *c)
{
	if (c->cur < c->job.nrcpt) {
		qsmtp_send(c, QS_RCPT, qsmtp_limit(c, QSMTP_CMD_TIMEOUT),
			   "RCPT TO:<%s>", c->job.rcpts[c->cur]);
		return;
	}
	if (c->accepted == 0) {
		qsmtp_txn_over(c);
		return;
	}
	qsmtp_send(c, QS_DATA, qsmtp_limit(c, QSMTP_DATA_TIMEOUT), "DATA");
}

/* Each recipient the peer accepted at RCPT gets reply (DATA, the dot). */
static void
qsmtp_accepted_get(struct queue_smtp *c, int code, const char *reply)
{
	for (size_t i = 0; i < c->job.nrcpt; i++)
		if (c->res[i].code / 100 == 2) {
			c->res[i].code = code;
			snprintf(c->res[i].reply, sizeof(c->res[i].reply), "%s",
				 reply);
		}
}

/* MAIL, unless the policy wants TLS that is not there. */
static void
qsmtp_mail(struct queue_smtp *c)
{
	if (!c->tls_up && c->job.tls_policy != SMTP_TLS_MAY) {
		char why[QUEUE_REPLY_MAX];
		snprintf(why, sizeof(why),
			 "451 4.7.5 TLS is required, but was not offered "
			 "by %s",
			 c->relay);
		qsmtp_host_failed(c, why);
		return;
	}
	if (c->job.auth_user && !c->authed) {
		qsmtp_auth(c);
		return;
	}
	size_t size =
	    c->job.msgsize + (c->job.prefix ? strlen(c->job.prefix) : 0);
	if (c->offers_size && c->size_max > 0 && size > c->size_max) {
		char why[QUEUE_REPLY_MAX];
		snprintf(why, sizeof(why),
			 "552 5.3.4 message of %zu bytes too big for %s "
			 "(SIZE %llu)",
			 size, c->relay, c->size_max);
		c->transaction = true;
		qsmtp_settle(c, 552, why);
		qsmtp_txn_over(c);
		return;
	}
	char params[64] = "";
	int n = 0;
	if (c->offers_size)
		n += snprintf(params + n, sizeof(params) - (size_t)n,
			      " SIZE=%zu", size);
	if (c->offers_8bitmime && c->eightbit)
		n += snprintf(params + n, sizeof(params) - (size_t)n,
			      " BODY=8BITMIME");
	if (c->offers_smtputf8 && c->utf8_addrs)
		snprintf(params + n, sizeof(params) - (size_t)n, " SMTPUTF8");
	c->pipelined = c->offers_pipelining;
	qsmtp_send(c, QS_MAIL, qsmtp_limit(c, QSMTP_CMD_TIMEOUT),
		   "MAIL FROM:<%s>%s", c->job.sender, params);
	if (!c->pipelined)
		return;
	/* RFC 2920: the RCPTs and DATA go with MAIL; the replies come in
	 * order and are taken one state after the other. */
	for (size_t i = 0; i < c->job.nrcpt; i++)
		qsmtp_line(c, "RCPT TO:<%s>", c->job.rcpts[i]);
	qsmtp_line(c, "DATA");
}

/* One EHLO line's extension (RFC 5321 4.1.1.1). */
static void
qsmtp_ehlo_keyword(struct queue_smtp *c, const char *kw)
{
	if (strcasecmp(kw, "STARTTLS") == 0)
		c->offers_tls = true;
	else if (strcasecmp(kw, "PIPELINING") == 0)
		c->offers_pipelining = true;
	else if (strcasecmp(kw, "8BITMIME") == 0)
		c->offers_8bitmime = true;
	else if (strcasecmp(kw, "SMTPUTF8") == 0)
		c->offers_smtputf8 = true;
	else if (strncasecmp(kw, "SIZE", 4) == 0 &&
		 (kw[4] == '\0' || kw[4] == ' ')) {
		c->offers_size = true;
		c->size_max = kw[4] ? strtoull(kw + 5, NULL, 10) : 0;
	}
}

/* What an EHLO may have said is forgotten before the next one. */
static void
qsmtp_ehlo_forget(struct queue_smtp *c)
{
	c->offers_tls = c->offers_pipelining = c->offers_8bitmime = false;
	c->offers_smtputf8 = c->offers_size = false;
	c->size_max = 0;
}

/* AUTH PLAIN (RFC 4616) with the relayhost's credentials: inside TLS
 * only, so the password never crosses the network in clear. */
static void
qsmtp_auth(struct queue_smtp *c)
{
	unsigned char plain[600];
	char b64[820], why[QUEUE_REPLY_MAX];
	size_t ul = strlen(c->job.auth_user), pl = strlen(c->job.auth_password);
	if (!c->tls_up) {
		snprintf(why, sizeof(why),
			 "451 4.7.0 no TLS with %s: AUTH not sent", c->relay);
		qsmtp_host_failed(c, why);
		return;
	}
	if (ul + pl + 2 > sizeof(plain)) {
		qsmtp_host_failed(c,
				  "451 4.7.0 relayhost credentials too long");
		return;
	}
	plain[0] = '\0';
	memcpy(plain + 1, c->job.auth_user, ul);
	plain[1 + ul] = '\0';
	memcpy(plain + 2 + ul, c->job.auth_password, pl);
	long n = base64_encode(plain, ul + pl + 2, b64, sizeof(b64));
	explicit_bzero(plain, sizeof(plain));
	if (n < 0) {
		qsmtp_host_failed(c,
				  "451 4.7.0 relayhost credentials too long");
		return;
	}
	c->state = QS_AUTH;
	stream_printf(c->st, "AUTH PLAIN %s\r\n", b64);
	explicit_bzero(b64, sizeof(b64));
	log_debug("qsmtp %s: > AUTH PLAIN ...", c->relay);
	stream_set_timeout(c->st, qsmtp_limit(c, QSMTP_CMD_TIMEOUT));
}

/* A whole reply (its last line) arrived in the current state. */
static void
qsmtp_reply(struct queue_smtp *c, int code)
{
	int cls = code / 100;
	switch (c->state) {
	case QS_GREETING:
		if (cls != 2)
			return qsmtp_host_failed(c, c->reply);
		qsmtp_ehlo_forget(c);
		qsmtp_send(c, QS_EHLO, qsmtp_limit(c, QSMTP_HELO_TIMEOUT),
			   "EHLO %s", c->job.helo);
		return;
	case QS_EHLO:
		if (cls == 5 && !c->tls_up) {
			qsmtp_ehlo_forget(c);
			qsmtp_send(c, QS_HELO,
				   qsmtp_limit(c, QSMTP_HELO_TIMEOUT),
				   "HELO %s", c->job.helo);
			return;
		}
		if (cls != 2)
			return qsmtp_host_failed(c, c->reply);
		if (!c->tls_up && c->job.tls && c->offers_tls &&
		    !c->no_starttls) {
			qsmtp_send(c, QS_STARTTLS,
				   qsmtp_limit(c, QSMTP_HELO_TIMEOUT),
				   "STARTTLS");
			return;
		}
		qsmtp_mail(c);
		return;
	case QS_HELO:
		if (cls != 2)
			return qsmtp_host_failed(c, c->reply);
		qsmtp_mail(c);
		return;
	case QS_STARTTLS:
		if (code != 220) {
			/* refused: may goes on in plain text (RFC 3207 4.1),
			 * encrypt and verify stop there */
			if (c->job.tls_policy == SMTP_TLS_MAY)
				log_warn("qsmtp: %s refused STARTTLS (%s): "
					 "going on in plain text",
					 c->relay, c->reply);
			qsmtp_mail(c);
			return;
		}
		c->state = QS_TLS;
		stream_starttls_client(c->st, c->job.tls,
				       c->dest.addr[c->addr].host,
				       c->job.tls_policy == SMTP_TLS_VERIFY);
		return;
	case QS_AUTH:
		if (code != 235)
			return qsmtp_host_failed(c, c->reply);
		c->authed = true;
		qsmtp_mail(c);
		return;
	case QS_MAIL:
		c->transaction = true;
		c->cur = 0;
		if (cls != 2) {
			qsmtp_settle(c, code, c->reply);
			c->mail_failed = true;
			if (!c->pipelined) {
				qsmtp_txn_over(c);
				return;
			}
			c->state = QS_RCPT; /* their replies still come */
			return;
		}
		if (c->pipelined)
			c->state = QS_RCPT;
		else
			qsmtp_next_rcpt(c);
		return;
	case QS_RCPT:
		if (!c->mail_failed) {
			c->res[c->cur].code = code;
			snprintf(c->res[c->cur].reply,
				 sizeof(c->res[c->cur].reply), "%s", c->reply);
			if (cls == 2)
				c->accepted++;
		}
		c->cur++;
		if (!c->pipelined)
			qsmtp_next_rcpt(c);
		else if (c->cur == c->job.nrcpt)
			c->state = QS_DATA;
		return;
	case QS_DATA:
		if (code == 354 && (c->accepted == 0 || c->mail_failed)) {
			/* RFC 2920 3.1: a 354 nobody can use gets an empty
			 * message, then QUIT. */
			qsmtp_send(c, QS_BODY,
				   qsmtp_limit(c, QSMTP_DOT_TIMEOUT) * 2, ".");
			return;
		}
		if (code != 354) {
			qsmtp_accepted_get(c, code, c->reply);
			qsmtp_txn_over(c);
			return;
		}
		stream_set_timeout(c->st, qsmtp_limit(c, QSMTP_BODY_TIMEOUT));
		if (c->job.prefix)
			stream_write(c->st, c->job.prefix,
				     strlen(c->job.prefix));
		c->off = 0;
		qsmtp_body_feed(c);
		return;
	case QS_BODY:
		c->committed = cls == 2;
		qsmtp_accepted_get(c, code, c->reply);
		qsmtp_txn_over(c);
		return;
	case QS_RSET:
		if (cls != 2) /* a new connection for this message */
			return qsmtp_quit(c);
		c->rset_pending = false;
		qsmtp_mail(c);
		return;
	default:
		return;
	}
}

static void
qsmtp_on_line(void *arg, char *line, size_t len, bool crlf, bool toolong)
{
	struct queue_smtp *c = arg;
	(void)crlf;
	(void)toolong;
	log_debug("qsmtp %s: < %s", c->relay, line);
	if (c->state == QS_QUIT || c->state == QS_DONE)
		return;
	if (c->state == QS_IDLE) { /* a 421 before closing, or noise */
		qsmtp_unidle(c);
		c->state = QS_DONE;
		stream_close(c->st, "input while idle");
		return;
	}
	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
	    line[1] > '9' || line[2] < '0' || line[2] > '9' ||
	    (len > 3 && line[3] != ' ' && line[3] != '-')) {
		char why[QUEUE_REPLY_MAX];
		snprintf(why, sizeof(why),
			 "451 4.5.0 %s: bad reply while %s: %.100s", c->relay,
			 qsmtp_step[c->state], line);
		if (c->transaction)
			qsmtp_settle(c, 451, why);
		else
			qsmtp_host_failed(c, why);
		c->state = QS_DONE;
		stream_close(c->st, "bad reply");
		return;
	}
	if (c->state == QS_EHLO && len > 4)
		qsmtp_ehlo_keyword(c, line + 4);
	if (len > 3 && line[3] == '-')
		return; /* continuation: the last line decides */
	snprintf(c->reply, sizeof(c->reply), "%s", line);
	qsmtp_reply(c, (line[0] - '0') * 100 + (line[1] - '0') * 10 +
			   (line[2] - '0'));
}

static void
qsmtp_on_ready(void *arg)
{
	struct queue_smtp *c = arg;
	if (c->state == QS_TLS) { /* RFC 3207 4.2: start over with EHLO */
		c->tls_up = true;
		log_info("qsmtp: TLS with %s%s", c->relay,
			 c->job.tls_policy == SMTP_TLS_VERIFY ? " (verified)"
							      : "");
		qsmtp_ehlo_forget(c);
		qsmtp_send(c, QS_EHLO, qsmtp_limit(c, QSMTP_HELO_TIMEOUT),
			   "EHLO %s", c->job.helo);
		return;
	}
	c->state = QS_GREETING;
	stream_set_timeout(c->st, qsmtp_limit(c, QSMTP_HELO_TIMEOUT));
}

/* Timeout or lost connection in the middle of a step. */
static void
qsmtp_broken(struct queue_smtp *c, const char *what)
{
	char why[QUEUE_REPLY_MAX];
	if (c->state == QS_QUIT || c->state == QS_DONE || c->state == QS_IDLE)
		return;
	if (c->state == QS_TLS && c->job.tls_policy == SMTP_TLS_MAY)
		c->tls_fallback = true;
	snprintf(why, sizeof(why), "451 4.4.2 %s with %s while %s", what,
		 c->relay, qsmtp_step[c->state]);
	if (c->transaction)
		qsmtp_settle(c, 451, why);
	else
		for (size_t i = 0; i < c->job.nrcpt; i++) {
			c->res[i].code = 0;
			snprintf(c->res[i].reply, sizeof(c->res[i].reply), "%s",
				 why);
		}
	c->state = QS_DONE;
}

static void
qsmtp_on_timeout(void *arg)
{
	struct queue_smtp *c = arg;
	if (c->state == QS_IDLE) {
		qsmtp_quit(c);
		return;
	}
	qsmtp_broken(c, "conversation timed out");
	stream_close(c->st, "timeout");
}

static void
qsmtp_on_close(void *arg, const char *why)
{
	struct queue_smtp *c = arg;
	c->st = NULL;
	if (c->cb == NULL) {
		qsmtp_end(c);
		return;
	}
	qsmtp_broken(c, "lost connection");
	log_debug("qsmtp %s: closed: %s", c->relay, why);
	if (c->tls_fallback || c->rset_pending) {
		/* Once: this address in plain text, or the message's own
		 * connection from the first address. */
		if (c->tls_fallback)
			log_warn("qsmtp: TLS with %s failed (%s): trying "
				 "again in plain text on a new connection",
				 c->relay, why);
		else
			log_info("qsmtp: reused connection to %s failed "
				 "(%s): a new connection",
				 c->relay, why);
		c->no_starttls |= c->tls_fallback;
		if (c->rset_pending)
			c->addr = 0;
		c->tls_fallback = c->rset_pending = false;
		qsmtp_connect_next(c);
		return;
	}
	if (!c->transaction && c->addr + 1 < c->dest.n) {
		c->addr++;
		c->no_starttls = false;
		qsmtp_connect_next(c);
		return;
	}
	qsmtp_end(c);
}

static const struct stream_ops qsmtp_stream_ops = {
    .on_ready = qsmtp_on_ready,
    .on_line = qsmtp_on_line,
    .on_close = qsmtp_on_close,
    .on_timeout = qsmtp_on_timeout,
    .on_drain = qsmtp_on_drain,
};

/* The connect to the current address failed: the next one, or the end. */
static void
qsmtp_connect_failed(struct queue_smtp *c, const char *why)
{
	char reply[QUEUE_REPLY_MAX];
	ev_io_stop(c->loop, &c->cio);
	ev_timer_stop(c->loop, &c->ctimer);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	snprintf(reply, sizeof(reply), "451 4.4.1 connect to %s: %s", c->relay,
		 why);
	for (size_t i = 0; i < c->job.nrcpt; i++) {
		c->res[i].code = 0;
		snprintf(c->res[i].reply, sizeof(c->res[i].reply), "%s", reply);
	}
	if (c->addr + 1 < c->dest.n) {
		c->addr++;
		c->no_starttls = false;
		qsmtp_connect_next(c);
		return;
	}
	qsmtp_end(c);
}

static void
qsmtp_connected(struct queue_smtp *c)
{
	const struct queue_dest_addr *a = &c->dest.addr[c->addr];
	struct stream_opts o = {
	    .max_line = QSMTP_LINE_MAX,
	    .max_output = QSMTP_OUTPUT_MAX,
	    .idle_timeout = qsmtp_limit(c, QSMTP_HELO_TIMEOUT),
	};
	ev_io_stop(c->loop, &c->cio);
	ev_timer_stop(c->loop, &c->ctimer);
	int fd = c->fd;
	c->fd = -1;
	c->state = QS_GREETING;
	c->st = stream_new(c->loop, fd, (const struct sockaddr *)&a->ss, a->len,
			   &o, &qsmtp_stream_ops, c);
	if (c->st == NULL)
		qsmtp_connect_failed(c, "out of memory");
}

static void
qsmtp_cio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct queue_smtp *c = w->data;
	int err = 0;
	socklen_t len = sizeof(err);
	(void)loop;
	(void)revents;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err)
		qsmtp_connect_failed(c, strerror(err));
	else
		qsmtp_connected(c);
}

static void
qsmtp_ctimer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct queue_smtp *c = w->data;
	(void)loop;
	(void)revents;
	if (c->state == QS_CONNECT && c->fd < 0) {
		qsmtp_connect_next(c); /* the first kick */
		return;
	}
	qsmtp_connect_failed(c, "Connection timed out");
}

static void
qsmtp_connect_next(struct queue_smtp *c)
{
	const struct queue_dest_addr *a = &c->dest.addr[c->addr];
	c->state = QS_CONNECT;
	c->tls_up = c->authed = false;
	c->txns = 1;
	qsmtp_relay_name(c);
	c->fd = socket(a->ss.ss_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		qsmtp_connect_failed(c, strerror(errno));
		return;
	}
	if (connect(c->fd, (const struct sockaddr *)&a->ss, a->len) < 0 &&
	    errno != EINPROGRESS) {
		qsmtp_connect_failed(c, strerror(errno));
		return;
	}
	ev_io_init(&c->cio, qsmtp_cio_cb, c->fd, EV_WRITE);
	c->cio.data = c;
	ev_io_start(c->loop, &c->cio);
	ev_timer_set(&c->ctimer, qsmtp_limit(c, QSMTP_CONNECT_TIMEOUT), 0.);
	ev_timer_start(c->loop, &c->ctimer);
}

/* Takes job for c: its results, its message mapped, what it needs of
 * the server's extensions. Returns -1 when out of memory (nothing
 * kept). */
static int
qsmtp_job_begin(struct queue_smtp *c, const struct queue_smtp_job *job,
		queue_smtp_cb cb, void *arg)
{
	struct queue_smtp_result *res = calloc(job->nrcpt, sizeof(*res));
	void *m = NULL;
	if (res == NULL)
		return -1;
	if (job->msgsize > 0 &&
	    (m = mmap(NULL, job->msgsize, PROT_READ, MAP_PRIVATE, job->msgfd,
		      0)) == MAP_FAILED) {
		free(res);
		return -1;
	}
	c->res = res;
	c->body = m;
	c->job = *job;
	c->cb = cb;
	c->arg = arg;
	c->cur = c->accepted = c->off = 0;
	c->transaction = c->pipelined = c->mail_failed = false;
	c->committed = c->eightbit = c->utf8_addrs = false;
	for (size_t i = 0; c->body && i < job->msgsize && !c->eightbit; i++)
		c->eightbit = (unsigned char)c->body[i] >= 0x80;
	for (size_t i = 0; i < job->nrcpt; i++)
		for (const char *p = job->rcpts[i]; *p; p++)
			c->utf8_addrs |= (unsigned char)*p >= 0x80;
	for (const char *p = job->sender; *p; p++)
		c->utf8_addrs |= (unsigned char)*p >= 0x80;
	return 0;
}

struct queue_smtp *
queue_smtp_send(struct ev_loop *loop, const struct queue_dest *dest,
		const struct queue_smtp_job *job, queue_smtp_cb cb, void *arg)
{
	struct queue_smtp *c = calloc(1, sizeof(*c));
	if (c == NULL || dest->n == 0 || qsmtp_job_begin(c, job, cb, arg) < 0) {
		free(c);
		return NULL;
	}
	c->loop = loop;
	c->dest = *dest;
	c->fd = -1;
	c->cache = job->cache;
	if (job->nexthop)
		snprintf(c->nexthop, sizeof(c->nexthop), "%s", job->nexthop);
	ev_init(&c->cio, qsmtp_cio_cb);
	ev_timer_init(&c->ctimer, qsmtp_ctimer_cb, 0., 0.);
	c->ctimer.data = c;
	ev_timer_start(loop, &c->ctimer); /* connects from the loop */
	return c;
}

struct queue_smtp *
queue_smtp_reuse(struct queue_smtp_cache *cache, const char *nexthop,
		 const struct queue_smtp_job *job, queue_smtp_cb cb, void *arg)
{
	struct queue_smtp *c = cache->idle;
	while (c && strcasecmp(c->nexthop, nexthop) != 0)
		c = c->idle_next;
	if (c == NULL || qsmtp_job_begin(c, job, cb, arg) < 0)
		return NULL;
	qsmtp_unidle(c);
	c->txns++;
	c->rset_pending = true;
	qsmtp_send(c, QS_RSET, qsmtp_limit(c, QSMTP_CMD_TIMEOUT), "RSET");
	return c;
}

struct queue_smtp_cache *
queue_smtp_cache_new(void)
{
	return calloc(1, sizeof(struct queue_smtp_cache));
}

void
queue_smtp_cache_flush(struct queue_smtp_cache *cache)
{
	while (cache && cache->idle)
		qsmtp_quit(cache->idle); /* unlinks it */
}

void
queue_smtp_cache_free(struct queue_smtp_cache *cache)
{
	queue_smtp_cache_flush(cache);
	free(cache);
}

void
queue_smtp_abort(struct queue_smtp *c)
{
	if (c == NULL)
		return;
	c->cb = NULL;
	if (c->st) {
		stream_close(c->st, "aborted"); /* qsmtp_end from on_close */
		return;
	}
	ev_io_stop(c->loop, &c->cio);
	ev_timer_stop(c->loop, &c->ctimer);
	if (c->fd >= 0)
		close(c->fd);
	qsmtp_end(c);
}
