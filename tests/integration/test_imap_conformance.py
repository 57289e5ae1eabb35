"""What RFC 3501 and its extensions say to the letter, where the
obvious reading is wrong: SEARCH's date keys compare the day as written,
ignoring time and zone (RFC 3501 6.4.4); ID takes values of 1024 octets
(RFC 2971); a FETCH of what another session expunged is NO
[EXPUNGEISSUED] (RFC 5530)."""
import re

from nodetest import NodeTestCase
from wire import Lines

LISTEN = ("smtp", "imap")


def dated(subject, date):
    return ("From: carol@remote.test\r\nTo: alice@example.test\r\n"
            "Subject: %s\r\nDate: %s\r\n\r\nhello\r\n" % (subject, date))


class ImapConformanceTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        self.n1 = self.node("mail1", listen=LISTEN,
                            extra_node="allow_plaintext_auth = yes\n")

    def session(self, select=True):
        r = Lines(self.n1.ports["imap"])
        self.addCleanup(r.close)
        self.ok(r, "a", "LOGIN alice@example.test demo")
        if select:
            self.ok(r, "b", "SELECT INBOX")
        return r

    def ok(self, r, tag, text):
        out = r.cmd(tag, text)
        self.assertRegex(out[-1], r"^%s OK" % tag, out)
        return out

    def append(self, r, tag, internal, message):
        data = message.encode()
        r.send('%s APPEND INBOX "%s" {%d+}\r\n' % (tag, internal, len(data)))
        r.send(data + b"\r\n")
        out = r.until(tag)
        self.assertRegex(out[-1], r"^%s OK" % tag, out)

    def search(self, r, tag, keys):
        out = self.ok(r, tag, "SEARCH " + keys)
        found = [ln for ln in out if ln.startswith("* SEARCH")]
        self.assertEqual(len(found), 1, out)
        return [int(n) for n in found[0].split()[2:]]

    # ---- SEARCH dates (RFC 3501 6.4.4) ----

    def test_sent_dates_compare_the_day_written_not_utc(self):
        r = self.session()
        # 1: late on the 25th in New York (26th in UTC); 2: early on the
        # 25th in Kiribati (24th in UTC); 3: just after midnight on the
        # 26th in Paris (25th in UTC).
        self.append(r, "c1", "25-Mar-2007 23:30:00 -0500",
                    dated("late", "Sun, 25 Mar 2007 23:30:00 -0500"))
        self.append(r, "c2", "25-Mar-2007 01:00:00 +1400",
                    dated("early", "Sun, 25 Mar 2007 01:00:00 +1400"))
        self.append(r, "c3", "26-Mar-2007 00:10:00 +0200",
                    dated("paris", "Mon, 26 Mar 2007 00:10:00 +0200"))
        self.ok(r, "d", "NOOP")
        self.assertEqual(self.search(r, "e1", "SENTON 25-Mar-2007"), [1, 2])
        self.assertEqual(self.search(r, "e2", "SENTON 26-Mar-2007"), [3])
        self.assertEqual(self.search(r, "e3", "SENTON 24-Mar-2007"), [])
        self.assertEqual(self.search(r, "e4", "SENTBEFORE 26-Mar-2007"),
                         [1, 2])
        self.assertEqual(self.search(r, "e5", "SENTSINCE 26-Mar-2007"), [3])
        self.assertEqual(self.search(r, "e6", "SENTSINCE 25-Mar-2007"),
                         [1, 2, 3])
        # INTERNALDATE keeps the instant and tells it in UTC; BEFORE, ON
        # and SINCE compare the day it tells.
        out = self.ok(r, "f", "FETCH 1:3 (INTERNALDATE)")
        days = [re.search(r'INTERNALDATE "([^ ]+) ', ln).group(1)
                for ln in out if "INTERNALDATE" in ln]
        self.assertEqual(days, ["26-Mar-2007", "24-Mar-2007", "25-Mar-2007"])
        self.assertEqual(self.search(r, "g1", "ON 26-Mar-2007"), [1])
        self.assertEqual(self.search(r, "g2", "ON 24-Mar-2007"), [2])
        self.assertEqual(self.search(r, "g3", "BEFORE 26-Mar-2007"), [2, 3])
        self.assertEqual(self.search(r, "g4", "SINCE 25-Mar-2007"), [1, 3])

    # ---- ID (RFC 2971) ----

    def test_id_takes_values_of_1024_octets(self):
        r = self.session(select=False)
        out = self.ok(r, "c", 'ID ("name" "%s" "version" "1")' % ("x" * 1024))
        self.assertIn('"name" "mailnode"', out[0])
        out = r.cmd("d", 'ID ("name" "%s")' % ("x" * 1025))
        self.assertRegex(out[-1], r"^d BAD")
        # 30 pairs at most, keys of 30 octets at most
        pairs = " ".join('"k%d" "v"' % i for i in range(30))
        self.ok(r, "e", "ID (%s)" % pairs)
        self.ok(r, "f", 'ID ("%s" NIL)' % ("k" * 30))

    # ---- EXPUNGEISSUED (RFC 5530) ----

    def test_fetch_of_a_message_expunged_elsewhere_is_expungeissued(self):
        n2 = self.node("mail2", listen=LISTEN,
                       extra_node="allow_plaintext_auth = yes\n")
        for i in range(3):
            self.deliver(self.n1, dated("m%d" % i,
                                        "Mon, 7 Dec 2026 10:00 +0000"))
        a = self.session()
        b = Lines(n2.ports["imap"])
        self.addCleanup(b.close)
        self.ok(b, "a", "LOGIN alice@example.test demo")
        self.assertIn("* 3 EXISTS", self.ok(b, "b", "SELECT INBOX"))
        self.ok(b, "c", "STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        self.ok(b, "d", "EXPUNGE")
        # a does not know yet: the files are gone when it reads them.
        out = a.cmd("c", "FETCH 1 (BODY.PEEK[TEXT])")
        self.assertRegex(out[-1], r"^c NO \[EXPUNGEISSUED\]", out)
        self.assertNotIn("EXPUNGE", "".join(out[:-1]))  # not during FETCH
        # Now a knows them gone, and still may not say so: the same.
        out = a.cmd("d", "FETCH 1:3 (FLAGS)")
        self.assertRegex(out[-1], r"^d NO \[EXPUNGEISSUED\]", out)
        self.assertEqual([ln.split(" (")[0] for ln in out if " FETCH " in ln],
                         ["* 3 FETCH"])
        # UID FETCH may tell the EXPUNGEs; then all is well again.
        out = self.ok(a, "e", "UID FETCH 1:* (FLAGS)")
        self.assertIn("* 2 EXPUNGE", out)
        self.assertIn("* 1 EXPUNGE", out)
        out = self.ok(a, "f", "FETCH 1 (BODY.PEEK[TEXT])")
        self.assertIn("hello", "".join(out))


if __name__ == "__main__":
    import unittest
    unittest.main()
