/* ENVELOPE and BODY/BODYSTRUCTURE (RFC 3501 7.4.2) from the part tree:
 * IMAP strings, RFC 5322 address lists as IMAP address structures, and
 * the body structure with its extension data. Header values go out as
 * they are in the message (unfolded, encoded words kept). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/strbuf.h"
#include "imap_mime_int.h"

/* ---- strings ---- */

int
imap_env_string(struct strbuf *sb, const char *s, size_t n, bool upper)
{
	bool literal = false;
	for (size_t i = 0; i < n && !literal; i++) {
		unsigned char c = (unsigned char)s[i];
		literal = c == '\0' || c == '\r' || c == '\n' || c >= 0x80;
	}
	if (literal) {
		if (strbuf_appendf(sb, "{%zu}\r\n", n) < 0)
			return -1;
	} else if (strbuf_append(sb, "\"", 1) < 0) {
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char c = upper ? (char)toupper((unsigned char)s[i]) : s[i];
		if (!literal && (c == '"' || c == '\\') &&
		    strbuf_append(sb, "\\", 1) < 0)
			return -1;
		if (strbuf_append(sb, &c, 1) < 0)
			return -1;
	}
	return literal ? 0 : strbuf_append(sb, "\"", 1);
}

int
imap_env_nstring(struct strbuf *sb, const char *s, bool upper)
{
	if (s == NULL)
		return strbuf_append(sb, "NIL", 3);
	return imap_env_string(sb, s, strlen(s), upper);
}

/* Drops what was appended to sb after start (all or nothing). */
static int
imap_env_rollback(struct strbuf *sb, size_t start)
{
	sb->len = start;
	if (sb->buf != NULL)
		sb->buf[start] = '\0';
	sb->overflow = true;
	return -1;
}

/* ---- address lists (RFC 5322 3.4) ---- */

/* A token of an address header: 'w' an atom or domain literal, 'q' a
 * quoted string (quotes included), or one of the specials "<>,:;@.". */
struct imap_env_tok {
	char kind;
	bool space; /* blanks or a comment before it */
	const char *s;
	size_t n;
	const char *cmt; /* the comment just before it (parentheses
			    included), NULL when none */
	size_t cmtn;
};

struct imap_env_addr {
	struct strbuf *sb;
	const struct imap_env_tok *t;
	size_t n;
	size_t count;			/* addresses written */
	char *name, *adl, *mbox, *host; /* scratch, each len + 1 bytes */
	int rc;
	bool text; /* imap_addr_text's form, not ENVELOPE's */
};

/* Splits v into tokens, into t unless it is NULL (to count them first);
 * returns the count. t[count] (t has room for it) is an end token of
 * kind '\0' that carries the comment at the end. */
static size_t
imap_env_tokenize(const char *v, struct imap_env_tok *t)
{
	size_t n = 0, cmtn = 0;
	bool space = false;
	const char *p = v, *cmt = NULL;
	while (*p != '\0') {
		if (*p == ' ' || *p == '\t') {
			space = true;
			p++;
			continue;
		}
		const char *s = p;
		char kind = 'w';
		if (*p == '(') {
			p = imap_mime_skip_comment(p);
			cmt = s;
			cmtn = (size_t)(p - s);
			space = true;
			continue;
		} else if (*p == '"' || *p == '[') {
			char close = *p == '"' ? '"' : ']';
			kind = *p == '"' ? 'q' : 'w';
			for (p++; *p != '\0' && *p != close; p++)
				if (*p == '\\' && p[1] != '\0')
					p++;
			if (*p != '\0')
				p++;
		} else if (strchr("<>,:;@.", *p) != NULL) {
			kind = *p++;
		} else {
			p++; /* at least one byte: a stray ')' is a word */
			while (*p != '\0' && *p != ' ' && *p != '\t' &&
			       strchr("()<>,:;@.\"[", *p) == NULL)
				p++;
		}
		if (t != NULL)
			t[n] = (struct imap_env_tok){
			    kind, space, s, (size_t)(p - s), cmt, cmtn};
		n++;
		space = false;
		cmt = NULL;
	}
	if (t != NULL)
		t[n] = (struct imap_env_tok){'\0', space, p, 0, cmt, cmtn};
	return n;
}

/* The text of comment t->cmt (parentheses and quoting backslashes off,
 * blanks trimmed) into out; false when there is none or it is empty. */
