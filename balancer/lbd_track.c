/* lbd-track: keeps keepalived's track_file current with lbd's health, so
 * the VIP leaves a balancer whose lbd died within ~100 ms instead of the
 * whole second a vrrp_script needs (DESIGN.md, "Balancer pairs").
 *
 * Every interval (50 ms) it connects to lbd's control socket, sends "ping"
 * and expects "pong" within the timeout (100 ms). The verdict goes to the
 * track file, replaced atomically (write a temporary file, rename), and
 * only when it changes: "0" while lbd answers, the fail value (-254, which
 * keepalived's track_file with weight 1 turns into FAULT) once it does not.
 * A refused or missing socket means lbd is gone: fault at once. A ping
 * that times out counts towards `fall` (a loop briefly busy is not dead).
 * Back to "0" after `rise` answers in a row.
 *
 * It never exits on lbd's state, only on SIGTERM/SIGINT (leaving the file
 * as it is: keepalived's vrrp_script `lbctl ping` still watches lbd) or on
 * a track file it cannot write at start. Plain POSIX; built against
 * common/ like lbctl, it uses nothing else of ours. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

#include "../common/decimal.h"

#define TRACK_SOCKET_DEFAULT "/run/lbd/lbd.sock"
#define TRACK_FILE_DEFAULT "/run/lbd/keepalived.track"
#define TRACK_INTERVAL_MS 50
#define TRACK_TIMEOUT_MS 100
#define TRACK_FALL 3
#define TRACK_RISE 3
#define TRACK_FAIL_VALUE (-254)
#define TRACK_RECHECK_MS                                                       \
	1000 /* the file is rewritten if someone removed it                    \
	      */

enum { TRACK_OK = 0, TRACK_EXIT_FAIL = 1, TRACK_USAGE = 2 };

/* What one ping found. */
enum track_result {
	TRACK_PONG,    /* lbd answered "pong" */
	TRACK_GONE,    /* no socket, or nobody listening: lbd is not running */
	TRACK_TIMEOUT, /* no answer in time: a busy or hung loop */
	TRACK_BAD,     /* an answer that is not "pong", or an I/O error */
};

struct track {
	const char *socket;
	const char *file;
	char tmp[4096]; /* file + ".tmp" */
	long interval_ms, timeout_ms;
	long fall, rise, fail_value;
	int healthy;	 /* the verdict in the file; -1 before the first */
	long fails, oks; /* in a row */
	long written_ms; /* when the file was last written or checked */
	int quiet;
};

static volatile sig_atomic_t track_stop;

static const char track_usage_text[] =
    "usage: lbd-track [-s SOCKET] [-f TRACK_FILE] [-i MS] [-t MS]\n"
    "                 [--fall N] [--rise N] [--fail-value N] [-q]\n"
    "\n"
    "Pings lbd's control socket every interval and writes keepalived's\n"
    "track file: 0 while lbd answers \"pong\", the fail value once it does\n"
    "not (a refused or missing socket at once, timeouts after --fall).\n"
    "\n"
    "  -s SOCKET       lbd's control socket (default: $LBCTL_SOCKET, then\n"
    "                  " TRACK_SOCKET_DEFAULT ")\n"
    "  -f TRACK_FILE   keepalived's track_file (default\n"
    "                  " TRACK_FILE_DEFAULT ")\n"
    "  -i MS           interval between pings (default 50)\n"
    "  -t MS           answer timeout (default 100)\n"
    "  --fall N        timeouts in a row before the fault (default 3)\n"
    "  --rise N        answers in a row before healthy again (default 3)\n"
    "  --fail-value N  written on a fault (default -254: with the\n"
    "                  track_file's weight 1, keepalived's FAULT state)\n"
    "  -q              no start and stop lines (changes are always logged)\n";

