/* lbctl: the control client of lbd. Checks its arguments, turns them into
 * one control-socket command line (DESIGN.md, "Control socket and lbctl"),
 * sends it and copies the answer out: to stdout, or to stderr when it
 * starts with "error: ". Exits 0 on success, 1 on an error answer or no
 * answer, 2 on bad usage. Links only common/. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../common/addr.h"
#include "../common/decimal.h"
#include "../common/fdio.h"
#include "lbd_limits.h"

#define LBCTL_SOCKET_DEFAULT "/run/lbd/lbd.sock"
#define LBCTL_LINE_MAX 512
#define LBCTL_ANSWER_MAX (16u << 20) /* 16 MiB */
#define LBCTL_NAME_MAX (LBD_NAME_MAX - 1)
#define LBCTL_TIMEOUT_MS 5000	   /* idle timeout waiting for an answer */
#define LBCTL_PING_TIMEOUT_MS 1000 /* the whole ping exchange */
#define LBCTL_TIMEOUT_MAX_MS 3600000
#define LBCTL_ERROR_PREFIX "error: "

enum { LBCTL_OK = 0, LBCTL_FAIL = 1, LBCTL_USAGE = 2 };

struct lbctl {
	const char *socket;
	long timeout_ms; /* -t; 0: the command's default */
	char line[LBCTL_LINE_MAX];
	size_t linelen;
};

struct lbctl_cmd {
	const char *word[2]; /* "node" "drain"; word[1] NULL for one word */
	/* Builds c->line from the arguments after the command words.
	 * Returns 0, or -1 after saying what is wrong on stderr. */
	int (*build)(struct lbctl *c, int argc, char **argv);
	long timeout_ms; /* default; 0: no read timeout (watch) */
	int whole;	 /* the timeout bounds the whole exchange (ping) */
};

static volatile sig_atomic_t lbctl_interrupted;

static const char lbctl_usage_text[] =
    "usage: lbctl [-s SOCKET] [-t MS] COMMAND ...\n"
    "\n"
    "  lbctl status [--json]\n"
    "  lbctl pool add POOL NODE HOST:PORT [--weight N] [--maxconn N]\n"
    "  lbctl pool remove POOL NODE\n"
    "  lbctl node drain|disable|enable POOL NODE\n"
    "  lbctl node disable POOL NODE [--for SECONDS]\n"
    "  lbctl node weight POOL NODE N\n"
    "  lbctl watch\n"
    "  lbctl ping\n"
    "\n"
    "  -s SOCKET  control socket (default: $LBCTL_SOCKET, "
    "then " LBCTL_SOCKET_DEFAULT ")\n"
    "  -t MS      answer timeout in milliseconds (default: 1000 for ping,\n"
    "             5000 otherwise; watch waits for as long as it runs)\n"
    "\n"
    "Exit status: 0 success, 1 error answer or no answer, 2 bad usage.\n";

static void
lbctl_usage(FILE *f)
{
	fputs(lbctl_usage_text, f);
}

/* Prints "lbctl: MESSAGE" to stderr and returns -1 (a usage error). */
static int __attribute__((format(printf, 1, 2))) lbctl_bad(const char *fmt, ...)
{
	va_list ap;
	fputs("lbctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/* ---- argument checks ---- */

/* Pool and node names: letters, digits, '-', '_', '.', as lbd's config. */
static int
lbctl_name(const char *what, const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > LBCTL_NAME_MAX)
		return lbctl_bad("bad %s name \"%.80s\" (1 to %d characters)",
				 what, s, LBCTL_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		    ch == '.')
			continue;
		return lbctl_bad("bad %s name \"%.80s\" (letters, digits, "
				 "- _ . only)",
				 what, s);
	}
	return 0;
}

/* Appends to c->line; -1 if the line would not fit (cannot happen with
 * checked arguments, but the bound is kept). */
static int __attribute__((format(printf, 2, 3)))
lbctl_put(struct lbctl *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->line + c->linelen, sizeof(c->line) - c->linelen, fmt,
		      ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(c->line) - c->linelen)
		return lbctl_bad("command too long");
	c->linelen += (size_t)n;
	return 0;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]: sets *val and advances
 * *i past it. Returns 1 if argv[*i] is this option, 0 if not, -1 if its
 * value is missing. */
