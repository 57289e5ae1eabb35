/* IMAP FETCH item lists (node/imap/imap_parse.c imap_fetch_parse):
 * "(FLAGS BODY.PEEK[1.2.HEADER.FIELDS (From)]<0.100>)", each item's name
 * as the answer carries it. */
#include "fuzz.h"

#include "../../common/strbuf.h"
#include "../../node/imap/imap_parse.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_str(data, size);
	struct imap_fetch f;
	struct imap_cur c;
	struct strbuf sb;

	imap_cur_init(&c, in, size);
	strbuf_init(&sb, 65536);
	if (imap_fetch_parse(&c, &f) == 0) {
		(void)imap_end(&c);
		for (size_t i = 0; i < f.n; i++) {
			strbuf_reset(&sb);
			if (imap_fetch_item_name(&f.item[i], &sb) < 0)
				abort(); /* every parsed item has a name */
		}
	}
	imap_fetch_free(&f);
	strbuf_free(&sb);
	free(in);
	return 0;
}
