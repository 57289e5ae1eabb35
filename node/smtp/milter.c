/* The milter client on the loop: one milter at a time, a step at a time.
 *
 *   connect -> OPTNEG -> CONNECT -> HELO -> MAIL -> RCPT... -> DATA ->
 *   HEADER... -> EOH -> BODY... -> EOB (edits, then the verdict) -> QUIT
 *
 * Steps the milter declined at OPTNEG are left out; steps it asked not to
 * answer are sent without waiting. Output is produced while no answer is
 * due and less than MILTER_OUT_LOW bytes wait to go out, so a long body
 * is never held in memory whole. */
#include "milter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/strbuf.h"
#include "milter_proto.h"

#define MILTER_OUT_LOW 65536
#define MILTER_OUT_MAX (4 * 1024 * 1024)
#define MILTER_VALUE_MAX 65536 /* a header's value as sent */

enum milter_step {
	MS_CONNECTING, /* the socket's connect is in flight */
	MS_OPTNEG,
	MS_CONNECT,
	MS_HELO,
	MS_MAIL,
	MS_RCPT,
	MS_DATA,
	MS_HEADER,
	MS_EOH,
	MS_BODY,
	MS_EOB,
	MS_END, /* EOB sent: edits, then the verdict */
};

struct milter_run {
	struct ev_loop *loop;
	const struct node_config *cfg;
	struct milter_message *m;
	milter_done_fn done;
	void *arg;

	int idx; /* the milter talked to: cfg->milters[idx] */
	int fd;
	ev_io rio, wio;
	ev_timer timer;
	struct strbuf out;
	char *in;
	size_t inlen;

	enum milter_step step;
	size_t sub;	   /* the recipient, the field, the body offset */
	bool waiting;	   /* an answer is due */
	uint32_t steps;	   /* what the milter chose at OPTNEG */
	char *value;	   /* MILTER_VALUE_MAX: a field's value as sent */
	unsigned gen;	   /* bumped at each disconnect: input of an old
			      connection is not read on */
	bool over;	   /* the result waits for the timer to hand it over */
	bool replacing;	   /* this milter sent SMFIR_REPLBODY */
	bool body_cr;	   /* the replacement's last byte was a CR */
	int connect_errno; /* the connect that failed at once */
	struct milter_result res;
};

static void milter_next(struct milter_run *r);
static void milter_pump(struct milter_run *r);

static const struct node_milter *
milter_cur(const struct milter_run *r)
{
	return &r->cfg->milters[r->idx];
}

static void
milter_disconnect(struct milter_run *r)
{
	if (r->fd >= 0) {
		ev_io_stop(r->loop, &r->rio);
		ev_io_stop(r->loop, &r->wio);
		close(r->fd);
		r->fd = -1;
	}
	ev_timer_stop(r->loop, &r->timer);
	strbuf_reset(&r->out);
	r->inlen = 0;
	r->gen++;
}

static void
milter_free(struct milter_run *r)
{
	milter_disconnect(r);
	strbuf_free(&r->out);
	free(r->in);
	free(r->value);
	free(r);
}

void
milter_run_cancel(struct milter_run *r)
{
	if (r)
		milter_free(r);
}

/* The run is over: the result goes to the caller from the timer, so that
 * no callback of ours runs on with r freed under it. */
static void
milter_finish(struct milter_run *r)
{
	milter_disconnect(r);
	r->over = true;
	r->step = MS_END;
	ev_timer_set(&r->timer, 0, 0);
	ev_timer_start(r->loop, &r->timer);
}

/* Says QUIT (best effort: five bytes to a socket just answered) and
 * closes. */
static void
milter_quit(struct milter_run *r)
{
	char quit[5] = {0, 0, 0, 1, MILTER_C_QUIT};
	if (r->fd >= 0 && send(r->fd, quit, sizeof(quit), MSG_NOSIGNAL) < 0)
		log_debug("milter %s: quit: %s", milter_cur(r)->str,
			  strerror(errno));
	milter_disconnect(r);
}

