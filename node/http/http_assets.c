/* GET / and the webmail's other files (http_assets.h): each with its
 * ETag and "Cache-Control: no-cache", so a browser keeps a copy and asks
 * again cheaply (304 when If-None-Match names the ETag), and with the
 * app's Content-Security-Policy: scripts from this origin only, never
 * inline; images also from data: (inline parts) and, once the reader
 * asks to show them, from the web; nothing else from anywhere else. */
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "http_assets.h"

#define HTTP_ASSETS_CSP                                                        \
	"Content-Security-Policy: default-src 'self'; script-src 'self'; "     \
	"style-src 'self' 'unsafe-inline'; img-src 'self' data: http: "        \
	"https:; object-src 'none'; base-uri 'none'; form-action 'self'; "     \
	"frame-ancestors 'none'\r\n"                                           \
	"X-Content-Type-Options: nosniff\r\n"                                  \
	"Referrer-Policy: no-referrer\r\n"

static const struct http_asset *
http_assets_find(const char *path)
{
	if (strcmp(path, "/index.html") == 0)
		path = "/";
	for (size_t i = 0; i < http_nassets; i++)
		if (strcmp(http_assets[i].path, path) == 0)
			return &http_assets[i];
	return NULL;
}

bool
http_assets_serve(struct http_session *s)
{
	const struct http_asset *a = http_assets_find(s->rq.path);
	char extra[1024];
	if (a == NULL)
		return false;
	if (s->rq.method != HTTP_GET && s->rq.method != HTTP_HEAD) {
		http_respond(s, 405, "application/json", "Allow: GET, HEAD\r\n",
			     "{\"error\":\"method not allowed\"}", 30);
		return true;
	}
	snprintf(extra, sizeof(extra),
		 "ETag: %s\r\nCache-Control: no-cache\r\n" HTTP_ASSETS_CSP,
		 a->etag);
	if (strcmp(s->rq.if_none_match, a->etag) == 0)
		http_respond(s, 304, NULL, extra, "", 0);
	else
		http_respond(s, 200, a->type, extra, a->data, a->len);
	return true;
}
