/* What a probed server answers (health/probe_reply.c and the protocol
 * state machines probe_smtp.c, probe_imap.c, probe_pop3.c,
 * probe_http.c). The engine's sockets, TLS and timer stay out: this file
 * stands in for the few engine calls the state machines make (send,
 * verdict, STARTTLS, end) and feeds them the input, split into lines by
 * the engine's own splitter, for each protocol and TLS mode in turn. */
#include "fuzz.h"

#include <stdarg.h>
#include <stdio.h>

#include "../../health/probe_proto.h"

struct probe {
	struct probe_spec spec;
	enum probe_tls tls;
	bool decided, ended, upgrade;
	int sent;
};

const struct probe_spec *
probe_spec(const struct probe *p)
{
	return &p->spec;
}

enum probe_tls
probe_tls_mode(const struct probe *p)
{
	return p->tls;
}

void
probe_send(struct probe *p, const char *fmt, ...)
{
	char buf[PROBE_OUT_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	p->sent++;
}

void
probe_pass(struct probe *p)
{
	p->decided = true;
}

void
probe_fail(struct probe *p, const char *fmt, ...)
{
	char buf[96];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	p->decided = true;
}

void
probe_starttls(struct probe *p)
{
	p->upgrade = true;
}

void
probe_end(struct probe *p)
{
	p->ended = true;
}

const char *
probe_local_literal(const struct probe *p, char *buf, size_t len)
{
	(void)p;
	snprintf(buf, len, "[127.0.0.1]");
	return buf;
}

const char *
probe_peer(const struct probe *p, char *buf, size_t len)
{
	(void)p;
	snprintf(buf, len, "127.0.0.1:25");
	return buf;
}

static void
run(const struct probe_proto *proto, enum probe_tls tls, bool user,
    const uint8_t *data, size_t size)
{
	struct probe p = {.tls = tls};
	struct probe_conv c = {0};
	char buf[PROBE_LINE_MAX], ex[PROBE_EXCERPT + 1];
	size_t len = 0, off;
	char *line;

	if (user) {
		snprintf(p.spec.user, sizeof(p.spec.user), "check@x");
		snprintf(p.spec.password, sizeof(p.spec.password), "pw");
	}
	proto->on_connect(&p, &c);
	/* As the engine reads: a buffer of PROBE_LINE_MAX, lines handed
	 * over until the verdict, the end or a STARTTLS. */
	while (size > 0 && !p.ended) {
		size_t n = sizeof(buf) - len < size ? sizeof(buf) - len : size;
		memcpy(buf + len, data, n);
		data += n;
		size -= n;
		len += n;
		off = 0;
		while (!p.ended &&
		       (line = probe_line_next(buf, len, &off)) != NULL) {
			(void)probe_excerpt(line, ex, sizeof(ex));
			proto->on_line(&p, &c, line);
			if (p.upgrade && proto->on_upgrade) {
				p.upgrade = false;
				c.upgraded = true;
				proto->on_upgrade(&p, &c);
			}
			if (p.decided && proto->on_quit) {
				p.decided = false;
				proto->on_quit(&p, &c);
			}
		}
		memmove(buf, buf + off, len - off);
		len -= off;
		if (len == sizeof(buf))
			len = 0; /* "line too long" */
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct probe_proto *protos[] = {
	    &probe_proto_smtp, &probe_proto_imap, &probe_proto_pop3,
	    &probe_proto_http};
	for (size_t i = 0; i < 4; i++)
		for (int tls = PROBE_TLS_NONE; tls <= PROBE_TLS_STARTTLS; tls++)
			run(protos[i], tls, tls == PROBE_TLS_STARTTLS, data,
			    size);
	return 0;
}
