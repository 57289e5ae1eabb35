/* IMAP keywords as Dovecot keeps them in a Maildir: dir/dovecot-keywords
 * holds "index name" lines (index 0 to 25), and a message's file name
 * holds the letter 'a' + index after its standard flags (":2,Sab"). The
 * file only grows (an index, once given, keeps its name), replaced whole
 * under its dotlock (maildir_dotlock.c), which is how Dovecot writes it
 * too: two nodes adding keywords at once each re-read it under the lock,
 * so neither loses the other's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../../common/log.h"
#include "maildir.h"
#include "maildir_int.h"

#define MAILDIR_KEYWORDS_READ_MAX 65536

bool
maildir_keyword_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > MAILDIR_KEYWORD_MAX || name[0] == '\\')
		return false;
	for (const char *p = name; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("(){%*\"\\]", *p))
			return false;
	return true;
}

void
maildir_keywords_parse(char *text, struct maildir_keywords *kw)
{
	memset(kw, 0, sizeof(*kw));
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *end;
		errno = 0;
		unsigned long idx = strtoul(line, &end, 10);
		if (errno || end == line || *end != ' ' ||
		    idx >= MAILDIR_KEYWORDS ||
		    !maildir_keyword_valid(end + 1) ||
		    maildir_keyword_index(kw, end + 1) >= 0)
			continue;
		snprintf(kw->name[idx], sizeof(kw->name[idx]), "%s", end + 1);
	}
}

int
maildir_keywords_read(const char *dir, struct maildir_keywords *kw)
{
	char path[MAILDIR_PATH_MAX];
	memset(kw, 0, sizeof(*kw));
	snprintf(path, sizeof(path), "%s/%s", dir, MAILDIR_KEYWORDS_FILE);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	char *buf = malloc(MAILDIR_KEYWORDS_READ_MAX + 1);
	size_t got = 0;
	ssize_t n = 0;
	while (buf && got < MAILDIR_KEYWORDS_READ_MAX &&
	       (n = read(fd, buf + got, MAILDIR_KEYWORDS_READ_MAX - got)) > 0)
		got += (size_t)n;
	int e = buf == NULL ? ENOMEM : errno;
	close(fd);
	if (buf == NULL || n < 0) {
		free(buf);
		errno = e;
		return -1;
	}
	buf[got] = '\0';
	maildir_keywords_parse(buf, kw);
	free(buf);
	return 0;
}

int
maildir_keyword_index(const struct maildir_keywords *kw, const char *name)
{
	for (int i = 0; i < MAILDIR_KEYWORDS; i++)
		if (kw->name[i][0] && strcasecmp(kw->name[i], name) == 0)
			return i;
	return -1;
}

/* Writes kw to the dotlock's fd. */
static int
maildir_keywords_write(int fd, const struct maildir_keywords *kw)
{
	char line[MAILDIR_KEYWORD_MAX + 8];
	for (int i = 0; i < MAILDIR_KEYWORDS; i++) {
		if (!kw->name[i][0])
			continue;
		int len =
		    snprintf(line, sizeof(line), "%d %s\n", i, kw->name[i]);
		if (write(fd, line, (size_t)len) != len)
			return -1;
	}
	return 0;
}

int
maildir_keywords_add(const char *dir,
		     const char (*names)[MAILDIR_KEYWORD_MAX + 1], size_t n,
		     struct maildir_keywords *kw, uint32_t *bits)
{
	char lock[MAILDIR_PATH_MAX];
	*bits = 0;
	/* all known already (the common case): no lock */
	if (maildir_keywords_read(dir, kw) < 0)
		return -1;
	size_t known = 0;
	for (size_t i = 0; i < n; i++) {
		int k = maildir_keyword_index(kw, names[i]);
		if (k >= 0) {
			*bits |= 1u << k;
			known++;
		}
	}
	if (known == n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!maildir_keyword_valid(names[i])) {
			errno = EINVAL;
			return -1;
		}
	int fd = maildir_dotlock(dir, MAILDIR_KEYWORDS_FILE,
				 MAILDIR_KEYWORDS_WAIT_MS, lock, sizeof(lock));
	if (fd < 0)
		return -1;
	/* again under the lock: another node may have added some */
	if (maildir_keywords_read(dir, kw) < 0)
		goto fail;
	*bits = 0;
	for (size_t i = 0; i < n; i++) {
		int k = maildir_keyword_index(kw, names[i]);
		for (int f = 0; k < 0 && f < MAILDIR_KEYWORDS; f++)
			if (!kw->name[f][0]) {
				snprintf(kw->name[f], sizeof(kw->name[f]), "%s",
					 names[i]);
				k = f;
			}
		if (k < 0) { /* every letter taken */
			maildir_dotlock_drop(fd, lock);
			maildir_keywords_read(dir, kw);
			errno = ENOSPC;
			return -1;
		}
		*bits |= 1u << k;
	}
	if (maildir_keywords_write(fd, kw) < 0)
		goto fail;
	return maildir_dotlock_commit(fd, lock, dir, MAILDIR_KEYWORDS_FILE,
				      true);
fail:;
	int e = errno ? errno : EIO;
	log_err("%s: %s: %s", __func__, dir, strerror(e));
	maildir_dotlock_drop(fd, lock);
	errno = e;
	return -1;
}

int
maildir_keywords_clone(const char *srcdir, const char *dstdir)
{
	struct maildir_keywords kw;
	char lock[MAILDIR_PATH_MAX];
	if (maildir_keywords_read(srcdir, &kw) < 0)
		return -1;
	bool any = false;
	for (int i = 0; i < MAILDIR_KEYWORDS; i++)
		any |= kw.name[i][0] != '\0';
	if (!any)
		return 0;
	int fd = maildir_dotlock(dstdir, MAILDIR_KEYWORDS_FILE,
				 MAILDIR_KEYWORDS_WAIT_MS, lock, sizeof(lock));
	if (fd < 0)
		return -1;
	if (maildir_keywords_write(fd, &kw) < 0) {
		int e = errno ? errno : EIO;
		maildir_dotlock_drop(fd, lock);
		errno = e;
		return -1;
	}
	return maildir_dotlock_commit(fd, lock, dstdir, MAILDIR_KEYWORDS_FILE,
				      true);
}

int
maildir_keywords_map(const char *srcdir, const char *dstdir, uint32_t used,
		     char map[MAILDIR_KEYWORDS])
{
	struct maildir_keywords src, dst;
	char names[MAILDIR_KEYWORDS][MAILDIR_KEYWORD_MAX + 1];
	int from[MAILDIR_KEYWORDS];
	size_t n = 0;
	uint32_t bits;

	memset(map, 0, MAILDIR_KEYWORDS);
	if (maildir_keywords_read(srcdir, &src) < 0)
		return -1;
	for (int i = 0; i < MAILDIR_KEYWORDS; i++)
		if (src.name[i][0] && (used & (1u << i))) {
			memcpy(names[n], src.name[i], sizeof(names[n]));
			from[n++] = i;
		}
	if (n == 0)
		return 0;
	/* one at a time, so that a full target keeps what fits */
	for (size_t i = 0; i < n; i++) {
		if (maildir_keywords_add(dstdir, &names[i], 1, &dst, &bits) <
		    0) {
			if (errno != ENOSPC)
				return -1;
			log_warn("%s: %s: no letter left for keyword %s",
				 __func__, dstdir, names[i]);
			continue;
		}
		for (int k = 0; k < MAILDIR_KEYWORDS; k++)
			if (bits & (1u << k))
				map[from[i]] = (char)('a' + k);
	}
	return 0;
}
