#include "health.h"

#include <string.h>

static const char *const check_names[CHECK_TYPE_COUNT] = {
	[CHECK_NONE] = "none",
	[CHECK_TCP] = "tcp",
	[CHECK_SMTP] = "smtp",
	[CHECK_IMAP] = "imap",
	[CHECK_POP3] = "pop3",
	[CHECK_HTTP] = "http",
	[CHECK_SMTPS] = "smtps",
	[CHECK_IMAPS] = "imaps",
	[CHECK_POP3S] = "pop3s",
	[CHECK_HTTPS] = "https",
	[CHECK_SMTP_STARTTLS] = "smtp-starttls",
	[CHECK_IMAP_STARTTLS] = "imap-starttls",
	[CHECK_POP3_STARTTLS] = "pop3-starttls",
};

int
check_type_parse(const char *s, enum check_type *out)
{
	for (int i = 0; i < CHECK_TYPE_COUNT; i++)
		if (strcmp(s, check_names[i]) == 0) {
			*out = (enum check_type)i;
			return 0;
		}
	return -1;
}

const char *
check_type_name(enum check_type t)
{
	return (unsigned)t < CHECK_TYPE_COUNT ? check_names[t] : "?";
}
