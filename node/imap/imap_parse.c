/* IMAP4rev1 command syntax (RFC 3501 section 9, LITERAL+ of RFC 7888):
 * the cursor, strings, numbers, sequence sets, flags, dates and FETCH
 * attributes. Every reader checks the cursor's end before each byte. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../common/strbuf.h"
#include "imap_parse.h"

#define IMAP_FETCH_ITEMS_MAX 64
#define IMAP_TOKEN_MAX 32 /* FETCH attribute and section names */

/* ---- character classes ---- */

/* ATOM-CHAR: CHAR (0x01-0x7f) but not CTL, SP or atom-specials
 * "(){%*\"\\" nor resp-specials "]". */
static bool
imap_is_atom_char(unsigned char ch)
{
	if (ch <= 0x20 || ch >= 0x7f)
		return false;
	return strchr("(){%*\"\\]", ch) == NULL;
}

/* ASTRING-CHAR: ATOM-CHAR or "]". */
static bool
imap_is_astring_char(unsigned char ch)
{
	return ch == ']' || imap_is_atom_char(ch);
}

/* list-char: ATOM-CHAR, list-wildcards or resp-specials. */
static bool
imap_is_list_char(unsigned char ch)
{
	return ch == '%' || ch == '*' || imap_is_astring_char(ch);
}

/* ---- literals on the wire ---- */

int
imap_literal_suffix(const char *line, size_t len, uint64_t *n, bool *nonsync)
{
	if (len == 0 || line[len - 1] != '}')
		return 0;
	const char *open = memrchr(line, '{', len - 1);
	if (open == NULL)
		return 0;
	const char *p = open + 1, *close = line + len - 1;
	bool plus = false;
	if (close > p && close[-1] == '+') {
		plus = true;
		close--;
	}
	if (p == close)
		return -1;
	uint64_t v = 0;
	for (; p < close; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	*n = v;
	*nonsync = plus;
	return 1;
}

/* ---- the cursor ---- */

void
imap_cur_init(struct imap_cur *c, const char *buf, size_t len)
{
	c->p = buf;
	c->end = buf + len;
	c->err[0] = '\0';
}

int
imap_cur_fail(struct imap_cur *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return -1;
}

/* The next byte, or -1 at the end. */
static int
imap_next(const struct imap_cur *c)
{
	return c->p < c->end ? (unsigned char)*c->p : -1;
}

int
imap_sp(struct imap_cur *c)
{
	if (imap_next(c) != ' ')
		return imap_cur_fail(c, "expected a space");
	c->p++;
	return 0;
}

/* The end of the command: no bytes left, or only the final CRLF when the
 * session left it in. */
bool
imap_at_end(const struct imap_cur *c)
{
	size_t left = (size_t)(c->end - c->p);
	return left == 0 || (left == 2 && c->p[0] == '\r' && c->p[1] == '\n');
}

int
imap_end(struct imap_cur *c)
{
	if (imap_at_end(c))
		return 0;
	return imap_cur_fail(c, "unexpected characters at the end");
}

bool
imap_peek_char(struct imap_cur *c, char ch)
{
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return true;
	}
	return false;
}

/* Copies the run of bytes for which ok() holds into out. what names the
 * thing in the error. */