static int
lbctl_opt(const char *name, int argc, char **argv, int *i, const char **val)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		(*i)++;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return lbctl_bad("%s needs a value", name);
	*val = argv[*i + 1];
	*i += 2;
	return 1;
}

static int
lbctl_nargs(const char *cmd, int argc, char **argv, int want)
{
	if (argc < want)
		return lbctl_bad("%s: missing arguments", cmd);
	if (argc > want)
		return lbctl_bad("%s: unexpected \"%.80s\"", cmd, argv[want]);
	return 0;
}

/* ---- commands ---- */

static int
lbctl_build_status(struct lbctl *c, int argc, char **argv)
{
	if (argc == 1 && strcmp(argv[0], "--json") == 0)
		return lbctl_put(c, "show status json");
	if (argc != 0)
		return lbctl_bad(
		    "status: unexpected \"%.80s\" (expected --json)", argv[0]);
	return lbctl_put(c, "show status");
}

static int
lbctl_build_pool_add(struct lbctl *c, int argc, char **argv)
{
	const char *pos[3], *weight = NULL, *maxconn = NULL, *v = NULL;
	struct addr a;
	const char *why;
	long n;
	int npos = 0, r;

	for (int i = 0; i < argc;) {
		if ((r = lbctl_opt("--weight", argc, argv, &i, &v)) != 0) {
			if (r < 0)
				return -1;
			weight = v;
		} else if ((r = lbctl_opt("--maxconn", argc, argv, &i, &v)) !=
			   0) {
			if (r < 0)
				return -1;
			maxconn = v;
		} else if (argv[i][0] == '-') {
			return lbctl_bad("pool add: unknown option \"%.80s\"",
					 argv[i]);
		} else if (npos == 3) {
			return lbctl_bad("pool add: unexpected \"%.80s\"",
					 argv[i]);
		} else {
			pos[npos++] = argv[i++];
		}
	}
	if (npos < 3)
		return lbctl_bad("pool add: expected POOL NODE HOST:PORT");
	if (lbctl_name("pool", pos[0]) < 0 || lbctl_name("node", pos[1]) < 0)
		return -1;
	if (strlen(pos[2]) >= ADDR_STRLEN || addr_parse(pos[2], &a, &why) < 0)
		return lbctl_bad("pool add: bad address \"%.80s\": %s", pos[2],
				 strlen(pos[2]) >= ADDR_STRLEN ? "too long"
							       : why);
	if (weight && decimal_long(weight, 0, NODE_WEIGHT_MAX, &n) < 0)
		return lbctl_bad("pool add: bad weight \"%.80s\" (0..%d)",
				 weight, NODE_WEIGHT_MAX);
	if (maxconn && decimal_long(maxconn, 0, NODE_MAXCONN_MAX, &n) < 0)
		return lbctl_bad("pool add: bad maxconn \"%.80s\" (0..%d, 0: "
				 "no limit)",
				 maxconn, NODE_MAXCONN_MAX);
	if (lbctl_put(c, "pool add %s %s %s", pos[0], pos[1], pos[2]) < 0 ||
	    (weight && lbctl_put(c, " weight=%s", weight) < 0) ||
	    (maxconn && lbctl_put(c, " maxconn=%s", maxconn) < 0))
		return -1;
	return 0;
}

/* "VERB POOL NODE" commands: pool remove, node drain, node enable. */
static int
lbctl_build_pool_node(struct lbctl *c, const char *verb, int argc, char **argv)
{
	if (lbctl_nargs(verb, argc, argv, 2) < 0 ||
	    lbctl_name("pool", argv[0]) < 0 || lbctl_name("node", argv[1]) < 0)
		return -1;
	return lbctl_put(c, "%s %s %s", verb, argv[0], argv[1]);
}

static int
lbctl_build_pool_remove(struct lbctl *c, int argc, char **argv)
{
	return lbctl_build_pool_node(c, "pool remove", argc, argv);
}

static int
lbctl_build_node_drain(struct lbctl *c, int argc, char **argv)
{
	return lbctl_build_pool_node(c, "node drain", argc, argv);
}

