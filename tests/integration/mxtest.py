"""A scripted remote MX for the outbound tests: a threaded SMTP server on
a free loopback port whose answers the test sets. mode decides RCPT:
"accept" (250), "defer" (451 4.3.0), "reject" (550 5.1.1); a recipient
whose local part starts with "reject" always gets 550. hold_data (seconds)
holds the answer to the final dot; drop_in_data closes the connection
after the first line of the body. Every message answered 250 at the dot
is kept in delivered as (mail_from, [rcpts], data): data is the message
as sent, dot-unstuffed, CRLF line ends, without the final dot line. With
tls=(cert, key) it offers STARTTLS; tls_delivered counts the messages
that came inside TLS and sni the names clients sent. port picks the
port (default: a free one); with on_delivered(mail_from, rcpts, data) a
message is handed to it instead of kept (scripts/demo_remote.py, a
long-running process, writes each to a file).

For the client's fallbacks and connection reuse: starttls_reply answers
STARTTLS with that line instead of 220; tls_garbage answers 220, then
bytes that are no TLS record, and closes; rset_reply answers RSET;
defer_mail_from is a sender whose MAIL gets 451. connections counts the
connections ever accepted, and each delivered message's connection
number is in delivered_on (same order as delivered). stop() also cuts
the sessions still open, as an MX that dies does."""
import base64
import socket
import socketserver
import ssl
import threading
import time

from lbdtest import free_port


