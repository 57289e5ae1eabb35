/* The IMAP4rev1 server (RFC 3501) on the `imap` and `imaps` listeners,
 * with IDLE, UIDPLUS, LITERAL+, NAMESPACE, ID, ENABLE, UNSELECT, MOVE,
 * SPECIAL-USE, CHILDREN, ESEARCH, LIST-STATUS and BINARY, and keywords
 * kept as Dovecot keeps them (imap_keywords.c).
 *
 * A session is an explicit state machine (NOT_AUTH -> AUTH -> SELECTED ->
 * LOGOUT). imap_session.c assembles whole commands from lines and
 * literals and runs them through the command table (imap_cmd.c); each
 * command family has its own file (imap_cmd_*.c). The selected mailbox
 * (imap_mailbox.c) is the list of its messages by sequence number, synced
 * with the Maildir before each answer: what other sessions on any node
 * changed is told as EXISTS, EXPUNGE and FETCH FLAGS. Changes are told
 * to the store's notices (notice.h), so an IDLE session on another node
 * hears of them at once; IDLE also re-checks the Maildir
 * every IMAP_IDLE_POLL seconds, so it hears within a second while Redis
 * is away.
 *
 * Mailbox names are used on disk as the client sends them (modified
 * UTF-7, validated), '.' the hierarchy delimiter (Maildir++). */
#ifndef NODE_IMAP_H
#define NODE_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "../../common/strbuf.h"
#include "../../common/stream.h"
#include "../config/directory.h"
#include "imap_args.h"
#include "imap_condstore.h"
#include "imap_parse.h"
#include "../store/maildir.h"
#include "../store/notice.h"
#include "../mailnode.h"

#define IMAP_LINE_MAX 65536 /* one line of a command */
#define IMAP_CMD_MAX 262144 /* a command without APPEND's message */
#define IMAP_TAG_MAX 64
#define IMAP_MAX_ERRORS 50     /* BAD answers, then BYE */
#define IMAP_MAX_AUTH_FAILS 3  /* then BYE */
#define IMAP_TIMEOUT_NOAUTH 60 /* seconds, before login */
#define IMAP_TIMEOUT 1800      /* logged in (RFC 3501: at least 30 min) */
#define IMAP_IDLE_POLL 1.0     /* seconds between Maildir checks in IDLE */
#define IMAP_OUT_SLICE 262144  /* FETCH output queued before waiting */
#define IMAP_SPECIAL_MARK "mailswitch-specialuse"
/* The NO of FETCH and STORE when some messages asked for were expunged
 * by another session (RFC 5530); the others are done. */
#define IMAP_EXPUNGEISSUED                                                     \
	"[EXPUNGEISSUED] Some messages were expunged by another session"

enum imap_state {
	IMAP_NOT_AUTH,
	IMAP_AUTH,
	IMAP_SELECTED,
	IMAP_LOGOUT, /* closing: input is ignored */
};

/* What the next input is for, besides a new command. */
enum imap_wait {
	IMAP_W_COMMAND, /* lines (and literals) of a command */
	IMAP_W_SASL,	/* AUTHENTICATE's response line */
	IMAP_W_IDLE,	/* IDLE: waiting for DONE */
	IMAP_W_BUSY,	/* a long answer is going out, or a password is
			   being checked: input held */
};

/* One message of the selected mailbox: small (24 bytes), its file name
 * in the mailbox's name arena (imap_msg_name). */
struct imap_msg {
	uint32_t uid;
	unsigned flags; /* IMAP_F_*, \Recent included */
	uint64_t size;	/* RFC822.SIZE as the name gives it; 0: unknown */
	uint32_t name;	/* offset of the file name in names */
	bool gone;	/* expunged elsewhere, not told yet */
};

