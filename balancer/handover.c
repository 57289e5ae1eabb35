/* The listening sockets handed from a running lbd to its successor
 * (handover.h has the exchange). */
#include "handover.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/log.h"
#include "lbd.h"
#include "lbd_run.h"
#include "metrics.h"

#define HANDOVER_TIMEOUT_S 5 /* each step on the successor's side */

/* --- the running lbd's side --- */

/* One byte carrying fd. The control client is a local stream socket
 * that has read nothing yet, so its buffer takes these few bytes. */
static int
handover_send_fd(int sock, int fd)
{
	char byte = 'L';
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf)};
	memset(&ctl, 0, sizeof(ctl));
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

static int
handover_send_text(int sock, const char *text)
{
	size_t len = strlen(text);
	return send(sock, text, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
}

/* After the answer: stop on the next loop turn (not inside serve.c's
 * callback, whose client lbd_stop closes). The metrics listener closes
 * before the control socket, so it is free when the successor sees EOF. */
static void
handover_stop_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct lbd *l = w->data;
	(void)loop;
	(void)revents;
	metrics_stop(l);
	lbd_stop(l);
}

void
handover_give(struct lbd *l, struct serve_client *c)
{
	int fds[HANDOVER_MAX], n = 0;
	char head[64];

	if (l->stopping) {
		strbuf_appends(&c->out, "error: lbd is stopping\n");
		serve_answer(c);
		return;
	}
	pthread_mutex_lock(&l->svc_lock);
	for (struct service *s = l->cfg->services; s; s = s->next)
		for (int i = 0; i < LBD_MAX_WORKERS && n < HANDOVER_MAX; i++)
			if (!atomic_load(&s->closing) && s->fds[i] >= 0)
				fds[n++] = s->fds[i];
	snprintf(head, sizeof(head), HANDOVER_COMMAND " %d\n", n);
	int rc = handover_send_text(c->fd, head);
	for (int i = 0; rc == 0 && i < n; i++)
		rc = handover_send_fd(c->fd, fds[i]);
	pthread_mutex_unlock(&l->svc_lock);
	if (rc < 0) {
		log_err("handover: sending the listening sockets: %s; going on",
			strerror(errno));
		serve_close(c);
		return;
	}
	log_info("handover: %d listening sockets given to a successor; "
		 "stopping",
		 n);
	/* Kept open until the stop closes the control socket: its EOF tells
	 * the successor the socket file is free. */
	serve_stream(c, 4096);
	ev_timer_init(&l->handover_stop, handover_stop_cb, 0., 0.);
	l->handover_stop.data = l;
	ev_timer_start(l->loop, &l->handover_stop);
}

/* --- the successor's side --- */

/* One byte, and the socket it carries (or -1). 1, 0 at EOF, -1. */
static int
handover_recv(int sock, char *byte, int *fd)
{
	struct iovec iov = {.iov_base = byte, .iov_len = 1};
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf)};
	ssize_t r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	*fd = -1;
	if (r <= 0)
		return (int)r;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm;
	     cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(fd, CMSG_DATA(cm), sizeof(int));
	return 1;
}

static int
handover_connect(const char *path, char *err, size_t len)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = HANDOVER_TIMEOUT_S};

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, len, "control socket %s: path too long", path);
		return -1;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0 ||
	    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(sock, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		snprintf(err, len,
			 "control socket %s: %s (is the old lbd running "
			 "with this control socket?)",
			 path, strerror(errno));
		if (sock >= 0)
			close(sock);
		return -1;
	}
	return sock;
}

/* The answer's first line, NUL-terminated, read a byte at a time so that
 * no socket-carrying byte is read with it. */
static int
handover_head(int sock, char *line, size_t max)
{
	size_t n = 0;
	char c;
	int fd;
	for (;;) {
		int r = handover_recv(sock, &c, &fd);
		if (fd >= 0)
			close(fd);
		if (r <= 0 || fd >= 0)
			return -1;
		if (c == '\n' || n + 1 == max)
			break;
		line[n++] = c;
	}
	line[n] = '\0';
	return 0;
}

int
handover_take(const char *path, struct handover *h, char *err, size_t len)
{
	char line[256], c;
	int want = -1, fd, r;

	h->n = 0;
	int sock = handover_connect(path, err, len);
	if (sock < 0)
		return -1;
	if (send(sock, HANDOVER_COMMAND "\n", sizeof(HANDOVER_COMMAND),
		 MSG_NOSIGNAL) != (ssize_t)sizeof(HANDOVER_COMMAND) ||
	    handover_head(sock, line, sizeof(line)) < 0) {
		snprintf(err, len, "control socket %s: no answer to \"%s\"",
			 path, HANDOVER_COMMAND);
		goto fail;
	}
	if (sscanf(line, HANDOVER_COMMAND " %d%c", &want, &c) != 1 ||
	    want < 0 || want > HANDOVER_MAX) {
		snprintf(err, len, "control socket %s: \"%s\" refused: %s",
			 path, HANDOVER_COMMAND, line);
		goto fail;
	}
	while (h->n < want) {
		if (handover_recv(sock, &c, &fd) <= 0 || fd < 0) {
			snprintf(err, len,
				 "control socket %s: %d of %d sockets came",
				 path, h->n, want);
			goto fail;
		}
		struct addr *a = &h->addrs[h->n];
		a->len = sizeof(a->ss);
		h->fds[h->n++] = fd;
		if (getsockname(fd, (struct sockaddr *)&a->ss, &a->len) < 0)
			a->len = 0; /* claimed by nobody */
	}
	/* Until EOF: the old lbd has closed its control socket and metrics
	 * listener (its watch lines, if any, are skipped). */
	while ((r = handover_recv(sock, &c, &fd)) > 0)
		if (fd >= 0)
			close(fd);
	if (r < 0) {
		snprintf(err, len,
			 "control socket %s: the old lbd did not stop within "
			 "%d s",
			 path, HANDOVER_TIMEOUT_S);
		goto fail;
	}
	close(sock);
	return 0;
fail:
	close(sock);
	for (int i = 0; i < h->n; i++)
		close(h->fds[i]);
	h->n = 0;
	return -1;
}

/* The same family, address and port (the rest of a sockaddr may
 * differ between what was parsed and what getsockname() says). */
static bool
handover_same(const struct addr *a, const struct addr *b)
{
	const struct sockaddr *x = (const struct sockaddr *)&a->ss;
	const struct sockaddr *y = (const struct sockaddr *)&b->ss;
	if (a->len == 0 || x->sa_family != y->sa_family ||
	    addr_port(x) != addr_port(y))
		return false;
	if (x->sa_family == AF_INET)
		return ((const struct sockaddr_in *)x)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)y)->sin_addr.s_addr;
	if (x->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)x)->sin6_addr,
			      &((const struct sockaddr_in6 *)y)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return false;
}

int
handover_claim(struct handover *h, const struct addr *a)
{
	if (h == NULL)
		return -1;
	for (int i = 0; i < h->n; i++)
		if (h->fds[i] >= 0 && handover_same(&h->addrs[i], a)) {
			int fd = h->fds[i];
			h->fds[i] = -1;
			return fd;
		}
	return -1;
}

void
handover_release(struct handover *h)
{
	int left = 0;
	for (int i = 0; i < h->n; i++)
		if (h->fds[i] >= 0) {
			close(h->fds[i]);
			h->fds[i] = -1;
			left++;
		}
	if (left > 0)
		log_warn("handover: %d listening sockets of the old lbd not "
			 "taken (a service left the config, or fewer "
			 "workers): connections queued on them are reset",
			 left);
}
