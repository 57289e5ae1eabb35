/* Socket addresses: "1.2.3.4:25", "[::1]:25", "host:25" (numeric only). */
#ifndef MS_ADDR_H
#define MS_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

#define ADDR_STRLEN 64 /* "[ffff:...:ffff]:65535" fits */

/* Parses a numeric IPv4 "A.B.C.D:PORT" or IPv6 "[V6]:PORT"; "*:PORT" means
 * 0.0.0.0. Returns 0, or -1 with a short reason in *why. */
int addr_parse(const char *s, struct addr *a, const char **why);
/* Formats as addr_parse reads it. Returns buf. */
char *addr_fmt(const struct sockaddr *sa, char *buf, size_t len);
/* Host part only ("1.2.3.4" or "::1"), and the port. */
char *addr_host(const struct sockaddr *sa, char *buf, size_t len);
uint16_t addr_port(const struct sockaddr *sa);
int addr_equal(const struct addr *a, const struct addr *b);
/* A stable 32-bit hash of the host part (not the port): the source-IP key
 * of consistent hashing. */
uint32_t addr_hash_host(const struct sockaddr *sa);

/* A source's counted part, as per-source limits key it: the family (4 or
 * 6), then an IPv4 address (a v4-mapped IPv6 one too) or an IPv6 /64,
 * zero-padded. Returns 0, or -1 for other families. */
#define ADDR_SOURCE_KEY 17
int addr_source_key(const struct sockaddr *sa,
		    unsigned char key[ADDR_SOURCE_KEY]);

#endif
