"""A small authoritative DNS server for tests: UDP on a free loopback port,
answering from a table the test fills, in a thread of the test process.

    with DnsServer() as dns:
        dns.add_a("2.0.0.127.bl.test", "127.0.0.2", ttl=300)
        dns.silent("slow.test")          # never answers under this zone
        ... use dns.address ("127.0.0.1:PORT") as the resolver ...
        dns.count("2.0.0.127.bl.test")   # questions seen for a name

A name in the table gets its records (answer, AA); another record type of
a known name gets an empty answer (NODATA); an unknown name NXDOMAIN; a
name under a silent zone nothing at all. add() takes any type's rdata as
bytes, so tests of other record types (MX, TXT) can share the class."""
import socket
import struct
import threading

TYPE_A = 1
TYPE_MX = 15
TYPE_TXT = 16
TYPE_AAAA = 28


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode("ascii")
    return out + b"\x00"


def decode_name(msg, off):
    """The name at off (no compression: questions carry none). Returns
    (name, offset after it)."""
    labels = []
    while True:
        n = msg[off]
        off += 1
        if n == 0:
            return ".".join(labels).lower(), off
        if n & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n


class DnsServer:
    def __init__(self, host="127.0.0.1", port=0):
        self.records = {}  # (name, type) -> [(ttl, rdata)]
        self.silent_zones = set()
        self.questions = []  # (name, type), in order
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.host, self.port = self.sock.getsockname()[:2]
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    def add(self, name, rtype, rdata, ttl=300):
        with self.lock:
            self.records.setdefault((name.lower().rstrip("."), rtype), []).append(
                (ttl, rdata))

    def add_a(self, name, addr, ttl=300):
        self.add(name, TYPE_A, socket.inet_aton(addr), ttl)

    def silent(self, zone):
        with self.lock:
            self.silent_zones.add(zone.lower().rstrip("."))

    def count(self, name):
        name = name.lower().rstrip(".")
        with self.lock:
            return sum(1 for n, _ in self.questions if n == name)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping = True
        if self.thread.is_alive():
            self.thread.join(5)
        self.sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _lookup(self, name, qtype):
        """(name known, [(ttl, rdata)] of qtype); called under the lock."""
        answers = self.records.get((name, qtype), [])
        return any(n == name for n, _ in self.records), answers

    def _is_silent(self, name):
        return any(name == z or name.endswith("." + z) for z in self.silent_zones)

    def _answer(self, query):
        qid, flags, qd = struct.unpack("!HHH", query[:6])
        if qd != 1 or flags & 0x8000:
            return None
        name, off = decode_name(query, 12)
        qtype, qclass = struct.unpack("!HH", query[off:off + 4])
        question = query[12:off + 4]
        with self.lock:
            self.questions.append((name, qtype))
            if self._is_silent(name):
                return None
            known, answers = self._lookup(name, qtype)
        rcode = 0 if known else 3  # NXDOMAIN
        rflags = 0x8000 | 0x0400 | (flags & 0x0100) | rcode
        out = struct.pack("!HHHHHH", qid, rflags, 1, len(answers), 0, 0) + question
        for ttl, rdata in answers:
            out += struct.pack("!HHHIH", 0xC00C, qtype, qclass, ttl,
                               len(rdata)) + rdata
        return out

    def _serve(self):
        while not self.stopping:
            try:
                query, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                reply = self._answer(query)
            except (ValueError, IndexError, struct.error):
                continue
            if reply is not None:
                self.sock.sendto(reply, peer)


class ZoneServer(DnsServer):
    """A DnsServer answering from a zone the test writes as a dict, which
    it may change while the server runs:

        ZoneServer({"remote.test": [("MX", 10, "mx1.remote.test")],
                    "mx1.remote.test": [("A", "127.0.0.1")]})

    Records are ("A", addr), ("AAAA", addr), ("MX", pref, host) and
    ("TXT", text); every TTL is 60 s. Starts at once, on a free port
    unless port is given."""

    TYPES = {"A": TYPE_A, "MX": TYPE_MX, "TXT": TYPE_TXT, "AAAA": TYPE_AAAA}

    def __init__(self, zone, host="127.0.0.1", port=0):
        super().__init__(host, port)
        self.zone = {k.lower().rstrip("."): v for k, v in zone.items()}
        self.start()

    @staticmethod
    def rdata(rec):
        kind = rec[0]
        if kind == "A":
            return socket.inet_pton(socket.AF_INET, rec[1])
        if kind == "AAAA":
            return socket.inet_pton(socket.AF_INET6, rec[1])
        if kind == "MX":
            return struct.pack("!H", rec[1]) + encode_name(rec[2])
        if kind == "TXT":
            data = rec[1].encode()
            return b"".join(bytes([len(data[i:i + 255])]) + data[i:i + 255]
                            for i in range(0, max(len(data), 1), 255))
        raise ValueError(kind)

    def _lookup(self, name, qtype):
        recs = self.zone.get(name)
        if recs is None:
            return super()._lookup(name, qtype)
        return True, [(60, self.rdata(r)) for r in recs
                      if self.TYPES[r[0]] == qtype]