static int
imap_run(struct imap_cur *c, bool (*ok)(unsigned char), char *out,
	 size_t outlen, const char *what)
{
	const char *s = c->p;
	while (c->p < c->end && ok((unsigned char)*c->p))
		c->p++;
	size_t n = (size_t)(c->p - s);
	if (n == 0)
		return imap_cur_fail(c, "expected %s", what);
	if (outlen == 0 || n > outlen - 1)
		return imap_cur_fail(c, "%s too long", what);
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

int
imap_atom(struct imap_cur *c, char *out, size_t outlen)
{
	return imap_run(c, imap_is_atom_char, out, outlen, "an atom");
}

static bool
imap_is_tag_char(unsigned char ch)
{
	return ch != '+' && imap_is_astring_char(ch);
}

/* RFC 3501: tag = 1*<any ASTRING-CHAR except "+">. */
int
imap_tag(struct imap_cur *c, char *out, size_t outlen)
{
	return imap_run(c, imap_is_tag_char, out, outlen, "a tag");
}

/* ---- strings ---- */

/* A quoted string, unescaped into out. Bytes over 0x7f pass (clients send
 * UTF-8 in quoted strings); NUL, CR and LF do not. */
static int
imap_quoted(struct imap_cur *c, char *out, size_t outlen, size_t *len)
{
	size_t n = 0;
	c->p++; /* the opening quote */
	for (;;) {
		int ch = imap_next(c);
		if (ch < 0 || ch == '\0' || ch == '\r' || ch == '\n')
			return imap_cur_fail(c, "unterminated quoted string");
		c->p++;
		if (ch == '"')
			break;
		if (ch == '\\') {
			ch = imap_next(c);
			if (ch != '"' && ch != '\\')
				return imap_cur_fail(c, "bad escape in "
							"quoted string");
			c->p++;
		}
		if (outlen == 0 || n >= outlen - 1)
			return imap_cur_fail(c, "string too long");
		out[n++] = (char)ch;
	}
	out[n] = '\0';
	if (len != NULL)
		*len = n;
	return 0;
}

int
imap_literal(struct imap_cur *c, const char **data, size_t *len)
{
	if (!imap_peek_char(c, '{'))
		return imap_cur_fail(c, "expected a literal");
	uint64_t n = 0;
	const char *s = c->p;
	while (c->p < c->end && isdigit((unsigned char)*c->p)) {
		n = n * 10 + (uint64_t)(*c->p - '0');
		if (n > UINT32_MAX)
			return imap_cur_fail(c, "literal too long");
		c->p++;
	}
	if (c->p == s)
		return imap_cur_fail(c, "bad literal size");
	imap_peek_char(c, '+');
	if (!imap_peek_char(c, '}'))
		return imap_cur_fail(c, "bad literal size");
	imap_peek_char(c, '\r');
	if (!imap_peek_char(c, '\n'))
		return imap_cur_fail(c, "literal marker not at the end of "
					"a line");
	if ((uint64_t)(c->end - c->p) < n)
		return imap_cur_fail(c, "literal shorter than announced");
	*data = c->p;
	*len = (size_t)n;
	c->p += n;
	return 0;
}

/* A literal copied into out. */
static int
imap_literal_copy(struct imap_cur *c, char *out, size_t outlen, size_t *len)
{
	const char *data;
	size_t n;
	if (imap_literal(c, &data, &n) < 0)
		return -1;
	if (outlen == 0 || n > outlen - 1)
		return imap_cur_fail(c, "string too long");
	memcpy(out, data, n);
	out[n] = '\0';
	if (len != NULL)
		*len = n;
	return 0;
}

int
imap_string(struct imap_cur *c, char *out, size_t outlen, size_t *len)
{
	int ch = imap_next(c);
	if (ch == '"')
		return imap_quoted(c, out, outlen, len);
	if (ch == '{')
		return imap_literal_copy(c, out, outlen, len);
	return imap_cur_fail(c, "expected a string");
}

int
imap_astring(struct imap_cur *c, char *out, size_t outlen, size_t *len)
{
	int ch = imap_next(c);
	if (ch == '"' || ch == '{')
		return imap_string(c, out, outlen, len);
	if (imap_run(c, imap_is_astring_char, out, outlen, "a string") < 0)
		return -1;
	if (len != NULL)
		*len = strlen(out);
	return 0;
}

int
imap_nstring(struct imap_cur *c, char *out, size_t outlen, size_t *len,
	     bool *is_nil)
{
	*is_nil = false;
	if (c->end - c->p >= 3 && strncasecmp(c->p, "NIL", 3) == 0 &&
	    (c->end - c->p == 3 || !imap_is_astring_char(c->p[3]))) {
		c->p += 3;
		*is_nil = true;
		if (outlen > 0)
			out[0] = '\0';
		if (len != NULL)
			*len = 0;
		return 0;
	}
	return imap_string(c, out, outlen, len);
}

int
imap_list_mailbox(struct imap_cur *c, char *out, size_t outlen)
{
	int ch = imap_next(c);
	if (ch == '"' || ch == '{') {
		size_t n;
		if (imap_string(c, out, outlen, &n) < 0)
			return -1;
		if (memchr(out, '\0', n) != NULL)
			return imap_cur_fail(c, "NUL in mailbox name");
		return 0;
	}
	return imap_run(c, imap_is_list_char, out, outlen, "a mailbox");
}

int
imap_number(struct imap_cur *c, uint32_t *v)
{
	uint64_t n = 0;
	const char *s = c->p;
	while (c->p < c->end && isdigit((unsigned char)*c->p)) {
		n = n * 10 + (uint64_t)(*c->p - '0');
		if (n > UINT32_MAX)
			return imap_cur_fail(c, "number too large");
		c->p++;
	}
	if (c->p == s)
		return imap_cur_fail(c, "expected a number");
	*v = (uint32_t)n;
	return 0;
}

int
imap_nz_number(struct imap_cur *c, uint32_t *v)
{
	if (imap_number(c, v) < 0)
		return -1;
	if (*v == 0)
		return imap_cur_fail(c, "expected a number above zero");
	return 0;
}

/* ---- the start of a command ---- */

/* An atom uppercased into out. */
static int
imap_upper_atom(struct imap_cur *c, char *out, size_t outlen)
{
	if (imap_atom(c, out, outlen) < 0)
		return -1;
	for (char *p = out; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	return 0;
}

int
imap_command_start(struct imap_cur *c, char *tag, size_t taglen, char *name,
		   size_t namelen, bool *uid)
{
	*uid = false;
	if (imap_tag(c, tag, taglen) < 0) {
		tag[0] = '\0';
		return imap_cur_fail(c, "Missing or invalid tag");
	}
	if (imap_sp(c) < 0 || imap_upper_atom(c, name, namelen) < 0)
		return imap_cur_fail(c, "Missing or invalid command");
	if (strcmp(name, "UID") == 0) {
		if (imap_sp(c) < 0 || imap_upper_atom(c, name, namelen) < 0)
			return imap_cur_fail(c, "UID needs a command");
		*uid = true;
	}
	return 0;
}

/* ---- sequence sets ---- */

/* seq-number: nz-number or "*". */
static int
imap_seq_number(struct imap_cur *c, uint32_t *v)
{
	if (imap_peek_char(c, '*')) {
		*v = IMAP_STAR;
		return 0;
	}
	if (imap_nz_number(c, v) < 0)
		return imap_cur_fail(c, "bad sequence set");
	return 0;
}

int
imap_seqset(struct imap_cur *c, struct imap_seqset *out)
{
	out->n = 0;
	do {
		if (out->n == IMAP_SEQSET_MAX)
			return imap_cur_fail(c, "too many ranges in a "
						"sequence set");
		uint32_t lo = 0, hi = 0;
		if (imap_seq_number(c, &lo) < 0)
			return -1;
		hi = lo;
		if (imap_peek_char(c, ':') && imap_seq_number(c, &hi) < 0)
			return -1;
		out->r[out->n].lo = lo;
		out->r[out->n].hi = hi;
		out->n++;
	} while (imap_peek_char(c, ','));
	return 0;
}

bool
imap_seqset_has(const struct imap_seqset *s, uint32_t v, uint32_t max)
{
	if (max == 0)
		return false;
	for (size_t i = 0; i < s->n && i < IMAP_SEQSET_MAX; i++)
		if (imap_range_has(s->r[i].lo, s->r[i].hi, v, max))
			return true;
	return false;
}

bool
imap_range_has(uint32_t lo, uint32_t hi, uint32_t v, uint32_t max)
{
	if (lo == IMAP_STAR)
		lo = max;
	if (hi == IMAP_STAR)
		hi = max;
	return (v >= lo && v <= hi) || (v >= hi && v <= lo);
}

/* ---- flags ---- */

static const struct imap_flag_name {
	const char *name;
	unsigned bit;
	char maildir;
} imap_flag_names[] = {
    {"\\Seen", IMAP_F_SEEN, 'S'},	{"\\Answered", IMAP_F_ANSWERED, 'R'},
    {"\\Flagged", IMAP_F_FLAGGED, 'F'}, {"\\Deleted", IMAP_F_DELETED, 'T'},
    {"\\Draft", IMAP_F_DRAFT, 'D'},	{"\\Recent", IMAP_F_RECENT, 0},
};

#define IMAP_NFLAGS (sizeof(imap_flag_names) / sizeof(imap_flag_names[0]))

/* A keyword into kw, once. */
static int
imap_keyword_add(struct imap_cur *c, const char *name, struct imap_kwlist *kw)
{
	for (size_t i = 0; i < kw->n; i++)
		if (strcasecmp(kw->name[i], name) == 0)
			return 0;
	if (kw->n == IMAP_KEYWORD_LIST_MAX)
		return imap_cur_fail(c, "too many keywords");
	snprintf(kw->name[kw->n++], sizeof(kw->name[0]), "%s", name);
	return 0;
}

/* One flag: a system flag into *mask, or a keyword into kw. */
static int
imap_flag(struct imap_cur *c, unsigned *mask, struct imap_kwlist *kw)
{
	char name[IMAP_KEYWORD_MAX + 2];
	bool sys = imap_peek_char(c, '\\');
	if (imap_atom(c, name + 1, sizeof(name) - 1) < 0)
		return imap_cur_fail(c, "bad flag");
	if (!sys)
		return imap_keyword_add(c, name + 1, kw);
	name[0] = '\\';
	for (size_t i = 0; i < IMAP_NFLAGS; i++) {
		if (strcasecmp(name, imap_flag_names[i].name) != 0)
			continue;
		if (imap_flag_names[i].bit == IMAP_F_RECENT)
			return imap_cur_fail(c, "\\Recent cannot be set");
		*mask |= imap_flag_names[i].bit;
		return 0;
	}
	return imap_cur_fail(c, "unknown system flag");
}

int
imap_flag_list(struct imap_cur *c, bool paren_optional, unsigned *mask,
	       struct imap_kwlist *kw)
{
	*mask = 0;
	kw->n = 0;
	bool paren = imap_peek_char(c, '(');
	if (!paren && !paren_optional)
		return imap_cur_fail(c, "expected a flag list");
	if (paren && imap_peek_char(c, ')'))
		return 0;
	for (unsigned n = 0;; n++) {
		if (n == 256)
			return imap_cur_fail(c, "too many flags");
		if (imap_flag(c, mask, kw) < 0)
			return -1;
		if (paren && imap_peek_char(c, ')'))
			return 0;
		if (!paren && (imap_at_end(c) || imap_next(c) != ' '))
			return 0;
		if (imap_sp(c) < 0)
			return -1;
	}
}

int
imap_flags_format(unsigned mask, struct strbuf *sb)
{
	bool first = true;
	for (size_t i = 0; i < IMAP_NFLAGS; i++) {
		if (!(mask & imap_flag_names[i].bit))
			continue;
		if (!first && strbuf_appends(sb, " ") < 0)
			return -1;
		if (strbuf_appends(sb, imap_flag_names[i].name) < 0)
			return -1;
		first = false;
	}
	return 0;
}

unsigned
imap_flags_from_maildir(const char *letters)
{
	unsigned mask = 0;
	for (const char *p = letters; *p; p++) {
		if (*p >= 'a' && *p <= 'z') {
			mask |= IMAP_F_KW(*p - 'a');
			continue;
		}
		for (size_t i = 0; i < IMAP_NFLAGS; i++)
			if (imap_flag_names[i].maildir == *p)
				mask |= imap_flag_names[i].bit;
	}
	return mask;
}

void
imap_flags_to_maildir(unsigned mask, char *out)
{
	static const char order[] = "DFRST"; /* ASCII order */
	size_t n = 0;
	for (const char *l = order; *l; l++)
		for (size_t i = 0; i < IMAP_NFLAGS; i++)
			if (imap_flag_names[i].maildir == *l &&
			    (mask & imap_flag_names[i].bit))
				out[n++] = *l;
	for (int k = 0; k < 26; k++)
		if (mask & IMAP_F_KW(k))
			out[n++] = (char)('a' + k);
	out[n] = '\0';
}

/* ---- dates ---- */

static const char *const imap_months[12] = {"Jan", "Feb", "Mar", "Apr",
					    "May", "Jun", "Jul", "Aug",
					    "Sep", "Oct", "Nov", "Dec"};

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t
imap_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static unsigned
imap_month_days(unsigned y, unsigned m)
{
	static const unsigned days[12] = {31, 28, 31, 30, 31, 30,
					  31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : days[m - 1];
}

/* Exactly n digits into *v. */
static int
imap_digits(struct imap_cur *c, size_t n, unsigned *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		int ch = imap_next(c);
		if (ch < '0' || ch > '9')
			return -1;
		*v = *v * 10 + (unsigned)(ch - '0');
		c->p++;
	}
	return 0;
}

/* "-Mon-yyyy" after the day; *days since the epoch. */
static int
imap_month_year(struct imap_cur *c, unsigned day, int64_t *days)
{
	if (!imap_peek_char(c, '-') || c->end - c->p < 3)
		return -1;
	unsigned m = 0;
	for (unsigned i = 0; i < 12; i++)
		if (strncasecmp(c->p, imap_months[i], 3) == 0)
			m = i + 1;
	if (m == 0)
		return -1;
	c->p += 3;
	unsigned y;
	if (!imap_peek_char(c, '-') || imap_digits(c, 4, &y) < 0)
		return -1;
	if (day < 1 || day > imap_month_days(y, m))
		return -1;
	*days = imap_days_from_civil(y, m, day);
	return 0;
}

int
imap_date(struct imap_cur *c, time_t *t)
{
	bool quoted = imap_peek_char(c, '"');
	unsigned day = 0;
	int64_t days;
	for (int i = 0; i < 2 && isdigit(imap_next(c)); i++)
		day = day * 10 + (unsigned)(*c->p++ - '0');
	if (day == 0 || imap_month_year(c, day, &days) < 0 ||
	    (quoted && !imap_peek_char(c, '"')))
		return imap_cur_fail(c, "bad date");
	*t = (time_t)(days * 86400);
	return 0;
}

/* " hh:mm:ss +zzzz" after the date: seconds of the day and the zone's
 * offset in seconds. */
static int
imap_time_zone(struct imap_cur *c, int64_t *secs, int64_t *zone)
{
	unsigned h, m, s, zh, zm;
	if (imap_sp(c) < 0 || imap_digits(c, 2, &h) < 0 ||
	    !imap_peek_char(c, ':') || imap_digits(c, 2, &m) < 0 ||
	    !imap_peek_char(c, ':') || imap_digits(c, 2, &s) < 0 ||
	    imap_sp(c) < 0)
		return -1;
	int sign = imap_peek_char(c, '+') ? 1 : imap_peek_char(c, '-') ? -1 : 0;
	if (sign == 0 || imap_digits(c, 2, &zh) < 0 ||
	    imap_digits(c, 2, &zm) < 0)
		return -1;
	if (h > 23 || m > 59 || s > 60 || zh > 23 || zm > 59)
		return -1;
	*secs = h * 3600 + m * 60 + s;
	*zone = sign * (int64_t)(zh * 3600 + zm * 60);
	return 0;
}

int
imap_date_time(struct imap_cur *c, time_t *t)
{
	unsigned day = 0;
	int64_t days, secs, zone;
	if (!imap_peek_char(c, '"'))
		return imap_cur_fail(c, "bad date-time");
	imap_peek_char(c, ' '); /* date-day-fixed: SP DIGIT */
	for (int i = 0; i < 2 && isdigit(imap_next(c)); i++)
		day = day * 10 + (unsigned)(*c->p++ - '0');
	if (day == 0 || imap_month_year(c, day, &days) < 0 ||
	    imap_time_zone(c, &secs, &zone) < 0 || !imap_peek_char(c, '"'))
		return imap_cur_fail(c, "bad date-time");
	*t = (time_t)(days * 86400 + secs - zone);
	return 0;
}

int
imap_date_time_format(time_t t, struct strbuf *sb)
{
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 ||
	    tm.tm_year + 1900 < 0)
		return -1;
	return strbuf_appendf(sb, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"",
			      tm.tm_mday, imap_months[tm.tm_mon],
			      tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
			      tm.tm_sec);
}

/* ---- FETCH attributes ---- */

static bool
imap_is_token_char(unsigned char ch)
{
	return isalnum(ch) || ch == '.';
}

/* A FETCH attribute or section name: letters, digits and dots. */
static int
imap_token(struct imap_cur *c, char *out, size_t outlen)
{
	return imap_run(c, imap_is_token_char, out, outlen, "a fetch item");
}

/* ftext of RFC 5322: printable US-ASCII but ':'. */
static bool
imap_is_field_char(unsigned char ch)
{
	return ch > 0x20 && ch < 0x7f && ch != ':';
}

/* header-list: "(" header-fld-name *(SP header-fld-name) ")". */
static int
imap_header_list(struct imap_cur *c, struct imap_fetch_item *it)
{
	if (imap_sp(c) < 0 || !imap_peek_char(c, '('))
		return imap_cur_fail(c, "expected a header list");
	it->nfields = 0;
	do {
		char *f;
		size_t n;
		if (it->nfields == IMAP_FIELDS_MAX)
			return imap_cur_fail(c, "too many header fields");
		f = it->fields[it->nfields];
		if (imap_astring(c, f, IMAP_FIELD_NAME_MAX, &n) < 0)
			return imap_cur_fail(c, "bad header field name");
		for (size_t i = 0; i < n; i++)
			if (!imap_is_field_char((unsigned char)f[i]))
				return imap_cur_fail(c, "bad header field "
							"name");
		if (n == 0)
			return imap_cur_fail(c, "empty header field name");
		it->nfields++;
	} while (imap_peek_char(c, ' '));
	if (!imap_peek_char(c, ')'))
		return imap_cur_fail(c, "expected ')' after header fields");
	return 0;
}

/* section-msgtext or section-text after a part number ("MIME" allowed
 * only then). */
static int
imap_section_text(struct imap_cur *c, struct imap_fetch_item *it)
{
	char tok[IMAP_TOKEN_MAX];
	if (imap_token(c, tok, sizeof(tok)) < 0)
		return imap_cur_fail(c, "bad section");
	if (strcasecmp(tok, "HEADER") == 0)
		it->spec = IMAP_SECT_HEADER;
	else if (strcasecmp(tok, "TEXT") == 0)
		it->spec = IMAP_SECT_TEXT;
	else if (strcasecmp(tok, "MIME") == 0 && it->nparts > 0)
		it->spec = IMAP_SECT_MIME;
	else if (strcasecmp(tok, "MIME") == 0)
		return imap_cur_fail(c, "MIME needs a part number");
	else if (strcasecmp(tok, "HEADER.FIELDS") == 0) {
		it->spec = IMAP_SECT_HEADER_FIELDS;
		return imap_header_list(c, it);
	} else if (strcasecmp(tok, "HEADER.FIELDS.NOT") == 0) {
		it->spec = IMAP_SECT_HEADER_FIELDS_NOT;
		return imap_header_list(c, it);
	} else
		return imap_cur_fail(c, "bad section");
	return 0;
}

/* section: "[" [section-spec] "]", the '[' already read. */
static int
imap_section(struct imap_cur *c, struct imap_fetch_item *it)
{
	it->spec = IMAP_SECT_ALL;
	it->nparts = 0;
	if (imap_peek_char(c, ']'))
		return 0;
	while (isdigit(imap_next(c))) {
		if (it->nparts == IMAP_SECTION_DEPTH)
			return imap_cur_fail(c, "section too deep");
		if (imap_nz_number(c, &it->part[it->nparts]) < 0)
			return -1;
		it->nparts++;
		if (!imap_peek_char(c, '.'))
			break;
		if (!isdigit(imap_next(c))) {
			if (imap_section_text(c, it) < 0)
				return -1;
			break;
		}
	}
	if (it->nparts == 0 && imap_section_text(c, it) < 0)
		return -1;
	if (!imap_peek_char(c, ']'))
		return imap_cur_fail(c, "expected ']' after section");
	return 0;
}

/* ["<" number "." nz-number ">"] */
static int
imap_partial(struct imap_cur *c, struct imap_fetch_item *it)
{
	it->partial = false;
	if (!imap_peek_char(c, '<'))
		return 0;
	if (imap_number(c, &it->offset) < 0 || !imap_peek_char(c, '.') ||
	    imap_nz_number(c, &it->count) < 0 || !imap_peek_char(c, '>'))
		return imap_cur_fail(c, "bad partial");
	it->partial = true;
	return 0;
}

static const struct imap_fetch_name {
	const char *name;
	enum imap_fetch_kind kind;
} imap_fetch_names[] = {
    {"FLAGS", IMAP_FETCH_FLAGS},
    {"INTERNALDATE", IMAP_FETCH_INTERNALDATE},
    {"RFC822.SIZE", IMAP_FETCH_RFC822_SIZE},
    {"UID", IMAP_FETCH_UID},
    {"ENVELOPE", IMAP_FETCH_ENVELOPE},
    {"BODY", IMAP_FETCH_BODY},
    {"BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE},
    {"RFC822", IMAP_FETCH_RFC822},
    {"RFC822.HEADER", IMAP_FETCH_RFC822_HEADER},
    {"RFC822.TEXT", IMAP_FETCH_RFC822_TEXT},
};

#define IMAP_NFETCH (sizeof(imap_fetch_names) / sizeof(imap_fetch_names[0]))

/* A new item at the end of f's list. */
static struct imap_fetch_item *
imap_fetch_add(struct imap_cur *c, struct imap_fetch *f,
	       enum imap_fetch_kind kind)
{
	if (f->n == IMAP_FETCH_ITEMS_MAX) {
		imap_cur_fail(c, "too many fetch items");
		return NULL;
	}
	/* The list holds 4, then 8, 16, 32, 64 items: it grows when n
	 * reaches one of these. */
	if (f->n == 0 || (f->n >= 4 && (f->n & (f->n - 1)) == 0)) {
		size_t cap = f->n ? f->n * 2 : 4;
		void *p = realloc(f->item, cap * sizeof(*f->item));
		if (p == NULL) {
			imap_cur_fail(c, "out of memory");
			return NULL;
		}
		f->item = p;
	}
	struct imap_fetch_item *it = &f->item[f->n++];
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	switch (kind) {
	case IMAP_FETCH_RFC822:
	case IMAP_FETCH_RFC822_TEXT:
		f->sets_seen = true;
		f->needs_text = true;
		break;
	case IMAP_FETCH_FLAGS:
	case IMAP_FETCH_INTERNALDATE:
	case IMAP_FETCH_RFC822_SIZE:
	case IMAP_FETCH_UID:
		break;
	default:
		f->needs_text = true;
	}
	return it;
}

/* BINARY[part], BINARY.PEEK[part], BINARY.SIZE[part] (RFC 3516),
 * tok the name before '[': section-binary is part numbers alone. */
static int
imap_fetch_binary(struct imap_cur *c, struct imap_fetch *f, const char *tok)
{
	bool size = strcasecmp(tok, "BINARY.SIZE") == 0;
	struct imap_fetch_item *it = imap_fetch_add(
	    c, f, size ? IMAP_FETCH_BINARY_SIZE : IMAP_FETCH_BINARY);
	if (it == NULL)
		return -1;
	it->peek = strcasecmp(tok, "BINARY.PEEK") == 0;
	if (!size && !it->peek)
		f->sets_seen = true;
	if (!imap_peek_char(c, '['))
		return imap_cur_fail(c, "%s needs a section", tok);
	while (!imap_peek_char(c, ']')) {
		if (it->nparts == IMAP_SECTION_DEPTH)
			return imap_cur_fail(c, "section too deep");
		if ((it->nparts > 0 && !imap_peek_char(c, '.')) ||
		    imap_nz_number(c, &it->part[it->nparts]) < 0)
			return imap_cur_fail(c, "bad binary section");
		it->nparts++;
	}
	return size ? 0 : imap_partial(c, it);
}

/* One fetch-att. */
static int
imap_fetch_att(struct imap_cur *c, struct imap_fetch *f)
{
	char tok[IMAP_TOKEN_MAX];
	struct imap_fetch_item *it;
	if (imap_token(c, tok, sizeof(tok)) < 0)
		return -1;
	if (strcasecmp(tok, "BINARY") == 0 ||
	    strcasecmp(tok, "BINARY.PEEK") == 0 ||
	    strcasecmp(tok, "BINARY.SIZE") == 0)
		return imap_fetch_binary(c, f, tok);
	bool peek = strcasecmp(tok, "BODY.PEEK") == 0;
	if (peek || (strcasecmp(tok, "BODY") == 0 && imap_next(c) == '[')) {
		if (!imap_peek_char(c, '['))
			return imap_cur_fail(c, "BODY.PEEK needs a section");
		if ((it = imap_fetch_add(c, f, IMAP_FETCH_SECTION)) == NULL)
			return -1;
		it->peek = peek;
		if (!peek)
			f->sets_seen = true;
		if (imap_section(c, it) < 0 || imap_partial(c, it) < 0)
			return -1;
		return 0;
	}
	for (size_t i = 0; i < IMAP_NFETCH; i++)
		if (strcasecmp(tok, imap_fetch_names[i].name) == 0)
			return imap_fetch_add(c, f, imap_fetch_names[i].kind)
				   ? 0
				   : -1;
	return imap_cur_fail(c, "unknown fetch item");
}

/* The macros ALL, FAST, FULL, if tok is one. Returns 1 when it was. */
static int
imap_fetch_macro(struct imap_cur *c, struct imap_fetch *f, const char *tok)
{
	static const enum imap_fetch_kind full[] = {
	    IMAP_FETCH_FLAGS, IMAP_FETCH_INTERNALDATE, IMAP_FETCH_RFC822_SIZE,
	    IMAP_FETCH_ENVELOPE, IMAP_FETCH_BODY};
	size_t n;
	if (strcasecmp(tok, "FAST") == 0)
		n = 3;
	else if (strcasecmp(tok, "ALL") == 0)
		n = 4;
	else if (strcasecmp(tok, "FULL") == 0)
		n = 5;
	else
		return 0;
	for (size_t i = 0; i < n; i++)
		if (imap_fetch_add(c, f, full[i]) == NULL)
			return -1;
	return 1;
}

int
imap_fetch_parse(struct imap_cur *c, struct imap_fetch *out)
{
	memset(out, 0, sizeof(*out));
	if (imap_peek_char(c, '(')) {
		do {
			if (imap_fetch_att(c, out) < 0)
				return -1;
		} while (imap_peek_char(c, ' '));
		if (!imap_peek_char(c, ')'))
			return imap_cur_fail(c, "expected ')' after fetch "
						"items");
		return 0;
	}
	/* A macro is a whole word: "ALL", not "ALL[". */
	const char *s = c->p;
	char tok[IMAP_TOKEN_MAX];
	if (imap_token(c, tok, sizeof(tok)) == 0 &&
	    (imap_at_end(c) || imap_next(c) == ' ' || imap_next(c) == ')')) {
		int r = imap_fetch_macro(c, out, tok);
		if (r != 0)
			return r < 0 ? -1 : 0;
	}
	c->p = s;
	return imap_fetch_att(c, out);
}

void
imap_fetch_free(struct imap_fetch *f)
{
	free(f->item);
	f->item = NULL;
	f->n = 0;
}

/* A header field name as an atom, or quoted if it has other bytes. */
static int
imap_field_format(const char *name, struct strbuf *sb)
{
	bool atom = *name != '\0';
	for (const char *p = name; *p; p++)
		if (!imap_is_atom_char((unsigned char)*p))
			atom = false;
	if (atom)
		return strbuf_appends(sb, name);
	if (strbuf_appends(sb, "\"") < 0)
		return -1;
	for (const char *p = name; *p; p++)
		if ((*p == '"' || *p == '\\') && strbuf_appends(sb, "\\") < 0)
			return -1;
		else if (strbuf_append(sb, p, 1) < 0)
			return -1;
	return strbuf_appends(sb, "\"");
}

static int
imap_section_format(const struct imap_fetch_item *it, struct strbuf *sb)
{
	static const char *const spec[] = {
	    [IMAP_SECT_ALL] = "",
	    [IMAP_SECT_HEADER] = "HEADER",
	    [IMAP_SECT_HEADER_FIELDS] = "HEADER.FIELDS",
	    [IMAP_SECT_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
	    [IMAP_SECT_TEXT] = "TEXT",
	    [IMAP_SECT_MIME] = "MIME",
	};
	if ((unsigned)it->spec > IMAP_SECT_MIME ||
	    it->nparts > IMAP_SECTION_DEPTH || it->nfields > IMAP_FIELDS_MAX ||
	    strbuf_appends(sb, it->kind == IMAP_FETCH_BINARY ? "BINARY["
			       : it->kind == IMAP_FETCH_BINARY_SIZE
				   ? "BINARY.SIZE["
				   : "BODY[") < 0)
		return -1;
	for (size_t i = 0; i < it->nparts; i++)
		if (strbuf_appendf(sb, i ? ".%u" : "%u", it->part[i]) < 0)
			return -1;
	if (it->spec != IMAP_SECT_ALL &&
	    strbuf_appendf(sb, "%s%s", it->nparts ? "." : "", spec[it->spec]) <
		0)
		return -1;
	if (it->spec == IMAP_SECT_HEADER_FIELDS ||
	    it->spec == IMAP_SECT_HEADER_FIELDS_NOT) {
		for (size_t i = 0; i < it->nfields; i++) {
			char name[IMAP_FIELD_NAME_MAX];
			snprintf(name, sizeof(name), "%.*s",
				 IMAP_FIELD_NAME_MAX - 1, it->fields[i]);
			if (strbuf_appends(sb, i ? " " : " (") < 0 ||
			    imap_field_format(name, sb) < 0)
				return -1;
		}
		if (it->nfields && strbuf_appends(sb, ")") < 0)
			return -1;
	}
	if (strbuf_appends(sb, "]") < 0)
		return -1;
	if (it->partial && strbuf_appendf(sb, "<%u>", it->offset) < 0)
		return -1;
	return 0;
}

int
imap_fetch_item_name(const struct imap_fetch_item *it, struct strbuf *sb)
{
	if (it->kind == IMAP_FETCH_SECTION || it->kind == IMAP_FETCH_BINARY ||
	    it->kind == IMAP_FETCH_BINARY_SIZE)
		return imap_section_format(it, sb);
	for (size_t i = 0; i < IMAP_NFETCH; i++)
		if (imap_fetch_names[i].kind == it->kind)
			return strbuf_appends(sb, imap_fetch_names[i].name);
	return -1;
}
