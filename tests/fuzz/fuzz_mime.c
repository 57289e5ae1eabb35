/* Messages as IMAP sees them (node/imap/imap_mime.c, imap_envelope.c,
 * imap_mime_text.c): the MIME tree, ENVELOPE, BODY and BODYSTRUCTURE,
 * sections, header search, body search and the Date: header; the web
 * role's leaves, their decoding and decoded headers (imap_mime_leaf.c).
 * The input is the message (bare LFs become CRLF first, as APPEND
 * does). */
#include "fuzz.h"

#include "../../common/strbuf.h"
#include "../../node/imap/imap_mime.h"

static const uint32_t parts[][3] = {
    {1, 0, 0}, {2, 0, 0}, {1, 1, 0}, {1, 2, 1}, {3, 1, 2}};
static const size_t nparts[] = {1, 1, 2, 3, 3};

/* Each leaf decoded: never longer than its content, NUL after it. */
static int
fuzz_leaf(void *arg, const struct imap_mime_leaf *l)
{
	size_t n;
	char *d = imap_mime_leaf_decode(l, &n);
	(void)arg;
	if (d == NULL || n > l->bodylen || d[n] != '\0' ||
	    strlen(l->section) == 0)
		abort();
	free(d);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char fields[2][IMAP_FIELD_NAME_MAX] = {"From", "Subject"};
	char *msg = malloc(2 * size + 1);
	size_t len = 0;
	struct strbuf sb;
	const char *out;
	size_t outlen;
	time_t t;

	if (msg == NULL)
		abort();
	for (size_t i = 0; i < size; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			msg[len++] = '\r';
		msg[len++] = (char)data[i];
	}
	struct imap_mime *m = imap_mime_parse(msg, len);
	if (m == NULL)
		abort();
	strbuf_init(&sb, 1 << 22);
	(void)imap_mime_envelope(m, &sb);
	strbuf_reset(&sb);
	(void)imap_mime_bodystructure(m, true, &sb);
	strbuf_reset(&sb);
	(void)imap_mime_bodystructure(m, false, &sb);
	for (size_t p = 0; p < 5; p++)
		for (int spec = IMAP_SECT_ALL; spec <= IMAP_SECT_MIME; spec++) {
			strbuf_reset(&sb);
			if (imap_mime_section(m, parts[p], nparts[p], spec,
					      fields, 2, &sb, &out,
					      &outlen) == 0 &&
			    outlen > 0 && out == NULL)
				abort();
		}
	strbuf_reset(&sb);
	(void)imap_mime_section(m, NULL, 0, IMAP_SECT_HEADER_FIELDS_NOT, fields,
				2, &sb, &out, &outlen);
	(void)imap_mime_header_has(m, "subject", "caf\xc3\xa9");
	(void)imap_mime_header_has(m, "", "");
	(void)imap_mime_body_has(m, "hello");
	(void)imap_mime_date(m, &t);
	size_t hl = imap_hdr_len(msg, len);
	if (hl > len)
		abort();
	(void)imap_hdr_has(msg, hl, "to", "a");
	(void)imap_hdr_date(msg, hl, &t);
	if (imap_mime_leaves(m, fuzz_leaf, NULL) != 0)
		abort();
	char v[64];
	if (imap_mime_header_get(m, "subject", v, sizeof(v)) &&
	    strlen(v) >= sizeof(v))
		abort();
	imap_mime_free(m);
	strbuf_free(&sb);
	free(msg);
	return 0;
}
