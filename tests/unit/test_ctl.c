/* The control plane without sockets: ctl_exec() on a hand-built struct lbd.
 * Each command's effect on the nodes, each error answer, the tokenizer's
 * bounds, garbage that must never crash, the status text and JSON, the
 * watch line format, housekeeping (timed maintenance, removals), the state
 * file's save/load round trip and its bad inputs, and the metrics text. */
#include <criterion/criterion.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../balancer/ctl.h"
#include "../../balancer/lbd_run.h"
#include "../../balancer/metrics.h"
#include "../../balancer/runtime.h"
#include "../../balancer/statefile.h"
#include "../../balancer/status.h"
#include "../../common/log.h"
#include "../../common/strbuf.h"

struct world {
	struct lbd l;
	struct lbd_config cfg;
	struct strbuf out;
	char dir[64];
};

static struct world W;

static struct node *
mknode(const char *name, const char *addr, int weight, enum node_health h)
{
	struct addr a;
	const char *why;
	cr_assert_eq(addr_parse(addr, &a, &why), 0, "%s", addr);
	struct node *n = node_new(name, &a, weight, 0, h);
	cr_assert_not_null(n);
	n->from_config = true;
	return n;
}

static struct pool *
mkpool(struct lbd_config *c, const char *name, enum check_type check)
{
	struct pool *p = pool_new(name);
	cr_assert_not_null(p);
	p->probe.type = check;
	p->rise = 2;
	p->fall = 2;
	struct pool **pp = &c->pools;
	while (*pp)
		pp = &(*pp)->next;
	*pp = p;
	return p;
}

static struct service *
mkservice(struct lbd_config *c, const char *name, const char *listen,
	  enum service_proto proto, struct pool *p)
{
	struct service *s = calloc(1, sizeof(*s));
	const char *why;
	cr_assert_not_null(s);
	snprintf(s->name, sizeof(s->name), "%s", name);
	cr_assert_eq(addr_parse(listen, &s->listen, &why), 0);
	snprintf(s->listenstr, sizeof(s->listenstr), "%s", listen);
	s->protocol = proto;
	snprintf(s->pool_name, sizeof(s->pool_name), "%s", p->name);
	atomic_init(&s->pool, p);
	struct service **sp = &c->services;
	while (*sp)
		sp = &(*sp)->next;
	*sp = s;
	return s;
}

/* The config every test starts from: pool mx (check tcp) with config
 * nodes n1 (up), n2 (up, weight 2), n4 (down); pool web (check none) with
 * w1; services smtp -> mx and http -> web. */
static void
world_build(struct lbd *l, struct lbd_config *c, struct ev_loop *loop)
{
	memset(l, 0, sizeof(*l));
	memset(c, 0, sizeof(*c));
	c->set.control_mode = 0660;
	l->cfg = c;
	l->loop = loop;
	l->started = ev_now(loop);
	cr_assert_eq(lbd_subscribe(l), 0);
	struct pool *mx = mkpool(c, "mx", CHECK_TCP);
	struct pool *web = mkpool(c, "web", CHECK_NONE);
	cr_assert_eq(
	    pool_insert(mx, mknode("n1", "127.0.0.1:2601", 1, HEALTH_UP)), 0);
	cr_assert_eq(
	    pool_insert(mx, mknode("n2", "127.0.0.1:2602", 2, HEALTH_UP)), 0);
	cr_assert_eq(
	    pool_insert(mx, mknode("n4", "127.0.0.1:2604", 1, HEALTH_DOWN)), 0);
	cr_assert_eq(pool_insert(web, mknode("w1", "[::1]:8081", 1, HEALTH_UP)),
		     0);
	for (struct pool *p = c->pools; p; p = p->next)
		for (size_t i = 0; i < p->nnodes; i++)
			checker_start_node(l, p, p->nodes[i]);
	for (struct pool *p = c->pools; p; p = p->next)
		for (size_t i = 0; i < p->nnodes; i++) {
			p->nodes[i]->last_change = ev_now(loop) - 12.5;
			snprintf(p->nodes[i]->check_status,
				 sizeof(p->nodes[i]->check_status), "ok");
		}
	mkservice(c, "smtp", "127.0.0.1:2525", PROTO_SMTP, mx);
	mkservice(c, "http", "127.0.0.1:8080", PROTO_HTTP, web);
}

static void
world_free(struct lbd *l, struct lbd_config *c)
{
	runtime_stop(l);
	for (struct pool *p = c->pools; p; p = p->next)
		for (size_t i = 0; i < p->nnodes; i++)
			checker_stop_node(p->nodes[i]);
	while (c->pools) {
		struct pool *p = c->pools;
		c->pools = p->next;
		pool_free(p);
	}
	while (c->services) {
		struct service *s = c->services;
		c->services = s->next;
		free(s);
	}
}

static void
setup(void)
{
	log_init("test_ctl", LOG_LVL_ERR);
	world_build(&W.l, &W.cfg, ev_loop_new(0));
	strbuf_init(&W.out, CTL_ANSWER_MAX);
	snprintf(W.dir, sizeof(W.dir), "/tmp/test_ctl.XXXXXX");
	cr_assert_not_null(mkdtemp(W.dir));
}

static void
teardown(void)
{
	char cmd[128];
	struct ev_loop *loop = W.l.loop;
	world_free(&W.l, &W.cfg);
	ev_loop_destroy(loop);
	strbuf_free(&W.out);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", W.dir);
	cr_assert_eq(system(cmd), 0);
}

/* Runs line, returns its answer (valid until the next call). */
static const char *
run(const char *line, enum ctl_status want)
{
	strbuf_reset(&W.out);
	enum ctl_status st = ctl_exec(&W.l, line, &W.out);
	cr_assert_eq(st, want, "\"%s\": status %d, want %d; answer %s", line,
		     st, want, strbuf_str(&W.out));
	return strbuf_str(&W.out);
}

