/* Random tokens: session tokens, lease owners. */
#ifndef MS_TOKEN_H
#define MS_TOKEN_H

#include <stddef.h>

/* Writes hexlen lowercase hex digits of kernel randomness (getrandom)
 * and a NUL to out, which holds hexlen + 1 bytes; hexlen is even and at
 * most 128. Returns 0, or -1 with errno set (out then holds "" ). */
int token_hex(char *out, size_t hexlen);

#endif
