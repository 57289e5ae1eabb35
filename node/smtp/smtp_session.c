/* An SMTP session's life: greeting, the line loop, DATA (end of data only
 * at CRLF.CRLF, dot-unstuffing, size limit), and delivery: 250 only once
 * every local copy is durable in the store, or the message is durable in
 * the spool. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../common/fdio.h"
#include "../../common/log.h"
#include "smtp.h"

#define SMTP_WBUF 65536

static unsigned long smtp_seq;

void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = stream_vline(s->st, buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_debug("smtp %s: > %.*s", s->id, n, buf);
	mailnode_smtp_replied(s->mn, buf);
}

void
smtp_error(struct smtp_session *s, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	smtp_reply(s, "%s", buf);
	if (++s->errors >= SMTP_MAX_ERRORS) {
		smtp_reply(s, "421 4.7.0 %s Too many errors, closing",
			   s->mn->cfg->hostname);
		s->state = SMTP_QUIT;
		stream_close(s->st, "too many errors");
	}
}

bool
smtp_is_submission(const struct smtp_session *s)
{
	return s->role == ROLE_SUBMISSION || s->role == ROLE_SMTPS;
}

bool
smtp_auth_allowed(const struct smtp_session *s)
{
	return stream_is_tls(s->st) || s->mn->cfg->allow_plaintext_auth;
}

void
smtp_reset(struct smtp_session *s)
{
	s->sender[0] = '\0';
	submit_reset(&s->rc);
	s->nrcptaddr = 0;
	if (s->datafd >= 0) {
		close(s->datafd);
		s->datafd = -1;
	}
	s->datasize = 0;
	s->wlen = 0;
	s->data_long = s->data_oversize = s->data_ioerr = false;
	if (s->state == SMTP_MAIL || s->state == SMTP_RCPT ||
	    s->state == SMTP_DATA || s->state == SMTP_MILTER ||
	    s->state == SMTP_DELIVER)
		s->state = SMTP_READY;
}

static void
smtp_data_flush(struct smtp_session *s)
{
	if (!s->data_ioerr && fd_write_all(s->datafd, s->wbuf, s->wlen) < 0) {
		log_err("smtp %s: spool write: %s", s->id, strerror(errno));
		s->data_ioerr = true;
	}
	s->wlen = 0;
}

static void
smtp_data_append(struct smtp_session *s, const char *p, size_t len)
{
	s->datasize += len;
	if (s->datasize > s->mn->cfg->msg_max)
		s->data_oversize = true;
	if (s->data_oversize || s->data_ioerr)
		return;
	while (len > 0) {
		size_t room = SMTP_WBUF - s->wlen;
		size_t n = len < room ? len : room;
		memcpy(s->wbuf + s->wlen, p, n);
		s->wlen += n;
		p += n;
		len -= n;
		if (s->wlen == SMTP_WBUF)
			smtp_data_flush(s);
	}
}

void
smtp_data_begin(struct smtp_session *s)
{
	if (s->wbuf == NULL && (s->wbuf = malloc(SMTP_WBUF)) == NULL) {
		smtp_reply(s, "451 4.3.0 Out of memory, try again later");
		return;
	}
	s->datafd = spool_tmpfile(s->mn->spool);
	if (s->datafd < 0) {
		log_err("smtp %s: spool: %s", s->id, strerror(errno));
		smtp_reply(s, "451 4.3.0 Local spool unavailable, try again "
			      "later");
		return;
	}
	s->datasize = 0;
	s->wlen = 0;
	s->prev_crlf = true;
	s->state = SMTP_DATA;
	stream_set_timeout(s->st, SMTP_DATA_TIMEOUT);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* RFC 5322 date of now, for Received:. */
