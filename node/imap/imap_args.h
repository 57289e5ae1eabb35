/* The arguments of the IMAP commands after login (RFC 3501 6.3-6.4, with
 * UIDPLUS, MOVE and LITERAL+), read whole from the command's cursor into
 * a struct before the handler acts on the store: parse, then act. Each
 * reader takes everything up to the end of the command and returns 0, or
 * -1 with c->err saying why (the handler answers BAD). None touches a
 * session, so the unit tests and tests/fuzz call them on a buffer alone.
 * Names come as the client wrote them; whether the store takes one is the
 * handler's question. SEARCH's program is imap_search.h's. */
#ifndef NODE_IMAP_ARGS_H
#define NODE_IMAP_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "../store/maildir.h"
#include "imap_parse.h"

/* A mailbox name as read: room for a trailing '.' that CREATE drops. */
#define IMAP_ARG_MBOX (MAILDIR_MBOX_MAX + 2)

/* SELECT, EXAMINE, CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE: one name.
 * A new name (CREATE) loses one trailing '.' (RFC 3501 6.3.3: the
 * client means a parent). */
int imap_args_mailbox(struct imap_cur *c, bool new_name,
		      char name[IMAP_ARG_MBOX]);

/* RENAME old new (new as CREATE's). */
struct imap_args_rename {
	char from[IMAP_ARG_MBOX], to[IMAP_ARG_MBOX];
};
int imap_args_rename(struct imap_cur *c, struct imap_args_rename *a);

/* LIST and LSUB: reference and pattern (with the wildcards); LIST
 * (extended) also "RETURN (...)" (RFC 5258) with the return options
 * CHILDREN, SPECIAL-USE (told anyway) and STATUS (items) (LIST-STATUS,
 * RFC 5819) into status (IMAP_STATUS_*, 0: none). */
struct imap_args_list {
	char ref[IMAP_ARG_MBOX], pattern[IMAP_ARG_MBOX];
	unsigned status;
};
int imap_args_list(struct imap_cur *c, bool extended, struct imap_args_list *a);

/* STATUS mailbox (items). */
enum {
	IMAP_STATUS_MESSAGES = 1,
	IMAP_STATUS_RECENT = 2,
	IMAP_STATUS_UIDNEXT = 4,
	IMAP_STATUS_UIDVALIDITY = 8,
	IMAP_STATUS_UNSEEN = 16,
	/* QUOTA (RFC 9208 5.1), a bit of its own, away from what other
	 * extensions add after UNSEEN */
	IMAP_STATUS_DELETED_STORAGE = 1u << 12,
};
struct imap_args_status {
	char mailbox[IMAP_ARG_MBOX];
	unsigned items; /* IMAP_STATUS_* */
};
int imap_args_status(struct imap_cur *c, struct imap_args_status *a);

/* APPEND mailbox [(flags)] ["date-time"] literal. */
struct imap_args_append {
	char mailbox[IMAP_ARG_MBOX];
	unsigned flags; /* imap_flag_list's */
	struct imap_kwlist kw;
	time_t when;	 /* 0: none given */
	const char *msg; /* the literal, in the command buffer */
	size_t len;
};
int imap_args_append(struct imap_cur *c, struct imap_args_append *a);

/* STORE set [+|-]FLAGS[.SILENT] flags. */
enum imap_store_op { IMAP_STORE_SET, IMAP_STORE_ADD, IMAP_STORE_REMOVE };
struct imap_args_store {
	struct imap_seqset set;
	enum imap_store_op op;
	bool silent;
	unsigned flags;
	struct imap_kwlist kw;
};
int imap_args_store(struct imap_cur *c, struct imap_args_store *a);

/* COPY and MOVE: set mailbox. */
struct imap_args_copy {
	struct imap_seqset set;
	char mailbox[IMAP_ARG_MBOX];
};
int imap_args_copy(struct imap_cur *c, struct imap_args_copy *a);

/* FETCH set items. a->f is allocated: imap_fetch_free(&a->f) whatever
 * this returns. */
struct imap_args_fetch {
	struct imap_seqset set;
	struct imap_fetch f;
};
int imap_args_fetch(struct imap_cur *c, struct imap_args_fetch *a);

/* SEARCH's "RETURN (options) " (ESEARCH, RFC 4731) before the search
 * keys, if there: *ret gets IMAP_ESEARCH and the options (none: ALL); 0
 * when absent. The keys are imap_search_parse's. */
enum {
	IMAP_ESEARCH = 1, /* RETURN given: answer ESEARCH */
	IMAP_ESEARCH_MIN = 2,
	IMAP_ESEARCH_MAX = 4,
	IMAP_ESEARCH_COUNT = 8,
	IMAP_ESEARCH_ALL = 16,
};
int imap_args_search_return(struct imap_cur *c, unsigned *ret);

/* EXPUNGE takes nothing; UID EXPUNGE a UID set (*has_set). */
int imap_args_expunge(struct imap_cur *c, bool uid, struct imap_seqset *set,
		      bool *has_set);

#endif
