/* The Maildir store: the hashed layout (stable across builds and case),
 * every traversal attempt refused with nothing made outside (or inside)
 * the store, delivery to several users with exact bytes and S=, per-
 * recipient failure with no tmp/ leftovers (a domain directory replaced by
 * a regular file fails even as root), unique names, the health probe, and
 * a 20 MB message copied byte-exact. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../node/store/store.h"

static char base[64];
static char root[128];
static struct store st;

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
setup(void)
{
	log_init("test_store", LOG_LVL_ERR);
	snprintf(base, sizeof(base), "/tmp/test_store.XXXXXX");
	cr_assert_not_null(mkdtemp(base));
	snprintf(root, sizeof(root), "%s/store", base);
	cr_assert_eq(mkdir(root, 0700), 0);
	cr_assert_eq(store_init(&st, root, "mx1.example.test"), 0);
}

static void
teardown(void)
{
	nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Entries of path other than . and ..; the last one's name in last. */
static int
count_entries(const char *path, char *last, size_t lastlen)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		n++;
		if (last)
			snprintf(last, lastlen, "%s", de->d_name);
	}
	closedir(d);
	return n;
}

/* A file in base holding data; its offset left at the end, as the SMTP
 * session leaves it. */
static int
message_fd(const char *data, size_t len)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/msg.XXXXXX", base);
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	return fd;
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	char *buf = malloc((size_t)n + 1);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* The single file in ADDRESS's new/: its path into out. */
static void
only_new_file(const char *address, char *out, size_t outlen)
{
	char dir[4096], sub[4200], name[512];
	cr_assert_eq(store_user_dir(&st, address, dir, sizeof(dir), false), 0);
	snprintf(sub, sizeof(sub), "%s/new", dir);
	cr_assert_eq(count_entries(sub, name, sizeof(name)), 1, "%s", sub);
	snprintf(out, outlen, "%s/%s", sub, name);
	snprintf(sub, sizeof(sub), "%s/tmp", dir);
	cr_assert_eq(count_entries(sub, NULL, 0), 0, "tmp/ leftovers");
}

TestSuite(store, .init = setup, .fini = teardown);

Test(store, layout_is_hashed_and_stable)
{
	char p[4096], want[4096];
	/* FNV-1a("alice") = 872213e7, FNV-1a("bob") = 86c6a0d4 */
	cr_assert_eq(
	    store_user_dir(&st, "alice@example.test", p, sizeof(p), false), 0);
	snprintf(want, sizeof(want), "%s/example.test/87/22/alice", root);
	cr_assert_str_eq(p, want);
	cr_assert_eq(
	    store_user_dir(&st, "bob@example.test", p, sizeof(p), false), 0);
	snprintf(want, sizeof(want), "%s/example.test/86/c6/bob", root);
	cr_assert_str_eq(p, want);
	/* nothing is made without create */
	cr_assert_eq(count_entries(root, NULL, 0), 0);
}

Test(store, case_insensitive)
{
	char a[4096], b[4096];
	cr_assert_eq(
	    store_user_dir(&st, "Alice@Example.TEST", a, sizeof(a), false), 0);
	cr_assert_eq(
	    store_user_dir(&st, "alice@example.test", b, sizeof(b), false), 0);
	cr_assert_str_eq(a, b);
}

Test(store, create_makes_maildir)
{
	char p[4096], sub[4200];
	struct stat sb;
	cr_assert_eq(
	    store_user_dir(&st, "alice@example.test", p, sizeof(p), true), 0);
	const char *subs[] = {"cur", "new", "tmp"};
	for (int i = 0; i < 3; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", p, subs[i]);
		cr_assert_eq(stat(sub, &sb), 0, "%s", sub);
		cr_assert(S_ISDIR(sb.st_mode));
		cr_assert_eq(sb.st_mode & 07777, 0700);
	}
	snprintf(sub, sizeof(sub), "%s/example.test", root);
	cr_assert_eq(stat(sub, &sb), 0);
	cr_assert_eq(sb.st_mode & 07777, 0700);
	/* twice is fine */
	cr_assert_eq(
	    store_user_dir(&st, "alice@example.test", p, sizeof(p), true), 0);
}

