/* CONDSTORE and QRESYNC (RFC 7162) in the IMAP session: mod-sequences
 * from the store's log (maildir_modseq.h), ENABLE, SELECT's parameters,
 * FETCH MODSEQ and CHANGEDSINCE, STORE UNCHANGEDSINCE, VANISHED.
 *
 * Every session logs its flag changes and expunges (whether or not it
 * enabled CONDSTORE), so that every other session, on any node, sees the
 * mod-sequences rise. A session that enabled CONDSTORE (ENABLE, SELECT
 * (CONDSTORE), FETCH MODSEQ, CHANGEDSINCE, UNCHANGEDSINCE) keeps every
 * message's mod-sequence while a mailbox is selected; the others keep
 * only what HIGHESTMODSEQ needs. */
#ifndef NODE_IMAP_CONDSTORE_H
#define NODE_IMAP_CONDSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../store/maildir_modseq.h"
#include "imap_parse.h"

struct imap_session;
struct imap_cmd;
struct strbuf;

/* The session's part (struct imap_session's `modseq`). */
struct imap_modseq {
	bool condstore, qresync;      /* enabled */
	struct maildir_modseq log;    /* of the selected mailbox */
	struct maildir_modseq_tx *tx; /* a change being made: its record */
	uint32_t *later; /* flags changed outside one: logged at the end of
			    the command (imap_modseq_flush) */
	size_t nlater, caplater;
};

/* ---- arguments (imap_args_modseq.c) ---- */

#define IMAP_KNOWN_UIDS_MAX IMAP_SEQSET_MAX

/* SELECT/EXAMINE name [(CONDSTORE)] [(QRESYNC (uidvalidity modseq
 * [known-uids [(seqs uids)]]))]: the seq-match data is read and not
 * used (RFC 7162 3.2.5.2 makes it a hint). */
struct imap_args_select {
	bool condstore, qresync;
	uint32_t uidvalidity;
	uint64_t modseq;
	bool has_known;
	struct imap_seqset known;
};
int imap_args_select(struct imap_cur *c, char *name, size_t namelen,
		     struct imap_args_select *a);

/* FETCH's modifiers "(CHANGEDSINCE n [VANISHED])". */
struct imap_fetch_mods {
	bool changedsince, vanished;
	uint64_t since;
};
int imap_args_fetch_mods(struct imap_cur *c, struct imap_fetch_mods *m);

/* STORE's modifiers "(UNCHANGEDSINCE n)". */
struct imap_store_mods {
	bool unchangedsince;
	uint64_t since;
};
int imap_args_store_mods(struct imap_cur *c, struct imap_store_mods *m);

/* A mod-sequence value (1 to 2^63-1; zero too with zero_ok). */
int imap_modseq_number(struct imap_cur *c, bool zero_ok, uint64_t *v);

/* ---- the session (imap_condstore.c) ---- */

/* Numbers (UIDs, sequence numbers) in rising order gathered into
 * "a:b,c" ranges in sb; flush ends the last range; n counts ranges. */
struct imap_uidlist {
	struct strbuf *sb;
	uint32_t lo, hi;
	bool open;
	size_t n;
};
void imap_uidlist_add(void *list, uint32_t v);
void imap_uidlist_flush(struct imap_uidlist *u);

/* Turns CONDSTORE on (and QRESYNC, with qresync); the selected mailbox
 * then keeps every message's mod-sequence. */
void imap_condstore_enable(struct imap_session *s, bool qresync);
/* The selected mailbox opens / closes. open reads the log before the
 * scan of cur/ (maildir_modseq.h's order). */
void imap_modseq_open(struct imap_session *s);
void imap_modseq_close(struct imap_session *s);
/* Before a sync's scan: reads what the log gained (CONDSTORE on: the
 * others read it when they need HIGHESTMODSEQ). Returns true when it
 * gained records (the sync then scans even if cur/ looks unchanged). */
bool imap_modseq_refresh(struct imap_session *s);
uint64_t imap_modseq_highest(const struct imap_session *s);
uint64_t imap_modseq_of(const struct imap_session *s, size_t i);
/* " MODSEQ (n)" for message i when CONDSTORE is on, else "": for the
 * FETCH answers that tell flags. buf holds it. */
const char *imap_modseq_item(const struct imap_session *s, size_t i,
			     char buf[40]);

/* A change of the selected mailbox as one record: begin takes the
 * mailbox's flock, changes made meanwhile (imap_modseq_changed) are
 * noted, commit logs them ('F' flags, 'X' expunges) and releases it.
 * Returns 0 or -1 (the flock: the change is then made unlogged). */
int imap_modseq_begin(struct imap_session *s);
void imap_modseq_commit(struct imap_session *s, char op);
/* Message uid's flags changed on the store (renamed), or it was
 * expunged: noted in the change begun; else an expunge is logged at
 * once, and flags (the \Seen a FETCH sets) when the command ends. */
void imap_modseq_changed(struct imap_session *s, uint32_t uid, char op);
/* Logs the flag changes kept for later as one record (FETCH's end, the
 * mailbox closing). Others see the renames before the record, which is
 * the safe order: a mod-sequence is never newer than the flags. */
void imap_modseq_flush(struct imap_session *s);

/* SELECT's answer for CONDSTORE and QRESYNC (before its tagged OK):
 * HIGHESTMODSEQ, and with QRESYNC of the same UIDVALIDITY, VANISHED
 * (EARLIER) and the FETCH of every message changed since. */
void imap_condstore_selected(struct imap_session *s,
			     const struct imap_args_select *a);
/* The sync found messages gone: "* VANISHED uids" (QRESYNC) instead of
 * EXPUNGEs. Returns whether any was told. */
bool imap_qresync_tell_gone(struct imap_session *s);
/* UID FETCH ... (CHANGEDSINCE n VANISHED): the UIDs of set expunged
 * since, as "* VANISHED (EARLIER) ...". */
void imap_qresync_fetch_vanished(struct imap_session *s,
				 const struct imap_seqset *set, uint64_t since);
/* STATUS's HIGHESTMODSEQ: the records of dir's log, read before its
 * scan (0 when unreadable), then HIGHESTMODSEQ is the scan's UIDNEXT
 * plus that. */
uint64_t imap_modseq_records(const char *dir);

#endif
