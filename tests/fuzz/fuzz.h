/* What the fuzz targets share: the input as an exact-size, NUL-terminated
 * copy (so ASan sees any read past its end), and a bounded splitter for
 * inputs that carry several parts. Each target is one libFuzzer
 * LLVMFuzzerTestOneInput over one parser, with no session, socket or
 * loop; each file says which parser and how the input is read. */
#ifndef TESTS_FUZZ_H
#define TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data as a C string of exactly size + 1 bytes (embedded NULs kept);
 * free() it. */
static inline char *
fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* The next part of *data up to a NUL byte (or the end), copied into an
 * exact-size string; NULL when nothing is left. */
static inline char *
fuzz_next(const uint8_t **data, size_t *size)
{
	if (*size == 0)
		return NULL;
	const uint8_t *nul = memchr(*data, '\0', *size);
	size_t n = nul ? (size_t)(nul - *data) : *size;
	char *s = fuzz_str(*data, n);
	*data += n + (nul != NULL);
	*size -= n + (nul != NULL);
	return s;
}

#endif
