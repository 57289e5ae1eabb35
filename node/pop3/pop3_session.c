/* A POP3 session's life: greeting, the line loop, login with the maildrop
 * lock, message transfer (CRLF lines, dot-stuffing, read in chunks) and
 * the UPDATE state (deletions only at QUIT, durable before +OK). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../store/maildir_modseq.h"
#include "pop3.h"

#define POP3_CHUNK 65536

static unsigned long pop3_seq;

void
pop3_reply(struct pop3_session *s, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = stream_vline(s->st, buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_debug("pop3 %s: > %.*s", s->id, n, buf);
}

void
pop3_error(struct pop3_session *s, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pop3_reply(s, "%s", buf);
	if (++s->errors >= POP3_MAX_ERRORS) {
		pop3_reply(s, "-ERR Too many errors, closing");
		s->state = POP3_DONE;
		stream_close(s->st, "too many errors");
	}
}

bool
pop3_auth_allowed(const struct pop3_session *s)
{
	return stream_is_tls(s->st) || s->mn->cfg->allow_plaintext_auth;
}

/* ---- login and the maildrop lock ---- */

static void pop3_uid_cb(struct uid_lease *u, struct maildir_counter *ctr,
			void *arg);

/* Lists the maildrop into s; with ctr (its UID lease settled), giving
 * UIDs to what waits. Returns 0, 1 when mail waits and the lease is being
 * taken (pop3_uid_cb goes on), or -1 with errno. */
static int
pop3_load(struct pop3_session *s, struct maildir_counter *ctr)
{
	int rc = ctr ? maildir_assign(s->maildir, ctr, &s->list)
		     : maildir_scan(s->maildir, &s->list);
	if (rc < 0) {
		if (errno != ENOENT)
			return -1;
		maildir_list_free(&s->list); /* no mail ever: empty */
		memset(&s->list, 0, sizeof(s->list));
	}
	if (ctr == NULL && s->list.pending > 0) {
		s->uid = uid_lease_take(s->mn, s->user, "INBOX",
					s->list.pending, pop3_uid_cb, s);
		maildir_list_free(&s->list);
		if (s->uid)
			return 1;
		errno = ENOMEM;
		return -1;
	}
	size_t n = s->list.n ? s->list.n : 1;
	s->size = malloc(n * sizeof(*s->size));
	s->deleted = calloc(n, sizeof(*s->deleted));
	if (s->size == NULL || s->deleted == NULL) {
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < s->list.n; i++)
		s->size[i] = UINT64_MAX;
	return 0;
}

/* The maildrop is listed: the session goes on. Answer first, resume last:
 * the stream's own update after a write would cancel the wake-up
 * stream_resume() queues. */
static void
pop3_opened(struct pop3_session *s)
{
	s->state = POP3_TRANSACTION;
	stream_set_deadline(s->st, 0, false); /* logged in in time */
	log_info("pop3 %s: %s logged in from %s, %zu messages", s->id, s->user,
		 stream_peer_str(s->st), s->list.n);
	pop3_reply(s, "+OK Logged in, %zu messages", s->list.n);
	stream_resume(s->st);
}

static void pop3_not_opened(struct pop3_session *s, enum lease_result res);

static void
pop3_uid_cb(struct uid_lease *u, struct maildir_counter *ctr, void *arg)
{
	struct pop3_session *s = arg;
	(void)u;
	int rc = pop3_load(s, ctr);
	int e = errno;
	uid_lease_done(s->uid);
	s->uid = NULL;
	if (rc == 0) {
		pop3_opened(s);
		return;
	}
	log_err("pop3 %s: maildrop %s: %s", s->id, s->maildir, strerror(e));
	pop3_not_opened(s, LEASE_HELD);
}

