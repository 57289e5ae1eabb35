/* This node's spool: anonymous incoming files, and a queue of messages
 * waiting for the shared store. A queued message is two files:
 *   queue/ID.msg  the message as received (no prefix)
 *   queue/ID.env  its envelope, written last (see spool_env_write())
 * The .msg is fsynced and linked, and the queue directory fsynced, before
 * the .env appears, so an .env always names a complete message. A .msg
 * with no .env is a crash between the two and is removed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "../../common/fdio.h"
#include "../../common/log.h"
#include "spool.h"

#define SPOOL_ENV_VERSION "mailswitch-spool 1"
#define SPOOL_ENV_MAX (1 << 20) /* an envelope bigger than this is bad */
#define SPOOL_ID_MAX 64
#define SPOOL_NAME_MAX (SPOOL_ID_MAX + 16)

struct spool {
	struct ev_loop *loop;
	struct store *store;
	char dir[4096];
	int incoming; /* fd of SPOOL/incoming */
	int queue;    /* fd of SPOOL/queue */
	bool tmpfile_ok;
	int retry_s;
	size_t pending;
	unsigned long seq;
	ev_timer timer;
};

/* A parsed envelope; rcpts and prefix point into buf. */
struct spool_env {
	char *buf;
	const char *sender;
	const char **rcpts;
	size_t nrcpts;
	size_t size;
	const char *prefix;
};

static void spool_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

