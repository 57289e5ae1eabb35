"""mailnode's Prometheus endpoint for real: `[listen] metrics` on a real
node over a real redis-server, real SMTP, submission, IMAP, POP3 and HTTP
traffic from smtplib, imaplib, poplib and http.client, and every line of
the exposition checked against the text format's syntax."""
import http.client
import imaplib
import json
import os
import poplib
import re
import smtplib
import socket
import subprocess
import time
import unittest

from lbdtest import wait_for
from nodetest import MAILNODE, NodeTestCase, tls_context
from wire import exchange

LISTEN = ("smtp", "submission", "imap", "pop3", "http", "metrics")

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
VALUE = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|Inf|NaN)"
SAMPLE = re.compile(r"(%s)(?:\{((?:%s)(?:,%s)*)?\})? (%s)$" %
                    (NAME, LABEL, LABEL, VALUE))
HELP = re.compile(r"# HELP (%s) (.+)$" % NAME)
TYPE = re.compile(r"# TYPE (%s) (counter|gauge|histogram|summary|untyped)$"
                  % NAME)


def parse(text, test):
    """The exposition as {(name, frozenset(labels)): value}, failing test
    on any line that is not a HELP, a TYPE or a sample in the text
    format, a sample before its family's HELP and TYPE, a counter not
    named _total, or a series given twice."""
    test.assertTrue(text.endswith("\n"), "no final newline")
    helped, typed, out = set(), {}, {}
    for n, line in enumerate(text.split("\n")[:-1], 1):
        m = HELP.match(line)
        if m:
            test.assertNotIn(m.group(1), helped, "line %d: HELP twice" % n)
            helped.add(m.group(1))
            continue
        m = TYPE.match(line)
        if m:
            test.assertNotIn(m.group(1), typed, "line %d: TYPE twice" % n)
            typed[m.group(1)] = m.group(2)
            if m.group(2) == "counter":
                test.assertTrue(m.group(1).endswith("_total"), line)
            test.assertTrue(m.group(1).startswith("mailnode_"), line)
            continue
        m = SAMPLE.match(line)
        test.assertIsNotNone(m, "line %d is not a sample: %r" % (n, line))
        name = m.group(1)
        test.assertIn(name, helped, "line %d: no HELP before" % n)
        test.assertIn(name, typed, "line %d: no TYPE before" % n)
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"',
                                      m.group(2) or ""))
        key = (name, labels)
        test.assertNotIn(key, out, "line %d: series twice" % n)
        out[key] = float(m.group(3))
    return out


def value(series, name, **labels):
    return series[(name, frozenset(labels.items()))]


