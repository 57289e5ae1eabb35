"""SORT and THREAD (RFC 5256) through Python's imaplib on a real node:
the keys read from the messages' headers, REVERSE, UID SORT, and both
threading algorithms."""
import imaplib

from nodetest import NodeTestCase

LISTEN = ("smtp", "imap")

# (From, To, Subject, Date, Message-ID, References, body size)
MESSAGES = [
    ("Zed <zed@remote.test>", "bob@remote.test", "Plans",
     "Mon, 3 Feb 2025 10:00:00 +0000", "<p1@remote.test>", None, 10),
    ("amy@remote.test", "carl@remote.test", "Re: Plans",
     "Mon, 3 Feb 2025 09:00:00 -0500", "<p2@remote.test>",
     "<p1@remote.test>", 900),
    ("Mo <mo@remote.test>", "al@remote.test", "Lunch",
     "Sun, 2 Feb 2025 12:00:00 +0000", "<l1@remote.test>", None, 300),
    ("bea@remote.test", "zoe@remote.test", "[team] Re: Plans",
     "Tue, 4 Feb 2025 08:00:00 +0000", "<p3@remote.test>",
     "<p1@remote.test> <p2@remote.test>", 600),
]


def message(frm, to, subject, date, msgid, refs, size):
    head = ("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
            "Message-ID: %s\r\n" % (frm, to, subject, date, msgid))
    if refs:
        head += "References: %s\r\n" % refs
    return (head + "\r\n" + "x" * size + "\r\n").encode()


class ImapSortTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        extra = "allow_plaintext_auth = yes\n"
        self.n = self.node("mail1", listen=LISTEN, extra_node=extra)
        for m in MESSAGES:
            self.deliver(self.n, message(*m))
        self.c = imaplib.IMAP4("127.0.0.1", self.n.ports["imap"],
                               timeout=10)
        self.addCleanup(self.c.logout)
        self.c.login("alice@example.test", "demo")
        self.assertEqual(self.c.select("INBOX")[0], "OK")

    def sort(self, criteria, search="ALL", uid=False):
        if uid:
            typ, data = self.c.uid("SORT", criteria, "UTF-8", search)
        else:
            typ, data = self.c.sort(criteria, "UTF-8", search)
        self.assertEqual(typ, "OK", data)
        return [int(x) for x in data[0].split()]

    def test_sort_keys(self):
        self.assertIn("SORT", self.c.capabilities)
        # 2's 09:00 -0500 is 14:00 UTC: after 1's 10:00 +0000
        self.assertEqual(self.sort("(DATE)"), [3, 1, 2, 4])
        self.assertEqual(self.sort("(REVERSE DATE)"), [4, 2, 1, 3])
        self.assertEqual(self.sort("(ARRIVAL)"), [1, 2, 3, 4])
        self.assertEqual(self.sort("(SIZE)"), [1, 3, 4, 2])
        self.assertEqual(self.sort("(FROM)"), [2, 4, 3, 1])  # amy bea mo zed
        self.assertEqual(self.sort("(TO)"), [3, 1, 2, 4])  # al bob carl zoe
        # base subjects: Lunch, then three of Plans by sequence number
        self.assertEqual(self.sort("(SUBJECT)"), [3, 1, 2, 4])
        self.assertEqual(self.sort("(SUBJECT REVERSE SIZE)"), [3, 2, 4, 1])
        self.assertEqual(self.sort("(CC SIZE)"), [1, 3, 4, 2])  # no Cc
        # with a search program, and by UID
        self.assertEqual(self.sort("(SIZE)", "LARGER 700"), [4, 2])
        uids = self.sort("(REVERSE SIZE)", uid=True)
        self.assertEqual(len(uids), 4)

    def test_sort_errors(self):
        typ, data = self.c._simple_command("SORT", "(SIZE)", "KOI8-R", "ALL")
        self.assertEqual(typ, "NO")
        with self.assertRaises(imaplib.IMAP4.error):
            self.c.sort("(NOSUCHKEY)", "UTF-8", "ALL")

    def test_thread(self):
        self.assertIn("THREAD=REFERENCES", self.c.capabilities)
        self.assertIn("THREAD=ORDEREDSUBJECT", self.c.capabilities)
        typ, data = self.c.thread("REFERENCES", "UTF-8", "ALL")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(data[0], b"(3)(1 2 4)")
        typ, data = self.c.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
        self.assertEqual(typ, "OK", data)
        self.assertEqual(data[0], b"(3)(1 (2)(4))")
        typ, data = self.c.uid("THREAD", "REFERENCES", "UTF-8", "SUBJECT",
                               "Lunch")
        self.assertEqual(typ, "OK", data)
        self.assertRegex(data[0].decode(), r"^\(\d+\)$")