struct imap_mailbox {
	char name[MAILDIR_MBOX_MAX + 1]; /* "INBOX" or the folder name */
	char *dir;     /* its Maildir (owned; imap_mailbox_close frees it) */
	bool readonly; /* EXAMINE */
	uint32_t uidvalidity, uidnext;
	struct imap_msg *msg; /* sequence order: msg[0] is message 1 */
	size_t n, cap;
	char *names; /* file names in cur/, NUL-terminated, one after another */
	size_t names_len, names_cap, names_dead; /* dead: left by renames */
	size_t recent;
	uint32_t recent_from, recent_to;      /* UIDs in [from, to) are \Recent
						 to us (the last claim) */
	struct timespec cur_mtime, new_mtime; /* at the last scan */
	bool changed; /* announced or seen changing: scan at the next sync */
	struct maildir_keywords *kw; /* NULL until it has some */
	ino_t kw_ino;		     /* dovecot-keywords when last read */
	off_t kw_size;
	struct timespec kw_mtime;
	size_t pending; /* waiting for UIDs at the last scan */
};

/* A message read from the store for FETCH and SEARCH: its bytes with
 * every line ending in CRLF, and its MIME structure when asked for. */
struct imap_loaded {
	uint32_t uid;
	char *data;
	size_t len;
	struct imap_mime *mime; /* NULL until needed */
};

struct imap_session;
struct imap_mime;
struct uid_lease;

/* A FETCH whose answer goes out in slices (imap_cmd_fetch.c). */
struct imap_fetch_job;

struct imap_session {
	struct mailnode *mn;
	struct stream *st;
	enum node_role role;
	enum imap_state state;
	enum imap_wait wait;
	char id[24];
	int errors;
	int auth_fails;
	uint64_t auth_job; /* the password check of a login; 0: none */

	/* the command being assembled */
	struct strbuf cmd;
	char tag[IMAP_TAG_MAX + 1]; /* of a command waiting on input */
	bool literal_drop;	    /* an oversize literal is being dropped */

	char user[DIR_ADDR_MAX];
	char *userdir; /* the user's Maildir, from login on (owned) */

	struct imap_mailbox box; /* valid in IMAP_SELECTED */
	struct imap_loaded cache;
	struct imap_modseq modseq; /* CONDSTORE, QRESYNC (imap_condstore.h) */

	struct imap_fetch_job *job; /* a FETCH going out in slices */
	ev_timer idle_poll;	    /* IDLE's Maildir checks */

	/* UIDs given under a mailbox's lease (imap_uid.c) */
	struct uid_lease *uid;		    /* taken or being taken */
	char uid_box[MAILDIR_MBOX_MAX + 1]; /* of this mailbox */
	struct maildir_counter *uid_ctr;    /* settled: its counter */
	bool uid_rerun;			    /* the command runs again */
	enum imap_wait uid_wait;	    /* input's wait before */
	struct maildir_counter uid_alone;   /* no lease: none */

	struct imap_session *next, *prev; /* the node's list of sessions */
};

/* A parsed command line as the handlers see it. */
struct imap_cmd {
	const char *tag;
	const char *name;    /* uppercased */
	bool uid;	     /* "UID FETCH" and friends */
	struct imap_cur cur; /* at the arguments (after the name's space) */
};

/* ---- imap_session.c: answers and session life ---- */

