/* imap_args: the arguments of the commands after login, read on a buffer
 * alone before any handler acts. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../node/imap/imap_args.h"

#define CUR(c, s) imap_cur_init((c), (s), strlen(s))

Test(imap_args, command_start)
{
	struct imap_cur c;
	char tag[65], name[32];
	bool uid;
	CUR(&c, "a1 uid fetch 1 FLAGS");
	cr_assert_eq(
	    imap_command_start(&c, tag, sizeof(tag), name, sizeof(name), &uid),
	    0);
	cr_assert_str_eq(tag, "a1");
	cr_assert_str_eq(name, "FETCH");
	cr_assert(uid);
	cr_assert_eq(*c.p, ' ');
	CUR(&c, "+ NOOP");
	cr_assert_eq(
	    imap_command_start(&c, tag, sizeof(tag), name, sizeof(name), &uid),
	    -1);
	cr_assert_str_eq(tag, "");
	CUR(&c, "a UID");
	cr_assert_eq(
	    imap_command_start(&c, tag, sizeof(tag), name, sizeof(name), &uid),
	    -1);
	cr_assert_str_eq(tag, "a");
	cr_assert_str_eq(c.err, "UID needs a command");
}

Test(imap_args, mailboxes)
{
	struct imap_cur c;
	char name[IMAP_ARG_MBOX];
	struct imap_args_rename r;
	struct imap_args_list l;
	struct imap_args_status st;
	CUR(&c, "\"Jobs.\"");
	cr_assert_eq(imap_args_mailbox(&c, true, name), 0);
	cr_assert_str_eq(name, "Jobs");
	CUR(&c, "Jobs.");
	cr_assert_eq(imap_args_mailbox(&c, false, name), 0);
	cr_assert_str_eq(name, "Jobs.");
	CUR(&c, "INBOX extra");
	cr_assert_eq(imap_args_mailbox(&c, false, name), -1);
	CUR(&c, "a {2+}\r\nb.");
	cr_assert_eq(imap_args_rename(&c, &r), 0);
	cr_assert_str_eq(r.from, "a");
	cr_assert_str_eq(r.to, "b");
	CUR(&c, "\"\" Jobs.%");
	cr_assert_eq(imap_args_list(&c, true, &l), 0);
	cr_assert_str_eq(l.pattern, "Jobs.%");
	/* LIST-STATUS: RETURN (STATUS (...)) after the pattern, LIST only */
	CUR(&c, "\"\" * RETURN (CHILDREN STATUS (MESSAGES UIDNEXT))");
	cr_assert_eq(imap_args_list(&c, true, &l), 0);
	cr_assert_eq(l.status, IMAP_STATUS_MESSAGES | IMAP_STATUS_UIDNEXT);
	CUR(&c, "\"\" * RETURN ()");
	cr_assert_eq(imap_args_list(&c, true, &l), 0);
	cr_assert_eq(l.status, 0);
	const char *badlist[] = {"\"\" * RETURN (STATUS ())",
				 "\"\" * RETURN (BOGUS)", "\"\" * RETURN",
				 "\"\" * RETURN (STATUS (MESSAGES)",
				 "\"\" * EXTRA"};
	for (size_t i = 0; i < sizeof(badlist) / sizeof(*badlist); i++) {
		CUR(&c, badlist[i]);
		cr_assert_eq(imap_args_list(&c, true, &l), -1, "%s",
			     badlist[i]);
	}
	CUR(&c, "\"\" * RETURN (STATUS (MESSAGES))");
	cr_assert_eq(imap_args_list(&c, false, &l), -1); /* LSUB */
	CUR(&c, "INBOX (MESSAGES unseen)");
	cr_assert_eq(imap_args_status(&c, &st), 0);
	cr_assert_eq(st.items, IMAP_STATUS_MESSAGES | IMAP_STATUS_UNSEEN);
	CUR(&c, "INBOX (MESSAGES BOGUS)");
	cr_assert_eq(imap_args_status(&c, &st), -1);
	CUR(&c, "INBOX MESSAGES");
	cr_assert_eq(imap_args_status(&c, &st), -1);
}

