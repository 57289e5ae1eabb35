/* DNSBL lookups with c-ares on a worker's loop; see dnsbl.h. */
#include "dnsbl.h"

#include <ares.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"

#define DNSBL_NAME_MAX (64 + EDGE_ZONE_MAX + 1) /* IPv6 nibbles + zone */
#define DNSBL_TTL_MAX 86400

/* One of c-ares's sockets, watched on the loop. */
struct dnsbl_sock {
	struct dnsbl *d;
	struct wio io;
	struct dnsbl_sock *next;
};

struct dnsbl_slot {
	char name[DNSBL_NAME_MAX]; /* "" when empty */
	double expires;
	bool listed;
};

struct dnsbl {
	struct wloop *loop;
	ares_channel ch;
	struct wtimer timer; /* c-ares's next timeout */
	struct dnsbl_sock *socks;
	struct dnsbl_slot *cache; /* DNSBL_CACHE_SLOTS */
	unsigned long sent;
};

/* One zone's lookup of a query. */
struct dnsbl_lookup {
	struct dnsbl_query *q;
	int weight;
	char zone[EDGE_ZONE_MAX];
	char name[DNSBL_NAME_MAX];
};

/* Lives until both its caller is done with it (finished: done ran, or
 * cancelled) and c-ares has called back for every lookup sent. */
struct dnsbl_query {
	struct dnsbl *d;
	struct wtimer deadline;
	dnsbl_done_fn *done;
	void *arg;
	int pending; /* lookups c-ares has not called back for */
	bool starting, finished;
	int score, threshold, best;
	const char *zone; /* the heaviest listing zone, in lk[] */
	struct dnsbl_lookup lk[EDGE_DNSBL_MAX];
};

static pthread_once_t dnsbl_once = PTHREAD_ONCE_INIT;
static int dnsbl_lib_status;

static void
dnsbl_lib_init(void)
{
	dnsbl_lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

static void
dnsbl_schedule(struct dnsbl *d)
{
	struct timeval tv, *tvp = ares_timeout(d->ch, NULL, &tv);
	wtimer_stop(d->loop, &d->timer);
	if (tvp == NULL)
		return;
	wtimer_start(d->loop, &d->timer, tv.tv_sec + tv.tv_usec / 1e6);
}

static void
dnsbl_timer_cb(struct wloop *loop, struct wtimer *t)
{
	struct dnsbl *d = t->data;
	(void)loop;
	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dnsbl_schedule(d);
}

static void
dnsbl_io_cb(struct wloop *loop, struct wio *io, uint32_t events)
{
	struct dnsbl_sock *s = io->data;
	struct dnsbl *d = s->d;
	int fd = io->fd; /* c-ares may close it and free s */
	(void)loop;
	if (events & (EPOLLERR | EPOLLHUP))
		events |= EPOLLIN; /* the read tells what happened */
	ares_process_fd(d->ch, (events & EPOLLIN) ? fd : ARES_SOCKET_BAD,
			(events & EPOLLOUT) ? fd : ARES_SOCKET_BAD);
	dnsbl_schedule(d);
}

/* c-ares opens, watches or closes one of its sockets. */
static void
dnsbl_sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dnsbl *d = data;
	struct dnsbl_sock **pp = &d->socks, *s;
	uint32_t events = (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0);
	while (*pp && (*pp)->io.fd != fd)
		pp = &(*pp)->next;
	s = *pp;
	if (events == 0) {
		if (s) {
			wio_del(d->loop, &s->io);
			*pp = s->next;
			free(s);
		}
		return;
	}
	if (s) {
		if (wio_mod(d->loop, &s->io, events) < 0)
			log_err("dnsbl: epoll_ctl: %s", strerror(errno));
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_err("dnsbl: out of memory");
		return;
	}
	s->d = d;
	s->io.cb = dnsbl_io_cb;
	s->io.data = s;
	if (wio_add(d->loop, &s->io, fd, false, events) < 0) {
		log_err("dnsbl: epoll_ctl: %s", strerror(errno));
		free(s);
		return;
	}
	s->next = d->socks;
	d->socks = s;
}

