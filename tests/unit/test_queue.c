/* The outbound queue's pieces without a network: the node config's roles,
 * routes and queue keys; queue files (enqueue, envelopes, listing,
 * removal, the flock claim); group commit, inline and on the syncing
 * thread with a real libev loop; SRS addresses there and back. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <ev.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../node/config/config.h"
#include "../../node/queue/queue.h"
#include "../../node/queue/queue_srs.h"
#include "../../node/queue/queue_sync.h"
#include "maildir_fixture.h"

static char dir[64], ini[128];

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/queue-test-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(ini, sizeof(ini), "%s/node.ini", dir);
}

static void
teardown(void)
{
	rmtree(dir);
}

static struct node_config *
load(const char *text, char *err, size_t errlen)
{
	FILE *f = fopen(ini, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"[node]\nname = n1\nredis = 127.0.0.1:6379\nstore = %s\n"
		"spool = %s\n%s",
		dir, dir, text);
	fclose(f);
	return node_config_load(ini, NULL, 0, err, errlen);
}

TestSuite(queue, .init = setup, .fini = teardown);

Test(queue, config_defaults_roles_and_routes)
{
	char err[2048], want[1100];
	struct node_config *c =
	    load("[listen]\nsmtp = 127.0.0.1:2525\n"
		 "[route]\nPartner.Example = 10.1.2.3:2525\n"
		 "v6.example = [::1]:25\n",
		 err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_expect_eq(c->roles, DUTY_ALL);
	snprintf(want, sizeof(want), "%s/.queue", dir);
	cr_expect_str_eq(c->queue, want);
	cr_expect_eq(c->queue_retry_min_s, 300);
	cr_expect_eq(c->queue_retry_max_s, 3600);
	cr_expect_eq(c->queue_lease_s, 30);
	cr_expect_eq(c->mx_port, 25);
	cr_expect_eq(c->smtp_tls, SMTP_TLS_MAY);
	const struct node_hostport *r = node_route_find(c, "partner.EXAMPLE");
	cr_assert_not_null(r);
	cr_expect_str_eq(r->host, "10.1.2.3");
	cr_expect_eq(r->port, 2525);
	r = node_route_find(c, "v6.example");
	cr_assert_not_null(r);
	cr_expect_str_eq(r->host, "::1");
	cr_expect_null(node_route_find(c, "other.example"));
	free(c);
}

Test(queue, config_mta_alone_needs_no_listener)
{
	char err[2048];
	struct node_config *c = load("roles = mta\n", err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_expect_eq(c->roles, DUTY_MTA);
	free(c);
}

Test(queue, config_errors_name_file_and_line)
{
	char err[2048], want[256];
	struct node_config *c =
	    load("roles = mx, mta\n[listen]\nsmtp = 127.0.0.1:2525\n"
		 "imap = 127.0.0.1:2143\n",
		 err, sizeof(err));
	cr_assert_null(c);
	snprintf(want, sizeof(want),
		 "%s:9: [listen]: imap is a listener of role access", ini);
	cr_expect(strstr(err, want) != NULL, "want %s in %s", want, err);

	c = load("roles = mx, courier\n", err, sizeof(err));
	cr_assert_null(c);
	snprintf(want, sizeof(want), "%s:6: roles: unknown role \"courier\"",
		 ini);
	cr_expect(strstr(err, want) != NULL, "want %s in %s", want, err);

	c = load("smtp_tls = sometimes\n[route]\nx.example = nohost\n", err,
		 sizeof(err));
	cr_assert_null(c);
	cr_expect(strstr(err, "is not may, encrypt or verify") != NULL, "%s",
		  err);
	cr_expect(strstr(err, "x.example: bad \"nohost\"") != NULL, "%s", err);

	/* checked once the file parses */
	c = load("roles = mta\nqueue_retry_min_s = 600\n"
		 "queue_retry_max_s = 60\n",
		 err, sizeof(err));
	cr_assert_null(c);
	cr_expect(strstr(err, "queue_retry_max_s is below") != NULL, "%s", err);
}

