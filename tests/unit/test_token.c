/* common/token.c: random hex tokens (HTTP sessions, Redis leases). */
#include <criterion/criterion.h>

#include <string.h>

#include "../../common/token.h"

Test(token, hex_of_the_asked_length)
{
	char a[65], b[65];
	cr_assert_eq(token_hex(a, 64), 0);
	cr_assert_eq(token_hex(b, 64), 0);
	cr_assert_eq(strlen(a), 64);
	cr_assert_eq(strspn(a, "0123456789abcdef"), 64, "%s", a);
	cr_assert_str_neq(a, b);
	char c[33];
	cr_assert_eq(token_hex(c, 32), 0);
	cr_assert_eq(strlen(c), 32);
}

Test(token, refuses_odd_or_long)
{
	char a[300];
	cr_assert_eq(token_hex(a, 31), -1);
	cr_assert_str_eq(a, "");
	cr_assert_eq(token_hex(a, 130), -1);
	cr_assert_eq(token_hex(a, 128), 0);
	cr_assert_eq(strlen(a), 128);
}
