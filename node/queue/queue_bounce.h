/* Delivery status notifications (RFC 3464, Postfix's bounce(8)): a
 * multipart/report of report-type delivery-status, with a text part, the
 * message/delivery-status part (one block per recipient: Final-Recipient,
 * Action, Status, Diagnostic-Code) and the original message's headers
 * (text/rfc822-headers), from MAILER-DAEMON@hostname with the null
 * sender, queued for the original envelope sender like any other
 * message (the runner delivers it to the store when the sender is
 * local). Never for a message whose sender is null. */
#ifndef NODE_QUEUE_BOUNCE_H
#define NODE_QUEUE_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>

#include "queue.h"

enum queue_dsn_kind {
	DSN_FAILED,  /* the recipients marked will never get it */
	DSN_DELAYED, /* still being tried (delay_warning_s passed) */
};

/* Queues a notice about env's recipients with which[i] set, quoting the
 * headers of the message in msgfd (msgsize bytes). Returns 0 with the new
 * message's ID in id (nothing for a null sender: id empty), or -1 with
 * errno. */
int queue_bounce(struct queue *q, const struct queue_env *env,
		 const bool *which, enum queue_dsn_kind kind,
		 const char *hostname, int msgfd, size_t msgsize,
		 char id[QUEUE_ID_MAX]);

#endif