Test(store, traversal_refused)
{
	char longlocal[80], longdomain[300], p[4096];
	memset(longlocal, 'a', 65);
	strcpy(longlocal + 65, "@d.test");
	strcpy(longdomain, "a@");
	memset(longdomain + 2, 'd', 254);
	longdomain[256] = '\0';
	const char *bad[] = {
	    "../x@d", "a@../../etc", "a/b@d",	"a@d/e",    "a\\b@d",
	    "a@d\\e", ".@d",	     "..@d",	"a@.",	    "a@..",
	    "@d",     "a@",	     "a",	"",	    ".a@d",
	    "a@.d",   "a.@d",	     "a@d.",	"a..b@d",   "a@b..c",
	    "a@b@d",  "a\x01@d",     "a@d\x7f", "a\nb@d",   "a\rb@d",
	    "a\tb@d", "a@d/../../x", longlocal, longdomain, "..",
	    "a@/etc", "/etc@d",	     "a@d/",	"a\0b@d", /* "a" */
	};
	bool failed[1];
	int fd = message_fd("x\r\n", 3);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		errno = 0;
		cr_assert_eq(store_user_dir(&st, bad[i], p, sizeof(p), true),
			     -1, "accepted %s", bad[i]);
		cr_assert_eq(errno, EINVAL, "%s", bad[i]);
		cr_assert_eq(store_deliver(&st, &bad[i], 1, fd, 3, "", failed),
			     -1, "delivered to %s", bad[i]);
		cr_assert(failed[0]);
	}
	close(fd);
	/* nothing in the store, nothing beside it */
	cr_assert_eq(count_entries(root, NULL, 0), 0);
	cr_assert_eq(count_entries(base, NULL, 0), 1);
	cr_assert_eq(store_init(&st, root, ""), -1);
}

Test(store, deliver_three_users_exact)
{
	const char *rcpts[] = {"alice@example.test", "Bob@Example.Test",
			       "carol@other.test"};
	const char *prefix = "Return-Path: <s@x.test>\r\nReceived: from x\r\n";
	const char *body = "Subject: hi\r\n\r\nhello\r\n.dot\r\n";
	bool failed[3] = {true, true, true};
	char path[8192], want[512];
	size_t len;

	int fd = message_fd(body, strlen(body));
	cr_assert_eq(
	    store_deliver(&st, rcpts, 3, fd, strlen(body), prefix, failed), 0);
	close(fd);
	snprintf(want, sizeof(want), "%s%s", prefix, body);
	for (int i = 0; i < 3; i++) {
		cr_assert_not(failed[i]);
		only_new_file(rcpts[i], path, sizeof(path));
		char *got = read_file(path, &len);
		cr_assert_eq(len, strlen(want));
		cr_assert_eq(memcmp(got, want, len), 0);
		free(got);
		char s[32];
		snprintf(s, sizeof(s), ",S=%zu", len);
		size_t pl = strlen(path), sl = strlen(s);
		cr_assert(pl > sl && strcmp(path + pl - sl, s) == 0, "%s",
			  path);
		char pid[32];
		snprintf(pid, sizeof(pid), "P%ldQ", (long)getpid());
		cr_assert_not_null(strstr(path, pid));
		cr_assert_not_null(strstr(path, ".mx1.example.test,S="));
		struct stat sb;
		cr_assert_eq(stat(path, &sb), 0);
		cr_assert_eq(sb.st_mode & 07777, 0600);
	}
}

Test(store, empty_prefix_and_null)
{
	const char *rcpt = "alice@example.test";
	bool failed[1];
	char path[8192];
	size_t len;
	int fd = message_fd("abc", 3);
	cr_assert_eq(store_deliver(&st, &rcpt, 1, fd, 3, NULL, failed), 0);
	close(fd);
	only_new_file(rcpt, path, sizeof(path));
	char *got = read_file(path, &len);
	cr_assert_eq(len, 3);
	cr_assert_eq(memcmp(got, "abc", 3), 0);
	free(got);
}

