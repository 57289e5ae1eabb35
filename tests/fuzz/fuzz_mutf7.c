/* Mailbox names in modified UTF-7 (node/imap/imap_utf7.c), both ways:
 * a valid name converts to UTF-8 and back to the same name. */
#include "fuzz.h"

#include "../../node/imap/imap_parse.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_str(data, size);
	char utf8[1024], back[1024], small[6];

	bool valid = imap_mutf7_valid(in);
	int r = imap_mutf7_to_utf8(in, utf8, sizeof(utf8));
	if (valid && size < 256 && r != 0)
		abort(); /* a valid short name always converts */
	if (r == 0 && valid) {
		if (imap_utf8_to_mutf7(utf8, back, sizeof(back)) == 0 &&
		    strcmp(back, in) != 0)
			abort(); /* not the inverse */
	}
	(void)imap_mutf7_to_utf8(in, small, sizeof(small));
	if (imap_utf8_to_mutf7(in, back, sizeof(back)) == 0 &&
	    !imap_mutf7_valid(back))
		abort(); /* encoding made an invalid name */
	(void)imap_utf8_to_mutf7(in, small, sizeof(small));
	free(in);
	return 0;
}
