"""What an administrator meets before the first mail: the version the
binaries print (`-V`) and log at start, `--help` on every binary, and the
installed layout: `cmake --install` into a scratch DESTDIR, and the two
.deb packages cpack builds, checked with dpkg-deb (--info, --contents) and
unpacked with `dpkg-deb -x` into a scratch root, where the binaries run.
Nothing is installed into the real system.

Run from tests/integration with MS_BIN=<build>/bin and MS_SRC=<source>:

    python3 -m unittest -v test_install
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from lbdtest import BIN, LbdTestCase, free_port, wait_for
from nodetest import NodeTestCase

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("MS_SRC", os.path.join(HERE, "..", ".."))
BUILD = os.path.dirname(os.path.abspath(BIN))
BINARIES = ("lbd", "lbctl", "lbd-track", "mailnode", "mailctl")
DAEMONS = ("lbd", "mailnode")

# What each package holds (paths under the root), and the libraries its
# binaries need at run time (Debian 12 package names).
PACKAGES = {
    "mailswitch-balancer": {
        "files": ["usr/sbin/lbd", "usr/bin/lbctl", "usr/bin/lbd-track",
                  "etc/mailswitch/lbd.ini",
                  "usr/lib/systemd/system/lbd.service",
                  "usr/lib/systemd/system/lbd-track.service",
                  "usr/share/doc/mailswitch-balancer/examples/keepalived.conf",
                  "usr/share/doc/mailswitch-balancer/examples/"
                  "keepalived-notify.sh",
                  "usr/share/man/man8/lbd.8", "usr/share/man/man8/lbctl.8",
                  "usr/share/man/man8/lbd-track.8",
                  "usr/share/man/man5/lbd.ini.5"],
        "depends": ["adduser", "libc6", "libev4", "libssl3",
                    "libhiredis0.14", "libinih1"],
        "user": "lbd",
    },
    "mailswitch-node": {
        "files": ["usr/sbin/mailnode", "usr/bin/mailctl",
                  "etc/mailswitch/mailnode.ini",
                  "usr/lib/systemd/system/mailnode.service",
                  "usr/share/doc/mailswitch-node/examples/mailnode-alerts.yml",
                  "usr/share/man/man8/mailnode.8",
                  "usr/share/man/man8/mailctl.8",
                  "usr/share/man/man5/mailnode.ini.5"],
        "depends": ["adduser", "libc6", "libev4", "libssl3",
                    "libhiredis0.14", "libinih1", "libcrypt1"],
        "user": "mailnode",
    },
}


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


def exec_paths(unit_path):
    """The programs a unit file runs (ExecStart=, ExecStartPre=, ...)."""
    out = []
    with open(unit_path) as f:
        for line in f:
            m = re.match(r"Exec\w*=[-@:+!]*(\S+)", line)
            if m:
                out.append(m.group(1))
    return out


class TestCmakeInstall(unittest.TestCase):
    def test_install_into_a_scratch_destdir(self):
        with tempfile.TemporaryDirectory(prefix="ms-install-") as root:
            r = subprocess.run(["cmake", "--install", BUILD, "--prefix",
                                "/usr/local"], env=dict(os.environ, DESTDIR=root),
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            for pkg in PACKAGES.values():
                for f in pkg["files"]:
                    f = f.replace("usr/", "usr/local/", 1) \
                        if f.startswith("usr/") else f
                    self.assertTrue(os.path.isfile(os.path.join(root, f)), f)
            check_binaries(self, os.path.join(root, "usr/local/bin"),
                           os.path.join(root, "usr/local/sbin"))
            # The units name the binaries where this install put them.
            unitdir = os.path.join(root, "usr/local/lib/systemd/system")
            for unit in os.listdir(unitdir):
                for prog in exec_paths(os.path.join(unitdir, unit)):
                    if prog.startswith("/usr/"):
                        self.assertTrue(os.access(root + prog, os.X_OK),
                                        "%s: %s" % (unit, prog))


@unittest.skipUnless(shutil.which("cpack") and shutil.which("dpkg-deb"),
                     "cpack or dpkg-deb missing")
class TestPackages(unittest.TestCase):
    """Builds both packages once, unpacks them into one scratch root."""

    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="ms-deb-")
        cls.tmp = cls._tmp.name
        r = subprocess.run(["cpack", "-G", "DEB", "-B", cls.tmp, "--config",
                            os.path.join(BUILD, "CPackConfig.cmake")],
                           cwd=BUILD, capture_output=True, text=True,
                           timeout=240)
        if r.returncode != 0:
            cls._tmp.cleanup()
            raise AssertionError("cpack: %s%s" % (r.stdout, r.stderr))
        cls.debs = {}
        for name in os.listdir(cls.tmp):
            if name.endswith(".deb"):
                cls.debs[name.split("_")[0]] = os.path.join(cls.tmp, name)
        cls.root = os.path.join(cls.tmp, "root")
        for deb in cls.debs.values():
            subprocess.run(["dpkg-deb", "-x", deb, cls.root], check=True,
                           timeout=60)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def field(self, pkg, name):
        return subprocess.run(["dpkg-deb", "--field", self.debs[pkg], name],
                              capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()

    def control_file(self, pkg, name):
        d = os.path.join(self.tmp, "control-" + pkg)
        if not os.path.isdir(d):
            subprocess.run(["dpkg-deb", "-e", self.debs[pkg], d], check=True,
                           timeout=30)
        with open(os.path.join(d, name)) as f:
            return f.read()

    def test_two_packages_with_version_and_dependencies(self):
        self.assertEqual(sorted(self.debs), sorted(PACKAGES))
        for pkg, want in PACKAGES.items():
            self.assertEqual(self.field(pkg, "Version"), project_version())
            deps = [d.strip().split()[0]
                    for d in self.field(pkg, "Depends").split(",")]
            for d in want["depends"]:
                self.assertIn(d, deps, pkg)

    def test_contents(self):
        for pkg, want in PACKAGES.items():
            listing = subprocess.run(
                ["dpkg-deb", "--contents", self.debs[pkg]], check=True,
                capture_output=True, text=True, timeout=30).stdout
            paths = {line.split()[-1].lstrip(".").lstrip("/")
                     for line in listing.splitlines()}
            for f in want["files"]:
                self.assertIn(f, paths, pkg)
            other = [f for p, w in PACKAGES.items() if p != pkg
                     for f in w["files"] if not f.endswith("/")]
            self.assertFalse(set(other) & paths, "%s holds %s" % (
                pkg, set(other) & paths))

    def test_maintainer_scripts_make_user_directories_permissions(self):
        for pkg, want in PACKAGES.items():
            post = self.control_file(pkg, "postinst")
            r = subprocess.run(["sh", "-n"], input=post, capture_output=True,
                               text=True, timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(post.replace("\\\n", " "),
                             r"adduser --system --group .* %s\n" % want["user"])
            self.assertIn("install -d -o %s -g %s" % (want["user"],
                                                       want["user"]), post)
            conf = [f for f in want["files"] if f.startswith("etc/")]
            self.assertEqual(self.control_file(pkg, "conffiles").split(),
                             ["/" + f for f in conf])
            for f in conf:
                self.assertIn("chmod 0640 /" + f, post)
            self.assertIn("purge", self.control_file(pkg, "postrm"))

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare")
                         and shutil.which("adduser"),
                         "running postinst needs root, unshare and adduser")
    def test_postinst_runs_in_a_scratch_system(self):
        """Each postinst runs for real (adduser, install, chown) in a
        private mount namespace where /etc, /var/lib, /var/spool and /srv
        are scratch copies: the user, the directories and the modes it
        makes are read back there, and the real system is not touched."""
        for pkg, want in PACKAGES.items():
            self.control_file(pkg, "postinst")
            scratch = os.path.join(self.tmp, "sys-" + pkg)
            os.makedirs(scratch)
            script = r"""set -e
