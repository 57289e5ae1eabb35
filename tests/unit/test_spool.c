/* The spool: anonymous intake files, enqueue (link or copy, then the
 * envelope), delivery once the store is back, partial delivery rewriting
 * the envelope, a reopened spool finishing its queue, crash leftovers and
 * corrupted envelopes set aside without stopping the others, and the retry
 * timer delivering by itself then stopping. The store is broken by
 * replacing a domain directory (or the root) with a regular file, which
 * fails even for root. */
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
#include "../../node/store/spool.h"
#include "../../node/store/store.h"

static char base[64];
static char root[128];
static char spooldir[128];
static char queuedir[160];
static struct store st;
static struct ev_loop *loop;

static const char *prefix = "Return-Path: <s@x.test>\r\n";
static const char *body = "Subject: t\r\n\r\nbody\r\n";

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
	log_init("test_spool", LOG_LVL_ERR);
	snprintf(base, sizeof(base), "/tmp/test_spool.XXXXXX");
	cr_assert_not_null(mkdtemp(base));
	snprintf(root, sizeof(root), "%s/store", base);
	snprintf(spooldir, sizeof(spooldir), "%s/var/spool", base);
	snprintf(queuedir, sizeof(queuedir), "%s/queue", spooldir);
	cr_assert_eq(mkdir(root, 0700), 0);
	cr_assert_eq(store_init(&st, root, "mx1"), 0);
	loop = ev_loop_new(EVFLAG_AUTO);
	cr_assert_not_null(loop);
}

static void
teardown(void)
{
	ev_loop_destroy(loop);
	nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(spool, .init = setup, .fini = teardown);

/* Entries of dir ending in suffix (all with ""); the last one's name
 * without the suffix in last. */
static int
count_suffix(const char *dir, const char *suffix, char *last, size_t lastlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t sl = strlen(suffix);
	int n = 0;
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (l < sl || strcmp(de->d_name + l - sl, suffix) != 0)
			continue;
		n++;
		if (last)
			snprintf(last, lastlen, "%.*s", (int)(l - sl),
				 de->d_name);
	}
	closedir(d);
	return n;
}

/* Files in address's new/ (-1 when there is no Maildir). */
static int
delivered(const char *address)
{
	char dir[4096], sub[4200];
	cr_assert_eq(store_user_dir(&st, address, dir, sizeof(dir), false), 0);
	snprintf(sub, sizeof(sub), "%s/new", dir);
	return count_suffix(sub, "", NULL, 0);
}

/* The content of the one file in address's new/ equals prefix + body. */
static void
assert_delivered_once(const char *address)
{
	char dir[4096], sub[4200], name[512], path[4800], got[512];
	cr_assert_eq(store_user_dir(&st, address, dir, sizeof(dir), false), 0);
	snprintf(sub, sizeof(sub), "%s/new", dir);
	cr_assert_eq(count_suffix(sub, "", name, sizeof(name)), 1, "%s",
		     address);
	snprintf(path, sizeof(path), "%s/%s", sub, name);
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	ssize_t n = read(fd, got, sizeof(got) - 1);
	close(fd);
	cr_assert_geq(n, 0);
	got[n] = '\0';
	char want[512];
	snprintf(want, sizeof(want), "%s%s", prefix, body);
	cr_assert_str_eq(got, want);
}

/* Breaks (or mends) a domain of the store: a regular file in place of its
 * directory. */
static void
break_domain(const char *domain, bool broken)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s", root, domain);
	if (broken) {
		int fd = open(p, O_CREAT | O_WRONLY, 0600);
		cr_assert_geq(fd, 0, "%s: %s", p, strerror(errno));
		close(fd);
	} else
		cr_assert_eq(unlink(p), 0);
}

static int
incoming(struct spool *sp)
{
	int fd = spool_tmpfile(sp);
	cr_assert_geq(fd, 0, "spool_tmpfile: %s", strerror(errno));
	cr_assert_eq(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	return fd;
}

static void
enqueue(struct spool *sp, const char *const *rcpts, size_t n)
{
	int fd = incoming(sp);
	cr_assert_eq(
	    spool_enqueue(sp, fd, strlen(body), "s@x.test", rcpts, n, prefix),
	    0, "spool_enqueue: %s", strerror(errno));
	close(fd);
}

static void
write_file(const char *path, const char *data)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static char *
slurp(const char *path)
{
	static char buf[8192];
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "%s", path);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	cr_assert_geq(n, 0);
	buf[n] = '\0';
	return buf;
}

