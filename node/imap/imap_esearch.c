/* ESEARCH (RFC 4731): the answer to SEARCH RETURN (MIN MAX COUNT ALL)
 * (imap_args_search_return reads it), "* ESEARCH (TAG "a") UID MIN 2
 * MAX 9 COUNT 3 ALL 2,5:9", and the compact sequence sets it (and
 * COPYUID) write. */
#include <string.h>

#include "imap.h"

int
imap_seqset_format(struct strbuf *sb, const uint32_t *v, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = i;
		while (k + 1 < n && v[k + 1] == v[k] + 1)
			k++;
		int rc = k > i ? strbuf_appendf(sb, "%s%u:%u", i ? "," : "",
						v[i], v[k])
			       : strbuf_appendf(sb, "%s%u", i ? "," : "", v[i]);
		if (rc < 0)
			return -1;
		i = k + 1;
	}
	return 0;
}

int
imap_esearch_answer(struct strbuf *sb, const char *tag, bool uid, unsigned ret,
		    const uint32_t *v, size_t n)
{
	strbuf_appends(sb, "ESEARCH (TAG ");
	imap_append_string(sb, tag, strlen(tag));
	strbuf_appendf(sb, ")%s", uid ? " UID" : "");
	if ((ret & IMAP_ESEARCH_MIN) && n > 0)
		strbuf_appendf(sb, " MIN %u", v[0]);
	if ((ret & IMAP_ESEARCH_MAX) && n > 0)
		strbuf_appendf(sb, " MAX %u", v[n - 1]);
	if (ret & IMAP_ESEARCH_COUNT)
		strbuf_appendf(sb, " COUNT %zu", n);
	if ((ret & IMAP_ESEARCH_ALL) && n > 0) {
		strbuf_appends(sb, " ALL ");
		imap_seqset_format(sb, v, n);
	}
	return sb->overflow ? -1 : 0;
}
