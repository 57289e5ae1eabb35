/* node/imap_cache.c: the node's header cache. Hits, misses, names that
 * differ only in their flags, forgetting, and the bound. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../node/imap/imap_cache.h"

#define DIR_A "/store/d/aa/bb/alice"
#define DIR_B "/store/d/aa/bb/bob"
#define NAME "1700000000.M1P2Q3.node1,S=120,U=7:2,"
#define HDR "Subject: hello\r\nFrom: a@b\r\n\r\n"

static const char *
get(struct imap_cache *c, const char *dir, const char *name, size_t *len)
{
	*len = 0;
	return imap_cache_get(c, dir, name, len);
}

Test(imap_cache, miss_then_hit)
{
	struct imap_cache *c = imap_cache_new(1 << 20);
	size_t len;
	cr_assert_not_null(c);
	cr_assert_null(get(c, DIR_A, NAME, &len));
	cr_assert_eq(imap_cache_put(c, DIR_A, NAME, HDR, strlen(HDR)), 0);
	const char *h = get(c, DIR_A, NAME, &len);
	cr_assert_not_null(h);
	cr_assert_eq(len, strlen(HDR));
	cr_assert_eq(memcmp(h, HDR, len), 0);
	/* the same file name in another Maildir is another message */
	cr_assert_null(get(c, DIR_B, NAME, &len));
	cr_assert_null(
	    get(c, DIR_A, "1700000000.M1P2Q4.node1,S=120,U=8:2,", &len));
	cr_assert_eq(imap_cache_count(c), 1);
	imap_cache_free(c);
}

Test(imap_cache, renamed_for_flags_still_hits)
{
	struct imap_cache *c = imap_cache_new(1 << 20);
	size_t len;
	cr_assert_eq(imap_cache_put(c, DIR_A, NAME, HDR, strlen(HDR)), 0);
	cr_assert_not_null(get(c, DIR_A, NAME "FS", &len));
	cr_assert_not_null(get(c, DIR_A, NAME "DRST", &len));
	cr_assert_eq(len, strlen(HDR));
	/* a put under the new name replaces, it does not add */
	cr_assert_eq(imap_cache_put(c, DIR_A, NAME "S", "X: y\r\n\r\n", 8), 0);
	cr_assert_eq(imap_cache_count(c), 1);
	cr_assert_eq(memcmp(get(c, DIR_A, NAME, &len), "X: y\r\n\r\n", 8), 0);
	imap_cache_free(c);
}

Test(imap_cache, forgotten_is_not_returned)
{
	struct imap_cache *c = imap_cache_new(1 << 20);
	size_t len;
	cr_assert_eq(imap_cache_put(c, DIR_A, NAME, HDR, strlen(HDR)), 0);
	size_t bytes = imap_cache_bytes(c);
	cr_assert_gt(bytes, strlen(HDR));
	imap_cache_forget(c, DIR_A, NAME "S"); /* expunged after a flag */
	cr_assert_null(get(c, DIR_A, NAME, &len));
	cr_assert_eq(imap_cache_count(c), 0);
	cr_assert_eq(imap_cache_bytes(c), 0);
	imap_cache_forget(c, DIR_A, NAME); /* absent: nothing happens */
	imap_cache_free(c);
}

Test(imap_cache, bound_evicts_least_recently_used)
{
	/* entries of about 1 KiB each in a 32 KiB cache: a few dozen fit */
	struct imap_cache *c = imap_cache_new(32 * 1024);
	char hdr[1000], name[64];
	size_t len;
	memset(hdr, 'h', sizeof(hdr));
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "%d.M1P1.n,S=1:2,S", i);
		cr_assert_eq(imap_cache_put(c, DIR_A, name, hdr, sizeof(hdr)),
			     0);
		cr_assert_leq(imap_cache_bytes(c), 32 * 1024);
		/* message 0 is used all along: it must stay */
		cr_assert_not_null(get(c, DIR_A, "0.M1P1.n,S=1:2,", &len));
	}
	cr_assert_lt(imap_cache_count(c), 32);
	cr_assert_gt(imap_cache_count(c), 20);
	cr_assert_null(get(c, DIR_A, "1.M1P1.n,S=1:2,S", &len));
	cr_assert_not_null(get(c, DIR_A, "99.M1P1.n,S=1:2,S", &len));
	/* too large for the bound (more than a sixteenth): not kept */
	char big[4096];
	memset(big, 'b', sizeof(big));
	cr_assert_eq(imap_cache_put(c, DIR_A, "big:2,", big, sizeof(big)), -1);
	cr_assert_null(get(c, DIR_A, "big:2,", &len));
	imap_cache_free(c);
}

Test(imap_cache, off_keeps_nothing)
{
	struct imap_cache *c = imap_cache_new(0);
	size_t len;
	cr_assert_not_null(c);
	cr_assert_eq(imap_cache_put(c, DIR_A, NAME, HDR, strlen(HDR)), -1);
	cr_assert_null(get(c, DIR_A, NAME, &len));
	imap_cache_free(c);
}

Test(imap_cache, many_entries_grow_the_table)
{
	struct imap_cache *c = imap_cache_new(64 << 20);
	char name[64];
	size_t len;
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "%d.M1P1.n:2,", i);
		cr_assert_eq(imap_cache_put(c, DIR_B, name, name, strlen(name)),
			     0);
	}
	cr_assert_eq(imap_cache_count(c), 5000);
	for (int i = 0; i < 5000; i += 7) {
		snprintf(name, sizeof(name), "%d.M1P1.n:2,", i);
		const char *h = get(c, DIR_B, name, &len);
		cr_assert_not_null(h);
		cr_assert_eq(len, strlen(name));
		cr_assert_eq(memcmp(h, name, len), 0);
	}
	imap_cache_free(c);
}
