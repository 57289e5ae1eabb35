/* store_deliver_tool STORE FIRST COUNT: delivers messages FIRST ..
 * FIRST+COUNT-1 into STORE with store_deliver(), each to one of three
 * users of crash.test, and prints "ID" on stdout (flushed) once
 * store_deliver() has returned 0 for it. Message ID is the prefix
 * "X-Test-Id: ID\r\n" then 1 + ID % 3000 lines "id ID " + 60 'x' + CRLF,
 * so a reader can rebuild it. test_store_crash.py SIGKILLs it at random
 * moments and checks that every printed ID is complete in new/. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../../node/store/store.h"

static const char *tool_users[] = {"alice@crash.test", "bob@crash.test",
				   "carol@crash.test"};

/* A fresh unlinked file holding message id's body; its length in *len. */
static int
tool_body(unsigned long id, size_t *len)
{
	char line[128];
	unsigned long i, lines = 1 + id % 3000;
	int fd, n;

	/* anonymous: a SIGKILL leaves nothing behind */
	if ((fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) < 0)
		return -1;
	n = snprintf(line, sizeof(line), "id %lu ", id);
	memset(line + n, 'x', 60);
	memcpy(line + n + 60, "\r\n", 2);
	n += 62;
	*len = 0;
	for (i = 0; i < lines; i++) {
		if (write(fd, line, (size_t)n) != n) {
			close(fd);
			return -1;
		}
		*len += (size_t)n;
	}
	return fd;
}

int
main(int argc, char **argv)
{
	struct store st;
	unsigned long id, first, count;
	char prefix[64];
	bool failed[1];
	size_t len;
	int fd;

	if (argc != 4) {
		fprintf(stderr,
			"usage: store_deliver_tool STORE FIRST COUNT\n");
		return 2;
	}
	log_init("store_deliver_tool", LOG_LVL_WARN);
	first = strtoul(argv[2], NULL, 10);
	count = strtoul(argv[3], NULL, 10);
	if (store_init(&st, argv[1], "crashhost") < 0) {
		fprintf(stderr, "store %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (id = first; id < first + count; id++) {
		const char *rcpt = tool_users[id % 3];
		if ((fd = tool_body(id, &len)) < 0) {
			fprintf(stderr, "body: %s\n", strerror(errno));
			return 1;
		}
		snprintf(prefix, sizeof(prefix), "X-Test-Id: %lu\r\n", id);
		if (store_deliver(&st, &rcpt, 1, fd, len, prefix, failed) < 0) {
			fprintf(stderr, "deliver %lu: %s\n", id,
				strerror(errno));
			close(fd);
			return 1;
		}
		close(fd);
		printf("%lu\n", id);
		fflush(stdout);
	}
	return 0;
}
