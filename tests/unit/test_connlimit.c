/* common/connlimit: the total, the per-address cap (IPv4, v4-mapped
 * IPv6 as IPv4, IPv6 by /64), exempt peers, and everything given back. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "../../common/connlimit.h"
#include "../../common/stream.h"
#include "sockaddr_fixture.h"

/* Opens one connection from text; returns whether it got in. */
static bool
take(struct connlimit *l, struct connlimit_ticket *t, const char *text,
     bool proxied)
{
	struct sockaddr_storage ss = sa(text);
	memset(t, 0, sizeof(*t));
	if (!connlimit_open(l, t))
		return false;
	if (!connlimit_source(l, t, (struct sockaddr *)&ss, proxied)) {
		connlimit_close(l, t);
		return false;
	}
	return true;
}

Test(connlimit, per_address_and_ipv6_prefix)
{
	struct connlimit *l = connlimit_new(0, 2, NULL);
	struct connlimit_ticket t[8];
	cr_expect(take(l, &t[0], "192.0.2.1", false));
	cr_expect(take(l, &t[1], "::ffff:192.0.2.1", false)); /* the same */
	cr_expect_not(take(l, &t[2], "192.0.2.1", false));
	cr_expect(take(l, &t[2], "192.0.2.2", false));
	cr_expect(take(l, &t[3], "2001:db8:1:2::1", false));
	cr_expect(take(l, &t[4], "2001:db8:1:2:ffff::9", false)); /* same /64 */
	cr_expect_not(take(l, &t[5], "2001:db8:1:2::77", false));
	cr_expect(take(l, &t[5], "2001:db8:1:3::1", false)); /* next /64 */
	cr_expect_eq(connlimit_total(l), 6);
	connlimit_close(l, &t[0]);
	cr_expect(take(l, &t[0], "192.0.2.1", false));
	for (int i = 0; i < 6; i++)
		connlimit_close(l, &t[i]);
	cr_expect_eq(connlimit_total(l), 0);
	connlimit_free(l);
}

Test(connlimit, total_and_exempt_peers)
{
	struct netlist nl;
	char why[64];
	cr_assert(netlist_parse("10.0.0.0/8", &nl, why, sizeof(why)) == 0);
	struct connlimit *l = connlimit_new(3, 1, &nl);
	struct connlimit_ticket t[4];
	/* A balancer's own connections: no per-address cap ... */
	cr_expect(take(l, &t[0], "10.0.0.5", false));
	cr_expect(take(l, &t[1], "10.0.0.5", false));
	/* ... unless a PROXY header named that address as the client's. */
	cr_expect(take(l, &t[2], "10.0.0.6", true));
	cr_expect_eq(connlimit_total(l), 3);
	/* The total is full. */
	cr_expect_not(take(l, &t[3], "192.0.2.9", false));
	connlimit_close(l, &t[0]);
	cr_expect_not(take(l, &t[3], "10.0.0.6", true)); /* 1 per address */
	cr_expect(take(l, &t[3], "192.0.2.9", false));
	for (int i = 1; i < 4; i++)
		connlimit_close(l, &t[i]);
	cr_expect_eq(connlimit_total(l), 0);
	connlimit_free(l);
}
