/* Change notices: "user's mailbox changed", told to every node. The store
 * owns them, as Dovecot's storage tells its listeners: whoever changes a
 * mailbox (a delivery, the spool's late delivery, POP3's deletions,
 * IMAP's own changes) calls notice_changed() once the change is durable;
 * a listener (IMAP, to wake its IDLE sessions) registers at start.
 *
 * The notice goes out on the Redis channel NOTICE_CHANNEL as
 * "user\tmailbox", the user lowercased and the mailbox in its canonical
 * form (maildir_mailbox_canon: "INBOX" whatever its case). Listeners
 * hear every notice from that channel, this node's own included; nothing
 * is told while Redis is away (listeners poll then) and notices
 * published while unsubscribed are lost, so a listener also hears "all
 * may have changed" each time the subscription is (re)confirmed. */
#ifndef NODE_NOTICE_H
#define NODE_NOTICE_H

#include "../../common/redis.h"

#define NOTICE_CHANNEL "ms:imap" /* the contract's name, older than this */
#define NOTICE_LISTENERS_MAX 4

struct notice;

/* Called for each notice heard: user (lowercased) and mailbox
 * (canonical), or both NULL when all may have changed (subscribed
 * again). */
typedef void (*notice_fn)(void *arg, const char *user, const char *mailbox);

/* Notices over r; with r NULL they go nowhere and nothing is heard.
 * Returns NULL on out of memory. */
struct notice *notice_new(struct redis *r);
/* Stops hearing (the channel stays subscribed, unheard) and frees n.
 * NULL is fine. */
void notice_free(struct notice *n);

/* Registers fn: the first listener subscribes to NOTICE_CHANNEL. At most
 * NOTICE_LISTENERS_MAX; n NULL hears nothing. Returns 0, or -1 (too
 * many, or out of memory). */
int notice_listen(struct notice *n, notice_fn fn, void *arg);
/* Removes the listeners registered with arg, before arg is freed. */
void notice_forget(struct notice *n, void *arg);

/* Tells every node that user's mailbox changed. Best effort, not waited
 * for: dropped while Redis is away, or for names too long to be a
 * user's. n NULL is fine. */
void notice_changed(struct notice *n, const char *user, const char *mailbox);

#endif
