"""Outbound mail through the shared queue: submission to remote domains,
the mta role's runners delivering to a scripted remote MX found through a
test DNS server, retries, per-recipient results, claims across nodes."""
import email
import fcntl
import glob
import imaplib
import json
import os
import re
import smtplib
import subprocess
import sys
import time
import unittest
import urllib.request

from dnstest import ZoneServer
from lbdtest import wait_for
import redistest
from wire import Lines, exchange
from mxtest import ScriptedMX
from nodetest import NodeTestCase

BODY = (b"From: alice@example.test\r\nTo: carol@remote.test\r\n"
        b"Subject: outbound\r\n\r\nline one\r\n.leading dot\r\n"
        b"\xc3\xa9t\xc3\xa9 8bit\r\n")


class QueueTestCase(NodeTestCase):
    def setUp(self):
        super().setUp()
        self.mx = ScriptedMX()
        self.dns = ZoneServer({
            "remote.test": [("MX", 10, "mx1.remote.test")],
            "mx1.remote.test": [("A", "127.0.0.1")],
            "implicit.test": [("A", "127.0.0.1")],
            "nullmx.test": [("MX", 0, ".")],
        })
        self.queue = os.path.join(self.store, ".queue")

    def tearDown(self):
        self.mx.stop()
        self.dns.stop()
        super().tearDown()

    def outbound_node(self, name="mail1", roles=None, extra="", **kw):
        cfg = ("allow_plaintext_auth = yes\nresolver = 127.0.0.1:%d\n"
               "mx_port = %d\nqueue_retry_min_s = 1\nqueue_retry_max_s = 2\n"
               % (self.dns.port, self.mx.port))
        if roles:
            cfg += "roles = %s\n" % roles
        return self.node(name, extra_node=cfg + extra, **kw)

    def submit(self, node, rcpts, body=BODY, sender="alice@example.test",
               user="alice@example.test"):
        c = smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=10)
        c.login(user, "demo")
        c.sendmail(sender, rcpts, body)
        c.quit()

    def queued(self):
        return sorted(glob.glob(os.path.join(self.queue, "*.env")))

    def health(self, node):
        with urllib.request.urlopen("http://127.0.0.1:%d/health" %
                                    node.ports["http"], timeout=5) as r:
            return json.loads(r.read())


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


