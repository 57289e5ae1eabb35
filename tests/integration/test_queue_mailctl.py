"""mailctl queue: list, show, hold, release, delete and flush against a
live queue."""
import fcntl
import json
import os
import time
import unittest

from lbdtest import wait_for
from queuetest import BODY, QueueTestCase


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


if __name__ == "__main__":
    unittest.main()
