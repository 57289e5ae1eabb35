/* directory_probe: runs the Redis client and the directory cache on a
 * loop, as mailnode does, and answers lookups read from stdin, one per
 * line, for the integration tests.
 *
 *   directory_probe HOST:PORT [--timeout-ms N] [--reconnect-ms N]
 *                   [--password P]          (or $DIRECTORY_PROBE_PASSWORD)
 *
 *   resolve ADDRESS        ok ADDR...  |  not_local  |  unknown
 *   auth ADDRESS PASSWORD  yes  |  no
 *   hash ADDRESS           the stored hash  |  none
 *   local DOMAIN           yes  |  no
 *   stale                  yes  |  no
 *   loaded                 yes  |  no
 *   up                     yes  |  no   (the Redis connection)
 *   loads                  how many complete loads so far
 *   cmd WORD...            a raw Redis command (up to 3 words), answered
 *                          when its callback runs: "reply TYPE VALUE",
 *                          "null" (timeout or connection lost), or at once
 *                          "refused" (not sent: Redis is down)
 *   cancel WORD...         sends the command and cancels it, then a PING:
 *                          "ok" when the PING answered and the cancelled
 *                          callback never ran
 *   quit
 *
 * Every answer is one line. An unknown command answers "error: ...". */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../common/redis.h"
#include "../../node/auth/auth.h"
#include "../../node/config/directory.h"

#define PROBE_LINE_MAX 4096
#define PROBE_ARGS_MAX 5

struct probe {
	struct ev_loop *loop;
	struct redis *redis;
	struct directory *dir;
	ev_io input;
	char line[PROBE_LINE_MAX];
	size_t len;
	unsigned long loads;
	bool cancelled_ran;
};

struct probe_cmd {
	const char *name;
	int nargs; /* -1: one or more */
	void (*fn)(struct probe *p, char **argv);
};

static const char *
probe_yesno(bool v)
{
	return v ? "yes" : "no";
}

static void
probe_resolve(struct probe *p, char **argv)
{
	char out[DIR_MAX_TARGETS][DIR_ADDR_MAX];
	size_t n;

	switch (directory_resolve(p->dir, argv[0], out, DIR_MAX_TARGETS, &n)) {
	case DIR_OK:
		printf("ok");
		for (size_t i = 0; i < n; i++)
			printf(" %s", out[i]);
		printf("\n");
		break;
	case DIR_NOT_LOCAL:
		printf("not_local\n");
		break;
	case DIR_UNKNOWN:
		printf("unknown\n");
		break;
	}
}

static void
probe_auth(struct probe *p, char **argv)
{
	printf("%s\n", probe_yesno(auth_check(p->dir, argv[0], argv[1])));
}

static void
probe_hash(struct probe *p, char **argv)
{
	const char *h = directory_password_hash(p->dir, argv[0]);
	printf("%s\n", h ? h : "none");
}

static void
probe_local(struct probe *p, char **argv)
{
	printf("%s\n", probe_yesno(directory_domain_local(p->dir, argv[0])));
}

static void
probe_stale(struct probe *p, char **argv)
{
	(void)argv;
	printf("%s\n", probe_yesno(directory_stale(p->dir)));
}

static void
probe_loaded(struct probe *p, char **argv)
{
	(void)argv;
	printf("%s\n", probe_yesno(directory_loaded(p->dir)));
}

static void
probe_up(struct probe *p, char **argv)
{
	(void)argv;
	printf("%s\n", probe_yesno(redis_up(p->redis)));
}

static void
probe_loads(struct probe *p, char **argv)
{
	(void)argv;
	printf("%lu\n", p->loads);
}

static void
probe_on_load(struct directory *d, void *arg)
{
	struct probe *p = arg;

	(void)d;
	p->loads++;
}

static void
probe_reply_cb(struct redis *r, redisReply *reply, void *arg)
{
	(void)r;
	(void)arg;
	if (reply == NULL)
		printf("null\n");
	else if (reply->type == REDIS_REPLY_STRING ||
		 reply->type == REDIS_REPLY_STATUS ||
		 reply->type == REDIS_REPLY_ERROR)
		printf("reply %s %s\n",
		       reply->type == REDIS_REPLY_ERROR ? "error" : "string",
		       reply->str);
	else if (reply->type == REDIS_REPLY_INTEGER)
		printf("reply integer %lld\n", reply->integer);
	else if (reply->type == REDIS_REPLY_NIL)
		printf("reply nil\n");
	else
		printf("reply array %zu\n", reply->elements);
	fflush(stdout);
}

static int
probe_argc(char **argv)
{
	int n = 0;
	while (n < PROBE_ARGS_MAX - 1 && argv[n])
		n++;
	return n;
}

static void
probe_cmd(struct probe *p, char **argv)
{
	if (redis_commandargv(p->redis, probe_reply_cb, p, probe_argc(argv),
			      (const char **)argv, NULL) == 0)
		printf("refused\n");
}

static void
probe_cancelled_cb(struct redis *r, redisReply *reply, void *arg)
{
	struct probe *p = arg;

	(void)r;
	(void)reply;
	p->cancelled_ran = true;
}

