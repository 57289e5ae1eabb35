/* Mod-sequences of a Maildir: the log MAILDIR/mailswitch-modseq, read
 * by any session, appended under the UID flock (maildir_modseq.h). */
#include "maildir_modseq.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/log.h"
#include "maildir_int.h"

#define MAILDIR_MODSEQ_RANGE_MAX                                               \
	1000000 /* UIDs one range of a record names                            \
		 */

/* ---- reading ---- */

static int
maildir_modseq_add(struct maildir_modseq *ms, uint32_t uid, uint64_t modseq,
		   bool gone)
{
	if (!ms->keep_uids)
		return 0;
	if (ms->n == ms->cap) {
		size_t cap = ms->cap ? ms->cap * 2 : 256;
		void *p = realloc(ms->ent, cap * sizeof(*ms->ent));
		if (p == NULL)
			return -1;
		ms->ent = p;
		ms->cap = cap;
	}
	ms->ent[ms->n++] = (struct maildir_modseq_ent){
	    .uid = uid, .gone = gone, .modseq = modseq};
	return 0;
}

static int
maildir_modseq_ent_cmp(const void *a, const void *b)
{
	const struct maildir_modseq_ent *x = a, *y = b;
	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return x->modseq < y->modseq ? -1 : x->modseq > y->modseq;
}

/* Sorts ent[] by UID and keeps each UID's last entry. */
static void
maildir_modseq_merge(struct maildir_modseq *ms)
{
	if (ms->sorted == ms->n)
		return;
	qsort(ms->ent, ms->n, sizeof(*ms->ent), maildir_modseq_ent_cmp);
	size_t k = 0;
	for (size_t i = 0; i < ms->n; i++) {
		if (k > 0 && ms->ent[k - 1].uid == ms->ent[i].uid)
			k--;
		ms->ent[k++] = ms->ent[i];
	}
	ms->n = ms->sorted = k;
}

/* "a:b,c" of a record: each UID added. */
static int
maildir_modseq_uidset(struct maildir_modseq *ms, const char *p, uint64_t modseq,
		      bool gone)
{
	if (strcmp(p, "*") == 0) {
		if (!gone)
			ms->all = modseq;
		return 0;
	}
	while (*p) {
		char *end;
		unsigned long lo = strtoul(p, &end, 10), hi = lo;
		if (end == p)
			return -1;
		p = end;
		if (*p == ':') {
			hi = strtoul(p + 1, &end, 10);
			if (end == p + 1)
				return -1;
			p = end;
		}
		if (lo == 0 || hi < lo || hi > UINT32_MAX ||
		    hi - lo > MAILDIR_MODSEQ_RANGE_MAX)
			return -1;
		for (unsigned long u = lo; u <= hi; u++)
			if (maildir_modseq_add(ms, (uint32_t)u, modseq, gone) <
			    0)
				return -2;
		if (*p == ',')
			p++;
		else if (*p)
			return -1;
	}
	return 0;
}

/* One line (without its '\n'). Returns 0, -1 for a line that is not
 * one (skipped, logged), -2 out of memory. */
static int
maildir_modseq_line(struct maildir_modseq *ms, char *line)
{
	unsigned long long a, b, c;
	unsigned u;
	char op;
	int at = 0;

	if (sscanf(line, "S %llu %llu %llu", &a, &b, &c) == 3 &&
	    b <= UINT32_MAX) {
		ms->k0 = ms->k = a;
		ms->n0 = (uint32_t)b;
		ms->floor = c;
		return 0;
	}
	if ((line[0] == '=' || line[0] == '-') &&
	    sscanf(line + 1, " %llu %u", &a, &u) == 2)
		return maildir_modseq_add(ms, u, a, line[0] == '-') < 0 ? -2
									: 0;
	if (sscanf(line, "%llu %llu %c %n", &a, &b, &op, &at) != 3 || at == 0 ||
	    b > UINT32_MAX || a <= b || (op != 'F' && op != 'X'))
		return -1;
	ms->k = a - b;
	if (ms->keep_uids) {
		if (ms->nrec == ms->reccap) {
			size_t cap = ms->reccap ? ms->reccap * 2 : 64;
			void *p = realloc(ms->recn, cap * sizeof(*ms->recn));
			if (p == NULL)
				return -2;
			ms->recn = p;
			ms->reccap = cap;
		}
		ms->recn[ms->nrec++] = (uint32_t)b;
	}
	return maildir_modseq_uidset(ms, line + at, a, op == 'X');
}

