/* DNS for outbound mail, on the event loop (c-ares driven by libev):
 * where to deliver a domain's mail (RFC 5321 5.1: MX records in
 * preference order, the implicit MX when there is none, null MX RFC 7505
 * refused), and the addresses of a named host (static routes, relayhost).
 * Queries go to `resolver` when set, else to /etc/resolv.conf's. */
#ifndef NODE_QUEUE_DNS_H
#define NODE_QUEUE_DNS_H

#include <ev.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "../../common/addr.h"

#define QUEUE_DEST_MAX 16 /* addresses tried for one destination */

struct queue_dest_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char host[256]; /* the name it came from, for logs and EHLO */
};

/* The outcome of a lookup: status 0 with n > 0 addresses in the order to
 * try; or status 4 (try again later: DNS failed, no address) or 5 (never:
 * the domain does not exist or takes no mail) with an SMTP-like reply. */
struct queue_dest {
	int status;
	char reply[256];
	size_t n;
	struct queue_dest_addr addr[QUEUE_DEST_MAX];
};

struct queue_dns;
struct queue_dns_req;
/* Called once per lookup, never from inside queue_dns_lookup(); dest is
 * valid only during the call. */
typedef void (*queue_dns_cb)(const struct queue_dest *dest, void *arg);

/* resolver: the DNS server to ask, or NULL for the system's. Returns NULL
 * with a reason in err. */
struct queue_dns *queue_dns_new(struct ev_loop *loop,
				const struct addr *resolver, char *err,
				size_t errlen);
/* Ends every lookup without calling back. */
void queue_dns_free(struct queue_dns *d);

/* With mx, the MX hosts of name (or name itself as the implicit MX);
 * without, the host name itself. Every address gets port. Returns the
 * request (for queue_dns_cancel) or NULL on out of memory. */
struct queue_dns_req *queue_dns_lookup(struct queue_dns *d, const char *name,
				       bool mx, int port, queue_dns_cb cb,
				       void *arg);
/* cb will not be called. */
void queue_dns_cancel(struct queue_dns_req *q);

#endif
