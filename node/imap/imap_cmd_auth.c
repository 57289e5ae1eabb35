/* Getting in: STARTTLS (RFC 3501 6.2.1), LOGIN, AUTHENTICATE PLAIN
 * (RFC 4616, with or without an initial response). Credentials only
 * inside TLS unless the config allows plain text. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../../common/sasl.h"
#include "imap.h"

static bool
imap_need_tls(struct imap_session *s, struct imap_cmd *c)
{
	if (imap_auth_allowed(s))
		return false;
	imap_no(s, c, "[PRIVACYREQUIRED] Use STARTTLS first");
	return true;
}

void
imap_cmd_starttls(struct imap_session *s, struct imap_cmd *c)
{
	if (!imap_at_end(&c->cur)) {
		imap_bad(s, c, "STARTTLS takes no arguments");
		return;
	}
	if (stream_is_tls(s->st)) {
		imap_bad(s, c, "TLS is already on");
		return;
	}
	if (s->mn->tls == NULL) {
		imap_no(s, c, "TLS is not available");
		return;
	}
	imap_ok(s, c, "Begin TLS negotiation now");
	stream_starttls(s->st, s->mn->tls);
}

void
imap_cmd_login(struct imap_session *s, struct imap_cmd *c)
{
	char user[DIR_ADDR_MAX], pass[512];
	if (imap_astring(&c->cur, user, sizeof(user), NULL) < 0 ||
	    imap_sp(&c->cur) < 0 ||
	    imap_astring(&c->cur, pass, sizeof(pass), NULL) < 0 ||
	    imap_end(&c->cur) < 0) {
		imap_bad(s, c, "LOGIN needs a user name and a password");
		goto out;
	}
	if (imap_need_tls(s, c))
		goto out;
	imap_login(s, c, user, pass);
out:
	explicit_bzero(pass, sizeof(pass));
}

static void
imap_sasl_plain(struct imap_session *s, struct imap_cmd *c, const char *b64)
{
	unsigned char msg[1024];
	char user[DIR_ADDR_MAX], pass[512];
	long n = base64_decode(b64, strlen(b64), msg, sizeof(msg));
	if (n < 0 || sasl_plain_parse(msg, (size_t)n, user, sizeof(user), pass,
				      sizeof(pass)) < 0)
		imap_bad(s, c, "Invalid PLAIN response");
	else
		imap_login(s, c, user, pass);
	explicit_bzero(msg, sizeof(msg));
	explicit_bzero(pass, sizeof(pass));
}

void
imap_cmd_authenticate(struct imap_session *s, struct imap_cmd *c)
{
	char mech[32], initial[1400];
	if (imap_atom(&c->cur, mech, sizeof(mech)) < 0) {
		imap_bad(s, c, "AUTHENTICATE needs a mechanism");
		return;
	}
	initial[0] = '\0';
	if (!imap_at_end(&c->cur) &&
	    (imap_sp(&c->cur) < 0 ||
	     imap_atom(&c->cur, initial, sizeof(initial)) < 0 ||
	     imap_end(&c->cur) < 0)) {
		imap_bad(s, c, "Invalid initial response");
		return;
	}
	if (strcasecmp(mech, "PLAIN") != 0) {
		imap_no(s, c, "Unsupported authentication mechanism");
		return;
	}
	if (imap_need_tls(s, c))
		return;
	if (initial[0] == '\0') {
		s->wait = IMAP_W_SASL;
		imap_write(s, "+ \r\n", 4);
		return;
	}
	if (strcmp(initial, "=") == 0)
		initial[0] = '\0';
	imap_sasl_plain(s, c, initial);
	explicit_bzero(initial, sizeof(initial));
}

void
imap_sasl_response(struct imap_session *s, char *line)
{
	struct imap_cmd c = {.tag = s->tag, .name = "AUTHENTICATE"};
	s->wait = IMAP_W_COMMAND;
	if (strcmp(line, "*") == 0) {
		imap_bad(s, &c, "Authentication cancelled");
		return;
	}
	imap_sasl_plain(s, &c, line);
}
