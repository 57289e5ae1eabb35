/* node/store/maildir_keywords.c, maildir_dotlock.c, maildir_recent.c:
 * Dovecot's dovecot-keywords read and grown under its dotlock (by
 * processes racing), 26 letters at most, keywords mapped on a copy, and
 * \Recent claimed once. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../node/store/maildir.h"
#include "maildir_fixture.h"

static char root[256], user[PATH_MAX];

static void
setup(void)
{
	fixture_tree(root, sizeof(root), "kw", user, sizeof(user));
}

static void
teardown(void)
{
	rmtree(root);
}

TestSuite(maildir_keywords, .init = setup, .fini = teardown);

static void
write_file(const char *dir, const char *name, const char *text)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static uint32_t
add1(const char *dir, const char *name)
{
	char names[1][MAILDIR_KEYWORD_MAX + 1];
	struct maildir_keywords kw;
	uint32_t bits;
	snprintf(names[0], sizeof(names[0]), "%s", name);
	cr_assert_eq(maildir_keywords_add(dir, names, 1, &kw, &bits), 0, "%s",
		     name);
	return bits;
}

/* A file as Dovecot writes it, with lines it would skip too. */
Test(maildir_keywords, dovecot_file_read)
{
	struct maildir_keywords kw;
	cr_assert_eq(maildir_keywords_read(user, &kw), 0); /* none yet */
	cr_assert_eq(maildir_keyword_index(&kw, "$Junk"), -1);
	write_file(user, MAILDIR_KEYWORDS_FILE,
		   "0 $Junk\n2 $label1\nno index\n26 $toofar\n3 bad(name\n"
		   "4 $junk\n5 NonJunk");
	cr_assert_eq(maildir_keywords_read(user, &kw), 0);
	cr_assert_eq(maildir_keyword_index(&kw, "$JUNK"), 0);
	cr_assert_eq(maildir_keyword_index(&kw, "$label1"), 2);
	cr_assert_eq(maildir_keyword_index(&kw, "NonJunk"), 5);
	cr_assert_str_eq(kw.name[1], "");
	cr_assert_str_eq(kw.name[3], "");
	cr_assert_str_eq(kw.name[4], ""); /* $junk again */
	/* new keywords take the free letters, the file keeps the others */
	cr_assert_eq(add1(user, "Work"), 1u << 1);
	cr_assert_eq(add1(user, "$label1"), 1u << 2);
	cr_assert_eq(add1(user, "Home"), 1u << 3);
	cr_assert_eq(maildir_keywords_read(user, &kw), 0);
	cr_assert_str_eq(kw.name[0], "$Junk");
	cr_assert_str_eq(kw.name[1], "Work");
	cr_assert_str_eq(kw.name[3], "Home");
	cr_assert_str_eq(kw.name[5], "NonJunk");
	cr_assert_not(maildir_keyword_valid("\\Seen"));
	cr_assert_not(maildir_keyword_valid("a b"));
	cr_assert_not(maildir_keyword_valid(""));
}

Test(maildir_keywords, twenty_six_at_most)
{
	char names[27][MAILDIR_KEYWORD_MAX + 1];
	struct maildir_keywords kw;
	uint32_t bits;
	for (int i = 0; i < 27; i++)
		snprintf(names[i], sizeof(names[i]), "k%d", i);
	cr_assert_eq(maildir_keywords_add(user, names, 27, &kw, &bits), -1);
	cr_assert_eq(errno, ENOSPC);
	cr_assert_eq(maildir_keywords_read(user, &kw), 0);
	cr_assert_eq(maildir_keyword_index(&kw, "k0"), -1); /* none added */
	cr_assert_eq(maildir_keywords_add(user, names, 26, &kw, &bits), 0);
	cr_assert_eq(bits, (1u << 26) - 1);
	cr_assert_eq(maildir_keywords_add(user, names + 26, 1, &kw, &bits), -1);
	cr_assert_eq(errno, ENOSPC);
	char lock[PATH_MAX];
	snprintf(lock, sizeof(lock), "%s/%s.lock", user, MAILDIR_KEYWORDS_FILE);
	cr_assert_eq(access(lock, F_OK), -1); /* the lock is gone */
}