static bool
imap_env_comment(const struct imap_env_tok *t, char *out)
{
	if (t->cmt == NULL || t->cmtn < 2)
		return false;
	size_t o = 0, end = t->cmt[t->cmtn - 1] == ')' ? t->cmtn - 1 : t->cmtn;
	for (size_t i = 1; i < end; i++) {
		if (t->cmt[i] == '\\' && i + 1 < end)
			i++;
		if (o > 0 || (t->cmt[i] != ' ' && t->cmt[i] != '\t'))
			out[o++] = t->cmt[i];
	}
	while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
		o--;
	out[o] = '\0';
	return o > 0;
}

/* Tokens [i, j) joined into out: as a phrase (quoted strings unquoted,
 * one space where there were blanks) or raw (addr-spec: no spaces,
 * quotes kept). */
static void
imap_env_join(const struct imap_env_tok *t, size_t i, size_t j, bool phrase,
	      char *out)
{
	size_t o = 0;
	for (size_t k = i; k < j; k++) {
		if (phrase && k > i && t[k].space)
			out[o++] = ' ';
		if (!phrase || t[k].kind != 'q') {
			memcpy(out + o, t[k].s, t[k].n);
			o += t[k].n;
			continue;
		}
		for (size_t c = 1; c < t[k].n; c++) {
			if (t[k].s[c] == '"' && c == t[k].n - 1)
				break;
			if (t[k].s[c] == '\\' && c + 1 < t[k].n)
				c++;
			out[o++] = t[k].s[c];
		}
	}
	out[o] = '\0';
}

/* One address structure; NULL fields are NIL. */
static void
imap_env_emit(struct imap_env_addr *a, const char *name, const char *adl,
	      const char *mbox, const char *host)
{
	struct strbuf *sb = a->sb;
	if (a->rc < 0)
		return;
	if (a->text) { /* "name <mbox@host>, ": groups as their members */
		if (mbox == NULL || host == NULL)
			return;
		if (strbuf_appendf(sb, "%s%s%s%s%s%s%s", a->count++ ? ", " : "",
				   name ? name : "", name ? " <" : "", mbox,
				   *host ? "@" : "", host, name ? ">" : "") < 0)
			a->rc = -1;
		return;
	}
	if ((a->count++ == 0 && strbuf_append(sb, "(", 1) < 0) ||
	    strbuf_append(sb, "(", 1) < 0 ||
	    imap_env_nstring(sb, name, false) < 0 ||
	    strbuf_append(sb, " ", 1) < 0 ||
	    imap_env_nstring(sb, adl, false) < 0 ||
	    strbuf_append(sb, " ", 1) < 0 ||
	    imap_env_nstring(sb, mbox, false) < 0 ||
	    strbuf_append(sb, " ", 1) < 0 ||
	    imap_env_nstring(sb, host, false) < 0 ||
	    strbuf_append(sb, ")", 1) < 0)
		a->rc = -1;
}

static bool
imap_env_is(const struct imap_env_addr *a, size_t i, char kind)
{
	return i < a->n && a->t[i].kind == kind;
}

/* The end of the phrase (words and dots) starting at i. */
static size_t
imap_env_phrase_end(const struct imap_env_addr *a, size_t i)
{
	while (i < a->n && (a->t[i].kind == 'w' || a->t[i].kind == 'q' ||
			    a->t[i].kind == '.'))
		i++;
	return i;
}

/* "<[route:]local@domain>" from i (just past '<'); returns past '>'. */
static size_t
imap_env_angle(struct imap_env_addr *a, size_t i, const char *name)
{
	const char *adl = NULL;
	if (imap_env_is(a, i, '@')) {
		size_t k = i;
		while (k < a->n && a->t[k].kind != ':' && a->t[k].kind != '>')
			k++;
		if (imap_env_is(a, k, ':')) {
			imap_env_join(a->t, i, k, false, a->adl);
			adl = a->adl;
			i = k + 1;
		}
	}
	size_t l = i;
	while (i < a->n && strchr("@>,;<", a->t[i].kind) == NULL)
		i++;
	imap_env_join(a->t, l, i, false, a->mbox);
	bool has_host = imap_env_is(a, i, '@');
	if (has_host) {
		size_t d = ++i;
		while (i < a->n && strchr(">,;<", a->t[i].kind) == NULL)
			i++;
		imap_env_join(a->t, d, i, false, a->host);
	}
	if (imap_env_is(a, i, '>'))
		i++;
	if (name != NULL || *a->mbox != '\0' || has_host)
		imap_env_emit(a, name, adl, a->mbox, has_host ? a->host : "");
	return i;
}