/* This milter is done with (it accepted): the next one, or the end. */
static void
milter_done_with(struct milter_run *r)
{
	milter_quit(r);
	if (++r->idx < r->cfg->nmilters)
		milter_next(r);
	else
		milter_finish(r);
}

/* A verdict that ends the run (reject, tempfail, discard). */
static void
milter_verdict(struct milter_run *r, enum milter_verdict v, const char *reply)
{
	r->res.verdict = v;
	snprintf(r->res.reply, sizeof(r->res.reply), "%s", reply);
	snprintf(r->res.by, sizeof(r->res.by), "%s", milter_cur(r)->str);
	milter_quit(r);
	milter_finish(r);
}

/* The milter failed: milter_default_action. */
static void
milter_fail(struct milter_run *r, const char *what)
{
	/* a body replaced halfway is neither the old one nor the new */
	bool tempfail =
	    r->cfg->milter_default_action == MILTER_DEFAULT_TEMPFAIL ||
	    r->replacing;
	log_warn("milter %s: %s, message %s (%s)", milter_cur(r)->str, what,
		 r->m->queue_id,
		 r->replacing ? "its body replaced halfway: tempfail"
		 : tempfail   ? "default action: tempfail"
			      : "default action: accept");
	r->res.unavailable++;
	snprintf(r->res.reason, sizeof(r->res.reason), "%s: %s",
		 milter_cur(r)->str, what);
	milter_disconnect(r);
	if (tempfail) {
		r->res.verdict = MILTER_V_TEMPFAIL;
		snprintf(r->res.by, sizeof(r->res.by), "%s",
			 milter_cur(r)->str);
		milter_finish(r);
		return;
	}
	if (++r->idx < r->cfg->nmilters)
		milter_next(r);
	else
		milter_finish(r);
}

static void
milter_arm(struct milter_run *r)
{
	ev_timer_stop(r->loop, &r->timer);
	ev_timer_set(&r->timer, r->cfg->milter_timeout_s, 0);
	ev_timer_start(r->loop, &r->timer);
}

static void
milter_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct milter_run *r = w->data;
	if (r->over) {
		struct milter_result res = r->res;
		milter_done_fn done = r->done;
		void *arg = r->arg;
		milter_free(r);
		done(arg, &res);
		return;
	}
	milter_fail(r, r->fd < 0 ? strerror(r->connect_errno) : "timeout");
}

/* ---- output ---- */

/* Sends what waits. Returns 0, or -1 when the milter failed (r moved on
 * to the next one or to the end). */
static int
milter_send(struct milter_run *r)
{
	while (r->out.len > 0) {
		ssize_t n = send(r->fd, r->out.buf, r->out.len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			milter_fail(r, strerror(errno));
			return -1;
		}
		strbuf_consume(&r->out, (size_t)n);
		milter_arm(r);
	}
	if (r->out.len > 0)
		ev_io_start(r->loop, &r->wio);
	else
		ev_io_stop(r->loop, &r->wio);
	return 0;
}

static void
milter_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct milter_run *r = w->data;
	if (r->step == MS_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err != 0) {
			milter_fail(r, strerror(err));
			return;
		}
		ev_io_start(r->loop, &r->rio);
		r->step = MS_OPTNEG;
		if (milter_put_optneg(&r->out) < 0) {
			milter_fail(r, "out of memory");
			return;
		}
		r->waiting = true;
		milter_arm(r);
	}
	if (milter_send(r) == 0)
		milter_pump(r);
}

/* ---- the steps ---- */

static bool
milter_has(const struct milter_run *r, uint32_t flag)
{
	return (r->steps & flag) != 0;
}

