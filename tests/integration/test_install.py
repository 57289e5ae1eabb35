"""What an administrator meets before the first mail: the version the
binaries print (`-V`) and log at start, `--help` on every binary.

Run from tests/integration with MS_BIN=<build>/bin and MS_SRC=<source>:

    python3 -m unittest -v test_install
"""
import os
import re
import subprocess
import unittest

from lbdtest import BIN, LbdTestCase, free_port, wait_for
from nodetest import NodeTestCase

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("MS_SRC", os.path.join(HERE, "..", ".."))
BINARIES = ("lbd", "lbctl", "lbd-track", "mailnode", "mailctl")
DAEMONS = ("lbd", "mailnode")


def project_version():
    """The one version: project(mailswitch VERSION X.Y.Z ...) in the top
    CMakeLists.txt."""
    with open(os.path.join(SRC, "CMakeLists.txt")) as f:
        m = re.search(r"project\(mailswitch\s+VERSION\s+([0-9.]+)", f.read())
    if not m:
        raise AssertionError("no project(mailswitch VERSION ...) line")
    return m.group(1)


def run(argv, timeout=10):
    return subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout)


def check_binaries(test, bindir, sbindir=None):
    """Every binary answers --help with its usage and status 0, and the
    daemons -V with "NAME VERSION". bindir holds the clients, sbindir the
    daemons (both in bindir when sbindir is None)."""
    version = project_version()
    for name in BINARIES:
        where = sbindir if (sbindir and name in DAEMONS) else bindir
        path = os.path.join(where, name)
        r = run([path, "--help"])
        test.assertEqual(r.returncode, 0, "%s --help: %s" % (path, r.stderr))
        test.assertIn("usage", r.stdout.lower(), path)
        if name in DAEMONS:
            for flag in ("-V", "--version"):
                r = run([path, flag])
                test.assertEqual(r.returncode, 0, r.stderr)
                test.assertEqual(r.stdout, "%s %s\n" % (name, version))


class TestVersion(LbdTestCase):
    def test_binaries_answer_help_and_version(self):
        check_binaries(self, BIN)

    def test_lbd_logs_its_version_at_start(self):
        port = free_port()
        l = self.lbd("[lbd]\ncontrol = {control}\nstate_file = {state}\n"
                     "[service s]\nlisten = 127.0.0.1:%d\nprotocol = smtp\n"
                     "pool = p\n[pool p]\ncheck = tcp\n"
                     "node = n1 127.0.0.1:%d\n" % (port, free_port()))
        wait_for(lambda: "started" in l.log(), 10, what="lbd started")
        self.assertRegex(l.log(), r"lbd %s starting with %s" % (
            re.escape(project_version()), re.escape(l.path)))


class TestNodeVersion(NodeTestCase):
    def test_mailnode_logs_its_version_at_start(self):
        n = self.node()
        self.assertIn("mailnode %s starting with %s" % (
            project_version(), n.path), n.log())


if __name__ == "__main__":
    unittest.main()