static int
lbctl_build_node_enable(struct lbctl *c, int argc, char **argv)
{
	return lbctl_build_pool_node(c, "node enable", argc, argv);
}

static int
lbctl_build_node_disable(struct lbctl *c, int argc, char **argv)
{
	const char *secs = NULL;
	long n;
	int i = 2, r;

	if (argc < 2 || argv[0][0] == '-' || argv[1][0] == '-')
		return lbctl_bad("node disable: expected POOL NODE "
				 "[--for SECONDS]");
	if (argc > 2) {
		r = lbctl_opt("--for", argc, argv, &i, &secs);
		if (r < 0)
			return -1;
		if (r == 0 || i != argc)
			return lbctl_bad("node disable: unexpected \"%.80s\"",
					 argv[r == 0 ? 2 : i]);
		if (decimal_long(secs, 1, NODE_MAINT_MAX_S, &n) < 0)
			return lbctl_bad("node disable: bad --for \"%.80s\" "
					 "(1..%ld seconds)",
					 secs, NODE_MAINT_MAX_S);
	}
	if (lbctl_build_pool_node(c, "node disable", 2, argv) < 0)
		return -1;
	return secs ? lbctl_put(c, " for=%s", secs) : 0;
}

static int
lbctl_build_node_weight(struct lbctl *c, int argc, char **argv)
{
	long n;

	if (lbctl_nargs("node weight", argc, argv, 3) < 0)
		return -1;
	if (decimal_long(argv[2], 0, NODE_WEIGHT_MAX, &n) < 0)
		return lbctl_bad("node weight: bad weight \"%.80s\" (0..%d)",
				 argv[2], NODE_WEIGHT_MAX);
	if (lbctl_build_pool_node(c, "node weight", 2, argv) < 0)
		return -1;
	return lbctl_put(c, " %ld", n);
}

static int
lbctl_build_watch(struct lbctl *c, int argc, char **argv)
{
	if (lbctl_nargs("watch", argc, argv, 0) < 0)
		return -1;
	return lbctl_put(c, "watch");
}

static int
lbctl_build_ping(struct lbctl *c, int argc, char **argv)
{
	if (lbctl_nargs("ping", argc, argv, 0) < 0)
		return -1;
	return lbctl_put(c, "ping");
}

static const struct lbctl_cmd lbctl_cmds[] = {
    {{"status", NULL}, lbctl_build_status, LBCTL_TIMEOUT_MS, 0},
    {{"pool", "add"}, lbctl_build_pool_add, LBCTL_TIMEOUT_MS, 0},
    {{"pool", "remove"}, lbctl_build_pool_remove, LBCTL_TIMEOUT_MS, 0},
    {{"node", "drain"}, lbctl_build_node_drain, LBCTL_TIMEOUT_MS, 0},
    {{"node", "disable"}, lbctl_build_node_disable, LBCTL_TIMEOUT_MS, 0},
    {{"node", "enable"}, lbctl_build_node_enable, LBCTL_TIMEOUT_MS, 0},
    {{"node", "weight"}, lbctl_build_node_weight, LBCTL_TIMEOUT_MS, 0},
    {{"watch", NULL}, lbctl_build_watch, 0, 0},
    {{"ping", NULL}, lbctl_build_ping, LBCTL_PING_TIMEOUT_MS, 1},
};

/* The command named by argv[0] (and argv[1]), with *used set to how many
 * words named it; NULL after a usage message if none. */
static const struct lbctl_cmd *
lbctl_cmd_find(int argc, char **argv, int *used)
{
	const size_t ncmds = sizeof(lbctl_cmds) / sizeof(lbctl_cmds[0]);
	int known = 0;

	for (size_t i = 0; i < ncmds; i++) {
		const struct lbctl_cmd *cmd = &lbctl_cmds[i];
		if (strcmp(cmd->word[0], argv[0]) != 0)
			continue;
		known = 1;
		if (cmd->word[1] == NULL) {
			*used = 1;
			return cmd;
		}
		if (argc > 1 && strcmp(cmd->word[1], argv[1]) == 0) {
			*used = 2;
			return cmd;
		}
	}
	if (known)
		lbctl_bad("%s: unknown or missing subcommand \"%.80s\"",
			  argv[0], argc > 1 ? argv[1] : "");
	else
		lbctl_bad("unknown command \"%.80s\"", argv[0]);
	return NULL;
}

