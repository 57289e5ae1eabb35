"""What password guessing costs on every protocol (node/auth/auth_login.h):
failed logins counted per client address and per user in Redis, on every
node, for IMAP, POP3, SMTP AUTH and HTTP alike; a growing delay after
failures; an address past login_fail_limit refused with the protocol's
temporary answer, also while Redis is away (counted in memory); a user's
failures only delay, so a stranger cannot lock bob out; and the hashing
queue shared fairly between addresses, so a flood from one cannot starve
the others. Client addresses come from PROXY headers (the nodes trust
127.0.0.0/8)."""
import base64
import json
import selectors
import socket
import time
import unittest

from lbdtest import wait_for
from nodetest import NodeTestCase
from wire import Lines

LISTEN = ("smtp", "submission", "imap", "pop3", "http")
PROXY = "proxy_protocol = on\nproxy_trusted = 127.0.0.0/8\n"
PLAIN = "allow_plaintext_auth = yes\n"
LIMIT = 5
LIMITS = ("login_fail_limit = %d\nlogin_delay_ms = 100\n"
          "login_delay_max_ms = 400\n" % LIMIT)
FLOOD = 300


def proxy_line(addr, port):
    if ":" in addr:
        return "PROXY TCP6 %s ::1 40000 %d\r\n" % (addr, port)
    return "PROXY TCP4 %s 127.0.0.1 40000 %d\r\n" % (addr, port)


