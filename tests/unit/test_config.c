/* lbd's config parser: values and defaults of a good file, and one
 * file:line error per kind of mistake. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../balancer/config.h"

static char path[64];

static struct lbd_config *
load(const char *text, char *err, size_t errlen)
{
	snprintf(path, sizeof(path), "/tmp/lbd-config-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	struct lbd_config *c = config_load(path, err, errlen);
	unlink(path);
	return c;
}

static void
expect_error(const char *text, int line, const char *what)
{
	char err[4096], want[128];
	struct lbd_config *c = load(text, err, sizeof(err));
	cr_assert_null(c, "accepted:\n%s", text);
	snprintf(want, sizeof(want), "%s:%d: ", path, line);
	cr_expect(strstr(err, want) != NULL, "want %s in: %s", want, err);
	cr_expect(strstr(err, what) != NULL, "want \"%s\" in: %s", what, err);
}

#define HEAD "[lbd]\ncontrol = /tmp/x.sock\n"

Test(config, good_file_values_and_defaults)
{
	char err[1024];
	struct lbd_config *c =
	    load(HEAD "workers = 3\ncontrol_mode = 0600\n"
		      "[service smtp]\n"
		      "listen = 127.0.0.1:2525\n"
		      "protocol = smtp\n"
		      "pool = mx\n"
		      "proxy_protocol = v1\n"
		      "[service web6]\n"
		      "listen = [::1]:8080\n"
		      "protocol = http\n"
		      "pool = mx\n"
		      "proxy_protocol = v1\n"
		      "[pool mx]\n"
		      "balance = maglev\n"
		      "check = smtp-starttls\n"
		      "node = a 10.0.0.1:25 weight=3 maxconn=7\n"
		      "node = b [2001:db8::1]:25\n",
		 err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_expect_eq(c->set.workers, 3);
	cr_expect_eq(c->set.control_mode, 0600);
	cr_expect_eq(c->set.grace_s, 30);
	struct service *s = config_service(c, "smtp");
	cr_assert_not_null(s);
	cr_expect_eq(s->protocol, PROTO_SMTP);
	cr_expect_eq(atomic_load(&s->proxy_protocol), 1);
	cr_expect_eq(atomic_load(&s->retries), 2);
	cr_expect_eq(atomic_load(&s->connect_timeout_ms), 1000);
	cr_expect_eq(atomic_load(&s->idle_timeout_s), 1800);
	cr_expect_str_eq(config_service(c, "web6")->listenstr, "[::1]:8080");
	struct pool *p = config_pool(c, "mx");
	cr_assert_not_null(p);
	cr_expect_eq(atomic_load(&s->pool), p);
	cr_expect_str_eq(p->lb->name, "maglev");
	cr_expect_eq(p->probe.type, CHECK_SMTP_STARTTLS);
	cr_expect_eq(p->probe.proxy_version, 1); /* check_proxy auto */
	cr_expect_eq(p->rise, 2);
	cr_expect_eq(p->fall, 3);
	cr_expect_eq(p->check_interval_ms, 2000);
	cr_expect_eq(p->probe.timeout_ms, 1000);
	cr_assert_eq(p->nnodes, 2);
	struct node *a = pool_node(p, "a");
	cr_expect_eq(atomic_load(&a->weight), 3);
	cr_expect_eq(a->maxconn, 7);
	cr_expect_str_eq(a->addrstr, "10.0.0.1:25");
	cr_expect_str_eq(pool_node(p, "b")->addrstr, "[2001:db8::1]:25");
	cr_expect(a->from_config);
	cr_expect_eq(atomic_load(&a->health), HEALTH_UP);
	config_free(c);
}

Test(config, errors_name_file_and_line)
{
	expect_error(HEAD "bogus = 1\n", 3, "unknown key \"bogus\" in [lbd]");
	expect_error(HEAD "[service s]\nlisten = 1.2.3:25\npool = p\n"
			  "[pool p]\n",
		     4, "bad address \"1.2.3:25\"");
	expect_error(HEAD "[service s]\nlisten = 1.2.3.4:0\npool = p\n"
			  "[pool p]\n",
		     4, "bad port");
	expect_error(HEAD "[service s]\nlisten = 1.2.3.4:25\npool = q\n"
			  "[pool p]\n",
		     5, "pool \"q\" does not exist");
	expect_error(HEAD "[service s]\nlisten = 1.2.3.4:25\npool = p\n"
			  "[service t]\nlisten = 1.2.3.4:25\npool = p\n"
			  "[pool p]\n",
		     7, "already used by service s");
	expect_error(HEAD "[pool p]\nnode = a 1.2.3.4:1\nnode = a 1.2.3.4:2\n",
		     5, "\"a\" already in pool p");
	expect_error(HEAD "[pool p]\nnode = a 1.2.3.4:1 weight=999\n", 4,
		     "bad weight");
	expect_error(HEAD "[pool p]\nrise = 0\n", 4, "not a number in 1..100");
	expect_error(HEAD "[pool p]\nrise = 2\n[pool p]\nrise = 3\n", 5,
		     "pool p defined twice");
	expect_error(HEAD "[backend x]\nfoo = 1\n", 3, "unknown section");
	expect_error("control = /x\n", 1, "outside any section");
	expect_error("[lbd]\nworkers = 2\n", 1, "control = PATH is required");
}

/* The keys with a choice of names (conf_choice): each name's value, and
 * the list of names when none matches. */
Test(config, choices_and_their_names)
{
	char err[1024];
	struct lbd_config *c =
	    load(HEAD "io_engine = epoll\n"
		      "[service s]\nlisten = 127.0.0.1:2525\npool = p\n"
		      "proxy_protocol = v2\n"
		      "[pool p]\ncheck = smtp\ncheck_proxy = off\n",
		 err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_expect(!c->set.io_uring);
	cr_expect_eq(atomic_load(&config_service(c, "s")->proxy_protocol), 2);
	cr_expect_eq(config_pool(c, "p")->check_proxy, 0);
	config_free(c);
	c = load(HEAD "[pool p]\ncheck_proxy = auto\n", err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_expect(c->set.io_uring); /* the default */
	cr_expect_eq(config_pool(c, "p")->check_proxy, -1);
	config_free(c);
	expect_error(HEAD "io_engine = kqueue\n", 3,
		     "io_engine: \"kqueue\" is not one of uring, epoll");
	expect_error(HEAD "[pool p]\ncheck_proxy = v3\n", 4,
		     "check_proxy: \"v3\" is not one of auto, off, v1, v2");
	expect_error(HEAD "[service s]\nlisten = 1.2.3.4:25\npool = p\n"
			  "proxy_protocol = on\n[pool p]\n",
		     6, "proxy_protocol: \"on\" is not one of off, v1, v2");
}

Test(config, garbage_never_crashes)
{
	char err[4096], buf[2048];
	srand(42);
	for (int i = 0; i < 2000; i++) {
		size_t n = (size_t)(rand() % (int)(sizeof(buf) - 1));
		for (size_t j = 0; j < n; j++)
			buf[j] =
			    (char)(rand() % 3 == 0 ? "[]=\n ;#ab"[rand() % 10]
						   : rand() % 256);
		buf[n] = '\0';
		struct lbd_config *c = load(buf, err, sizeof(err));
		config_free(c);
	}
}
