/* The syncing threads and their jobs (queue_sync.h). A job is on exactly
 * one list, all under s->mu: waiting (for the next batch), one thread's
 * running list (the batch it commits), done (waiting for the loop). A
 * free thread takes every waiting job (up to QUEUE_SYNC_BATCH) as its
 * batch, so while one batch is committed the next gathers, and is
 * committed by the next free thread alongside: their fsyncs overlap and
 * share the journal's commits and the disk's cache flushes. The loop's
 * ev_async takes done jobs one at a time, so a callback may cancel
 * another job still on the list. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "queue_sync.h"

struct queue_sync_job {
	TAILQ_ENTRY(queue_sync_job) entry;
	uint64_t id;
	bool cancelled; /* while running: freed once committed */
	size_t n;
	struct queue_pending p[QUEUE_SYNC_GROUP];
	/* the loop's alone */
	queue_sync_cb cb;
	void *arg;
};

TAILQ_HEAD(queue_sync_jobs, queue_sync_job);

/* A delivered message to remove, with the fds that hold it (its claim's
 * flock among them: closed once its files are gone). */
struct queue_sync_rm {
	STAILQ_ENTRY(queue_sync_rm) entry;
	char id[QUEUE_ID_MAX];
	int fds[QUEUE_SYNC_RM_FDS];
	size_t nfds;
};

STAILQ_HEAD(queue_sync_rms, queue_sync_rm);

struct queue_sync {
	struct ev_loop *loop;
	struct queue *q;
	ev_async wake;
	uint64_t next_id; /* the loop's alone */
	struct queue_sync_worker {
		struct queue_sync *s;
		pthread_t thread;
		struct queue_sync_jobs running; /* under mu */
	} workers[QUEUE_SYNC_THREADS];
	int nworkers;

	/* shared with the threads, under mu */
	pthread_mutex_t mu;
	pthread_cond_t work;
	struct queue_sync_jobs waiting, done;
	size_t njobs;			/* waiting or running */
	struct queue_sync_rms removals; /* queue_sync_remove()'s, to do */
	bool stop;
};

/* Commits batch, a thread's running list (off the lock: the loop leaves
 * running jobs' messages alone). */
static void
queue_sync_commit(struct queue_sync *s, struct queue_sync_jobs *batch)
{
	struct queue_pending *ps[QUEUE_SYNC_BATCH * QUEUE_SYNC_GROUP];
	struct queue_sync_job *j;
	size_t n = 0;

	TAILQ_FOREACH(j, batch, entry)
	for (size_t i = 0; i < j->n; i++)
		ps[n++] = &j->p[i];
	if (n == 0) { /* removals alone: made durable */
		if (queue_dir_sync(s->q) < 0)
			log_err("queue %s: fsync: %s", queue_path(s->q),
				strerror(errno));
		return;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	size_t failed = queue_commit(s->q, ps, n);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_debug("queue: %zu messages committed in %.1f ms", n,
		  (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		      (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	if (failed > 0)
		log_err("queue %s: %zu of %zu messages could not be made "
			"durable",
			queue_path(s->q), failed, n);
}

/* Removes the messages of list (off the lock) and frees it. */
static void
queue_sync_unlink(struct queue_sync *s, struct queue_sync_rms *list)
{
	struct queue_sync_rm *rm;

	while ((rm = STAILQ_FIRST(list)) != NULL) {
		STAILQ_REMOVE_HEAD(list, entry);
		if (queue_unlink(s->q, rm->id) < 0)
			log_err("queue %s: remove: %s", rm->id,
				strerror(errno));
		for (size_t i = 0; i < rm->nfds; i++)
			close(rm->fds[i]); /* the flock goes last */
		free(rm);
	}
}

/* A syncing thread: commits batches until the queue_sync stops. */
static void *
queue_sync_worker(void *arg)
{
	struct queue_sync_worker *w = arg;
	struct queue_sync *s = w->s;
	struct queue_sync_job *j;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->stop && TAILQ_EMPTY(&s->waiting) &&
		       STAILQ_EMPTY(&s->removals))
			pthread_cond_wait(&s->work, &s->mu);
		if (s->stop)
			break;
		struct queue_sync_rms rms = STAILQ_HEAD_INITIALIZER(rms);
		STAILQ_CONCAT(&rms, &s->removals);
		for (size_t k = 0; k < QUEUE_SYNC_BATCH &&
				   (j = TAILQ_FIRST(&s->waiting)) != NULL;
		     k++) {
			TAILQ_REMOVE(&s->waiting, j, entry);
			TAILQ_INSERT_TAIL(&w->running, j, entry);
		}
		pthread_mutex_unlock(&s->mu);

		/* before the batch: its directory fsyncs cover them too */
		queue_sync_unlink(s, &rms);
		queue_sync_commit(s, &w->running);

		pthread_mutex_lock(&s->mu);
		while ((j = TAILQ_FIRST(&w->running)) != NULL) {
			TAILQ_REMOVE(&w->running, j, entry);
			s->njobs--;
			if (j->cancelled)
				free(j); /* committed or not, nobody waits */
			else
				TAILQ_INSERT_TAIL(&s->done, j, entry);
		}
		pthread_mutex_unlock(&s->mu);
		ev_async_send(s->loop, &s->wake);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* On the loop: hands the jobs done to their callers. */
static void
queue_sync_wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct queue_sync *s = w->data;
	struct queue_sync_job *j;

	(void)loop;
	(void)revents;
	for (;;) {
		pthread_mutex_lock(&s->mu);
		j = TAILQ_FIRST(&s->done);
		if (j)
			TAILQ_REMOVE(&s->done, j, entry);
		pthread_mutex_unlock(&s->mu);
		if (j == NULL)
			break;
		j->cb(j->arg, j->p, j->n);
		free(j);
	}
}

struct queue_sync *
queue_sync_new(struct ev_loop *loop, struct queue *q)
{
	struct queue_sync *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return NULL;
	s->loop = loop;
	s->q = q;
	s->next_id = 1;
	TAILQ_INIT(&s->waiting);
	TAILQ_INIT(&s->done);
	STAILQ_INIT(&s->removals);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->work, NULL);
	ev_async_init(&s->wake, queue_sync_wake_cb);
	s->wake.data = s;
	ev_async_start(loop, &s->wake);
	for (int i = 0; i < QUEUE_SYNC_THREADS; i++) {
		struct queue_sync_worker *w = &s->workers[s->nworkers];
		w->s = s;
		TAILQ_INIT(&w->running);
		if ((rc = pthread_create(&w->thread, NULL, queue_sync_worker,
					 w)) != 0) {
			log_warn("%s: pthread_create: %s", __func__,
				 strerror(rc));
			break;
		}
		s->nworkers++;
	}
	if (s->nworkers == 0) {
		queue_sync_free(s);
		return NULL;
	}
	return s;
}

void
queue_sync_free(struct queue_sync *s)
{
	struct queue_sync_job *j;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->work);
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i].thread, NULL);
	/* The threads are gone: nothing is committed any more. */
	ev_async_stop(s->loop, &s->wake);
	while ((j = TAILQ_FIRST(&s->waiting)) != NULL) {
		TAILQ_REMOVE(&s->waiting, j, entry);
		for (size_t i = 0; i < j->n; i++)
			queue_drop(s->q, &j->p[i]);
		free(j);
	}
	while ((j = TAILQ_FIRST(&s->done)) != NULL) {
		TAILQ_REMOVE(&s->done, j, entry);
		free(j);
	}
	queue_sync_unlink(s, &s->removals);
	pthread_cond_destroy(&s->work);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

