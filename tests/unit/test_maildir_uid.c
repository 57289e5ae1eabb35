/* node/maildir_uid.c: UIDs by the lock-file mechanism, mailbox names,
 * folders, headers. */
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

static char root[256];

static void
setup(void)
{
	snprintf(root, sizeof(root), "/tmp/test_maildir_uid.XXXXXX");
	cr_assert_not_null(mkdtemp(root));
}

static void
teardown(void)
{
	rmtree(root);
}

/* Delivers like the store: tmp/ then rename into sub/ (new or cur). */
static void
deliver(const char *dir, const char *sub, const char *name, const char *text)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s/tmp/%s", dir, name);
	snprintf(dst, sizeof(dst), "%s/%s/%s", dir, sub, name);
	FILE *f = fopen(tmp, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	cr_assert_eq(rename(tmp, dst), 0);
}

static void
set_mtime(const char *dir, const char *sub, const char *name, time_t t)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s/%s", dir, sub, name);
	struct timespec ts[2] = {{t, 0}, {t, 0}};
	cr_assert_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
}

/* The message of l whose name starts with base. */
static const struct maildir_msg *
by_base(const struct maildir_list *l, const char *base)
{
	for (size_t i = 0; i < l->n; i++)
		if (strncmp(l->msg[i].name, base, strlen(base)) == 0 &&
		    l->msg[i].name[strlen(base)] == ',')
			return &l->msg[i];
	return NULL;
}

TestSuite(maildir, .init = setup, .fini = teardown);

Test(maildir, uids_in_arrival_order)
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

Test(maildir, stable_across_scans)
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

Test(maildir, flags_and_cur_without_uid)
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

Test(maildir, missing_maildir)
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

Test(maildir, concurrent_scanners, .timeout = 60)
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

