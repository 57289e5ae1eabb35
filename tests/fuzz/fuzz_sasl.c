/* base64 and SASL PLAIN (common/sasl.c): what AUTH/AUTHENTICATE lines
 * carry. Decoding is checked against encoding: what decodes re-encodes
 * to the same text. */
#include "fuzz.h"

#include "../../common/sasl.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_str(data, size);
	unsigned char *out = malloc(size + 1);
	char *back = malloc(size + 8);
	char user[256], pass[1024];
	if (out == NULL || back == NULL)
		abort();
	long n = base64_decode(in, size, out, size + 1);
	if (n >= 0) {
		long m = base64_encode(out, (size_t)n, back, size + 8);
		if (m != (long)size || memcmp(back, in, size) != 0)
			abort(); /* decoding is not the inverse of encoding */
		(void)sasl_plain_parse(out, (size_t)n, user, sizeof(user), pass,
				       sizeof(pass));
	}
	/* The raw bytes as a PLAIN message too. */
	(void)sasl_plain_parse(data, size, user, sizeof(user), pass,
			       sizeof(pass));
	free(in);
	free(out);
	free(back);
	return 0;
}
