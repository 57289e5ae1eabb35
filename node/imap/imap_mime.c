/* The MIME part tree of a message (RFC 2045, 2046) and BODY[section]
 * (RFC 3501 6.4.5). The tree points into the message; what must be
 * copied (unfolded header values, parameters) lives in one arena that
 * imap_mime_free() releases at once. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../common/strbuf.h"
#include "imap_mime_int.h"

#define IMAP_MIME_BLOCK 8192

struct imap_mime_block {
	struct imap_mime_block *next;
	size_t used, cap;
	max_align_t data[];
};

/* ---- the arena ---- */

/* n zeroed bytes that live as long as m, or NULL (m->nomem set). */
static void *
imap_mime_alloc(struct imap_mime *m, size_t n)
{
	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	struct imap_mime_block *b = m->blocks;
	if (b == NULL || b->cap - b->used < n) {
		size_t cap = n > IMAP_MIME_BLOCK ? n : IMAP_MIME_BLOCK;
		b = malloc(sizeof(*b) + cap);
		if (b == NULL) {
			m->nomem = true;
			return NULL;
		}
		b->cap = cap;
		b->used = 0;
		b->next = m->blocks;
		m->blocks = b;
	}
	void *p = (char *)b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

/* s[0..n) as a NUL-terminated copy in the arena, lowercased if asked. */
static char *
imap_mime_strdup(struct imap_mime *m, const char *s, size_t n, bool lower)
{
	char *d = imap_mime_alloc(m, n + 1);
	if (d == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		d[i] = lower ? (char)tolower((unsigned char)s[i]) : s[i];
	d[n] = '\0';
	return d;
}

void
imap_mime_free(struct imap_mime *m)
{
	if (m == NULL)
		return;
	while (m->blocks != NULL) {
		struct imap_mime_block *b = m->blocks;
		m->blocks = b->next;
		free(b);
	}
	free(m);
}

/* ---- header fields ---- */

bool
imap_mime_name_eq(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (tolower((unsigned char)a[i]) !=
		    tolower((unsigned char)b[i]))
			return false;
	return true;
}

/* The end of the line starting at h[pos]: just past its LF, or hlen. */
static size_t
imap_mime_line_end(const char *h, size_t hlen, size_t pos)
{
	const char *lf = memchr(h + pos, '\n', hlen - pos);
	return lf != NULL ? (size_t)(lf - h) + 1 : hlen;
}

static bool
imap_mime_blank_line(const char *h, size_t hlen, size_t pos)
{
	return h[pos] == '\n' ||
	       (h[pos] == '\r' && pos + 1 < hlen && h[pos + 1] == '\n');
}

bool
imap_mime_next_field(const char *h, size_t hlen, size_t *pos,
		     struct imap_mime_field *f)
{
	size_t p = *pos;
	while (p < hlen && !imap_mime_blank_line(h, hlen, p)) {
		size_t start = p;
		p = imap_mime_line_end(h, hlen, p);
		/* a field runs on over its continuation lines */
		while (p < hlen && (h[p] == ' ' || h[p] == '\t'))
			p = imap_mime_line_end(h, hlen, p);
		if (h[start] == ' ' || h[start] == '\t')
			continue; /* a fold with no field before it */
		const char *colon = memchr(h + start, ':', p - start);
		const char *eol = memchr(h + start, '\n', p - start);
		if (colon == NULL || (eol != NULL && colon > eol) ||
		    colon == h + start)
			continue; /* not a field: no colon on its first line */
		size_t namelen = (size_t)(colon - (h + start));
		while (namelen > 0 && (h[start + namelen - 1] == ' ' ||
				       h[start + namelen - 1] == '\t'))
			namelen--;
		f->line = h + start;
		f->linelen = p - start;
		f->name = h + start;
		f->namelen = namelen;
		f->value = colon + 1;
		f->valuelen = (size_t)(h + p - (colon + 1));
		*pos = p;
		return true;
	}
	*pos = p;
	return false;
}

bool
imap_mime_find_field(const char *h, size_t hlen, const char *name,
		     struct imap_mime_field *f)
{
	size_t pos = 0;
	while (imap_mime_next_field(h, hlen, &pos, f))
		if (imap_mime_name_eq(f->name, f->namelen, name))
			return true;
	return false;
}

size_t
imap_mime_unfold(const char *v, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] != '\r' && v[i] != '\n')
			out[o++] = v[i];
	while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
		o--;
	size_t lead = 0;
	while (lead < o && (out[lead] == ' ' || out[lead] == '\t'))
		lead++;
	memmove(out, out + lead, o - lead);
	o -= lead;
	out[o] = '\0';
	return o;
}

