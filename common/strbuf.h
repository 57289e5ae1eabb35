/* A growable string buffer with a hard cap, so that no answer or queue can
 * grow without bound. The text is always NUL-terminated. An append that
 * would pass the cap appends nothing, sets the overflow flag and fails. */
#ifndef MS_STRBUF_H
#define MS_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf {
	char *buf; /* NULL until the first append */
	size_t len, cap;
	size_t max; /* hard cap on len */
	bool overflow;
};

/* A zeroed struct strbuf is not usable: max must be set. */
void strbuf_init(struct strbuf *sb, size_t max);
void strbuf_free(struct strbuf *sb);
/* Empties the buffer (keeps its memory) and clears the overflow flag. */
void strbuf_reset(struct strbuf *sb);
/* The text, "" when empty; valid until the next change. */
const char *strbuf_str(const struct strbuf *sb);

/* Each returns 0, or -1 (nothing appended) past the cap or out of memory. */
int strbuf_append(struct strbuf *sb, const void *data, size_t n);
int strbuf_appends(struct strbuf *sb, const char *s);
int strbuf_appendf(struct strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* v in decimal (what "%llu" gives, without printf's cost: FETCH 1:*
 * writes a few numbers per message). */
int strbuf_append_u64(struct strbuf *sb, uint64_t v);
/* s as a JSON string, quotes included: '"', '\\' and control bytes are
 * escaped; other bytes pass as they are. */
int strbuf_append_json(struct strbuf *sb, const char *s);
/* Pads with spaces up to width columns after writing s (left-aligned). */
int strbuf_append_padded(struct strbuf *sb, const char *s, size_t width);

/* Drops the first n bytes (what a writer has sent). */
void strbuf_consume(struct strbuf *sb, size_t n);

#endif
