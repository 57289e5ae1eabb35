"""The VIP takeover of a balancer pair, for real, in network namespaces
(issue 5; README.md, "Balancer pairs: deployment").

The test builds its own topology: five namespaces named after this
process's PID (ms-br-PID holding a bridge, ms-client-PID, ms-lb1-PID,
ms-lb2-PID, ms-nodes-PID), one veth from each host to the bridge, and
addresses in 10.77.0.0/24 that exist only inside them:

    client 10.77.0.2     lb1 10.77.0.11     lb2 10.77.0.12
    nodes  10.77.0.21, 10.77.0.22 (stand-in SMTP nodes n1, n2)
    VIP    10.77.0.100 (held by keepalived on lb1 or lb2)

lb1 and lb2 each run lbd, lbd-track and keepalived with etc/keepalived.conf
(its paths, interface address and priority replaced). A client in `client`
opens a new TCP connection to VIP:2525 every 50 ms and counts one as good
when it reads the node's 220 greeting through lbd. Then, in one sequence:

  a) SIGKILL of the master's lbd: lbd-track writes the track file, the
     master goes FAULT, the backup takes over;       gap <= 400 ms
  -) lb1's lbd comes back: lb1 stays BACKUP (nopreempt), 0 failures
  a') the same with lbd-track stopped, so only keepalived's once-a-second
     vrrp_script sees it: measured and printed (up to ~1.5 s)
  b) the whole master host dies: every process in lb1 SIGKILLed and its
     link down;                                      gap <= 400 ms
  c) lb1 comes back (link up, keepalived, lbd, lbd-track): it stays
     BACKUP (nopreempt) and the client sees 0 failed connections.
  d) `lbctl pool add` on lb1 is seen on lb2 (through the redis-server in
     `nodes` at 10.77.0.20) within a second.

The gap is the time between the start of the first failed connection and
the start of the first good one after the last failure (so a client that
opens one every 50 ms sees the figure, give or take 50 ms).

Everything is torn down in tearDown and at exit, also on failure:
processes killed by PID, namespaces deleted. Without root, `ip netns` or
keepalived the test skips and says why.

Run as a client (inside the client namespace) with
    test_vip.py --client HOST PORT SECONDS
it prints one line per connection: "START_MONOTONIC ok|fail DETAIL".
"""
import atexit
import os
import random
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("MS_SRC", os.path.join(HERE, "..", ".."))
BIN = os.environ.get("MS_BIN", os.path.join(SRC, "build", "bin"))
STANDIN = os.path.join(HERE, "standin_node.py")
KA_CONF = os.path.join(SRC, "etc", "keepalived.conf")
KA_NOTIFY = os.path.join(SRC, "etc", "keepalived-notify.sh")

NET = "10.77.0"
VIP = NET + ".100"
PORT = 2525
ADDR = {"client": NET + ".2", "lb1": NET + ".11", "lb2": NET + ".12",
        "nodes": NET + ".21"}
NODES = {"n1": NET + ".21", "n2": NET + ".22"}
NODE_PORT = 2500
REDIS = NET + ".20"
REDIS_PORT = 6379
PRIORITY = {"lb1": 250, "lb2": 240}

TARGET_GAP = 0.400   # seconds, issue 5
CLIENT_EVERY = 0.05  # a new connection every 50 ms
CLIENT_TIMEOUT = 0.5
CLIENT_SECONDS = 100  # the client's own bound; the test stops it sooner


