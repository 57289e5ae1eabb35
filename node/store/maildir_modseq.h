/* Mod-sequences of a Maildir (CONDSTORE and QRESYNC, RFC 7162): the same
 * on every node, kept on the shared store in one log per mailbox,
 * MAILDIR/mailswitch-modseq, appended under the mailbox's UID flock.
 *
 * A change record is written for every flag change and every expunge
 * (after the renames or unlinks it tells of, before the flock is
 * released); deliveries need none. Record number k (counting every record
 * the log ever had), written while the mailbox's UIDNEXT was N, has the
 * mod-sequence N + k; a message that no record names has u + 1 + k(u),
 * k(u) the records written before its UID u was given (those with N <=
 * u). So mod-sequences rise with every change and every delivery, without
 * a counter to write at delivery, and HIGHESTMODSEQ is UIDNEXT + K (K the
 * records so far): what a node knows from a scan and the log alone.
 *
 * Readers need no lock: they read the log (only whole lines) before they
 * list cur/, and a record is written after its rename, so a record seen
 * is a change seen; a change listed whose record was not yet read is told
 * again later, never missed.
 *
 * The log is bounded: past MAILDIR_MODSEQ_RECORDS records it is rewritten
 * (under the flock) as a snapshot: every message of cur/ with its
 * mod-sequence, the last MAILDIR_VANISHED_KEEP expunged UIDs with
 * theirs, and the floor below which expunges are forgotten (a QRESYNC
 * from before it is told every UID it names that is not there). Lines:
 *   "S k0 n0 floor"        the snapshot's header (records k0, UIDNEXT n0)
 *   "= modseq uid"         a message's mod-sequence at the snapshot
 *   "- modseq uid"         an expunge remembered at the snapshot
 *   "modseq N F|X uidset"  a record: flags changed / expunged
 * A change made by a program that does not write the log (Dovecot on a
 * shared store) is seen by IMAP sessions as now, but no mod-sequence
 * rises for it. */
#ifndef NODE_MAILDIR_MODSEQ_H
#define NODE_MAILDIR_MODSEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "maildir.h"

#define MAILDIR_MODSEQ_FILE "mailswitch-modseq"
#define MAILDIR_MODSEQ_RECORDS 20000 /* records, then a snapshot */
#define MAILDIR_VANISHED_KEEP 10000  /* expunged UIDs a snapshot keeps */

/* A UID's last mod-sequence in the log. */
struct maildir_modseq_ent {
	uint32_t uid;
	bool gone; /* expunged */
	uint64_t modseq;
};

/* What a reader knows of the log: filled by maildir_modseq_read, a
 * little more each call. */
struct maildir_modseq {
	bool keep_uids; /* keep ent[] (a CONDSTORE session); else only the
			   counts for HIGHESTMODSEQ */
	uint64_t k0;	/* records before the snapshot */
	uint32_t n0;	/* UIDNEXT at the snapshot */
	uint64_t floor; /* expunges at or below: forgotten */
	uint64_t k;	/* records so far */
	struct maildir_modseq_ent *ent; /* sorted by uid, one per uid */
	size_t n, cap, sorted;		/* ent[sorted..n): not merged yet */
	uint64_t all;	/* every message is at least this ("*" records) */
	uint32_t *recn; /* N of each record since the snapshot */
	size_t nrec, reccap;
	dev_t dev;
	ino_t ino;
	off_t off; /* read so far */
};

/* Reads what the log of dir gained since the last call (all of it after
 * a rewrite). Returns 0, or -1 with errno (a read error; a missing log
 * is an empty one). */
int maildir_modseq_read(const char *dir, struct maildir_modseq *ms);
void maildir_modseq_free(struct maildir_modseq *ms);

/* HIGHESTMODSEQ, given the UIDNEXT of a scan made after the read. */
uint64_t maildir_modseq_highest(const struct maildir_modseq *ms,
				uint32_t uidnext);
/* The mod-sequence of message uid (keep_uids). */
uint64_t maildir_modseq_of(const struct maildir_modseq *ms, uint32_t uid);
/* Calls fn for every UID expunged with a mod-sequence above since, in
 * UID order. Returns false when since is below the floor (expunges
 * forgotten: fn not called). */
bool maildir_modseq_vanished(const struct maildir_modseq *ms, uint64_t since,
			     void (*fn)(void *arg, uint32_t uid), void *arg);

/* One change of a mailbox: flags of some messages, or expunges, made
 * while its UID flock is held, logged as one record (one mod-sequence)
 * when the flock is released. */
struct maildir_modseq_tx {
	int lockfd;
	char dir[4096];
	uint32_t uidnext;
	uint64_t modseq; /* the record's */
	uint32_t *uids;
	size_t n, cap;
	bool all;     /* a note did not fit: every message */
	bool compact; /* the log is due for a snapshot */
};

/* Takes dir's UID flock and brings ms up to date under it (so that
 * maildir_modseq_of is exact while it is held). Returns 0, or -1 with
 * errno (ETIMEDOUT: the flock stayed taken). */
int maildir_modseq_begin(const char *dir, struct maildir_modseq *ms,
			 struct maildir_modseq_tx *tx);
/* uid changed (its flags, or it was expunged). Out of memory, a flag
 * change is logged as one of every message ("*"), an expunge is not
 * remembered for VANISHED (logged). */
void maildir_modseq_note(struct maildir_modseq_tx *tx, uint32_t uid);
/* Writes the record ('F' flags, 'X' expunged) of what was noted, if
 * anything, durably, rewrites the log when it grew past its bound, and
 * releases the flock. Returns 0 or -1 with errno (the flock is released
 * either way). */
int maildir_modseq_commit(struct maildir_modseq_tx *tx, char op);

#endif
