/* A user's maildirsize (node/store/quota.c quota_parse): a file on the
 * shared store that other programs (Dovecot, Courier, a shell) may have
 * written. */
#include "fuzz.h"

#include "../../node/store/quota.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t limits[] = {0, 1000, UINT64_MAX};
	struct quota_usage u;

	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		char *text = fuzz_str(data, size);
		if (quota_parse(text, limits[i], &u) == 0 &&
		    (u.bytes > (UINT64_C(1) << 63) ||
		     u.count > (UINT64_C(1) << 63)))
			abort(); /* a negative sum taken as usage */
		free(text);
	}
	return 0;
}