def _asan_build():
    try:
        with open(os.path.join(BIN, "lbd"), "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# The VRRP timers alone allow up to ~356 ms for a dead host (3 adverts +
# skew, plus the client's 50 ms cadence). Under ASan (and a loaded CI
# machine) lbd relays and lbd-track answers slower: there the asserted
# bound is 500 ms (the figures printed are the real ones either way).
# MS_VIP_TARGET_MS sets the bound explicitly.
ASAN = _asan_build()
TARGET = float(os.environ.get("MS_VIP_TARGET_MS",
                              500 if ASAN else TARGET_GAP * 1000)) / 1000


# ---- the client (runs inside the client namespace) ----

def client_main(host, port, seconds):
    """Opens a connection every CLIENT_EVERY seconds for `seconds`; one is
    good when the node's 220 greeting arrives within CLIENT_TIMEOUT. Stops
    early when stdin closes (the test went away)."""
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ, None)
    pending = {}  # socket -> [start, buffer]
    out = sys.stdout

    def done(s, ok, detail):
        t0 = pending.pop(s)[0]
        sel.unregister(s)
        s.close()
        out.write("%.6f %s %s\n" % (t0, "ok" if ok else "fail", detail))
        out.flush()

    start = time.monotonic()
    end = start + seconds
    nxt = start
    while True:
        now = time.monotonic()
        if now >= end and not pending:
            break
        if now >= nxt and now < end:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect((host, port))
            except BlockingIOError:
                pass
            except OSError as e:
                out.write("%.6f fail connect:%s\n" % (now, e.strerror))
                s.close()
                s = None
            if s is not None:
                pending[s] = [now, b"", False]
                sel.register(s, selectors.EVENT_WRITE, "conn")
            nxt += CLIENT_EVERY
            if nxt < now:
                nxt = now + CLIENT_EVERY
        for s, st in list(pending.items()):
            if now - st[0] > CLIENT_TIMEOUT:
                done(s, False, "timeout")
        wait = max(0.0, min([nxt - time.monotonic()] +
                            [st[0] + CLIENT_TIMEOUT - time.monotonic()
                             for st in pending.values()]))
        for key, _ in sel.select(wait):
            s = key.fileobj
            if s is sys.stdin:
                if not os.read(sys.stdin.fileno(), 4096):
                    return 0
                continue
            st = pending[s]
            if not st[2]:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    done(s, False, "connect:" + os.strerror(err))
                    continue
                st[2] = True
                sel.modify(s, selectors.EVENT_READ, "read")
                continue
            try:
                data = s.recv(4096)
            except OSError as e:
                done(s, False, "recv:" + e.strerror)
                continue
            if not data:
                done(s, False, "closed")
                continue
            st[1] += data
            if b"\n" in st[1]:
                line = st[1].split(b"\n", 1)[0].decode("latin-1").strip()
                ok = line.startswith("220 n")
                done(s, ok, line.split(" ")[1] if ok else repr(line[:40]))
    return 0


# ---- the topology ----

