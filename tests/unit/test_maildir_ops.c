/* node/maildir_ops.c: flags, expunge, APPEND, COPY, folders and
 * subscriptions, and their UIDs interleaved with maildir_scan's. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../node/store/maildir.h"
#include "maildir_fixture.h"

static char root[256], user[PATH_MAX];

static void
setup(void)
{
	snprintf(root, sizeof(root), "/tmp/test_maildir_ops.XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	snprintf(user, sizeof(user), "%s/user", root);
	mkmaildir(user);
}

static void
teardown(void)
{
	rmtree(root);
}

static bool
exists(const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

static uint32_t
append(const char *dir, const char *text, const char *flags, time_t t)
{
	uint32_t v, uid;
	cr_assert_eq(maildir_append(dir, "node1", text, strlen(text), flags, t,
				    NULL, &v, &uid),
		     0, "append: %s", strerror(errno));
	cr_assert_neq(v, 0);
	return uid;
}

static void
deliver_new(const char *dir, const char *name, const char *text)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/new/%s", dir, name);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void
scan(const char *dir, struct maildir_list *l)
{
	cr_assert_eq(maildir_assign(dir, NULL, l), 0, "scan: %s",
		     strerror(errno));
}

static uint32_t
read_mark(const char *dir)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/mailswitch-uidnext", dir);
	FILE *f = fopen(p, "r");
	cr_assert_not_null(f);
	unsigned v = 0;
	cr_assert_eq(fscanf(f, "%u", &v), 1);
	fclose(f);
	return v;
}

TestSuite(maildir_ops, .init = setup, .fini = teardown);

Test(maildir_ops, append_then_scan)
{
	uint32_t u1 = append(user, "Subject: a\r\n\r\nbody\r\n", "SF", 1000);
	uint32_t u2 = append(user, "Subject: b\r\n\r\nx\r\n", "", 0);
	cr_assert_eq(u1, 1);
	cr_assert_eq(u2, 2);
	cr_assert_eq(count_files(user, "tmp"), 0);

	struct maildir_list l;
	scan(user, &l);
	cr_assert_eq(l.n, 2);
	cr_assert_eq(l.uidnext, 3);
	const struct maildir_msg *m = maildir_find(&l, 1);
	cr_assert_not_null(m);
	cr_assert_str_eq(m->flags, "FS");
	cr_assert_eq(m->size, strlen("Subject: a\r\n\r\nbody\r\n"));
	cr_assert_not_null(strstr(m->name, ",S=20,U=1:2,FS"), "%s", m->name);
	time_t t;
	cr_assert_eq(maildir_internaldate(user, m, &t), 0);
	cr_assert_eq(t, 1000);
	cr_assert_eq(maildir_internaldate(user, maildir_find(&l, 2), &t), 0);
	cr_assert(t > time(NULL) - 60);
	cr_assert_eq(maildir_unseen(&l), 1);
	maildir_list_free(&l);
}

Test(maildir_ops, append_errors)
{
	uint32_t v, uid;
	char missing[PATH_MAX];
	snprintf(missing, sizeof(missing), "%s/.nosuch", user);
	cr_assert_eq(
	    maildir_append(missing, "h", "x", 1, "", 0, NULL, &v, &uid), -1);
	cr_assert_eq(errno, ENOENT);
	cr_assert_eq(maildir_append(user, "h", "x", 1, "S1", 0, NULL, &v, &uid),
		     -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(maildir_append(user, "h", "x", 1, "S:", 0, NULL, &v, &uid),
		     -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(count_files(user, "tmp"), 0);
	cr_assert_eq(count_files(user, "cur"), 0);
}

Test(maildir_ops, set_flags_sorted_and_idempotent)
{
	append(user, "m\r\n", "S", 0);
	struct maildir_list l;
	scan(user, &l);
	struct maildir_msg m = l.msg[0];
	maildir_list_free(&l);

	cr_assert_eq(maildir_set_flags(user, &m, "TSRRD"), 0);
	cr_assert_str_eq(m.flags, "DRST");
	cr_assert(strstr(m.name, ":2,DRST") != NULL, "%s", m.name);
	cr_assert(exists(user, "cur") && count_files(user, "cur") == 1);
	cr_assert_eq(maildir_set_flags(user, &m, "SRTD"), 0);
	cr_assert_str_eq(m.flags, "DRST");

	/* a session holding the old name still finds it */
	struct maildir_msg stale = m;
	cr_assert_eq(maildir_set_flags(user, &m, ""), 0);
	cr_assert_eq(maildir_set_flags(user, &stale, "F"), 0);
	cr_assert_str_eq(stale.flags, "F");

	scan(user, &l);
	cr_assert_eq(l.n, 1);
	cr_assert_eq(l.msg[0].uid, m.uid);
	cr_assert_str_eq(l.msg[0].flags, "F");
	maildir_list_free(&l);

	cr_assert_eq(maildir_set_flags(user, &stale, "X1"), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(maildir_expunge(user, &stale), 0);
	cr_assert_eq(maildir_set_flags(user, &stale, "S"), -1);
	cr_assert_eq(errno, ENOENT);
	time_t t;
	cr_assert_eq(maildir_internaldate(user, &stale, &t), -1);
	cr_assert_eq(errno, ENOENT);
}

