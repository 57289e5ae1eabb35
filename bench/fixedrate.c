/*
 * fixedrate: a small open-loop load generator for the benchmark (wrk has
 * no fixed-rate mode and wrk2 is not packaged).
 *
 *   fixedrate HOST PORT PATH RATE SECONDS [MAXOPEN]
 *
 * Opens a new TCP connection every 1/RATE seconds on a fixed schedule
 * (open loop: a slow answer never delays the next connection), sends
 * "GET PATH HTTP/1.1" with "Connection: close", reads until the server
 * closes, and records each latency from the connection's *scheduled*
 * start, so a generator or server that falls behind shows up in the
 * latency instead of being hidden (no coordinated omission). After
 * SECONDS it waits at most 2 s for the connections still open; those
 * count as errors. At most MAXOPEN (default 8000) connections are open at
 * once; a connection that cannot be opened because of that bound counts
 * as an error too.
 *
 * Prints one line:
 *   scheduled N ok N errors N rate R p50_ms X p99_ms X p999_ms X max_ms X
 * where rate is the answered connections per second of the schedule.
 * Exit status 0, or 2 on a usage error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	int sent;         /* bytes of the request written */
	int got;          /* bytes of the answer read */
	int ok;           /* the answer began with a 2xx status line */
	uint64_t sched;   /* scheduled start, ns */
	char head[16];    /* the first bytes of the answer */
};

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double
pct(const uint64_t *v, size_t n, double p)
{
	if (n == 0)
		return -1;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	if (i >= n)
		i = n - 1;
	return (double)v[i] / 1e6;
}

static char req[512];
static char first_error[160];

static void
note_error(const char *what, int err)
{
	if (!first_error[0])
		snprintf(first_error, sizeof first_error, "%s: %s", what,
			 err ? strerror(err) : "no 2xx answer");
}
static int reqlen;

static void
finish(int ep, struct conn *c, struct conn **slot, uint64_t *lat, size_t *nlat,
       long *errors, int *open)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->ok) {
		lat[(*nlat)++] = now_ns() - c->sched;
	} else {
		int err = 0;
		socklen_t len = sizeof err;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		note_error(c->got ? "answer" : "connection", err);
		(*errors)++;
	}
	close(c->fd);
	*slot = NULL;
	free(c);
	(*open)--;
}

int
main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: fixedrate HOST PORT PATH RATE SECONDS [MAXOPEN]\n");
		return 2;
	}
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
		fprintf(stderr, "fixedrate: %s: not an IPv4 address\n", argv[1]);
		return 2;
	}
	double rate = atof(argv[4]), secs = atof(argv[5]);
	int maxopen = argc > 6 ? atoi(argv[6]) : 8000;
	if (rate <= 0 || secs <= 0 || maxopen <= 0) {
		fprintf(stderr, "fixedrate: RATE, SECONDS and MAXOPEN must be > 0\n");
		return 2;
	}
	reqlen = snprintf(req, sizeof req,
			  "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
			  argv[3], argv[1]);
	size_t total = (size_t)(rate * secs);
	uint64_t *lat = calloc(total + 1, sizeof *lat);
	/* the connections, indexed by fd */
	int fdmax = maxopen + 64;
	struct conn **byfd = calloc((size_t)fdmax, sizeof *byfd);
	int ep = epoll_create1(0);
	if (!lat || !byfd || ep < 0) {
		perror("fixedrate");
		return 1;
	}
	uint64_t period = (uint64_t)(1e9 / rate);
	uint64_t start = now_ns() + 1000000;
	size_t next = 0, nlat = 0;
	long errors = 0;
	int open = 0;
	struct epoll_event evs[256];
	uint64_t drain_end = 0;

	for (;;) {
		uint64_t t = now_ns();
		/* start every connection whose time has come */
		while (next < total && start + next * period <= t) {
			uint64_t sched = start + next * period;
			next++;
			if (open >= maxopen) {
				note_error("more than MAXOPEN open", 0);
				errors++;
				continue;
			}
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (fd < 0 || fd >= fdmax) {
				note_error("socket", errno);
				if (fd >= 0)
					close(fd);
				errors++;
				continue;
			}
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 &&
			    errno != EINPROGRESS) {
				note_error("connect", errno);
				close(fd);
				errors++;
				continue;
			}
			struct conn *c = calloc(1, sizeof *c);
			c->fd = fd;
			c->sched = sched;
			byfd[fd] = c;
			open++;
			struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP,
						 .data.fd = fd};
			epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		}
		if (next >= total) {
			if (!drain_end)
				drain_end = now_ns() + 2000000000u;
			if (open == 0 || now_ns() >= drain_end)
				break;
		}
		/* sleep until the next connection is due, to the microsecond
		 * (epoll_pwait2): no busy loop on the load generator's core */
		uint64_t wait_ns = 10000000;
		if (next < total) {
			uint64_t due = start + next * period;
			t = now_ns();
			wait_ns = due > t ? due - t : 0;
		}
		struct timespec to = {.tv_sec = (time_t)(wait_ns / 1000000000u),
				      .tv_nsec = (long)(wait_ns % 1000000000u)};
		int n = epoll_pwait2(ep, evs, 256, &to, NULL);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			struct conn *c = byfd[fd];
			if (!c)
				continue;
			if (evs[i].events & (EPOLLERR)) {
				finish(ep, c, &byfd[fd], lat, &nlat, &errors, &open);
				continue;
			}
			if ((evs[i].events & EPOLLOUT) && c->sent < reqlen) {
				ssize_t w = write(fd, req + c->sent, (size_t)(reqlen - c->sent));
				if (w < 0 && errno != EAGAIN) {
					finish(ep, c, &byfd[fd], lat, &nlat, &errors, &open);
					continue;
				}
				if (w > 0)
					c->sent += (int)w;
				if (c->sent == reqlen) {
					struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
								 .data.fd = fd};
					epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
				}
			}
			if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
				char buf[16384];
				for (;;) {
					ssize_t r = read(fd, buf, sizeof buf);
					if (r > 0) {
						if (c->got < (int)sizeof c->head) {
							int k = (int)sizeof c->head - c->got;
							if (k > r)
								k = (int)r;
							memcpy(c->head + c->got, buf, (size_t)k);
						}
						c->got += (int)r;
						continue;
					}
					if (r == 0) {
						/* "HTTP/1.1 2" */
						c->ok = c->sent == reqlen && c->got > 12 &&
							memcmp(c->head, "HTTP/1.", 7) == 0 &&
							c->head[9] == '2';
						finish(ep, c, &byfd[fd], lat, &nlat, &errors, &open);
					} else if (errno != EAGAIN && errno != EINTR) {
						finish(ep, c, &byfd[fd], lat, &nlat, &errors, &open);
					}
					break;
				}
			}
		}
	}
	/* whatever is still open after the drain is an error */
	for (int fd = 0; fd < fdmax; fd++)
		if (byfd[fd]) {
			note_error("still open after the drain", 0);
			close(fd);
			free(byfd[fd]);
			errors++;
		}
	qsort(lat, nlat, sizeof *lat, cmp_u64);
	printf("scheduled %zu ok %zu errors %ld rate %.1f p50_ms %.3f p99_ms %.3f "
	       "p999_ms %.3f max_ms %.3f\n",
	       total, nlat, errors, (double)nlat / secs,
	       pct(lat, nlat, 0.50), pct(lat, nlat, 0.99), pct(lat, nlat, 0.999),
	       nlat ? (double)lat[nlat - 1] / 1e6 : -1.0);
	if (first_error[0])
		fprintf(stderr, "fixedrate: first error: %s\n", first_error);
	return 0;
}
