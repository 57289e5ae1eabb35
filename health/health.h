/* The probe engine: active, protocol-aware health checks of one address,
 * non-blocking on a libev loop, many in flight at once, each with its own
 * timeout; and the rise/fall counter that turns results into a verdict. */
#ifndef MS_HEALTH_H
#define MS_HEALTH_H

#include <ev.h>
#include <stdbool.h>

#include "../common/addr.h"

enum check_type {
	CHECK_NONE,
	CHECK_TCP,
	CHECK_SMTP,
	CHECK_IMAP,
	CHECK_POP3,
	CHECK_HTTP,
	CHECK_SMTPS,
	CHECK_IMAPS,
	CHECK_POP3S,
	CHECK_HTTPS,
	CHECK_SMTP_STARTTLS,
	CHECK_IMAP_STARTTLS,
	CHECK_POP3_STARTTLS,
	CHECK_TYPE_COUNT
};

/* Config names as in DESIGN.md: "none", "tcp", "smtp", ..., "smtps", ...,
 * "smtp-starttls", ... Returns 0, or -1 for an unknown name. */
int check_type_parse(const char *s, enum check_type *out);
const char *check_type_name(enum check_type t);

struct probe_spec {
	enum check_type type;
	int timeout_ms;
	char path[256];	    /* http: the request path, default "/" */
	char user[128];	    /* imap/pop3: log in when not empty */
	char password[128];
	int cert_days;	    /* -starttls: fail when the cert expires sooner */
	char ca_file[256];  /* -starttls: trust anchors; empty: system store */
	int proxy_version;  /* 1 or 2: a PROXY header first (v1 UNKNOWN, v2
			       LOCAL), for nodes that expect one; 0: none */
};

struct probe_result {
	bool ok;
	/* "ok", or why it failed: "connect refused", "timeout", "bad greeting:
	 * -ERR ...", "certificate does not verify: ...", ... */
	char reason[96];
	double latency_ms; /* from connect start to verdict */
};

typedef void (*probe_cb)(void *arg, const struct probe_result *r);

struct probe;

/* Starts one probe of addr on loop. cb is called exactly once with the
 * result unless probe_cancel() is called first; the probe frees itself
 * after cb returns. spec is copied. Returns NULL only on allocation or
 * socket failure, with cb not called. cb never runs inside probe_start().
 * spec->timeout_ms bounds the whole probe, polite ending included (<= 0:
 * 1000). The process must ignore SIGPIPE (TLS writes go through OpenSSL's
 * socket BIO). */
struct probe *probe_start(struct ev_loop *loop, const struct addr *addr,
    const struct probe_spec *spec, probe_cb cb, void *arg);
/* Stops a probe in flight; cb will not be called. */
void probe_cancel(struct probe *p);

/* rise/fall: a node is up after `rise` passes in a row and down after
 * `fall` failures in a row. A node that starts "up pending its first
 * probe" goes down at once if that first probe fails. */
struct health_track {
	int rise, fall;
	bool up;
	bool first_pending;
	int passes; /* consecutive passes while down */
	int fails;  /* consecutive failures while up */
};

void health_track_init(struct health_track *t, int rise, int fall, bool up,
    bool first_pending);
/* Feeds one result. Returns true when the verdict (t->up) changed. */
bool health_track_feed(struct health_track *t, bool ok);

#endif