Test(maildir_ops, expunge)
{
	append(user, "a\r\n", "", 0);
	append(user, "b\r\n", "", 0);
	struct maildir_list l;
	scan(user, &l);
	cr_assert_eq(maildir_expunge(user, &l.msg[0]), 0);
	cr_assert_eq(maildir_expunge(user, &l.msg[0]), 0); /* gone: done */
	struct maildir_msg evil = l.msg[1];
	snprintf(evil.name, sizeof(evil.name), "../../x");
	cr_assert_eq(maildir_expunge(user, &evil), -1);
	cr_assert_eq(errno, EINVAL);
	maildir_list_free(&l);
	scan(user, &l);
	cr_assert_eq(l.n, 1);
	cr_assert_eq(l.msg[0].uid, 2);
	cr_assert_eq(l.uidnext, 3);
	maildir_list_free(&l);
}

/* UIDs of APPEND, COPY and scan's assignment of new/ share one order. */
Test(maildir_ops, uids_interleave)
{
	cr_assert_eq(maildir_folder_create(user, "Other"), 0);
	char other[PATH_MAX];
	cr_assert_eq(maildir_mailbox_path(user, "Other", other, sizeof(other)),
		     0);
	append(other, "o1\r\n", "S", 500);
	append(other, "o2\r\n", "", 600);
	struct maildir_list ol;
	scan(other, &ol);

	uint32_t a = append(user, "x\r\n", "", 0);
	deliver_new(user, "100.new1", "n1\r\n");
	struct maildir_list l;
	scan(user, &l);
	uint32_t n1 = l.msg[l.n - 1].uid;
	maildir_list_free(&l);
	uint32_t b = append(user, "y\r\n", "", 0);
	uint32_t v, uids[2];
	cr_assert_eq(
	    maildir_copy(other, ol.msg, 2, user, "node2", NULL, &v, uids), 0);
	deliver_new(user, "101.new2", "n2\r\n");
	scan(user, &l);
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

Test(maildir_ops, copy_all_or_nothing)
{
	cr_assert_eq(maildir_folder_create(user, "Dst"), 0);
	char dst[PATH_MAX];
	cr_assert_eq(maildir_mailbox_path(user, "Dst", dst, sizeof(dst)), 0);
	append(user, "a\r\n", "", 0);
	append(user, "b\r\n", "", 0);
	append(user, "c\r\n", "", 0);
	struct maildir_list l;
	scan(user, &l);
	cr_assert_eq(maildir_expunge(user, &l.msg[2]), 0);

	uint32_t v, uids[3];
	cr_assert_eq(maildir_copy(user, l.msg, 3, dst, "n", NULL, &v, uids),
		     -1);
	cr_assert_eq(errno, ENOENT);
	cr_assert_eq(count_files(dst, "cur"), 0);
	cr_assert_eq(count_files(dst, "tmp"), 0);
	cr_assert_eq(count_files(user, "cur"), 2);

	/* the two left copy; the same message twice gets two UIDs */
	struct maildir_msg two[2] = {l.msg[1], l.msg[1]};
	cr_assert_eq(maildir_copy(user, two, 2, dst, "n", NULL, &v, uids), 0);
	cr_assert_eq(uids[1], uids[0] + 1);
	cr_assert_eq(count_files(dst, "cur"), 2);
	maildir_list_free(&l);
}

/* Several processes appending into one Maildir at once. */
Test(maildir_ops, concurrent_appenders, .timeout = 60)
{
	enum { KIDS = 4, EACH = 25 };
	pid_t pids[KIDS];
	for (int k = 0; k < KIDS; k++) {
		pids[k] = fork();
		cr_assert_neq(pids[k], -1);
		if (pids[k] == 0) {
			for (int i = 0; i < EACH; i++) {
				uint32_t v, uid;
				char text[64];
				int n = snprintf(text, sizeof(text),
						 "kid %d msg %d\r\n", k, i);
				if (maildir_append(user, "h", text, (size_t)n,
						   "", 0, NULL, &v, &uid) < 0)
					_exit(1);
			}
			_exit(0);
		}
	}
	for (int k = 0; k < KIDS; k++) {
		int st;
		cr_assert_eq(waitpid(pids[k], &st, 0), pids[k]);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	struct maildir_list l;
	scan(user, &l);
	cr_assert_eq(l.n, KIDS * EACH);
	for (size_t i = 1; i < l.n; i++)
		cr_assert_gt(l.msg[i].uid, l.msg[i - 1].uid);
	cr_assert_gt(read_mark(user), l.msg[l.n - 1].uid);
	cr_assert_eq(count_files(user, "tmp"), 0);
	maildir_list_free(&l);
}

Test(maildir_ops, folder_create_delete)
{
	cr_assert_eq(maildir_folder_create(user, "Work"), 0);
	cr_assert(exists(user, ".Work/cur") && exists(user, ".Work/new") &&
		  exists(user, ".Work/tmp") &&
		  exists(user, ".Work/maildirfolder") &&
		  exists(user, ".Work/mailswitch-uidvalidity"));
	cr_assert_eq(maildir_folder_create(user, "Work"), -1);
	cr_assert_eq(errno, EEXIST);
	cr_assert_eq(maildir_folder_create(user, "inbox"), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(maildir_folder_create(user, "Work.Sub"), 0);

	char work[PATH_MAX];
	cr_assert_eq(maildir_mailbox_path(user, "Work", work, sizeof(work)), 0);
	append(work, "w\r\n", "", 0);
	cr_assert_eq(maildir_folder_delete(user, "Work"), 0);
	cr_assert(!exists(user, ".Work"));
	cr_assert(exists(user, ".Work.Sub/cur"));
	cr_assert_eq(maildir_folder_delete(user, "Work"), -1);
	cr_assert_eq(errno, ENOENT);
	cr_assert_eq(maildir_folder_delete(user, "INBOX"), -1);
	cr_assert_eq(errno, EINVAL);

	char(*names)[MAILDIR_MBOX_MAX + 1];
	size_t n;
	cr_assert_eq(maildir_folders(user, &names, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(names[0], "Work.Sub");
	free(names);
	/* nothing left behind in userdir but the folder */
	DIR *d = opendir(user);
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		cr_assert(strncmp(de->d_name, "..m", 3) != 0, "%s", de->d_name);
	closedir(d);
}

/* A name made again (after delete or rename) within the same second gets
 * a new UIDVALIDITY: its UIDs start over (RFC 3501 2.3.1.1). */
Test(maildir_ops, uidvalidity_never_repeats_for_a_name)
{
	char work[PATH_MAX];
	struct maildir_list l;
	uint32_t seen[4];
	cr_assert_eq(maildir_mailbox_path(user, "Work", work, sizeof(work)), 0);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(maildir_folder_create(user, "Work"), 0);
		scan(work, &l);
		seen[i] = l.uidvalidity;
		maildir_list_free(&l);
		for (int k = 0; k < i; k++)
			cr_assert_neq(seen[i], seen[k], "round %d", i);
		if (i % 2)
			cr_assert_eq(maildir_folder_delete(user, "Work"), 0);
		else
			cr_assert_eq(maildir_folder_rename(user, "Work",
							   i ? "W2" : "W1"),
				     0);
	}
}

Test(maildir_ops, folder_rename_with_children)
{
	cr_assert_eq(maildir_folder_create(user, "a"), 0);
	cr_assert_eq(maildir_folder_create(user, "a.b"), 0);
	cr_assert_eq(maildir_folder_create(user, "a.b.c"), 0);
	cr_assert_eq(maildir_folder_create(user, "ab"), 0);
	char a[PATH_MAX];
	cr_assert_eq(maildir_mailbox_path(user, "a.b", a, sizeof(a)), 0);
	append(a, "m\r\n", "S", 0);

	cr_assert_eq(maildir_folder_rename(user, "a", "x"), 0);
	cr_assert(!exists(user, ".a") && !exists(user, ".a.b") &&
		  !exists(user, ".a.b.c"));
	cr_assert(exists(user, ".x/cur") && exists(user, ".x.b/cur") &&
		  exists(user, ".x.b.c/cur") && exists(user, ".ab/cur"));
	cr_assert_eq(count_files(user, ".x.b/cur"), 1);

	cr_assert_eq(maildir_folder_rename(user, "x", "ab"), -1);
	cr_assert_eq(errno, EEXIST);
	cr_assert_eq(maildir_folder_rename(user, "nosuch", "y"), -1);
	cr_assert_eq(errno, ENOENT);
	cr_assert_eq(maildir_folder_rename(user, "x", "x.y"), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(maildir_folder_rename(user, "x", "INBOX"), -1);
	cr_assert_eq(errno, EINVAL);
	/* a child's new name taken: nothing moves */
	cr_assert_eq(maildir_folder_create(user, "z.b"), 0);
	cr_assert_eq(maildir_folder_rename(user, "x", "z"), -1);
	cr_assert_eq(errno, EEXIST);
	cr_assert(exists(user, ".x/cur") && !exists(user, ".z"));
}

Test(maildir_ops, inbox_rename)
{
	uint32_t u1 = append(user, "one\r\n", "S", 0);
	uint32_t u2 = append(user, "two\r\n", "", 0);
	deliver_new(user, "300.three", "three\r\n");
	struct maildir_list l;
	scan(user, &l);
	uint32_t inbox_next = l.uidnext;
	maildir_list_free(&l);
	deliver_new(user, "301.four", "four\r\n");

	cr_assert_eq(maildir_folder_rename(user, "INBOX", "Old"), 0);
	cr_assert_eq(count_files(user, "cur"), 0);
	cr_assert_eq(count_files(user, "new"), 0);
	char old[PATH_MAX];
	cr_assert_eq(maildir_mailbox_path(user, "Old", old, sizeof(old)), 0);
	scan(old, &l);
	cr_assert_eq(l.n, 4);
	for (size_t i = 0; i < l.n; i++)
		cr_assert_eq(l.msg[i].uid, i + 1);
	cr_assert_str_eq(l.msg[0].flags, "S");
	/* in their old UID order: one, two, three, four */
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/cur/%s", old, l.msg[3].name);
	FILE *f = fopen(p, "r");
	char buf[16] = "";
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	cr_assert_str_eq(buf, "four\r\n");
	cr_assert_eq(l.msg[0].size, 5);
	maildir_list_free(&l);
	(void)u1;
	(void)u2;

	/* INBOX goes on with its UIDs, never reusing one */
	uint32_t u = append(user, "five\r\n", "", 0);
	cr_assert_gt(u, inbox_next);
	cr_assert_eq(maildir_folder_rename(user, "INBOX", "Old"), -1);
	cr_assert_eq(errno, EEXIST);
}

Test(maildir_ops, subscriptions)
{
	char(*names)[MAILDIR_MBOX_MAX + 1];
	size_t n;
	cr_assert_eq(maildir_subscriptions(user, &names, &n), 0);
	cr_assert_eq(n, 0);
	free(names);
	cr_assert_eq(maildir_subscribe(user, "Work", true), 0);
	cr_assert_eq(maildir_subscribe(user, "inbox", true), 0);
	cr_assert_eq(maildir_subscribe(user, "Arch.2024", true), 0);
	cr_assert_eq(maildir_subscribe(user, "Work", true), 0);
	cr_assert_eq(maildir_subscriptions(user, &names, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(names[0], "Arch.2024");
	cr_assert_str_eq(names[1], "INBOX");
	cr_assert_str_eq(names[2], "Work");
	free(names);
	cr_assert_eq(maildir_subscribe(user, "Work", false), 0);
	cr_assert_eq(maildir_subscribe(user, "Work", false), 0);
	cr_assert_eq(maildir_subscribe(user, "Never", false), 0);
	cr_assert_eq(maildir_subscriptions(user, &names, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(names[0], "Arch.2024");
	cr_assert_str_eq(names[1], "INBOX");
	free(names);
	cr_assert_eq(maildir_subscribe(user, "../x", true), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(count_files(user, "."), 5); /* cur new tmp subs lock */
}

Test(maildir_ops, traversal_refused)
{
	const char *bad[] = {"..",   "a/b", "/etc", ".hidden",
			     "a..b", "",    "a.",   "x\n"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		errno = 0;
		cr_assert_eq(maildir_folder_create(user, bad[i]), -1, "%s",
			     bad[i]);
		cr_assert_eq(errno, EINVAL, "%s", bad[i]);
		cr_assert_eq(maildir_folder_delete(user, bad[i]), -1);
		cr_assert_eq(errno, EINVAL);
		cr_assert_eq(maildir_folder_rename(user, bad[i], "ok"), -1);
		cr_assert_eq(errno, EINVAL);
		cr_assert_eq(maildir_subscribe(user, bad[i], true), -1);
		cr_assert_eq(errno, EINVAL);
	}
	cr_assert_eq(maildir_folder_create(user, "ok"), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cr_assert_eq(maildir_folder_rename(user, "ok", bad[i]), -1);
		cr_assert_eq(errno, EINVAL);
		cr_assert_eq(maildir_folder_rename(user, "INBOX", bad[i]), -1);
		cr_assert_eq(errno, EINVAL);
	}
	/* nothing made outside the user's Maildir */
	DIR *d = opendir(root);
	struct dirent *de;
	size_t n = 0;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	cr_assert_eq(n, 1);
	cr_assert(!exists(user, "subscriptions"));
	cr_assert(exists(user, ".ok/cur"));
}

/* maildir_scan lists and counts; maildir_assign gives the UIDs. */
Test(maildir_ops, scan_only_lists_what_has_a_uid)
{
	append(user, "Subject: a\r\n\r\nx\r\n", "", 0);
	deliver_new(user, "100.new", "Subject: n\r\n\r\ny\r\n");
	struct maildir_list l;
	cr_assert_eq(maildir_scan(user, &l), 0);
	cr_assert_eq(l.n, 1);
	cr_assert_eq(l.pending, 1);
	cr_assert_eq(count_files(user, "new"), 1);
	maildir_list_free(&l);
	scan(user, &l);
	cr_assert_eq(l.n, 2);
	cr_assert_eq(l.pending, 0);
	cr_assert_eq(l.msg[1].uid, 2);
	maildir_list_free(&l);
}

/* The counter (Redis) is a floor of its own UIDVALIDITY only, and comes
 * back as the new UIDNEXT. */
Test(maildir_ops, counter_floor)
{
	uint32_t v, uid;
	append(user, "Subject: a\r\n\r\nx\r\n", "", 0);
	struct maildir_list l;
	scan(user, &l);
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
Test(maildir_ops, lost_mark_rebuilt_from_cur)
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
