"""Password checks run off mailnode's event loop: while many IMAP logins
hash their passwords, a session already logged in still gets quick
answers; commands pipelined behind a login wait for it and are answered
in order (IMAP, POP3, SMTP); a client gone in the middle of a check is
cleaned up and the node goes on serving."""
import base64
import selectors
import socket
import struct
import subprocess
import threading
import time
import unittest

from nodetest import MAILNODE, NodeTestCase
from wire import Lines

LISTEN = ("smtp", "submission", "imap", "pop3")
CONCURRENT = 20


class LoginAsyncTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        # Many failures from 127.0.0.1 on purpose: the login limits
        # (test_login_limits.py) stay out of the way.
        self.n = self.node("mail1", listen=LISTEN,
                           extra_node="allow_plaintext_auth = yes\n"
                           "login_fail_limit = 0\nlogin_delay_ms = 0\n")

    def imap(self):
        c = Lines(self.n.ports["imap"], timeout=30)
        self.assertTrue(c.greeting.startswith("* OK"))
        return c

    def logins(self, conns, done):
        """Reads every connection's tagged LOGIN answer; records when the
        last one came and what they were."""
        sel = selectors.DefaultSelector()
        for c in conns:
            sel.register(c.s, selectors.EVENT_READ, c)
        answers = {}
        deadline = time.monotonic() + 60
        while len(answers) < len(conns) and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                c = key.data
                chunk = c.s.recv(65536)
                if not chunk:
                    answers[c] = "EOF"
                    sel.unregister(c.s)
                    continue
                c.buf += chunk
                if b"\r\n" in c.buf and c.buf.startswith(b"l "):
                    answers[c] = c.buf.split(b"\r\n")[0].decode()
                    sel.unregister(c.s)
        done["answers"] = list(answers.values())
        done["end"] = time.monotonic()

    def test_noop_answers_while_logins_hash(self):
        idle = self.imap()
        idle.send("a LOGIN alice@example.test demo\r\n")
        self.assertTrue(idle.until("a")[-1].startswith("a OK"))
        conns = [self.imap() for _ in range(CONCURRENT)]
        done = {}
        reader = threading.Thread(target=self.logins, args=(conns, done))
        reader.start()
        start = time.monotonic()
        for i, c in enumerate(conns):
            # Half right, half wrong passwords: both cost a crypt call.
            c.send("l LOGIN alice@example.test %s\r\n" %
                   ("demo" if i % 2 == 0 else "wrong"))
        noops = []
        n = 0
        while reader.is_alive() and n < 1000:
            n += 1
            t0 = time.monotonic()
            idle.send("n%d NOOP\r\n" % n)
            self.assertTrue(idle.until("n%d" % n)[-1].startswith("n%d OK" % n))
            noops.append(time.monotonic() - t0)
            time.sleep(0.01)
        reader.join(60)
        logins = done["end"] - start
        answers = done["answers"]
        self.assertEqual(len(answers), CONCURRENT, answers)
        self.assertEqual(sum(a.startswith("l OK") for a in answers),
                         CONCURRENT // 2, answers)
        self.assertEqual(sum(a.startswith("l NO [AUTHENTICATIONFAILED]")
                             for a in answers), CONCURRENT // 2, answers)
        # Enough NOOPs went while the logins were still hashing to tell.
        self.assertGreaterEqual(len(noops), 3, (noops, logins))
        worst = max(noops)
        self.assertLess(worst, 0.5, "NOOP waited %.3f s (logins %.3f s)" %
                        (worst, logins))
        self.assertLess(worst, logins / 2,
                        "NOOP waited %.3f s of the logins' %.3f s" %
                        (worst, logins))
        for c in conns:
            c.close()
        idle.close()

    def test_imap_pipelined_after_login_in_order(self):
        c = self.imap()
        c.send("a LOGIN alice@example.test wrong\r\nb NOOP\r\n"
               "c LOGIN alice@example.test demo\r\nd SELECT INBOX\r\n"
               "e NOOP\r\n")
        self.assertTrue(c.until("a")[-1].startswith(
            "a NO [AUTHENTICATIONFAILED]"))
        self.assertEqual(c.until("b")[-1], "b OK NOOP completed")
        self.assertTrue(c.until("c")[-1].startswith("c OK [CAPABILITY"))
        self.assertTrue(c.until("d")[-1].startswith("d OK [READ-WRITE]"))
        self.assertTrue(c.until("e")[-1].startswith("e OK"))
        # AUTHENTICATE PLAIN with its response pipelined.
        c2 = self.imap()
        plain = base64.b64encode(b"\0alice@example.test\0demo").decode()
        c2.send("a AUTHENTICATE PLAIN\r\n%s\r\nb SELECT INBOX\r\n" % plain)
        self.assertEqual(c2.line(), "+ ")
        self.assertTrue(c2.until("a")[-1].startswith("a OK"))
        self.assertTrue(c2.until("b")[-1].startswith("b OK [READ-WRITE]"))
        c.close()
        c2.close()

    def test_pop3_and_smtp_pipelined_after_login_in_order(self):
        p = Lines(self.n.ports["pop3"], timeout=30)
        self.assertTrue(p.greeting.startswith("+OK"))
        p.send("USER alice@example.test\r\nPASS wrong\r\nSTAT\r\n"
               "USER alice@example.test\r\nPASS demo\r\nSTAT\r\nQUIT\r\n")
        self.assertEqual(p.line(), "+OK Send PASS")
        self.assertEqual(p.line(), "-ERR [AUTH] Invalid credentials")
        self.assertEqual(p.line(), "-ERR STAT not valid in this state")
        self.assertEqual(p.line(), "+OK Send PASS")
        self.assertTrue(p.line().startswith("+OK Logged in"))
        self.assertEqual(p.line(), "+OK 0 0")
        self.assertTrue(p.line().startswith("+OK Bye"))
        p.close()

        s = Lines(self.n.ports["submission"], timeout=30)
        self.assertTrue(s.greeting.startswith("220"))
        s.send("EHLO client.test\r\n")
        while not s.line().startswith("250 "):
            pass
        bad = base64.b64encode(b"\0alice@example.test\0wrong").decode()
        good = base64.b64encode(b"\0alice@example.test\0demo").decode()
        s.send("AUTH PLAIN %s\r\nMAIL FROM:<alice@example.test>\r\n"
               "AUTH PLAIN %s\r\nMAIL FROM:<alice@example.test>\r\nQUIT\r\n"
               % (bad, good))
        self.assertTrue(s.line().startswith("535 5.7.8"))
        self.assertTrue(s.line().startswith("530"))  # not authenticated yet
        self.assertTrue(s.line().startswith("235 2.7.0"))
        self.assertTrue(s.line().startswith("250"))
        self.assertTrue(s.line().startswith("221"))
        s.close()

    def test_client_gone_during_the_check(self):
        for i in range(10):
            c = self.imap()
            c.send("a LOGIN alice@example.test demo\r\n")
            if i % 2:
                # A reset rather than a close.
                c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                               struct.pack("ii", 1, 0))
            c.close()
            p = Lines(self.n.ports["pop3"], timeout=30)
            p.send("USER bob@example.test\r\nPASS demo\r\n")
            p.close()
        time.sleep(0.5)
        self.assertIsNone(self.n.proc.poll(), self.n.log()[-2000:])
        c = self.imap()
        c.send("a LOGIN alice@example.test demo\r\n")
        self.assertTrue(c.until("a")[-1].startswith("a OK"))
        c.close()

    def test_auth_threads_config(self):
        one = self.node("mail2", listen=("imap",),
                        extra_node="allow_plaintext_auth = yes\n"
                                   "auth_threads = 1\n")
        c = Lines(one.ports["imap"], timeout=30)
        c.send("a LOGIN alice@example.test demo\r\n")
        self.assertTrue(c.until("a")[-1].startswith("a OK"))
        c.close()
        bad = self.node("mail3", start=False, extra_node="auth_threads = 17\n")
        r = subprocess.run([MAILNODE, "-t", "-c", bad.path],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("auth_threads", r.stderr)


if __name__ == "__main__":
    unittest.main()
