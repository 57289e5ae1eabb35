/* The submission rules and the delivery of a message to its recipients
 * (submit.h), shared by SMTP and the web role. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../../common/log.h"
#include "../queue/queue.h"
#include "../queue/queue_runner.h"
#include "../queue/queue_srs.h"
#include "../queue/queue_sync.h"
#include "submit.h"

#define SUBMIT_HEADER_SCAN_MAX (1 << 20) /* header bytes looked at */

void
submit_reset(struct submit_rcpts *r)
{
	r->nrcpt = 0;
	r->nmbox = 0;
	r->nremote = 0;
	r->nfwd = 0;
	r->fwd_domain[0] = '\0';
}

void
submit_free(struct submit_rcpts *r)
{
	free(r->mbox);
	free(r->remote);
	free(r->fwd);
	memset(r, 0, sizeof(*r));
}

bool
submit_sender_allowed(struct directory *dir, const char *user,
		      const char *sender)
{
	char mb[DIR_MAX_TARGETS][DIR_ADDR_MAX];
	size_t n = 0;
	if (strcasecmp(sender, user) == 0)
		return true;
	if (sender[0] == '\0' ||
	    directory_resolve(dir, sender, mb, DIR_MAX_TARGETS, &n) != DIR_OK)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(mb[i], user) == 0)
			return true;
	return false;
}

/* Adds addr to a list once (exact is case-sensitive, for mailbox names).
 * Returns 0 or -1 (out of memory). */
static int
submit_list_add(char (**list)[DIR_ADDR_MAX], size_t *n, size_t *cap,
		const char *addr, bool exact)
{
	for (size_t i = 0; i < *n; i++)
		if (exact ? strcmp((*list)[i], addr) == 0
			  : strcasecmp((*list)[i], addr) == 0)
			return 0;
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		void *m = realloc(*list, c * sizeof(**list));
		if (m == NULL)
			return -1;
		*list = m;
		*cap = c;
	}
	snprintf((*list)[(*n)++], DIR_ADDR_MAX, "%s", addr);
	return 0;
}

/* A local recipient's alias targets outside the local domains join the
 * forwarded list; an SRS0 address of ours joins the remote list as its
 * original. Returns 1 when the recipient found somewhere to go this way,
 * 0 when not, -1 for a forged or expired SRS0 address or on out of
 * memory. */
static int
submit_add_forwards(struct mailnode *mn, struct submit_rcpts *r,
		    const char *rcpt)
{
	char fw[DIR_MAX_TARGETS][DIR_ADDR_MAX], orig[DIR_ADDR_MAX];
	size_t n = directory_forwards(mn->dir, rcpt, fw, DIR_MAX_TARGETS);
	for (size_t i = 0; i < n; i++)
		if (submit_list_add(&r->fwd, &r->nfwd, &r->capfwd, fw[i],
				    false) < 0)
			return -1;
	if (n > 0) {
		if (r->fwd_domain[0] == '\0')
			snprintf(r->fwd_domain, sizeof(r->fwd_domain), "%s",
				 strrchr(rcpt, '@') + 1);
		return 1;
	}
	switch (queue_srs_reverse(mn->queue, rcpt, orig, sizeof(orig))) {
	case 1:
		return submit_list_add(&r->remote, &r->nremote, &r->capremote,
				       orig, false) < 0
			   ? -1
			   : 1;
	case -1:
		return -1;
	default:
		return 0;
	}
}

