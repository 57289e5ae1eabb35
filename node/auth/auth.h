/* Passwords: crypt(3) hashes only (yescrypt where libcrypt has it, else
 * SHA-512-crypt), checked with crypt_r against the directory's hash. */
#ifndef NODE_AUTH_H
#define NODE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "../config/directory.h"

/* True when password matches the user's hash. Constant-time compare. */
bool auth_check(const struct directory *d, const char *user,
		const char *password);
/* True when password matches hash. A NULL (or not a crypt) hash still
 * costs one crypt call against a dummy hash and returns false, so callers
 * that pass an unknown user's NULL take as long as for a known one. An
 * empty password never matches. */
bool auth_verify(const char *hash, const char *password);
/* A new hash of password with a fresh random salt. Returns 0 or -1. */
int auth_hash(const char *password, char *out, size_t outlen);

#endif
