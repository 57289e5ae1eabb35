/* \Recent across sessions and nodes: maildir_recent_claim (maildir.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "maildir.h"
#include "maildir_int.h"

#define MAILDIR_RECENT "mailswitch-recent"
#define MAILDIR_RECENT_WAIT_MS 200

int
maildir_recent_claim(const char *dir, uint32_t uidnext, bool peek,
		     uint32_t *from)
{
	char lock[MAILDIR_PATH_MAX], buf[32];
	uint32_t mark = 1;
	*from = uidnext;
	if (maildir_read_number(dir, MAILDIR_RECENT, &mark) < 0)
		return -1;
	if (peek) {
		*from = mark;
		return 0;
	}
	if (mark >= uidnext) /* the mark only rises: nothing to claim */
		return 0;
	/* advisory: not worth holding the session (and the node's loop) up */
	int fd = maildir_dotlock(dir, MAILDIR_RECENT, MAILDIR_RECENT_WAIT_MS,
				 lock, sizeof(lock));
	if (fd < 0)
		return -1;
	if (maildir_read_number(dir, MAILDIR_RECENT, &mark) < 0)
		goto fail;
	if (mark >= uidnext) { /* claimed already, all of it */
		maildir_dotlock_drop(fd, lock);
		return 0;
	}
	int len = snprintf(buf, sizeof(buf), "%" PRIu32 "\n", uidnext);
	if (write(fd, buf, (size_t)len) != len)
		goto fail;
	/* \Recent is advisory (RFC 3501 2.3.2): not worth an fsync per
	 * arrival; after a crash a message may be recent once more */
	if (maildir_dotlock_commit(fd, lock, dir, MAILDIR_RECENT, false) < 0)
		return -1;
	*from = mark;
	return 0;
fail:;
	int e = errno ? errno : EIO;
	maildir_dotlock_drop(fd, lock);
	errno = e;
	return -1;
}
