/* node/store/maildir_uid.c: UIDs by the lock-file mechanism, in arrival
 * order, stable, with concurrent scanners, interleaved with APPEND's, from
 * the lease's counter, and rebuilt when the mark is lost. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../node/store/maildir.h"
#include "../../node/store/maildir_int.h"
#include "maildir_fixture.h"

static char root[256], user[PATH_MAX];

static void
setup(void)
{
	fixture_tree(root, sizeof(root), "uid", user, sizeof(user));
}

static void
teardown(void)
{
	rmtree(root);
}

TestSuite(maildir_uid, .init = setup, .fini = teardown);

Test(maildir_uid, uids_in_arrival_order)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/box", root);
	mkmaildir(dir);
	/* Names out of order, mtimes in order: arrival is mtime. */
	deliver(dir, "new", "300.c", "Subject: first\r\n\r\nx\r\n");
	deliver(dir, "new", "100.a", "Subject: second\r\n\r\nxx\r\n");
	deliver(dir, "new", "200.b,S=99", "Subject: third\r\n\r\nxxx\r\n");
	set_mtime(dir, "new", "300.c", 1000);
	set_mtime(dir, "new", "100.a", 2000);
	set_mtime(dir, "new", "200.b,S=99", 3000);

	struct maildir_list l;
	cr_assert_eq(maildir_assign(dir, NULL, &l), 0, "%s", strerror(errno));
	cr_assert_eq(l.n, 3);
	cr_assert_eq(l.uidnext, 4);
	cr_assert_neq(l.uidvalidity, 0);
	cr_assert_str_eq(l.msg[0].name, "300.c,U=1:2,");
	cr_assert_str_eq(l.msg[1].name, "100.a,U=2:2,");
	cr_assert_str_eq(l.msg[2].name, "200.b,S=99,U=3:2,");
	cr_assert_eq(l.msg[0].size, strlen("Subject: first\r\n\r\nx\r\n"));
	cr_assert_eq(l.msg[2].size, 99);
	cr_assert_eq(count_files(dir, "new"), 0);
	cr_assert_eq(count_files(dir, "cur"), 3);
	cr_assert_eq(maildir_unseen(&l), 3);
	cr_assert_eq(maildir_find(&l, 2), &l.msg[1]);
	cr_assert_null(maildir_find(&l, 4));
	maildir_list_free(&l);
}

Test(maildir_uid, stable_across_scans)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/box", root);
	mkmaildir(dir);
	deliver(dir, "new", "1.a", "a");
	deliver(dir, "new", "2.b", "b");
	struct maildir_list l;
	cr_assert_eq(maildir_assign(dir, NULL, &l), 0);
	uint32_t validity = l.uidvalidity;
	maildir_list_free(&l);

	cr_assert_eq(maildir_assign(dir, NULL, &l), 0);
	cr_assert_eq(l.n, 2);
	cr_assert_eq(by_base(&l, "1.a")->uid, 1);
	cr_assert_eq(by_base(&l, "2.b")->uid, 2);
	cr_assert_eq(l.uidvalidity, validity);
	maildir_list_free(&l);

	/* New ones follow; the highest UID expunged is never given again. */
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/cur/2.b,U=2:2,", dir);
	cr_assert_eq(unlink(p), 0);
	deliver(dir, "new", "3.c", "c");
	cr_assert_eq(maildir_assign(dir, NULL, &l), 0);
	cr_assert_eq(l.n, 2);
	cr_assert_eq(by_base(&l, "3.c")->uid, 3);
	cr_assert_eq(l.uidnext, 4);
	maildir_list_free(&l);

	/* The mark lost: reconciled from the file names, UIDVALIDITY
	 * kept. */
	snprintf(p, sizeof(p), "%s/mailswitch-uidnext", dir);
	cr_assert_eq(unlink(p), 0);
	deliver(dir, "new", "4.d", "d");
	cr_assert_eq(maildir_assign(dir, NULL, &l), 0);
	cr_assert_eq(by_base(&l, "4.d")->uid, 4);
	cr_assert_eq(l.uidvalidity, validity);
	maildir_list_free(&l);

	/* A mark ahead of the files (UIDs reserved by a node that died
	 * before renaming) is kept. */
	FILE *f = fopen(p, "w");
	fputs("10\n", f);
	fclose(f);
	deliver(dir, "new", "5.e", "e");
	cr_assert_eq(maildir_assign(dir, NULL, &l), 0);
	cr_assert_eq(by_base(&l, "5.e")->uid, 10);
	cr_assert_eq(l.uidnext, 11);
	maildir_list_free(&l);
}

