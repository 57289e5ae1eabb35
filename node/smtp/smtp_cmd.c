/* SMTP commands: one function each, found through one table. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../common/log.h"
#include "smtp.h"

struct smtp_cmd {
	const char *verb;
	void (*run)(struct smtp_session *s, char *args);
};

/* Takes the path of "FROM:<path> params" / "TO:<path> params": copies the
 * address between the brackets into out and points *rest at the
 * parameters. Returns 0, or -1 on a syntax error. */
static int
smtp_path(char *args, const char *keyword, char *out, size_t outlen,
	  char **rest)
{
	size_t klen = strlen(keyword);
	if (strncasecmp(args, keyword, klen) != 0)
		return -1;
	args += klen;
	while (*args == ' ') /* tolerated: "FROM: <a@b>" */
		args++;
	if (*args != '<')
		return -1;
	char *close = strchr(args, '>');
	if (close == NULL)
		return -1;
	size_t len = (size_t)(close - args - 1);
	if (len >= outlen)
		return -1;
	for (char *p = args + 1; p < close; p++)
		if ((unsigned char)*p <= ' ' || *p == '<' || *p == '\\' ||
		    *p == '"' || (unsigned char)*p == 0x7f)
			return -1;
	memcpy(out, args + 1, len);
	out[len] = '\0';
	/* A source route (<@a,@b:user@d>) is ignored, as RFC 5321 allows. */
	char *colon = out[0] == '@' ? strchr(out, ':') : NULL;
	if (colon)
		memmove(out, colon + 1, strlen(colon + 1) + 1);
	*rest = close + 1;
	while (**rest == ' ')
		(*rest)++;
	return 0;
}

/* local@domain with both parts non-empty and one '@'. */
static bool
smtp_mailbox_ok(const char *a)
{
	const char *at = strrchr(a, '@');
	return at && at != a && at[1] != '\0' && strchr(a, '@') == at;
}

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
	if (*args == '\0' || strlen(args) >= sizeof(s->helo) ||
	    strchr(args, ' ')) {
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

/* MAIL parameters: SIZE=, BODY=7BIT|8BITMIME, SMTPUTF8, AUTH=. */
static int
smtp_mail_params(struct smtp_session *s, char *params)
{
	char *save, *p;
	for (p = strtok_r(params, " ", &save); p;
	     p = strtok_r(NULL, " ", &save)) {
		if (strncasecmp(p, "SIZE=", 5) == 0) {
			char *end;
			unsigned long long size = strtoull(p + 5, &end, 10);
			if (p[5] == '\0' || *end) {
				smtp_error(s, "501 5.5.4 Bad SIZE parameter");
				return -1;
			}
			if (size >
			    (unsigned long long)s->mn->cfg->max_message_size) {
				smtp_reply(s,
					   "552 5.3.4 Message too big (max %ld "
					   "bytes)",
					   s->mn->cfg->max_message_size);
				return -1;
			}
		} else if (strcasecmp(p, "BODY=7BIT") == 0 ||
			   strcasecmp(p, "BODY=8BITMIME") == 0 ||
			   strcasecmp(p, "SMTPUTF8") == 0 ||
			   strncasecmp(p, "AUTH=", 5) == 0) {
			continue;
		} else {
			smtp_error(s, "555 5.5.4 Unsupported parameter %.64s",
				   p);
			return -1;
		}
	}
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
	if (smtp_path(args, "FROM:", s->sender, sizeof(s->sender), &rest) < 0 ||
	    (s->sender[0] && !smtp_mailbox_ok(s->sender))) {
		s->sender[0] = '\0';
		smtp_error(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	if (smtp_mail_params(s, rest) < 0) {
		s->sender[0] = '\0';
		return;
	}
	if (smtp_is_submission(s) && !smtp_sender_allowed(s, s->sender)) {
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

/* Adds the mailboxes of one recipient, each once per message. */
static int
smtp_add_mailboxes(struct smtp_session *s, char (*mb)[DIR_ADDR_MAX], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		for (size_t j = 0; j < s->nmbox && !dup; j++)
			dup = strcmp(s->mbox[j], mb[i]) == 0;
		if (dup)
			continue;
		if (s->nmbox == s->capmbox) {
			size_t cap = s->capmbox ? s->capmbox * 2 : 8;
			void *m = realloc(s->mbox, cap * sizeof(*s->mbox));
			if (m == NULL)
				return -1;
			s->mbox = m;
			s->capmbox = cap;
		}
		memcpy(s->mbox[s->nmbox++], mb[i], DIR_ADDR_MAX);
	}
	return 0;
}

static void
smtp_cmd_rcpt(struct smtp_session *s, char *args)
{
	char rcpt[DIR_ADDR_MAX], *rest;
	char mb[DIR_MAX_TARGETS][DIR_ADDR_MAX];
	size_t n = 0;

	if (smtp_need_helo(s))
		return;
	if (s->state != SMTP_MAIL && s->state != SMTP_RCPT) {
		smtp_error(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (smtp_path(args, "TO:", rcpt, sizeof(rcpt), &rest) < 0 ||
	    !smtp_mailbox_ok(rcpt)) {
		smtp_error(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (s->nrcpt >= (size_t)s->mn->cfg->max_recipients) {
		smtp_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	if (!directory_loaded(s->mn->dir)) {
		smtp_reply(s, "451 4.3.0 Configuration not loaded yet, try "
			      "again later");
		return;
	}
	switch (directory_resolve(s->mn->dir, rcpt, mb, DIR_MAX_TARGETS, &n)) {
	case DIR_NOT_LOCAL:
		if (!smtp_relay_allowed(s)) {
			smtp_error(s, "554 5.7.1 <%s>: Relay access denied",
				   rcpt);
			return;
		}
		if (smtp_add_remote(s, rcpt) < 0) {
			smtp_reply(s,
				   "451 4.3.0 Out of memory, try again later");
			return;
		}
		s->nrcpt++;
		s->state = SMTP_RCPT;
		smtp_reply(s, "250 2.1.5 Ok");
		return;
	case DIR_UNKNOWN:
	case DIR_OK:
		break;
	}
	int fw = smtp_add_forwards(s, rcpt);
	if (fw < 0 || (n == 0 && fw == 0)) {
		smtp_error(s,
			   "550 5.1.1 <%s>: Recipient address rejected: "
			   "no such user",
			   rcpt);
		return;
	}
	if (smtp_add_mailboxes(s, mb, n) < 0) {
		smtp_reply(s, "451 4.3.0 Out of memory, try again later");
		return;
	}
	s->nrcpt++;
	s->state = SMTP_RCPT;
	smtp_reply(s, "250 2.1.5 Ok");
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
	(void)len;
	char *args = strchr(line, ' ');
	if (args) {
		*args++ = '\0';
		while (*args == ' ')
			args++;
		/* Trailing spaces are not part of any argument. */
		size_t alen = strlen(args);
		while (alen > 0 && args[alen - 1] == ' ')
			args[--alen] = '\0';
	} else
		args = line + strlen(line);
	for (const struct smtp_cmd *c = smtp_cmds; c->verb; c++)
		if (strcasecmp(c->verb, line) == 0) {
			c->run(s, args);
			return;
		}
	smtp_error(s, "500 5.5.2 Error: command not recognized");
}
