#include "sdnotify.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "decimal.h"
#include "log.h"

/* Fills sa from $NOTIFY_SOCKET. Returns the address length, 0 when the
 * variable is unset or empty, -1 when it names no usable socket. */
static socklen_t
sdnotify_addr(struct sockaddr_un *sa, int *bad)
{
	const char *path = getenv("NOTIFY_SOCKET");
	*bad = 0;
	if (path == NULL || path[0] == '\0')
		return 0;
	size_t len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa->sun_path)) {
		*bad = 1;
		return 0;
	}
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len);
	if (path[0] == '@') /* abstract: a leading NUL, no terminator */
		sa->sun_path[0] = '\0';
	else
		len++;
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
}

int
sdnotify(const char *state)
{
	struct sockaddr_un sa;
	int bad, fd = -1;
	socklen_t salen = sdnotify_addr(&sa, &bad);
	if (bad) {
		log_warn("%s: NOTIFY_SOCKET is not a socket path", __func__);
		return -1;
	}
	if (salen == 0)
		return 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	size_t len = strlen(state);
	if (sendto(fd, state, len, MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   salen) != (ssize_t)len)
		goto fail;
	close(fd);
	return 1;
fail:
	log_warn("%s: %s: %s", __func__, getenv("NOTIFY_SOCKET"),
		 strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* The watchdog interval systemd asked for, in seconds, or 0: none, or
 * meant for another process (WATCHDOG_PID). */
static double
sdnotify_watchdog_interval(void)
{
	const char *usec = getenv("WATCHDOG_USEC");
	const char *pid = getenv("WATCHDOG_PID");
	unsigned long long us;
	long p;
	if (decimal_ullong(usec, ULLONG_MAX, &us) < 0 || us == 0)
		return 0;
	if (pid != NULL &&
	    (decimal_long(pid, 1, LONG_MAX, &p) < 0 || p != (long)getpid()))
		return 0;
	return (double)us / 1e6;
}

static void
sdnotify_watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)t;
	(void)revents;
	sdnotify("WATCHDOG=1");
}

int
sdnotify_watchdog_start(struct ev_loop *loop, struct sdnotify_watchdog *w)
{
	double timeout = sdnotify_watchdog_interval();
	w->interval = 0;
	if (timeout <= 0)
		return 0;
	/* Half the timeout, as sd_watchdog_enabled(3) advises. */
	w->interval = timeout / 2;
	ev_timer_init(&w->timer, sdnotify_watchdog_cb, 0., w->interval);
	ev_timer_again(loop, &w->timer);
	sdnotify("WATCHDOG=1");
	log_info("systemd watchdog: WATCHDOG=1 every %.3f s", w->interval);
	return 1;
}

void
sdnotify_watchdog_stop(struct ev_loop *loop, struct sdnotify_watchdog *w)
{
	if (w->interval > 0)
		ev_timer_stop(loop, &w->timer);
	w->interval = 0;
}
