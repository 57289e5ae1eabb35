/* Maildir file names (node/store/maildir_uid.c maildir_parse_name): what
 * another program (Dovecot, a shell) may have left in cur/. */
#include "fuzz.h"

#include "../../node/store/maildir_int.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *name = fuzz_str(data, size);
	char flags[32], tiny[2];
	uint32_t uid;
	uint64_t sz;

	maildir_parse_name(name, &uid, flags, sizeof(flags), &sz);
	if (strlen(flags) >= sizeof(flags))
		abort();
	maildir_parse_name(name, &uid, tiny, sizeof(tiny), &sz);
	if (strlen(tiny) >= sizeof(tiny))
		abort();
	free(name);
	return 0;
}