/* The unfolded value of f in the arena. */
static char *
imap_mime_field_value(struct imap_mime *m, const struct imap_mime_field *f)
{
	char *out = imap_mime_alloc(m, f->valuelen + 1);
	if (out != NULL)
		imap_mime_unfold(f->value, f->valuelen, out);
	return out;
}

/* ---- Content-Type and Content-Disposition values ---- */

const char *
imap_mime_skip_comment(const char *p)
{
	int depth = 0;
	for (; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && --depth == 0)
			return p + 1;
	}
	return p;
}

/* Skips blanks and (nested) comments. */
static const char *
imap_mime_skip_cfws(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '(')
			return p;
		p = imap_mime_skip_comment(p);
	}
}

/* A token (RFC 2045: no space, CTL or tspecial) at *pp, lowercased into
 * the arena; "" when there is none. */
static char *
imap_mime_token(struct imap_mime *m, const char **pp, bool lower)
{
	const char *p = *pp, *s = p;
	while (*p != '\0' && (unsigned char)*p > ' ' &&
	       strchr("()<>@,;:\\\"/[]?=", *p) == NULL)
		p++;
	*pp = p;
	return imap_mime_strdup(m, s, (size_t)(p - s), lower);
}

/* A parameter value: a quoted string (unescaped, possibly unclosed) or
 * anything up to ';' or a blank, in the arena. */
