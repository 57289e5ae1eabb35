"""lbd and mailnode under systemd's eyes, without systemd: each runs with
NOTIFY_SOCKET naming a datagram socket this test listens on, as systemd
would, and the test reads what they say (READY=1 once the listeners take
connections, WATCHDOG=1 from the event loop at half of WATCHDOG_USEC,
RELOADING=1 and READY=1 around a SIGHUP, STOPPING=1 on SIGTERM). The unit
files in etc/ pass `systemd-analyze verify` and `systemd-analyze security
--offline=yes` with an exposure of at most UNIT_EXPOSURE_MAX (skipped
without systemd-analyze).

Run from tests/integration with MS_BIN=<build>/bin and MS_SRC=<source>:

    python3 -m unittest -v test_systemd
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
from unittest import mock

from lbdtest import BIN, LbdTestCase, can_connect, free_port
from nodetest import NodeTestCase

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("MS_SRC", os.path.join(HERE, "..", ".."))
UNITS = ("lbd.service", "lbd-track.service", "mailnode.service")
UNIT_EXPOSURE_MAX = 2.0  # systemd-analyze security: 0 safe .. 10 exposed
WATCHDOG_USEC = 200000   # WATCHDOG=1 every 0.1 s


class NotifySocket:
    """What systemd listens on: a Unix datagram socket, each datagram one
    notification of newline-separated VAR=VALUE lines."""

    def __init__(self, tmp, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = "mailswitch-test-%d-%d" % (os.getpid(), time.monotonic_ns())
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            self.env = os.path.join(tmp, "notify.sock")
            self.sock.bind(self.env)
        self.messages = []  # (time.monotonic(), text)

    def wait(self, line, timeout=10.0, after=0):
        """The first message from index `after` on holding `line` as one of
        its lines; its index. Fails after timeout seconds."""
        end = time.monotonic() + timeout
        i = after
        while True:
            while i < len(self.messages):
                if line in self.messages[i][1].split("\n"):
                    return i
                i += 1
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s in %.1f s; got %r" % (
                    line, timeout, [m for _, m in self.messages]))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def drain(self, seconds):
        """Reads for `seconds`; returns the texts read."""
        end, got = time.monotonic() + seconds, []
        while time.monotonic() < end:
            self.sock.settimeout(max(0.001, end - time.monotonic()))
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                break
            self.messages.append((time.monotonic(), data.decode()))
            got.append(data.decode())
        return got

    def close(self):
        self.sock.close()


def systemd_env(notify, watchdog_usec=WATCHDOG_USEC, watchdog_pid=None):
    env = {"NOTIFY_SOCKET": notify.env, "WATCHDOG_USEC": str(watchdog_usec)}
    if watchdog_pid is not None:
        env["WATCHDOG_PID"] = str(watchdog_pid)
    return env


def lbd_config(port, pool="check = tcp\nnode = n1 127.0.0.1:%d\n" % free_port()):
    return ("[lbd]\ncontrol = {control}\nstate_file = {state}\nworkers = 1\n"
            "grace_s = 1\n[service s]\nlisten = 127.0.0.1:%d\n"
            "protocol = smtp\npool = p\n[pool p]\n%s" % (port, pool))


def silent_listener():
    """A node that takes connections and never greets: an SMTP probe of
    it ends only at its timeout."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


class TestLbdNotify(LbdTestCase):
    def start(self, abstract=False, pool=None, **kw):
        self.notify = NotifySocket(self.tmp, abstract)
        self.addCleanup(self.notify.close)
        self.port = free_port()
        conf = lbd_config(self.port) if pool is None else lbd_config(self.port, pool)
        l = self.lbd(conf, start=False)
        with mock.patch.dict(os.environ, systemd_env(self.notify, **kw)):
            l.start(wait=False)
        return l

    def test_ready_once_listening_then_watchdog_from_the_loop(self):
        l = self.start()
        i = self.notify.wait("READY=1")
        # READY=1 comes after the listener and the control socket: both
        # answer at the moment it arrives.
        self.assertTrue(can_connect(self.port))
        self.assertTrue(l.ping())
        self.assertFalse(any("READY=1" in m for _, m in self.notify.messages[:i]))
        first = self.notify.wait("WATCHDOG=1", 2)
        got = self.notify.drain(1.0)
        n = sum(1 for m in got if m == "WATCHDOG=1")
        # every 0.1 s: about 10 in a second; at least 5 on a loaded machine
        self.assertGreaterEqual(n, 5, got)
        self.assertLessEqual(n, 15, got)
        self.assertIn("systemd watchdog", l.log())
        self.assertGreaterEqual(first, 0)

    def test_ready_after_the_first_probe_results(self):
        # n1 refuses its probe at once; n2 takes the connection and never
        # greets, so its SMTP probe ends at its 1.5 s timeout. READY=1
        # waits for both verdicts: the first clients systemd lets in are
        # never sent to a node lbd has not probed yet.
        quiet = silent_listener()
        self.addCleanup(quiet.close)
        start = time.monotonic()
        l = self.start(pool="check = smtp\ncheck_timeout_ms = 1500\n"
                       "node = n1 127.0.0.1:%d\nnode = n2 127.0.0.1:%d\n" % (
                           free_port(), quiet.getsockname()[1]))
        i = self.notify.wait("READY=1")
        self.assertGreaterEqual(self.notify.messages[i][0] - start, 1.4)
        for name in ("n1", "n2"):
            self.assertNotEqual(l.node("p", name)["check_status"], "", name)
        self.assertIn("ready", l.log())

    def test_reload_and_stop(self):
        l = self.start()
        i = self.notify.wait("READY=1")
        l.signal(signal.SIGHUP)
        j = self.notify.wait("RELOADING=1", after=i + 1)
        self.notify.wait("READY=1", after=j + 1)
        self.assertEqual(l.stop(), 0)
        self.notify.wait("STOPPING=1", 1, after=j + 1)

    def test_abstract_socket(self):
        self.start(abstract=True)
        self.notify.wait("READY=1")
        self.notify.wait("WATCHDOG=1", 2)

    def test_watchdog_meant_for_another_process_is_not_fed(self):
        self.start(watchdog_pid=1)
        self.notify.wait("READY=1")
        got = self.notify.drain(0.5)
        self.assertNotIn("WATCHDOG=1", got)


