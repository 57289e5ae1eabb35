"""The POP3 tests' fixture: a client logged in over STLS (USER/PASS or
AUTH PLAIN) to a real node, and the maildrop lock's release seen in
Redis (test_pop3.py, test_pop3_lock.py)."""
import base64
import os
import poplib

from lbdtest import wait_for
from nodetest import NodeTestCase, tls_context

LISTEN = ("smtp", "pop3", "pop3s")


def as_sent(msg):
    """A message as POP3 sends it: every line ending in CRLF."""
    out = msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out


class Pop3TestCase(NodeTestCase):
    def pop(self, node, user="alice@example.test", password="demo",
            how="user"):
        p = poplib.POP3("127.0.0.1", node.ports["pop3"], timeout=10)
        try:
            p.stls(context=tls_context())
            if how == "user":
                p.user(user)
                p.pass_(password)
            else:
                auth = base64.b64encode(b"\0" + user.encode() + b"\0" +
                                        password.encode()).decode()
                p._shortcmd("AUTH PLAIN " + auth)
        except BaseException:
            p.close()
            raise
        return p

    def quit(self, p):
        try:
            return p.quit()
        finally:
            p.close()

    def stored(self, address):
        """The stored messages by name order is not UID order: read them
        through the file names' ,U= instead."""
        out = {}
        for path in self.maildir(address):
            name = os.path.basename(path)
            uid = int(name.split(",U=")[1].split(":")[0].split(",")[0]) \
                if ",U=" in name else 0
            with open(path, "rb") as f:
                out[uid] = f.read()
        return [out[k] for k in sorted(out)]

    def released(self, user):
        """The lease goes back at QUIT; the DEL may reach Redis a moment
        after the client read +OK."""
        wait_for(lambda: int(self.redis.cli("EXISTS", "ms:pop3lock:" + user)) == 0,
                 5, what="lease of %s released" % user)

    def try_pop(self, n, **kw):
        try:
            return self.pop(n, **kw)
        except poplib.error_proto:
            return None