/* One mailbox from i; returns where the next address may start (past
 * i in every case). */
static size_t
imap_env_mailbox(struct imap_env_addr *a, size_t i, bool in_group)
{
	size_t j = imap_env_phrase_end(a, i);
	size_t k = j;
	if (imap_env_is(a, j, '<')) {
		const char *name = NULL;
		size_t close = j;
		while (close < a->n && a->t[close].kind != '>')
			close++;
		if (j > i) {
			imap_env_join(a->t, i, j, true, a->name);
			name = a->name;
		} else if (close < a->n &&
			   imap_env_comment(&a->t[close + 1], a->name)) {
			name = a->name; /* "<user@domain> (Real Name)" */
		}
		k = imap_env_angle(a, j + 1, name);
	} else if (imap_env_is(a, j, '@')) {
		imap_env_join(a->t, i, j, false, a->mbox);
		for (k = j + 1;
		     k < a->n && strchr(",;<>:", a->t[k].kind) == NULL; k++)
			;
		imap_env_join(a->t, j + 1, k, false, a->host);
		/* "user@domain (Real Name)": the comment is the name, as
		 * when there is no phrase the reference server takes it */
		const char *name =
		    imap_env_comment(&a->t[k], a->name) ? a->name : NULL;
		imap_env_emit(a, name, NULL, a->mbox, a->host);
	} else if (j > i) {
		/* a local part without domain */
		imap_env_join(a->t, i, j, false, a->mbox);
		imap_env_emit(a, NULL, NULL, a->mbox, "");
	}
	/* skip junk up to the next separator */
	while (k < a->n && a->t[k].kind != ',' &&
	       !(in_group && a->t[k].kind == ';'))
		k++;
	return k > i ? k : i + 1;
}

/* "name: mailbox, ...;" from i (at the name); returns past ';'. */
static size_t
imap_env_group(struct imap_env_addr *a, size_t i, size_t colon)
{
	imap_env_join(a->t, i, colon, true, a->name);
	imap_env_emit(a, NULL, NULL, a->name, NULL);
	i = colon + 1;
	while (i < a->n && a->t[i].kind != ';') {
		if (a->t[i].kind == ',' || a->t[i].kind == ':' ||
		    a->t[i].kind == '>')
			i++;
		else
			i = imap_env_mailbox(a, i, true);
	}
	imap_env_emit(a, NULL, NULL, NULL, NULL);
	return i + 1;
}

/* The address list v as "(addr...)" or NIL when it has none; with
 * text, as imap_addr_text writes it. */
static int
imap_env_addresses(struct strbuf *sb, const char *v, bool text)
{
	size_t len = strlen(v);
	struct imap_env_tok *t =
	    malloc((imap_env_tokenize(v, NULL) + 1) * sizeof(*t));
	char *scratch = malloc(4 * (len + 1));
	struct imap_env_addr a = {.sb = sb, .t = t, .text = text};
	if (t == NULL || scratch == NULL) {
		a.rc = -1;
		goto done;
	}
	a.name = scratch;
	a.adl = scratch + (len + 1);
	a.mbox = scratch + 2 * (len + 1);
	a.host = scratch + 3 * (len + 1);
	a.n = imap_env_tokenize(v, t);
	for (size_t i = 0; i < a.n && a.rc == 0;) {
		char k = t[i].kind;
		if (k == ',' || k == ';' || k == '>' || k == ':') {
			i++;
			continue;
		}
		size_t j = imap_env_phrase_end(&a, i);
		if (imap_env_is(&a, j, ':'))
			i = imap_env_group(&a, i, j);
		else
			i = imap_env_mailbox(&a, i, false);
	}
	if (a.rc == 0 && !text)
		a.rc = strbuf_appends(sb, a.count > 0 ? ")" : "NIL");
done:
	free(t);
	free(scratch);
	return a.rc;
}

int
imap_addr_text(const char *v, struct strbuf *sb)
{
	return imap_env_addresses(sb, v, true);
}

/* ---- ENVELOPE ---- */

/* The unfolded value of the first field name of the header, malloc'ed,
 * or NULL when absent (*nomem set when memory is short). */
static char *
imap_env_value(const struct imap_mime_part *msg, const char *name, bool *nomem)
{
	struct imap_mime_field f;
	if (!imap_mime_find_field(msg->hdr, msg->hdrlen, name, &f))
		return NULL;
	char *v = malloc(f.valuelen + 1);
	if (v == NULL) {
		*nomem = true;
		return NULL;
	}
	imap_mime_unfold(f.value, f.valuelen, v);
	return v;
}

