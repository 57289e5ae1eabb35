"""mailnode's POP3 for real: poplib against real nodes over one store, a
real redis-server holding the maildrop lock, mail delivered by smtplib."""
import base64
import os
import poplib
import socket
import unittest

from lbdtest import wait_for
from nodetest import tls_context
from wire import exchange
from pop3test import LISTEN, Pop3TestCase, as_sent


class Pop3Test(Pop3TestCase):
    def test_capa_stls_user_pass_and_retr_byte_exact(self):
        n = self.node(listen=LISTEN)
        body1 = (b"From: carol@remote.test\r\nSubject: one\r\n\r\n"
                 b"Hello\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n")
        body2 = b"Subject: two\r\n\r\nline1\r\nline2\r\nline3\r\n"
        self.deliver(n, rcpt="alice@example.test", body=body1)
        self.deliver(n, rcpt="alice@example.test", body=body2)
        p = poplib.POP3("127.0.0.1", n.ports["pop3"], timeout=10)
        self.assertTrue(p.getwelcome().startswith(b"+OK"))
        caps = p.capa()
        for c in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "STLS",
                  "PIPELINING", "IMPLEMENTATION"):
            self.assertIn(c, caps)
        self.assertNotIn("USER", caps)
        self.assertNotIn("SASL", caps)
        p.stls(context=tls_context())
        caps = p.capa()
        self.assertIn("USER", caps)
        self.assertEqual(caps["SASL"], ["PLAIN"])
        self.assertNotIn("STLS", caps)
        p.user("Alice@Example.test")
        self.assertTrue(p.pass_("demo").startswith(b"+OK"))
        stored = self.stored("alice@example.test")
        self.assertEqual(len(stored), 2)
        count, total = p.stat()
        self.assertEqual(count, 2)
        self.assertEqual(total, sum(len(as_sent(m)) for m in stored))
        resp, lines, _ = p.list()
        self.assertEqual([l.decode() for l in lines],
                         ["%d %d" % (i + 1, len(as_sent(m)))
                          for i, m in enumerate(stored)])
        self.assertEqual(p.list(2), b"+OK 2 %d" % len(as_sent(stored[1])))
        for i, m in enumerate(stored):
            resp, lines, octets = p.retr(i + 1)
            # poplib undoes the dot-stuffing; the lines must match exactly.
            self.assertEqual(b"\r\n".join(lines) + b"\r\n", as_sent(m))
        self.assertIn(b".leading dot", stored[0])
        # TOP: the header, the blank line, and n lines of the body.
        resp, lines, _ = p.top(2, 2)
        head, _, bodypart = as_sent(stored[1]).partition(b"\r\n\r\n")
        self.assertEqual(b"\r\n".join(lines),
                         head + b"\r\n\r\nline1\r\nline2")
        resp, lines, _ = p.top(2, 0)
        self.assertEqual(b"\r\n".join(lines), head + b"\r\n")
        self.quit(p)

    def test_retr_is_dot_stuffed_on_the_wire(self):
        n = self.node(listen=LISTEN, extra_node="allow_plaintext_auth = yes\n")
        self.deliver(n, rcpt="bob@example.test", body=
                     b"Subject: dots\r\n\r\n.a\r\n..b\r\n.\r\nc\r\n")
        out = exchange(n.ports["pop3"],
                  b"USER bob@example.test\r\nPASS demo\r\nRETR 1\r\n"
                  b"TOP 1 1\r\nQUIT\r\n")
        self.assertIn("\r\n\r\n..a\r\n...b\r\n..\r\nc\r\n.\r\n", out)
        self.assertIn("Subject: dots\r\n\r\n..a\r\n.\r\n+OK", out)

    def test_bare_lf_files_are_sent_and_sized_with_crlf(self):
        n = self.node(listen=LISTEN)
        self.deliver(n, rcpt="bob@example.test", body=b"Subject: x\r\n\r\nx\r\n")
        # A message written by some other tool, bare LFs, no final newline.
        (path,) = self.maildir("bob@example.test")
        new = os.path.join(os.path.dirname(os.path.dirname(path)), "new")
        with open(os.path.join(new, "123.lf.host"), "wb") as f:
            f.write(b"Subject: lf\n\n.dot\nlast")
        p = self.pop(n, user="bob@example.test")
        resp, lines, _ = p.list()
        resp, lines2, octets = p.retr(2)
        self.assertEqual(lines2, [b"Subject: lf", b"", b".dot", b"last"])
        want = len(b"Subject: lf\r\n\r\n.dot\r\nlast\r\n")
        self.assertEqual(lines[1], b"2 %d" % want)
        self.quit(p)

    def test_retr_of_a_message_bigger_than_the_output_buffer(self):
        n = self.node(listen=LISTEN)
        line = b"x" * 998 + b"\r\n"
        body = b"Subject: big\r\n\r\n" + (b"." + line) * 6000
        self.deliver(n, rcpt="bob@example.test", body=body)
        p = self.pop(n, user="bob@example.test")
        (stored,) = self.stored("bob@example.test")
        self.assertGreater(len(stored), 5 * 1024 * 1024)
        self.assertEqual(p.list(1), b"+OK 1 %d" % len(stored))
        resp, lines, _ = p.retr(1)
        self.assertEqual(b"\r\n".join(lines) + b"\r\n", stored)
        self.quit(p)

    def test_auth_plain_with_initial_response_and_continuation(self):
        n = self.node(listen=LISTEN)
        p = self.pop(n, how="plain")
        self.assertEqual(p.stat(), (0, 0))
        self.quit(p)
        p = poplib.POP3("127.0.0.1", n.ports["pop3"], timeout=10)
        p.stls(context=tls_context())
        resp = p._shortcmd("AUTH")  # the mechanism list
        self.assertTrue(resp.startswith(b"+OK"))
        self.assertEqual(p._getline()[0], b"PLAIN")
        self.assertEqual(p._getline()[0], b".")
        p._putcmd("AUTH PLAIN")
        self.assertEqual(p._getline()[0], b"+ ")
        p._putcmd(base64.b64encode(b"\0bob@example.test\0demo").decode())
        self.assertTrue(p._getresp().startswith(b"+OK"))
        self.quit(p)
        # Cancelled with "*", then a bad password with [AUTH].
        p = poplib.POP3("127.0.0.1", n.ports["pop3"], timeout=10)
        p.stls(context=tls_context())
        p._putcmd("AUTH PLAIN")
        p._getline()
        p._putcmd("*")
        self.assertTrue(p._getline()[0].startswith(b"-ERR"))
        with self.assertRaises(poplib.error_proto) as e:
            p._shortcmd("AUTH PLAIN " + base64.b64encode(
                b"\0bob@example.test\0wrong").decode())
        self.assertIn(b"-ERR [AUTH]", e.exception.args[0])
        self.quit(p)

    def test_bad_password_and_plaintext_refused(self):
        n = self.node(listen=LISTEN)
        p = poplib.POP3("127.0.0.1", n.ports["pop3"], timeout=10)
        with self.assertRaises(poplib.error_proto) as e:
            p.user("alice@example.test")
        self.assertIn(b"-ERR [AUTH]", e.exception.args[0])
        with self.assertRaises(poplib.error_proto) as e:
            p._shortcmd("AUTH PLAIN " + base64.b64encode(
                b"\0alice@example.test\0demo").decode())
        self.assertIn(b"-ERR [AUTH]", e.exception.args[0])
        with self.assertRaises(poplib.error_proto):
            p.stat()  # not logged in
        p.stls(context=tls_context())
        p.user("alice@example.test")
        with self.assertRaises(poplib.error_proto) as e:
            p.pass_("wrong")
        self.assertIn(b"-ERR [AUTH]", e.exception.args[0])
        p.user("nobody@example.test")
        with self.assertRaises(poplib.error_proto) as e:
            p.pass_("demo")
        self.assertIn(b"-ERR [AUTH]", e.exception.args[0])
        # A third failure closes the session.
        p.user("alice@example.test")
        with self.assertRaises(poplib.error_proto):
            p.pass_("wrong")
        p.close()
        # The lock was never taken: a good login works at once.
        p = self.pop(n)
        self.quit(p)

    def test_dele_quit_removes_rset_and_drop_keep(self):
        n = self.node(listen=LISTEN)
        for i in range(3):
            self.deliver(n, rcpt="alice@example.test", body=b"Subject: %d\r\n\r\nx\r\n" % i)
        p = self.pop(n)
        key = "ms:pop3lock:alice@example.test"
        self.assertTrue(0 < int(self.redis.cli("PTTL", key)) <= 10000)
        uidl = p.uidl()[1]
        p.dele(1)
        with self.assertRaises(poplib.error_proto):
            p.retr(1)  # deleted
        self.assertEqual(p.stat()[0], 2)
        p.rset()
        self.assertEqual(p.stat()[0], 3)
        p.dele(2)
        self.quit(p)
        self.assertEqual(len(self.maildir("alice@example.test")), 2)
        self.released("alice@example.test")
        # A dropped connection deletes nothing (and frees the lock).
        p = self.pop(n)
        self.assertEqual([l for l in p.uidl()[1]],
                         [b"1 " + uidl[0].split()[1], b"2 " + uidl[2].split()[1]])
        p.dele(1)
        p.dele(2)
        p.close()
        self.assertEqual(len(self.maildir("alice@example.test")), 2)
        p = wait_for(lambda: self.try_pop(n), 15, what="lock freed")
        p.dele(1)
        p.dele(2)
        self.assertIn(b"2 messages deleted", self.quit(p))
        self.assertEqual(self.maildir("alice@example.test"), [])

    def test_implicit_tls_on_pop3s(self):
        n = self.node(listen=LISTEN)
        self.deliver(n, rcpt="alice@example.test", body=b"Subject: s\r\n\r\nsecure\r\n")
        p = poplib.POP3_SSL("127.0.0.1", n.ports["pop3s"], timeout=10,
                            context=tls_context())
        self.assertNotIn("STLS", p.capa())
        p.user("alice@example.test")
        p.pass_("demo")
        self.assertEqual(p.retr(1)[1][-1], b"secure")
        self.quit(p)

    def test_garbage_oversize_and_flood_keep_the_node_up(self):
        n = self.node(listen=LISTEN, extra_node="allow_plaintext_auth = yes\n")
        self.deliver(n, rcpt="alice@example.test", body=b"Subject: a\r\n\r\nx\r\n")
        out = exchange(n.ports["pop3"], b"\x00\xff garbage\r\nFOO\r\n" +
                  b"A" * 100000 + b"\r\nSTAT\r\nLIST x\r\nRETR\r\n"
                  b"TOP 1\r\nAUTH FOO\r\nQUIT\r\n")
        self.assertIn("-ERR", out)
        self.assertIn("+OK Bye", out)
        out = exchange(n.ports["pop3"], b"USER alice@example.test\r\n"
                  b"PASS demo\r\n" + b"LIST 99\r\nRETR 0\r\nDELE -1\r\n"
                  b"TOP 1 -1\r\nLIST 18446744073709551617\r\n" +
                  b"NOOP\r\nUIDL 1\r\nSTAT\r\n" * 3000 + b"QUIT\r\n")
        self.assertEqual(out.count("+OK 1 "), 6000)  # UIDL 1, STAT
        self.assertIn("+OK Bye, 0 messages deleted", out)
        # Too many errors end the session.
        out = exchange(n.ports["pop3"], b"BAD\r\n" * 100)
        self.assertIn("Too many errors", out)
        # Many sessions at once, dropped without QUIT.
        socks = [socket.create_connection(("127.0.0.1", n.ports["pop3"]),
                                          timeout=10) for _ in range(50)]
        for s in socks:
            s.sendall(b"USER alice@example.test\r\nPASS demo\r\nSTAT\r\n")
        for s in socks:
            s.close()
        p = wait_for(lambda: self.try_pop(n), 15, what="lock free again")
        self.assertEqual(p.stat()[0], 1)
        self.quit(p)
        self.assertIsNone(n.proc.poll())


if __name__ == "__main__":
    unittest.main()