static void
ok(const char *line)
{
	cr_assert_str_eq(run(line, CTL_OK), "ok\n", "%s", line);
}

static void
fails(const char *line, const char *answer)
{
	cr_assert_str_eq(run(line, CTL_FAIL), answer, "%s", line);
}

static struct node *
node(const char *pool, const char *name)
{
	struct pool *p = config_pool(&W.cfg, pool);
	cr_assert_not_null(p);
	return pool_node(p, name);
}

TestSuite(ctl, .init = setup, .fini = teardown);

Test(ctl, ping)
{
	cr_assert_str_eq(run("ping", CTL_OK), "pong\n");
	cr_assert_str_eq(run("ping\n", CTL_OK), "pong\n");
	cr_assert_str_eq(run("  ping \r\n", CTL_OK), "pong\n");
	fails("ping pong", "error: usage: ping\n");
}

Test(ctl, unknown_commands)
{
	fails("foo", "error: unknown command \"foo\" (try: ping, show status, "
		     "show status json, pool add, pool remove, node drain, "
		     "node disable, node enable, node weight, watch, help)\n");
	fails("pool frob mx",
	      "error: unknown command \"pool frob\" (try: pool add, pool "
	      "remove)\n");
	fails("node", "error: unknown command \"node\" (try: node drain, node "
		      "disable, node enable, node weight)\n");
	fails("show", "error: unknown command \"show\" (try: show status, "
		      "show status json)\n");
	fails("a\"b", "error: unknown command \"a\\\"b\" (try: ping, show "
		      "status, show status json, pool add, pool remove, node "
		      "drain, node disable, node enable, node weight, watch, "
		      "help)\n");
	fails("show status xml", "error: usage: show status [json]\n");
	fails("", "error: empty command (try: help)\n");
	fails(" \t \n", "error: empty command (try: help)\n");
	cr_assert(strstr(run("help", CTL_OK), "pool add POOL NODE HOST:PORT"));
}

Test(ctl, tokenizer_bounds)
{
	char line[CTL_LINE_MAX + 64];

	/* 16 words pass the tokenizer (and fail the usage), 17 do not */
	fails("pool add mx a b c d e f g h i j k l m",
	      "error: usage: pool add POOL NODE HOST:PORT [weight=N] "
	      "[maxconn=N]\n");
	fails("pool add mx a b c d e f g h i j k l m n",
	      "error: too many words (max 16)\n");
	/* a 255-byte word is a word, 256 is too long */
	memset(line, 'x', 255);
	line[255] = '\0';
	cr_assert(strncmp(run(line, CTL_FAIL), "error: unknown command \"xxx",
			  27) == 0);
	memset(line, 'x', 256);
	line[256] = '\0';
	fails(line, "error: word too long (max 255 bytes)\n");
	/* the line: 4095 bytes and its newline fit, one more does not */
	memset(line, ' ', sizeof(line));
	memcpy(line, "ping", 4);
	line[CTL_LINE_MAX - 1] = '\n';
	line[CTL_LINE_MAX] = '\0';
	cr_assert_str_eq(run(line, CTL_OK), "pong\n");
	line[CTL_LINE_MAX - 1] = ' ';
	line[CTL_LINE_MAX] = '\n';
	line[CTL_LINE_MAX + 1] = '\0';
	fails(line, "error: line too long (max 4095 bytes)\n");
}

Test(ctl, bad_bytes)
{
	strbuf_reset(&W.out);
	cr_assert_eq(ctl_execn(&W.l, "ping\0x\n", 7, &W.out), CTL_FAIL);
	cr_assert_str_eq(strbuf_str(&W.out),
			 "error: bad byte 0x00 at offset 4\n");
	fails("pi\xffng", "error: bad byte 0xff at offset 2\n");
	fails("\x1b[2Jping", "error: bad byte 0x1b at offset 0\n");
	fails("ping\r\r\n", "error: bad byte 0x0d at offset 4\n");
	fails("ping\nping\n", "error: bad byte 0x0a at offset 4\n");
}

Test(ctl, one_mebibyte_line)
{
	size_t len = 1 << 20;
	char *line = malloc(len + 1);
	cr_assert_not_null(line);
	memset(line, 'a', len);
	line[len] = '\0';
	fails(line, "error: line too long (max 4095 bytes)\n");
	free(line);
}

/* Random bytes, random printable words and random sequences of real
 * command words: never a crash, always one answer ending in a newline. */
Test(ctl, garbage_never_crashes)
{
	static const char *const words[] = {"pool",
					    "add",
					    "remove",
					    "node",
					    "drain",
					    "disable",
					    "enable",
					    "weight",
					    "show",
					    "status",
					    "json",
					    "mx",
					    "web",
					    "n1",
					    "n2",
					    "n4",
					    "w1",
					    "n9",
					    "127.0.0.1:2699",
					    "[::1]:1",
					    "weight=3",
					    "maxconn=2",
					    "for=5",
					    "for=x",
					    "7",
					    "-1",
					    "ping",
					    "watch",
					    "x=y",
					    "999999999999999999999",
					    ""};
	char buf[600];
	unsigned seed = 12345;

	for (int i = 0; i < 3000; i++) {
		size_t len = (size_t)rand_r(&seed) % sizeof(buf);
		if (i % 3 == 0) {
			for (size_t j = 0; j < len; j++)
				buf[j] = (char)rand_r(&seed);
		} else if (i % 3 == 1) {
			for (size_t j = 0; j < len; j++)
				buf[j] = (char)(0x20 + rand_r(&seed) % 0x5f);
		} else {
			len = 0;
			int n = rand_r(&seed) % 8;
			for (int k = 0; k < n; k++)
				len += (size_t)snprintf(
				    buf + len, sizeof(buf) - len, "%s ",
				    words[rand_r(&seed) %
					  (sizeof(words) / sizeof(words[0]))]);
		}
		strbuf_reset(&W.out);
		enum ctl_status st = ctl_execn(&W.l, buf, len, &W.out);
		if (st == CTL_WATCH)
			continue;
		cr_assert_gt(W.out.len, 0);
		cr_assert_eq(W.out.buf[W.out.len - 1], '\n');
		if (st == CTL_FAIL)
			cr_assert(strncmp(W.out.buf, "error: ", 7) == 0);
		runtime_tick(&W.l);
	}
}