static int
imap_env_field(struct strbuf *sb, const struct imap_mime_part *msg,
	       const char *name, const char *fallback, bool address)
{
	bool nomem = false;
	char *v = imap_env_value(msg, name, &nomem);
	/* RFC 3501: Sender and Reply-To absent or empty are From */
	if (v != NULL && *v == '\0' && fallback != NULL) {
		free(v);
		v = NULL;
	}
	if (v == NULL && fallback != NULL && !nomem)
		v = imap_env_value(msg, fallback, &nomem);
	int rc;
	if (nomem)
		rc = -1;
	else if (v == NULL)
		rc = strbuf_append(sb, "NIL", 3);
	else if (address)
		rc = imap_env_addresses(sb, v, false);
	else
		rc = imap_env_string(sb, v, strlen(v), false);
	free(v);
	return rc;
}

/* The ENVELOPE of the message whose header msg holds. */
static int
imap_env_envelope(struct strbuf *sb, const struct imap_mime_part *msg)
{
	static const struct {
		const char *name, *fallback;
		bool address;
	} fields[] = {
	    {"date", NULL, false},	  {"subject", NULL, false},
	    {"from", NULL, true},	  {"sender", "from", true},
	    {"reply-to", "from", true},	  {"to", NULL, true},
	    {"cc", NULL, true},		  {"bcc", NULL, true},
	    {"in-reply-to", NULL, false}, {"message-id", NULL, false},
	};
	if (strbuf_append(sb, "(", 1) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (i > 0 && strbuf_append(sb, " ", 1) < 0)
			return -1;
		if (imap_env_field(sb, msg, fields[i].name, fields[i].fallback,
				   fields[i].address) < 0)
			return -1;
	}
	return strbuf_append(sb, ")", 1);
}

int
imap_mime_envelope(const struct imap_mime *m, struct strbuf *sb)
{
	size_t start = sb->len;
	if (imap_env_envelope(sb, m->root) < 0)
		return imap_env_rollback(sb, start);
	return 0;
}

/* ---- BODYSTRUCTURE ---- */

/* The parameter list of ct, NIL when empty; text parts without a
 * charset get RFC 2045's default one. */
static int
imap_env_params(struct strbuf *sb, const struct imap_mime_ctype *ct, bool text)
{
	bool charset = text && imap_mime_param_get(ct, "charset") == NULL;
	if (ct->nparam == 0 && !charset)
		return strbuf_append(sb, "NIL", 3);
	if (strbuf_append(sb, "(", 1) < 0)
		return -1;
	if (charset && strbuf_appends(sb, "\"CHARSET\" \"US-ASCII\"") < 0)
		return -1;
	for (size_t i = 0; i < ct->nparam; i++) {
		if ((i > 0 || charset) && strbuf_append(sb, " ", 1) < 0)
			return -1;
		if (imap_env_nstring(sb, ct->param[i].name, true) < 0 ||
		    strbuf_append(sb, " ", 1) < 0 ||
		    imap_env_nstring(sb, ct->param[i].value, false) < 0)
			return -1;
	}
	return strbuf_append(sb, ")", 1);
}