/* A message file of text, for enqueue. */
static int
message(const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/msg-XXXXXX", dir);
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	unlink(path);
	cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	return fd;
}

/* The test's queue in dir/q, its path in qdir (QDIR_MAX bytes). */
#define QDIR_MAX 128
static struct queue *
open_queue(char *qdir)
{
	snprintf(qdir, QDIR_MAX, "%s/q", dir);
	struct queue *q = queue_open(qdir);
	cr_assert_not_null(q);
	return q;
}

Test(queue, enqueue_read_rewrite_list_remove)
{
	char qdir[QDIR_MAX], id[QUEUE_ID_MAX], name[256], buf[256];
	snprintf(qdir, sizeof(qdir), "%s/q/deep", dir);
	struct queue *q = queue_open(qdir);
	cr_assert_not_null(q);
	const char *rcpts[] = {"a@remote.test", "b@other.test"};
	const char *text = "Subject: x\r\n\r\nbody\r\n";
	int fd = message(text);
	cr_assert_eq(queue_enqueue(q, fd, strlen(text), "Received: r\r\n",
				   "s@example.test", rcpts, 2, id),
		     0);
	cr_expect(queue_id_ok(id), "%s", id);
	cr_expect(llabs(queue_id_time(id) - (long long)time(NULL)) <= 2);
	/* the message as it will be sent: prefix, then the data */
	snprintf(name, sizeof(name), "%s/%s.msg", qdir, id);
	int m = open(name, O_RDONLY);
	cr_assert(m >= 0);
	ssize_t n = read(m, buf, sizeof(buf) - 1);
	close(m);
	cr_assert(n > 0);
	buf[n] = '\0';
	cr_expect_str_eq(buf, "Received: r\r\nSubject: x\r\n\r\nbody\r\n");

	struct queue_env e;
	cr_assert_eq(queue_env_read(q, id, &e), 0);
	cr_expect_str_eq(e.sender, "s@example.test");
	cr_assert_eq(e.nrcpt, 2);
	cr_expect_str_eq(e.rcpt[1].addr, "b@other.test");
	cr_expect_eq(e.rcpt[0].state, QR_QUEUED);
	cr_expect(!e.held && !queue_env_done(&e));
	e.rcpt[0].state = QR_SENT;
	e.rcpt[1].state = QR_DEFERRED;
	e.rcpt[1].attempts = 3;
	e.rcpt[1].next_try = 1234567890;
	snprintf(e.rcpt[1].reply, sizeof(e.rcpt[1].reply),
		 "451 4.3.0 try again later");
	e.held = true;
	cr_assert_eq(queue_env_write(q, &e), 0);
	queue_env_free(&e);
	cr_assert_eq(queue_env_read(q, id, &e), 0);
	cr_expect(e.held);
	cr_expect_eq(e.rcpt[0].state, QR_SENT);
	cr_expect_eq(e.rcpt[1].attempts, 3);
	cr_expect_eq(e.rcpt[1].next_try, 1234567890);
	cr_expect_str_eq(e.rcpt[1].reply, "451 4.3.0 try again later");
	e.rcpt[1].state = QR_FAILED;
	cr_expect(queue_env_done(&e));
	queue_env_free(&e);

	size_t depth;
	long long oldest;
	queue_stats(q, &depth, &oldest);
	cr_expect_eq(depth, 1);
	cr_expect(oldest >= 0 && oldest <= 2);

	/* the claim while Redis is away: one holder at a time */
	int l1 = queue_lock(q, id);
	cr_assert(l1 >= 0);
	errno = 0;
	cr_expect_eq(queue_lock(q, id), -1);
	cr_expect_eq(errno, EWOULDBLOCK);
	close(l1);
	int l2 = queue_lock(q, id);
	cr_expect(l2 >= 0);
	close(l2);

	cr_assert_eq(queue_remove(q, id), 0);
	cr_expect_eq(queue_env_read(q, id, &e), -1);
	cr_expect_eq(errno, ENOENT);
	cr_expect_eq(queue_each(q, NULL, NULL), 0);
	cr_expect_eq(queue_lock(q, id), -1);
	cr_expect_eq(errno, ENOENT);
	close(fd);
	queue_close(q);
}