enum submit_rcpt_result
submit_add_rcpt(struct mailnode *mn, struct submit_rcpts *r, const char *rcpt,
		bool relay_allowed, uint64_t size)
{
	char mb[DIR_MAX_TARGETS][DIR_ADDR_MAX];
	size_t n = 0;
	if (!directory_loaded(mn->dir))
		return SUBMIT_RCPT_NOT_LOADED;
	switch (directory_resolve(mn->dir, rcpt, mb, DIR_MAX_TARGETS, &n)) {
	case DIR_NOT_LOCAL:
		if (!relay_allowed)
			return SUBMIT_RCPT_RELAY_DENIED;
		if (submit_list_add(&r->remote, &r->nremote, &r->capremote,
				    rcpt, false) < 0)
			return SUBMIT_RCPT_NOMEM;
		r->nrcpt++;
		return SUBMIT_RCPT_OK;
	case DIR_UNKNOWN:
	case DIR_OK:
		break;
	}
	/* before anything of it joins the message */
	for (size_t i = 0; i < n; i++)
		switch (submit_quota_of(mn, mb[i], size)) {
		case QUOTA_OK:
			continue;
		case QUOTA_FULL:
			return SUBMIT_RCPT_FULL;
		case QUOTA_EXCEED:
			return SUBMIT_RCPT_TOO_BIG;
		}
	int fw = submit_add_forwards(mn, r, rcpt);
	if (fw < 0 || (n == 0 && fw == 0))
		return SUBMIT_RCPT_UNKNOWN;
	for (size_t i = 0; i < n; i++)
		if (submit_list_add(&r->mbox, &r->nmbox, &r->capmbox, mb[i],
				    true) < 0)
			return SUBMIT_RCPT_NOMEM;
	r->nrcpt++;
	return SUBMIT_RCPT_OK;
}

