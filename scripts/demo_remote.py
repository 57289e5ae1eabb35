#!/usr/bin/env python3
"""The demo's remote world (demo.sh starts it): a DNS server and a
catch-all MX for remote.test on loopback, so mail the demo's users send
to remote.test leaves through the outbound queue as it would to the
Internet. The tests' own DNS server and scripted MX
(tests/integration/dnstest.py, mxtest.py) do the work.

  demo_remote.py DIR DNS_PORT MX_PORT CERT KEY [DKIM_NAME DKIM_TXT]

DNS on 127.0.0.1:DNS_PORT (UDP) answers remote.test MX 10 mx.remote.test,
mx.remote.test A 127.0.0.1, and DKIM_NAME TXT DKIM_TXT (the demo domain's
DKIM key) when given. The MX on 127.0.0.1:MX_PORT takes every message
(STARTTLS with CERT and KEY) and writes it to DIR/mail/ as an .eml file
whose first lines are Return-Path: and Delivered-To:, as an MDA writes
them. While the file DIR/mx-down exists the MX does not listen (connects
are refused), so the queue holds the mail; it listens again, on the same
port, once the file is gone. Logs a line per message and per change on
stdout. SIGTERM or SIGINT ends it."""
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))
from dnstest import ZoneServer  # noqa: E402
from mxtest import ScriptedMX  # noqa: E402


class Mailbox:
    """Numbered .eml files in a directory, each written whole (a
    temporary name, then renamed)."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        os.makedirs(path, exist_ok=True)
        self.seq = len(os.listdir(path))

    def deliver(self, sender, rcpts, data):
        with self.lock:
            self.seq += 1
            name = "%s-%04d.eml" % (time.strftime("%Y%m%dT%H%M%S"), self.seq)
        head = "Return-Path: <%s>\r\nDelivered-To: %s\r\n" % (
            sender, ", ".join(rcpts))
        tmp = os.path.join(self.path, "." + name)
        with open(tmp, "wb") as f:
            f.write(head.encode() + data)
        os.rename(tmp, os.path.join(self.path, name))
        print("remote.test MX: from <%s> to %s: %s (%d bytes)" % (
            sender, ", ".join("<%s>" % r for r in rcpts), name, len(data)),
            flush=True)


def main(argv):
    if len(argv) not in (6, 8):
        sys.exit("usage: demo_remote.py DIR DNS_PORT MX_PORT CERT KEY "
                 "[DKIM_NAME DKIM_TXT]")
    top, dns_port, mx_port, cert, key = argv[1], int(argv[2]), int(argv[3]), \
        argv[4], argv[5]
    zone = {"remote.test": [("MX", 10, "mx.remote.test")],
            "mx.remote.test": [("A", "127.0.0.1")]}
    if len(argv) == 8:
        zone[argv[6]] = [("TXT", argv[7])]
    box = Mailbox(os.path.join(top, "mail"))
    down = os.path.join(top, "mx-down")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def listen():
        return ScriptedMX(tls=(cert, key), port=mx_port,
                          on_delivered=box.deliver)

    dns = ZoneServer(zone, port=dns_port)
    mx = None if os.path.exists(down) else listen()
    print("remote world: DNS 127.0.0.1:%d (udp), remote.test MX "
          "127.0.0.1:%d %s; mail in %s" % (
              dns_port, mx_port, "up" if mx else "down", box.path), flush=True)
    while not stop.wait(0.2):
        if mx and os.path.exists(down):
            mx.stop()
            mx = None
            print("remote.test MX: down (%s exists)" % down, flush=True)
        elif not mx and not os.path.exists(down):
            mx = listen()
            print("remote.test MX: up again", flush=True)
    if mx:
        mx.stop()
    dns.stop()


if __name__ == "__main__":
    main(sys.argv)
