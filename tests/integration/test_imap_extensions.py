"""The IMAP extensions modern clients use, through Python's imaplib (raw
lines for what it cannot say): LITERAL+, NAMESPACE, UNSELECT, CHILDREN,
LIST-STATUS, ESEARCH and BINARY, and 4294967295, the largest number, as
a UID and a sequence number in FETCH, STORE, SEARCH and COPY."""
import base64
import imaplib
import re

from nodetest import NodeTestCase
from test_imap import simple
from wire import Lines

LISTEN = ("smtp", "imap")
MAX = 4294967295

BINARY_MSG = (b"From: carol@remote.test\r\nTo: alice@example.test\r\n"
              b"Subject: bin\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n"
              b"--B\r\nContent-Type: text/plain\r\n"
              b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
              b"caf=C3=A9 =3D ok\r\n"
              b"--B\r\nContent-Type: application/octet-stream\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\n" +
              base64.b64encode(b"\x00\x01\x02zero\x00") + b"\r\n"
              b"--B\r\nContent-Type: application/x-odd\r\n"
              b"Content-Transfer-Encoding: x-uuencode\r\n\r\n"
              b"begin 644 x\r\n"
              b"--B--\r\n")


class ImapExtensionsTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        self.n1 = self.node("mail1", listen=LISTEN,
                            extra_node="allow_plaintext_auth = yes\n")

    def imap(self, select="INBOX"):
        m = imaplib.IMAP4("127.0.0.1", self.n1.ports["imap"], timeout=10)
        self.addCleanup(m.shutdown)
        m.login("alice@example.test", "demo")
        if select:
            self.assertEqual(m.select(select)[0], "OK")
        return m

    def raw(self):
        r = Lines(self.n1.ports["imap"])
        self.addCleanup(r.close)
        self.assertRegex(r.cmd("a", "LOGIN alice@example.test demo")[-1],
                         r"^a OK")
        return r

    def test_capabilities(self):
        m = self.imap(select=None)
        for cap in ("LITERAL+", "NAMESPACE", "UNSELECT", "CHILDREN",
                    "LIST-STATUS", "ESEARCH", "BINARY"):
            self.assertIn(cap, m.capabilities)

    def test_literal_plus_needs_no_continuation(self):
        r = self.raw()
        msg = simple("lp")
        # everything in one write: the server must not wait to say "+"
        r.send(b"b APPEND {5+}\r\nINBOX (\\Seen) {%d+}\r\n%s\r\n"
               % (len(msg), msg))
        out = r.until("b")
        self.assertRegex(out[-1], r"^b OK \[APPENDUID \d+ 1\]", out)
        self.assertFalse(any(l.startswith("+") for l in out), out)
        # bounded as a synchronizing literal is: too large is refused
        r.send("c APPEND INBOX {999999999999+}\r\n")
        self.assertRegex(r.line(), r"^c (NO|BAD)")
        self.assertRegex(r.cmd("d", "NOOP")[-1], r"^d OK")

    def test_namespace(self):
        m = self.imap(select=None)
        typ, data = m.namespace()
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0], b'(("" ".")) NIL NIL')

    def test_unselect_leaves_deleted_messages(self):
        for i in range(2):
            self.deliver(self.n1, simple("u%d" % i))
        m = self.imap()
        m.store("1", "+FLAGS", "(\\Deleted)")
        typ, _ = m.unselect()
        self.assertEqual(typ, "OK")
        self.assertEqual(m.state, "AUTH")
        with self.assertRaises(imaplib.IMAP4.error):
            m.fetch("1", "(FLAGS)")
        m.select("INBOX")
        typ, data = m.search(None, "DELETED")
        self.assertEqual(data, [b"1"])  # not expunged by UNSELECT

    def test_children_and_list_status(self):
        self.deliver(self.n1, simple("one"))
        self.deliver(self.n1, simple("two"))
        m = self.imap(select=None)
        for name in ("Work", "Work.2026", "Other"):
            self.assertEqual(m.create(name)[0], "OK")
        m.append("Work.2026", "(\\Seen)", None, simple("w"))
        typ, data = m.list('""', "*")
        attrs = {re.search(rb'"([^"]+)"$', l).group(1).decode():
                 l.split(b")")[0] for l in data}
        self.assertIn(b"\\HasChildren", attrs["Work"])
        self.assertIn(b"\\HasNoChildren", attrs["Work.2026"])
        self.assertIn(b"\\HasNoChildren", attrs["Other"])
        typ, data = m._simple_command(
            "LIST", '""', "*", "RETURN", "(CHILDREN STATUS (MESSAGES "
            "UNSEEN UIDNEXT))")
        self.assertEqual(typ, "OK")
        lists = m.untagged_responses.pop("LIST")
        status = {re.match(rb'"?([^" ]+)"? ', s).group(1).decode(): s
                  for s in m.untagged_responses.pop("STATUS")}
        names = {"INBOX", "Work", "Work.2026", "Other", "Drafts", "Sent",
                 "Trash", "Junk"}  # the special-use folders are made
        self.assertEqual(len(lists), len(names))
        self.assertEqual(set(status), names)  # one STATUS each
        self.assertRegex(status["INBOX"],
                         rb"\(MESSAGES 2 UIDNEXT \d+ UNSEEN 2\)")
        self.assertRegex(status["Work.2026"],
                         rb"\(MESSAGES 1 UIDNEXT 2 UNSEEN 0\)")
        with self.assertRaisesRegex(imaplib.IMAP4.error, "BAD"):
            m._simple_command("LIST", '""', "*", "RETURN", "(BOGUS)")

    def test_esearch(self):
        for i in range(5):
            self.deliver(self.n1, simple("e%d" % i))
        m = self.imap()
        m.store("2,4,5", "+FLAGS", "(\\Flagged)")
        typ, _ = m._simple_command("SEARCH", "RETURN", "(MIN MAX COUNT ALL)",
                                   "FLAGGED")
        self.assertEqual(typ, "OK")
        got = m.untagged_responses.pop("ESEARCH")[0]
        self.assertRegex(got, rb'^\(TAG "[^"]+"\) MIN 2 MAX 5 COUNT 3 '
                         rb'ALL 2,4:5$')
        typ, _ = m.uid("SEARCH", "RETURN (COUNT) UNFLAGGED")
        got = m.untagged_responses.pop("ESEARCH")[0]
        self.assertRegex(got, rb'^\(TAG "[^"]+"\) UID COUNT 2$')
        typ, _ = m._simple_command("SEARCH", "RETURN", "()", "UNFLAGGED")
        got = m.untagged_responses.pop("ESEARCH")[0]
        self.assertRegex(got, rb'\) ALL 1,3$')
        typ, _ = m._simple_command("SEARCH", "RETURN", "(MIN COUNT)",
                                   "KEYWORD", "nothing")
        got = m.untagged_responses.pop("ESEARCH")[0]
        self.assertRegex(got, rb'\) COUNT 0$')  # no MIN when none
        with self.assertRaisesRegex(imaplib.IMAP4.error, "BAD"):
            m._simple_command("SEARCH", "RETURN", "(SAVE)", "ALL")

    def test_binary_fetch_and_append(self):
        self.deliver(self.n1, BINARY_MSG)
        m = self.imap()
        typ, data = m.fetch("1", "(BINARY.PEEK[1] BINARY.PEEK[2] "
                                 "BINARY.SIZE[2] BINARY.PEEK[2]<1.3>)")
        self.assertEqual(typ, "OK")
        text = b"".join(p if isinstance(p, bytes) else b"".join(p)
                        for p in data)
        self.assertIn("café = ok".encode(), text)
        self.assertIn(b"BINARY[2] ~{8}\x00\x01\x02zero\x00", text)
        self.assertIn(b"BINARY.SIZE[2] 8", text)
        self.assertIn(b"BINARY[2]<1> {3}\x01\x02z", text)
        typ, data = m.fetch("1", "(FLAGS)")
        self.assertNotIn(b"\\Seen", data[0])  # PEEK
        typ, data = m.fetch("1", "(BINARY[3])")  # x-uuencode
        self.assertEqual(typ, "NO")
        self.assertIn(b"[UNKNOWN-CTE]", data[-1])
        # APPEND with a literal8 holding a NUL
        r = self.raw()
        msg = b"Subject: nul\r\n\r\na\x00b\r\n"
        r.send(b"b APPEND INBOX ~{%d+}\r\n%s\r\n" % (len(msg), msg))
        self.assertRegex(r.until("b")[-1], r"^b OK")
        r.send("c SELECT INBOX\r\n")
        r.until("c")
        r.send("d FETCH 2 (BINARY.SIZE[1] BINARY.PEEK[1])\r\n")
        out = r.until("d")
        self.assertRegex(out[0], r"BINARY.SIZE\[1\] 5 BINARY\[1\] ~\{5\}")
        self.assertRegex(out[-1], r"^d OK")

    def test_the_largest_number_as_uid_and_sequence_number(self):
        for i in range(3):
            self.deliver(self.n1, simple("n%d" % i))
        m = self.imap()
        self.assertEqual(m.create("Copies")[0], "OK")
        # a set up to the largest number: every message, nothing more
        typ, data = m.fetch("1:%d" % MAX, "(UID)")
        self.assertEqual((typ, len(data)), ("OK", 3))
        typ, data = m.fetch("%d:2" % MAX, "(UID)")
        self.assertEqual((typ, len(data)), ("OK", 2))
        typ, data = m.uid("FETCH", "%d" % MAX, "(FLAGS)")
        self.assertEqual((typ, data), ("OK", [None]))
        typ, data = m.uid("FETCH", "2:%d" % MAX, "(FLAGS)")
        self.assertEqual((typ, len(data)), ("OK", 2))
        typ, data = m.store("%d:3" % MAX, "+FLAGS", "(\\Flagged)")
        self.assertEqual(typ, "OK")
        typ, data = m.uid("STORE", "%d" % MAX, "+FLAGS", "(\\Seen)")
        self.assertEqual(typ, "OK")
        typ, data = m.search(None, "FLAGGED")
        self.assertEqual(data, [b"3"])
        typ, data = m.search(None, "%d" % MAX)
        self.assertEqual(data, [b""])
        typ, data = m.search(None, "UID", "1:%d" % MAX)
        self.assertEqual(data, [b"1 2 3"])
        typ, data = m.uid("SEARCH", "UID", "%d" % MAX)
        self.assertEqual(data, [b""])
        typ, data = m.uid("COPY", "%d" % MAX, "Copies")
        self.assertEqual(typ, "OK")
        typ, data = m.copy("3:%d" % MAX, "Copies")
        self.assertEqual(typ, "OK")
        self.assertIn(b"COPYUID", data[0])
        typ, data = m.status("Copies", "(MESSAGES)")
        self.assertIn(b"MESSAGES 1", data[0])
        # one past it is no number
        with self.assertRaisesRegex(imaplib.IMAP4.error, "BAD"):
            m._simple_command("FETCH", "4294967296", "(UID)")


if __name__ == "__main__":
    import unittest
    unittest.main()
