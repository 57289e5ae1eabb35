/* The POP3 server (RFC 1939, CAPA and response codes of RFC 2449, STLS of
 * RFC 2595, AUTH of RFC 5034) on the `pop3` and `pop3s` listeners. A
 * session is an explicit state machine, AUTHORIZATION -> TRANSACTION ->
 * UPDATE; each command is one function in pop3_cmd.c's table; login, the
 * maildrop lock (a Redis lease, lease.h), message transfer and the UPDATE
 * state are pop3_session.c's.
 *
 * The maildrop is the user's INBOX Maildir as listed at login; message n
 * is the n-th by UID, its UIDL "UIDVALIDITY.UID" (maildir.h), the same on
 * every node and forever. Sizes are those of the message as sent: every
 * line CRLF-terminated, before dot-stuffing. */
#ifndef NODE_POP3_H
#define NODE_POP3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/stream.h"
#include "../config/directory.h"
#include "../store/lease.h"
#include "../store/uid_lease.h"
#include "../mailnode.h"
#include "../store/maildir.h"
#include "../store/notice.h"

#define POP3_LINE_MAX 1024	/* a command or SASL line (RFC 2449: 255) */
#define POP3_MAX_ERRORS 20	/* then -ERR and close */
#define POP3_MAX_AUTH_FAILS 3	/* then -ERR and close */
#define POP3_TIMEOUT 600	/* seconds idle (RFC 1939: at least 10 min) */
#define POP3_LOCK_TTL_MS 10000	/* the maildrop lease's ttl */
#define POP3_LOCK_RENEW_MS 3000 /* and how often it is renewed */
#define POP3_LOCK_PREFIX "ms:pop3lock:"

enum pop3_state {
	POP3_AUTHORIZATION, /* before login */
	POP3_SASL,	    /* AUTH: waiting for the client's response */
	POP3_CHECKING,	    /* the password is being checked, input held */
	POP3_LOCKING,	    /* credentials good, taking the maildrop lock */
	POP3_TRANSACTION,   /* logged in, maildrop locked */
	POP3_UPDATE,	    /* QUIT in TRANSACTION: deleting, then closing */
	POP3_DONE,	    /* closing: input is ignored */
};

struct pop3_session {
	struct mailnode *mn;
	struct stream *st;
	enum node_role role;
	enum pop3_state state;
	char id[24];
	int errors;
	int auth_fails;
	uint64_t auth_job; /* the password check of a login; 0: none */

	char user_arg[DIR_ADDR_MAX]; /* USER's argument, for PASS */
	char user[DIR_ADDR_MAX];     /* logged in as (after the lock) */
	char maildir[4096];

	struct lease *lock;
	bool lock_lost;
	struct uid_lease *uid; /* INBOX's UID lease, taken at login */

	/* the maildrop as listed at login */
	struct maildir_list list;
	uint64_t *size; /* as sent; UINT64_MAX: not measured yet */
	bool *deleted;
};

/* Writes "+OK ..." / "-ERR ..." lines (CRLF added). */
void pop3_reply(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A client error: replies, counts, and ends the session at too many. */
void pop3_error(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* USER/PASS and AUTH may run now: TLS is on or the config allows it. */
bool pop3_auth_allowed(const struct pop3_session *s);

/* pop3_cmd.c: runs one command line (not a SASL continuation). */
void pop3_command(struct pop3_session *s, char *line);
/* pop3_cmd.c: the client's answer to AUTH's "+ " challenge. */
void pop3_sasl_response(struct pop3_session *s, char *line);

/* pop3_session.c: checks user/pass off the loop (auth_pool.h) and, when
 * good, takes the maildrop lock and lists it; input is held and the
 * answer comes when that is done. */
void pop3_login(struct pop3_session *s, char *user, const char *pass);
/* The size of message i (0-based) as sent, or -1 if it cannot be read. */
int64_t pop3_msg_size(struct pop3_session *s, size_t i);
/* Sends message i as a multi-line answer after "+OK ...": all of it
 * (body_lines < 0), or its header and body_lines lines of the body.
 * Returns 0, or -1 (nothing sent) when the message cannot be read. */
int pop3_send_msg(struct pop3_session *s, size_t i, long body_lines);
/* QUIT in TRANSACTION: removes the messages marked deleted, answers and
 * closes. */
void pop3_update(struct pop3_session *s);

#endif