S=$1 ROOT=$2 CONTROL=$3 USER=$4
cp -a /etc "$S/etc"
mkdir -p "$S/varlib" "$S/spool" "$S/srv"
mount --bind "$S/etc" /etc
mount --bind "$S/varlib" /var/lib
mount --bind "$S/spool" /var/spool
mount --bind "$S/srv" /srv
cp -a "$ROOT/etc/mailswitch" /etc/
sh "$CONTROL/postinst" configure
getent passwd "$USER"
stat -c '%U:%G %a %n' /etc/mailswitch/*.ini
for d in /var/lib/lbd /var/spool/mailnode /srv/mail/store; do
	[ -e "$d" ] && stat -c '%U:%G %a %n' "$d"
done
true
"""
            r = subprocess.run(
                ["unshare", "--mount", "--propagation", "private", "sh",
                 "-c", script, "sh", scratch, self.root,
                 os.path.join(self.tmp, "control-" + pkg), want["user"]],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            user = want["user"]
            out = r.stdout
            self.assertRegex(out, r"(?m)^%s:x:\d+:\d+:" % user)
            self.assertIn("root:%s 640 /etc/mailswitch/" % user, out)
            dirs = {"lbd": ["/var/lib/lbd"],
                    "mailnode": ["/var/spool/mailnode", "/srv/mail/store"]}
            for d in dirs[user]:
                self.assertIn("%s:%s 750 %s" % (user, user, d), out)
            with open("/etc/passwd") as f:  # the real one: untouched
                self.assertNotIn("\n%s:" % user, "\n" + f.read())

    def test_unpacked_binaries_run(self):
        check_binaries(self, os.path.join(self.root, "usr/bin"),
                       os.path.join(self.root, "usr/sbin"))
        unitdir = os.path.join(self.root, "usr/lib/systemd/system")
        for unit in os.listdir(unitdir):
            progs = exec_paths(os.path.join(unitdir, unit))
            self.assertTrue(progs, unit)
            for prog in progs:
                if prog.startswith("/usr/"):
                    self.assertTrue(prog.startswith(("/usr/sbin/",
                                                     "/usr/bin/")), prog)
                    self.assertTrue(os.access(self.root + prog, os.X_OK),
                                    "%s: %s" % (unit, prog))
        with open(os.path.join(self.root, "usr/share/doc/mailswitch-balancer"
                               "/examples/keepalived.conf")) as f:
            self.assertIn("/usr/bin/lbctl", f.read())


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
