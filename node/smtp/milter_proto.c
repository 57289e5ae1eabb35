/* Milter packets: built for the milter, read from it. Pure. */
#include "milter_proto.h"

#include <arpa/inet.h>
#include <string.h>

static uint32_t
milter_u32(const char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return ntohl(v);
}

long
milter_packet_read(const char *buf, size_t len, struct milter_packet *p)
{
	if (len < 4)
		return 0;
	uint32_t n = milter_u32(buf);
	if (n == 0 || n > MILTER_PACKET_MAX)
		return -1;
	if (len - 4 < n)
		return 0;
	p->cmd = buf[4];
	p->data = buf + 5;
	p->len = n - 1;
	return (long)n + 4;
}

int
milter_optneg_parse(const struct milter_packet *p, uint32_t *version,
		    uint32_t *actions, uint32_t *steps)
{
	/* Version 6 may add macro lists after the three words: ignored. */
	if (p->cmd != MILTER_R_OPTNEG || p->len < 12)
		return -1;
	*version = milter_u32(p->data);
	*actions = milter_u32(p->data + 4);
	*steps = milter_u32(p->data + 8);
	return 0;
}

/* The NUL-terminated string at data[*off..len): returns it and moves *off
 * past its NUL, or NULL when there is no NUL. */
static const char *
milter_string_at(const struct milter_packet *p, size_t *off)
{
	if (*off >= p->len)
		return NULL;
	const char *s = p->data + *off;
	const char *nul = memchr(s, '\0', p->len - *off);
	if (nul == NULL)
		return NULL;
	*off = (size_t)(nul - p->data) + 1;
	return s;
}

int
milter_header_parse(const struct milter_packet *p, uint32_t *index,
		    const char **name, const char **value)
{
	size_t off = 0;
	*index = 0;
	if (p->cmd != MILTER_R_ADDHEADER) {
		if (p->len < 4)
			return -1;
		*index = milter_u32(p->data);
		off = 4;
	}
	if ((*name = milter_string_at(p, &off)) == NULL ||
	    (*value = milter_string_at(p, &off)) == NULL || **name == '\0')
		return -1;
	for (const char *c = *name; *c; c++)
		if (*c <= ' ' || *c > '~' || *c == ':')
			return -1;
	for (const char *c = *value; *c; c++) { /* folding only */
		if (*c == '\r' && c[1] == '\n')
			c++;
		else if (*c == '\r')
			return -1;
		if (*c == '\n' && c[1] != ' ' && c[1] != '\t')
			return -1;
	}
	return 0;
}

int
milter_reply_parse(const struct milter_packet *p, const char **text)
{
	size_t off = 0;
	const char *t = milter_string_at(p, &off);
	if (t == NULL || (t[0] != '4' && t[0] != '5') || t[1] < '0' ||
	    t[1] > '9' || t[2] < '0' || t[2] > '9' ||
	    (t[3] != ' ' && t[3] != '\0'))
		return -1;
	if (strpbrk(t, "\r\n") != NULL)
		return -1;
	*text = t;
	return 0;
}

int
milter_string_parse(const struct milter_packet *p, const char **s)
{
	size_t off = 0;
	if (p->len == 0) {
		*s = "";
		return 0;
	}
	return (*s = milter_string_at(p, &off)) ? 0 : -1;
}

int
milter_put(struct strbuf *out, char cmd, const void *data, size_t len)
{
	if (len >= MILTER_PACKET_MAX)
		return -1;
	uint32_t n = htonl((uint32_t)len + 1);
	size_t mark = out->len;
	if (strbuf_append(out, &n, 4) < 0 || strbuf_append(out, &cmd, 1) < 0 ||
	    (len > 0 && strbuf_append(out, data, len) < 0)) {
		out->len = mark; /* nothing half-written */
		return -1;
	}
	return 0;
}

int
milter_put_optneg(struct strbuf *out)
{
	uint32_t w[3] = {htonl(MILTER_VERSION), htonl(MILTER_F_OFFERED),
			 htonl(MILTER_P_OFFERED)};
	return milter_put(out, MILTER_C_OPTNEG, w, sizeof(w));
}

/* Appends cmd with the packet's length patched in once the data, appended
 * by the caller between begin and end, is known. */
static size_t
milter_begin(struct strbuf *out, char cmd)
{
	size_t mark = out->len;
	uint32_t zero = 0;
	if (strbuf_append(out, &zero, 4) == 0) /* else milter_end fails */
		strbuf_append(out, &cmd, 1);
	return mark;
}

static int
milter_end(struct strbuf *out, size_t mark, bool failed)
{
	size_t n = out->len - mark - 4;
	if (failed || out->len < mark + 5 || n > MILTER_PACKET_MAX) {
		out->len = mark;
		return -1;
	}
	uint32_t be = htonl((uint32_t)n);
	memcpy(out->buf + mark, &be, 4);
	return 0;
}

int
milter_put_macros(struct strbuf *out, char step, const char *const *names,
		  const char *const *values, size_t n)
{
	size_t mark = milter_begin(out, MILTER_C_MACRO);
	bool failed = strbuf_append(out, &step, 1) < 0;
	for (size_t i = 0; i < n && !failed; i++)
		if (values[i] && values[i][0])
			failed = strbuf_append(out, names[i],
					       strlen(names[i]) + 1) < 0 ||
				 strbuf_append(out, values[i],
					       strlen(values[i]) + 1) < 0;
	return milter_end(out, mark, failed);
}

int
milter_put_strings(struct strbuf *out, char cmd, const char *const *s, size_t n)
{
	size_t mark = milter_begin(out, cmd);
	bool failed = false;
	for (size_t i = 0; i < n && !failed; i++)
		failed = strbuf_append(out, s[i], strlen(s[i]) + 1) < 0;
	return milter_end(out, mark, failed);
}

int
milter_put_connect(struct strbuf *out, const char *name, char family,
		   uint16_t port, const char *addr)
{
	size_t mark = milter_begin(out, MILTER_C_CONNECT);
	uint16_t be = htons(port);
	bool failed = strbuf_append(out, name, strlen(name) + 1) < 0 ||
		      strbuf_append(out, &family, 1) < 0 ||
		      strbuf_append(out, &be, 2) < 0 ||
		      strbuf_append(out, addr, strlen(addr) + 1) < 0;
	return milter_end(out, mark, failed);
}

int
milter_put_header(struct strbuf *out, const char *name, size_t namelen,
		  const char *value)
{
	size_t mark = milter_begin(out, MILTER_C_HEADER);
	bool failed = strbuf_append(out, name, namelen) < 0 ||
		      strbuf_append(out, "", 1) < 0 ||
		      strbuf_append(out, value, strlen(value) + 1) < 0;
	return milter_end(out, mark, failed);
}