Test(ctl, pool_add)
{
	ok("pool add mx n3 127.0.0.1:2603 weight=3 maxconn=7");
	struct node *n = node("mx", "n3");
	cr_assert_not_null(n);
	/* probed before it gets traffic */
	cr_assert_eq(atomic_load(&n->health), HEALTH_DOWN);
	cr_assert_str_eq(node_state_name(n), "down");
	cr_assert_not(node_usable(n));
	cr_assert_not(n->from_config);
	cr_assert_eq(atomic_load(&n->weight), 3);
	cr_assert_eq(n->maxconn, 7);
	cr_assert_not_null(n->checker);
	cr_assert_str_eq(n->addrstr, "127.0.0.1:2603");

	/* check=none: up at once */
	ok("pool add web w2 [::1]:8082");
	n = node("web", "w2");
	cr_assert_not_null(n);
	cr_assert_str_eq(node_state_name(n), "up");
	cr_assert_eq(atomic_load(&n->weight), 1);
	cr_assert_eq(n->maxconn, 0);
}

Test(ctl, pool_add_errors)
{
	fails("pool add x n3 127.0.0.1:1", "error: unknown pool \"x\"\n");
	fails("pool add mx n1 127.0.0.1:1",
	      "error: node \"n1\" already exists in pool \"mx\"\n");
	fails("pool add mx n3 127.0.0.1:1 weight=abc",
	      "error: bad weight \"abc\" (0..256)\n");
	fails("pool add mx n3 127.0.0.1:1 weight=257",
	      "error: bad weight \"257\" (0..256)\n");
	fails("pool add mx n3 127.0.0.1:1 maxconn=-1",
	      "error: bad maxconn \"-1\" (0..10000000)\n");
	fails("pool add mx n3 127.0.0.1:1 color=red",
	      "error: unexpected \"color=red\" (expected weight=N or "
	      "maxconn=N)\n");
	fails("pool add mx n/3 127.0.0.1:1", "error: bad node name \"n/3\"\n");
	const char *a = run("pool add mx n3 nowhere", CTL_FAIL);
	cr_assert(strncmp(a, "error: bad address \"nowhere\": ", 30) == 0, "%s",
		  a);
	fails("pool add mx n3",
	      "error: usage: pool add POOL NODE HOST:PORT [weight=N] "
	      "[maxconn=N]\n");
	cr_assert_null(node("mx", "n3"));
	cr_assert_eq(config_pool(&W.cfg, "mx")->nnodes, 3);
}

Test(ctl, pool_remove_idle)
{
	ok("pool remove mx n2");
	cr_assert_null(node("mx", "n2"));
	cr_assert_eq(config_pool(&W.cfg, "mx")->nnodes, 2);
	fails("pool remove mx n2",
	      "error: unknown node \"n2\" in pool \"mx\"\n");
	fails("pool remove zz n2", "error: unknown pool \"zz\"\n");
	fails("pool remove mx", "error: usage: pool remove POOL NODE\n");
}

Test(ctl, pool_remove_waits_for_connections)
{
	struct node *n = node("mx", "n1");
	atomic_store(&n->active, 2);
	ok("pool remove mx n1");
	cr_assert_eq(node("mx", "n1"), n);
	cr_assert_str_eq(node_state_name(n), "removing");
	cr_assert_not(node_usable(n));
	cr_assert_null(n->checker); /* probes stopped */
	fails("pool remove mx n1",
	      "error: node \"n1\" in pool \"mx\" is being removed\n");
	fails("node enable mx n1",
	      "error: node \"n1\" in pool \"mx\" is being removed\n");
	fails("node weight mx n1 4",
	      "error: node \"n1\" in pool \"mx\" is being removed\n");
	fails("pool add mx n1 127.0.0.1:1",
	      "error: node \"n1\" in pool \"mx\" is still being removed\n");
	runtime_tick(&W.l);
	cr_assert_eq(node("mx", "n1"), n);
	atomic_store(&n->active, 1);
	runtime_tick(&W.l);
	cr_assert_eq(node("mx", "n1"), n);
	atomic_store(&n->active, 0);
	runtime_tick(&W.l);
	cr_assert_null(node("mx", "n1"));
	/* and it can come back, as a runtime node */
	ok("pool add mx n1 127.0.0.1:2601");
	cr_assert_not(node("mx", "n1")->from_config);
}

Test(ctl, drain_disable_enable)
{
	struct node *n = node("mx", "n1");
	double now = ev_now(W.l.loop);

	ok("node drain mx n1");
	cr_assert_eq(atomic_load(&n->admin), ADMIN_DRAIN);
	cr_assert_str_eq(node_state_name(n), "drain");
	cr_assert_str_eq(node_health_name(n), "up");
	cr_assert_not(node_usable(n));
	cr_assert_not_null(n->checker); /* probes go on */
	cr_assert_geq(n->last_change, now);
	ok("node drain mx n1"); /* again: no change, still ok */

	ok("node disable mx n1");
	cr_assert_eq(atomic_load(&n->admin), ADMIN_MAINT);
	cr_assert_str_eq(node_state_name(n), "maint");
	cr_assert_eq(n->maint_until, 0);
	runtime_tick(&W.l);
	cr_assert_eq(atomic_load(&n->admin), ADMIN_MAINT); /* no end */

	ok("node enable mx n1");
	cr_assert_eq(atomic_load(&n->admin), ADMIN_NONE);
	cr_assert_str_eq(node_state_name(n), "up");
	cr_assert(node_usable(n));

	/* the probes' verdict shows again after enable */
	ok("node disable mx n4");
	ok("node enable mx n4");
	cr_assert_str_eq(node_state_name(node("mx", "n4")), "down");
}

