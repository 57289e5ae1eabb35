/* The decoded text SEARCH compares (RFC 3501 6.4.4): RFC 2047 encoded
 * words in header values, base64 and quoted-printable bodies (RFC 2045
 * 6.7, 6.8), ISO-8859-1 to UTF-8; and the Date: field (RFC 5322 3.3 with
 * the obsolete forms of 4.3) as an instant. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../common/sasl.h"
#include "../../common/strbuf.h"
#include "imap_mime_int.h"

/* ---- decoders: each writes at most its input length to out ---- */

static int
imap_text_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t
imap_text_base64(const char *s, size_t n, char *out)
{
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n && s[i] != '='; i++) {
		int v = base64_value((unsigned char)s[i]);
		if (v < 0)
			continue;
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	return o;
}

size_t
imap_text_qp(const char *s, size_t n, bool q, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (q && s[i] == '_') {
			out[o++] = ' ';
			continue;
		}
		if (s[i] != '=') {
			out[o++] = s[i];
			continue;
		}
		int hi = i + 2 < n ? imap_text_hex(s[i + 1]) : -1;
		int lo = i + 2 < n ? imap_text_hex(s[i + 2]) : -1;
		if (hi >= 0 && lo >= 0) {
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
			continue;
		}
		/* soft line break: '=', blanks, CRLF */
		size_t k = i + 1;
		while (k < n && (s[k] == ' ' || s[k] == '\t'))
			k++;
		if (k < n && s[k] == '\r')
			k++;
		if (k < n && s[k] == '\n') {
			i = k;
			continue;
		}
		if (k >= n && !q) {
			i = n;
			continue;
		}
		out[o++] = '=';
	}
	return o;
}

/* ISO-8859-1 s[0..n) as UTF-8 into out (2n bytes). */
static size_t
imap_text_latin1(const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x80) {
			out[o++] = (char)c;
		} else {
			out[o++] = (char)(0xc0 | c >> 6);
			out[o++] = (char)(0x80 | (c & 0x3f));
		}
	}
	return o;
}

