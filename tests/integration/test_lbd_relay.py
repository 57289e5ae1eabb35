"""lbd relaying for real: distribution, failover on a node's SIGKILL, the
pool-empty replies, PROXY v1/v2, byte-exact bulk with half-close, reload,
graceful stop, limits, IPv6. Stand-in nodes are real processes."""
import concurrent.futures
import hashlib
import os
import random
import signal
import socket
import struct
import subprocess
import threading
import time
import unittest

from lbdtest import (LbdTestCase, free_port, greeting, io_uring_allowed,
                     recv_line, wait_for)


def config(port, nodes, proto="smtp", balance="roundrobin", check="tcp",
           extra_service="", extra_pool="", workers=1, lbd_extra=""):
    lines = "".join("node = %s %s\n" % (n.name, n.addr) for n in nodes)
    return """[lbd]
control = {control}
state_file = {state}
workers = %d
grace_s = 5
%s
[service front]
listen = 127.0.0.1:%d
protocol = %s
pool = p
retries = 2
connect_timeout_ms = 500
%s
[pool p]
balance = %s
check = %s
check_interval_ms = 200
check_timeout_ms = 300
rise = 2
fall = 2
%s%s""" % (workers, lbd_extra, port, proto, extra_service, balance, check,
           extra_pool, lines)