/* ---- the exchange ---- */

static long
lbctl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
lbctl_on_signal(int sig)
{
	(void)sig;
	lbctl_interrupted = 1;
}

/* Connects to the Unix socket at path; a connect that would block (a full
 * backlog) gives up after timeout_ms. Returns the non-blocking socket or
 * -1 with errno set. */
static int
lbctl_connect(const char *path, long timeout_ms)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = timeout_ms / 1000,
			     .tv_usec = (timeout_ms % 1000) * 1000};
	int fd, saved;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* a blocking connect on a Unix socket honours SO_SNDTIMEO */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* Waits for events on fd until the deadline (0: none). Returns 1 when
 * ready, 0 on timeout, -1 on an error or an interrupting signal. */
static int
lbctl_wait(int fd, short events, long deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int r;

	do {
		int wait = -1;
		if (deadline) {
			long left = deadline - lbctl_now_ms();
			if (left <= 0)
				return 0;
			wait = (int)left;
		}
		r = poll(&pfd, 1, wait);
	} while (r < 0 && errno == EINTR && !lbctl_interrupted);
	return r;
}

/* Where the answer goes: the first bytes are held back until it is clear
 * whether they start "error: ". */
struct lbctl_out {
	char head[sizeof(LBCTL_ERROR_PREFIX) - 1];
	size_t nhead;
	int fd; /* -1 until decided */
	size_t total;
	char last;
};

static int
lbctl_out_decide(struct lbctl_out *o)
{
	int err = o->nhead == sizeof(o->head) &&
		  memcmp(o->head, LBCTL_ERROR_PREFIX, sizeof(o->head)) == 0;
	o->fd = err ? STDERR_FILENO : STDOUT_FILENO;
	return fd_write_all(o->fd, o->head, o->nhead);
}

static int
lbctl_out_put(struct lbctl_out *o, const char *p, size_t n)
{
	if (n == 0)
		return 0;
	o->total += n;
	o->last = p[n - 1];
	while (o->fd < 0 && n > 0) {
		o->head[o->nhead++] = *p++;
		n--;
		if (o->nhead == sizeof(o->head) && lbctl_out_decide(o) < 0)
			return -1;
	}
	return n ? fd_write_all(o->fd, p, n) : 0;
}

/* The answer is complete: flushes what was held back and ends the output
 * with a newline. Returns the exit status. */
static int
lbctl_out_end(struct lbctl_out *o, const char *path)
{
	if (o->total == 0) {
		fprintf(stderr, "lbctl: %s: no answer\n", path);
		return LBCTL_FAIL;
	}
	if (o->fd < 0 && lbctl_out_decide(o) < 0)
		goto fail;
	if (o->last != '\n' && fd_write_all(o->fd, "\n", 1) < 0)
		goto fail;
	return o->fd == STDERR_FILENO ? LBCTL_FAIL : LBCTL_OK;
fail:
	fprintf(stderr, "lbctl: writing the answer: %s\n", strerror(errno));
	return LBCTL_FAIL;
}

