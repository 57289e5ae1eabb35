"""Bounces and delay notices the queue stores for a local sender, read
over IMAP (and heard by IDLE)."""
import email
import imaplib
import smtplib
import time
import unittest

from lbdtest import wait_for
import redistest
from wire import Lines
from queuetest import BODY, QueueTestCase


class BounceTest(QueueTestCase):
    def inbox(self, node):
        """alice's INBOX over IMAP, parsed."""
        c = imaplib.IMAP4("127.0.0.1", node.ports["imap"], timeout=10)
        c.login("alice@example.test", "demo")
        c.select("INBOX")
        typ, data = c.search(None, "ALL")
        out = []
        for num in data[0].split():
            typ, msg = c.fetch(num, "(RFC822)")
            out.append(email.message_from_bytes(msg[0][1]))
        c.logout()
        return out

    def node_with_imap(self, extra=""):
        return self.outbound_node(
            extra=extra, listen=("smtp", "submission", "http", "imap"))

    def test_rejected_recipient_bounced_to_local_sender(self):
        n = self.node_with_imap()
        self.submit(n, ["ok@remote.test", "reject-me@remote.test"])
        wait_for(lambda: self.messages("alice@example.test"), 15,
                 what="the bounce in alice's INBOX")
        wait_for(lambda: not self.queued(), 10, what="queue emptied")
        self.assertEqual(len(self.mx.delivered), 1)
        [dsn] = self.inbox(n)
        self.assertEqual(dsn["Return-Path"], "<>")
        self.assertEqual(dsn["From"],
                         "Mail Delivery System <MAILER-DAEMON@mail1.example.test>")
        self.assertEqual(dsn.get_content_type(), "multipart/report")
        self.assertEqual(dsn.get_param("report-type"), "delivery-status")
        text, status, headers = dsn.get_payload()
        self.assertEqual(text.get_content_type(), "text/plain")
        self.assertIn("<reject-me@remote.test>: 550 5.1.1", text.get_payload())
        self.assertEqual(status.get_content_type(), "message/delivery-status")
        blocks = status.get_payload()
        self.assertEqual(blocks[0]["Reporting-MTA"], "dns; mail1.example.test")
        self.assertEqual(len(blocks), 2)  # only the failed recipient
        self.assertEqual(blocks[1]["Final-Recipient"], "rfc822; reject-me@remote.test")
        self.assertEqual(blocks[1]["Action"], "failed")
        self.assertEqual(blocks[1]["Status"], "5.1.1")
        self.assertIn("550 5.1.1", blocks[1]["Diagnostic-Code"])
        self.assertEqual(headers.get_content_type(), "text/rfc822-headers")
        self.assertIn("Subject: outbound", headers.get_payload())
        self.assertNotIn("line one", headers.get_payload())

    def test_idle_hears_the_bounce_at_once(self):
        """The runner stores a bounce through the store, which tells the
        notice channel: IDLE on the sender's INBOX hears it within a
        second, not at its next poll."""
        n = self.node_with_imap()
        self.deliver(n, b"Subject: first\r\n\r\nx\r\n")  # the Maildir
        r = Lines(n.ports["imap"])
        self.addCleanup(r.close)
        r.cmd("a", "LOGIN alice@example.test demo")
        self.assertIn("* 1 EXISTS", r.cmd("b", "SELECT INBOX"))
        r.send("c IDLE\r\n")
        self.assertTrue(r.line().startswith("+ "))
        sub = redistest.Subscriber(self.redis.port, "ms:imap")
        self.addCleanup(sub.close)
        self.submit(n, ["reject-me@remote.test"])
        wait_for(lambda: len(self.maildir("alice@example.test")) == 2, 15,
                 step=0.005, what="the bounce in alice's INBOX")
        stored = time.monotonic()
        line = r.line()
        took = time.monotonic() - stored
        self.assertEqual(line, "* 2 EXISTS")
        self.assertLess(took, 1.0, "IDLE heard it after %.2fs" % took)
        self.assertEqual(sub.message(2.0), "alice@example.test\tINBOX")
        r.send("DONE\r\n")
        self.assertRegex(r.until("c")[-1], r"^c OK")

    def test_null_sender_never_bounced(self):
        n = self.outbound_node(extra="relay_networks = 127.0.0.0/8\n")
        c = smtplib.SMTP("127.0.0.1", n.ports["smtp"], timeout=10)
        c.sendmail("<>", ["reject-me@remote.test"], BODY)
        c.quit()
        wait_for(lambda: "status=bounced" in n.log(), 15, what="the failure")
        wait_for(lambda: not self.queued(), 10, what="queue emptied")
        time.sleep(1.5)
        self.assertEqual(self.queued(), [])
        self.assertNotIn("notification", n.log())

    def test_delay_notice_once_then_expiry_bounce(self):
        self.mx.mode = "defer"
        n = self.node_with_imap(extra="delay_warning_s = 1\n"
                                "queue_lifetime_s = 6\n")
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: self.messages("alice@example.test"), 15,
                 what="the delay notice")
        [notice] = self.inbox(n)
        self.assertIn("Delayed Mail", notice["Subject"])
        blocks = notice.get_payload()[1].get_payload()
        self.assertEqual(blocks[1]["Action"], "delayed")
        self.assertEqual(blocks[1]["Status"], "4.3.0")
        # Retried every 1-2 s until it expires: no second notice, then
        # one bounce.
        wait_for(lambda: len(self.messages("alice@example.test")) == 2, 20,
                 what="the expiry bounce")
        wait_for(lambda: not self.queued(), 10, what="queue emptied")
        bounce = [m for m in self.inbox(n) if "Undelivered" in m["Subject"]][0]
        blocks = bounce.get_payload()[1].get_payload()
        self.assertEqual(blocks[1]["Status"], "5.4.7")
        self.assertEqual(len(self.messages("alice@example.test")), 2)
        self.assertGreaterEqual(n.log().count("status=deferred"), 2)


if __name__ == "__main__":
    unittest.main()