/* Content-Language: NIL, one string, or a list of them. */
static int
imap_env_language(struct strbuf *sb, const char *lang)
{
	const char *sep = " \t,";
	size_t ntags = 0;
	for (const char *p = lang; p != NULL && *p != '\0';) {
		p += strspn(p, sep);
		size_t n = strcspn(p, sep);
		ntags += n > 0;
		p += n;
	}
	if (ntags == 0)
		return strbuf_append(sb, "NIL", 3);
	if (ntags > 1 && strbuf_append(sb, "(", 1) < 0)
		return -1;
	size_t k = 0;
	for (const char *p = lang; *p != '\0';) {
		p += strspn(p, sep);
		size_t n = strcspn(p, sep);
		if (n == 0)
			break;
		if ((k++ > 0 && strbuf_append(sb, " ", 1) < 0) ||
		    imap_env_string(sb, p, n, false) < 0)
			return -1;
		p += n;
	}
	return ntags > 1 ? strbuf_append(sb, ")", 1) : 0;
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc. */
static int
imap_env_ext_common(struct strbuf *sb, const struct imap_mime_part *p)
{
	if (p->disp.type == NULL) {
		if (strbuf_append(sb, "NIL", 3) < 0)
			return -1;
	} else if (strbuf_append(sb, "(", 1) < 0 ||
		   imap_env_nstring(sb, p->disp.type, true) < 0 ||
		   strbuf_append(sb, " ", 1) < 0 ||
		   imap_env_params(sb, &p->disp, false) < 0 ||
		   strbuf_append(sb, ")", 1) < 0) {
		return -1;
	}
	if (strbuf_append(sb, " ", 1) < 0 ||
	    imap_env_language(sb, p->lang) < 0 ||
	    strbuf_append(sb, " ", 1) < 0 ||
	    imap_env_nstring(sb, p->loc, false) < 0)
		return -1;
	return 0;
}

static size_t
imap_env_lines(const char *s, size_t n)
{
	size_t lines = 0;
	for (const char *e = s + n; (s = memchr(s, '\n', (size_t)(e - s))); s++)
		lines++;
	return lines;
}

static int imap_env_body(struct strbuf *sb, const struct imap_mime_part *p,
			 bool ext);

static int
imap_env_multipart(struct strbuf *sb, const struct imap_mime_part *p, bool ext)
{
	if (strbuf_append(sb, "(", 1) < 0)
		return -1;
	for (const struct imap_mime_part *c = p->child; c != NULL; c = c->next)
		if (imap_env_body(sb, c, ext) < 0)
			return -1;
	if (strbuf_append(sb, " ", 1) < 0 ||
	    imap_env_nstring(sb, p->ct.subtype, true) < 0)
		return -1;
	if (ext &&
	    (strbuf_append(sb, " ", 1) < 0 ||
	     imap_env_params(sb, &p->ct, false) < 0 ||
	     strbuf_append(sb, " ", 1) < 0 || imap_env_ext_common(sb, p) < 0))
		return -1;
	return strbuf_append(sb, ")", 1);
}

/* The encoding's first token, uppercased; "7BIT" by default. */
static int
imap_env_encoding(struct strbuf *sb, const char *enc)
{
	size_t n = enc != NULL ? imap_mime_enc_len(enc) : 0;
	if (n == 0)
		return strbuf_appends(sb, "\"7BIT\"");
	return imap_env_string(sb, enc, n, true);
}

static int
imap_env_single(struct strbuf *sb, const struct imap_mime_part *p, bool ext)
{
	bool text = imap_mime_is(p, "text", NULL);
	if (strbuf_append(sb, "(", 1) < 0 ||
	    imap_env_nstring(sb, p->ct.type, true) < 0 ||
	    strbuf_append(sb, " ", 1) < 0 ||
	    imap_env_nstring(sb, p->ct.subtype, true) < 0 ||
	    strbuf_append(sb, " ", 1) < 0 ||
	    imap_env_params(sb, &p->ct, text) < 0 ||
	    strbuf_append(sb, " ", 1) < 0 ||
	    imap_env_nstring(sb, p->id, false) < 0 ||
	    strbuf_append(sb, " ", 1) < 0 ||
	    imap_env_nstring(sb, p->desc, false) < 0 ||
	    strbuf_append(sb, " ", 1) < 0 ||
	    imap_env_encoding(sb, p->enc) < 0 ||
	    strbuf_appendf(sb, " %zu", p->bodylen) < 0)
		return -1;
	if (p->msg != NULL && (strbuf_append(sb, " ", 1) < 0 ||
			       imap_env_envelope(sb, p->msg) < 0 ||
			       strbuf_append(sb, " ", 1) < 0 ||
			       imap_env_body(sb, p->msg, ext) < 0))
		return -1;
	if ((text || p->msg != NULL) &&
	    strbuf_appendf(sb, " %zu", imap_env_lines(p->body, p->bodylen)) < 0)
		return -1;
	if (ext &&
	    (strbuf_append(sb, " ", 1) < 0 ||
	     imap_env_nstring(sb, p->md5, false) < 0 ||
	     strbuf_append(sb, " ", 1) < 0 || imap_env_ext_common(sb, p) < 0))
		return -1;
	return strbuf_append(sb, ")", 1);
}

static int
imap_env_body(struct strbuf *sb, const struct imap_mime_part *p, bool ext)
{
	if (p->child != NULL)
		return imap_env_multipart(sb, p, ext);
	return imap_env_single(sb, p, ext);
}

int
imap_mime_bodystructure(const struct imap_mime *m, bool extended,
			struct strbuf *sb)
{
	size_t start = sb->len;
	if (imap_env_body(sb, m->root, extended) < 0)
		return imap_env_rollback(sb, start);
	return 0;
}
