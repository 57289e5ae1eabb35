/* balancer/edge: the per-source table on its own: caps per address and
 * per IPv6 /64, the rate window, allow over deny, the bound (least
 * recently seen dropped first), a reload that shrinks it, and the memory
 * per entry the README states. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <malloc.h>
#include <string.h>

#include "../../balancer/edge.h"
#include "sockaddr_fixture.h"

static enum edge_reason
admit(struct edge *e, const char *text, double now, struct edge_ticket *t)
{
	struct sockaddr_storage ss = sa(text);
	return edge_admit(e, (struct sockaddr *)&ss, now, t);
}

Test(edge, no_setting_no_table)
{
	struct edge_policy p;
	struct edge_ticket t;
	edge_policy_init(&p);
	struct edge *e = edge_new(&p);
	cr_assert_eq(admit(e, "10.0.0.1", 0, &t), EDGE_OK);
	cr_assert(!t.counted);
	cr_assert_eq(edge_sources(e), 0);
	edge_free(e);
}

Test(edge, cap_per_address_and_per_ipv6_64)
{
	struct edge_policy p;
	struct edge_ticket t[4];
	edge_policy_init(&p);
	p.max_conn_per_source = 2;
	struct edge *e = edge_new(&p);
	cr_assert_eq(admit(e, "2001:db8:1:2::1", 0, &t[0]), EDGE_OK);
	cr_assert_eq(admit(e, "2001:db8:1:2:ffff::9", 0, &t[1]), EDGE_OK);
	cr_assert_eq(admit(e, "2001:db8:1:2::7", 0, &t[2]), EDGE_CONN);
	cr_assert_eq(admit(e, "2001:db8:1:3::1", 0, &t[3]), EDGE_OK);
	edge_release(e, &t[0]);
	cr_assert_eq(admit(e, "2001:db8:1:2::7", 0, &t[0]), EDGE_OK);
	cr_assert_eq(admit(e, "::ffff:10.0.0.1", 0, &t[2]), EDGE_OK);
	cr_assert_eq(edge_sources(e), 3);
	edge_free(e);
}

Test(edge, rate_window)
{
	struct edge_policy p;
	struct edge_ticket t;
	edge_policy_init(&p);
	p.rate_count = 2;
	p.rate_window_s = 10;
	struct edge *e = edge_new(&p);
	cr_assert_eq(admit(e, "10.0.0.1", 100, &t), EDGE_OK);
	cr_assert_eq(admit(e, "10.0.0.1", 101, &t), EDGE_OK);
	cr_assert_eq(admit(e, "10.0.0.1", 109, &t), EDGE_RATE);
	cr_assert_eq(admit(e, "10.0.0.1", 110, &t), EDGE_OK);
	edge_free(e);
}

Test(edge, allow_wins_over_deny)
{
	struct edge_policy p;
	struct edge_ticket t;
	char why[64];
	edge_policy_init(&p);
	p.max_conn_per_source = 1;
	cr_assert_eq(netlist_parse("10.1.0.0/16", &p.allow, why, sizeof(why)),
		     0);
	cr_assert_eq(netlist_parse("10.0.0.0/8", &p.deny, why, sizeof(why)), 0);
	p.pregreet = true;
	struct edge *e = edge_new(&p);
	cr_assert_eq(admit(e, "10.2.0.1", 0, &t), EDGE_DENY);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(admit(e, "10.1.0.1", 0, &t), EDGE_OK);
		cr_assert(t.allowed && !t.counted && !t.pregreet);
	}
	cr_assert_eq(admit(e, "192.0.2.1", 0, &t), EDGE_OK);
	cr_assert(t.pregreet);
	edge_free(e);
}

Test(edge, bound_drops_least_recently_seen_and_reload_shrinks)
{
	struct edge_policy p;
	struct edge_ticket t;
	char a[32];
	edge_policy_init(&p);
	p.rate_count = 1;
	p.rate_window_s = 600;
	p.table_size = 100;
	struct edge *e = edge_new(&p);
	for (int i = 0; i < 150; i++) {
		snprintf(a, sizeof(a), "10.0.%d.%d", i / 256, i % 256);
		cr_assert_eq(admit(e, a, 0, &t), EDGE_OK);
	}
	cr_assert_eq(edge_sources(e), 100);
	cr_assert_eq(admit(e, "10.0.0.149", 0, &t), EDGE_RATE); /* kept */
	cr_assert_eq(admit(e, "10.0.0.10", 0, &t), EDGE_OK);	/* dropped */
	p.table_size = 10;
	edge_apply(e, &p);
	cr_assert_eq(edge_sources(e), 10);
	/* the ten most recent stay: 10.0.0.10, .149 and 141..148 */
	cr_assert_eq(admit(e, "10.0.0.10", 0, &t), EDGE_RATE);
	cr_assert_eq(admit(e, "10.0.0.141", 0, &t), EDGE_RATE);
	cr_assert_eq(admit(e, "10.0.0.140", 0, &t), EDGE_OK);
	p.table_size = 100000; /* grows: rehashed, nothing lost */
	edge_apply(e, &p);
	cr_assert_eq(edge_sources(e), 10);
	cr_assert_eq(admit(e, "10.0.0.149", 0, &t), EDGE_RATE);
	edge_free(e);
}

Test(edge, memory_per_entry_as_the_readme_says)
{
	cr_assert_leq(edge_entry_bytes(), 96);
}

/* 100,000 distinct sources, measured: what malloc holds for the table
 * stays within the README's 96 bytes a source. */
Test(edge, hundred_thousand_sources_measured)
{
	struct edge_policy p;
	struct edge_ticket t;
	edge_policy_init(&p);
	p.rate_count = 1000;
	p.rate_window_s = 60;
	p.table_size = 100000;
	struct mallinfo2 m = mallinfo2(); /* heap and mmapped blocks */
	size_t before = m.uordblks + m.hblkhd;
	struct edge *e = edge_new(&p);
	struct sockaddr_in in = {.sin_family = AF_INET};
	for (uint32_t i = 0; i < 100000; i++) {
		in.sin_addr.s_addr = htonl(0x0a000000u + i);
		cr_assert_eq(edge_admit(e, (struct sockaddr *)&in, 0, &t),
			     EDGE_OK);
	}
	cr_assert_eq(edge_sources(e), 100000);
	m = mallinfo2();
	size_t used = m.uordblks + m.hblkhd - before;
	if (used == 0) /* a sanitizer's malloc keeps no statistics */
		cr_log_info("100,000 sources: not measurable in this build");
	else
		cr_log_info("100,000 sources: %zu bytes (%.1f a source)", used,
			    used / 100000.0);
	cr_assert_leq(used, 96 * 100000);
	edge_free(e);
}
