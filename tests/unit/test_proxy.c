/* PROXY protocol v1/v2: encoding against byte vectors written out by hand
 * from HAProxy's proxy-protocol.txt, decoding round trips, truncation at
 * every prefix, strict rejection, and a seeded fuzz run (ASan catches any
 * read past the buffer, which is always allocated to its exact length). */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "../../common/proxy.h"

static struct sockaddr_storage
sa4(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;
	memset(&ss, 0, sizeof(ss));
	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	cr_assert_eq(inet_pton(AF_INET, ip, &s->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage
sa6(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
	memset(&ss, 0, sizeof(ss));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(port);
	cr_assert_eq(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
	return ss;
}

#define SA(x) ((const struct sockaddr *)&(x))

/* Decodes exactly buf[0..len) from a heap copy of that size, so that any
 * overread is an ASan error. */
static int
decode_exact(const void *buf, size_t len, struct proxy_info *pi)
{
	unsigned char *copy = malloc(len ? len : 1);
	cr_assert_not_null(copy);
	memcpy(copy, buf, len);
	int r = proxy_decode(copy, len, pi);
	free(copy);
	return r;
}

static int
decode_str(const char *s, struct proxy_info *pi)
{
	return decode_exact(s, strlen(s), pi);
}

/* ---- encode: hand-written vectors ---- */

/* The spec's own example (section 2.1). */
static const char V1_TCP4[] =
    "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
static const char V1_TCP6[] = "PROXY TCP6 2001:db8::1 ::1 1234 25\r\n";

static const unsigned char V2_TCP4[] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A,
    0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, /* version 2, PROXY */
    0x11,				/* AF_INET, STREAM */
    0x00, 0x0C,				/* 12 address bytes */
    0xC0, 0xA8, 0x00, 0x01,		/* 192.168.0.1 */
    0xC0, 0xA8, 0x00, 0x0B,		/* 192.168.0.11 */
    0xDC, 0x04,				/* 56324 */
    0x01, 0xBB,				/* 443 */
};

static const unsigned char V2_TCP6[] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
    0x21,	/* version 2, PROXY */
    0x21,	/* AF_INET6, STREAM */
    0x00, 0x24, /* 36 address bytes */
    /* 2001:db8::1 */
    0x20, 0x01, 0x0D, 0xB8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01,
    /* ::1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x04, 0xD2, /* 1234 */
    0x00, 0x19,				/* 25 */
};

static const unsigned char V2_LOCAL[] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A,
    0x51, 0x55, 0x49, 0x54, 0x0A, 0x20, /* version 2, LOCAL */
    0x00,				/* UNSPEC */
    0x00, 0x00,
};

Test(proxy_encode, v1_tcp4)
{
	struct sockaddr_storage s = sa4("192.168.0.1", 56324);
	struct sockaddr_storage d = sa4("192.168.0.11", 443);
	char buf[PROXY_V1_MAX];
	int n = proxy_v1_encode(buf, sizeof(buf), SA(s), SA(d));
	cr_assert_eq(n, (int)strlen(V1_TCP4));
	cr_assert_eq(memcmp(buf, V1_TCP4, (size_t)n), 0);
}

Test(proxy_encode, v1_tcp6)
{
	struct sockaddr_storage s = sa6("2001:db8::1", 1234);
	struct sockaddr_storage d = sa6("::1", 25);
	char buf[PROXY_V1_MAX];
	int n = proxy_v1_encode(buf, sizeof(buf), SA(s), SA(d));
	cr_assert_eq(n, (int)strlen(V1_TCP6));
	cr_assert_eq(memcmp(buf, V1_TCP6, (size_t)n), 0);
}

Test(proxy_encode, v1_worst_case_tcp6_fits)
{
	struct sockaddr_storage s =
	    sa6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);
	struct sockaddr_storage d =
	    sa6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	char buf[PROXY_V1_MAX];
	int n = proxy_v1_encode(buf, sizeof(buf), SA(s), SA(d));
	cr_assert_eq(n, 104); /* the spec's TCP6 maximum */
}

