/* SMTP commands: one function each, found through one table. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../common/log.h"
#include "smtp.h"
#include "smtp_parse.h"

struct smtp_cmd {
	const char *verb;
	void (*run)(struct smtp_session *s, char *args);
};

static bool
smtp_need_helo(struct smtp_session *s)
{
	if (s->state != SMTP_GREETED)
		return false;
	smtp_error(s, "503 5.5.1 Error: send HELO/EHLO first");
	return true;
}

static void
smtp_cmd_helo_common(struct smtp_session *s, char *args, bool esmtp)
{
	if (!smtp_helo_ok(args, sizeof(s->helo))) {
		smtp_error(s, "501 5.5.4 Syntax: %s hostname",
			   esmtp ? "EHLO" : "HELO");
		return;
	}
	smtp_reset(s);
	snprintf(s->helo, sizeof(s->helo), "%s", args);
	s->esmtp = esmtp;
	s->state = SMTP_READY;
}

static void
smtp_cmd_ehlo(struct smtp_session *s, char *args)
{
	const struct node_config *cfg = s->mn->cfg;
	smtp_cmd_helo_common(s, args, true);
	if (s->state != SMTP_READY)
		return;
	smtp_reply(s, "250-%s Hello %s", cfg->hostname, s->helo);
	smtp_reply(s, "250-PIPELINING");
	smtp_reply(s, "250-SIZE %ld", cfg->max_message_size);
	smtp_reply(s, "250-8BITMIME");
	smtp_reply(s, "250-SMTPUTF8");
	if (s->mn->tls && !stream_is_tls(s->st))
		smtp_reply(s, "250-STARTTLS");
	if (smtp_is_submission(s) && smtp_auth_allowed(s) && !s->user[0])
		smtp_reply(s, "250-AUTH PLAIN LOGIN");
	smtp_reply(s, "250 ENHANCEDSTATUSCODES");
}

static void
smtp_cmd_helo(struct smtp_session *s, char *args)
{
	smtp_cmd_helo_common(s, args, false);
	if (s->state == SMTP_READY)
		smtp_reply(s, "250 %s", s->mn->cfg->hostname);
}

/* MAIL parameters (smtp_parse_mail_params): answers and returns -1 on
 * a bad or unsupported one, or a SIZE over the node's limit. */
static int
smtp_mail_params(struct smtp_session *s, char *params)
{
	struct smtp_mail_params mp;
	switch (smtp_parse_mail_params(params, &mp)) {
	case SMTP_PARAM_BAD_SIZE:
		smtp_error(s, "501 5.5.4 Bad SIZE parameter");
		return -1;
	case SMTP_PARAM_UNSUPPORTED:
		smtp_error(s, "555 5.5.4 Unsupported parameter %s", mp.unknown);
		return -1;
	case SMTP_PARAM_OK:
		break;
	}
	if (mp.has_size && mp.size > (uint64_t)s->mn->cfg->max_message_size) {
		smtp_reply(s, "552 5.3.4 Message too big (max %ld bytes)",
			   s->mn->cfg->max_message_size);
		return -1;
	}
	s->mail_size = mp.has_size ? mp.size : 0;
	return 0;
}

