/* node/store/maildir_name.c: what a message file name holds, and the
 * Maildir of a mailbox name. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../node/store/maildir.h"
#include "../../node/store/maildir_int.h"
#include "maildir_fixture.h"

static char root[256];

static void
setup(void)
{
	fixture_tree(root, sizeof(root), "name", NULL, 0);
}

static void
teardown(void)
{
	rmtree(root);
}

TestSuite(maildir_name, .init = setup, .fini = teardown);

Test(maildir_name, mailbox_paths)
{
	char out[PATH_MAX];
	cr_assert_eq(maildir_mailbox_path("/s/u", "INBOX", out, sizeof(out)),
		     0);
	cr_assert_str_eq(out, "/s/u");
	cr_assert_eq(maildir_mailbox_path("/s/u", "inbox", out, sizeof(out)),
		     0);
	cr_assert_str_eq(out, "/s/u");
	cr_assert_eq(maildir_mailbox_path("/s/u", "Sent", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/s/u/.Sent");
	cr_assert_eq(
	    maildir_mailbox_path("/s/u", "Archive.2024", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/s/u/.Archive.2024");
	static const char *bad[] = {
	    "",	     ".",    "..",   "../x",	  "a/b",  "/etc",    ".Sent",
	    "Sent.", "a..b", "x\ny", "tab\there", "a\\b", "INBOX.x", "\x7f",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		errno = 0;
		cr_expect_eq(
		    maildir_mailbox_path("/s/u", bad[i], out, sizeof(out)), -1,
		    "accepted %s", bad[i]);
		cr_expect_eq(errno, EINVAL);
	}
	char longname[MAILDIR_MBOX_MAX + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(maildir_mailbox_path("/s/u", longname, out, sizeof(out)),
		     -1);
	char small[8];
	cr_assert_eq(maildir_mailbox_path("/s/u", "Sent", small, sizeof(small)),
		     -1);
	cr_assert_eq(errno, ENAMETOOLONG);
}

Test(maildir_name, sizes_in_names)
{
	uint32_t uid;
	uint64_t size;
	char flags[32], name[MAILDIR_NAME_MAX + 1];
	/* Dovecot's LF files: S= on disk, W= with CRLF (what IMAP sends) */
	maildir_parse_name("1.M1P1.h,S=50,W=55,U=7:2,S", &uid, flags,
			   sizeof(flags), &size);
	cr_assert_eq(uid, 7);
	cr_assert_eq(size, 55);
	cr_assert_str_eq(flags, "S");
	maildir_parse_name("1.M1P1.h,W=55,S=50", &uid, flags, sizeof(flags),
			   &size);
	cr_assert_eq(size, 55);
	maildir_parse_name("1.M1P1.h,S=50", &uid, flags, sizeof(flags), &size);
	cr_assert_eq(size, 50);
	maildir_parse_name("1.M1P1.h,W=x,S=50", &uid, flags, sizeof(flags),
			   &size);
	cr_assert_eq(size, 50);

	cr_assert_eq(maildir_unique_name("h", 0, 50, 55, name, sizeof(name)),
		     0);
	cr_assert(strstr(name, ".h,S=50,W=55") != NULL, "%s", name);
	cr_assert_eq(maildir_unique_name("h", 0, 50, 50, name, sizeof(name)),
		     0);
	cr_assert(strstr(name, ",W=") == NULL, "%s", name);
	cr_assert_eq(maildir_unique_name("h", 0, 50, 0, name, sizeof(name)), 0);
	cr_assert(strstr(name, ",W=") == NULL, "%s", name);
	/* a host that leaves no room for W=: the name goes without it (the
	 * usec field varies by up to 5 digits between calls: 6 bytes spare,
	 * a W= of 23 bytes cannot fit in them) */
	char host[MAILDIR_NAME_MAX];
	size_t fit = 0;
	for (size_t len = 1; len < sizeof(host); len++) {
		memset(host, 'h', len);
		host[len] = '\0';
		if (maildir_unique_name(host, 0, 50, 0, name, sizeof(name)) < 0)
			break;
		fit = len;
	}
	cr_assert(fit > 6);
	host[fit - 6] = '\0';
	cr_assert_eq(
	    maildir_unique_name(host, 0, 50, UINT64_MAX, name, sizeof(name)),
	    0);
	cr_assert(strstr(name, ",W=") == NULL, "%s", name);
	cr_assert(strstr(name, ",S=50") != NULL, "%s", name);
}
