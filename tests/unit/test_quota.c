/* node/store/quota.c: limits as mailctl takes them, the maildirsize
 * text, usage kept by the store's own changes (APPEND, COPY, expunge,
 * a folder deleted) and recounted from the store when the file calls
 * for it, and the verdicts SMTP and IMAP act on. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../node/store/maildir.h"
#include "../../node/store/quota.h"
#include "maildir_fixture.h"

static char root[256], user[PATH_MAX];

static void
setup(void)
{
	fixture_tree(root, sizeof(root), "quota", user, sizeof(user));
}

static void
teardown(void)
{
	rmtree(root);
}

TestSuite(quota, .init = setup, .fini = teardown);

Test(quota, parse_limit)
{
	uint64_t v;

	cr_assert_eq(quota_parse_limit("1", &v), 0);
	cr_assert_eq(v, 1);
	cr_assert_eq(quota_parse_limit("100M", &v), 0);
	cr_assert_eq(v, 100ull << 20);
	cr_assert_eq(quota_parse_limit("2g", &v), 0);
	cr_assert_eq(v, 2ull << 30);
	cr_assert_eq(quota_parse_limit("3T", &v), 0);
	cr_assert_eq(v, 3ull << 40);
	const char *bad[] = {"",
			     "0",
			     "0M",
			     "M",
			     "1MB",
			     "1.5G",
			     "-1",
			     " 1",
			     "1 ",
			     "x",
			     "99999999999999999999",
			     "5000000T"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(quota_parse_limit(bad[i], &v), -1, "%s", bad[i]);
}

static int
parse(const char *text, uint64_t limit, struct quota_usage *u)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", text);
	return quota_parse(buf, limit, u);
}

Test(quota, parse_text)
{
	struct quota_usage u;

	cr_assert_eq(parse("1000S\n300 2\n-100 -1\n", 1000, &u), 0);
	cr_assert_eq(u.bytes, 200);
	cr_assert_eq(u.count, 1);
	cr_assert_eq(parse("1000S,10C\n5 1\n", 1000, &u), 0); /* Dovecot's */
	cr_assert_eq(parse("0S\n", 0, &u), 0);
	cr_assert_eq(u.bytes, 0);
	/* Each a recount: another limit, torn, negative, not numbers. */
	cr_assert_eq(parse("1000S\n5 1\n", 2000, &u), 1);
	cr_assert_eq(parse("1000S\n5 1", 1000, &u), 1);
	cr_assert_eq(parse("1000S\n-5 -1\n", 1000, &u), 1);
	cr_assert_eq(parse("1000S\n5\n", 1000, &u), 1);
	cr_assert_eq(parse("1000X\n", 1000, &u), 1);
	cr_assert_eq(parse("", 1000, &u), 1);
	cr_assert_eq(parse("1000S\n4611686018427387904 1\n4611686018427387904 "
			   "1\n",
			   1000, &u),
		     1);
}

/* A message of len bytes APPENDed to dir. */
static void
add_message(const char *dir, size_t len)
{
	char *data = malloc(len);
	uint32_t uv, uid;
	memset(data, 'x', len);
	cr_assert_eq(
	    maildir_append(dir, "host", data, len, "", 0, NULL, &uv, &uid), 0);
	free(data);
}

static struct quota_usage
usage(uint64_t limit)
{
	struct quota_usage u;
	cr_assert_eq(quota_get(user, limit, &u), 0, "%s", strerror(errno));
	return u;
}

Test(quota, kept_by_changes_and_recounted)
{
	char folder[PATH_MAX], path[PATH_MAX];
	struct maildir_list l;
	struct quota_usage u;

	cr_assert_eq(usage(1000).bytes, 0); /* counted: the file is made */
	add_message(user, 100);
	add_message(user, 50);
	u = usage(1000);
	cr_assert_eq(u.bytes, 150);
	cr_assert_eq(u.count, 2);
	/* A copy into a folder counts; its expunge gives it back. */
	snprintf(folder, sizeof(folder), "%s/.Archive", user);
	mkmaildir(folder);
	cr_assert_eq(maildir_scan(user, &l), 0);
	uint32_t uv, uids[2];
	cr_assert_eq(
	    maildir_copy(user, l.msg, 2, folder, "host", NULL, &uv, uids), 0);
	cr_assert_eq(usage(1000).bytes, 300);
	cr_assert_eq(maildir_expunge(user, &l.msg[0]), 0);
	cr_assert_eq(maildir_expunge(user, &l.msg[0]), 0); /* once only */
	u = usage(1000);
	cr_assert_eq(u.bytes, 200);
	cr_assert_eq(u.count, 3);
	maildir_list_free(&l);
	/* A file removed by hand: the file says 200 until a recount. */
	cr_assert_eq(maildir_scan(folder, &l), 0);
	snprintf(path, sizeof(path), "%s/cur/%s", folder, l.msg[0].name);
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(usage(1000).bytes, 200);
	cr_assert_eq(quota_recount(user, 1000, &u), 0);
	cr_assert_eq(u.bytes, 100);
	cr_assert_eq(usage(1000).bytes, 100);
	maildir_list_free(&l);
	/* Another limit recounts; so does a folder deleted. */
	cr_assert_eq(usage(5000).bytes, 100);
	cr_assert_eq(maildir_folder_delete(user, "Archive"), 0);
	cr_assert_eq(usage(5000).bytes, 50);
	/* New mail in new/ (delivery) counts by its S=. */
	deliver(user, "new", "1.M1P1Q1.host,S=70", "y");
	cr_assert_eq(quota_recount(user, 5000, &u), 0);
	cr_assert_eq(u.bytes, 120);
	cr_assert_eq(u.count, 2);
}

Test(quota, verdicts)
{
	char nobody[PATH_MAX];

	cr_assert_eq(quota_check(user, 0, 1000000), QUOTA_OK); /* no limit */
	add_message(user, 100);
	cr_assert_eq(quota_check(user, 200, 100), QUOTA_OK);
	cr_assert_eq(quota_check(user, 200, 101), QUOTA_EXCEED);
	cr_assert_eq(quota_check(user, 100, 1), QUOTA_FULL);
	cr_assert_eq(quota_check(user, 100, 0), QUOTA_FULL);
	/* A user without mail yet uses nothing, and gets no directory. */
	snprintf(nobody, sizeof(nobody), "%s/nobody", root);
	cr_assert_eq(quota_check(nobody, 10, 10), QUOTA_OK);
	cr_assert_eq(access(nobody, F_OK), -1);
	/* Usage unknown (the Maildir unreadable) never refuses. */
	cr_assert_eq(chmod(user, 0), 0);
	if (geteuid() != 0)
		cr_assert_eq(quota_check(user, 100, 1), QUOTA_OK);
	cr_assert_eq(chmod(user, 0700), 0);
}
