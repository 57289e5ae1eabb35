"""lbd's protocol probes on real stand-in nodes: each protocol's probe
brings a healthy node up, a node speaking the wrong protocol goes down with
the reason in the status and the log."""
import unittest

from lbdtest import LbdTestCase, free_port, wait_for


def config(port, proto, check, good, bad):
    return """[lbd]
control = {control}
workers = 1

[service front]
listen = 127.0.0.1:%d
protocol = %s
pool = p

[pool p]
check = %s
check_interval_ms = 100
check_timeout_ms = 500
check_path = /health
rise = 1
fall = 1
node = good %s
node = bad %s
""" % (port, proto, check, good.addr, bad.addr)


class CheckTest(LbdTestCase):
    def case(self, check, proto, wrong):
        good = self.node("good-" + check, proto)
        bad = self.node("bad-" + check, wrong)
        l = self.lbd(config(free_port(), proto if proto != "echo" else "tcp",
                            check, good, bad), name="lbd-" + check)
        l.wait_state("p", "good", "up")
        l.wait_state("p", "bad", "down")
        n = l.node("p", "bad")
        self.assertNotEqual(n["check_status"], "ok")
        self.assertEqual(l.node("p", "good")["check_status"], "ok")
        wait_for(lambda: "pool p node bad down: " in l.log(), 5, what="log line")
        l.stop()

    def test_smtp(self):
        self.case("smtp", "smtp", "pop3")

    def test_imap(self):
        self.case("imap", "imap", "smtp")

    def test_pop3(self):
        self.case("pop3", "pop3", "imap")

    def test_http(self):
        self.case("http", "http", "smtp")


if __name__ == "__main__":
    unittest.main()
