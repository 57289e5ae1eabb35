/* The queue's files: enqueue, envelopes read and rewritten, removal,
 * listing, and the flock that claims a message while Redis is away. The
 * formats are in queue.h. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../../common/fdio.h"
#include "../../common/log.h"
#include "queue.h"

#define QUEUE_ENV_VERSION "mailswitch-queue 1"
#define QUEUE_ENV_MAX (4 << 20) /* an envelope bigger than this is bad */
#define QUEUE_NAME_MAX (QUEUE_ID_MAX + 16)

struct queue {
	char dir[4096];
	int fd;
};

static const char *const queue_states[] = {
    [QR_QUEUED] = "queued",
    [QR_DEFERRED] = "deferred",
    [QR_SENT] = "sent",
    [QR_FAILED] = "failed",
};

const char *
queue_state_name(enum queue_rcpt_state st)
{
	return queue_states[st];
}

struct queue *
queue_open(const char *dir)
{
	struct queue *q;
	if (strlen(dir) >= sizeof(q->dir)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	snprintf(q->dir, sizeof(q->dir), "%s", dir);
	if (mkdirs(dir, 0700) < 0 ||
	    (q->fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		int saved = errno;
		free(q);
		errno = saved;
		return NULL;
	}
	return q;
}

void
queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	close(q->fd);
	free(q);
}

const char *
queue_path(const struct queue *q)
{
	return q->dir;
}

int
queue_dirfd(const struct queue *q)
{
	return q->fd;
}

bool
queue_id_ok(const char *id)
{
	size_t i;
	for (i = 0; id[i]; i++)
		if (!isxdigit((unsigned char)id[i]) ||
		    islower((unsigned char)id[i]))
			return false;
	return i == QUEUE_ID_LEN;
}

long long
queue_id_time(const char *id)
{
	char t[9];
	memcpy(t, id, 8);
	t[8] = '\0';
	return strtoll(t, NULL, 16);
}

static void
queue_new_id(char id[QUEUE_ID_MAX])
{
	struct timeval tv;
	uint32_t r = 0;
	gettimeofday(&tv, NULL);
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)rand();
	snprintf(id, QUEUE_ID_MAX, "%08llX%05lX%06X",
		 (unsigned long long)tv.tv_sec & 0xffffffffULL,
		 (unsigned long)tv.tv_usec, (unsigned)(r & 0xffffff));
}

/* A value that fits one envelope line field. */
static bool
queue_word_ok(const char *s)
{
	return strpbrk(s, " \t\r\n") == NULL && strlen(s) < QUEUE_ADDR_MAX;
}

/* Copies len bytes of in (from offset 0) to out with every bare CR or
 * LF made a CRLF (RFC 5321 2.3.8), so what leaves, and what DKIM signs,
 * has only CRLF line ends. */
static int
queue_copy_crlf(int in, int out, size_t len)
{
	char buf[65536], res[2 * sizeof(buf) + 1];
	size_t off = 0, n = 0;
	bool cr = false; /* the last byte seen was a CR */
	while (off < len) {
		size_t want = len - off < sizeof(buf) ? len - off : sizeof(buf);
		ssize_t got = pread(in, buf, want, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			if (got == 0)
				errno = EIO;
			return -1;
		}
		n = 0;
		for (ssize_t i = 0; i < got; i++) {
			char c = buf[i];
			if (cr && c != '\n')
				res[n++] = '\n'; /* CR alone: CRLF */
			if (c == '\n' && !cr)
				res[n++] = '\r'; /* LF alone: CRLF */
			res[n++] = c;
			cr = c == '\r';
		}
		if (fd_write_all(out, res, n) < 0)
			return -1;
		off += (size_t)got;
	}
	return cr ? fd_write_all(out, "\n", 1) : 0;
}

/* Creates ID.msg with a new ID (O_EXCL: an ID another node took is
 * skipped) and writes prefix and the message into it, unsynced. Returns
 * its open fd, or -1 with errno and no file left. */
