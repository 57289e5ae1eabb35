/* lbd's control commands (balancer/ctl.c): each input is one control
 * line run against a fresh balancer built from a fixed configuration
 * (two pools, no probes, no sockets), as lbctl would send it. No
 * maglev pool: its 65537-entry table, rebuilt per input, would slow the
 * target a hundredfold (fuzz_lbd_config covers its keys). */
#include "fuzz.h"

#include <stdio.h>
#include <unistd.h>

#include "../../balancer/config.h"
#include "../../balancer/ctl.h"
#include "../../balancer/runtime.h"
#include "../../common/log.h"
#include "../../common/strbuf.h"

static const char conf_text[] =
    "[lbd]\ncontrol = /tmp/fuzz_lbd_ctl.sock\n"
    "[service smtp]\nlisten = 127.0.0.1:2525\nprotocol = smtp\npool = mx\n"
    "[service http]\nlisten = 127.0.0.1:8080\nprotocol = http\n"
    "pool = web\n"
    "[pool mx]\ncheck = none\nnode = n1 127.0.0.1:2601\n"
    "node = n2 127.0.0.1:2602 weight=2\nnode = n3 127.0.0.1:2603 "
    "maxconn=5\n"
    "[pool web]\nbalance = leastconn\ncheck = none\nnode = w1 [::1]:8081\n";

static char path[64];

static void
fuzz_cleanup(void)
{
	unlink(path);
}

static void
fuzz_setup(void)
{
	log_init("fuzz_lbd_ctl", LOG_LVL_ERR);
	snprintf(path, sizeof(path), "/tmp/fuzz_lbd_ctl.%ld.ini",
		 (long)getpid());
	FILE *f = fopen(path, "w");
	if (f == NULL || fputs(conf_text, f) < 0 || fclose(f) != 0)
		abort();
	atexit(fuzz_cleanup);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	struct lbd l;
	struct strbuf out;

	if (path[0] == '\0')
		fuzz_setup();
	/* A loop of its own: timers a command starts die with it. */
	struct ev_loop *loop = ev_loop_new(0);
	if (loop == NULL)
		abort();
	memset(&l, 0, sizeof(l));
	l.loop = loop;
	l.started = ev_now(loop);
	if ((l.cfg = config_load(path, err, sizeof(err))) == NULL)
		abort();
	strbuf_init(&out, CTL_ANSWER_MAX);
	/* Each LF-ended part is one line (NUL bytes kept); a session
	 * sends several. */
	for (int i = 0; i < 8 && size > 0; i++) {
		const uint8_t *nl = memchr(data, '\n', size);
		size_t n = nl ? (size_t)(nl - data) + 1 : size;
		char *line = fuzz_str(data, n);
		(void)ctl_execn(&l, line, n, &out);
		if (out.len > CTL_ANSWER_MAX)
			abort();
		strbuf_reset(&out);
		free(line);
		data += n;
		size -= n;
	}
	strbuf_free(&out);
	runtime_stop(&l);
	config_free(l.cfg);
	ev_loop_destroy(loop);
	return 0;
}