static void
pop3_lock_cb(struct lease *l, enum lease_result res, void *arg)
{
	struct pop3_session *s = arg;
	(void)l;
	if (res == LEASE_LOST) {
		/* The next command ends the session, without deletions. */
		log_warn("pop3 %s: maildrop lock of %s lost", s->id, s->user);
		s->lock_lost = true;
		return;
	}
	if (res == LEASE_HELD) {
		int rc = pop3_load(s, NULL);
		if (rc == 0)
			pop3_opened(s);
		if (rc >= 0)
			return;
		log_err("pop3 %s: maildrop %s: %s", s->id, s->maildir,
			strerror(errno));
	}
	pop3_not_opened(s, res);
}

/* Login failed after the credentials: back to AUTHORIZATION. */
static void
pop3_not_opened(struct pop3_session *s, enum lease_result res)
{
	lease_release(s->lock);
	s->lock = NULL;
	s->state = POP3_AUTHORIZATION;
	maildir_list_free(&s->list);
	memset(&s->list, 0, sizeof(s->list));
	free(s->size);
	free(s->deleted);
	s->size = NULL;
	s->deleted = NULL;
	if (res == LEASE_BUSY) {
		log_info("pop3 %s: maildrop of %s in use", s->id, s->user);
		pop3_reply(s, "-ERR [IN-USE] Mailbox is locked by another "
			      "POP3 session");
	} else
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot open the mailbox now, "
			      "try again later");
	s->user[0] = '\0';
	stream_resume(s->st);
}

/* Good credentials: takes the maildrop lock (the answer comes from
 * pop3_lock_cb). Returns 0, or -1 when it cannot (answered). */
static int
pop3_lock_start(struct pop3_session *s, const char *user)
{
	char key[sizeof(POP3_LOCK_PREFIX) + DIR_ADDR_MAX];

	if (store_user_dir(&s->mn->store, user, s->maildir, sizeof(s->maildir),
			   false) < 0) {
		log_err("pop3 %s: maildir of %s: %s", s->id, user,
			strerror(errno));
		pop3_reply(s, "-ERR [SYS/TEMP] Cannot open the mailbox now");
		return -1;
	}
	/* Without Redis no lock can be had: refuse rather than risk two
	 * sessions deleting the same messages. */
	snprintf(key, sizeof(key), "%s%s", POP3_LOCK_PREFIX, user);
	s->lock = lease_acquire(s->mn->redis, key, POP3_LOCK_TTL_MS,
				POP3_LOCK_RENEW_MS, pop3_lock_cb, s);
	if (s->lock == NULL) {
		log_warn("pop3 %s: no maildrop lock for %s: Redis away", s->id,
			 user);
		pop3_reply(s, "-ERR [SYS/TEMP] Mailbox lock unavailable, try "
			      "again later");
		return -1;
	}
	snprintf(s->user, sizeof(s->user), "%s", user);
	s->state = POP3_LOCKING;
	return 0;
}

/* The login attempt is over (auth_login.h): the lock when good, else
 * input again. */
static void
pop3_login_done(void *arg, enum auth_login_result res, const char *user,
		long retry_s)
{
	struct pop3_session *s = arg;

	(void)retry_s;
	s->auth_job = 0;
	mailnode_login_counted(s->mn, s->role, res);
	s->state = POP3_AUTHORIZATION;
	switch (res) {
	case AUTH_LOGIN_OK:
		if (pop3_lock_start(s, user) == 0)
			return; /* input held until pop3_lock_cb */
		break;
	case AUTH_LOGIN_FAILED:
		log_info("pop3 %s: authentication failed for %s from %s", s->id,
			 user, stream_peer_str(s->st));
		pop3_reply(s, "-ERR [AUTH] Invalid credentials");
		if (++s->auth_fails >= POP3_MAX_AUTH_FAILS) {
			pop3_reply(s, "-ERR Too many failures, closing");
			s->state = POP3_DONE;
			stream_close(s->st, "too many login failures");
		}
		break;
	case AUTH_LOGIN_REFUSED:
		pop3_reply(s, "-ERR [SYS/TEMP] Too many failed logins from "
			      "your address, try again later");
		break;
	case AUTH_LOGIN_BUSY:
		pop3_reply(s, "-ERR [SYS/TEMP] Authentication unavailable, "
			      "try again later");
		break;
	}
	stream_resume(s->st);
}

