/* The failed-login counters with Redis away: this node's own table counts
 * per address and per user, stays within its size whatever number of
 * addresses comes, and a Redis answer raises the counts (never lowers
 * them). */
#include <criterion/criterion.h>

#include <ev.h>
#include <stdio.h>
#include <string.h>

#include "../../node/auth/auth_fails.h"

static struct ev_loop *loop;
static struct redis *redis;

static void
setup(void)
{
	struct redis_opts o;

	loop = ev_loop_new(EVFLAG_AUTO);
	cr_assert_not_null(loop);
	/* Nothing listens on port 1: Redis stays away. */
	cr_assert_eq(redis_opts_parse("127.0.0.1:1", &o), 0);
	redis = redis_new(loop, &o);
	cr_assert_not_null(redis);
	cr_assert_not(redis_up(redis));
}

static void
teardown(void)
{
	redis_free(redis);
	ev_loop_destroy(loop);
}

TestSuite(auth_fails, .init = setup, .fini = teardown);

Test(auth_fails, counts_here_while_redis_is_away)
{
	struct auth_fails *f = auth_fails_new(redis, 300, 64);
	struct auth_fails_count c;

	cr_assert_not_null(f);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(
		    auth_fails_add(f, "192.0.2.1", "bob@x.test", NULL, NULL),
		    0);
	cr_assert_eq(auth_fails_add(f, "192.0.2.2", "bob@x.test", NULL, NULL),
		     0);
	auth_fails_local(f, "192.0.2.1", "bob@x.test", &c);
	cr_assert_eq(c.addr, 3);
	cr_assert_eq(c.user, 4);
	cr_assert(c.addr_ttl_s > 0 && c.addr_ttl_s <= 301, "ttl %ld",
		  c.addr_ttl_s);
	auth_fails_local(f, "198.51.100.1", "alice@x.test", &c);
	cr_assert_eq(c.addr, 0);
	cr_assert_eq(c.user, 0);
	cr_assert_eq(auth_fails_read(f, "192.0.2.1", "bob@x.test", NULL, NULL),
		     0);
	auth_fails_free(f);
}

/* Ten thousand addresses through a table of 64: bounded, and the latest
 * is counted. */
Test(auth_fails, table_is_bounded)
{
	struct auth_fails *f = auth_fails_new(redis, 300, 64);
	struct auth_fails_count c;
	char addr[64];

	cr_assert_not_null(f);
	for (int i = 0; i < 10000; i++) {
		snprintf(addr, sizeof(addr), "10.%d.%d.%d", i >> 16,
			 (i >> 8) & 255, i & 255);
		auth_fails_add(f, addr, "bob@x.test", NULL, NULL);
		auth_fails_local(f, addr, "bob@x.test", &c);
		cr_assert_eq(c.addr, 1, "%s", addr);
	}
	auth_fails_free(f);
}

Test(auth_fails, redis_answer_raises_the_counts)
{
	redisReply n_addr = {.type = REDIS_REPLY_INTEGER, .integer = 7};
	redisReply ttl_addr = {.type = REDIS_REPLY_INTEGER, .integer = 120};
	redisReply n_user = {.type = REDIS_REPLY_INTEGER, .integer = 1};
	redisReply ttl_user = {.type = REDIS_REPLY_INTEGER, .integer = 200};
	redisReply *el[4] = {&n_addr, &ttl_addr, &n_user, &ttl_user};
	redisReply r = {
	    .type = REDIS_REPLY_ARRAY, .elements = 4, .element = el};
	struct auth_fails_count c = {.addr = 2, .user = 3, .addr_ttl_s = 10};

	auth_fails_merge(&r, &c);
	cr_assert_eq(c.addr, 7);
	cr_assert_eq(c.addr_ttl_s, 120);
	cr_assert_eq(c.user, 3); /* ours was higher */
	auth_fails_merge(NULL, &c);
	cr_assert_eq(c.addr, 7);
	r.elements = 2;
	auth_fails_merge(&r, &c);
	cr_assert_eq(c.addr, 7);
}
