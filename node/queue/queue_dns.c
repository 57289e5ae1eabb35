/* c-ares on libev: the channel's sockets are watched by ev_io watchers
 * that its socket-state callback starts and stops, and one ev_timer runs
 * its timeouts. A lookup is an MX query, then one getaddrinfo per host in
 * preference order; the result reaches the caller from a zero timer, so
 * never from inside queue_dns_lookup(). */
#include "queue_dns.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"

#define QDNS_SOCKS 16
#define QDNS_HOSTS 10	     /* MX hosts looked at */
#define QDNS_TIMEOUT_MS 3000 /* per try */
#define QDNS_TRIES 2

struct queue_dns {
	struct ev_loop *loop;
	ares_channel ch;
	ev_timer timer;
	struct {
		int fd; /* -1: free */
		ev_io io;
	} socks[QDNS_SOCKS];
};

enum qdns_phase { QDNS_MX, QDNS_HOST, QDNS_DONE };

struct queue_dns_req {
	struct queue_dns *d;
	queue_dns_cb cb; /* NULL: cancelled */
	void *arg;
	bool mx;
	int port;
	enum qdns_phase phase;
	bool in_ares; /* a c-ares callback is owed to us */
	char name[256];
	char hosts[QDNS_HOSTS][256];
	size_t nhosts, next;
	struct queue_dest dest;
	ev_timer done; /* delivers dest to cb */
};

static void qdns_update_timer(struct queue_dns *d);
static void qdns_next_host(struct queue_dns_req *q);

static void
qdns_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct queue_dns *d = w->data;
	(void)loop;
	ares_process_fd(d->ch, revents & EV_READ ? w->fd : ARES_SOCKET_BAD,
			revents & EV_WRITE ? w->fd : ARES_SOCKET_BAD);
	qdns_update_timer(d);
}

static void
qdns_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct queue_dns *d = w->data;
	(void)loop;
	(void)revents;
	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	qdns_update_timer(d);
}

static void
qdns_update_timer(struct queue_dns *d)
{
	struct timeval tv, *tvp = ares_timeout(d->ch, NULL, &tv);
	ev_timer_stop(d->loop, &d->timer);
	if (tvp == NULL)
		return;
	ev_timer_set(&d->timer, tvp->tv_sec + tvp->tv_usec / 1e6 + 0.001, 0.);
	ev_timer_start(d->loop, &d->timer);
}

static void
qdns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct queue_dns *d = data;
	int i, slot = -1;
	for (i = 0; i < QDNS_SOCKS; i++)
		if (d->socks[i].fd == fd)
			break;
	if (i < QDNS_SOCKS) {
		ev_io_stop(d->loop, &d->socks[i].io);
		slot = i;
	}
	if (!readable && !writable) {
		if (slot >= 0)
			d->socks[slot].fd = -1;
		return;
	}
	if (slot < 0)
		for (i = 0; i < QDNS_SOCKS && slot < 0; i++)
			if (d->socks[i].fd < 0)
				slot = i;
	if (slot < 0) {
		log_warn("dns: more than %d sockets", QDNS_SOCKS);
		return;
	}
	d->socks[slot].fd = fd;
	ev_io_init(&d->socks[slot].io, qdns_io_cb, fd,
		   (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
	d->socks[slot].io.data = d;
	ev_io_start(d->loop, &d->socks[slot].io);
}

struct queue_dns *
queue_dns_new(struct ev_loop *loop, const struct addr *resolver, char *err,
	      size_t errlen)
{
	struct ares_options o;
	int rc;
	struct queue_dns *d = calloc(1, sizeof(*d));
	if (d == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->loop = loop;
	for (int i = 0; i < QDNS_SOCKS; i++)
		d->socks[i].fd = -1;
	if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS)
		goto fail;
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = qdns_sock_state;
	o.sock_state_cb_data = d;
	o.timeout = QDNS_TIMEOUT_MS;
	o.tries = QDNS_TRIES;
	rc = ares_init_options(&d->ch, &o,
			       ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
				   ARES_OPT_TRIES);
	if (rc != ARES_SUCCESS)
		goto fail;
	if (resolver) {
		char s[ADDR_STRLEN];
		addr_fmt((const struct sockaddr *)&resolver->ss, s, sizeof(s));
		if ((rc = ares_set_servers_ports_csv(d->ch, s)) !=
		    ARES_SUCCESS) {
			ares_destroy(d->ch);
			goto fail;
		}
	}
	ev_init(&d->timer, qdns_timer_cb);
	d->timer.data = d;
	return d;
fail:
	snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
	free(d);
	return NULL;
}

void
queue_dns_free(struct queue_dns *d)
{
	if (d == NULL)
		return;
	/* Pending lookups get ARES_EDESTRUCTION and free themselves. */
	ares_destroy(d->ch);
	for (int i = 0; i < QDNS_SOCKS; i++)
		if (d->socks[i].fd >= 0)
			ev_io_stop(d->loop, &d->socks[i].io);
	ev_timer_stop(d->loop, &d->timer);
	ares_library_cleanup();
	free(d);
}

/* The result is known: hand it over from the loop. */
static void
qdns_finish(struct queue_dns_req *q, int status, const char *reply)
{
	q->phase = QDNS_DONE;
	q->dest.status = status;
	if (reply)
		snprintf(q->dest.reply, sizeof(q->dest.reply), "%.255s", reply);
	if (q->cb == NULL) {
		free(q);
		return;
	}
	ev_timer_start(q->d->loop, &q->done);
}

static void
qdns_done_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct queue_dns_req *q = w->data;
	(void)loop;
	(void)revents;
	if (q->cb)
		q->cb(&q->dest, q->arg);
	free(q);
}