class LoginLimitsTest(NodeTestCase):
    def start(self, name="mail1", extra=LIMITS):
        return self.node(name, listen=LISTEN,
                         extra_node=PROXY + PLAIN + extra)

    # ---- one login per protocol, from addr; returns the answer line ----

    def conn(self, n, role, addr):
        c = Lines(n.ports[role], timeout=30, greeting=False)
        c.send(proxy_line(addr, n.ports[role]))
        c.greeting = c.line()
        return c

    def imap(self, n, addr, user, password):
        c = self.conn(n, "imap", addr)
        try:
            return c.cmd("a", "LOGIN %s %s" % (user, password))[-1]
        finally:
            c.close()

    def pop3(self, n, addr, user, password):
        c = self.conn(n, "pop3", addr)
        try:
            c.send("USER %s\r\nPASS %s\r\n" % (user, password))
            c.line()
            return c.line()
        finally:
            c.close()

    def smtp(self, n, addr, user, password):
        c = self.conn(n, "submission", addr)
        try:
            c.send("EHLO client.test\r\n")
            while not c.line().startswith("250 "):
                pass
            plain = base64.b64encode(("\0%s\0%s" % (user, password))
                                     .encode()).decode()
            c.send("AUTH PLAIN %s\r\n" % plain)
            return c.line()
        finally:
            c.close()

    def http(self, n, addr, user, password):
        """(status, Retry-After or None)."""
        body = json.dumps({"user": user, "password": password}).encode()
        c = Lines(n.ports["http"], timeout=30, greeting=False)
        try:
            c.send(proxy_line(addr, n.ports["http"]).encode() +
                   b"POST /api/login HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            status = int(c.line().split()[1])
            retry = None
            while True:
                line = c.line()
                if line == "":
                    return status, retry
                if line.lower().startswith("retry-after:"):
                    retry = int(line.split(":")[1])
        finally:
            c.close()

    ANSWERS = {
        # protocol: (failed, refused) answer prefixes
        "imap": ("a NO [AUTHENTICATIONFAILED]", "a NO [UNAVAILABLE]"),
        "pop3": ("-ERR [AUTH]", "-ERR [SYS/TEMP]"),
        "smtp": ("535 5.7.8", "454 4.7.0"),
    }

    def test_every_protocol_delays_then_refuses_across_nodes(self):
        n1, n2 = self.start("mail1"), self.start("mail2")
        for i, proto in enumerate(("imap", "pop3", "smtp")):
            addr = "192.0.2.%d" % (10 + i)
            failed, refused = self.ANSWERS[proto]
            login = getattr(self, proto)
            took = []
            for k in range(LIMIT):
                node = (n1, n2)[k % 2]
                t0 = time.monotonic()
                answer = login(node, addr, "bob@example.test", "wrong")
                took.append(time.monotonic() - t0)
                self.assertTrue(answer.startswith(failed), (proto, k, answer))
            self.assertEqual(self.redis.cli(
                "GET", "ms:loginfail:addr:" + addr), str(LIMIT), proto)
            # Growing delay: 100 ms after the first failure, doubled, at
            # most 400 ms (the first attempt waits for nothing).
            self.assertGreaterEqual(took[2], 0.2, (proto, took))
            self.assertGreaterEqual(took[4], 0.4, (proto, took))
            # Past the limit, the right password is refused for a while,
            # on either node, and from another address it works.
            for node in (n1, n2):
                answer = login(node, addr, "bob@example.test", "demo")
                self.assertTrue(answer.startswith(refused),
                                (proto, answer))
            ok = login(n1, "198.51.100.%d" % (10 + i), "alice@example.test",
                       "demo")
            self.assertFalse(ok.startswith(failed) or ok.startswith(refused),
                             (proto, ok))
        # HTTP shares the same counters: 429 with Retry-After.
        status, retry = self.http(n2, "192.0.2.10", "alice@example.test",
                                  "demo")
        self.assertEqual(status, 429)
        self.assertTrue(0 < retry <= 300, retry)

    def test_a_stranger_cannot_lock_bob_out(self):
        n = self.start()
        for _ in range(LIMIT + 2):
            status, _ = self.http(n, "192.0.2.7", "bob@example.test", "wrong")
            self.assertIn(status, (401, 429))
        status, retry = self.http(n, "192.0.2.7", "bob@example.test", "demo")
        self.assertEqual(status, 429)
        # bob from an address with no failures: in, after a delay at most.
        t0 = time.monotonic()
        status, _ = self.http(n, "198.51.100.7", "bob@example.test", "demo")
        self.assertEqual(status, 200)
        self.assertLess(time.monotonic() - t0, 5)
        answer = self.imap(n, "198.51.100.8", "bob@example.test", "demo")
        self.assertTrue(answer.startswith("a OK"), answer)

    def test_an_ipv6_client_counts_per_64(self):
        n = self.start()
        for k in range(LIMIT):
            answer = self.pop3(n, "2001:db8:1:2::%x" % (k + 1),
                               "bob@example.test", "wrong")
            self.assertTrue(answer.startswith("-ERR [AUTH]"), (k, answer))
        self.assertEqual(self.redis.cli(
            "GET", "ms:loginfail:addr:2001:db8:1:2::/64"), str(LIMIT))
        answer = self.pop3(n, "2001:db8:1:2::ffff", "bob@example.test",
                           "demo")
        self.assertTrue(answer.startswith("-ERR [SYS/TEMP]"), answer)
        answer = self.pop3(n, "2001:db8:1:3::1", "bob@example.test", "demo")
        self.assertTrue(answer.startswith("+OK"), answer)

    def test_redis_away_counts_in_memory(self):
        n = self.start()
        self.redis.kill()
        wait_for(lambda: "retrying every" in n.log(), 10,
                 what="the node noticing Redis gone")
        for k in range(LIMIT):
            answer = self.imap(n, "192.0.2.20", "bob@example.test", "wrong")
            self.assertTrue(answer.startswith("a NO [AUTHENTICATIONFAILED]"),
                            (k, answer))
        answer = self.imap(n, "192.0.2.20", "bob@example.test", "demo")
        self.assertTrue(answer.startswith("a NO [UNAVAILABLE]"), answer)
        answer = self.imap(n, "192.0.2.21", "bob@example.test", "demo")
        self.assertTrue(answer.startswith("a OK"), answer)

    def test_a_burst_of_parallel_guesses_stops_at_the_limit(self):
        n = self.start()
        port = n.ports["imap"]
        conns = []
        for i in range(4 * LIMIT):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall((proxy_line("192.0.2.30", port) +
                       "f LOGIN bob@example.test wrong%d\r\n" % i).encode())
            conns.append(s)
        answers = self.flood_answers(conns)
        for s in conns:
            s.close()
        self.assertEqual(len(answers), 4 * LIMIT)
        failed = sum(a.startswith("f NO [AUTHENTICATIONFAILED]")
                     for a in answers)
        refused = sum(a.startswith("f NO [UNAVAILABLE]") for a in answers)
        self.assertEqual(failed + refused, 4 * LIMIT, answers)
        # The attempts in progress count: no more guesses than the limit.
        self.assertLessEqual(failed, LIMIT, answers)

    def test_a_flood_from_one_address_does_not_starve_another(self):
        # No delays, no refusal, no connection cap per source: only the
        # hashing queue is tested.
        n = self.start(extra="login_fail_limit = 0\nlogin_delay_ms = 0\n"
                       "max_connections_per_source = 0\n")
        port = n.ports["imap"]
        conns = []
        for _ in range(FLOOD):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall((proxy_line("192.0.2.66", port) +
                       "f LOGIN bob@example.test wrong%d\r\n" % len(conns))
                      .encode())
            conns.append(s)
        time.sleep(1.5)  # the node reads every flood LOGIN first
        t0 = time.monotonic()
        answer = self.imap(n, "198.51.100.1", "alice@example.test", "demo")
        took = time.monotonic() - t0
        self.assertTrue(answer.startswith("a OK"), answer)
        # Read what the flood got: answers, none lost.
        answers = self.flood_answers(conns)
        for s in conns:
            s.close()
        self.assertEqual(len(answers), FLOOD)
        busy = sum(a.startswith("f NO [UNAVAILABLE]") for a in answers)
        failed = sum(a.startswith("f NO [AUTHENTICATIONFAILED]")
                     for a in answers)
        self.assertEqual(busy + failed, FLOOD, answers[:5])
        self.assertGreater(busy, 0)
        self.assertLess(took, 2.0, "the real login waited %.2f s behind "
                        "the flood" % took)

    def flood_answers(self, conns):
        sel = selectors.DefaultSelector()
        bufs = {}
        for s in conns:
            sel.register(s, selectors.EVENT_READ)
            bufs[s] = b""
        answers = {}
        deadline = time.monotonic() + 120
        while len(answers) < len(conns) and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                s = key.fileobj
                chunk = s.recv(65536)
                bufs[s] += chunk
                for line in bufs[s].split(b"\r\n"):
                    if line.startswith(b"f ") or not chunk:
                        answers[s] = line.decode() if chunk else "EOF"
                        sel.unregister(s)
                        break
        return list(answers.values())


if __name__ == "__main__":
    unittest.main()