static long
track_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One log line on stderr with a UTC timestamp, as lbctl watch prints. */
static void __attribute__((format(printf, 1, 2)))
track_log(const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ lbd-track: ", stamp, ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
track_on_signal(int sig)
{
	(void)sig;
	track_stop = 1;
}

/* ---- the ping ---- */

/* Waits for events on fd until deadline. Returns 1 ready, 0 timeout, -1
 * error (EINTR from a stopping signal included). */
static int
track_wait(int fd, short events, long deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int r;

	do {
		long left = deadline - track_now_ms();
		if (left <= 0)
			return 0;
		r = poll(&pfd, 1, (int)left);
	} while (r < 0 && errno == EINTR && !track_stop);
	return r;
}

/* Connects to lbd, sends "ping", reads the answer until lbd closes or the
 * timeout. *why gets a short reason for the log. */
static enum track_result
track_ping(const struct track *t, const char **why)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	long deadline = track_now_ms() + t->timeout_ms;
	enum track_result res = TRACK_BAD;
	char buf[64];
	size_t got = 0;
	int fd, r;

	*why = "bad answer";
	memcpy(sun.sun_path, t->socket, strlen(t->socket) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		*why = strerror(errno);
		return TRACK_BAD;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		*why = strerror(errno);
		if (errno == ECONNREFUSED || errno == ENOENT)
			res = TRACK_GONE;
		else if (errno == EAGAIN) /* a full backlog: a stuck loop */
			res = TRACK_TIMEOUT;
		goto done;
	}
	if (send(fd, "ping\n", 5, MSG_NOSIGNAL) != 5) {
		*why = strerror(errno);
		goto done;
	}
	for (;;) {
		ssize_t n;

		if ((r = track_wait(fd, POLLIN, deadline)) <= 0) {
			*why = r == 0 ? "no answer in time" : strerror(errno);
			res = r == 0 ? TRACK_TIMEOUT : TRACK_BAD;
			goto done;
		}
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			*why = strerror(errno);
			/* lbd killed while answering */
			res = errno == ECONNRESET ? TRACK_GONE : TRACK_BAD;
			goto done;
		}
		got += (size_t)n;
		buf[got] = '\0';
		if (strncmp(buf, "pong\n", got < 5 ? got : 5) != 0)
			goto done; /* not a pong, whatever follows */
		if (got >= 5 || n == 0)
			break; /* a whole "pong\n", or lbd closed */
	}
	if (got >= 4) {
		*why = "pong";
		res = TRACK_PONG;
	} else {
		*why = "closed without an answer";
	}
done:
	close(fd);
	return res;
}

/* ---- the track file ---- */

/* Replaces t->file with the verdict: a temporary file in the same
 * directory renamed over it, so keepalived never reads half a number.
 * Returns 0 or -1 (logged). */