static int
spool_subdir(int dirfd, const char *name)
{
	if (mkdirat(dirfd, name, 0700) == 0) {
		if (fsync(dirfd) < 0)
			return -1;
	} else if (errno != EEXIST)
		return -1;
	return openat(dirfd, name,
		      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Entries in queue/ ending in suffix. */
static size_t
spool_count(int queue, const char *suffix)
{
	size_t n = 0, sl = strlen(suffix);
	DIR *d = fd_opendir(queue);
	struct dirent *de;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l > sl && strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static void
spool_timer_update(struct spool *sp)
{
	if (sp->pending > 0 && !ev_is_active(&sp->timer))
		ev_timer_again(sp->loop, &sp->timer);
	else if (sp->pending == 0 && ev_is_active(&sp->timer))
		ev_timer_stop(sp->loop, &sp->timer);
}

struct spool *
spool_open(struct ev_loop *loop, const char *dir, struct store *store,
	   int retry_s)
{
	struct spool *sp;
	int root = -1, saved;

	if (retry_s <= 0 || strlen(dir) >= sizeof(sp->dir)) {
		errno = EINVAL;
		return NULL;
	}
	if ((sp = calloc(1, sizeof(*sp))) == NULL)
		return NULL;
	sp->loop = loop;
	sp->store = store;
	sp->retry_s = retry_s;
	sp->incoming = sp->queue = -1;
	sp->tmpfile_ok = true;
	snprintf(sp->dir, sizeof(sp->dir), "%s", dir);
	if (mkdirs(dir, 0700) < 0)
		goto fail;
	if ((root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto fail;
	if ((sp->incoming = spool_subdir(root, "incoming")) < 0)
		goto fail;
	if ((sp->queue = spool_subdir(root, "queue")) < 0)
		goto fail;
	close(root);
	root = -1;
	ev_init(&sp->timer, spool_timer_cb);
	sp->timer.repeat = retry_s;
	sp->timer.data = sp;
	sp->pending = spool_count(sp->queue, ".env");
	spool_timer_update(sp);
	return sp;
fail:
	saved = errno;
	if (root >= 0)
		close(root);
	spool_close(sp);
	errno = saved;
	return NULL;
}

void
spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	if (sp->loop && ev_is_active(&sp->timer))
		ev_timer_stop(sp->loop, &sp->timer);
	if (sp->incoming >= 0)
		close(sp->incoming);
	if (sp->queue >= 0)
		close(sp->queue);
	free(sp);
}

int
spool_tmpfile(struct spool *sp)
{
	char name[] = "incoming.XXXXXX";
	int fd;

	if (sp->tmpfile_ok) {
		fd = openat(sp->incoming, ".", O_TMPFILE | O_RDWR | O_CLOEXEC,
			    0600);
		if (fd >= 0)
			return fd;
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
			return -1;
		log_info("spool: %s/incoming refuses O_TMPFILE, using named "
			 "temporary files",
			 sp->dir);
		sp->tmpfile_ok = false;
	}
	/* mkstemp needs a path: build it from the spool's directory */
	char path[4096 + 32];
	int n = snprintf(path, sizeof(path), "%s/incoming/%s", sp->dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkostemp(path, O_CLOEXEC)) < 0)
		return -1;
	if (unlink(path) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Copies len bytes of in (from offset 0) into a new file queue/name,
 * fsynced: the fallback when the anonymous file cannot be linked. */
static int
spool_copy_to(struct spool *sp, int in, size_t len, const char *name)
{
	int out, saved;

	out =
	    openat(sp->queue, name,
		   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return -1;
	if (fd_copy(in, out, len) < 0)
		goto fail;
	if (fsync(out) < 0)
		goto fail;
	if (close(out) < 0) {
		saved = errno;
		unlinkat(sp->queue, name, 0);
		errno = saved;
		return -1;
	}
	return 0;
fail:
	saved = errno;
	close(out);
	unlinkat(sp->queue, name, 0);
	errno = saved;
	return -1;
}

/* Puts the message of fd at queue/ID.msg: a link of the anonymous file
 * when the kernel allows it, a copy otherwise. fd is already fsynced. */
static int
spool_msg_place(struct spool *sp, int fd, size_t len, const char *id)
{
	char name[SPOOL_NAME_MAX], tmp[SPOOL_NAME_MAX], proc[64];

	struct stat st;

	snprintf(name, sizeof(name), "%s.msg", id);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (fstat(fd, &st) < 0)
		return -1;
	/* a link takes the whole file: only when it is exactly the message */
	if ((uintmax_t)st.st_size == len) {
		if (linkat(AT_FDCWD, proc, sp->queue, name,
			   AT_SYMLINK_FOLLOW) == 0)
			return 0;
		log_debug("spool: link %s: %s, copying", name, strerror(errno));
	}
	snprintf(tmp, sizeof(tmp), "%s.msg.tmp", id);
	if (spool_copy_to(sp, fd, len, tmp) < 0)
		return -1;
	if (renameat(sp->queue, tmp, sp->queue, name) < 0) {
		int saved = errno;
		unlinkat(sp->queue, tmp, 0);
		errno = saved;
		return -1;
	}
	return 0;
}

/* A line value may hold anything but CR, LF and NUL. */
static bool
spool_env_value_ok(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

/* An envelope to write (the format is in spool.h). */
struct spool_env_out {
	const char *sender;
	const char *const *rcpts;
	size_t n, size;
	const char *prefix;
};

static void
spool_env_fill(FILE *f, void *arg)
{
	const struct spool_env_out *e = arg;
	size_t plen = strlen(e->prefix);
	fprintf(f, "%s\nsender %s\n", SPOOL_ENV_VERSION, e->sender);
	for (size_t i = 0; i < e->n; i++)
		fprintf(f, "rcpt %s\n", e->rcpts[i]);
	fprintf(f, "size %zu\nprefix %zu\n", e->size, plen);
	fwrite(e->prefix, 1, plen, f);
}

/* Writes queue/ID.env for the given envelope: ID.env.tmp, fsynced,
 * renamed, the directory fsynced. */
static int
spool_env_write(struct spool *sp, const char *id, const char *sender,
		const char *const *rcpts, size_t n, size_t size,
		const char *prefix)
{
	char tmp[SPOOL_NAME_MAX], name[SPOOL_NAME_MAX];
	struct spool_env_out e = {sender, rcpts, n, size, prefix};

	snprintf(tmp, sizeof(tmp), "%s.env.tmp", id);
	snprintf(name, sizeof(name), "%s.env", id);
	return fd_write_replace(sp->queue, tmp, name, spool_env_fill, &e);
}

static void
spool_new_id(struct spool *sp, char *id, size_t len)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	snprintf(id, len, "%lld.%06ldP%ldQ%lu", (long long)tv.tv_sec,
		 (long)tv.tv_usec, (long)getpid(), ++sp->seq);
}

int
spool_enqueue(struct spool *sp, int fd, size_t len, const char *sender,
	      const char *const *rcpts, size_t n, const char *prefix)
{
	char id[SPOOL_ID_MAX], msg[SPOOL_NAME_MAX], env[SPOOL_NAME_MAX];
	size_t i;
	int saved;

	if (n == 0 || sender == NULL || !spool_env_value_ok(sender)) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < n; i++)
		if (rcpts[i] == NULL || rcpts[i][0] == '\0' ||
		    !spool_env_value_ok(rcpts[i])) {
			errno = EINVAL;
			return -1;
		}
	if (prefix == NULL)
		prefix = "";
	spool_new_id(sp, id, sizeof(id));
	snprintf(msg, sizeof(msg), "%s.msg", id);
	if (fsync(fd) < 0)
		return -1;
	if (spool_msg_place(sp, fd, len, id) < 0)
		return -1;
	if (fsync(sp->queue) < 0)
		goto fail;
	if (spool_env_write(sp, id, sender, rcpts, n, len, prefix) < 0)
		goto fail;
	sp->pending++;
	spool_timer_update(sp);
	log_info("spool: queued %s for %zu recipient%s", id, n,
		 n == 1 ? "" : "s");
	return 0;
fail:
	saved = errno;
	snprintf(env, sizeof(env), "%s.env", id);
	unlinkat(sp->queue, env, 0);
	unlinkat(sp->queue, msg, 0);
	errno = saved;
	return -1;
}

/* Cuts the next line of [*p, end) at its LF. Returns it or NULL. */
static char *
spool_env_line(char **p, char *end)
{
	char *line = *p, *nl;
	if (line >= end ||
	    (nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
		return NULL;
	*nl = '\0';
	*p = nl + 1;
	return line;
}

static int
spool_env_number(const char *s, size_t *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	uintmax_t v = strtoumax(s, &end, 10);
	if (errno || *end != '\0' || v > SIZE_MAX)
		return -1;
	*out = (size_t)v;
	return 0;
}

static void
spool_env_free(struct spool_env *env)
{
	free(env->buf);
	free(env->rcpts);
	memset(env, 0, sizeof(*env));
}

/* Parses queue/name into env. Returns 0, or -1 with a reason in why and
 * errno set (ENOENT: there is no such file; EINVAL: it does not parse). */
static int
spool_env_read(struct spool *sp, const char *name, struct spool_env *env,
	       const char **why)
{
	size_t len, plen, cap = 0;
	char *p, *end, *line;

	memset(env, 0, sizeof(*env));
	if ((env->buf = fd_read_small(sp->queue, name, SPOOL_ENV_MAX, &len)) ==
	    NULL) {
		*why = strerror(errno);
		return -1;
	}
	p = env->buf;
	end = env->buf + len;
	*why = "not a \"" SPOOL_ENV_VERSION "\" envelope";
	if ((line = spool_env_line(&p, end)) == NULL ||
	    strcmp(line, SPOOL_ENV_VERSION) != 0)
		goto fail;
	*why = "no sender line";
	if ((line = spool_env_line(&p, end)) == NULL ||
	    strncmp(line, "sender ", 7) != 0)
		goto fail;
	env->sender = line + 7;
	*why = "bad recipient lines";
	while ((line = spool_env_line(&p, end)) != NULL &&
	       strncmp(line, "rcpt ", 5) == 0) {
		if (line[5] == '\0')
			goto fail;
		if (env->nrcpts == cap) {
			cap = cap ? cap * 2 : 8;
			const char **r =
			    realloc(env->rcpts, cap * sizeof(*env->rcpts));
			if (r == NULL) {
				*why = "out of memory";
				goto fail;
			}
			env->rcpts = r;
		}
		env->rcpts[env->nrcpts++] = line + 5;
	}
	if (env->nrcpts == 0)
		goto fail;
	*why = "no size line";
	if (line == NULL || strncmp(line, "size ", 5) != 0 ||
	    spool_env_number(line + 5, &env->size) < 0)
		goto fail;
	*why = "no prefix line";
	if ((line = spool_env_line(&p, end)) == NULL ||
	    strncmp(line, "prefix ", 7) != 0 ||
	    spool_env_number(line + 7, &plen) < 0)
		goto fail;
	*why = "prefix length does not match";
	if ((size_t)(end - p) != plen || memchr(p, '\0', plen) != NULL)
		goto fail;
	env->prefix = p; /* NUL-terminated by fd_read_small() */
	return 0;
fail:
	spool_env_free(env);
	errno = EINVAL; /* not ENOENT: the caller tells a vanished file so */
	return -1;
}

/* Moves queue/ID.env (and ID.msg when there) aside as *.bad. */
static void
spool_set_aside(struct spool *sp, const char *id, const char *why)
{
	char from[SPOOL_NAME_MAX], to[SPOOL_NAME_MAX + 8];
	const char *suffix[] = {".env", ".msg"};
	size_t i;

	log_warn("spool: %s/queue/%s.env: %s; moved aside as %s.env.bad",
		 sp->dir, id, why, id);
	for (i = 0; i < 2; i++) {
		snprintf(from, sizeof(from), "%s%s", id, suffix[i]);
		snprintf(to, sizeof(to), "%s%s.bad", id, suffix[i]);
		if (renameat(sp->queue, from, sp->queue, to) < 0 &&
		    errno != ENOENT)
			log_warn("spool: rename %s to %s: %s", from, to,
				 strerror(errno));
	}
	if (fsync(sp->queue) < 0)
		log_warn("spool: fsync %s/queue: %s", sp->dir, strerror(errno));
}

/* Removes queue/ID.env then ID.msg: the message is delivered. */
static void
spool_remove(struct spool *sp, const char *id)
{
	char name[SPOOL_NAME_MAX];

	snprintf(name, sizeof(name), "%s.env", id);
	if (unlinkat(sp->queue, name, 0) < 0)
		log_warn("spool: remove %s: %s", name, strerror(errno));
	snprintf(name, sizeof(name), "%s.msg", id);
	if (unlinkat(sp->queue, name, 0) < 0)
		log_warn("spool: remove %s: %s", name, strerror(errno));
	if (fsync(sp->queue) < 0)
		log_warn("spool: fsync %s/queue: %s", sp->dir, strerror(errno));
}

/* Tries one queued message. Returns true when it is gone from the queue
 * (delivered, or set aside as bad), false when it still waits. */
static bool
spool_try(struct spool *sp, const char *id)
{
	char name[SPOOL_NAME_MAX];
	struct spool_env env;
	struct stat st;
	const char *why;
	bool *failed = NULL, gone = false;
	size_t i, k;
	int fd = -1;

	snprintf(name, sizeof(name), "%s.env", id);
	if (spool_env_read(sp, name, &env, &why) < 0) {
		if (errno == ENOENT)
			return true; /* vanished since the scan */
		spool_set_aside(sp, id, why);
		return true;
	}
	snprintf(name, sizeof(name), "%s.msg", id);
	fd = openat(sp->queue, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		spool_set_aside(sp, id,
				errno == ENOENT ? "its .msg is missing"
						: strerror(errno));
		gone = true;
		goto out;
	}
	if ((uintmax_t)st.st_size != env.size) {
		spool_set_aside(sp, id, "its .msg has the wrong size");
		gone = true;
		goto out;
	}
	for (i = 0; i < env.nrcpts; i++) {
		char dir[4096];
		if (store_user_dir(sp->store, env.rcpts[i], dir, sizeof(dir),
				   false) < 0 &&
		    errno == EINVAL) {
			log_warn("spool: %s: recipient %s refused by the "
				 "store",
				 id, env.rcpts[i]);
			spool_set_aside(sp, id, "invalid recipient");
			gone = true;
			goto out;
		}
	}
	if ((failed = calloc(env.nrcpts, sizeof(*failed))) == NULL) {
		log_warn("spool: %s: out of memory", id);
		goto out;
	}
	if (store_deliver(sp->store, env.rcpts, env.nrcpts, fd, env.size,
			  env.prefix, failed) == 0) {
		spool_remove(sp, id);
		log_info("spool: delivered %s to %zu recipient%s", id,
			 env.nrcpts, env.nrcpts == 1 ? "" : "s");
		gone = true;
		goto out;
	}
	for (i = k = 0; i < env.nrcpts; i++)
		if (failed[i])
			env.rcpts[k++] = env.rcpts[i];
	if (k < env.nrcpts) {
		/* some copies are made: keep only the others queued */
		if (spool_env_write(sp, id, env.sender, env.rcpts, k, env.size,
				    env.prefix) < 0)
			log_warn("spool: rewrite %s.env: %s (the delivered "
				 "recipients may get a second copy)",
				 id, strerror(errno));
		else
			log_info("spool: delivered %s to %zu recipient%s, %zu "
				 "still queued",
				 id, env.nrcpts - k,
				 env.nrcpts - k == 1 ? "" : "s", k);
	}
out:
	if (fd >= 0)
		close(fd);
	free(failed);
	spool_env_free(&env);
	return gone;
}

/* The queue's IDs that have an .env; leftovers of a crash are removed on
 * the way (.msg without .env, .tmp files). Returns a NULL-terminated array
 * (caller frees each and it) or NULL with errno. */
static char **
spool_scan(struct spool *sp, size_t *np)
{
	char **ids = NULL, **more;
	size_t n = 0, cap = 0;
	struct dirent *de;
	struct stat st;
	DIR *d = NULL;
	int fd, saved;

	fd = openat(sp->queue, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (d = fdopendir(fd)) == NULL)
		goto fail;
	while ((de = readdir(d)) != NULL) {
		const char *nm = de->d_name;
		size_t l = strlen(nm);
		if (nm[0] == '.')
			continue;
		if (l > 4 && strcmp(nm + l - 4, ".tmp") == 0) {
			log_warn("spool: removing leftover %s", nm);
			unlinkat(sp->queue, nm, 0);
			continue;
		}
		if (l > 4 && strcmp(nm + l - 4, ".msg") == 0) {
			char env[SPOOL_NAME_MAX];
			snprintf(env, sizeof(env), "%.*s.env", (int)(l - 4),
				 nm);
			if (l - 4 < SPOOL_ID_MAX &&
			    fstatat(sp->queue, env, &st, AT_SYMLINK_NOFOLLOW) <
				0 &&
			    errno == ENOENT) {
				log_warn("spool: removing %s: no envelope "
					 "(interrupted enqueue)",
					 nm);
				unlinkat(sp->queue, nm, 0);
			}
			continue;
		}
		if (l <= 4 || strcmp(nm + l - 4, ".env") != 0)
			continue;
		if (l - 4 >= SPOOL_ID_MAX) {
			log_warn("spool: ignoring %s: name too long", nm);
			continue;
		}
		if (n + 1 >= cap) {
			cap = cap ? cap * 2 : 16;
			if ((more = realloc(ids, cap * sizeof(*ids))) == NULL)
				goto fail;
			ids = more;
		}
		if ((ids[n] = strndup(nm, l - 4)) == NULL)
			goto fail;
		ids[++n] = NULL;
	}
	closedir(d);
	if (ids == NULL && (ids = calloc(1, sizeof(*ids))) == NULL)
		return NULL;
	*np = n;
	return ids;
fail:
	saved = errno;
	if (d)
		closedir(d);
	else if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	errno = saved;
	return NULL;
}

size_t
spool_run(struct spool *sp)
{
	char **ids;
	size_t i, n, left = 0;

	if ((ids = spool_scan(sp, &n)) == NULL) {
		log_warn("spool: scan %s/queue: %s", sp->dir, strerror(errno));
		spool_timer_update(sp); /* keep the count we had; retry */
		return sp->pending;
	}
	if (n > 0 && !store_writable(sp->store)) {
		log_warn("spool: store unwritable, %zu message%s", n,
			 n == 1 ? " waits" : "s wait");
		left = n;
		goto out;
	}
	for (i = 0; i < n; i++)
		if (!spool_try(sp, ids[i]))
			left++;
	if (left > 0)
		log_warn("spool: %zu message%s for the store", left,
			 left == 1 ? " waits" : "s wait");
out:
	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	sp->pending = left;
	spool_timer_update(sp);
	return left;
}

size_t
spool_pending(const struct spool *sp)
{
	return sp->pending;
}

static void
spool_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	spool_run(w->data);
}