Test(ctl, disable_for_ends_by_itself)
{
	struct node *n = node("mx", "n2");
	double now = ev_now(W.l.loop);

	ok("node disable mx n2 for=30");
	cr_assert_eq(atomic_load(&n->admin), ADMIN_MAINT);
	cr_assert_float_eq(n->maint_until, now + 30, 0.01);
	runtime_tick(&W.l);
	cr_assert_eq(atomic_load(&n->admin), ADMIN_MAINT);
	n->maint_until = now - 0.5; /* as if 30 s had passed */
	runtime_tick(&W.l);
	cr_assert_eq(atomic_load(&n->admin), ADMIN_NONE);
	cr_assert_eq(n->maint_until, 0);
	cr_assert_str_eq(node_state_name(n), "up");

	/* a drain clears a pending end */
	ok("node disable mx n2 for=1");
	ok("node drain mx n2");
	cr_assert_eq(n->maint_until, 0);
}

Test(ctl, admin_errors)
{
	fails("node drain mx n9",
	      "error: unknown node \"n9\" in pool \"mx\"\n");
	fails("node drain x n1", "error: unknown pool \"x\"\n");
	fails("node drain mx", "error: usage: node drain POOL NODE\n");
	fails("node enable mx n1 now", "error: usage: node enable POOL NODE\n");
	fails("node disable mx n1 for=0", "error: bad duration \"0\" "
					  "(1..31622400)\n");
	fails("node disable mx n1 for=abc",
	      "error: bad duration \"abc\" (1..31622400)\n");
	fails("node disable mx n1 for=", "error: bad duration \"\" "
					 "(1..31622400)\n");
	fails("node disable mx n1 for=-5",
	      "error: bad duration \"-5\" (1..31622400)\n");
	fails("node disable mx n1 until=5",
	      "error: unexpected \"until=5\" (expected for=SECONDS)\n");
	fails("node disable mx n1 for=5 x",
	      "error: usage: node disable POOL NODE [for=SECONDS]\n");
	cr_assert_eq(atomic_load(&node("mx", "n1")->admin), ADMIN_NONE);
}

Test(ctl, weight)
{
	struct node *n = node("mx", "n1");
	ok("node weight mx n1 5");
	cr_assert_eq(atomic_load(&n->weight), 5);
	ok("node weight mx n1 0");
	cr_assert_eq(atomic_load(&n->weight), 0);
	cr_assert_not(node_usable(n));
	fails("node weight mx n1 abc", "error: bad weight \"abc\" (0..256)\n");
	fails("node weight mx n1 -1", "error: bad weight \"-1\" (0..256)\n");
	fails("node weight mx n1 257", "error: bad weight \"257\" (0..256)\n");
	fails("node weight mx n1 5x", "error: bad weight \"5x\" (0..256)\n");
	fails("node weight mx n1 99999999999999999999",
	      "error: bad weight \"99999999999999999999\" (0..256)\n");
	fails("node weight mx n1", "error: usage: node weight POOL NODE N\n");
	cr_assert_eq(atomic_load(&n->weight), 0);
}

Test(ctl, watch)
{
	cr_assert_str_eq(run("watch", CTL_WATCH), "");
	fails("watch all", "error: usage: watch\n");
}

Test(ctl, watch_line_format)
{
	struct strbuf sb;
	strbuf_init(&sb, 1024);
	cr_assert_eq(ctl_event_line(&sb, 1795341600.123, "mx", "n2", "up",
				    "down", "connect refused (2/2)"),
		     0);
	cr_assert_str_eq(strbuf_str(&sb), "2026-11-22T10:00:00.123Z mx n2 up "
					  "-> down connect refused (2/2)\n");
	strbuf_reset(&sb);
	/* a reason cannot break the line */
	ctl_event_line(&sb, 1795341600.0, "mx", "n2", "down", "up",
		       "bad\r\ngreeting");
	cr_assert_str_eq(
	    strbuf_str(&sb),
	    "2026-11-22T10:00:00.000Z mx n2 down -> up bad??greeting\n");
	strbuf_free(&sb);
	/* no server: only the log */
	event_state(&W.l, ORIGIN_PROBE, config_pool(&W.cfg, "mx"),
		    node("mx", "n1"), "up", "down", "test");
}

Test(ctl, show_status_text)
{
	node("mx", "n2")->maxconn = 5;
	atomic_store(&node("mx", "n2")->active, 3);
	atomic_store(&node("mx", "n2")->total, 120);
	snprintf(node("mx", "n4")->check_status,
		 sizeof(node("mx", "n4")->check_status), "connect refused");
	ok("node drain mx n1");
	node("mx", "n1")->last_change = ev_now(W.l.loop) - 3.5;
	cr_assert_str_eq(
	    run("show status", CTL_OK),
	    "POOL  NODE  ADDRESS         STATE  HEALTH  WEIGHT  ACTIVE  TOTAL  "
	    "LAST-CHANGE  CHECK\n"
	    "mx    n1    127.0.0.1:2601  drain  up      1       0       0      "
	    "3s           ok\n"
	    "mx    n2    127.0.0.1:2602  up     up      2       3       120    "
	    "12s          ok\n"
	    "mx    n4    127.0.0.1:2604  down   down    1       0       0      "
	    "12s          connect refused\n"
	    "web   w1    [::1]:8081      up     up      1       0       0      "
	    "12s          ok\n");
}

