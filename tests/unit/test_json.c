/* common/json: the strict flat-object reader. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/json.h"

static char store[1024];

static int
parse(const char *s, struct json_flat *o, const char **why)
{
	return json_flat_parse(s, strlen(s), o, store, sizeof(store), why);
}

Test(json, login_object)
{
	struct json_flat o;
	const char *why = NULL;
	cr_assert_eq(parse(" {\"user\" : \"alice@example.test\",\n"
			   "\t\"password\":\"d\\\"e\\\\m\\/o\"} \r\n",
			   &o, &why),
		     0, "%s", why);
	cr_assert_eq(o.n, 2);
	cr_assert_str_eq(json_flat_get(&o, "user"), "alice@example.test");
	cr_assert_str_eq(json_flat_get(&o, "password"), "d\"e\\m/o");
	cr_assert_null(json_flat_get(&o, "other"));
}

Test(json, empty_object_and_empty_strings)
{
	struct json_flat o;
	const char *why;
	cr_assert_eq(parse("{}", &o, &why), 0);
	cr_assert_eq(o.n, 0);
	cr_assert_eq(parse("{\"\":\"\"}", &o, &why), 0);
	cr_assert_eq(o.n, 1);
	cr_assert_str_eq(json_flat_get(&o, ""), "");
}

Test(json, escapes_and_unicode)
{
	struct json_flat o;
	const char *why = NULL;
	cr_assert_eq(parse("{\"a\":\"\\b\\f\\n\\r\\t\\u00e9\\u20AC"
			   "\\ud83d\\ude00\xc3\xa9\"}",
			   &o, &why),
		     0, "%s", why);
	cr_assert_str_eq(json_flat_get(&o, "a"),
			 "\b\f\n\r\t\xc3\xa9\xe2\x82\xac"
			 "\xf0\x9f\x98\x80\xc3\xa9");
	cr_assert_eq(o.m[0].value_len, 5 + 2 + 3 + 4 + 2);
}

Test(json, refused)
{
	static const char *bad[] = {
	    "",
	    "   ",
	    "[]",
	    "\"x\"",
	    "{",
	    "{\"a\"}",
	    "{\"a\":}",
	    "{\"a\":1}",
	    "{\"a\":true}",
	    "{\"a\":null}",
	    "{\"a\":{\"b\":\"c\"}}",
	    "{\"a\":[\"b\"]}",
	    "{\"a\":\"b\",}",
	    "{,\"a\":\"b\"}",
	    "{\"a\":\"b\" \"c\":\"d\"}",
	    "{\"a\":\"b\"}x",
	    "{\"a\":\"b\"}{}",
	    "{'a':'b'}",
	    "{a:\"b\"}",
	    "{\"a\":\"b\",\"a\":\"c\"}",
	    "{\"a\":\"b\\x\"}",
	    "{\"a\":\"b\\u12\"}",
	    "{\"a\":\"b\\u12g4\"}",
	    "{\"a\":\"\\u0000\"}",
	    "{\"a\":\"\\ud800\"}",
	    "{\"a\":\"\\udc00\"}",
	    "{\"a\":\"\\ud800\\u0041\"}",
	    "{\"a\":\"tab\there\"}",
	    "{\"a\":\"nl\nhere\"}",
	    "{\"a\":\"\xc3\"}",
	    "{\"a\":\"\xc0\xaf\"}",
	    "{\"a\":\"\xe0\x80\xaf\"}",
	    "{\"a\":\"\xed\xa0\x80\"}",
	    "{\"a\":\"\xf4\x90\x80\x80\"}",
	    "{\"a\":\"\xff\"}",
	    "{\"a\":\"unterminated}",
	    "{\"a\":\"b\"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct json_flat o;
		const char *why = NULL;
		cr_expect_eq(parse(bad[i], &o, &why), -1, "accepted: %s",
			     bad[i]);
		cr_expect_not_null(why, "no reason for %s", bad[i]);
		cr_expect_eq(o.n, 0);
	}
}

Test(json, nul_byte_inside_is_refused)
{
	struct json_flat o;
	const char *why;
	const char text[] = "{\"a\":\"x\0y\"}";
	cr_assert_eq(json_flat_parse(text, sizeof(text) - 1, &o, store,
				     sizeof(store), &why),
		     -1);
}

Test(json, bounds)
{
	struct json_flat o;
	const char *why = NULL;
	char small[8];
	cr_assert_eq(json_flat_parse("{\"user\":\"alice\"}", 16, &o, small,
				     sizeof(small), &why),
		     -1);
	cr_assert_str_eq(why, "too long");

	char text[2048];
	size_t n = 0;
	text[n++] = '{';
	for (int i = 0; i <= JSON_FLAT_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "%s\"k%d\":\"v\"", i ? "," : "", i);
	text[n++] = '}';
	cr_assert_eq(json_flat_parse(text, n, &o, store, sizeof(store), &why),
		     -1);
	cr_assert_str_eq(why, "too many members");
}

/* Random and mutated inputs: never a crash, never a read or write out of
 * bounds (the sanitizer build checks), and a success is self-consistent. */
Test(json, fuzz)
{
	static const char *seeds[] = {
	    "{\"user\":\"alice@example.test\",\"password\":\"demo\"}",
	    "{\"a\":\"\\ud83d\\ude00\\u00e9\\n\"}",
	    "{ \"x\" : \"\xc3\xa9\" , \"y\" : \"\" }",
	};
	static const char alphabet[] = "{}[]\":,\\u0123456789abcdefABCDEF "
				       "\t\r\n\x80\xc3\xa9\xed\xf0\xff";
	srand(12345);
	for (int i = 0; i < 20000; i++) {
		char buf[256];
		size_t len;
		if (i % 2 == 0) {
			const char *seed = seeds[i % 3];
			len = strlen(seed);
			memcpy(buf, seed, len);
			int muts = 1 + rand() % 4;
			for (int m = 0; m < muts; m++) {
				size_t at = (size_t)rand() % len;
				switch (rand() % 3) {
				case 0:
					buf[at] = (char)(rand() % 256);
					break;
				case 1:
					buf[at] =
					    alphabet[rand() %
						     (sizeof(alphabet) - 1)];
					break;
				default:
					len = at; /* truncate */
					break;
				}
				if (len == 0)
					break;
			}
		} else {
			len = (size_t)rand() % sizeof(buf);
			for (size_t k = 0; k < len; k++)
				buf[k] =
				    alphabet[rand() % (sizeof(alphabet) - 1)];
		}
		/* Exactly len bytes: no terminator for the parser to lean
		 * on. */
		char *exact = malloc(len ? len : 1);
		memcpy(exact, buf, len);
		struct json_flat o;
		const char *why = NULL;
		char out[128];
		if (json_flat_parse(exact, len, &o, out, sizeof(out), &why) ==
		    0) {
			for (int k = 0; k < o.n; k++)
				cr_assert_eq(strlen(o.m[k].value),
					     o.m[k].value_len);
		} else
			cr_assert_not_null(why);
		free(exact);
	}
}
