/* Maildir++ quota (quota.h): the maildirsize file of a user's Maildir,
 * read, appended to and recounted from the store. */
#include "quota.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../common/decimal.h"
#include "../../common/fdio.h"
#include "../../common/log.h"
#include "maildir.h"
#include "maildir_int.h"

#define QUOTA_LIMIT_MAX (UINT64_C(1) << 62)
#define QUOTA_LINE_MAX (1L << 62) /* one change line's figures, either sign */

/* The user's Maildir of mailbox maildir into out: maildir itself (INBOX),
 * or its parent for a Maildir++ folder (a last component ".Name"). */
static int
quota_userdir(const char *maildir, char *out, size_t outlen)
{
	const char *slash = strrchr(maildir, '/');
	size_t len = strlen(maildir);

	if (slash && slash[1] == '.')
		len = (size_t)(slash - maildir);
	if (len == 0 || len >= outlen) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(out, maildir, len);
	out[len] = '\0';
	return 0;
}

/* The limit of a header line "NS[,NC]" (Maildir++): N of the S item, 0
 * when it has none. Returns 0, or -1 when the line is not such. */
static int
quota_parse_header(char *line, uint64_t *limit)
{
	char *save = NULL;

	*limit = 0;
	for (char *item = strtok_r(line, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		size_t n = strlen(item);
		unsigned long long v;
		if (n < 2 || (item[n - 1] != 'S' && item[n - 1] != 'C'))
			return -1;
		char kind = item[n - 1];
		item[n - 1] = '\0';
		if (decimal_ullong(item, UINT64_MAX, &v) < 0)
			return -1;
		if (kind == 'S')
			*limit = v;
	}
	return 0;
}

/* One change line "BYTES COUNT" added to *bytes and *count. 0 or -1. */
static int
quota_parse_line(char *line, int64_t *bytes, int64_t *count)
{
	char *sp = strchr(line, ' ');
	long b, c;

	if (sp == NULL)
		return -1;
	*sp = '\0';
	if (decimal_long(line, -QUOTA_LINE_MAX, QUOTA_LINE_MAX, &b) < 0 ||
	    decimal_long(sp + 1, -QUOTA_LINE_MAX, QUOTA_LINE_MAX, &c) < 0)
		return -1;
	if (__builtin_add_overflow(*bytes, b, bytes) ||
	    __builtin_add_overflow(*count, c, count))
		return -1;
	return 0;
}

int
quota_parse(char *text, uint64_t limit, struct quota_usage *u)
{
	size_t n = strlen(text);
	int64_t bytes = 0, count = 0;
	uint64_t header;

	/* Every line, the header's included, ends in '\n' (the writers'
	 * appends are whole lines); anything else is a broken file. */
	if (n == 0 || text[n - 1] != '\n')
		return 1;
	char *save = NULL, *line = strtok_r(text, "\n", &save);
	if (line == NULL || quota_parse_header(line, &header) < 0 ||
	    header != limit)
		return 1;
	while ((line = strtok_r(NULL, "\n", &save)) != NULL)
		if (quota_parse_line(line, &bytes, &count) < 0)
			return 1;
	if (bytes < 0 || count < 0)
		return 1;
	u->bytes = (uint64_t)bytes;
	u->count = (uint64_t)count;
	return 0;
}

/* Reads userdir's file into *u. Returns 0, 1 when it calls for a recount
 * (quota.h), or -1 with errno. */
static int
quota_read(const char *userdir, uint64_t limit, struct quota_usage *u)
{
	char path[MAILDIR_PATH_MAX], buf[QUOTA_FILE_MAX + 1];
	struct stat st;
	ssize_t n;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/%s", userdir, QUOTA_FILE);
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 1 : -1;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	if (st.st_size >= QUOTA_FILE_MAX) {
		close(fd);
		return 1;
	}
	do
		n = pread(fd, buf, sizeof(buf) - 1, 0);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	if (memchr(buf, '\0', (size_t)n) != NULL)
		return 1;
	if ((rc = quota_parse(buf, limit, u)) != 0)
		return rc;
	if (limit && u->bytes >= limit &&
	    time(NULL) - st.st_mtim.tv_sec > QUOTA_OVER_RECOUNT_S)
		return 1;
	return 0;
}

/* Adds the messages of dir (a cur/ or new/) to *u. A missing dir adds
 * nothing. */
static int
quota_count_dir(const char *dir, struct quota_usage *u)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((errno = 0, e = readdir(d)) != NULL) {
		uint32_t uid;
		uint64_t size;
		char flags[64];
		struct stat st;

		if (!maildir_msg_name_ok(e->d_name))
			continue;
		maildir_parse_name(e->d_name, &uid, flags, sizeof(flags),
				   &size);
		if (size == 0) { /* a name without its size: the file's */
			if (fstatat(dirfd(d), e->d_name, &st,
				    AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode))
				continue; /* gone meanwhile, or not a message */
			size = (uint64_t)st.st_size;
		}
		u->bytes += size;
		u->count++;
	}
	int e2 = errno;
	closedir(d);
	errno = e2;
	return e2 ? -1 : 0;
}