/* Forgets what was read (the log was rewritten). */
static void
maildir_modseq_reset(struct maildir_modseq *ms)
{
	bool keep = ms->keep_uids;
	maildir_modseq_free(ms);
	ms->keep_uids = keep;
}

int
maildir_modseq_read(const char *dir, struct maildir_modseq *ms)
{
	char path[MAILDIR_PATH_MAX];
	struct stat st;
	char *buf = NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, MAILDIR_MODSEQ_FILE);
	/* unchanged since the last read: one stat (IDLE looks every second) */
	if (ms->off > 0 && lstat(path, &st) == 0 && st.st_dev == ms->dev &&
	    st.st_ino == ms->ino && st.st_size == ms->off)
		return 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			return -1;
		if (ms->off > 0) /* removed: the mailbox is new */
			maildir_modseq_reset(ms);
		return 0;
	}
	if (fstat(fd, &st) < 0)
		goto fail;
	if (st.st_dev != ms->dev || st.st_ino != ms->ino ||
	    st.st_size < ms->off) {
		maildir_modseq_reset(ms);
		ms->dev = st.st_dev;
		ms->ino = st.st_ino;
	}
	if (st.st_size == ms->off) {
		close(fd);
		return 0;
	}
	size_t want = (size_t)(st.st_size - ms->off);
	if ((buf = malloc(want + 1)) == NULL)
		goto fail;
	ssize_t got = pread(fd, buf, want, ms->off);
	if (got < 0)
		goto fail;
	buf[got] = '\0';
	char *p = buf, *nl;
	while ((nl = memchr(p, '\n', (size_t)(buf + got - p))) != NULL) {
		*nl = '\0';
		int r = maildir_modseq_line(ms, p);
		if (r == -2) {
			errno = ENOMEM;
			goto fail;
		}
		if (r < 0)
			log_warn("%s: %s: a line that is no record: %.60s",
				 __func__, path, p);
		ms->off += nl + 1 - p;
		p = nl + 1;
	}
	free(buf);
	close(fd);
	maildir_modseq_merge(ms);
	return 0;
fail:;
	int e = errno;
	free(buf);
	close(fd);
	errno = e;
	return -1;
}

void
maildir_modseq_free(struct maildir_modseq *ms)
{
	free(ms->ent);
	free(ms->recn);
	memset(ms, 0, sizeof(*ms));
}

uint64_t
maildir_modseq_highest(const struct maildir_modseq *ms, uint32_t uidnext)
{
	return (uint64_t)uidnext + ms->k;
}

