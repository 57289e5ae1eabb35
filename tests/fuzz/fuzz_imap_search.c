/* IMAP SEARCH programs (node/imap/imap_search.c): parsed, then run
 * against a message whose text callbacks answer from the input itself. */
#include "fuzz.h"

#include "../../node/imap/imap_search.h"

static bool
cb_header(void *arg, const char *field, const char *needle)
{
	return strstr((const char *)arg, field) != NULL &&
	       strstr((const char *)arg, needle) != NULL;
}

static bool
cb_text(void *arg, const char *needle)
{
	return strstr((const char *)arg, needle) != NULL;
}

static bool
cb_date(void *arg, time_t *t)
{
	*t = 760060800 + (time_t)strlen((const char *)arg) * 86400;
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fuzz_str(data, size);
	struct imap_search *s;
	struct imap_cur c;

	imap_cur_init(&c, in, size);
	if (imap_search_parse(&c, &s) == 0) {
		struct imap_search_msg m = {
		    .seq = 2,
		    .uid = 5,
		    .flags = IMAP_F_SEEN | IMAP_F_RECENT,
		    .size = 100,
		    .internaldate = 760060800,
		    .arg = in,
		    .header_has = cb_header,
		    .body_has = cb_text,
		    .text_has = cb_text,
		    .sent_date = cb_date,
		};
		(void)imap_search_needs_text(s);
		(void)imap_search_needs_internaldate(s);
		(void)imap_search_match(s, &m, 3, 9);
		(void)imap_search_match(s, &m, 0, 0);
		m.uid = 4294967295u;
		(void)imap_search_match(s, &m, 4294967295u, 4294967295u);
		imap_search_free(s);
	} else if (s != NULL)
		abort(); /* the contract: NULL on failure */
	free(in);
	return 0;
}
