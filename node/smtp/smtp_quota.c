/* Quotas at SMTP (smtp.h): a recipient already full is told to come back
 * at RCPT (452 4.2.2), and one that MAIL's SIZE would take over is
 * refused there (552 5.2.2, RFC 1870 6.1), each on its own. At the end
 * of DATA one reply answers for every recipient, so a message that would
 * take some of them over is refused (552 5.2.2) only when it would take
 * every local one over and has nobody else to go to; otherwise the others
 * get it and those over are bounced, as an MX in front of an LMTP server
 * that refuses them would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/log.h"
#include "../queue/queue_bounce.h"
#include "../queue/queue_runner.h"
#include "../store/quota.h"
#include "../store/store.h"
#include "smtp.h"

/* What size more bytes would do to mailbox addr (a local user). */
static enum quota_verdict
smtp_quota_of(struct smtp_session *s, const char *addr, uint64_t size)
{
	uint64_t limit = directory_quota(s->mn->dir, addr);
	char dir[sizeof(s->mn->store.root) + 512];

	if (limit == 0)
		return QUOTA_OK;
	if (store_user_dir(&s->mn->store, addr, dir, sizeof(dir), false) < 0)
		return QUOTA_OK; /* delivery says what is wrong with it */
	return quota_check(dir, limit, size);
}

int
smtp_quota_rcpt(struct smtp_session *s, const char *rcpt,
		char (*mb)[DIR_ADDR_MAX], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		switch (smtp_quota_of(s, mb[i], s->mail_size)) {
		case QUOTA_OK:
			continue;
		case QUOTA_FULL:
			log_info("smtp %s: <%s>: %s is over its quota", s->id,
				 rcpt, mb[i]);
			smtp_reply(s,
				   "452 4.2.2 <%s>: Mailbox full, try again "
				   "later",
				   rcpt);
			return -1;
		case QUOTA_EXCEED:
			log_info("smtp %s: <%s>: SIZE=%llu would take %s over "
				 "its quota",
				 s->id, rcpt, (unsigned long long)s->mail_size,
				 mb[i]);
			smtp_reply(s,
				   "552 5.2.2 <%s>: Message would exceed the "
				   "recipient's quota",
				   rcpt);
			return -1;
		}
	}
	return 0;
}

/* Queues a non-delivery notice (RFC 3464) to the sender for the
 * mailboxes marked in over, as Postfix does for a recipient its LMTP
 * server refused. Returns 0, or -1 with nothing queued. */
static int
smtp_quota_bounce(struct smtp_session *s, const bool *over)
{
	struct queue_env env = {.created = time(NULL)};
	char id[QUEUE_ID_MAX];
	bool *which = calloc(s->nmbox, sizeof(*which));
	int rc = -1;

	env.rcpt = calloc(s->nmbox, sizeof(*env.rcpt));
	if (which == NULL || env.rcpt == NULL)
		goto out;
	snprintf(env.id, sizeof(env.id), "%.*s", QUEUE_ID_LEN, s->id);
	snprintf(env.sender, sizeof(env.sender), "%s", s->sender);
	for (size_t i = 0; i < s->nmbox; i++) {
		if (!over[i])
			continue;
		struct queue_rcpt *r = &env.rcpt[env.nrcpt];
		snprintf(r->addr, sizeof(r->addr), "%s", s->mbox[i]);
		r->state = QR_FAILED;
		snprintf(r->reply, sizeof(r->reply),
			 "552 5.2.2 Mailbox full: the message would exceed "
			 "the recipient's quota");
		which[env.nrcpt++] = true;
	}
	rc = queue_bounce(s->mn->queue, &env, which, DSN_FAILED,
			  s->mn->cfg->hostname, s->datafd, s->datasize, id);
	if (rc == 0) {
		log_info("smtp %s: %zu mailbox(es) over quota: sender "
			 "non-delivery notification %s",
			 s->id, env.nrcpt, id);
		queue_runner_kick(s->mn->runner);
	}
out:
	free(which);
	free(env.rcpt);
	return rc;
}

/* Takes the mailboxes marked in over out of the transaction. */
static void
smtp_quota_drop(struct smtp_session *s, const bool *over)
{
	size_t k = 0;

	for (size_t i = 0; i < s->nmbox; i++)
		if (!over[i])
			memmove(s->mbox[k++], s->mbox[i], DIR_ADDR_MAX);
	s->nmbox = k;
}

bool
smtp_quota_data(struct smtp_session *s, uint64_t size)
{
	bool *over = calloc(s->nmbox ? s->nmbox : 1, sizeof(*over));
	size_t n = 0;

	if (over == NULL)
		return false; /* delivered to all: nothing is lost */
	for (size_t i = 0; i < s->nmbox; i++)
		if (smtp_quota_of(s, s->mbox[i], size) != QUOTA_OK) {
			over[i] = true;
			n++;
		}
	if (n == s->nmbox && n > 0 && s->nremote + s->nfwd == 0) {
		log_info("smtp %s: from=<%s> size=%llu refused: over the "
			 "quota of every recipient",
			 s->id, s->sender, (unsigned long long)size);
		smtp_reply(s, "552 5.2.2 Message would exceed the recipient's "
			      "quota");
		free(over);
		return true;
	}
	/* The others get it: the ones over are bounced, or, when no notice
	 * can go (the null sender, the queue unwritable), get it too, past
	 * their limit, rather than lose it. */
	if (n > 0 && s->sender[0] && smtp_quota_bounce(s, over) == 0)
		smtp_quota_drop(s, over);
	else if (n > 0)
		log_info("smtp %s: delivered to %zu mailbox(es) past their "
			 "quota (no notice can go to <%s>)",
			 s->id, n, s->sender);
	free(over);
	return false;
}
