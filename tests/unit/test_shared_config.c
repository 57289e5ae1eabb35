/* The settings of balancer pairs: redis_sentinels lists (common/redis.c)
 * and the [lbd] keys name, redis_sentinels, redis_master, redis_password
 * with their errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../balancer/config.h"
#include "../../common/redis.h"

static char path[64];

static struct lbd_config *
load(const char *text, char *err, size_t errlen)
{
	snprintf(path, sizeof(path), "/tmp/lbd-shared-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	struct lbd_config *c = config_load(path, err, errlen);
	unlink(path);
	return c;
}

#define HEAD "[lbd]\ncontrol = /tmp/x.sock\n"

Test(sentinels, parse_lists)
{
	struct redis_opts o;

	memset(&o, 0, sizeof(o));
	cr_assert_eq(redis_sentinels_parse("10.0.0.1:26380, [::1]:5,h", &o), 0);
	cr_expect_eq(o.nsentinels, 3);
	cr_expect_str_eq(o.sentinels[0].host, "10.0.0.1");
	cr_expect_eq(o.sentinels[0].port, 26380);
	cr_expect_str_eq(o.sentinels[1].host, "::1");
	cr_expect_eq(o.sentinels[1].port, 5);
	cr_expect_str_eq(o.sentinels[2].host, "h");
	cr_expect_eq(o.sentinels[2].port, 26379);
	cr_expect_str_eq(o.host, ""); /* the rest of opts is left alone */
}

Test(sentinels, bad_lists)
{
	static const char *const bad[] = {
	    "", ",", "h:0", "h:99999", "h:x", "::1:5", "a,b,c,d,e,f,g,h,i",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct redis_opts o;
		memset(&o, 0, sizeof(o));
		cr_expect_eq(redis_sentinels_parse(bad[i], &o), -1,
			     "accepted \"%s\"", bad[i]);
	}
}

Test(config, pair_keys)
{
	char err[1024];
	struct lbd_config *c =
	    load(HEAD "name = lb1\nredis_sentinels = 127.0.0.1:26379,h2\n"
		      "redis_master = mymaster\nredis_password = pw\n",
		 err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_expect_str_eq(c->set.name, "lb1");
	cr_expect_str_eq(c->set.redis_sentinels, "127.0.0.1:26379,h2");
	cr_expect_str_eq(c->set.redis_master, "mymaster");
	cr_expect_str_eq(c->set.redis_password, "pw");
	config_free(c);
}

Test(config, name_defaults_to_the_host_name)
{
	char err[1024], host[256] = "";
	struct lbd_config *c = load(HEAD, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	gethostname(host, sizeof(host) - 1);
	if (host[0] != '\0' && strlen(host) < sizeof(c->set.name))
		cr_expect_str_eq(c->set.name, host);
	config_free(c);
}

Test(config, pair_key_errors)
{
	static const char *const bad[][2] = {
	    {HEAD "redis_sentinels = 127.0.0.1:26379\n", "go together"},
	    {HEAD "redis_master = m\n", "go together"},
	    {HEAD "redis_sentinels = h:0\nredis_master = m\n", "HOST:PORT"},
	    {HEAD "name = lb 1\n", "no blanks"},
	    {HEAD "name = a:b\n", "no blanks"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[4096];
		struct lbd_config *c = load(bad[i][0], err, sizeof(err));
		cr_expect_null(c, "accepted:\n%s", bad[i][0]);
		if (c == NULL)
			cr_expect(strstr(err, bad[i][1]) != NULL,
				  "want \"%s\" in: %s", bad[i][1], err);
		else
			config_free(c);
	}
}
