/* The part tree's leaves and decoded content for the web role's
 * GET /api/messages/UID/parts (imap_mime.h): the same parser IMAP's
 * FETCH uses, so both read a message alike. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_mime_int.h"

/* The name of an attachment: the disposition's filename, else the
 * type's name parameter. */
static const char *
imap_leaf_name(const struct imap_mime_part *p)
{
	const char *n = NULL;
	if (p->disp.type != NULL)
		n = imap_mime_param_get(&p->disp, "filename");
	return n ? n : imap_mime_param_get(&p->ct, "name");
}

static int
imap_leaf_walk(const struct imap_mime_part *p, const char *section,
	       int (*fn)(void *, const struct imap_mime_leaf *), void *arg)
{
	if (p->child != NULL) {
		uint32_t i = 1;
		for (const struct imap_mime_part *c = p->child; c != NULL;
		     c = c->next, i++) {
			char sub[sizeof(((struct imap_mime_leaf *)0)->section)];
			int n = snprintf(sub, sizeof(sub), "%s%s%u", section,
					 section[0] ? "." : "", i);
			if (n < 0 || (size_t)n >= sizeof(sub))
				return 0; /* deeper than a section holds */
			int rc = imap_leaf_walk(c, sub, fn, arg);
			if (rc != 0)
				return rc;
		}
		return 0;
	}
	struct imap_mime_leaf l;
	memset(&l, 0, sizeof(l));
	snprintf(l.section, sizeof(l.section), "%s",
		 section[0] ? section : "1");
	l.type = p->ct.type ? p->ct.type : "text";
	l.subtype = p->ct.subtype ? p->ct.subtype : "plain";
	l.charset = imap_mime_param_get(&p->ct, "charset");
	l.name = imap_leaf_name(p);
	l.cid = p->id;
	l.disposition = p->disp.type;
	l.body = p->body;
	l.bodylen = p->bodylen;
	l.enc = p->enc;
	return fn(arg, &l);
}

int
imap_mime_leaves(const struct imap_mime *m,
		 int (*fn)(void *arg, const struct imap_mime_leaf *l),
		 void *arg)
{
	return imap_leaf_walk(m->root, "", fn, arg);
}

char *
imap_mime_leaf_decode(const struct imap_mime_leaf *l, size_t *len)
{
	const char *enc = l->enc ? l->enc : "";
	size_t elen = imap_mime_enc_len(enc);
	char *out = malloc(l->bodylen + 1);
	if (out == NULL)
		return NULL;
	if (imap_mime_name_eq(enc, elen, "base64"))
		*len = imap_text_base64(l->body, l->bodylen, out);
	else if (imap_mime_name_eq(enc, elen, "quoted-printable"))
		*len = imap_text_qp(l->body, l->bodylen, false, out);
	else {
		memcpy(out, l->body, l->bodylen);
		*len = l->bodylen;
	}
	out[*len] = '\0';
	return out;
}

bool
imap_mime_header_get(const struct imap_mime *m, const char *field, char *out,
		     size_t outlen)
{
	if (outlen > 0)
		out[0] = '\0';
	return imap_hdr_text(m->root->hdr, m->root->hdrlen, field, out, outlen);
}

void
imap_mime_decode_words(const char *v, char *out, size_t outlen)
{
	size_t n = strlen(v);
	char *d = malloc(2 * n + 1);
	if (outlen == 0)
		goto out;
	if (d == NULL) { /* as it is, rather than nothing */
		snprintf(out, outlen, "%s", v);
		goto out;
	}
	size_t dn = imap_text_decode_header(v, n, d);
	if (dn >= outlen)
		dn = outlen - 1;
	memcpy(out, d, dn);
	out[dn] = '\0';
out:
	free(d);
}
