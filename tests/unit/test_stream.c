/* common/stream over a real loopback TCP connection: lines and their
 * terminators, overlong lines, pause/resume, raw bytes, answers flushed
 * after the peer half-closes, the PROXY header from trusted peers only,
 * the per-turn budget, the idle timer against trickling, deadlines, and
 * the connection caps. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "../../common/stream.h"

struct rec {
	struct stream *s;
	char lines[64][256];
	bool crlf[64], toolong[64];
	int nlines;
	char bytes[4096];
	size_t nbytes;
	bool ready, closed;
	char why[64];
	bool pause_after_first;
	bool echo;	 /* answer every line with "> LINE" */
	int slices;	 /* on_drain: slices of SLICE bytes still to write */
	int drains;	 /* on_drain calls */
	bool count_only; /* on_line only counts, in count */
	int count;
	bool refused;	     /* on_refused was called */
	int pieces;	     /* on_piece calls */
	size_t piecelen[64]; /* the whole length of line i, from pieces */
};

#define SLICE (256 * 1024)

static void
rec_ready(void *arg)
{
	((struct rec *)arg)->ready = true;
}

static void
rec_line(void *arg, char *line, size_t len, bool crlf, bool toolong)
{
	struct rec *r = arg;
	if (r->count_only) {
		r->count++;
		return;
	}
	cr_assert_lt(r->nlines, 64);
	snprintf(r->lines[r->nlines], sizeof(r->lines[0]), "%.*s", (int)len,
		 line);
	r->crlf[r->nlines] = crlf;
	r->toolong[r->nlines] = toolong;
	r->nlines++;
	if (r->echo)
		stream_printf(r->s, "> %.*s\r\n", (int)len, line);
	if (r->pause_after_first && r->nlines == 1)
		stream_pause(r->s);
}

static void
rec_bytes(void *arg, char *data, size_t len, size_t left)
{
	struct rec *r = arg;
	(void)left;
	memcpy(r->bytes + r->nbytes, data, len);
	r->nbytes += len;
}

static void
rec_close(void *arg, const char *why)
{
	struct rec *r = arg;
	r->closed = true;
	snprintf(r->why, sizeof(r->why), "%s", why);
}

/* Writes one more slice of a long answer, and asks for the next drain. */
static void
rec_drain(void *arg)
{
	static char slice[SLICE];
	struct rec *r = arg;
	r->drains++;
	if (r->slices-- <= 0)
		return;
	memset(slice, 'a' + r->slices % 26, sizeof(slice));
	stream_write(r->s, slice, sizeof(slice));
	stream_wait_drain(r->s);
}

static void
rec_refused(void *arg)
{
	struct rec *r = arg;
	r->refused = true;
	stream_printf(r->s, "busy\r\n");
}

/* An overlong line's pieces gather in bytes; its end records it as a
 * line (its first 255 bytes) with toolong set. */
static void
rec_piece(void *arg, char *data, size_t len, bool end, bool crlf)
{
	struct rec *r = arg;
	cr_assert_lt(r->nbytes + len, sizeof(r->bytes));
	cr_assert_lt(r->nlines, 64);
	memcpy(r->bytes + r->nbytes, data, len);
	r->nbytes += len;
	r->pieces++;
	if (!end)
		return;
	snprintf(r->lines[r->nlines], sizeof(r->lines[0]), "%.*s",
		 (int)r->nbytes, r->bytes);
	r->piecelen[r->nlines] = r->nbytes;
	r->crlf[r->nlines] = crlf;
	r->toolong[r->nlines] = true;
	r->nlines++;
	r->nbytes = 0;
}

static const struct stream_ops rec_piece_ops = {
    .on_ready = rec_ready,
    .on_line = rec_line,
    .on_piece = rec_piece,
    .on_close = rec_close,
};

