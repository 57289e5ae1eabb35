/* DKIM signatures: relaxed canonicalization of the header fields and the
 * body (RFC 6376 3.4.2, 3.4.4), the body hash, the DKIM-Signature field
 * hashed last with an empty b=, signed with OpenSSL (RSA PKCS#1 v1.5 over
 * SHA-256, or Ed25519 over the SHA-256 digest as RFC 8463 says). */
#include "queue_dkim.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "../../common/strbuf.h"

#define DKIM_KEYFILE_MAX 16384
#define DKIM_FIELDS_MAX 512
#define DKIM_HEADER_MAX 65536 /* a canonical header section bigger: no */

struct dkim_field {
	const char *p; /* the field, name first */
	size_t len;    /* up to, not including, its final CRLF */
	size_t namelen;
};

static bool
dkim_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* Splits the header section of msg into fields. Returns their number and
 * the offset of the body in *body (len when there is none). */
static size_t
dkim_fields(const char *msg, size_t len, struct dkim_field *f, size_t max,
	    size_t *body)
{
	size_t n = 0, off = 0;
	while (off < len) {
		const char *nl = memchr(msg + off, '\n', len - off);
		size_t end = nl ? (size_t)(nl - msg) + 1 : len;
		size_t linelen = end - off;
		if (linelen <= 2 && (msg[off] == '\r' || msg[off] == '\n')) {
			*body = end; /* the empty line */
			return n;
		}
		if (dkim_wsp(msg[off]) && n > 0)
			f[n - 1].len = end - (size_t)(f[n - 1].p - msg);
		else if (n < max) {
			const char *colon = memchr(msg + off, ':', linelen);
			f[n].p = msg + off;
			f[n].len = linelen;
			f[n].namelen =
			    colon ? (size_t)(colon - (msg + off)) : 0;
			n++;
		}
		off = end;
	}
	*body = len;
	return n;
}

/* Appends the relaxed form of one field: name lowercased, unfolded,
 * whitespace runs as one space, none around the colon or at the end. */
static void
dkim_relaxed_header(struct strbuf *sb, const char *p, size_t len,
		    size_t namelen)
{
	size_t nl = namelen;
	while (nl > 0 && dkim_wsp(p[nl - 1]))
		nl--;
	for (size_t i = 0; i < nl; i++) {
		char c = (char)tolower((unsigned char)p[i]);
		strbuf_append(sb, &c, 1);
	}
	strbuf_append(sb, ":", 1);
	size_t i = namelen + 1;
	bool space = false, started = false;
	for (; i < len; i++) {
		char c = p[i];
		if (c == '\r' || c == '\n')
			continue;
		if (dkim_wsp(c)) {
			space = true;
			continue;
		}
		if (space && started)
			strbuf_append(sb, " ", 1);
		space = false;
		started = true;
		strbuf_append(sb, &c, 1);
	}
}

/* The relaxed body's SHA-256. */
static void
dkim_body_hash(const char *b, size_t len, unsigned char out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	size_t empty = 0, off = 0;
	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
		memset(out, 0, 32);
		EVP_MD_CTX_free(c);
		return;
	}
	while (off < len) {
		const char *nl = memchr(b + off, '\n', len - off);
		size_t end = nl ? (size_t)(nl - b) : len;
		size_t e = end;
		if (e > off && b[e - 1] == '\r')
			e--;
		while (e > off && dkim_wsp(b[e - 1]))
			e--;
		if (e == off) {
			empty++;
		} else {
			for (; empty > 0; empty--)
				EVP_DigestUpdate(c, "\r\n", 2);
			bool space = false;
			for (size_t i = off; i < e; i++) {
				if (dkim_wsp(b[i])) {
					space = true;
					continue;
				}
				if (space)
					EVP_DigestUpdate(c, " ", 1);
				space = false;
				EVP_DigestUpdate(c, b + i, 1);
			}
			EVP_DigestUpdate(c, "\r\n", 2);
		}
		off = nl ? end + 1 : len;
	}
	EVP_DigestFinal_ex(c, out, NULL);
	EVP_MD_CTX_free(c);
}

static void
dkim_base64(struct strbuf *sb, const unsigned char *p, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (out == NULL)
		return;
	int n = EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	strbuf_append(sb, out, (size_t)n);
	free(out);
}

