/* PROXY protocol v1 and v2 headers (common/proxy.c): the raw bytes a
 * client or lbd sends first. */
#include "fuzz.h"

#include "../../common/proxy.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf = malloc(size ? size : 1);
	struct proxy_info info;
	if (buf == NULL)
		abort();
	memcpy(buf, data, size);
	/* Every prefix too, as a stream delivers a header piecemeal. */
	for (size_t n = size > 128 ? size - 128 : 0; n <= size; n++) {
		int r = proxy_decode(buf, n, &info);
		if (r > (int)n)
			abort(); /* consumed more than it had */
	}
	free(buf);
	return 0;
}
