/* The outbound queue on the shared filesystem (`queue`, default
 * STORE/.queue), which every mta node delivers from, as Postfix's
 * cleanup and qmgr share one queue directory.
 *
 * A queued message is two files in QUEUE/:
 *   ID.msg  the message as it will be sent (the node's Received: line
 *           and any added headers first), CRLF line ends (a bare CR or
 *           LF is made one at enqueue)
 *   ID.env  its envelope, text, rewritten whole (ID.env.tmp, fsync,
 *           rename, directory fsync) after every delivery attempt:
 *     mailswitch-queue 1
 *     created UNIX-SECONDS
 *     sender ADDRESS          (empty: the null sender)
 *     held 0|1
 *     warned 0|1              (the delay notice went; optional, 0)
 *     rcpt ADDRESS STATE ATTEMPTS NEXT-TRY LAST-REPLY   (one per recipient)
 *   STATE is queued, deferred, sent or failed; NEXT-TRY a Unix time (0:
 *   now); LAST-REPLY the rest of the line (may be empty).
 * ID.msg and the first ID.env (written as ID.env.tmp) are fsynced, and
 * the directory, before ID.env.tmp is renamed to ID.env, so an .env
 * always names a whole message; the directory is fsynced again after the
 * rename. Messages are committed this way in batches (queue_commit; the
 * SMTP sessions' through queue_sync.h, off the event loop), one set of
 * directory fsyncs for every message of a batch; the files are the same
 * whichever way they were written. ID is 8 hex digits of the creation
 * time, 5 of microseconds and 6 random ones ("65A1B2C3" "0F3A4" "1C2D9E"):
 * unique across nodes (the .msg is created O_EXCL), sorted by age, and
 * safe in file names and Redis keys.
 *
 * Only the holder of a message's claim (queue_claim.h) rewrites or
 * removes its files; the enqueueing node writes them first, before any
 * runner can see an .env. */
#ifndef NODE_QUEUE_H
#define NODE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#define QUEUE_ID_LEN 19
#define QUEUE_ID_MAX (QUEUE_ID_LEN + 1)
#define QUEUE_ADDR_MAX 256
#define QUEUE_REPLY_MAX 512
#define QUEUE_RCPT_MAX 10000

enum queue_rcpt_state { QR_QUEUED, QR_DEFERRED, QR_SENT, QR_FAILED };

struct queue_rcpt {
	char addr[QUEUE_ADDR_MAX];
	enum queue_rcpt_state state;
	int attempts;
	long long next_try;	     /* Unix seconds; 0: at once */
	char reply[QUEUE_REPLY_MAX]; /* the last reply, one line */
};

struct queue_env {
	char id[QUEUE_ID_MAX];
	long long created;
	char sender[QUEUE_ADDR_MAX];
	bool held;
	bool warned; /* the delay notice was sent */
	size_t nrcpt;
	struct queue_rcpt *rcpt;
};

struct queue;

/* Opens dir (created with its parents, mode 0700, when missing). Returns
 * NULL with errno set. */
struct queue *queue_open(const char *dir);
void queue_close(struct queue *q);
const char *queue_path(const struct queue *q);
/* The directory's fd (for openat). */
int queue_dirfd(const struct queue *q);

/* Queues the message: prefix, then len bytes of fd from offset 0, for
 * rcpts[0..n) from sender (no CR, LF or space in any of them: EINVAL).
 * Returns 0 once ID.msg and ID.env are fsynced, file and directory, with
 * the new ID in id; -1 with errno and nothing left otherwise. */
int queue_enqueue(struct queue *q, int fd, size_t len, const char *prefix,
		  const char *sender, const char *const *rcpts, size_t n,
		  char id[QUEUE_ID_MAX]);

/* queue_enqueue in two halves, for group commit: a message written but
 * not yet durable, ID.msg and ID.env.tmp open and unsynced, no ID.env
 * (no runner sees it yet). */
struct queue_pending {
	char id[QUEUE_ID_MAX];
	int msgfd, envfd; /* open until committed or dropped */
	int err;	  /* queue_commit's verdict: 0, or an errno */
};

/* Writes the message and its envelope as queue_enqueue does, without an
 * fsync. Returns 0 with p filled (commit or drop it), or -1 with errno
 * and nothing left. */
int queue_write(struct queue *q, int fd, size_t len, const char *prefix,
		const char *sender, const char *const *rcpts, size_t n,
		struct queue_pending *p);
/* Makes ps[0..n) durable and visible together: writeback started for
 * every file first (so most of the fsyncs that follow find their file
 * written and the journal committed), each file fsynced and closed, the
 * directory fsynced, each ID.env.tmp renamed to ID.env, the directory
 * fsynced once more for every rename. Sets each one's err: 0, durable
 * and visible; otherwise its files are removed (an .env renamed whose
 * directory fsync failed may have been seen by a runner already: sent,
 * perhaps, as well as refused, never lost). Touches nothing of q but its
 * directory fd, so it may run on a thread of its own. Returns how many
 * failed. */
size_t queue_commit(struct queue *q, struct queue_pending *const *ps, size_t n);
/* A pending message given up: its files closed and removed. */
void queue_drop(struct queue *q, struct queue_pending *p);

/* Reads ID.env. Returns 0 (free with queue_env_free), or -1 with errno
 * (ENOENT: gone; EINVAL: does not parse). */
int queue_env_read(struct queue *q, const char *id, struct queue_env *env);
/* Rewrites ID.env atomically and durably. Returns 0 or -1 with errno. */
int queue_env_write(struct queue *q, const struct queue_env *env);
void queue_env_free(struct queue_env *env);
/* True when every recipient is sent or failed. */
bool queue_env_done(const struct queue_env *env);

/* Removes ID.env, then ID.msg, then fsyncs the directory. */
int queue_remove(struct queue *q, const char *id);
/* The same without the fsync (queue_sync_remove's, which fsyncs the
 * directory later). */
int queue_unlink(struct queue *q, const char *id);
/* fsyncs the directory. */
int queue_dir_sync(struct queue *q);

/* Calls fn with the ID of every queued message (an .env present), in no
 * particular order, until fn returns non-zero. Returns how many. */
size_t queue_each(struct queue *q, int (*fn)(const char *id, void *arg),
		  void *arg);
/* Messages queued and the age in seconds of the oldest (0: none). */
void queue_stats(struct queue *q, size_t *depth, long long *oldest_s);
/* Removes what a node that died between writing a message and its
 * commit left behind: ID.msg or ID.env.tmp with no ID.env, of an ID made
 * more than older_s seconds ago (a commit takes seconds, so none is under
 * way). fn (may be NULL) hears each ID removed. Returns how many. */
size_t queue_sweep(struct queue *q, long long older_s,
		   void (*fn)(const char *id, void *arg), void *arg);

bool queue_id_ok(const char *id);
/* The creation time an ID carries. */
long long queue_id_time(const char *id);
const char *queue_state_name(enum queue_rcpt_state st);

/* Opens ID.msg and takes flock(LOCK_EX | LOCK_NB) on it: the claim that
 * holds while Redis is away. Returns the fd (closing it unlocks), or -1
 * with errno (EWOULDBLOCK: someone holds it; ENOENT: gone). */
int queue_lock(struct queue *q, const char *id);

#endif