/* What a node that died between writing and committing left: removed
 * once its ID is older than the bound, never a committed message, never
 * one that may still be committing. */
static void
touch_at(const char *qdir, const char *id, const char *suffix)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s%s", qdir, id, suffix);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f, "%s", p);
	fputs("x\n", f);
	fclose(f);
}

static bool
exists_at(const char *qdir, const char *id, const char *suffix)
{
	char p[256];
	snprintf(p, sizeof(p), "%s/%s%s", qdir, id, suffix);
	return access(p, F_OK) == 0;
}

Test(queue, sweep_removes_only_old_uncommitted)
{
	char qdir[QDIR_MAX], old[5][QUEUE_ID_MAX], young[QUEUE_ID_MAX];
	struct queue *q = open_queue(qdir);
	unsigned long long t = (unsigned long long)time(NULL);
	for (int i = 0; i < 5; i++)
		snprintf(old[i], sizeof(old[i]), "%08llX%05X%06X",
			 t - 2 * 86400, i, 0xABCDEF);
	snprintf(young, sizeof(young), "%08llX%05X%06X", t - 60, 0, 0x123456);
	touch_at(qdir, old[0], ".msg"); /* written, never committed */
	touch_at(qdir, old[0], ".env.tmp");
	touch_at(qdir, old[1], ".msg");
	touch_at(qdir, old[2], ".env.tmp");
	touch_at(qdir, old[3], ".msg"); /* committed: queued for days */
	touch_at(qdir, old[3], ".env");
	touch_at(qdir, old[4], ".msg"); /* committed, a rewrite cut short */
	touch_at(qdir, old[4], ".env");
	touch_at(qdir, old[4], ".env.tmp");
	touch_at(qdir, young, ".msg"); /* may be committing right now */
	touch_at(qdir, young, ".env.tmp");
	cr_assert_eq(queue_sweep(q, 86400, NULL, NULL), 3);
	for (int i = 0; i < 3; i++)
		cr_expect(!exists_at(qdir, old[i], ".msg") &&
			      !exists_at(qdir, old[i], ".env.tmp"),
			  "%s", old[i]);
	cr_expect(exists_at(qdir, old[3], ".msg") &&
		  exists_at(qdir, old[3], ".env"));
	cr_expect(exists_at(qdir, old[4], ".msg") &&
		  exists_at(qdir, old[4], ".env.tmp"));
	cr_expect(exists_at(qdir, young, ".msg") &&
		  exists_at(qdir, young, ".env.tmp"));
	cr_assert_eq(queue_sweep(q, 86400, NULL, NULL), 0);
	queue_close(q);
}

Test(queue, refuses_bad_input)
{
	char qdir[QDIR_MAX], id[QUEUE_ID_MAX], name[256];
	struct queue *q = open_queue(qdir);
	int fd = message("x\r\n");
	const char *bad[] = {"a b@remote.test"};
	cr_expect_eq(queue_enqueue(q, fd, 3, "", "s@x", bad, 1, id), -1);
	cr_expect_eq(errno, EINVAL);
	cr_expect_eq(queue_each(q, NULL, NULL), 0);
	/* an envelope that does not parse */
	snprintf(name, sizeof(name), "%s/0000000000000000000.env", qdir);
	FILE *f = fopen(name, "w");
	fputs("mailswitch-queue 1\ncreated 1\nsender x\nrcpt broken\n", f);
	fclose(f);
	struct queue_env e;
	cr_expect_eq(queue_env_read(q, "0000000000000000000", &e), -1);
	cr_expect_eq(errno, EINVAL);
	cr_expect(!queue_id_ok("../etc/passwd"));
	cr_expect(!queue_id_ok("0000000000000000000a"));
	close(fd);
	queue_close(q);
}

