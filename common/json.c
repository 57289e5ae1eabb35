#include "json.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct json_reader {
	const unsigned char *p, *end;
	char *out, *outend;
	const char *why;
};

static void
json_skip_ws(struct json_reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' ||
				 *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

static int
json_fail(struct json_reader *r, const char *why)
{
	if (r->why == NULL)
		r->why = why;
	return -1;
}

static int
json_put(struct json_reader *r, const void *data, size_t n)
{
	if ((size_t)(r->outend - r->out) < n)
		return json_fail(r, "too long");
	memcpy(r->out, data, n);
	r->out += n;
	return 0;
}

/* Encodes code point cp as UTF-8 into the output. */
static int
json_put_utf8(struct json_reader *r, uint32_t cp)
{
	unsigned char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return json_put(r, b, n);
}

/* Four hex digits after \u. Returns the value or -1. */
static long
json_hex4(struct json_reader *r)
{
	long v = 0;
	if (r->end - r->p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		unsigned char c = *r->p++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* \uXXXX, with a surrogate pair when the first is a high surrogate. */
static int
json_unicode_escape(struct json_reader *r)
{
	long hi = json_hex4(r);
	if (hi < 0)
		return json_fail(r, "bad \\u escape");
	uint32_t cp = (uint32_t)hi;
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return json_fail(r, "lone low surrogate");
	if (hi >= 0xd800 && hi <= 0xdbff) {
		if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
			return json_fail(r, "lone high surrogate");
		r->p += 2;
		long lo = json_hex4(r);
		if (lo < 0xdc00 || lo > 0xdfff)
			return json_fail(r, "bad surrogate pair");
		cp = 0x10000 + (((uint32_t)hi - 0xd800) << 10) +
		     ((uint32_t)lo - 0xdc00);
	}
	if (cp == 0)
		return json_fail(r, "\\u0000 not allowed");
	return json_put_utf8(r, cp);
}

static int
json_escape(struct json_reader *r)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	if (r->p == r->end)
		return json_fail(r, "unterminated string");
	unsigned char c = *r->p++;
	if (c == 'u')
		return json_unicode_escape(r);
	const char *k = c ? strchr(from, c) : NULL;
	if (k == NULL)
		return json_fail(r, "bad escape");
	return json_put(r, &to[k - from], 1);
}

/* One raw UTF-8 sequence starting at r->p (first byte >= 0x80): checked
 * for shortest form, no surrogates, at most U+10FFFF, then copied. */
static int
json_utf8(struct json_reader *r)
{
	const unsigned char *s = r->p;
	size_t n;
	uint32_t cp, min;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
		min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
		min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else
		return json_fail(r, "invalid UTF-8");
	if ((size_t)(r->end - s) < n)
		return json_fail(r, "invalid UTF-8");
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return json_fail(r, "invalid UTF-8");
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return json_fail(r, "invalid UTF-8");
	r->p += n;
	return json_put(r, s, n);
}

/* A string at r->p (the opening quote); its decoded text, NUL-terminated,
 * goes to the output, *start pointing at it. */
static int
json_string(struct json_reader *r, const char **start, size_t *len)
{
	if (r->p == r->end || *r->p != '"')
		return json_fail(r, "string expected");
	r->p++;
	char *begin = r->out;
	for (;;) {
		if (r->p == r->end)
			return json_fail(r, "unterminated string");
		unsigned char c = *r->p;
		if (c == '"') {
			r->p++;
			break;
		}
		int rc;
		if (c == '\\') {
			r->p++;
			rc = json_escape(r);
		} else if (c < 0x20) {
			rc = json_fail(r, "control character in string");
		} else if (c >= 0x80) {
			rc = json_utf8(r);
		} else {
			r->p++;
			rc = json_put(r, &c, 1);
		}
		if (rc < 0)
			return -1;
	}
	*len = (size_t)(r->out - begin);
	if (json_put(r, "", 1) < 0)
		return -1;
	*start = begin;
	return 0;
}

static int
json_member(struct json_reader *r, struct json_flat *o)
{
	const char *name, *value;
	size_t nlen, vlen;
	if (o->n == JSON_FLAT_MAX)
		return json_fail(r, "too many members");
	if (json_string(r, &name, &nlen) < 0)
		return -1;
	if (json_flat_get(o, name) != NULL)
		return json_fail(r, "duplicate member");
	json_skip_ws(r);
	if (r->p == r->end || *r->p != ':')
		return json_fail(r, "':' expected");
	r->p++;
	json_skip_ws(r);
	if (r->p == r->end || *r->p != '"')
		return json_fail(r, "member value is not a string");
	if (json_string(r, &value, &vlen) < 0)
		return -1;
	o->m[o->n].name = name;
	o->m[o->n].value = value;
	o->m[o->n].value_len = vlen;
	o->n++;
	return 0;
}

int
json_flat_parse(const char *text, size_t len, struct json_flat *out,
		char *store, size_t storelen, const char **why)
{
	struct json_reader r = {
	    .p = (const unsigned char *)text,
	    .end = (const unsigned char *)text + len,
	    .out = store,
	    .outend = store + storelen,
	};
	memset(out, 0, sizeof(*out));
	json_skip_ws(&r);
	if (r.p == r.end || *r.p != '{') {
		json_fail(&r, "object expected");
		goto fail;
	}
	r.p++;
	json_skip_ws(&r);
	if (r.p < r.end && *r.p == '}') {
		r.p++;
		goto done;
	}
	for (;;) {
		json_skip_ws(&r);
		if (json_member(&r, out) < 0)
			goto fail;
		json_skip_ws(&r);
		if (r.p == r.end) {
			json_fail(&r, "unterminated object");
			goto fail;
		}
		if (*r.p == '}') {
			r.p++;
			break;
		}
		if (*r.p != ',') {
			json_fail(&r, "',' or '}' expected");
			goto fail;
		}
		r.p++;
	}
done:
	json_skip_ws(&r);
	if (r.p != r.end) {
		json_fail(&r, "trailing data");
		goto fail;
	}
	return 0;
fail:
	memset(out, 0, sizeof(*out));
	*why = r.why ? r.why : "invalid JSON";
	return -1;
}

const char *
json_flat_get(const struct json_flat *o, const char *name)
{
	for (int i = 0; i < o->n; i++)
		if (strcmp(o->m[i].name, name) == 0)
			return o->m[i].value;
	return NULL;
}