class NodeMetricsTest(NodeTestCase):
    def scrape(self, node):
        c = http.client.HTTPConnection("127.0.0.1", node.ports["metrics"],
                                       timeout=10)
        try:
            c.request("GET", "/metrics")
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertTrue(r.getheader("Content-Type").startswith(
                "text/plain; version=0.0.4"))
            return parse(r.read().decode(), self)
        finally:
            c.close()

    def request(self, node, method, path):
        c = http.client.HTTPConnection("127.0.0.1", node.ports["metrics"],
                                       timeout=10)
        try:
            c.request(method, path)
            return c.getresponse().status
        finally:
            c.close()

    def test_counters_move_with_real_traffic(self):
        n = self.node(listen=LISTEN)
        s0 = self.scrape(n)
        version = subprocess.run([MAILNODE, "-V"], capture_output=True,
                                 text=True, timeout=10).stdout.split()[-1]
        self.assertEqual(value(s0, "mailnode_build_info", version=version,
                               node="mail1"), 1)
        for role in ("smtp", "submission", "imap", "pop3", "http"):
            self.assertEqual(value(s0, "mailnode_sessions_open",
                                   protocol=role), 0)
            # (start() connected to the first port once)
            self.assertEqual(value(s0, "mailnode_sessions_total",
                                   protocol=role), role == "smtp")
        self.assertNotIn(("mailnode_logins_total", frozenset(
            {("protocol", "smtp"), ("result", "ok")})), s0)  # MX: no AUTH
        self.assertEqual(value(s0, "mailnode_redis_up"), 1)
        wait_for(lambda: value(self.scrape(n), "mailnode_store_writable")
                 == 1, 10, what="first store check")

        # MX: one message stored, one unknown recipient refused (5xx).
        c = smtplib.SMTP("127.0.0.1", n.ports["smtp"], timeout=10)
        c.ehlo("x")
        c.mail("carol@remote.test")
        self.assertEqual(c.rcpt("nobody@example.test")[0] // 100, 5)
        c.rcpt("alice@example.test")
        self.assertEqual(c.data(b"Subject: m\r\n\r\nbody\r\n")[0], 250)
        c.quit()
        # Submission: a failed login, then a good one.
        c = smtplib.SMTP("127.0.0.1", n.ports["submission"], timeout=10)
        c.starttls(context=tls_context())
        c.ehlo("x")
        c.user, c.password = "alice@example.test", "wrong"
        with self.assertRaises(smtplib.SMTPAuthenticationError):
            c.auth("PLAIN", c.auth_plain)  # login() would try two ways
        c.login("alice@example.test", "demo")
        c.quit()
        # IMAP: one session held open while scraped, a failure, a login.
        m = imaplib.IMAP4("127.0.0.1", n.ports["imap"], timeout=10)
        m.starttls(ssl_context=tls_context())
        with self.assertRaises(imaplib.IMAP4.error):
            m.login("bob@example.test", "wrong")
        m.login("bob@example.test", "demo")
        s1 = self.scrape(n)
        self.assertEqual(value(s1, "mailnode_sessions_open",
                               protocol="imap"), 1)
        m.logout()
        # POP3: a good login.
        p = poplib.POP3("127.0.0.1", n.ports["pop3"], timeout=10)
        p.stls(context=tls_context())
        p.user("alice@example.test")
        p.pass_("demo")
        p.quit()
        # HTTP: a failed API login.
        h = http.client.HTTPConnection("127.0.0.1", n.ports["http"],
                                       timeout=10)
        h.request("POST", "/api/login", body=json.dumps(
            {"user": "alice@example.test", "password": "nope"}),
            headers={"Content-Type": "application/json"})
        self.assertEqual(h.getresponse().status // 100, 4)
        h.close()

        wait_for(lambda: value(self.scrape(n), "mailnode_sessions_open",
                               protocol="imap") == 0, 10, what="IMAP close")
        wait_for(lambda: value(self.scrape(n), "mailnode_sessions_open",
                               protocol="pop3") == 0, 10, what="POP3 close")
        s = self.scrape(n)
        self.assertEqual(value(s, "mailnode_sessions_total", protocol="smtp"), 2)
        self.assertEqual(value(s, "mailnode_sessions_total",
                               protocol="submission"), 1)
        self.assertEqual(value(s, "mailnode_sessions_total", protocol="imap"), 1)
        self.assertEqual(value(s, "mailnode_sessions_total", protocol="pop3"), 1)
        self.assertGreaterEqual(value(s, "mailnode_sessions_total",
                                      protocol="http"), 1)
        for proto, ok, failed in (("submission", 1, 1), ("imap", 1, 1),
                                  ("pop3", 1, 0), ("http", 0, 1)):
            self.assertEqual(value(s, "mailnode_logins_total",
                                   protocol=proto, result="ok"), ok, proto)
            self.assertEqual(value(s, "mailnode_logins_total",
                                   protocol=proto, result="failed"),
                             failed, proto)
        self.assertEqual(value(s, "mailnode_deliveries_total", to="store"), 1)
        self.assertEqual(value(s, "mailnode_deliveries_total", to="spool"), 0)
        self.assertGreaterEqual(value(s, "mailnode_smtp_rejections_total",
                                      **{"class": "5xx"}), 2)  # RCPT, AUTH
        self.assertEqual(value(s, "mailnode_spool_messages"), 0)
        # The Redis PING: one at start, then every 5 s.
        wait_for(lambda: value(self.scrape(n), "mailnode_redis_ping_seconds")
                 >= 0, 15, what="a PING answered")
        s = self.scrape(n)
        self.assertLess(value(s, "mailnode_redis_ping_seconds"), 1)
        self.assertGreaterEqual(value(s, "mailnode_store_check_seconds"), 0)
        self.assertGreater(value(s, "mailnode_store_checks_total"), 0)

    def test_spool_store_and_redis_failures_show(self):
        n = self.node(listen=LISTEN, extra_node="spool_retry_s = 600\n")
        # The domain's tree becomes a file: delivery fails, the spool keeps
        # the message (test_smtp.py's way).
        dom = os.path.join(self.store, "example.test")
        os.makedirs(dom, exist_ok=True)
        os.rename(dom, dom + ".away")
        with open(dom, "w") as f:
            f.write("x")
        self.deliver(n, b"Subject: s\r\n\r\nspooled\r\n")
        s = self.scrape(n)
        self.assertEqual(value(s, "mailnode_deliveries_total", to="spool"), 1)
        self.assertEqual(value(s, "mailnode_deliveries_total", to="store"), 0)
        self.assertEqual(value(s, "mailnode_spool_messages"), 1)
        os.unlink(dom)
        os.rename(dom + ".away", dom)
        # The store's root goes away: its check fails.
        wait_for(lambda: value(self.scrape(n), "mailnode_store_writable")
                 == 1, 10, what="store writable")
        os.rename(self.store, self.store + ".away")
        try:
            wait_for(lambda: value(self.scrape(n), "mailnode_store_writable")
                     == 0, 10, what="store check failing")
        finally:
            os.rename(self.store + ".away", self.store)
        wait_for(lambda: value(self.scrape(n), "mailnode_store_writable")
                 == 1, 10, what="store writable again")
        # Redis stops: up goes to 0 and the PINGs fail.
        failed = value(self.scrape(n), "mailnode_redis_ping_failures_total")
        self.redis.stop()
        wait_for(lambda: value(self.scrape(n), "mailnode_redis_up") == 0, 10,
                 what="redis down")
        wait_for(lambda: value(self.scrape(n),
                               "mailnode_redis_ping_failures_total") > failed,
                 15, what="a PING failed")

    def test_only_get_metrics_is_answered(self):
        n = self.node(listen=LISTEN)
        self.assertEqual(self.request(n, "GET", "/"), 404)
        self.assertEqual(self.request(n, "GET", "/metricsx"), 404)
        self.assertEqual(self.request(n, "POST", "/metrics"), 405)
        self.assertEqual(self.request(n, "DELETE", "/metrics"), 405)
        self.assertEqual(self.request(n, "GET", "/metrics?x=1"), 200)
        port = n.ports["metrics"]
        out = exchange(port, b"garbage\r\n\r\n", greeting=False)
        self.assertTrue(out.startswith("HTTP/1.0 400"), out)
        # A request head past the bound: 400, not a wait for ever.
        out = exchange(port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000,
                       greeting=False)
        self.assertTrue(out.startswith("HTTP/1.0 400"), out)
        # A client that says nothing is closed after the read timeout.
        s = socket.create_connection(("127.0.0.1", port), timeout=15)
        start = time.monotonic()
        try:
            self.assertEqual(s.recv(100), b"")
        finally:
            s.close()
        self.assertLess(time.monotonic() - start, 10)
        # The node still serves its mail ports and the endpoint.
        self.scrape(n)

    def test_alert_rules_name_real_metrics(self):
        import yaml  # python3-yaml (scripts/install-deps.sh)
        with open(os.path.join(os.environ["MS_SRC"], "etc",
                               "mailnode-alerts.yml")) as f:
            rules = yaml.safe_load(f)["groups"][0]["rules"]
        names = {r["alert"] for r in rules}
        for want in ("MailnodeDown", "MailnodeStoreUnwritable",
                     "MailnodeRedisDown", "MailnodeSpoolGrowing",
                     "MailnodeLoginFailuresSurge"):
            self.assertIn(want, names)
        n = self.node(listen=LISTEN)
        scraped = {name for name, _ in self.scrape(n)}
        for r in rules:
            self.assertIn(r["labels"]["severity"], ("warning", "critical"))
            for name in re.findall(r"mailnode_[a-z_]+", r["expr"]):
                self.assertIn(name, scraped, r["alert"])
            for label in re.findall(r'([a-z]+)=~?"', r["expr"]):
                self.assertIn(label, ("job", "result"), r["alert"])

    def test_metrics_address_must_be_its_own(self):
        n = self.node(listen=("smtp",), start=False)
        with open(n.path, "a") as f:
            f.write("metrics = 127.0.0.1:%d\n" % n.ports["smtp"])
        r = subprocess.run([MAILNODE, "-c", n.path], capture_output=True,
                           text=True, timeout=10)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("metrics 127.0.0.1:%d already used by smtp" %
                      n.ports["smtp"], r.stderr)


if __name__ == "__main__":
    unittest.main()
