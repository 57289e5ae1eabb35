"""A scripted milter (the Sendmail milter protocol, version 6, the
milter's side) for mailnode's tests, and a real rspamd in milter mode.

ScriptedMilter answers every step with "continue" unless the script says
otherwise for that step, and at end of message sends the script's edits
and verdict; it records what the node sent (commands, macros, headers,
body) per connection. hang=True accepts connections and never answers."""
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

from lbdtest import free_port, wait_for


def packet(cmd, data=b""):
    return struct.pack("!I", len(data) + 1) + cmd + data


def z(*parts):
    """NUL-terminated strings, concatenated."""
    return b"".join(p.encode() + b"\0" for p in parts)


class ScriptedMilter:
    """script: {"eob": [(cmd, data), ...]} (None in the list: no more
    answers, the connection held) and per step letter (b"C",
    b"H", b"M", b"R", b"T", b"L", b"N", b"B") a reply (cmd, data) that
    replaces "continue". steps: the SMFIP_* flags it asks for."""

    def __init__(self, script=None, steps=0, hang=False, unix=None):
        self.script = script or {}
        self.steps = steps
        self.hang = hang
        if unix:  # a unix socket at this path; else TCP on loopback
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.bind(unix)
            self.where = "unix:" + unix
        else:
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
            self.where = "inet:127.0.0.1:%d" % self.port
        self.sock.listen(16)
        self.seen = []  # one dict per connection
        self.conns = []
        self.stopping = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.session, args=(c,),
                             daemon=True).start()

    def stop(self):
        self.stopping = True
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass

    @staticmethod
    def read_packet(c):
        head = b""
        while len(head) < 4:
            chunk = c.recv(4 - len(head))
            if not chunk:
                return None, None
            head += chunk
        n = struct.unpack("!I", head)[0]
        data = b""
        while len(data) < n:
            chunk = c.recv(n - len(data))
            if not chunk:
                return None, None
            data += chunk
        return data[:1], data[1:]

    def session(self, c):
        seen = {"cmds": [], "macros": {}, "headers": [], "body": b"",
                "rcpts": []}
        self.seen.append(seen)
        if self.hang:
            try:
                while c.recv(65536):
                    pass
            except OSError:
                pass
            return
        try:
            while True:
                cmd, data = self.read_packet(c)
                if cmd is None or cmd == b"Q":
                    return
                seen["cmds"].append(cmd)
                if cmd == b"O":
                    c.sendall(packet(b"O", struct.pack(
                        "!III", 6, 0x3f, self.steps)))
                    continue
                if cmd == b"D":
                    parts = data[1:].split(b"\0")
                    for k, v in zip(parts[0::2], parts[1::2]):
                        seen["macros"][k.decode()] = v.decode()
                    continue
                if cmd == b"M":
                    seen["mail"] = data.split(b"\0")[0].decode()
                if cmd == b"R":
                    seen["rcpts"].append(data.split(b"\0")[0].decode())
                if cmd == b"L":
                    name, value = data.split(b"\0")[:2]
                    seen["headers"].append((name.decode(), value.decode()))
                if cmd == b"B":
                    seen["body"] += data
                if cmd == b"E":
                    for reply in self.script.get("eob", [(b"a", b"")]):
                        if reply is None:  # stops answering here
                            while c.recv(65536):
                                pass
                            return
                        c.sendall(packet(*reply))
                    continue
                nr = {b"C": 0x1000, b"H": 0x2000, b"M": 0x4000,
                      b"R": 0x8000, b"T": 0x10000, b"L": 0x80,
                      b"N": 0x40000, b"B": 0x80000}.get(cmd, 0)
                if self.steps & nr:
                    continue
                c.sendall(packet(*self.script.get(cmd, (b"c", b""))))
        except OSError:
            return
        finally:
            c.close()


RSPAMD = shutil.which("rspamd") or "/usr/bin/rspamd"

RSPAMD_CONF = """
options {
  pidfile = "%(dir)s/rspamd.pid";
  dbdir = "%(dir)s";
  hs_cache_dir = "%(dir)s";
  filters = "";
  url_tld = "%(dir)s/tld.dat";
  dns { nameserver = ["127.0.0.1:9"]; timeout = 0.1s; retransmits = 1; }
}
logging { type = "file"; filename = "%(dir)s/rspamd.log"; level = "info"; }
actions { reject = 15; add_header = 6; }
modules { path = "/usr/share/rspamd/plugins"; }
milter_headers {
  use = ["x-spamd-result", "x-rspamd-queue-id", "x-spam-status"];
  skip_local = false; skip_authenticated = false;
}
worker "rspamd_proxy" {
  bind_socket = "127.0.0.1:%(port)d";
  milter = yes; self_scan = yes; count = 1; timeout = 30s;
  spam_header = "X-Spam"; reject_message = "Spam message rejected";
  upstream "local" { default = yes; self_scan = yes; }
}
"""


class Rspamd:
    """Debian's rspamd in milter mode (the proxy worker scanning itself)
    on a free loopback port: its own config and state in a temp dir, no
    Redis, DNS pointed at a dead loopback port (no lookups leave), a
    five-line TLD list (the full one takes ~40 s to compile), only the
    GTUBE check of the core and milter_headers' headers."""

    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="rspamd-")
        self.dir = self._tmp.name
        self.proc = None
        with open(os.path.join(self.dir, "tld.dat"), "w") as f:
            f.write("com\nnet\norg\ntest\nexample\n")

    def start(self):
        """Starts it on a free port; again on another one (three tries
        in all) when it exits first: a port another test took between
        free_port() and rspamd's bind."""
        for attempt in range(3):
            self.port = free_port()
            with open(os.path.join(self.dir, "rspamd.conf"), "w") as f:
                f.write(RSPAMD_CONF % {"dir": self.dir, "port": self.port})
            # -f: in the foreground; -i: workers may run as root (CI does)
            self.out = open(os.path.join(self.dir, "out.log"), "ab")
            self.proc = subprocess.Popen(
                [RSPAMD, "-f", "-i", "-c",
                 os.path.join(self.dir, "rspamd.conf")],
                stdout=self.out, stderr=self.out, start_new_session=True)
            wait_for(lambda: self.proc.poll() is not None or
                     self.listening(), 30, what="rspamd milter port")
            if self.proc.poll() is None:
                return self
            self.out.close()
        raise AssertionError("rspamd exited:\n" + self.log())

    def listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def log(self):
        try:
            with open(os.path.join(self.dir, "rspamd.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        except OSError:
            return ""

    def stop(self):
        """SIGTERM to its process group (the main process and the workers
        it forked), then waits for the main process."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        deadline = time.monotonic() + 5
        while self.listening() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.proc:
            self.out.close()
            self.proc = None

    def cleanup(self):
        self.stop()
        self._tmp.cleanup()
