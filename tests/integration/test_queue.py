"""Outbound mail through the shared queue: submission to remote domains
delivered by the mta role's runners to a scripted remote MX found
through a test DNS server, routes and forwarding (queuetest.py holds
the fixture; retries, roles, failover, bounces, TLS and DKIM have
their own test_queue_*.py)."""
import smtplib
import unittest

from lbdtest import wait_for
from wire import exchange
from queuetest import BODY, QueueTestCase


class SubmissionTest(QueueTestCase):
    def test_delivered_byte_exact_with_added_headers(self):
        n = self.outbound_node()
        self.submit(n, ["carol@remote.test", "bob@example.test"])
        wait_for(lambda: self.mx.delivered, 15, what="remote delivery")
        sender, rcpts, data = self.mx.delivered[0]
        self.assertEqual(sender, "alice@example.test")
        self.assertEqual(rcpts, ["carol@remote.test"])
        # The node's Received:, then Message-ID: and Date: (missing from
        # the submission), then the message exactly as submitted.
        self.assertTrue(data.startswith(b"Received: from "), data[:80])
        self.assertTrue(data.endswith(BODY), data)
        head = data[:-len(BODY)]
        self.assertEqual(head.count(b"\r\nMessage-ID: <"), 1, head)
        self.assertEqual(head.count(b"\r\nDate: "), 1, head)
        self.assertNotIn(b"Return-Path:", data)
        # The local copy has the same added headers, with Return-Path:.
        local = self.messages("bob@example.test")[0]
        self.assertTrue(local.startswith(b"Return-Path: <alice@example.test>"))
        self.assertIn(head.split(b"\r\nMessage-ID: ")[1].split(b"\r\n")[0], local)
        wait_for(lambda: not self.queued(), 10, what="queue emptied")
        wait_for(lambda: "status=sent" in n.log(), 5, what="log line")
        self.assertRegex(n.log(), r"[0-9A-F]{19}: to=<carol@remote\.test>, "
                         r"relay=mx1\.remote\.test\[127\.0\.0\.1\]:%d, "
                         r"delay=\d+, status=sent \(250 2\.0\.0 queued here\)"
                         % self.mx.port)

    def test_existing_message_id_kept(self):
        n = self.outbound_node()
        body = b"Message-ID: <x@y>\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n" + BODY
        self.submit(n, ["carol@remote.test"], body=body)
        wait_for(lambda: self.mx.delivered, 15, what="remote delivery")
        data = self.mx.delivered[0][2]
        self.assertEqual(data.count(b"Message-ID:"), 1)
        self.assertEqual(data.count(b"\nDate:"), 1)

    def test_foreign_sender_refused(self):
        n = self.outbound_node()
        c = smtplib.SMTP("127.0.0.1", n.ports["submission"], timeout=10)
        c.login("alice@example.test", "demo")
        code, msg = c.mail("bob@example.test")
        self.assertEqual(code, 553)
        self.assertTrue(msg.startswith(b"5.7.1"), msg)
        code, msg = c.mail("someone@remote.test")
        self.assertEqual(code, 553)
        # an alias that leads to alice is hers
        self.assertEqual(c.mail("team@example.test")[0], 250)
        c.quit()

    def test_mx_relay_networks(self):
        n = self.outbound_node(extra="relay_networks = 127.0.0.0/8\n")
        c = smtplib.SMTP("127.0.0.1", n.ports["smtp"], timeout=10)
        c.ehlo("app.example.test")
        c.mail("app@example.test")
        self.assertEqual(c.rcpt("carol@remote.test")[0], 250)
        c.quit()
        m = self.node("mail2", extra_node="relay_networks = 10.0.0.0/8\n")
        c = smtplib.SMTP("127.0.0.1", m.ports["smtp"], timeout=10)
        c.ehlo("app.example.test")
        c.mail("app@example.test")
        code, msg = c.rcpt("carol@remote.test")
        self.assertEqual(code, 554)
        self.assertTrue(msg.startswith(b"5.7.1"))
        c.quit()

    def test_bare_cr_and_lf_leave_as_crlf(self):
        n = self.outbound_node(extra="relay_networks = 127.0.0.0/8\n")
        out = exchange(n.ports["smtp"],
                       b"EHLO x\r\nMAIL FROM:<app@example.test>\r\n"
                       b"RCPT TO:<carol@remote.test>\r\nDATA\r\n"
                       b"Subject: cr\r\n\r\none\rtwo\nthree\r\n.\r\nQUIT\r\n")
        self.assertIn("250 2.0.0 Ok: queued as", out)
        wait_for(lambda: self.mx.delivered, 15, what="delivery")
        self.assertTrue(self.mx.delivered[0][2].endswith(
            b"Subject: cr\r\n\r\none\r\ntwo\r\nthree\r\n"),
            self.mx.delivered[0][2])

    def test_implicit_mx_and_static_route(self):
        n = self.outbound_node(
            sections="[route]\npartner.test = 127.0.0.1:%d\n" % self.mx.port)
        self.submit(n, ["x@implicit.test", "y@partner.test"])
        wait_for(lambda: len(self.mx.delivered) == 2, 15, what="two deliveries")
        got = sorted(r for d in self.mx.delivered for r in d[1])
        self.assertEqual(got, ["x@implicit.test", "y@partner.test"])

    def test_null_mx_fails_at_once(self):
        n = self.outbound_node()
        self.submit(n, ["x@nullmx.test"])
        wait_for(lambda: "status=bounced" in n.log(), 15, what="null MX")
        self.assertIn("556 5.1.10", n.log())
        wait_for(lambda: not self.queued(), 5, what="queue emptied")


