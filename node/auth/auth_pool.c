/* The hashing threads and their jobs (auth_pool.h). A job is on exactly
 * one list, all under p->mu: its source's queue (waiting for a thread),
 * running (a thread hashes it), done (waiting for the loop). A source
 * (one client address) lives while it has jobs on any list; those with
 * queued jobs take turns on the round-robin list rr, one job per turn,
 * so a flood from one address waits behind its own jobs, not in front
 * of everyone else's. The loop's ev_async takes done jobs one at a
 * time, so a callback may cancel another job still on the list. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "../../common/log.h"
#include "auth.h"
#include "auth_pool.h"

#define AUTH_POOL_THREADS_AUTO_MAX 4

struct auth_source;

struct auth_job {
	TAILQ_ENTRY(auth_job) entry;
	struct auth_source *src;
	uint64_t id;
	bool cancelled; /* while running: dropped once hashed */
	bool ok;
	char *hash; /* NULL: unknown user (the dummy hash) */
	char *password;
	size_t passlen;
	/* the loop's alone */
	auth_pool_cb cb;
	void *arg;
	char user[DIR_ADDR_MAX];
};

TAILQ_HEAD(auth_jobs, auth_job);

struct auth_source {
	TAILQ_ENTRY(auth_source) entry; /* on p->sources */
	TAILQ_ENTRY(auth_source) turn;	/* on p->rr while queue holds jobs */
	struct auth_jobs queue;
	size_t njobs; /* on any list */
	char key[AUTH_POOL_SOURCE_MAX];
};

TAILQ_HEAD(auth_sources, auth_source);

struct auth_pool {
	struct ev_loop *loop;
	ev_async wake;
	uint64_t next_id; /* the loop's alone */
	double warned_at; /* the loop's: the last "full" warning ... */
	size_t unwarned;  /* ... and the refusals since, not logged */
	size_t queue_max;
	size_t source_max;
	int nthreads;
	pthread_t threads[AUTH_POOL_THREADS_MAX];

	/* shared with the threads, under mu */
	pthread_mutex_t mu;
	pthread_cond_t work;
	struct auth_sources sources, rr;
	struct auth_jobs running, done;
	size_t njobs; /* on any list */
	bool stop;
};

static void
auth_job_free(struct auth_job *j)
{
	if (j == NULL)
		return;
	if (j->password) {
		explicit_bzero(j->password, j->passlen);
		free(j->password);
	}
	free(j->hash);
	free(j);
}

/* Under mu: the job of the source whose turn it is, off its queue; the
 * source goes to the end of the turns while it has more. */
static struct auth_job *
auth_pool_next(struct auth_pool *p)
{
	struct auth_source *src = TAILQ_FIRST(&p->rr);
	struct auth_job *j = TAILQ_FIRST(&src->queue);

	TAILQ_REMOVE(&src->queue, j, entry);
	TAILQ_REMOVE(&p->rr, src, turn);
	if (!TAILQ_EMPTY(&src->queue))
		TAILQ_INSERT_TAIL(&p->rr, src, turn);
	return j;
}

/* Under mu: j (off every list) no longer counts; its source goes with
 * its last job. */
static void
auth_pool_forget(struct auth_pool *p, struct auth_job *j)
{
	struct auth_source *src = j->src;

	p->njobs--;
	j->src = NULL;
	if (src == NULL || --src->njobs > 0)
		return;
	TAILQ_REMOVE(&p->sources, src, entry);
	free(src);
}

/* Under mu: key's source, made if it has none. NULL on out of memory. */
static struct auth_source *
auth_pool_source(struct auth_pool *p, const char *key)
{
	struct auth_source *src;

	TAILQ_FOREACH(src, &p->sources, entry)
	if (strcmp(src->key, key) == 0)
		return src;
	if ((src = calloc(1, sizeof(*src))) == NULL)
		return NULL;
	TAILQ_INIT(&src->queue);
	snprintf(src->key, sizeof(src->key), "%s", key);
	TAILQ_INSERT_TAIL(&p->sources, src, entry);
	return src;
}