static char *
imap_mime_param_value(struct imap_mime *m, const char **pp)
{
	const char *p = *pp;
	if (*p != '"') {
		const char *s = p;
		while (*p != '\0' && *p != ';' && *p != ' ' && *p != '\t')
			p++;
		*pp = p;
		return imap_mime_strdup(m, s, (size_t)(p - s), false);
	}
	p++;
	char *out = imap_mime_alloc(m, strlen(p) + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	for (; *p != '\0' && *p != '"'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		out[o++] = *p;
	}
	out[o] = '\0';
	*pp = *p == '"' ? p + 1 : p;
	return out;
}

/* The "; name=value" list from p into ct. Parameters without a name or
 * an '=' are skipped; after IMAP_MIME_PARAMS_MAX the rest are. */
static void
imap_mime_params(struct imap_mime *m, const char *p, struct imap_mime_ctype *ct)
{
	struct imap_mime_param tmp[IMAP_MIME_PARAMS_MAX];
	size_t n = 0;
	while (*p != '\0' && n < IMAP_MIME_PARAMS_MAX) {
		/* on to the next ';', past quoted strings */
		while (*p != '\0' && *p != ';') {
			if (*p == '"') {
				p++;
				while (*p != '\0' && *p != '"')
					p += p[0] == '\\' && p[1] != '\0' ? 2
									  : 1;
			}
			if (*p != '\0')
				p++;
		}
		if (*p == '\0')
			break;
		p = imap_mime_skip_cfws(p + 1);
		char *name = imap_mime_token(m, &p, true);
		p = imap_mime_skip_cfws(p);
		if (name == NULL || *name == '\0' || *p != '=')
			continue;
		p = imap_mime_skip_cfws(p + 1);
		char *value = imap_mime_param_value(m, &p);
		if (value == NULL)
			break;
		tmp[n].name = name;
		tmp[n].value = value;
		n++;
	}
	if (n == 0)
		return;
	ct->param = imap_mime_alloc(m, n * sizeof(*ct->param));
	if (ct->param == NULL)
		return;
	memcpy(ct->param, tmp, n * sizeof(*ct->param));
	ct->nparam = n;
}

/* "type/subtype; params" (with_subtype) or "type; params" into ct.
 * Returns false, ct untouched, when the type (or subtype) is missing. */
static bool
imap_mime_ctype_parse(struct imap_mime *m, const char *v, bool with_subtype,
		      struct imap_mime_ctype *ct)
{
	const char *p = imap_mime_skip_cfws(v);
	struct imap_mime_ctype c = {0};
	c.type = imap_mime_token(m, &p, true);
	if (c.type == NULL || *c.type == '\0')
		return false;
	p = imap_mime_skip_cfws(p);
	if (with_subtype) {
		if (*p != '/')
			return false;
		p = imap_mime_skip_cfws(p + 1);
		c.subtype = imap_mime_token(m, &p, true);
		if (c.subtype == NULL || *c.subtype == '\0')
			return false;
	}
	imap_mime_params(m, p, &c);
	*ct = c;
	return true;
}

const char *
imap_mime_param_get(const struct imap_mime_ctype *ct, const char *name)
{
	for (size_t i = 0; i < ct->nparam; i++)
		if (strcmp(ct->param[i].name, name) == 0)
			return ct->param[i].value;
	return NULL;
}

size_t
imap_mime_enc_len(const char *enc)
{
	return strcspn(enc, " \t(;");
}

bool
imap_mime_is(const struct imap_mime_part *p, const char *type,
	     const char *subtype)
{
	return strcmp(p->ct.type, type) == 0 &&
	       (subtype == NULL || strcmp(p->ct.subtype, subtype) == 0);
}

/* ---- the tree ---- */

static void
imap_mime_set_text_plain(struct imap_mime_part *p)
{
	p->ct.type = "text";
	p->ct.subtype = "plain";
	p->ct.param = NULL;
	p->ct.nparam = 0;
}

size_t
imap_hdr_len(const char *s, size_t n)
{
	size_t pos = 0;
	while (pos < n) {
		if (imap_mime_blank_line(s, n, pos))
			return pos + (s[pos] == '\r' ? 2 : 1);
		pos = imap_mime_line_end(s, n, pos);
	}
	return 0;
}

/* Splits s[0..n) into header (with its blank line) and body. No blank
 * line: everything is header. */
static void
imap_mime_split(struct imap_mime_part *p, const char *s, size_t n)
{
	size_t b = imap_hdr_len(s, n);
	if (b == 0)
		b = n;
	p->hdr = s;
	p->hdrlen = b;
	p->body = s + b;
	p->bodylen = n - b;
}

/* The Content-* fields of the part's header. The first of each wins. */
static void
imap_mime_read_fields(struct imap_mime *m, struct imap_mime_part *p)
{
	static const struct {
		const char *name;
		size_t off;
	} plain[] = {
	    {"content-id", offsetof(struct imap_mime_part, id)},
	    {"content-description", offsetof(struct imap_mime_part, desc)},
	    {"content-transfer-encoding", offsetof(struct imap_mime_part, enc)},
	    {"content-md5", offsetof(struct imap_mime_part, md5)},
	    {"content-language", offsetof(struct imap_mime_part, lang)},
	    {"content-location", offsetof(struct imap_mime_part, loc)},
	};
	struct imap_mime_field f;
	size_t pos = 0;
	bool have_ct = false;
	while (imap_mime_next_field(p->hdr, p->hdrlen, &pos, &f)) {
		if (f.namelen < 8 || strncasecmp(f.name, "content-", 8) != 0)
			continue;
		if (imap_mime_name_eq(f.name, f.namelen, "content-type")) {
			char *v = have_ct ? NULL : imap_mime_field_value(m, &f);
			if (v != NULL)
				imap_mime_ctype_parse(m, v, true, &p->ct);
			have_ct = true;
			continue;
		}
		if (imap_mime_name_eq(f.name, f.namelen,
				      "content-disposition")) {
			char *v = p->disp.type != NULL
				      ? NULL
				      : imap_mime_field_value(m, &f);
			if (v != NULL)
				imap_mime_ctype_parse(m, v, false, &p->disp);
			continue;
		}
		for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
			char **slot = (char **)((char *)p + plain[i].off);
			if (*slot == NULL &&
			    imap_mime_name_eq(f.name, f.namelen, plain[i].name))
				*slot = imap_mime_field_value(m, &f);
		}
	}
}

static struct imap_mime_part *imap_mime_entity(struct imap_mime *m,
					       const char *s, size_t n,
					       int depth, bool in_digest);

