/* What the Maildir unit tests share: making a Maildir, putting messages
 * in it (as the store delivers, or by APPEND), listing it, counting its
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
#include <time.h>
#include <unistd.h>

#include "../../node/store/maildir.h"

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

/* A test's tree: a new directory /tmp/test_maildir_NAME.XXXXXX into
 * root and, when user is not NULL, a Maildir in it, root/user, into user. */
static inline void
fixture_tree(char *root, size_t rootlen, const char *name, char *user,
	     size_t userlen)
{
	snprintf(root, rootlen, "/tmp/test_maildir_%s.XXXXXX", name);
	cr_assert_not_null(mkdtemp(root));
	if (user) {
		snprintf(user, userlen, "%s/user", root);
		mkmaildir(user);
	}
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

/* Delivers like the store: tmp/ then rename into sub/ (new or cur). */
static inline void
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

static inline void
set_mtime(const char *dir, const char *sub, const char *name, time_t t)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/%s/%s", dir, sub, name);
	struct timespec ts[2] = {{t, 0}, {t, 0}};
	cr_assert_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
}

/* The message of l whose name starts with base. */
static inline const struct maildir_msg *
by_base(const struct maildir_list *l, const char *base)
{
	for (size_t i = 0; i < l->n; i++)
		if (strncmp(l->msg[i].name, base, strlen(base)) == 0 &&
		    l->msg[i].name[strlen(base)] == ',')
			return &l->msg[i];
	return NULL;
}

static inline bool
exists(const char *dir, const char *name)
{
	char p[PATH_MAX];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

static inline uint32_t
append(const char *dir, const char *text, const char *flags, time_t t)
{
	uint32_t v, uid;
	cr_assert_eq(maildir_append(dir, "node1", text, strlen(text), flags, t,
				    NULL, &v, &uid),
		     0, "append: %s", strerror(errno));
	cr_assert_neq(v, 0);
	return uid;
}

static inline void
deliver_new(const char *dir, const char *name, const char *text)
{
	char p[PATH_MAX];
	snprintf(p, sizeof(p), "%s/new/%s", dir, name);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static inline void
assign_all(const char *dir, struct maildir_list *l)
{
	cr_assert_eq(maildir_assign(dir, NULL, l), 0, "scan: %s",
		     strerror(errno));
}

static inline uint32_t
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

#endif