Test(proxy_encode, v1_unknown_for_mixed_or_other_families)
{
	struct sockaddr_storage s = sa4("10.0.0.1", 1000);
	struct sockaddr_storage d = sa6("::1", 25);
	struct sockaddr_un u = {.sun_family = AF_UNIX};
	char buf[PROXY_V1_MAX];
	int n = proxy_v1_encode(buf, sizeof(buf), SA(s), SA(d));
	cr_assert_eq(n, 15);
	cr_assert_eq(memcmp(buf, "PROXY UNKNOWN\r\n", 15), 0);
	n = proxy_v1_encode(buf, sizeof(buf), (struct sockaddr *)&u,
			    (struct sockaddr *)&u);
	cr_assert_eq(n, 15);
}

Test(proxy_encode, v1_too_small)
{
	struct sockaddr_storage s = sa4("192.168.0.1", 56324);
	struct sockaddr_storage d = sa4("192.168.0.11", 443);
	char buf[PROXY_V1_MAX];
	size_t want = strlen(V1_TCP4);
	cr_assert_eq(proxy_v1_encode(buf, want - 1, SA(s), SA(d)), -1);
	cr_assert_eq(proxy_v1_encode(buf, want, SA(s), SA(d)), (int)want);
}

Test(proxy_encode, v2_tcp4)
{
	struct sockaddr_storage s = sa4("192.168.0.1", 56324);
	struct sockaddr_storage d = sa4("192.168.0.11", 443);
	unsigned char buf[PROXY_V2_MAX];
	int n = proxy_v2_encode(buf, sizeof(buf), SA(s), SA(d));
	cr_assert_eq(n, (int)sizeof(V2_TCP4));
	cr_assert_eq(memcmp(buf, V2_TCP4, sizeof(V2_TCP4)), 0);
}

Test(proxy_encode, v2_tcp6)
{
	struct sockaddr_storage s = sa6("2001:db8::1", 1234);
	struct sockaddr_storage d = sa6("::1", 25);
	unsigned char buf[PROXY_V2_MAX];
	int n = proxy_v2_encode(buf, sizeof(buf), SA(s), SA(d));
	cr_assert_eq(n, (int)sizeof(V2_TCP6));
	cr_assert_eq(memcmp(buf, V2_TCP6, sizeof(V2_TCP6)), 0);
}

Test(proxy_encode, v2_local_for_other_families)
{
	struct sockaddr_storage s = sa4("10.0.0.1", 1000);
	struct sockaddr_storage d = sa6("::1", 25);
	unsigned char buf[PROXY_V2_MAX];
	int n = proxy_v2_encode(buf, sizeof(buf), SA(s), SA(d));
	cr_assert_eq(n, (int)sizeof(V2_LOCAL));
	cr_assert_eq(memcmp(buf, V2_LOCAL, sizeof(V2_LOCAL)), 0);
}

Test(proxy_encode, v2_too_small)
{
	struct sockaddr_storage s = sa6("2001:db8::1", 1234);
	struct sockaddr_storage d = sa6("::1", 25);
	unsigned char buf[PROXY_V2_MAX];
	cr_assert_eq(proxy_v2_encode(buf, sizeof(V2_TCP6) - 1, SA(s), SA(d)),
		     -1);
	cr_assert_eq(proxy_v2_encode(buf, 15, SA(s), SA(d)), -1);
}

/* ---- decode ---- */

static void
assert_v4(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
	struct in_addr want;
	cr_assert_eq(s->sin_family, AF_INET);
	cr_assert_eq(inet_pton(AF_INET, ip, &want), 1);
	cr_assert_eq(s->sin_addr.s_addr, want.s_addr);
	cr_assert_eq(ntohs(s->sin_port), port);
}

static void
assert_v6(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
	struct in6_addr want;
	cr_assert_eq(s->sin6_family, AF_INET6);
	cr_assert_eq(inet_pton(AF_INET6, ip, &want), 1);
	cr_assert_eq(memcmp(&s->sin6_addr, &want, 16), 0);
	cr_assert_eq(ntohs(s->sin6_port), port);
}

Test(proxy_decode, v1_tcp4_with_data_after)
{
	struct proxy_info pi;
	char in[256];
	snprintf(in, sizeof(in), "%sGET / HTTP/1.1\r\n\r\n", V1_TCP4);
	cr_assert_eq(decode_str(in, &pi), (int)strlen(V1_TCP4));
	cr_assert_eq(pi.version, 1);
	cr_assert_eq(pi.local, 0);
	assert_v4(&pi.src, "192.168.0.1", 56324);
	assert_v4(&pi.dst, "192.168.0.11", 443);
}