class RolesTest(QueueTestCase):
    def test_listener_outside_roles_is_a_config_error(self):
        n = self.outbound_node(roles="mx, mta", start=False)
        n.proc = None
        import subprocess
        from nodetest import MAILNODE
        r = subprocess.run([MAILNODE, "-c", n.path], capture_output=True,
                           text=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, r"%s:\d+: \[listen\]: submission is a "
                         r"listener of role submission" % n.path)

    def test_only_mta_nodes_deliver(self):
        front = self.outbound_node("front", roles="mx, submission, web")
        self.submit(front, ["carol@remote.test"])
        self.assertEqual(len(self.queued()), 1)
        time.sleep(2.5)
        self.assertEqual(self.mx.delivered, [])
        self.assertEqual(self.health(front)["queue"]["depth"], 1)
        self.assertNotIn("sent", self.health(front)["queue"])  # no runner
        self.assertGreaterEqual(self.health(front)["queue"]["oldest_s"], 2)
        mta = self.outbound_node("mta", roles="mta, web", listen=("http",))
        wait_for(lambda: self.mx.delivered, 15, what="delivery by the mta")
        self.assertIn("status=sent", mta.log())
        self.assertNotIn("status=", front.log())

    def test_two_mta_nodes_never_deliver_twice(self):
        self.mx.hold_data = 0.05
        a = self.outbound_node("mta1")
        b = self.outbound_node("mta2")
        for i in range(30):
            body = b"Message-ID: <m%d@example.test>\r\n" % i + BODY
            self.submit(a if i % 2 else b, ["carol@remote.test"], body=body)
        wait_for(lambda: len(self.mx.delivered) >= 30, 60, what="30 deliveries")
        wait_for(lambda: not self.queued(), 10, what="queue emptied")
        time.sleep(1)
        ids = [d[2].split(b"Message-ID: <")[1].split(b">")[0]
               for d in self.mx.delivered]
        self.assertEqual(len(ids), 30)
        self.assertEqual(len(set(ids)), 30)

    def test_mta_sweeps_what_a_dead_node_left_uncommitted(self):
        """ID.msg and ID.env.tmp with no ID.env, a day old: a node died
        between writing and committing (its client never had a 250). An
        mta node removes them and says so; a young pair (perhaps being
        committed elsewhere) stays."""
        os.makedirs(self.queue, exist_ok=True)
        now = int(time.time())
        old = "%08X%05X%06X" % (now - 2 * 86400, 1, 0xABCDEF)
        young = "%08X%05X%06X" % (now - 5, 2, 0xABCDEF)
        for qid in (old, young):
            for suffix in (".msg", ".env.tmp"):
                with open(os.path.join(self.queue, qid + suffix), "w") as f:
                    f.write("Subject: x\r\n\r\nx\r\n")
        n = self.outbound_node(roles="mta, web", listen=("http",))
        wait_for(lambda: old + ": removed: never committed" in n.log(), 10,
                 what="the sweep's log line")
        left = sorted(os.listdir(self.queue))
        self.assertNotIn(old + ".msg", left)
        self.assertNotIn(old + ".env.tmp", left)
        self.assertIn(young + ".msg", left)
        self.assertIn(young + ".env.tmp", left)

    def test_many_messages_one_mta_killed_nothing_lost(self):
        """500 queued messages, a slow remote, two mta nodes, one SIGKILLed
        while delivering: the other finishes, nothing is lost, and only
        messages the remote had accepted when the kill came (at most the
        dead node's deliveries in flight) may arrive twice."""
        total, lease = 500, 3
        front = self.outbound_node("front", roles="mx, submission, web")
        c = smtplib.SMTP("127.0.0.1", front.ports["submission"], timeout=30)
        c.login("alice@example.test", "demo")
        for i in range(total):
            c.sendmail("alice@example.test", ["carol@remote.test"],
                       b"Message-ID: <m%d@example.test>\r\n" % i + BODY)
        c.quit()
        self.assertEqual(len(self.queued()), total)
        self.mx.hold_data = 0.05
        extra = "queue_lease_s = %d\n" % lease
        a = self.outbound_node("mta1", roles="mta, web", listen=("http",), extra=extra)
        b = self.outbound_node("mta2", roles="mta, web", listen=("http",), extra=extra)
        wait_for(lambda: len(self.mx.delivered) >= total // 3, 120, what="a third")
        a.kill()
        killed = time.monotonic()

        def unique():
            return {d[2].split(b"Message-ID: <")[1].split(b">")[0]
                    for d in list(self.mx.delivered)}
        wait_for(lambda: len(unique()) == total, 120, what="all %d" % total)
        finished = time.monotonic() - killed
        wait_for(lambda: not self.queued(), 10, what="queue emptied")
        time.sleep(1)
        dups = len(self.mx.delivered) - total
        # A duplicate is a message whose final dot mta1 had sent when it
        # died: the remote took it and answered a dead connection (RFC
        # 1047); nothing else may arrive twice.
        sys.stderr.write("\n%d messages, mta1 killed at %d delivered: %d "
                         "duplicates, all delivered %.1f s after the kill\n"
                         % (total, total // 3, dups, finished))
        self.assertLessEqual(dups, 20)  # mta1's queue_concurrency
        self.assertIn("status=sent", b.log())

    def test_connections_per_destination_bounded(self):
        self.mx.hold_data = 0.3
        n = self.outbound_node(extra="queue_per_destination = 2\n",
                               roles="mx, submission, web")
        for i in range(10):
            self.submit(n, ["carol@remote.test"])
        mta = self.outbound_node("mta", roles="mta, web", listen=("http",),
                                 extra="queue_per_destination = 2\n")
        wait_for(lambda: len(self.mx.delivered) == 10, 30, what="10 deliveries")
        self.assertEqual(self.mx.max_sessions, 2)
        self.assertNotIn("status=deferred", mta.log())

    def test_killed_mta_message_taken_over_after_lease(self):
        lease = 3
        extra = "queue_lease_s = %d\n" % lease
        self.mx.hold_data = 30  # the first node's transaction hangs
        a = self.outbound_node("mta1", extra=extra)
        self.submit(a, ["carol@remote.test"])
        wait_for(lambda: self.mx.transactions == 1, 15, what="first transaction")
        b = self.outbound_node("mta2", extra=extra)
        self.mx.hold_data = 0
        a.kill()
        killed = time.monotonic()
        wait_for(lambda: self.mx.delivered, 30, what="delivery by mta2")
        took = time.monotonic() - killed
        # The dead node's Redis lease held the message for most of its ttl
        # (renewed every third of it).
        self.assertGreater(took, lease * 0.5)
        self.assertLess(took, lease + 5)
        # The remote keeps the message before it answers 250: the log
        # line comes a moment after.
        wait_for(lambda: "status=sent" in b.log(), 5, what="mta2's log line")
        wait_for(lambda: not self.queued(), 10, what="queue emptied")
        self.assertEqual(len(self.mx.delivered), 1)


class MailctlQueueTest(QueueTestCase):
    def qctl(self, *args, check=True):
        return self.mailctl("-q", self.queue, "queue", *args, check=check)

    def listed(self):
        return json.loads(self.qctl("list", "--json").stdout)

    def test_list_show_hold_release_delete(self):
        front = self.outbound_node("front", roles="mx, submission, web")
        for subject in (b"one", b"two", b"three"):
            self.submit(front, ["carol@remote.test", "dave@remote.test"],
                        body=BODY.replace(b"outbound", subject))
        q = self.listed()
        self.assertEqual(len(q), 3)
        first = min(q, key=lambda m: m["id"])
        self.assertEqual(first["sender"], "alice@example.test")
        self.assertFalse(first["held"])
        self.assertGreaterEqual(first["age_s"], 0)
        self.assertEqual(first["recipients"][0], {
            "address": "carol@remote.test", "state": "queued",
            "attempts": 0, "next_try_s": 0, "last_reply": ""})
        text = self.qctl("list").stdout.splitlines()
        self.assertEqual(len(text), 3)
        self.assertRegex(text[0], r"^[0-9A-F]{19} \d+s <alice@example\.test> 2 0s")
        ids = sorted(m["id"] for m in q)
        shown = self.qctl("show", ids[0].lower()).stdout  # any case
        self.assertIn("recipient: <dave@remote.test> queued", shown)
        self.assertIn("Subject: one", shown)
        self.assertNotIn("line one", shown)  # headers only
        # A message a runner is delivering (its file locked): a flush has
        # nothing to add and succeeds, a change is refused.
        with open(os.path.join(self.queue, ids[1] + ".msg"), "rb") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            r = self.qctl("flush", ids[1])
            self.assertEqual(r.stdout, ids[1] + ": being delivered now\n")
            r = self.qctl("hold", ids[1], check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("being delivered now, try again", r.stderr)
        self.qctl("hold", ids[0])
        self.qctl("delete", ids[2])
        self.assertEqual(self.qctl("show", ids[2], check=False).returncode, 1)
        held = [m for m in self.listed() if m["id"] == ids[0]][0]
        self.assertTrue(held["held"])
        self.assertEqual(held["recipients"][0]["state"], "held")
        mta = self.outbound_node("mta", roles="mta, web", listen=("http",))
        wait_for(lambda: len(self.mx.delivered) == 1, 15, what="the unheld one")
        time.sleep(1.5)
        self.assertEqual(len(self.mx.delivered), 1)
        self.assertIn(b"Subject: two", self.mx.delivered[0][2])
        self.qctl("release", ids[0])
        wait_for(lambda: len(self.mx.delivered) == 2, 15, what="released")
        wait_for(lambda: self.listed() == [], 10, what="queue emptied")
        self.assertIn("status=sent", mta.log())
        self.assertEqual(self.qctl("hold", ids[0], check=False).returncode, 1)

    def test_flush_retries_now(self):
        self.mx.mode = "defer"
        n = self.outbound_node(extra="queue_retry_min_s = 3600\n"
                               "queue_retry_max_s = 3600\n")
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: "status=deferred" in n.log(), 15, what="deferral")
        wait_for(lambda: self.listed() and
                 self.listed()[0]["recipients"][0]["state"] == "deferred",
                 5, what="deferred in the envelope")
        r = self.listed()[0]["recipients"][0]
        self.assertEqual(r["attempts"], 1)
        self.assertGreater(r["next_try_s"], 3000)
        self.assertEqual(r["last_reply"], "451 4.3.0 try again later")
        self.mx.mode = "accept"
        time.sleep(1.5)
        self.assertEqual(self.mx.delivered, [])
        self.qctl("flush")
        wait_for(lambda: self.mx.delivered, 10, what="delivery after flush")


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


def import_dkim():
    """dkimpy from Debian's python3-dkim, also under another python3."""
    try:
        import dkim
    except ImportError:
        sys.path.append("/usr/lib/python3/dist-packages")
        import dkim
    return dkim


class DkimTest(QueueTestCase):
    def key(self, name, algorithm):
        path = os.path.join(self.tmp, name)
        opts = ["-pkeyopt", "rsa_keygen_bits:2048"] if algorithm == "RSA" else []
        subprocess.run(["openssl", "genpkey", "-algorithm", algorithm] + opts +
                       ["-out", path], check=True, capture_output=True,
                       timeout=60)
        return path

    def dkim_set(self, domain, selector, path):
        out = self.mailctl("-q", self.queue, "dkim", "set", domain, selector,
                           path).stdout
        m = re.match(r'^(\S+)\._domainkey\.(\S+)\. IN TXT "(.+)"\n$', out)
        self.assertIsNotNone(m, out)
        self.assertEqual((m.group(1), m.group(2)), (selector, domain))
        return m.group(3)

    def verify(self, data, records):
        dkim = import_dkim()

        def dnsfunc(name, timeout=5):
            name = name.decode() if isinstance(name, bytes) else name
            return records.get(name.rstrip("."), "").encode()
        return dkim.verify(data, dnsfunc=dnsfunc)

    def test_signed_rsa_and_ed25519_verified_independently(self):
        rsa = self.dkim_set("example.test", "s2048", self.key("rsa.pem", "RSA"))
        self.assertTrue(rsa.startswith("v=DKIM1; k=rsa; p="))
        mode = os.stat(os.path.join(self.queue, ".dkim", "example.test")).st_mode
        self.assertEqual(mode & 0o777, 0o600)
        show = self.mailctl("-q", self.queue, "dkim", "show", "example.test").stdout
        self.assertIn(rsa, show)
        n = self.outbound_node()
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: self.mx.delivered, 15, what="delivery")
        data = self.mx.delivered[0][2]
        self.assertTrue(data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; "
                                        b"c=relaxed/relaxed; d=example.test; s=s2048;"))
        self.assertTrue(data.endswith(BODY))
        records = {"s2048._domainkey.example.test": rsa}
        self.assertTrue(self.verify(data, records))
        self.assertFalse(self.verify(data.replace(b"line one", b"line 1"), records))

        ed = self.dkim_set("example.test", "ed1", self.key("ed.pem", "ed25519"))
        self.assertTrue(ed.startswith("v=DKIM1; k=ed25519; p="))
        self.submit(n, ["dave@remote.test"])
        wait_for(lambda: len(self.mx.delivered) == 2, 15, what="second delivery")
        data = self.mx.delivered[1][2]
        self.assertIn(b"a=ed25519-sha256", data.split(b"\r\n")[0])
        records = {"ed1._domainkey.example.test": ed}
        self.assertTrue(self.verify(data, records))
        self.assertFalse(self.verify(data.replace(b"outbound", b"inbound"), records))

        self.mailctl("-q", self.queue, "dkim", "del", "example.test")
        self.submit(n, ["erin@remote.test"])
        wait_for(lambda: len(self.mx.delivered) == 3, 15, what="third delivery")
        self.assertNotIn(b"DKIM-Signature", self.mx.delivered[2][2])

    def test_bad_key_refused(self):
        bad = os.path.join(self.tmp, "bad.pem")
        with open(bad, "w") as f:
            f.write("not a key\n")
        r = self.mailctl("-q", self.queue, "dkim", "set", "example.test", "s",
                         bad, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not an RSA or Ed25519 private key", r.stderr)


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


class TlsTest(QueueTestCase):
    def setUp(self):
        super().setUp()
        self.cert = os.path.join(self.tmp, "mx-cert.pem")
        self.key = os.path.join(self.tmp, "mx-key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", self.key, "-out", self.cert,
                        "-days", "30", "-subj", "/CN=mx1.remote.test",
                        "-addext", "subjectAltName=DNS:mx1.remote.test"],
                       check=True, capture_output=True, timeout=60)
        self.mx.stop()
        self.mx = ScriptedMX(tls=(self.cert, self.key))

    def test_starttls_when_offered(self):
        n = self.outbound_node()  # smtp_tls = may, the default
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: self.mx.delivered, 15, what="delivery")
        self.assertEqual(self.mx.tls_delivered, 1)
        self.assertEqual(self.mx.sni, ["mx1.remote.test"])
        self.assertTrue(self.mx.delivered[0][2].endswith(BODY))
        self.assertIn("TLS with mx1.remote.test[127.0.0.1]", n.log())

    def test_encrypt_needs_starttls(self):
        self.mx.stop()
        self.mx = ScriptedMX()  # no STARTTLS
        n = self.outbound_node(extra="smtp_tls = encrypt\n")
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: "status=deferred" in n.log(), 15, what="deferral")
        self.assertIn("451 4.7.5 TLS is required, but was not offered", n.log())
        self.assertEqual(self.mx.delivered, [])

    def test_relayhost_auth_inside_tls(self):
        self.mx.auth = ("relayuser", "s3cret")
        pw = os.path.join(self.tmp, "relay.pw")
        with open(pw, "w") as f:
            f.write("s3cret\n")
        n = self.outbound_node(
            extra="relayhost = 127.0.0.1:%d\nrelayhost_user = relayuser\n"
                  "relayhost_password_file = %s\n" % (self.mx.port, pw))
        self.submit(n, ["x@nowhere.test"])
        wait_for(lambda: self.mx.delivered, 15, what="delivery through AUTH")
        self.assertEqual(self.mx.authed, ["relayuser"])
        self.assertEqual(self.mx.tls_delivered, 1)
        n.stop()  # the queue is shared: only the next node may take it
        with open(pw, "w") as f:
            f.write("wrong\n")
        m = self.outbound_node("mail2", extra="relayhost = 127.0.0.1:%d\n"
                               "relayhost_user = relayuser\n"
                               "relayhost_password_file = %s\n" % (self.mx.port, pw))
        self.mx.authed = []
        self.submit(m, ["y@nowhere.test"])
        wait_for(lambda: "status=deferred (535 5.7.8" in m.log(), 15,
                 what="refused AUTH")
        self.assertEqual(len(self.mx.delivered), 1)

    def test_verify_checks_chain_and_name(self):
        n = self.outbound_node(
            extra="smtp_tls = verify\nsmtp_tls_ca = %s\n" % self.cert,
            sections="[route]\nbyaddress.test = 127.0.0.1:%d\n" % self.mx.port)
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: self.mx.delivered, 15, what="verified delivery")
        self.assertEqual(self.mx.tls_delivered, 1)
        self.assertIn("(verified)", n.log())
        # A route by address: the certificate does not name 127.0.0.1.
        self.submit(n, ["dave@byaddress.test"])
        wait_for(lambda: "to=<dave@byaddress.test>" in n.log(), 15,
                 what="attempt by address")
        self.assertRegex(n.log(), r"to=<dave@byaddress\.test>.*status=deferred "
                         r"\(451 4\.4\.2 lost connection with 127\.0\.0\.1"
                         r"\[127\.0\.0\.1\]:\d+ while starting TLS")
        self.assertEqual(len(self.mx.delivered), 1)


if __name__ == "__main__":
    unittest.main()