Test(maildir, mailbox_paths)
{
	char out[PATH_MAX];
	cr_assert_eq(maildir_mailbox_path("/s/u", "INBOX", out, sizeof(out)),
		     0);
	cr_assert_str_eq(out, "/s/u");
	cr_assert_eq(maildir_mailbox_path("/s/u", "inbox", out, sizeof(out)),
		     0);
	cr_assert_str_eq(out, "/s/u");
	cr_assert_eq(maildir_mailbox_path("/s/u", "Sent", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/s/u/.Sent");
	cr_assert_eq(
	    maildir_mailbox_path("/s/u", "Archive.2024", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/s/u/.Archive.2024");
	static const char *bad[] = {
	    "",	     ".",    "..",   "../x",	  "a/b",  "/etc",    ".Sent",
	    "Sent.", "a..b", "x\ny", "tab\there", "a\\b", "INBOX.x", "\x7f",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		errno = 0;
		cr_expect_eq(
		    maildir_mailbox_path("/s/u", bad[i], out, sizeof(out)), -1,
		    "accepted %s", bad[i]);
		cr_expect_eq(errno, EINVAL);
	}
	char longname[MAILDIR_MBOX_MAX + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(maildir_mailbox_path("/s/u", longname, out, sizeof(out)),
		     -1);
	char small[8];
	cr_assert_eq(maildir_mailbox_path("/s/u", "Sent", small, sizeof(small)),
		     -1);
	cr_assert_eq(errno, ENAMETOOLONG);
}

Test(maildir, sizes_in_names)
{
	uint32_t uid;
	uint64_t size;
	char flags[32], name[MAILDIR_NAME_MAX + 1];
	/* Dovecot's LF files: S= on disk, W= with CRLF (what IMAP sends) */
	maildir_parse_name("1.M1P1.h,S=50,W=55,U=7:2,S", &uid, flags,
			   sizeof(flags), &size);
	cr_assert_eq(uid, 7);
	cr_assert_eq(size, 55);
	cr_assert_str_eq(flags, "S");
	maildir_parse_name("1.M1P1.h,W=55,S=50", &uid, flags, sizeof(flags),
			   &size);
	cr_assert_eq(size, 55);
	maildir_parse_name("1.M1P1.h,S=50", &uid, flags, sizeof(flags), &size);
	cr_assert_eq(size, 50);
	maildir_parse_name("1.M1P1.h,W=x,S=50", &uid, flags, sizeof(flags),
			   &size);
	cr_assert_eq(size, 50);

	cr_assert_eq(maildir_unique_name("h", 0, 50, 55, name, sizeof(name)),
		     0);
	cr_assert(strstr(name, ".h,S=50,W=55") != NULL, "%s", name);
	cr_assert_eq(maildir_unique_name("h", 0, 50, 50, name, sizeof(name)),
		     0);
	cr_assert(strstr(name, ",W=") == NULL, "%s", name);
	cr_assert_eq(maildir_unique_name("h", 0, 50, 0, name, sizeof(name)), 0);
	cr_assert(strstr(name, ",W=") == NULL, "%s", name);
	/* a host that leaves no room for W=: the name goes without it (the
	 * usec field varies by up to 5 digits between calls: 6 bytes spare,
	 * a W= of 23 bytes cannot fit in them) */
	char host[MAILDIR_NAME_MAX];
	size_t fit = 0;
	for (size_t len = 1; len < sizeof(host); len++) {
		memset(host, 'h', len);
		host[len] = '\0';
		if (maildir_unique_name(host, 0, 50, 0, name, sizeof(name)) < 0)
			break;
		fit = len;
	}
	cr_assert(fit > 6);
	host[fit - 6] = '\0';
	cr_assert_eq(
	    maildir_unique_name(host, 0, 50, UINT64_MAX, name, sizeof(name)),
	    0);
	cr_assert(strstr(name, ",W=") == NULL, "%s", name);
	cr_assert(strstr(name, ",S=50") != NULL, "%s", name);
}

Test(maildir, folders)
{
	char dir[PATH_MAX], p[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/user", root);
	mkmaildir(dir);
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

static int
memfile(const char *text)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/msg", root);
	FILE *f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
	return open(p, O_RDONLY);
}

Test(maildir, headers)
{
	struct maildir_headers h;
	int fd = memfile("Return-Path: <a@b>\r\n"
			 "Received: from x\r\n\tby y;\r\n\tdate\r\n"
			 "from: Alice <alice@example.test>\r\n"
			 "Subject: a folded\r\n  subject\t line \r\n"
			 "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
			 "Subject: second one ignored\r\n"
			 "\r\n"
			 "From: not a header\r\n");
	cr_assert_eq(maildir_read_headers(fd, &h), 0);
	close(fd);
	cr_assert_str_eq(h.from, "Alice <alice@example.test>");
	cr_assert_str_eq(h.subject, "a folded subject line");
	cr_assert_str_eq(h.date, "Mon, 1 Jan 2024 10:00:00 +0000");

	fd = memfile("Subject: caf\xc3\xa9 \xff\x01 ok\n\nbody\n");
	cr_assert_eq(maildir_read_headers(fd, &h), 0);
	close(fd);
	cr_assert_str_eq(h.subject, "caf\xc3\xa9 ?? ok");
	cr_assert_str_eq(h.from, "");
	cr_assert_str_eq(h.date, "");

	/* Cut to fit, at a character boundary. */
	char big[4096] = "Subject: ";
	size_t n = strlen(big);
	for (int i = 0; i < 1000; i++) {
		memcpy(big + n, "\xc3\xa9", 2);
		n += 2;
	}
	memcpy(big + n, "\r\n\r\n", 5);
	fd = memfile(big);
	cr_assert_eq(maildir_read_headers(fd, &h), 0);
	close(fd);
	cr_assert_lt(strlen(h.subject), MAILDIR_HDR_MAX);
	cr_assert_eq(strlen(h.subject) % 2, 0);

	fd = memfile("");
	cr_assert_eq(maildir_read_headers(fd, &h), 0);
	close(fd);
	cr_assert_str_eq(h.subject, "");
}