class ScriptedMX:
    def __init__(self, mode="accept", tls=None, port=None, on_delivered=None):
        self.mode = mode
        self.on_delivered = on_delivered
        self.tls = None
        self.sni = []
        self.tls_delivered = 0
        if tls:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(*tls)
            self.tls.sni_callback = lambda s, name, c: self.sni.append(name)
        self.hold_data = 0.0
        self.drop_in_data = False  # close after the first body line
        self.ehlo_ext = ["8BITMIME"]
        self.mail_params = []  # what followed MAIL FROM:<...>
        # Answer MAIL only once DATA has come too: a client that waits
        # for each reply (no PIPELINING) then hangs.
        self.expect_pipelining = False
        self.auth = None  # (user, password): AUTH PLAIN inside TLS, required
        self.authed = []  # users that logged in
        self.delivered = []
        self.transactions = 0  # DATA bodies received in full
        self.sessions = self.max_sessions = 0  # connections open, most ever
        self.connections = 0  # accepted, ever
        self.delivered_on = []  # the connection number of each delivery
        self.starttls_reply = None
        self.tls_garbage = False
        self.rset_reply = "250 2.0.0 ok"
        self.defer_mail_from = None
        self.lock = threading.Lock()
        self.open_socks = {}  # conn -> its socket, for stop() to cut
        self.port = port or free_port()
        mx = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                with mx.lock:
                    mx.sessions += 1
                    mx.max_sessions = max(mx.max_sessions, mx.sessions)
                    mx.connections += 1
                    conn = mx.connections
                    mx.open_socks[conn] = self.request
                try:
                    mx._session(self.request, self.rfile, self.wfile, conn)
                except OSError:
                    pass  # cut by stop()
                finally:
                    with mx.lock:
                        mx.sessions -= 1
                        mx.open_socks.pop(conn, None)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            request_queue_size = 128  # many deliveries connect at once

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def _session(self, sock, rfile, wfile, conn=0):
        in_tls = False

        def send(line):
            wfile.write(line.encode() + b"\r\n")
            wfile.flush()

        send("220 mx.remote.test ESMTP scripted")
        sender, rcpts = None, []
        while True:
            line = rfile.readline(4096)
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                ext = list(self.ehlo_ext) if verb == "EHLO" else []
                if verb == "EHLO" and self.tls and not in_tls:
                    ext.append("STARTTLS")
                if verb == "EHLO" and self.auth and in_tls:
                    ext.append("AUTH PLAIN")
                lines = ["mx.remote.test"] + ext
                for i, e in enumerate(lines):
                    send(("250 " if i == len(lines) - 1 else "250-") + e)
                continue
            if verb == "STARTTLS" and self.tls and not in_tls:
                if self.starttls_reply:
                    send(self.starttls_reply)
                    continue
                send("220 2.0.0 go ahead")
                if self.tls_garbage:
                    wfile.write(b"this is no TLS record\r\n" * 4)
                    wfile.flush()
                    return
                try:
                    sock = self.tls.wrap_socket(sock, server_side=True)
                    with self.lock:  # the raw socket is detached now
                        self.open_socks[conn] = sock
                except (ssl.SSLError, OSError):
                    return
                rfile, wfile = sock.makefile("rb"), sock.makefile("wb")
                in_tls = True
                sender, rcpts = None, []
                continue
            if verb == "AUTH" and self.auth and in_tls:
                raw = base64.b64decode(cmd.split(" ")[2])
                _, user, password = raw.decode().split("\0")
                if (user, password) == self.auth:
                    self.authed.append(user)
                    send("235 2.7.0 ok")
                else:
                    send("535 5.7.8 bad credentials")
                continue
            if verb == "MAIL" and self.auth and not self.authed:
                send("530 5.7.0 Authentication required")
                continue
            if verb == "MAIL" and self.defer_mail_from and \
                    self.defer_mail_from in cmd:
                send("451 4.3.0 sender deferred here")
                continue
            if verb == "MAIL":
                path, _, params = cmd[10:].partition(" ")
                sender, rcpts = path.strip("<>"), []
                self.mail_params.append(params)
                if self.expect_pipelining:
                    held = []
                    while not held or held[-1].upper() != "DATA":
                        l = rfile.readline(4096)
                        if not l:
                            return
                        held.append(l.decode().rstrip("\r\n"))
                    send("250 2.1.0 ok")
                    for h in held[:-1]:
                        rcpt = h[8:].strip("<>")
                        if rcpt.startswith("reject"):
                            send("550 5.1.1 <%s>: no such user here" % rcpt)
                        else:
                            rcpts.append(rcpt)
                            send("250 2.1.5 ok")
                    cmd, verb = "DATA", "DATA"
                else:
                    send("250 2.1.0 ok")
                    continue
            if verb == "RCPT":
                rcpt = cmd[8:].strip("<>")
                if rcpt.startswith("reject") or self.mode == "reject":
                    send("550 5.1.1 <%s>: no such user here" % rcpt)
                elif self.mode == "defer":
                    send("451 4.3.0 try again later")
                else:
                    rcpts.append(rcpt)
                    send("250 2.1.5 ok")
            elif verb == "DATA":
                send("354 go ahead")
                if self.drop_in_data:
                    rfile.readline(1 << 20)
                    return
                data = b""
                while True:
                    l = rfile.readline(1 << 20)
                    if not l or l == b".\r\n":
                        break
                    if l.startswith(b"."):
                        l = l[1:]
                    data += l
                if not l:
                    return
                with self.lock:
                    self.transactions += 1
                if self.hold_data:
                    time.sleep(self.hold_data)
                with self.lock:
                    if self.on_delivered:
                        self.on_delivered(sender, list(rcpts), data)
                    else:
                        self.delivered.append((sender, list(rcpts), data))
                        self.delivered_on.append(conn)
                    self.tls_delivered += in_tls
                send("250 2.0.0 queued here")
            elif verb == "QUIT":
                send("221 2.0.0 bye")
                return
            elif verb == "RSET":
                sender, rcpts = None, []
                send(self.rset_reply)
            else:
                send("502 5.5.2 not here")

    def stop(self):
        """Stops listening and cuts the sessions still open (a client's
        idle reused connection included), as an MX that dies does."""
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            socks = list(self.open_socks.values())
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
