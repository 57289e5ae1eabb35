"""lbd's control plane for real: the control socket (mode, stale and live
sockets, bounds and timeouts), every lbctl command's visible effect, watch,
timed maintenance, removal that waits for connections, the state file
across a restart, and /metrics. Stand-in nodes are real processes (see
lbdtest.py). Run from tests/integration with MS_BIN=<build>/bin:

    python3 -m unittest -v test_control
"""
import json
import os
import signal
import socket
import stat
import time
import unittest

from lbdtest import LbdTestCase, Lbd, free_port, greeting, recv_line, wait_for


def config(port, nodes, check="tcp", lbd_extra="", rise=2):
    lines = "".join("node = %s %s\n" % (n.name, n.addr) for n in nodes)
    return """[lbd]
control = {control}
state_file = {state}
workers = 1
grace_s = 2
%s
[service front]
listen = 127.0.0.1:%d
protocol = smtp
pool = p
connect_timeout_ms = 500

[pool p]
balance = roundrobin
check = %s
check_interval_ms = 200
check_timeout_ms = 300
rise = %d
fall = 2
%s""" % (lbd_extra, port, check, rise, lines)


def http_get(port, request, timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    return out.decode("latin-1")


class ControlTest(LbdTestCase):
    def start(self, n=1, **kw):
        nodes = [self.node("n%d" % i) for i in range(1, n + 1)]
        port = free_port()
        l = self.lbd(config(port, nodes, **kw))
        for node in nodes:
            l.wait_state("p", node.name, "up")
        return nodes, port, l

    def served_by(self, port, count=10):
        seen = set()
        for _ in range(count):
            seen.add(greeting(port).split()[1])
        return seen

    # -- the socket itself -------------------------------------------------

    def test_socket_mode_default_and_configured(self):
        _, _, l = self.start()
        st = os.stat(l.control)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        node = self.node("m1")
        l2 = self.lbd(config(free_port(), [node], lbd_extra="control_mode = 0600"),
                      name="lbd2")
        self.assertEqual(stat.S_IMODE(os.stat(l2.control).st_mode), 0o600)

    def test_ping_and_status(self):
        _, _, l = self.start(2)
        self.assertEqual(l.ctl("ping").stdout, "pong\n")
        text = l.ctl("status").stdout.splitlines()
        self.assertEqual(text[0].split(), ["POOL", "NODE", "ADDRESS", "STATE",
                                           "HEALTH", "WEIGHT", "ACTIVE", "TOTAL",
                                           "LAST-CHANGE", "CHECK"])
        self.assertEqual([r.split()[:5] for r in text[1:]],
                         [["p", n, self.nodes[i].addr, "up", "up"]
                          for i, n in enumerate(("n1", "n2"))])
        doc = json.loads(l.ctl("status", "--json").stdout)
        self.assertEqual(doc["services"][0]["name"], "front")
        self.assertEqual(set(doc["pools"][0]["nodes"][0]),
                         {"name", "address", "state", "health", "weight",
                          "active", "total", "check_status", "last_change_s",
                          "check_latency_ms", "bytes_in", "bytes_out",
                          "connect_failures"})

    def test_stale_socket_replaced_live_socket_refused(self):
        nodes, port, l = self.start()
        # a second lbd on the same control socket refuses to start
        other = Lbd(self.tmp, config(free_port(), nodes), name="other")
        other.control = l.control
        other.write_config(config(free_port(), nodes).replace(
            "{control}", l.control))
        other.start(wait=False)
        self.lbds.append(other)
        self.assertNotEqual(other.proc.wait(10), 0)
        self.assertIn("another", other.log())
        self.assertTrue(l.ping())
        # a killed lbd leaves its socket behind: the next one replaces it
        l.signal(signal.SIGKILL)
        l.proc.wait()
        self.assertTrue(os.path.exists(l.control))
        self.assertFalse(l.ping())
        l.logf.close()
        l.start()
        self.assertTrue(l.ping())
        self.assertIn("stale", l.log())
        # SIGTERM removes it
        l.stop()
        self.assertFalse(os.path.exists(l.control))

    # -- bad clients -------------------------------------------------------

    def test_garbage_long_line_and_silent_client(self):
        _, _, l = self.start()
        self.assertTrue(l.raw("foo bar").startswith('error: unknown command "foo"'))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(l.control)
            s.sendall(bytes(range(256)) + b"\n")
            self.assertTrue(recv_line(s).startswith("error: bad byte"))
        # 1 MiB without a newline: an error and the end of the connection
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(l.control)
            try:
                s.sendall(b"p" * (1 << 20))
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.assertEqual(recv_line(s), "error: line too long\n")
        self.assertTrue(l.ping())
        # a silent client: closed after the idle timeout, others go on
        silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        silent.settimeout(10)
        silent.connect(l.control)
        t0 = time.monotonic()
        self.assertTrue(l.ping())
        self.assertEqual(l.ctl("ping").stdout, "pong\n")
        answer = recv_line(silent)
        waited = time.monotonic() - t0
        self.assertTrue(answer.startswith("error: timeout"), answer)
        self.assertEqual(silent.recv(10), b"")
        silent.close()
        self.assertGreater(waited, 3)
        self.assertLess(waited, 9)
        # many clients at once, some silent: lbd still answers
        socks = []
        for _ in range(20):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(l.control)
            socks.append(c)
        self.assertTrue(l.ping())
        for c in socks:
            c.close()
        self.assertTrue(l.ping())

    # -- commands ----------------------------------------------------------

    def test_pool_add_is_probed_then_gets_traffic(self):
        nodes, port, l = self.start()
        watcher = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        watcher.settimeout(10)
        watcher.connect(l.control)
        watcher.sendall(b"watch\n")
        time.sleep(0.2)
        n2 = self.node("n2")
        l.ctl("pool", "add", "p", "n2", n2.addr, "--weight", "2")
        r = l.ctl("pool", "add", "p", "n2", n2.addr, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn('node "n2" already exists in pool "p"', r.stdout + r.stderr)
        # Down until probed: the watch lines below show new -> down ->
        # up in that order (reading the state here raced the probes on a
        # slow sanitizer build).
        self.assertEqual(l.node("p", "n2")["weight"], 2)
        l.wait_state("p", "n2", "up", timeout=5)
        self.assertEqual(self.served_by(port, 9), {"n1", "n2"})
        lines = [recv_line(watcher), recv_line(watcher)]
        watcher.close()
        self.assertRegex(lines[0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                                   r"p n2 new -> down pool add\n$")
        self.assertRegex(lines[1], r"Z p n2 down -> up .*\(2/2\)\n$")
        self.assertIn("pool p node n2 up:", l.log())

    def test_drain_disable_enable_weight(self):
        nodes, port, l = self.start(2)
        l.ctl("node", "drain", "p", "n2")
        n2 = l.node("p", "n2")
        self.assertEqual((n2["state"], n2["health"]), ("drain", "up"))
        self.assertEqual(self.served_by(port, 6), {"n1"})
        l.ctl("node", "disable", "p", "n2")
        self.assertEqual(l.node("p", "n2")["state"], "maint")
        l.ctl("node", "enable", "p", "n2")
        self.assertEqual(l.node("p", "n2")["state"], "up")
        self.assertEqual(self.served_by(port, 6), {"n1", "n2"})
        l.ctl("node", "weight", "p", "n2", "3")
        self.assertEqual(l.node("p", "n2")["weight"], 3)
        seen = {}
        for _ in range(8):
            name = greeting(port).split()[1]
            seen[name] = seen.get(name, 0) + 1
        self.assertEqual(seen, {"n1": 2, "n2": 6})
        r = l.ctl("node", "weight", "p", "n9", "3", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn('unknown node "n9" in pool "p"', r.stdout + r.stderr)
        self.assertTrue(l.raw("node weight p n2 abc").startswith(
            'error: bad weight "abc"'))
        self.assertEqual(l.raw("pool add nope n1 127.0.0.1:1"),
                         'error: unknown pool "nope"\n')

    def test_disable_for_ends_by_itself(self):
        _, _, l = self.start(2)
        l.ctl("node", "disable", "p", "n1", "--for", "1")
        self.assertEqual(l.node("p", "n1")["state"], "maint")
        t0 = time.monotonic()
        l.wait_state("p", "n1", "up", timeout=5)
        self.assertGreater(time.monotonic() - t0, 0.5)
        self.assertIn("pool p node n1 up: maintenance ended", l.log())

    def test_remove_waits_for_established_connection(self):
        nodes, port, l = self.start(2)
        client = socket.create_connection(("127.0.0.1", port), timeout=5)
        name = recv_line(client).split()[1]
        other = "n2" if name == "n1" else "n1"
        l.ctl("pool", "remove", "p", name)
        self.assertEqual(l.node("p", name)["state"], "removing")
        self.assertEqual(l.node("p", name)["active"], 1)
        self.assertEqual(self.served_by(port, 4), {other})
        time.sleep(1.5)
        self.assertEqual(l.node("p", name)["state"], "removing")
        client.sendall(b"QUIT\r\n")
        recv_line(client)
        client.close()
        wait_for(lambda: l.node("p", name) is None, 5, what="removal")
        self.assertIn("pool p node %s gone" % name, l.log())

    def test_state_file_survives_restart(self):
        nodes, port, l = self.start(2)
        n3 = self.node("n3")
        l.ctl("pool", "add", "p", "n3", n3.addr, "--maxconn", "5")
        l.ctl("node", "drain", "p", "n1")
        l.ctl("node", "weight", "p", "n2", "4")
        l.ctl("pool", "remove", "p", "n2")
        wait_for(lambda: l.node("p", "n2") is None, 5, what="n2 removed")
        with open(l.state) as f:
            text = f.read()
        self.assertTrue(text.startswith("lbd-state 1\n"), text)
        self.assertIn("removed p n2\n", text)
        l.stop()
        l.start()
        n = l.node("p", "n3")
        self.assertIsNotNone(n, l.status())
        l.wait_state("p", "n3", "up", timeout=5)
        self.assertEqual(l.node("p", "n1")["state"], "drain")
        self.assertIsNone(l.node("p", "n2"))
        self.assertEqual(self.served_by(port, 4), {"n3"})

    # -- metrics -----------------------------------------------------------

    def test_metrics(self):
        mport = free_port()
        nodes, port, l = self.start(
            2, lbd_extra="metrics = 127.0.0.1:%d" % mport)
        greeting(port)
        l.ctl("node", "drain", "p", "n2")
        out = http_get(mport, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        head, body = out.split("\r\n\r\n", 1)
        self.assertTrue(head.startswith("HTTP/1.0 200 OK"), head)
        for family in ("lbd_service_connections_active",
                       "lbd_service_connections_total",
                       "lbd_service_bytes_in_total",
                       "lbd_service_bytes_out_total",
                       "lbd_service_refused_total",
                       "lbd_node_connections_active",
                       "lbd_node_connections_total",
                       "lbd_node_bytes_in_total", "lbd_node_bytes_out_total",
                       "lbd_node_up", "lbd_node_state", "lbd_node_check_ok",
                       "lbd_node_check_latency_seconds",
                       "lbd_node_connect_failures_total"):
            self.assertIn("# TYPE %s " % family, body)
            self.assertIn("# HELP %s " % family, body)
        self.assertIn('lbd_service_connections_total{service="front"} 1\n', body)
        self.assertIn('lbd_node_state{pool="p",node="n2",address="%s",'
                      'state="drain"} 1\n' % nodes[1].addr, body)
        self.assertIn('lbd_node_up{pool="p",node="n1",address="%s"} 1\n'
                      % nodes[0].addr, body)
        self.assertTrue(http_get(mport, b"GET /other HTTP/1.0\r\n\r\n")
                        .startswith("HTTP/1.0 404"))
        self.assertTrue(http_get(mport, b"\x00\x01garbage\r\n\r\n")
                        .startswith("HTTP/1.0 400"))
        self.assertTrue(http_get(mport, b"G" * 20000).startswith("HTTP/1.0 400"))
        # a silent client is closed after the read timeout
        with socket.create_connection(("127.0.0.1", mport), timeout=10) as s:
            t0 = time.monotonic()
            self.assertEqual(s.recv(100), b"")
            self.assertLess(time.monotonic() - t0, 9)
        self.assertTrue(l.ping())


if __name__ == "__main__":
    unittest.main()
