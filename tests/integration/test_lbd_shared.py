"""Two lbds sharing their runtime state through one redis-server, as a
balancer pair does: a change made on one shows on the other within a
second and gets its traffic once the other's own probes pass; a balancer
started later converges; Redis hung (SIGSTOP) or killed stops neither
traffic nor lbctl, and both converge when it is back (the later change
wins); a restart keeps the state file's state, then Redis's; both pick
the same maglev node for 10,000 source addresses; and Redis Sentinel: a
failover of the master is followed without a restart, by lbd and by
mailnode. Run from
tests/integration with MS_BIN=<build>/bin:

    python3 -m unittest -v test_lbd_shared
"""
import concurrent.futures
import http.client
import json
import os
import socket
import subprocess
import time
import unittest

from lbdtest import LbdTestCase, free_port, greeting, wait_for
from nodetest import MAILCTL, NodeTestCase
from redistest import REDIS_SERVER, Connection, RedisServer


def config(name, port, nodes, redis_lines, balance="roundrobin"):
    lines = "".join("node = %s %s\n" % (n.name, n.addr) for n in nodes)
    return """[lbd]
control = {control}
state_file = {state}
name = %s
workers = 2
grace_s = 1
%s

[service front]
listen = 127.0.0.1:%d
protocol = smtp
pool = p
connect_timeout_ms = 500

[pool p]
balance = %s
check = tcp
check_interval_ms = 200
check_timeout_ms = 300
rise = 2
fall = 2
%s""" % (name, redis_lines, port, balance, lines)


