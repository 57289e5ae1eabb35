/* A milter's answers (node/smtp/milter_proto.c) applied to a message's
 * header section (milter_headers.c). The input: a message up to its
 * first NUL byte, read as the node reads one; then a stream of milter
 * packets, each read, checked as its kind says, and the header edits
 * applied. Every field must stay one "Name: value" ending in CRLF. */
#include "fuzz.h"

#include "../../node/smtp/milter_headers.h"
#include "../../node/smtp/milter_proto.h"

static void
fuzz_check(const struct milter_headers *h)
{
	char value[4096];
	for (size_t i = 0; i < h->n; i++) {
		const struct milter_field *f = &h->f[i];
		if (f->len < f->namelen + 2 || f->text[f->namelen] != ':' ||
		    f->text[f->len - 1] != '\n')
			abort(); /* a field lost its shape */
		milter_field_value(f, i & 1, value, sizeof(value));
	}
	(void)milter_headers_spam(h);
}

static void
fuzz_packet(struct milter_headers *h, const struct milter_packet *p)
{
	uint32_t a, b, c;
	const char *name, *value, *text;
	switch (p->cmd) {
	case MILTER_R_OPTNEG:
		(void)milter_optneg_parse(p, &a, &b, &c);
		break;
	case MILTER_R_ADDHEADER:
	case MILTER_R_INSHEADER:
	case MILTER_R_CHGHEADER:
		if (milter_header_parse(p, &a, &name, &value) < 0)
			break;
		if (p->cmd == MILTER_R_ADDHEADER)
			(void)milter_headers_add(h, name, value);
		else if (p->cmd == MILTER_R_INSHEADER)
			(void)milter_headers_insert(h, a, name, value);
		else
			(void)milter_headers_change(h, a, name, value);
		break;
	case MILTER_R_REPLYCODE:
		(void)milter_reply_parse(p, &text);
		break;
	default:
		(void)milter_string_parse(p, &text);
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t msglen = nul ? (size_t)(nul - data) : size;
	char *msg = fuzz_str(data, msglen);
	size_t rest = size - msglen - (nul != NULL);
	char *packets = fuzz_str(data + size - rest, rest);
	struct milter_headers h;
	if (milter_headers_read(&h, msg, msglen) < 0)
		abort();
	if (h.end > msglen || h.body > msglen || h.end > h.body)
		abort();
	fuzz_check(&h);
	size_t off = 0;
	for (int i = 0; i < 256; i++) {
		struct milter_packet p;
		long n = milter_packet_read(packets + off, rest - off, &p);
		if (n <= 0)
			break;
		if ((size_t)n > rest - off)
			abort();
		fuzz_packet(&h, &p);
		off += (size_t)n;
	}
	fuzz_check(&h);
	milter_headers_free(&h);
	free(msg);
	free(packets);
	return 0;
}