static const struct maildir_modseq_ent *
maildir_modseq_find(const struct maildir_modseq *ms, uint32_t uid)
{
	size_t lo = 0, hi = ms->sorted;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ms->ent[mid].uid == uid)
			return &ms->ent[mid];
		if (ms->ent[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

uint64_t
maildir_modseq_of(const struct maildir_modseq *ms, uint32_t uid)
{
	const struct maildir_modseq_ent *e = maildir_modseq_find(ms, uid);
	uint64_t v;
	if (e != NULL) {
		v = e->modseq;
	} else {
		/* k(uid): the records written before uid was given */
		uint64_t k = ms->k0;
		size_t lo = 0, hi = ms->nrec;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (ms->recn[mid] <= uid)
				lo = mid + 1;
			else
				hi = mid;
		}
		v = (uint64_t)uid + 1 + k + lo;
	}
	return v > ms->all ? v : ms->all;
}

bool
maildir_modseq_vanished(const struct maildir_modseq *ms, uint64_t since,
			void (*fn)(void *arg, uint32_t uid), void *arg)
{
	if (since < ms->floor)
		return false;
	for (size_t i = 0; i < ms->sorted; i++)
		if (ms->ent[i].gone && ms->ent[i].modseq > since)
			fn(arg, ms->ent[i].uid);
	return true;
}

/* ---- writing ---- */

int
maildir_modseq_begin(const char *dir, struct maildir_modseq *ms,
		     struct maildir_modseq_tx *tx)
{
	uint32_t uidvalidity;
	memset(tx, 0, sizeof(*tx));
	snprintf(tx->dir, sizeof(tx->dir), "%s", dir);
	if ((tx->lockfd = maildir_lock(dir)) < 0)
		return -1;
	if (maildir_modseq_read(dir, ms) < 0 ||
	    maildir_uid_reserve(dir, 0, NULL, &uidvalidity, &tx->uidnext) < 0) {
		int e = errno;
		maildir_unlock(tx->lockfd);
		tx->lockfd = -1;
		errno = e;
		return -1;
	}
	tx->modseq = (uint64_t)tx->uidnext + ms->k + 1;
	tx->compact = ms->k - ms->k0 >= MAILDIR_MODSEQ_RECORDS;
	return 0;
}

void
maildir_modseq_note(struct maildir_modseq_tx *tx, uint32_t uid)
{
	if (tx->n == tx->cap) {
		size_t cap = tx->cap ? tx->cap * 2 : 64;
		void *p = realloc(tx->uids, cap * sizeof(*tx->uids));
		if (p == NULL) {
			tx->all = true;
			return;
		}
		tx->uids = p;
		tx->cap = cap;
	}
	tx->uids[tx->n++] = uid;
}

static int
maildir_uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The record's line: "modseq N op a:b,c\n". NULL when out of memory. */
static char *
maildir_modseq_record(struct maildir_modseq_tx *tx, char op, size_t *len)
{
	size_t cap = 64 + tx->n * 24, o;
	char *line = malloc(cap);
	if (line == NULL)
		return NULL;
	o = (size_t)snprintf(line, cap, "%" PRIu64 " %" PRIu32 " %c ",
			     tx->modseq, tx->uidnext, op);
	if (tx->all) {
		o += (size_t)snprintf(line + o, cap - o, "*");
	} else {
		qsort(tx->uids, tx->n, sizeof(*tx->uids), maildir_uid_cmp);
		for (size_t i = 0; i < tx->n;) {
			size_t j = i;
			while (j + 1 < tx->n &&
			       tx->uids[j + 1] <= tx->uids[j] + 1)
				j++;
			o += (size_t)snprintf(line + o, cap - o, "%s%" PRIu32,
					      i ? "," : "", tx->uids[i]);
			if (tx->uids[j] != tx->uids[i])
				o += (size_t)snprintf(line + o, cap - o,
						      ":%" PRIu32, tx->uids[j]);
			i = j + 1;
		}
	}
	o += (size_t)snprintf(line + o, cap - o, "\n");
	*len = o;
	return line;
}

static int
maildir_modseq_append(const char *dir, const char *line, size_t len)
{
	char path[MAILDIR_PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, MAILDIR_MODSEQ_FILE);
	int fd = open(
	    path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, line, len) != (ssize_t)len) {
		int e = errno ? errno : EIO;
		close(fd);
		errno = e;
		return -1;
	}
	return maildir_sync_close(fd);
}

static int
maildir_gone_cmp(const void *a, const void *b)
{
	const struct maildir_modseq_ent *x = a, *y = b;
	return x->modseq > y->modseq ? -1 : x->modseq < y->modseq;
}

