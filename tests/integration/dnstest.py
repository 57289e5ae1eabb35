"""A minimal authoritative DNS server for the tests (UDP, loopback): MX,
A, AAAA and TXT records from a dict, NXDOMAIN for names it does not know,
NODATA for known names without the asked type. Written here rather than
taken from dnslib so that any python3 runs it."""
import socket
import struct
import threading

from lbdtest import free_port

TYPES = {"A": 1, "MX": 15, "TXT": 16, "AAAA": 28}


def _name(n):
    out = b""
    for label in n.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def _read_name(msg, off):
    labels = []
    while True:
        ln = msg[off]
        if ln == 0:
            return ".".join(labels), off + 1
        if ln & 0xC0:
            raise ValueError("compressed question")
        labels.append(msg[off + 1:off + 1 + ln].decode("ascii", "replace"))
        off += 1 + ln


class DnsServer:
    """records: {"remote.test": [("MX", 10, "mx1.remote.test")],
    "mx1.remote.test": [("A", "127.0.0.1")]}. Names are matched
    case-insensitively. queries counts what was asked."""

    def __init__(self, records):
        self.records = {k.lower().rstrip("."): v for k, v in records.items()}
        self.port = free_port()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.settimeout(0.2)
        self.queries = []
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _rdata(self, rec):
        kind = rec[0]
        if kind == "A":
            return socket.inet_pton(socket.AF_INET, rec[1])
        if kind == "AAAA":
            return socket.inet_pton(socket.AF_INET6, rec[1])
        if kind == "MX":
            return struct.pack("!H", rec[1]) + _name(rec[2])
        if kind == "TXT":
            data = rec[1].encode()
            return b"".join(bytes([len(data[i:i + 255])]) + data[i:i + 255]
                            for i in range(0, max(len(data), 1), 255))
        raise ValueError(kind)

    def answer(self, msg):
        qid, flags = struct.unpack("!HH", msg[:4])
        name, off = _read_name(msg, 12)
        qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
        question = msg[12:off + 4]
        self.queries.append((name.lower(), qtype))
        recs = self.records.get(name.lower().rstrip("."))
        rcode = 3 if recs is None else 0
        answers = b""
        count = 0
        for rec in recs or []:
            if TYPES[rec[0]] != qtype:
                continue
            rdata = self._rdata(rec)
            answers += (b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 60,
                                                    len(rdata)) + rdata)
            count += 1
        rflags = 0x8400 | (flags & 0x0100) | rcode  # QR AA RD
        return (struct.pack("!HHHHHH", qid, rflags, 1, count, 0, 0) +
                question + answers)

    def _serve(self):
        while self.running:
            try:
                msg, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.sock.sendto(self.answer(msg), peer)
            except (ValueError, IndexError, struct.error, OSError):
                continue

    def stop(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()
