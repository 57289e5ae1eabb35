/* Modified UTF-7 of IMAP mailbox names (RFC 3501 5.1.3): printable
 * US-ASCII stands for itself, '&' is "&-", anything else is a "&...-" run
 * of modified BASE64 (',' for '/', no '=' padding) of UTF-16BE. */
#include <stdint.h>
#include <string.h>

#include "imap_parse.h"

static const char imap_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* A bounded output; with buf NULL it only counts (validation). */
struct imap_out {
	char *buf;
	size_t len, cap;
};

static int
imap_out_put(struct imap_out *o, char ch)
{
	if (o->buf == NULL)
		return 0;
	if (o->cap == 0 || o->len >= o->cap - 1)
		return -1;
	o->buf[o->len++] = ch;
	o->buf[o->len] = '\0';
	return 0;
}

static bool
imap_is_printable(uint32_t cp)
{
	return cp >= 0x20 && cp <= 0x7e;
}

static int
imap_b64_value(char ch)
{
	const char *p = ch ? strchr(imap_b64, ch) : NULL;
	return p ? (int)(p - imap_b64) : -1;
}

static int
imap_put_utf8(struct imap_out *o, uint32_t cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18);
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	for (size_t i = 0; i < n; i++)
		if (imap_out_put(o, b[i]) < 0)
			return -1;
	return 0;
}

/* One "&...-" run, *pp just after the '&' and not at "-"; leaves *pp after
 * the '-'. Every character must be a valid non-printable UTF-16 one. */
static int
imap_mutf7_run(const char **pp, struct imap_out *o)
{
	const char *p = *pp;
	uint32_t bits = 0, high = 0;
	unsigned nbits = 0;
	for (; *p != '-'; p++) {
		int v = imap_b64_value(*p);
		if (v < 0)
			return -1; /* also the end of the string */
		bits = (bits << 6 | (uint32_t)v) & 0xffffff;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t u = (bits >> nbits) & 0xffff;
		if (u >= 0xd800 && u <= 0xdbff) {
			if (high)
				return -1;
			high = u;
			continue;
		}
		if (u >= 0xdc00 && u <= 0xdfff) {
			if (!high)
				return -1;
			u = 0x10000 + ((high - 0xd800) << 10) + (u - 0xdc00);
			high = 0;
		} else if (high)
			return -1;
		if (u == 0 || imap_is_printable(u) || imap_put_utf8(o, u) < 0)
			return -1;
	}
	/* At least one character; what is left is zero padding. */
	if (p == *pp || high || nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0)
		return -1;
	*pp = p + 1;
	return 0;
}

/* Decodes in into o (or only checks it, o->buf NULL). A run right
 * after another ("&AOk-&AOk-") is refused: the encoder makes one run of
 * them, and two spellings of one name would be two folders that look
 * the same. */
static int
imap_mutf7_decode(const char *in, struct imap_out *o)
{
	const char *p = in, *run_end = NULL;
	while (*p) {
		unsigned char ch = (unsigned char)*p;
		if (!imap_is_printable(ch))
			return -1;
		if (ch != '&') {
			if (imap_out_put(o, (char)ch) < 0)
				return -1;
			p++;
		} else if (p[1] == '-') {
			if (imap_out_put(o, '&') < 0)
				return -1;
			p += 2;
		} else {
			if (p == run_end)
				return -1;
			p++;
			if (imap_mutf7_run(&p, o) < 0)
				return -1;
			run_end = p;
		}
	}
	return 0;
}

bool
imap_mutf7_valid(const char *name)
{
	struct imap_out o = {NULL, 0, 0};
	return imap_mutf7_decode(name, &o) == 0;
}

int
imap_mutf7_to_utf8(const char *in, char *out, size_t outlen)
{
	struct imap_out o = {out, 0, outlen};
	if (outlen == 0)
		return -1;
	out[0] = '\0';
	return imap_mutf7_decode(in, &o);
}

/* The next code point of valid UTF-8 at *pp (no overlong forms, no
 * surrogates, at most U+10FFFF), or -1. */
static int32_t
imap_utf8_next(const unsigned char **pp)
{
	const unsigned char *p = *pp;
	uint32_t cp;
	size_t n;
	if (p[0] < 0x80) {
		*pp = p + 1;
		return p[0];
	}
	if ((p[0] & 0xe0) == 0xc0) {
		cp = p[0] & 0x1f;
		n = 1;
	} else if ((p[0] & 0xf0) == 0xe0) {
		cp = p[0] & 0x0f;
		n = 2;
	} else if ((p[0] & 0xf8) == 0xf0) {
		cp = p[0] & 0x07;
		n = 3;
	} else
		return -1;
	for (size_t i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return -1;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*pp = p + n + 1;
	return (int32_t)cp;
}

/* Base64 state of a run being written. */
struct imap_b64w {
	uint32_t bits;
	unsigned nbits;
	bool open;
};

static int
imap_b64_unit(struct imap_out *o, struct imap_b64w *w, uint32_t u)
{
	if (!w->open) {
		if (imap_out_put(o, '&') < 0)
			return -1;
		w->open = true;
	}
	w->bits = (w->bits << 16 | u) & 0xffffff;
	w->nbits += 16;
	while (w->nbits >= 6) {
		w->nbits -= 6;
		if (imap_out_put(o, imap_b64[(w->bits >> w->nbits) & 0x3f]) < 0)
			return -1;
	}
	return 0;
}

static int
imap_b64_close(struct imap_out *o, struct imap_b64w *w)
{
	if (!w->open)
		return 0;
	if (w->nbits > 0 &&
	    imap_out_put(o, imap_b64[(w->bits << (6 - w->nbits)) & 0x3f]) < 0)
		return -1;
	w->bits = 0;
	w->nbits = 0;
	w->open = false;
	return imap_out_put(o, '-');
}

int
imap_utf8_to_mutf7(const char *in, char *out, size_t outlen)
{
	struct imap_out o = {out, 0, outlen};
	struct imap_b64w w = {0, 0, false};
	const unsigned char *p = (const unsigned char *)in;
	if (outlen == 0)
		return -1;
	out[0] = '\0';
	while (*p) {
		int32_t cp = imap_utf8_next(&p);
		if (cp < 0)
			return -1;
		if (imap_is_printable((uint32_t)cp)) {
			if (imap_b64_close(&o, &w) < 0 ||
			    imap_out_put(&o, (char)cp) < 0 ||
			    (cp == '&' && imap_out_put(&o, '-') < 0))
				return -1;
			continue;
		}
		uint32_t u = (uint32_t)cp;
		if (u >= 0x10000) {
			u -= 0x10000;
			if (imap_b64_unit(&o, &w, 0xd800 + (u >> 10)) < 0 ||
			    imap_b64_unit(&o, &w, 0xdc00 + (u & 0x3ff)) < 0)
				return -1;
		} else if (imap_b64_unit(&o, &w, u) < 0)
			return -1;
	}
	return imap_b64_close(&o, &w);
}