/* Rewrites the log as a snapshot (the flock held): cur/'s messages with
 * their mod-sequences, the last MAILDIR_VANISHED_KEEP expunges. */
static int
maildir_modseq_compact(const char *dir)
{
	struct maildir_modseq ms = {.keep_uids = true};
	struct maildir_list l = {0};
	struct maildir_modseq_ent *gone = NULL;
	FILE *f = NULL;
	char path[MAILDIR_PATH_MAX], tmp[MAILDIR_PATH_MAX];
	uint32_t uidvalidity, uidnext;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/%s", dir, MAILDIR_MODSEQ_FILE);
	snprintf(tmp, sizeof(tmp), "%s/.%s.%ld.tmp", dir, MAILDIR_MODSEQ_FILE,
		 (long)getpid());
	if (maildir_modseq_read(dir, &ms) < 0 ||
	    maildir_uid_reserve(dir, 0, NULL, &uidvalidity, &uidnext) < 0 ||
	    maildir_scan_locked(dir, false, NULL, &l) < 0)
		goto out;
	size_t ngone = 0;
	if ((gone = malloc((ms.n + 1) * sizeof(*gone))) == NULL)
		goto out;
	for (size_t i = 0; i < ms.n; i++)
		if (ms.ent[i].gone)
			gone[ngone++] = ms.ent[i];
	qsort(gone, ngone, sizeof(*gone), maildir_gone_cmp);
	uint64_t floor = ms.floor;
	for (size_t i = MAILDIR_VANISHED_KEEP; i < ngone; i++)
		if (gone[i].modseq > floor)
			floor = gone[i].modseq;
	if (ngone > MAILDIR_VANISHED_KEEP)
		ngone = MAILDIR_VANISHED_KEEP;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		if (fd >= 0)
			close(fd);
		goto out;
	}
	fprintf(f, "S %" PRIu64 " %" PRIu32 " %" PRIu64 "\n", ms.k, uidnext,
		floor);
	for (size_t i = 0; i < l.n; i++)
		fprintf(f, "= %" PRIu64 " %" PRIu32 "\n",
			maildir_modseq_of(&ms, l.msg[i].uid), l.msg[i].uid);
	for (size_t i = 0; i < ngone; i++)
		fprintf(f, "- %" PRIu64 " %" PRIu32 "\n", gone[i].modseq,
			gone[i].uid);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0)
		goto out;
	int e = fclose(f);
	f = NULL;
	if (e != 0 || rename(tmp, path) < 0 || maildir_fsync_dir(dir) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		log_warn("%s: %s: %s", __func__, path, strerror(errno));
	if (f != NULL)
		fclose(f);
	unlink(tmp);
	free(gone);
	maildir_list_free(&l);
	maildir_modseq_free(&ms);
	return rc;
}

int
maildir_modseq_commit(struct maildir_modseq_tx *tx, char op)
{
	int rc = 0, e = 0;
	if (tx->lockfd < 0)
		return 0;
	if (tx->n > 0 || (tx->all && op == 'F')) {
		size_t len;
		char *line = maildir_modseq_record(tx, op, &len);
		if (line == NULL ||
		    maildir_modseq_append(tx->dir, line, len) < 0) {
			e = line ? errno : ENOMEM;
			log_err("%s: %s/%s: %s", __func__, tx->dir,
				MAILDIR_MODSEQ_FILE, strerror(e));
			rc = -1;
		}
		free(line);
		if (rc == 0 && tx->compact)
			maildir_modseq_compact(tx->dir); /* best effort */
	}
	if (tx->all && op == 'X')
		log_err("%s: %s: expunges not remembered for VANISHED (out of "
			"memory)",
			__func__, tx->dir);
	maildir_unlock(tx->lockfd);
	tx->lockfd = -1;
	free(tx->uids);
	tx->uids = NULL;
	tx->n = tx->cap = 0;
	errno = e;
	return rc;
}
