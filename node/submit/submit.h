/* A message's way out of a node, the same for SMTP (MX and submission)
 * and the web role's POST /api/send: whose sender addresses a user may
 * use, where each recipient goes (local mailboxes, the outbound queue,
 * forwarding aliases), the headers submission adds (RFC 6409 8.2-8.3),
 * and the delivery itself: the queue first, then the store (or the spool
 * for what the store refused), so a failure leaves nothing behind. */
#ifndef NODE_SUBMIT_H
#define NODE_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "../config/directory.h"
#include "../mailnode.h"
#include "../store/quota.h"

/* The recipients of one message, each list without duplicates. */
struct submit_rcpts {
	size_t nrcpt;		    /* recipients accepted */
	char (*mbox)[DIR_ADDR_MAX]; /* local mailboxes they resolve to */
	size_t nmbox, capmbox;
	char (*remote)[DIR_ADDR_MAX]; /* recipients for the queue */
	size_t nremote, capremote;
	char (*fwd)[DIR_ADDR_MAX]; /* alias targets elsewhere (SRS) */
	size_t nfwd, capfwd;
	char fwd_domain[DIR_ADDR_MAX]; /* the first forwarding alias's */
};

enum submit_rcpt_result {
	SUBMIT_RCPT_OK,
	SUBMIT_RCPT_NOT_LOADED,	  /* the directory is not loaded yet */
	SUBMIT_RCPT_RELAY_DENIED, /* remote, and relay_allowed false */
	SUBMIT_RCPT_UNKNOWN,	  /* local domain, no such user */
	SUBMIT_RCPT_FULL,	  /* a mailbox of it is at its quota already */
	SUBMIT_RCPT_TOO_BIG,	  /* size would take a mailbox over its quota */
	SUBMIT_RCPT_NOMEM,
};

/* Forgets the recipients, keeping the lists' memory; free releases it. */
void submit_reset(struct submit_rcpts *r);
void submit_free(struct submit_rcpts *r);

/* Submission: sender is the user's own address or an alias that leads to
 * the user. */
bool submit_sender_allowed(struct directory *dir, const char *user,
			   const char *sender);

/* Adds one recipient address (syntax already checked): a local one's
 * mailboxes and its forwarding targets outside the local domains (an
 * SRS0 address of ours is turned back into its original, a bounce to
 * forwarded mail); a remote one, when relay_allowed, for the queue.
 * A local one whose mailboxes have no room for size bytes (0: the size
 * is not known yet) is refused whole (submit_quota.c). */
enum submit_rcpt_result submit_add_rcpt(struct mailnode *mn,
					struct submit_rcpts *r,
					const char *rcpt, bool relay_allowed,
					uint64_t size);

/* submit_quota.c: what size more bytes would do to a local mailbox. */
enum quota_verdict submit_quota_of(struct mailnode *mn, const char *mailbox,
				   uint64_t size);

/* A message taken in, for what is done with it at its end. */
struct submit_message {
	const char *id;	    /* its queue ID's start, the session's ID */
	const char *sender; /* "" for the null sender */
	const char *logid;  /* "smtp ID", in logs */
	int fd;		    /* the data */
	size_t datasize;
};

/* At the end of the data, for a message of size bytes as stored: true
 * when it would take every local mailbox of r over its quota and has
 * nobody else to go to (refuse it: 552 5.2.2). Otherwise false, the
 * mailboxes it would take over taken out of r and a non-delivery notice
 * queued to the sender for them (when none can go, they stay and get it
 * past their limit). */
bool submit_quota_data(struct mailnode *mn, struct submit_rcpts *r,
		       const struct submit_message *m, uint64_t size);

/* The Message-ID: and Date: lines (CRLF each) that the message in fd
 * (size bytes) lacks, "" when it has both; id makes the Message-ID
 * unique with the time. */
void submit_added_headers(struct mailnode *mn, int fd, size_t size,
			  const char *id, char *out, size_t outlen);

/* Delivers the message in fd (size bytes), each copy after prefix (for
 * the local copies; the queued ones get prefix without its first line,
 * the Return-Path:, which the final delivery adds): the remote and
 * forwarded recipients into the shared queue (durably; this node's
 * runner is told), then the local mailboxes into the store, or the spool
 * for what the store refused; a local failure takes the queued copies
 * back. Returns "delivered", "spooled" or "queued" with the queue ID in
 * qid ("" when none), or NULL when the message could not be taken
 * (logged with logid). */
const char *submit_deliver(struct mailnode *mn, const struct submit_rcpts *r,
			   const char *sender, int fd, size_t size,
			   const char *prefix, const char *logid, char *qid,
			   size_t qidlen);
/* The same with the local copies into each mailbox's folder `folder`
 * ("Junk": a milter's spam; made when missing), NULL: INBOX. */
const char *submit_deliver_to(struct mailnode *mn, const struct submit_rcpts *r,
			      const char *sender, int fd, size_t size,
			      const char *prefix, const char *folder,
			      const char *logid, char *qid, size_t qidlen);

/* The same off the event loop for SMTP's sessions, where the queued
 * copies' fsyncs would hold every other session: the copies are written,
 * made durable by the queue's syncing thread together with every other
 * session's (queue_sync.h), and then the local copies delivered; cb gets
 * arg, what submit_deliver_to returns and the queue ID ("" when none).
 * Returns the job, with r and fd to stay as they are until cb; or NULL
 * once cb has been called already (nothing to queue, or a failure). */
struct submit_job;
typedef void (*submit_done_cb)(void *arg, const char *how, const char *qid);
struct submit_job *submit_deliver_start(struct mailnode *mn,
					const struct submit_rcpts *r,
					const char *sender, int fd, size_t size,
					const char *prefix, const char *folder,
					const char *logid, submit_done_cb cb,
					void *arg);
/* The caller goes away: cb will not be called. Queued copies already
 * being made durable stay queued (a runner's scan delivers them), the
 * local copies are not delivered; the client, which saw no 250, sends
 * again. NULL is ignored. */
void submit_deliver_cancel(struct submit_job *j);

#endif
