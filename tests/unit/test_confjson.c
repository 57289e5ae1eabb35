/* node/config/confjson: the config document (export, import, snapshots)
 * and common/fdio's atomic file replacement under it. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/fdio.h"
#include "../../node/config/confjson.h"

static char dir[64], path[128];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_confjson.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/config.json", dir);
}

static void
teardown(void)
{
	unlink(path);
	rmdir(dir);
}

static void
write_text(const char *text)
{
	cr_assert_eq(fd_replace_file(path, text, strlen(text)), 0);
}

/* What a walk saw, one line per entry. */
static char seen[1024];

static int
see_domain(void *arg, const char *d)
{
	(void)arg;
	snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "d %s\n", d);
	return 0;
}

static int
see_user(void *arg, const char *a, const char *hash, uint64_t quota)
{
	(void)arg;
	snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "u %s %s", a,
		 hash ? hash : "-");
	if (quota)
		snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen),
			 " q%" PRIu64, quota);
	snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "\n");
	return 0;
}

static int
see_alias(void *arg, const char *a, const char *const *t, size_t n)
{
	(void)arg;
	snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "a %s", a);
	for (size_t i = 0; i < n; i++)
		snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen),
			 " %s", t[i]);
	snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "\n");
	return 0;
}

static int
see_setting(void *arg, const char *k, const char *v)
{
	(void)arg;
	snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "s %s=%s\n",
		 k, v);
	return 0;
}

static const struct confjson_visitor see = {see_domain, see_user, see_alias,
					    see_setting};

/* Writes and loads back; returns what a walk saw. */
static struct confjson *
load(void)
{
	char err[256];
	struct confjson *doc = confjson_load(path, err, sizeof(err));
	cr_assert_not_null(doc, "%s", err);
	seen[0] = '\0';
	cr_assert_eq(confjson_walk(doc, &see, NULL), 0);
	return doc;
}

Test(confjson, round_trip, .init = setup, .fini = teardown)
{
	struct confjson_writer w;
	const char *targets[] = {"a@example.test", "b@example.test"};
	struct confjson *doc;
	struct stat st;

	confjson_writer_init(&w, 42);
	cr_assert_eq(confjson_write_domain(&w, "example.test"), 0);
	cr_assert_eq(confjson_write_domain(&w, "other.test"), 0);
	cr_assert_eq(confjson_write_user(&w, "a@example.test", "$y$h\"x\\", 0),
		     0);
	cr_assert_eq(
	    confjson_write_user(&w, "b@example.test", NULL, 5368709120), 0);
	cr_assert_eq(confjson_write_alias(&w, "t@example.test", targets, 2), 0);
	cr_assert_eq(confjson_write_setting(&w, "max_recipients", "5"), 0);
	cr_assert_eq(
	    confjson_write_setting(&w, "proxy_trusted", "10.0.0.0/8, ::1"), 0);
	/* Out of the document's order. */
	cr_assert_eq(confjson_write_user(&w, "c@example.test", NULL, 0), -1);
	cr_assert_eq(confjson_writer_save(&w, path), 0);
	confjson_writer_free(&w);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "holds hashes: 0600");

	doc = load();
	cr_assert_eq(confjson_generation(doc), 42);
	cr_assert_str_eq(seen,
			 "d example.test\n"
			 "d other.test\n"
			 "u a@example.test $y$h\"x\\\n"
			 "u b@example.test - q5368709120\n"
			 "a t@example.test a@example.test b@example.test\n"
			 "s max_recipients=5\n"
			 "s proxy_trusted=10.0.0.0/8, ::1\n");
	confjson_free(doc);
}

Test(confjson, empty_sections, .init = setup, .fini = teardown)
{
	struct confjson_writer w;
	const char *t[] = {"a@x.test"};
	struct confjson *doc;

	confjson_writer_init(&w, 0); /* nothing at all: a wiped config */
	cr_assert_eq(confjson_writer_save(&w, path), 0);
	confjson_writer_free(&w);
	doc = load();
	cr_assert_str_eq(seen, "");
	confjson_free(doc);

	confjson_writer_init(&w, 3); /* an alias only */
	cr_assert_eq(confjson_write_alias(&w, "b@x.test", t, 1), 0);
	cr_assert_eq(confjson_writer_save(&w, path), 0);
	confjson_writer_free(&w);
	doc = load();
	cr_assert_str_eq(seen, "a b@x.test a@x.test\n");
	confjson_free(doc);
}

static int
stop_at_user(void *arg, const char *a, const char *hash, uint64_t quota)
{
	(void)arg;
	(void)a;
	(void)hash;
	(void)quota;
	return 7;
}