/* How many files qdir holds. */
static int
files_in(const char *qdir)
{
	DIR *d = opendir(qdir);
	struct dirent *de;
	int n = 0;
	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

Test(queue, written_then_committed_together_or_dropped)
{
	char qdir[QDIR_MAX];
	struct queue *q = open_queue(qdir);
	const char *rcpts[] = {"a@remote.test"};
	int fd = message("Subject: x\r\n\r\nbody\r\n");
	struct queue_pending p[3], *ps[2] = {&p[0], &p[1]};
	for (int i = 0; i < 3; i++)
		cr_assert_eq(queue_write(q, fd, 20, "", "s@example.test", rcpts,
					 1, &p[i]),
			     0);
	/* written, not visible: no .env yet, ID.msg and ID.env.tmp each */
	cr_expect_eq(queue_each(q, NULL, NULL), 0);
	cr_expect_eq(files_in(qdir), 6);
	cr_expect_eq(queue_commit(q, ps, 2), 0);
	cr_expect_eq(p[0].err, 0);
	cr_expect_eq(p[1].err, 0);
	cr_expect_eq(queue_each(q, NULL, NULL), 2);
	struct queue_env e;
	cr_assert_eq(queue_env_read(q, p[1].id, &e), 0);
	cr_expect_str_eq(e.rcpt[0].addr, "a@remote.test");
	queue_env_free(&e);
	queue_drop(q, &p[2]);
	cr_expect_eq(files_in(qdir), 4); /* two .msg, two .env */
	close(fd);
	queue_close(q);
}

Test(queue, commit_failure_removes_the_files)
{
	char qdir[QDIR_MAX];
	struct queue *q = open_queue(qdir);
	const char *rcpts[] = {"a@remote.test"};
	int fd = message("Subject: x\r\n\r\nbody\r\n");
	struct queue_pending p[2], *ps[2] = {&p[0], &p[1]};
	for (int i = 0; i < 2; i++)
		cr_assert_eq(queue_write(q, fd, 20, "", "s@x", rcpts, 1, &p[i]),
			     0);
	/* p[1]'s message file fails its fsync: a pipe answers EINVAL */
	int pipefd[2];
	cr_assert_eq(pipe(pipefd), 0);
	close(pipefd[1]);
	close(p[1].msgfd);
	p[1].msgfd = pipefd[0];
	cr_expect_eq(queue_commit(q, ps, 2), 1);
	cr_expect_eq(p[0].err, 0);
	cr_expect_eq(p[1].err, EINVAL);
	cr_expect_eq(queue_each(q, NULL, NULL), 1);
	cr_expect_eq(files_in(qdir), 2, "only p[0]'s .msg and .env are left");
	close(fd);
	queue_close(q);
}

static struct ev_loop *sync_loop;
static int sync_pending;

struct synced {
	int calls, err;
	size_t n;
	char id[QUEUE_ID_MAX];
};

static void
on_synced(void *arg, const struct queue_pending *p, size_t n)
{
	struct synced *r = arg;
	r->calls++;
	r->n = n;
	r->err = p[0].err;
	snprintf(r->id, sizeof(r->id), "%s", p[n - 1].id);
	if (--sync_pending == 0)
		ev_break(sync_loop, EVBREAK_ALL);
}

static void
on_sync_deadline(struct ev_loop *l, ev_timer *t, int revents)
{
	(void)t;
	(void)revents;
	ev_break(l, EVBREAK_ALL);
}

Test(queue, sync_thread_commits_batches_and_cancels)
{
	char qdir[QDIR_MAX];
	struct queue *q = open_queue(qdir);
	sync_loop = ev_loop_new(EVFLAG_AUTO);
	struct queue_sync *s = queue_sync_new(sync_loop, q);
	cr_assert_not_null(s);
	const char *rcpts[] = {"a@remote.test"};
	int fd = message("Subject: x\r\n\r\nbody\r\n");
	struct synced r[20];
	struct queue_pending p[2];
	memset(r, 0, sizeof(r));
	/* 20 jobs, one of two messages, one cancelled at once */
	for (int i = 0; i < 20; i++) {
		size_t n = i == 7 ? 2 : 1;
		for (size_t k = 0; k < n; k++)
			cr_assert_eq(
			    queue_write(q, fd, 20, "", "s@x", rcpts, 1, &p[k]),
			    0);
		uint64_t id = queue_sync_start(s, p, n, on_synced, &r[i]);
		cr_assert(id > 0);
		if (i == 3)
			queue_sync_cancel(s, id);
		else
			sync_pending++;
	}
	ev_timer deadline;
	ev_timer_init(&deadline, on_sync_deadline, 20., 0.);
	ev_timer_start(sync_loop, &deadline);
	ev_run(sync_loop, 0);
	ev_timer_stop(sync_loop, &deadline);
	cr_assert_eq(sync_pending, 0, "%d callbacks missing", sync_pending);
	for (int i = 0; i < 20; i++) {
		cr_expect_eq(r[i].calls, i == 3 ? 0 : 1, "job %d", i);
		if (i == 3)
			continue;
		cr_expect_eq(r[i].err, 0);
		cr_expect_eq(r[i].n, i == 7 ? 2u : 1u);
		struct queue_env e;
		cr_expect_eq(queue_env_read(q, r[i].id, &e), 0, "%s", r[i].id);
		queue_env_free(&e);
	}
	/* the cancelled one: dropped before its batch, or committed and
	 * left for a runner's scan; never half */
	int n = queue_each(q, NULL, NULL);
	cr_expect(n == 20 || n == 21, "%d", n);
	cr_expect_eq(files_in(qdir), 2 * n);
	/* freed with a job in flight: no callback, nothing leaked */
	cr_assert_eq(queue_write(q, fd, 20, "", "s@x", rcpts, 1, &p[0]), 0);
	cr_assert(queue_sync_start(s, p, 1, on_synced, &r[0]) > 0);
	queue_sync_free(s);
	cr_expect_eq(r[0].calls, 1);
	ev_loop_destroy(sync_loop);
	close(fd);
	queue_close(q);
}

Test(queue, srs_there_and_back)
{
	char qdir[QDIR_MAX], srs[512], back[512];
	struct queue *q = open_queue(qdir);
	cr_assert_eq(queue_srs_forward(q, "Dan.X@elsewhere.test",
				       "example.test", srs, sizeof(srs)),
		     0);
	cr_expect(strncmp(srs, "SRS0=", 5) == 0, "%s", srs);
	cr_expect(strstr(srs, "=elsewhere.test=Dan.X@example.test") != NULL,
		  "%s", srs);
	cr_expect_eq(queue_srs_reverse(q, srs, back, sizeof(back)), 1);
	cr_expect_str_eq(back, "Dan.X@elsewhere.test");
	/* case changed on the way (some MTAs lowercase): still ours */
	for (char *p = srs; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	cr_expect_eq(queue_srs_reverse(q, srs, back, sizeof(back)), 1);
	srs[6] = srs[6] == 'a' ? 'b' : 'a'; /* a forged hash */
	cr_expect_eq(queue_srs_reverse(q, srs, back, sizeof(back)), -1);
	cr_expect_eq(
	    queue_srs_reverse(q, "alice@example.test", back, sizeof(back)), 0);
	cr_expect_eq(
	    queue_srs_reverse(q, "SRS0=x@example.test", back, sizeof(back)),
	    -1);
	cr_assert_eq(queue_srs_forward(q, "", "example.test", srs, sizeof(srs)),
		     0);
	cr_expect_str_eq(srs, "");
	/* the secret is kept for every node, mode 0600 */
	struct stat st;
	char secret[256];
	snprintf(secret, sizeof(secret), "%s/.srs-secret", qdir);
	cr_assert_eq(stat(secret, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0600);
	queue_close(q);
}