static int
milter_put_step_macros(struct milter_run *r, char step)
{
	const struct milter_message *m = r->m;
	char client[ADDR_STRLEN + 32], port[8];
	switch (step) {
	case MILTER_C_CONNECT: {
		snprintf(client, sizeof(client), "%s [%s]", m->client_name,
			 m->client_addr);
		snprintf(port, sizeof(port), "%u", m->client_port);
		const char *n[] = {"j",
				   "{daemon_name}",
				   "v",
				   "_",
				   "{client_addr}",
				   "{client_name}",
				   "{client_port}"};
		const char *v[] = {m->hostname, m->daemon,	"mailnode",
				   client,	m->client_addr, m->client_name,
				   port};
		return milter_put_macros(&r->out, step, n, v, 7);
	}
	case MILTER_C_HELO: {
		const char *n[] = {"{tls_version}"};
		const char *v[] = {m->tls};
		return milter_put_macros(&r->out, step, n, v, 1);
	}
	case MILTER_C_MAIL: {
		const char *n[] = {"i", "{auth_authen}", "{mail_addr}"};
		const char *v[] = {m->queue_id, m->auth_user, m->sender};
		return milter_put_macros(&r->out, step, n, v, 3);
	}
	case MILTER_C_RCPT: {
		const char *n[] = {"{rcpt_addr}"};
		const char *v[] = {m->rcpts[r->sub]};
		return milter_put_macros(&r->out, step, n, v, 1);
	}
	default: {
		const char *n[] = {"i"};
		const char *v[] = {m->queue_id};
		return milter_put_macros(&r->out, step, n, v, 1);
	}
	}
}

/* "<addr>" into buf. */
static const char *
milter_path(char *buf, size_t len, const char *addr)
{
	snprintf(buf, len, "<%s>", addr);
	return buf;
}

/* Where the body is read from: a replacement of an earlier milter's, or
 * the message's own after its header section; and where it ends. */
static int
milter_body_src(const struct milter_message *m, size_t *start, size_t *end)
{
	*start = m->body_fd >= 0 ? 0 : m->headers->body;
	*end = m->body_fd >= 0 ? m->body_len : m->size;
	return m->body_fd >= 0 ? m->body_fd : m->fd;
}

/* Sends one BODY chunk. Returns 0 or -1. */
static int
milter_put_body(struct milter_run *r)
{
	char chunk[MILTER_CHUNK_MAX];
	size_t start, end;
	int fd = milter_body_src(r->m, &start, &end);
	size_t left = end - r->sub;
	size_t want = left < sizeof(chunk) ? left : sizeof(chunk);
	ssize_t n = pread(fd, chunk, want, (off_t)r->sub);
	if (n <= 0)
		return -1;
	r->sub += (size_t)n;
	return milter_put(&r->out, MILTER_C_BODY, chunk, (size_t)n);
}

/* Produces the packets of the current step. Returns 1 when an answer is
 * due after them, 0 when not (or the step was left out), -1 on failure. */
