/* common/decimal.c: the one decimal parser of lbd, lbctl, lbd-track, the
 * state file and the config readers. What it takes, what it refuses, and
 * that a refusal leaves the output alone. */
#include <criterion/criterion.h>

#include <limits.h>

#include "../../common/decimal.h"

Test(decimal, takes_digits_in_range)
{
	long v = -1;
	cr_assert_eq(decimal_long("0", 0, 256, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(decimal_long("256", 0, 256, &v), 0);
	cr_assert_eq(v, 256);
	cr_assert_eq(decimal_long("007", 0, 256, &v), 0);
	cr_assert_eq(v, 7);
	cr_assert_eq(decimal_long("-1000000", -1000000, 1000000, &v), 0);
	cr_assert_eq(v, -1000000);
	cr_assert_eq(decimal_long("9223372036854775807", 0, LONG_MAX, &v), 0);
	cr_assert_eq(v, LONG_MAX);
}

Test(decimal, refuses_the_rest)
{
	static const char *const bad[] = {
	    "",	   " 1",  "1 ",	  "\t1",
	    "+1",  "1x",  "0x10", "1.5",
	    "1e3", "-",	  "--1",  "1-",
	    "- 1", "257", "٣",	  "9223372036854775808",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long v = 42;
		cr_assert_eq(decimal_long(bad[i], 0, 256, &v), -1, "\"%s\"",
			     bad[i]);
		cr_assert_eq(v, 42, "\"%s\" touched the output", bad[i]);
	}
	long v = 42;
	cr_assert_eq(decimal_long(NULL, 0, 256, &v), -1);
	/* a sign only where the range has negatives */
	cr_assert_eq(decimal_long("-1", 0, 256, &v), -1);
	cr_assert_eq(decimal_long("-0", 0, 256, &v), -1);
	cr_assert_eq(decimal_long("-5", -4, 4, &v), -1);
	cr_assert_eq(decimal_long("5", -4, 4, &v), -1);
	cr_assert_eq(v, 42);
	cr_assert_eq(decimal_long("-4", -4, 4, &v), 0);
	cr_assert_eq(v, -4);
}

Test(decimal, unsigned_versions)
{
	unsigned long long v = 0;
	cr_assert_eq(decimal_ullong("18446744073709551615", ULLONG_MAX, &v), 0);
	cr_assert_eq(v, ULLONG_MAX);
	cr_assert_eq(decimal_ullong("17", ULLONG_MAX, &v), 0);
	cr_assert_eq(v, 17);
	cr_assert_eq(decimal_ullong("18446744073709551616", ULLONG_MAX, &v),
		     -1);
	cr_assert_eq(decimal_ullong("-1", ULLONG_MAX, &v), -1);
	cr_assert_eq(decimal_ullong("18", 17, &v), -1);
	cr_assert_eq(decimal_ullong("", ULLONG_MAX, &v), -1);
	cr_assert_eq(v, 17);
}
