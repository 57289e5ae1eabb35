/* The probes' reading side: see probe_reply.h. */
#include "probe_reply.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "probe_proto.h"

char *
probe_line_next(char *buf, size_t len, size_t *off)
{
	char *line = buf + *off, *nl;
	size_t n;

	if (*off >= len || (nl = memchr(line, '\n', len - *off)) == NULL)
		return NULL;
	n = (size_t)(nl - line);
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	*off = (size_t)(nl - buf) + 1;
	return line;
}

int
probe_smtp_reply(const char *line, int *code, bool *more, const char **text)
{
	for (int i = 0; i < 3; i++)
		if (!isdigit((unsigned char)line[i]))
			return -1;
	if (line[3] != '\0' && line[3] != ' ' && line[3] != '-')
		return -1;
	*code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	*more = line[3] == '-';
	/* A bare "250" has no text: line + 4 would be past its NUL. */
	*text = line[3] == '\0' ? line + 3 : line + 4;
	return 0;
}

bool
probe_smtp_offers_starttls(const char *line)
{
	const char *text;
	bool more;
	int code;

	return probe_smtp_reply(line, &code, &more, &text) == 0 &&
	       code == 250 && strcasecmp(text, "STARTTLS") == 0;
}

bool
probe_imap_greeting_ok(const char *line)
{
	return strncasecmp(line, "* OK", 4) == 0 &&
	       (line[4] == ' ' || line[4] == '\0');
}

const char *
probe_imap_tagged(int tag, const char *line)
{
	char t[16];
	size_t n;

	snprintf(t, sizeof(t), "a%d ", tag);
	n = strlen(t);
	return strncmp(line, t, n) == 0 ? line + n : NULL;
}

bool
probe_imap_ok(const char *status)
{
	return strncasecmp(status, "OK", 2) == 0 &&
	       (status[2] == ' ' || status[2] == '\0');
}

bool
probe_pop3_ok(const char *line)
{
	return strncasecmp(line, "+OK", 3) == 0 &&
	       (line[3] == ' ' || line[3] == '\0');
}

int
probe_http_status(const char *line)
{
	const char *sp;

	if (strncmp(line, "HTTP/", 5) != 0 || (sp = strchr(line, ' ')) == NULL)
		return -1;
	for (int i = 1; i <= 3; i++)
		if (!isdigit((unsigned char)sp[i]))
			return -1;
	if (sp[4] != ' ' && sp[4] != '\0')
		return -1;
	return (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0');
}

const char *
probe_excerpt(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < PROBE_EXCERPT && i + 1 < len; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (len > 0)
		buf[i] = '\0';
	return buf;
}

bool
probe_text_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '\r' || *s == '\n' || (unsigned char)*s >= 0x80)
			return false;
	return true;
}