static int
track_write(struct track *t, int healthy)
{
	char line[32];
	int fd, n;

	n = snprintf(line, sizeof(line), "%ld\n", healthy ? 0 : t->fail_value);
	fd = open(t->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail;
	if (write(fd, line, (size_t)n) != n) {
		int saved = errno ? errno : EIO;
		close(fd);
		errno = saved;
		goto fail;
	}
	if (close(fd) < 0 || rename(t->tmp, t->file) < 0)
		goto fail;
	t->written_ms = track_now_ms();
	return 0;
fail:
	track_log("%s: write %s: %s", __func__, t->file, strerror(errno));
	unlink(t->tmp);
	return -1;
}

/* The number in the track file, or LONG_MIN when it is missing or holds
 * no number (someone else wrote or removed it: keepalived's init_file,
 * an operator). */
static long
track_read(const struct track *t)
{
	char buf[32];
	ssize_t n;
	long v;
	int fd;

	if ((fd = open(t->file, O_RDONLY | O_CLOEXEC)) < 0)
		return LONG_MIN;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return LONG_MIN;
	buf[n] = '\0';
	if (buf[n - 1] == '\n') /* lbd-track writes "N\n" */
		buf[n - 1] = '\0';
	if (decimal_long(buf, LONG_MIN + 1, LONG_MAX, &v) < 0)
		return LONG_MIN;
	return v;
}

/* Applies one ping's result to the rise/fall counters and writes the file
 * when the verdict changes (or the file vanished). */
static void
track_apply(struct track *t, enum track_result res, const char *why)
{
	int verdict = t->healthy;
	if (res == TRACK_PONG) {
		t->fails = 0;
		t->oks++;
		if (t->healthy != 1 && (t->healthy < 0 || t->oks >= t->rise))
			verdict = 1;
	} else {
		t->oks = 0;
		t->fails++;
		if (t->healthy != 0 &&
		    (res == TRACK_GONE || t->fails >= t->fall))
			verdict = 0;
	}
	if (verdict < 0) /* first ping timed out: not healthy yet */
		verdict = 0;
	if (verdict != t->healthy) {
		if (t->healthy >= 0 || !t->quiet)
			track_log("lbd %s (%s): track file %s = %ld",
				  verdict ? "healthy" : "down", why, t->file,
				  verdict ? 0 : t->fail_value);
		if (track_write(t, verdict) == 0)
			t->healthy = verdict;
		return;
	}
	if (track_now_ms() - t->written_ms >= TRACK_RECHECK_MS) {
		t->written_ms = track_now_ms();
		if (track_read(t) != (t->healthy ? 0 : t->fail_value)) {
			track_log("%s does not hold the verdict: rewritten",
				  t->file);
			track_write(t, t->healthy);
		}
	}
}

/* ---- arguments ---- */

static int __attribute__((format(printf, 1, 2))) track_bad(const char *fmt, ...)
{
	va_list ap;

	fputs("lbd-track: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n\n", stderr);
	fputs(track_usage_text, stderr);
	return TRACK_USAGE;
}

/* Returns -1 to go on, or the exit status. */
static int
track_options(struct track *t, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		long *num = NULL, min = 1, max = 60000;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(track_usage_text, stdout);
			return TRACK_OK;
		}
		if (strcmp(a, "-q") == 0) {
			t->quiet = 1;
			continue;
		}
		if (strcmp(a, "-s") == 0 || strcmp(a, "-f") == 0) {
			if (v == NULL || *v == '\0')
				return track_bad("%s needs a path", a);
			*(a[1] == 's' ? &t->socket : &t->file) = v;
			i++;
			continue;
		}
		if (strcmp(a, "-i") == 0) {
			num = &t->interval_ms;
			min = 10;
		} else if (strcmp(a, "-t") == 0) {
			num = &t->timeout_ms;
			min = 10;
		} else if (strcmp(a, "--fall") == 0) {
			num = &t->fall;
			max = 100;
		} else if (strcmp(a, "--rise") == 0) {
			num = &t->rise;
			max = 100;
		} else if (strcmp(a, "--fail-value") == 0) {
			num = &t->fail_value;
			min = -1000000;
			max = 1000000;
		} else {
			return track_bad("unknown option \"%.80s\"", a);
		}
		if (decimal_long(v, min, max, num) < 0)
			return track_bad("%s: bad value \"%.80s\" (%ld..%ld)",
					 a, v ? v : "", min, max);
		i++;
	}
	if (t->fail_value == 0)
		return track_bad("--fail-value 0 would read as healthy");
	if (strlen(t->socket) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return track_bad("socket path too long: %.80s", t->socket);
	if ((size_t)snprintf(t->tmp, sizeof(t->tmp), "%s.tmp", t->file) >=
	    sizeof(t->tmp))
		return track_bad("track file path too long");
	return -1;
}

/* ---- main ---- */

int
main(int argc, char **argv)
{
	struct track t = {
	    .socket = TRACK_SOCKET_DEFAULT,
	    .file = TRACK_FILE_DEFAULT,
	    .interval_ms = TRACK_INTERVAL_MS,
	    .timeout_ms = TRACK_TIMEOUT_MS,
	    .fall = TRACK_FALL,
	    .rise = TRACK_RISE,
	    .fail_value = TRACK_FAIL_VALUE,
	    .healthy = -1,
	};
	struct sigaction sa = {.sa_handler = track_on_signal};
	const char *env = getenv("LBCTL_SOCKET");
	long next;
	int r;

	if (env != NULL && *env != '\0')
		t.socket = env;
	if ((r = track_options(&t, argc, argv)) >= 0)
		return r;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!t.quiet)
		track_log("pinging %s every %ld ms (timeout %ld ms), "
			  "writing %s",
			  t.socket, t.interval_ms, t.timeout_ms, t.file);
	next = track_now_ms();
	while (!track_stop) {
		const char *why;
		enum track_result res = track_ping(&t, &why);
		long left;

		if (track_stop)
			break;
		track_apply(&t, res, why);
		if (t.healthy < 0) { /* the first write failed: say so, stop */
			track_log("cannot write the track file %s", t.file);
			return TRACK_EXIT_FAIL;
		}
		/* a fixed cadence, not interval + ping time; after a long
		 * stall start over rather than ping in a burst */
		next += t.interval_ms;
		left = next - track_now_ms();
		if (left < 0) {
			next = track_now_ms();
			continue;
		}
		struct timespec ts = {.tv_sec = left / 1000,
				      .tv_nsec = (left % 1000) * 1000000};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !track_stop)
			;
	}
	if (!t.quiet)
		track_log("stopping; %s left as it is", t.file);
	return TRACK_OK;
}
