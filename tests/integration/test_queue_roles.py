"""The outbound queue and node roles: only mta nodes deliver, what an
mta node sweeps, connections per destination."""
import os
import subprocess
import time
import unittest

from lbdtest import wait_for
from nodetest import MAILNODE
from queuetest import QueueTestCase


class RolesTest(QueueTestCase):
    def test_listener_outside_roles_is_a_config_error(self):
        n = self.outbound_node(roles="mx, mta", start=False)
        n.proc = None
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
        # The remote keeps the message before it answers 250: the log
        # line comes a moment after.
        wait_for(lambda: "status=sent" in mta.log(), 5, what="the mta's log line")
        self.assertNotIn("status=", front.log())

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


if __name__ == "__main__":
    unittest.main()