Test(store, unique_names)
{
	const char *rcpt = "alice@example.test";
	bool failed[1];
	char dir[4096], sub[4200];
	int fd = message_fd("m\r\n", 3);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(store_deliver(&st, &rcpt, 1, fd, 3, "", failed),
			     0);
	close(fd);
	cr_assert_eq(store_user_dir(&st, rcpt, dir, sizeof(dir), false), 0);
	snprintf(sub, sizeof(sub), "%s/new", dir);
	cr_assert_eq(count_entries(sub, NULL, 0), 50);
}

Test(store, hostname_escaped)
{
	const char *rcpt = "alice@example.test";
	bool failed[1];
	char path[8192];
	cr_assert_eq(store_init(&st, root, "mx/1:a,b"), 0);
	int fd = message_fd("m", 1);
	cr_assert_eq(store_deliver(&st, &rcpt, 1, fd, 1, "", failed), 0);
	close(fd);
	only_new_file(rcpt, path, sizeof(path));
	cr_assert_not_null(strstr(path, ".mx\\0571\\072a\\054b,S=1"), "%s",
			   path);
}

/* The longest host still leaves room for the UID and flags IMAP adds to
 * a delivered name; one byte more is refused at start. */
Test(store, hostname_bounded_so_names_take_a_uid)
{
	const char *rcpt = "alice@example.test";
	bool failed[1];
	char host[STORE_HOST_MAX + 2], path[8192];

	memset(host, 'h', STORE_HOST_MAX);
	host[STORE_HOST_MAX] = '\0';
	cr_assert_eq(store_init(&st, root, host), 0);
	int fd = message_fd("m", 1);
	cr_assert_eq(store_deliver(&st, &rcpt, 1, fd, 1, "", failed), 0);
	close(fd);
	only_new_file(rcpt, path, sizeof(path));
	const char *name = strrchr(path, '/') + 1;
	cr_assert_leq(strlen(name) + strlen(",U=4294967295:2,DFRST"), 255, "%s",
		      name);

	host[STORE_HOST_MAX] = 'h';
	host[STORE_HOST_MAX + 1] = '\0';
	errno = 0;
	cr_assert_eq(store_init(&st, root, host), -1);
	cr_assert_eq(errno, ENAMETOOLONG);
	/* Escapes count as what they become: 30 ':' are 120 bytes. */
	memset(host, ':', 31);
	host[30] = '\0';
	cr_assert_eq(store_init(&st, root, host), 0);
	host[30] = ':';
	host[31] = '\0';
	cr_assert_eq(store_init(&st, root, host), -1);
}

/* A domain directory replaced by a regular file: mkdir and open fail
 * whatever the caller's privileges. */
