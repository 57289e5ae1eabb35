"""IMAP UIDs under the per-mailbox Redis lease: two real nodes over one
store whose UID flock is made a no-op (MAILSWITCH_TEST_NO_FLOCK, as on a
store whose flock does not reach other hosts), one redis-server."""
import imaplib
import os
import re
import smtplib
import threading
import time
import unittest

from lbdtest import wait_for
from nodetest import NodeTestCase

LISTEN = ("smtp", "imap")
LOCK = "ms:uidlock:alice@example.test/INBOX"
NEXT = "ms:uidnext:alice@example.test/INBOX"


def msg(subject):
    return ("From: carol@remote.test\r\nTo: alice@example.test\r\n"
            "Subject: %s\r\n\r\nhello\r\n" % subject).encode()


class UidLeaseTest(NodeTestCase):
    def setUp(self):
        os.environ["MAILSWITCH_TEST_NO_FLOCK"] = "1"
        try:
            super().setUp()
            self.n1 = self.node("mail1", listen=LISTEN,
                                extra_node="allow_plaintext_auth = yes\n")
            self.n2 = self.node("mail2", listen=LISTEN,
                                extra_node="allow_plaintext_auth = yes\n")
        finally:
            del os.environ["MAILSWITCH_TEST_NO_FLOCK"]

    def imap(self, node):
        m = imaplib.IMAP4("127.0.0.1", node.ports["imap"], timeout=30)
        m.login("alice@example.test", "demo")
        self.assertEqual(m.select("INBOX")[0], "OK")
        return m

    def append(self, m, subject):
        typ, data = m.append("INBOX", None, None, msg(subject))
        self.assertEqual(typ, "OK", data)
        return int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))

    def uids(self, m):
        typ, data = m.uid("SEARCH", "ALL")
        self.assertEqual(typ, "OK")
        return [int(x) for x in data[0].split()]

    def status(self, m):
        typ, data = m.status("INBOX", "(UIDNEXT UIDVALIDITY MESSAGES)")
        self.assertEqual(typ, "OK")
        return {k.decode(): int(v) for k, v in
                re.findall(rb"(UIDNEXT|UIDVALIDITY|MESSAGES) (\d+)", data[0])}

    def test_two_nodes_without_flock(self):
        """APPENDs and deliveries through both nodes, sessions on both
        syncing: UIDs unique, never seen out of order, UIDNEXT agreed."""
        each = 12
        errors = []

        def appender(node, tag):
            try:
                m = self.imap(node)
                for i in range(each):
                    self.append(m, "%s %d" % (tag, i))
                m.logout()
            except Exception as e:  # reported below
                errors.append(repr(e))

        def deliverer(node, tag):
            try:
                for i in range(each):
                    c = smtplib.SMTP("127.0.0.1", node.ports["smtp"],
                                     timeout=30)
                    c.sendmail("carol@remote.test", ["alice@example.test"],
                               msg("%s %d" % (tag, i)))
                    c.quit()
            except Exception as e:
                errors.append(repr(e))

        stop = threading.Event()
        seen = {}

        def watcher(node, key):
            try:
                m = self.imap(node)
                known = []
                for _ in range(2000):
                    got = self.uids(m)
                    new = [u for u in got if u not in known]
                    if known and new and min(new) < max(known):
                        errors.append("%s saw %d after %d" %
                                      (key, min(new), max(known)))
                    known = sorted(set(known) | set(got))
                    if stop.is_set():
                        break
                seen[key] = self.uids(m)
                m.logout()
            except Exception as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=watcher, args=(self.n1, "w1")),
                   threading.Thread(target=watcher, args=(self.n2, "w2"))]
        work = [threading.Thread(target=appender, args=(self.n1, "a1")),
                threading.Thread(target=appender, args=(self.n2, "a2")),
                threading.Thread(target=deliverer, args=(self.n1, "d1")),
                threading.Thread(target=deliverer, args=(self.n2, "d2"))]
        for t in threads + work:
            t.start()
        for t in work:
            t.join(120)
        stop.set()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        total = 4 * each
        m1, m2 = self.imap(self.n1), self.imap(self.n2)
        u1, u2 = self.uids(m1), self.uids(m2)
        self.assertEqual(len(u1), total)
        self.assertEqual(len(set(u1)), total)
        self.assertEqual(u1, u2)
        s1, s2 = self.status(m1), self.status(m2)
        self.assertEqual(s1, s2)
        self.assertGreater(s1["UIDNEXT"], max(u1))
        # The lease is given back; the counter holds what the mark holds.
        self.assertEqual(self.redis.cli("EXISTS", LOCK), 0)
        v, n = self.redis.cli("GET", NEXT).split()
        self.assertEqual(int(v), s1["UIDVALIDITY"])
        self.assertEqual(int(n), s1["UIDNEXT"])
        m1.logout()
        m2.logout()

    def test_append_waits_for_the_lease(self):
        m = self.imap(self.n1)
        first = self.append(m, "before")
        # given back right after the answer, not waited for
        wait_for(lambda: self.redis.cli("EXISTS", LOCK) == 0, 5,
                 what="lease given back")
        self.assertEqual(self.redis.cli("SET", LOCK, "test", "NX", "PX",
                                        "20000"), "OK")
        done = []
        t = threading.Thread(target=lambda: done.append(
            self.append(self.imap(self.n2), "held")))
        t.start()
        time.sleep(1.0)
        self.assertEqual(done, [], "APPEND ran while the lease was held")
        self.redis.cli("DEL", LOCK)
        t.join(10)
        self.assertEqual(len(done), 1)
        self.assertGreater(done[0], first)
        wait_for(lambda: self.redis.cli("EXISTS", LOCK) == 0, 5,
                 what="lease given back")
        # A sync with mail waiting waits too: the delivery shows only
        # once the lease is free.
        self.redis.cli("SET", LOCK, "test", "NX", "PX", "20000")
        c = smtplib.SMTP("127.0.0.1", self.n1.ports["smtp"], timeout=10)
        c.sendmail("carol@remote.test", ["alice@example.test"], msg("new"))
        c.quit()
        res = []
        t = threading.Thread(target=lambda: res.append(m.noop()))
        t.start()
        time.sleep(1.0)
        self.assertEqual(res, [])
        self.redis.cli("DEL", LOCK)
        t.join(10)
        self.assertEqual(res[0][0], "OK")
        self.assertEqual(len(self.uids(m)), 3)
        m.logout()

    def test_noop_without_new_mail_sends_nothing_to_redis(self):
        m = self.imap(self.n1)
        self.append(m, "one")
        # its counter and release went out in order before the key went
        wait_for(lambda: self.redis.cli("EXISTS", LOCK) == 0, 5,
                 what="lease given back")
        m2 = self.imap(self.n2)  # logged in before: a login reads Redis
        mon = self.redis.connect(timeout=5)
        mon.send("MONITOR")
        self.assertEqual(mon.read(), "OK")
        for _ in range(20):
            self.assertEqual(m.noop()[0], "OK")
        self.append(m2, "marker")
        lines = []
        while True:
            line = mon.read()
            lines.append(line)
            if "uidlock" in line:
                break
        mon.close()
        # Only the node's idle PINGs before the marker's lease.
        self.assertEqual([x for x in lines[:-1] if '"PING"' not in x
                          and '"ping"' not in x], [])
        m.logout()

    def test_redis_away_then_back_empty(self):
        m = self.imap(self.n1)
        u1 = self.append(m, "one")
        v1 = self.status(m)["UIDVALIDITY"]
        self.redis.kill()
        u2 = self.append(m, "two")   # the flock alone
        self.assertGreater(u2, u1)
        c = smtplib.SMTP("127.0.0.1", self.n1.ports["smtp"], timeout=10)
        c.sendmail("carol@remote.test", ["alice@example.test"], msg("three"))
        c.quit()
        self.assertEqual(m.noop()[0], "OK")
        u3 = max(self.uids(m))
        self.assertGreater(u3, u2)
        self.assertIn("under the flock alone", self.n1.log())
        self.redis.start()   # empty: no counter
        self.assertEqual(self.redis.cli("EXISTS", NEXT), 0)
        u4 = 0
        for _ in range(50):  # until the node is connected again
            u4 = self.append(m, "four")
            if self.redis.cli("EXISTS", NEXT):
                break
            time.sleep(0.1)
        self.assertGreater(u4, u3)
        # The counter is written before the lease's release on the node's
        # Redis connection, which is after the APPEND's answer.
        want = "%d %d" % (v1, u4 + 1)
        wait_for(lambda: self.redis.cli("GET", NEXT) == want, 5,
                 what="%s = %s" % (NEXT, want))
        u5 = self.append(m, "five")  # the config went with Redis
        self.assertEqual(u5, u4 + 1)
        self.assertEqual(self.status(m)["UIDVALIDITY"], v1)
        m.logout()


if __name__ == "__main__":
    unittest.main()