static int
queue_msg_write(struct queue *q, int in, size_t len, const char *prefix,
		char id[QUEUE_ID_MAX])
{
	char name[QUEUE_NAME_MAX];
	int out = -1, saved;
	for (int tries = 0; out < 0 && tries < 8; tries++) {
		queue_new_id(id);
		snprintf(name, sizeof(name), "%s.msg", id);
		out = openat(
		    q->fd, name,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (out < 0 && errno != EEXIST)
			return -1;
	}
	if (out < 0)
		return -1;
	if (fd_write_all(out, prefix, strlen(prefix)) < 0 ||
	    queue_copy_crlf(in, out, len) < 0) {
		saved = errno;
		close(out);
		unlinkat(q->fd, name, 0);
		errno = saved;
		return -1;
	}
	return out;
}

static void queue_env_fill(FILE *f, void *arg);

/* Writes ID.env.tmp, unsynced. Returns its open fd, or -1 with errno and
 * no file left. */
static int
queue_env_tmp_write(struct queue *q, const struct queue_env *env)
{
	char tmp[QUEUE_NAME_MAX], *buf = NULL;
	size_t len = 0;
	int fd, saved;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL)
		return -1;
	queue_env_fill(f, (void *)env);
	if (fclose(f) != 0) {
		free(buf);
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.env.tmp", env->id);
	fd =
	    openat(q->fd, tmp,
		   O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 && fd_write_all(fd, buf, len) < 0) {
		saved = errno;
		close(fd);
		unlinkat(q->fd, tmp, 0);
		errno = saved;
		fd = -1;
	}
	saved = errno;
	free(buf);
	errno = saved;
	return fd;
}

int
queue_write(struct queue *q, int fd, size_t len, const char *prefix,
	    const char *sender, const char *const *rcpts, size_t n,
	    struct queue_pending *p)
{
	struct queue_env env;
	char name[QUEUE_NAME_MAX];
	int saved;

	if (n == 0 || n > QUEUE_RCPT_MAX || !queue_word_ok(sender)) {
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (rcpts[i][0] == '\0' || !queue_word_ok(rcpts[i])) {
			errno = EINVAL;
			return -1;
		}
	memset(&env, 0, sizeof(env));
	if ((env.rcpt = calloc(n, sizeof(*env.rcpt))) == NULL)
		return -1;
	p->err = 0;
	p->envfd = -1;
	if ((p->msgfd = queue_msg_write(q, fd, len, prefix, p->id)) < 0)
		goto fail;
	snprintf(env.id, sizeof(env.id), "%s", p->id);
	env.created = queue_id_time(p->id);
	snprintf(env.sender, sizeof(env.sender), "%s", sender);
	env.nrcpt = n;
	for (size_t i = 0; i < n; i++)
		snprintf(env.rcpt[i].addr, sizeof(env.rcpt[i].addr), "%s",
			 rcpts[i]);
	if ((p->envfd = queue_env_tmp_write(q, &env)) < 0) {
		saved = errno;
		close(p->msgfd);
		snprintf(name, sizeof(name), "%s.msg", p->id);
		unlinkat(q->fd, name, 0);
		errno = saved;
		goto fail;
	}
	free(env.rcpt);
	return 0;
fail:
	saved = errno;
	free(env.rcpt);
	p->msgfd = p->envfd = -1;
	errno = saved;
	return -1;
}

/* Removes what a pending message left: ID.env, ID.env.tmp, ID.msg. */
static void
queue_pending_unlink(struct queue *q, const char *id)
{
	static const char *const ext[] = {".env", ".env.tmp", ".msg"};
	char name[QUEUE_NAME_MAX];
	for (size_t i = 0; i < sizeof(ext) / sizeof(*ext); i++) {
		snprintf(name, sizeof(name), "%s%s", id, ext[i]);
		unlinkat(q->fd, name, 0);
	}
}

/* Closes p's files; a failure to (the last chance to hear of a write
 * error) becomes its err. */
static void
queue_pending_close(struct queue_pending *p)
{
	if (p->msgfd >= 0 && close(p->msgfd) < 0 && p->err == 0)
		p->err = errno;
	if (p->envfd >= 0 && close(p->envfd) < 0 && p->err == 0)
		p->err = errno;
	p->msgfd = p->envfd = -1;
}

void
queue_drop(struct queue *q, struct queue_pending *p)
{
	queue_pending_close(p);
	queue_pending_unlink(q, p->id);
}

/* Every pending one not failed yet gets err (a directory fsync failed). */
static void
queue_commit_fail(struct queue_pending *const *ps, size_t n, int err)
{
	for (size_t i = 0; i < n; i++)
		if (ps[i]->err == 0)
			ps[i]->err = err;
}

size_t
queue_commit(struct queue *q, struct queue_pending *const *ps, size_t n)
{
	char tmp[QUEUE_NAME_MAX], name[QUEUE_NAME_MAX];
	size_t failed = 0;

	for (size_t i = 0; i < n; i++) {
		ps[i]->err = 0;
		sync_file_range(ps[i]->msgfd, 0, 0, SYNC_FILE_RANGE_WRITE);
		sync_file_range(ps[i]->envfd, 0, 0, SYNC_FILE_RANGE_WRITE);
	}
	for (size_t i = 0; i < n; i++) {
		if (fsync(ps[i]->msgfd) < 0 || fsync(ps[i]->envfd) < 0)
			ps[i]->err = errno;
		queue_pending_close(ps[i]);
	}
	/* Every ID.msg is there before its .env can be */
	if (fsync(q->fd) < 0)
		queue_commit_fail(ps, n, errno);
	for (size_t i = 0; i < n; i++) {
		if (ps[i]->err)
			continue;
		snprintf(tmp, sizeof(tmp), "%s.env.tmp", ps[i]->id);
		snprintf(name, sizeof(name), "%s.env", ps[i]->id);
		if (renameat(q->fd, tmp, q->fd, name) < 0)
			ps[i]->err = errno;
	}
	if (fsync(q->fd) < 0)
		queue_commit_fail(ps, n, errno);
	for (size_t i = 0; i < n; i++)
		if (ps[i]->err) {
			queue_pending_unlink(q, ps[i]->id);
			failed++;
		}
	return failed;
}

int
queue_enqueue(struct queue *q, int fd, size_t len, const char *prefix,
	      const char *sender, const char *const *rcpts, size_t n,
	      char id[QUEUE_ID_MAX])
{
	struct queue_pending p, *ps = &p;
	if (queue_write(q, fd, len, prefix, sender, rcpts, n, &p) < 0)
		return -1;
	snprintf(id, QUEUE_ID_MAX, "%s", p.id);
	if (queue_commit(q, &ps, 1) > 0) {
		errno = p.err;
		return -1;
	}
	return 0;
}

static void
queue_env_fill(FILE *f, void *arg)
{
	const struct queue_env *env = arg;
	fprintf(f, "%s\ncreated %lld\nsender %s\nheld %d\nwarned %d\n",
		QUEUE_ENV_VERSION, env->created, env->sender, env->held ? 1 : 0,
		env->warned ? 1 : 0);
	for (size_t i = 0; i < env->nrcpt; i++) {
		const struct queue_rcpt *r = &env->rcpt[i];
		fprintf(f, "rcpt %s %s %d %lld %s\n", r->addr,
			queue_states[r->state], r->attempts, r->next_try,
			r->reply);
	}
}

int
queue_env_write(struct queue *q, const struct queue_env *env)
{
	char tmp[QUEUE_NAME_MAX], name[QUEUE_NAME_MAX];
	snprintf(tmp, sizeof(tmp), "%s.env.tmp", env->id);
	snprintf(name, sizeof(name), "%s.env", env->id);
	return fd_write_replace(q->fd, tmp, name, queue_env_fill, (void *)env);
}

void
queue_env_free(struct queue_env *env)
{
	free(env->rcpt);
	memset(env, 0, sizeof(*env));
}

bool
queue_env_done(const struct queue_env *env)
{
	for (size_t i = 0; i < env->nrcpt; i++)
		if (env->rcpt[i].state == QR_QUEUED ||
		    env->rcpt[i].state == QR_DEFERRED)
			return false;
	return true;
}

/* One "rcpt ADDRESS STATE ATTEMPTS NEXT-TRY REPLY" line's fields. */
static int
queue_rcpt_parse(char *p, struct queue_rcpt *r)
{
	char *f[4];
	for (int i = 0; i < 4; i++) {
		f[i] = p;
		char *sp = strchr(p, ' ');
		if (sp == NULL)
			return -1;
		*sp = '\0';
		p = sp + 1;
	}
	if (f[0][0] == '\0' || strlen(f[0]) >= sizeof(r->addr))
		return -1;
	snprintf(r->addr, sizeof(r->addr), "%s", f[0]);
	size_t st;
	for (st = 0; st < sizeof(queue_states) / sizeof(*queue_states); st++)
		if (strcmp(f[1], queue_states[st]) == 0)
			break;
	if (st == sizeof(queue_states) / sizeof(*queue_states))
		return -1;
	r->state = (enum queue_rcpt_state)st;
	char *end;
	r->attempts = (int)strtol(f[2], &end, 10);
	if (*end || f[2][0] == '\0')
		return -1;
	r->next_try = strtoll(f[3], &end, 10);
	if (*end || f[3][0] == '\0')
		return -1;
	snprintf(r->reply, sizeof(r->reply), "%s", p);
	return 0;
}

int
queue_env_read(struct queue *q, const char *id, struct queue_env *env)
{
	char name[QUEUE_NAME_MAX], *buf, *line, *save;
	size_t cap = 0, len;
	bool version = false, created = false, sender = false;

	memset(env, 0, sizeof(*env));
	if (!queue_id_ok(id)) {
		errno = EINVAL;
		return -1;
	}
	snprintf(name, sizeof(name), "%s.env", id);
	if ((buf = fd_read_small(q->fd, name, QUEUE_ENV_MAX, &len)) == NULL) {
		if (errno == EFBIG)
			errno = EINVAL;
		return -1;
	}
	snprintf(env->id, sizeof(env->id), "%s", id);
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!version) {
			if (strcmp(line, QUEUE_ENV_VERSION) != 0)
				goto bad;
			version = true;
		} else if (strncmp(line, "created ", 8) == 0) {
			env->created = strtoll(line + 8, NULL, 10);
			created = true;
		} else if (strncmp(line, "sender ", 7) == 0 ||
			   strcmp(line, "sender") == 0) {
			snprintf(env->sender, sizeof(env->sender), "%s",
				 line[6] ? line + 7 : "");
			sender = true;
		} else if (strncmp(line, "held ", 5) == 0) {
			env->held = line[5] == '1';
		} else if (strncmp(line, "warned ", 7) == 0) {
			env->warned = line[7] == '1';
		} else if (strncmp(line, "rcpt ", 5) == 0) {
			if (env->nrcpt == QUEUE_RCPT_MAX)
				goto bad;
			if (env->nrcpt == cap) {
				cap = cap ? cap * 2 : 4;
				void *p = realloc(env->rcpt,
						  cap * sizeof(*env->rcpt));
				if (p == NULL)
					goto fail;
				env->rcpt = p;
			}
			memset(&env->rcpt[env->nrcpt], 0, sizeof(*env->rcpt));
			if (queue_rcpt_parse(line + 5, &env->rcpt[env->nrcpt]) <
			    0)
				goto bad;
			env->nrcpt++;
		} else
			goto bad;
	}
	if (!version || !created || !sender || env->nrcpt == 0)
		goto bad;
	free(buf);
	return 0;
bad:
	errno = EINVAL;
fail:;
	int saved = errno;
	free(buf);
	queue_env_free(env);
	errno = saved;
	return -1;
}

