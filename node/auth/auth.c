/* Password checks and new hashes with libxcrypt. crypt_r's state is large
 * (about 32 KiB), so it lives on the heap, never on a session's stack. */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/log.h"
#include "auth.h"

/* Hashes of a phrase nobody knows, one per algorithm auth_hash() makes:
 * an unknown user costs the same crypt call as a known one, so the time
 * an answer takes does not tell which users exist. */
#define AUTH_DUMMY_YESCRYPT                                                    \
	"$y$j9T$FJjKxyKGJSTIu0VjVHAo90$I86."                                   \
	"r55SOQG7fKDXxZMAjpx3zajAMfWuwmSGeC17Uc."
#define AUTH_DUMMY_SHA512                                                      \
	"$6$.K1g1D3qPJtX0sKW$"                                                 \
	"004cw05h0tiBQVg8WFtctURsY9JbKuaB4veyZqjE9uSMJNKZzs"                   \
	"lgoCRF06chz9AM4QG/tjhcarDyvzRapZO6x/"

/* True when this libcrypt can hash with yescrypt. */
static bool
auth_has_yescrypt(void)
{
#ifdef CRYPT_SALT_OK
	return crypt_checksalt(AUTH_DUMMY_YESCRYPT) == CRYPT_SALT_OK;
#else
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	return crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) != NULL;
#endif
}

/* Compares two strings in time that depends only on their lengths. */
static bool
auth_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t n = la > lb ? la : lb;
	unsigned char diff = la != lb;

	for (size_t i = 0; i < n; i++) {
		unsigned char ca = i < la ? (unsigned char)a[i] : 0;
		unsigned char cb = i < lb ? (unsigned char)b[i] : 0;
		diff |= ca ^ cb;
	}
	return diff == 0;
}

bool
auth_verify(const char *hash, const char *password)
{
	bool known = hash != NULL && hash[0] == '$';
	struct crypt_data *cd;
	const char *out;
	bool ok = false;

	if (!known)
		hash = auth_has_yescrypt() ? AUTH_DUMMY_YESCRYPT
					   : AUTH_DUMMY_SHA512;
	cd = calloc(1, sizeof(*cd));
	if (cd == NULL) {
		log_warn("%s: out of memory", __func__);
		return false;
	}
	out = crypt_r(password, hash, cd);
	/* crypt_r fails with NULL or a string starting with '*'. */
	if (out != NULL && out[0] != '*')
		ok = auth_equal(out, hash);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok && known && password[0] != '\0';
}

bool
auth_check(const struct directory *d, const char *user, const char *password)
{
	return auth_verify(d ? directory_password_hash(d, user) : NULL,
			   password);
}

int
auth_hash(const char *password, char *out, size_t outlen)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = NULL;
	const char *h;

	/* NULL rbytes: crypt_gensalt draws the salt from the OS itself. */
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL &&
	    crypt_gensalt_rn("$6$", 0, NULL, 0, salt, sizeof(salt)) == NULL) {
		log_warn("%s: crypt_gensalt: no yescrypt nor SHA-512",
			 __func__);
		goto fail;
	}
	cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		goto fail;
	h = crypt_r(password, salt, cd);
	if (h == NULL || h[0] != '$' || strlen(h) >= outlen)
		goto fail;
	memcpy(out, h, strlen(h) + 1);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return 0;
fail:
	if (cd) {
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
	}
	if (outlen)
		out[0] = '\0';
	return -1;
}