/* A small JSON checker: returns the position after one value, or NULL. */
static const char *json_value(const char *s);

static const char *
json_ws(const char *s)
{
	while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r')
		s++;
	return s;
}

static const char *
json_string(const char *s)
{
	if (*s++ != '"')
		return NULL;
	for (; *s != '"'; s++) {
		if ((unsigned char)*s < 0x20)
			return NULL;
		if (*s == '\\') {
			s++;
			if (*s == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!isxdigit((unsigned char)s[i]))
						return NULL;
				s += 4;
			} else if (!strchr("\"\\/bfnrt", *s) || *s == '\0') {
				return NULL;
			}
		}
	}
	return s + 1;
}

static const char *
json_seq(const char *s, char close, bool object)
{
	s = json_ws(s + 1);
	if (*s == close)
		return s + 1;
	for (;;) {
		if (object) {
			if ((s = json_string(json_ws(s))) == NULL)
				return NULL;
			s = json_ws(s);
			if (*s++ != ':')
				return NULL;
		}
		if ((s = json_value(s)) == NULL)
			return NULL;
		s = json_ws(s);
		if (*s == close)
			return s + 1;
		if (*s++ != ',')
			return NULL;
	}
}

static const char *
json_value(const char *s)
{
	s = json_ws(s);
	if (*s == '{')
		return json_seq(s, '}', true);
	if (*s == '[')
		return json_seq(s, ']', false);
	if (*s == '"')
		return json_string(s);
	if (*s == '-' || isdigit((unsigned char)*s)) {
		char *end;
		strtod(s, &end);
		return end;
	}
	for (const char *const *lit =
		 (const char *const[]){"true", "false", "null", NULL};
	     *lit; lit++)
		if (strncmp(s, *lit, strlen(*lit)) == 0)
			return s + strlen(*lit);
	return NULL;
}

static bool
json_valid(const char *s)
{
	const char *end = json_value(s);
	return end != NULL && *json_ws(end) == '\0';
}

Test(ctl, json_checker_checks)
{
	cr_assert(json_valid("{\"a\": [1, 2.5, \"x\\\"y\", true, null]}"));
	cr_assert_not(json_valid("{\"a\": [1, 2,]}"));
	cr_assert_not(json_valid("{\"a\" 1}"));
	cr_assert_not(json_valid("{\"a\": \"b}"));
	cr_assert_not(json_valid("{} {}"));
}

Test(ctl, show_status_json)
{
	struct service *smtp = config_service(&W.cfg, "smtp");
	atomic_store(&smtp->active, 3);
	atomic_store(&smtp->total, 120);
	atomic_store(&smtp->bytes_in, 4096);
	atomic_store(&smtp->bytes_out, 8192);
	atomic_store(&node("mx", "n2")->active, 3);
	atomic_store(&node("mx", "n2")->total, 120);
	atomic_store(&node("mx", "n2")->bytes_in, 4096);
	atomic_store(&node("mx", "n2")->bytes_out, 8192);
	atomic_store(&node("mx", "n2")->connect_fail, 2);
	node("mx", "n2")->check_ok = 1;
	node("mx", "n2")->check_latency_ms = 2.5;
	pool_set_lb(config_pool(&W.cfg, "mx"), &lb_leastconn);
	ok("node disable mx n4");
	node("mx", "n4")->last_change = ev_now(W.l.loop) - 1.5;
	const char *doc = run("show status json", CTL_OK);
	cr_assert(json_valid(doc), "%s", doc);
	cr_assert_str_eq(
	    doc,
	    "{\"services\": [{\"name\": \"smtp\", \"listen\": "
	    "\"127.0.0.1:2525\", \"protocol\": \"smtp\", \"pool\": \"mx\", "
	    "\"active\": 3, \"total\": 120, \"refused\": 0, "
	    "\"bytes_in\": 4096, \"bytes_out\": 8192, "
	    "\"sources\": 0, \"refused_by\": {\"deny\": 0, "
	    "\"max_conn_per_source\": 0, \"rate_per_source\": 0, "
	    "\"pregreet\": 0, \"dnsbl\": 0}}, "
	    "{\"name\": \"http\", \"listen\": "
	    "\"127.0.0.1:8080\", \"protocol\": \"http\", \"pool\": \"web\", "
	    "\"active\": 0, \"total\": 0, \"refused\": 0, "
	    "\"bytes_in\": 0, \"bytes_out\": 0, "
	    "\"sources\": 0, \"refused_by\": {\"deny\": 0, "
	    "\"max_conn_per_source\": 0, \"rate_per_source\": 0, "
	    "\"pregreet\": 0, \"dnsbl\": 0}}], "
	    "\"pools\": [{\"name\": \"mx\", \"balance\": \"leastconn\", "
	    "\"check\": \"tcp\", \"nodes\": ["
	    "{\"name\": \"n1\", \"address\": \"127.0.0.1:2601\", \"state\": "
	    "\"up\", \"health\": \"up\", \"weight\": 1, \"active\": 0, "
	    "\"total\": 0, \"check_status\": \"ok\", "
	    "\"check_latency_ms\": null, \"last_change_s\": 12, "
	    "\"bytes_in\": 0, \"bytes_out\": 0, \"connect_failures\": 0}, "
	    "{\"name\": \"n2\", \"address\": \"127.0.0.1:2602\", \"state\": "
	    "\"up\", \"health\": \"up\", \"weight\": 2, \"active\": 3, "
	    "\"total\": 120, \"check_status\": \"ok\", "
	    "\"check_latency_ms\": 2.5, \"last_change_s\": 12, "
	    "\"bytes_in\": 4096, \"bytes_out\": 8192, "
	    "\"connect_failures\": 2}, "
	    "{\"name\": \"n4\", \"address\": \"127.0.0.1:2604\", \"state\": "
	    "\"maint\", \"health\": \"down\", \"weight\": 1, \"active\": 0, "
	    "\"total\": 0, \"check_status\": \"ok\", "
	    "\"check_latency_ms\": null, \"last_change_s\": 1, "
	    "\"bytes_in\": 0, \"bytes_out\": 0, \"connect_failures\": 0}]}, "
	    "{\"name\": \"web\", \"balance\": \"roundrobin\", \"check\": "
	    "\"none\", \"nodes\": [{\"name\": \"w1\", \"address\": "
	    "\"[::1]:8081\", \"state\": \"up\", \"health\": \"up\", "
	    "\"weight\": 1, \"active\": 0, \"total\": 0, \"check_status\": "
	    "\"ok\", \"check_latency_ms\": null, \"last_change_s\": 12, "
	    "\"bytes_in\": 0, \"bytes_out\": 0, \"connect_failures\": 0}]}]}\n");

	/* a check status with quotes and control bytes stays valid JSON */
	snprintf(node("mx", "n1")->check_status,
		 sizeof(node("mx", "n1")->check_status),
		 "bad greeting: \"\x01\\\t\"");
	doc = run("show status json", CTL_OK);
	cr_assert(json_valid(doc), "%s", doc);
	cr_assert(strstr(doc, "\"bad greeting: \\\"\\u0001\\\\\\t\\\"\""));
}