/* Which of Message-ID: and Date: the header section of fd has. */
static void
submit_header_scan(int fd, size_t size, bool *has_id, bool *has_date)
{
	size_t len =
	    size < SUBMIT_HEADER_SCAN_MAX ? size : SUBMIT_HEADER_SCAN_MAX;
	char *buf = malloc(len + 1);
	*has_id = *has_date = false;
	if (buf == NULL) {
		*has_id = *has_date = true; /* add nothing rather than guess */
		return;
	}
	ssize_t got = pread(fd, buf, len, 0);
	if (got < 0)
		got = 0;
	buf[got] = '\0';
	for (char *line = buf; line && *line;) {
		if (line[0] == '\r' || line[0] == '\n')
			break; /* the end of the header section */
		if (strncasecmp(line, "message-id:", 11) == 0)
			*has_id = true;
		else if (strncasecmp(line, "date:", 5) == 0)
			*has_date = true;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	free(buf);
}

void
submit_added_headers(struct mailnode *mn, int fd, size_t size, const char *id,
		     char *out, size_t outlen)
{
	bool has_id, has_date;
	size_t n = 0;
	out[0] = '\0';
	submit_header_scan(fd, size, &has_id, &has_date);
	if (!has_id) {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		n += (size_t)snprintf(
		    out + n, outlen - n, "Message-ID: <%s.%06ld.%s@%s>\r\n", id,
		    (long)tv.tv_usec, mn->cfg->name, mn->cfg->hostname);
	}
	if (!has_date && n < outlen) {
		char date[64];
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
		snprintf(out + n, outlen - n, "Date: %s\r\n", date);
	}
}

/* Writes the message for one list of recipients from sender (not yet
 * durable: queue_write). */
static int
submit_queue_list(struct mailnode *mn, int fd, size_t size, const char *prefix,
		  char (*rcpts)[DIR_ADDR_MAX], size_t n, const char *sender,
		  struct queue_pending *p)
{
	const char **list = calloc(n, sizeof(*list));
	if (list == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		list[i] = rcpts[i];
	int rc = queue_write(mn->queue, fd, size, prefix, sender, list, n, p);
	int saved = errno;
	free(list);
	errno = saved;
	return rc;
}

/* Writes the remote recipients' copy, then the forwarded ones' (its
 * sender made SRS), into p[0..*np) for queue_commit. Returns 0, or -1
 * with errno and nothing left. */
static int
submit_queue_write(struct mailnode *mn, const struct submit_rcpts *r,
		   const char *sender, int fd, size_t size, const char *prefix,
		   struct queue_pending p[QUEUE_SYNC_GROUP], size_t *np)
{
	char srs[DIR_ADDR_MAX * 2];
	*np = 0;
	if (r->nremote > 0) {
		if (submit_queue_list(mn, fd, size, prefix, r->remote,
				      r->nremote, sender, &p[0]) < 0)
			return -1;
		*np = 1;
	}
	if (r->nfwd > 0) {
		/* Our own users' mail keeps its sender: SPF passes as it is. */
		const char *at = strrchr(sender, '@');
		const char *from = sender;
		if (at && !directory_domain_local(mn->dir, at + 1)) {
			if (queue_srs_forward(mn->queue, sender, r->fwd_domain,
					      srs, sizeof(srs)) < 0)
				goto fail;
			from = srs;
		}
		if (submit_queue_list(mn, fd, size, prefix, r->fwd, r->nfwd,
				      from, &p[*np]) < 0)
			goto fail;
		(*np)++;
	}
	return 0;
fail:;
	int saved = errno;
	if (*np)
		queue_drop(mn->queue, &p[0]);
	*np = 0;
	errno = saved;
	return -1;
}

/* After queue_commit: every copy durable, or none left (those committed
 * are taken back). Returns 0, or -1 with errno. */
static int
submit_queue_committed(struct mailnode *mn, const struct queue_pending *p,
		       size_t n)
{
	int err = 0;
	for (size_t i = 0; i < n; i++)
		if (p[i].err && err == 0)
			err = p[i].err;
	if (err == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (p[i].err == 0)
			queue_remove(mn->queue, p[i].id);
	errno = err;
	return -1;
}

/* The local mailboxes: the store (into folder, NULL: INBOX), or the
 * spool for what the store refused (for INBOX: the spool keeps no
 * folder). Returns "delivered" or "spooled", or NULL when neither took
 * the message. */
static const char *
submit_deliver_local(struct mailnode *mn, const struct submit_rcpts *r,
		     const char *sender, int fd, size_t size,
		     const char *prefix, const char *folder, const char *logid)
{
	size_t n = r->nmbox;
	bool *failed = calloc(n, sizeof(*failed));
	const char **list = calloc(n, sizeof(*list));
	const char *how = "delivered";
	if (failed == NULL || list == NULL) {
		log_err("%s: out of memory", logid);
		how = NULL;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		list[i] = r->mbox[i];
	if (store_deliver_to(&mn->store, list, n, folder, fd, size, prefix,
			     failed) < 0) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (failed[i])
				list[k++] = r->mbox[i];
		how = "spooled";
		if (spool_enqueue(mn->spool, fd, size, sender, list, k,
				  prefix) < 0) {
			log_err("%s: store and spool both failed: %s", logid,
				strerror(errno));
			how = NULL;
		}
	}
out:
	free(failed);
	free((void *)list);
	return how;
}

const char *
submit_deliver(struct mailnode *mn, const struct submit_rcpts *r,
	       const char *sender, int fd, size_t size, const char *prefix,
	       const char *logid, char *qid, size_t qidlen)
{
	return submit_deliver_to(mn, r, sender, fd, size, prefix, NULL, logid,
				 qid, qidlen);
}

/* The rest of a delivery once its queued copies p[0..n) are durable:
 * the local copies, then the runner told; a local failure takes the
 * queued copies back. Returns what submit_deliver_to returns, the queue
 * ID in qid. */
static const char *
submit_finish(struct mailnode *mn, const struct submit_rcpts *r,
	      const char *sender, int fd, size_t size, const char *prefix,
	      const char *folder, const char *logid,
	      const struct queue_pending *p, size_t n, char *qid, size_t qidlen)
{
	const char *how = r->nmbox
			      ? submit_deliver_local(mn, r, sender, fd, size,
						     prefix, folder, logid)
			      : "queued";
	for (size_t i = 0; i < n; i++)
		if (how == NULL)
			queue_remove(mn->queue, p[i].id);
		else
			queue_runner_queued(mn->runner, p[i].id);
	snprintf(qid, qidlen, "%s", how && n ? p[0].id : "");
	return how;
}

/* Outbound copies carry no Return-Path:, the final delivery adds it. */
static const char *
submit_queue_prefix(const char *prefix)
{
	const char *rest = strstr(prefix, "\r\n");
	return rest ? rest + 2 : "";
}

const char *
submit_deliver_to(struct mailnode *mn, const struct submit_rcpts *r,
		  const char *sender, int fd, size_t size, const char *prefix,
		  const char *folder, const char *logid, char *qid,
		  size_t qidlen)
{
	struct queue_pending p[QUEUE_SYNC_GROUP],
	    *ps[QUEUE_SYNC_GROUP] = {&p[0], &p[1]};
	size_t n = 0;

	/* The queue first: a local failure then takes the queued copy back,
	 * so a failure leaves nothing behind. */
	qid[0] = '\0';
	if (submit_queue_write(mn, r, sender, fd, size,
			       submit_queue_prefix(prefix), p, &n) < 0)
		goto fail;
	if (n > 0) {
		queue_commit(mn->queue, ps, n);
		if (submit_queue_committed(mn, p, n) < 0)
			goto fail;
	}
	return submit_finish(mn, r, sender, fd, size, prefix, folder, logid, p,
			     n, qid, qidlen);
fail:
	log_err("%s: queue %s: %s", logid, queue_path(mn->queue),
		strerror(errno));
	return NULL;
}

/* A delivery waiting for its queued copies (submit_deliver_start). */
struct submit_job {
	struct mailnode *mn;
	const struct submit_rcpts *r;
	char sender[DIR_ADDR_MAX];
	int fd;
	size_t size;
	char *prefix;
	const char *folder;
	char logid[64];
	uint64_t sync; /* queue_sync's job */
	submit_done_cb cb;
	void *arg;
};

static void
submit_job_free(struct submit_job *j)
{
	free(j->prefix);
	free(j);
}

/* On the loop: the job's queued copies are durable, or gone. */
static void
submit_synced(void *arg, const struct queue_pending *p, size_t n)
{
	struct submit_job *j = arg;
	const char *how = NULL;
	char qid[QUEUE_ID_MAX] = "";

	if (submit_queue_committed(j->mn, p, n) < 0)
		log_err("%s: queue %s: %s", j->logid, queue_path(j->mn->queue),
			strerror(errno));
	else
		how = submit_finish(j->mn, j->r, j->sender, j->fd, j->size,
				    j->prefix, j->folder, j->logid, p, n, qid,
				    sizeof(qid));
	j->cb(j->arg, how, qid);
	submit_job_free(j);
}

struct submit_job *
submit_deliver_start(struct mailnode *mn, const struct submit_rcpts *r,
		     const char *sender, int fd, size_t size,
		     const char *prefix, const char *folder, const char *logid,
		     submit_done_cb cb, void *arg)
{
	struct queue_pending p[QUEUE_SYNC_GROUP];
	struct submit_job *j = NULL;
	char qid[QUEUE_ID_MAX];
	size_t n = 0;

	if (r->nremote + r->nfwd == 0) {
		const char *how =
		    submit_deliver_to(mn, r, sender, fd, size, prefix, folder,
				      logid, qid, sizeof(qid));
		cb(arg, how, qid);
		return NULL;
	}
	if (submit_queue_write(mn, r, sender, fd, size,
			       submit_queue_prefix(prefix), p, &n) < 0) {
		log_err("%s: queue %s: %s", logid, queue_path(mn->queue),
			strerror(errno));
		goto fail;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->prefix = strdup(prefix)) == NULL) {
		log_err("%s: out of memory", logid);
		goto fail;
	}
	j->mn = mn;
	j->r = r;
	snprintf(j->sender, sizeof(j->sender), "%s", sender);
	j->fd = fd;
	j->size = size;
	j->folder = folder;
	snprintf(j->logid, sizeof(j->logid), "%s", logid);
	j->cb = cb;
	j->arg = arg;
	j->sync = queue_sync_start(mn->queue_sync, p, n, submit_synced, j);
	if (j->sync == 0)
		goto fail;
	return j;
fail:
	for (size_t i = 0; i < n; i++)
		queue_drop(mn->queue, &p[i]);
	if (j)
		submit_job_free(j);
	cb(arg, NULL, "");
	return NULL;
}

void
submit_deliver_cancel(struct submit_job *j)
{
	if (j == NULL)
		return;
	queue_sync_cancel(j->mn->queue_sync, j->sync);
	submit_job_free(j);
}