Test(proxy_decode, v1_tcp6)
{
	struct proxy_info pi;
	cr_assert_eq(decode_str(V1_TCP6, &pi), (int)strlen(V1_TCP6));
	cr_assert_eq(pi.version, 1);
	assert_v6(&pi.src, "2001:db8::1", 1234);
	assert_v6(&pi.dst, "::1", 25);
}

Test(proxy_decode, v1_unknown)
{
	struct proxy_info pi;
	cr_assert_eq(decode_str("PROXY UNKNOWN\r\n", &pi), 15);
	cr_assert_eq(pi.version, 1);
	cr_assert_eq(pi.local, 1);
	/* the receiver ignores whatever UNKNOWN carries before the CRLF */
	const char *longer =
	    "PROXY UNKNOWN ffff:f::1 ffff:f::2 65535 65535\r\n";
	cr_assert_eq(decode_str(longer, &pi), (int)strlen(longer));
	cr_assert_eq(pi.local, 1);
}

Test(proxy_decode, v2_tcp4_tcp6_local)
{
	struct proxy_info pi;
	cr_assert_eq(decode_exact(V2_TCP4, sizeof(V2_TCP4), &pi),
		     (int)sizeof(V2_TCP4));
	cr_assert_eq(pi.version, 2);
	cr_assert_eq(pi.local, 0);
	assert_v4(&pi.src, "192.168.0.1", 56324);
	assert_v4(&pi.dst, "192.168.0.11", 443);

	cr_assert_eq(decode_exact(V2_TCP6, sizeof(V2_TCP6), &pi),
		     (int)sizeof(V2_TCP6));
	cr_assert_eq(pi.local, 0);
	assert_v6(&pi.src, "2001:db8::1", 1234);
	assert_v6(&pi.dst, "::1", 25);

	cr_assert_eq(decode_exact(V2_LOCAL, sizeof(V2_LOCAL), &pi), 16);
	cr_assert_eq(pi.version, 2);
	cr_assert_eq(pi.local, 1);
}

Test(proxy_decode, v2_tlvs_are_skipped)
{
	unsigned char buf[sizeof(V2_TCP4) + 7 + 4];
	struct proxy_info pi;
	memcpy(buf, V2_TCP4, sizeof(V2_TCP4));
	/* PP2_TYPE_AUTHORITY "mx.test" (type 0x02, length 7) */
	memcpy(buf + sizeof(V2_TCP4), "\x02\x00\x07mx.test", 10);
	buf[15] = 12 + 10;
	memcpy(buf + sizeof(V2_TCP4) + 10, "HELO", 1); /* data after */
	cr_assert_eq(decode_exact(buf, sizeof(V2_TCP4) + 11, &pi),
		     (int)sizeof(V2_TCP4) + 10);
	assert_v4(&pi.src, "192.168.0.1", 56324);
}

Test(proxy_decode, v2_local_ignores_address_block)
{
	unsigned char buf[sizeof(V2_TCP4)];
	struct proxy_info pi;
	memcpy(buf, V2_TCP4, sizeof(buf));
	buf[12] = 0x20;
	cr_assert_eq(decode_exact(buf, sizeof(buf), &pi), (int)sizeof(buf));
	cr_assert_eq(pi.local, 1);
}

Test(proxy_decode, round_trips)
{
	struct sockaddr_storage pairs[][2] = {
	    {sa4("0.0.0.0", 0), sa4("255.255.255.255", 65535)},
	    {sa4("10.1.2.3", 40000), sa4("127.0.0.1", 25)},
	    {sa6("::", 0),
	     sa6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535)},
	    {sa6("fe80::1:2", 51234), sa6("2001:db8:0:1::25", 587)},
	    {sa6("::ffff:10.0.0.1", 1), sa6("::1", 143)},
	};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		struct sockaddr_storage *s = &pairs[i][0], *d = &pairs[i][1];
		size_t alen = s->ss_family == AF_INET
				  ? sizeof(struct sockaddr_in)
				  : sizeof(struct sockaddr_in6);
		char b1[PROXY_V1_MAX];
		unsigned char b2[PROXY_V2_MAX];
		struct proxy_info pi;

		int n = proxy_v1_encode(b1, sizeof(b1), SA(*s), SA(*d));
		cr_assert_gt(n, 0);
		cr_assert_eq(decode_exact(b1, (size_t)n, &pi), n, "v1 #%zu", i);
		cr_assert_eq(pi.version, 1);
		cr_assert_eq(memcmp(&pi.src, s, alen), 0, "v1 src #%zu", i);
		cr_assert_eq(memcmp(&pi.dst, d, alen), 0, "v1 dst #%zu", i);

		n = proxy_v2_encode(b2, sizeof(b2), SA(*s), SA(*d));
		cr_assert_gt(n, 0);
		cr_assert_eq(decode_exact(b2, (size_t)n, &pi), n, "v2 #%zu", i);
		cr_assert_eq(pi.version, 2);
		cr_assert_eq(memcmp(&pi.src, s, alen), 0, "v2 src #%zu", i);
		cr_assert_eq(memcmp(&pi.dst, d, alen), 0, "v2 dst #%zu", i);
	}
}

