#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
strbuf_init(struct strbuf *sb, size_t max)
{
	memset(sb, 0, sizeof(*sb));
	sb->max = max;
}

void
strbuf_free(struct strbuf *sb)
{
	free(sb->buf);
	sb->buf = NULL;
	sb->len = sb->cap = 0;
	sb->overflow = false;
}

void
strbuf_reset(struct strbuf *sb)
{
	sb->len = 0;
	if (sb->buf != NULL)
		sb->buf[0] = '\0';
	sb->overflow = false;
}

const char *
strbuf_str(const struct strbuf *sb)
{
	return sb->buf != NULL ? sb->buf : "";
}

/* Makes room for n more bytes plus the NUL. */
static int
strbuf_reserve(struct strbuf *sb, size_t n)
{
	if (n > sb->max || sb->len > sb->max - n) {
		sb->overflow = true;
		return -1;
	}
	if (sb->len + n + 1 <= sb->cap)
		return 0;
	size_t cap = sb->cap ? sb->cap : 256;
	while (cap < sb->len + n + 1)
		cap *= 2;
	if (cap > sb->max + 1)
		cap = sb->max + 1;
	char *nb = realloc(sb->buf, cap);
	if (nb == NULL) {
		sb->overflow = true;
		return -1;
	}
	sb->buf = nb;
	sb->cap = cap;
	return 0;
}

int
strbuf_append(struct strbuf *sb, const void *data, size_t n)
{
	if (strbuf_reserve(sb, n) < 0)
		return -1;
	memcpy(sb->buf + sb->len, data, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
	return 0;
}

int
strbuf_appends(struct strbuf *sb, const char *s)
{
	return strbuf_append(sb, s, strlen(s));
}

int
strbuf_append_u64(struct strbuf *sb, uint64_t v)
{
	char d[20]; /* UINT64_MAX has 20 digits */
	size_t n = sizeof(d);
	do {
		d[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	return strbuf_append(sb, d + n, sizeof(d) - n);
}

int
strbuf_appendf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	char small[256];

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return strbuf_append(sb, small, (size_t)n);
	if (strbuf_reserve(sb, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
	return 0;
}

int
strbuf_append_json(struct strbuf *sb, const char *s)
{
	size_t start = sb->len;

	if (strbuf_append(sb, "\"", 1) < 0)
		goto fail;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int rc;
		size_t run = 0;
		/* A run of bytes that pass as they are, in one append. */
		while (p[run] >= 0x20 && p[run] != 0x7f && p[run] != '"' &&
		       p[run] != '\\')
			run++;
		if (run > 0) {
			if (strbuf_append(sb, p, run) < 0)
				goto fail;
			p += run - 1;
			continue;
		}
		if (*p == '"' || *p == '\\') {
			char e[2] = {'\\', (char)*p};
			rc = strbuf_append(sb, e, 2);
		} else if (*p == '\n') {
			rc = strbuf_append(sb, "\\n", 2);
		} else if (*p == '\r') {
			rc = strbuf_append(sb, "\\r", 2);
		} else if (*p == '\t') {
			rc = strbuf_append(sb, "\\t", 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			rc = strbuf_appendf(sb, "\\u%04x", *p);
		} else {
			rc = strbuf_append(sb, p, 1);
		}
		if (rc < 0)
			goto fail;
	}
	if (strbuf_append(sb, "\"", 1) < 0)
		goto fail;
	return 0;
fail:
	/* all or nothing: drop the half-written string */
	sb->len = start;
	if (sb->buf != NULL)
		sb->buf[start] = '\0';
	sb->overflow = true;
	return -1;
}

int
strbuf_append_padded(struct strbuf *sb, const char *s, size_t width)
{
	size_t n = strlen(s);
	if (strbuf_append(sb, s, n) < 0)
		return -1;
	for (; n < width; n++)
		if (strbuf_append(sb, " ", 1) < 0)
			return -1;
	return 0;
}

void
strbuf_consume(struct strbuf *sb, size_t n)
{
	if (n >= sb->len) {
		strbuf_reset(sb);
		return;
	}
	memmove(sb->buf, sb->buf + n, sb->len - n + 1);
	sb->len -= n;
}
