/* The PROXY protocol (HAProxy's doc/proxy-protocol.txt), versions 1 and 2.
 * Encoding writes exactly what the spec shows; decoding is strict (any
 * sequence that does not match the spec exactly is rejected) and never
 * reads past the bytes it is given. */
#include "proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PROXY_V1_PREFIX "PROXY "
#define PROXY_V1_PREFIX_LEN 6
#define PROXY_V1_LINE_MAX 107 /* CRLF included: the spec's worst case */

#define PROXY_V2_HDR 16
#define PROXY_V2_VER_LOCAL 0x20
#define PROXY_V2_VER_PROXY 0x21
#define PROXY_V2_TCP4 0x11
#define PROXY_V2_TCP6 0x21
#define PROXY_V2_TCP4_LEN 12 /* 2 * 4 + 2 * 2 */
#define PROXY_V2_TCP6_LEN 36 /* 2 * 16 + 2 * 2 */
/* The largest v2 header accepted, TLVs included: the spec designs both
 * formats to fit in the smallest TCP segment (536 bytes). A header longer
 * than this is refused rather than waited for. */
#define PROXY_V2_TOTAL_MAX 536

static const unsigned char proxy_v2_sig[12] = {
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* --- encode --- */

int
proxy_v1_encode(char *buf, size_t len, const struct sockaddr *src,
		const struct sockaddr *dst)
{
	char line[PROXY_V1_MAX], s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	const void *sa, *da;
	const char *proto;
	unsigned sp, dp;
	int af, n;

	af = src->sa_family;
	if (af != dst->sa_family || (af != AF_INET && af != AF_INET6)) {
		n = snprintf(line, sizeof(line), "PROXY UNKNOWN\r\n");
		goto out;
	}
	if (af == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)src;
		const struct sockaddr_in *b = (const struct sockaddr_in *)dst;
		sa = &a->sin_addr;
		da = &b->sin_addr;
		sp = ntohs(a->sin_port);
		dp = ntohs(b->sin_port);
		proto = "TCP4";
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)src;
		const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)dst;
		sa = &a->sin6_addr;
		da = &b->sin6_addr;
		sp = ntohs(a->sin6_port);
		dp = ntohs(b->sin6_port);
		proto = "TCP6";
	}
	if (inet_ntop(af, sa, s, sizeof(s)) == NULL ||
	    inet_ntop(af, da, d, sizeof(d)) == NULL)
		return -1;
	n = snprintf(line, sizeof(line), "PROXY %s %s %s %u %u\r\n", proto, s,
		     d, sp, dp);
out:
	if (n < 0 || (size_t)n >= sizeof(line) || (size_t)n > len)
		return -1;
	memcpy(buf, line, (size_t)n);
	return n;
}

static void
proxy_put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

int
proxy_v2_encode(unsigned char *buf, size_t len, const struct sockaddr *src,
		const struct sockaddr *dst)
{
	unsigned char *p = buf + PROXY_V2_HDR;
	size_t alen;
	int af = src->sa_family;

	if (af != dst->sa_family || (af != AF_INET && af != AF_INET6))
		alen = 0;
	else
		alen = af == AF_INET ? PROXY_V2_TCP4_LEN : PROXY_V2_TCP6_LEN;
	if (len < PROXY_V2_HDR + alen)
		return -1;

	memcpy(buf, proxy_v2_sig, sizeof(proxy_v2_sig));
	proxy_put16(buf + 14, (unsigned)alen);
	if (alen == 0) {
		/* LOCAL over UNSPEC: the node keeps the real endpoints. */
		buf[12] = PROXY_V2_VER_LOCAL;
		buf[13] = 0x00;
		return PROXY_V2_HDR;
	}
	buf[12] = PROXY_V2_VER_PROXY;
	if (af == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)src;
		const struct sockaddr_in *b = (const struct sockaddr_in *)dst;
		buf[13] = PROXY_V2_TCP4;
		memcpy(p, &a->sin_addr, 4);
		memcpy(p + 4, &b->sin_addr, 4);
		memcpy(p + 8, &a->sin_port, 2); /* already big-endian */
		memcpy(p + 10, &b->sin_port, 2);
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)src;
		const struct sockaddr_in6 *b = (const struct sockaddr_in6 *)dst;
		buf[13] = PROXY_V2_TCP6;
		memcpy(p, &a->sin6_addr, 16);
		memcpy(p + 16, &b->sin6_addr, 16);
		memcpy(p + 32, &a->sin6_port, 2);
		memcpy(p + 34, &b->sin6_port, 2);
	}
	return (int)(PROXY_V2_HDR + alen);
}