static void
assert_every_prefix_wants_more(const void *hdr, size_t len)
{
	struct proxy_info pi;
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(decode_exact(hdr, i, &pi), 0,
			     "prefix of %zu of %zu bytes", i, len);
	cr_assert_eq(decode_exact(hdr, len, &pi), (int)len);
}

Test(proxy_decode, truncated_needs_more)
{
	assert_every_prefix_wants_more(V1_TCP4, strlen(V1_TCP4));
	assert_every_prefix_wants_more(V1_TCP6, strlen(V1_TCP6));
	assert_every_prefix_wants_more("PROXY UNKNOWN\r\n", 15);
	assert_every_prefix_wants_more(V2_TCP4, sizeof(V2_TCP4));
	assert_every_prefix_wants_more(V2_TCP6, sizeof(V2_TCP6));
	assert_every_prefix_wants_more(V2_LOCAL, sizeof(V2_LOCAL));
}

Test(proxy_decode, v1_rejects)
{
	static const char *bad[] = {
	    "GET / HTTP/1.0\r\n",
	    "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
	    "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
	    "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
	    "PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n",
	    "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
	    "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
	    "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
	    "PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n",
	    "PROXY TCP4 1.2.3.4. 5.6.7.8 1 2\r\n",
	    "PROXY TCP4 ::1 ::1 1 2\r\n",
	    "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
	    "PROXY TCP6 ::1::2 ::1 1 2\r\n",
	    "PROXY TCP6 ::g ::1 1 2\r\n",
	    "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
	    "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
	    "PROXY UNKNOWNX\r\n",
	    "PROXY \r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
	    "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n",
	    "PROXY\r\n",
	};
	struct proxy_info pi;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(decode_str(bad[i], &pi), -1, "accepted: %s",
			     bad[i]);
}

