/* SMTP command lines (node/smtp/smtp_parse.c): the split into verb and
 * arguments, MAIL/RCPT paths and parameters, HELO's argument. One input
 * is one command line as the session hands it over (CRLF removed). */
#include "fuzz.h"

#include "../../node/smtp/smtp_parse.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = fuzz_str(data, size), *verb, *args, *rest;
	char addr[256];
	struct smtp_mail_params mp;

	if (smtp_parse_command(line, size, &verb, &args) == 0) {
		(void)smtp_helo_ok(args, 256);
		char *copy = strdup(args);
		if (smtp_parse_path(args, "FROM:", addr, sizeof(addr), &rest) ==
		    0) {
			(void)smtp_mailbox_ok(addr);
			(void)smtp_parse_mail_params(rest, &mp);
		}
		if (copy && smtp_parse_path(copy, "TO:", addr, sizeof(addr),
					    &rest) == 0)
			(void)smtp_mailbox_ok(addr);
		free(copy);
	}
	free(line);
	return 0;
}
