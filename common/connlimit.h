/* Caps on a server's open connections: in total and per client address
 * (an IPv4 address, or an IPv6 /64, as lbd counts sources), in the manner
 * of Dovecot's client_limit and Postfix's
 * smtpd_client_connection_count_limit. The stream (stream.h) holds one
 * ticket per connection: the total counts it from accept, the client's
 * address once the PROXY header (if any) has named the client. A
 * connection whose address is the socket's own peer (no PROXY header)
 * and lies in the exempt networks counts toward the total only: that is
 * a balancer's own traffic (its health checks, or all of it without the
 * PROXY protocol). Loop thread only. */
#ifndef MS_CONNLIMIT_H
#define MS_CONNLIMIT_H

#include <stdbool.h>
#include <sys/socket.h>

struct netlist;
struct connlimit;

/* What one connection holds; all zero: nothing. */
struct connlimit_ticket {
	bool total;	       /* counted in the total */
	bool source;	       /* counted for its address */
	unsigned char key[17]; /* family, then the address (prefix) */
};

/* max_total, max_per_source: 0 for no cap. exempt may be NULL; it must
 * outlive the table. Returns NULL on out of memory. */
struct connlimit *connlimit_new(long max_total, long max_per_source,
				const struct netlist *exempt);
void connlimit_free(struct connlimit *l);
/* New caps (a reload): connections already counted stay; one over a
 * lowered cap ends when it ends, new ones wait for room. */
void connlimit_set_caps(struct connlimit *l, long max_total,
			long max_per_source);

/* A connection was accepted: counts it in t unless the total is at its
 * cap. Returns false when it is (nothing counted). */
bool connlimit_open(struct connlimit *l, struct connlimit_ticket *t);
/* The connection's client is sa (proxied: named by a PROXY header):
 * counts it for that address unless the address is at its cap. Returns
 * false when it is (nothing more counted). */
bool connlimit_source(struct connlimit *l, struct connlimit_ticket *t,
		      const struct sockaddr *sa, bool proxied);
/* The connection is over: gives back what t holds, and clears it. */
void connlimit_close(struct connlimit *l, struct connlimit_ticket *t);

/* Open connections, in total and from sa's address (for tests, logs). */
long connlimit_total(const struct connlimit *l);

#endif