static void
smtp_cmd_mail(struct smtp_session *s, char *args)
{
	char *rest;
	if (smtp_need_helo(s))
		return;
	if (s->state != SMTP_READY) {
		smtp_error(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (smtp_is_submission(s) && !s->user[0]) {
		smtp_error(s, "530 5.7.0 Authentication required");
		return;
	}
	if (smtp_parse_path(args, "FROM:", s->sender, sizeof(s->sender),
			    &rest) < 0 ||
	    (s->sender[0] && !smtp_mailbox_ok(s->sender))) {
		s->sender[0] = '\0';
		smtp_error(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	if (smtp_mail_params(s, rest) < 0) {
		s->sender[0] = '\0';
		return;
	}
	if (smtp_is_submission(s) &&
	    !submit_sender_allowed(s->mn->dir, s->user, s->sender)) {
		smtp_error(s,
			   "553 5.7.1 <%s>: Sender address rejected: not "
			   "owned by user %s",
			   s->sender, s->user);
		s->sender[0] = '\0';
		return;
	}
	s->state = SMTP_MAIL;
	smtp_reply(s, "250 2.1.0 Ok");
}

static void
smtp_cmd_rcpt(struct smtp_session *s, char *args)
{
	char rcpt[DIR_ADDR_MAX], *rest;

	if (smtp_need_helo(s))
		return;
	if (s->state != SMTP_MAIL && s->state != SMTP_RCPT) {
		smtp_error(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (smtp_parse_path(args, "TO:", rcpt, sizeof(rcpt), &rest) < 0 ||
	    !smtp_mailbox_ok(rcpt)) {
		smtp_error(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (s->rc.nrcpt >= (size_t)s->mn->cfg->max_recipients) {
		smtp_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	switch (submit_add_rcpt(s->mn, &s->rc, rcpt, smtp_relay_allowed(s),
				s->mail_size)) {
	case SUBMIT_RCPT_OK:
		if (smtp_milter_rcpt(s, rcpt) < 0) {
			smtp_reply(s,
				   "451 4.3.0 Out of memory, try again later");
			return;
		}
		s->state = SMTP_RCPT;
		smtp_reply(s, "250 2.1.5 Ok");
		return;
	case SUBMIT_RCPT_NOT_LOADED:
		smtp_reply(s, "451 4.3.0 Configuration not loaded yet, try "
			      "again later");
		return;
	case SUBMIT_RCPT_RELAY_DENIED:
		smtp_error(s, "554 5.7.1 <%s>: Relay access denied", rcpt);
		return;
	case SUBMIT_RCPT_UNKNOWN:
		smtp_error(s,
			   "550 5.1.1 <%s>: Recipient address rejected: "
			   "no such user",
			   rcpt);
		return;
	case SUBMIT_RCPT_FULL:
		log_info("smtp %s: <%s>: over its quota", s->id, rcpt);
		smtp_reply(s, "452 4.2.2 <%s>: Mailbox full, try again later",
			   rcpt);
		return;
	case SUBMIT_RCPT_TOO_BIG:
		log_info("smtp %s: <%s>: SIZE=%llu would take it over its "
			 "quota",
			 s->id, rcpt, (unsigned long long)s->mail_size);
		smtp_reply(s,
			   "552 5.2.2 <%s>: Message would exceed the "
			   "recipient's quota",
			   rcpt);
		return;
	case SUBMIT_RCPT_NOMEM:
		smtp_reply(s, "451 4.3.0 Out of memory, try again later");
		return;
	}
}

static void
smtp_cmd_data(struct smtp_session *s, char *args)
{
	if (smtp_need_helo(s))
		return;
	if (*args) {
		smtp_error(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (s->state != SMTP_RCPT) {
		smtp_error(s, s->state == SMTP_MAIL
				  ? "554 5.5.1 Error: no valid recipients"
				  : "503 5.5.1 Error: need RCPT command");
		return;
	}
	smtp_data_begin(s);
}

static void
smtp_cmd_rset(struct smtp_session *s, char *args)
{
	(void)args;
	smtp_reset(s);
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
smtp_cmd_noop(struct smtp_session *s, char *args)
{
	(void)args;
	smtp_reply(s, "250 2.0.0 Ok");
}

static void
smtp_cmd_quit(struct smtp_session *s, char *args)
{
	(void)args;
	smtp_reply(s, "221 2.0.0 Bye");
	s->state = SMTP_QUIT;
	stream_close(s->st, "QUIT");
}

static void
smtp_cmd_vrfy(struct smtp_session *s, char *args)
{
	(void)args;
	smtp_reply(s, "252 2.5.2 Cannot VRFY user, but will accept message "
		      "and attempt delivery");
}

static void
smtp_cmd_help(struct smtp_session *s, char *args)
{
	(void)args;
	smtp_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP "
		      "QUIT VRFY HELP STARTTLS AUTH");
}

static void
smtp_cmd_starttls(struct smtp_session *s, char *args)
{
	if (*args) {
		smtp_error(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (s->mn->tls == NULL) {
		smtp_error(s, "454 4.7.0 TLS not available");
		return;
	}
	if (stream_is_tls(s->st)) {
		smtp_error(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	stream_starttls(s->st, s->mn->tls);
	/* RFC 3207 4.2: forget everything learned before TLS. */
	smtp_reset(s);
	s->helo[0] = '\0';
	s->state = SMTP_GREETED;
}

static void
smtp_cmd_auth(struct smtp_session *s, char *args)
{
	if (smtp_need_helo(s))
		return;
	if (!smtp_is_submission(s)) {
		smtp_error(s, "503 5.5.1 Error: authentication not enabled");
		return;
	}
	if (!smtp_auth_allowed(s)) {
		smtp_error(s, "538 5.7.11 Encryption required for requested "
			      "authentication mechanism");
		return;
	}
	if (s->user[0]) {
		smtp_error(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (s->state != SMTP_READY) {
		smtp_error(s, "503 5.5.1 Error: MAIL transaction in progress");
		return;
	}
	smtp_auth_begin(s, args);
}

static const struct smtp_cmd smtp_cmds[] = {
    {"EHLO", smtp_cmd_ehlo},
    {"HELO", smtp_cmd_helo},
    {"MAIL", smtp_cmd_mail},
    {"RCPT", smtp_cmd_rcpt},
    {"DATA", smtp_cmd_data},
    {"RSET", smtp_cmd_rset},
    {"NOOP", smtp_cmd_noop},
    {"QUIT", smtp_cmd_quit},
    {"VRFY", smtp_cmd_vrfy},
    {"HELP", smtp_cmd_help},
    {"STARTTLS", smtp_cmd_starttls},
    {"AUTH", smtp_cmd_auth},
    {NULL, NULL},
};

void
smtp_command(struct smtp_session *s, char *line, size_t len)
{
	char *verb, *args;
	if (smtp_parse_command(line, len, &verb, &args) < 0) {
		smtp_error(s, "501 5.5.2 Syntax error: NUL in command");
		return;
	}
	for (const struct smtp_cmd *c = smtp_cmds; c->verb; c++)
		if (strcasecmp(c->verb, verb) == 0) {
			c->run(s, args);
			return;
		}
	smtp_error(s, "500 5.5.2 Error: command not recognized");
}