static int
milter_emit(struct milter_run *r)
{
	const struct milter_message *m = r->m;
	char buf[512 + 2]; /* "<" an address ">" */
	int rc;
	switch (r->step) {
	case MS_CONNECT:
		if (milter_has(r, MILTER_P_NOCONNECT))
			return 0;
		rc = milter_put_step_macros(r, MILTER_C_CONNECT) |
		     milter_put_connect(&r->out, m->client_name, m->family,
					m->client_port, m->client_addr);
		return rc < 0 ? -1 : !milter_has(r, MILTER_P_NR_CONN);
	case MS_HELO:
		if (milter_has(r, MILTER_P_NOHELO) || m->helo[0] == '\0')
			return 0;
		rc = milter_put_step_macros(r, MILTER_C_HELO) |
		     milter_put_strings(&r->out, MILTER_C_HELO, &m->helo, 1);
		return rc < 0 ? -1 : !milter_has(r, MILTER_P_NR_HELO);
	case MS_MAIL: {
		if (milter_has(r, MILTER_P_NOMAIL))
			return 0;
		const char *s = milter_path(buf, sizeof(buf), m->sender);
		rc = milter_put_step_macros(r, MILTER_C_MAIL) |
		     milter_put_strings(&r->out, MILTER_C_MAIL, &s, 1);
		return rc < 0 ? -1 : !milter_has(r, MILTER_P_NR_MAIL);
	}
	case MS_RCPT: {
		if (milter_has(r, MILTER_P_NORCPT))
			return 0;
		const char *s = milter_path(buf, sizeof(buf), m->rcpts[r->sub]);
		rc = milter_put_step_macros(r, MILTER_C_RCPT) |
		     milter_put_strings(&r->out, MILTER_C_RCPT, &s, 1);
		return rc < 0 ? -1 : !milter_has(r, MILTER_P_NR_RCPT);
	}
	case MS_DATA:
		if (milter_has(r, MILTER_P_NODATA))
			return 0;
		rc = milter_put_step_macros(r, MILTER_C_DATA) |
		     milter_put(&r->out, MILTER_C_DATA, NULL, 0);
		return rc < 0 ? -1 : !milter_has(r, MILTER_P_NR_DATA);
	case MS_HEADER: {
		if (milter_has(r, MILTER_P_NOHDRS))
			return 0;
		const struct milter_field *f = &m->headers->f[r->sub];
		milter_field_value(f, milter_has(r, MILTER_P_HDR_LEADSPC),
				   r->value, MILTER_VALUE_MAX);
		if (milter_put_header(&r->out, f->text, f->namelen, r->value) <
		    0)
			return -1;
		return !milter_has(r, MILTER_P_NR_HDR);
	}
	case MS_EOH:
		if (milter_has(r, MILTER_P_NOEOH))
			return 0;
		rc = milter_put_step_macros(r, MILTER_C_EOH) |
		     milter_put(&r->out, MILTER_C_EOH, NULL, 0);
		return rc < 0 ? -1 : !milter_has(r, MILTER_P_NR_EOH);
	case MS_BODY:
		if (milter_put_body(r) < 0)
			return -1;
		return !milter_has(r, MILTER_P_NR_BODY);
	case MS_EOB:
		rc = milter_put_step_macros(r, MILTER_C_EOB) |
		     milter_put(&r->out, MILTER_C_EOB, NULL, 0);
		return rc < 0 ? -1 : 1;
	default:
		return 0;
	}
}

/* Moves to the next step (or the next of a repeated one). */
static void
milter_advance(struct milter_run *r)
{
	const struct milter_message *m = r->m;
	switch (r->step) {
	case MS_RCPT:
		if (++r->sub < m->nrcpts)
			return;
		break;
	case MS_HEADER:
		if (++r->sub < m->headers->n)
			return;
		break;
	case MS_BODY: {
		size_t start, end;
		milter_body_src(m, &start, &end);
		if (r->sub < end)
			return;
		break;
	}
	default:
		break;
	}
	r->step++;
	r->sub = 0;
	if (r->step == MS_RCPT && m->nrcpts == 0)
		r->step++;
	if (r->step == MS_HEADER && m->headers->n == 0)
		r->step++;
	if (r->step == MS_BODY) {
		size_t end;
		milter_body_src(m, &r->sub, &end);
		if (milter_has(r, MILTER_P_NOBODY) || r->sub >= end)
			r->step++;
	}
}

/* Produces output while no answer is due and little waits to go out,
 * and sends it. */
static void
milter_pump(struct milter_run *r)
{
	for (;;) {
		bool produced = false;
		while (!r->waiting && r->step >= MS_CONNECT &&
		       r->step < MS_END && r->out.len < MILTER_OUT_LOW) {
			int rc = milter_emit(r);
			if (rc < 0) {
				milter_fail(r, "message read or output failed");
				return;
			}
			r->waiting = rc == 1;
			produced = true;
			milter_advance(r);
		}
		if (!produced)
			return;
		milter_arm(r);
		if (milter_send(r) < 0 || r->out.len > 0)
			return;
	}
}

