/* POP3 commands: one function each, found through one table that also
 * says in which states a command is valid. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../common/log.h"
#include "../../common/sasl.h"
#include "pop3.h"

#define IN_AUTH (1u << POP3_AUTHORIZATION)
#define IN_TRANS (1u << POP3_TRANSACTION)

struct pop3_cmd {
	const char *verb;
	unsigned states; /* where it is valid */
	void (*run)(struct pop3_session *s, char *args);
};

/* A decimal number without sign, at most max. Returns 0 or -1. */
static int
pop3_number(const char *p, long max, long *out)
{
	long v = 0;
	if (*p == '\0')
		return -1;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		if (v > (max - (*p - '0')) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	*out = v;
	return 0;
}

/* The message of argument arg ("n"): its index, or -1 after answering. */
static long
pop3_msg_arg(struct pop3_session *s, const char *arg)
{
	long n;
	if (pop3_number(arg, LONG_MAX / 2, &n) < 0) {
		pop3_error(s, "-ERR Invalid message number");
		return -1;
	}
	if (n < 1 || (size_t)n > s->list.n) {
		pop3_error(s, "-ERR No such message");
		return -1;
	}
	if (s->deleted[n - 1]) {
		pop3_error(s, "-ERR Message %ld already deleted", n);
		return -1;
	}
	return n - 1;
}

/* Splits "a b" in place: *rest points after the first word. */
static char *
pop3_word(char *args, char **rest)
{
	char *sp = strchr(args, ' ');
	if (sp) {
		*sp++ = '\0';
		while (*sp == ' ')
			sp++;
		*rest = sp;
	} else
		*rest = args + strlen(args);
	return args;
}

static void
pop3_sys_error(struct pop3_session *s)
{
	pop3_reply(s, "-ERR [SYS/TEMP] Cannot read the message now");
}

/* ---- AUTHORIZATION ---- */

static void
pop3_cmd_capa(struct pop3_session *s, char *args)
{
	(void)args;
	bool login = s->state == POP3_AUTHORIZATION;
	pop3_reply(s, "+OK Capability list follows");
	pop3_reply(s, "TOP");
	if (login && pop3_auth_allowed(s))
		pop3_reply(s, "USER");
	pop3_reply(s, "UIDL");
	pop3_reply(s, "RESP-CODES");
	pop3_reply(s, "AUTH-RESP-CODE");
	if (login && pop3_auth_allowed(s))
		pop3_reply(s, "SASL PLAIN");
	if (login && s->mn->tls && !stream_is_tls(s->st))
		pop3_reply(s, "STLS");
	pop3_reply(s, "PIPELINING");
	pop3_reply(s, "IMPLEMENTATION mailnode");
	pop3_reply(s, ".");
}

static bool
pop3_need_tls(struct pop3_session *s)
{
	if (pop3_auth_allowed(s))
		return false;
	pop3_error(s, "-ERR [AUTH] Plaintext authentication disallowed on "
		      "non-secure connections, use STLS");
	return true;
}

static void
pop3_cmd_stls(struct pop3_session *s, char *args)
{
	if (*args) {
		pop3_error(s, "-ERR Syntax: STLS");
		return;
	}
	if (s->mn->tls == NULL) {
		pop3_error(s, "-ERR TLS not available");
		return;
	}
	if (stream_is_tls(s->st)) {
		pop3_error(s, "-ERR TLS already active");
		return;
	}
	pop3_reply(s, "+OK Begin TLS negotiation");
	stream_starttls(s->st, s->mn->tls);
	s->user_arg[0] = '\0'; /* RFC 2595 4: nothing carries over */
}

static void
pop3_cmd_user(struct pop3_session *s, char *args)
{
	if (pop3_need_tls(s))
		return;
	if (*args == '\0' || strlen(args) >= sizeof(s->user_arg) ||
	    strchr(args, ' ')) {
		pop3_error(s, "-ERR Syntax: USER name");
		return;
	}
	snprintf(s->user_arg, sizeof(s->user_arg), "%s", args);
	pop3_reply(s, "+OK Send PASS");
}

static void
pop3_cmd_pass(struct pop3_session *s, char *args)
{
	char user[DIR_ADDR_MAX];
	if (pop3_need_tls(s))
		return;
	if (s->user_arg[0] == '\0') {
		pop3_error(s, "-ERR USER first");
		return;
	}
	snprintf(user, sizeof(user), "%s", s->user_arg);
	pop3_login(s, user, args);
}

static void
pop3_sasl_plain(struct pop3_session *s, const char *b64)
{
	unsigned char msg[1024];
	char user[DIR_ADDR_MAX], pass[512];
	long n = base64_decode(b64, strlen(b64), msg, sizeof(msg));
	if (n < 0 || sasl_plain_parse(msg, (size_t)n, user, sizeof(user), pass,
				      sizeof(pass)) < 0)
		pop3_error(s, "-ERR [AUTH] Invalid PLAIN response");
	else
		pop3_login(s, user, pass);
	explicit_bzero(msg, sizeof(msg));
	explicit_bzero(pass, sizeof(pass));
}

void
pop3_sasl_response(struct pop3_session *s, char *line)
{
	s->state = POP3_AUTHORIZATION;
	if (strcmp(line, "*") == 0) {
		pop3_error(s, "-ERR Authentication cancelled");
		return;
	}
	pop3_sasl_plain(s, line);
}

static void
pop3_cmd_auth(struct pop3_session *s, char *args)
{
	char *initial;
	char *mech = pop3_word(args, &initial);
	if (*mech == '\0') { /* the mechanisms, as many clients ask */
		pop3_reply(s, "+OK Mechanisms follow");
		if (pop3_auth_allowed(s))
			pop3_reply(s, "PLAIN");
		pop3_reply(s, ".");
		return;
	}
	if (pop3_need_tls(s))
		return;
	if (strcasecmp(mech, "PLAIN") != 0) {
		pop3_error(s, "-ERR Unrecognized authentication mechanism");
		return;
	}
	if (*initial == '\0') {
		s->state = POP3_SASL;
		pop3_reply(s, "+ ");
		return;
	}
	if (strcmp(initial, "=") == 0)
		initial[0] = '\0';
	pop3_sasl_plain(s, initial);
}

static void
pop3_cmd_quit(struct pop3_session *s, char *args)
{
	(void)args;
	if (s->state == POP3_TRANSACTION) {
		pop3_update(s);
		return;
	}
	pop3_reply(s, "+OK Bye");
	s->state = POP3_DONE;
	stream_close(s->st, "quit");
}

/* ---- TRANSACTION ---- */

static void
pop3_cmd_stat(struct pop3_session *s, char *args)
{
	uint64_t total = 0;
	size_t n = 0;
	(void)args;
	for (size_t i = 0; i < s->list.n; i++) {
		if (s->deleted[i])
			continue;
		int64_t size = pop3_msg_size(s, i);
		if (size < 0) {
			pop3_sys_error(s);
			return;
		}
		total += (uint64_t)size;
		n++;
	}
	pop3_reply(s, "+OK %zu %llu", n, (unsigned long long)total);
}

static void
pop3_cmd_list(struct pop3_session *s, char *args)
{
	if (*args) {
		long i = pop3_msg_arg(s, args);
		if (i < 0)
			return;
		int64_t size = pop3_msg_size(s, (size_t)i);
		if (size < 0)
			pop3_sys_error(s);
		else
			pop3_reply(s, "+OK %ld %lld", i + 1, (long long)size);
		return;
	}
	/* Measure first, so an error is an -ERR and not a cut listing. */
	for (size_t i = 0; i < s->list.n; i++)
		if (!s->deleted[i] && pop3_msg_size(s, i) < 0) {
			pop3_sys_error(s);
			return;
		}
	pop3_reply(s, "+OK Scan listing follows");
	for (size_t i = 0; i < s->list.n; i++)
		if (!s->deleted[i])
			pop3_reply(s, "%zu %llu", i + 1,
				   (unsigned long long)s->size[i]);
	pop3_reply(s, ".");
}

static void
pop3_cmd_uidl(struct pop3_session *s, char *args)
{
	if (*args) {
		long i = pop3_msg_arg(s, args);
		if (i >= 0)
			pop3_reply(s, "+OK %ld %u.%u", i + 1,
				   s->list.uidvalidity, s->list.msg[i].uid);
		return;
	}
	pop3_reply(s, "+OK Unique-ID listing follows");
	for (size_t i = 0; i < s->list.n; i++)
		if (!s->deleted[i])
			pop3_reply(s, "%zu %u.%u", i + 1, s->list.uidvalidity,
				   s->list.msg[i].uid);
	pop3_reply(s, ".");
}

static void
pop3_cmd_retr(struct pop3_session *s, char *args)
{
	long i = pop3_msg_arg(s, args);
	if (i >= 0 && pop3_send_msg(s, (size_t)i, -1) < 0)
		pop3_sys_error(s);
}

static void
pop3_cmd_top(struct pop3_session *s, char *args)
{
	char *rest;
	long lines;
	char *msg = pop3_word(args, &rest);
	if (*msg == '\0' || pop3_number(rest, LONG_MAX / 2, &lines) < 0) {
		pop3_error(s, "-ERR Syntax: TOP msg lines");
		return;
	}
	long i = pop3_msg_arg(s, msg);
	if (i >= 0 && pop3_send_msg(s, (size_t)i, lines) < 0)
		pop3_sys_error(s);
}

static void
pop3_cmd_dele(struct pop3_session *s, char *args)
{
	long i = pop3_msg_arg(s, args);
	if (i < 0)
		return;
	s->deleted[i] = true;
	pop3_reply(s, "+OK Message %ld deleted", i + 1);
}

static void
pop3_cmd_rset(struct pop3_session *s, char *args)
{
	(void)args;
	size_t n = 0;
	for (size_t i = 0; i < s->list.n; i++) {
		s->deleted[i] = false;
		n++;
	}
	pop3_reply(s, "+OK %zu messages", n);
}

static void
pop3_cmd_noop(struct pop3_session *s, char *args)
{
	(void)args;
	pop3_reply(s, "+OK");
}

static const struct pop3_cmd pop3_cmds[] = {
    {"CAPA", IN_AUTH | IN_TRANS, pop3_cmd_capa},
    {"STLS", IN_AUTH, pop3_cmd_stls},
    {"USER", IN_AUTH, pop3_cmd_user},
    {"PASS", IN_AUTH, pop3_cmd_pass},
    {"AUTH", IN_AUTH, pop3_cmd_auth},
    {"QUIT", IN_AUTH | IN_TRANS, pop3_cmd_quit},
    {"STAT", IN_TRANS, pop3_cmd_stat},
    {"LIST", IN_TRANS, pop3_cmd_list},
    {"UIDL", IN_TRANS, pop3_cmd_uidl},
    {"RETR", IN_TRANS, pop3_cmd_retr},
    {"TOP", IN_TRANS, pop3_cmd_top},
    {"DELE", IN_TRANS, pop3_cmd_dele},
    {"RSET", IN_TRANS, pop3_cmd_rset},
    {"NOOP", IN_TRANS, pop3_cmd_noop},
    {NULL, 0, NULL},
};

void
pop3_command(struct pop3_session *s, char *line)
{
	char *args;
	/* PASS takes the rest of the line as it is: a password may hold
	 * spaces anywhere. */
	bool pass = strncasecmp(line, "PASS ", 5) == 0;
	char *verb = pop3_word(line, &args);
	if (pass)
		args = line + 5;
	else { /* trailing spaces belong to no argument */
		size_t alen = strlen(args);
		while (alen > 0 && args[alen - 1] == ' ')
			args[--alen] = '\0';
	}
	for (const struct pop3_cmd *c = pop3_cmds; c->verb; c++) {
		if (strcasecmp(c->verb, verb) != 0)
			continue;
		if (!(c->states & (1u << s->state))) {
			pop3_error(s, "-ERR %s not valid in this state",
				   c->verb);
			return;
		}
		c->run(s, args);
		return;
	}
	pop3_error(s, "-ERR Unknown command");
}