Test(spool, open_makes_layout_and_tmpfile_is_anonymous)
{
	struct spool *sp = spool_open(loop, spooldir, &st, 5);
	cr_assert_not_null(sp, "spool_open: %s", strerror(errno));
	char inc[200];
	snprintf(inc, sizeof(inc), "%s/incoming", spooldir);
	int fd = incoming(sp);
	cr_assert_eq(count_suffix(inc, "", NULL, 0), 0);
	cr_assert_eq(count_suffix(queuedir, "", NULL, 0), 0);
	close(fd);
	cr_assert_eq(spool_pending(sp), 0);
	cr_assert_eq(spool_run(sp), 0);
	spool_close(sp);
	cr_assert_null(spool_open(loop, spooldir, &st, 0));
}

Test(spool, enqueue_writes_msg_and_env_then_delivers)
{
	const char *rcpts[] = {"alice@example.test", "bob@example.test"};
	char id[128], path[400];
	struct spool *sp = spool_open(loop, spooldir, &st, 5);
	cr_assert_not_null(sp);
	enqueue(sp, rcpts, 2);
	cr_assert_eq(spool_pending(sp), 1);
	cr_assert_eq(count_suffix(queuedir, ".env", id, sizeof(id)), 1);
	cr_assert_eq(count_suffix(queuedir, ".msg", NULL, 0), 1);
	cr_assert_eq(count_suffix(queuedir, "", NULL, 0), 2);
	snprintf(path, sizeof(path), "%s/%s.env", queuedir, id);
	char want[1024];
	snprintf(want, sizeof(want),
		 "mailswitch-spool 1\nsender s@x.test\n"
		 "rcpt alice@example.test\nrcpt bob@example.test\n"
		 "size %zu\nprefix %zu\n%s",
		 strlen(body), strlen(prefix), prefix);
	cr_assert_str_eq(slurp(path), want);
	snprintf(path, sizeof(path), "%s/%s.msg", queuedir, id);
	cr_assert_str_eq(slurp(path), body);

	cr_assert_eq(spool_run(sp), 0);
	cr_assert_eq(spool_pending(sp), 0);
	assert_delivered_once("alice@example.test");
	assert_delivered_once("bob@example.test");
	cr_assert_eq(count_suffix(queuedir, "", NULL, 0), 0);
	spool_close(sp);
}

/* An fd that /proc cannot link (a named file already unlinked) is
 * copied into the queue instead. */