Test(store, failing_domain_sets_failed)
{
	char bad[256];
	snprintf(bad, sizeof(bad), "%s/bad.test", root);
	int f = open(bad, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(f, 0);
	close(f);

	const char *rcpts[] = {"a@good.test", "b@bad.test", "c@good.test"};
	bool failed[3];
	char path[8192];
	int fd = message_fd("hello\r\n", 7);
	errno = 0;
	cr_assert_eq(store_deliver(&st, rcpts, 3, fd, 7, "", failed), -1);
	cr_assert_eq(errno, ENOTDIR);
	close(fd);
	cr_assert_not(failed[0]);
	cr_assert(failed[1]);
	cr_assert_not(failed[2]);
	only_new_file(rcpts[0], path, sizeof(path));
	only_new_file(rcpts[2], path, sizeof(path));
	struct stat sb;
	cr_assert_eq(stat(bad, &sb), 0);
	cr_assert(S_ISREG(sb.st_mode));
	cr_assert_eq(sb.st_size, 0);
}

/* A failure in the middle of the copy (the source is shorter than
 * promised) leaves nothing in tmp/ nor new/. */
Test(store, failed_copy_leaves_nothing)
{
	const char *rcpt = "alice@example.test";
	bool failed[1] = {false};
	char dir[4096], sub[4200];
	int fd = message_fd("short", 5);
	cr_assert_eq(store_deliver(&st, &rcpt, 1, fd, 4096, "P: x\r\n", failed),
		     -1);
	cr_assert_eq(errno, EIO);
	cr_assert(failed[0]);
	close(fd);
	cr_assert_eq(store_user_dir(&st, rcpt, dir, sizeof(dir), false), 0);
	snprintf(sub, sizeof(sub), "%s/tmp", dir);
	cr_assert_eq(count_entries(sub, NULL, 0), 0);
	snprintf(sub, sizeof(sub), "%s/new", dir);
	cr_assert_eq(count_entries(sub, NULL, 0), 0);
}

/* A symlink planted in the store is not followed out of it. */
Test(store, symlink_not_followed)
{
	char link[256], outside[256];
	snprintf(outside, sizeof(outside), "%s/outside", base);
	cr_assert_eq(mkdir(outside, 0700), 0);
	snprintf(link, sizeof(link), "%s/evil.test", root);
	cr_assert_eq(symlink(outside, link), 0);
	const char *rcpt = "alice@evil.test";
	bool failed[1];
	int fd = message_fd("x", 1);
	cr_assert_eq(store_deliver(&st, &rcpt, 1, fd, 1, "", failed), -1);
	close(fd);
	cr_assert(failed[0]);
	cr_assert_eq(count_entries(outside, NULL, 0), 0);
}

Test(store, writable_probe)
{
	char health[256];
	cr_assert(store_writable(&st));
	snprintf(health, sizeof(health), "%s/.health", root);
	cr_assert_eq(count_entries(health, NULL, 0), 0);
	/* .health itself a file: not writable */
	cr_assert_eq(rmdir(health), 0);
	int f = open(health, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(f, 0);
	close(f);
	cr_assert_not(store_writable(&st));
	cr_assert_eq(unlink(health), 0);
	cr_assert(store_writable(&st));
	/* the root gone and a file in its place: not writable */
	cr_assert_eq(rmdir(health), 0);
	cr_assert_eq(rmdir(root), 0);
	f = open(root, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(f, 0);
	close(f);
	cr_assert_not(store_writable(&st));
	struct store other;
	cr_assert_eq(store_init(&other, root, "h"), -1);
	cr_assert_eq(errno, ENOTDIR);
	char missing[256];
	snprintf(missing, sizeof(missing), "%s/no/such/dir", base);
	cr_assert_eq(store_init(&other, missing, "h"), -1);
	cr_assert_eq(errno, ENOENT);
}

#define BIG (20u << 20)

static unsigned char
pattern(size_t i)
{
	return (unsigned char)((i * 2654435761u) >> 13);
}

Test(store, large_message_byte_exact, .timeout = 60)
{
	const char *rcpt = "big@example.test";
	const char *prefix = "Return-Path: <>\r\n";
	size_t plen = strlen(prefix);
	bool failed[1];
	char path[8192];
	static unsigned char buf[1 << 20], got[1 << 20];

	int fd = message_fd("", 0);
	for (size_t off = 0; off < BIG; off += sizeof(buf)) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = pattern(off + i);
		cr_assert_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	}
	cr_assert_eq(store_deliver(&st, &rcpt, 1, fd, BIG, prefix, failed), 0);
	close(fd);
	only_new_file(rcpt, path, sizeof(path));
	char s[32];
	snprintf(s, sizeof(s), ",S=%zu", (size_t)BIG + plen);
	cr_assert_not_null(strstr(path, s));

	int in = open(path, O_RDONLY);
	cr_assert_geq(in, 0);
	struct stat sb;
	cr_assert_eq(fstat(in, &sb), 0);
	cr_assert_eq((size_t)sb.st_size, BIG + plen);
	cr_assert_eq(read(in, got, plen), (ssize_t)plen);
	cr_assert_eq(memcmp(got, prefix, plen), 0);
	for (size_t off = 0; off < BIG; off += sizeof(got)) {
		cr_assert_eq(read(in, got, sizeof(got)), (ssize_t)sizeof(got));
		for (size_t i = 0; i < sizeof(got); i++)
			if (got[i] != pattern(off + i))
				cr_assert_fail("byte %zu differs", off + i);
	}
	close(in);
}