struct dnsbl *
dnsbl_new(struct wloop *loop, const char *resolver, char *err, size_t errlen)
{
	struct ares_options o;
	int rc;
	pthread_once(&dnsbl_once, dnsbl_lib_init);
	if (dnsbl_lib_status != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s",
			 ares_strerror(dnsbl_lib_status));
		return NULL;
	}
	struct dnsbl *d = calloc(1, sizeof(*d));
	if (d == NULL ||
	    (d->cache = calloc(DNSBL_CACHE_SLOTS, sizeof(*d->cache))) == NULL) {
		free(d);
		snprintf(err, errlen, "dnsbl: out of memory");
		return NULL;
	}
	d->loop = loop;
	d->timer.cb = dnsbl_timer_cb;
	d->timer.data = d;
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = dnsbl_sock_state_cb;
	o.sock_state_cb_data = d;
	o.timeout = DNSBL_ARES_TIMEOUT_MS;
	o.tries = 1;
	o.flags = ARES_FLAG_NOSEARCH;
	rc = ares_init_options(&d->ch, &o,
			       ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
				   ARES_OPT_TRIES | ARES_OPT_FLAGS);
	if (rc == ARES_SUCCESS && resolver[0] != '\0')
		rc = ares_set_servers_ports_csv(d->ch, resolver);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		if (d->ch)
			ares_destroy(d->ch);
		free(d->cache);
		free(d);
		return NULL;
	}
	return d;
}

void
dnsbl_free(struct dnsbl *d)
{
	if (d == NULL)
		return;
	ares_destroy(d->ch); /* calls back every pending lookup */
	wtimer_stop(d->loop, &d->timer);
	while (d->socks) {
		struct dnsbl_sock *s = d->socks;
		d->socks = s->next;
		wio_del(d->loop, &s->io);
		free(s);
	}
	free(d->cache);
	free(d);
}

unsigned long
dnsbl_sent(const struct dnsbl *d)
{
	return d->sent;
}