static const struct stream_ops rec_ops = {
    .on_refused = rec_refused,
    .on_drain = rec_drain,
    .on_ready = rec_ready,
    .on_line = rec_line,
    .on_close = rec_close,
    .on_bytes = rec_bytes,
};

static struct ev_loop *loop;
static int client_fd;

/* A connected pair on loopback: returns the server side's stream. */
static struct stream *
pair_ops(struct rec *r, const struct stream_opts *o,
	 const struct stream_ops *ops)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	cr_assert(listen(lfd, 1) == 0);
	cr_assert(getsockname(lfd, (struct sockaddr *)&sin, &len) == 0);
	client_fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(connect(client_fd, (struct sockaddr *)&sin, len) == 0);
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK);
	cr_assert(fd >= 0);
	close(lfd);
	loop = ev_loop_new(EVFLAG_AUTO);
	r->s = stream_new(loop, fd, (struct sockaddr *)&peer, plen, o, ops, r);
	cr_assert_not_null(r->s);
	return r->s;
}

static struct stream *
pair(struct rec *r, const struct stream_opts *o)
{
	return pair_ops(r, o, &rec_ops);
}

static void
spin(struct rec *r, int (*done)(struct rec *))
{
	for (int i = 0; i < 400 && !done(r); i++) {
		ev_run(loop, EVRUN_NOWAIT);
		usleep(2000);
	}
}

static int
is_closed(struct rec *r)
{
	return r->closed;
}

static int
has_three(struct rec *r)
{
	return r->nlines >= 3;
}

static void
say(const char *s)
{
	cr_assert(write(client_fd, s, strlen(s)) == (ssize_t)strlen(s));
}

static const struct stream_opts opts = {
    .max_line = 16, .max_output = 1 << 20, .idle_timeout = 5};

Test(stream, lines_and_terminators)
{
	struct rec r = {0};
	pair(&r, &opts);
	say("one\r\ntwo\nthree\r\n");
	spin(&r, has_three);
	cr_assert(r.ready);
	cr_assert_eq(r.nlines, 3);
	cr_expect_str_eq(r.lines[0], "one");
	cr_expect(r.crlf[0]);
	cr_expect_str_eq(r.lines[1], "two");
	cr_expect_not(r.crlf[1]); /* a bare LF is told apart */
	cr_expect_str_eq(r.lines[2], "three");
	close(client_fd);
	spin(&r, is_closed);
	cr_expect(r.closed);
	ev_loop_destroy(loop);
}

Test(stream, overlong_line_is_cut_and_the_next_survives)
{
	struct rec r = {0};
	pair(&r, &opts);
	say("0123456789abcdefXYZXYZXYZXYZXYZXYZ\r\nok\r\n");
	spin(&r, has_three);
	cr_assert_eq(r.nlines, 2);
	cr_expect(r.toolong[0]);
	cr_expect_str_eq(r.lines[0], "0123456789abcdef");
	cr_expect_str_eq(r.lines[1], "ok");
	cr_expect_not(r.toolong[1]);
	close(client_fd);
	spin(&r, is_closed);
	ev_loop_destroy(loop);
}

/* A few loop turns, for what must not have happened. */
static void
turns(void)
{
	for (int i = 0; i < 20; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		usleep(1000);
	}
}

/* An overlong line arriving in pieces is told once, at its end, with its
 * real terminator (its CR in one read, its LF in the next), so that the
 * next line is seen as the next line: an SMTP "." after it ends DATA. */
