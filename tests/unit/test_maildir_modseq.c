/* node/store/maildir_modseq.c: mod-sequences that rise with every
 * change and delivery, HIGHESTMODSEQ from UIDNEXT and the log alone,
 * expunges remembered, a reader that reads only what is new, and the
 * snapshot that bounds the log without changing any mod-sequence. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../node/store/maildir.h"
#include "../../node/store/maildir_int.h"
#include "../../node/store/maildir_modseq.h"
#include "maildir_fixture.h"

static char root[256], user[PATH_MAX], dir[PATH_MAX];

static void
setup(void)
{
	fixture_tree(root, sizeof(root), "modseq", user, sizeof(user));
	snprintf(dir, sizeof(dir), "%s/box", root);
	mkmaildir(dir);
}

static void
teardown(void)
{
	rmtree(root);
}

TestSuite(maildir_modseq, .init = setup, .fini = teardown);

/* n new messages given UIDs; returns UIDNEXT. */
static uint32_t
deliver_n(int n)
{
	static int seq;
	struct maildir_list l;
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "%d.m", ++seq);
		deliver(dir, "new", name, "Subject: x\r\n\r\nx\r\n");
	}
	cr_assert_eq(maildir_assign(dir, NULL, &l), 0, "%s", strerror(errno));
	uint32_t next = l.uidnext;
	maildir_list_free(&l);
	return next;
}

static void
change(char op, const uint32_t *uids, size_t n)
{
	struct maildir_modseq ms = {0};
	struct maildir_modseq_tx tx;
	cr_assert_eq(maildir_modseq_begin(dir, &ms, &tx), 0);
	for (size_t i = 0; i < n; i++)
		maildir_modseq_note(&tx, uids[i]);
	cr_assert_eq(maildir_modseq_commit(&tx, op), 0);
	maildir_modseq_free(&ms);
}

static void
collect(void *arg, uint32_t uid)
{
	uint32_t **p = arg;
	*(*p)++ = uid;
}

Test(maildir_modseq, changes_and_deliveries_raise_it)
{
	struct maildir_modseq r = {.keep_uids = true};
	uint32_t next = deliver_n(3);
	cr_assert_eq(maildir_modseq_read(dir, &r), 0);
	uint64_t h0 = maildir_modseq_highest(&r, next);
	for (uint32_t u = 1; u <= 3; u++)
		cr_assert_leq(maildir_modseq_of(&r, u), h0);
	cr_assert_lt(maildir_modseq_of(&r, 1), maildir_modseq_of(&r, 3));

	uint32_t two = 2;
	change('F', &two, 1);
	cr_assert_eq(maildir_modseq_read(dir, &r), 0);
	uint64_t h1 = maildir_modseq_highest(&r, next);
	cr_assert_gt(h1, h0);
	cr_assert_eq(maildir_modseq_of(&r, 2), h1);
	cr_assert_leq(maildir_modseq_of(&r, 1), h0); /* unchanged */

	uint32_t next2 = deliver_n(1); /* no record: still above */
	cr_assert_eq(maildir_modseq_read(dir, &r), 0);
	uint64_t h2 = maildir_modseq_highest(&r, next2);
	cr_assert_gt(h2, h1);
	cr_assert_gt(maildir_modseq_of(&r, 4), h1);
	cr_assert_leq(maildir_modseq_of(&r, 4), h2);
	cr_assert_eq(maildir_modseq_of(&r, 2), h1); /* stays */

	uint32_t gone[] = {1, 3};
	change('X', gone, 2);
	cr_assert_eq(maildir_modseq_read(dir, &r), 0);
	uint64_t h3 = maildir_modseq_highest(&r, next2);
	cr_assert_gt(h3, h2);
	uint32_t got[8], *p = got;
	cr_assert(maildir_modseq_vanished(&r, h2, collect, &p));
	cr_assert_eq(p - got, 2);
	cr_assert_eq(got[0], 1);
	cr_assert_eq(got[1], 3);
	p = got;
	cr_assert(maildir_modseq_vanished(&r, h3, collect, &p));
	cr_assert_eq(p - got, 0);

	/* A reader that starts now knows the same. */
	struct maildir_modseq fresh = {.keep_uids = true};
	cr_assert_eq(maildir_modseq_read(dir, &fresh), 0);
	cr_assert_eq(maildir_modseq_highest(&fresh, next2), h3);
	cr_assert_eq(maildir_modseq_of(&fresh, 2), h1);
	cr_assert_eq(maildir_modseq_of(&fresh, 4), maildir_modseq_of(&r, 4));
	maildir_modseq_free(&fresh);
	maildir_modseq_free(&r);
}

