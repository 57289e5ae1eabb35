"""The outbound SMTP client's connections: smtp_tls = may falling back to
plain text when TLS fails, connections reused per next hop (RSET between
messages, a 4xx on RSET or MAIL handled per message), and two live mta
nodes sharing the queue while Redis is away (flock alone: nothing
delivered twice). The rest of the queue is test_queue.py."""
import os
import smtplib
import subprocess
import time
import unittest

from lbdtest import wait_for
from mxtest import ScriptedMX
from queuetest import BODY, QueueTestCase


def message_id(data):
    return data.split(b"Message-ID: <")[1].split(b">")[0]


class QueueConnTestCase(QueueTestCase):
    def submit_many(self, node, n, sender="alice@example.test", tag="m"):
        """n messages, one SMTP session, each with its own Message-ID."""
        c = smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=10)
        c.login("alice@example.test", "demo")
        for i in range(n):
            c.sendmail(sender, ["carol@remote.test"],
                       b"Message-ID: <%s%d@example.test>\r\n" %
                       (tag.encode(), i) + BODY)
        c.quit()


class TlsFallbackTest(QueueConnTestCase):
    def setUp(self):
        super().setUp()
        self.cert = os.path.join(self.tmp, "mx-cert.pem")
        self.key = os.path.join(self.tmp, "mx-key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", self.key, "-out", self.cert,
                        "-days", "30", "-subj", "/CN=mx1.remote.test"],
                       check=True, capture_output=True, timeout=60)
        self.mx.stop()
        self.mx = ScriptedMX(tls=(self.cert, self.key))

    def test_may_falls_back_to_plain_text(self):
        n = self.outbound_node()  # smtp_tls = may, the default
        # STARTTLS refused: on in plain text over the same connection
        self.mx.starttls_reply = "454 4.7.0 TLS not available now"
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: self.mx.delivered, 15, what="plain text delivery")
        self.assertEqual(self.mx.connections, 1)
        self.assertIn("refused STARTTLS (454 4.7.0 TLS not available now): "
                      "going on in plain text", n.log())
        # The handshake fails: again in plain text on a new connection
        self.mx.starttls_reply = None
        self.mx.tls_garbage = True
        # (another next hop, the same MX: the idle connection is not
        # for it)
        self.submit(n, ["dave@implicit.test"])
        wait_for(lambda: len(self.mx.delivered) == 2, 15,
                 what="plain text delivery")
        self.assertEqual(self.mx.connections, 3)  # the TLS one, then plain
        self.assertEqual(self.mx.tls_delivered, 0)
        self.assertTrue(self.mx.delivered[1][2].endswith(BODY))
        wait_for(lambda: n.log().count("status=sent") == 2, 5, what="log")
        self.assertRegex(n.log(), r"TLS with implicit\.test\[127\.0\.0\.1\]"
                         r":\d+ failed \(.*\): trying again in plain text "
                         r"on a new connection")

    def test_encrypt_never_falls_back(self):
        self.mx.tls_garbage = True
        n = self.outbound_node(extra="smtp_tls = encrypt\n")
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: "status=deferred" in n.log(), 15, what="deferral")
        self.assertRegex(n.log(), r"status=deferred \(451 4\.4\.2 lost "
                         r"connection with .* while starting TLS")
        self.mx.tls_garbage = False
        self.mx.starttls_reply = "454 4.7.0 TLS not available now"
        wait_for(lambda: "451 4.7.5 TLS is required" in n.log(), 15,
                 what="second deferral")
        self.assertNotIn("plain text", n.log())
        self.assertEqual(self.mx.delivered, [])


class ReuseTest(QueueConnTestCase):
    def test_messages_to_one_destination_share_connections(self):
        """20 messages queued while no mta runs, then one mta with
        queue_per_destination = 2: they arrive over at most a few
        connections (RSET between messages), never more than 2 at once."""
        total = 20
        front = self.outbound_node("front", roles="mx, submission, web")
        self.submit_many(front, total)
        self.assertEqual(len(self.queued()), total)
        mta = self.outbound_node("mta", roles="mta, web", listen=("http",),
                                 extra="queue_per_destination = 2\n")
        wait_for(lambda: len(self.mx.delivered) == total, 15,
                 what="%d deliveries" % total)
        ids = {message_id(d[2]) for d in self.mx.delivered}
        self.assertEqual(len(ids), total)
        self.assertLessEqual(self.mx.max_sessions, 2)
        self.assertLessEqual(self.mx.connections, 4)
        self.assertNotIn("status=deferred", mta.log())
        # Idle connections close after a short while (QUIT).
        wait_for(lambda: self.mx.sessions == 0, 10, what="idle close")

    def test_rset_refused_gives_a_new_connection(self):
        self.mx.rset_reply = "421 4.3.0 not now"
        front = self.outbound_node("front", roles="mx, submission, web")
        self.submit_many(front, 4)
        mta = self.outbound_node("mta", roles="mta, web", listen=("http",),
                                 extra="queue_per_destination = 1\n")
        wait_for(lambda: len(self.mx.delivered) == 4, 15, what="4 deliveries")
        # Each reuse failed at its RSET: every message had its own.
        self.assertEqual(sorted(set(self.mx.delivered_on)),
                         sorted(self.mx.delivered_on))
        self.assertIn("reused connection to mx1.remote.test", mta.log())
        self.assertNotIn("status=deferred", mta.log())

    def test_mail_deferred_per_message_connection_kept(self):
        """A 451 to MAIL defers that message alone; the connection goes
        on with the next one."""
        self.mx.defer_mail_from = "team@example.test"
        front = self.outbound_node("front", roles="mx, submission, web")
        self.submit_many(front, 3, tag="a")
        self.submit_many(front, 3, sender="team@example.test", tag="t")
        self.submit_many(front, 3, tag="b")
        mta = self.outbound_node("mta", roles="mta, web", listen=("http",),
                                 extra="queue_per_destination = 1\n"
                                       "queue_retry_min_s = 60\n"
                                       "queue_retry_max_s = 60\n")
        wait_for(lambda: len(self.mx.delivered) == 6, 15, what="6 deliveries")
        wait_for(lambda: mta.log().count("status=deferred") == 3, 5,
                 what="3 deferrals")
        self.assertEqual({d[0] for d in self.mx.delivered},
                         {"alice@example.test"})
        self.assertRegex(mta.log(), r"status=deferred \(451 4\.3\.0 sender "
                         r"deferred here\)")
        self.assertEqual(self.mx.max_sessions, 1)
        self.assertLessEqual(self.mx.connections, 2)
        # the remote keeps a message before its 250 reaches the node,
        # which removes the queue files after that: wait for it
        wait_for(lambda: len(self.queued()) == 3, 5,
                 what="the 3 deferred messages alone in the queue")


class RedisAwayTest(QueueConnTestCase):
    def test_two_live_mta_nodes_redis_away_nothing_twice(self):
        """Redis stops while two mta nodes deliver from the shared queue:
        the claims fall back to flock, deliveries go on, and no message
        arrives twice (counted at the remote by Message-ID)."""
        total = 60
        front = self.outbound_node("front", roles="mx, submission, web")
        self.submit_many(front, total)
        self.mx.hold_data = 0.2  # about 2 s for all of them
        a = self.outbound_node("mta1", roles="mta, web", listen=("http",))
        b = self.outbound_node("mta2", roles="mta, web", listen=("http",))
        wait_for(lambda: self.mx.transactions > 0, 10, what="first delivery")
        self.redis.stop()
        try:
            at_stop = len(self.mx.delivered)
            wait_for(lambda: len(self.mx.delivered) >= total, 15,
                     what="%d deliveries" % total)
            wait_for(lambda: not self.queued(), 10, what="queue emptied")
            time.sleep(0.5)  # a duplicate would come now
        finally:
            self.redis.start()
        self.assertLess(at_stop, total // 2)
        ids = [message_id(d[2]) for d in self.mx.delivered]
        self.assertEqual(len(set(ids)), total)
        self.assertEqual(len(ids), total)
        sent = [n.log().count("status=sent") for n in (a, b)]
        self.assertEqual(sum(sent), total)


if __name__ == "__main__":
    unittest.main()
