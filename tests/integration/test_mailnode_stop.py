"""mailnode's graceful stop: SIGTERM closes the listeners, an SMTP
transaction in progress still completes, idle HTTP keep-alive connections
close at once, IMAP sessions (IDLE or between commands) get BYE, those
busy with a command (logins still hashing) get it once it is answered,
and the node exits 0."""
import http.client
import imaplib
import signal
import smtplib
import socket
import time

from lbdtest import wait_for
from nodetest import NodeTestCase
from wire import Lines


class StopTest(NodeTestCase):
    def test_sigterm_lets_sessions_finish(self):
        n = self.node(listen=("smtp", "http", "imap"),
                      extra_node="allow_plaintext_auth = yes\n")
        im = imaplib.IMAP4("127.0.0.1", n.ports["imap"], timeout=10)
        im.login("alice@example.test", "demo")
        im.select("INBOX")
        im.send(b"i1 IDLE\r\n")
        self.assertTrue(im.readline().startswith(b"+ "))
        c = smtplib.SMTP("127.0.0.1", n.ports["smtp"], timeout=10)
        c.ehlo("x")
        c.mail("carol@remote.test")
        c.rcpt("alice@example.test")
        h = http.client.HTTPConnection("127.0.0.1", n.ports["http"], timeout=5)
        h.request("GET", "/health")
        self.assertEqual(h.getresponse().status, 200)  # now idle, kept alive
        t0 = time.monotonic()
        n.proc.send_signal(signal.SIGTERM)

        def refused():
            try:
                socket.create_connection(("127.0.0.1", n.ports["smtp"]), 1).close()
                return False
            except OSError:
                return True
        wait_for(refused, 5, what="listener closed")
        self.assertEqual(im.readline(),
                         b"* BYE [UNAVAILABLE] Server shutting down\r\n")
        # The transaction in progress completes during the grace period.
        code, _ = c.data(b"Subject: during stop\r\n\r\nstill delivered\r\n")
        self.assertEqual(code, 250)
        c.quit()
        # No session left: the idle HTTP connection did not hold the stop.
        self.assertEqual(n.proc.wait(5), 0)
        self.assertLess(time.monotonic() - t0, 4)
        self.assertEqual(len(self.messages("alice@example.test")), 1)
        h.close()
        im.shutdown()

    def test_sigterm_ends_imap_sessions_busy_logging_in(self):
        # One hashing thread and ten logins at once: most are still
        # queued or hashing when SIGTERM comes (each hash takes tens of
        # ms). Each is answered, then told BYE; none holds the stop for
        # the grace period (30 s).
        n = self.node(listen=("imap",),
                      extra_node="allow_plaintext_auth = yes\n"
                                 "auth_threads = 1\n")
        conns = [Lines(n.ports["imap"], timeout=20) for _ in range(10)]
        for i, c in enumerate(conns):
            c.send("l%d LOGIN alice@example.test demo\r\n" % i)
        time.sleep(0.05)
        t0 = time.monotonic()
        n.proc.send_signal(signal.SIGTERM)
        for i, c in enumerate(conns):
            out = c.rest()
            self.assertIn("* BYE [UNAVAILABLE] Server shutting down", out)
            c.close()
        self.assertEqual(n.proc.wait(10), 0)
        self.assertLess(time.monotonic() - t0, 10)