int
queue_unlink(struct queue *q, const char *id)
{
	char name[QUEUE_NAME_MAX];
	int rc = 0;
	snprintf(name, sizeof(name), "%s.env", id);
	if (unlinkat(q->fd, name, 0) < 0 && errno != ENOENT)
		rc = -1;
	snprintf(name, sizeof(name), "%s.msg", id);
	if (unlinkat(q->fd, name, 0) < 0 && errno != ENOENT)
		rc = -1;
	return rc;
}

int
queue_remove(struct queue *q, const char *id)
{
	int rc = queue_unlink(q, id);
	if (fsync(q->fd) < 0)
		rc = -1;
	return rc;
}

int
queue_dir_sync(struct queue *q)
{
	return fsync(q->fd);
}

/* Calls fn(id, suffix, arg) for every file of the queue named by a
 * valid ID and a suffix (".env", ".msg", ".env.tmp", ...), in no
 * particular order, until fn returns non-zero. */
static void
queue_walk(struct queue *q,
	   int (*fn)(const char *id, const char *suffix, void *arg), void *arg)
{
	DIR *d = fd_opendir(q->fd);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char id[QUEUE_ID_MAX];
		if (strlen(de->d_name) <= QUEUE_ID_LEN)
			continue;
		memcpy(id, de->d_name, QUEUE_ID_LEN);
		id[QUEUE_ID_LEN] = '\0';
		if (queue_id_ok(id) && fn(id, de->d_name + QUEUE_ID_LEN, arg))
			break;
	}
	closedir(d);
}

