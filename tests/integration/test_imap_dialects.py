"""The command sequences Thunderbird and Apple Mail send at start-up and
while reading, replayed against a real node (neither runs headless here):
lower-case verbs, dotted tags, long HEADER.FIELDS lists, STATUS with
every item, `UID FETCH n:*` past the last UID, IDLE, UID MOVE, silent
stores, and no CONDSTORE or QRESYNC offered since they are not built."""
import re
import unittest

from nodetest import NodeTestCase
from wire import Lines

LISTEN = ("smtp", "imap")
HEADERS = ("From To Cc Bcc Subject Date Message-ID Priority X-Priority "
           "References Newsgroups In-Reply-To Content-Type Reply-To")


class ImapDialectsTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        self.n = self.node("mail1", listen=LISTEN,
                           extra_node="allow_plaintext_auth = yes\n")
        for i in range(3):
            self.deliver(self.n, b"From: Carol <carol@remote.test>\r\n"
                         b"To: alice@example.test\r\nSubject: note %d\r\n"
                         b"Message-ID: <n%d@remote.test>\r\n\r\nbody %d\r\n"
                         % (i, i, i))

    def ok(self, r, tag, text):
        out = r.cmd(tag, text)
        self.assertRegex(out[-1], r"^%s OK" % re.escape(tag), text)
        return out

    def test_thunderbird_start_up_and_reading(self):
        r = Lines(self.n.ports["imap"])
        caps = self.ok(r, "1", "capability")[0]
        for ext in ("IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "NAMESPACE",
                    "ID"):
            self.assertIn(ext, caps.split())
        for ext in ("CONDSTORE", "QRESYNC"):
            self.assertIn(ext, caps.split())
        self.ok(r, "2", "login \"alice@example.test\" \"demo\"")
        self.ok(r, "3", 'ID ("name" "Thunderbird" "version" "128.5.0")')
        self.ok(r, "4", "namespace")
        listed = self.ok(r, "5", 'list "" "*"')
        self.assertTrue(any("\\Sent" in ln and '"Sent"' in ln for ln in listed))
        self.ok(r, "6", 'lsub "" "*"')
        sel = self.ok(r, "7", 'select "INBOX"')
        self.assertIn("* 3 EXISTS", sel)
        uidnext = int(re.search(r"UIDNEXT (\d+)", " ".join(sel)).group(1))
        flags = self.ok(r, "8", "UID fetch 1:* (FLAGS)")
        self.assertEqual(len(flags), 4)
        hdrs = self.ok(r, "9", "UID fetch 1:* (UID RFC822.SIZE FLAGS "
                       "BODY.PEEK[HEADER.FIELDS (%s)])" % HEADERS)
        text = "\n".join(hdrs)
        for i in range(3):
            self.assertIn("Subject: note %d" % i, text)
        self.assertNotIn("body 0", text)
        # Checking for new mail: `UID fetch UIDNEXT:*` with nothing new
        # answers the last message (RFC 3501 6.4.8: * is the largest UID).
        again = self.ok(r, "10", "UID fetch %d:* (FLAGS)" % uidnext)
        self.assertEqual(len(again), 2)
        self.assertRegex(again[0], r"UID %d\b" % (uidnext - 1))
        # Reading one: the body, then the \Seen flag set silently.
        body = self.ok(r, "11", "UID fetch %d (UID RFC822.SIZE BODY.PEEK[])"
                       % (uidnext - 1))
        self.assertIn("body 2", "\n".join(body))
        stored = self.ok(r, "12", "UID store %d +FLAGS.SILENT (\\Seen)"
                         % (uidnext - 1))
        self.assertEqual(len(stored), 1)
        # Deleting: moved to Trash.
        moved = self.ok(r, "13", 'UID move %d "Trash"' % (uidnext - 3))
        self.assertTrue(any("COPYUID" in ln for ln in moved))
        self.assertIn("* 1 EXPUNGE", moved)
        st = self.ok(r, "14", 'STATUS "Trash" (MESSAGES UNSEEN RECENT '
                     'UIDNEXT UIDVALIDITY)')
        self.assertRegex(st[0], r"MESSAGES 1 .*UNSEEN 1")
        r.send("15 IDLE\r\n")
        self.assertTrue(r.line().startswith("+ "))
        r.send("DONE\r\n")
        self.assertRegex(r.until("15")[-1], r"^15 OK")
        self.ok(r, "16", "logout")
        r.close()

    def test_apple_mail_start_up(self):
        r = Lines(self.n.ports["imap"])
        self.ok(r, "1.1", "CAPABILITY")
        self.ok(r, "2.1", "LOGIN alice@example.test demo")
        self.ok(r, "3.1", 'ID ("name" "Mac OS X Mail" "version" "16.0")')
        delim = self.ok(r, "4.1", 'LIST "" ""')
        self.assertRegex(delim[0], r'^\* LIST \(\\Noselect\) "\." ""')
        self.ok(r, "5.1", 'LIST "" "*"')
        st = self.ok(r, "6.1", 'STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY '
                     'UNSEEN)')
        self.assertRegex(st[0], r"MESSAGES 3 ")
        self.ok(r, "7.1", "SELECT INBOX")
        hdr = self.ok(r, "8.1", "UID FETCH 1:* (INTERNALDATE UID RFC822.SIZE "
                      "FLAGS BODY.PEEK[HEADER.FIELDS (date subject from "
                      "to cc message-id in-reply-to references content-type "
                      "x-priority x-uniform-type-identifier "
                      "x-universally-unique-identifier list-id "
                      "list-unsubscribe bimi-indicator bimi-location "
                      "x-bimi-indicator-hash authentication-results "
                      "dkim-signature)])")
        self.assertEqual(len([ln for ln in hdr if "INTERNALDATE" in ln]), 3)
        self.ok(r, "9.1", "UID FETCH 1:* (BODYSTRUCTURE)")
        self.ok(r, "10.1", "UID SEARCH 1:* NOT DELETED")
        self.ok(r, "11.1", "NOOP")
        self.ok(r, "12.1", "LOGOUT")
        r.close()


if __name__ == "__main__":
    unittest.main()