class RoutingTest(QueueTestCase):
    def test_mx_preference_order_with_a_dead_first_host(self):
        self.dns.zone["pref.test"] = [("MX", 20, "mx1.remote.test"),
                                         ("MX", 10, "dead.pref.test")]
        self.dns.zone["dead.pref.test"] = [("A", "127.0.0.2")]
        n = self.outbound_node()
        self.submit(n, ["x@pref.test"])
        wait_for(lambda: self.mx.delivered, 15, what="delivery")
        asked = [q for q, t in self.dns.questions if t == 1]
        self.assertLess(asked.index("dead.pref.test"),
                        asked.index("mx1.remote.test"))
        wait_for(lambda: "to=<x@pref.test>" in n.log(), 5, what="log")
        self.assertRegex(n.log(), r"to=<x@pref\.test>, relay=mx1\.remote\.test"
                         r"\[127\.0\.0\.1\]:\d+, delay=\d+, status=sent")

    def test_relayhost_takes_every_remote_domain(self):
        n = self.outbound_node(extra="relayhost = 127.0.0.1:%d\n" % self.mx.port)
        self.submit(n, ["x@nowhere.test", "y@remote.test"])
        wait_for(lambda: len(self.mx.delivered) == 2, 15, what="deliveries")
        asked = [q for q, t in self.dns.questions if t == 15]
        self.assertEqual(asked, [])  # no MX lookup at all
        self.assertRegex(n.log(), r"to=<x@nowhere\.test>, relay=127\.0\.0\.1"
                         r"\[127\.0\.0\.1\]:%d" % self.mx.port)

    def test_redis_away_deliveries_go_on(self):
        n = self.outbound_node()
        self.submit(n, ["first@remote.test"])
        wait_for(lambda: self.mx.delivered, 15, what="first delivery")
        self.redis.stop()
        self.submit(n, ["second@remote.test"])
        wait_for(lambda: len(self.mx.delivered) == 2, 15,
                 what="delivery with Redis away (flock alone)")
        wait_for(lambda: not self.queued(), 5, what="queue emptied")
        self.redis.start()

    def test_relay_networks_through_proxy_headers(self):
        n = self.outbound_node(
            extra="proxy_protocol = on\nproxy_trusted = 127.0.0.0/8\n"
                  "relay_networks = 192.0.2.0/24, 127.0.0.0/8\n")

        def rcpt(header):
            return exchange(n.ports["smtp"], header +
                            b"EHLO x\r\nMAIL FROM:<app@example.test>\r\n"
                            b"RCPT TO:<carol@remote.test>\r\nQUIT\r\n",
                            greeting=False)
        self.assertIn("250 2.1.5",
                      rcpt(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 25\r\n"))
        self.assertIn("554 5.7.1",
                      rcpt(b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 25\r\n"))
        # The balancer's own address (no client behind it) never relays,
        # though 127.0.0.0/8 is listed.
        self.assertIn("554 5.7.1", rcpt(b"PROXY UNKNOWN\r\n"))


class ForwardTest(QueueTestCase):
    def setUp(self):
        super().setUp()
        self.dns.zone["elsewhere.test"] = [("MX", 10, "mx1.remote.test")]
        r = self.mailctl("alias", "add", "fwd@example.test", "carol@remote.test")
        self.assertIn("forwarded", r.stderr)
        self.mailctl("alias", "add", "mixed@example.test", "bob@example.test")
        self.mailctl("alias", "add", "mixed@example.test", "dave@remote.test")

    def mx_send(self, node, sender, rcpts, body=BODY):
        c = smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=10)
        c.sendmail(sender, rcpts, body)
        c.quit()

    def test_forwarded_with_srs_and_bounce_path_back(self):
        n = self.outbound_node()
        self.mx_send(n, "Dan.X@elsewhere.test", ["fwd@example.test", "mixed@example.test"])
        wait_for(lambda: self.mx.delivered, 15, what="forwarded delivery")
        sender, rcpts, data = self.mx.delivered[0]
        self.assertEqual(sorted(rcpts), ["carol@remote.test", "dave@remote.test"])
        self.assertRegex(sender, r"^SRS0=[A-Z2-7]{6}=[A-Z2-7]{2}="
                         r"elsewhere\.test=Dan\.X@example\.test$")
        self.assertTrue(data.endswith(BODY))
        self.assertEqual(len(self.messages("bob@example.test")), 1)
        # The destination bounces to the SRS address: back to Dan.
        self.mx_send(n, "<>", [sender], body=b"Subject: bounce\r\n\r\nx\r\n")
        wait_for(lambda: len(self.mx.delivered) == 2, 15, what="the bounce back")
        self.assertEqual(self.mx.delivered[1][:2], ("", ["Dan.X@elsewhere.test"]))
        # A forged hash (or a stale day) is refused.
        h = sender[5:11]
        forged = sender.replace(h, "AAAAAA" if h != "AAAAAA" else "BBBBBB", 1)
        c = smtplib.SMTP("127.0.0.1", n.ports["smtp"], timeout=10)
        c.ehlo("x")
        c.mail("")
        self.assertEqual(c.rcpt(forged)[0], 550)
        c.quit()

    def test_local_sender_forwarded_unchanged(self):
        n = self.outbound_node()
        self.submit(n, ["fwd@example.test"])
        wait_for(lambda: self.mx.delivered, 15, what="forwarded delivery")
        self.assertEqual(self.mx.delivered[0][:2],
                         ("alice@example.test", ["carol@remote.test"]))


if __name__ == "__main__":
    unittest.main()