uint64_t
queue_sync_start(struct queue_sync *s, const struct queue_pending *p, size_t n,
		 queue_sync_cb cb, void *arg)
{
	struct queue_sync_job *j;
	bool full;

	if (n == 0 || n > QUEUE_SYNC_GROUP ||
	    (j = calloc(1, sizeof(*j))) == NULL)
		return 0;
	memcpy(j->p, p, n * sizeof(*p));
	j->n = n;
	j->cb = cb;
	j->arg = arg;
	j->id = s->next_id++;

	pthread_mutex_lock(&s->mu);
	full = s->njobs >= QUEUE_SYNC_MAX;
	if (!full) {
		TAILQ_INSERT_TAIL(&s->waiting, j, entry);
		s->njobs++;
		pthread_cond_signal(&s->work);
	}
	pthread_mutex_unlock(&s->mu);
	if (full) {
		log_warn("queue %s: %d messages wait to be made durable, "
			 "refusing more",
			 queue_path(s->q), QUEUE_SYNC_MAX);
		free(j);
		return 0;
	}
	return j->id;
}

/* The job id on list, or NULL. */
static struct queue_sync_job *
queue_sync_find(struct queue_sync_jobs *list, uint64_t id)
{
	struct queue_sync_job *j;

	TAILQ_FOREACH(j, list, entry)
	if (j->id == id)
		return j;
	return NULL;
}

void
queue_sync_cancel(struct queue_sync *s, uint64_t id)
{
	struct queue_sync_job *j = NULL;
	bool drop = false;

	if (id == 0)
		return;
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->nworkers && j == NULL; i++)
		j = queue_sync_find(&s->workers[i].running, id);
	if (j != NULL) {
		j->cancelled = true; /* its thread frees it */
		j = NULL;
	} else if ((j = queue_sync_find(&s->done, id)) != NULL)
		TAILQ_REMOVE(&s->done, j, entry);
	else if ((j = queue_sync_find(&s->waiting, id)) != NULL) {
		TAILQ_REMOVE(&s->waiting, j, entry);
		s->njobs--;
		drop = true;
	}
	pthread_mutex_unlock(&s->mu);
	if (j == NULL)
		return;
	for (size_t i = 0; drop && i < j->n; i++)
		queue_drop(s->q, &j->p[i]);
	free(j);
}

int
queue_sync_remove(struct queue_sync *s, const char *id, const int *fds,
		  size_t nfds)
{
	struct queue_sync_rm *rm;

	if (nfds > QUEUE_SYNC_RM_FDS || (rm = calloc(1, sizeof(*rm))) == NULL)
		return -1;
	snprintf(rm->id, sizeof(rm->id), "%s", id);
	memcpy(rm->fds, fds, nfds * sizeof(*fds));
	rm->nfds = nfds;
	pthread_mutex_lock(&s->mu);
	STAILQ_INSERT_TAIL(&s->removals, rm, entry);
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->mu);
	return 0;
}