static void
qdns_addrinfo_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct queue_dns_req *q = arg;
	(void)timeouts;
	q->in_ares = false;
	if (status == ARES_EDESTRUCTION || q->cb == NULL) {
		ares_freeaddrinfo(res);
		free(q);
		return;
	}
	const char *host = q->hosts[q->next - 1];
	if (status != ARES_SUCCESS)
		log_info("dns: %s: %s", host, ares_strerror(status));
	for (struct ares_addrinfo_node *n = res ? res->nodes : NULL;
	     n && q->dest.n < QUEUE_DEST_MAX; n = n->ai_next) {
		struct queue_dest_addr *a = &q->dest.addr[q->dest.n];
		if ((size_t)n->ai_addrlen > sizeof(a->ss))
			continue;
		memcpy(&a->ss, n->ai_addr, n->ai_addrlen);
		a->len = n->ai_addrlen;
		memcpy(a->host, host, sizeof(a->host)); /* both 256 */
		q->dest.n++;
	}
	ares_freeaddrinfo(res);
	qdns_next_host(q);
}

/* Looks up the next host's addresses, or finishes. */
static void
qdns_next_host(struct queue_dns_req *q)
{
	char port[8];
	if (q->next == q->nhosts || q->dest.n == QUEUE_DEST_MAX) {
		if (q->dest.n > 0)
			qdns_finish(q, 0, NULL);
		else {
			char why[300];
			snprintf(why, sizeof(why),
				 "451 4.4.4 no address found for %.200s",
				 q->nhosts == 1 ? q->hosts[0] : q->name);
			qdns_finish(q, 4, why);
		}
		return;
	}
	struct ares_addrinfo_hints h = {.ai_family = AF_UNSPEC,
					.ai_socktype = SOCK_STREAM};
	snprintf(port, sizeof(port), "%d", q->port);
	struct queue_dns *d = q->d; /* q may be done when this returns */
	q->phase = QDNS_HOST;
	q->in_ares = true;
	ares_getaddrinfo(d->ch, q->hosts[q->next++], port, &h, qdns_addrinfo_cb,
			 q);
	qdns_update_timer(d);
}

static int
qdns_mx_cmp(const void *a, const void *b)
{
	const struct ares_mx_reply *x = *(const struct ares_mx_reply *const *)a;
	const struct ares_mx_reply *y = *(const struct ares_mx_reply *const *)b;
	return (int)x->priority - (int)y->priority;
}

static void
qdns_mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct queue_dns_req *q = arg;
	struct ares_mx_reply *mx = NULL, *m, *list[64];
	size_t n = 0;
	char why[400];
	(void)timeouts;
	q->in_ares = false;
	if (status == ARES_EDESTRUCTION || q->cb == NULL) {
		free(q);
		return;
	}
	if (status == ARES_SUCCESS)
		status = ares_parse_mx_reply(abuf, alen, &mx);
	if (status == ARES_ENOTFOUND) {
		snprintf(why, sizeof(why),
			 "550 5.1.2 Host or domain name not found: %.200s",
			 q->name);
		qdns_finish(q, 5, why);
		return;
	}
	if (status == ARES_ENODATA) { /* RFC 5321 5.1: the implicit MX */
		memcpy(q->hosts[0], q->name, sizeof(q->hosts[0]));
		q->nhosts = 1;
		qdns_next_host(q);
		return;
	}
	if (status != ARES_SUCCESS) {
		snprintf(why, sizeof(why), "451 4.4.3 MX lookup of %.200s: %s",
			 q->name, ares_strerror(status));
		qdns_finish(q, 4, why);
		return;
	}
	for (m = mx; m && n < 64; m = m->next)
		list[n++] = m;
	qsort(list, n, sizeof(*list), qdns_mx_cmp);
	/* RFC 7505: a single MX "." means no mail at all. */
	if (n == 1 &&
	    (list[0]->host[0] == '\0' || strcmp(list[0]->host, ".") == 0)) {
		ares_free_data(mx);
		snprintf(why, sizeof(why),
			 "556 5.1.10 %.200s does not accept mail (null MX)",
			 q->name);
		qdns_finish(q, 5, why);
		return;
	}
	for (size_t i = 0; i < n && q->nhosts < QDNS_HOSTS; i++)
		if (list[i]->host[0])
			snprintf(q->hosts[q->nhosts++], sizeof(q->hosts[0]),
				 "%s", list[i]->host);
	ares_free_data(mx);
	qdns_next_host(q);
}

struct queue_dns_req *
queue_dns_lookup(struct queue_dns *d, const char *name, bool mx, int port,
		 queue_dns_cb cb, void *arg)
{
	struct queue_dns_req *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return NULL;
	q->d = d;
	q->cb = cb;
	q->arg = arg;
	q->mx = mx;
	q->port = port;
	snprintf(q->name, sizeof(q->name), "%s", name);
	ev_timer_init(&q->done, qdns_done_cb, 0., 0.);
	q->done.data = q;
	if (mx) {
		q->phase = QDNS_MX;
		q->in_ares = true;
		ares_query(d->ch, name, ns_c_in, ns_t_mx, qdns_mx_cb, q);
		qdns_update_timer(d);
	} else {
		snprintf(q->hosts[0], sizeof(q->hosts[0]), "%s", name);
		q->nhosts = 1;
		qdns_next_host(q);
	}
	return q;
}

void
queue_dns_cancel(struct queue_dns_req *q)
{
	if (q == NULL)
		return;
	q->cb = NULL;
	if (q->in_ares)
		return; /* freed by the c-ares callback */
	if (q->phase == QDNS_DONE) {
		ev_timer_stop(q->d->loop, &q->done);
		free(q);
	}
}
