#!/usr/bin/env python3
"""How long one logged-in IMAP session waits while many others log in.

Starts a private redis-server and one mailnode (the integration tests'
fixtures, build/bin by default or $MS_BIN), logs one session in, then
--logins connections send LOGIN at once (half with a wrong password) while
the logged-in session sends NOOP after NOOP. Prints the longest and the
median NOOP wait, how long the logins took together, and how many times
the node logged a Redis timeout. --reps runs it that many times.

usage: bench/login_stall.py [--logins N] [--reps N]
"""
import argparse
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import redistest  # noqa: E402
from nodetest import MAILCTL, MailNode  # noqa: E402


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    buf = b""
    while b"\r\n" not in buf:
        buf += s.recv(4096)
    return s


def until(s, tag):
    """Reads up to and including the line tagged tag."""
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError(buf)
        buf += chunk
        if any(line.startswith(tag + b" ")
               for line in buf.split(b"\r\n")[:-1]):
            return buf


def run(port, logins):
    idle = connect(port)
    idle.sendall(b"a LOGIN alice@example.test demo\r\n")
    assert b"a OK" in until(idle, b"a")
    conns = [connect(port) for _ in range(logins)]
    done = {}

    def reader():
        sel = selectors.DefaultSelector()
        for c in conns:
            sel.register(c, selectors.EVENT_READ)
        left = len(conns)
        end = time.monotonic() + 120
        while left and time.monotonic() < end:
            for key, _ in sel.select(timeout=1):
                if b"\r\n" in key.fileobj.recv(4096):
                    sel.unregister(key.fileobj)
                    left -= 1
        done["end"] = time.monotonic()
        done["left"] = left

    t = threading.Thread(target=reader)
    t.start()
    start = time.monotonic()
    for i, c in enumerate(conns):
        c.sendall(b"l LOGIN alice@example.test %s\r\n" %
                  (b"demo" if i % 2 == 0 else b"wrong"))
    waits, n = [], 0
    while t.is_alive() and n < 10000:
        n += 1
        tag = b"n%d" % n
        t0 = time.monotonic()
        idle.sendall(tag + b" NOOP\r\n")
        until(idle, tag)
        waits.append(time.monotonic() - t0)
        time.sleep(0.005)
    t.join()
    for c in conns + [idle]:
        c.close()
    return max(waits), statistics.median(waits), done["end"] - start, \
        done["left"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--logins", type=int, default=50)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="login-stall-") as tmp:
        redis = redistest.RedisServer(tmp)
        redis.start()
        node = None
        try:
            env = dict(os.environ, MAILCTL_REDIS=redis.addr)
            for a in (["domain", "add", "example.test"],
                      ["user", "add", "alice@example.test",
                       "--password-stdin"]):
                subprocess.run([MAILCTL] + a, input="demo\n", env=env,
                               check=True, capture_output=True, text=True,
                               timeout=20)
            store = os.path.join(tmp, "store")
            os.makedirs(store)
            node = MailNode(tmp, "bench", redis.port, store,
                            extra_node="allow_plaintext_auth = yes\n",
                            listen=("imap",), tls=False).start()
            for rep in range(args.reps):
                worst, median, wall, left = run(node.ports["imap"],
                                                args.logins)
                print("rep %d: %d logins in %.3f s (%d unanswered); NOOP "
                      "wait max %.3f s, median %.4f s" %
                      (rep + 1, args.logins, wall, left, worst, median))
            print("Redis timeouts logged: %d" %
                  node.log().count("no answer within"))
        finally:
            if node:
                node.stop()
            redis.stop()


if __name__ == "__main__":
    main()
