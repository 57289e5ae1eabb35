/* The header section under the milters' edits. */
#include "milter_headers.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../common/fdio.h"

/* The length of the line at p (up to and including its LF; the rest when
 * there is none). */
static size_t
milter_line_len(const char *p, size_t left)
{
	const char *lf = memchr(p, '\n', left);
	return lf ? (size_t)(lf - p) + 1 : left;
}

/* The length of a field name at p, ended by ':', or 0 when the line is
 * not a field. */
static size_t
milter_name_len(const char *p, size_t linelen)
{
	size_t i = 0;
	while (i < linelen && p[i] > ' ' && p[i] <= '~' && p[i] != ':')
		i++;
	return i > 0 && i < linelen && p[i] == ':' ? i : 0;
}

/* Makes room for one more field at position at. */
static int
milter_headers_room(struct milter_headers *h, size_t at)
{
	if (h->n >= MILTER_FIELDS_MAX)
		return -1;
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 32;
		void *m = realloc(h->f, cap * sizeof(*h->f));
		if (m == NULL)
			return -1;
		h->f = m;
		h->cap = cap;
	}
	memmove(h->f + at + 1, h->f + at, (h->n - at) * sizeof(*h->f));
	h->n++;
	return 0;
}

static int
milter_headers_push(struct milter_headers *h, const char *text, size_t len,
		    size_t namelen)
{
	char *copy = malloc(len + 1);
	if (copy == NULL || milter_headers_room(h, h->n) < 0) {
		free(copy);
		return -1;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	h->f[h->n - 1] = (struct milter_field){copy, len, namelen};
	return 0;
}

int
milter_headers_read(struct milter_headers *h, const char *buf, size_t len)
{
	size_t off = 0;
	memset(h, 0, sizeof(*h));
	while (off < len && h->n < MILTER_FIELDS_READ) {
		size_t l = milter_line_len(buf + off, len - off);
		if (buf[off + l - 1] != '\n')
			break; /* cut by the read's bound: body from here */
		if (l <= 2 && (l == 1 || buf[off] == '\r')) {
			h->end = off;
			h->body = off + l;
			return 0;
		}
		size_t namelen = milter_name_len(buf + off, l);
		if (namelen == 0)
			break;
		size_t flen = l;
		while (off + flen < len &&
		       (buf[off + flen] == ' ' || buf[off + flen] == '\t')) {
			size_t cl =
			    milter_line_len(buf + off + flen, len - off - flen);
			if (buf[off + flen + cl - 1] != '\n')
				break;
			flen += cl;
		}
		if (milter_headers_push(h, buf + off, flen, namelen) < 0) {
			milter_headers_free(h);
			return -1;
		}
		off += flen;
	}
	h->end = h->body = off;
	return 0;
}

void
milter_headers_free(struct milter_headers *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->f[i].text);
	free(h->f);
	memset(h, 0, sizeof(*h));
}

void
milter_field_value(const struct milter_field *f, bool leadspace, char *out,
		   size_t outlen)
{
	size_t i = f->namelen + 1, o = 0, end = f->len;
	if (!leadspace && i < end && f->text[i] == ' ')
		i++;
	while (end > i &&
	       (f->text[end - 1] == '\n' || f->text[end - 1] == '\r'))
		end--;
	for (; i < end && o + 1 < outlen; i++)
		if (f->text[i] != '\r' || f->text[i + 1] != '\n')
			out[o++] = f->text[i];
	out[o] = '\0';
}

/* "name: value\r\n" with the value's line breaks made CRLF, malloc'ed. */
static char *
milter_field_format(const char *name, const char *value, size_t *len)
{
	size_t n = strlen(name) + strlen(value) * 2 + 5;
	char *t = malloc(n), *o = t;
	if (t == NULL)
		return NULL;
	o += sprintf(o, "%s: ", name);
	for (const char *v = value; *v; v++) {
		if (*v == '\r')
			continue;
		if (*v == '\n')
			*o++ = '\r';
		*o++ = *v;
	}
	memcpy(o, "\r\n", 3);
	*len = (size_t)(o - t) + 2;
	return t;
}

int
milter_headers_insert(struct milter_headers *h, size_t index, const char *name,
		      const char *value)
{
	size_t len;
	char *t = milter_field_format(name, value, &len);
	if (index > h->n)
		index = h->n;
	if (t == NULL || milter_headers_room(h, index) < 0) {
		free(t);
		return -1;
	}
	h->f[index] = (struct milter_field){t, len, strlen(name)};
	h->changed = true;
	return 0;
}

int
milter_headers_add(struct milter_headers *h, const char *name,
		   const char *value)
{
	return milter_headers_insert(h, h->n, name, value);
}

int
milter_headers_change(struct milter_headers *h, size_t index, const char *name,
		      const char *value)
{
	size_t namelen = strlen(name), seen = 0;
	for (size_t i = 0; i < h->n; i++) {
		struct milter_field *f = &h->f[i];
		if (f->namelen != namelen ||
		    strncasecmp(f->text, name, namelen) != 0 || ++seen != index)
			continue;
		h->changed = true;
		if (*value == '\0') {
			free(f->text);
			memmove(f, f + 1, (h->n - i - 1) * sizeof(*f));
			h->n--;
			return 0;
		}
		size_t len;
		char *t = milter_field_format(name, value, &len);
		if (t == NULL)
			return -1;
		free(f->text);
		*f = (struct milter_field){t, len, namelen};
		return 0;
	}
	return *value ? milter_headers_add(h, name, value) : 0;
}

/* True when field f is called name and its value starts with word (both
 * in any case). */
static bool
milter_field_starts(const struct milter_field *f, const char *name,
		    const char *word)
{
	char v[64];
	size_t n = strlen(name);
	if (f->namelen != n || strncasecmp(f->text, name, n) != 0)
		return false;
	milter_field_value(f, false, v, sizeof(v));
	const char *p = v;
	while (*p == ' ' || *p == '\t')
		p++;
	return strncasecmp(p, word, strlen(word)) == 0;
}

bool
milter_headers_spam(const struct milter_headers *h)
{
	for (size_t i = 0; i < h->n; i++) {
		const struct milter_field *f = &h->f[i];
		if (milter_field_starts(f, "X-Spam", "yes") ||
		    milter_field_starts(f, "X-Spam-Flag", "yes") ||
		    milter_field_starts(f, "X-Spam-Status", "yes") ||
		    milter_field_starts(f, "X-Spamd-Result", "default: true"))
			return true;
	}
	return false;
}

long
milter_headers_write(const struct milter_headers *h, int src, size_t len,
		     int body, size_t body_len, int out)
{
	size_t total = 0;
	for (size_t i = 0; i < h->n; i++) {
		if (fd_write_all(out, h->f[i].text, h->f[i].len) < 0)
			return -1;
		total += h->f[i].len;
	}
	if (h->end > len || h->body > len) {
		errno = EINVAL;
		return -1;
	}
	if (body < 0) {
		if (fd_copy_range(src, (off_t)h->end, out, len - h->end) < 0)
			return -1;
		return (long)(total + len - h->end);
	}
	size_t gap = h->body - h->end; /* the empty line */
	if ((gap > 0 ? fd_copy_range(src, (off_t)h->end, out, gap)
		     : fd_write_all(out, "\r\n", 2)) < 0 ||
	    fd_copy_range(body, 0, out, body_len) < 0)
		return -1;
	return (long)(total + (gap > 0 ? gap : 2) + body_len);
}
