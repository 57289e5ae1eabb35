/* The SMTP server (RFC 5321) of a mail node: MX on the `smtp` listener,
 * submission (AUTH required) on `submission` and `smtps`. A session is an
 * explicit state machine; each command is one function in smtp_cmd.c's
 * table, AUTH is smtp_auth.c's, DATA and delivery smtp_session.c's. */
#ifndef NODE_SMTP_H
#define NODE_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/stream.h"
#include "../config/directory.h"
#include "../mailnode.h"
#include "../submit/submit.h"

/* The longest line taken whole; a longer message line comes in pieces. */
#define SMTP_LINE_MAX 4096
#define SMTP_CMD_MAX 512     /* RFC 5321 4.5.3.1.4, with extensions */
#define SMTP_MAX_ERRORS 10   /* then 421 and close */
#define SMTP_CMD_TIMEOUT 300 /* seconds, RFC 5321 4.5.3.2 */
#define SMTP_DATA_TIMEOUT 600

enum smtp_state {
	SMTP_GREETED,	 /* waiting for EHLO/HELO */
	SMTP_READY,	 /* EHLO done, no transaction */
	SMTP_MAIL,	 /* MAIL accepted, no recipient yet */
	SMTP_RCPT,	 /* at least one recipient */
	SMTP_DATA,	 /* reading the message */
	SMTP_AUTH,	 /* reading an AUTH continuation */
	SMTP_AUTH_CHECK, /* the password is being checked: input held */
	SMTP_MILTER,	 /* the milters have the message: input held */
	SMTP_DELIVER,	 /* the queued copies are made durable: input held */
	SMTP_QUIT,
};

struct smtp_session {
	struct mailnode *mn;
	struct stream *st;
	enum node_role role;
	enum smtp_state state;
	char id[24];
	char helo[256];
	bool esmtp;
	int errors;

	/* AUTH */
	char user[DIR_ADDR_MAX]; /* authenticated as; empty: not */
	int auth_mech;		 /* smtp_auth.c's */
	int auth_step;
	uint64_t auth_job; /* the password check in flight; 0: none */
	char auth_login[DIR_ADDR_MAX];

	/* the transaction */
	char sender[DIR_ADDR_MAX];
	uint64_t mail_size;	    /* MAIL's SIZE= (RFC 1870); 0: none */
	struct submit_rcpts rc;	    /* RCPT commands accepted, where they go */
	char (*rcpt)[DIR_ADDR_MAX]; /* their addresses, for the milters */
	size_t nrcptaddr, caprcpt;

	/* DATA */
	int datafd;
	size_t datasize; /* after dot-unstuffing, before added headers */
	char *wbuf;
	size_t wlen;
	bool prev_crlf; /* the last data line ended in CRLF */
	bool data_long; /* in a line over SMTP_LINE_MAX (its pieces) */
	bool data_oversize, data_ioerr;

	/* the milters (smtp_milter.c): NULL when none runs */
	struct smtp_milter *milter;
	/* the delivery waiting for the queue's fsyncs: NULL when none */
	struct submit_job *deliver;
	const char *deliver_folder; /* for its log line */
};

/* Writes a reply line (CRLF added). */
void smtp_reply(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A client error: replies, counts, and ends the session at too many. */
void smtp_error(struct smtp_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Forgets the transaction (RSET, after DATA, STARTTLS). */
void smtp_reset(struct smtp_session *s);
/* True for the submission roles, where AUTH is offered and required. */
bool smtp_is_submission(const struct smtp_session *s);
/* AUTH may run now: TLS is on or the config allows plain text. */
bool smtp_auth_allowed(const struct smtp_session *s);

/* smtp_cmd.c: runs one command line. */
void smtp_command(struct smtp_session *s, char *line, size_t len);
/* smtp_session.c: DATA starts reading the message. */
void smtp_data_begin(struct smtp_session *s);
/* The message is in and checked: queue and deliver it (local copies into
 * each mailbox's folder, NULL: INBOX), answer, end the transaction. When
 * the queue has copies, input is held (SMTP_DELIVER) until they are
 * durable; then the answer, and input resumes. */
void smtp_data_deliver(struct smtp_session *s, const char *folder);
/* Ends the transaction after the answer to DATA; a new session ID. */
void smtp_data_done(struct smtp_session *s);

/* smtp_milter.c: the milters of [node] milters for this message. */
/* True when the message goes to the milters: some are set, and the
 * listener is the MX one (or submission, with milter_submission). */
bool smtp_milter_wanted(const struct smtp_session *s);
/* Hands the message in s->datafd to them; input is held until their
 * verdict is applied (answered, delivered or not, transaction ended). */
void smtp_milter_start(struct smtp_session *s);
/* The session ends: the milters are left (nothing delivered). */
void smtp_milter_cancel(struct smtp_session *s);
/* Keeps an accepted RCPT's address (once) for the milters. Returns 0 or
 * -1 (out of memory). */
int smtp_milter_rcpt(struct smtp_session *s, const char *rcpt);

/* smtp_submit.c: the relay decision (the rest of the submission rules
 * and the delivery are node/submit's, shared with the web role). */
/* True when this client may send to remote domains: authenticated on
 * submission, or on the MX listener from relay_networks (the PROXY
 * header's address counts; a proxy_trusted peer's own never does). */
bool smtp_relay_allowed(const struct smtp_session *s);

/* smtp_auth.c */
void smtp_auth_begin(struct smtp_session *s, char *args);
void smtp_auth_continue(struct smtp_session *s, char *line);

#endif
