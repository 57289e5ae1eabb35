"""Raw protocol connections for what the client libraries cannot say:
a line connection (IMAP tags, pipelining, literals) and a one-shot
exchange (send everything, close our side, read until the server
closes)."""
import socket


class Lines:
    """A plain-text CRLF line connection; with greeting, the server's
    first line is read into .greeting."""

    def __init__(self, port, timeout=10, greeting=True):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.greeting = self.line() if greeting else None

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("closed; got %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("latin-1")

    def send(self, data):
        self.s.sendall(data.encode() if isinstance(data, str) else data)

    def until(self, tag):
        """Lines up to and including the tagged answer."""
        out = []
        while True:
            out.append(self.line())
            if out[-1].startswith(tag + " "):
                return out

    def cmd(self, tag, text):
        self.send("%s %s\r\n" % (tag, text))
        return self.until(tag)

    def rest(self):
        """Everything left until the server closes (or resets, or the
        socket's timeout passes)."""
        out = self.buf
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        self.buf = b""
        return out.decode("latin-1")

    def close(self):
        self.s.close()


def exchange(port, data, greeting=True, timeout=10):
    """Sends data (after the greeting line, when greeting), closes our
    side and returns everything the server sent until it closed. A server
    that ends the session before taking all of data is fine; one still
    open timeout seconds later raises socket.timeout."""
    c = Lines(port, timeout=timeout, greeting=False)
    try:
        if greeting:
            c.line()
        try:
            c.send(data)
            c.s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # ended early: what it said is still to be read
        out = c.buf
        while True:
            try:
                chunk = c.s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out.decode("latin-1")
    finally:
        c.close()
