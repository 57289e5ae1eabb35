/* The status page (status_page.h). The Content-Security-Policy names the
 * hashes of the page's inline <style> and <script> as they are in the
 * compiled-in file, so an edit of the page can never leave a stale hash
 * behind, and nothing injected into the page could run. */
#include "status_page.h"

#include <string.h>

#include <openssl/evp.h>

#include "../common/log.h"

/* cmake/embed.cmake's output for status_page.html */
extern const unsigned char status_page_html[];
extern const size_t status_page_html_len;

int
status_page_render(void *arg, struct strbuf *sb)
{
	(void)arg;
	return strbuf_append(sb, status_page_html, status_page_html_len);
}

/* The 'sha256-...' source of the text between open and close (the first
 * of each) in the page. Returns 0, or -1 when the page has no such
 * element. */
static int
status_page_hash(const char *open, const char *close, char *out, size_t len)
{
	const char *page = (const char *)status_page_html;
	size_t plen = status_page_html_len;
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	const char *start, *end;

	start = memmem(page, plen, open, strlen(open));
	if (start == NULL)
		return -1;
	start += strlen(open);
	end =
	    memmem(start, plen - (size_t)(start - page), close, strlen(close));
	if (end == NULL || len < 8 + 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 2 ||
	    EVP_Digest(start, (size_t)(end - start), d, &dlen, EVP_sha256(),
		       NULL) != 1)
		return -1;
	memcpy(out, "'sha256-", 8);
	int n = EVP_EncodeBlock((unsigned char *)out + 8, d, (int)dlen);
	memcpy(out + 8 + n, "'", 2);
	return 0;
}

int
status_page_headers(void *arg, struct strbuf *sb)
{
	char style[128], script[128];

	(void)arg;
	if (status_page_hash("<style>", "</style>", style, sizeof(style)) < 0 ||
	    status_page_hash("<script>", "</script>", script, sizeof(script)) <
		0) {
		log_err("%s: the status page has no <style> or <script>",
			__func__);
		return -1;
	}
	return strbuf_appendf(
	    sb,
	    "Content-Security-Policy: default-src 'none'; style-src %s; "
	    "script-src %s; connect-src 'self'; img-src data:; "
	    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n"
	    "X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n",
	    style, script);
}
