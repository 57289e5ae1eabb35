"""mailctl against a private redis-server: every command, exit codes
(0 done, 1 refused or failed, 2 usage), errors that name the command and
the Redis address, crypt(3) hashes only (never the clear text anywhere in
Redis), one MULTI/EXEC version bump and one PUBLISH per change, the
password prompt on a terminal, and a Redis with a password."""
import ctypes
import ctypes.util
import fcntl
import os
import pty
import select
import subprocess
import tempfile
import termios
import time
import unittest

import redistest
from lbdtest import free_port

BIN = os.environ.get("MS_BIN", os.path.join(os.path.dirname(
    os.path.abspath(__file__)), "..", "..", "build", "bin"))
MAILCTL = os.path.join(BIN, "mailctl")


def crypt(password, setting):
    """crypt(3) from libcrypt, to check a stored hash independently."""
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    out = lib.crypt(password.encode(), setting.encode())
    return out.decode() if out else None


class MailctlTestCase(unittest.TestCase):
    password = None

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="mailctl-")
        self.redis = redistest.RedisServer(self._tmp.name,
                                           password=self.password)
        self.redis.start()

    def tearDown(self):
        self.redis.stop()
        self._tmp.cleanup()

    def env(self, **extra):
        env = dict(os.environ)
        env.pop("MAILCTL_REDIS_PASSWORD", None)
        env["MAILCTL_REDIS"] = self.redis.addr
        env.update(extra)
        return env

    def mailctl(self, *args, input=None, env=None, code=0):
        r = subprocess.run([MAILCTL] + list(args), input=input,
                           env=env or self.env(), capture_output=True,
                           text=True, timeout=30)
        if code is not None:
            self.assertEqual(r.returncode, code, "mailctl %s: rc %d\n%s%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def lines(self, *args):
        return self.mailctl(*args).stdout.splitlines()

    def version(self):
        v = self.redis.cli("GET", "ms:config:gen")
        return int(v) if v is not None else 0

    def dump(self):
        """Every key and value in Redis, as one string."""
        out = []
        for key in self.redis.cli("KEYS", "*"):
            kind = self.redis.cli("TYPE", key)
            if kind == "string":
                val = self.redis.cli("GET", key)
            elif kind == "set":
                val = self.redis.cli("SMEMBERS", key)
            elif kind == "hash":
                val = self.redis.cli("HGETALL", key)
            else:
                val = kind
            out.append("%s=%r" % (key, val))
        return "\n".join(out)


class TestUsage(MailctlTestCase):
    def test_help(self):
        r = self.mailctl("--help")
        for cmd in ("domain add", "user add ADDRESS [--password-stdin]",
                    "alias list [DOMAIN]", "MAILCTL_REDIS_PASSWORD"):
            self.assertIn(cmd, r.stdout)
        self.mailctl("-h")

    def test_usage_errors_exit_2(self):
        self.assertIn("usage", self.mailctl(code=2).stderr)
        self.mailctl("bogus", code=2)
        self.mailctl("domain", code=2)
        self.mailctl("domain", "frobnicate", "x.test", code=2)
        self.mailctl("domain", "add", code=2)
        self.mailctl("domain", "add", "a.test", "b.test", code=2)
        self.mailctl("user", "add", "a@x.test", "--bogus", code=2)
        self.mailctl("domain", "add", "x.test", "--password-stdin", code=2)
        self.mailctl("-r", "not an address", "domain", "list", code=2)
        self.mailctl("--no-such-option", code=2)

    def test_unreachable_redis_names_the_address(self):
        port = free_port()
        r = self.mailctl("-r", "127.0.0.1:%d" % port, "domain", "list",
                         code=1)
        self.assertIn("domain list", r.stderr)
        self.assertIn("127.0.0.1:%d" % port, r.stderr)
        # $MAILCTL_REDIS is used when -r is not given, and -r wins over it.
        r = self.mailctl("domain", "list",
                         env=self.env(MAILCTL_REDIS="127.0.0.1:%d" % port),
                         code=1)
        self.assertIn("127.0.0.1:%d" % port, r.stderr)
        self.mailctl("-r", self.redis.addr, "domain", "list",
                     env=self.env(MAILCTL_REDIS="127.0.0.1:%d" % port))


class TestDomains(MailctlTestCase):
    def test_add_list_del(self):
        self.mailctl("domain", "add", "Example.TEST")
        self.mailctl("domain", "add", "b.example")
        self.assertEqual(self.lines("domain", "list"),
                         ["b.example", "example.test"])
        self.assertEqual(self.redis.cli("SMEMBERS", "ms:domains").sort(),
                         ["example.test", "b.example"].sort())
        self.mailctl("domain", "del", "B.example")
        self.assertEqual(self.lines("domain", "list"), ["example.test"])

    def test_add_existing_and_del_missing_fail(self):
        self.mailctl("domain", "add", "example.test")
        r = self.mailctl("domain", "add", "EXAMPLE.test", code=1)
        self.assertIn("already exists", r.stderr)
        self.assertIn(self.redis.addr, r.stderr)
        r = self.mailctl("domain", "del", "nope.test", code=1)
        self.assertIn("nope.test", r.stderr)

    def test_invalid_domains(self):
        for bad in ("a..b", ".a.b", "a.b.", "a b.test", "a/b.test", "a@b.test",
                    "-a.test", "a-.test", "a\x01b.test", "x" * 64 + ".test"):
            self.mailctl("domain", "add", "--", bad, code=1)
        self.assertEqual(self.lines("domain", "list"), [])

    def test_del_with_users_is_an_error_naming_how_many(self):
        self.mailctl("domain", "add", "example.test")
        for u in ("a", "b"):
            self.mailctl("user", "add", u + "@example.test",
                         "--password-stdin", input="pw\n")
        r = self.mailctl("domain", "del", "example.test", code=1)
        self.assertIn("2 users", r.stderr)
        self.mailctl("domain", "del", "example.test", "--force", code=2)
        self.assertEqual(self.lines("domain", "list"), ["example.test"])
        for u in ("a", "b"):
            self.mailctl("user", "del", u + "@example.test")
        self.mailctl("domain", "del", "example.test")
        self.assertEqual(self.lines("domain", "list"), [])

    def test_del_takes_the_aliases_along(self):
        self.mailctl("domain", "add", "example.test")
        self.mailctl("alias", "add", "team@example.test", "x@elsewhere.test")
        self.mailctl("domain", "del", "example.test")
        self.assertEqual(self.redis.cli("KEYS", "ms:alias*"), [])


class TestUsers(MailctlTestCase):
    def setUp(self):
        super().setUp()
        self.mailctl("domain", "add", "example.test")

    def test_add_stores_only_a_crypt_hash(self):
        secret = "correct horse battery staple"
        self.mailctl("user", "add", "Alice@Example.test", "--password-stdin",
                     input=secret + "\n")
        h = self.redis.cli("HGET", "ms:user:alice@example.test", "password")
        self.assertTrue(h.startswith("$y$") or h.startswith("$6$"), h)
        self.assertEqual(crypt(secret, h), h)
        self.assertNotEqual(crypt(secret + "\n", h), h)  # newline stripped
        self.assertNotIn(secret, self.dump())
        self.assertNotIn("horse", self.dump())
        self.assertEqual(self.redis.cli("SMEMBERS", "ms:users:example.test"),
                         ["alice@example.test"])

    def test_password_stdin_strips_only_the_newline(self):
        self.mailctl("user", "add", "a@example.test", "--password-stdin",
                     input="  spaces kept \r\n")
        h = self.redis.cli("HGET", "ms:user:a@example.test", "password")
        self.assertEqual(crypt("  spaces kept ", h), h)
        self.mailctl("user", "add", "b@example.test", "--password-stdin",
                     input="no newline at all")
        h = self.redis.cli("HGET", "ms:user:b@example.test", "password")
        self.assertEqual(crypt("no newline at all", h), h)

    def test_empty_or_missing_password_refused(self):
        self.mailctl("user", "add", "a@example.test", "--password-stdin",
                     input="\n", code=1)
        self.mailctl("user", "add", "a@example.test", "--password-stdin",
                     input="", code=1)
        self.assertEqual(self.lines("user", "list"), [])

    def test_missing_domain_is_an_error(self):
        v = self.version()
        r = self.mailctl("user", "add", "bob@other.test", "--password-stdin",
                         input="pw\n", code=1)
        self.assertIn("user add", r.stderr)
        self.assertIn("other.test", r.stderr)
        self.assertIn(self.redis.addr, r.stderr)
        self.assertEqual(self.redis.cli("KEYS", "ms:user*"), [])
        self.assertEqual(self.version(), v)

    def test_add_existing_is_an_error(self):
        self.mailctl("user", "add", "a@example.test", "--password-stdin",
                     input="one\n")
        h = self.redis.cli("HGET", "ms:user:a@example.test", "password")
        r = self.mailctl("user", "add", "A@example.test", "--password-stdin",
                         input="two\n", code=1)
        self.assertIn("already exists", r.stderr)
        self.assertEqual(
            self.redis.cli("HGET", "ms:user:a@example.test", "password"), h)

    def test_invalid_addresses(self):
        for bad in ("noat", "a@@example.test", "a@b@example.test",
                    "a b@example.test", "a\tb@example.test", "a/b@example.test",
                    "../x@example.test", "a..b@example.test", ".a@example.test",
                    "a.@example.test", "@example.test", "a@", "a\x7f@example.test",
                    "a@exa..mple.test", "x" * 65 + "@example.test"):
            r = self.mailctl("user", "add", bad, "--password-stdin",
                             input="pw\n", code=1)
            self.assertIn("invalid address", r.stderr)
        self.assertEqual(self.lines("user", "list"), [])

    def test_passwd_changes_the_hash(self):
        self.mailctl("user", "add", "a@example.test", "--password-stdin",
                     input="old\n")
        self.mailctl("user", "passwd", "a@example.test", "--password-stdin",
                     input="new\n")
        h = self.redis.cli("HGET", "ms:user:a@example.test", "password")
        self.assertEqual(crypt("new", h), h)
        self.assertNotEqual(crypt("old", h), h)
        self.mailctl("user", "passwd", "zed@example.test",
                     "--password-stdin", input="x\n", code=1)
        self.mailctl("user", "passwd", "zed@nope.test",
                     "--password-stdin", input="x\n", code=1)

    def test_del(self):
        self.mailctl("user", "add", "a@example.test", "--password-stdin",
                     input="pw\n")
        self.mailctl("user", "del", "A@EXAMPLE.TEST")
        self.assertEqual(self.redis.cli("KEYS", "ms:user*"), [])
        r = self.mailctl("user", "del", "a@example.test", code=1)
        self.assertIn("no such user", r.stderr)

    def test_list(self):
        self.mailctl("domain", "add", "b.test")
        for a in ("zed@example.test", "amy@example.test", "bo@b.test"):
            self.mailctl("user", "add", a, "--password-stdin", input="pw\n")
        self.assertEqual(self.lines("user", "list", "example.test"),
                         ["amy@example.test", "zed@example.test"])
        self.assertEqual(self.lines("user", "list"),
                         ["bo@b.test", "amy@example.test", "zed@example.test"])
        self.mailctl("user", "list", "nope.test", code=1)

    def test_prompt_without_terminal_fails(self):
        r = subprocess.run([MAILCTL, "user", "add", "a@example.test"],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, env=self.env(), timeout=30,
                           start_new_session=True)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("--password-stdin", r.stderr)

    def prompt(self, first, second):
        """Runs user add on a terminal of its own and answers its two
        prompts. Returns (exit code, what it wrote)."""
        master, slave = pty.openpty()

        def ctty():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        p = subprocess.Popen([MAILCTL, "user", "add", "tty@example.test"],
                             stdin=slave, stdout=slave, stderr=slave,
                             env=self.env(), start_new_session=True,
                             preexec_fn=ctty)
        os.close(slave)
        seen = b""
        answers = [first, second]
        end = time.monotonic() + 20
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    break
                if not data:
                    break
                seen += data
                if answers and seen.count(b"assword") > 2 - len(answers):
                    os.write(master, answers.pop(0).encode() + b"\n")
            elif p.poll() is not None:
                break
        os.close(master)
        return p.wait(10), seen.decode("utf-8", "replace")

    def test_prompt_twice_on_the_terminal(self):
        code, out = self.prompt("s3cret", "s3cret")
        self.assertEqual(code, 0, out)
        self.assertIn("Password for tty@example.test", out)
        self.assertNotIn("s3cret", out)  # no echo
        h = self.redis.cli("HGET", "ms:user:tty@example.test", "password")
        self.assertEqual(crypt("s3cret", h), h)

    def test_prompt_mismatch_refused(self):
        code, out = self.prompt("one", "two")
        self.assertEqual(code, 1, out)
        self.assertIn("do not match", out)
        self.assertEqual(self.redis.cli("KEYS", "ms:user:*"), [])


class TestAliases(MailctlTestCase):
    def setUp(self):
        super().setUp()
        self.mailctl("domain", "add", "example.test")
        for u in ("alice", "bob"):
            self.mailctl("user", "add", u + "@example.test",
                         "--password-stdin", input="pw\n")

    def test_add_list_del(self):
        self.mailctl("alias", "add", "Team@example.test", "bob@example.test")
        self.mailctl("alias", "add", "team@example.test", "ALICE@example.test")
        self.assertEqual(self.lines("alias", "list"),
                         ["team@example.test alice@example.test",
                          "team@example.test bob@example.test"])
        self.assertEqual(self.lines("alias", "list", "example.test"),
                         self.lines("alias", "list"))
        self.mailctl("alias", "del", "team@example.test", "bob@example.test")
        self.assertEqual(self.lines("alias", "list"),
                         ["team@example.test alice@example.test"])
        # The last target takes the alias with it.
        self.mailctl("alias", "del", "team@example.test", "alice@example.test")
        self.assertEqual(self.lines("alias", "list"), [])
        self.assertEqual(self.redis.cli("KEYS", "ms:alias*"), [])

    def test_errors(self):
        r = self.mailctl("alias", "add", "x@nope.test", "alice@example.test",
                         code=1)
        self.assertIn("nope.test", r.stderr)
        self.mailctl("alias", "add", "alice@example.test", "bob@example.test",
                     code=1)
        self.mailctl("alias", "add", "t@example.test", "t@example.test",
                     code=1)
        self.mailctl("alias", "add", "t@example.test", "bad target", code=1)
        self.mailctl("alias", "add", "t@example.test", "bob@example.test")
        r = self.mailctl("alias", "add", "t@example.test", "bob@example.test",
                         code=1)
        self.assertIn("already exists", r.stderr)
        self.mailctl("alias", "del", "t@example.test", "alice@example.test",
                     code=1)
        self.mailctl("alias", "list", "nope.test", code=1)
        # A user cannot be added over an alias either.
        r = self.mailctl("user", "add", "t@example.test", "--password-stdin",
                         input="pw\n", code=1)
        self.assertIn("alias", r.stderr)

    def test_target_that_leads_nowhere_warns(self):
        r = self.mailctl("alias", "add", "t@example.test", "carol@example.test")
        self.assertIn("warning", r.stderr)
        r = self.mailctl("alias", "add", "t@example.test", "bob@example.test")
        self.assertEqual(r.stderr, "")


class TestPublish(MailctlTestCase):
    def test_every_change_bumps_the_version_and_publishes_it(self):
        sub = self.redis.subscribe("ms:config")
        try:
            changes = [
                ("domain", "add", "example.test"),
                ("user", "add", "a@example.test", "--password-stdin"),
                ("user", "passwd", "a@example.test", "--password-stdin"),
                ("alias", "add", "t@example.test", "a@example.test"),
                ("alias", "del", "t@example.test", "a@example.test"),
                ("user", "del", "a@example.test"),
                ("domain", "del", "example.test"),
            ]
            for args in changes:
                before = self.version()
                self.mailctl(*args, input="pw\n")
                self.assertEqual(self.version(), before + 1, args)
                self.assertEqual(sub.message(2.0), str(before + 1), args)
            # Refused changes and reads neither bump nor publish.
            before = self.version()
            self.mailctl("user", "add", "a@nope.test", "--password-stdin",
                         input="pw\n", code=1)
            self.mailctl("domain", "list")
            self.mailctl("user", "list")
            self.assertEqual(self.version(), before)
            self.assertIsNone(sub.message(0.3))
        finally:
            sub.close()


class TestRedisPassword(MailctlTestCase):
    password = "redis-secret"

    def test_password_from_the_environment(self):
        self.mailctl("domain", "add", "example.test",
                     env=self.env(MAILCTL_REDIS_PASSWORD=self.password))
        self.assertEqual(self.redis.cli("SMEMBERS", "ms:domains"),
                         ["example.test"])

    def test_password_option(self):
        self.mailctl("-a", self.password, "domain", "list")

    def test_missing_or_wrong_password_fails(self):
        r = self.mailctl("domain", "list", code=1)
        self.assertIn(self.redis.addr, r.stderr)
        r = self.mailctl("domain", "list", code=1,
                         env=self.env(MAILCTL_REDIS_PASSWORD="wrong"))
        self.assertIn("AUTH", r.stderr)
        self.assertNotIn("wrong", r.stderr.replace("WRONGPASS", ""))


if __name__ == "__main__":
    unittest.main()
