/* node/store/maildir_msg.c: opening a message that another session
 * renames, flags, expunge, APPEND, COPY (all or nothing, concurrent
 * appenders) and the headers the API shows. */
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
	fixture_tree(root, sizeof(root), "msg", user, sizeof(user));
}

static void
teardown(void)
{
	rmtree(root);
}

TestSuite(maildir_msg, .init = setup, .fini = teardown);

Test(maildir_msg, append_then_scan)
{
	uint32_t u1 = append(user, "Subject: a\r\n\r\nbody\r\n", "SF", 1000);
	uint32_t u2 = append(user, "Subject: b\r\n\r\nx\r\n", "", 0);
	cr_assert_eq(u1, 1);
	cr_assert_eq(u2, 2);
	cr_assert_eq(count_files(user, "tmp"), 0);

	struct maildir_list l;
	assign_all(user, &l);
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

Test(maildir_msg, open_follows_a_rename)
{
	struct maildir_list l = {0};
	append(user, "Subject: x\r\n\r\nbody\r\n", "", 0);
	assign_all(user, &l);
	cr_assert_eq(l.n, 1);
	struct maildir_msg listed = l.msg[0], other = l.msg[0];
	maildir_list_free(&l);
	/* another session flags it: the listed name is gone */
	cr_assert_eq(maildir_set_flags(user, &other, "FS"), 0);
	cr_assert_str_neq(other.name, listed.name);
	int fd = maildir_open(user, &listed);
	cr_assert_geq(fd, 0, "open: %s", strerror(errno));
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	cr_assert_not_null(strstr(buf, "body"));
	cr_assert_str_eq(listed.name, other.name);
	cr_assert_str_eq(listed.flags, "FS");
	/* unchanged name: opened as it is */
	fd = maildir_open(user, &listed);
	cr_assert_geq(fd, 0);
	close(fd);
	/* expunged: ENOENT; a name that could leave cur/: EINVAL */
	cr_assert_eq(maildir_expunge(user, &other), 0);
	errno = 0;
	cr_assert_eq(maildir_open(user, &listed), -1);
	cr_assert_eq(errno, ENOENT);
	snprintf(listed.name, sizeof(listed.name), "../x");
	errno = 0;
	cr_assert_eq(maildir_open(user, &listed), -1);
	cr_assert_eq(errno, EINVAL);
}

Test(maildir_msg, append_errors)
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

Test(maildir_msg, set_flags_sorted_and_idempotent)
{
	append(user, "m\r\n", "S", 0);
	struct maildir_list l;
	assign_all(user, &l);
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

	assign_all(user, &l);
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

Test(maildir_msg, change_flags_applies_to_the_flags_on_disk)
{
	append(user, "m\r\n", "S", 0);
	struct maildir_list l;
	assign_all(user, &l);
	struct maildir_msg a = l.msg[0], b = l.msg[0];
	maildir_list_free(&l);
	bool renamed;

	cr_assert_eq(maildir_change_flags(user, &a, "R", "", &renamed), 0);
	cr_assert(renamed);
	cr_assert_str_eq(a.flags, "RS");
	/* b still remembers "S": taking S away keeps a's R */
	cr_assert_eq(maildir_change_flags(user, &b, "", "S", &renamed), 0);
	cr_assert(renamed);
	cr_assert_str_eq(b.flags, "R");
	cr_assert(strstr(b.name, ":2,R") != NULL, "%s", b.name);
	/* nothing to change: no rename, and a learns the flags on disk */
	cr_assert_eq(maildir_change_flags(user, &a, "R", "", &renamed), 0);
	cr_assert_not(renamed);
	cr_assert_str_eq(a.name, b.name);
	cr_assert_str_eq(a.flags, "R");
	/* letters another program set and IMAP never names stay */
	cr_assert_eq(maildir_set_flags(user, &a, "Ra"), 0);
	cr_assert_eq(maildir_change_flags(user, &b, "F", "RST", NULL), 0);
	cr_assert_str_eq(b.flags, "Fa");
	cr_assert_eq(maildir_change_flags(user, &b, "1", "", NULL), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(maildir_expunge(user, &b), 0);
	cr_assert_eq(maildir_change_flags(user, &a, "S", "", NULL), -1);
	cr_assert_eq(errno, ENOENT);
}

/* Four processes, each owning one letter, set and clear it on one
 * message as fast as they can, each from its own stale view: at the end
 * the file carries exactly the letters whose owner last set them. */
Test(maildir_msg, change_flags_concurrent_letters_all_hold)
{
	static const char letters[] = "DFRT";
	append(user, "m\r\n", "", 0);
	struct maildir_list l;
	assign_all(user, &l);
	struct maildir_msg start = l.msg[0];
	maildir_list_free(&l);
	pid_t pids[4];

	for (int k = 0; k < 4; k++) {
		if ((pids[k] = fork()) == 0) {
			struct maildir_msg m = start;
			char me[2] = {letters[k], '\0'};
			/* 301 changes: the last one sets D and R, clears F, T
			 */
			for (int i = 0; i <= 300; i++) {
				bool set = (i + (k % 2)) % 2 == 0;
				if (maildir_change_flags(
					user, &m, set ? me : "", set ? "" : me,
					NULL) < 0)
					_exit(1);
			}
			_exit(0);
		}
		cr_assert(pids[k] > 0);
	}
	for (int k = 0; k < 4; k++) {
		int st;
		cr_assert_eq(waitpid(pids[k], &st, 0), pids[k]);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	assign_all(user, &l);
	cr_assert_eq(l.n, 1);
	cr_assert_str_eq(l.msg[0].flags, "DR");
	maildir_list_free(&l);
}

Test(maildir_msg, expunge)
{
	append(user, "a\r\n", "", 0);
	append(user, "b\r\n", "", 0);
	struct maildir_list l;
	assign_all(user, &l);
	cr_assert_eq(maildir_expunge(user, &l.msg[0]), 0);
	cr_assert_eq(maildir_expunge(user, &l.msg[0]), 0); /* gone: done */
	struct maildir_msg evil = l.msg[1];
	snprintf(evil.name, sizeof(evil.name), "../../x");
	cr_assert_eq(maildir_expunge(user, &evil), -1);
	cr_assert_eq(errno, EINVAL);
	maildir_list_free(&l);
	assign_all(user, &l);
	cr_assert_eq(l.n, 1);
	cr_assert_eq(l.msg[0].uid, 2);
	cr_assert_eq(l.uidnext, 3);
	maildir_list_free(&l);
}

/* UIDs of APPEND, COPY and scan's assignment of new/ share one order. */

Test(maildir_msg, copy_all_or_nothing)
{
	cr_assert_eq(maildir_folder_create(user, "Dst"), 0);
	char dst[PATH_MAX];
	cr_assert_eq(maildir_mailbox_path(user, "Dst", dst, sizeof(dst)), 0);
	append(user, "a\r\n", "", 0);
	append(user, "b\r\n", "", 0);
	append(user, "c\r\n", "", 0);
	struct maildir_list l;
	assign_all(user, &l);
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

Test(maildir_msg, concurrent_appenders, .timeout = 60)
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
	assign_all(user, &l);
	cr_assert_eq(l.n, KIDS * EACH);
	for (size_t i = 1; i < l.n; i++)
		cr_assert_gt(l.msg[i].uid, l.msg[i - 1].uid);
	cr_assert_gt(read_mark(user), l.msg[l.n - 1].uid);
	cr_assert_eq(count_files(user, "tmp"), 0);
	maildir_list_free(&l);
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

Test(maildir_msg, headers)
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
