"""The shared config survives Redis losing it (ms:config:gen, the nodes'
snapshots, mailctl export/import/wipe), with a real redis-server, two real
mailnodes on one store and real clients (smtplib, imaplib, HTTP):

- Redis restarted empty in the middle of a stream of deliveries and logins
  across two nodes: no 5xx to an existing user, every login works, /health
  says "config": "stale"; a mailctl change made on the empty Redis does
  not take over; `mailctl import` of the last export brings the config
  back above every node's generation and the nodes leave the stale state.
- A node restarted while Redis is empty serves from its snapshot.
- `mailctl wipe --yes` is followed by every node.

Without generations (before this change) the first test fails with
"554 5.7.1 Relay access denied" for alice once Redis comes back empty, and
the second with the node refusing alice (nothing loaded)."""
import imaplib
import json
import os
import smtplib
import threading
import time

from lbdtest import wait_for
from nodetest import NodeTestCase
from test_http_api import request

LISTEN = ("smtp", "imap", "http")
PLAIN = "allow_plaintext_auth = yes\n"
MSG = (b"From: carol@remote.test\r\nTo: alice@example.test\r\n"
       b"Subject: gen\r\n\r\nbody\r\n")


class ConfigGenerationTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        self.export = os.path.join(self.tmp, "export.json")
        self.mailctl("export", self.export)

    def two_nodes(self):
        return (self.node("mail1", listen=LISTEN, extra_node=PLAIN),
                self.node("mail2", listen=LISTEN, extra_node=PLAIN))

    def health(self, node):
        st, _, body = request(node, "GET", "/health")
        return st, json.loads(body)

    def gen(self):
        v = self.redis.cli("GET", "ms:config:gen")
        return int(v) if v is not None else None

    def deliver_codes(self, node, rcpt="alice@example.test"):
        """(RCPT code, DATA code or None) through node's MX port."""
        c = smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=10)
        try:
            c.ehlo()
            c.mail("carol@remote.test")
            code, msg = c.rcpt(rcpt)
            if code != 250:
                return code, msg
            code, msg = c.data(MSG)
            return code, msg
        finally:
            c.close()

    def login(self, node, user="alice@example.test", password="demo"):
        """True when an IMAP LOGIN on node succeeds."""
        m = imaplib.IMAP4("127.0.0.1", node.ports["imap"], timeout=10)
        try:
            typ, _ = m.login(user, password)
            m.logout()
            return typ == "OK"
        except imaplib.IMAP4.error:
            m.shutdown()
            return False

    def snapshot(self, node):
        with open(os.path.join(node.spool, "config.snapshot")) as f:
            return json.load(f)

    def restart_redis_empty(self):
        self.redis.kill()
        self.redis.start()

    def test_redis_restarted_empty_mid_stream_then_import(self):
        n1, n2 = self.two_nodes()
        gen = self.gen()
        self.assertGreaterEqual(gen, 5)  # domain, 2 users, 2 alias targets
        for n in (n1, n2):
            wait_for(lambda: self.health(n)[1].get("config") == "ok", 10,
                     what="%s config ok" % n.name)
            self.assertEqual(self.health(n)[1]["config_gen"], gen)
            self.assertEqual(self.snapshot(n)["generation"], gen)
            self.assertEqual(self.redis.cli("HGET", "ms:config:nodes",
                                            n.name), str(gen))

        # The stream: deliveries and logins alternating over both nodes,
        # with Redis killed and restarted empty a moment after it begins.
        restarted = threading.Event()

        def restarter():
            time.sleep(0.5)
            self.restart_redis_empty()
            restarted.set()

        t = threading.Thread(target=restarter)
        t.start()
        bad, done_after, rounds = [], None, 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and rounds < 400:
            a, b = (n1, n2) if rounds % 2 == 0 else (n2, n1)
            code, msg = self.deliver_codes(a, "alice@example.test"
                                           if rounds % 3 else
                                           "team@example.test")
            if code >= 400:
                bad.append(("deliver", a.name, code, msg))
            if not self.login(b, "bob@example.test"):
                bad.append(("login", b.name))
            rounds += 1
            if restarted.is_set() and done_after is None:
                done_after = rounds
            # Go on a good while after Redis came back empty.
            if done_after is not None and rounds >= done_after + 20:
                break
        t.join(20)
        self.assertIsNotNone(done_after, "Redis was not restarted in time")
        self.assertEqual(bad, [], "refusals during the stream")
        self.assertGreater(rounds, done_after)

        for n in (n1, n2):
            # Stale at once while Redis is down; then on the empty Redis.
            wait_for(lambda: "below the %d this node loaded" % gen in n.log(),
                     10, what="%s sees the empty Redis" % n.name)
            st, h = self.health(n)
            self.assertEqual((st, h["status"], h["config"], h["config_gen"]),
                             (200, "degraded", "stale", gen))
            self.assertEqual(
                n.log().count("below the %d this node loaded" % gen), 1,
                n.log()[-2000:])

        # A change made on the empty Redis (generation 1) does not take
        # over: alice is still served, the nodes stay stale.
        self.mailctl("domain", "add", "other.test")
        self.assertEqual(self.gen(), 1)
        time.sleep(1.2)
        for n in (n1, n2):
            self.assertEqual(self.deliver_codes(n)[0], 250)
            self.assertEqual(self.health(n)[1]["config"], "stale")

        # The import goes above every node's generation (the nodes
        # published theirs again in the new Redis) and they take it.
        r = self.mailctl("import", self.export)
        self.assertGreater(self.gen(), gen, r.stderr)
        new = self.gen()
        for n in (n1, n2):
            wait_for(lambda: self.health(n)[1].get("config") == "ok", 10,
                     what="%s back to ok" % n.name)
            st, h = self.health(n)
            self.assertEqual((h["status"], h["config_gen"]), ("ok", new))
            self.assertEqual(self.snapshot(n)["generation"], new)
            self.assertIn("leaving the stale state", n.log())
            self.assertTrue(self.login(n))
        # The import replaced the config: other.test is gone, and the
        # nodes follow ordinary changes again.
        self.assertEqual(self.mailctl("domain", "list").stdout,
                         "example.test\n")
        self.mailctl("user", "add", "dave@example.test", "--password-stdin",
                     input="pw\n")
        for n in (n1, n2):
            wait_for(lambda: self.login(n, "dave@example.test", "pw"), 5,
                     what="dave on %s" % n.name)

    def test_node_restarted_while_redis_empty_serves_from_snapshot(self):
        n1 = self.node("mail1", listen=LISTEN, extra_node=PLAIN)
        gen = self.gen()
        wait_for(lambda: os.path.exists(os.path.join(n1.spool,
                                                     "config.snapshot")),
                 10, what="snapshot")
        n1.stop()
        self.restart_redis_empty()
        n1.start(wait_directory=False)
        wait_for(lambda: "directory: from the snapshot" in n1.log(), 10,
                 what="mail1 serving from its snapshot")
        self.assertEqual(self.deliver_codes(n1)[0], 250)
        self.assertEqual(self.deliver_codes(n1, "team@example.test")[0], 250)
        self.assertEqual(self.deliver_codes(n1, "nobody@example.test")[0],
                         550)
        self.assertTrue(self.login(n1))
        self.assertFalse(self.login(n1, password="wrong"))
        st, _, _ = request(n1, "POST", "/api/login",
                           {"user": "alice@example.test", "password": "demo"})
        self.assertEqual(st, 200)  # the web login too (session in Redis)
        st, h = self.health(n1)
        self.assertEqual((st, h["status"], h["config"], h["config_gen"]),
                         (200, "degraded", "stale", gen))
        # A second node that never ran (no snapshot) knows nothing and
        # says so; it catches up with the import like the others.
        n2 = self.node("mail2", listen=LISTEN, extra_node=PLAIN)
        self.assertEqual(self.health(n2)[1]["config"], "ok")
        self.mailctl("import", self.export)
        wait_for(lambda: self.health(n1)[1]["config"] == "ok", 10,
                 what="mail1 back to ok")
        wait_for(lambda: self.login(n2), 10, what="alice on mail2")

    def test_redis_flushed_while_a_node_reads_it(self):
        """The generation is read again at the end of a load: a Redis
        emptied between the first read and the last (FLUSHALL here) does
        not replace the cache with what was left."""
        n1 = self.node("mail1", listen=LISTEN, extra_node=PLAIN)
        # 20,000 more users, so that a load takes a while.
        with self.redis.connect() as c:
            for i in range(20000):
                a = "u%d@example.test" % i
                c.send("SADD", "ms:users:example.test", a)
                c.send("HSET", "ms:user:" + a, "password", "x")
            c.send("INCR", "ms:config:gen")
            for _ in range(40001):
                c.read()
        self.redis.cli("PUBLISH", "ms:config", "reload")
        gen = self.gen()
        wait_for(lambda: self.health(n1)[1]["config_gen"] == gen, 20,
                 what="the big config loaded")
        loads = n1.log().count("directory: loaded")
        self.redis.cli("PUBLISH", "ms:config", "reload")
        time.sleep(0.02)  # the reload has begun
        self.redis.cli("FLUSHALL")
        wait_for(lambda: self.health(n1)[1]["config"] == "stale", 10,
                 what="stale after the flush")
        self.assertEqual(n1.log().count("directory: loaded"), loads,
                         n1.log()[-1500:])
        self.assertEqual(self.deliver_codes(n1)[0], 250)
        self.assertEqual(self.deliver_codes(n1, "u19999@example.test")[0],
                         250)

    def test_config_from_before_generations(self):
        """A Redis whose config has no generation (made before them) is
        loaded as generation 0; once it comes back empty, a node that
        held domains does not take the emptiness."""
        self.redis.cli("DEL", "ms:config:gen")
        n1 = self.node("mail1", listen=LISTEN, extra_node=PLAIN)
        st, h = self.health(n1)
        self.assertEqual((h["config"], h["config_gen"]), ("ok", 0))
        self.assertEqual(self.snapshot(n1)["generation"], 0)
        self.restart_redis_empty()
        wait_for(lambda: "no config generation and no domain, while this "
                 "node has 1" in n1.log(), 10, what="the empty Redis seen")
        self.assertEqual(self.health(n1)[1]["config"], "stale")
        self.assertEqual(self.deliver_codes(n1)[0], 250)
        self.assertTrue(self.login(n1))

    def test_wipe_is_followed_and_export_round_trips(self):
        n1, n2 = self.two_nodes()
        before = self.snapshot(n1)
        r = self.mailctl("wipe", check=False)
        self.assertEqual(r.returncode, 2)  # --yes is required
        self.assertEqual(self.mailctl("domain", "list").stdout,
                         "example.test\n")
        self.mailctl("wipe", "--yes")
        wiped = self.gen()
        self.assertGreater(wiped, before["generation"])
        for n in (n1, n2):
            wait_for(lambda: self.health(n)[1]["config_gen"] == wiped, 10,
                     what="%s follows the wipe" % n.name)
            self.assertEqual(self.health(n)[1]["config"], "ok")
            self.assertEqual(self.deliver_codes(n)[0], 554)
            self.assertFalse(self.login(n))
        # Importing the export (taken before the wipe) restores it whole,
        # hashes included: the same document but for the generation.
        self.mailctl("import", self.export)
        for n in (n1, n2):
            wait_for(lambda: self.login(n), 10, what="alice on %s" % n.name)
        after = json.loads(self.mailctl("export").stdout)
        self.assertGreater(after.pop("generation"), wiped)
        before.pop("generation")
        self.assertEqual(after, before)

    def test_import_refuses_a_bad_file_whole(self):
        bad = os.path.join(self.tmp, "bad.json")
        cases = [
            ('{"format": "mailswitch-config", "version": 1, '
             '"generation": 1, "domains": ["a.test"], "users": '
             '[{"address": "x@b.test", "password": null}], '
             '"aliases": []}', "not in \"domains\""),
            ('{"format": "mailswitch-config", "version": 1, '
             '"generation": 1, "domains": [], "users": [], "aliases": [], '
             '"quotas": {}}', "unknown member \"quotas\""),
            ('{"format": "mailswitch-config", "version": 1, '
             '"generation": 1, "domains": ["a.test"], "users": '
             '[{"address": "x@a.test", "password": "h"}], "aliases": '
             '[{"address": "x@a.test", "targets": ["y@a.test"]}]}',
             "both a user and an alias"),
            ('{"format": "mailswitch-config", "version": 1,', "bad.json:"),
        ]
        for text, why in cases:
            with open(bad, "w") as f:
                f.write(text)
            r = self.mailctl("import", bad, check=False)
            self.assertEqual(r.returncode, 1, text)
            self.assertIn(why, r.stderr)
        # Nothing changed.
        self.assertEqual(self.mailctl("user", "list").stdout,
                         "alice@example.test\nbob@example.test\n")