/* --- decode, version 1 --- */

/* A decimal number in [0..max] without leading zeroes, exactly the token
 * s[0..n). Returns 0 and sets *out, or -1. */
static int
proxy_v1_number(const char *s, size_t n, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* An IPv4 address as the spec writes it: four decimal integers in
 * [0..255], no leading zeroes, one dot between each. */
static int
proxy_v1_ipv4(const char *s, size_t n, struct in_addr *out)
{
	unsigned char b[4];
	size_t start = 0;

	for (int part = 0; part < 4; part++) {
		unsigned long v;
		size_t end = start;
		while (end < n && s[end] != '.')
			end++;
		if (proxy_v1_number(s + start, end - start, 255, &v) < 0)
			return -1;
		/* three parts end on a dot, the last on the token's end */
		if ((part < 3) != (end < n))
			return -1;
		b[part] = (unsigned char)v;
		start = end + 1;
	}
	memcpy(out, b, 4);
	return 0;
}

static int
proxy_v1_ipv6(const char *s, size_t n, struct in6_addr *out)
{
	char tmp[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			  (c >= 'A' && c <= 'F');
		if (!hex && c != ':' && c != '.')
			return -1;
	}
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return inet_pton(AF_INET6, tmp, out) == 1 ? 0 : -1;
}

/* Splits line[0..n) (CRLF excluded) into tokens separated by exactly one
 * space. Returns the token count, or -1 on an empty token or too many. */
static int
proxy_v1_split(const char *line, size_t n, const char **tok, size_t *tlen,
	       int max)
{
	int nt = 0;
	size_t start = 0;

	for (size_t i = 0; i <= n; i++) {
		if (i < n && line[i] != ' ')
			continue;
		if (i == start || nt == max)
			return -1;
		tok[nt] = line + start;
		tlen[nt] = i - start;
		nt++;
		start = i + 1;
	}
	return nt;
}

static int
proxy_v1_tok_is(const char *tok, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(tok, word, n) == 0;
}

/* Parses a complete line (CRLF excluded, "PROXY " included). */
static int
proxy_v1_parse(const char *line, size_t n, struct proxy_info *out)
{
	const char *tok[6];
	size_t tlen[6];
	unsigned long sp, dp;
	int af;

	memset(out, 0, sizeof(*out));
	out->version = 1;
	/* UNKNOWN: anything may follow before the CRLF, and is ignored. */
	if (n >= 13 && memcmp(line + 6, "UNKNOWN", 7) == 0 &&
	    (n == 13 || line[13] == ' ')) {
		out->local = 1;
		return 0;
	}
	if (proxy_v1_split(line, n, tok, tlen, 6) != 6)
		return -1;
	if (proxy_v1_tok_is(tok[1], tlen[1], "TCP4"))
		af = AF_INET;
	else if (proxy_v1_tok_is(tok[1], tlen[1], "TCP6"))
		af = AF_INET6;
	else
		return -1;
	if (proxy_v1_number(tok[4], tlen[4], 65535, &sp) < 0 ||
	    proxy_v1_number(tok[5], tlen[5], 65535, &dp) < 0)
		return -1;
	if (af == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
		struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
		if (proxy_v1_ipv4(tok[2], tlen[2], &s->sin_addr) < 0 ||
		    proxy_v1_ipv4(tok[3], tlen[3], &d->sin_addr) < 0)
			return -1;
		s->sin_family = d->sin_family = AF_INET;
		s->sin_port = htons((uint16_t)sp);
		d->sin_port = htons((uint16_t)dp);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
		if (proxy_v1_ipv6(tok[2], tlen[2], &s->sin6_addr) < 0 ||
		    proxy_v1_ipv6(tok[3], tlen[3], &d->sin6_addr) < 0)
			return -1;
		s->sin6_family = d->sin6_family = AF_INET6;
		s->sin6_port = htons((uint16_t)sp);
		d->sin6_port = htons((uint16_t)dp);
	}
	return 0;
}

static int
proxy_v1_decode(const unsigned char *buf, size_t len, struct proxy_info *out)
{
	size_t pre = len < PROXY_V1_PREFIX_LEN ? len : PROXY_V1_PREFIX_LEN;
	size_t i;

	if (memcmp(buf, PROXY_V1_PREFIX, pre) != 0)
		return -1;
	/* Look for the CRLF within the spec's 107 bytes; only printable
	 * US-ASCII may come before it, and a lone CR or LF is an error. */
	for (i = PROXY_V1_PREFIX_LEN; i < len && i < PROXY_V1_LINE_MAX; i++) {
		if (buf[i] == '\n')
			return -1;
		if (buf[i] == '\r')
			break;
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return -1;
	}
	if (i >= PROXY_V1_LINE_MAX - 1)
		return -1; /* no room left for the CRLF */
	if (i + 1 >= len)
		return 0; /* no CR yet, or CR as the last byte so far */
	if (buf[i] != '\r' || buf[i + 1] != '\n')
		return -1;
	if (proxy_v1_parse((const char *)buf, i, out) < 0)
		return -1;
	return (int)(i + 2);
}

/* --- decode, version 2 --- */

static int
proxy_v2_addrs(const unsigned char *p, int fam, struct proxy_info *out)
{
	if (fam == PROXY_V2_TCP4) {
		struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
		struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
		s->sin_family = d->sin_family = AF_INET;
		memcpy(&s->sin_addr, p, 4);
		memcpy(&d->sin_addr, p + 4, 4);
		memcpy(&s->sin_port, p + 8, 2);
		memcpy(&d->sin_port, p + 10, 2);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
		struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
		s->sin6_family = d->sin6_family = AF_INET6;
		memcpy(&s->sin6_addr, p, 16);
		memcpy(&d->sin6_addr, p + 16, 16);
		memcpy(&s->sin6_port, p + 32, 2);
		memcpy(&d->sin6_port, p + 34, 2);
	}
	return 0;
}

/* The address block's minimum length for a family/transport byte; 0 for
 * the valid combinations read as UNSPEC (UNSPEC itself, UDP, UNIX); -1 for
 * values the spec leaves unassigned. */
static int
proxy_v2_family_len(int fam)
{
	switch (fam) {
	case PROXY_V2_TCP4:
		return PROXY_V2_TCP4_LEN;
	case PROXY_V2_TCP6:
		return PROXY_V2_TCP6_LEN;
	case 0x00:
	case 0x12: /* UDP4 */
	case 0x22: /* UDP6 */
	case 0x31: /* UNIX stream */
	case 0x32: /* UNIX dgram */
		return 0;
	default:
		return -1;
	}
}

static int
proxy_v2_decode(const unsigned char *buf, size_t len, struct proxy_info *out)
{
	size_t pre = len < sizeof(proxy_v2_sig) ? len : sizeof(proxy_v2_sig);
	size_t total;
	int local, need = 0;

	if (memcmp(buf, proxy_v2_sig, pre) != 0)
		return -1;
	if (len > 12 && buf[12] != PROXY_V2_VER_LOCAL &&
	    buf[12] != PROXY_V2_VER_PROXY)
		return -1;
	local = len > 12 && buf[12] == PROXY_V2_VER_LOCAL;
	/* LOCAL ignores the family; PROXY must name a known one. */
	if (len > 13 && !local && (need = proxy_v2_family_len(buf[13])) < 0)
		return -1;
	if (len < PROXY_V2_HDR)
		return 0;
	total = PROXY_V2_HDR + ((size_t)buf[14] << 8 | buf[15]);
	if (total > PROXY_V2_TOTAL_MAX || total < PROXY_V2_HDR + (size_t)need)
		return -1;
	if (len < total)
		return 0;

	memset(out, 0, sizeof(*out));
	out->version = 2;
	if (local || need == 0)
		out->local = 1;
	else
		proxy_v2_addrs(buf + PROXY_V2_HDR, buf[13], out);
	/* TLVs, if any, follow the addresses and are skipped with them. */
	return (int)total;
}

int
proxy_decode(const unsigned char *buf, size_t len, struct proxy_info *out)
{
	if (len == 0)
		return 0;
	if (buf[0] == 'P')
		return proxy_v1_decode(buf, len, out);
	if (buf[0] == proxy_v2_sig[0])
		return proxy_v2_decode(buf, len, out);
	return -1;
}