def who(port, source=None, timeout=3):
    """The name of the node that answered a new connection (stand-ins name
    themselves in their greeting), from source address source."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        if source:
            s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        line = b""
        while not line.endswith(b"\n"):
            chunk = s.recv(256)
            if not chunk:
                break
            line += chunk
    parts = line.decode("latin-1").split()
    return parts[1] if len(parts) > 1 and parts[0] == "220" else None


class SharedTestCase(LbdTestCase):
    def setUp(self):
        super().setUp()
        self.redis = RedisServer(self.tmp).start()

    def tearDown(self):
        super().tearDown()
        self.redis.stop()

    def pair(self, nodes, start2=True, balance="roundrobin", redis_lines=None):
        redis_lines = redis_lines or "redis = %s" % self.redis.addr
        self.port1, self.port2 = free_port(), free_port()
        self.lb1 = self.lbd(config("lb1", self.port1, nodes, redis_lines,
                                   balance), name="lb1")
        self.lb2 = self.lbd(config("lb2", self.port2, nodes, redis_lines,
                                   balance), name="lb2", start=start2)
        return self.lb1, self.lb2

    def names(self, lb, port, n=12):
        return {greeting(port).split()[1] for _ in range(n)}

    def within(self, lb, pred, timeout=1.0, what="change"):
        """pred(lb) holds within timeout (a second: the contract)."""
        return wait_for(lambda: pred(lb), timeout, what=what)


class SharedStateTest(SharedTestCase):
    def test_changes_propagate(self):
        n1, n2 = self.node("n1"), self.node("n2")
        lb1, lb2 = self.pair([n1])
        lb1.wait_state("p", "n1", "up")
        lb2.wait_state("p", "n1", "up")
        wait_for(lambda: self.redis.cli("HLEN", "lbd:state") is not None, 2)

        lb1.ctl("pool", "add", "p", "n2", n2.addr, "--weight", "2")
        self.within(lb2, lambda l: l.node("p", "n2") is not None,
                    what="n2 on lb2")
        self.assertEqual(lb2.node("p", "n2")["address"], n2.addr)
        self.assertEqual(lb2.node("p", "n2")["weight"], 2)
        # lb2's own probes let it in, then it gets traffic there
        lb2.wait_state("p", "n2", "up", timeout=5)
        wait_for(lambda: self.names(lb2, self.port2) == {"n1", "n2"}, 5,
                 what="lb2 sends traffic to n2")
        # persisted in lb2's state file, with the version applied
        with open(lb2.state) as f:
            st = f.read()
        self.assertIn(n2.addr, st)
        self.assertRegex(st, r"(?m)^shared p n2 \d+$")

        for args, field, want in [
                (("node", "drain", "p", "n1"), "state", "drain"),
                (("node", "disable", "p", "n1"), "state", "maint"),
                (("node", "enable", "p", "n1"), "state", "up"),
                (("node", "weight", "p", "n2", "5"), "weight", 5)]:
            lb1.ctl(*args)
            name = args[3] if args[1] != "weight" else "n2"
            self.within(lb2, lambda l: (l.node("p", name) or {}).get(field)
                        == want, what="%s on lb2" % " ".join(args))

        # the other way round, and remove
        lb2.ctl("node", "drain", "p", "n2")
        self.within(lb1, lambda l: l.node("p", "n2")["state"] == "drain",
                    what="drain from lb2 on lb1")
        lb2.ctl("pool", "remove", "p", "n2")
        self.within(lb1, lambda l: l.node("p", "n2") is None,
                    what="remove on lb1")
        self.assertIsNone(lb2.node("p", "n2"))
        self.assertEqual(self.names(lb1, self.port1), {"n1"})

        # verdicts stay local, each is shown
        def seen(l):
            return (l.node("p", "n1") or {}).get("seen_by") == {
                "lb1": "up", "lb2": "up"}
        wait_for(lambda: seen(lb1) and seen(lb2), 5, what="seen_by")
        n1.kill()
        wait_for(lambda: lb1.node("p", "n1")["seen_by"] == {
            "lb1": "down", "lb2": "down"}, 5, what="seen_by down")

    def test_later_start_and_restart(self):
        n1, n2, n3 = self.node("n1"), self.node("n2"), self.node("n3")
        lb1, lb2 = self.pair([n1], start2=False)
        lb1.ctl("pool", "add", "p", "n2", n2.addr)
        lb1.ctl("node", "drain", "p", "n1")
        lb2.start()
        self.within(lb2, lambda l: l.node("p", "n2") is not None and
                    l.node("p", "n1")["state"] == "drain", timeout=3,
                    what="lb2 converges at start")
        lb2.wait_state("p", "n2", "up", timeout=5)

        # a change while lb2 is away comes from Redis after its state file
        lb2.stop()
        lb1.ctl("node", "weight", "p", "n2", "3")
        lb1.ctl("pool", "add", "p", "n3", n3.addr)
        lb2.start()
        self.within(lb2, lambda l: (l.node("p", "n2") or {}).get("weight")
                    == 3 and l.node("p", "n3") is not None, timeout=3,
                    what="lb2 catches up after a restart")
        self.assertEqual(lb2.node("p", "n1")["state"], "drain")

        # restart without Redis: the state file alone
        lb2.stop()
        self.redis.kill()
        lb2.start()
        self.assertEqual(lb2.node("p", "n1")["state"], "drain")
        self.assertEqual(lb2.node("p", "n2")["weight"], 3)
        self.assertIsNotNone(lb2.node("p", "n3"))
        lb2.wait_state("p", "n3", "up", timeout=5)
        self.assertIn(who(self.port2), {"n2", "n3"})

        # Redis back empty: both write what they know again
        self.redis.start()
        wait_for(lambda: self.redis.cli("HEXISTS", "lbd:state", "p n3") == 1,
                 5, what="state written again")
        lb1.ctl("node", "enable", "p", "n1")
        self.within(lb2, lambda l: l.node("p", "n1")["state"] == "up",
                    timeout=2, what="change after Redis came back")

    def outage(self, stop, resume):
        n1, n2 = self.node("n1"), self.node("n2")
        lb1, lb2 = self.pair([n1, n2])
        lb1.wait_state("p", "n2", "up")
        lb2.wait_state("p", "n2", "up")
        time.sleep(0.5)
        stop()
        time.sleep(1.2)  # both notice (a command's deadline, 500 ms)
        t0 = time.monotonic()
        lb1.ctl("node", "weight", "p", "n1", "2")
        lb1.ctl("node", "drain", "p", "n2")
        time.sleep(0.05)
        lb2.ctl("node", "weight", "p", "n1", "7")  # later: wins
        self.assertLess(time.monotonic() - t0, 2.0, "lbctl while Redis away")
        self.assertEqual(lb1.node("p", "n2")["state"], "drain")
        for port in (self.port1, self.port2):
            for _ in range(10):
                self.assertIn(who(port), {"n1", "n2"})
        self.assertEqual(lb2.node("p", "n2")["state"], "up")
        resume()
        wait_for(lambda: lb1.node("p", "n1")["weight"] == 7 and
                 lb2.node("p", "n2")["state"] == "drain", 5,
                 what="convergence, the later change winning")
        self.assertEqual(lb2.node("p", "n1")["weight"], 7)
        self.assertEqual(lb1.node("p", "n2")["state"], "drain")
        lb2.ctl("node", "enable", "p", "n2")
        self.within(lb1, lambda l: l.node("p", "n2")["state"] == "up",
                    what="change after the outage")

    def test_redis_hung(self):
        self.outage(self.redis.pause, self.redis.resume)

    def test_redis_killed(self):
        self.outage(self.redis.kill, self.redis.start)


class MaglevTest(SharedTestCase):
    SOURCES = 10000

    def test_same_node_for_each_source(self):
        nodes = [self.node("n%d" % i) for i in range(1, 5)]
        # lb2 learns the nodes in another order, one of them at run time
        lb1, lb2 = self.pair(nodes[:3], start2=False, balance="maglev")
        lb2.write_config(config("lb2", self.port2, [nodes[2], nodes[0],
                                                    nodes[1]],
                                "redis = %s" % self.redis.addr, "maglev"))
        lb2.start()
        lb1.ctl("pool", "add", "p", "n4", nodes[3].addr)
        for lb in (lb1, lb2):
            for n in nodes:
                lb.wait_state("p", n.name, "up", timeout=5)
        sources = ["127.%d.%d.%d" % (1 + i // 62500, (i // 250) % 250,
                                     1 + i % 250)
                   for i in range(self.SOURCES)]

        def both(src):
            return who(self.port1, src), who(self.port2, src)

        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(32) as ex:
            picks = list(ex.map(both, sources))
        took = time.monotonic() - t0
        differ = [(s, a, b) for s, (a, b) in zip(sources, picks) if a != b]
        self.assertEqual(differ[:5], [], "%d of %d differ" % (
            len(differ), len(sources)))
        used = {a for a, _ in picks}
        self.assertEqual(used, {"n1", "n2", "n3", "n4"})
        self.assertLess(took, 90)
        print("maglev: %d sources, same node on both, %.1f s" % (
            len(sources), took))


class Sentinel:
    """redis-server --sentinel watching master NAME."""

    def __init__(self, tmp, master_port, name="mymaster"):
        self.port = free_port()
        self.conf = os.path.join(tmp, "sentinel-%d.conf" % self.port)
        with open(self.conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndir %s\n"
                    "sentinel monitor %s 127.0.0.1 %d 1\n"
                    "sentinel down-after-milliseconds %s 500\n"
                    "sentinel failover-timeout %s 2000\n"
                    "sentinel parallel-syncs %s 1\n" % (
                        self.port, tmp, name, master_port, name, name, name))
        self.log = open(self.conf + ".log", "ab")
        self.proc = subprocess.Popen([REDIS_SERVER, self.conf, "--sentinel"],
                                     stdout=self.log, stderr=self.log)

    def master(self):
        try:
            with Connection(self.port, timeout=1) as c:
                return c.call("SENTINEL", "get-master-addr-by-name",
                              "mymaster")
        except OSError:
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def sentinel_setup(tc, master):
    """A replica of master and a sentinel watching master as "mymaster"
    (down-after 500 ms, failover-timeout 2 s), stopped at cleanup."""
    replica = RedisServer(tc.tmp)
    replica.start()
    tc.addCleanup(replica.stop)
    replica.cli("REPLICAOF", "127.0.0.1", str(master.port))
    wait_for(lambda: "master_link_status:up" in replica.cli("INFO",
                                                          "replication"),
             10, what="replica in sync")
    sent = Sentinel(tc.tmp, master.port)
    tc.addCleanup(sent.stop)
    wait_for(lambda: sent.master() == ["127.0.0.1", str(master.port)],
             10, what="sentinel up")

    def knows_replica():
        with Connection(sent.port, timeout=1) as c:
            return "slaves=1" in c.call("INFO", "sentinel")
    # the sentinel must know the replica before it can fail over
    wait_for(knows_replica, 15, what="sentinel sees the replica")
    return replica, sent


def failover(sent, master, replica):
    master.kill()
    wait_for(lambda: sent.master() == ["127.0.0.1", str(replica.port)],
             20, what="failover")


class SentinelTest(SharedTestCase):
    def test_failover(self):
        replica, sent = sentinel_setup(self, self.redis)
        n1, n2, n3 = self.node("n1"), self.node("n2"), self.node("n3")
        lines = ("redis_sentinels = 127.0.0.1:%d\nredis_master = mymaster"
                 % sent.port)
        lb1, lb2 = self.pair([n1], redis_lines=lines)
        lb1.ctl("pool", "add", "p", "n2", n2.addr)
        self.within(lb2, lambda l: l.node("p", "n2") is not None, timeout=3,
                    what="n2 on lb2 through the sentinel's master")

        failover(sent, self.redis, replica)
        # traffic never stopped
        self.assertEqual(who(self.port1), "n1")
        lb1.ctl("pool", "add", "p", "n3", n3.addr)
        self.within(lb2, lambda l: l.node("p", "n3") is not None, timeout=5,
                    what="n3 on lb2 through the new master")
        self.assertIsNotNone(replica.cli("HGET", "lbd:state", "p n3"))
        self.assertIn("master mymaster is 127.0.0.1:%d" % replica.port,
                      lb1.log())


class MailnodeSentinelTest(NodeTestCase):
    """mailnode with redis_sentinels: HTTP sessions and the shared config
    through the master, then through the new one after a failover."""

    def test_failover(self):
        replica, sent = sentinel_setup(self, self.redis)
        n = self.node(extra_node="redis_sentinels = 127.0.0.1:%d\n"
                      "redis_master = mymaster\n" % sent.port)

        def login(user):
            c = http.client.HTTPConnection("127.0.0.1", n.ports["http"],
                                           timeout=5)
            try:
                c.request("POST", "/api/login", body=json.dumps(
                    {"user": user, "password": "demo"}),
                    headers={"Content-Type": "application/json"})
                return c.getresponse().status
            finally:
                c.close()

        self.assertEqual(login("alice@example.test"), 200)
        failover(sent, self.redis, replica)
        # a change made on the new master reaches the node
        env = dict(os.environ, MAILCTL_REDIS="127.0.0.1:%d" % replica.port)
        subprocess.run([MAILCTL, "user", "add", "carol@example.test",
                        "--password-stdin"], input="demo\n", env=env,
                       check=True, capture_output=True, text=True, timeout=20)
        wait_for(lambda: login("carol@example.test") == 200, 10,
                 what="carol logs in through the new master")
        self.assertIn("master mymaster is 127.0.0.1:%d" % replica.port,
                      n.log())


if __name__ == "__main__":
    unittest.main()