Test(imap_args, append)
{
	struct imap_cur c;
	struct imap_args_append a;
	const char *in = "INBOX (\\Seen) \" 7-Jul-1996 09:44:25 +0000\" "
			 "{5}\r\nhello";
	CUR(&c, in);
	cr_assert_eq(imap_args_append(&c, &a), 0);
	cr_assert_str_eq(a.mailbox, "INBOX");
	cr_assert_eq(a.flags, IMAP_F_SEEN);
	cr_assert_eq(a.when, 836732665);
	cr_assert_eq(a.len, 5);
	cr_assert_eq(memcmp(a.msg, "hello", 5), 0);
	CUR(&c, "INBOX {5}\r\nhel");
	cr_assert_eq(imap_args_append(&c, &a), -1);
	CUR(&c, "INBOX hello");
	cr_assert_eq(imap_args_append(&c, &a), -1);
}

Test(imap_args, store_copy_fetch_expunge)
{
	struct imap_cur c;
	static struct imap_args_store st;
	static struct imap_args_copy cp;
	static struct imap_args_fetch f;
	static struct imap_seqset set;
	bool has;
	CUR(&c, "1:4294967295 -FLAGS.SILENT (\\Deleted $x)");
	cr_assert_eq(imap_args_store(&c, &st), 0);
	cr_assert_eq(st.op, IMAP_STORE_REMOVE);
	cr_assert(st.silent);
	cr_assert_eq(st.flags, IMAP_F_DELETED);
	cr_assert_eq(st.kw.n, 1);
	cr_assert_str_eq(st.kw.name[0], "$x");
	cr_assert_eq(st.set.r[0].hi, 4294967295u);
	CUR(&c, "1 XFLAGS (\\Seen)");
	cr_assert_eq(imap_args_store(&c, &st), -1);
	CUR(&c, "2:* \"Jobs.2026\"");
	cr_assert_eq(imap_args_copy(&c, &cp), 0);
	cr_assert_str_eq(cp.mailbox, "Jobs.2026");
	cr_assert_eq(cp.set.r[0].hi, IMAP_STAR);
	CUR(&c, "1,2 (UID BODY.PEEK[TEXT]<0.10>)");
	cr_assert_eq(imap_args_fetch(&c, &f), 0);
	cr_assert_eq(f.f.n, 2);
	imap_fetch_free(&f.f);
	CUR(&c, "1 (UID");
	cr_assert_eq(imap_args_fetch(&c, &f), -1);
	imap_fetch_free(&f.f);
	CUR(&c, "");
	cr_assert_eq(imap_args_expunge(&c, false, &set, &has), 0);
	cr_assert_not(has);
	CUR(&c, "1:3");
	cr_assert_eq(imap_args_expunge(&c, false, &set, &has), -1);
	CUR(&c, "1:3");
	cr_assert_eq(imap_args_expunge(&c, true, &set, &has), 0);
	cr_assert(has);
}

/* ESEARCH's RETURN before SEARCH's keys. */
Test(imap_args, search_return)
{
	struct imap_cur c;
	unsigned ret;
	CUR(&c, "RETURN (MIN max COUNT) ALL");
	cr_assert_eq(imap_args_search_return(&c, &ret), 0);
	cr_assert_eq(ret, IMAP_ESEARCH | IMAP_ESEARCH_MIN | IMAP_ESEARCH_MAX |
			      IMAP_ESEARCH_COUNT);
	cr_assert_str_eq(c.p, "ALL");
	CUR(&c, "RETURN () SEEN");
	cr_assert_eq(imap_args_search_return(&c, &ret), 0);
	cr_assert_eq(ret, IMAP_ESEARCH | IMAP_ESEARCH_ALL);
	CUR(&c, "SEEN");
	cr_assert_eq(imap_args_search_return(&c, &ret), 0);
	cr_assert_eq(ret, 0);
	cr_assert_str_eq(c.p, "SEEN");
	const char *bad[] = {"RETURN (SAVE) ALL", "RETURN MIN ALL",
			     "RETURN (MIN", "RETURN (MIN  MAX) ALL"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		CUR(&c, bad[i]);
		cr_assert_eq(imap_args_search_return(&c, &ret), -1, "%s",
			     bad[i]);
	}
}
