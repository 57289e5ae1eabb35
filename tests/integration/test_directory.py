"""The Redis client and the directory cache, driven through
tests/tools/directory_probe against a real redis-server: a full load,
aliases, a mailctl change seen within a second through pub/sub, lookups
answered from the cache at once while Redis hangs (SIGSTOP), stale while it
is away, catching up after SIGCONT, and reconnecting after Redis is killed
and restarted empty on the same port: stale, the cache kept, until a
mailctl wipe goes above its config generation."""
import os
import select
import subprocess
import tempfile
import time
import unittest

import redistest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("MS_BIN", os.path.join(HERE, "..", "..", "build", "bin"))
TESTBIN = os.environ.get("MS_TESTBIN",
                         os.path.join(HERE, "..", "..", "build", "tests"))
MAILCTL = os.path.join(BIN, "mailctl")
PROBE = os.path.join(TESTBIN, "directory_probe")


def wait_for(pred, timeout, step=0.02, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out after %.1fs waiting for %s" %
                         (timeout, what))


class Probe:
    """A directory_probe process: ask() sends one line, returns the answer
    and how long it took."""

    def __init__(self, tmp, addr, *args, env=None):
        self.logpath = os.path.join(tmp, "probe-%d.log" % time.monotonic_ns())
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen([PROBE, addr] + list(args),
                                     stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log,
                                     env=env)
        self.buf = b""

    def ask(self, line, timeout=5.0):
        t0 = time.monotonic()
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = timeout - (time.monotonic() - t0)
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            if not ready:
                raise AssertionError("probe did not answer %r in %.1fs" %
                                     (line, timeout))
            data = os.read(fd, 65536)
            if not data:
                raise AssertionError("probe exited:\n" + self.output())
            self.buf += data
        answer, self.buf = self.buf.split(b"\n", 1)
        return answer.decode(), time.monotonic() - t0

    def __call__(self, line):
        return self.ask(line)[0]

    def resolve(self, address):
        a = self(("resolve " + address))
        return sorted(a.split()[1:]) if a.startswith("ok") else a

    def output(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        """quit, and the exit code (0 expected: a clean shutdown)."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        return self.proc.returncode


class DirectoryTestCase(unittest.TestCase):
    password = None

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="directory-")
        self.tmp = self._tmp.name
        self.redis = redistest.RedisServer(self.tmp, password=self.password)
        self.redis.start()
        self.probes = []
        self.mailctl("domain", "add", "example.test")
        for u in ("alice", "bob"):
            self.mailctl("user", "add", u + "@example.test",
                         "--password-stdin", input="pw-" + u + "\n")
        self.mailctl("alias", "add", "team@example.test", "alice@example.test")
        self.mailctl("alias", "add", "team@example.test", "bob@example.test")

    def tearDown(self):
        failed = False
        for p in self.probes:
            code = p.stop()
            if code != 0:
                failed = True
                print("---- probe exit %s ----\n%s" % (code, p.output()))
        self.redis.stop()
        self._tmp.cleanup()
        self.assertFalse(failed, "a probe did not exit cleanly")

    def mailctl(self, *args, input=None):
        env = dict(os.environ, MAILCTL_REDIS=self.redis.addr)
        if self.password:
            env["MAILCTL_REDIS_PASSWORD"] = self.password
        r = subprocess.run([MAILCTL] + list(args), input=input, env=env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, "mailctl %s: %s" % (args, r.stderr))

    def probe(self, *args, env=None):
        p = Probe(self.tmp, self.redis.addr, *args, env=env)
        self.probes.append(p)
        return p

    def loaded_probe(self, *args):
        p = self.probe(*args)
        wait_for(lambda: p("loaded") == "yes", 5, what="first load")
        return p


class TestLookups(DirectoryTestCase):
    def test_users_aliases_and_domains(self):
        p = self.loaded_probe()
        self.assertEqual(p("stale"), "no")
        self.assertEqual(p("up"), "yes")
        self.assertEqual(p.resolve("alice@example.test"), ["alice@example.test"])
        self.assertEqual(p.resolve("ALICE@Example.TEST"), ["alice@example.test"])
        self.assertEqual(p.resolve("team@example.test"),
                         ["alice@example.test", "bob@example.test"])
        self.assertEqual(p.resolve("nobody@example.test"), "unknown")
        self.assertEqual(p.resolve("alice@elsewhere.test"), "not_local")
        self.assertEqual(p.resolve("no-domain"), "not_local")
        self.assertEqual(p("local EXAMPLE.test"), "yes")
        self.assertEqual(p("local elsewhere.test"), "no")

    def test_auth(self):
        p = self.loaded_probe()
        self.assertEqual(p("auth alice@example.test pw-alice"), "yes")
        self.assertEqual(p("auth Alice@Example.Test pw-alice"), "yes")
        self.assertEqual(p("auth alice@example.test pw-bob"), "no")
        self.assertEqual(p("auth nobody@example.test pw-alice"), "no")
        self.assertEqual(p("auth team@example.test pw-alice"), "no")
        self.assertTrue(p("hash bob@example.test").startswith("$"))
        self.assertEqual(p("hash nobody@example.test"), "none")

    def test_alias_chains_loops_and_duplicates(self):
        # a0 -> a1 -> ... -> a7 -> alice: eight aliases deep resolves.
        for i in range(8):
            self.mailctl("alias", "add", "a%d@example.test" % i,
                         "a%d@example.test" % (i + 1) if i < 7
                         else "alice@example.test")
        # b0 -> ... -> b8 -> alice: nine is too deep.
        for i in range(9):
            self.mailctl("alias", "add", "b%d@example.test" % i,
                         "b%d@example.test" % (i + 1) if i < 8
                         else "alice@example.test")
        self.mailctl("alias", "add", "loop1@example.test", "loop2@example.test")
        self.mailctl("alias", "add", "loop2@example.test", "loop1@example.test")
        self.mailctl("alias", "add", "all@example.test", "team@example.test")
        self.mailctl("alias", "add", "all@example.test", "alice@example.test")
        self.mailctl("alias", "add", "all@example.test", "loop1@example.test")
        self.mailctl("alias", "add", "all@example.test", "x@elsewhere.test")
        p = self.loaded_probe()
        wait_for(lambda: p.resolve("all@example.test") != "unknown", 2)
        self.assertEqual(p.resolve("a0@example.test"), ["alice@example.test"])
        self.assertEqual(p.resolve("b0@example.test"), "unknown")
        self.assertEqual(p.resolve("loop1@example.test"), "unknown")
        self.assertEqual(p.resolve("all@example.test"),
                         ["alice@example.test", "bob@example.test"])


class TestChanges(DirectoryTestCase):
    def test_mailctl_change_seen_within_a_second(self):
        p = self.loaded_probe()
        self.assertEqual(p.resolve("dave@example.test"), "unknown")
        loads = int(p("loads"))
        self.assertGreaterEqual(loads, 1)
        t0 = time.monotonic()
        self.mailctl("user", "add", "dave@example.test", "--password-stdin",
                     input="pw-dave\n")
        wait_for(lambda: p.resolve("dave@example.test") ==
                 ["dave@example.test"], 1.0, what="dave via pub/sub")
        self.assertLess(time.monotonic() - t0, 1.5)
        self.assertGreater(int(p("loads")), loads)
        self.assertEqual(p("auth dave@example.test pw-dave"), "yes")
        self.mailctl("user", "passwd", "dave@example.test", "--password-stdin",
                     input="new\n")
        wait_for(lambda: p("auth dave@example.test new") == "yes", 1.0)
        self.mailctl("alias", "del", "team@example.test", "bob@example.test")
        wait_for(lambda: p.resolve("team@example.test") ==
                 ["alice@example.test"], 1.0)
        self.mailctl("user", "del", "dave@example.test")
        wait_for(lambda: p.resolve("dave@example.test") == "unknown", 1.0)
        self.mailctl("domain", "add", "new.test")
        wait_for(lambda: p("local new.test") == "yes", 1.0)

    def test_many_users_load(self):
        # A bigger directory, written straight into Redis in one pipeline.
        h = self.redis.cli("HGET", "ms:user:alice@example.test", "password")
        with self.redis.connect() as c:
            n = 5000
            for i in range(n):
                a = "u%05d@example.test" % i
                c.send("SADD", "ms:users:example.test", a)
                c.send("HSET", "ms:user:" + a, "password", h)
            for i in range(2 * n):
                c.read()
        p = self.loaded_probe()
        self.assertEqual(p.resolve("u04999@example.test"),
                         ["u04999@example.test"])
        self.assertEqual(p("auth u00000@example.test pw-alice"), "yes")


class TestRedisAway(DirectoryTestCase):
    def assert_fast_lookups(self, p):
        for q, want in (("resolve alice@example.test", "ok alice@example.test"),
                        ("local example.test", "yes"),
                        ("resolve nobody@example.test", "unknown")):
            answer, took = p.ask(q)
            self.assertEqual(answer, want)
            self.assertLess(took, 0.1, "%s took %.3fs" % (q, took))

    def test_hung_redis(self):
        # A long reconnect interval leaves a window after SIGCONT in which
        # a change is made while the probe is still disconnected: it must
        # see it anyway once it is back (a reload, not a missed message).
        p = self.loaded_probe("--timeout-ms", "300", "--reconnect-ms", "1500")
        self.redis.pause()
        try:
            self.assert_fast_lookups(p)
            t0 = time.monotonic()
            wait_for(lambda: p("stale") == "yes", 3.0, what="stale")
            self.assertLess(time.monotonic() - t0, 2.5)
            self.assertEqual(p("up"), "no")
            # Still answering from the cache, at once, every time.
            for _ in range(3):
                self.assert_fast_lookups(p)
                self.assertEqual(p("auth alice@example.test pw-alice"), "yes")
        finally:
            self.redis.resume()
        self.mailctl("user", "add", "erin@example.test", "--password-stdin",
                     input="pw-erin\n")
        self.assertEqual(p("stale"), "yes")
        wait_for(lambda: p("stale") == "no", 5.0, what="reconnect")
        wait_for(lambda: p.resolve("erin@example.test") ==
                 ["erin@example.test"], 2.0, what="catch up")
        # And pub/sub works again after the reconnect.
        self.mailctl("user", "add", "fred@example.test", "--password-stdin",
                     input="pw\n")
        wait_for(lambda: p.resolve("fred@example.test") ==
                 ["fred@example.test"], 1.0, what="fred via pub/sub")

    def test_killed_and_restarted_redis(self):
        p = self.loaded_probe()
        self.redis.kill()
        wait_for(lambda: p("stale") == "yes", 2.0, what="stale")
        self.assert_fast_lookups(p)
        self.assertEqual(p.resolve("team@example.test"),
                         ["alice@example.test", "bob@example.test"])
        time.sleep(1.0)  # a few failed reconnects
        self.assert_fast_lookups(p)
        # Back on the same port, empty (no persistence): the probe
        # reconnects, finds a config generation below its own (Redis lost
        # the config) and keeps its cache, stale, even through a change
        # made on the empty Redis; it publishes its generation there.
        self.redis.start()
        self.mailctl("domain", "add", "example.test")
        self.mailctl("user", "add", "gina@example.test", "--password-stdin",
                     input="pw-gina\n")
        wait_for(lambda: self.redis.cli("HGET", "ms:config:nodes", "probe"),
                 5.0, what="reconnect")
        self.assertEqual(p("stale"), "yes")
        self.assertEqual(p.resolve("alice@example.test"),
                         ["alice@example.test"])
        self.assertEqual(p.resolve("gina@example.test"), "unknown")
        # A deliberate wipe goes above it: the probe follows that, and
        # what is written next.
        self.mailctl("wipe", "--yes")
        self.mailctl("domain", "add", "example.test")
        self.mailctl("user", "add", "gina@example.test", "--password-stdin",
                     input="pw-gina\n")
        wait_for(lambda: p("stale") == "no", 5.0, what="follows the wipe")
        wait_for(lambda: p.resolve("gina@example.test") ==
                 ["gina@example.test"], 2.0, what="reload")
        self.assertEqual(p.resolve("alice@example.test"), "unknown")
        self.assertEqual(p("auth gina@example.test pw-gina"), "yes")

    def test_redis_down_at_start(self):
        self.redis.kill()
        p = self.probe()
        self.assertEqual(p("loaded"), "no")
        self.assertEqual(p("stale"), "yes")
        self.assertEqual(p.resolve("alice@example.test"), "not_local")
        self.redis.start()
        self.mailctl("domain", "add", "example.test")
        wait_for(lambda: p("loaded") == "yes", 5.0, what="first load")
        self.assertEqual(p("local example.test"), "yes")


class TestClient(DirectoryTestCase):
    """The Redis client itself: replies, a deadline per command, failing
    fast while down, and cancelled callbacks that never run."""

    def test_commands_timeouts_and_fail_fast(self):
        p = self.loaded_probe("--timeout-ms", "300", "--reconnect-ms", "500")
        self.assertEqual(p("cmd SET k v"), "reply string OK")
        self.assertEqual(p("cmd GET k"), "reply string v")
        self.assertEqual(p("cmd INCR n"), "reply integer 1")
        self.assertEqual(p("cmd GET nothing"), "reply nil")
        self.assertTrue(p("cmd NOSUCHCOMMAND").startswith("reply error"))
        self.redis.pause()
        try:
            answer, took = p.ask("cmd GET k")
            self.assertEqual(answer, "null")
            self.assertGreater(took, 0.2)
            self.assertLess(took, 1.0)
            # Known to be away: no more waiting, not even for a moment.
            answer, took = p.ask("cmd GET k")
            self.assertEqual(answer, "refused")
            self.assertLess(took, 0.1)
            self.assertEqual(p("up"), "no")
            self.assertEqual(p("stale"), "yes")
        finally:
            self.redis.resume()
        wait_for(lambda: p("up") == "yes", 5.0, what="reconnect")
        self.assertEqual(p("cmd GET k"), "reply string v")

    def test_cancelled_callback_never_runs(self):
        p = self.loaded_probe()
        for _ in range(20):
            self.assertEqual(p("cancel GET k"), "ok")
        self.assertEqual(p("cancel DEBUG SLEEP 0.1"), "ok")

    def test_commands_refused_while_redis_is_gone(self):
        p = self.loaded_probe()
        self.redis.kill()
        wait_for(lambda: p("up") == "no", 2.0, what="down")
        answer, took = p.ask("cmd PING")
        self.assertEqual(answer, "refused")
        self.assertLess(took, 0.1)


class TestRedisPassword(DirectoryTestCase):
    password = "dir-secret"

    def test_auth_with_password(self):
        env = dict(os.environ, DIRECTORY_PROBE_PASSWORD=self.password)
        p = self.probe(env=env)
        wait_for(lambda: p("loaded") == "yes", 5, what="first load")
        self.assertEqual(p.resolve("team@example.test"),
                         ["alice@example.test", "bob@example.test"])
        self.mailctl("user", "add", "hal@example.test", "--password-stdin",
                     input="pw\n")
        wait_for(lambda: p.resolve("hal@example.test") ==
                 ["hal@example.test"], 1.0, what="pub/sub with AUTH")

    def test_wrong_password_never_loads(self):
        env = dict(os.environ, DIRECTORY_PROBE_PASSWORD="wrong")
        p = self.probe(env=env)
        time.sleep(1.0)
        self.assertEqual(p("loaded"), "no")
        self.assertEqual(p("up"), "no")
        self.assertEqual(p("stale"), "yes")


if __name__ == "__main__":
    unittest.main()
