/* The control socket server: a Unix stream socket on the main loop. Each
 * client is a small state machine: it sends one line (bounded, with an
 * idle timeout), gets the answer through a non-blocking write buffer,
 * then the server shuts its side and drains what the client still sends
 * before closing (so the answer is not lost to a reset). A `watch` client
 * stays and gets one line per state change; one that does not read fast
 * enough is dropped. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "ctl.h"

#define CTL_MAX_CLIENTS 64
#define CTL_IDLE_S 5.0	 /* to send a whole command line */
#define CTL_WRITE_S 10.0 /* to read an answer */
#define CTL_LINGER_S 1.0 /* after the answer, until the client closes */
#define CTL_LINGER_MAX (4u << 20)  /* bytes drained after the answer */
#define CTL_WATCH_MAX (256u << 10) /* a watcher's unsent lines */
#define CTL_ACCEPT_BURST 32

enum ctl_client_state {
	CC_READING,  /* waiting for the command line */
	CC_WRITING,  /* sending the answer */
	CC_LINGER,   /* answer sent, write side shut, draining input */
	CC_WATCHING, /* `watch`: streaming events */
};

struct ctl_server;

struct ctl_client {
	struct ctl_server *srv;
	int fd;
	enum ctl_client_state state;
	ev_io rio, wio;
	ev_timer timer;
	char line[CTL_LINE_MAX];
	size_t len;
	size_t drained;
	struct strbuf out;
	struct ctl_client *prev, *next;
};

struct ctl_server {
	struct lbd *l;
	int fd;
	ev_io accept_w;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	struct ctl_client *clients;
	int nclients;
};

static void
ctl_client_close(struct ctl_client *c)
{
	struct ctl_server *srv = c->srv;
	struct ev_loop *loop = srv->l->loop;

	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	ev_timer_stop(loop, &c->timer);
	close(c->fd);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->nclients--;
	strbuf_free(&c->out);
	free(c);
}

static void
ctl_client_timer(struct ctl_client *c, double after)
{
	struct ev_loop *loop = c->srv->l->loop;
	ev_timer_stop(loop, &c->timer);
	if (after > 0) {
		ev_timer_set(&c->timer, after, 0.);
		ev_timer_start(loop, &c->timer);
	}
}

/* The answer is out: shut our side and drain the client's until it
 * closes, so that unread input does not turn our close into a reset. */
static void
ctl_client_linger(struct ctl_client *c)
{
	struct ev_loop *loop = c->srv->l->loop;
	shutdown(c->fd, SHUT_WR);
	c->state = CC_LINGER;
	ev_io_stop(loop, &c->wio);
	ev_io_start(loop, &c->rio);
	ctl_client_timer(c, CTL_LINGER_S);
}

/* Sends what it can of c->out. Returns -1 when c was closed. */
static int
ctl_client_flush(struct ctl_client *c)
{
	struct ev_loop *loop = c->srv->l->loop;

	while (c->out.len > 0) {
		ssize_t n = send(c->fd, c->out.buf, c->out.len,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(loop, &c->wio);
			return 0;
		}
		if (n <= 0) {
			ctl_client_close(c);
			return -1;
		}
		strbuf_consume(&c->out, (size_t)n);
	}
	ev_io_stop(loop, &c->wio);
	if (c->state == CC_WRITING)
		ctl_client_linger(c);
	return 0;
}

/* Sends out what c->out holds (an answer) and then closes. */
static void
ctl_client_answer(struct ctl_client *c)
{
	c->state = CC_WRITING;
	ev_io_stop(c->srv->l->loop, &c->rio);
	ctl_client_timer(c, CTL_WRITE_S);
	ctl_client_flush(c);
}

static void
ctl_client_run(struct ctl_client *c, size_t len)
{
	enum ctl_status st = ctl_execn(c->srv->l, c->line, len, &c->out);
	if (st != CTL_WATCH) {
		ctl_client_answer(c);
		return;
	}
	c->state = CC_WATCHING;
	c->out.max = CTL_WATCH_MAX;
	ctl_client_timer(c, 0);
	/* rio stays on: input is drained, and EOF ends the watch */
}

