"""The outbound queue's retries: deferrals, timeouts, a remote that
drops or is down, per-recipient results, PIPELINING and SIZE, a
delivery in flight at SIGTERM, scans that re-read nothing."""
import smtplib
import time
import unittest

from lbdtest import wait_for
from mxtest import ScriptedMX
from queuetest import BODY, QueueTestCase


class RetryTest(QueueTestCase):
    def test_one_recipient_of_three_rejected(self):
        n = self.outbound_node()
        self.submit(n, ["a@remote.test", "reject-me@remote.test", "b@remote.test"])
        wait_for(lambda: self.mx.delivered, 15, what="remote delivery")
        self.assertEqual(self.mx.delivered[0][1], ["a@remote.test", "b@remote.test"])
        wait_for(lambda: not self.queued(), 10, what="queue emptied")
        log = n.log()
        self.assertIn("to=<reject-me@remote.test>", log)
        self.assertRegex(log, r"to=<reject-me@remote\.test>.*status=bounced "
                         r"\(550 5\.1\.1")
        self.assertEqual(len(self.mx.delivered), 1)

    def test_deferred_then_delivered(self):
        self.mx.mode = "defer"
        n = self.outbound_node()
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: "status=deferred" in n.log(), 15, what="deferral")
        self.assertIn("451 4.3.0 try again later", n.log())
        self.assertEqual(len(self.queued()), 1)

        def envelope():
            with open(self.queued()[0]) as f:
                return f.read()
        # The log line comes just before the envelope is rewritten.
        wait_for(lambda: "rcpt carol@remote.test deferred 1 " in envelope(),
                 5, what="the envelope rewritten")
        self.assertEqual(self.health(n)["queue"]["depth"], 1)
        self.mx.mode = "accept"
        wait_for(lambda: self.mx.delivered, 15, what="delivery after retry")
        wait_for(lambda: not self.queued(), 10, what="queue emptied")
        self.assertEqual(len(self.mx.delivered), 1)
        q = self.health(n)["queue"]
        self.assertEqual((q["depth"], q["oldest_s"], q["sent"], q["bounced"]),
                         (0, 0, 1, 0))
        self.assertGreaterEqual(q["deferred"], 1)

    def test_remote_silent_at_the_dot_times_out(self):
        self.mx.hold_data = 30
        n = self.outbound_node(extra="smtp_timeout_s = 1\n")
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: "status=deferred" in n.log(), 15, what="timeout")
        self.assertRegex(n.log(), r"status=deferred \(451 4\.4\.2 conversation "
                         r"timed out with mx1\.remote\.test\[127\.0\.0\.1\]:\d+ "
                         r"while sending message body\)")
        self.mx.hold_data = 0
        wait_for(lambda: self.mx.delivered, 15, what="delivery on retry")

    def test_remote_drops_mid_data(self):
        self.mx.drop_in_data = True
        n = self.outbound_node()
        self.submit(n, ["carol@remote.test"], body=BODY * 2000)
        wait_for(lambda: "status=deferred" in n.log(), 15, what="deferral")
        self.assertRegex(n.log(), r"status=deferred \(451 4\.4\.2 lost "
                         r"connection with mx1\.remote\.test\[127\.0\.0\.1\]:\d+ "
                         r"while sending message body\)")
        self.mx.drop_in_data = False
        wait_for(lambda: self.mx.delivered, 15, what="delivery on retry")
        self.assertTrue(self.mx.delivered[0][2].endswith(BODY * 2000))

    def test_pipelining_size_and_8bitmime(self):
        self.mx.ehlo_ext = ["PIPELINING", "SIZE 1000000", "8BITMIME"]
        self.mx.expect_pipelining = True  # a client waiting per reply hangs
        n = self.outbound_node(extra="smtp_timeout_s = 3\n")
        self.submit(n, ["a@remote.test", "reject-me@remote.test", "b@remote.test"])
        wait_for(lambda: self.mx.delivered, 15, what="pipelined delivery")
        self.assertEqual(self.mx.delivered[0][1], ["a@remote.test", "b@remote.test"])
        size = len(self.mx.delivered[0][2])
        self.assertEqual(self.mx.mail_params, ["SIZE=%d BODY=8BITMIME" % size])
        wait_for(lambda: "to=<reject-me@remote.test>" in n.log(), 5, what="log")
        self.assertRegex(n.log(), r"to=<reject-me@remote\.test>.*status=bounced "
                         r"\(550 5\.1\.1")
        # 7-bit, no extensions offered: no parameters (another next hop,
        # the same MX: the idle connection, whose EHLO offered them, is
        # not for it).
        self.mx.ehlo_ext, self.mx.expect_pipelining = [], False
        self.submit(n, ["c@implicit.test"], body=b"Subject: plain\r\n\r\nascii\r\n")
        wait_for(lambda: len(self.mx.delivered) == 2, 15, what="plain delivery")
        self.assertEqual(self.mx.mail_params[1], "")

    def test_over_the_remote_size_limit_bounces(self):
        self.mx.ehlo_ext = ["SIZE 100"]
        n = self.outbound_node()
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: "status=bounced" in n.log(), 15, what="the refusal")
        self.assertIn("552 5.3.4 message of", n.log())
        self.assertEqual(self.mx.mail_params, [])  # not even tried

    def test_sigterm_lets_a_delivery_in_flight_finish(self):
        self.mx.hold_data = 1.5
        n = self.outbound_node()
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: self.mx.transactions == 1, 15, what="the final dot")
        self.assertEqual(n.stop(), 0)  # SIGTERM, grace_s 10
        self.assertEqual(len(self.mx.delivered), 1)
        self.assertIn("status=sent", n.log())
        self.assertEqual(self.queued(), [])

    def test_scan_reads_only_changed_envelopes(self):
        self.mx.mode = "defer"
        n = self.outbound_node(extra="queue_retry_min_s = 3600\n"
                               "queue_retry_max_s = 3600\n")
        c = smtplib.SMTP("127.0.0.1", n.ports["submission"], timeout=30)
        c.login("alice@example.test", "demo")
        for i in range(100):
            c.sendmail("alice@example.test", ["carol@remote.test"], BODY)
        c.quit()
        wait_for(lambda: n.log().count("status=deferred") == 100, 60,
                 what="100 deferrals")
        time.sleep(1.5)

        def reads():
            with open("/proc/%d/io" % n.proc.pid) as f:
                return int([l for l in f if l.startswith("syscr")][0].split()[1])
        before = reads()
        time.sleep(3)  # three scans of 100 deferred messages
        self.assertLess(reads() - before, 100)

    def test_remote_down_deferred(self):
        self.mx.stop()
        n = self.outbound_node()
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: "status=deferred" in n.log(), 15, what="deferral")
        self.assertRegex(n.log(), r"relay=mx1\.remote\.test\[127\.0\.0\.1\]:\d+, "
                         r"delay=\d+, status=deferred \(451 4\.4\.1 connect to")
        self.mx = ScriptedMX()  # for tearDown


if __name__ == "__main__":
    unittest.main()