/* Whether the line l[0..n) is a delimiter of boundary b: "--b" then
 * "--" for the close delimiter, then only blanks (RFC 2046 5.1.1). */
static bool
imap_mime_is_delim(const char *l, size_t n, const char *b, size_t blen,
		   bool *close)
{
	if (n < 2 + blen || l[0] != '-' || l[1] != '-' ||
	    memcmp(l + 2, b, blen) != 0)
		return false;
	size_t i = 2 + blen;
	*close = i + 2 <= n && l[i] == '-' && l[i + 1] == '-';
	if (*close)
		i += 2;
	for (; i < n; i++)
		if (l[i] != ' ' && l[i] != '\t' && l[i] != '\r' && l[i] != '\n')
			return false;
	return true;
}

/* Appends the part s[0..n) to the multipart p. */
static void
imap_mime_add_child(struct imap_mime *m, struct imap_mime_part *p,
		    struct imap_mime_part **last, const char *s, size_t n,
		    int depth)
{
	struct imap_mime_part *c = imap_mime_entity(
	    m, s, n, depth + 1, imap_mime_is(p, "multipart", "digest"));
	if (c == NULL)
		return;
	if (*last == NULL)
		p->child = c;
	else
		(*last)->next = c;
	*last = c;
	p->nchild++;
}

/* The parts of the multipart p between its boundary delimiters; the CRLF
 * before a delimiter belongs to the delimiter. Without a close
 * delimiter, the last part runs to the end of p's body. */
static void
imap_mime_multipart(struct imap_mime *m, struct imap_mime_part *p, int depth)
{
	const char *b = imap_mime_param_get(&p->ct, "boundary");
	if (b == NULL || *b == '\0')
		return;
	size_t blen = strlen(b);
	const char *s = p->body;
	size_t n = p->bodylen, pos = 0;
	const char *start = NULL; /* of the current part */
	struct imap_mime_part *last = NULL;
	while (pos < n) {
		size_t end = imap_mime_line_end(s, n, pos);
		bool close;
		if (!imap_mime_is_delim(s + pos, end - pos, b, blen, &close)) {
			pos = end;
			continue;
		}
		if (start != NULL) {
			const char *e = s + pos;
			if (e > start && e[-1] == '\n')
				e--;
			if (e > start && e[-1] == '\r')
				e--;
			imap_mime_add_child(m, p, &last, start,
					    (size_t)(e - start), depth);
		}
		start = close ? NULL : s + end;
		if (close || m->nparts >= IMAP_MIME_PARTS_MAX)
			break;
		pos = end;
	}
	if (start != NULL && (start < s + n || p->nchild == 0))
		imap_mime_add_child(m, p, &last, start, (size_t)(s + n - start),
				    depth);
}

/* The entity (header and body) s[0..n) at nesting depth, or NULL when
 * memory is short or the part limit is reached. */
static struct imap_mime_part *
imap_mime_entity(struct imap_mime *m, const char *s, size_t n, int depth,
		 bool in_digest)
{
	if (m->nparts >= IMAP_MIME_PARTS_MAX)
		return NULL;
	struct imap_mime_part *p = imap_mime_alloc(m, sizeof(*p));
	if (p == NULL)
		return NULL;
	m->nparts++;
	imap_mime_split(p, s, n);
	imap_mime_read_fields(m, p);
	if (p->ct.type == NULL) {
		/* RFC 2046 5.1.5: in a digest, parts are messages */
		if (in_digest) {
			p->ct.type = "message";
			p->ct.subtype = "rfc822";
		} else {
			imap_mime_set_text_plain(p);
		}
	}
	bool deeper =
	    depth + 1 < IMAP_MIME_DEPTH_MAX && m->nparts < IMAP_MIME_PARTS_MAX;
	if (imap_mime_is(p, "multipart", NULL)) {
		if (deeper)
			imap_mime_multipart(m, p, depth);
		if (p->nchild == 0) {
			imap_mime_set_text_plain(p);
			p->child = NULL;
		}
	} else if (imap_mime_is(p, "message", "rfc822")) {
		if (deeper)
			p->msg = imap_mime_entity(m, p->body, p->bodylen,
						  depth + 1, false);
		if (p->msg == NULL)
			imap_mime_set_text_plain(p);
	}
	return p;
}