/* The name that lists sa in zone. Returns 0, or -1 (another family). */
static int
dnsbl_name(const struct sockaddr *sa, const char *zone, char *out, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *a;
	if (sa->sa_family == AF_INET)
		a = (const unsigned char *)&((const struct sockaddr_in *)sa)
			->sin_addr;
	else if (sa->sa_family == AF_INET6) {
		a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (!IN6_IS_ADDR_V4MAPPED(
			&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
			size_t o = 0;
			for (int i = 15; i >= 0 && o + 4 < len; i--) {
				out[o++] = hex[a[i] & 15];
				out[o++] = '.';
				out[o++] = hex[a[i] >> 4];
				out[o++] = '.';
			}
			int n = snprintf(out + o, len - o, "%s", zone);
			return n < 0 || (size_t)n >= len - o ? -1 : 0;
		}
		a += 12;
	} else
		return -1;
	int n =
	    snprintf(out, len, "%u.%u.%u.%u.%s", a[3], a[2], a[1], a[0], zone);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static struct dnsbl_slot *
dnsbl_slot(struct dnsbl *d, const char *name)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return &d->cache[h % DNSBL_CACHE_SLOTS];
}

static void
dnsbl_cache_put(struct dnsbl *d, const char *name, bool listed, long ttl)
{
	if (ttl <= 0)
		return;
	struct dnsbl_slot *s = dnsbl_slot(d, name);
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->listed = listed;
	s->expires = d->loop->now + (double)ttl;
}

/* The cached verdict on name: 1 listed, 0 not, -1 unknown. */
static int
dnsbl_cache_get(struct dnsbl *d, const char *name)
{
	struct dnsbl_slot *s = dnsbl_slot(d, name);
	if (strcmp(s->name, name) != 0 || s->expires <= d->loop->now)
		return -1;
	return s->listed;
}

static void
dnsbl_query_free_if_done(struct dnsbl_query *q)
{
	if (q->finished && q->pending == 0) {
		wtimer_stop(q->d->loop, &q->deadline);
		free(q);
	}
}

/* The answer is in (or the deadline passed): done, once. */
static void
dnsbl_finish(struct dnsbl_query *q)
{
	if (q->finished)
		return;
	q->finished = true;
	wtimer_stop(q->d->loop, &q->deadline);
	q->done(q->arg, q->score, q->zone, q->score >= q->threshold);
	dnsbl_query_free_if_done(q);
}

static void
dnsbl_deadline_cb(struct wloop *loop, struct wtimer *t)
{
	(void)loop;
	dnsbl_finish(t->data);
}

/* A zone lists the address (from an answer or the cache). */
static void
dnsbl_listed(struct dnsbl_query *q, struct dnsbl_lookup *lk)
{
	q->score += lk->weight;
	if (lk->weight > q->best) {
		q->best = lk->weight;
		q->zone = lk->zone;
	}
}

/* Whether an A answer lists: 127.0.0.0/8 but not 127.255.255.0/24. */
static bool
dnsbl_answer_lists(const struct ares_addrttl *t, int n, long *ttl)
{
	bool listed = false;
	*ttl = DNSBL_TTL_MAX;
	for (int i = 0; i < n; i++) {
		uint32_t a = ntohl(t[i].ipaddr.s_addr);
		if ((a >> 24) == 127 && (a >> 8) != 0x7fffff) {
			listed = true;
			if (t[i].ttl < *ttl)
				*ttl = t[i].ttl;
		}
	}
	return listed;
}

static void
dnsbl_answer_cb(void *arg, int status, int timeouts, unsigned char *abuf,
		int alen)
{
	struct dnsbl_lookup *lk = arg;
	struct dnsbl_query *q = lk->q;
	struct ares_addrttl ttls[8];
	int n = 8;
	long ttl;
	(void)timeouts;
	q->pending--;
	if (status == ARES_EDESTRUCTION)
		q->finished = true; /* the worker is going: nobody to tell */
	if (status == ARES_SUCCESS &&
	    ares_parse_a_reply(abuf, alen, NULL, ttls, &n) == ARES_SUCCESS) {
		bool listed = dnsbl_answer_lists(ttls, n, &ttl);
		dnsbl_cache_put(q->d, lk->name, listed,
				listed ? ttl : DNSBL_NEG_TTL_S);
		if (listed && !q->finished)
			dnsbl_listed(q, lk);
	} else if (status == ARES_ENOTFOUND || status == ARES_ENODATA)
		dnsbl_cache_put(q->d, lk->name, false, DNSBL_NEG_TTL_S);
	if (!q->finished && !q->starting &&
	    (q->pending == 0 || q->score >= q->threshold))
		dnsbl_finish(q);
	else
		dnsbl_query_free_if_done(q);
}

struct dnsbl_query *
dnsbl_check(struct dnsbl *d, const struct sockaddr *sa,
	    const struct edge_zone *zones, int nzones, int threshold,
	    int timeout_ms, dnsbl_done_fn *done, void *arg)
{
	struct dnsbl_query *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return NULL;
	q->d = d;
	q->done = done;
	q->arg = arg;
	q->threshold = threshold;
	q->deadline.cb = dnsbl_deadline_cb;
	q->deadline.data = q;
	/* the cache first: a listing there may decide with no lookup */
	int nlk = 0;
	for (int i = 0; i < nzones && i < EDGE_DNSBL_MAX; i++) {
		struct dnsbl_lookup *lk = &q->lk[nlk];
		lk->q = q;
		lk->weight = zones[i].weight;
		snprintf(lk->zone, sizeof(lk->zone), "%s", zones[i].name);
		if (dnsbl_name(sa, zones[i].name, lk->name, sizeof(lk->name)) <
		    0)
			continue;
		int cached = dnsbl_cache_get(d, lk->name);
		if (cached == 1)
			dnsbl_listed(q, lk);
		nlk++;
		if (cached >= 0)
			lk->name[0] = '\0'; /* answered */
	}
	if (nlk == 0) {
		free(q);
		return NULL;
	}
	q->starting = true; /* a callback from inside ares_query waits */
	for (int i = 0; i < nlk && q->score < threshold; i++) {
		if (q->lk[i].name[0] == '\0')
			continue;
		q->pending++;
		d->sent++;
		ares_query(d->ch, q->lk[i].name, 1 /* C_IN */, 1 /* T_A */,
			   dnsbl_answer_cb, &q->lk[i]);
	}
	q->starting = false;
	dnsbl_schedule(d);
	/* decided already: tell at the next loop turn */
	bool decided = q->pending == 0 || q->score >= threshold;
	wtimer_start(d->loop, &q->deadline,
		     decided ? 0. : timeout_ms / 1000.0);
	return q;
}

void
dnsbl_cancel(struct dnsbl_query *q)
{
	if (q == NULL)
		return;
	q->finished = true;
	wtimer_stop(q->d->loop, &q->deadline);
	dnsbl_query_free_if_done(q);
}