/* Under mu: queues j for its source, or returns -1 when the pool or the
 * source holds as many jobs as it may. */
static int
auth_pool_enqueue(struct auth_pool *p, struct auth_job *j, const char *key)
{
	struct auth_source *src;

	if (p->njobs >= p->queue_max)
		return -1;
	if ((src = auth_pool_source(p, key)) == NULL)
		return -1;
	if (src->njobs >= p->source_max)
		return -1; /* not just made: source_max >= 1 */
	if (TAILQ_EMPTY(&src->queue))
		TAILQ_INSERT_TAIL(&p->rr, src, turn);
	TAILQ_INSERT_TAIL(&src->queue, j, entry);
	j->src = src;
	src->njobs++;
	p->njobs++;
	return 0;
}

/* A hashing thread: takes jobs until the pool stops. */
static void *
auth_pool_worker(void *arg)
{
	struct auth_pool *p = arg;
	struct auth_job *j;
	bool ok;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && TAILQ_EMPTY(&p->rr))
			pthread_cond_wait(&p->work, &p->mu);
		if (p->stop)
			break;
		j = auth_pool_next(p);
		TAILQ_INSERT_TAIL(&p->running, j, entry);
		pthread_mutex_unlock(&p->mu);

		/* Off the lock: the loop leaves a running job's hash and
		 * password alone. */
		ok = auth_verify(j->hash, j->password);
		explicit_bzero(j->password, j->passlen);

		pthread_mutex_lock(&p->mu);
		TAILQ_REMOVE(&p->running, j, entry);
		j->ok = ok;
		if (j->cancelled) {
			auth_pool_forget(p, j);
			pthread_mutex_unlock(&p->mu);
			auth_job_free(j);
		} else {
			TAILQ_INSERT_TAIL(&p->done, j, entry);
			pthread_mutex_unlock(&p->mu);
			ev_async_send(p->loop, &p->wake);
		}
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* On the loop: delivers the jobs done. */
static void
auth_pool_wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct auth_pool *p = w->data;
	struct auth_job *j;

	(void)loop;
	(void)revents;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		j = TAILQ_FIRST(&p->done);
		if (j) {
			TAILQ_REMOVE(&p->done, j, entry);
			auth_pool_forget(p, j);
		}
		pthread_mutex_unlock(&p->mu);
		if (j == NULL)
			break;
		j->cb(j->arg, j->ok, j->user);
		auth_job_free(j);
	}
}

static int
auth_pool_default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > AUTH_POOL_THREADS_AUTO_MAX ? AUTH_POOL_THREADS_AUTO_MAX
					      : (int)n;
}

struct auth_pool *
auth_pool_new(struct ev_loop *loop, int nthreads, size_t queue_max,
	      size_t source_max)
{
	struct auth_pool *p = calloc(1, sizeof(*p));
	int rc;

	if (p == NULL)
		return NULL;
	if (nthreads <= 0)
		nthreads = auth_pool_default_threads();
	if (nthreads > AUTH_POOL_THREADS_MAX)
		nthreads = AUTH_POOL_THREADS_MAX;
	p->loop = loop;
	p->queue_max = queue_max;
	p->source_max = source_max > 0 ? source_max : queue_max;
	p->next_id = 1;
	TAILQ_INIT(&p->sources);
	TAILQ_INIT(&p->rr);
	TAILQ_INIT(&p->running);
	TAILQ_INIT(&p->done);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	ev_async_init(&p->wake, auth_pool_wake_cb);
	p->wake.data = p;
	ev_async_start(loop, &p->wake);
	for (int i = 0; i < nthreads; i++) {
		rc = pthread_create(&p->threads[p->nthreads], NULL,
				    auth_pool_worker, p);
		if (rc != 0) {
			log_warn("%s: pthread_create: %s", __func__,
				 strerror(rc));
			break;
		}
		p->nthreads++;
	}
	if (p->nthreads == 0)
		goto fail;
	return p;
fail:
	auth_pool_free(p);
	return NULL;
}

static void
auth_pool_free_list(struct auth_jobs *list)
{
	struct auth_job *j;

	while ((j = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, j, entry);
		auth_job_free(j);
	}
}