/* Sends c->line and copies the answer out until lbd closes. */
static int
lbctl_exchange(struct lbctl *c, const struct lbctl_cmd *cmd)
{
	struct lbctl_out out = {.fd = -1};
	long timeout = c->timeout_ms ? c->timeout_ms : cmd->timeout_ms;
	long connect_timeout = timeout ? timeout : LBCTL_TIMEOUT_MS;
	long deadline = 0;
	const char *stage = "connect";
	char buf[65536];
	size_t sent = 0;
	int fd, r, status = LBCTL_FAIL;

	/* connect and send are bounded for every command, watch included */
	deadline = lbctl_now_ms() + connect_timeout;
	fd = lbctl_connect(c->socket, connect_timeout);
	if (fd < 0)
		goto fail;
	c->line[c->linelen++] = '\n';
	stage = "send";
	while (sent < c->linelen) {
		if ((r = lbctl_wait(fd, POLLOUT, deadline)) <= 0)
			goto wait_fail;
		ssize_t w =
		    send(fd, c->line + sent, c->linelen - sent, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			goto fail;
		if (w > 0)
			sent += (size_t)w;
	}
	stage = "read";
	for (;;) {
		if (cmd->timeout_ms == 0)
			deadline = 0; /* watch: as long as lbd streams */
		else if (!cmd->whole)
			deadline = lbctl_now_ms() + timeout; /* idle timeout */
		if ((r = lbctl_wait(fd, POLLIN, deadline)) <= 0)
			goto wait_fail;
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		if (cmd->timeout_ms &&
		    out.total + (size_t)n > LBCTL_ANSWER_MAX) {
			fprintf(stderr,
				"lbctl: %s: answer longer than %u bytes\n",
				c->socket, LBCTL_ANSWER_MAX);
			goto done;
		}
		if (lbctl_out_put(&out, buf, (size_t)n) < 0) {
			fprintf(stderr, "lbctl: writing the answer: %s\n",
				strerror(errno));
			goto done;
		}
	}
	status = lbctl_out_end(&out, c->socket);
	goto done;
wait_fail:
	if (r < 0 && lbctl_interrupted && !cmd->timeout_ms) {
		/* watch stopped by SIGINT or SIGTERM: a normal end */
		status = out.total ? lbctl_out_end(&out, c->socket) : LBCTL_OK;
		goto done;
	}
	if (r == 0) {
		fprintf(stderr, "lbctl: %s: %s timed out after %ld ms\n",
			c->socket, stage, timeout ? timeout : connect_timeout);
		goto done;
	}
fail:
	fprintf(stderr, "lbctl: %s: %s: %s\n", c->socket, stage,
		strerror(errno));
done:
	if (fd >= 0)
		close(fd);
	return status;
}

/* ---- main ---- */

static int
lbctl_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			return 1;
	}
	return 0;
}

/* Global options before the command. Returns the index of the command's
 * first word, or -1 after a usage message. */
static int
lbctl_options(struct lbctl *c, int argc, char **argv)
{
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		const char *a = argv[i], *v;
		if (strcmp(a, "--") == 0)
			return i + 1;
		if (strcmp(a, "-s") != 0 && strcmp(a, "-t") != 0)
			return lbctl_bad("unknown option \"%.80s\"", a);
		if (i + 1 >= argc)
			return lbctl_bad("%s needs a value", a);
		v = argv[i + 1];
		if (a[1] == 's') {
			if (*v == '\0')
				return lbctl_bad("-s: empty socket path");
			c->socket = v;
		} else if (decimal_long(v, 1, LBCTL_TIMEOUT_MAX_MS,
					&c->timeout_ms) < 0) {
			return lbctl_bad("-t: bad timeout \"%.80s\" (1..%d ms)",
					 v, LBCTL_TIMEOUT_MAX_MS);
		}
		i += 2;
	}
	return i;
}

int
main(int argc, char **argv)
{
	struct lbctl c = {0};
	const struct lbctl_cmd *cmd;
	struct sigaction sa = {.sa_handler = lbctl_on_signal};
	int first, used;

	if (lbctl_wants_help(argc, argv)) {
		lbctl_usage(stdout);
		return LBCTL_OK;
	}
	c.socket = getenv("LBCTL_SOCKET");
	if (c.socket == NULL || *c.socket == '\0')
		c.socket = LBCTL_SOCKET_DEFAULT;
	if ((first = lbctl_options(&c, argc, argv)) < 0)
		goto usage;
	if (first >= argc) {
		lbctl_bad("no command");
		goto usage;
	}
	if ((cmd = lbctl_cmd_find(argc - first, argv + first, &used)) == NULL)
		goto usage;
	if (cmd->build(&c, argc - first - used, argv + first + used) < 0)
		goto usage;

	signal(SIGPIPE, SIG_IGN);
	if (cmd->timeout_ms == 0) { /* watch: Ctrl-C ends it cleanly */
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	return lbctl_exchange(&c, cmd);
usage:
	fputc('\n', stderr);
	lbctl_usage(stderr);
	return LBCTL_USAGE;
}
