"""The store's side of a change, for real: two nodes over one store and
one redis-server. Every change to a mailbox is told on the store's notice
channel (ms:imap), so an IMAP IDLE session on one node hears a POP3
deletion or the spool's late delivery on the other at once; and a message
whose file another session renames (a flag change) is still found by the
HTTP API."""
import json
import os
import poplib
import shutil
import threading
import time

import redistest
from lbdtest import wait_for
from nodetest import NodeTestCase
from test_http_api import bearer, request
from test_imap import simple
from wire import Lines

LISTEN = ("smtp", "imap", "pop3", "http")
NOTICE = "alice@example.test\tINBOX"


class StoreChangesTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        extra = "allow_plaintext_auth = yes\nspool_retry_s = 1\n"
        self.a = self.node("mail1", listen=LISTEN, extra_node=extra)
        self.b = self.node("mail2", listen=LISTEN, extra_node=extra)

    def idle(self, node, exists):
        """alice's INBOX selected on node, in IDLE."""
        r = Lines(node.ports["imap"])
        r.cmd("a", "LOGIN alice@example.test demo")
        self.assertIn("* %d EXISTS" % exists, r.cmd("b", "SELECT INBOX"))
        r.send("c IDLE\r\n")
        self.assertTrue(r.line().startswith("+ "))
        return r

    def heard(self, r, want, since, sub):
        """IDLE (r) tells want within a second of since, and the change
        was told on ms:imap, not found by IDLE's own poll of the
        Maildir; then IDLE ends."""
        line = r.line()
        took = time.monotonic() - since
        self.assertEqual(line, want)
        self.assertLess(took, 1.0, "IDLE heard it after %.2fs" % took)
        self.assertEqual(sub.message(2.0), NOTICE)
        r.send("DONE\r\n")
        self.assertRegex(r.until("c")[-1], r"^c OK")
        r.close()

    def subscribe(self):
        sub = redistest.Subscriber(self.redis.port, "ms:imap")
        self.addCleanup(sub.close)
        return sub

    def userdir(self):
        """alice's Maildir (made by the first delivery)."""
        new = os.path.dirname(self.maildir("alice@example.test")[0])
        return os.path.dirname(new)

    def test_idle_hears_a_pop3_deletion_on_the_other_node(self):
        self.deliver(self.a, simple("one"))
        self.deliver(self.a, simple("two"))
        r = self.idle(self.a, 2)
        sub = self.subscribe()
        p = poplib.POP3("127.0.0.1", self.b.ports["pop3"], timeout=10)
        p.user("alice@example.test")
        p.pass_("demo")
        p.dele(1)
        t0 = time.monotonic()
        self.assertTrue(p.quit().startswith(b"+OK"))
        self.heard(r, "* 1 EXPUNGE", t0, sub)

    def test_idle_hears_a_late_spool_delivery_on_the_other_node(self):
        self.deliver(self.a, simple("first"))
        r = self.idle(self.a, 1)
        # alice's tmp/ becomes a file: the store cannot take her mail, so
        # node b spools it; IDLE, which reads cur/ and new/, goes on.
        tmp = os.path.join(self.userdir(), "tmp")
        shutil.rmtree(tmp)
        with open(tmp, "w") as f:
            f.write("not a directory")
        self.deliver(self.b, simple("late"))  # answered 250: spooled
        self.assertIn("spooled", self.b.log())
        self.assertEqual(len(self.maildir("alice@example.test")), 1)
        sub = self.subscribe()
        os.unlink(tmp)  # the spool's next retry (within 1 s) delivers
        delivered = []
        wait_for(lambda: len(self.maildir("alice@example.test")) == 2 and
                 not delivered.append(time.monotonic()), 15, step=0.005,
                 what="the spool's late delivery")
        self.heard(r, "* 2 EXISTS", delivered[0], sub)

    def test_api_follows_a_message_renamed_by_a_flag_change(self):
        self.deliver(self.a, simple("flagged often"))
        status, _, body = request(self.b, "POST", "/api/login",
                                  {"user": "alice@example.test",
                                   "password": "demo"})
        self.assertEqual(status, 200, body)
        token = json.loads(body)["token"]
        r = Lines(self.a.ports["imap"])
        self.addCleanup(r.close)
        r.cmd("a", "LOGIN alice@example.test demo")
        r.cmd("b", "SELECT INBOX")
        stop = threading.Event()
        renames = [0]

        def flagger():  # renames the file, as fast as IMAP answers
            while not stop.is_set() and renames[0] < 20000:
                i = renames[0] + 1
                sign = "+" if i % 2 else "-"
                out = r.cmd("s%d" % i, "UID STORE 1 %sFLAGS.SILENT (\\Flagged)"
                            % sign)
                assert out[-1].startswith("s%d OK" % i), out
                renames[0] = i

        t = threading.Thread(target=flagger)
        t.start()
        codes, gets = {}, 0
        end = time.monotonic() + 30
        try:
            # Both sides busy at once: at least 1000 GETs and 1000 renames
            # (on the previous code 0.3% to 1.4% of such GETs got a 404).
            while (gets < 1000 or renames[0] < 1000) and gets < 10000 and \
                    time.monotonic() < end and t.is_alive():
                status, _, body = request(self.b, "GET", "/api/messages/1",
                                          headers=bearer(token))
                gets += 1
                codes[status] = codes.get(status, 0) + 1
                if status == 200:
                    self.assertIn(b"flagged often", body)
        finally:
            stop.set()
            t.join(30)
        self.assertFalse(t.is_alive())
        self.assertGreater(renames[0], 100, "too few renames to race")
        self.assertEqual(codes.get(404, 0), 0,
                         "GET answered 404 while the file was renamed: %r"
                         % codes)
