/* Password hashes: auth_hash makes a yescrypt or SHA-512-crypt hash with a
 * fresh salt, the right password verifies, a wrong one does not, and an
 * unknown user (no hash) or a broken hash never verifies. */
#include <criterion/criterion.h>

#include <string.h>
#include <time.h>

#include "../../node/auth/auth.h"

#define HASH_MAX 256

Test(auth, hash_then_verify)
{
	char h[HASH_MAX];
	cr_assert_eq(auth_hash("correct horse", h, sizeof(h)), 0);
	cr_assert(auth_verify(h, "correct horse"));
	cr_assert_not(auth_verify(h, "correct horsE"));
	cr_assert_not(auth_verify(h, "correct horse "));
	cr_assert_not(auth_verify(h, "correct"));
	cr_assert_not(auth_verify(h, ""));
}

Test(auth, prefix_is_yescrypt_or_sha512)
{
	char h[HASH_MAX];
	cr_assert_eq(auth_hash("pw", h, sizeof(h)), 0);
	cr_assert(strncmp(h, "$y$", 3) == 0 || strncmp(h, "$6$", 3) == 0,
		  "hash %s", h);
	cr_assert_null(strstr(h, "pw$"));
}

Test(auth, fresh_salt_every_time)
{
	char a[HASH_MAX], b[HASH_MAX];
	cr_assert_eq(auth_hash("same", a, sizeof(a)), 0);
	cr_assert_eq(auth_hash("same", b, sizeof(b)), 0);
	cr_assert_str_neq(a, b);
	cr_assert(auth_verify(a, "same"));
	cr_assert(auth_verify(b, "same"));
}

Test(auth, sha512_hash_made_elsewhere_verifies)
{
	/* crypt("demo", "$6$saltsaltsaltsalt"), as mkpasswd makes it. */
	const char *sha = "$6$saltsaltsaltsalt$HLTs45.68ifAbj.uH4UiVbihBzsqbzfK"
			  "aJMTy8NR//rHN97fRznJGACh4xvPqI3eJ2Ss8Jf.yC.KBSd2ya."
			  "4s/";
	cr_assert(auth_verify(sha, "demo"));
	cr_assert_not(auth_verify(sha, "Demo"));
}

Test(auth, unknown_or_broken_hash_never_matches)
{
	cr_assert_not(auth_verify(NULL, "anything"));
	cr_assert_not(auth_verify("", ""));
	cr_assert_not(auth_verify("*", "*"));
	cr_assert_not(auth_verify("!", "!"));
	cr_assert_not(auth_verify("plaintext", "plaintext"));
	cr_assert_not(auth_verify("$6$", ""));
	cr_assert_not(auth_check(NULL, "nobody@example.test", "pw"));
}

static double
elapsed(const char *hash, const char *pw)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	auth_verify(hash, pw);
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a.tv_sec) +
	       (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

Test(auth, unknown_user_costs_a_crypt_call)
{
	char h[HASH_MAX];
	cr_assert_eq(auth_hash("pw", h, sizeof(h)), 0);
	double known = 0, unknown = 0;
	for (int i = 0; i < 3; i++) {
		known += elapsed(h, "wrong");
		unknown += elapsed(NULL, "wrong");
	}
	/* Same order of magnitude: the dummy hash is the same algorithm. */
	cr_assert_gt(unknown, known / 5, "unknown %.4fs known %.4fs", unknown,
		     known);
}
