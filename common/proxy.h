/* The PROXY protocol, versions 1 (text) and 2 (binary), as HAProxy's
 * proxy-protocol.txt specifies: encoding for lbd, decoding for mailnode. */
#ifndef MS_PROXY_H
#define MS_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

#define PROXY_V1_MAX 108 /* the spec's bound, CRLF included */
#define PROXY_V2_MAX 232 /* 16-byte header + the largest address block */

/* Writes the v1 header for a connection from src to dst (both AF_INET or
 * both AF_INET6; otherwise "PROXY UNKNOWN"). Returns its length, or -1 if
 * it does not fit in len. */
int proxy_v1_encode(char *buf, size_t len, const struct sockaddr *src,
    const struct sockaddr *dst);
/* The same for v2 (PROXY command, TCP over IPv4/IPv6; LOCAL/UNSPEC for
 * other families). */
int proxy_v2_encode(unsigned char *buf, size_t len,
    const struct sockaddr *src, const struct sockaddr *dst);

struct proxy_info {
	int version;	/* 1 or 2 */
	int local;	/* 1: LOCAL command or UNKNOWN: keep the real peer */
	struct sockaddr_storage src, dst;
};

/* Parses a v1 or v2 header at the start of buf[0..len). Returns the
 * header's length (bytes to consume), 0 if more bytes are needed, or -1 if
 * this is not a valid PROXY header. Never reads past len. */
int proxy_decode(const unsigned char *buf, size_t len,
    struct proxy_info *out);

#endif
