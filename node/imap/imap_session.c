/* An IMAP session's life: greeting, assembling commands from lines and
 * literals (synchronizing "{N}" answered with "+", LITERAL+ "{N+}" not),
 * answers, login, timeouts and close. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "imap.h"
#include "imap_mime.h"

static unsigned long imap_seq;

/* ---- answers ---- */

static void
imap_vline(struct imap_session *s, const char *fmt, va_list ap)
{
	char buf[4096];
	int n = stream_vline(s->st, buf, sizeof(buf), fmt, ap);
	log_debug("imap %s: > %.*s", s->id, n, buf);
}

static void
imap_line(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	imap_vline(s, fmt, ap);
	va_end(ap);
}

void
imap_untagged(struct imap_session *s, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	imap_line(s, "* %s", buf);
}

/* RFC 3501 7.4.1: no EXPUNGE while answering FETCH, STORE or SEARCH (the
 * client's sequence numbers would shift under it); the UID forms may. */
static bool
imap_may_expunge(const struct imap_cmd *c)
{
	return c->uid || (strcmp(c->name, "FETCH") != 0 &&
			  strcmp(c->name, "STORE") != 0 &&
			  strcmp(c->name, "SEARCH") != 0);
}

/* The tagged answer. A command that ran (OK, NO, not BAD) first tells
 * what others changed in the selected mailbox. */
static void
imap_tagged(struct imap_session *s, const struct imap_cmd *c, const char *kind,
	    bool ran, const char *fmt, va_list ap)
{
	char buf[4096];
	if (ran && s->state == IMAP_SELECTED)
		imap_mailbox_sync(s, imap_may_expunge(c), false);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	imap_line(s, "%s %s %s", c->tag, kind, buf);
}

void
imap_ok(struct imap_session *s, const struct imap_cmd *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	imap_tagged(s, c, "OK", true, fmt, ap);
	va_end(ap);
}

void
imap_no(struct imap_session *s, const struct imap_cmd *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	imap_tagged(s, c, "NO", true, fmt, ap);
	va_end(ap);
}

void
imap_bad(struct imap_session *s, const struct imap_cmd *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	imap_tagged(s, c, "BAD", false, fmt, ap);
	va_end(ap);
	if (++s->errors >= IMAP_MAX_ERRORS)
		imap_bye(s, "too many errors", "Too many errors");
}

void
imap_write(struct imap_session *s, const void *data, size_t len)
{
	stream_write(s->st, data, len);
}

int
imap_append_string(struct strbuf *sb, const char *str, size_t len)
{
	bool quotable = len < 1024;
	for (size_t i = 0; i < len && quotable; i++) {
		unsigned char ch = (unsigned char)str[i];
		if (ch == '\0' || ch == '\r' || ch == '\n' || ch >= 0x80)
			quotable = false;
	}
	if (!quotable)
		return strbuf_appendf(sb, "{%zu}\r\n", len) < 0 ||
			       strbuf_append(sb, str, len) < 0
			   ? -1
			   : 0;
	if (strbuf_append(sb, "\"", 1) < 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if ((str[i] == '"' || str[i] == '\\') &&
		    strbuf_append(sb, "\\", 1) < 0)
			return -1;
		if (strbuf_append(sb, &str[i], 1) < 0)
			return -1;
	}
	return strbuf_append(sb, "\"", 1);
}

void
imap_bye(struct imap_session *s, const char *why, const char *text)
{
	if (s->state == IMAP_LOGOUT)
		return;
	imap_untagged(s, "BYE %s", text);
	s->state = IMAP_LOGOUT;
	stream_close(s->st, why);
}

bool
imap_auth_allowed(const struct imap_session *s)
{
	return stream_is_tls(s->st) || s->mn->cfg->allow_plaintext_auth;
}

const char *
imap_capabilities(const struct imap_session *s, char *buf)
{
	bool tls = stream_is_tls(s->st);
	snprintf(buf, IMAP_CAPS_MAX,
		 "IMAP4rev1 LITERAL+ ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS "
		 "CONDSTORE QRESYNC SORT THREAD=REFERENCES "
		 "THREAD=ORDEREDSUBJECT MOVE SPECIAL-USE CHILDREN ESEARCH "
		 "LIST-STATUS BINARY QUOTA QUOTA=RES-STORAGE%s%s",
		 s->state == IMAP_NOT_AUTH && !tls && s->mn->tls ? " STARTTLS"
								 : "",
		 s->state != IMAP_NOT_AUTH ? ""
		 : imap_auth_allowed(s)	   ? " AUTH=PLAIN"
					   : " LOGINDISABLED");
	return buf;
}