void
pop3_login(struct pop3_session *s, char *user, const char *pass)
{
	for (char *p = user; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	s->user_arg[0] = '\0';
	if (directory_loaded(s->mn->dir))
		s->auth_job = auth_login_start(s->mn->login, s->mn->dir,
					       stream_peer(s->st), user, pass,
					       pop3_login_done, s);
	if (s->auth_job == 0) {
		pop3_reply(s, "-ERR [SYS/TEMP] Authentication unavailable, try "
			      "again later");
		return;
	}
	s->state = POP3_CHECKING;
	stream_pause(s->st);
}

/* ---- messages ---- */

/* Opens message i (maildir_open: following a rename by another node).
 * Returns the fd or -1. */
static int
pop3_open(struct pop3_session *s, size_t i)
{
	return maildir_open(s->maildir, &s->list.msg[i]);
}

/* The transfer of a message: every line ends in CRLF (a bare LF becomes
 * CRLF, a last line without one gets it), and with stuff set a line that
 * starts with '.' gets one more. */
struct pop3_xfer {
	struct pop3_session *s; /* NULL: only count */
	bool stuff;
	bool bol, cr, in_body;
	size_t linelen;
	long body_left; /* < 0: no limit */
	bool stop;
	uint64_t count; /* bytes before stuffing */
	char out[2 * POP3_CHUNK + 8];
	size_t outlen;
};

static void
pop3_xfer_put(struct pop3_xfer *x, char c, bool counted)
{
	if (counted)
		x->count++;
	if (x->s)
		x->out[x->outlen++] = c;
}

static void
pop3_xfer_eol(struct pop3_xfer *x)
{
	bool empty = x->linelen == 0;
	x->bol = true;
	x->linelen = 0;
	x->cr = false;
	if (!x->in_body) {
		if (empty) {
			x->in_body = true;
			if (x->body_left == 0)
				x->stop = true;
		}
	} else if (x->body_left > 0 && --x->body_left == 0)
		x->stop = true;
}

static void
pop3_xfer_bytes(struct pop3_xfer *x, const char *p, size_t len)
{
	for (size_t k = 0; k < len && !x->stop; k++) {
		char c = p[k];
		if (x->bol && c == '.' && x->stuff)
			pop3_xfer_put(x, '.', false);
		x->bol = false;
		if (c == '\n') {
			if (!x->cr)
				pop3_xfer_put(x, '\r', true);
			pop3_xfer_put(x, '\n', true);
			pop3_xfer_eol(x);
			continue;
		}
		if (x->cr) /* a CR inside the line */
			x->linelen++;
		x->cr = c == '\r';
		if (!x->cr)
			x->linelen++;
		pop3_xfer_put(x, c, true);
	}
}

static void
pop3_xfer_flush(struct pop3_xfer *x)
{
	if (x->s && x->outlen) {
		stream_write(x->s->st, x->out, x->outlen);
		x->outlen = 0;
	}
}

/* Runs the transfer of fd through x. Returns 0 or -1 on a read error. */
static int
pop3_xfer_fd(struct pop3_xfer *x, int fd)
{
	char *buf = malloc(POP3_CHUNK);
	if (buf == NULL)
		return -1;
	x->bol = true;
	while (!x->stop) {
		ssize_t n = read(fd, buf, POP3_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		pop3_xfer_bytes(x, buf, (size_t)n);
		pop3_xfer_flush(x);
	}
	free(buf);
	if (!x->stop && !x->bol) { /* the last line had no LF */
		if (!x->cr)
			pop3_xfer_put(x, '\r', true);
		pop3_xfer_put(x, '\n', true);
	}
	return 0;
}

int64_t
pop3_msg_size(struct pop3_session *s, size_t i)
{
	if (s->size[i] != UINT64_MAX)
		return (int64_t)s->size[i];
	int fd = pop3_open(s, i);
	if (fd < 0) {
		log_err("pop3 %s: %s/cur/%s: %s", s->id, s->maildir,
			s->list.msg[i].name, strerror(errno));
		return -1;
	}
	struct pop3_xfer *x = calloc(1, sizeof(*x));
	int rc = -1;
	if (x) {
		x->body_left = -1;
		rc = pop3_xfer_fd(x, fd);
		if (rc == 0)
			s->size[i] = x->count;
	}
	free(x);
	close(fd);
	return rc < 0 ? -1 : (int64_t)s->size[i];
}

int
pop3_send_msg(struct pop3_session *s, size_t i, long body_lines)
{
	int64_t size = pop3_msg_size(s, i);
	int fd = size < 0 ? -1 : pop3_open(s, i);
	if (fd < 0)
		return -1;
	struct pop3_xfer *x = calloc(1, sizeof(*x));
	if (x == NULL) {
		close(fd);
		return -1;
	}
	x->s = s;
	x->stuff = true;
	x->body_left = body_lines;
	if (body_lines < 0)
		pop3_reply(s, "+OK %lld octets", (long long)size);
	else
		pop3_reply(s, "+OK");
	/* A read error halfway can only cut the answer short: end it. */
	if (pop3_xfer_fd(x, fd) < 0) {
		log_err("pop3 %s: read %s: %s", s->id, s->list.msg[i].name,
			strerror(errno));
		pop3_xfer_flush(x);
		s->state = POP3_DONE;
		stream_close(s->st, "message read error");
	} else {
		pop3_xfer_flush(x);
		stream_write(s->st, ".\r\n", 3);
	}
	free(x);
	close(fd);
	return 0;
}

/* ---- UPDATE ---- */

void
pop3_update(struct pop3_session *s)
{
	size_t n = 0, failed = 0;

	s->state = POP3_UPDATE;
	if (!lease_valid(s->lock)) {
		log_warn("pop3 %s: maildrop lock of %s not valid at QUIT: "
			 "nothing deleted",
			 s->id, s->user);
		pop3_reply(s, "-ERR [SYS/TEMP] Mailbox lock lost, no messages "
			      "deleted");
		goto out;
	}
	/* the expunges logged as one change, for IMAP's QRESYNC */
	struct maildir_modseq ms = {0};
	struct maildir_modseq_tx tx;
	bool logged = maildir_modseq_begin(s->maildir, &ms, &tx) == 0;
	for (size_t i = 0; i < s->list.n; i++) {
		if (!s->deleted[i])
			continue;
		/* durable when it returns; a file already gone is done */
		if (maildir_expunge(s->maildir, &s->list.msg[i]) < 0) {
			log_err("pop3 %s: expunge %s: %s", s->id,
				s->list.msg[i].name, strerror(errno));
			failed++;
		} else {
			n++;
			if (logged)
				maildir_modseq_note(&tx, s->list.msg[i].uid);
		}
	}
	if (logged)
		maildir_modseq_commit(&tx, 'X');
	maildir_modseq_free(&ms);
	if (n > 0) /* wakes IMAP IDLE on every node */
		notice_changed(s->mn->store.notice, s->user, "INBOX");
	lease_release(s->lock);
	s->lock = NULL;
	log_info("pop3 %s: %s logged out, %zu deleted, %zu failed", s->id,
		 s->user, n, failed);
	if (failed)
		pop3_reply(s, "-ERR [SYS/TEMP] Some deleted messages not "
			      "removed");
	else
		pop3_reply(s, "+OK Bye, %zu messages deleted", n);
out:
	/* Give the maildrop back before the client hears +OK, so that its
	 * next login, on any node, finds it free. */
	lease_release(s->lock);
	s->lock = NULL;
	s->state = POP3_DONE;
	stream_close(s->st, "quit");
}

/* ---- the stream ---- */

static void
pop3_on_line(void *arg, char *line, size_t len, bool crlf, bool toolong)
{
	struct pop3_session *s = arg;
	(void)crlf;
	if (s->state == POP3_DONE || s->state == POP3_UPDATE)
		return;
	if (toolong) {
		if (s->state == POP3_SASL)
			s->state = POP3_AUTHORIZATION;
		pop3_error(s, "-ERR Line too long");
		return;
	}
	if (memchr(line, '\0', len)) {
		if (s->state == POP3_SASL)
			s->state = POP3_AUTHORIZATION;
		pop3_error(s, "-ERR Invalid command");
		return;
	}
	if (s->lock_lost) {
		pop3_reply(s, "-ERR [SYS/TEMP] Mailbox lock lost, closing");
		s->state = POP3_DONE;
		stream_close(s->st, "maildrop lock lost");
		return;
	}
	if (s->state == POP3_SASL) {
		pop3_sasl_response(s, line);
		return;
	}
	log_debug("pop3 %s: < %s", s->id,
		  strncasecmp(line, "PASS", 4) == 0 ||
			  strncasecmp(line, "AUTH", 4) == 0
		      ? "(credentials)"
		      : line);
	pop3_command(s, line);
}

static void
pop3_on_ready(void *arg)
{
	struct pop3_session *s = arg;
	pop3_reply(s, "+OK %s POP3 mailnode ready", s->mn->cfg->hostname);
}

static void
pop3_on_timeout(void *arg)
{
	struct pop3_session *s = arg;
	pop3_reply(s, "-ERR Autologout, idle for too long");
	s->state = POP3_DONE;
	stream_close(s->st, "timeout");
}

/* login_timeout_s after the connection, still not logged in. */
static void
pop3_on_deadline(void *arg)
{
	struct pop3_session *s = arg;
	pop3_reply(s, "-ERR Login timeout");
	s->state = POP3_DONE;
	stream_close(s->st, "login timeout");
}

static void
pop3_on_refused(void *arg)
{
	struct pop3_session *s = arg;
	pop3_reply(s, "-ERR [SYS/TEMP] Too many connections, try again later");
	s->state = POP3_DONE;
}

static void
pop3_on_close(void *arg, const char *why)
{
	struct pop3_session *s = arg;
	log_debug("pop3 %s: closed: %s", s->id, why);
	auth_login_cancel(s->mn->login, s->auth_job);
	lease_release(s->lock); /* cancels a pending callback too */
	uid_lease_done(s->uid);
	maildir_list_free(&s->list);
	free(s->size);
	free(s->deleted);
	mailnode_session_closed(s->mn, s->role);
	explicit_bzero(s->user_arg, sizeof(s->user_arg));
	free(s);
}

static const struct stream_ops pop3_stream_ops = {
    .on_ready = pop3_on_ready,
    .on_line = pop3_on_line,
    .on_close = pop3_on_close,
    .on_timeout = pop3_on_timeout,
    .on_deadline = pop3_on_deadline,
    .on_refused = pop3_on_refused,
};

void
pop3_session_start(struct mailnode *mn, enum node_role role, int fd,
		   const struct sockaddr *peer, socklen_t peerlen)
{
	struct pop3_session *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		return;
	}
	s->mn = mn;
	s->role = role;
	s->state = POP3_AUTHORIZATION;
	snprintf(s->id, sizeof(s->id), "%08lX%04lX", (unsigned long)time(NULL),
		 ++pop3_seq & 0xffff);
	mailnode_session_opened(mn, role);
	struct stream_opts o =
	    mailnode_stream_opts(mn, role, POP3_LINE_MAX, POP3_TIMEOUT);
	/* A RETR answer is queued whole (read in chunks): room for the
	 * largest message, CRLF and dot-stuffing included. */
	size_t need = mn->cfg->msg_max_sent + 2 * POP3_CHUNK;
	if (o.max_output < need)
		o.max_output = need;
	s->st =
	    stream_new(mn->loop, fd, peer, peerlen, &o, &pop3_stream_ops, s);
	if (s->st == NULL) {
		mailnode_session_closed(mn, role);
		free(s);
		return;
	}
	stream_set_deadline(s->st, mn->cfg->login_timeout_s, false);
}
