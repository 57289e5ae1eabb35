"""Shared pieces of mailnode's integration tests: a private redis-server
(redistest.py), the shared config made with the real mailctl, a
self-signed certificate, and real mailnode processes on one store."""
import os
import signal
import smtplib
import ssl
import subprocess
import sys
import tempfile
import unittest

from lbdtest import BIN, can_connect, free_port, sanitizer_report, wait_for
import redistest

MAILNODE = os.path.join(BIN, "mailnode")
MAILCTL = os.path.join(BIN, "mailctl")


_CERT = {}  # the one key and certificate of this test process, by name


def make_cert(tmp):
    """A self-signed certificate for localhost in tmp. openssl makes it
    once per test process (an RSA key is about half a second of CPU, and
    every test of a module would pay it again); each test gets its own
    copy."""
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    if not os.path.exists(cert):
        if not _CERT:
            with tempfile.TemporaryDirectory(prefix="nodetest-cert-") as d:
                c, k = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
                subprocess.run(["openssl", "req", "-x509", "-newkey",
                                "rsa:2048", "-nodes", "-keyout", k, "-out", c,
                                "-days", "30", "-subj", "/CN=localhost"],
                               check=True, capture_output=True, timeout=60)
                for name, path in (("cert", c), ("key", k)):
                    with open(path, "rb") as f:
                        _CERT[name] = (f.read(), os.stat(path).st_mode & 0o777)
        for name, path in (("cert", cert), ("key", key)):
            data, mode = _CERT[name]
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
    return cert, key


def tls_context():
    """A client context that takes the nodes' self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class MailNode:
    def __init__(self, tmp, name, redis_port, store, extra_node="",
                 listen=("smtp", "submission", "http"), tls=True,
                 sections=""):
        self.tmp, self.name = tmp, name
        self.listen = listen
        self.spool = os.path.join(tmp, "spool-" + name)
        os.makedirs(self.spool, exist_ok=True)
        self.path = os.path.join(tmp, name + ".ini")
        self.logpath = os.path.join(tmp, name + ".log")
        cert = ""
        if tls:
            c, k = make_cert(tmp)
            cert = "tls_cert = %s\ntls_key = %s\n" % (c, k)
        # DNS stays on loopback: the mta role's lookups get a refusal
        # unless a test points resolver at its own DNS server.
        self.head = ("[node]\nname = %s\nhostname = %s.example.test\n"
                     "redis = 127.0.0.1:%d\nstore = %s\nspool = %s\n"
                     "resolver = 127.0.0.1:9\n%s%s\n"
                     % (name, name, redis_port, store, self.spool, cert,
                        extra_node))
        self.sections = sections  # more sections: [route]
        self.new_ports()
        self.proc = None

    def new_ports(self):
        """Free ports for every listener, written into the INI (on a
        retry, in place: what a test appended to the file stays)."""
        old = getattr(self, "ports", None)
        self.ports = {role: free_port() for role in self.listen}
        if old:
            with open(self.path) as f:
                text = f.read()
            for role, port in old.items():
                text = text.replace("%s = 127.0.0.1:%d\n" % (role, port),
                                    "%s = 127.0.0.1:%d\n"
                                    % (role, self.ports[role]))
            with open(self.path, "w") as f:
                f.write(text)
            return
        with open(self.path, "w") as f:
            f.write(self.head + "[listen]\n")
            for role, port in self.ports.items():
                f.write("%s = 127.0.0.1:%d\n" % (role, port))
            f.write(self.sections)

    def start(self, wait_directory=True):
        """Starts the node; by default waits until its first directory
        load, so that RCPT does not answer 451 "not loaded yet"."""
        loaded_before = self.log().count("directory: loaded")
        # A free port another test took between free_port() and the
        # node's bind (tests run in parallel): again on new ports, twice.
        for attempt in range(3):
            logged = len(self.log())
            self.logf = open(self.logpath, "ab")
            self.proc = subprocess.Popen([MAILNODE, "-c", self.path],
                                         stdout=self.logf, stderr=self.logf)
            port = next(iter(self.ports.values()))
            wait_for(lambda: self.proc.poll() is not None or
                     can_connect(port), 10, what="mailnode %s" % self.name)
            if self.proc.poll() is None:
                break
            self.logf.close()
            if attempt == 2 or "Address already in use" not in \
                    self.log()[logged:]:
                raise AssertionError("mailnode exited %d:\n%s" % (
                    self.proc.returncode, self.log()))
            self.new_ports()
        if wait_directory:
            # Generous: a sanitizer build on a loaded 2-CPU machine is slow.
            wait_for(lambda: self.log().count("directory: loaded") > loaded_before,
                     30, what="mailnode %s directory load" % self.name)
        return self

    def log(self):
        if not os.path.exists(self.logpath):
            return ""
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.logf.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.logf.close()
        return self.proc.returncode if self.proc else None


class NodeTestCase(unittest.TestCase):
    """A private redis-server, a store, a demo domain with users alice and
    bob (password "demo") and an alias, and helpers to start nodes."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="nodetest-")
        self.tmp = self._tmp.name
        self.store = os.path.join(self.tmp, "store")
        os.makedirs(self.store)
        self.redis = redistest.RedisServer(self.tmp)
        self.redis.start()
        self.nodes = []
        self.mailctl("domain", "add", "example.test")
        for user in ("alice", "bob"):
            self.mailctl("user", "add", user + "@example.test",
                         "--password-stdin", input="demo\n")
        self.mailctl("alias", "add", "team@example.test", "alice@example.test")
        self.mailctl("alias", "add", "team@example.test", "bob@example.test")

    def tearDown(self):
        for n in self.nodes:
            n.stop()  # SIGTERM: a sanitizer build reports leaks at exit
        reports = [(n.name, sanitizer_report(n.log())) for n in self.nodes]
        if not self._outcome.success if hasattr(self._outcome, "success") else False:
            for n in self.nodes:
                sys.stderr.write("---- %s ----\n%s\n" % (n.name, n.log()[-3000:]))
        self.redis.stop()
        self._tmp.cleanup()
        for name, report in reports:
            if report:
                self.fail("sanitizer report from mailnode %s:\n%s" % (name, report))

    def mailctl(self, *args, input=None, check=True):
        env = dict(os.environ, MAILCTL_REDIS="127.0.0.1:%d" % self.redis.port)
        r = subprocess.run([MAILCTL] + list(args), input=input, env=env,
                           capture_output=True, text=True, timeout=20)
        if check and r.returncode != 0:
            raise AssertionError("mailctl %s: %d %s" % (args, r.returncode, r.stderr))
        return r

    def node(self, name="mail1", start=True, **kw):
        n = MailNode(self.tmp, name, self.redis.port, self.store, **kw)
        self.nodes.append(n)
        if start:
            n.start()
        return n

    def deliver(self, node, body, rcpt="alice@example.test"):
        """Mail from carol@remote.test to rcpt through node's MX port."""
        c = smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=10)
        c.sendmail("carol@remote.test", [rcpt], body)
        c.quit()

    def maildir(self, address):
        """Every message file of address's Maildir (new/ and cur/)."""
        local, domain = address.split("@")
        found = []
        for root, dirs, files in os.walk(os.path.join(self.store, domain)):
            if os.path.basename(os.path.dirname(root)) == local and \
                    os.path.basename(root) in ("new", "cur"):
                found += [os.path.join(root, f) for f in files]
        return sorted(found)

    def messages(self, address):
        out = []
        for p in self.maildir(address):
            with open(p, "rb") as f:
                out.append(f.read())
        return out
