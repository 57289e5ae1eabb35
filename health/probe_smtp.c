/* smtp, smtps, smtp-starttls: the 220 greeting, EHLO answered 250, and
 * for -starttls STARTTLS answered 220, the upgrade and EHLO again; QUIT.
 * Replies may span lines ("250-..."); only a reply's last line moves the
 * state machine. */
#include "probe_proto.h"

enum smtp_state {
	SMTP_GREETING, /* waiting for 220 */
	SMTP_EHLO,     /* waiting for 250 */
	SMTP_STARTTLS, /* waiting for 220 go-ahead */
	SMTP_QUIT,     /* waiting for 221, or EOF */
};

static void
smtp_send_ehlo(struct probe *p, struct probe_conv *c)
{
	char literal[64];

	c->offered = false;
	c->state = SMTP_EHLO;
	probe_send(p, "EHLO %s",
		   probe_local_literal(p, literal, sizeof(literal)));
}

/* EHLO was accepted: upgrade first when the form asks for it. */
static void
smtp_ehlo_done(struct probe *p, struct probe_conv *c)
{
	if (probe_tls_mode(p) != PROBE_TLS_STARTTLS || c->upgraded) {
		probe_pass(p);
		return;
	}
	if (!c->offered) {
		probe_fail(p, "STARTTLS not offered");
		return;
	}
	c->state = SMTP_STARTTLS;
	probe_send(p, "STARTTLS");
}

static void
smtp_on_connect(struct probe *p, struct probe_conv *c)
{
	(void)p;
	c->state = SMTP_GREETING;
}

static void
smtp_on_line(struct probe *p, struct probe_conv *c, const char *line)
{
	char ex[PROBE_EXCERPT + 1];
	const char *text;
	bool more;
	int code;

	if (probe_smtp_reply(line, &code, &more, &text) == -1) {
		if (c->state == SMTP_QUIT)
			probe_end(p);
		else if (c->state == SMTP_GREETING)
			probe_fail(p, "bad greeting: %s",
				   probe_excerpt(line, ex, sizeof(ex)));
		else
			probe_fail(p, "bad reply: %s",
				   probe_excerpt(line, ex, sizeof(ex)));
		return;
	}
	if (c->state == SMTP_EHLO && probe_smtp_offers_starttls(line))
		c->offered = true;
	if (more)
		return;
	switch ((enum smtp_state)c->state) {
	case SMTP_GREETING:
		if (code == 220)
			smtp_send_ehlo(p, c);
		else
			probe_fail(p, "bad greeting: %s",
				   probe_excerpt(line, ex, sizeof(ex)));
		break;
	case SMTP_EHLO:
		if (code == 250)
			smtp_ehlo_done(p, c);
		else
			probe_fail(p, "EHLO refused: %s",
				   probe_excerpt(line, ex, sizeof(ex)));
		break;
	case SMTP_STARTTLS:
		if (code == 220)
			probe_starttls(p);
		else
			probe_fail(p, "STARTTLS refused: %s",
				   probe_excerpt(line, ex, sizeof(ex)));
		break;
	case SMTP_QUIT:
		probe_end(p);
		break;
	}
}

static void
smtp_on_upgrade(struct probe *p, struct probe_conv *c)
{
	smtp_send_ehlo(p, c); /* RFC 3207: forget what was said before */
}

static void
smtp_on_quit(struct probe *p, struct probe_conv *c)
{
	c->state = SMTP_QUIT;
	probe_send(p, "QUIT");
}

const struct probe_proto probe_proto_smtp = {
    .name = "smtp",
    .on_connect = smtp_on_connect,
    .on_line = smtp_on_line,
    .on_upgrade = smtp_on_upgrade,
    .on_quit = smtp_on_quit,
};