Test(maildir_modseq, a_half_written_line_waits)
{
	struct maildir_modseq r = {.keep_uids = true};
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, MAILDIR_MODSEQ_FILE);
	FILE *f = fopen(path, "w");
	fputs("9 5 F 2\n12 7 F 1:", f);
	fclose(f);
	cr_assert_eq(maildir_modseq_read(dir, &r), 0);
	cr_assert_eq(r.k, 4);
	cr_assert_eq(maildir_modseq_of(&r, 2), 9);
	f = fopen(path, "a");
	fputs("3\n", f);
	fclose(f);
	cr_assert_eq(maildir_modseq_read(dir, &r), 0);
	cr_assert_eq(r.k, 5);
	cr_assert_eq(maildir_modseq_of(&r, 1), 12);
	cr_assert_eq(maildir_modseq_of(&r, 3), 12);
	cr_assert_eq(maildir_modseq_highest(&r, 7), 12);
	maildir_modseq_free(&r);
}

Test(maildir_modseq, snapshot_keeps_every_modseq)
{
	uint32_t next = deliver_n(5);
	uint32_t one = 1, three = 3;
	change('F', &one, 1);
	change('X', &three, 1);
	struct maildir_modseq before = {.keep_uids = true};
	cr_assert_eq(maildir_modseq_read(dir, &before), 0);
	/* past the bound: the next change rewrites the log */
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, MAILDIR_MODSEQ_FILE);
	FILE *f = fopen(path, "a");
	uint64_t k = before.k;
	for (int i = 0; i < MAILDIR_MODSEQ_RECORDS; i++) {
		k++;
		fprintf(f, "%llu %u F 5\n", (unsigned long long)(next + k),
			next);
	}
	fclose(f);
	struct maildir_modseq mid = {.keep_uids = true};
	cr_assert_eq(maildir_modseq_read(dir, &mid), 0);
	uint32_t two = 2;
	change('F', &two, 1);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_lt(st.st_size, 4096, "rewritten: %lld bytes",
		     (long long)st.st_size);
	struct maildir_modseq after = {.keep_uids = true};
	cr_assert_eq(maildir_modseq_read(dir, &after), 0);
	cr_assert_eq(after.k, mid.k + 1);
	cr_assert_eq(maildir_modseq_of(&after, 1), maildir_modseq_of(&mid, 1));
	cr_assert_eq(maildir_modseq_of(&after, 4), maildir_modseq_of(&mid, 4));
	cr_assert_eq(maildir_modseq_of(&after, 5), maildir_modseq_of(&mid, 5));
	cr_assert_gt(maildir_modseq_of(&after, 2), maildir_modseq_of(&mid, 5));
	uint32_t got[8], *p = got;
	cr_assert(maildir_modseq_vanished(&after, 0, collect, &p));
	cr_assert_eq(p - got, 1);
	cr_assert_eq(got[0], 3);
	/* a new delivery after the snapshot rises above all */
	uint32_t next2 = deliver_n(1);
	cr_assert_eq(maildir_modseq_read(dir, &after), 0);
	cr_assert_gt(maildir_modseq_of(&after, 6),
		     maildir_modseq_of(&after, 2));
	cr_assert_eq(maildir_modseq_highest(&after, next2),
		     maildir_modseq_of(&after, 6));
	/* the reader that was there follows the rewrite */
	cr_assert_eq(maildir_modseq_read(dir, &mid), 0);
	cr_assert_eq(mid.k, after.k);
	cr_assert_eq(maildir_modseq_of(&mid, 2), maildir_modseq_of(&after, 2));
	maildir_modseq_free(&before);
	maildir_modseq_free(&mid);
	maildir_modseq_free(&after);
}
