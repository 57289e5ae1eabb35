/* The control socket server: a Unix stream socket on the main loop,
 * served by serve.c (one command line per client, bounded, with an idle
 * timeout; the answer; then linger and close). A `watch` client stays
 * and gets one line per state change (ctl_server_on_event); one that does
 * not read fast enough is dropped. ctl_server.c owns the socket file (a
 * stale one is replaced, a live one refused) and the line format. */
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
#include "handover.h"
#include "../common/serve.h"

#define CTL_WATCH_MAX (256u << 10) /* a watcher's unsent lines */

struct ctl_server {
	struct serve *serve;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
};

/* Runs the first len bytes of c->in and answers, or keeps a watcher.
 * A successor asking for the listening sockets gets them on this very
 * socket (handover.h), which no command of ctl.c can do. */
static void
ctl_server_run(struct serve_client *c, size_t len)
{
	if (len >= sizeof(HANDOVER_COMMAND) - 1 &&
	    strncmp(c->in, HANDOVER_COMMAND, sizeof(HANDOVER_COMMAND) - 1) ==
		0 &&
	    strspn(c->in + sizeof(HANDOVER_COMMAND) - 1, "\r\n") ==
		len - (sizeof(HANDOVER_COMMAND) - 1))
		handover_give(c->arg, c);
	else if (ctl_execn(c->arg, c->in, len, &c->out) == CTL_WATCH)
		serve_stream(c, CTL_WATCH_MAX);
	else
		serve_answer(c);
}

/* serve.c's input: one line, or what came before EOF. */
static void
ctl_server_input(struct serve_client *c, bool eof)
{
	char *nl = memchr(c->in, '\n', c->inlen);

	if (nl != NULL)
		ctl_server_run(c, (size_t)(nl - c->in) + 1);
	else if (eof && c->inlen == 0)
		serve_close(c);
	else if (eof) /* a last line without its newline still counts */
		ctl_server_run(c, c->inlen);
	else if (c->inlen == CTL_LINE_MAX) {
		strbuf_appends(&c->out, "error: line too long\n");
		serve_answer(c);
	}
}

static void
ctl_server_timeout(struct serve_client *c)
{
	strbuf_appends(&c->out, "error: timeout waiting for a command line\n");
	serve_answer(c);
}

static const struct serve_proto ctl_server_proto = {
    .name = "control",
    .max_clients = 64,
    .busy = "error: too many control clients\n",
    .in_max = CTL_LINE_MAX,
    .out_max = CTL_ANSWER_MAX,
    .read_s = 5.0,	    /* to send a whole command line */
    .write_s = 10.0,	    /* to read an answer */
    .linger_s = 1.0,	    /* after the answer, until the client closes */
    .linger_max = 4u << 20, /* bytes drained after the answer */
    .input = ctl_server_input,
    .timeout = ctl_server_timeout,
};

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
	srv->dev = st.st_dev;
	srv->ino = st.st_ino;
	snprintf(srv->path, sizeof(srv->path), "%s", path);
	srv->serve = serve_start(l->loop, fd, &ctl_server_proto, l);
	fd = -1; /* serve_start took it */
	if (srv->serve == NULL)
		goto fail;
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
	serve_stop(srv->serve);
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

	if (l->ctl == NULL || ev->kind != EVENT_STATE)
		return;
	strbuf_init(&line, 1024);
	if (ctl_event_line(&line, ev_time(), ev->pool->name, ev->name, ev->from,
			   ev->to, ev->reason) == 0)
		serve_push_all(l->ctl->serve, line.buf, line.len);
	strbuf_free(&line);
}
