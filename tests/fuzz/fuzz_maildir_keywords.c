/* dovecot-keywords (node/store/maildir_keywords.c maildir_keywords_parse):
 * what Dovecot, or anything else sharing the store, left in a mailbox.
 * Every name kept must be one the store would write itself, and names
 * no two alike. */
#include "fuzz.h"

#include "../../node/store/maildir_int.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_str(data, size);
	struct maildir_keywords kw;

	maildir_keywords_parse(text, &kw);
	for (int i = 0; i < MAILDIR_KEYWORDS; i++) {
		if (kw.name[i][0] == '\0')
			continue;
		if (!maildir_keyword_valid(kw.name[i]) ||
		    maildir_keyword_index(&kw, kw.name[i]) != i)
			abort();
	}
	free(text);
	return 0;
}