/* Adds mailbox dir's messages (cur/ and new/) to *u. */
static int
quota_count_mailbox(const char *dir, struct quota_usage *u)
{
	static const char *const sub[] = {"cur", "new"};
	char path[MAILDIR_PATH_MAX];

	for (size_t i = 0; i < 2; i++) {
		if (snprintf(path, sizeof(path), "%s/%s", dir, sub[i]) >=
		    (int)sizeof(path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		if (quota_count_dir(path, u) < 0)
			return -1;
	}
	return 0;
}

struct quota_file {
	uint64_t limit;
	const struct quota_usage *u;
};

static void
quota_fill(FILE *f, void *arg)
{
	const struct quota_file *q = arg;

	fprintf(f, "%" PRIu64 "S\n%" PRIu64 " %" PRIu64 "\n", q->limit,
		q->u->bytes, q->u->count);
}

int
quota_recount(const char *userdir, uint64_t limit, struct quota_usage *u)
{
	char(*folders)[MAILDIR_MBOX_MAX + 1] = NULL;
	char dir[MAILDIR_PATH_MAX], tmp[64];
	unsigned char rnd[8];
	size_t nfolders = 0;
	int dfd = -1, rc = -1;

	memset(u, 0, sizeof(*u));
	if ((dfd = open(userdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return 0; /* no mail yet: nothing used */
		return -1;
	}
	if (quota_count_mailbox(userdir, u) < 0 ||
	    maildir_folders(userdir, &folders, &nfolders) < 0)
		goto out;
	for (size_t i = 0; i < nfolders; i++)
		if (maildir_mailbox_path(userdir, folders[i], dir,
					 sizeof(dir)) < 0 ||
		    quota_count_mailbox(dir, u) < 0)
			goto out;
	/* The store is shared: a name no other process or node takes. */
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		goto out;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%02x%02x%02x%02x%02x%02x%02x%02x",
		 QUOTA_FILE, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5],
		 rnd[6], rnd[7]);
	struct quota_file q = {limit, u};
	if (fd_write_replace(dfd, tmp, QUOTA_FILE, quota_fill, &q) < 0)
		goto out;
	log_debug("quota: %s: recounted %" PRIu64 " bytes in %" PRIu64
		  " messages",
		  userdir, u->bytes, u->count);
	rc = 0;
out:;
	int e = errno;
	free(folders);
	close(dfd);
	errno = e;
	return rc;
}

int
quota_get(const char *userdir, uint64_t limit, struct quota_usage *u)
{
	int rc = quota_read(userdir, limit, u);

	if (rc == 1)
		return quota_recount(userdir, limit, u);
	return rc;
}

void
quota_change(const char *maildir, int64_t bytes, int64_t count)
{
	char userdir[MAILDIR_PATH_MAX], path[MAILDIR_PATH_MAX + 16];
	char line[64];
	int fd, n;

	if (quota_userdir(maildir, userdir, sizeof(userdir)) < 0)
		return;
	snprintf(path, sizeof(path), "%s/%s", userdir, QUOTA_FILE);
	fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			log_warn("quota: %s: %s", path, strerror(errno));
		return;
	}
	/* One write: O_APPEND keeps whole lines from several writers. */
	n = snprintf(line, sizeof(line), "%" PRId64 " %" PRId64 "\n", bytes,
		     count);
	if (write(fd, line, (size_t)n) != n)
		log_warn("quota: %s: %s", path, strerror(errno));
	close(fd);
}

void
quota_forget(const char *userdir)
{
	char path[MAILDIR_PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", userdir, QUOTA_FILE);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("quota: %s: %s", path, strerror(errno));
}

enum quota_verdict
quota_check(const char *userdir, uint64_t limit, uint64_t bytes)
{
	struct quota_usage u;

	if (limit == 0)
		return QUOTA_OK;
	if (quota_get(userdir, limit, &u) < 0) {
		log_warn("quota: %s: usage unknown (%s), not enforced", userdir,
			 strerror(errno));
		return QUOTA_OK;
	}
	if (u.bytes >= limit)
		return QUOTA_FULL;
	return bytes > limit - u.bytes ? QUOTA_EXCEED : QUOTA_OK;
}

int
quota_parse_limit(const char *s, uint64_t *out)
{
	static const char units[] = "KMGT";
	char digits[24];
	size_t n = strspn(s, "0123456789");
	unsigned long long v;
	int shift = 0;

	if (n == 0 || n >= sizeof(digits))
		return -1;
	if (s[n] != '\0') {
		const char *u =
		    s[n + 1] == '\0'
			? strchr(units, toupper((unsigned char)s[n]))
			: NULL;
		if (u == NULL || *u == '\0')
			return -1;
		shift = 10 * (int)(u - units + 1);
	}
	memcpy(digits, s, n);
	digits[n] = '\0';
	if (decimal_ullong(digits, QUOTA_LIMIT_MAX >> shift, &v) < 0 || v == 0)
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}
