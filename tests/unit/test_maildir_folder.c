/* node/store/maildir_folder.c: listing, creating, deleting and renaming
 * Maildir++ folders (INBOX's rename too), UIDVALIDITY of a folder made
 * again, subscriptions, and names that would leave the user's Maildir. */
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
#include "maildir_fixture.h"

static char root[256], user[PATH_MAX];

static void
setup(void)
{
	fixture_tree(root, sizeof(root), "folder", user, sizeof(user));
}

static void
teardown(void)
{
	rmtree(root);
}

TestSuite(maildir_folder, .init = setup, .fini = teardown);

Test(maildir_folder, folders)
{
	char dir[PATH_MAX], p[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", user);
	snprintf(p, sizeof(p), "%s/.Sent", dir);
	mkmaildir(p);
	snprintf(p, sizeof(p), "%s/.Archive.2024", dir);
	mkmaildir(p);
	snprintf(p, sizeof(p), "%s/.NotAMaildir", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/.bad..name", dir);
	mkmaildir(p);
	char(*names)[MAILDIR_MBOX_MAX + 1];
	size_t n;
	cr_assert_eq(maildir_folders(dir, &names, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(names[0], "Archive.2024");
	cr_assert_str_eq(names[1], "Sent");
	free(names);
	snprintf(p, sizeof(p), "%s/nobody", root);
	cr_assert_eq(maildir_folders(p, &names, &n), 0);
	cr_assert_eq(n, 0);
	free(names);
}

Test(maildir_folder, folder_create_delete)
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

Test(maildir_folder, uidvalidity_never_repeats_for_a_name)
{
	char work[PATH_MAX];
	struct maildir_list l;
	uint32_t seen[4];
	cr_assert_eq(maildir_mailbox_path(user, "Work", work, sizeof(work)), 0);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(maildir_folder_create(user, "Work"), 0);
		assign_all(work, &l);
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

Test(maildir_folder, folder_rename_with_children)
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

Test(maildir_folder, inbox_rename)
{
	uint32_t u1 = append(user, "one\r\n", "Sa", 0);
	uint32_t u2 = append(user, "two\r\n", "", 0);
	deliver_new(user, "300.three", "three\r\n");
	char kwnames[1][MAILDIR_KEYWORD_MAX + 1] = {"$Junk"};
	struct maildir_keywords kw;
	uint32_t bits;
	cr_assert_eq(maildir_keywords_add(user, kwnames, 1, &kw, &bits), 0);
	cr_assert_eq(maildir_keywords_add(user, kwnames, 1, &kw, &bits), 0);
	struct maildir_list l;
	assign_all(user, &l);
	uint32_t inbox_next = l.uidnext;
	maildir_list_free(&l);
	deliver_new(user, "301.four", "four\r\n");

	cr_assert_eq(maildir_folder_rename(user, "INBOX", "Old"), 0);
	cr_assert_eq(count_files(user, "cur"), 0);
	cr_assert_eq(count_files(user, "new"), 0);
	char old[PATH_MAX];
	cr_assert_eq(maildir_mailbox_path(user, "Old", old, sizeof(old)), 0);
	assign_all(old, &l);
	cr_assert_eq(l.n, 4);
	for (size_t i = 0; i < l.n; i++)
		cr_assert_eq(l.msg[i].uid, i + 1);
	cr_assert_str_eq(l.msg[0].flags, "Sa");
	/* the keywords' letters mean the same in the new folder */
	cr_assert_eq(maildir_keywords_read(old, &kw), 0);
	cr_assert_eq(maildir_keyword_index(&kw, "$Junk"), 0);
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

Test(maildir_folder, subscriptions)
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

Test(maildir_folder, traversal_refused)
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
