"""lbd's configuration checks: `lbd -t`, file:line errors, exit status 2."""
import os
import subprocess
import unittest

from lbdtest import LBD, LbdTestCase

GOOD = """\
[lbd]
control = {control}
state_file = {state}
workers = 2
log_level = info

[service smtp]
listen = 127.0.0.1:2525        ; comments after values
protocol = smtp
pool = mx
proxy_protocol = v2
retries = 2

[service imap6]
listen = [::1]:2143
protocol = imap
pool = access

[pool mx]
balance = maglev
check = smtp
rise = 2
fall = 2
node = mx1 127.0.0.1:2501 weight=1
node = mx2 127.0.0.1:2502 weight=2 maxconn=5000

[pool access]
balance = leastconn
check = imap
check_user = probe@example.test
check_password = secret
node = a1 [::1]:2601
"""


class ConfigTest(LbdTestCase):
    def check(self, text):
        path = os.path.join(self.tmp, "lbd.ini")
        with open(path, "w") as f:
            f.write(text.replace("{control}", os.path.join(self.tmp, "c.sock"))
                    .replace("{state}", os.path.join(self.tmp, "state")))
        r = subprocess.run([LBD, "-t", "-c", path], capture_output=True,
                           text=True, timeout=10)
        return r, path

    def assert_bad(self, text, line, words):
        r, path = self.check(text)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("%s:%d: " % (path, line), r.stderr)
        for w in words:
            self.assertIn(w, r.stderr)

    def test_good_config_passes(self):
        r, path = self.check(GOOD)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("valid", r.stdout)

    def test_unknown_key(self):
        self.assert_bad(GOOD.replace("retries = 2", "retires = 2"), 12,
                        ['unknown key "retires"', "[service]"])

    def test_bad_address(self):
        self.assert_bad(GOOD.replace("127.0.0.1:2525", "127.0.0.300:2525"), 8,
                        ["bad address", "127.0.0.300:2525"])
        self.assert_bad(GOOD.replace("127.0.0.1:2502", "127.0.0.1:99999"), 25,
                        ["bad port"])

    def test_missing_pool(self):
        self.assert_bad(GOOD.replace("pool = access", "pool = acess"), 17,
                        ['pool "acess" does not exist'])

    def test_duplicate_listen(self):
        self.assert_bad(GOOD.replace("[::1]:2143", "127.0.0.1:2525"), 15,
                        ["already used by service smtp"])

    def test_bad_values(self):
        self.assert_bad(GOOD.replace("balance = maglev", "balance = random"), 20,
                        ['"random" is not one of'])
        self.assert_bad(GOOD.replace("check = smtp", "check = ftp"), 21,
                        ['unknown check "ftp"'])
        self.assert_bad(GOOD.replace("rise = 2", "rise = two"), 22,
                        ['"two" is not a number'])
        self.assert_bad(GOOD.replace("proxy_protocol = v2", "proxy_protocol = v3"), 11,
                        ["off, v1, v2"])
        self.assert_bad(GOOD.replace("weight=2 ", "weight=x "), 25,
                        ["bad weight"])

    def test_io_collect_us_range(self):
        r, _ = self.check(GOOD.replace("workers = 2", "workers = 2\nio_collect_us = 100"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_bad(GOOD.replace("workers = 2", "workers = 2\nio_collect_us = 10001"),
                        5, ["io_collect_us"])

    def test_io_engine_and_buffers(self):
        for ok in ("io_engine = epoll", "io_engine = uring",
                   "io_uring_buffers = 16", "io_uring_buffers = 32768"):
            r, _ = self.check(GOOD.replace("workers = 2", "workers = 2\n" + ok))
            self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_bad(GOOD.replace("workers = 2", "workers = 2\nio_engine = poll"),
                        5, ['io_engine: "poll" is not one of uring, epoll'])
        self.assert_bad(GOOD.replace("workers = 2", "workers = 2\nio_uring_buffers = 1000"),
                        5, ["io_uring_buffers: 1000 is not a power of two"])
        self.assert_bad(GOOD.replace("workers = 2", "workers = 2\nio_uring_buffers = 8"),
                        5, ["io_uring_buffers"])

    def test_duplicate_node_and_section(self):
        self.assert_bad(GOOD.replace("node = mx2", "node = mx1"), 25,
                        ['"mx1" already in pool mx'])
        self.assert_bad(GOOD + "\n[pool mx]\nrise = 3\n", 34,
                        ["pool mx defined twice"])

    def test_unknown_section_and_syntax(self):
        self.assert_bad(GOOD + "\n[frontend x]\nlisten = 1.2.3.4:5\n", 34,
                        ["unknown section [frontend x]"])
        self.assert_bad(GOOD + "\nthis is not ini\n", 34, ["syntax error"])

    def test_control_required(self):
        text = GOOD.replace("control = {control}\n", "")
        r, path = self.check(text)
        self.assertEqual(r.returncode, 2)
        self.assertIn("control = PATH is required", r.stderr)

    def test_several_errors_reported_at_once(self):
        text = GOOD.replace("retries = 2", "retires = 2").replace(
            "fall = 2", "fall = 0")
        r, path = self.check(text)
        self.assertEqual(r.returncode, 2)
        self.assertIn("%s:12:" % path, r.stderr)
        self.assertIn("%s:23:" % path, r.stderr)

    def test_missing_file(self):
        r = subprocess.run([LBD, "-t", "-c", os.path.join(self.tmp, "nope.ini")],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("nope.ini: No such file", r.stderr)

    def test_help_and_usage(self):
        r = subprocess.run([LBD, "--help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: lbd", r.stdout)
        r = subprocess.run([LBD, "--bogus"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)

    def test_garbage_file_never_crashes(self):
        import random
        rnd = random.Random(7)
        for i in range(60):
            blob = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 3000)))
            if i % 3 == 0:  # mutate the good config instead
                b = bytearray(GOOD.encode())
                for _ in range(10):
                    b[rnd.randrange(len(b))] = rnd.randrange(256)
                blob = bytes(b)
            path = os.path.join(self.tmp, "fuzz.ini")
            with open(path, "wb") as f:
                f.write(blob)
            r = subprocess.run([LBD, "-t", "-c", path], capture_output=True, timeout=10)
            self.assertIn(r.returncode, (0, 2), r.stderr[-500:])

    def test_balance_after_nodes(self):
        # The algorithm is swapped with its state: nodes may come first.
        text = GOOD.replace("balance = maglev\n", "") + "balance = maglev\n"
        r, path = self.check(text)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_overlong_line(self):
        self.assert_bad(GOOD.replace("check_password = secret",
                                     "check_password = " + "x" * 5000), 31,
                        ["line too long"])


if __name__ == "__main__":
    unittest.main()
