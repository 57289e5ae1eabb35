/* base64 against the RFC 4648 section 10 vectors, strict rejection of bad
 * input (no padding, bad characters, whitespace, non-canonical bits, data
 * after padding, too small an output), and SASL PLAIN (RFC 4616) parsing
 * with its edge cases. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/sasl.h"

static const char *const rfc4648[][2] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

Test(base64, rfc4648_encode)
{
	char out[32];
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		const char *in = rfc4648[i][0];
		long n = base64_encode((const unsigned char *)in, strlen(in),
				       out, sizeof(out));
		cr_assert_eq(n, (long)strlen(rfc4648[i][1]), "%s", in);
		cr_assert_str_eq(out, rfc4648[i][1]);
	}
}

Test(base64, rfc4648_decode)
{
	unsigned char out[32];
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		const char *in = rfc4648[i][1];
		long n = base64_decode(in, strlen(in), out, sizeof(out));
		cr_assert_eq(n, (long)strlen(rfc4648[i][0]), "%s", in);
		cr_assert(memcmp(out, rfc4648[i][0], (size_t)n) == 0);
	}
}

Test(base64, round_trip_every_byte)
{
	unsigned char in[256], back[256];
	char enc[400];
	for (int i = 0; i < 256; i++)
		in[i] = (unsigned char)i;
	for (size_t len = 0; len <= sizeof(in); len++) {
		long e = base64_encode(in, len, enc, sizeof(enc));
		cr_assert_eq(e, (long)((len + 2) / 3 * 4));
		long d = base64_decode(enc, (size_t)e, back, sizeof(back));
		cr_assert_eq(d, (long)len);
		cr_assert(memcmp(in, back, len) == 0);
	}
}

Test(base64, rejects_bad_input)
{
	static const char *const bad[] = {
	    "Zg",	    /* no padding */
	    "Zg=",	    /* short padding */
	    "Zm9",	    /* not a multiple of 4 */
	    "Zm9v\r\n",	    /* line break */
	    "Zm 9v",	    /* space */
	    " Zm9v",	    /* leading space */
	    "Zm9v*A==",	    /* bad character */
	    "Zm-v",	    /* base64url is not base64 */
	    "Zm_v",	    /* base64url is not base64 */
	    "Zh==",	    /* non-zero bits under the padding */
	    "Zm9=",	    /* non-zero bits under the padding */
	    "Zg==Zg==",	    /* data after padding */
	    "Z===",	    /* too much padding */
	    "====",	    /* only padding */
	    "Zg=a",	    /* data after '=' */
	    "Zm9v\0\0\0\0", /* NUL bytes */
	};
	unsigned char out[64];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = strlen(bad[i]);
		if (i == sizeof(bad) / sizeof(bad[0]) - 1)
			len = 8;
		cr_assert_eq(base64_decode(bad[i], len, out, sizeof(out)), -1,
			     "accepted \"%s\"", bad[i]);
	}
}

Test(base64, output_bounds)
{
	unsigned char out[8];
	char enc[8];
	/* "foobar" needs 6 bytes; 5 is too small, 6 is exact. */
	cr_assert_eq(base64_decode("Zm9vYmFy", 8, out, 5), -1);
	cr_assert_eq(base64_decode("Zm9vYmFy", 8, out, 6), 6);
	/* "foo" encodes to 4 characters and a NUL. */
	cr_assert_eq(base64_encode((const unsigned char *)"foo", 3, enc, 4),
		     -1);
	cr_assert_eq(base64_encode((const unsigned char *)"foo", 3, enc, 5), 4);
	cr_assert_str_eq(enc, "Zm9v");
}

static int
plain(const char *msg, size_t len, char *user, char *pass)
{
	return sasl_plain_parse((const unsigned char *)msg, len, user, 64, pass,
				64);
}

Test(sasl_plain, no_authzid)
{
	char user[64], pass[64];
	cr_assert_eq(plain("\0alice@example.test\0s3cret", 26, user, pass), 0);
	cr_assert_str_eq(user, "alice@example.test");
	cr_assert_str_eq(pass, "s3cret");
}

Test(sasl_plain, authzid_equal_to_authcid)
{
	char user[64], pass[64];
	cr_assert_eq(plain("bob\0bob\0pw", 10, user, pass), 0);
	cr_assert_str_eq(user, "bob");
	cr_assert_str_eq(pass, "pw");
}

Test(sasl_plain, authzid_other_user_refused)
{
	char user[64], pass[64];
	cr_assert_eq(plain("admin\0bob\0pw", 12, user, pass), -1);
	cr_assert_eq(plain("bobby\0bob\0pw", 12, user, pass), -1);
	cr_assert_eq(plain("bo\0bob\0pw", 9, user, pass), -1);
}

Test(sasl_plain, password_with_spaces_and_utf8)
{
	char user[64], pass[64];
	const char msg[] = "\0u\0p\xc3\xa4ss w\xc3\xb6rd ";
	cr_assert_eq(plain(msg, sizeof(msg) - 1, user, pass), 0);
	cr_assert_str_eq(pass, "p\xc3\xa4ss w\xc3\xb6rd ");
}

Test(sasl_plain, malformed)
{
	char user[64], pass[64];
	cr_assert_eq(plain("", 0, user, pass), -1);
	cr_assert_eq(plain("alice", 5, user, pass), -1);     /* no NUL */
	cr_assert_eq(plain("\0alice", 6, user, pass), -1);   /* one NUL */
	cr_assert_eq(plain("\0\0pw", 4, user, pass), -1);    /* no authcid */
	cr_assert_eq(plain("\0alice\0", 7, user, pass), -1); /* no passwd */
	cr_assert_eq(plain("\0a\0p\0x", 7, user, pass), -1); /* third NUL */
	cr_assert_eq(plain("\0a\0pw\0", 6, user, pass), -1); /* trailing NUL */
	cr_assert_eq(plain("\0\0\0", 3, user, pass), -1);
	cr_assert_str_eq(user, "");
	cr_assert_str_eq(pass, "");
}

Test(sasl_plain, too_long_for_the_buffers)
{
	char user[8], pass[8];
	const unsigned char m1[] = "\0abcdefgh\0pw"; /* user of 8: no room */
	const unsigned char m2[] = "\0abcdefg\0pw";  /* user of 7: fits */
	const unsigned char m3[] = "\0u\0abcdefgh";  /* pass of 8: no room */
	cr_assert_eq(sasl_plain_parse(m1, sizeof(m1) - 1, user, sizeof(user),
				      pass, sizeof(pass)),
		     -1);
	cr_assert_eq(sasl_plain_parse(m2, sizeof(m2) - 1, user, sizeof(user),
				      pass, sizeof(pass)),
		     0);
	cr_assert_str_eq(user, "abcdefg");
	cr_assert_eq(sasl_plain_parse(m3, sizeof(m3) - 1, user, sizeof(user),
				      pass, sizeof(pass)),
		     -1);
}

Test(sasl_plain, from_base64)
{
	/* "\0tim\0tanstaaftanstaaf" from RFC 4616 section 4. */
	unsigned char msg[64];
	char user[64], pass[64];
	const char *b64 = "AHRpbQB0YW5zdGFhZnRhbnN0YWFm";
	long n = base64_decode(b64, strlen(b64), msg, sizeof(msg));
	cr_assert_eq(n, 21);
	cr_assert_eq(sasl_plain_parse(msg, (size_t)n, user, sizeof(user), pass,
				      sizeof(pass)),
		     0);
	cr_assert_str_eq(user, "tim");
	cr_assert_str_eq(pass, "tanstaaftanstaaf");
}
