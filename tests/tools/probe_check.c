/* probe_check: runs health probes from the command line, for the
 * integration tests and for operators.
 *
 *   probe_check TYPE HOST:PORT [--path P] [--user U --password P]
 *               [--ca FILE] [--cert-days N] [--timeout-ms N] [--parallel N]
 *               [--cancel-after-ms N]
 *
 * Prints one line per probe, "ok LATENCY_MS" or "fail REASON", and exits 0
 * when every probe passed, 1 otherwise, 2 on bad usage. --cancel-after-ms
 * cancels the probes still in flight after N ms and prints "cancelled K".
 * A callback that comes twice, or after a cancel, is reported on stderr. */
#include <ev.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/addr.h"
#include "../../health/health.h"

#define PROBE_CHECK_MAX 10000

struct check_slot {
	struct check_run *run;
	struct probe *probe; /* NULL once reported or cancelled */
	int calls;
	bool cancelled;
};

struct check_run {
	struct check_slot *slots;
	int n, started, done, failed, cancelled;
	ev_timer cancel;
};

static void
check_usage(void)
{
	fprintf(stderr,
		"usage: probe_check TYPE HOST:PORT [--path P] [--user U "
		"--password P]\n"
		"                   [--ca FILE] [--cert-days N] [--timeout-ms "
		"N] [--parallel N]\n"
		"                   [--cancel-after-ms N]\n");
	exit(2);
}

static void
check_done(void *arg, const struct probe_result *r)
{
	struct check_slot *slot = arg;
	struct check_run *run = slot->run;

	if (++slot->calls > 1 || slot->cancelled)
		fprintf(stderr, "probe_check: callback %d%s\n", slot->calls,
			slot->cancelled ? " after cancel" : "");
	slot->probe = NULL;
	run->done++;
	if (r->ok) {
		printf("ok %.3f\n", r->latency_ms);
	} else {
		run->failed++;
		printf("fail %s\n", r->reason);
	}
	fflush(stdout);
	if (run->done + run->cancelled == run->started)
		ev_timer_stop(ev_default_loop(0), &run->cancel);
}

static void
check_cancel_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct check_run *run = w->data;

	(void)loop;
	(void)revents;
	for (int i = 0; i < run->n; i++) {
		struct check_slot *slot = &run->slots[i];
		if (slot->probe == NULL)
			continue;
		probe_cancel(slot->probe);
		slot->probe = NULL;
		slot->cancelled = true;
		run->cancelled++;
	}
	printf("cancelled %d\n", run->cancelled);
	fflush(stdout);
}

static int
check_number(const char *s, int min, int max)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < min || v > max)
		check_usage();
	return (int)v;
}

static void
check_copy(char *dst, size_t len, const char *src)
{
	if (strlen(src) >= len)
		check_usage();
	strcpy(dst, src);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"path", required_argument, NULL, 'P'},
	    {"user", required_argument, NULL, 'u'},
	    {"password", required_argument, NULL, 'p'},
	    {"ca", required_argument, NULL, 'c'},
	    {"cert-days", required_argument, NULL, 'd'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"parallel", required_argument, NULL, 'n'},
	    {"cancel-after-ms", required_argument, NULL, 'x'},
	    {NULL, 0, NULL, 0},
	};
	struct probe_spec spec = {.timeout_ms = 1000, .cert_days = 7};
	struct check_run run = {.n = 1};
	struct ev_loop *loop;
	struct addr addr;
	const char *why;
	int cancel_ms = 0, ch, rc;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'P':
			check_copy(spec.path, sizeof(spec.path), optarg);
			break;
		case 'u':
			check_copy(spec.user, sizeof(spec.user), optarg);
			break;
		case 'p':
			check_copy(spec.password, sizeof(spec.password),
				   optarg);
			break;
		case 'c':
			check_copy(spec.ca_file, sizeof(spec.ca_file), optarg);
			break;
		case 'd':
			spec.cert_days = check_number(optarg, 0, 100000);
			break;
		case 't':
			spec.timeout_ms = check_number(optarg, 1, 3600000);
			break;
		case 'n':
			run.n = check_number(optarg, 1, PROBE_CHECK_MAX);
			break;
		case 'x':
			cancel_ms = check_number(optarg, 1, 3600000);
			break;
		default:
			check_usage();
		}
	}
	if (argc - optind != 2)
		check_usage();
	if (check_type_parse(argv[optind], &spec.type) == -1) {
		fprintf(stderr, "probe_check: unknown check type %s\n",
			argv[optind]);
		return 2;
	}
	if (addr_parse(argv[optind + 1], &addr, &why) == -1) {
		fprintf(stderr, "probe_check: %s: %s\n", argv[optind + 1], why);
		return 2;
	}
	if ((run.slots = calloc((size_t)run.n, sizeof(*run.slots))) == NULL) {
		fprintf(stderr, "probe_check: out of memory\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN); /* TLS writes to a closed peer */
	loop = ev_default_loop(0);
	for (int i = 0; i < run.n; i++) {
		struct check_slot *slot = &run.slots[i];
		slot->run = &run;
		slot->probe = probe_start(loop, &addr, &spec, check_done, slot);
		if (slot->probe == NULL) {
			fprintf(stderr, "probe_check: cannot start probe %d\n",
				i);
			run.failed++;
			continue;
		}
		run.started++;
	}
	ev_timer_init(&run.cancel, check_cancel_cb, cancel_ms / 1e3, 0.);
	run.cancel.data = &run;
	if (cancel_ms > 0 && run.done < run.started)
		ev_timer_start(loop, &run.cancel);
	ev_run(loop, 0); /* every probe is bounded by its own timer */
	ev_loop_destroy(loop);
	rc = run.failed == 0 && run.cancelled == 0 && run.done == run.started
		 ? 0
		 : 1;
	free(run.slots);
	return rc;
}
