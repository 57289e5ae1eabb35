#include <stdio.h>
#include <string.h>

#include "lbd.h"

#define TOO_MANY "Too many connections from your address, try again later"
#define HTTP_429(body)                                                         \
	"HTTP/1.1 429 Too Many Requests\r\n"                                   \
	"Retry-After: 60\r\n"                                                  \
	"Content-Type: text/plain\r\n"                                         \
	"Content-Length: %zu\r\n"                                              \
	"Connection: close\r\n"                                                \
	"\r\n" body "\n"

/* What a client refused by edge protection hears, per protocol and
 * reason (printf formats: HTTP's take the body's length, SMTP's DNSBL
 * answer the address and the zone); "" for a plain close. */
static const char *const service_refusals[][EDGE_NREASONS] = {
    [PROTO_TCP] = {"", "", "", "", "", ""},
    [PROTO_SMTP] =
	{
	    [EDGE_DENY] = "554 5.7.1 Access denied\r\n",
	    [EDGE_CONN] = "421 4.7.0 " TOO_MANY "\r\n",
	    [EDGE_RATE] = "421 4.7.0 " TOO_MANY "\r\n",
	    [EDGE_PREGREET] =
		"554 5.5.1 Protocol error: talking before the greeting\r\n",
	    [EDGE_DNSBL] = "554 5.7.1 Service unavailable; client [%s] "
			   "blocked using %s\r\n",
	},
    [PROTO_IMAP] =
	{
	    [EDGE_DENY] = "* BYE [UNAVAILABLE] Access denied\r\n",
	    [EDGE_CONN] = "* BYE [UNAVAILABLE] " TOO_MANY "\r\n",
	    [EDGE_RATE] = "* BYE [UNAVAILABLE] " TOO_MANY "\r\n",
	},
    [PROTO_POP3] =
	{
	    [EDGE_DENY] = "-ERR [SYS/TEMP] Access denied\r\n",
	    [EDGE_CONN] = "-ERR [SYS/TEMP] " TOO_MANY "\r\n",
	    [EDGE_RATE] = "-ERR [SYS/TEMP] " TOO_MANY "\r\n",
	},
    [PROTO_HTTP] =
	{
	    [EDGE_DENY] = HTTP_429("Access denied"),
	    [EDGE_CONN] = HTTP_429(TOO_MANY),
	    [EDGE_RATE] = HTTP_429(TOO_MANY),
	},
};

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

int
service_refusal(enum service_proto p, enum edge_reason r, const char *addr,
		const char *zone, char *buf, size_t len)
{
	const char *fmt = service_refusals[p][r];
	int n;
	if (fmt == NULL || r == EDGE_OK)
		fmt = "";
	if (p == PROTO_HTTP && *fmt != '\0') {
		/* the body: what follows the blank line */
		const char *body = strstr(fmt, "\r\n\r\n") + 4;
		n = snprintf(buf, len, fmt, strlen(body));
	} else if (p == PROTO_SMTP && r == EDGE_DNSBL)
		n = snprintf(buf, len, fmt, addr ? addr : "", zone ? zone : "");
	else
		n = snprintf(buf, len, "%s", fmt);
	return n < 0 || (size_t)n >= len ? -1 : n;
}