/* Reads and throws away; on EOF or error closes c. */
static void
ctl_client_drain(struct ctl_client *c)
{
	char scratch[4096];
	for (int i = 0; i < 16; i++) {
		ssize_t n = recv(c->fd, scratch, sizeof(scratch), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			ctl_client_close(c);
			return;
		}
		c->drained += (size_t)n;
		if (c->state == CC_LINGER && c->drained > CTL_LINGER_MAX) {
			ctl_client_close(c);
			return;
		}
	}
}

static void
ctl_client_read(struct ctl_client *c)
{
	ssize_t n;

	do {
		n = recv(c->fd, c->line + c->len, sizeof(c->line) - c->len, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n < 0) {
		ctl_client_close(c);
		return;
	}
	if (n == 0) {
		/* EOF: a last line without its newline still counts */
		if (c->len == 0) {
			ctl_client_close(c);
			return;
		}
		ctl_client_run(c, c->len);
		return;
	}
	char *nl = memchr(c->line + c->len, '\n', (size_t)n);
	c->len += (size_t)n;
	if (nl != NULL) {
		ctl_client_run(c, (size_t)(nl - c->line) + 1);
		return;
	}
	if (c->len == sizeof(c->line)) {
		strbuf_appends(&c->out, "error: line too long\n");
		ctl_client_answer(c);
	}
}

static void
ctl_client_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_client *c = w->data;
	(void)loop, (void)revents;
	if (c->state == CC_READING)
		ctl_client_read(c);
	else
		ctl_client_drain(c);
}

static void
ctl_client_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop, (void)revents;
	ctl_client_flush(w->data);
}

static void
ctl_client_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctl_client *c = w->data;
	(void)loop, (void)revents;
	if (c->state == CC_READING) {
		strbuf_appends(&c->out,
			       "error: timeout waiting for a command line\n");
		ctl_client_answer(c);
		return;
	}
	ctl_client_close(c);
}

static void
ctl_client_new(struct ctl_server *srv, int fd)
{
	struct ev_loop *loop = srv->l->loop;
	struct ctl_client *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		log_warn("%s: out of memory", __func__);
		close(fd);
		return;
	}
	c->srv = srv;
	c->fd = fd;
	c->state = CC_READING;
	strbuf_init(&c->out, CTL_ANSWER_MAX);
	ev_io_init(&c->rio, ctl_client_read_cb, fd, EV_READ);
	ev_io_init(&c->wio, ctl_client_write_cb, fd, EV_WRITE);
	ev_init(&c->timer, ctl_client_timer_cb);
	c->rio.data = c->wio.data = c->timer.data = c;
	c->next = srv->clients;
	if (srv->clients != NULL)
		srv->clients->prev = c;
	srv->clients = c;
	srv->nclients++;
	ev_io_start(loop, &c->rio);
	ctl_client_timer(c, CTL_IDLE_S);
}

static void
ctl_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_server *srv = w->data;
	static const char busy[] = "error: too many control clients\n";
	(void)loop, (void)revents;

	for (int i = 0; i < CTL_ACCEPT_BURST; i++) {
		int fd =
		    accept4(srv->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR && errno != ECONNABORTED)
				log_warn("%s: accept: %s", __func__,
					 strerror(errno));
			return;
		}
		if (srv->nclients >= CTL_MAX_CLIENTS) {
			if (send(fd, busy, sizeof(busy) - 1,
				 MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				log_debug("%s: busy answer: %s", __func__,
					  strerror(errno));
			close(fd);
			continue;
		}
		ctl_client_new(srv, fd);
	}
}

/* A socket file at path: stale (nobody answers: removed) or live (another
 * lbd: refuse). Returns 0 when the path is free, -1 (logged) otherwise. */
