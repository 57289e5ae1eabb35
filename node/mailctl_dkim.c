/* mailctl dkim set|show|del: the DKIM keys every mta node signs with,
 * kept on the shared filesystem (QUEUE/.dkim/DOMAIN, mode 0600: the
 * selector's line, then the PEM private key), written atomically. */
#include "mailctl_dkim.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fdio.h"
#include "queue/queue.h"
#include "queue/queue_dkim.h"

#define DKIM_PEM_MAX 12288
#define DKIM_RECORD_MAX 2048

static bool
dkim_name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' &&
		    s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

/* Reads the whole small file path into buf. Returns its length or -1. */
static ssize_t
dkim_slurp(int dirfd, const char *path, char *buf, size_t max)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, max);
	close(fd);
	if (n >= 0 && (size_t)n == max) {
		errno = EFBIG;
		return -1;
	}
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

static void
dkim_print_record(const char *domain, const char *selector, const char *record)
{
	printf("%s._domainkey.%s. IN TXT \"%s\"\n", selector, domain, record);
}

static int
dkim_set(int dirfd, char **a)
{
	char pem[DKIM_PEM_MAX + 1], record[DKIM_RECORD_MAX], path[300],
	    tmp[310];
	ssize_t n = dkim_slurp(AT_FDCWD, a[2], pem, sizeof(pem));
	if (n < 0) {
		fprintf(stderr, "mailctl: dkim set: %s: %s\n", a[2],
			strerror(errno));
		return 1;
	}
	if (queue_dkim_record(pem, (size_t)n, record, sizeof(record)) < 0) {
		fprintf(stderr,
			"mailctl: dkim set: %s: not an RSA or Ed25519 private "
			"key in PEM\n",
			a[2]);
		return 1;
	}
	if (mkdirat(dirfd, DKIM_DIR, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "mailctl: dkim set: %s\n", strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), DKIM_DIR "/%s", a[0]);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd =
	    openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || fd_write_all(fd, a[1], strlen(a[1])) < 0 ||
	    fd_write_all(fd, "\n", 1) < 0 ||
	    fd_write_all(fd, pem, (size_t)n) < 0 || fsync(fd) < 0 ||
	    close(fd) < 0 || renameat(dirfd, tmp, dirfd, path) < 0) {
		fprintf(stderr, "mailctl: dkim set: %s\n", strerror(errno));
		unlinkat(dirfd, tmp, 0);
		return 1;
	}
	int d = openat(dirfd, DKIM_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d >= 0) {
		fsync(d);
		close(d);
	}
	dkim_print_record(a[0], a[1], record);
	return 0;
}

static int
dkim_show(int dirfd, char **a)
{
	char buf[DKIM_PEM_MAX + DKIM_SELECTOR_MAX + 2], record[DKIM_RECORD_MAX],
	    path[300];
	snprintf(path, sizeof(path), DKIM_DIR "/%s", a[0]);
	ssize_t n = dkim_slurp(dirfd, path, buf, sizeof(buf));
	char *nl = n > 0 ? strchr(buf, '\n') : NULL;
	if (nl == NULL) {
		fprintf(stderr, "mailctl: dkim show: %s: %s\n", a[0],
			n < 0 && errno != ENOENT ? strerror(errno) : "no key");
		return 1;
	}
	*nl = '\0';
	if (queue_dkim_record(nl + 1, (size_t)(n - (nl + 1 - buf)), record,
			      sizeof(record)) < 0) {
		fprintf(stderr, "mailctl: dkim show: %s: unusable key\n", a[0]);
		return 1;
	}
	dkim_print_record(a[0], buf, record);
	return 0;
}

static int
dkim_del(int dirfd, char **a)
{
	char path[300];
	snprintf(path, sizeof(path), DKIM_DIR "/%s", a[0]);
	if (unlinkat(dirfd, path, 0) < 0) {
		fprintf(stderr, "mailctl: dkim del: %s: %s\n", a[0],
			errno == ENOENT ? "no key" : strerror(errno));
		return 1;
	}
	return 0;
}

static const struct {
	const char *verb;
	int nargs;
	int (*run)(int dirfd, char **args);
	const char *usage;
} dkim_cmds[] = {
    {"set", 3, dkim_set, "dkim set DOMAIN SELECTOR KEYFILE"},
    {"show", 1, dkim_show, "dkim show DOMAIN"},
    {"del", 1, dkim_del, "dkim del DOMAIN"},
};

void
mailctl_dkim_usage(FILE *f)
{
	for (size_t i = 0; i < sizeof(dkim_cmds) / sizeof(*dkim_cmds); i++)
		fprintf(f, "  mailctl [-q DIR] %s\n", dkim_cmds[i].usage);
}

int
mailctl_dkim(int argc, char **argv, const char *dir)
{
	size_t i;
	for (i = 0; i < sizeof(dkim_cmds) / sizeof(*dkim_cmds); i++)
		if (argc > 0 && strcmp(argv[0], dkim_cmds[i].verb) == 0)
			break;
	if (i == sizeof(dkim_cmds) / sizeof(*dkim_cmds)) {
		fprintf(stderr, "mailctl: dkim: unknown command\n");
		mailctl_dkim_usage(stderr);
		return 2;
	}
	if (argc - 1 != dkim_cmds[i].nargs) {
		fprintf(stderr, "usage: mailctl %s\n", dkim_cmds[i].usage);
		return 2;
	}
	for (char *p = argv[1]; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!dkim_name_ok(argv[1], 253) ||
	    (argc > 2 && !dkim_name_ok(argv[2], DKIM_SELECTOR_MAX - 1))) {
		fprintf(stderr, "mailctl: %s: bad domain or selector\n",
			dkim_cmds[i].usage);
		return 2;
	}
	if (dir == NULL || dir[0] == '\0') {
		fprintf(stderr,
			"mailctl: dkim %s: no queue directory (-q DIR "
			"or $MAILCTL_QUEUE)\n",
			dkim_cmds[i].verb);
		return 2;
	}
	struct queue *q = queue_open(dir);
	if (q == NULL) {
		fprintf(stderr, "mailctl: dkim: %s: %s\n", dir,
			strerror(errno));
		return 1;
	}
	int rc = dkim_cmds[i].run(queue_dirfd(q), argv + 1);
	queue_close(q);
	return rc;
}