void
imap_hold(struct imap_session *s)
{
	s->wait = IMAP_W_BUSY;
	stream_pause(s->st);
}

/* The node is stopping and s, busy when imap_sessions_stop came by (a
 * login hashing, a FETCH draining, a UID lease), is done with that
 * command: it ends now rather than hold the stop for the grace period.
 * Returns true when it did. */
static bool
imap_end_if_stopping(struct imap_session *s)
{
	if (!s->mn->stopping || s->state == IMAP_LOGOUT ||
	    s->wait != IMAP_W_COMMAND || s->cmd.len != 0)
		return false;
	imap_bye(s, "node stopping", "[UNAVAILABLE] Server shutting down");
	return true;
}

void
imap_release(struct imap_session *s)
{
	s->wait = IMAP_W_COMMAND;
	if (!imap_end_if_stopping(s))
		stream_resume(s->st);
}

/* ---- login ---- */

/* The special-use folders a new user gets (RFC 6154), once. */
static const char *const imap_special[] = {"Drafts", "Sent", "Trash", "Junk"};

static void
imap_make_special(struct imap_session *s)
{
	char mark[4096 + 64];
	snprintf(mark, sizeof(mark), "%s/%s", s->userdir, IMAP_SPECIAL_MARK);
	if (access(mark, F_OK) == 0)
		return;
	for (size_t i = 0; i < sizeof(imap_special) / sizeof(*imap_special);
	     i++) {
		if (maildir_folder_create(s->userdir, imap_special[i]) < 0 &&
		    errno != EEXIST) {
			log_warn("imap %s: create %s for %s: %s", s->id,
				 imap_special[i], s->user, strerror(errno));
			return;
		}
		maildir_subscribe(s->userdir, imap_special[i], true);
	}
	FILE *f = fopen(mark, "w");
	if (f)
		fclose(f);
}

/* The attempt's answer other than success: NO, and BYE after too many
 * failures in the session. */
static void
imap_login_not(struct imap_session *s, struct imap_cmd *c,
	       enum auth_login_result res, const char *user)
{
	switch (res) {
	case AUTH_LOGIN_FAILED:
		log_info("imap %s: authentication failed for %s from %s", s->id,
			 user, stream_peer_str(s->st));
		imap_no(s, c, "[AUTHENTICATIONFAILED] Invalid credentials");
		if (++s->auth_fails >= IMAP_MAX_AUTH_FAILS)
			imap_bye(s, "too many login failures",
				 "Too many login failures");
		break;
	case AUTH_LOGIN_REFUSED:
		imap_no(s, c,
			"[UNAVAILABLE] Too many failed logins from your "
			"address, try again later");
		break;
	default:
		imap_no(s, c,
			"[UNAVAILABLE] Authentication unavailable, try "
			"again later");
		break;
	}
}

/* The login attempt of LOGIN or AUTHENTICATE is over (its tag waits in
 * s->tag): the rest of the login, then input again. */
static void
imap_login_done(void *arg, enum auth_login_result res, const char *user,
		long retry_s)
{
	struct imap_session *s = arg;
	struct imap_cmd c = {.tag = s->tag, .name = "LOGIN"};

	(void)retry_s;
	s->auth_job = 0;
	mailnode_login_counted(s->mn, s->role, res);
	if (res != AUTH_LOGIN_OK) {
		imap_login_not(s, &c, res, user);
		goto out;
	}
	char dir[PATH_MAX];
	if (store_user_dir(&s->mn->store, user, dir, sizeof(dir), true) < 0 ||
	    (s->userdir = strdup(dir)) == NULL) {
		log_err("imap %s: maildir of %s: %s", s->id, user,
			strerror(errno));
		imap_no(s, &c, "[UNAVAILABLE] Cannot open the mailbox now");
		goto out;
	}
	snprintf(s->user, sizeof(s->user), "%s", user);
	imap_make_special(s);
	s->state = IMAP_AUTH;
	stream_set_timeout(s->st, IMAP_TIMEOUT);
	stream_set_deadline(s->st, 0, false); /* logged in in time */
	log_info("imap %s: %s logged in from %s", s->id, s->user,
		 stream_peer_str(s->st));
	char caps[IMAP_CAPS_MAX];
	imap_ok(s, &c, "[CAPABILITY %s] Logged in", imap_capabilities(s, caps));
out:
	imap_release(s);
}

