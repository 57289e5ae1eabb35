#include <string.h>

#include "lbd.h"

static const struct {
	const char *name;
	const char *empty_reply;
} service_protos[] = {
    [PROTO_TCP] = {"tcp", ""},
    [PROTO_SMTP] = {"smtp",
		    "421 4.3.2 Service not available, try again later\r\n"},
    [PROTO_IMAP] = {"imap",
		    "* BYE [UNAVAILABLE] Service temporarily unavailable\r\n"},
    [PROTO_POP3] = {"pop3",
		    "-ERR [SYS/TEMP] Service temporarily unavailable\r\n"},
    [PROTO_HTTP] = {"http", "HTTP/1.1 503 Service Unavailable\r\n"
			    "Retry-After: 30\r\n"
			    "Content-Type: text/plain\r\n"
			    "Content-Length: 32\r\n"
			    "Connection: close\r\n"
			    "\r\n"
			    "Service temporarily unavailable\n"},
};

const char *
service_proto_name(enum service_proto p)
{
	return service_protos[p].name;
}

int
service_proto_parse(const char *s, enum service_proto *out)
{
	for (size_t i = 0; i < sizeof(service_protos) / sizeof(*service_protos);
	     i++)
		if (strcmp(s, service_protos[i].name) == 0) {
			*out = (enum service_proto)i;
			return 0;
		}
	return -1;
}

const char *
service_empty_reply(enum service_proto p)
{
	return service_protos[p].empty_reply;
}
