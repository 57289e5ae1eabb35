/* base64 (RFC 4648, strict) and SASL PLAIN (RFC 4616). */
#include <string.h>

#include "sasl.h"

static const char sasl_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long
base64_encode(const unsigned char *in, size_t inlen, char *out, size_t outlen)
{
	size_t need = (inlen + 2) / 3 * 4 + 1;
	size_t i, o = 0;

	if (outlen < need)
		return -1;
	for (i = 0; i + 2 < inlen; i += 3) {
		unsigned long v = (unsigned long)in[i] << 16 |
				  (unsigned long)in[i + 1] << 8 | in[i + 2];
		out[o++] = sasl_b64_alphabet[v >> 18 & 63];
		out[o++] = sasl_b64_alphabet[v >> 12 & 63];
		out[o++] = sasl_b64_alphabet[v >> 6 & 63];
		out[o++] = sasl_b64_alphabet[v & 63];
	}
	if (i < inlen) {
		unsigned long v = (unsigned long)in[i] << 16;
		if (i + 1 < inlen)
			v |= (unsigned long)in[i + 1] << 8;
		out[o++] = sasl_b64_alphabet[v >> 18 & 63];
		out[o++] = sasl_b64_alphabet[v >> 12 & 63];
		out[o++] = i + 1 < inlen ? sasl_b64_alphabet[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return (long)o;
}

/* Decodes one quantum of four characters into up to three bytes. Returns
 * the number of bytes, or -1. Padding is allowed only when last is set,
 * and the bits that padding drops must be zero (canonical encoding). */
static int
sasl_b64_quantum(const char *q, int last, unsigned char *out)
{
	int v[4], pad = 0;

	for (int k = 0; k < 4; k++) {
		if (q[k] == '=') {
			if (!last || k < 2)
				return -1;
			pad++;
			v[k] = 0;
			continue;
		}
		if (pad)
			return -1; /* data after '=' */
		v[k] = base64_value((unsigned char)q[k]);
		if (v[k] < 0)
			return -1;
	}
	unsigned long n = (unsigned long)v[0] << 18 |
			  (unsigned long)v[1] << 12 | (unsigned long)v[2] << 6 |
			  (unsigned long)v[3];
	if ((pad == 2 && (n & 0xffff)) || (pad == 1 && (n & 0xff)))
		return -1;
	out[0] = n >> 16 & 0xff;
	out[1] = n >> 8 & 0xff;
	out[2] = n & 0xff;
	return 3 - pad;
}

long
base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outlen)
{
	size_t o = 0;

	if (inlen % 4)
		return -1;
	for (size_t i = 0; i < inlen; i += 4) {
		unsigned char tmp[3];
		int n = sasl_b64_quantum(in + i, i + 4 == inlen, tmp);
		if (n < 0 || o + (size_t)n > outlen)
			return -1;
		memcpy(out + o, tmp, (size_t)n);
		o += (size_t)n;
	}
	return (long)o;
}

/* Copies len bytes of src into dst as a string. Returns 0, or -1 when it
 * does not fit. */
static int
sasl_copy(char *dst, size_t dstlen, const unsigned char *src, size_t len)
{
	if (len >= dstlen)
		return -1;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

int
sasl_plain_parse(const unsigned char *msg, size_t len, char *user,
		 size_t userlen, char *pass, size_t passlen)
{
	const unsigned char *nul1, *nul2, *authcid, *passwd;
	size_t zlen, clen, plen;

	nul1 = memchr(msg, '\0', len);
	if (nul1 == NULL)
		goto fail;
	authcid = nul1 + 1;
	nul2 = memchr(authcid, '\0', len - (size_t)(authcid - msg));
	if (nul2 == NULL)
		goto fail;
	passwd = nul2 + 1;
	zlen = (size_t)(nul1 - msg);
	clen = (size_t)(nul2 - authcid);
	plen = len - (size_t)(passwd - msg);
	/* RFC 4616: authcid and passwd are 1*SAFE, SAFE excludes NUL. */
	if (clen == 0 || plen == 0 || memchr(passwd, '\0', plen) != NULL)
		goto fail;
	if (zlen && (zlen != clen || memcmp(msg, authcid, clen) != 0))
		goto fail;
	if (sasl_copy(user, userlen, authcid, clen) < 0 ||
	    sasl_copy(pass, passlen, passwd, plen) < 0)
		goto fail;
	return 0;
fail:
	if (userlen)
		user[0] = '\0';
	if (passlen)
		explicit_bzero(pass, passlen);
	return -1;
}