void
imap_login(struct imap_session *s, const struct imap_cmd *c, char *user,
	   const char *pass)
{
	for (char *p = user; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (directory_loaded(s->mn->dir))
		s->auth_job = auth_login_start(s->mn->login, s->mn->dir,
					       stream_peer(s->st), user, pass,
					       imap_login_done, s);
	if (s->auth_job == 0) {
		imap_no(s, c,
			"[UNAVAILABLE] Authentication unavailable, try "
			"again later");
		return;
	}
	imap_hold(s);
}

/* ---- assembling commands ---- */

/* Splits the tag and the command name off the assembled command and runs
 * it. */
static void
imap_run(struct imap_session *s)
{
	struct imap_cmd c = {.tag = "*", .name = ""};
	char tag[IMAP_TAG_MAX + 1], name[32];
	const char *buf = strbuf_str(&s->cmd);

	imap_cur_init(&c.cur, buf, s->cmd.len);
	if (imap_command_start(&c.cur, tag, sizeof(tag), name, sizeof(name),
			       &c.uid) < 0) {
		if (tag[0] != '\0')
			c.tag = tag;
		imap_bad(s, &c, "%s", c.cur.err);
		return;
	}
	c.tag = tag;
	c.name = name;
	log_debug("imap %s: < %s %s%s", s->id, tag, c.uid ? "UID " : "",
		  strcmp(name, "LOGIN") == 0 ||
			  strcmp(name, "AUTHENTICATE") == 0
		      ? name
		      : buf + (c.cur.p - buf) - strlen(name));
	snprintf(s->tag, sizeof(s->tag), "%s", tag);
	imap_command(s, &c);
}

void
imap_dispatch(struct imap_session *s)
{
	if (!s->uid_rerun && imap_uid_gate(s))
		return;
	imap_run(s);
	if (imap_uid_waiting(s))
		return;
	imap_uid_end(s);
	s->uid_rerun = false;
	strbuf_reset(&s->cmd);
	imap_end_if_stopping(s);
}

/* The tag of a command still being assembled, for an early answer. */
static void
imap_early_answer(struct imap_session *s, const char *kind, const char *text)
{
	struct imap_cur cur;
	char tag[IMAP_TAG_MAX + 1];
	imap_cur_init(&cur, strbuf_str(&s->cmd), s->cmd.len);
	if (imap_tag(&cur, tag, sizeof(tag)) < 0)
		snprintf(tag, sizeof(tag), "*");
	imap_line(s, "%s %s %s", tag, kind, text);
}

static void
imap_command_line(struct imap_session *s, char *line, size_t len)
{
	uint64_t lit = 0;
	bool nonsync = false;
	int r = imap_literal_suffix(line, len, &lit, &nonsync);

	if (strbuf_append(&s->cmd, line, len) < 0) {
		strbuf_reset(&s->cmd);
		imap_line(s, "* BAD Command too long");
		if (++s->errors >= IMAP_MAX_ERRORS)
			imap_bye(s, "too many errors", "Too many errors");
		return;
	}
	if (r < 0) {
		imap_early_answer(s, "BAD", "Invalid literal");
		strbuf_reset(&s->cmd);
		return;
	}
	if (r == 0) {
		imap_dispatch(s);
		return;
	}
	/* A literal: is there room for it? APPEND's message may be as large
	 * as a message may be; anything else stays small. */
	size_t room = s->mn->cfg->msg_max + IMAP_CMD_MAX;
	/* cmd.len may pass room: max_message_size lowered by a reload. */
	if (s->cmd.len > room || lit > room - s->cmd.len) {
		if (nonsync) {
			/* Its bytes are on their way and cannot be told
			 * apart from commands: the session cannot go on. */
			imap_early_answer(s, "BAD", "Literal too large");
			imap_bye(s, "literal too large", "Literal too large");
			return;
		}
		imap_early_answer(s, "NO", "[TOOBIG] Literal too large");
		strbuf_reset(&s->cmd);
		return;
	}
	if (strbuf_append(&s->cmd, "\r\n", 2) < 0) {
		imap_early_answer(s, "NO", "[TOOBIG] Command too long");
		strbuf_reset(&s->cmd);
		return;
	}
	if (!nonsync)
		imap_line(s, "+ Ready for literal data");
	if (lit > 0)
		stream_read_bytes(s->st, (size_t)lit);
}

static void
imap_on_bytes(void *arg, char *data, size_t len, size_t left)
{
	struct imap_session *s = arg;
	(void)left;
	if (strbuf_append(&s->cmd, data, len) < 0) {
		/* Counted before: only out of memory comes here. */
		imap_bye(s, "out of memory", "Server out of memory");
	}
}

static void
imap_on_line(void *arg, char *line, size_t len, bool crlf, bool toolong)
{
	struct imap_session *s = arg;
	(void)crlf;
	if (s->state == IMAP_LOGOUT)
		return;
	if (toolong) {
		strbuf_reset(&s->cmd);
		if (s->wait == IMAP_W_SASL || s->wait == IMAP_W_IDLE)
			s->wait = IMAP_W_COMMAND;
		imap_line(s, "* BAD Line too long");
		if (++s->errors >= IMAP_MAX_ERRORS)
			imap_bye(s, "too many errors", "Too many errors");
		return;
	}
	switch (s->wait) {
	case IMAP_W_SASL:
		imap_sasl_response(s, line);
		return;
	case IMAP_W_IDLE:
		imap_idle_done(s, line);
		return;
	case IMAP_W_BUSY: /* held: cannot come */
	case IMAP_W_COMMAND:
		break;
	}
	if (s->cmd.len == 0 && len == 0)
		return; /* blank lines between commands: tolerated */
	imap_command_line(s, line, len);
}

static void
imap_on_ready(void *arg)
{
	struct imap_session *s = arg;
	char caps[IMAP_CAPS_MAX];
	imap_untagged(s, "OK [CAPABILITY %s] %s IMAP4rev1 mailnode ready",
		      imap_capabilities(s, caps), s->mn->cfg->hostname);
}

static void
imap_on_timeout(void *arg)
{
	struct imap_session *s = arg;
	imap_bye(s, "timeout", "Autologout, idle for too long");
}

/* login_timeout_s after the connection, still not logged in. */
static void
imap_on_deadline(void *arg)
{
	imap_bye(arg, "login timeout", "Login timeout");
}

static void
imap_on_refused(void *arg)
{
	imap_bye(arg, "too many connections",
		 "[UNAVAILABLE] Too many connections, try again later");
}

static void
imap_on_drain(void *arg)
{
	imap_fetch_continue(arg);
}

static void
imap_on_close(void *arg, const char *why)
{
	struct imap_session *s = arg;
	log_debug("imap %s: closed: %s", s->id, why);
	auth_login_cancel(s->mn->login, s->auth_job);
	imap_fetch_abort(s);
	imap_uid_end(s);
	ev_timer_stop(s->mn->loop, &s->idle_poll);
	imap_mailbox_close(s);
	strbuf_free(&s->cmd);
	free(s->userdir);
	if (s->prev)
		s->prev->next = s->next;
	else
		s->mn->imap_sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	mailnode_session_closed(s->mn, s->role);
	free(s);
}

static const struct stream_ops imap_stream_ops = {
    .on_ready = imap_on_ready,
    .on_line = imap_on_line,
    .on_close = imap_on_close,
    .on_timeout = imap_on_timeout,
    .on_bytes = imap_on_bytes,
    .on_drain = imap_on_drain,
    .on_deadline = imap_on_deadline,
    .on_refused = imap_on_refused,
};

void
imap_session_start(struct mailnode *mn, enum node_role role, int fd,
		   const struct sockaddr *peer, socklen_t peerlen)
{
	struct imap_session *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		return;
	}
	s->mn = mn;
	s->role = role;
	s->state = IMAP_NOT_AUTH;
	s->wait = IMAP_W_COMMAND;
	snprintf(s->id, sizeof(s->id), "%08lX%04lX", (unsigned long)time(NULL),
		 ++imap_seq & 0xffff);
	strbuf_init(&s->cmd, mn->cfg->msg_max + IMAP_CMD_MAX);
	ev_init(&s->idle_poll, NULL);
	mailnode_session_opened(mn, role);
	s->next = mn->imap_sessions;
	if (s->next)
		s->next->prev = s;
	mn->imap_sessions = s;
	struct stream_opts o =
	    mailnode_stream_opts(mn, role, IMAP_LINE_MAX, IMAP_TIMEOUT_NOAUTH);
	/* A FETCH goes out in slices; one slice holds at most one message
	 * as a literal past the slice size. */
	size_t need = mn->cfg->msg_max_sent + 4 * IMAP_OUT_SLICE;
	if (o.max_output < need)
		o.max_output = need;
	s->st =
	    stream_new(mn->loop, fd, peer, peerlen, &o, &imap_stream_ops, s);
	/* stream_new failing closed nothing of ours but fd: undo the rest. */
	if (s->st == NULL) {
		if (s->next)
			s->next->prev = NULL;
		mn->imap_sessions = s->next;
		mailnode_session_closed(mn, role);
		strbuf_free(&s->cmd);
		free(s);
		return;
	}
	stream_set_deadline(s->st, mn->cfg->login_timeout_s, false);
}

void
imap_sessions_stop(struct mailnode *mn)
{
	/* The close comes from the loop, so the list stays whole here. */
	for (struct imap_session *s = mn->imap_sessions; s; s = s->next)
		if (s->wait != IMAP_W_BUSY && s->cmd.len == 0)
			imap_bye(s, "node stopping",
				 "[UNAVAILABLE] Server shutting down");
}
