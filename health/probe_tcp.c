/* tcp: the node passes when it accepts the connection. */
#include "probe_proto.h"

static void
tcp_on_connect(struct probe *p, struct probe_conv *c)
{
	(void)c;
	probe_pass(p); /* no on_quit: the engine closes */
}

static void
tcp_on_line(struct probe *p, struct probe_conv *c, const char *line)
{
	(void)p;
	(void)c;
	(void)line;
}

const struct probe_proto probe_proto_tcp = {
    .name = "tcp",
    .on_connect = tcp_on_connect,
    .on_line = tcp_on_line,
    .on_upgrade = NULL,
    .on_quit = NULL,
};
