/* The cluster-wide node settings (node/config/config.h): checked by the
 * INI's own setters, applied under the INI (its keys win), routes
 * replaced per domain, a bad one refused whole. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../node/config/config.h"

static char dir[64], ini[128];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ms-settings-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(ini, sizeof(ini), "%s/node.ini", dir);
}

static void
teardown(void)
{
	unlink(ini);
	rmdir(dir);
}

TestSuite(settings, .init = setup, .fini = teardown);

static struct node_config *
load(const char *text, const struct node_setting *set, size_t n, char *err,
     size_t errlen)
{
	FILE *f = fopen(ini, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"[node]\nname = n1\nredis = 127.0.0.1:6379\nstore = %s\n"
		"spool = %s\n%s\n[listen]\nsmtp = 127.0.0.1:2525\n",
		dir, dir, text);
	fclose(f);
	return node_config_load(ini, set, n, err, errlen);
}

#define S(k, v)                                                                \
	{                                                                      \
		(char *)(k), (char *)(v)                                       \
	}

Test(settings, check_takes_the_ini_bounds)
{
	char err[1024];
	cr_expect_eq(
	    node_setting_check("max_recipients", "5", err, sizeof(err)), 0,
	    "%s", err);
	cr_expect_eq(node_setting_check("route:partner.example", "10.1.2.3:25",
					err, sizeof(err)),
		     0, "%s", err);
	cr_expect_eq(node_setting_check("relay_networks", "", err, sizeof(err)),
		     0, "%s", err);

	static const struct {
		const char *key, *value, *why;
	} bad[] = {
	    {"max_recipients", "0",
	     "max_recipients: \"0\" is not a number in "
	     "1..100000"},
	    {"max_message_size", "1k", "is not a size in bytes"},
	    {"smtp_tls", "maybe", "is not may, encrypt or verify"},
	    {"proxy_trusted", "300.0.0.1", "proxy_trusted"},
	    {"relayhost", "nohost", "HOST:PORT"},
	    {"route:", "10.1.2.3:25", "bad domain"},
	    {"spool", "/tmp", "unknown key \"spool\""},
	    {"name", "x", "unknown key \"name\""},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		err[0] = '\0';
		cr_expect_eq(node_setting_check(bad[i].key, bad[i].value, err,
						sizeof(err)),
			     -1, "%s accepted", bad[i].key);
		cr_expect(strstr(err, bad[i].why) != NULL,
			  "%s: want \"%s\" in \"%s\"", bad[i].key, bad[i].why,
			  err);
		cr_expect(strncmp(err, "cluster setting: ", 17) == 0, "%s",
			  err);
	}
	cr_expect(strstr(node_setting_keys(), "max_recipients, ") != NULL);
	cr_expect(strstr(node_setting_keys(), "route:DOMAIN") != NULL);
}

Test(settings, under_the_ini)
{
	char err[2048];
	const struct node_setting set[] = {
	    S("max_recipients", "7"),
	    S("max_message_size", "100000"),
	    S("route:a.example", "10.0.0.1:25"),
	    S("route:b.example", "10.0.0.2:25"),
	};
	struct node_config *c =
	    load("max_recipients = 3\n[route]\nB.example = 10.0.0.9:2525\n",
		 set, 4, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_expect_eq(c->max_recipients, 3, "the INI wins");
	cr_expect_eq(c->max_message_size, 100000);
	cr_expect_eq(c->msg_max, 100000);
	cr_expect_eq(c->nroutes, 2, "b.example replaced, not added");
	cr_expect_str_eq(node_route_find(c, "a.example")->host, "10.0.0.1");
	cr_expect_str_eq(node_route_find(c, "b.example")->host, "10.0.0.9");
	cr_expect_eq(node_route_find(c, "b.example")->port, 2525);
	free(c);
}

Test(settings, a_bad_one_refuses_the_whole_config)
{
	char err[2048];
	const struct node_setting set[] = {
	    S("max_recipients", "7"),
	    S("max_recipients_typo", "1"),
	};
	cr_expect_null(load("", set, 2, err, sizeof(err)));
	cr_expect(strstr(err, "cluster setting: unknown key "
			      "\"max_recipients_typo\"") != NULL,
		  "%s", err);

	/* Valid alone, invalid with this INI: refused by the INI's own
	 * cross-checks. */
	const struct node_setting retry[] = {S("queue_retry_min_s", "7200")};
	cr_expect_null(
	    load("queue_retry_max_s = 3600\n", retry, 1, err, sizeof(err)));
	cr_expect(strstr(err, "queue_retry_max_s is below") != NULL, "%s", err);
}

Test(settings, an_ini_error_names_file_line_and_key)
{
	char err[2048], want[200];
	cr_expect_null(
	    load("max_recipients = banana\n", NULL, 0, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:6: max_recipients: ", ini);
	cr_expect(strstr(err, want) != NULL, "want %s in %s", want, err);
}