class RelayTest(LbdTestCase):
    def three_smtp(self, **kw):
        nodes = [self.node("n%d" % i, "smtp") for i in (1, 2, 3)]
        port = free_port()
        l = self.lbd(config(port, nodes, **kw))
        for n in nodes:
            l.wait_state("p", n.name, "up")
        return nodes, port, l

    def test_roundrobin_spreads_evenly(self):
        nodes, port, l = self.three_smtp()
        seen = {}
        for _ in range(30):
            g = greeting(port)
            name = g.split()[1]
            seen[name] = seen.get(name, 0) + 1
        self.assertEqual(seen, {"n1": 10, "n2": 10, "n3": 10})
        st = l.status()
        self.assertEqual(st["services"][0]["total"], 30)

    def test_greeting_names_real_client_without_proxy(self):
        nodes, port, l = self.three_smtp()
        g = greeting(port)
        self.assertTrue(g.startswith("220 n"), g)

    def test_sigkill_of_a_node_costs_no_connection(self):
        nodes, port, l = self.three_smtp()
        nodes[1].kill()
        failures, names = 0, set()
        for i in range(100):
            try:
                g = greeting(port, timeout=2)
                if not g.startswith("220 "):
                    failures += 1
                else:
                    names.add(g.split()[1])
            except OSError:
                failures += 1
            time.sleep(0.01)
        self.assertEqual(failures, 0)
        self.assertEqual(names, {"n1", "n3"})
        l.wait_state("p", "n2", "down", timeout=5)
        self.assertIn("pool p node n2 down: connect refused", l.log())
        # Back up after a restart on the same port.
        nodes[1].start()
        l.wait_state("p", "n2", "up", timeout=10)
        names = {greeting(port).split()[1] for _ in range(9)}
        self.assertIn("n2", names)

    def http_get(self, port, delay=0.0):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            time.sleep(delay)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return data.decode("latin-1")
                data += chunk

    def test_sigkill_of_a_node_client_speaks_first(self):
        # The client's request is read while lbd connects; a refused
        # connect hands it, unsent, to the next node.
        nodes = [self.node("h%d" % i, "http") for i in (1, 2, 3)]
        port = free_port()
        l = self.lbd(config(port, nodes, proto="http", check="none"))
        nodes[1].kill()
        answers = [self.http_get(port) for _ in range(30)]
        bad = [a for a in answers if not a.startswith("HTTP/1.1 200 OK")]
        self.assertEqual(bad, [])
        self.assertEqual({a.split("\r\n\r\n", 1)[1].split()[0]
                          for a in answers}, {"h1", "h3"})

    def test_silent_connect_outlives_connect_timeout(self):
        # Neither side says a word for longer than connect_timeout_ms: the
        # connect completed, so it is neither a failure nor a retry.
        n = self.node("h1", "http")
        port = free_port()
        l = self.lbd(config(port, [n], proto="tcp", check="none"))
        answer = self.http_get(port, delay=1.2)  # connect_timeout_ms = 500
        self.assertTrue(answer.startswith("HTTP/1.1 200 OK"), answer)
        self.assertIn("h1 peer=", answer)
        self.assertNotIn("h1 down", l.log())
        st = l.status()
        self.assertEqual(st["services"][0]["total"], 1)

    def test_connect_timeout_hands_the_client_to_the_next_node(self):
        # A node whose accept queue is full drops the SYN: the connect
        # neither completes nor fails until connect_timeout_ms (500 ms)
        # ends it, and the client, whose request waited meanwhile, is
        # answered by the next node.
        hole = socket.socket()
        self.addCleanup(hole.close)
        hole.bind(("127.0.0.1", 0))
        hole.listen(0)
        for _ in range(2):  # backlog 0 holds one: the next SYNs are dropped
            f = socket.socket()
            self.addCleanup(f.close)
            f.setblocking(False)
            f.connect_ex(hole.getsockname())
        probe = socket.socket()
        self.addCleanup(probe.close)
        probe.settimeout(0.3)
        self.assertRaises(socket.timeout, probe.connect, hole.getsockname())

        class Hole:
            name = "bh"
            addr = "127.0.0.1:%d" % hole.getsockname()[1]
        n = self.node("h1", "http")
        port = free_port()
        l = self.lbd(config(port, [Hole, n], proto="http", check="none"))
        times = []
        for _ in range(2):  # round robin: one of the two tries the hole first
            t0 = time.monotonic()
            answer = self.http_get(port)
            times.append(time.monotonic() - t0)
            self.assertTrue(answer.startswith("HTTP/1.1 200 OK"), answer)
            self.assertIn("h1 peer=", answer)
        self.assertGreater(max(times), 0.45, times)
        self.assertLess(min(times), 0.4, times)
        self.assertEqual(l.node("p", "bh")["connect_failures"], 1)
        self.assertEqual(l.node("p", "h1")["total"], 2)

    def test_client_fin_while_connecting_reaches_node(self):
        # The client hangs up before the connect is known to be done and
        # before any byte moved: its FIN still reaches the node at once
        # (not at the connect timeout), and the node's FIN comes back.
        n = self.node("h1", "http")
        port = free_port()
        l = self.lbd(config(port, [n], proto="tcp", check="none"))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            t0 = time.monotonic()
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(s.recv(100), b"")
            self.assertLess(time.monotonic() - t0, 0.4)  # < connect_timeout_ms
        self.assertNotIn("h1 down", l.log())

    def test_pool_empty_replies(self):
        cases = [("smtp", b"421 4.3.2 Service not available, try again later\r\n"),
                 ("imap", b"* BYE [UNAVAILABLE] Service temporarily unavailable\r\n"),
                 ("pop3", b"-ERR [SYS/TEMP] Service temporarily unavailable\r\n")]
        dead = free_port()
        for proto, reply in cases:
            with self.subTest(proto=proto):
                port = free_port()
                cfg = config(port, [], proto=proto, check="none").replace(
                    "[pool p]", "[pool p]\nnode = gone 127.0.0.1:%d" % dead)
                l = self.lbd(cfg, name="lbd-" + proto)
                with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
                    data = b""
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                self.assertEqual(data, reply)
                l.stop()

    def test_pool_empty_http_503(self):
        port = free_port()
        l = self.lbd(config(port, [], proto="http", check="none"))
        out = subprocess.run(["python3", "-c", """
import http.client, sys
c = http.client.HTTPConnection('127.0.0.1', %d, timeout=3)
c.request('GET', '/')
r = c.getresponse()
print(r.status, r.getheader('Retry-After'))
""" % port], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.stdout.strip(), "503 30", out.stderr)

    def test_pool_empty_tcp_closes(self):
        port = free_port()
        l = self.lbd(config(port, [], proto="tcp", check="none"))
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            self.assertEqual(s.recv(100), b"")

    def proxy_case(self, version):
        n = self.node("p1", "smtp", proxy=True)
        port = free_port()
        self.lbd(config(port, [n], check="none",
                        extra_service="proxy_protocol = %s\n" % version))
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            me = "%s:%d" % s.getsockname()[:2]
            g = recv_line(s)
        # the client's address, then the one it connected to: lbd's listener
        self.assertEqual(g.strip(), "220 p1 ESMTP peer=%s %s 127.0.0.1:%d"
                         % (version, me, port))

    def test_proxy_v1_carries_client_address(self):
        self.proxy_case("v1")

    def test_proxy_v2_carries_client_address(self):
        self.proxy_case("v2")

    def test_8mb_byte_exact_with_half_close(self):
        n = self.node("e1", "echo")
        port = free_port()
        self.lbd(config(port, [n], proto="tcp", check="tcp"))
        payload = os.urandom(8 * 1024 * 1024)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            self.assertTrue(recv_line(s).startswith("e1 "))
            def send():
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)  # FIN one way only
            t = threading.Thread(target=send)
            t.start()
            got = bytearray()
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += chunk
            t.join()
        self.assertEqual(len(got), len(payload))
        self.assertEqual(hashlib.sha256(got).digest(),
                         hashlib.sha256(payload).digest())

    def test_a_client_that_pauses_reading_gets_every_byte(self):
        # The echo node sends 8 MiB back while the client reads nothing
        # for a while: the buffers on the way fill, lbd's sends to the
        # client end in EAGAIN and it stops reading the node (whose
        # readiness it keeps). Once the client reads, the client socket's
        # next writable edge must restart both, down to the last byte.
        n = self.node("e1", "echo")
        port = free_port()
        self.lbd(config(port, [n], proto="tcp", check="tcp"))
        payload = os.urandom(8 * 1024 * 1024)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            self.assertTrue(recv_line(s).startswith("e1 "))
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            time.sleep(0.5)  # the echo fills every buffer on its way
            got = bytearray()
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                got += chunk
        self.assertEqual(hashlib.sha256(got).digest(),
                         hashlib.sha256(payload).digest())

    def test_few_buffers_many_connections_every_byte(self):
        # io_uring_buffers = 16 for eight connections that echo 512 KiB
        # each in 1 KiB writes, read only after a pause: the directions
        # hold buffers while the clients do not read and pause their
        # receives; the worker runs out of buffers, and the directions
        # that find none splice instead. Every byte arrives. With
        # io_engine = epoll the key is unused.
        n = self.node("e1", "echo")
        port = free_port()
        l = self.lbd(config(port, [n], proto="tcp", check="tcp",
                            lbd_extra="io_uring_buffers = 16\n"))
        payloads = [os.urandom(512 * 1024) for _ in range(8)]
        got = [bytearray() for _ in payloads]

        def one(i):
            with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.assertTrue(recv_line(s).startswith("e1 "))
                def send():
                    for k in range(0, len(payloads[i]), 1024):
                        s.sendall(payloads[i][k:k + 1024])
                    s.shutdown(socket.SHUT_WR)
                t = threading.Thread(target=send)
                t.start()
                time.sleep(0.5)
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got[i] += chunk
                t.join()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for i, p in enumerate(payloads):
            self.assertEqual(hashlib.sha256(got[i]).digest(),
                             hashlib.sha256(p).digest(), "connection %d" % i)
        if self.engine() == "uring":
            self.assertIn("worker 0: all 16 receive buffers in use", l.log())

    def engine(self):
        """The io_engine lbd runs with here: uring by default, epoll where
        this kernel or its filters do not allow io_uring."""
        return self.IO_ENGINE or ("uring" if io_uring_allowed() else "epoll")

    def test_mixed_endings_leave_nothing_behind(self):
        # 160 connections, 16 at a time, each ending its own way: a full
        # exchange of 0 to 256 KiB in random writes, a reset (SO_LINGER 0)
        # mid-upload, a close before any byte, a close with the answer
        # half read. Every full exchange is byte-exact, lbd counts no
        # connection open at the end (none leaked, none freed twice: the
        # sanitizer build checks that), and serves the next one.
        n = self.node("e1", "echo")
        port = free_port()
        l = self.lbd(config(port, [n], proto="tcp", check="tcp"))
        rnd = random.Random(19)
        plans = [(rnd.choice(("full", "full", "reset", "close", "half")),
                  rnd.randrange(0, 256 * 1024), rnd.randrange(1, 70000),
                  rnd.randrange(1 << 30)) for _ in range(160)]
        bad = []

        def one(plan):
            how, size, chunk, seed = plan
            payload = random.Random(seed).randbytes(size)
            s = socket.create_connection(("127.0.0.1", port), timeout=20)
            try:
                if how == "close":
                    return
                if not recv_line(s).startswith("e1 "):
                    bad.append((plan, "no greeting"))
                    return
                if how == "reset":
                    s.sendall(payload[:size // 2])
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
                    return
                for k in range(0, size, chunk):
                    s.sendall(payload[k:k + chunk])
                s.shutdown(socket.SHUT_WR)
                got = bytearray()
                while how == "full" or len(got) < size // 2:
                    data = s.recv(65536)
                    if not data:
                        break
                    got += data
                if how == "full" and bytes(got) != payload:
                    bad.append((plan[:3], "%d of %d bytes" % (len(got), size)))
            except OSError as e:
                bad.append((plan[:3], repr(e)))
            finally:
                s.close()

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(one, plans))
        self.assertEqual(bad, [])
        wait_for(lambda: l.status()["services"][0]["active"] == 0, 10,
                 what="no connection left open")
        self.assertEqual(l.status()["services"][0]["total"], 160)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            self.assertTrue(recv_line(s).startswith("e1 "))

    def test_io_engine_named_in_log(self):
        nodes, port, l = self.three_smtp()
        self.assertIn("worker 0: io_engine %s" % self.engine(), l.log())
        if self.engine() == "epoll" and self.IO_ENGINE is None:
            self.assertIn("io_engine uring: no ring", l.log())

    def smtp_through_lbd(self, nconns, lbd_extra):
        """nconns connections through lbd to a stand-in SMTP node, their
        greetings read."""
        node = self.node("rt", "smtp")
        port = free_port()
        self.lbd(config(port, [node], check="none", lbd_extra=lbd_extra))
        socks = [socket.create_connection(("127.0.0.1", port), timeout=20)
                 for _ in range(nconns)]
        for s in socks:
            self.assertTrue(recv_line(s).startswith("220 rt "))
        return socks

    def test_io_collect_leaves_light_traffic_alone(self):
        # One command at a time: no poll is busy, so the 10 ms collect
        # interval never applies (it would cost about 20 ms a round trip).
        s, = self.smtp_through_lbd(1, "io_collect_us = 10000\n")
        t0 = time.monotonic()
        for _ in range(30):
            s.sendall(b"NOOP\r\n")
            self.assertTrue(recv_line(s).startswith("250"))
        elapsed = time.monotonic() - t0
        s.close()
        self.assertLess(elapsed, 0.45)

    def test_io_collect_gathers_a_busy_workers_events(self):
        # 32 clients at once: the polls are busy, so the worker waits up
        # to 10 ms before each next one (microseconds otherwise). Each
        # round's first poll after the idle wait is a burst, not load, so
        # a round brings about one such wait.
        socks = self.smtp_through_lbd(32, "io_collect_us = 10000\n")
        t0 = time.monotonic()
        for _ in range(10):
            for s in socks:
                s.sendall(b"NOOP\r\n")
            for s in socks:
                self.assertTrue(recv_line(s).startswith("250"))
        elapsed = time.monotonic() - t0
        for s in socks:
            s.close()
        self.assertGreater(elapsed, 0.05)
        self.assertLess(elapsed, 10)

    def test_small_writes_are_not_held_by_nagle(self):
        # A command in two segments, after round trips that put the node's
        # side in delayed-ACK mode: with Nagle on lbd's socket to the node,
        # the second half would wait for the ACK of the first (40 ms).
        s, = self.smtp_through_lbd(1, "")
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(5):
            s.sendall(b"NOOP\r\n")
            self.assertTrue(recv_line(s).startswith("250"))
        waits = []
        for _ in range(7):
            t0 = time.monotonic()
            s.sendall(b"NO")
            time.sleep(0.002)
            s.sendall(b"OP\r\n")
            self.assertTrue(recv_line(s).startswith("250"))
            waits.append(time.monotonic() - t0)
        s.close()
        self.assertLess(sorted(waits)[len(waits) // 2], 0.025, waits)

    def test_node_fin_first_keeps_client_direction_open(self):
        n = self.node("f1", "finfirst")
        port = free_port()
        self.lbd(config(port, [n], proto="tcp", check="tcp"))
        payload = os.urandom(1024 * 1024)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
            got = b""
            while True:  # the greeting, then the node's FIN
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            self.assertTrue(got.startswith(b"f1 "), got)
            s.sendall(payload)  # the other way stays open
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(s.recv(100), b"")
        want = "finfirst got %d bytes sha256 %s" % (
            len(payload), hashlib.sha256(payload).hexdigest())
        log = os.path.join(self.tmp, "node-f1.log")
        wait_for(lambda: want in open(log).read(), 10, what=want)

    def test_reload_keeps_established_connection_and_health(self):
        nodes = [self.node("n%d" % i, "echo") for i in (1, 2)]
        port = free_port()
        l = self.lbd(config(port, nodes[:1], proto="tcp"))
        l.wait_state("p", "n1", "up")
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.assertTrue(recv_line(s).startswith("n1 "))
        s.sendall(b"hello ")
        before = l.node("p", "n1")
        self.assertEqual(before["total"], 1)
        # Add n2 and a second service, then SIGHUP.
        l.write_config(config(port, nodes, proto="tcp").replace(
            "[pool p]", "[service second]\nlisten = 127.0.0.1:%d\nprotocol = tcp\npool = p\n\n[pool p]" % free_port()))
        l.signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in l.log(), 5, what="reload")
        l.wait_state("p", "n2", "up")
        after = l.node("p", "n1")
        # n1 kept its state history: the same last change, not a new node.
        self.assertGreaterEqual(after["last_change_s"], before["last_change_s"])
        self.assertEqual(after["total"], before["total"])
        s.sendall(b"world")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(s.recv(100), b"hello world")
        s.close()
        names = set()
        for _ in range(4):
            with socket.create_connection(("127.0.0.1", port), timeout=3) as c:
                names.add(recv_line(c).split()[0])
        self.assertEqual(names, {"n1", "n2"})

    def test_reload_with_bad_config_keeps_running(self):
        nodes, port, l = self.three_smtp()
        l.write_config("[lbd]\ncontrol = {control}\nbogus = 1\n")
        l.signal(signal.SIGHUP)
        wait_for(lambda: "reload of" in l.log(), 5, what="refusal")
        self.assertIn('unknown key "bogus"', l.log())
        self.assertTrue(greeting(port).startswith("220 "))

    def test_sigterm_lets_connections_finish(self):
        n = self.node("e1", "echo")
        port = free_port()
        l = self.lbd(config(port, [n], proto="tcp", check="none"))
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.assertTrue(recv_line(s).startswith("e1 "))
        l.signal(signal.SIGTERM)
        wait_for(lambda: not os.path.exists(l.control), 5, what="socket removed")
        # New connections are refused, the established one still works.
        def refused():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return False
            except OSError:
                return True
        wait_for(refused, 5, what="listener closed")
        s.sendall(b"still here")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(s.recv(100), b"still here")
        s.close()
        self.assertEqual(l.proc.wait(10), 0)

    def test_max_connections_and_maxconn(self):
        n = self.node("e1", "echo")
        port = free_port()
        l = self.lbd(config(port, [n], proto="smtp", check="none",
                            extra_service="max_connections = 2\n"))
        held = []
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", port), timeout=3)
            self.assertTrue(recv_line(s).startswith("e1 "))
            held.append(s)
        self.assertTrue(greeting(port).startswith("421 "))
        for s in held:
            s.close()
        wait_for(lambda: l.status()["services"][0]["active"] == 0, 5,
                 what="connections closed")
        self.assertTrue(greeting(port).startswith("e1 "))

    def test_node_maxconn(self):
        nodes = [self.node("e%d" % i, "echo") for i in (1, 2)]
        port = free_port()
        cfg = config(port, [], proto="tcp", check="none") + \
            "node = e1 %s maxconn=1\nnode = e2 %s maxconn=1\n" % (nodes[0].addr, nodes[1].addr)
        self.lbd(cfg)
        a = socket.create_connection(("127.0.0.1", port), timeout=3)
        b = socket.create_connection(("127.0.0.1", port), timeout=3)
        self.assertEqual({recv_line(a).split()[0], recv_line(b).split()[0]}, {"e1", "e2"})
        with socket.create_connection(("127.0.0.1", port), timeout=3) as c:
            self.assertEqual(c.recv(10), b"")  # tcp: full pool closes
        a.close()
        b.close()

    def test_idle_timeout(self):
        n = self.node("e1", "echo")
        port = free_port()
        self.lbd(config(port, [n], proto="tcp", check="none",
                        extra_service="idle_timeout_s = 1\n"))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            self.assertTrue(recv_line(s).startswith("e1 "))
            t0 = time.monotonic()
            self.assertEqual(s.recv(10), b"")
            self.assertLess(time.monotonic() - t0, 3)

    def test_ipv6_front_and_node(self):
        n = self.node("v6", "smtp", host="::1")
        port = free_port("::1")
        cfg = config(port, [n], check="tcp").replace(
            "listen = 127.0.0.1:%d" % port, "listen = [::1]:%d" % port)
        l = self.lbd(cfg)
        l.wait_state("p", "v6", "up")
        g = greeting(port, host="::1")
        self.assertTrue(g.startswith("220 v6 ESMTP peer=[::1]:"), g)

    def test_two_workers_share_the_load(self):
        nodes, port, l = self.three_smtp(workers=2)
        ok = 0
        for _ in range(60):
            if greeting(port).startswith("220 "):
                ok += 1
        self.assertEqual(ok, 60)
        total = sum(n["total"] for n in l.status()["pools"][0]["nodes"])
        self.assertEqual(total, 60)

    def test_debug_log_per_connection(self):
        n = self.node("n1", "smtp")
        port = free_port()
        l = self.lbd(config(port, [n], check="none", lbd_extra="log_level = debug\n"))
        greeting(port)
        wait_for(lambda: "-> pool p node n1" in l.log(), 5, what="debug line")


if __name__ == "__main__":
    unittest.main()
