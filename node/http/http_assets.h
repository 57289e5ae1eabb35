/* The webmail's files (node/http/webmail/), embedded in the binary at
 * build time by http_assets_embed.cmake, so a node needs no path to them:
 * what was built is what is served. */
#ifndef NODE_HTTP_ASSETS_H
#define NODE_HTTP_ASSETS_H

#include <stddef.h>

struct http_asset {
	const char *path; /* "/" for index.html, else "/NAME" */
	const char *type; /* Content-Type */
	const char *etag; /* quoted: the start of the file's SHA-256 */
	const unsigned char *data;
	size_t len;
};

extern const struct http_asset http_assets[];
extern const size_t http_nassets;

#endif
