/* SMTP command syntax: see smtp_parse.h. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "smtp_parse.h"

int
smtp_parse_command(char *line, size_t len, char **verb, char **args)
{
	if (memchr(line, '\0', len) != NULL)
		return -1;
	*verb = line;
	char *a = strchr(line, ' ');
	if (a == NULL) {
		*args = line + len;
		return 0;
	}
	*a++ = '\0';
	while (*a == ' ')
		a++;
	/* Trailing spaces are not part of any argument. */
	size_t alen = strlen(a);
	while (alen > 0 && a[alen - 1] == ' ')
		a[--alen] = '\0';
	*args = a;
	return 0;
}

/* A byte RFC 5321's Mailbox never holds unquoted (quoted local parts are
 * not taken). */
static bool
smtp_path_byte_bad(unsigned char ch)
{
	return ch <= ' ' || ch == '<' || ch == '\\' || ch == '"' || ch == 0x7f;
}

int
smtp_parse_path(char *args, const char *keyword, char *out, size_t outlen,
		char **rest)
{
	size_t klen = strlen(keyword);
	if (strncasecmp(args, keyword, klen) != 0)
		return -1;
	args += klen;
	while (*args == ' ') /* tolerated: "FROM: <a@b>" */
		args++;
	if (*args != '<')
		return -1;
	char *close = strchr(args, '>');
	if (close == NULL)
		return -1;
	size_t len = (size_t)(close - args - 1);
	if (len >= outlen)
		return -1;
	for (char *p = args + 1; p < close; p++)
		if (smtp_path_byte_bad((unsigned char)*p))
			return -1;
	memcpy(out, args + 1, len);
	out[len] = '\0';
	/* A source route (<@a,@b:user@d>) is ignored, as RFC 5321 allows. */
	char *colon = out[0] == '@' ? strchr(out, ':') : NULL;
	if (colon)
		memmove(out, colon + 1, strlen(colon + 1) + 1);
	*rest = close + 1;
	while (**rest == ' ')
		(*rest)++;
	return 0;
}

bool
smtp_mailbox_ok(const char *a)
{
	const char *at = strrchr(a, '@');
	return at && at != a && at[1] != '\0' && strchr(a, '@') == at;
}

bool
smtp_helo_ok(const char *args, size_t max)
{
	return *args != '\0' && strlen(args) < max && strchr(args, ' ') == NULL;
}

/* SIZE='s value: decimal digits only (strtoull would take "-1" as
 * 2^64-1 and " 5" as 5); a value past 2^64-1 is kept as that, which is
 * too big for any node. */
static int
smtp_param_size(const char *v, uint64_t *out)
{
	uint64_t n = 0;
	if (*v == '\0')
		return -1;
	for (; *v; v++) {
		if (!isdigit((unsigned char)*v))
			return -1;
		unsigned d = (unsigned)(*v - '0');
		n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
	}
	*out = n;
	return 0;
}

enum smtp_param_status
smtp_parse_mail_params(char *params, struct smtp_mail_params *out)
{
	char *save, *p;
	memset(out, 0, sizeof(*out));
	for (p = strtok_r(params, " ", &save); p;
	     p = strtok_r(NULL, " ", &save)) {
		if (strncasecmp(p, "SIZE=", 5) == 0) {
			if (smtp_param_size(p + 5, &out->size) < 0)
				return SMTP_PARAM_BAD_SIZE;
			out->has_size = true;
		} else if (strcasecmp(p, "BODY=7BIT") != 0 &&
			   strcasecmp(p, "BODY=8BITMIME") != 0 &&
			   strcasecmp(p, "SMTPUTF8") != 0 &&
			   strncasecmp(p, "AUTH=", 5) != 0) {
			snprintf(out->unknown, sizeof(out->unknown), "%s", p);
			return SMTP_PARAM_UNSUPPORTED;
		}
	}
	return SMTP_PARAM_OK;
}