/* Processes adding different keywords at once: every one stays. */
Test(maildir_keywords, racing_processes_keep_all)
{
	enum { PROCS = 4, EACH = 6 };
	for (int p = 0; p < PROCS; p++) {
		pid_t pid = fork();
		cr_assert_neq(pid, -1);
		if (pid == 0) {
			for (int i = 0; i < EACH; i++) {
				char names[1][MAILDIR_KEYWORD_MAX + 1];
				struct maildir_keywords kw;
				uint32_t bits;
				snprintf(names[0], sizeof(names[0]), "p%d_%d",
					 p, i);
				if (maildir_keywords_add(user, names, 1, &kw,
							 &bits) < 0)
					_exit(1);
			}
			_exit(0);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		int st;
		cr_assert_neq(wait(&st), -1);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	struct maildir_keywords kw;
	cr_assert_eq(maildir_keywords_read(user, &kw), 0);
	for (int p = 0; p < PROCS; p++)
		for (int i = 0; i < EACH; i++) {
			char name[32];
			snprintf(name, sizeof(name), "p%d_%d", p, i);
			cr_assert_geq(maildir_keyword_index(&kw, name), 0, "%s",
				      name);
		}
}

/* A stale lock (its owner died) is broken; a fresh one is waited for. */
Test(maildir_keywords, stale_lock_broken)
{
	char lock[PATH_MAX];
	snprintf(lock, sizeof(lock), "%s/%s.lock", user, MAILDIR_KEYWORDS_FILE);
	int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	close(fd);
	struct timespec old[2] = {{time(NULL) - 3600, 0},
				  {time(NULL) - 3600, 0}};
	cr_assert_eq(utimensat(AT_FDCWD, lock, old, 0), 0);
	cr_assert_eq(add1(user, "x"), 1u);
}

Test(maildir_keywords, map_for_a_copy)
{
	char other[PATH_MAX];
	char map[MAILDIR_KEYWORDS];
	snprintf(other, sizeof(other), "%s/.Other", user);
	mkmaildir(other);
	write_file(user, MAILDIR_KEYWORDS_FILE, "0 a0\n1 a1\n2 a2\n");
	write_file(other, MAILDIR_KEYWORDS_FILE, "0 a2\n");
	cr_assert_eq(maildir_keywords_map(user, other, 1u << 1 | 1u << 2, map),
		     0);
	cr_assert_eq(map[0], 0); /* not used: not added */
	cr_assert_eq(map[1], 'b');
	cr_assert_eq(map[2], 'a');
	struct maildir_keywords kw;
	cr_assert_eq(maildir_keywords_read(other, &kw), 0);
	cr_assert_eq(maildir_keyword_index(&kw, "a0"), -1);
	cr_assert_eq(maildir_keyword_index(&kw, "a1"), 1);
}

Test(maildir_keywords, recent_claimed_once)
{
	uint32_t from;
	cr_assert_eq(maildir_recent_claim(user, 5, true, &from), 0);
	cr_assert_eq(from, 1); /* peek: nothing claimed yet */
	cr_assert_eq(maildir_recent_claim(user, 5, false, &from), 0);
	cr_assert_eq(from, 1); /* 1..4 are ours */
	cr_assert_eq(maildir_recent_claim(user, 5, false, &from), 0);
	cr_assert_eq(from, 5); /* nothing left */
	cr_assert_eq(maildir_recent_claim(user, 8, false, &from), 0);
	cr_assert_eq(from, 5); /* 5..7 */
	cr_assert_eq(maildir_recent_claim(user, 8, true, &from), 0);
	cr_assert_eq(from, 8);
}
