/* An asynchronous Redis client on a libev loop (hiredis 0.14 and its libev
 * adapter). hiredis 0.14 has no async timeouts, so every command here is
 * bounded by its own deadline (timeout_ms after it was sent, watched by an
 * ev_timer): when it passes the caller gets its callback with reply NULL,
 * and the connection is dropped and retried in the background every
 * reconnect_ms. An idle connection is PINGed every second, so a hung Redis
 * is noticed without traffic. While the connection is down, commands fail
 * at once (callback not called, redis_command() returns 0) instead of
 * waiting.
 * A request can be cancelled: a session that closes cancels what it still
 * waits for, so no callback ever reaches freed memory. */
#ifndef MS_REDIS_H
#define MS_REDIS_H

#include <ev.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>

struct redis;

/* reply: NULL on timeout, error or disconnect; a REDIS_REPLY_ERROR reply
 * is passed as is. The reply is freed after the callback returns. */
typedef void (*redis_cb)(struct redis *r, redisReply *reply, void *arg);

#define REDIS_MAX_SENTINELS 8

struct redis_hostport {
	char host[256];
	int port;
};

/* With sentinels set (nsentinels > 0), host and port are only where to
 * start: before each connect the client asks the sentinels in turn
 * (SENTINEL get-master-addr-by-name master) where the master is, asks
 * again after every disconnect or timeout, after a READONLY answer, and
 * when a sentinel announces +switch-master for master. */
struct redis_opts {
	char host[256];
	int port;
	char password[256]; /* empty: no AUTH */
	int timeout_ms;	    /* per command (default 500) */
	int reconnect_ms;   /* between reconnect attempts (default 500) */
	char master[128];   /* the master's name at the sentinels */
	int nsentinels;
	struct redis_hostport sentinels[REDIS_MAX_SENTINELS];
};

/* Parses "HOST:PORT" (or "HOST", port 6379) into opts. Returns 0 or -1. */
int redis_opts_parse(const char *hostport, struct redis_opts *opts);
/* Parses "HOST:PORT,HOST:PORT" (port 26379 by default) into
 * opts->sentinels, leaving the rest of opts alone. Returns 0 or -1. */
int redis_sentinels_parse(const char *list, struct redis_opts *opts);

/* Starts connecting in the background. Never NULL but on out of memory. */
struct redis *redis_new(struct ev_loop *loop, const struct redis_opts *opts);
/* Closes both connections; no callback is called after it. Best not
 * called from a redis callback; if it is, r goes when that returns. */
void redis_free(struct redis *r);

/* True while connected (and authenticated). */
bool redis_up(const struct redis *r);
/* The loop r runs on (for a caller's own timers). */
struct ev_loop *redis_loop(const struct redis *r);

/* Called each time the connection comes up (first time and after every
 * reconnect), e.g. to reload a cache. */
void redis_on_up(struct redis *r, void (*cb)(struct redis *r, void *arg),
    void *arg);

/* Sends a command (printf-like, hiredis format: %s, %b with length).
 * Returns a request id (> 0), or 0 when it could not be sent (down): then
 * cb is not called. */
uint64_t redis_command(struct redis *r, redis_cb cb, void *arg,
    const char *fmt, ...);
uint64_t redis_commandargv(struct redis *r, redis_cb cb, void *arg, int argc,
    const char **argv, const size_t *argvlen);
/* The callback of request id will not be called. */
void redis_cancel(struct redis *r, uint64_t id);

/* Subscribes to channel on a second connection kept for pub/sub, and
 * resubscribes after reconnects; cb gets each message. cb is also called
 * with msg NULL (len 0) each time the subscription is confirmed, the
 * first time and after every reconnect, because messages published while
 * unsubscribed are lost: a cache reloads then. One callback per channel.
 * The pub/sub connection is dropped and made again with the command
 * connection, so a hung Redis is noticed on both. */
int redis_subscribe(struct redis *r, const char *channel,
    void (*cb)(const char *msg, size_t len, void *arg), void *arg);

/* Removes the on_up hooks and subscription callbacks registered with
 * arg, before arg is freed (the channel stays subscribed, unheard). */
void redis_forget(struct redis *r, void *arg);

#endif