static bool
imap_text_is_latin1(const char *cs, size_t n)
{
	static const char *names[] = {"iso-8859-1", "iso8859-1", "latin1",
				      "us-ascii", "ascii"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (imap_mime_name_eq(cs, n, names[i]))
			return true;
	return false;
}

/* ---- RFC 2047 encoded words ---- */

/* Decodes the encoded word at s[0..n) ("=?cs?e?text?=") into out (room
 * for 2 n). Returns its length in s, 0 when it is not one. */
static size_t
imap_text_word(const char *s, size_t n, char *out, size_t *olen)
{
	if (n < 8 || s[0] != '=' || s[1] != '?')
		return 0;
	const char *cs = s + 2, *end = s + n;
	const char *q1 = memchr(cs, '?', (size_t)(end - cs));
	if (q1 == NULL || q1 + 3 >= end || q1[2] != '?')
		return 0;
	char enc = (char)toupper((unsigned char)q1[1]);
	const char *text = q1 + 3, *p = text;
	while (p + 1 < end && !(p[0] == '?' && p[1] == '=')) {
		if (*p == ' ' || *p == '\t' || *p == '?')
			return 0;
		p++;
	}
	if (p + 1 >= end || (enc != 'B' && enc != 'Q'))
		return 0;
	size_t cslen = (size_t)(q1 - cs);
	const char *star = memchr(cs, '*', cslen); /* RFC 2231 language */
	if (star != NULL)
		cslen = (size_t)(star - cs);
	char *tmp = out + (size_t)(p - text); /* decode behind, then widen */
	size_t dn = enc == 'B'
			? imap_text_base64(text, (size_t)(p - text), tmp)
			: imap_text_qp(text, (size_t)(p - text), true, tmp);
	if (imap_text_is_latin1(cs, cslen)) {
		*olen = imap_text_latin1(tmp, dn, out);
	} else {
		memmove(out, tmp, dn);
		*olen = dn;
	}
	return (size_t)(p + 2 - s);
}

size_t
imap_text_decode_header(const char *v, size_t n, char *out)
{
	size_t o = 0, i = 0;
	size_t pending = 0; /* blanks held back after an encoded word */
	bool after_word = false;
	while (i < n) {
		size_t dn, wl = imap_text_word(v + i, n - i, out + o, &dn);
		if (wl > 0) {
			/* the blanks stay in out before the word: drop them */
			if (after_word && pending > 0) {
				memmove(out + o - pending, out + o, dn);
				o -= pending;
			}
			o += dn;
			i += wl;
			after_word = true;
			pending = 0;
			continue;
		}
		if (v[i] == ' ' || v[i] == '\t')
			pending++;
		else
			after_word = false, pending = 0;
		out[o++] = v[i++];
	}
	out[o] = '\0';
	return o;
}

/* ---- search ---- */

/* Whether needle occurs in h[0..n), ASCII case-insensitively. */
static bool
imap_text_contains(const char *h, size_t n, const char *needle)
{
	size_t k = strlen(needle);
	if (k == 0)
		return true;
	if (k > n)
		return false;
	int first = tolower((unsigned char)needle[0]);
	for (size_t i = 0; i + k <= n; i++) {
		if (tolower((unsigned char)h[i]) != first)
			continue;
		size_t j = 1;
		while (j < k && tolower((unsigned char)h[i + j]) ==
				    tolower((unsigned char)needle[j]))
			j++;
		if (j == k)
			return true;
	}
	return false;
}

bool
imap_mime_header_has(const struct imap_mime *m, const char *field,
		     const char *needle)
{
	return imap_hdr_has(m->root->hdr, m->root->hdrlen, field, needle);
}

int
imap_mime_binary(const struct imap_mime *m, const uint32_t *parts,
		 size_t nparts, char **out, size_t *len, bool *unknown)
{
	const struct imap_mime_part *p = NULL;
	const char *data = "";
	size_t n = 0;
	*unknown = false;
	bool found = imap_mime_walk(m, parts, nparts, &p);
	if (found && p == NULL) {
		data = m->root->hdr;
		n = m->root->hdrlen + m->root->bodylen;
	} else if (found) {
		data = p->body;
		n = p->bodylen;
	}
	if ((*out = malloc(n + 1)) == NULL)
		return -1;
	const char *enc = p != NULL && p->enc != NULL ? p->enc : "";
	size_t elen = imap_mime_enc_len(enc);
	if (p != NULL && p->child == NULL &&
	    imap_mime_name_eq(enc, elen, "base64"))
		*len = imap_text_base64(data, n, *out);
	else if (p != NULL && p->child == NULL &&
		 imap_mime_name_eq(enc, elen, "quoted-printable"))
		*len = imap_text_qp(data, n, false, *out);
	else {
		*unknown = elen > 0 && !imap_mime_name_eq(enc, elen, "7bit") &&
			   !imap_mime_name_eq(enc, elen, "8bit") &&
			   !imap_mime_name_eq(enc, elen, "binary");
		memcpy(*out, data, n);
		*len = n;
	}
	(*out)[*len] = '\0';
	return 0;
}

/* Fields that hold address lists. */
static bool
imap_hdr_is_address(const char *name, size_t len)
{
	static const char *const fields[] = {"From", "To",     "Cc",
					     "Bcc",  "Sender", "Reply-To"};
	for (size_t i = 0; i < sizeof(fields) / sizeof(*fields); i++)
		if (imap_mime_name_eq(name, len, fields[i]))
			return true;
	return false;
}

/* Whether the address list v, written without comments
 * (imap_addr_text) and its encoded words decoded, contains needle. */
static bool
imap_addr_has(const char *v, const char *needle)
{
	struct strbuf sb;
	bool hit = false;
	strbuf_init(&sb, 2 * strlen(v) + 64);
	if (imap_addr_text(v, &sb) == 0 && !sb.overflow) {
		char *d = malloc(2 * sb.len + 1);
		if (d != NULL) {
			size_t dn =
			    imap_text_decode_header(strbuf_str(&sb), sb.len, d);
			hit = imap_text_contains(d, dn, needle);
			free(d);
		}
	}
	strbuf_free(&sb);
	return hit;
}

/* f's value unfolded into *v (NUL-terminated, malloc'ed: the caller
 * frees *v) and, after it in the same buffer, decoded to UTF-8: that
 * text is returned, *dn bytes. NULL when memory is short. */
static const char *
imap_field_decode(const struct imap_mime_field *f, char **v, size_t *dn)
{
	*v = malloc(3 * f->valuelen + 2);
	if (*v == NULL)
		return NULL;
	size_t n = imap_mime_unfold(f->value, f->valuelen, *v);
	char *d = *v + n + 1;
	*dn = imap_text_decode_header(*v, n, d);
	return d;
}

bool
imap_hdr_has(const char *hdr, size_t hdrlen, const char *field,
	     const char *needle)
{
	struct imap_mime_field f;
	size_t pos = 0;
	while (imap_mime_next_field(hdr, hdrlen, &pos, &f)) {
		if (*field != '\0' &&
		    !imap_mime_name_eq(f.name, f.namelen, field))
			continue;
		if (*needle == '\0')
			return true;
		char *v;
		size_t dn;
		const char *d = imap_field_decode(&f, &v, &dn);
		if (d == NULL)
			return false;
		bool hit = imap_text_contains(d, dn, needle) ||
			   (imap_hdr_is_address(f.name, f.namelen) &&
			    imap_addr_has(v, needle));
		free(v);
		if (hit)
			return true;
	}
	return false;
}

/* Whether the text part p's decoded content holds needle. */
static bool
imap_text_part_has(const struct imap_mime_part *p, const char *needle)
{
	size_t n = p->bodylen;
	const char *enc = p->enc != NULL ? p->enc : "";
	size_t elen = imap_mime_enc_len(enc);
	const char *cs = imap_mime_param_get(&p->ct, "charset");
	bool latin1 = cs == NULL || imap_text_is_latin1(cs, strlen(cs));
	bool b64 = imap_mime_name_eq(enc, elen, "base64");
	bool qp = imap_mime_name_eq(enc, elen, "quoted-printable");
	if (!b64 && !qp && !latin1)
		return imap_text_contains(p->body, n, needle);
	char *buf = malloc(3 * n + 1);
	if (buf == NULL)
		return false;
	char *dec = buf + 2 * n;
	size_t dn = n;
	if (b64)
		dn = imap_text_base64(p->body, n, dec);
	else if (qp)
		dn = imap_text_qp(p->body, n, false, dec);
	else
		memcpy(dec, p->body, n);
	const char *text = dec;
	if (latin1) {
		dn = imap_text_latin1(dec, dn, buf);
		text = buf;
	}
	bool hit = imap_text_contains(text, dn, needle);
	free(buf);
	return hit;
}

/* Text parts, in multiparts and enclosed messages, depth-first. The
 * tree is at most IMAP_MIME_DEPTH_MAX deep. */
static bool
imap_text_tree_has(const struct imap_mime_part *p, const char *needle)
{
	if (p->child != NULL) {
		for (const struct imap_mime_part *c = p->child; c != NULL;
		     c = c->next)
			if (imap_text_tree_has(c, needle))
				return true;
		return false;
	}
	if (p->msg != NULL)
		return imap_text_tree_has(p->msg, needle);
	return imap_mime_is(p, "text", NULL) && imap_text_part_has(p, needle);
}

bool
imap_mime_body_has(const struct imap_mime *m, const char *needle)
{
	return imap_text_tree_has(m->root, needle);
}

/* ---- Date ---- */

struct imap_text_cur {
	const char *p;
};

/* Skips blanks, comments and, with commas, commas. */
static void
imap_text_skip(struct imap_text_cur *c)
{
	for (;;) {
		while (*c->p == ' ' || *c->p == '\t')
			c->p++;
		if (*c->p != '(')
			return;
		int depth = 0;
		for (; *c->p != '\0'; c->p++) {
			if (*c->p == '\\' && c->p[1] != '\0')
				c->p++;
			else if (*c->p == '(')
				depth++;
			else if (*c->p == ')' && --depth == 0) {
				c->p++;
				break;
			}
		}
	}
}

/* Up to max digits (at least one) as *v; *ndigits how many. */
static bool
imap_text_num(struct imap_text_cur *c, int max, int *v, int *ndigits)
{
	int n = 0, x = 0;
	while (n < max && isdigit((unsigned char)c->p[n]))
		x = x * 10 + (c->p[n++] - '0');
	if (n == 0 || isdigit((unsigned char)c->p[n]))
		return false;
	c->p += n;
	*v = x;
	if (ndigits != NULL)
		*ndigits = n;
	return true;
}

/* An alphabetic word into w (lowercase, cut at wlen - 1). */
static size_t
imap_text_word_alpha(struct imap_text_cur *c, char *w, size_t wlen)
{
	size_t n = 0;
	while (isalpha((unsigned char)*c->p)) {
		if (n + 1 < wlen)
			w[n++] = (char)tolower((unsigned char)*c->p);
		c->p++;
	}
	w[n] = '\0';
	return n;
}

/* The zone offset in seconds east of UTC; absent or unknown is 0
 * (RFC 5322 4.3: treat as -0000). */
static bool
imap_text_zone(struct imap_text_cur *c, long *off)
{
	static const struct {
		const char *name;
		int hours;
	} zones[] = {{"ut", 0},	  {"utc", 0},  {"gmt", 0},  {"z", 0},
		     {"est", -5}, {"edt", -4}, {"cst", -6}, {"cdt", -5},
		     {"mst", -7}, {"mdt", -6}, {"pst", -8}, {"pdt", -7}};
	*off = 0;
	imap_text_skip(c);
	if (*c->p == '+' || *c->p == '-') {
		int sign = *c->p++ == '-' ? -1 : 1, v, nd;
		if (!imap_text_num(c, 4, &v, &nd) || nd != 4 || v % 100 > 59)
			return false;
		*off = sign * ((long)(v / 100) * 3600 + (long)(v % 100) * 60);
		return true;
	}
	char w[8];
	if (imap_text_word_alpha(c, w, sizeof(w)) == 0)
		return true;
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
		if (strcmp(w, zones[i].name) == 0)
			*off = (long)zones[i].hours * 3600;
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static long long
imap_text_days(long long y, int mon, int d)
{
	y -= mon <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (mon + (mon > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int
imap_text_mdays(int y, int mon)
{
	static const int md[] = {31, 28, 31, 30, 31, 30,
				 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return mon == 2 && leap ? 29 : md[mon - 1];
}

/* [day-of-week ","] day month year hh:mm[:ss] [zone]: *t the instant,
 * *zone the offset it was written in (seconds east of UTC). */
static bool
imap_text_date(const char *s, time_t *t, long *zone)
{
	static const char *months[] = {"jan", "feb", "mar", "apr",
				       "may", "jun", "jul", "aug",
				       "sep", "oct", "nov", "dec"};
	struct imap_text_cur c = {s};
	char w[16];
	int day, year, yd, hh, mm, ss = 0, mon = 0;
	imap_text_skip(&c);
	if (isalpha((unsigned char)*c.p)) {
		imap_text_word_alpha(&c, w, sizeof(w));
		imap_text_skip(&c);
		if (*c.p == ',')
			c.p++;
		imap_text_skip(&c);
	}
	if (!imap_text_num(&c, 2, &day, NULL))
		return false;
	imap_text_skip(&c);
	if (*c.p == '-')
		c.p++;
	if (imap_text_word_alpha(&c, w, sizeof(w)) < 3)
		return false;
	for (int i = 0; i < 12; i++)
		if (strncmp(w, months[i], 3) == 0)
			mon = i + 1;
	imap_text_skip(&c);
	if (*c.p == '-')
		c.p++;
	if (mon == 0 || !imap_text_num(&c, 4, &year, &yd))
		return false;
	if (yd == 2)
		year += year < 50 ? 2000 : 1900;
	else if (yd == 3)
		year += 1900;
	imap_text_skip(&c);
	if (!imap_text_num(&c, 2, &hh, NULL) || *c.p++ != ':' ||
	    !imap_text_num(&c, 2, &mm, NULL))
		return false;
	if (*c.p == ':') {
		c.p++;
		if (!imap_text_num(&c, 2, &ss, NULL))
			return false;
	}
	long off;
	if (!imap_text_zone(&c, &off))
		return false;
	if (year < 1900 || day < 1 || day > imap_text_mdays(year, mon) ||
	    hh > 23 || mm > 59 || ss > 60)
		return false;
	long long v = imap_text_days(year, mon, day) * 86400LL + hh * 3600LL +
		      mm * 60LL + ss - off;
	*t = (time_t)v;
	*zone = off;
	return true;
}

bool
imap_mime_date(const struct imap_mime *m, time_t *t)
{
	return imap_hdr_date(m->root->hdr, m->root->hdrlen, t);
}

/* The Date: field of hdr as imap_text_date reads it. */
static bool
imap_hdr_date_zone(const char *hdr, size_t hdrlen, time_t *t, long *zone)
{
	struct imap_mime_field f;
	if (!imap_mime_find_field(hdr, hdrlen, "date", &f))
		return false;
	char *v = malloc(f.valuelen + 1);
	if (v == NULL)
		return false;
	imap_mime_unfold(f.value, f.valuelen, v);
	bool ok = imap_text_date(v, t, zone);
	free(v);
	return ok;
}

bool
imap_hdr_date(const char *hdr, size_t hdrlen, time_t *t)
{
	long zone;
	return imap_hdr_date_zone(hdr, hdrlen, t, &zone);
}

bool
imap_hdr_date_written(const char *hdr, size_t hdrlen, time_t *t)
{
	long zone;
	if (!imap_hdr_date_zone(hdr, hdrlen, t, &zone))
		return false;
	*t += (time_t)zone;
	return true;
}

bool
imap_hdr_text(const char *hdr, size_t hdrlen, const char *field, char *out,
	      size_t outlen)
{
	struct imap_mime_field f;
	if (outlen == 0 || !imap_mime_find_field(hdr, hdrlen, field, &f))
		return false;
	char *v;
	size_t dn;
	const char *d = imap_field_decode(&f, &v, &dn);
	if (d == NULL)
		return false;
	if (dn >= outlen)
		dn = outlen - 1;
	memcpy(out, d, dn);
	out[dn] = '\0';
	free(v);
	return true;
}
