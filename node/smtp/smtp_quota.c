/* Quotas at SMTP (smtp.h): a recipient already full is told to come back
 * at RCPT (452 4.2.2), and one that MAIL's SIZE would take over is
 * refused there (552 5.2.2, RFC 1870 6.1), each on its own. At the end
 * of DATA one reply answers for every recipient, so a message that would
 * take some of them over is refused (552 5.2.2) only when it would take
 * every local one over and has nobody else to go to; otherwise it is
 * delivered to all, and those it takes over are full from then on. */
#include <stdio.h>

#include "../../common/log.h"
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

bool
smtp_quota_data_refused(struct smtp_session *s, uint64_t size)
{
	size_t over = 0;

	for (size_t i = 0; i < s->nmbox; i++)
		if (smtp_quota_of(s, s->mbox[i], size) != QUOTA_OK)
			over++;
	if (over == 0)
		return false;
	if (over < s->nmbox || s->nremote + s->nfwd > 0) {
		log_info("smtp %s: delivered to %zu mailbox(es) past their "
			 "quota (one reply for every recipient)",
			 s->id, over);
		return false;
	}
	log_info("smtp %s: from=<%s> size=%llu refused: over the quota of "
		 "every recipient",
		 s->id, s->sender, (unsigned long long)size);
	smtp_reply(s, "552 5.2.2 Message would exceed the recipient's quota");
	return true;
}
