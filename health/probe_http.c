/* http, https: GET check_path over HTTP/1.0 with Connection: close; a 2xx
 * status line passes. The rest of the answer is read and dropped until
 * the server closes, which is how an HTTP/1.0 exchange ends politely. */
#include "probe_proto.h"

#include <ctype.h>
#include <string.h>

enum http_state {
	HTTP_STATUS, /* waiting for the status line */
	HTTP_DRAIN,  /* verdict in: reading to EOF */
};

/* check_path goes into the request line: one token starting with '/'. */
static bool
http_path_ok(const char *path)
{
	if (path[0] != '/')
		return false;
	for (; *path != '\0'; path++)
		if (!isgraph((unsigned char)*path))
			return false;
	return true;
}

static void
http_on_connect(struct probe *p, struct probe_conv *c)
{
	const char *path = probe_spec(p)->path;
	char host[ADDR_STRLEN];

	c->state = HTTP_STATUS;
	if (path[0] == '\0')
		path = "/";
	if (!http_path_ok(path)) {
		probe_fail(p, "bad check_path");
		probe_end(p); /* nothing was said: nothing to end */
		return;
	}
	probe_send(
	    p,
	    "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: mailswitch-lbd\r\n"
	    "Connection: close\r\n",
	    path, probe_peer(p, host, sizeof(host)));
}

static void
http_on_line(struct probe *p, struct probe_conv *c, const char *line)
{
	char ex[PROBE_EXCERPT + 1];
	int status;

	if (c->state != HTTP_STATUS)
		return;
	status = probe_http_status(line);
	if (status == -1)
		probe_fail(p, "bad status line: %s",
			   probe_excerpt(line, ex, sizeof(ex)));
	else if (status >= 200 && status < 300)
		probe_pass(p);
	else
		probe_fail(p, "HTTP %d", status);
}

static void
http_on_quit(struct probe *p, struct probe_conv *c)
{
	(void)p;
	c->state = HTTP_DRAIN; /* the engine ends it at EOF or the timeout */
}

const struct probe_proto probe_proto_http = {
    .name = "http",
    .on_connect = http_on_connect,
    .on_line = http_on_line,
    .on_upgrade = NULL,
    .on_quit = http_on_quit,
};