/* ---- input ---- */

/* SMFIR_REPLBODY: the chunk joins the new body (the first of this
 * milter's starts it afresh), bare LFs made CRLF. Returns 0 or -1. */
static int
milter_replace_body(struct milter_run *r, const struct milter_packet *p)
{
	struct milter_message *m = r->m;
	char out[2 * MILTER_CHUNK_MAX];
	if (!r->replacing) {
		if (m->body_fd < 0)
			m->body_fd = m->body_file(m->body_arg);
		else if (ftruncate(m->body_fd, 0) < 0)
			return -1;
		if (m->body_fd < 0)
			return -1;
		m->body_len = 0;
		r->replacing = true;
		r->body_cr = false;
	}
	for (size_t done = 0; done < p->len;) {
		size_t o = 0;
		for (; done < p->len && o + 2 <= sizeof(out); done++) {
			char c = p->data[done];
			if (c == '\n' && !r->body_cr)
				out[o++] = '\r';
			out[o++] = c;
			r->body_cr = c == '\r';
		}
		if (m->body_len + o > m->body_max ||
		    pwrite(m->body_fd, out, o, (off_t)m->body_len) !=
			(ssize_t)o)
			return -1;
		m->body_len += o;
	}
	return 0;
}

/* Applies one edit at end of message. Returns 0 or -1. */
static int
milter_edit(struct milter_run *r, const struct milter_packet *p)
{
	uint32_t index;
	const char *name, *value, *reason;
	struct milter_headers *h = r->m->headers;
	switch (p->cmd) {
	case MILTER_R_ADDHEADER:
	case MILTER_R_INSHEADER:
	case MILTER_R_CHGHEADER:
		if (milter_header_parse(p, &index, &name, &value) < 0)
			return -1;
		if (p->cmd == MILTER_R_ADDHEADER)
			return milter_headers_add(h, name, value);
		if (p->cmd == MILTER_R_INSHEADER)
			return milter_headers_insert(h, index, name, value);
		return milter_headers_change(h, index, name, value);
	case MILTER_R_QUARANTINE:
		if (milter_string_parse(p, &reason) < 0)
			return -1;
		r->res.quarantined = true;
		snprintf(r->res.reason, sizeof(r->res.reason), "%s", reason);
		return 0;
	case MILTER_R_REPLBODY:
		return milter_replace_body(r, p);
	default: /* actions we did not offer: told, not taken */
		log_warn("milter %s: action '%c' not offered, ignored",
			 milter_cur(r)->str, p->cmd);
		return 0;
	}
}

/* One packet from the milter. */
static void
milter_packet(struct milter_run *r, const struct milter_packet *p)
{
	const char *text;
	if (!r->waiting) {
		milter_fail(r, "answer nobody asked for");
		return;
	}
	if (r->step == MS_OPTNEG) {
		uint32_t version, actions;
		if (milter_optneg_parse(p, &version, &actions, &r->steps) < 0 ||
		    version < 2) {
			milter_fail(r, "bad option negotiation");
			return;
		}
		if (version < 6) /* no NR_* steps before version 6 */
			r->steps &= 0xff & ~MILTER_P_NR_HDR;
		r->waiting = false;
		r->step = MS_CONNECT;
		milter_pump(r);
		return;
	}
	switch (p->cmd) {
	case MILTER_R_PROGRESS:
		milter_arm(r);
		return;
	case MILTER_R_CONTINUE:
		r->waiting = false;
		if (r->step == MS_END)
			milter_done_with(r);
		else
			milter_pump(r);
		return;
	case MILTER_R_SKIP: /* after a body chunk: the rest is not wanted */
		if (r->step != MS_BODY && r->step != MS_EOB) {
			milter_fail(r, "skip outside the body");
			return;
		}
		r->waiting = false;
		r->step = MS_EOB;
		milter_pump(r);
		return;
	case MILTER_R_ACCEPT:
		milter_done_with(r);
		return;
	case MILTER_R_REJECT:
		milter_verdict(r, MILTER_V_REJECT, "");
		return;
	case MILTER_R_TEMPFAIL:
		milter_verdict(r, MILTER_V_TEMPFAIL, "");
		return;
	case MILTER_R_DISCARD:
		milter_verdict(r, MILTER_V_DISCARD, "");
		return;
	case MILTER_R_REPLYCODE:
		if (milter_reply_parse(p, &text) < 0) {
			milter_fail(r, "bad reply code");
			return;
		}
		milter_verdict(
		    r, text[0] == '5' ? MILTER_V_REJECT : MILTER_V_TEMPFAIL,
		    text);
		return;
	default:
		if (r->step != MS_END) {
			milter_fail(r, "edit before the end of the message");
			return;
		}
		if (milter_edit(r, p) < 0)
			milter_fail(r, "bad edit");
		else
			milter_arm(r);
		return;
	}
}