struct queue_each_acc {
	int (*fn)(const char *id, void *arg);
	void *arg;
	size_t n;
};

static int
queue_each_one(const char *id, const char *suffix, void *arg)
{
	struct queue_each_acc *a = arg;
	if (strcmp(suffix, ".env") != 0)
		return 0;
	a->n++;
	return a->fn ? a->fn(id, a->arg) : 0;
}

size_t
queue_each(struct queue *q, int (*fn)(const char *id, void *arg), void *arg)
{
	struct queue_each_acc a = {fn, arg, 0};
	queue_walk(q, queue_each_one, &a);
	return a.n;
}

/* Keeps the oldest ID's time in *arg (0: none yet). */
static int
queue_stats_one(const char *id, void *arg)
{
	long long *oldest = arg, t = queue_id_time(id);
	if (*oldest == 0 || t < *oldest)
		*oldest = t;
	return 0;
}

void
queue_stats(struct queue *q, size_t *depth, long long *oldest_s)
{
	long long oldest = 0;
	*depth = queue_each(q, queue_stats_one, &oldest);
	long long now = (long long)time(NULL);
	*oldest_s = oldest && now > oldest ? now - oldest : 0;
}

/* Whether name (of the queue's directory) exists. */
static bool
queue_has(struct queue *q, const char *id, const char *suffix)
{
	char name[QUEUE_NAME_MAX];
	snprintf(name, sizeof(name), "%s%s", id, suffix);
	return faccessat(q->fd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0 ||
	       errno != ENOENT;
}

struct queue_sweep_acc {
	struct queue *q;
	long long before; /* IDs made before this are old enough */
	void (*fn)(const char *id, void *arg);
	void *arg;
	size_t n;
};

static int
queue_sweep_one(const char *id, const char *suffix, void *arg)
{
	struct queue_sweep_acc *a = arg;
	char name[QUEUE_NAME_MAX];
	if ((strcmp(suffix, ".msg") != 0 && strcmp(suffix, ".env.tmp") != 0) ||
	    queue_id_time(id) >= a->before || queue_has(a->q, id, ".env"))
		return 0;
	bool gone = false;
	snprintf(name, sizeof(name), "%s.env.tmp", id);
	gone |= unlinkat(a->q->fd, name, 0) == 0;
	snprintf(name, sizeof(name), "%s.msg", id);
	gone |= unlinkat(a->q->fd, name, 0) == 0;
	if (!gone)
		return 0; /* its other file's entry came first */
	a->n++;
	if (a->fn)
		a->fn(id, a->arg);
	return 0;
}

size_t
queue_sweep(struct queue *q, long long older_s,
	    void (*fn)(const char *id, void *arg), void *arg)
{
	struct queue_sweep_acc a = {q, (long long)time(NULL) - older_s, fn, arg,
				    0};
	queue_walk(q, queue_sweep_one, &a);
	if (a.n > 0)
		fsync(q->fd);
	return a.n;
}

int
queue_lock(struct queue *q, const char *id)
{
	char name[QUEUE_NAME_MAX];
	snprintf(name, sizeof(name), "%s.msg", id);
	int fd = openat(q->fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}
