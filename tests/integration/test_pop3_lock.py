"""POP3's maildrop lock in Redis across real nodes: one session per
maildrop on any node, the lease renewed while the session lasts and
expiring when its node is killed, logins refused with Redis away."""
import poplib
import time
import unittest

from lbdtest import wait_for
from pop3test import LISTEN, Pop3TestCase


class Pop3LockTest(Pop3TestCase):
    def test_uidl_equal_on_two_nodes_and_lock_across_nodes(self):
        n1 = self.node("mail1", listen=LISTEN)
        n2 = self.node("mail2", listen=LISTEN)
        for i in range(3):
            self.deliver(n1 if i % 2 else n2, rcpt="bob@example.test", body=
                         b"Subject: %d\r\n\r\nbody\r\n" % i)
        p = self.pop(n1, user="bob@example.test")
        u1 = p.uidl()[1]
        self.assertEqual(len(set(u1)), 3)
        with self.assertRaises(poplib.error_proto) as e:
            self.pop(n2, user="bob@example.test")
        self.assertIn(b"-ERR [IN-USE]", e.exception.args[0])
        # Another user is not locked out.
        self.quit(self.pop(n2, user="alice@example.test"))
        self.assertEqual(int(self.redis.cli("EXISTS",
                                            "ms:pop3lock:bob@example.test")), 1)
        self.quit(p)
        self.released("bob@example.test")
        p = self.pop(n2, user="bob@example.test")
        self.assertEqual(p.uidl()[1], u1)
        self.assertEqual(p.uidl(2), b"+OK " + u1[1])
        self.quit(p)
        self.released("bob@example.test")
        # A message arriving later gets a new UIDL; the old ones stay.
        self.deliver(n2, rcpt="bob@example.test", body=b"Subject: later\r\n\r\nx\r\n")
        p = self.pop(n1, user="bob@example.test")
        u2 = p.uidl()[1]
        self.assertEqual(u2[:3], u1)
        self.assertNotIn(u2[3].split()[1], [u.split()[1] for u in u1])
        self.quit(p)

    def test_lock_freed_when_holder_node_is_killed(self):
        n1 = self.node("mail1", listen=LISTEN)
        n2 = self.node("mail2", listen=LISTEN)
        self.deliver(n1, rcpt="alice@example.test", body=b"Subject: a\r\n\r\nx\r\n")
        p = self.pop(n1)
        p.dele(1)
        time.sleep(11)  # past the TTL: renewals keep the lease
        with self.assertRaises(poplib.error_proto) as e:
            self.pop(n2)
        self.assertIn(b"-ERR [IN-USE]", e.exception.args[0])
        self.assertEqual(p.stat()[0], 0)  # the session goes on
        n1.kill()
        p.close()
        killed = time.monotonic()
        p = wait_for(lambda: self.try_pop(n2), 15, step=0.25,
                     what="lock expired")
        # Within the TTL (10 s), plus a login's time.
        self.assertLess(time.monotonic() - killed, 12)
        self.assertEqual(p.stat()[0], 1)  # the killed session deleted nothing
        self.quit(p)

    def test_redis_away_refuses_login(self):
        n = self.node(listen=LISTEN)
        self.redis.kill()
        wait_for(lambda: self.try_pop(n) is None, 10, what="refused")
        with self.assertRaises(poplib.error_proto) as e:
            self.pop(n)
        self.assertIn(b"-ERR [SYS/TEMP]", e.exception.args[0])


if __name__ == "__main__":
    unittest.main()
