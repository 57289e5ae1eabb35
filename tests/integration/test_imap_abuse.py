"""mailnode's IMAP under abuse, for real: pipelined floods, a client that
sends a byte at a time, too many errors, literals too large to take, and
many sessions dropped mid-command; the node answers what it can, ends
what it must, and keeps serving."""
import socket
import time
import unittest

from nodetest import NodeTestCase
from test_imap import simple
from wire import Lines

LISTEN = ("smtp", "imap")


class ImapAbuseTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        self.n = self.node("mail1", listen=LISTEN,
                           extra_node="allow_plaintext_auth = yes\n")

    def login(self):
        r = Lines(self.n.ports["imap"])
        self.assertRegex(r.cmd("l", "LOGIN alice@example.test demo")[-1],
                         r"^l OK")
        return r

    def test_pipelined_flood_answered_in_order(self):
        r = self.login()
        r.cmd("a", "APPEND INBOX {%d+}\r\n%s" % (
            len(simple("one")), simple("one").decode()))
        r.cmd("s", "SELECT INBOX")
        n = 3000
        r.send(b"".join(b"t%d %s\r\n" % (i, (b"NOOP", b"FETCH 1 (FLAGS)",
                                              b"SEARCH ALL")[i % 3])
                        for i in range(n)) + b"z LOGOUT\r\n")
        r.s.shutdown(socket.SHUT_WR)
        lines = r.rest().split("\r\n")
        tagged = [ln.split(" ", 2) for ln in lines
                  if ln.startswith("t") or ln.startswith("z ")]
        self.assertEqual([t[0] for t in tagged],
                         ["t%d" % i for i in range(n)] + ["z"])
        self.assertTrue(all(t[1] == "OK" for t in tagged))
        r.close()

    def test_byte_at_a_time_client(self):
        r = Lines(self.n.ports["imap"])
        for b in b"l LOGIN alice@example.test {4}\r\n":
            r.send(bytes([b]))
            time.sleep(0.005)
        self.assertTrue(r.line().startswith("+ "))
        for b in b"demo\r\nn NOOP\r\n":
            r.send(bytes([b]))
            time.sleep(0.005)
        self.assertRegex(r.until("l")[-1], r"^l OK")
        self.assertRegex(r.until("n")[-1], r"^n OK")
        r.close()

    def test_too_many_errors_end_the_session(self):
        r = Lines(self.n.ports["imap"])
        r.send(b"x FROB\r\n" * 60)
        out = r.rest()
        self.assertIn("* BYE", out)
        self.assertEqual(out.count("x BAD"), 50)
        r.close()

    def test_literals_too_large(self):
        r = self.login()
        # Synchronizing: refused before a byte is sent, the session lives.
        r.send(b"a APPEND INBOX {999999999}\r\n")
        self.assertRegex(r.line(), r"^a NO \[TOOBIG\]")
        self.assertRegex(r.cmd("n", "NOOP")[-1], r"^n OK")
        # Non-synchronizing: its bytes cannot be told from commands, so
        # the session ends.
        r.send(b"b APPEND INBOX {999999999+}\r\n")
        self.assertIn("BYE", r.rest())
        r.close()

    def test_sessions_dropped_mid_command(self):
        socks = []
        for i in range(60):
            s = socket.create_connection(("127.0.0.1", self.n.ports["imap"]),
                                         timeout=10)
            s.sendall((b"l LOGIN alice@example.test demo\r\n"
                       b"s SELECT INBOX\r\n", b"a APPEND INBOX {100}\r\nab",
                       b"f FETCH 1:* (BODY[")[i % 3])
            socks.append(s)
        for s in socks:
            s.close()
        r = self.login()
        self.assertRegex(r.cmd("s", "SELECT INBOX")[-1], r"^s OK")
        r.close()
        self.assertIsNone(self.n.proc.poll())


if __name__ == "__main__":
    unittest.main()