Test(proxy_decode, v1_overlong_line)
{
	struct proxy_info pi;
	char line[200];

	/* 107 bytes without a CRLF: invalid (the spec's bound) */
	memset(line, 'a', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	cr_assert_eq(decode_exact(line, 107, &pi), -1);
	cr_assert_eq(decode_exact(line, 150, &pi), -1);
	/* a CRLF ending exactly at 107 bytes is accepted ... */
	memcpy(line + 105, "\r\n", 2);
	cr_assert_eq(decode_exact(line, 107, &pi), 107);
	/* ... one byte later is not */
	line[105] = 'a';
	memcpy(line + 106, "\r\n", 2);
	cr_assert_eq(decode_exact(line, 108, &pi), -1);
	cr_assert_eq(decode_exact(line, 106, &pi), -1);
}

Test(proxy_decode, v2_rejects)
{
	struct proxy_info pi;
	unsigned char buf[sizeof(V2_TCP6)];

	/* wrong signature byte at every position */
	for (size_t i = 0; i < 12; i++) {
		memcpy(buf, V2_TCP4, sizeof(V2_TCP4));
		buf[i] ^= 0x40;
		cr_assert_eq(decode_exact(buf, sizeof(V2_TCP4), &pi), -1,
			     "signature byte %zu", i);
		cr_assert_eq(decode_exact(buf, i + 1, &pi), -1,
			     "early reject at %zu", i);
	}
	static const unsigned char bad_ver[] = {0x11, 0x22, 0x2F, 0x31, 0x01};
	for (size_t i = 0; i < sizeof(bad_ver); i++) {
		memcpy(buf, V2_TCP4, sizeof(V2_TCP4));
		buf[12] = bad_ver[i];
		cr_assert_eq(decode_exact(buf, sizeof(V2_TCP4), &pi), -1);
		cr_assert_eq(decode_exact(buf, 13, &pi), -1);
	}
	static const unsigned char bad_fam[] = {0x13, 0x41, 0x10, 0x01, 0xFF};
	for (size_t i = 0; i < sizeof(bad_fam); i++) {
		memcpy(buf, V2_TCP4, sizeof(V2_TCP4));
		buf[13] = bad_fam[i];
		cr_assert_eq(decode_exact(buf, sizeof(V2_TCP4), &pi), -1);
	}
	/* an address block shorter than the family needs */
	memcpy(buf, V2_TCP4, sizeof(V2_TCP4));
	buf[15] = 11;
	cr_assert_eq(decode_exact(buf, sizeof(V2_TCP4), &pi), -1);
	memcpy(buf, V2_TCP6, sizeof(V2_TCP6));
	buf[15] = 12;
	cr_assert_eq(decode_exact(buf, sizeof(V2_TCP6), &pi), -1);
	/* a length far beyond any real header */
	memcpy(buf, V2_TCP4, sizeof(V2_TCP4));
	buf[14] = 0xFF;
	cr_assert_eq(decode_exact(buf, 16, &pi), -1);
}

/* ---- robustness ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t
rng(void)
{
	/* xorshift64*: seeded, so a failure reproduces */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

static size_t
fuzz_input(unsigned char *buf, size_t cap)
{
	static const struct {
		const void *p;
		size_t n;
	} seeds[] = {
	    {V1_TCP4, sizeof(V1_TCP4) - 1}, {V1_TCP6, sizeof(V1_TCP6) - 1},
	    {"PROXY UNKNOWN\r\n", 15},	    {V2_TCP4, sizeof(V2_TCP4)},
	    {V2_TCP6, sizeof(V2_TCP6)},	    {V2_LOCAL, sizeof(V2_LOCAL)},
	};
	size_t n;
	uint32_t kind = rng() % 4;

	if (kind == 0) { /* pure noise, sometimes with a real first byte */
		n = rng() % cap;
		for (size_t i = 0; i < n; i++)
			buf[i] = (unsigned char)rng();
		if (n > 0 && rng() % 2)
			buf[0] = rng() % 2 ? 'P' : 0x0D;
		return n;
	}
	size_t s = rng() % (sizeof(seeds) / sizeof(seeds[0]));
	n = seeds[s].n;
	memcpy(buf, seeds[s].p, n);
	unsigned flips = 1 + rng() % 4;
	for (unsigned f = 0; f < flips; f++) {
		size_t at = rng() % n;
		switch (rng() % 4) {
		case 0:
			buf[at] = (unsigned char)rng();
			break;
		case 1:
			buf[at] ^= (unsigned char)(1u << (rng() % 8));
			break;
		case 2: /* a plausible text byte */
			buf[at] =
			    (unsigned char)" .:0123456789\r\nabfTCP"[rng() %
								     21];
			break;
		default: /* the v2 length field */
			if (n > 15)
				buf[14 + rng() % 2] = (unsigned char)rng();
			break;
		}
	}
	if (kind == 2) { /* truncated */
		n = rng() % (n + 1);
	} else if (kind == 3) { /* trailing noise */
		size_t extra = rng() % (cap - n);
		for (size_t i = 0; i < extra; i++)
			buf[n + i] = (unsigned char)rng();
		n += extra;
	}
	return n;
}

Test(proxy_fuzz, random_and_mutated_buffers)
{
	unsigned char buf[600];
	unsigned counts[3] = {0, 0, 0};

	for (int iter = 0; iter < 200000; iter++) {
		struct proxy_info pi;
		size_t n = fuzz_input(buf, sizeof(buf));
		int r = decode_exact(buf, n, &pi);
		cr_assert(r >= -1 && r <= (int)n, "iter %d: %d for %zu bytes",
			  iter, r, n);
		counts[r < 0 ? 0 : r == 0 ? 1 : 2]++;
		if (r <= 0)
			continue;
		cr_assert(pi.version == 1 || pi.version == 2);
		cr_assert(r >= 15);
		cr_assert(pi.version == 2 || r <= 107);
		if (!pi.local) {
			cr_assert(pi.src.ss_family == AF_INET ||
				  pi.src.ss_family == AF_INET6);
			cr_assert_eq(pi.src.ss_family, pi.dst.ss_family);
		}
	}
	/* the mix reaches every outcome */
	cr_assert_gt(counts[0], 1000);
	cr_assert_gt(counts[1], 1000);
	cr_assert_gt(counts[2], 1000);
}