void
auth_pool_free(struct auth_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	/* The threads are gone: nothing runs, nothing more gets done. */
	ev_async_stop(p->loop, &p->wake);
	while (!TAILQ_EMPTY(&p->sources)) {
		struct auth_source *src = TAILQ_FIRST(&p->sources);
		auth_pool_free_list(&src->queue);
		TAILQ_REMOVE(&p->sources, src, entry);
		free(src);
	}
	auth_pool_free_list(&p->done);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* A flood is refused by the hundred: one warning a second says so. */
static void
auth_pool_warn_full(struct auth_pool *p, const char *user, const char *source)
{
	double now = ev_now(p->loop);
	char more[64] = "";

	if (now - p->warned_at < 1.) {
		p->unwarned++;
		return;
	}
	if (p->unwarned > 0)
		snprintf(more, sizeof(more),
			 " (and %zu more in the last %.0f s)", p->unwarned,
			 now - p->warned_at);
	log_warn("auth: password checks full (%zu in all, %zu from one "
		 "source), refusing %s from %s%s",
		 p->queue_max, p->source_max, user, source, more);
	p->warned_at = now;
	p->unwarned = 0;
}

uint64_t
auth_pool_verify(struct auth_pool *p, const char *hash, const char *source,
		 const char *user, const char *password, auth_pool_cb cb,
		 void *arg)
{
	struct auth_job *j = calloc(1, sizeof(*j));
	bool full;

	if (j == NULL)
		goto fail;
	j->passlen = strlen(password);
	j->password = malloc(j->passlen + 1);
	if (j->password == NULL || (hash && (j->hash = strdup(hash)) == NULL))
		goto fail;
	memcpy(j->password, password, j->passlen + 1);
	snprintf(j->user, sizeof(j->user), "%s", user);
	j->cb = cb;
	j->arg = arg;
	j->id = p->next_id++;

	pthread_mutex_lock(&p->mu);
	full = auth_pool_enqueue(p, j, source) < 0;
	if (!full)
		pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
	if (full) {
		auth_pool_warn_full(p, j->user, source);
		goto fail;
	}
	return j->id;
fail:
	auth_job_free(j);
	return 0;
}

uint64_t
auth_pool_start(struct auth_pool *p, const struct directory *d,
		const char *source, const char *user, const char *password,
		auth_pool_cb cb, void *arg)
{
	return auth_pool_verify(p, d ? directory_password_hash(d, user) : NULL,
				source, user, password, cb, arg);
}

/* The job id on list, or NULL. */
static struct auth_job *
auth_pool_find(struct auth_jobs *list, uint64_t id)
{
	struct auth_job *j;

	TAILQ_FOREACH(j, list, entry)
	if (j->id == id)
		return j;
	return NULL;
}

/* The queued job id, or NULL. */
static struct auth_job *
auth_pool_find_queued(struct auth_pool *p, uint64_t id)
{
	struct auth_source *src;
	struct auth_job *j;

	TAILQ_FOREACH(src, &p->rr, turn)
	if ((j = auth_pool_find(&src->queue, id)) != NULL)
		return j;
	return NULL;
}

void
auth_pool_cancel(struct auth_pool *p, uint64_t id)
{
	struct auth_job *j;

	if (id == 0)
		return;
	pthread_mutex_lock(&p->mu);
	if ((j = auth_pool_find(&p->running, id)) != NULL) {
		j->cancelled = true; /* its thread frees it */
		j = NULL;
	} else if ((j = auth_pool_find(&p->done, id)) != NULL)
		TAILQ_REMOVE(&p->done, j, entry);
	else if ((j = auth_pool_find_queued(p, id)) != NULL) {
		TAILQ_REMOVE(&j->src->queue, j, entry);
		if (TAILQ_EMPTY(&j->src->queue))
			TAILQ_REMOVE(&p->rr, j->src, turn);
	}
	if (j)
		auth_pool_forget(p, j);
	pthread_mutex_unlock(&p->mu);
	auth_job_free(j);
}
