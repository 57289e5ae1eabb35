/* SMTP command syntax (RFC 5321 4.1): the pieces smtp_cmd.c reads from a
 * command line, each callable on a buffer alone (no session, no socket),
 * so that the unit tests and the fuzz target reach them directly. Nothing
 * here allocates; every output has a fixed bound. */
#ifndef NODE_SMTP_PARSE_H
#define NODE_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Splits a command line (without its CRLF) in place into the verb and its
 * arguments, leading and trailing spaces of the arguments dropped; *args
 * is "" when there are none. Returns 0, or -1 when the line holds a NUL
 * byte (which a C string would cut silently: the caller answers 501). */
int smtp_parse_command(char *line, size_t len, char **verb, char **args);

/* The path of "FROM:<path> params" / "TO:<path> params" (keyword is
 * "FROM:" or "TO:"): copies the address between the brackets into out
 * (a source route "@a,@b:" dropped) and points *rest at the parameters.
 * Returns 0, or -1 on a syntax error. */
int smtp_parse_path(char *args, const char *keyword, char *out, size_t outlen,
		    char **rest);

/* local@domain with both parts non-empty and one '@'. */
bool smtp_mailbox_ok(const char *a);

/* HELO/EHLO's argument: one non-empty word shorter than max. */
bool smtp_helo_ok(const char *args, size_t max);

/* MAIL's parameters: SIZE=, BODY=7BIT|8BITMIME, SMTPUTF8, AUTH=. */
enum smtp_param_status {
	SMTP_PARAM_OK,
	SMTP_PARAM_BAD_SIZE,	/* SIZE= not a decimal number: 501 */
	SMTP_PARAM_UNSUPPORTED, /* an unknown parameter: 555 */
};

struct smtp_mail_params {
	bool has_size;
	uint64_t size;	  /* SIZE=, when has_size */
	char unknown[65]; /* the unsupported parameter, cut to fit */
};

/* Reads params (cut in place at the spaces) into out. */
enum smtp_param_status smtp_parse_mail_params(char *params,
					      struct smtp_mail_params *out);

#endif