static void
smtp_date(char *buf, size_t len)
{
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

static void
smtp_prefix(struct smtp_session *s, char *buf, size_t len)
{
	char date[64], host[ADDR_STRLEN];
	const struct node_config *cfg = s->mn->cfg;
	smtp_date(date, sizeof(date));
	addr_host(stream_peer(s->st), host, sizeof(host));
	const char *with = s->esmtp ? "ESMTP" : "SMTP";
	char proto[16];
	snprintf(proto, sizeof(proto), "%s%s%s", with,
		 stream_is_tls(s->st) ? "S" : "", s->user[0] ? "A" : "");
	char forclause[DIR_ADDR_MAX + 16] = "";
	const struct submit_rcpts *rc = &s->rc;
	if (rc->nmbox + rc->nremote + rc->nfwd == 1)
		snprintf(forclause, sizeof(forclause), "\r\n\tfor <%s>",
			 rc->nmbox     ? rc->mbox[0]
			 : rc->nremote ? rc->remote[0]
				       : rc->fwd[0]);
	snprintf(buf, len,
		 "Return-Path: <%s>\r\n"
		 "Received: from %s ([%s])\r\n"
		 "\tby %s (mailnode %s) with %s id %s%s;\r\n"
		 "\t%s\r\n",
		 s->sender, s->helo[0] ? s->helo : "unknown", host,
		 cfg->hostname, cfg->name, proto, s->id, forclause, date);
}

/* The end of DATA: the message checked, then to the milters or on to
 * delivery. */
static void
smtp_data_end(struct smtp_session *s)
{
	stream_set_timeout(s->st, SMTP_CMD_TIMEOUT);
	if (s->data_oversize) {
		smtp_reply(s, "552 5.3.4 Message too big (max %ld bytes)",
			   s->mn->cfg->max_message_size);
		goto done;
	}
	smtp_data_flush(s);
	if (s->data_ioerr) {
		smtp_reply(s, "451 4.3.0 Local spool error, try again later");
		goto done;
	}
	if (smtp_milter_wanted(s)) {
		smtp_milter_start(s);
		return;
	}
	smtp_data_deliver(s, NULL);
	return;
done:
	smtp_data_done(s);
}

/* The delivery's answer: at once (nothing queued, or a failure), or on
 * the loop once the queued copies are durable, input held meanwhile. */
static void
smtp_data_delivered(void *arg, const char *how, const char *qid)
{
	struct smtp_session *s = arg;
	const char *folder = s->deliver_folder;
	bool held = s->deliver != NULL;

	s->deliver = NULL;
	if (held)
		stream_batch_begin(s->st);
	if (how) {
		log_info("smtp %s: from=<%s> rcpts=%zu remote=%zu "
			 "forwarded=%zu size=%zu client=%s user=%s %s%s%s%s%s",
			 s->id, s->sender, s->rc.nmbox, s->rc.nremote,
			 s->rc.nfwd, s->datasize, stream_peer_str(s->st),
			 s->user[0] ? s->user : "-", how,
			 folder ? " folder=" : "", folder ? folder : "",
			 qid[0] ? " queue_id=" : "", qid);
		if (s->rc.nmbox)
			s->mn->counters.deliveries[strcmp(how, "spooled") == 0
						       ? MAILNODE_SPOOLED
						       : MAILNODE_STORED]++;
		smtp_reply(s, "250 2.0.0 Ok: queued as %s",
			   qid[0] ? qid : s->id);
	} else
		smtp_reply(s, "451 4.3.0 Temporary local failure, try again "
			      "later");
	smtp_data_done(s);
	if (held) {
		stream_batch_end(s->st);
		stream_resume(s->st);
	}
}

void
smtp_data_deliver(struct smtp_session *s, const char *folder)
{
	char prefix[2048];

	smtp_prefix(s, prefix, sizeof(prefix));
	char added[512], logid[40];
	if (smtp_is_submission(s))
		submit_added_headers(s->mn, s->datafd, s->datasize, s->id,
				     added, sizeof(added));
	else
		added[0] = '\0';
	if (strlen(prefix) + strlen(added) >= sizeof(prefix)) {
		smtp_reply(s, "451 4.3.0 Header too long, try again later");
		smtp_data_done(s);
		return;
	}
	strcat(prefix, added);
	snprintf(logid, sizeof(logid), "smtp %s", s->id);
	struct submit_message m = {.id = s->id,
				   .sender = s->sender,
				   .logid = logid,
				   .fd = s->datafd,
				   .datasize = s->datasize};
	if (submit_quota_data(s->mn, &s->rc, &m,
			      s->datasize + strlen(prefix))) {
		smtp_reply(s, "552 5.2.2 Message would exceed the recipient's "
			      "quota");
		smtp_data_done(s);
		return;
	}
	s->deliver_folder = folder;
	s->deliver = submit_deliver_start(s->mn, &s->rc, s->sender, s->datafd,
					  s->datasize, prefix, folder, logid,
					  smtp_data_delivered, s);
	if (s->deliver) {
		s->state = SMTP_DELIVER;
		stream_pause(s->st);
	}
}

void
smtp_data_done(struct smtp_session *s)
{
	s->state = SMTP_DATA; /* so smtp_reset() ends the transaction */
	smtp_reset(s);
	snprintf(s->id, sizeof(s->id), "%08lX%04lX", (unsigned long)time(NULL),
		 ++smtp_seq & 0xffff);
}

/* A piece of a message line: dot-unstuffed at the line's start; the
 * line's end adds CRLF and says how it ended. */
static void
smtp_data_piece(struct smtp_session *s, char *p, size_t len, bool end,
		bool crlf)
{
	if (!s->data_long && len > 0 && p[0] == '.') { /* dot-unstuffing */
		p++;
		len--;
	}
	s->data_long = !end;
	smtp_data_append(s, p, len);
	if (end) {
		smtp_data_append(s, "\r\n", 2);
		s->prev_crlf = crlf;
	}
}

/* One line of the message. End of data is a "." line ending in CRLF
 * right after a line that ended in CRLF: nothing else ends it, so a bare
 * LF cannot smuggle a second message in. */
static void
smtp_data_line(struct smtp_session *s, char *line, size_t len, bool crlf)
{
	if (len == 1 && line[0] == '.' && crlf && s->prev_crlf) {
		smtp_data_end(s);
		return;
	}
	smtp_data_piece(s, line, len, true, crlf);
}

/* A line over SMTP_LINE_MAX, in pieces (stream.h): a message line is
 * kept whole, as Postfix keeps it (RFC 5321 4.5.3.1.6 allows taking it
 * or refusing the message); a command line that long is refused once it
 * ended. */
static void
smtp_on_piece(void *arg, char *p, size_t len, bool end, bool crlf)
{
	struct smtp_session *s = arg;
	if (s->state == SMTP_DATA) {
		smtp_data_piece(s, p, len, end, crlf);
		return;
	}
	if (!end || s->state == SMTP_QUIT)
		return;
	if (s->state == SMTP_AUTH)
		s->state = s->sender[0] ? SMTP_MAIL : SMTP_READY;
	smtp_error(s, "500 5.5.2 Line too long");
}

/* Lines up to SMTP_LINE_MAX (longer ones go to smtp_on_piece). */
static void
smtp_on_line(void *arg, char *line, size_t len, bool crlf, bool toolong)
{
	struct smtp_session *s = arg;
	(void)toolong; /* never: smtp_on_piece takes those */
	switch (s->state) {
	case SMTP_DATA:
		smtp_data_line(s, line, len, crlf);
		return;
	case SMTP_QUIT:
		return;
	case SMTP_AUTH:
		smtp_auth_continue(s, line);
		return;
	default:
		break;
	}
	if (len > SMTP_CMD_MAX) {
		smtp_error(s, "500 5.5.2 Line too long");
		return;
	}
	log_debug("smtp %s: < %s", s->id,
		  strncasecmp(line, "AUTH ", 5) == 0 ? "AUTH ..." : line);
	smtp_command(s, line, len);
}

static void
smtp_on_ready(void *arg)
{
	struct smtp_session *s = arg;
	smtp_reply(s, "220 %s ESMTP mailnode", s->mn->cfg->hostname);
}

static void
smtp_on_timeout(void *arg)
{
	struct smtp_session *s = arg;
	smtp_reply(s, "421 4.4.2 %s Timeout, closing", s->mn->cfg->hostname);
	s->state = SMTP_QUIT;
	stream_close(s->st, "timeout");
}

/* Submission: login_timeout_s after the connection, still no AUTH. */
static void
smtp_on_deadline(void *arg)
{
	struct smtp_session *s = arg;
	smtp_reply(s, "421 4.4.2 %s Login timeout, closing",
		   s->mn->cfg->hostname);
	s->state = SMTP_QUIT;
	stream_close(s->st, "login timeout");
}

static void
smtp_on_refused(void *arg)
{
	struct smtp_session *s = arg;
	smtp_reply(s, "421 4.7.0 %s Too many connections, try again later",
		   s->mn->cfg->hostname);
	s->state = SMTP_QUIT;
}

static void
smtp_on_close(void *arg, const char *why)
{
	struct smtp_session *s = arg;
	log_debug("smtp %s: closed: %s", s->id, why);
	auth_login_cancel(s->mn->login, s->auth_job);
	smtp_milter_cancel(s);
	submit_deliver_cancel(s->deliver);
	if (s->datafd >= 0)
		close(s->datafd);
	mailnode_session_closed(s->mn, s->role);
	submit_free(&s->rc);
	free(s->rcpt);
	free(s->wbuf);
	free(s);
}

static const struct stream_ops smtp_stream_ops = {
    .on_ready = smtp_on_ready,
    .on_line = smtp_on_line,
    .on_piece = smtp_on_piece,
    .on_close = smtp_on_close,
    .on_timeout = smtp_on_timeout,
    .on_deadline = smtp_on_deadline,
    .on_refused = smtp_on_refused,
};

void
smtp_session_start(struct mailnode *mn, enum node_role role, int fd,
		   const struct sockaddr *peer, socklen_t peerlen)
{
	struct smtp_session *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		return;
	}
	s->mn = mn;
	s->role = role;
	s->datafd = -1;
	s->state = SMTP_GREETED;
	snprintf(s->id, sizeof(s->id), "%08lX%04lX", (unsigned long)time(NULL),
		 ++smtp_seq & 0xffff);
	mailnode_session_opened(mn, role);
	struct stream_opts o =
	    mailnode_stream_opts(mn, role, SMTP_LINE_MAX, SMTP_CMD_TIMEOUT);
	s->st =
	    stream_new(mn->loop, fd, peer, peerlen, &o, &smtp_stream_ops, s);
	if (s->st == NULL) {
		mailnode_session_closed(mn, role);
		free(s);
		return;
	}
	if (smtp_is_submission(s)) /* AUTH is what a session is for */
		stream_set_deadline(s->st, mn->cfg->login_timeout_s, false);
}
