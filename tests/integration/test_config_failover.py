"""A Sentinel failover to a replica that missed the last config change:
the node (through redis_sentinels) follows the new master, finds a config
generation below its own there, and keeps serving what it loaded (the user
added last included) with /health stale, until `mailctl import` of its
snapshot on the new master brings it back. Real redis-server, replica and
sentinel (test_lbd_shared's fixtures), a real mailnode and smtplib.

Without generations (before this change) the node follows the replica's
older config and answers the last user added `550 5.1.1`."""
import json
import os
import smtplib

from lbdtest import wait_for
from nodetest import NodeTestCase
from test_http_api import request
from test_lbd_shared import failover, sentinel_setup

MSG = b"From: carol@remote.test\r\nSubject: failover\r\n\r\nbody\r\n"


class ConfigFailoverTest(NodeTestCase):
    def rcpt(self, node, rcpt):
        c = smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=10)
        try:
            c.ehlo()
            c.mail("carol@remote.test")
            code, _ = c.rcpt(rcpt)
            if code == 250:
                code, _ = c.data(MSG)
            return code
        finally:
            c.close()

    def health(self, node):
        return json.loads(request(node, "GET", "/health")[2])

    def test_failover_to_a_replica_behind(self):
        replica, sent = sentinel_setup(self, self.redis)
        n = self.node(extra_node="redis_sentinels = 127.0.0.1:%d\n"
                      "redis_master = mymaster\n" % sent.port)
        # The replica stops (SIGSTOP), the master drops its link (so
        # nothing waits in the socket for it), and it misses the next
        # change: dave.
        replica.pause()
        self.redis.cli("CLIENT", "KILL", "TYPE", "replica")
        self.mailctl("user", "add", "dave@example.test", "--password-stdin",
                     input="pw\n")
        gen = int(self.redis.cli("GET", "ms:config:gen"))
        wait_for(lambda: self.health(n)["config_gen"] == gen, 10,
                 what="node at generation %d" % gen)
        self.assertEqual(self.rcpt(n, "dave@example.test"), 250)
        # The master dies before the replica comes back: the sentinel
        # promotes a replica that never saw dave.
        self.redis.kill()
        replica.resume()
        wait_for(lambda: sent.master() == ["127.0.0.1", str(replica.port)],
                 30, what="failover to the replica")
        self.assertLess(int(replica.cli("GET", "ms:config:gen")), gen)
        wait_for(lambda: self.health(n)["config"] == "stale" and
                 "master mymaster is 127.0.0.1:%d" % replica.port in n.log(),
                 15, what="node on the new master, stale")
        for rcpt in ("dave@example.test", "alice@example.test",
                     "team@example.test"):
            self.assertEqual(self.rcpt(n, rcpt), 250, rcpt)
        self.assertEqual(self.health(n)["config_gen"], gen)
        # Restore from the node's own snapshot, on the new master.
        env_addr = "127.0.0.1:%d" % replica.port
        snap = os.path.join(n.spool, "config.snapshot")
        self.mailctl("-r", env_addr, "import", snap)
        wait_for(lambda: self.health(n)["config"] == "ok", 10,
                 what="node back to ok")
        self.assertGreater(self.health(n)["config_gen"], gen)
        self.assertEqual(self.rcpt(n, "dave@example.test"), 250)