Test(stream, overlong_line_is_told_at_its_end_with_its_terminator)
{
	struct rec r = {0};
	pair(&r, &opts);
	say("0123456789abcdefXYZXYZ");
	turns();
	cr_expect_eq(r.nlines, 0, "not before its end");
	say("XYZXYZXYZXYZ\r");
	turns();
	cr_expect_eq(r.nlines, 0, "not before its LF");
	say("\n.\r\nfedcba9876543210fedcba\nok\r\n");
	spin(&r, has_three);
	turns();
	cr_assert_eq(r.nlines, 4);
	cr_expect_str_eq(r.lines[0], "0123456789abcdef");
	cr_expect(r.toolong[0]);
	cr_expect(r.crlf[0], "its CR came in an earlier read");
	cr_expect_str_eq(r.lines[1], ".");
	cr_expect(r.crlf[1]);
	cr_expect_not(r.toolong[1]);
	cr_expect_str_eq(r.lines[2], "fedcba9876543210");
	cr_expect(r.toolong[2]);
	cr_expect_not(r.crlf[2], "a bare LF");
	cr_expect_str_eq(r.lines[3], "ok");
	close(client_fd);
	spin(&r, is_closed);
	ev_loop_destroy(loop);
}

static int
has_piece(struct rec *r)
{
	return r->pieces > 0;
}

/* With on_piece an overlong line comes whole, in pieces as it arrives
 * (a CR at the end of a read held back: it may start the terminator),
 * the last telling the terminator; short lines still go to on_line. */
Test(stream, overlong_line_in_pieces_with_on_piece)
{
	struct rec r = {0};
	pair_ops(&r, &opts, &rec_piece_ops);
	say("0123456789abcdefXYZXYZ");
	spin(&r, has_piece);
	cr_expect_eq(r.pieces, 1, "the first piece once over max_line");
	cr_expect_eq(r.nbytes, 22);
	say("XYZ\r");
	turns();
	cr_expect_eq(r.pieces, 2);
	cr_expect_eq(r.nbytes, 25, "the CR held back");
	say("\nshort\r\nfedcba9876543210fedcba\n");
	spin(&r, has_three);
	cr_assert_eq(r.nlines, 3);
	cr_expect_str_eq(r.lines[0], "0123456789abcdefXYZXYZXYZ");
	cr_expect_eq(r.piecelen[0], 25);
	cr_expect(r.crlf[0]);
	cr_expect_str_eq(r.lines[1], "short");
	cr_expect_not(r.toolong[1]);
	cr_expect_str_eq(r.lines[2], "fedcba9876543210fedcba");
	cr_expect(r.toolong[2]);
	cr_expect_not(r.crlf[2], "a bare LF");
	close(client_fd);
	spin(&r, is_closed);
	ev_loop_destroy(loop);
}

Test(stream, pause_holds_lines_until_resume)
{
	struct rec r = {.pause_after_first = true};
	pair(&r, &opts);
	say("a\r\nb\r\nc\r\n");
	for (int i = 0; i < 50; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		usleep(1000);
	}
	cr_assert_eq(r.nlines, 1);
	stream_resume(r.s);
	spin(&r, has_three);
	cr_assert_eq(r.nlines, 3);
	cr_expect_str_eq(r.lines[2], "c");
	close(client_fd);
	spin(&r, is_closed);
	ev_loop_destroy(loop);
}