Test(ctl, show_status_many_nodes)
{
	char line[128];
	for (int i = 0; i < 500; i++) {
		snprintf(line, sizeof(line), "pool add web x%d 127.0.0.1:%d", i,
			 10000 + i);
		ok(line);
	}
	const char *doc = run("show status json", CTL_OK);
	cr_assert(json_valid(doc));
	run("show status", CTL_OK);
	cr_assert_gt(W.out.len, 500 * 60);
}

/* Reads a whole file into a static buffer. */
static const char *
slurp(const char *path)
{
	static char buf[65536];
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
spit(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(ctl, state_file_round_trip)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/state", W.dir);
	snprintf(W.cfg.set.state_file, sizeof(W.cfg.set.state_file), "%s",
		 path);

	ok("pool add mx n3 127.0.0.1:2603 weight=4 maxconn=9");
	ok("pool add mx n5 127.0.0.1:2605");
	ok("node drain mx n5");
	ok("pool add web w2 [::1]:8082");
	ok("node drain mx n1");
	ok("node weight mx n1 7");
	ok("node disable mx n2 for=100");
	ok("pool remove mx n4"); /* a config node, idle: gone now */
	atomic_store(&node("web", "w1")->active, 1);
	ok("pool remove web w1"); /* a config node still removing */
	double until = node("mx", "n2")->maint_until;

	const char *text = slurp(path);
	cr_assert(strncmp(text, "lbd-state 1\nPOOL  NODE", 22) == 0, "%s",
		  text);
	cr_assert(strstr(text, "\nremoved mx n4\n"), "%s", text);
	/* the state file's table is show status's, with more columns */
	cr_assert(strstr(text, "LAST-CHANGE  MAXCONN  ORIGIN   MAINT-UNTIL"),
		  "%s", text);

	/* a fresh lbd from the same config */
	struct lbd l2;
	struct lbd_config c2;
	struct ev_loop *loop2 = ev_loop_new(0);
	world_build(&l2, &c2, loop2);
	snprintf(c2.set.state_file, sizeof(c2.set.state_file), "%s", path);
	cr_assert_eq(statefile_load(&l2), 0);

	struct pool *mx = config_pool(&c2, "mx"),
		    *web = config_pool(&c2, "web");
	struct node *n3 = pool_node(mx, "n3");
	cr_assert_not_null(n3);
	cr_assert_not(n3->from_config);
	cr_assert_eq(atomic_load(&n3->weight), 4);
	cr_assert_eq(n3->maxconn, 9);
	cr_assert_str_eq(node_state_name(n3), "down"); /* probed first */
	cr_assert_not_null(n3->checker);
	struct node *n5 = pool_node(mx, "n5");
	cr_assert_not_null(n5);
	cr_assert_eq(atomic_load(&n5->admin), ADMIN_DRAIN);
	cr_assert_not_null(pool_node(web, "w2"));
	cr_assert_str_eq(node_state_name(pool_node(web, "w2")), "up");
	struct node *n1 = pool_node(mx, "n1");
	cr_assert_eq(atomic_load(&n1->admin), ADMIN_DRAIN);
	cr_assert_eq(atomic_load(&n1->weight), 7);
	struct node *n2 = pool_node(mx, "n2");
	cr_assert_eq(atomic_load(&n2->admin), ADMIN_MAINT);
	cr_assert_float_eq(n2->maint_until, until, 0.001);
	cr_assert_eq(atomic_load(&n2->weight), 2);
	cr_assert_null(pool_node(mx, "n4"));
	cr_assert_null(
	    pool_node(web, "w1")); /* no connections after a restart */

	/* loading saved nothing; the next change saves the same state */
	cr_assert_eq(statefile_save(&l2), 0);
	const char *again = slurp(path);
	cr_assert(strstr(again, "\nremoved mx n4\n"), "%s", again);
	cr_assert(strstr(again, "\nremoved web w1\n"), "%s", again);

	world_free(&l2, &c2);
	ev_loop_destroy(loop2);
}

Test(ctl, state_file_no_persistence_without_setting)
{
	char path[128];
	ok("node drain mx n1");
	snprintf(path, sizeof(path), "%s/state", W.dir);
	cr_assert_neq(access(path, F_OK), 0);
	cr_assert_eq(statefile_load(&W.l), 0);
}

Test(ctl, state_file_missing_is_fine)
{
	snprintf(W.cfg.set.state_file, sizeof(W.cfg.set.state_file), "%s/none",
		 W.dir);
	cr_assert_eq(statefile_load(&W.l), 0);
}

Test(ctl, state_file_unknown_version)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/state", W.dir);
	snprintf(W.cfg.set.state_file, sizeof(W.cfg.set.state_file), "%s",
		 path);
	spit(path, "lbd-state 2\nremoved mx n1\n");
	cr_assert_eq(statefile_load(&W.l), -1);
	cr_assert_not_null(node("mx", "n1"));
	spit(path, "something else\n");
	cr_assert_eq(statefile_load(&W.l), -1);
	spit(path, "");
	cr_assert_eq(statefile_load(&W.l), 0);
}

