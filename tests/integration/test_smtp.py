"""mailnode's SMTP for real: smtplib against a real node, a real
redis-server and the shared config made by mailctl."""
import os
import random
import shutil
import smtplib
import threading
import time
import unittest

from lbdtest import wait_for
from nodetest import NodeTestCase, tls_context
from wire import Lines, exchange

MSG = b"From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: hi\r\n\r\nHello\r\n.leading dot\r\n"


class SmtpTest(NodeTestCase):
    def smtp(self, node, role="smtp"):
        c = smtplib.SMTP("127.0.0.1", node.ports[role], timeout=10)
        c.ehlo("client.test")
        return c

    def test_mx_delivers_to_local_user_durably_with_headers(self):
        n = self.node()
        c = self.smtp(n)
        self.assertNotIn("auth", c.esmtp_features)
        self.assertIn("starttls", c.esmtp_features)
        self.assertIn("pipelining", c.esmtp_features)
        self.assertIn("8bitmime", c.esmtp_features)
        self.assertIn("size", c.esmtp_features)
        code, msg = c.mail("carol@remote.test")
        self.assertEqual(code, 250)
        self.assertEqual(c.rcpt("Alice@Example.TEST")[0], 250)
        code, msg = c.data(MSG)
        self.assertEqual(code, 250, msg)
        c.quit()
        msgs = self.messages("alice@example.test")
        self.assertEqual(len(msgs), 1)
        m = msgs[0]
        self.assertTrue(m.startswith(b"Return-Path: <carol@remote.test>\r\nReceived: from client.test ([127.0.0.1])"), m[:200])
        self.assertIn(b"by mail1.example.test (mailnode mail1)", m)
        # Dot-unstuffed, byte-exact after the added headers.
        self.assertTrue(m.endswith(MSG.replace(b"\r\n..", b"\r\n.")), m)
        self.assertEqual(self.messages("bob@example.test"), [])

    def test_rejections(self):
        n = self.node()
        c = self.smtp(n)
        c.mail("carol@remote.test")
        code, msg = c.rcpt("nobody@example.test")
        self.assertEqual(code, 550)
        self.assertTrue(msg.startswith(b"5.1.1"), msg)
        code, msg = c.rcpt("someone@elsewhere.test")
        self.assertEqual(code, 554)
        self.assertTrue(msg.startswith(b"5.7.1"), msg)
        c.quit()

    def test_null_sender_and_alias_with_several_targets(self):
        n = self.node()
        c = self.smtp(n)
        self.assertEqual(c.mail("<>")[0], 250)
        self.assertEqual(c.rcpt("team@example.test")[0], 250)
        self.assertEqual(c.rcpt("alice@example.test")[0], 250)  # no dup
        self.assertEqual(c.data(b"Subject: bounce\r\n\r\nx\r\n")[0], 250)
        c.quit()
        self.assertEqual(len(self.messages("alice@example.test")), 1)
        self.assertEqual(len(self.messages("bob@example.test")), 1)
        self.assertTrue(self.messages("bob@example.test")[0].startswith(b"Return-Path: <>\r\n"))

    def test_submission_requires_auth_and_tls(self):
        n = self.node()
        c = self.smtp(n, "submission")
        self.assertNotIn("auth", c.esmtp_features)  # not before TLS
        code, msg = c.mail("alice@example.test")
        self.assertEqual(code, 530)
        self.assertTrue(msg.startswith(b"5.7.0"))
        code, msg = c.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABkZW1v")
        self.assertEqual(code, 538)
        self.assertTrue(msg.startswith(b"5.7.11"))
        c.starttls(context=tls_context())
        c.ehlo("client.test")
        self.assertIn("auth", c.esmtp_features)
        with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
            c.login("alice@example.test", "wrong")
        self.assertEqual(e.exception.smtp_code, 535)
        self.assertTrue(e.exception.smtp_error.startswith(b"5.7.8"))
        c.login("alice@example.test", "demo")
        self.assertEqual(c.mail("alice@example.test")[0], 250)
        # Authenticated: any domain; the remote copy goes to the queue
        # (test_queue.py follows it out).
        self.assertEqual(c.rcpt("friend@remote.test")[0], 250)
        self.assertEqual(c.rcpt("bob@example.test")[0], 250)
        self.assertEqual(c.data(b"Subject: s\r\n\r\nbody\r\n")[0], 250)
        c.quit()
        m = self.messages("bob@example.test")[0]
        self.assertIn(b"with ESMTPSA", m)

    def test_auth_login_on_implicit_tls(self):
        n = self.node(listen=("smtp", "smtps"))
        c = smtplib.SMTP_SSL("127.0.0.1", n.ports["smtps"], timeout=10,
                             context=tls_context())
        c.ehlo("client.test")
        c.login("bob@example.test", "demo")  # smtplib prefers... any mech
        c.quit()
        c = smtplib.SMTP_SSL("127.0.0.1", n.ports["smtps"], timeout=10,
                             context=tls_context())
        c.ehlo("client.test")
        code, _ = c.docmd("AUTH", "LOGIN")
        self.assertEqual(code, 334)
        code, _ = c.docmd("Ym9iQGV4YW1wbGUudGVzdA==")  # bob@example.test
        self.assertEqual(code, 334)
        code, _ = c.docmd("ZGVtbw==")  # demo
        self.assertEqual(code, 235)
        c.quit()

    def test_limits(self):
        n = self.node(extra_node="max_message_size = 10000\nmax_recipients = 2\n")
        c = self.smtp(n)
        code, msg = c.mail("carol@remote.test", ["SIZE=20000"])
        self.assertEqual(code, 552)
        self.assertTrue(msg.startswith(b"5.3.4"))
        c.mail("carol@remote.test")
        c.rcpt("alice@example.test")
        c.rcpt("bob@example.test")
        code, msg = c.rcpt("team@example.test")
        self.assertEqual(code, 452)
        self.assertTrue(msg.startswith(b"4.5.3"))
        code, msg = c.data(b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n" * 0 + (b"y" * 78 + b"\r\n") * 200)
        self.assertEqual(code, 552)
        self.assertTrue(msg.startswith(b"5.3.4"))
        # The session goes on.
        self.assertEqual(c.noop()[0], 250)
        c.quit()
        self.assertEqual(self.messages("alice@example.test"), [])
        out = exchange(n.ports["smtp"], b"EHLO x\r\nNOOP " + b"a" * 5000 + b"\r\nNOOP\r\n")
        self.assertIn("500 5.5.2", out)
        self.assertIn("250 2.0.0 Ok", out.split("500 5.5.2")[1])

    def test_nul_in_a_command_and_negative_size_are_syntax_errors(self):
        n = self.node()
        out = exchange(n.ports["smtp"],
                       b"EHLO x\0y\r\nHELO a\0\r\nEHLO client.test\r\n"
                       b"MAIL FROM:<carol@remote.test> SIZE=-1\r\n"
                       b"MAIL FROM:<carol@remote.test> SIZE=+5\r\n"
                       b"MAIL FROM:<carol@remote.test> SIZE=\r\n"
                       b"MAIL FROM:<carol@remote.test> SIZE=99999999999999"
                       b"999999999\r\n"
                       b"MAIL FROM:<carol@remote.test> SIZE=10\r\n"
                       b"QUIT\r\n")
        lines = out.split("\r\n")
        self.assertRegex(lines[0], r"^501 ")
        self.assertRegex(lines[1], r"^501 ")
        self.assertNotIn("Hello x", out)
        self.assertRegex(lines[2], r"^250-")
        rest = [ln for ln in lines if not ln.startswith("250-")][3:]
        self.assertRegex(rest[0], r"^501 5\.5\.4 Bad SIZE")
        self.assertRegex(rest[1], r"^501 5\.5\.4 Bad SIZE")
        self.assertRegex(rest[2], r"^501 5\.5\.4 Bad SIZE")
        self.assertRegex(rest[3], r"^552 5\.3\.4")
        self.assertRegex(rest[4], r"^250 2\.1\.0")

    def test_too_many_errors_closes(self):
        n = self.node()
        out = exchange(n.ports["smtp"], b"BOGUS\r\n" * 20)
        self.assertIn("421 4.7.0", out)
        self.assertEqual(out.count("500 5.5.2"), 10)

    def test_bare_lf_never_ends_data(self):
        n = self.node()
        smuggle = (b"EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
                   b"Subject: one\r\n\r\nfirst\n.\nMAIL FROM:<evil@remote.test>\n"
                   b"\r\n.\nRCPT TO:<bob@example.test>\r\n.\r\nQUIT\r\n")
        out = exchange(n.ports["smtp"], smuggle)
        self.assertEqual(out.count("250 2.0.0 Ok: queued"), 1, out)
        self.assertEqual(self.messages("bob@example.test"), [])
        m = self.messages("alice@example.test")[0]
        self.assertIn(b"MAIL FROM:<evil@remote.test>", m)
        self.assertIn(b"RCPT TO:<bob@example.test>", m)

    def test_data_line_over_the_limit_is_kept_whole(self):
        # A 10,000-byte message line (over the 4,096 a line is taken
        # whole) comes in pieces and is stored whole, as Postfix does;
        # the CRLF.CRLF right after it ends DATA at once (it used to be
        # missed: the client waited for the 600 s timeout). After such a
        # line ended by a bare LF, ".\r\n" is no end (it is content,
        # dot-unstuffed), and a long line starting with "." is
        # dot-unstuffed too.
        n = self.node()
        c = Lines(n.ports["smtp"])
        c.send(b"EHLO x\r\nMAIL FROM:<a@remote.test>\r\n"
               b"RCPT TO:<alice@example.test>\r\nDATA\r\n")
        while not c.line().startswith("354"):
            pass
        c.s.settimeout(1.0)
        z, y = b"z" * 10000, b"..y" + b"y" * 9997
        t0 = time.monotonic()
        c.send(b"Subject: long\r\n\r\n" + z + b"\n.\r\n" + y +
               b"\r\n.\r\n")
        self.assertTrue(c.line().startswith("250 2.0.0 Ok"))
        self.assertLess(time.monotonic() - t0, 1.0)
        c.send(b"NOOP " + b"n" * 5000 + b"\r\nNOOP\r\n")
        self.assertEqual(c.line(), "500 5.5.2 Line too long")
        self.assertTrue(c.line().startswith("250 "))
        c.close()
        m = self.messages("alice@example.test")[0]
        self.assertTrue(m.endswith(b"Subject: long\r\n\r\n" + z +
                                   b"\r\n\r\n" + y[1:] + b"\r\n"), m[-200:])

    def test_pipelining(self):
        n = self.node()
        out = exchange(n.ports["smtp"],
                  b"EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\n"
                  b"RCPT TO:<bob@example.test>\r\nDATA\r\nSubject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        self.assertIn("250 2.0.0 Ok: queued", out)
        self.assertIn("221 2.0.0", out)
        self.assertEqual(len(self.messages("bob@example.test")), 1)

    def test_proxy_header_gives_the_client_address(self):
        n = self.node(extra_node="proxy_protocol = on\nproxy_trusted = 127.0.0.0/8\n")
        out = exchange(n.ports["smtp"],
                  b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 25\r\nEHLO x\r\nMAIL FROM:<a@remote.test>\r\n"
                  b"RCPT TO:<alice@example.test>\r\nDATA\r\nSubject: p\r\n\r\nb\r\n.\r\nQUIT\r\n",
                  greeting=False)
        self.assertIn("250 2.0.0 Ok: queued", out)
        m = self.messages("alice@example.test")[0]
        self.assertIn(b"Received: from x ([192.0.2.7])", m)

    def test_store_away_spools_then_delivers(self):
        n = self.node(extra_node="spool_retry_s = 1\n")
        # The shared filesystem "goes away": the domain tree is replaced by
        # a file, so no Maildir can be made or written.
        dom = os.path.join(self.store, "example.test")
        os.makedirs(dom, exist_ok=True)
        shutil.rmtree(dom)
        with open(dom, "w") as f:
            f.write("not a directory")
        c = self.smtp(n)
        c.mail("carol@remote.test")
        c.rcpt("alice@example.test")
        code, msg = c.data(b"Subject: spooled\r\n\r\nkept\r\n")
        self.assertEqual(code, 250, msg)
        c.quit()
        self.assertIn("spooled", n.log())
        os.unlink(dom)
        wait_for(lambda: len(self.messages("alice@example.test")) == 1, 15,
                 what="spool delivery")
        self.assertIn(b"kept", self.messages("alice@example.test")[0])

    def test_restarted_node_finishes_its_spool(self):
        n = self.node(extra_node="spool_retry_s = 600\n")
        dom = os.path.join(self.store, "example.test")
        shutil.rmtree(dom, ignore_errors=True)
        with open(dom, "w") as f:
            f.write("x")
        c = self.smtp(n)
        c.mail("carol@remote.test")
        c.rcpt("bob@example.test")
        self.assertEqual(c.data(b"Subject: s\r\n\r\nafter restart\r\n")[0], 250)
        c.quit()
        n.kill()
        os.unlink(dom)
        n.start()
        wait_for(lambda: len(self.messages("bob@example.test")) == 1, 10,
                 what="delivery at start")

    def test_sigkill_loses_no_acknowledged_message(self):
        n = self.node()
        acked = []
        stop = threading.Event()

        def sender():
            i = 0
            while not stop.is_set() and i < 2000:
                i += 1
                try:
                    c = smtplib.SMTP("127.0.0.1", n.ports["smtp"], timeout=5)
                    c.ehlo("x")
                    c.mail("s@remote.test")
                    c.rcpt("alice@example.test")
                    tag = "msg-%d-%d" % (os.getpid(), i)
                    code, _ = c.data(("Subject: %s\r\n\r\n%s\r\n" % (tag, tag)).encode())
                    if code == 250:
                        acked.append(tag)
                    c.quit()
                except (OSError, smtplib.SMTPException):
                    time.sleep(0.05)

        t = threading.Thread(target=sender)
        t.start()
        wait_for(lambda: len(acked) >= 20, 30, what="20 messages")
        time.sleep(random.uniform(0, 0.2))
        n.kill()
        stop.set()
        t.join(30)
        stored = b"".join(self.messages("alice@example.test"))
        lost = [tag for tag in acked if tag.encode() not in stored]
        self.assertEqual(lost, [])
        n.start()

    def test_redis_stopped_mail_still_flows(self):
        n = self.node()
        self.redis.pause()
        try:
            for i in range(3):
                t0 = time.monotonic()
                c = self.smtp(n)
                c.mail("carol@remote.test")
                self.assertEqual(c.rcpt("alice@example.test")[0], 250)
                self.assertEqual(c.data(b"Subject: r\r\n\r\nx\r\n")[0], 250)
                c.quit()
                self.assertLess(time.monotonic() - t0, 1.5)
        finally:
            self.redis.resume()
        self.assertEqual(len(self.messages("alice@example.test")), 3)

    def test_new_user_usable_within_a_second(self):
        n = self.node()
        self.mailctl("user", "add", "dave@example.test", "--password-stdin", input="pw\n")
        def accepted():
            c = self.smtp(n)
            c.mail("carol@remote.test")
            code = c.rcpt("dave@example.test")[0]
            c.quit()
            return code == 250
        wait_for(accepted, 1.5, step=0.1, what="dave known")

    def test_garbage_and_floods_never_crash(self):
        n = self.node()
        rnd = random.Random(11)
        for i in range(40):
            blob = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 4000)))
            exchange(n.ports["smtp"], blob)
        exchange(n.ports["submission"], b"AUTH PLAIN " + b"A" * 100000 + b"\r\n")
        exchange(n.ports["smtp"], b"NOOP\r\n" * 5000)
        exchange(n.ports["smtp"], b"x" * 200000)
        self.assertIsNone(n.proc.poll())
        c = self.smtp(n)
        self.assertEqual(c.noop()[0], 250)
        c.quit()

    def test_config_check(self):
        import subprocess
        from nodetest import MAILNODE
        n = self.node(start=False)
        r = subprocess.run([MAILNODE, "-t", "-c", n.path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(n.path, "a") as f:
            f.write("bogus = 1\n")
        r = subprocess.run([MAILNODE, "-t", "-c", n.path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        lines = open(n.path).read().count("\n")
        self.assertIn('%s:%d: unknown key "bogus" in [listen]' % (n.path, lines), r.stderr)
        # Garbage and mutated configs: an answer, never a crash.
        good = open(n.path, "rb").read()
        rnd = random.Random(5)
        for i in range(40):
            b = bytearray(good)
            for _ in range(rnd.randrange(1, 20)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
            if i % 4 == 0:
                b = bytearray(rnd.randrange(256) for _ in range(rnd.randrange(1, 2000)))
            path = os.path.join(self.tmp, "fuzz.ini")
            with open(path, "wb") as f:
                f.write(bytes(b))
            r = subprocess.run([MAILNODE, "-t", "-c", path], capture_output=True, timeout=10)
            self.assertIn(r.returncode, (0, 2), r.stderr[-500:])


if __name__ == "__main__":
    unittest.main()