def run(*cmd, check=True, timeout=15):
    r = subprocess.run(list(cmd), capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("%s: exit %d: %s%s" % (
            " ".join(cmd), r.returncode, r.stdout, r.stderr))
    return r


def wait_for(pred, timeout, what, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


class Topology:
    """The namespaces and the bridge. Every method is safe to call again;
    destroy() kills whatever still runs inside them, by PID, and deletes
    them."""

    HOSTS = ("client", "lb1", "lb2", "nodes")

    def __init__(self):
        tag = os.getpid()
        self.ns = {h: "ms-%s-%d" % (h, tag) for h in self.HOSTS + ("br",)}
        self.made = []

    def ip(self, host, *args, check=True):
        return run("ip", "-n", self.ns[host], *args, check=check)

    def exec_argv(self, host, *argv):
        return ["ip", "netns", "exec", self.ns[host]] + list(argv)

    def sh(self, host, *argv, check=True):
        return run(*self.exec_argv(host, *argv), check=check)

    def build(self):
        for h in ("br",) + self.HOSTS:
            run("ip", "netns", "add", self.ns[h])
            self.made.append(self.ns[h])
            self.ip(h, "link", "set", "lo", "up")
        self.ip("br", "link", "add", "br0", "type", "bridge")
        self.ip("br", "link", "set", "br0", "up")
        for h in self.HOSTS:
            port = "p-" + h
            # both ends are created inside our namespaces: nothing is ever
            # added to the namespace the test runs in
            self.ip("br", "link", "add", port, "type", "veth", "peer", "name",
                    "eth0", "netns", self.ns[h])
            self.ip("br", "link", "set", port, "master", "br0", "up")
            self.ip(h, "addr", "add", ADDR[h] + "/24", "dev", "eth0")
            self.ip(h, "link", "set", "eth0", "up")
        self.ip("nodes", "addr", "add", NODES["n2"] + "/24", "dev", "eth0")
        self.ip("nodes", "addr", "add", REDIS + "/24", "dev", "eth0")
        for lb in ("lb1", "lb2"):
            # lbd listens on the VIP even while the peer holds it
            self.sh(lb, "sh", "-c",
                    "echo 1 > /proc/sys/net/ipv4/ip_nonlocal_bind")

    def pids(self, host):
        r = run("ip", "netns", "pids", self.ns[host], check=False)
        return [int(p) for p in r.stdout.split()]

    def kill_all(self, host):
        """SIGKILL every process in the namespace (only ours live there)."""
        for _ in range(20):
            pids = self.pids(host)
            if not pids:
                return
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def has_vip(self, host):
        r = self.ip(host, "-4", "-o", "addr", "show", "dev", "eth0",
                    check=False)
        return (" %s/" % VIP) in r.stdout

    def destroy(self):
        for ns in list(self.made):
            host = [h for h, n in self.ns.items() if n == ns][0]
            self.kill_all(host)
            run("ip", "netns", "del", ns, check=False)
            self.made.remove(ns)


def skip_reason():
    if os.geteuid() != 0:
        return "needs root for ip netns (running as uid %d)" % os.geteuid()
    for tool in ("ip", "keepalived"):
        if shutil.which(tool, path=os.environ.get("PATH", "") +
                        ":/usr/sbin:/sbin") is None:
            return "%s not installed (scripts/install-deps.sh adds it)" % tool
    name = "ms-probe-%d" % os.getpid()
    try:
        r = run("ip", "netns", "add", name, check=False)
        if r.returncode != 0:
            return "ip netns add fails (no CAP_SYS_ADMIN/CAP_NET_ADMIN?): " \
                + r.stderr.strip()
        r = run("ip", "-n", name, "link", "add", "b0", "type", "bridge",
                check=False)
        if r.returncode != 0:
            return "cannot create a bridge in a namespace: " + r.stderr.strip()
        r = run("ip", "-n", name, "link", "add", "v0", "type", "veth",
                "peer", "name", "v1", check=False)
        if r.returncode != 0:
            return "cannot create a veth pair in a namespace: " \
                + r.stderr.strip()
    finally:
        run("ip", "netns", "del", name, check=False)
    if shutil.which("redis-server") is None:
        return "redis-server not installed (scripts/install-deps.sh adds it)"
    for b in ("lbd", "lbctl", "lbd-track"):
        if not os.access(os.path.join(BIN, b), os.X_OK):
            return "%s not built in %s" % (b, BIN)
    return None


# ---- one balancer host ----

LBD_INI = """\
[lbd]
name = {name}
redis = {redis}
control = {dir}/lbd.sock
state_file = {dir}/lbd.state
workers = 1
log_level = info
grace_s = 1

[service smtp]
listen = {vip}:{port}
protocol = smtp
pool = mx
connect_timeout_ms = 300

[pool mx]
balance = maglev
check = smtp
check_interval_ms = 500
check_timeout_ms = 400
node = n1 {n1}:{nport}
node = n2 {n2}:{nport}
"""


def render_keepalived(lb, d):
    """etc/keepalived.conf with this host's paths, VIP and priority; every
    replaced string must be there, so the example cannot drift from what is
    tested."""
    with open(KA_CONF) as f:
        conf = f.read()
    subs = [
        ("router_id lb1", "router_id %s-%d" % (lb, os.getpid())),
        ("/run/lbd/keepalived.track", d + "/track"),
        ("/usr/local/bin/lbctl", os.path.join(BIN, "lbctl")),
        ("/run/lbd/lbd.sock", d + "/lbd.sock"),
        ("192.0.2.10/24", VIP + "/24"),
        ("priority 150", "priority %d" % PRIORITY[lb]),
        ('"/etc/keepalived/keepalived-notify.sh"',
         '"%s %s/notify.log"' % (KA_NOTIFY, d)),
    ]
    for old, new in subs:
        if old not in conf:
            raise AssertionError("etc/keepalived.conf no longer has %r" % old)
        conf = conf.replace(old, new)
    return conf


class Balancer:
    def __init__(self, topo, name, tmp):
        self.topo, self.name = topo, name
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.procs = {}
        with open(os.path.join(self.dir, "lbd.ini"), "w") as f:
            f.write(LBD_INI.format(dir=self.dir, vip=VIP, port=PORT,
                                   name=name,
                                   redis="%s:%d" % (REDIS, REDIS_PORT),
                                   n1=NODES["n1"], n2=NODES["n2"],
                                   nport=NODE_PORT))
        with open(os.path.join(self.dir, "keepalived.conf"), "w") as f:
            f.write(render_keepalived(name, self.dir))

    def path(self, f):
        return os.path.join(self.dir, f)

    def spawn(self, what, argv):
        log = open(self.path(what + ".log"), "ab")
        p = subprocess.Popen(self.topo.exec_argv(self.name, *argv),
                             stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.procs[what] = p
        return p

    def ping(self):
        r = run(os.path.join(BIN, "lbctl"), "-s", self.path("lbd.sock"),
                "-t", "300", "ping", check=False)
        return r.returncode == 0

    def start_lbd(self):
        p = self.spawn("lbd", [os.path.join(BIN, "lbd"), "-c",
                               self.path("lbd.ini")])
        wait_for(lambda: p.poll() is not None or self.ping(), 15,
                 "%s lbd" % self.name)
        if p.poll() is not None:
            raise AssertionError("%s lbd exited:\n%s" % (self.name,
                                                         self.log("lbd")))

    def start_track(self):
        self.spawn("track", [os.path.join(BIN, "lbd-track"), "-s",
                             self.path("lbd.sock"), "-f", self.path("track")])

    def start_keepalived(self):
        # a rebooted host has a fresh /run: a killed keepalived's children
        # may linger as zombies whose PIDs make it think it still runs
        for f in ("keepalived.pid", "vrrp.pid", "checkers.pid"):
            try:
                os.unlink(self.path(f))
            except FileNotFoundError:
                pass
        self.spawn("keepalived", [
            "keepalived", "-n", "-l", "-D", "-P",
            "-f", self.path("keepalived.conf"),
            "-p", self.path("keepalived.pid"),
            "-r", self.path("vrrp.pid"),
            "-c", self.path("checkers.pid")])

    def start(self):
        self.start_lbd()
        self.start_track()
        self.start_keepalived()

    def kill(self, what, sig=signal.SIGKILL):
        p = self.procs.get(what)
        if p and p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def log(self, what):
        try:
            with open(self.path(what + ".log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def states(self):
        """The states keepalived's notify script logged, in order."""
        return re.findall(r"-> (MASTER|BACKUP|FAULT|STOP)", self.log_file())

    def log_file(self):
        try:
            with open(self.path("notify.log")) as f:
                return f.read()
        except OSError:
            return ""

    def state(self):
        s = self.states()
        return s[-1] if s else None


# ---- the test ----

_ACTIVE = []  # topologies to destroy at exit, whatever happens


def _cleanup_all():
    for t in list(_ACTIVE):
        t.destroy()
        _ACTIVE.remove(t)


atexit.register(_cleanup_all)


def _on_term(signum, frame):
    _cleanup_all()
    sys.exit(128 + signum)


class VipTakeoverTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        why = skip_reason()
        if why:
            raise unittest.SkipTest(why)

    def setUp(self):
        signal.signal(signal.SIGTERM, _on_term)
        self.topo = None

    def _setup(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="vip-")
        self.tmp = self._tmp.name
        os.chmod(self.tmp, 0o755)
        self.topo = Topology()
        _ACTIVE.append(self.topo)
        self.client = None
        self.failed = False  # set by the test: logs are shown on failure
        self.attempts = []
        self.lock = threading.Lock()
        self.node_procs = []
        self.lbs = {}
        self.topo.build()
        self.lbs = {n: Balancer(self.topo, n, self.tmp) for n in ("lb1", "lb2")}

    def tearDown(self):
        if self.topo is not None:
            self._teardown()

    def _teardown(self):
        if self.client and self.client.poll() is None:
            self.client.kill()
            self.client.wait()
        for lb in self.lbs.values():
            for what in list(lb.procs):
                lb.kill(what)
        for p in self.node_procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.topo.destroy()
        if self.topo in _ACTIVE:
            _ACTIVE.remove(self.topo)
        self.topo = None
        if self.failed:
            for lb in self.lbs.values():
                for what in ("notify", "keepalived", "track", "lbd"):
                    text = lb.log_file() if what == "notify" else lb.log(what)
                    text = "\n".join(l for l in text.splitlines()
                                     if "gratuitous ARP" not in l)
                    sys.stderr.write("---- %s %s ----\n%s\n" % (
                        lb.name, what, text[-6000:]))
        self._tmp.cleanup()

    # -- helpers --

    def start_nodes(self):
        for name, addr in NODES.items():
            log = open(os.path.join(self.tmp, name + ".log"), "ab")
            p = subprocess.Popen(self.topo.exec_argv(
                "nodes", sys.executable, STANDIN, "--proto", "smtp",
                "--host", addr, "--port", str(NODE_PORT), "--name", name),
                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            log.close()
            self.node_procs.append(p)

    def start_redis(self):
        log = open(os.path.join(self.tmp, "redis.log"), "ab")
        p = subprocess.Popen(self.topo.exec_argv(
            "nodes", "redis-server", "--port", str(REDIS_PORT), "--bind", REDIS,
            "--save", "", "--appendonly", "no", "--protected-mode", "no",
            "--dir", self.tmp), stdout=log, stderr=log,
            stdin=subprocess.DEVNULL)
        log.close()
        self.node_procs.append(p)

    def start_client(self):
        self.client = subprocess.Popen(self.topo.exec_argv(
            "client", sys.executable, os.path.abspath(__file__), "--client",
            VIP, str(PORT), str(CLIENT_SECONDS)),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read_client, daemon=True).start()

    def _read_client(self):
        for line in self.client.stdout:
            parts = line.split(None, 2)
            if len(parts) >= 2:
                with self.lock:
                    self.attempts.append((float(parts[0]), parts[1] == "ok",
                                          parts[2].strip() if len(parts) > 2
                                          else ""))

    def since(self, t):
        with self.lock:
            return sorted(a for a in self.attempts if a[0] >= t)

    def wait_ok_run(self, n=6, timeout=10, what="client connections"):
        """Waits until the last n attempts all succeeded."""
        def good():
            with self.lock:
                last = sorted(self.attempts)[-n:]
            return len(last) == n and all(a[1] for a in last)
        wait_for(good, timeout, what)

    def wait_state(self, lb, state, timeout=10):
        wait_for(lambda: self.lbs[lb].state() == state, timeout,
                 "%s %s (notify log: %s)" % (lb, state, self.lbs[lb].states()))

    def vip_only_on(self, lb, what):
        """Waits until `lb` alone holds the VIP (so the next event starts
        from one master) and the client is steady."""
        other = "lb2" if lb == "lb1" else "lb1"
        wait_for(lambda: self.topo.has_vip(lb) and
                 not self.topo.has_vip(other), 5,
                 "%s: the VIP on %s only (lb1 %s, lb2 %s)" % (
                     what, lb, self.lbs["lb1"].states(),
                     self.lbs["lb2"].states()))
        self.wait_ok_run(what="the client steady " + what)

    def measure(self, t_event, what, settle=1.0):
        """After an event at t_event: waits for the client to be back (and
        `settle` seconds more), returns (gap, failures, downtime)."""
        self.wait_ok_run(timeout=15, what="client back after " + what)
        time.sleep(settle)
        att = self.since(t_event - 0.5)
        fails = [a for a in att if not a[1]]
        # the figure means something only if the client kept its cadence
        starts = [a[0] for a in att]
        spacing = max(b - a for a, b in zip(starts, starts[1:]))
        self.assertLess(spacing, 0.2, "%s: the client stalled %.0f ms, no "
                        "measurement" % (what, spacing * 1000))
        if not fails:
            print("vip: %-44s no failed connection" % what, flush=True)
            return 0.0, 0, 0.0
        first, last = fails[0][0], fails[-1][0]
        back = [a[0] for a in att if a[1] and a[0] > last]
        self.assertTrue(back, "%s: no good connection after the failures" % what)
        gap = back[0] - first
        downtime = back[0] - t_event
        details = sorted(set(a[2] for a in fails))
        print("vip: %-44s gap %4.0f ms, %2d failed connections, "
              "first good %4.0f ms after the event (%s)" % (
                  what, gap * 1000, len(fails), downtime * 1000,
                  ", ".join(details)[:80]), flush=True)
        return gap, len(fails), downtime

    def quiet(self, t0, what):
        att = self.since(t0)
        fails = [a for a in att if not a[1]]
        print("vip: %-44s %d connections, %d failed" % (what, len(att),
                                                          len(fails)),
              flush=True)
        self.assertGreater(len(att), 10, what)
        self.assertEqual(fails, [], "%s: failed connections" % what)

    # -- the scenarios --

    def test_takeover(self):
        # Sub-second VRRP timers on a shared CI machine: a run that misses
        # (a load spike can stall keepalived past its 300 ms down timer) is
        # reported, its logs shown, and the whole sequence runs once more
        # on a fresh topology; the second run must pass.
        for run_no in (1, 2):
            self._setup()
            try:
                self.takeover()
                return
            except AssertionError as e:
                self.failed = True
                if run_no == 2:
                    raise
                print("vip: run 1 failed (%s); once more on a fresh "
                      "topology" % str(e).splitlines()[0][:200], flush=True)
            except BaseException:
                self.failed = True
                raise
            finally:
                self._teardown()

    def takeover(self):
        deadline = time.monotonic() + 100
        lb1, lb2 = self.lbs["lb1"], self.lbs["lb2"]
        self.start_nodes()
        self.start_redis()
        lb1.start()
        wait_for(lambda: self.topo.has_vip("lb1"), 15, "lb1 holding the VIP")
        self.wait_state("lb1", "MASTER")
        lb2.start()
        self.wait_state("lb2", "BACKUP")
        self.start_client()
        self.wait_ok_run(n=10, what="the client through lb1")
        results = {}

        # a) SIGKILL of the master's lbd
        self.vip_only_on("lb1", "before a)")
        t = time.monotonic()
        lb1.kill("lbd")
        wait_for(lambda: self.topo.has_vip("lb2"), 10, "the VIP on lb2")
        results["a"] = self.measure(t, "a) master lbd SIGKILLed")
        self.assertFalse(self.topo.has_vip("lb1"))

        # lb1's lbd back: out of FAULT into BACKUP, nothing moves
        t = time.monotonic()
        lb1.start_lbd()
        self.wait_state("lb1", "BACKUP")
        time.sleep(1.0)
        self.assertTrue(self.topo.has_vip("lb2"))
        self.quiet(t, "lb1's lbd back (nopreempt)")

        # a') the same on lb2 with lbd-track stopped: keepalived alone
        self.vip_only_on("lb2", "before a')")
        lb2.kill("track", signal.SIGTERM)
        # at a random point of the script's once-a-second cycle, which
        # the steps above would otherwise fix
        time.sleep(random.uniform(0.2, 1.2))
        t = time.monotonic()
        lb2.kill("lbd")
        wait_for(lambda: self.topo.has_vip("lb1"), 10, "the VIP on lb1")
        results["base"] = self.measure(t, "a') same, vrrp_script only")
        t = time.monotonic()
        lb2.start_lbd()
        lb2.start_track()
        self.wait_state("lb2", "BACKUP", timeout=10)
        time.sleep(0.5)
        self.quiet(t, "lb2's lbd back (nopreempt)")

        # b) the master host dies: every process in lb1, and its link
        self.vip_only_on("lb1", "before b)")
        t = time.monotonic()
        self.topo.kill_all("lb1")
        self.topo.ip("lb1", "link", "set", "eth0", "down")
        wait_for(lambda: self.topo.has_vip("lb2"), 10, "the VIP on lb2")
        results["b"] = self.measure(t, "b) master host dies")
        # the dead window is at least 3 adverts (300 ms) long: a client
        # opening a connection every 50 ms must have seen it
        self.assertGreater(results["b"][1], 0, "b) no failed connection? "
                           "(lb1 %s, lb2 %s)" % (lb1.states(), lb2.states()))
        for what in list(lb1.procs):
            lb1.kill(what)  # reap them

        # c) lb1 comes back as after a reboot (no VIP left on its link)
        self.topo.ip("lb1", "addr", "del", VIP + "/24", "dev", "eth0",
                     check=False)
        n = len(lb1.states())
        t = time.monotonic()
        self.topo.ip("lb1", "link", "set", "eth0", "up")
        lb1.start()
        wait_for(lambda: lb1.states()[n:][-1:] == ["BACKUP"], 10,
                 "lb1 BACKUP again (states: %s)" % lb1.states())
        time.sleep(1.5)
        self.assertTrue(self.topo.has_vip("lb2"))
        self.assertFalse(self.topo.has_vip("lb1"))
        self.quiet(t, "c) lb1 back (nopreempt)")
        results["c"] = self.since(t)

        # d) a runtime change on one balancer reaches the other (Redis)
        t = time.monotonic()
        r = run(os.path.join(BIN, "lbctl"), "-s", lb1.path("lbd.sock"),
                "pool", "add", "mx", "n3", "%s:%d" % (NODES["n2"], NODE_PORT + 1))
        wait_for(lambda: '"n3"' in run(os.path.join(BIN, "lbctl"), "-s",
                                       lb2.path("lbd.sock"), "status",
                                       "--json", check=False).stdout,
                 5, "n3 added on lb1 seen on lb2")
        results["d"] = time.monotonic() - t
        print("vip: %-44s seen on lb2 after %.0f ms" % (
            "d) lbctl pool add on lb1", results["d"] * 1000), flush=True)

        self.assertLess(time.monotonic(), deadline, "the test ran too long")
        print("vip: gaps: lbd SIGKILL %.0f ms (keepalived alone %.0f ms), "
              "host death %.0f ms, lb1 back: 0 failed of %d; asserted "
              "bound %.0f ms%s"
              % (results["a"][0] * 1000, results["base"][0] * 1000,
                 results["b"][0] * 1000, len(results["c"]), TARGET * 1000,
                 " (ASan build)" if ASAN else ""),
              flush=True)
        self.assertLessEqual(results["a"][0], TARGET, "a) lbd SIGKILL gap")
        self.assertLessEqual(results["b"][0], TARGET, "b) host death gap")
        # keepalived alone: once a second plus the takeover
        self.assertLessEqual(results["base"][0], 2.5, "a') vrrp_script gap")
        self.assertLessEqual(results["d"], 1.5, "d) shared state: within a second")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--client":
        sys.exit(client_main(sys.argv[2], int(sys.argv[3]),
                             float(sys.argv[4])))
    unittest.main()