/* "* ..." with CRLF added. */
void imap_untagged(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "TAG OK ...", "TAG NO ...", "TAG BAD ..." (BAD counts as an error,
 * and too many end the session). */
void imap_ok(struct imap_session *s, const struct imap_cmd *c, const char *fmt,
	     ...) __attribute__((format(printf, 3, 4)));
void imap_no(struct imap_session *s, const struct imap_cmd *c, const char *fmt,
	     ...) __attribute__((format(printf, 3, 4)));
void imap_bad(struct imap_session *s, const struct imap_cmd *c, const char *fmt,
	      ...) __attribute__((format(printf, 3, 4)));
/* Raw bytes (a literal's content, a built answer). */
void imap_write(struct imap_session *s, const void *data, size_t len);
/* An IMAP string for an answer: quoted when it can be, a literal when it
 * holds CR, LF, NUL or 8-bit bytes. Returns 0 or -1 (sb full). */
int imap_append_string(struct strbuf *sb, const char *str, size_t len);
/* LOGOUT, BYE on errors: "* BYE text", then close. */
void imap_bye(struct imap_session *s, const char *why, const char *text);
/* LOGIN and AUTHENTICATE: may run now (TLS on, or the config allows). */
bool imap_auth_allowed(const struct imap_session *s);
/* The CAPABILITY list for the session's state, in buf (of
 * IMAP_CAPS_MAX bytes; not kept in the session: an idle one is small). */
#define IMAP_CAPS_MAX 512
const char *imap_capabilities(const struct imap_session *s, char *buf);
/* Checks credentials off the loop (auth_pool.h), input held meanwhile;
 * then, on success, the session is AUTH, the user's Maildir exists with
 * its special-use folders, and the OK is sent (c's tag must be s->tag's). */
void imap_login(struct imap_session *s, const struct imap_cmd *c, char *user,
		const char *pass);
/* Input held while a long answer goes out / taken again. */
void imap_hold(struct imap_session *s);
void imap_release(struct imap_session *s);
/* Runs the assembled command (s->cmd): first, in the selected state, UIDs
 * for mail waiting (imap_uid_gate); again from the start when a handler
 * asked for a lease (imap_uid_need); then s->cmd is emptied. */
void imap_dispatch(struct imap_session *s);

/* ---- imap_uid.c: UIDs under the mailbox's lease (uid_lease.h) ----
 * The session waits for a lease with its input held, and goes back to
 * what it waited for (command, IDLE) after. */

/* Before a command in the selected state: when the mailbox has mail
 * waiting for UIDs (imap_mailbox_waiting), takes its lease, gives the
 * UIDs, tells the client, then runs the command again. Returns true when
 * the command was put off so. */
bool imap_uid_gate(struct imap_session *s);
/* For a handler about to give UIDs in mailbox (APPEND, COPY/MOVE,
 * SELECT): the counter for maildir_append/copy/assign once the lease is
 * settled (held, or given up on: flock alone); else NULL, after starting
 * to take it for about n messages: the handler returns without an answer
 * and runs again, from the start, when it is settled. */
struct maildir_counter *imap_uid_need(struct imap_session *s,
				      const char *mailbox, size_t n);
/* A handler's lease asked and not settled: the command waits. */
bool imap_uid_waiting(const struct imap_session *s);
/* The command is done: its lease is given back. */
void imap_uid_end(struct imap_session *s);
/* IDLE: UIDs for what the last sync found waiting, told when given. */
void imap_uid_idle(struct imap_session *s);

/* ---- imap_cmd.c: the command table ---- */

/* Runs one whole command (the tag and name already split off). */
void imap_command(struct imap_session *s, struct imap_cmd *c);
/* The client's AUTHENTICATE response line. */
void imap_sasl_response(struct imap_session *s, char *line);
/* IDLE's "DONE" (or anything else, which is BAD). */
void imap_idle_done(struct imap_session *s, const char *line);

/* ---- the command handlers, one family per file ---- */

typedef void imap_handler(struct imap_session *s, struct imap_cmd *c);
/* imap_cmd.c */
imap_handler imap_cmd_capability, imap_cmd_noop, imap_cmd_logout, imap_cmd_id,
    imap_cmd_namespace, imap_cmd_idle;
/* imap_cmd_enable.c: ENABLE (RFC 5161) */
imap_handler imap_cmd_enable;
/* imap_cmd_auth.c */
imap_handler imap_cmd_starttls, imap_cmd_login, imap_cmd_authenticate;
/* imap_cmd_select.c: SELECT and EXAMINE, CLOSE, UNSELECT, EXPUNGE, CHECK */
imap_handler imap_cmd_select, imap_cmd_close, imap_cmd_unselect,
    imap_cmd_expunge, imap_cmd_check;
/* imap_cmd_folder.c: CREATE, DELETE, RENAME, (UN)SUBSCRIBE, STATUS */
imap_handler imap_cmd_create, imap_cmd_delete, imap_cmd_rename,
    imap_cmd_subscribe, imap_cmd_status;
/* "* STATUS name (items)" of mailbox name (STATUS, LIST-STATUS).
 * Returns 0, or -1 with errno (ENOENT: no such mailbox), nothing told. */
int imap_status_tell(struct imap_session *s, const char *name, unsigned items);
/* imap_cmd_list.c: LIST and LSUB */
imap_handler imap_cmd_list;
/* imap_cmd_fetch.c */
imap_handler imap_cmd_fetch;
void imap_fetch_continue(struct imap_session *s);
void imap_fetch_abort(struct imap_session *s);
/* imap_cmd_store.c */
imap_handler imap_cmd_store;
/* imap_cmd_search.c */
imap_handler imap_cmd_search;
struct imap_search;
/* Runs prog over the selected mailbox (its KEYWORD keys bound to the
 * mailbox's keywords first): match[i] (b->n of them) for
 * message i; *maxmod the highest mod-sequence matched when prog has a
 * MODSEQ key (else 0). */
void imap_search_run(struct imap_session *s, struct imap_search *prog,
		     bool *match, uint64_t *maxmod);
/* imap_esearch.c: ESEARCH (RFC 4731) */
/* The ESEARCH answer (without "* ") for the rising numbers v[0..n).
 * Returns 0 or -1 (sb full). */
int imap_esearch_answer(struct strbuf *sb, const char *tag, bool uid,
			unsigned ret, const uint32_t *v, size_t n);
/* v[0..n) (rising) as a compact sequence set: "3:5,9". Returns 0 or -1. */
int imap_seqset_format(struct strbuf *sb, const uint32_t *v, size_t n);
/* imap_cmd_copy.c: COPY and MOVE */
imap_handler imap_cmd_copy;
/* imap_cmd_sort.c: SORT and THREAD (RFC 5256) */
imap_handler imap_cmd_sort, imap_cmd_thread;
/* imap_cmd_append.c */
imap_handler imap_cmd_append;
/* imap_cmd_quota.c: QUOTA (RFC 9208) */
imap_handler imap_cmd_getquotaroot, imap_cmd_getquota, imap_cmd_setquota;
/* APPEND and COPY: true when bytes more would take the session's user
 * over their quota (or they are over already): NO [OVERQUOTA]. */
bool imap_quota_refuses(struct imap_session *s, uint64_t bytes);
/* STATUS DELETED-STORAGE: what an EXPUNGE of l would free, in units of
 * 1024 octets (rounded up: never below it, RFC 9208 5.1). */
uint64_t imap_quota_deleted_storage(const struct maildir_list *l);

/* ---- imap_mailbox.c: the selected mailbox ---- */

/* The Maildir of mailbox (modified UTF-7 name, "INBOX" any case) for the
 * session's user. Returns 0 or -1 (EINVAL: a name that could leave the
 * store or is not valid modified UTF-7). */
int imap_mailbox_dir(const struct imap_session *s, const char *mailbox,
		     char *out, size_t outlen);
/* Opens mailbox as the selected one (readonly for EXAMINE); answers
 * nothing. Returns 0, or -1 with errno (ENOENT: no such mailbox). */
int imap_mailbox_open(struct imap_session *s, const char *mailbox,
		      bool readonly);
void imap_mailbox_close(struct imap_session *s);
/* Whether the selected mailbox has mail waiting for UIDs: what the last
 * scan counted, or new/ changed and holds a file. */
bool imap_mailbox_waiting(struct imap_session *s);
/* Gives UIDs to what waits in the session's mailbox, under its lease
 * (ctr from imap_uid_need), and merges them in, told as
 * imap_mailbox_sync tells (when selected). */
void imap_mailbox_assign(struct imap_session *s, struct maildir_counter *ctr,
			 bool expunges);
/* Brings the selected mailbox up to date with the Maildir and tells the
 * client: "* n EXISTS", "* n RECENT", "* n FETCH (FLAGS (..) UID u)" for
 * changed flags and, when expunges may be told (not during FETCH, STORE
 * or SEARCH, RFC 3501 7.4.1), "* n EXPUNGE". force: scan even if the
 * directories look unchanged. */
void imap_mailbox_sync(struct imap_session *s, bool expunges, bool force);
/* Message i's file name in cur/, valid until the next sync. */
const char *imap_msg_name(const struct imap_mailbox *b, size_t i);
/* Message i as the maildir_* functions take it (*out), and back after
 * one of them changed it (a new name, new flags); when memory is short
 * the old name stays (it is found again by UID when opened). */
void imap_msg_get(const struct imap_mailbox *b, size_t i,
		  struct maildir_msg *out);
void imap_msg_put(struct imap_mailbox *b, size_t i,
		  const struct maildir_msg *m);
/* The 0-based index of the message with uid, or -1. */
long imap_mailbox_find_uid(const struct imap_mailbox *b, uint32_t uid);
/* Whether message index i is in set, which names sequence numbers or,
 * with uid, UIDs ('*' is the last message either way). */
bool imap_mailbox_in_set(const struct imap_mailbox *b, size_t i,
			 const struct imap_seqset *set, bool uid);
/* Reads message i (0-based) into s->cache (kept for the next call on the
 * same message); with mime, parses its structure too. Returns the loaded
 * message, or NULL (errno ENOENT when the file is gone). */
struct imap_loaded *imap_mailbox_load(struct imap_session *s, size_t i,
				      bool mime);
void imap_loaded_free(struct imap_loaded *l);
/* The header section of message i (CRLF lines, its blank line included):
 * from the node's header cache (imap_cache.h), else read from the file's
 * start and kept there, else (too large to keep, cache off) from the
 * whole message loaded as imap_mailbox_load does. *hdr stays valid until
 * the next call of this or imap_mailbox_load. Returns 0, or -1 with errno
 * (ENOENT: the file is gone). */
int imap_mailbox_header(struct imap_session *s, size_t i, const char **hdr,
			size_t *len);
/* data[0..len) with every bare LF made CRLF, in a new NUL-terminated
 * buffer (*out NULL, nothing allocated, when none needed it). Returns 0
 * or -1 (out of memory). */
int imap_crlf(const char *data, size_t len, char **out, size_t *outlen);
/* Adds the flags add to message i and takes del away (IMAP_F_*, \Recent
 * ignored), as its flags are on the store now, whatever this session last
 * saw (maildir_change_flags): changes other sessions made to other flags
 * stay. Message i's flags become the store's; *renamed (NULL: not
 * wanted) tells whether the store changed, to be announced. Returns 0 or
 * -1 with errno (ENOENT: expunged elsewhere). */
int imap_mailbox_change_flags(struct imap_session *s, size_t i, unsigned add,
			      unsigned del, bool *renamed);

/* ---- imap_keywords.c: the selected mailbox's keywords ---- */

/* mask's system flags and keywords by name ("\Seen $Junk"), into sb.
 * Returns 0 or -1 (sb full). */
int imap_flags_tell(const struct imap_mailbox *b, unsigned mask,
		    struct strbuf *sb);
/* "* FLAGS (...)" and "* OK [PERMANENTFLAGS (...)]": the system flags
 * and the mailbox's keywords, \* while a letter is left for a new one. */
void imap_keywords_announce(struct imap_session *s);
/* The flag bits of the keywords the mailbox names (a letter without a
 * name in dovecot-keywords is not shown, and FLAGS keeps it). */
unsigned imap_keywords_named(const struct imap_mailbox *b);
/* Reads the mailbox's keywords again when their file changed; with tell,
 * announces them when they differ from what the client was told. */
void imap_keywords_sync(struct imap_session *s, bool tell);
/* The flag bits (IMAP_F_KW) of list's keywords in the mailbox at dir;
 * with create, those it lacks are added to it (told when it is the
 * selected one). Without create, keywords it lacks have no bit. Returns
 * 0, or -1 with errno (ENOSPC: no letter left for a new keyword). */
int imap_keywords_bits(struct imap_session *s, const char *dir,
		       const struct imap_kwlist *list, bool create,
		       unsigned *mask);

/* ---- the node's IMAP state ---- */

/* Makes the node's header cache (cfg->imap_header_cache bytes) and kept
 * listings, listens to the store's notices (notice.h) and keeps the
 * list of sessions that may need waking. Returns 0 or -1. */
int imap_node_init(struct mailnode *mn);
void imap_node_free(struct mailnode *mn);

#endif
