/* imap_args_modseq.c: SELECT's CONDSTORE and QRESYNC parameters, FETCH's
 * CHANGEDSINCE and VANISHED, STORE's UNCHANGEDSINCE, mod-sequence
 * bounds (RFC 7162). */
#include <criterion/criterion.h>
#include <string.h>

#include "../../node/imap/imap_args.h"

#define CUR(c, s) imap_cur_init((c), (s), strlen(s))

Test(imap_args_modseq, select_parameters)
{
	struct imap_cur c;
	char name[IMAP_ARG_MBOX];
	static struct imap_args_select a;
	CUR(&c, "INBOX");
	cr_assert_eq(imap_args_select(&c, name, sizeof(name), &a), 0);
	cr_assert(!a.condstore && !a.qresync);
	CUR(&c, "INBOX (CONDSTORE)");
	cr_assert_eq(imap_args_select(&c, name, sizeof(name), &a), 0);
	cr_assert(a.condstore);
	CUR(&c, "INBOX (QRESYNC (67890007 20050715194045000 "
		"41,43:211,214:541))");
	cr_assert_eq(imap_args_select(&c, name, sizeof(name), &a), 0, "%s",
		     c.err);
	cr_assert(a.qresync && a.has_known);
	cr_assert_eq(a.uidvalidity, 67890007);
	cr_assert_eq(a.modseq, 20050715194045000ull);
	cr_assert_eq(a.known.n, 3);
	CUR(&c, "INBOX (QRESYNC (1 2 1:9 (1:3 4:6)))");
	cr_assert_eq(imap_args_select(&c, name, sizeof(name), &a), 0, "%s",
		     c.err);
	cr_assert(a.has_known);
	CUR(&c, "INBOX (QRESYNC (1 2 (1:3 4:6)))");
	cr_assert_eq(imap_args_select(&c, name, sizeof(name), &a), 0, "%s",
		     c.err);
	cr_assert(!a.has_known);
	/* refused: no modseq, modseq 0 or past 2^63-1, unknown, unclosed */
	const char *bad[] = {"INBOX (QRESYNC (1))",
			     "INBOX (QRESYNC (1 0))",
			     "INBOX (QRESYNC (1 9223372036854775808))",
			     "INBOX (FOO)",
			     "INBOX (CONDSTORE",
			     "INBOX ()"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		CUR(&c, bad[i]);
		cr_assert_eq(imap_args_select(&c, name, sizeof(name), &a), -1,
			     "%s", bad[i]);
	}
	CUR(&c, "INBOX (QRESYNC (1 9223372036854775807))");
	cr_assert_eq(imap_args_select(&c, name, sizeof(name), &a), 0);
}

Test(imap_args_modseq, fetch_and_store_modifiers)
{
	struct imap_cur c;
	static struct imap_args_fetch f;
	static struct imap_args_store s;
	CUR(&c, "1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)");
	cr_assert_eq(imap_args_fetch(&c, &f), 0, "%s", c.err);
	cr_assert(f.mods.changedsince && f.mods.vanished);
	cr_assert_eq(f.mods.since, 12345);
	imap_fetch_free(&f.f);
	CUR(&c, "1 MODSEQ");
	cr_assert_eq(imap_args_fetch(&c, &f), 0, "%s", c.err);
	cr_assert(!f.mods.changedsince);
	cr_assert_eq(f.f.item[0].kind, IMAP_FETCH_MODSEQ);
	imap_fetch_free(&f.f);
	CUR(&c, "1 FLAGS (VANISHED)");
	cr_assert_eq(imap_args_fetch(&c, &f), -1);
	imap_fetch_free(&f.f);
	CUR(&c, "1 FLAGS (CHANGEDSINCE 0)");
	cr_assert_eq(imap_args_fetch(&c, &f), -1);
	imap_fetch_free(&f.f);

	CUR(&c, "1:7 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Deleted)");
	cr_assert_eq(imap_args_store(&c, &s), 0, "%s", c.err);
	cr_assert(s.mods.unchangedsince && s.silent);
	cr_assert_eq(s.mods.since, 0);
	CUR(&c, "1 +FLAGS (\\Seen)");
	cr_assert_eq(imap_args_store(&c, &s), 0, "%s", c.err);
	cr_assert(!s.mods.unchangedsince);
	CUR(&c, "1 (UNCHANGEDSINCE) +FLAGS (\\Seen)");
	cr_assert_eq(imap_args_store(&c, &s), -1);
	CUR(&c, "1 (FOO 1) +FLAGS (\\Seen)");
	cr_assert_eq(imap_args_store(&c, &s), -1);
}
