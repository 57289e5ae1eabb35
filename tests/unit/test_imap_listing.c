/* node/imap_listing.c: a mailbox listing reused while cur/ and new/ keep
 * their settled mtimes, and taken again after any change. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../node/imap/imap_listing.h"
#include "maildir_fixture.h"

static char root[256];

static void
setup(void)
{
	snprintf(root, sizeof(root), "/tmp/test_imap_listing.XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	fixture_maildir_subdirs(root);
}

static void
teardown(void)
{
	rmtree(root);
}

TestSuite(imap_listing, .init = setup, .fini = teardown);

static void
put(const char *sub, const char *name)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s/%s", root, sub, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0, "%s: %s", p, strerror(errno));
	cr_assert_eq(write(fd, "Subject: x\r\n\r\nhi\r\n", 18), 18);
	close(fd);
}

/* Sets cur/'s and new/'s mtimes `ago` seconds back: settled. */
static void
age(int ago)
{
	char p[PATH_MAX];
	struct timespec now, t[2];
	clock_gettime(CLOCK_REALTIME, &now);
	t[0] = t[1] = (struct timespec){now.tv_sec - ago, 0};
	for (int i = 0; i < 2; i++) {
		snprintf(p, sizeof(p), "%s/%s", root, i ? "new" : "cur");
		cr_assert_eq(utimensat(AT_FDCWD, p, t, 0), 0);
	}
}

static size_t
scan(struct imap_listings *ls)
{
	struct maildir_list l;
	struct timespec cur = {0}, new = {0};
	cr_assert_eq(imap_listing_scan(ls, root, &l, &cur, &new), 0);
	cr_assert_neq(cur.tv_sec, 0);
	size_t n = l.n + l.pending; /* listed, or waiting for a UID */
	for (size_t i = 1; i < l.n; i++)
		cr_assert_lt(l.msg[i - 1].uid, l.msg[i].uid);
	maildir_list_free(&l);
	return n;
}

Test(imap_listing, reused_while_unchanged_and_settled)
{
	struct imap_listings *ls = imap_listings_new();
	put("cur", "1.M1P1.n,U=1:2,");
	put("cur", "2.M1P1.n,U=2:2,");
	cr_assert_eq(scan(ls), 2); /* cur/ just changed: not kept */
	age(10);
	cr_assert_eq(scan(ls), 2); /* settled now: kept */
	/* A file slipped into cur/ with the mtime put back as it was: only
	 * a kept listing misses it, a scan would see it. */
	struct timespec mc;
	cr_assert(imap_mtime(root, "cur", &mc));
	put("cur", "3.M1P1.n,U=3:2,S");
	struct timespec t[2] = {mc, mc};
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/cur", root);
	cr_assert_eq(utimensat(AT_FDCWD, p, t, 0), 0);
	cr_assert_eq(scan(ls), 2);
	/* without the node's listings, always a scan */
	cr_assert_eq(scan(NULL), 3);
	imap_listings_free(ls);
}

Test(imap_listing, any_change_scans_again)
{
	struct imap_listings *ls = imap_listings_new();
	put("cur", "1.M1P1.n,U=1:2,");
	put("cur", "2.M1P1.n,U=2:2,");
	cr_assert_eq(scan(ls), 2);
	age(10);
	cr_assert_eq(scan(ls), 2);
	put("new", "3.M1P1.n"); /* a delivery, waiting for its UID */
	cr_assert_eq(scan(ls), 3);
	age(10);
	cr_assert_eq(scan(ls), 3);
	/* an expunge (by anyone: the listing knows only mtimes) */
	struct maildir_list l;
	struct timespec c, n;
	cr_assert_eq(imap_listing_scan(NULL, root, &l, &c, &n), 0);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/cur/%s", root, l.msg[0].name);
	maildir_list_free(&l);
	cr_assert_eq(unlink(p), 0);
	cr_assert_eq(scan(ls), 2);
	imap_listings_free(ls);
}

Test(imap_listing, not_kept_while_fresh)
{
	struct imap_listings *ls = imap_listings_new();
	put("cur", "1.M1P1.n,U=1:2,");
	age(10);
	cr_assert_eq(scan(ls), 1);
	/* a change within the same second as the last one: the mtime is
	 * too fresh to trust, so the next scan must look again */
	age(0);
	cr_assert_eq(scan(ls), 1);
	put("cur", "2.M1P1.n,U=2:2,");
	age(0);
	cr_assert_eq(scan(ls), 2);
	imap_listings_free(ls);
}
