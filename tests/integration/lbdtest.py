"""Shared pieces of lbd's integration tests: free loopback ports, stand-in
nodes (standin_node.py, real processes a test can SIGKILL), a real lbd
started from a config string, and lbctl."""
import ctypes
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("MS_BIN", os.path.join(HERE, "..", "..", "build", "bin"))
LBD = os.path.join(BIN, "lbd")
LBCTL = os.path.join(BIN, "lbctl")
STANDIN = os.path.join(HERE, "standin_node.py")


_issued_ports = set()
# Listening ports come from below the kernel's ephemeral range
# (ip_local_port_range, 32768 up by default) and from above the demo's
# fixed ports (up to 26379 when it runs beside the tests): no test's
# outgoing connection can be holding one as its local port by the time a
# server binds it, as could happen with a port the kernel handed out
# from that range.
_PORTS = (27000, 32768)


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host="127.0.0.1"):
    """A port nothing listens on now, outside the ephemeral range, never
    given out twice in one test process, picked at random so that test
    processes running side by side rarely pick the same one."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    lo, hi = _PORTS[0], min(_PORTS[1], _ephemeral_low())
    for _ in range(200):
        port = random.randrange(lo, hi) if hi - lo > 500 else 0
        if port in _issued_ports:
            continue
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            port = s.getsockname()[1]
        if port not in _issued_ports:
            _issued_ports.add(port)
            return port
    raise AssertionError("no fresh free port after 200 tries")


def io_uring_allowed():
    """Whether this process may make an io_uring ring (the kernel has
    io_uring, and neither a seccomp filter nor kernel.io_uring_disabled
    forbids it): lbd's io_engine = uring falls back to epoll where not."""
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)  # struct io_uring_params
    fd = libc.syscall(425, 1, params)  # io_uring_setup
    if fd < 0:
        return False
    os.close(fd)
    return True


def wait_for(pred, timeout=10.0, step=0.02, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))


def can_connect(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Node:
    """A stand-in node process on a free loopback port."""

    def __init__(self, tmp, name, proto="smtp", proxy=False, port=None,
                 host="127.0.0.1", args=()):
        self.name, self.proto, self.proxy, self.host = name, proto, proxy, host
        self.args = list(args)  # more standin_node.py options
        self.port = port or free_port(host)
        self.tmp = tmp
        self.proc = None
        self.start()

    @property
    def addr(self):
        return ("[%s]:%d" if ":" in self.host else "%s:%d") % (self.host, self.port)

    def start(self):
        cmd = [sys.executable, STANDIN, "--proto", self.proto, "--port",
               str(self.port), "--name", self.name, "--host", self.host]
        if self.proxy:
            cmd.append("--proxy")
        cmd += self.args
        self.log = open(os.path.join(self.tmp, "node-%s.log" % self.name), "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        wait_for(lambda: can_connect(self.port, self.host), 10,
                 what="stand-in %s on %d" % (self.name, self.port))

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.log.close()

    stop = kill


class Lbd:
    """A real lbd from a config string. `{control}` and `{state}` in the
    string are filled in with paths in the test's temporary directory."""

    def __init__(self, tmp, config, name="lbd", args=(), nofile=None,
                 io_engine=None):
        self.tmp = tmp
        self.io_engine = io_engine  # set in [lbd] unless the config does
        self.nofile = nofile  # (soft, hard) RLIMIT_NOFILE to start with
        self.control = os.path.join(tmp, name + ".sock")
        self.state = os.path.join(tmp, name + ".state")
        self.path = os.path.join(tmp, name + ".ini")
        self.logpath = os.path.join(tmp, name + ".log")
        self.args = list(args)
        self.write_config(config)
        self.proc = None

    def write_config(self, config):
        if self.io_engine and "io_engine" not in config:
            config = config.replace("[lbd]\n", "[lbd]\nio_engine = %s\n"
                                    % self.io_engine, 1)
        with open(self.path, "w") as f:
            f.write(config.replace("{control}", self.control)
                    .replace("{state}", self.state))

    def start(self, wait=True):
        self.logf = open(self.logpath, "ab")
        limit = self.nofile
        self.proc = subprocess.Popen(
            [LBD, "-c", self.path] + self.args, stdout=self.logf,
            stderr=self.logf, preexec_fn=limit and (
                lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limit)))
        if wait:
            wait_for(lambda: self.proc.poll() is not None or self.ping(),
                     10, what="lbd control socket")
            if self.proc.poll() is not None:
                raise AssertionError("lbd exited %d:\n%s" % (self.proc.returncode, self.log()))
        return self

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def ctl(self, *args, check=True, timeout=10):
        r = subprocess.run([LBCTL, "-s", self.control] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("lbctl %s: exit %d: %s%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def raw(self, line, timeout=5):
        """Sends one line on the control socket, returns the whole answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.control)
            s.sendall(line.encode() + b"\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        return out.decode()

    def ping(self):
        try:
            return self.raw("ping", timeout=1).strip() == "pong"
        except OSError:
            return False

    def status(self):
        return json.loads(self.raw("show status json"))

    def node(self, pool, name):
        for p in self.status()["pools"]:
            if p["name"] == pool:
                for n in p["nodes"]:
                    if n["name"] == name:
                        return n
        return None

    def wait_state(self, pool, name, state, timeout=10):
        wait_for(lambda: (self.node(pool, name) or {}).get("state") == state,
                 timeout, what="%s/%s %s" % (pool, name, state))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
        return self.proc.returncode if self.proc else None


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:")


def sanitizer_report(text):
    """The first sanitizer report in a daemon's log, or None: a test fails
    on it even when the daemon's own exit went unnoticed."""
    for mark in SANITIZER_MARKS:
        i = text.find(mark)
        if i >= 0:
            return text[max(0, i - 200):i + 2000]
    return None


def recv_line(sock, limit=65536):
    data = b""
    while not data.endswith(b"\n") and len(data) < limit:
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data.decode("latin-1")


def greeting(port, host="127.0.0.1", timeout=3):
    """Connects and returns the first line the server (or lbd) sends."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        return recv_line(s)


class LbdTestCase(unittest.TestCase):
    """Gives each test a temporary directory and stops every node and lbd
    it started, by PID. A subclass may set IO_ENGINE: its lbds run with
    that io_engine."""

    IO_ENGINE = None

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="lbdtest-")
        self.tmp = self._tmp.name
        self.nodes = []
        self.lbds = []

    def tearDown(self):
        for l in self.lbds:
            l.stop()
        for n in self.nodes:
            n.kill()
        reports = [(l.path, sanitizer_report(l.log())) for l in self.lbds]
        if getattr(self, "_outcome", None) is not None:
            failed = any(e for _, e in getattr(self._outcome, "errors", []) if e)
            if failed or not getattr(self._outcome, "success", True):
                for l in self.lbds:
                    sys.stderr.write("---- %s log ----\n%s\n" % (l.path, l.log()[-4000:]))
        self._tmp.cleanup()
        for path, report in reports:
            if report:
                self.fail("sanitizer report from lbd (%s):\n%s" % (path, report))

    def node(self, name, proto="smtp", **kw):
        n = Node(self.tmp, name, proto, **kw)
        self.nodes.append(n)
        return n

    def lbd(self, config, start=True, **kw):
        kw.setdefault("io_engine", self.IO_ENGINE)
        l = Lbd(self.tmp, config, **kw)
        self.lbds.append(l)
        if start:
            l.start()
        return l
