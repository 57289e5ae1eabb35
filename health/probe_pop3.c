/* pop3, pop3s, pop3-starttls: the +OK greeting; for -starttls STLS
 * answered +OK and the upgrade; with a check user USER, PASS and STAT;
 * QUIT. Every POP3 answer the probe waits for is one line. */
#include "probe_proto.h"

#include <string.h>
#include <strings.h>

enum pop3_state {
	POP3_GREETING,
	POP3_STLS,
	POP3_USER,
	POP3_PASS,
	POP3_STAT,
	POP3_QUIT,
};

/* Greeted, or upgraded: what comes next. */
static void
pop3_next(struct probe *p, struct probe_conv *c)
{
	const struct probe_spec *s = probe_spec(p);

	if (probe_tls_mode(p) == PROBE_TLS_STARTTLS && !c->upgraded) {
		c->state = POP3_STLS;
		probe_send(p, "STLS");
	} else if (s->user[0] != '\0') {
		if (!probe_text_ok(s->user) || !probe_text_ok(s->password)) {
			probe_fail(p, "check_user or check_password not "
				      "sendable");
			return;
		}
		c->state = POP3_USER;
		probe_send(p, "USER %s", s->user);
	} else {
		probe_pass(p);
	}
}

static void
pop3_on_connect(struct probe *p, struct probe_conv *c)
{
	(void)p;
	c->state = POP3_GREETING;
}

static void
pop3_on_line(struct probe *p, struct probe_conv *c, const char *line)
{
	char ex[PROBE_EXCERPT + 1];
	bool ok = probe_pop3_ok(line);

	probe_excerpt(line, ex, sizeof(ex));
	switch ((enum pop3_state)c->state) {
	case POP3_GREETING:
		if (ok)
			pop3_next(p, c);
		else
			probe_fail(p, "bad greeting: %s", ex);
		break;
	case POP3_STLS:
		if (ok)
			probe_starttls(p);
		else
			probe_fail(p, "STLS refused: %s", ex);
		break;
	case POP3_USER:
		if (ok) {
			c->state = POP3_PASS;
			probe_send(p, "PASS %s", probe_spec(p)->password);
		} else {
			probe_fail(p, "login failed: %s", ex);
		}
		break;
	case POP3_PASS:
		if (ok) {
			c->state = POP3_STAT;
			probe_send(p, "STAT");
		} else {
			probe_fail(p, "login failed: %s", ex);
		}
		break;
	case POP3_STAT:
		if (ok)
			probe_pass(p);
		else
			probe_fail(p, "STAT failed: %s", ex);
		break;
	case POP3_QUIT:
		probe_end(p);
		break;
	}
}

static void
pop3_on_upgrade(struct probe *p, struct probe_conv *c)
{
	pop3_next(p, c);
}

static void
pop3_on_quit(struct probe *p, struct probe_conv *c)
{
	c->state = POP3_QUIT;
	probe_send(p, "QUIT");
}

const struct probe_proto probe_proto_pop3 = {
    .name = "pop3",
    .on_connect = pop3_on_connect,
    .on_line = pop3_on_line,
    .on_upgrade = pop3_on_upgrade,
    .on_quit = pop3_on_quit,
};