static void
probe_after_cancel_cb(struct redis *r, redisReply *reply, void *arg)
{
	struct probe *p = arg;

	(void)r;
	if (reply == NULL)
		printf("null\n");
	else
		printf("%s\n",
		       p->cancelled_ran ? "cancelled callback ran" : "ok");
	fflush(stdout);
}

static void
probe_cancel(struct probe *p, char **argv)
{
	uint64_t id =
	    redis_commandargv(p->redis, probe_cancelled_cb, p, probe_argc(argv),
			      (const char **)argv, NULL);
	if (id == 0) {
		printf("refused\n");
		return;
	}
	p->cancelled_ran = false;
	redis_cancel(p->redis, id);
	if (redis_command(p->redis, probe_after_cancel_cb, p, "PING") == 0)
		printf("refused\n");
}

static void
probe_quit(struct probe *p, char **argv)
{
	(void)argv;
	printf("bye\n");
	ev_io_stop(p->loop, &p->input);
	ev_break(p->loop, EVBREAK_ALL);
}

static const struct probe_cmd probe_cmds[] = {
    {"resolve", 1, probe_resolve}, {"auth", 2, probe_auth},
    {"hash", 1, probe_hash},	   {"local", 1, probe_local},
    {"stale", 0, probe_stale},	   {"loaded", 0, probe_loaded},
    {"up", 0, probe_up},	   {"loads", 0, probe_loads},
    {"cmd", -1, probe_cmd},	   {"cancel", -1, probe_cancel},
    {"quit", 0, probe_quit},
};

static void
probe_exec(struct probe *p, char *line)
{
	char *argv[PROBE_ARGS_MAX + 1] = {NULL};
	int argc = 0;
	char *save = NULL;

	for (char *w = strtok_r(line, " \t\r", &save);
	     w && argc < PROBE_ARGS_MAX; w = strtok_r(NULL, " \t\r", &save))
		argv[argc++] = w;
	if (argc == 0)
		return;
	for (size_t i = 0; i < sizeof(probe_cmds) / sizeof(probe_cmds[0]);
	     i++) {
		if (strcmp(argv[0], probe_cmds[i].name) != 0)
			continue;
		if (probe_cmds[i].nargs < 0 ? argc < 2
					    : argc - 1 != probe_cmds[i].nargs)
			printf("error: %s takes %d arguments\n", argv[0],
			       probe_cmds[i].nargs);
		else
			probe_cmds[i].fn(p, argv + 1);
		fflush(stdout);
		return;
	}
	printf("error: unknown command %s\n", argv[0]);
	fflush(stdout);
}

static void
probe_input_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct probe *p = w->data;
	ssize_t n;
	char *nl;

	(void)revents;
	n = read(w->fd, p->line + p->len, sizeof(p->line) - 1 - p->len);
	if (n < 0 && errno == EINTR)
		return;
	if (n <= 0) {
		ev_io_stop(loop, w);
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	p->len += (size_t)n;
	p->line[p->len] = '\0';
	while ((nl = strchr(p->line, '\n')) != NULL) {
		*nl = '\0';
		probe_exec(p, p->line);
		if (!ev_is_active(w))
			return;
		p->len -= (size_t)(nl + 1 - p->line);
		memmove(p->line, nl + 1, p->len + 1);
	}
	if (p->len == sizeof(p->line) - 1) {
		printf("error: line too long\n");
		fflush(stdout);
		p->len = 0;
	}
}

static void
probe_usage(void)
{
	fprintf(stderr, "usage: directory_probe HOST:PORT [--timeout-ms N] "
			"[--reconnect-ms N] [--password P]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"reconnect-ms", required_argument, NULL, 'r'},
	    {"password", required_argument, NULL, 'a'},
	    {NULL, 0, NULL, 0},
	};
	struct redis_opts opts;
	struct probe p;
	int timeout = 500, reconnect = 500, c;
	const char *password = getenv("DIRECTORY_PROBE_PASSWORD");

	memset(&p, 0, sizeof(p));
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			timeout = atoi(optarg);
			break;
		case 'r':
			reconnect = atoi(optarg);
			break;
		case 'a':
			password = optarg;
			break;
		default:
			probe_usage();
		}
	}
	if (optind + 1 != argc || redis_opts_parse(argv[optind], &opts) < 0)
		probe_usage();
	if (timeout > 0)
		opts.timeout_ms = timeout;
	if (reconnect > 0)
		opts.reconnect_ms = reconnect;
	if (password)
		snprintf(opts.password, sizeof(opts.password), "%s", password);
	log_init("directory_probe",
		 getenv("PROBE_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	signal(SIGPIPE, SIG_IGN);

	p.loop = ev_default_loop(0);
	p.redis = redis_new(p.loop, &opts);
	p.dir = p.redis
		    ? directory_new(p.redis,
				    &(struct directory_opts){.node = "probe"})
		    : NULL;
	if (p.dir == NULL) {
		fprintf(stderr, "directory_probe: out of memory\n");
		return 1;
	}
	directory_on_load(p.dir, probe_on_load, &p);
	ev_io_init(&p.input, probe_input_cb, 0, EV_READ);
	p.input.data = &p;
	ev_io_start(p.loop, &p.input);
	ev_run(p.loop, 0);
	directory_free(p.dir);
	redis_free(p.redis);
	ev_loop_destroy(p.loop);
	return 0;
}
