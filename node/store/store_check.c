#include "store_check.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"

struct store_check {
	struct ev_loop *loop;
	struct store store; /* the thread's own copy */
	ev_timer timer;
	ev_async done;
	pthread_t thread;
	double started; /* ev_time of the running check; 0: none */
	double took;	/* seconds the last finished check took */
	bool ok;	/* the last verdict, on the loop */
	unsigned long count;

	/* under mu */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool want, stop, busy, answered, result;
};

static void *
store_check_main(void *arg)
{
	struct store_check *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->want && !c->stop)
			pthread_cond_wait(&c->cond, &c->mu);
		if (c->stop)
			break;
		c->want = false;
		c->busy = true;
		pthread_mutex_unlock(&c->mu);
		bool ok = store_writable(&c->store);
		pthread_mutex_lock(&c->mu);
		c->busy = false;
		c->result = ok;
		c->answered = true;
		ev_async_send(c->loop, &c->done);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* The thread answered: take its verdict. */
static void
store_check_done_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct store_check *c = w->data;
	(void)loop;
	(void)revents;
	pthread_mutex_lock(&c->mu);
	if (c->answered) {
		c->answered = false;
		if (c->count > 0 ? c->ok != c->result : !c->result)
			log_warn("store: %s %s", c->store.root,
				 c->result ? "writable again" : "not writable");
		c->ok = c->result;
		c->took = ev_time() - c->started;
		c->started = 0;
		c->count++;
	}
	pthread_mutex_unlock(&c->mu);
}

/* Time for a check, unless one still runs. */
static void
store_check_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct store_check *c = t->data;
	(void)loop;
	(void)revents;
	if (c->started > 0)
		return;
	c->started = ev_time();
	pthread_mutex_lock(&c->mu);
	c->want = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->mu);
}

struct store_check *
store_check_new(struct ev_loop *loop, const struct store *st, double interval)
{
	struct store_check *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->loop = loop;
	c->store = *st;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cond, NULL);
	if (pthread_create(&c->thread, NULL, store_check_main, c) != 0) {
		pthread_cond_destroy(&c->cond);
		pthread_mutex_destroy(&c->mu);
		free(c);
		return NULL;
	}
	ev_async_init(&c->done, store_check_done_cb);
	c->done.data = c;
	ev_async_start(loop, &c->done);
	ev_timer_init(&c->timer, store_check_timer_cb, 0., interval);
	c->timer.data = c;
	ev_timer_start(loop, &c->timer);
	return c;
}

void
store_check_free(struct store_check *c)
{
	if (c == NULL)
		return;
	ev_timer_stop(c->loop, &c->timer);
	ev_async_stop(c->loop, &c->done);
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	bool stuck = c->busy;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->mu);
	if (stuck) {
		log_warn("store: a check of %s still runs, left behind",
			 c->store.root);
		pthread_detach(c->thread);
		return;
	}
	pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

bool
store_check_ok(const struct store_check *c)
{
	if (c->started > 0 && ev_time() - c->started > STORE_CHECK_STALL)
		return false;
	return c->ok && c->count > 0;
}

unsigned long
store_check_count(const struct store_check *c)
{
	return c->count;
}

double
store_check_seconds(const struct store_check *c)
{
	double running = c->started > 0 ? ev_time() - c->started : 0;
	return running > c->took ? running : c->took;
}
