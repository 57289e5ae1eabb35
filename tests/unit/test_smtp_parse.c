/* smtp_parse: command split, paths, HELO argument and MAIL parameters on
 * buffers alone. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../node/smtp/smtp_parse.h"

Test(smtp_parse, command_split_and_nul)
{
	char l1[] = "MAIL  FROM:<a@b>  ";
	char *verb, *args;
	cr_assert_eq(smtp_parse_command(l1, strlen(l1), &verb, &args), 0);
	cr_assert_str_eq(verb, "MAIL");
	cr_assert_str_eq(args, "FROM:<a@b>");
	char l2[] = "QUIT";
	cr_assert_eq(smtp_parse_command(l2, 4, &verb, &args), 0);
	cr_assert_str_eq(args, "");
	char l3[] = "EHLO x\0y";
	cr_assert_eq(smtp_parse_command(l3, 8, &verb, &args), -1);
}

Test(smtp_parse, paths)
{
	char out[64], *rest;
	char a1[] = "FROM: <@r1,@r2:u@d> SIZE=5";
	cr_assert_eq(smtp_parse_path(a1, "FROM:", out, sizeof(out), &rest), 0);
	cr_assert_str_eq(out, "u@d");
	cr_assert_str_eq(rest, "SIZE=5");
	const char *bad[] = {"FROM:a@b", "FROM:<a b>", "FROM:<a\"b>",
			     "TO:<a@b>", "FROM:<a@b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char b[64];
		strcpy(b, bad[i]);
		cr_assert_eq(
		    smtp_parse_path(b, "FROM:", out, sizeof(out), &rest), -1,
		    "%s", bad[i]);
	}
	char a2[] = "TO:<0123456789@x>";
	cr_assert_eq(smtp_parse_path(a2, "TO:", out, 8, &rest), -1);
	cr_assert(smtp_mailbox_ok("a@b"));
	cr_assert_not(smtp_mailbox_ok("a@b@c"));
	cr_assert_not(smtp_mailbox_ok("@b"));
	cr_assert_not(smtp_mailbox_ok("a@"));
	cr_assert(smtp_helo_ok("client.test", 256));
	cr_assert_not(smtp_helo_ok("", 256));
	cr_assert_not(smtp_helo_ok("a b", 256));
	cr_assert_not(smtp_helo_ok("abcd", 4));
}

Test(smtp_parse, mail_params)
{
	struct smtp_mail_params mp;
	char p1[] = "SIZE=1000 BODY=8BITMIME SMTPUTF8 AUTH=<>";
	cr_assert_eq(smtp_parse_mail_params(p1, &mp), SMTP_PARAM_OK);
	cr_assert(mp.has_size);
	cr_assert_eq(mp.size, 1000);
	const char *bad[] = {"SIZE=-1", "SIZE=",   "SIZE=+5",
			     "SIZE= 5", "SIZE=5x", "SIZE=0x10"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char b[32];
		strcpy(b, bad[i]);
		cr_assert_eq(smtp_parse_mail_params(b, &mp),
			     SMTP_PARAM_BAD_SIZE, "%s", bad[i]);
	}
	char p2[] = "SIZE=99999999999999999999999";
	cr_assert_eq(smtp_parse_mail_params(p2, &mp), SMTP_PARAM_OK);
	cr_assert_eq(mp.size, UINT64_MAX);
	char p3[] = "FROB=1";
	cr_assert_eq(smtp_parse_mail_params(p3, &mp), SMTP_PARAM_UNSUPPORTED);
	cr_assert_str_eq(mp.unknown, "FROB=1");
}