Test(spool, enqueue_copies_when_link_impossible)
{
	const char *rcpt = "alice@example.test";
	char path[200];
	struct spool *sp = spool_open(loop, spooldir, &st, 5);
	cr_assert_not_null(sp);
	snprintf(path, sizeof(path), "%s/msg.XXXXXX", base);
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	cr_assert_eq(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	cr_assert_eq(spool_enqueue(sp, fd, strlen(body), "", &rcpt, 1, prefix),
		     0);
	close(fd);
	cr_assert_eq(count_suffix(queuedir, ".msg", NULL, 0), 1);
	cr_assert_eq(count_suffix(queuedir, ".tmp", NULL, 0), 0);
	cr_assert_eq(spool_run(sp), 0);
	assert_delivered_once(rcpt);
	spool_close(sp);
}

/* A file longer than the message: only len bytes are queued. */
Test(spool, enqueue_takes_only_len_bytes)
{
	const char *rcpt = "alice@example.test";
	struct spool *sp = spool_open(loop, spooldir, &st, 5);
	cr_assert_not_null(sp);
	int fd = incoming(sp);
	cr_assert_eq(write(fd, "trailing junk", 13), 13);
	cr_assert_eq(spool_enqueue(sp, fd, strlen(body), "", &rcpt, 1, prefix),
		     0);
	close(fd);
	cr_assert_eq(spool_run(sp), 0);
	assert_delivered_once(rcpt);
	spool_close(sp);
}

Test(spool, enqueue_refuses_bad_envelopes)
{
	const char *nl[] = {"a@example.test\nrcpt evil@example.test"};
	const char *ok[] = {"a@example.test"};
	struct spool *sp = spool_open(loop, spooldir, &st, 5);
	cr_assert_not_null(sp);
	int fd = incoming(sp);
	cr_assert_eq(spool_enqueue(sp, fd, strlen(body), "s", nl, 1, ""), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(spool_enqueue(sp, fd, strlen(body), "s\r\n", ok, 1, ""),
		     -1);
	cr_assert_eq(spool_enqueue(sp, fd, strlen(body), "s", ok, 0, ""), -1);
	close(fd);
	cr_assert_eq(count_suffix(queuedir, "", NULL, 0), 0);
	cr_assert_eq(spool_pending(sp), 0);
	spool_close(sp);
}

Test(spool, waits_for_store_then_delivers)
{
	const char *rcpt = "alice@example.test";
	struct spool *sp = spool_open(loop, spooldir, &st, 5);
	cr_assert_not_null(sp);
	break_domain("example.test", true);
	enqueue(sp, &rcpt, 1);
	cr_assert_eq(spool_run(sp), 1);
	cr_assert_eq(spool_run(sp), 1);
	cr_assert_eq(count_suffix(queuedir, "", NULL, 0), 2);
	break_domain("example.test", false);
	cr_assert_eq(spool_run(sp), 0);
	assert_delivered_once(rcpt);
	cr_assert_eq(count_suffix(queuedir, "", NULL, 0), 0);
	spool_close(sp);
}

/* The whole store gone (its root a file): nothing is tried, all wait. */
Test(spool, waits_while_store_root_is_gone)
{
	const char *rcpt = "alice@example.test";
	struct spool *sp = spool_open(loop, spooldir, &st, 5);
	cr_assert_not_null(sp);
	enqueue(sp, &rcpt, 1);
	enqueue(sp, &rcpt, 1);
	cr_assert_eq(rmdir(root), 0);
	write_file(root, "");
	cr_assert_eq(spool_run(sp), 2);
	cr_assert_eq(unlink(root), 0);
	cr_assert_eq(mkdir(root, 0700), 0);
	cr_assert_eq(spool_run(sp), 0);
	cr_assert_eq(delivered(rcpt), 2);
	spool_close(sp);
}

Test(spool, partial_delivery_keeps_only_failed)
{
	const char *rcpts[] = {"alice@example.test", "x@bad.test"};
	char id[128], path[400];
	struct spool *sp = spool_open(loop, spooldir, &st, 5);
	cr_assert_not_null(sp);
	break_domain("bad.test", true);
	enqueue(sp, rcpts, 2);
	cr_assert_eq(spool_run(sp), 1);
	assert_delivered_once("alice@example.test");
	cr_assert_eq(count_suffix(queuedir, ".env", id, sizeof(id)), 1);
	snprintf(path, sizeof(path), "%s/%s.env", queuedir, id);
	char *env = slurp(path);
	cr_assert_null(strstr(env, "alice"), "%s", env);
	cr_assert_not_null(strstr(env, "\nrcpt x@bad.test\n"), "%s", env);
	cr_assert_not_null(strstr(env, prefix));
	break_domain("bad.test", false);
	cr_assert_eq(spool_run(sp), 0);
	assert_delivered_once("x@bad.test");
	assert_delivered_once("alice@example.test"); /* still once */
	spool_close(sp);
}

Test(spool, reopened_spool_finishes_queue)
{
	const char *rcpts[] = {"alice@example.test", "bob@example.test"};
	struct spool *sp = spool_open(loop, spooldir, &st, 5);
	cr_assert_not_null(sp);
	break_domain("example.test", true);
	enqueue(sp, rcpts, 2);
	enqueue(sp, rcpts, 1);
	spool_close(sp);

	break_domain("example.test", false);
	sp = spool_open(loop, spooldir, &st, 5);
	cr_assert_not_null(sp);
	cr_assert_eq(spool_pending(sp), 2);
	cr_assert_eq(spool_run(sp), 0);
	cr_assert_eq(delivered("alice@example.test"), 2);
	assert_delivered_once("bob@example.test");
	spool_close(sp);
}

/* Every kind of broken envelope (unparseable, wrong size, a recipient the
 * store refuses) is set aside with its message, named in the log, and the
 * good message beside it is delivered. */
Test(spool, corrupt_envelopes_set_aside)
{
	const char *good = "good@example.test";
	const char *bad = "victim@example.test";
	char id[128], path[400];
	cr_assert_eq(strlen(body), 20); /* the size the last case names */
	const char *corrupt[] = {
	    "",
	    "garbage\x01\x02\n",
	    "mailswitch-spool 9\nsender a\nrcpt b@example.test\n",
	    "mailswitch-spool 1\nsender a\nsize 3\nprefix 0\n",
	    "mailswitch-spool 1\nsender a\nrcpt b@example.test\nsize x\n",
	    "mailswitch-spool 1\nsender a\nrcpt b@example.test\nsize 999\n"
	    "prefix 0\n",
	    "mailswitch-spool 1\nsender a\nrcpt b@example.test\nsize 19\n"
	    "prefix 100\nshort",
	    "mailswitch-spool 1\nsender a\nrcpt \nsize 19\nprefix 0\n",
	    "mailswitch-spool 1\nsender a\nrcpt b@example.test\nsize "
	    "99999999999999999999999999\nprefix 0\n",
	    "mailswitch-spool 1\nsender a\nrcpt ../../etc@x\nsize 20\n"
	    "prefix 0\n",
	};
	for (size_t i = 0; i < sizeof(corrupt) / sizeof(*corrupt); i++) {
		struct spool *sp = spool_open(loop, spooldir, &st, 5);
		cr_assert_not_null(sp);
		enqueue(sp, &bad, 1);
		cr_assert_eq(count_suffix(queuedir, ".env", id, sizeof(id)), 1);
		snprintf(path, sizeof(path), "%s/%s.env", queuedir, id);
		write_file(path, corrupt[i]);
		enqueue(sp, &good, 1);
		cr_assert_eq(spool_run(sp), 0, "case %zu", i);
		snprintf(path, sizeof(path), "%s/%s.env.bad", queuedir, id);
		cr_assert_eq(access(path, F_OK), 0, "case %zu", i);
		snprintf(path, sizeof(path), "%s/%s.msg.bad", queuedir, id);
		cr_assert_eq(access(path, F_OK), 0, "case %zu", i);
		cr_assert_eq(delivered(good), (int)i + 1);
		cr_assert_eq(delivered(bad), -1);
		cr_assert_eq(count_suffix(queuedir, ".env", NULL, 0), 0);
		spool_close(sp);
	}
}

/* What a crash can leave: a .msg with no .env (removed), an .env with no
 * .msg (set aside), a half-written .env.tmp (removed). */
Test(spool, crash_leftovers)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/queue", spooldir);
	struct spool *sp = spool_open(loop, spooldir, &st, 5);
	cr_assert_not_null(sp);
	snprintf(path, sizeof(path), "%s/1.000001P1Q1.msg", queuedir);
	write_file(path, body);
	snprintf(path, sizeof(path), "%s/1.000001P1Q2.env.tmp", queuedir);
	write_file(path, "mailswitch-spool 1\nsend");
	snprintf(path, sizeof(path), "%s/1.000001P1Q3.env", queuedir);
	char env[512];
	snprintf(env, sizeof(env),
		 "mailswitch-spool 1\nsender \nrcpt a@example.test\n"
		 "size %zu\nprefix 0\n",
		 strlen(body));
	write_file(path, env);
	spool_close(sp);

	sp = spool_open(loop, spooldir, &st, 5);
	cr_assert_not_null(sp);
	cr_assert_eq(spool_pending(sp), 1);
	cr_assert_eq(spool_run(sp), 0);
	cr_assert_eq(count_suffix(queuedir, "", NULL, 0), 1);
	cr_assert_eq(count_suffix(queuedir, ".env.bad", NULL, 0), 1);
	cr_assert_eq(delivered("a@example.test"), -1);
	spool_close(sp);
}

/* The retry timer delivers once the store is back, then stops, so the
 * loop has nothing left and ev_run() returns. */
Test(spool, timer_retries_then_stops, .timeout = 20)
{
	const char *rcpt = "alice@example.test";
	struct spool *sp = spool_open(loop, spooldir, &st, 1);
	cr_assert_not_null(sp);
	break_domain("example.test", true);
	enqueue(sp, &rcpt, 1);
	ev_run(loop, EVRUN_ONCE); /* the timer fires, the store still fails */
	cr_assert_eq(spool_pending(sp), 1);
	break_domain("example.test", false);
	ev_run(loop, 0);
	cr_assert_eq(spool_pending(sp), 0);
	assert_delivered_once(rcpt);
	spool_close(sp);
}

/* A reopened spool with a queue starts its timer by itself. */
Test(spool, reopened_spool_retries_by_itself, .timeout = 20)
{
	const char *rcpt = "alice@example.test";
	struct spool *sp = spool_open(loop, spooldir, &st, 1);
	cr_assert_not_null(sp);
	break_domain("example.test", true);
	enqueue(sp, &rcpt, 1);
	spool_close(sp);
	break_domain("example.test", false);
	sp = spool_open(loop, spooldir, &st, 1);
	cr_assert_not_null(sp);
	ev_run(loop, 0);
	cr_assert_eq(spool_pending(sp), 0);
	assert_delivered_once(rcpt);
	spool_close(sp);
}