Test(maildir_uid, flags_and_cur_without_uid)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/box", root);
	mkmaildir(dir);
	deliver(dir, "cur", "1.a,U=5:2,FS", "a");
	deliver(dir, "cur", "2.b:2,RS", "b"); /* another program's */
	deliver(dir, "new", "3.c", "c");
	set_mtime(dir, "new", "3.c", 1000);
	struct maildir_list l;
	cr_assert_eq(maildir_assign(dir, NULL, &l), 0);
	cr_assert_eq(l.n, 3);
	cr_assert_str_eq(l.msg[0].name, "1.a,U=5:2,FS");
	cr_assert_str_eq(l.msg[0].flags, "FS");
	cr_assert_str_eq(l.msg[1].name, "3.c,U=6:2,");
	cr_assert_str_eq(l.msg[2].name, "2.b,U=7:2,RS");
	cr_assert_str_eq(l.msg[2].flags, "RS");
	cr_assert_eq(maildir_unseen(&l), 1);
	cr_assert_eq(l.uidnext, 8);
	maildir_list_free(&l);
}

Test(maildir_uid, missing_maildir)
{
	struct maildir_list l;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/nobody", root);
	cr_assert_eq(maildir_assign(dir, NULL, &l), -1);
	cr_assert_eq(errno, ENOENT);
	cr_assert_eq(l.n, 0);
	maildir_list_free(&l);
}

/* Two processes scan over and over while messages arrive: every message
 * gets one UID, the same in both, unique, in arrival order. */
#define RACE_MSGS 150
#define RACE_SCANNERS 2

static void
scanner(const char *dir, const char *log)
{
	FILE *f = fopen(log, "w");
	if (f == NULL)
		_exit(2);
	for (int round = 0; round < 400; round++) {
		struct maildir_list l;
		if (maildir_assign(dir, NULL, &l) < 0)
			_exit(3);
		for (size_t i = 0; i < l.n; i++)
			fprintf(f, "%u %.6s %u\n", l.uidvalidity, l.msg[i].name,
				l.msg[i].uid);
		uint32_t last = 0;
		for (size_t i = 0; i < l.n; i++) {
			if (l.msg[i].uid <= last)
				_exit(4); /* not strictly increasing */
			last = l.msg[i].uid;
		}
		maildir_list_free(&l);
		if (round % 8 == 0)
			usleep(500);
	}
	fclose(f);
	_exit(0);
}

Test(maildir_uid, concurrent_scanners, .timeout = 60)
{
	char dir[PATH_MAX], logs[RACE_SCANNERS][PATH_MAX];
	pid_t pids[RACE_SCANNERS];
	snprintf(dir, sizeof(dir), "%s/box", root);
	mkmaildir(dir);
	for (int i = 0; i < RACE_SCANNERS; i++) {
		snprintf(logs[i], sizeof(logs[i]), "%s/scan%d.log", root, i);
		pids[i] = fork();
		cr_assert_geq(pids[i], 0);
		if (pids[i] == 0)
			scanner(dir, logs[i]);
	}
	for (int m = 0; m < RACE_MSGS; m++) {
		char name[32];
		snprintf(name, sizeof(name), "%06d.msg", m);
		deliver(dir, "new", name, "Subject: race\r\n\r\nbody\r\n");
		if (m % 10 == 0)
			usleep(1000);
	}
	for (int i = 0; i < RACE_SCANNERS; i++) {
		int st;
		cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			  "scanner %d: status %d", i, st);
	}
	struct maildir_list l;
	cr_assert_eq(maildir_assign(dir, NULL, &l), 0);
	cr_assert_eq(l.n, RACE_MSGS);
	/* Exactly 1..N, message m has UID m+1 (arrival order). */
	for (size_t i = 0; i < l.n; i++) {
		char want[32];
		snprintf(want, sizeof(want), "%06zu.msg,U=%zu:2,", i, i + 1);
		cr_assert_str_eq(l.msg[i].name, want);
	}
	/* Whatever each scanner saw agrees with the end state. */
	for (int i = 0; i < RACE_SCANNERS; i++) {
		FILE *f = fopen(logs[i], "r");
		cr_assert_not_null(f);
		unsigned validity, uid;
		char base[8];
		size_t lines = 0;
		while (fscanf(f, "%u %6s %u", &validity, base, &uid) == 3) {
			lines++;
			cr_assert_eq(validity, l.uidvalidity);
			cr_assert_eq((unsigned)atoi(base) + 1, uid,
				     "scanner %d saw %s as %u", i, base, uid);
		}
		fclose(f);
		cr_assert_gt(lines, 0);
	}
	maildir_list_free(&l);
}

