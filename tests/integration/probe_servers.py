"""Stand-in servers for the health probe tests: small threaded SMTP, IMAP,
POP3 and HTTP servers on free loopback ports, each behaving as a test asks
(healthy, bad greeting, silent, slow, refusing a login, TLS, STARTTLS), and
recording what the probe said so that tests can check its polite ending.

Only for tests/integration/test_probes.py; every socket is bounded by a
timeout so that no thread outlives a test by more than a few seconds."""

import os
import socket
import ssl
import subprocess
import threading
import time

IO_TIMEOUT = 5.0


class LineConn:
    """One accepted connection, read and written a line at a time."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def readline(self):
        """The next line without its line end, or None at EOF."""
        while b"\n" not in self.buf:
            try:
                data = self.sock.recv(4096)
            except (OSError, ssl.SSLError):
                return None
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("latin-1")

    def send(self, text):
        """Sends text as is ("\\r\\n" ends lines in the callers' text)."""
        try:
            self.sock.sendall(text.encode("latin-1"))
        except (OSError, ssl.SSLError):
            pass

    def line(self, text):
        self.send(text + "\r\n")

    def starttls(self, ctx):
        """Upgrades to TLS as the server. Returns False if the handshake
        fails (the probe gave up, as it should on a bad certificate only
        after the handshake)."""
        assert self.buf == b"", "client sent data before the handshake"
        try:
            self.sock = ctx.wrap_socket(self.sock, server_side=True)
        except (OSError, ssl.SSLError):
            return False
        return True

    def close(self):
        try:
            if isinstance(self.sock, ssl.SSLSocket):
                self.sock = self.sock.unwrap()
        except (OSError, ssl.SSLError, ValueError):
            pass
        try:
            self.sock.close()
        except OSError:
            pass


class StandIn:
    """A TCP server on a free loopback port that runs handler(conn, server)
    in a thread per connection. With tls_ctx it speaks implicit TLS.
    Records every line the client sent (server.commands), per connection
    too (server.sessions), and how many sessions were open at once."""

    def __init__(self, handler, tls_ctx=None, host="127.0.0.1", backlog=128):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(backlog)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.addr = ("[%s]:%d" if family == socket.AF_INET6 else "%s:%d") % (
            host, self.port)
        self.handler = handler
        self.tls_ctx = tls_ctx
        self.lock = threading.Lock()
        self.commands = []
        self.sessions = []
        self.open_now = 0
        self.open_max = 0
        self.stopping = False
        self.threads = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.stopping = True
        self.acceptor.join(5)
        self.sock.close()
        for t in self.threads:
            t.join(IO_TIMEOUT + 1)

    def _accept(self):
        while not self.stopping:
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(s,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, s):
        s.settimeout(IO_TIMEOUT)
        session = []
        with self.lock:
            self.sessions.append(session)
            self.open_now += 1
            self.open_max = max(self.open_max, self.open_now)
        conn = LineConn(s)
        conn.session = session
        try:
            if self.tls_ctx is None or conn.starttls(self.tls_ctx):
                self.handler(conn, self)
        finally:
            conn.close()
            with self.lock:
                self.open_now -= 1

    def record(self, conn, line):
        with self.lock:
            self.commands.append(line)
            conn.session.append(line)

    def read(self, conn):
        """Reads and records one client line (None at EOF)."""
        line = conn.readline()
        if line is not None:
            self.record(conn, line)
        return line

    def saw(self, command):
        """True when some client line starts with command (any case)."""
        with self.lock:
            return any(c.upper().startswith(command.upper())
                       for c in self.commands)


def free_port_refused():
    """A loopback port with nothing listening on it."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class FullBacklog:
    """A listener that never accepts, with its queue filled, so that the
    kernel drops further SYNs: connects to it time out."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.fillers = []
        for _ in range(3):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(c)
        time.sleep(0.2)

    def close(self):
        for c in self.fillers:
            c.close()
        self.sock.close()


# --- protocol behaviours -------------------------------------------------

def smtp_handler(greeting=("220-mx.test ESMTP", "220 ready"),
                 ehlo=("250-mx.test", "250-PIPELINING", "250 8BITMIME"),
                 starttls_ctx=None, starttls_reply="220 go ahead",
                 greeting_delay=0.0, stall_after_ehlo=False, ehlo_raw=None):
    """An SMTP server: greeting lines, EHLO answer lines (STARTTLS added
    when starttls_ctx is given; ehlo_raw: this text sent as is instead),
    STARTTLS, QUIT answered 221."""

    def handler(conn, srv):
        if greeting_delay:
            time.sleep(greeting_delay)
        for g in greeting:
            conn.line(g)
        tls = False
        while True:
            line = srv.read(conn)
            if line is None:
                return
            verb = line.split(" ")[0].upper()
            if verb in ("EHLO", "HELO"):
                if stall_after_ehlo:
                    conn.readline()
                    return
                if ehlo_raw is not None:
                    conn.send(ehlo_raw)
                    continue
                lines = list(ehlo)
                if starttls_ctx is not None and not tls:
                    code = lines[-1][:3]
                    lines = [code + "-" + l[4:] for l in lines] + [
                        code + " STARTTLS"]
                conn.send("".join(l + "\r\n" for l in lines))
            elif verb == "STARTTLS" and starttls_ctx is not None:
                conn.send(starttls_reply + "\r\n")
                if not starttls_reply.startswith("220 "):
                    continue
                if "\n" in starttls_reply:
                    return
                if not conn.starttls(starttls_ctx):
                    return
                tls = True
                srv.record(conn, "<tls>")
            elif verb == "QUIT":
                conn.line("221 bye")
                return
            else:
                conn.line("500 5.5.2 what")
    return handler


def imap_handler(greeting="* OK [CAPABILITY IMAP4rev1 STARTTLS] ready",
                 users=None, select_ok=True, starttls_ctx=None,
                 starttls_ok=True):
    """An IMAP server: greeting, STARTTLS, LOGIN (checked against users,
    a dict), SELECT, LOGOUT answered "* BYE" and the tagged OK."""

    def unquote(s):
        s = s.strip()
        if not s.startswith('"'):
            word, _, rest = s.partition(" ")
            return word, rest
        out, i = "", 1
        while i < len(s) and s[i] != '"':
            if s[i] == "\\":
                i += 1
            out += s[i]
            i += 1
        return out, s[i + 1:]

    def handler(conn, srv):
        conn.line(greeting)
        while True:
            line = srv.read(conn)
            if line is None:
                return
            tag, _, rest = line.partition(" ")
            cmd, _, args = rest.partition(" ")
            cmd = cmd.upper()
            if cmd == "STARTTLS" and starttls_ctx is not None:
                if not starttls_ok:
                    conn.line(tag + " NO [UNAVAILABLE] not now")
                    continue
                conn.line(tag + " OK begin TLS")
                if not conn.starttls(starttls_ctx):
                    return
                srv.record(conn, "<tls>")
            elif cmd == "LOGIN":
                user, args = unquote(args)
                password, _ = unquote(args)
                srv.record(conn, "<login %s %s>" % (user, password))
                if users is not None and users.get(user) == password:
                    conn.line(tag + " OK logged in")
                else:
                    conn.line(tag + " NO [AUTHENTICATIONFAILED] "
                              "Invalid credentials")
            elif cmd == "SELECT":
                if select_ok:
                    conn.line("* 3 EXISTS")
                    conn.line(tag + " OK [READ-WRITE] SELECT completed")
                else:
                    conn.line(tag + " NO [UNAVAILABLE] store unreachable")
            elif cmd == "LOGOUT":
                conn.line("* BYE logging out")
                conn.line(tag + " OK LOGOUT completed")
                return
            else:
                conn.line(tag + " BAD unknown command")
    return handler


def pop3_handler(greeting="+OK POP3 ready", users=None, stat_ok=True,
                 starttls_ctx=None):
    """A POP3 server: greeting, STLS, USER/PASS (checked against users),
    STAT, QUIT."""

    def handler(conn, srv):
        conn.line(greeting)
        user = None
        while True:
            line = srv.read(conn)
            if line is None:
                return
            cmd, _, arg = line.partition(" ")
            cmd = cmd.upper()
            if cmd == "STLS" and starttls_ctx is not None:
                conn.line("+OK begin TLS")
                if not conn.starttls(starttls_ctx):
                    return
                srv.record(conn, "<tls>")
            elif cmd == "USER":
                user = arg
                conn.line("+OK")
            elif cmd == "PASS":
                if users is not None and users.get(user) == arg:
                    conn.line("+OK maildrop locked")
                else:
                    conn.line("-ERR [AUTH] invalid credentials")
            elif cmd == "STAT":
                conn.line("+OK 2 320" if stat_ok
                          else "-ERR [SYS/TEMP] store unreachable")
            elif cmd == "QUIT":
                conn.line("+OK bye")
                return
            else:
                conn.line("-ERR unknown command")
    return handler


def http_handler(status="200 OK", body="ok\n", status_line=None):
    """An HTTP/1.0 server: reads the request head, answers, closes."""

    def handler(conn, srv):
        while True:
            line = srv.read(conn)
            if line is None or line == "":
                break
        head = status_line or "HTTP/1.0 " + status
        conn.send("%s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                  "\r\n%s" % (head, len(body), body))
    return handler


def greeting_handler(text):
    """Says text and then waits for the client to close."""

    def handler(conn, srv):
        conn.send(text)
        while srv.read(conn) is not None:
            pass
    return handler


def silent_handler(conn, srv):
    """Accepts and says nothing until the client goes away."""
    while srv.read(conn) is not None:
        pass


def closing_handler(conn, srv):
    """Accepts and closes at once."""


# --- certificates --------------------------------------------------------

def _openssl(*args):
    subprocess.run(("openssl",) + args, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_certs(d):
    """Writes into directory d a test CA (ca.pem), server certificates it
    signed valid 365 days (good.pem/.key) and 2 days (soon.pem/.key), and a
    self-signed one nobody trusts (rogue.pem/.key). Returns their paths."""
    p = {n: os.path.join(d, n) for n in (
        "ca.pem", "ca.key", "good.pem", "good.key", "soon.pem", "soon.key",
        "rogue.pem", "rogue.key", "ext.cnf")}
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", p["ca.key"], "-out",
             p["ca.pem"], "-days", "365", "-subj", "/CN=mailswitch test CA")
    with open(p["ext.cnf"], "w") as f:
        f.write("basicConstraints=CA:FALSE\n"
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, days in (("good", "365"), ("soon", "2")):
        csr = os.path.join(d, name + ".csr")
        _openssl("req", "-new", *ec, "-keyout", p[name + ".key"], "-out",
                 csr, "-subj", "/CN=localhost")
        _openssl("x509", "-req", "-in", csr, "-CA", p["ca.pem"], "-CAkey",
                 p["ca.key"], "-CAcreateserial", "-days", days, "-out",
                 p[name + ".pem"], "-extfile", p["ext.cnf"])
    _openssl("req", "-x509", *ec, "-keyout", p["rogue.key"], "-out",
             p["rogue.pem"], "-days", "365", "-subj", "/CN=rogue")
    return p


def server_ctx(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx
