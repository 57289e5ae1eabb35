/* Quotas at submission (submit.h): a recipient already full is told to
 * come back (SMTP's 452 4.2.2 at RCPT), one that the declared size would
 * take over is refused (552 5.2.2, RFC 1870 6.1), each on its own. At
 * the end of DATA one reply answers for every recipient, so a message
 * that would take some of them over is refused (552 5.2.2) only when it
 * would take every local one over and has nobody else to go to;
 * otherwise the others get it and those over are bounced, as an MX in
 * front of an LMTP server that refuses them would. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/log.h"
#include "../queue/queue_bounce.h"
#include "../queue/queue_runner.h"
#include "../store/store.h"
#include "submit.h"

enum quota_verdict
submit_quota_of(struct mailnode *mn, const char *mailbox, uint64_t size)
{
	uint64_t limit = directory_quota(mn->dir, mailbox);
	char dir[sizeof(mn->store.root) + 512];

	if (limit == 0)
		return QUOTA_OK;
	if (store_user_dir(&mn->store, mailbox, dir, sizeof(dir), false) < 0)
		return QUOTA_OK; /* delivery says what is wrong with it */
	return quota_check(dir, limit, size);
}

/* Queues a non-delivery notice (RFC 3464) to sender for the mailboxes
 * marked in over, as Postfix does for a recipient its LMTP server
 * refused. Returns 0, or -1 with nothing queued. */
static int
submit_quota_bounce(struct mailnode *mn, const struct submit_rcpts *r,
		    const bool *over, const struct submit_message *m)
{
	struct queue_env env = {.created = time(NULL)};
	char id[QUEUE_ID_MAX];
	bool *which = calloc(r->nmbox, sizeof(*which));
	int rc = -1;

	env.rcpt = calloc(r->nmbox, sizeof(*env.rcpt));
	if (which == NULL || env.rcpt == NULL)
		goto out;
	snprintf(env.id, sizeof(env.id), "%.*s", QUEUE_ID_LEN, m->id);
	snprintf(env.sender, sizeof(env.sender), "%s", m->sender);
	for (size_t i = 0; i < r->nmbox; i++) {
		if (!over[i])
			continue;
		struct queue_rcpt *q = &env.rcpt[env.nrcpt];
		snprintf(q->addr, sizeof(q->addr), "%s", r->mbox[i]);
		q->state = QR_FAILED;
		snprintf(q->reply, sizeof(q->reply),
			 "552 5.2.2 Mailbox full: the message would exceed "
			 "the recipient's quota");
		which[env.nrcpt++] = true;
	}
	rc = queue_bounce(mn->queue, &env, which, DSN_FAILED,
			  mn->cfg->hostname, m->fd, m->datasize, id);
	if (rc == 0) {
		log_info("%s: %zu mailbox(es) over quota: sender "
			 "non-delivery notification %s",
			 m->logid, env.nrcpt, id);
		queue_runner_queued(mn->runner, id);
	}
out:
	free(which);
	free(env.rcpt);
	return rc;
}

/* Takes the mailboxes marked in over out of r. */
static void
submit_quota_drop(struct submit_rcpts *r, const bool *over)
{
	size_t k = 0;

	for (size_t i = 0; i < r->nmbox; i++)
		if (!over[i])
			memmove(r->mbox[k++], r->mbox[i], DIR_ADDR_MAX);
	r->nmbox = k;
}

bool
submit_quota_data(struct mailnode *mn, struct submit_rcpts *r,
		  const struct submit_message *m, uint64_t size)
{
	bool *over = calloc(r->nmbox ? r->nmbox : 1, sizeof(*over));
	size_t n = 0;

	if (over == NULL)
		return false; /* delivered to all: nothing is lost */
	for (size_t i = 0; i < r->nmbox; i++)
		if (submit_quota_of(mn, r->mbox[i], size) != QUOTA_OK) {
			over[i] = true;
			n++;
		}
	if (n == r->nmbox && n > 0 && r->nremote + r->nfwd == 0) {
		log_info("%s: from=<%s> size=%llu refused: over the quota of "
			 "every recipient",
			 m->logid, m->sender, (unsigned long long)size);
		free(over);
		return true;
	}
	/* The others get it: the ones over are bounced, or, when no notice
	 * can go (the null sender, the queue unwritable), get it too, past
	 * their limit, rather than lose it. */
	if (n > 0 && m->sender[0] && submit_quota_bounce(mn, r, over, m) == 0)
		submit_quota_drop(r, over);
	else if (n > 0)
		log_info("%s: delivered to %zu mailbox(es) past their quota "
			 "(no notice can go to <%s>)",
			 m->logid, n, m->sender);
	free(over);
	return false;
}