Test(maildir_uid, uids_interleave)
{
	cr_assert_eq(maildir_folder_create(user, "Other"), 0);
	char other[PATH_MAX];
	cr_assert_eq(maildir_mailbox_path(user, "Other", other, sizeof(other)),
		     0);
	append(other, "o1\r\n", "S", 500);
	append(other, "o2\r\n", "", 600);
	struct maildir_list ol;
	assign_all(other, &ol);

	uint32_t a = append(user, "x\r\n", "", 0);
	deliver_new(user, "100.new1", "n1\r\n");
	struct maildir_list l;
	assign_all(user, &l);
	uint32_t n1 = l.msg[l.n - 1].uid;
	maildir_list_free(&l);
	uint32_t b = append(user, "y\r\n", "", 0);
	uint32_t v, uids[2];
	cr_assert_eq(
	    maildir_copy(other, ol.msg, 2, user, "node2", NULL, &v, uids), 0);
	deliver_new(user, "101.new2", "n2\r\n");
	assign_all(user, &l);
	uint32_t n2 = l.msg[l.n - 1].uid;
	cr_assert_eq(a, 1);
	cr_assert_eq(n1, 2);
	cr_assert_eq(b, 3);
	cr_assert_eq(uids[0], 4);
	cr_assert_eq(uids[1], 5);
	cr_assert_eq(n2, 6);
	cr_assert_eq(l.n, 6);
	for (size_t i = 0; i < l.n; i++)
		cr_assert_eq(l.msg[i].uid, i + 1);
	/* the copies keep flags and mtime */
	cr_assert_str_eq(maildir_find(&l, 4)->flags, "S");
	time_t t;
	cr_assert_eq(maildir_internaldate(user, maildir_find(&l, 4), &t), 0);
	cr_assert_eq(t, 500);
	cr_assert_eq(maildir_internaldate(user, maildir_find(&l, 5), &t), 0);
	cr_assert_eq(t, 600);
	cr_assert(read_mark(user) >= 7);
	maildir_list_free(&l);
	maildir_list_free(&ol);
}

Test(maildir_uid, scan_only_lists_what_has_a_uid)
{
	append(user, "Subject: a\r\n\r\nx\r\n", "", 0);
	deliver_new(user, "100.new", "Subject: n\r\n\r\ny\r\n");
	struct maildir_list l;
	cr_assert_eq(maildir_scan(user, &l), 0);
	cr_assert_eq(l.n, 1);
	cr_assert_eq(l.pending, 1);
	cr_assert_eq(count_files(user, "new"), 1);
	maildir_list_free(&l);
	assign_all(user, &l);
	cr_assert_eq(l.n, 2);
	cr_assert_eq(l.pending, 0);
	cr_assert_eq(l.msg[1].uid, 2);
	maildir_list_free(&l);
}

/* The counter (Redis) is a floor of its own UIDVALIDITY only, and comes
 * back as the new UIDNEXT. */

Test(maildir_uid, counter_floor)
{
	uint32_t v, uid;
	append(user, "Subject: a\r\n\r\nx\r\n", "", 0);
	struct maildir_list l;
	assign_all(user, &l);
	struct maildir_counter ctr = {l.uidvalidity, 50};
	maildir_list_free(&l);
	cr_assert_eq(maildir_append(user, "h", "x", 1, "", 0, &ctr, &v, &uid),
		     0);
	cr_assert_eq(uid, 50);
	cr_assert_eq(ctr.uidvalidity, v);
	cr_assert_eq(ctr.uidnext, 51);
	struct maildir_counter other = {v + 1, 500};
	cr_assert_eq(maildir_append(user, "h", "x", 1, "", 0, &other, &v, &uid),
		     0);
	cr_assert_eq(uid, 51);
	cr_assert_eq(other.uidnext, 52);
	deliver_new(user, "200.new", "Subject: n\r\n\r\ny\r\n");
	struct maildir_counter high = {v, 90};
	cr_assert_eq(maildir_assign(user, &high, &l), 0);
	cr_assert_eq(l.msg[l.n - 1].uid, 90);
	cr_assert_eq(high.uidnext, 91);
	cr_assert_eq(read_mark(user), 91);
	maildir_list_free(&l);
}

/* APPEND trusts the mark without reading cur/; a lost mark is rebuilt
 * from cur/'s highest UID, so no UID is given twice. */

Test(maildir_uid, lost_mark_rebuilt_from_cur)
{
	char p[PATH_MAX];
	for (int i = 0; i < 3; i++)
		append(user, "Subject: a\r\n\r\nx\r\n", "", 0);
	snprintf(p, sizeof(p), "%s/mailswitch-uidnext", user);
	cr_assert_eq(unlink(p), 0);
	cr_assert_eq(append(user, "Subject: b\r\n\r\nx\r\n", "", 0), 4);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs("garbage\n", f);
	fclose(f);
	cr_assert_eq(append(user, "Subject: c\r\n\r\nx\r\n", "", 0), 5);
	cr_assert_eq(read_mark(user), 6);
}

/* A message holding the highest UID: what arrives after it is not given
 * UID 1 again (maxuid + 1 wrapped once); it waits unlisted and the rest
 * of the mailbox stays listed. */

Test(maildir_uid, highest_uid_does_not_wrap)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/box", root);
	mkmaildir(dir);
	deliver(dir, "cur", "1.a,U=1:2,S", "a");
	deliver(dir, "cur", "2.b,U=4294967295:2,", "b");
	deliver(dir, "new", "3.c", "c");
	struct maildir_list l;
	cr_assert_eq(maildir_assign(dir, NULL, &l), 0, "%s", strerror(errno));
	cr_assert_eq(l.n, 2);
	cr_assert_str_eq(l.msg[0].name, "1.a,U=1:2,S");
	cr_assert_eq(l.msg[1].uid, 4294967295u);
	cr_assert_eq(l.pending, 1);
	cr_assert_eq(l.uidnext, 4294967295u);
	maildir_list_free(&l);
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/new/3.c", dir);
	cr_assert_eq(access(p, F_OK), 0, "the new message was renamed");
}
