#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decimal.h"

static int
addr_port_parse(const char *s, uint16_t *port)
{
	long v;
	if (decimal_long(s, 1, 65535, &v) < 0)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int
addr_parse(const char *s, struct addr *a, const char **why)
{
	char host[64];
	const char *port;
	uint16_t p;

	memset(a, 0, sizeof(*a));
	*why = "expected HOST:PORT or [IPV6]:PORT";
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':' ||
		    (size_t)(close - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = '\0';
		port = close + 2;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			*why = "not an IPv6 address";
			return -1;
		}
		if (addr_port_parse(port, &p) < 0) {
			*why = "bad port (1-65535)";
			return -1;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(p);
		a->len = sizeof(*sin6);
		return 0;
	}
	const char *colon = strrchr(s, ':');
	if (colon == NULL || (size_t)(colon - s) >= sizeof(host) ||
	    strchr(s, ':') != colon)
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	port = colon + 1;
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	if (strcmp(host, "*") == 0 || strcmp(host, "") == 0)
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (strcmp(host, "localhost") == 0)
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
		*why = "not an IPv4 address (use [IPV6]:PORT for IPv6)";
		return -1;
	}
	if (addr_port_parse(port, &p) < 0) {
		*why = "bad port (1-65535)";
		return -1;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons(p);
	a->len = sizeof(*sin);
	return 0;
}

char *
addr_host(const struct sockaddr *sa, char *buf, size_t len)
{
	if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
			  (socklen_t)len);
	else if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
			  buf, (socklen_t)len);
	else
		snprintf(buf, len, "unix");
	return buf;
}

uint16_t
addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	return 0;
}

char *
addr_fmt(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];
	addr_host(sa, host, sizeof(host));
	if (sa->sa_family == AF_INET6)
		snprintf(buf, len, "[%s]:%u", host, addr_port(sa));
	else
		snprintf(buf, len, "%s:%u", host, addr_port(sa));
	return buf;
}

int
addr_equal(const struct addr *a, const struct addr *b)
{
	return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* FNV-1a over the address bytes, then a final avalanche (murmur3 fmix32)
 * so that neighbouring addresses land far apart. */
static uint32_t
addr_mix(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

uint32_t
addr_hash_host(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return addr_mix(
		    ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, 16);
	if (sa->sa_family == AF_INET)
		return addr_mix(
		    (const unsigned char *)&((const struct sockaddr_in *)sa)
			->sin_addr.s_addr,
		    4);
	return 0;
}

int
addr_source_key(const struct sockaddr *sa, unsigned char key[ADDR_SOURCE_KEY])
{
	memset(key, 0, ADDR_SOURCE_KEY);
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	const struct in6_addr *a =
	    &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		key[0] = 4;
		memcpy(key + 1, a->s6_addr + 12, 4);
	} else {
		key[0] = 6;
		memcpy(key + 1, a->s6_addr, 8);
	}
	return 0;
}
