"""A lease whose SET timed out is given back when Redis answers again.
A stopped Redis (SIGSTOP) still holds in its socket the SET NX that the
node gave up on; it runs on SIGCONT and, unless the node undoes it by its
token, locks bob's maildrop for a whole ttl (POP3_LOCK_TTL_MS, 10 s) with
nobody holding it: POP3 then answers -ERR [IN-USE]. IMAP's UID lease is
the same code: its orphan would make every other session wait for it."""
import threading
import time

from lbdtest import wait_for
from nodetest import NodeTestCase
from wire import Lines

UID_KEY = "ms:uidlock:alice@example.test/INBOX"

CLIENTS = 4
LOCK_KEY = "ms:pop3lock:bob@example.test"


class LeaseTimeoutTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        self.n = self.node("mail1", listen=("smtp", "pop3", "imap"),
                           extra_node="allow_plaintext_auth = yes\n")

    def login(self, timeout=10):
        """One POP3 login of bob; returns the answer to PASS."""
        c = Lines(self.n.ports["pop3"], timeout=timeout)
        try:
            c.send("USER bob@example.test\r\nPASS demo\r\n")
            c.line()
            answer = c.line()
            c.send("QUIT\r\n")
            return answer
        finally:
            c.close()

    def loop(self, stop, answers):
        """Logs bob in and out until stop (bounded in count)."""
        for _ in range(2000):
            if stop.is_set():
                return
            try:
                answers.append(self.login(timeout=8))
            except (OSError, EOFError) as e:
                answers.append(repr(e))

    def test_timed_out_set_is_given_back(self):
        self.assertTrue(self.login().startswith("+OK"))
        stop, answers = threading.Event(), []
        threads = [threading.Thread(target=self.loop, args=(stop, answers))
                   for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(1)
        # Stopped in the middle of logins: SETs sent before the node
        # notices (redis_timeout_ms) wait in Redis's socket.
        self.redis.pause()
        time.sleep(5)
        self.redis.resume()
        stop.set()
        for t in threads:
            t.join(30)
        resumed = time.monotonic()
        self.assertTrue(any(a.startswith("+OK") for a in answers), answers)
        wait_for(lambda: self.n.log().count("connected again") > 0, 5,
                 what="the node back on Redis")
        # The orphaned lock (if the SET ran) is given back at once, not
        # after its 10 s ttl.
        first_ok = None
        while time.monotonic() - resumed < 12:
            a = self.login()
            if a.startswith("+OK"):
                first_ok = time.monotonic() - resumed
                break
            self.assertTrue(a.startswith("-ERR [IN-USE]") or
                            a.startswith("-ERR [SYS/TEMP]"), a)
            time.sleep(0.2)
        self.assertIsNotNone(first_ok, "bob locked out for 12 s")
        self.assertLess(first_ok, 4, "bob locked out for %.1f s" % first_ok)
        # And the last session's own lock goes with its QUIT.
        wait_for(lambda: self.redis.cli("GET", LOCK_KEY) is None, 5,
                 what="bob's lock given back")

        self.assertIn("given back after a SET that timed out", self.n.log())

    def test_timed_out_uid_lease_is_given_back(self):
        self.deliver(self.n, b"Subject: one\r\n\r\nbody\r\n")
        c = Lines(self.n.ports["imap"], timeout=20)
        self.assertTrue(c.cmd("a", "LOGIN alice@example.test demo")[-1]
                        .startswith("a OK"))
        self.assertTrue(c.cmd("b", "SELECT INBOX")[-1].startswith("b OK"))
        self.deliver(self.n, b"Subject: two\r\n\r\nbody\r\n")
        # The new message needs a UID: its lease's SET NX goes to a
        # stopped Redis, times out, and UIDs go on under the flock.
        self.redis.pause()
        try:
            self.assertTrue(c.cmd("c", "NOOP")[-1].startswith("c OK"))
            time.sleep(1)
        finally:
            self.redis.resume()
        wait_for(lambda: "connected again" in self.n.log(), 5,
                 what="the node back on Redis")
        # Given back at once, not after its ttl (5 s from SIGCONT).
        wait_for(lambda: "given back after a SET that timed out" in
                 self.n.log(), 1.5, what="the orphaned UID lease given back")
        self.assertIsNone(self.redis.cli("GET", UID_KEY))
        c.close()


if __name__ == "__main__":
    import unittest
    unittest.main()