class TestMailnodeNotify(NodeTestCase):
    def test_ready_watchdog_stopping(self):
        notify = NotifySocket(self.tmp)
        self.addCleanup(notify.close)
        n = self.node(start=False)
        with mock.patch.dict(os.environ, systemd_env(notify)):
            n.start(wait_directory=False)
        notify.wait("READY=1")
        for port in n.ports.values():
            self.assertTrue(can_connect(port))
        notify.wait("WATCHDOG=1", 2)
        got = notify.drain(1.0)
        self.assertGreaterEqual(sum(1 for m in got if m == "WATCHDOG=1"), 5)
        self.assertEqual(n.stop(), 0)
        notify.wait("STOPPING=1", 1)

    def test_reload(self):
        notify = NotifySocket(self.tmp)
        self.addCleanup(notify.close)
        n = self.node(start=False)
        with mock.patch.dict(os.environ, systemd_env(notify)):
            n.start(wait_directory=False)
        i = notify.wait("READY=1")
        n.proc.send_signal(signal.SIGHUP)
        j = notify.wait("RELOADING=1", after=i + 1)
        notify.wait("READY=1", after=j + 1)
        self.assertIn("reloaded", n.log())

    def test_ready_once_the_config_is_loaded(self):
        # A first start (no snapshot) while Redis hangs: the listeners are
        # up but the node knows no user, so READY=1 waits for the config.
        notify = NotifySocket(self.tmp)
        self.addCleanup(notify.close)
        self.redis.pause()
        self.addCleanup(self.redis.resume)
        n = self.node(start=False)
        with mock.patch.dict(os.environ, systemd_env(notify)):
            n.start(wait_directory=False)
        self.assertNotIn("READY=1", "\n".join(notify.drain(1.5)))
        self.redis.resume()
        notify.wait("READY=1", 5)
        self.assertIn("ready: config loaded from Redis", n.log())
        # Restarted, it has its snapshot: ready at once, Redis or not.
        self.assertEqual(n.stop(), 0)
        self.redis.pause()
        os.makedirs(os.path.join(self.tmp, "again"))
        notify2 = NotifySocket(os.path.join(self.tmp, "again"))
        self.addCleanup(notify2.close)
        with mock.patch.dict(os.environ, systemd_env(notify2)):
            n.start(wait_directory=False)
        notify2.wait("READY=1", 3)
        self.assertIn("ready: config from the snapshot", n.log())


def unit_for_build(name, out_dir):
    """etc/NAME with its /usr/local/{s,}bin/ programs pointing at the build's
    binaries, so `verify` finds them executable."""
    with open(os.path.join(SRC, "etc", name)) as f:
        text = f.read()
    text = text.replace("/usr/local/sbin/", BIN + "/")
    text = text.replace("/usr/local/bin/", BIN + "/")
    path = os.path.join(out_dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


@unittest.skipUnless(shutil.which("systemd-analyze"),
                     "systemd-analyze missing (Debian package systemd)")
class TestUnits(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="ms-units-")
        self.addCleanup(self._tmp.cleanup)

    def analyze(self, *args):
        return subprocess.run(["systemd-analyze"] + list(args),
                              capture_output=True, text=True, timeout=60)

    def test_verify(self):
        for name in UNITS:
            path = unit_for_build(name, self._tmp.name)
            # Man pages are checked on their own (test_man.py), not
            # installed on the machine running the tests.
            r = self.analyze("verify", "--man=no", path)
            self.assertEqual(r.returncode, 0, "%s: %s" % (name, r.stderr))
            self.assertEqual(r.stderr.strip(), "", name)

    def test_security_exposure(self):
        for name in UNITS:
            path = unit_for_build(name, self._tmp.name)
            r = self.analyze("security", "--offline=yes", "--no-pager", path)
            m = re.search(r"Overall exposure level for \S+: ([0-9.]+)",
                          r.stdout)
            self.assertIsNotNone(m, r.stdout + r.stderr)
            print("%s: exposure %s" % (name, m.group(1)))
            self.assertLessEqual(float(m.group(1)), UNIT_EXPOSURE_MAX, name)

    def test_units_say_what_the_issue_asks(self):
        for name in ("lbd.service", "mailnode.service"):
            with open(os.path.join(SRC, "etc", name)) as f:
                text = f.read()
            for line in ("Type=notify", "NoNewPrivileges=yes",
                         "ProtectSystem=strict", "PrivateTmp=yes",
                         "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
                         "AmbientCapabilities=CAP_NET_BIND_SERVICE"):
                self.assertIn("\n" + line + "\n", text, name)
            self.assertRegex(text, r"\nWatchdogSec=\d+\n")
            self.assertRegex(text, r"\nReadWritePaths=/\S+")
        for name in ("lbd.service", "mailnode.service"):
            with open(os.path.join(SRC, "etc", name)) as f:
                self.assertIn("\nExecReload=/bin/kill -HUP $MAINPID\n",
                              f.read(), name)


if __name__ == "__main__":
    unittest.main()
