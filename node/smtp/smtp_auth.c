/* SMTP AUTH (RFC 4954): PLAIN and LOGIN, with or without an initial
 * response, only where smtp_auth_allowed() (TLS, or the config says so). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../../common/log.h"
#include "../../common/sasl.h"
#include "smtp.h"

enum { AUTH_PLAIN = 1, AUTH_LOGIN = 2 };

static void
smtp_auth_done(struct smtp_session *s)
{
	s->state = SMTP_READY;
	s->auth_mech = 0;
	s->auth_step = 0;
	explicit_bzero(s->auth_login, sizeof(s->auth_login));
}

/* The login attempt is over (auth_login.h): the answer, then input
 * again. */
static void
smtp_auth_checked(void *arg, enum auth_login_result res, const char *user,
		  long retry_s)
{
	struct smtp_session *s = arg;

	(void)retry_s;
	s->auth_job = 0;
	mailnode_login_counted(s->mn, s->role, res);
	s->state = SMTP_READY;
	switch (res) {
	case AUTH_LOGIN_OK:
		snprintf(s->user, sizeof(s->user), "%s", user);
		stream_set_deadline(s->st, 0, false); /* logged in in time */
		log_info("smtp %s: %s authenticated from %s", s->id, s->user,
			 stream_peer_str(s->st));
		smtp_reply(s, "235 2.7.0 Authentication successful");
		break;
	case AUTH_LOGIN_FAILED:
		log_info("smtp %s: authentication failed for %s from %s", s->id,
			 user, stream_peer_str(s->st));
		smtp_error(s, "535 5.7.8 Authentication credentials invalid");
		break;
	case AUTH_LOGIN_REFUSED:
		smtp_reply(s, "454 4.7.0 Too many failed logins from your "
			      "address, try again later");
		break;
	case AUTH_LOGIN_BUSY:
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		break;
	}
	stream_resume(s->st);
}

/* Starts the login attempt (auth_login.h); input is held until
 * smtp_auth_checked. */
static void
smtp_auth_check(struct smtp_session *s, char *user, const char *pass)
{
	for (char *p = user; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	smtp_auth_done(s);
	if (directory_loaded(s->mn->dir))
		s->auth_job = auth_login_start(s->mn->login, s->mn->dir,
					       stream_peer(s->st), user, pass,
					       smtp_auth_checked, s);
	if (s->auth_job == 0) {
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	s->state = SMTP_AUTH_CHECK;
	stream_pause(s->st);
}

static void
smtp_auth_plain(struct smtp_session *s, const char *b64)
{
	unsigned char msg[1024];
	char user[DIR_ADDR_MAX], pass[512];
	long n = base64_decode(b64, strlen(b64), msg, sizeof(msg));
	if (n < 0 || sasl_plain_parse(msg, (size_t)n, user, sizeof(user), pass,
				      sizeof(pass)) < 0) {
		smtp_auth_done(s);
		smtp_error(s, "501 5.5.2 Invalid PLAIN response");
	} else
		smtp_auth_check(s, user, pass);
	explicit_bzero(msg, sizeof(msg));
	explicit_bzero(pass, sizeof(pass));
}

/* Decodes one base64 LOGIN answer into out (NUL-terminated). */
static int
smtp_auth_b64_line(const char *b64, char *out, size_t outlen)
{
	long n =
	    base64_decode(b64, strlen(b64), (unsigned char *)out, outlen - 1);
	if (n < 0 || memchr(out, '\0', (size_t)n) != NULL)
		return -1;
	out[n] = '\0';
	return 0;
}

static void
smtp_auth_login(struct smtp_session *s, const char *b64)
{
	char pass[512];
	if (s->auth_step == 0) {
		if (smtp_auth_b64_line(b64, s->auth_login,
				       sizeof(s->auth_login)) < 0) {
			smtp_auth_done(s);
			smtp_error(s, "501 5.5.2 Invalid LOGIN response");
			return;
		}
		s->auth_step = 1;
		s->state = SMTP_AUTH;
		smtp_reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
		return;
	}
	if (smtp_auth_b64_line(b64, pass, sizeof(pass)) < 0) {
		smtp_auth_done(s);
		smtp_error(s, "501 5.5.2 Invalid LOGIN response");
		return;
	}
	char user[DIR_ADDR_MAX];
	snprintf(user, sizeof(user), "%s", s->auth_login);
	smtp_auth_check(s, user, pass);
	explicit_bzero(pass, sizeof(pass));
}

void
smtp_auth_begin(struct smtp_session *s, char *args)
{
	char *initial = strchr(args, ' ');
	if (initial)
		*initial++ = '\0';
	if (strcasecmp(args, "PLAIN") == 0)
		s->auth_mech = AUTH_PLAIN;
	else if (strcasecmp(args, "LOGIN") == 0)
		s->auth_mech = AUTH_LOGIN;
	else {
		smtp_error(s, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	s->auth_step = 0;
	if (initial && strcmp(initial, "=") == 0)
		initial = (char *)"";
	if (initial == NULL) {
		s->state = SMTP_AUTH;
		smtp_reply(s, s->auth_mech == AUTH_PLAIN
				  ? "334 "
				  : "334 VXNlcm5hbWU6"); /* "Username:" */
		return;
	}
	smtp_auth_continue(s, initial);
}

void
smtp_auth_continue(struct smtp_session *s, char *line)
{
	if (strcmp(line, "*") == 0) {
		smtp_auth_done(s);
		smtp_error(s, "501 5.7.0 Authentication aborted");
		return;
	}
	if (s->auth_mech == AUTH_PLAIN)
		smtp_auth_plain(s, line);
	else
		smtp_auth_login(s, line);
}
