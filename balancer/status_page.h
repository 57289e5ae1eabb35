/* lbd's status page: balancer/status_page.html, compiled in (the build
 * embeds it, cmake/embed.cmake), served at GET / on the metrics listener
 * (metrics.c). One self-contained page, its style and script inline; it
 * reads /status.json every few seconds and changes nothing. */
#ifndef LBD_STATUS_PAGE_H
#define LBD_STATUS_PAGE_H

#include "../common/strbuf.h"

/* The page (arg unused). Returns 0, or -1 when sb hit its cap. */
int status_page_render(void *arg, struct strbuf *sb);
/* Its security headers: a Content-Security-Policy that allows nothing but
 * the page's own inline style and script (by their SHA-256) and fetches
 * from its own origin, and no framing, no referrer. Returns 0, or -1
 * (logged) when the page lacks its <style> or <script>. */
int status_page_headers(void *arg, struct strbuf *sb);

#endif
