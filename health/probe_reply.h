/* What the probes read from a server, as pure functions on a buffer: the
 * line splitter of the engine and each protocol's reply parser. No
 * socket, loop or probe here, so unit tests and the fuzz target call them
 * alone. Every function reads only up to the NUL of the line it gets. */
#ifndef MS_PROBE_REPLY_H
#define MS_PROBE_REPLY_H

#include <stdbool.h>
#include <stddef.h>

/* The next complete line of buf[*off..len): its line end (LF, or CRLF)
 * replaced by a NUL, *off moved past it. NULL when no LF is left. */
char *probe_line_next(char *buf, size_t len, size_t *off);

/* An SMTP reply line "250", "250 text" or "250-text": its code, whether
 * more lines follow and *text, the text after the separator ("" for a
 * bare code). Returns 0, or -1 when it is not a reply line. */
int probe_smtp_reply(const char *line, int *code, bool *more,
		     const char **text);
/* "250-STARTTLS" / "250 STARTTLS" in an EHLO answer. */
bool probe_smtp_offers_starttls(const char *line);

/* "* OK" or "* OK text": an IMAP greeting that lets us in. */
bool probe_imap_greeting_ok(const char *line);
/* The status after tag "a<tag> " ("OK ...", "NO ..."), or NULL when the
 * line is not that tagged answer. */
const char *probe_imap_tagged(int tag, const char *line);
/* A status that is "OK" or "OK text". */
bool probe_imap_ok(const char *status);

/* "+OK" or "+OK text". */
bool probe_pop3_ok(const char *line);

/* "HTTP/1.1 200 OK": the status code, or -1. */
int probe_http_status(const char *line);

/* The first PROBE_EXCERPT characters of s, controls and 8-bit bytes
 * shown as '?', for a reason. Returns buf. */
const char *probe_excerpt(const char *s, char *buf, size_t len);
/* True when s can go into a command line: no CR, LF or 8-bit bytes. */
bool probe_text_ok(const char *s);

#endif