/* Reads QUEUE/.dkim/DOMAIN: the selector and the key. */
static EVP_PKEY *
dkim_key(struct queue *q, const char *domain, char *selector, size_t sellen)
{
	char path[300], buf[DKIM_KEYFILE_MAX + 1];
	if (domain[0] == '\0' || domain[0] == '.' || strchr(domain, '/') ||
	    strlen(domain) > 253) {
		errno = ENOENT;
		return NULL;
	}
	snprintf(path, sizeof(path), DKIM_DIR "/%s", domain);
	int fd = openat(queue_dirfd(q), path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ssize_t n = read(fd, buf, DKIM_KEYFILE_MAX);
	close(fd);
	if (n <= 0) {
		errno = EINVAL;
		return NULL;
	}
	buf[n] = '\0';
	char *nl = strchr(buf, '\n');
	if (nl == NULL || (size_t)(nl - buf) >= sellen || nl == buf) {
		errno = EINVAL;
		return NULL;
	}
	memcpy(selector, buf, (size_t)(nl - buf));
	selector[nl - buf] = '\0';
	BIO *bio = BIO_new_mem_buf(nl + 1, (int)(n - (nl + 1 - buf)));
	EVP_PKEY *k =
	    bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (k == NULL)
		errno = EINVAL;
	return k;
}

/* Signs data: RSA over SHA-256, Ed25519 over its SHA-256 digest. */
static int
dkim_sign_data(EVP_PKEY *k, const char *data, size_t len, unsigned char *sig,
	       size_t *siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = 0;
	if (ctx == NULL)
		return -1;
	if (EVP_PKEY_id(k) == EVP_PKEY_ED25519) {
		unsigned char d[32];
		if (EVP_Digest(data, len, d, NULL, EVP_sha256(), NULL) != 1) {
			EVP_MD_CTX_free(ctx);
			return -1;
		}
		ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) == 1 &&
		     EVP_DigestSign(ctx, sig, siglen, d, sizeof(d)) == 1;
	} else
		ok =
		    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k) == 1 &&
		    EVP_DigestSign(ctx, sig, siglen,
				   (const unsigned char *)data, len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

char *
queue_dkim_sign(struct queue *q, const char *domain, const char *msg,
		size_t len)
{
	char selector[DKIM_SELECTOR_MAX], names[] = DKIM_SIGNED_HEADERS;
	struct dkim_field *f = NULL;
	struct strbuf hdr, sig;
	unsigned char bh[32], sigbin[1024];
	size_t body, nf, siglen = sizeof(sigbin);
	char *out = NULL, *save;
	int saved = EINVAL;

	EVP_PKEY *k = dkim_key(q, domain, selector, sizeof(selector));
	if (k == NULL)
		return NULL;
	strbuf_init(&hdr, DKIM_HEADER_MAX);
	strbuf_init(&sig, DKIM_HEADER_MAX);
	if ((f = calloc(DKIM_FIELDS_MAX, sizeof(*f))) == NULL) {
		saved = ENOMEM;
		goto out;
	}
	nf = dkim_fields(msg, len, f, DKIM_FIELDS_MAX, &body);
	dkim_body_hash(msg + body, len - body, bh);

	/* h=: each listed name present, its last instance hashed. */
	struct strbuf h;
	strbuf_init(&h, 4096);
	for (char *name = strtok_r(names, ":", &save); name;
	     name = strtok_r(NULL, ":", &save)) {
		size_t nl = strlen(name);
		for (size_t i = nf; i-- > 0;) {
			if (f[i].namelen != nl ||
			    strncasecmp(f[i].p, name, nl) != 0)
				continue;
			strbuf_appendf(&h, "%s%s", h.len ? ":" : "", name);
			dkim_relaxed_header(&hdr, f[i].p, f[i].len,
					    f[i].namelen);
			strbuf_append(&hdr, "\r\n", 2);
			break;
		}
	}
	strbuf_appendf(&sig,
		       "DKIM-Signature: v=1; a=%s; c=relaxed/relaxed; d=%s; "
		       "s=%s;\r\n\tt=%lld; h=%.*s;\r\n\tbh=",
		       EVP_PKEY_id(k) == EVP_PKEY_ED25519 ? "ed25519-sha256"
							  : "rsa-sha256",
		       domain, selector, (long long)time(NULL), (int)h.len,
		       h.buf ? h.buf : "");
	strbuf_free(&h);
	dkim_base64(&sig, bh, sizeof(bh));
	strbuf_appends(&sig, ";\r\n\tb=");
	/* The signature field itself, relaxed, without its CRLF, last. */
	dkim_relaxed_header(&hdr, sig.buf, sig.len, strlen("DKIM-Signature"));
	if (hdr.buf == NULL || sig.buf == NULL ||
	    dkim_sign_data(k, hdr.buf, hdr.len, sigbin, &siglen) < 0)
		goto out;
	struct strbuf b;
	strbuf_init(&b, 4096);
	dkim_base64(&b, sigbin, siglen);
	for (size_t i = 0; b.buf && i < b.len; i += 64) {
		if (i)
			strbuf_appends(&sig, "\r\n\t ");
		strbuf_append(&sig, b.buf + i, b.len - i < 64 ? b.len - i : 64);
	}
	strbuf_free(&b);
	strbuf_appends(&sig, "\r\n");
	out = strndup(sig.buf, sig.len);
	saved = out ? 0 : ENOMEM;
out:
	free(f);
	strbuf_free(&hdr);
	strbuf_free(&sig);
	EVP_PKEY_free(k);
	errno = saved;
	return out;
}

int
queue_dkim_record(const char *pem, size_t pemlen, char *out, size_t outlen)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)pemlen);
	EVP_PKEY *k =
	    bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	unsigned char raw[4096], *p = raw;
	size_t rawlen = sizeof(raw);
	int rc = -1;
	struct strbuf sb;
	strbuf_init(&sb, outlen);
	BIO_free(bio);
	if (k == NULL)
		return -1;
	if (EVP_PKEY_id(k) == EVP_PKEY_ED25519) {
		if (EVP_PKEY_get_raw_public_key(k, raw, &rawlen) != 1)
			goto out;
		strbuf_appends(&sb, "v=DKIM1; k=ed25519; p=");
	} else if (EVP_PKEY_id(k) == EVP_PKEY_RSA) {
		int n = i2d_PUBKEY(k, NULL);
		if (n <= 0 || (size_t)n > sizeof(raw) || i2d_PUBKEY(k, &p) != n)
			goto out;
		rawlen = (size_t)n;
		strbuf_appends(&sb, "v=DKIM1; k=rsa; p=");
	} else
		goto out;
	dkim_base64(&sb, raw, rawlen);
	if (sb.buf && sb.len < outlen) {
		memcpy(out, sb.buf, sb.len);
		out[sb.len] = '\0';
		rc = 0;
	}
out:
	strbuf_free(&sb);
	EVP_PKEY_free(k);
	return rc;
}
