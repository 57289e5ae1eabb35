"""A private redis-server for the integration tests, and a small RESP
client so tests need no redis-cli.

    r = RedisServer(tmpdir)          # or RedisServer(tmpdir, password="pw")
    r.start()                        # free loopback port, no persistence
    r.cli("SET", "k", "v")           # -> "OK"; errors raise RedisError
    r.pause(); r.resume()            # SIGSTOP / SIGCONT (a hung Redis)
    r.kill(); r.start()              # gone, then back on the same port
    r.stop()

Replies: simple strings and bulk strings as str (bytes if not UTF-8),
integers as int, arrays as lists, nil as None."""
import os
import signal
import socket
import subprocess
import time

from lbdtest import free_port

REDIS_SERVER = os.environ.get("MS_REDIS_SERVER", "redis-server")


class RedisError(Exception):
    pass


def resp_encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RespReader:
    """Reads RESP replies from a socket, buffering what is read ahead."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("redis closed the connection")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _bytes(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    @staticmethod
    def _text(b):
        try:
            return b.decode()
        except UnicodeDecodeError:
            return b

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return self._text(rest)
        if kind == b"-":
            return RedisError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._text(self._bytes(n))
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ConnectionError("bad RESP line %r" % line)


class Connection:
    """One connection to Redis (AUTH done when a password is given)."""

    def __init__(self, port, password=None, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.reader = RespReader(self.sock)
        if password:
            self.call("AUTH", password)

    def send(self, *args):
        self.sock.sendall(resp_encode(*args))

    def read(self):
        r = self.reader.read()
        if isinstance(r, RedisError):
            raise r
        return r

    def call(self, *args):
        self.send(*args)
        return self.read()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Subscriber:
    """A pub/sub connection: sub = Subscriber(port, "ms:config");
    sub.message(timeout) returns the next message's payload or None."""

    def __init__(self, port, channel, password=None):
        self.conn = Connection(port, password)
        self.conn.send("SUBSCRIBE", channel)
        self.conn.read()  # ["subscribe", channel, 1]

    def message(self, timeout=2.0):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.conn.sock.settimeout(left)
            try:
                r = self.conn.read()
            except socket.timeout:
                return None
            if isinstance(r, list) and len(r) == 3 and r[0] == "message":
                return r[2]

    def close(self):
        self.conn.close()


class RedisServer:
    def __init__(self, tmp, port=None, password=None):
        self.tmp = tmp
        self.port = port or free_port()
        self.password = password
        self.proc = None
        self.paused = False
        self.logpath = os.path.join(tmp, "redis-%d.log" % self.port)

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=10.0):
        """Starts redis-server on self.port (the same port on a restart)
        and waits until it answers PING."""
        if self.proc and self.proc.poll() is None:
            return self
        cmd = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", self.tmp,
               "--daemonize", "no"]
        if self.password:
            cmd += ["--requirepass", self.password]
        self.log = open(self.logpath, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        self.paused = False
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("redis-server exited %d (log %s)" %
                                     (self.proc.returncode, self.logpath))
            try:
                if self.cli("PING") == "PONG":
                    return self
            except (OSError, ConnectionError, RedisError):
                pass
            time.sleep(0.02)
        self.stop()
        raise AssertionError("redis-server on %d did not answer" % self.port)

    def pause(self):
        """SIGSTOP: Redis accepts nothing and answers nothing (a hang)."""
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def kill(self):
        """SIGKILL, as a crash; start() brings it back on the same port."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.log.close()
        self.paused = False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            if self.paused:
                self.resume()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
            self.log.close()

    def connect(self, timeout=5.0):
        return Connection(self.port, self.password, timeout)

    def cli(self, *args, timeout=5.0):
        """One command on a fresh connection; returns the reply."""
        with self.connect(timeout) as c:
            return c.call(*args)

    def subscribe(self, channel):
        return Subscriber(self.port, channel, self.password)
