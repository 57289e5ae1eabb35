"""lbd's protocol probes on real stand-in nodes: each protocol's probe
brings a healthy node up, a node speaking the wrong protocol goes down with
the reason in the status and the log."""
import os
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
fall = 3
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
        # A slow probe on a loaded machine may time out now and then: the
        # good node's probes pass again within a few rounds.
        wait_for(lambda: l.node("p", "good")["check_status"] == "ok", 5,
                 what="good node's probe ok")
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

    def proxied(self, version):
        # Nodes that expect a PROXY header get one from the probes too
        # (v1 UNKNOWN, v2 LOCAL), as the pool's services send it.
        good = self.node("good", "smtp", proxy=True)
        plain = self.node("plain", "smtp")  # fills config()'s second slot
        port = free_port()
        cfg = config(port, "smtp", "smtp", good, plain).replace(
            "pool = p\n", "pool = p\nproxy_protocol = %s\n" % version)
        l = self.lbd(cfg, name="lbd-proxy-" + version)
        l.wait_state("p", "good", "up")
        wait_for(lambda: l.node("p", "good")["check_status"] == "ok", 5,
                 what="probe ok")
        l.stop()
        # The node read a valid header on every probe (it logs bad ones).
        with open(os.path.join(self.tmp, "node-good.log")) as f:
            log = f.read()
        for bad in ("not a PROXY header", "v2 command", "v2 family", "v1 too long"):
            self.assertNotIn(bad, log)

    def test_probes_send_proxy_v1(self):
        self.proxied("v1")

    def test_probes_send_proxy_v2(self):
        self.proxied("v2")

    def test_services_sharing_a_pool_must_agree_on_proxy(self):
        import subprocess
        from lbdtest import LBD
        good = self.node("g", "smtp")
        cfg = config(free_port(), "smtp", "smtp", good, good).replace(
            "node = bad", "#").replace(
            "[pool p]", "[service other]\nlisten = 127.0.0.1:%d\npool = p\n"
            "proxy_protocol = v2\n\n[pool p]" % free_port())
        path = os.path.join(self.tmp, "agree.ini")
        with open(path, "w") as f:
            f.write(cfg.replace("{control}", os.path.join(self.tmp, "x.sock")))
        r = subprocess.run([LBD, "-t", "-c", path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("proxy_protocol differs from service front's", r.stderr)


if __name__ == "__main__":
    unittest.main()
