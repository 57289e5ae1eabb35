#include "token.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#define TOKEN_RAW_MAX 64

int
token_hex(char *out, size_t hexlen)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char raw[TOKEN_RAW_MAX];
	size_t len = hexlen / 2, got = 0;

	out[0] = '\0';
	if (hexlen % 2 != 0 || len > sizeof(raw)) {
		errno = EINVAL;
		return -1;
	}
	while (got < len) {
		ssize_t n = getrandom(raw + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		got += (size_t)n;
	}
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[raw[i] >> 4];
		out[2 * i + 1] = digits[raw[i] & 0xf];
	}
	out[hexlen] = '\0';
	explicit_bzero(raw, sizeof(raw));
	return 0;
fail:
	explicit_bzero(raw, sizeof(raw));
	return -1;
}
