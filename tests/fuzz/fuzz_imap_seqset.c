/* IMAP sequence sets (node/imap/imap_parse.c): "1,3:5,*:2", checked
 * against membership for a few mailbox sizes. */
#include "fuzz.h"

#include "../../node/imap/imap_parse.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct imap_seqset set;
	char *in = fuzz_str(data, size);
	struct imap_cur c;

	imap_cur_init(&c, in, size);
	if (imap_seqset(&c, &set) == 0) {
		if (set.n == 0 || set.n > IMAP_SEQSET_MAX)
			abort();
		(void)imap_end(&c);
		static const uint32_t probes[] = {1, 2, 7, 4294967295u};
		for (size_t i = 0; i < 4; i++) {
			(void)imap_seqset_has(&set, probes[i], 10);
			(void)imap_seqset_has(&set, probes[i], 4294967295u);
			if (imap_seqset_has(&set, probes[i], 0))
				abort(); /* nothing is in an empty mailbox */
		}
	}
	free(in);
	return 0;
}
