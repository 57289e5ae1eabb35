"""lbctl against a fake control server on a temporary Unix socket.

The fake server records the command line lbctl sends and answers as each
test tells it: a fixed answer, streamed lines, no answer at all, or silence
until lbctl gives up. Run from tests/integration with MS_BIN=<build>/bin:

    python3 -m unittest -v test_lbctl
"""

import os
import select
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

MS_BIN = os.environ.get(
    "MS_BIN",
    os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin"))
LBCTL = os.path.join(MS_BIN, "lbctl")
RUN_TIMEOUT = 10  # seconds: no lbctl run may take longer


class FakeControl:
    """A Unix stream server that reads one line per connection, records it
    and runs the current behaviour(conn) on the connection."""

    def __init__(self, path):
        self.path = path
        self.lines = []
        self.behaviour = FakeControl.answer("ok\n")
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def answer(text):
        def run(conn, stop):
            conn.sendall(text.encode())
        return run

    @staticmethod
    def stream(lines, gap=0.05):
        def run(conn, stop):
            for line in lines:
                conn.sendall(line.encode())
                if stop.wait(gap):
                    return
        return run

    @staticmethod
    def hold(then_text=None, seconds=5):
        """Says nothing for `seconds` (or until the test ends)."""
        def run(conn, stop):
            if then_text is not None:
                conn.sendall(then_text.encode())
            stop.wait(seconds)
        return run

    def _read_line(self, conn):
        data = b""
        conn.settimeout(5)
        while b"\n" not in data and len(data) < 4096:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace")

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                try:
                    self.lines.append(self._read_line(conn))
                    self.behaviour(conn, self.stop)
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join(timeout=10)
        self.sock.close()


class LbctlTest(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.access(LBCTL, os.X_OK), f"no {LBCTL}")
        self.tmp = tempfile.TemporaryDirectory(prefix="lbctl-")
        self.sock = os.path.join(self.tmp.name, "lbd.sock")
        self.server = FakeControl(self.sock)

    def tearDown(self):
        self.server.close()
        self.tmp.cleanup()

    def lbctl(self, *args, env=None, sock=True):
        argv = [LBCTL] + (["-s", self.sock] if sock else []) + list(args)
        full_env = dict(os.environ)
        full_env.pop("LBCTL_SOCKET", None)
        full_env.update(env or {})
        return subprocess.run(argv, capture_output=True, text=True,
                              env=full_env, timeout=RUN_TIMEOUT)

    # -- the wire line of every command --

    def test_commands_map_to_wire_lines(self):
        cases = [
            (["status"], "show status"),
            (["status", "--json"], "show status json"),
            (["pool", "add", "mx", "n4", "127.0.0.1:2525"],
             "pool add mx n4 127.0.0.1:2525"),
            (["pool", "add", "mx", "n4", "[::1]:25", "--weight", "3",
              "--maxconn", "100"],
             "pool add mx n4 [::1]:25 weight=3 maxconn=100"),
            (["pool", "add", "--maxconn=5", "imap", "mail_2.x",
              "10.0.0.12:143"],
             "pool add imap mail_2.x 10.0.0.12:143 maxconn=5"),
            (["pool", "add", "mx", "n4", "127.0.0.1:25", "--weight", "0"],
             "pool add mx n4 127.0.0.1:25 weight=0"),
            (["pool", "remove", "mx", "n4"], "pool remove mx n4"),
            (["node", "drain", "mx", "n1"], "node drain mx n1"),
            (["node", "disable", "mx", "n1"], "node disable mx n1"),
            (["node", "disable", "mx", "n1", "--for", "60"],
             "node disable mx n1 for=60"),
            (["node", "disable", "mx", "n1", "--for=5"],
             "node disable mx n1 for=5"),
            (["node", "enable", "mx", "n1"], "node enable mx n1"),
            (["node", "weight", "mx", "n1", "7"], "node weight mx n1 7"),
            (["node", "weight", "mx", "n1", "0"], "node weight mx n1 0"),
            (["ping"], "ping"),
        ]
        for args, wire in cases:
            with self.subTest(args=args):
                self.server.lines.clear()
                self.server.behaviour = FakeControl.answer("ok\n")
                r = self.lbctl(*args)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(self.server.lines, [wire + "\n"])
                self.assertEqual(r.stdout, "ok\n")
                self.assertEqual(r.stderr, "")

    def test_ping_prints_pong(self):
        self.server.behaviour = FakeControl.answer("pong\n")
        r = self.lbctl("ping")
        self.assertEqual((r.returncode, r.stdout), (0, "pong\n"))

    def test_answer_without_newline_gets_one(self):
        self.server.behaviour = FakeControl.answer("pong")
        r = self.lbctl("ping")
        self.assertEqual((r.returncode, r.stdout), (0, "pong\n"))

    def test_long_answer_is_copied_whole(self):
        body = "".join(f"mx n{i} 10.0.0.{i % 250}:25 up up 1 0 0 1s ok\n"
                       for i in range(40000))
        self.server.behaviour = FakeControl.answer(body)
        r = self.lbctl("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, body)

    # -- failures --

    def test_error_answer_goes_to_stderr_exit_1(self):
        self.server.behaviour = FakeControl.answer("error: no pool nope\n")
        r = self.lbctl("node", "drain", "nope", "n1")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertIn("error: no pool nope", r.stderr)

    def test_short_answer_that_is_not_an_error(self):
        self.server.behaviour = FakeControl.answer("err\n")
        r = self.lbctl("status")
        self.assertEqual((r.returncode, r.stdout), (0, "err\n"))

    def test_no_answer_exit_1(self):
        self.server.behaviour = FakeControl.answer("")
        r = self.lbctl("status")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no answer", r.stderr)
        self.assertIn(self.sock, r.stderr)

    def test_no_server_names_the_socket(self):
        missing = os.path.join(self.tmp.name, "missing.sock")
        r = subprocess.run([LBCTL, "-s", missing, "ping"],
                           capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
        self.assertEqual(r.returncode, 1)
        self.assertIn(missing, r.stderr)
        self.assertIn("No such file", r.stderr)

    def test_socket_that_nobody_listens_on(self):
        path = os.path.join(self.tmp.name, "dead.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()  # the file stays, nobody listens
        r = subprocess.run([LBCTL, "-s", path, "status"],
                           capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
        self.assertEqual(r.returncode, 1)
        self.assertIn(path, r.stderr)
        self.assertIn("refused", r.stderr)

    def test_bad_usage_exit_2_and_nothing_sent(self):
        cases = [
            [],
            ["frobnicate"],
            ["pool"],
            ["pool", "grow", "mx"],
            ["pool", "add", "mx", "n4"],
            ["pool", "add", "mx", "n4", "localhost"],
            ["pool", "add", "mx", "n4", "127.0.0.1:0"],
            ["pool", "add", "mx", "n4", "127.0.0.1:65536"],
            ["pool", "add", "mx", "n4", "300.0.0.1:25"],
            ["pool", "add", "mx", "n4", "127.0.0.1:25", "extra"],
            ["pool", "add", "mx", "n4", "127.0.0.1:25", "--weight"],
            ["pool", "add", "mx", "n4", "127.0.0.1:25", "--weight", "257"],
            ["pool", "add", "mx", "n4", "127.0.0.1:25", "--weight", "-1"],
            ["pool", "add", "mx", "n4", "127.0.0.1:25", "--weight", "2x"],
            ["pool", "add", "mx", "n4", "127.0.0.1:25", "--maxconn", "x"],
            ["pool", "add", "mx", "n4", "127.0.0.1:25", "--colour", "red"],
            ["pool", "add", "m x", "n4", "127.0.0.1:25"],
            ["pool", "add", "mx", "n4=1", "127.0.0.1:25"],
            ["pool", "add", "mx", "n" * 64, "127.0.0.1:25"],
            ["pool", "remove", "mx"],
            ["pool", "remove", "mx", "n1", "n2"],
            ["node", "drain", "mx"],
            ["node", "pause", "mx", "n1"],
            ["node", "disable", "mx", "n1", "--for"],
            ["node", "disable", "mx", "n1", "--for", "0"],
            ["node", "disable", "mx", "n1", "--for", "soon"],
            ["node", "disable", "mx", "n1", "60"],
            ["node", "weight", "mx", "n1"],
            ["node", "weight", "mx", "n1", "1000"],
            ["node", "weight", "mx", "n1", ""],
            ["status", "--yaml"],
            ["watch", "now"],
            ["ping", "pong"],
            ["-t", "0", "ping"],
            ["-x", "ping"],
        ]
        for args in cases:
            with self.subTest(args=args):
                r = self.lbctl(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn("usage:", r.stderr)
                self.assertEqual(r.stdout, "")
        self.assertEqual(self.server.lines, [])

    def test_help(self):
        for flag in ("--help", "-h"):
            with self.subTest(flag=flag):
                r = subprocess.run([LBCTL, flag], capture_output=True,
                                   text=True, timeout=RUN_TIMEOUT)
                self.assertEqual(r.returncode, 0)
                self.assertTrue(r.stdout.startswith("usage:"))
                self.assertIn("lbctl pool add", r.stdout)
                self.assertEqual(r.stderr, "")
        self.assertEqual(self.server.lines, [])

    # -- where the socket comes from --

    def test_lbctl_socket_env(self):
        self.server.behaviour = FakeControl.answer("pong\n")
        r = self.lbctl("ping", env={"LBCTL_SOCKET": self.sock}, sock=False)
        self.assertEqual((r.returncode, r.stdout), (0, "pong\n"))
        self.assertEqual(self.server.lines, ["ping\n"])

    def test_dash_s_beats_env(self):
        self.server.behaviour = FakeControl.answer("pong\n")
        bogus = os.path.join(self.tmp.name, "bogus.sock")
        r = self.lbctl("ping", env={"LBCTL_SOCKET": bogus})
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_default_socket_path(self):
        if os.path.exists("/run/lbd/lbd.sock"):
            self.skipTest("a real lbd is running here")
        r = self.lbctl("ping", sock=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/run/lbd/lbd.sock", r.stderr)

    # -- watch --

    def test_watch_streams_until_close(self):
        lines = [f"2026-11-22T10:00:0{i}.000Z mx n{i} up -> down "
                 f"connect refused (2/2)\n" for i in range(5)]
        self.server.behaviour = FakeControl.stream(lines)
        r = self.lbctl("watch")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.server.lines, ["watch\n"])
        self.assertEqual(r.stdout, "".join(lines))

    def test_watch_outlives_the_read_timeout_and_stops_on_sigint(self):
        line = "2026-11-22T10:00:00.123Z mx n2 up -> down refused (2/2)\n"
        self.server.behaviour = FakeControl.hold(line, seconds=30)
        env = dict(os.environ, LBCTL_SOCKET=self.sock)
        p = subprocess.Popen([LBCTL, "-t", "200", "watch"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            ready, _, _ = select.select([p.stdout], [], [], 5)
            self.assertTrue(ready, "watch printed nothing")
            self.assertEqual(p.stdout.readline(), line)  # printed at once
            time.sleep(0.5)  # longer than -t: watch has no read timeout
            self.assertIsNone(p.poll(), "watch ended on its own")
            p.send_signal(signal.SIGINT)
            rc = p.wait(timeout=5)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(rc, 0)

    # -- timeouts --

    def test_ping_times_out_fast(self):
        self.server.behaviour = FakeControl.hold(seconds=10)
        t0 = time.monotonic()
        r = self.lbctl("-t", "200", "ping")
        elapsed = time.monotonic() - t0
        self.assertEqual(r.returncode, 1)
        self.assertIn("timed out", r.stderr)
        self.assertIn(self.sock, r.stderr)
        self.assertLess(elapsed, 1.0)

    def test_ping_default_timeout_is_one_second(self):
        self.server.behaviour = FakeControl.hold(seconds=10)
        t0 = time.monotonic()
        r = self.lbctl("ping")
        elapsed = time.monotonic() - t0
        self.assertEqual(r.returncode, 1)
        self.assertIn("timed out after 1000 ms", r.stderr)
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 2.5)

    def test_status_times_out(self):
        self.server.behaviour = FakeControl.hold("partial", seconds=10)
        r = self.lbctl("-t", "300", "status")
        self.assertEqual(r.returncode, 1)
        self.assertIn("timed out", r.stderr)


if __name__ == "__main__":
    unittest.main()
