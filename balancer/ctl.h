/* The control socket: one command line per connection, one answer, then
 * close (`watch` keeps the connection and streams state changes). ctl.c
 * parses a line and answers it from a static command table; ctl_server.c
 * owns the socket. An answer starting with "error: " is a failure. */
#ifndef LBD_CTL_H
#define LBD_CTL_H

#include <stddef.h>

#include "../common/strbuf.h"
#include "lbd.h"

#define CTL_LINE_MAX 4096	   /* a command line, newline included */
#define CTL_MAX_WORDS 16	   /* words in one command line */
#define CTL_WORD_MAX 255	   /* bytes in one word */
#define CTL_ANSWER_MAX (16u << 20) /* cap of an answer's strbuf */

enum ctl_status {
	CTL_OK,	   /* out holds the answer */
	CTL_FAIL,  /* out holds "error: ...\n" */
	CTL_WATCH, /* `watch`: out is empty; keep the connection for events */
};

/* Runs one command line (a trailing "\n" or "\r\n" is allowed) and appends
 * its answer, newline-terminated, to out, a strbuf with a cap of at least
 * CTL_ANSWER_MAX. ctl_execn takes a length, so a NUL byte in the line is
 * a bad byte rather than its end. Main thread only. */
enum ctl_status ctl_exec(struct lbd *l, const char *line, struct strbuf *out);
enum ctl_status ctl_execn(struct lbd *l, const char *line, size_t len,
			  struct strbuf *out);

/* ctl_server.c. Binds l->cfg->set.control with l->cfg->set.control_mode,
 * replacing a stale socket file but refusing to start (-1, logged) when
 * another process answers on it. */
int ctl_server_start(struct lbd *l);
/* Closes every client and the socket, and removes the socket file. */
void ctl_server_stop(struct lbd *l);
/* Subscriber (event.h): every EVENT_STATE as one line to each `watch`
 * client; a client that falls CTL_WATCH_MAX bytes behind is dropped. */
void ctl_server_on_event(struct lbd *l, const struct event *ev);
/* Formats a watch line for an event at wall-clock time t (epoch seconds):
 * "2026-11-22T10:00:00.123Z POOL NODE FROM -> TO REASON\n". */
int ctl_event_line(struct strbuf *sb, double t, const char *pool,
		   const char *node, const char *from, const char *to,
		   const char *reason);

#endif