Test(ctl, state_file_bad_lines_skipped)
{
	char path[128], text[8192];
	snprintf(path, sizeof(path), "%s/state", W.dir);
	snprintf(W.cfg.set.state_file, sizeof(W.cfg.set.state_file), "%s",
		 path);
	char longline[5000];
	memset(longline, 'z', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	snprintf(
	    text, sizeof(text),
	    "lbd-state 1\n"
	    "POOL NODE ADDRESS STATE HEALTH WEIGHT ACTIVE TOTAL LAST-CHANGE "
	    "MAXCONN ORIGIN MAINT-UNTIL CHECK\n"
	    "# a comment\n"
	    "\n"
	    "zz n1 127.0.0.1:2601 drain up 1 0 0 1s 0 config - ok\n"
	    "mx n1 127.0.0.1:2601 sleepy up 1 0 0 1s 0 config - ok\n"
	    "mx n1 127.0.0.1:2601 drain up heavy 0 0 1s 0 config - ok\n"
	    "mx n1 127.0.0.1:2601 drain up 1 0 0 1s 0 elsewhere - ok\n"
	    "mx n1 127.0.0.1:2601 maint up 1 0 0 1s 0 config soon ok\n"
	    "mx n1 127.0.0.1:9999 drain up 1 0 0 1s 0 config - ok\n"
	    "mx n9 127.0.0.1:2609 drain up 1 0 0 1s 0 config - ok\n"
	    "mx n8 nowhere up up 1 0 0 1s 0 runtime - ok\n"
	    "mx n/8 127.0.0.1:1 up up 1 0 0 1s 0 runtime - ok\n"
	    "%s\n"
	    "just three words\n"
	    "removed zz n1\n"
	    "mx n2 127.0.0.1:2602 drain up 5 0 0 1s 0 config - ok fine\n",
	    longline);
	spit(path, text);
	cr_assert_eq(statefile_load(&W.l), 0);
	/* only the last line applied */
	cr_assert_eq(atomic_load(&node("mx", "n1")->admin), ADMIN_NONE);
	cr_assert_eq(atomic_load(&node("mx", "n1")->weight), 1);
	cr_assert_eq(atomic_load(&node("mx", "n2")->admin), ADMIN_DRAIN);
	cr_assert_eq(atomic_load(&node("mx", "n2")->weight), 5);
	cr_assert_null(node("mx", "n8"));
	cr_assert_null(node("mx", "n9"));
	cr_assert_eq(config_pool(&W.cfg, "mx")->nnodes, 3);
}

Test(ctl, state_file_atomic_write)
{
	char path[128];
	struct stat st;
	snprintf(path, sizeof(path), "%s/state", W.dir);
	snprintf(W.cfg.set.state_file, sizeof(W.cfg.set.state_file), "%s",
		 path);
	ok("node drain mx n1");
	cr_assert_eq(stat(path, &st), 0);
	/* no temp file left behind */
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	cr_assert_neq(access(tmp, F_OK), 0);
	/* a directory that does not exist: the change stands, logged */
	snprintf(W.cfg.set.state_file, sizeof(W.cfg.set.state_file),
		 "%s/no/such/dir/state", W.dir);
	ok("node enable mx n1");
	cr_assert_eq(statefile_save(&W.l), -1);
}

Test(ctl, metrics_text)
{
	struct strbuf sb;
	strbuf_init(&sb, 1 << 20);
	atomic_store(&config_service(&W.cfg, "smtp")->total, 42);
	ok("node drain mx n1");
	cr_assert_eq(metrics_render(&W.l, &sb), 0);
	const char *t = strbuf_str(&sb);
	static const char *const want[] = {
	    "# TYPE lbd_service_connections_active gauge\n",
	    "# TYPE lbd_service_connections_total counter\n",
	    "lbd_service_connections_total{service=\"smtp\"} 42\n",
	    "# TYPE lbd_service_bytes_in_total counter\n",
	    "# TYPE lbd_service_bytes_out_total counter\n",
	    "# TYPE lbd_service_refused_total counter\n",
	    "# HELP lbd_node_connections_active ",
	    "lbd_node_connections_total{pool=\"mx\",node=\"n1\",address="
	    "\"127.0.0.1:2601\"} 0\n",
	    "lbd_node_bytes_in_total{",
	    "lbd_node_bytes_out_total{",
	    "lbd_node_up{pool=\"mx\",node=\"n4\",address=\"127.0.0.1:2604\"} "
	    "0\n",
	    "lbd_node_up{pool=\"web\",node=\"w1\",address=\"[::1]:8081\"} 1\n",
	    "lbd_node_state{pool=\"mx\",node=\"n1\",address=\"127.0.0.1:2601\","
	    "state=\"drain\"} 1\n",
	    "lbd_node_state{pool=\"mx\",node=\"n1\",address=\"127.0.0.1:2601\","
	    "state=\"up\"} 0\n",
	    "lbd_node_check_ok{",
	    "lbd_node_check_latency_seconds{",
	    "lbd_node_connect_failures_total{",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert(strstr(t, want[i]), "missing %s", want[i]);
	strbuf_free(&sb);
}

Test(strbuf, cap_and_escaping)
{
	struct strbuf sb;
	strbuf_init(&sb, 10);
	cr_assert_str_eq(strbuf_str(&sb), "");
	cr_assert_eq(strbuf_appends(&sb, "0123456789"), 0);
	cr_assert_eq(strbuf_appends(&sb, "x"), -1);
	cr_assert(sb.overflow);
	cr_assert_str_eq(strbuf_str(&sb), "0123456789");
	strbuf_consume(&sb, 4);
	cr_assert_str_eq(strbuf_str(&sb), "456789");
	cr_assert_eq(strbuf_appendf(&sb, "%d", 1234), 0);
	cr_assert_eq(strbuf_appendf(&sb, "%d", 5), -1);
	strbuf_reset(&sb);
	cr_assert_not(sb.overflow);
	cr_assert_eq(strbuf_append_json(&sb, "a\"b\\"), 0);
	cr_assert_str_eq(strbuf_str(&sb), "\"a\\\"b\\\\\"");
	/* all or nothing */
	cr_assert_eq(strbuf_append_json(&sb, "long"), -1);
	cr_assert_str_eq(strbuf_str(&sb), "\"a\\\"b\\\\\"");
	strbuf_free(&sb);

	strbuf_init(&sb, 1 << 20);
	char big[1000];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(strbuf_appendf(&sb, "[%s]", big), 0);
	cr_assert_eq(sb.len, 1001);
	strbuf_reset(&sb);
	cr_assert_eq(strbuf_append_json(&sb, "\x01\n\x7f"), 0);
	cr_assert_str_eq(strbuf_str(&sb), "\"\\u0001\\n\\u007f\"");
	strbuf_free(&sb);
}

/* The server on a real socket, driven by running the loop. */
static int
server_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

static void
spin(int rounds)
{
	for (int i = 0; i < rounds; i++)
		ev_run(W.l.loop, EVRUN_NOWAIT);
}

/* Reads until EOF while running the loop; returns what came. */
static const char *
server_read_all(int fd)
{
	static char buf[1 << 16];
	size_t len = 0;
	for (int i = 0; i < 2000; i++) {
		spin(2);
		ssize_t n =
		    recv(fd, buf + len, sizeof(buf) - 1 - len, MSG_DONTWAIT);
		if (n == 0)
			break;
		if (n > 0)
			len += (size_t)n;
		else
			usleep(1000);
	}
	buf[len] = '\0';
	return buf;
}

Test(ctl, server_socket)
{
	struct stat st;
	snprintf(W.cfg.set.control, sizeof(W.cfg.set.control), "%s/ctl.sock",
		 W.dir);
	W.cfg.set.control_mode = 0640;
	cr_assert_eq(ctl_server_start(&W.l), 0);
	cr_assert_eq(stat(W.cfg.set.control, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0640);

	int fd = server_connect(W.cfg.set.control);
	cr_assert_eq(write(fd, "ping\n", 5), 5);
	cr_assert_str_eq(server_read_all(fd), "pong\n");
	close(fd);

	/* a second server on the same path is refused */
	struct lbd l2 = W.l;
	l2.ctl = NULL;
	cr_assert_eq(ctl_server_start(&l2), -1);

	ctl_server_stop(&W.l);
	cr_assert_neq(access(W.cfg.set.control, F_OK), 0);
}

Test(ctl, server_drops_slow_watcher)
{
	snprintf(W.cfg.set.control, sizeof(W.cfg.set.control), "%s/ctl.sock",
		 W.dir);
	cr_assert_eq(ctl_server_start(&W.l), 0);
	int slow = server_connect(W.cfg.set.control);
	int fast = server_connect(W.cfg.set.control);
	cr_assert_eq(write(slow, "watch\n", 6), 6);
	cr_assert_eq(write(fast, "watch\n", 6), 6);
	spin(10);
	struct pool *p = config_pool(&W.cfg, "mx");
	struct node *n = pool_node(p, "n1");
	/* the slow one never reads; the fast one is read as we go */
	char buf[65536];
	size_t got = 0;
	for (int i = 0; i < 20000; i++) {
		event_state(&W.l, ORIGIN_PROBE, p, n, "up", "down", "flapping");
		if (i % 100 == 0) {
			spin(2);
			ssize_t r;
			while ((r = recv(fast, buf, sizeof(buf),
					 MSG_DONTWAIT)) > 0)
				got += (size_t)r;
		}
	}
	/* the slow watcher was dropped: its stream ends */
	size_t slow_bytes = 0;
	for (int i = 0; i < 5000; i++) {
		ssize_t r = recv(slow, buf, sizeof(buf), MSG_DONTWAIT);
		if (r == 0)
			break;
		if (r > 0)
			slow_bytes += (size_t)r;
		else
			usleep(100);
		cr_assert(i < 4999, "slow watcher not dropped");
	}
	cr_assert_lt(slow_bytes, 20000 * 60);
	cr_assert_gt(got, 100 * 60);
	/* the fast one still gets events, to the last */
	event_state(&W.l, ORIGIN_PROBE, p, n, "down", "up", "last");
	/* the last bytes seen, so a line split between reads still shows */
	char tail[2 * 64 + 1] = "";
	bool seen = false;
	for (int i = 0; i < 5000 && !seen; i++) {
		spin(1);
		ssize_t r = recv(fast, buf, 64, MSG_DONTWAIT);
		cr_assert_neq(r, 0, "fast watcher dropped");
		if (r < 0) {
			usleep(100);
			continue;
		}
		size_t tl = strlen(tail);
		if (tl > 64) {
			memmove(tail, tail + tl - 64, 65);
			tl = 64;
		}
		memcpy(tail + tl, buf, (size_t)r);
		tail[tl + (size_t)r] = '\0';
		seen = strstr(tail, "mx n1 down -> up last\n") != NULL;
	}
	cr_assert(seen);
	close(slow);
	close(fast);
	ctl_server_stop(&W.l);
}
