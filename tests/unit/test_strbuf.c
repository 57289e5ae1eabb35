/* common/strbuf.c: decimal numbers without printf, and the cap. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../common/strbuf.h"

Test(strbuf, append_u64_as_printf_does)
{
	const uint64_t v[] = {
	    0, 7, 10, 99, 4294967295ULL, 1234567890123ULL, UINT64_MAX};
	struct strbuf sb;
	char want[32];
	strbuf_init(&sb, 64);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		strbuf_reset(&sb);
		cr_assert_eq(strbuf_append_u64(&sb, v[i]), 0);
		snprintf(want, sizeof(want), "%llu", (unsigned long long)v[i]);
		cr_assert_str_eq(strbuf_str(&sb), want);
	}
	strbuf_free(&sb);
}

Test(strbuf, append_u64_respects_the_cap)
{
	struct strbuf sb;
	strbuf_init(&sb, 4);
	cr_assert_eq(strbuf_append_u64(&sb, 1234), 0);
	cr_assert_eq(strbuf_append_u64(&sb, 5), -1);
	cr_assert(sb.overflow);
	cr_assert_str_eq(strbuf_str(&sb), "1234");
	strbuf_free(&sb);
}
