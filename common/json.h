/* A small strict JSON reader for what clients send us: one flat object
 * whose members are all strings, e.g. {"user":"a@b","password":"x"}.
 * RFC 8259 syntax; anything else (nesting, numbers, duplicate names,
 * invalid UTF-8, lone surrogates, \u0000, trailing bytes) is refused with
 * a reason. Bounded: at most JSON_FLAT_MAX members, and the decoded text
 * must fit the caller's store. */
#ifndef MS_JSON_H
#define MS_JSON_H

#include <stddef.h>

#define JSON_FLAT_MAX 16

struct json_flat {
	int n;
	struct {
		const char *name;  /* decoded, NUL-terminated, in store */
		const char *value; /* decoded, NUL-terminated, in store */
		size_t value_len;
	} m[JSON_FLAT_MAX];
};

/* Parses len bytes of text. Decoded names and values are written to store
 * (storelen bytes), which must outlive out. Returns 0, or -1 with a short
 * static reason in *why. */
int json_flat_parse(const char *text, size_t len, struct json_flat *out,
		    char *store, size_t storelen, const char **why);

/* The value of member name, or NULL. */
const char *json_flat_get(const struct json_flat *o, const char *name);

#endif