struct imap_mime *
imap_mime_parse(const char *msg, size_t len)
{
	struct imap_mime *m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->root = imap_mime_entity(m, msg, len, 0, false);
	if (m->root == NULL || m->nomem) {
		imap_mime_free(m);
		return NULL;
	}
	return m;
}

/* ---- BODY[section] ---- */

bool
imap_mime_walk(const struct imap_mime *m, const uint32_t *parts, size_t nparts,
	       const struct imap_mime_part **node)
{
	const struct imap_mime_part *cur = m->root, *sel = NULL;
	for (size_t i = 0; i < nparts; i++) {
		if (sel != NULL) {
			if (sel->msg != NULL)
				cur = sel->msg;
			else if (sel->child != NULL && sel != cur)
				cur = sel;
			else
				return false;
		}
		if (cur->child != NULL) {
			if (parts[i] == 0 || parts[i] > cur->nchild)
				return false;
			sel = cur->child;
			for (uint32_t k = 1; k < parts[i]; k++)
				sel = sel->next;
		} else if (parts[i] == 1) {
			sel = cur;
		} else {
			return false;
		}
	}
	*node = sel;
	return true;
}

/* HEADER.FIELDS (not: .NOT) of the header h into sb. */
static int
imap_mime_header_fields(const char *h, size_t hlen,
			const char (*fields)[IMAP_FIELD_NAME_MAX],
			size_t nfields, bool not, struct strbuf *sb)
{
	struct imap_mime_field f;
	size_t pos = 0;
	while (imap_mime_next_field(h, hlen, &pos, &f)) {
		bool hit = false;
		for (size_t i = 0; i < nfields && !hit; i++)
			hit = imap_mime_name_eq(
			    f.name, f.namelen,
			    strnlen(fields[i], IMAP_FIELD_NAME_MAX) <
				    IMAP_FIELD_NAME_MAX
				? fields[i]
				: "");
		if (hit == not )
			continue;
		if (strbuf_append(sb, f.line, f.linelen) < 0)
			return -1;
		if (f.line[f.linelen - 1] != '\n' &&
		    strbuf_append(sb, "\r\n", 2) < 0)
			return -1;
	}
	return strbuf_append(sb, "\r\n", 2);
}

int
imap_mime_section(const struct imap_mime *m, const uint32_t *parts,
		  size_t nparts, enum imap_section_spec spec,
		  const char (*fields)[IMAP_FIELD_NAME_MAX], size_t nfields,
		  struct strbuf *sb, const char **data, size_t *len)
{
	const struct imap_mime_part *p;
	*data = "";
	*len = 0;
	if (!imap_mime_walk(m, parts, nparts, &p))
		return 0;
	/* msg: the message HEADER, TEXT and HEADER.FIELDS speak of */
	const struct imap_mime_part *msg = p == NULL ? m->root : p->msg;
	bool whole = p == NULL;
	if (p == NULL)
		p = m->root;
	switch (spec) {
	case IMAP_SECT_ALL:
		if (whole) {
			*data = p->hdr;
			*len = p->hdrlen + p->bodylen;
		} else {
			*data = p->body;
			*len = p->bodylen;
		}
		return 0;
	case IMAP_SECT_MIME:
		if (!whole) {
			*data = p->hdr;
			*len = p->hdrlen;
		}
		return 0;
	case IMAP_SECT_HEADER:
		if (msg != NULL) {
			*data = msg->hdr;
			*len = msg->hdrlen;
		}
		return 0;
	case IMAP_SECT_TEXT:
		if (msg != NULL) {
			*data = msg->body;
			*len = msg->bodylen;
		}
		return 0;
	case IMAP_SECT_HEADER_FIELDS:
	case IMAP_SECT_HEADER_FIELDS_NOT:
		if (msg == NULL)
			return 0;
		size_t start = sb->len;
		if (imap_mime_header_fields(
			msg->hdr, msg->hdrlen, fields, nfields,
			spec == IMAP_SECT_HEADER_FIELDS_NOT, sb) < 0) {
			sb->len = start;
			if (sb->buf != NULL)
				sb->buf[start] = '\0';
			return -1;
		}
		*data = sb->buf + start;
		*len = sb->len - start;
		return 0;
	}
	return 0;
}