Test(confjson, walk_stops_at_nonzero, .init = setup, .fini = teardown)
{
	/* No setting visitor: settings are skipped. */
	const struct confjson_visitor v = {see_domain, stop_at_user, see_alias,
					   NULL};
	char err[256];
	struct confjson *doc;

	write_text("{\"format\":\"mailswitch-config\",\"version\":1,"
		   "\"generation\":0,\"domains\":[\"x.test\"],"
		   "\"users\":[{\"address\":\"u@x.test\",\"password\":null}],"
		   "\"aliases\":[]}");
	doc = confjson_load(path, err, sizeof(err));
	cr_assert_not_null(doc, "%s", err);
	seen[0] = '\0';
	cr_assert_eq(confjson_walk(doc, &v, NULL), 7);
	cr_assert_str_eq(seen, "d x.test\n");
	confjson_free(doc);
}

Test(confjson, refuses_bad_documents, .init = setup, .fini = teardown)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
	    {"[]", "not a JSON object"},
	    {"{\"format\":\"other\",\"version\":1,\"generation\":0,"
	     "\"domains\":[],\"users\":[],\"aliases\":[]}",
	     "\"format\""},
	    {"{\"format\":\"mailswitch-config\",\"version\":2,\"generation\":0,"
	     "\"domains\":[],\"users\":[],\"aliases\":[]}",
	     "\"version\" is not 1"},
	    {"{\"format\":\"mailswitch-config\",\"version\":1,\"generation\":-"
	     "1,"
	     "\"domains\":[],\"users\":[],\"aliases\":[]}",
	     "\"generation\""},
	    {"{\"format\":\"mailswitch-config\",\"version\":1,\"generation\":0,"
	     "\"domains\":[1],\"users\":[],\"aliases\":[]}",
	     "domains[0] is not a string"},
	    {"{\"format\":\"mailswitch-config\",\"version\":1,\"generation\":0,"
	     "\"domains\":[],\"users\":[{\"address\":\"a@b\"}],\"aliases\":[]}",
	     "users[0] is not"},
	    {"{\"format\":\"mailswitch-config\",\"version\":1,\"generation\":0,"
	     "\"domains\":[],\"users\":[],"
	     "\"aliases\":[{\"address\":\"a@b\",\"targets\":[]}]}",
	     "aliases[0] is not"},
	    {"{\"format\":\"mailswitch-config\",\"version\":1,\"generation\":0,"
	     "\"domains\":[],\"users\":[],\"aliases\":[],\"settingz\":{}}",
	     "unknown member \"settingz\""},
	    {"{\"format\":\"mailswitch-config\",\"version\":1,\"generation\":0,"
	     "\"domains\":[],\"users\":[{\"address\":\"a@b\","
	     "\"password\":null,\"quota\":0}],\"aliases\":[]}",
	     "users[0] is not"},
	    {"{\"format\":\"mailswitch-config\",\"version\":1,\"generation\":0,"
	     "\"domains\":[],\"users\":[{\"address\":\"a@b\","
	     "\"password\":null,\"quota\":\"1M\"}],\"aliases\":[]}",
	     "users[0] is not"},
	    {"{\"format\":\"mailswitch-config\",\"format\":\"mailswitch-"
	     "config\","
	     "\"version\":1,\"generation\":0,\"domains\":[],\"users\":[],"
	     "\"aliases\":[]}",
	     "duplicate"},
	    {"{\"format\":", "config.json:1:"},
	    {"{\"format\":\"mailswitch-config\",\"version\":1,\"generation\":0,"
	     "\"domains\":[],\"users\":[],\"aliases\":[],\"settings\":[]}",
	     "\"settings\" is not an object"},
	    {"{\"format\":\"mailswitch-config\",\"version\":1,\"generation\":0,"
	     "\"domains\":[],\"users\":[],\"aliases\":[],"
	     "\"settings\":{\"max_recipients\":5}}",
	     "settings.max_recipients is not a string"},
	};
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_text(bad[i].text);
		err[0] = '\0';
		cr_assert_null(confjson_load(path, err, sizeof(err)), "%s",
			       bad[i].text);
		cr_assert_not_null(strstr(err, bad[i].why), "%s: got \"%s\"",
				   bad[i].text, err);
	}
}

Test(fdio, replace_file_leaves_no_temporary, .init = setup, .fini = teardown)
{
	struct dirent *e;
	int n = 0;
	char buf[16] = {0};
	FILE *f;

	write_text("first");
	write_text("second");
	f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	cr_assert_str_eq(buf, "second");
	DIR *d = opendir(dir);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	cr_assert_eq(n, 1, "only the file itself");
	cr_assert_eq(fd_replace_file("/nonexistent/dir/file", "x", 1), -1);
}
