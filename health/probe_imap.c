/* imap, imaps, imap-starttls: the "* OK" greeting; for -starttls STARTTLS
 * answered OK and the upgrade; with a check user LOGIN and SELECT INBOX;
 * LOGOUT. Tags count up from a1; untagged lines between are ignored. */
#include "probe_proto.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum imap_state {
	IMAP_GREETING, /* waiting for "* OK" */
	IMAP_STARTTLS, /* waiting for the tagged answer to STARTTLS */
	IMAP_LOGIN,
	IMAP_SELECT,
	IMAP_LOGOUT,
};

#define IMAP_QUOTED_MAX (2 * sizeof(((struct probe_spec *)0)->user) + 3)

/* Writes s as an IMAP quoted string. Returns dst. */
static const char *
imap_quote(const char *s, char *dst, size_t len)
{
	size_t o = 0;

	dst[o++] = '"';
	for (; *s != '\0' && o + 3 < len; s++) {
		if (*s == '"' || *s == '\\')
			dst[o++] = '\\';
		dst[o++] = *s;
	}
	dst[o++] = '"';
	dst[o] = '\0';
	return dst;
}

static void
imap_login(struct probe *p, struct probe_conv *c)
{
	const struct probe_spec *s = probe_spec(p);
	char user[IMAP_QUOTED_MAX], pass[IMAP_QUOTED_MAX];

	if (!probe_text_ok(s->user) || !probe_text_ok(s->password)) {
		probe_fail(p, "check_user or check_password not sendable");
		return;
	}
	c->state = IMAP_LOGIN;
	probe_send(p, "a%d LOGIN %s %s", ++c->tag,
		   imap_quote(s->user, user, sizeof(user)),
		   imap_quote(s->password, pass, sizeof(pass)));
}

/* Greeted, or upgraded: what comes next. */
static void
imap_next(struct probe *p, struct probe_conv *c)
{
	if (probe_tls_mode(p) == PROBE_TLS_STARTTLS && !c->upgraded) {
		c->state = IMAP_STARTTLS;
		probe_send(p, "a%d STARTTLS", ++c->tag);
	} else if (probe_spec(p)->user[0] != '\0') {
		imap_login(p, c);
	} else {
		probe_pass(p);
	}
}

static void
imap_on_connect(struct probe *p, struct probe_conv *c)
{
	(void)p;
	c->state = IMAP_GREETING;
}

static void
imap_on_line(struct probe *p, struct probe_conv *c, const char *line)
{
	char ex[PROBE_EXCERPT + 1];
	const char *status;

	if (c->state == IMAP_GREETING) {
		if (probe_imap_greeting_ok(line))
			imap_next(p, c);
		else
			probe_fail(p, "bad greeting: %s",
				   probe_excerpt(line, ex, sizeof(ex)));
		return;
	}
	if ((status = probe_imap_tagged(c->tag, line)) == NULL)
		return; /* untagged data, BYE before the LOGOUT answer, ... */
	probe_excerpt(status, ex, sizeof(ex));
	switch ((enum imap_state)c->state) {
	case IMAP_STARTTLS:
		if (probe_imap_ok(status))
			probe_starttls(p);
		else
			probe_fail(p, "STARTTLS refused: %s", ex);
		break;
	case IMAP_LOGIN:
		if (probe_imap_ok(status)) {
			c->state = IMAP_SELECT;
			probe_send(p, "a%d SELECT INBOX", ++c->tag);
		} else {
			probe_fail(p, "login failed: %s", ex);
		}
		break;
	case IMAP_SELECT:
		if (probe_imap_ok(status))
			probe_pass(p);
		else
			probe_fail(p, "SELECT INBOX failed: %s", ex);
		break;
	case IMAP_LOGOUT:
		probe_end(p);
		break;
	case IMAP_GREETING:
		break;
	}
}

static void
imap_on_upgrade(struct probe *p, struct probe_conv *c)
{
	imap_next(p, c);
}

static void
imap_on_quit(struct probe *p, struct probe_conv *c)
{
	c->state = IMAP_LOGOUT;
	probe_send(p, "a%d LOGOUT", ++c->tag);
}

const struct probe_proto probe_proto_imap = {
    .name = "imap",
    .on_connect = imap_on_connect,
    .on_line = imap_on_line,
    .on_upgrade = imap_on_upgrade,
    .on_quit = imap_on_quit,
};