Test(stream, answers_survive_a_half_close)
{
	struct rec r = {.echo = true};
	pair(&r, &opts);
	say("x\r\ny\r\n");
	shutdown(client_fd, SHUT_WR);
	spin(&r, is_closed);
	cr_assert(r.closed);
	char buf[64] = "";
	ssize_t n, got = 0;
	while ((n = read(client_fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += n;
	buf[got] = '\0';
	cr_expect_str_eq(buf, "> x\r\n> y\r\n");
	close(client_fd);
	ev_loop_destroy(loop);
}

static int
has_bytes(struct rec *r)
{
	return r->nbytes >= 5 && r->nlines >= 2;
}

Test(stream, raw_bytes_then_lines_again)
{
	struct rec r = {0};
	pair(&r, &opts);
	say("go\r\n");
	for (int i = 0; i < 50 && r.nlines < 1; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		usleep(1000);
	}
	stream_read_bytes(r.s, 5);
	say("ab\ncdafter\r\n");
	spin(&r, has_bytes);
	cr_assert_eq(r.nbytes, 5);
	cr_expect(memcmp(r.bytes, "ab\ncd", 5) == 0);
	cr_expect_str_eq(r.lines[1], "after");
	close(client_fd);
	spin(&r, is_closed);
	ev_loop_destroy(loop);
}

Test(stream, proxy_header_only_from_trusted_peers)
{
	struct netlist nl;
	char why[64];
	cr_assert(netlist_parse("127.0.0.0/8, ::1", &nl, why, sizeof(why)) ==
		  0);
	struct stream_opts o = opts;
	o.proxy_from = &nl;
	struct rec r = {0};
	pair(&r, &o);
	say("PROXY TCP4 192.0.2.9 127.0.0.1 4000 25\r\nhello\r\n");
	for (int i = 0; i < 200 && r.nlines < 1; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		usleep(1000);
	}
	cr_assert_eq(r.nlines, 1);
	cr_expect_str_eq(r.lines[0], "hello");
	cr_expect_str_eq(stream_peer_str(r.s), "192.0.2.9:4000");
	close(client_fd);
	spin(&r, is_closed);
	ev_loop_destroy(loop);

	/* Not trusted: the header is just a line, the peer stays real. */
	cr_assert(netlist_parse("10.0.0.0/8", &nl, why, sizeof(why)) == 0);
	struct rec q = {0};
	pair(&q, &o);
	say("PROXY TCP4 192.0.2.9 127.0.0.1 4000 25\r\n");
	for (int i = 0; i < 200 && q.nlines < 1; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		usleep(1000);
	}
	cr_assert_eq(q.nlines, 1);
	cr_expect(strncmp(stream_peer_str(q.s), "127.0.0.1:", 10) == 0);
	close(client_fd);
	spin(&q, is_closed);
	ev_loop_destroy(loop);
}

Test(stream, bad_proxy_header_from_trusted_peer_closes)
{
	struct netlist nl;
	char why[64];
	cr_assert(netlist_parse("127.0.0.1", &nl, why, sizeof(why)) == 0);
	struct stream_opts o = opts;
	o.proxy_from = &nl;
	struct rec r = {0};
	pair(&r, &o);
	say("HELO not-a-proxy-header\r\n");
	spin(&r, is_closed);
	cr_expect(r.closed);
	cr_expect_str_eq(r.why, "bad PROXY header");
	cr_expect_eq(r.nlines, 0);
	close(client_fd);
	ev_loop_destroy(loop);
}

Test(stream, netlist_parsing)
{
	struct netlist nl;
	char why[64];
	cr_expect(netlist_parse("10.0.0.0/33", &nl, why, sizeof(why)) < 0);
	cr_expect(netlist_parse("nonsense", &nl, why, sizeof(why)) < 0);
	cr_expect(netlist_parse("10.1.0.0/16,2001:db8::/32", &nl, why,
				sizeof(why)) == 0);
	struct sockaddr_in in = {.sin_family = AF_INET};
	inet_pton(AF_INET, "10.1.200.3", &in.sin_addr);
	cr_expect(netlist_match(&nl, (struct sockaddr *)&in));
	inet_pton(AF_INET, "10.2.0.1", &in.sin_addr);
	cr_expect_not(netlist_match(&nl, (struct sockaddr *)&in));
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	inet_pton(AF_INET6, "2001:db8:1::5", &in6.sin6_addr);
	cr_expect(netlist_match(&nl, (struct sockaddr *)&in6));
	inet_pton(AF_INET6, "::ffff:10.1.2.3", &in6.sin6_addr);
	cr_expect(netlist_match(&nl, (struct sockaddr *)&in6)); /* mapped */
}

static int
has_two(struct rec *r)
{
	return r->nlines >= 2;
}

/* A write right after resume used to drop the wake-up that delivers the
 * held lines: with the peer half-closed, nothing else would come. */
Test(stream, resume_then_write_still_delivers_held_lines)
{
	struct rec r = {.pause_after_first = true};
	pair(&r, &opts);
	say("a\r\nb\r\n");
	shutdown(client_fd, SHUT_WR);
	for (int i = 0; i < 50; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		usleep(1000);
	}
	cr_assert_eq(r.nlines, 1);
	stream_resume(r.s);
	stream_write(r.s, "+OK\r\n", 5);
	spin(&r, has_two);
	cr_expect_eq(r.nlines, 2);
	cr_expect_str_eq(r.lines[1], "b");
	spin(&r, is_closed);
	close(client_fd);
	ev_loop_destroy(loop);
}

/* A long answer in slices: 16 slices of 256 KiB through a stream whose
 * output bound is 512 KiB, which one write of it all would pass. */
Test(stream, drain_feeds_a_long_answer_in_slices)
{
	const struct stream_opts small = {
	    .max_line = 16, .max_output = 2 * SLICE, .idle_timeout = 5};
	struct rec r = {.slices = 16};
	pair(&r, &small);
	fcntl(client_fd, F_SETFL, O_NONBLOCK);
	stream_wait_drain(r.s); /* output is empty: the first comes at once */
	size_t got = 0;
	char buf[65536];
	for (int i = 0; i < 20000 && got < 16u * SLICE; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		ssize_t n = read(client_fd, buf, sizeof(buf));
		if (n > 0)
			got += (size_t)n;
		else
			usleep(100);
	}
	cr_expect_eq(got, 16u * SLICE);
	cr_expect_not(r.closed, "closed: %s", r.why);
	cr_expect_geq(r.drains, 16);
	close(client_fd);
	for (int i = 0; i < 50 && !r.closed; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		usleep(1000);
	}
	ev_loop_destroy(loop);
}

static int
has_2000(struct rec *r)
{
	return r->count >= 2000 && r->closed;
}

/* 2000 pipelined lines in one read: the first turn hands over only
 * STREAM_TURN_MAX of them, the rest come in later turns, and the peer's
 * close waits until every one is delivered. */
Test(stream, one_turn_hands_over_a_bounded_number_of_lines)
{
	const struct stream_opts big = {
	    .max_line = 8192, .max_output = 1 << 20, .idle_timeout = 5};
	static char buf[6000];
	struct rec r = {.count_only = true};
	pair(&r, &big);
	ev_run(loop, EVRUN_NOWAIT); /* ready, nothing to read yet */
	for (int i = 0; i < 2000; i++)
		memcpy(buf + 3 * i, "x\r\n", 3);
	cr_assert(write(client_fd, buf, sizeof(buf)) == sizeof(buf));
	shutdown(client_fd, SHUT_WR);
	usleep(20000); /* all of it is in the socket */
	ev_run(loop, EVRUN_NOWAIT);
	cr_expect_eq(r.count, STREAM_TURN_MAX, "count %d", r.count);
	spin(&r, has_2000);
	cr_expect_eq(r.count, 2000);
	cr_expect(r.closed);
	close(client_fd);
	ev_loop_destroy(loop);
}

/* Spins for about ms milliseconds, writing one byte every 50 ms when
 * trickle is given; stops early once the stream is closed. */
static void
spin_for(struct rec *r, int ms, const char *trickle)
{
	for (int t = 0; t < ms && !r->closed; t += 2) {
		if (trickle && t % 50 == 0)
			cr_assert(write(client_fd, trickle, 1) == 1);
		ev_run(loop, EVRUN_NOWAIT);
		usleep(2000);
	}
}

/* A line trickled a byte at a time is no input to the idle timer. */
Test(stream, trickled_bytes_do_not_hold_off_the_idle_timer)
{
	const struct stream_opts o = {
	    .max_line = 8192, .max_output = 1 << 20, .idle_timeout = 0.3};
	struct rec r = {0};
	pair(&r, &o);
	spin_for(&r, 1500, "x");
	cr_expect(r.closed, "a trickling peer kept the session open");
	cr_expect_str_eq(r.why, "timeout");
	cr_expect_eq(r.nlines, 0);
	close(client_fd);
	ev_loop_destroy(loop);
}

/* A deadline armed at input: silence does not start it, the first byte
 * does, and whole lines afterwards do not move it. */
Test(stream, deadline_from_the_first_byte_is_absolute)
{
	const struct stream_opts o = {
	    .max_line = 16, .max_output = 1 << 20, .idle_timeout = 5};
	struct rec r = {.count_only = true};
	pair(&r, &o);
	stream_set_deadline(r.s, 0.3, true);
	spin_for(&r, 500, NULL);
	cr_assert_not(r.closed, "closed before any input: %s", r.why);
	spin_for(&r, 1500, "\n"); /* a line every 50 ms */
	cr_expect(r.closed);
	cr_expect_str_eq(r.why, "deadline passed");
	cr_expect_gt(r.count, 3);
	cr_expect_lt(r.count, 12);
	close(client_fd);
	ev_loop_destroy(loop);

	/* Removed, it does nothing. */
	struct rec q = {.count_only = true};
	pair(&q, &o);
	stream_set_deadline(q.s, 0.2, false);
	stream_set_deadline(q.s, 0, false);
	spin_for(&q, 500, "\n");
	cr_expect_not(q.closed, "closed: %s", q.why);
	close(client_fd);
	spin(&q, is_closed);
	ev_loop_destroy(loop);
}

static int
is_ready_or_closed(struct rec *r)
{
	return r->ready || r->closed;
}

/* Caps: a second connection over the total, or from the same address
 * over the per-source cap, gets on_refused instead of on_ready, then the
 * close; an exempt peer counts toward the total only. */
Test(stream, connection_caps_refuse_with_the_protocol_answer)
{
	struct netlist lo;
	char why[64];
	cr_assert(netlist_parse("127.0.0.0/8", &lo, why, sizeof(why)) == 0);
	const struct {
		long total, source;
		bool exempt, second_ok;
	} cases[] = {
	    {1, 0, false, false},
	    {0, 1, false, false},
	    {0, 1, true, true},
	    {2, 2, false, true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct connlimit *l =
		    connlimit_new(cases[i].total, cases[i].source,
				  cases[i].exempt ? &lo : NULL);
		struct stream_opts o = opts;
		o.limit = l;
		struct rec a = {0}, b = {0};
		pair(&a, &o);
		struct ev_loop *aloop = loop;
		int afd = client_fd;
		spin(&a, is_ready_or_closed);
		cr_assert(a.ready, "case %zu: first refused", i);
		pair(&b, &o);
		spin(&b, is_ready_or_closed);
		if (cases[i].second_ok) {
			cr_expect(b.ready, "case %zu: second refused", i);
			close(client_fd);
			spin(&b, is_closed);
		} else {
			cr_expect_not(b.ready, "case %zu: second let in", i);
			cr_expect(b.refused, "case %zu", i);
			spin(&b, is_closed);
			cr_expect_str_eq(b.why, "too many connections");
			char buf[16] = "";
			cr_expect_eq(read(client_fd, buf, sizeof(buf) - 1), 6);
			cr_expect_str_eq(buf, "busy\r\n");
			close(client_fd);
		}
		ev_loop_destroy(loop);
		cr_expect_eq(connlimit_total(l), 1, "case %zu", i);
		loop = aloop;
		close(afd);
		spin(&a, is_closed);
		ev_loop_destroy(loop);
		cr_expect_eq(connlimit_total(l), 0, "case %zu", i);
		/* Everything was given back: the address may come again. */
		struct sockaddr_in sin = {.sin_family = AF_INET};
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		struct connlimit_ticket t = {0};
		cr_expect(connlimit_open(l, &t));
		cr_expect(
		    connlimit_source(l, &t, (struct sockaddr *)&sin, false));
		connlimit_close(l, &t);
		connlimit_free(l);
	}
}
