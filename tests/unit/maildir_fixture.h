/* What the Maildir unit tests share: making a Maildir, counting its
 * files and removing a test's whole tree. Static inline: each test
 * program takes what it uses. */
#ifndef TESTS_MAILDIR_FIXTURE_H
#define TESTS_MAILDIR_FIXTURE_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Test paths are short; gcc's checker cannot know (clang has no such
 * warning). */
#ifndef __clang__
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

/* cur/, new/ and tmp/ in dir, which exists. */
static inline void
fixture_maildir_subdirs(const char *dir)
{
	char p[PATH_MAX];
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir,
			 (const char *[]){"cur", "new", "tmp"}[i]);
		cr_assert_eq(mkdir(p, 0700), 0, "%s: %s", p, strerror(errno));
	}
}

/* A new Maildir dir (which must not exist yet). */
static inline void
mkmaildir(const char *dir)
{
	cr_assert_eq(mkdir(dir, 0700), 0, "%s: %s", dir, strerror(errno));
	fixture_maildir_subdirs(dir);
}

/* Entries of dir/sub, dot files aside. */
static inline size_t
count_files(const char *dir, const char *sub)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	DIR *d = opendir(p);
	cr_assert_not_null(d, "%s", p);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Removes path and everything under it, following no symlink. */
static inline void
rmtree(const char *path)
{
	DIR *d = opendir(path);
	if (d == NULL) {
		unlink(path);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rmtree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(path);
}

#endif