static int
ctl_socket_claim(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		log_err("control socket %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_err("control socket %s: exists and is not a socket", path);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_err("control socket %s: socket: %s", path, strerror(errno));
		return -1;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	int rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	int err = errno;
	close(fd);
	if (rc == 0 || err == EAGAIN || err == EINPROGRESS) {
		log_err("control socket %s: another process (lbd?) is "
			"listening on it; not starting",
			path);
		return -1;
	}
	if (err != ECONNREFUSED) {
		log_err("control socket %s: %s", path, strerror(err));
		return -1;
	}
	log_info("control socket %s: removing a stale socket", path);
	if (unlink(path) < 0 && errno != ENOENT) {
		log_err("control socket %s: unlink: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
ctl_server_start(struct lbd *l)
{
	const char *path = l->cfg->set.control;
	int mode = l->cfg->set.control_mode;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct ctl_server *srv = NULL;
	struct stat st;
	int fd = -1;
	bool bound = false;

	if (path[0] == '\0') {
		log_err("%s: no control socket configured", __func__);
		return -1;
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_err("control socket %s: path too long (max %zu bytes)",
			path, sizeof(sun.sun_path) - 1);
		return -1;
	}
	if (ctl_socket_claim(path) < 0)
		return -1;
	if ((srv = calloc(1, sizeof(*srv))) == NULL) {
		log_err("%s: out of memory", __func__);
		goto fail;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_err("control socket %s: socket: %s", path, strerror(errno));
		goto fail;
	}
	/* created owner-only, then given its mode before listen(): nobody
	 * can connect before it has the configured mode */
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	int err = errno;
	umask(old);
	if (rc < 0) {
		log_err("control socket %s: bind: %s", path, strerror(err));
		goto fail;
	}
	bound = true;
	if (chmod(path, (mode_t)mode) < 0 || stat(path, &st) < 0) {
		log_err("control socket %s: chmod: %s", path, strerror(errno));
		goto fail;
	}
	if (listen(fd, 64) < 0) {
		log_err("control socket %s: listen: %s", path, strerror(errno));
		goto fail;
	}
	srv->l = l;
	srv->fd = fd;
	srv->dev = st.st_dev;
	srv->ino = st.st_ino;
	snprintf(srv->path, sizeof(srv->path), "%s", path);
	ev_io_init(&srv->accept_w, ctl_accept_cb, fd, EV_READ);
	srv->accept_w.data = srv;
	ev_io_start(l->loop, &srv->accept_w);
	l->ctl = srv;
	log_info("control socket %s (mode %04o)", path, mode);
	return 0;
fail:
	if (bound)
		unlink(path);
	if (fd >= 0)
		close(fd);
	free(srv);
	return -1;
}

void
ctl_server_stop(struct lbd *l)
{
	struct ctl_server *srv = l->ctl;
	struct stat st;

	if (srv == NULL)
		return;
	while (srv->clients != NULL)
		ctl_client_close(srv->clients);
	ev_io_stop(l->loop, &srv->accept_w);
	close(srv->fd);
	/* only our own socket: another lbd may have replaced it since */
	if (stat(srv->path, &st) == 0 && st.st_dev == srv->dev &&
	    st.st_ino == srv->ino)
		unlink(srv->path);
	free(srv);
	l->ctl = NULL;
}

/* Copies s with control bytes replaced, so one event stays one line. */
static void
ctl_event_clean(char *dst, size_t len, const char *s)
{
	size_t i = 0;
	for (; s != NULL && s[i] != '\0' && i + 1 < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		dst[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	dst[i] = '\0';
}

int
ctl_event_line(struct strbuf *sb, double t, const char *pool, const char *node,
	       const char *from, const char *to, const char *reason)
{
	char stamp[40], why[256];
	struct tm tm;
	long long total_ms = llround(t * 1000.0);
	time_t secs = (time_t)(total_ms / 1000);
	int ms = (int)(total_ms % 1000);

	gmtime_r(&secs, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	ctl_event_clean(why, sizeof(why), reason);
	return strbuf_appendf(sb, "%s.%03dZ %s %s %s -> %s%s%s\n", stamp, ms,
			      pool, node, from, to, why[0] ? " " : "", why);
}

void
ctl_server_on_event(struct lbd *l, const struct event *ev)
{
	struct strbuf line;
	struct ctl_client *c, *next;

	if (l->ctl == NULL || ev->kind != EVENT_STATE)
		return;
	strbuf_init(&line, 1024);
	if (ctl_event_line(&line, ev_time(), ev->pool->name, ev->name, ev->from,
			   ev->to, ev->reason) < 0)
		goto done;
	for (c = l->ctl->clients; c != NULL; c = next) {
		next = c->next;
		if (c->state != CC_WATCHING)
			continue;
		if (strbuf_append(&c->out, line.buf, line.len) < 0) {
			log_warn("control: dropping a watcher %d bytes behind",
				 (int)c->out.len);
			ctl_client_close(c);
			continue;
		}
		ev_io_start(l->loop, &c->wio);
	}
done:
	strbuf_free(&line);
}