static void
milter_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct milter_run *r = w->data;
	size_t cap = MILTER_PACKET_MAX + 5;
	ssize_t n = read(r->fd, r->in + r->inlen, cap - r->inlen);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		milter_fail(r,
			    n == 0 ? "closed the connection" : strerror(errno));
		return;
	}
	r->inlen += (size_t)n;
	unsigned gen = r->gen;
	size_t off = 0;
	while (r->gen == gen) { /* a packet may end this connection */
		struct milter_packet p;
		long used = milter_packet_read(r->in + off, r->inlen - off, &p);
		if (used < 0) {
			milter_fail(r, "bad packet length");
			return;
		}
		if (used == 0)
			break;
		off += (size_t)used;
		milter_packet(r, &p);
	}
	if (r->gen == gen) {
		memmove(r->in, r->in + off, r->inlen - off);
		r->inlen -= off;
	}
}

/* Connects to cfg->milters[idx]; the rest follows from the loop. */
static void
milter_next(struct milter_run *r)
{
	const struct node_milter *nm = milter_cur(r);
	r->step = MS_CONNECTING;
	r->sub = 0;
	r->waiting = false;
	r->replacing = false;
	r->steps = 0;
	r->fd = socket(nm->addr.ss.ss_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->fd < 0)
		r->connect_errno = errno;
	else if (connect(r->fd, (const struct sockaddr *)&nm->addr.ss,
			 nm->addr.len) < 0 &&
		 errno != EINPROGRESS) {
		r->connect_errno = errno;
		close(r->fd);
		r->fd = -1;
	}
	ev_io_init(&r->rio, milter_on_read, r->fd < 0 ? 0 : r->fd, EV_READ);
	ev_io_init(&r->wio, milter_on_write, r->fd < 0 ? 0 : r->fd, EV_WRITE);
	r->rio.data = r->wio.data = r;
	/* A socket that failed at once fails from the loop (no callback
	 * from inside milter_run_start) */
	ev_timer_set(&r->timer, r->fd < 0 ? 0 : r->cfg->milter_timeout_s, 0);
	ev_timer_start(r->loop, &r->timer);
	if (r->fd >= 0)
		ev_io_start(r->loop, &r->wio);
}

struct milter_run *
milter_run_start(struct ev_loop *loop, const struct node_config *cfg,
		 struct milter_message *m, milter_done_fn done, void *arg)
{
	struct milter_run *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->in = malloc(MILTER_PACKET_MAX + 5);
	r->value = malloc(MILTER_VALUE_MAX);
	if (r->in == NULL || r->value == NULL) {
		free(r->in);
		free(r->value);
		free(r);
		return NULL;
	}
	r->loop = loop;
	r->cfg = cfg;
	r->m = m;
	r->done = done;
	r->arg = arg;
	r->fd = -1;
	strbuf_init(&r->out, MILTER_OUT_MAX);
	ev_timer_init(&r->timer, milter_on_timer, 0, 0);
	r->timer.data = r;
	milter_next(r);
	return r;
}
