"""A seeded, bounded fuzz of mailnode's protocol parsers on the wire:
SMTP, POP3, IMAP and HTTP sessions get valid commands mutated (bytes
flipped, inserted, cut, repeated, CR/LF/NUL and literal markers thrown
in), before and after logging in. The node must answer or end each
session itself and keep serving; under the sanitizer build (the second
ctest run) any memory error ends the test too. The unit tests fuzz the
IMAP, HTTP, PROXY, config and control parsers in-process; this reaches
the SMTP and POP3 command code, which lives inside their sessions.

MS_FUZZ_SEED picks another seed (the default one is fixed so a failure
is repeatable); MS_FUZZ_SESSIONS the sessions per protocol before login
(a third of that after it: each login costs a crypt(3) hash)."""
import os
import random
import unittest

from nodetest import NodeTestCase
from wire import exchange

LISTEN = ("smtp", "submission", "pop3", "imap", "http")
SEED = int(os.environ.get("MS_FUZZ_SEED", "20261123"))
SESSIONS = int(os.environ.get("MS_FUZZ_SESSIONS", "60"))
LINES = 25          # mutated lines per session (twice that after login)
DEADLINE = 10.0     # seconds a session may stay silent before it must end

SMTP = [b"EHLO client.test", b"HELO client.test",
        b"MAIL FROM:<carol@remote.test> SIZE=100 BODY=8BITMIME",
        b"RCPT TO:<alice@example.test>", b"RCPT TO:<team@example.test>",
        b"DATA", b"Subject: x", b"", b".", b"RSET", b"NOOP", b"VRFY alice",
        b"HELP", b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABkZW1v",
        b"AUTH LOGIN", b"YWxpY2VAZXhhbXBsZS50ZXN0", b"STARTTLS",
        b"MAIL FROM:<> SMTPUTF8", b"RCPT TO:<\"a b\"@example.test>"]
POP3 = [b"CAPA", b"USER alice@example.test", b"PASS demo", b"STAT",
        b"LIST", b"LIST 1", b"UIDL", b"UIDL 1", b"TOP 1 3", b"RETR 1",
        b"DELE 1", b"RSET", b"NOOP", b"AUTH PLAIN", b"AUTH",
        b"AGFsaWNlQGV4YW1wbGUudGVzdABkZW1v", b"STLS"]
IMAP = [b"a CAPABILITY", b"a NOOP", b"a SELECT INBOX", b"a EXAMINE Sent",
        b"a FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE BODYSTRUCTURE)",
        b"a UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]<0.100>)",
        b"a FETCH 1 BODY[1.MIME]", b"a SEARCH OR SUBJECT x FROM y NOT SEEN",
        b"a UID SEARCH CHARSET UTF-8 TEXT {3}", b"xyz",
        b"a STORE 1 +FLAGS (\\Seen \\Flagged)", b"a COPY 1 Trash",
        b"a UID MOVE 1:* Junk", b"a LIST \"\" \"*\"",
        b"a STATUS INBOX (MESSAGES UIDNEXT UNSEEN)", b"a CREATE a.b.c",
        b"a RENAME a.b x", b"a DELETE x", b"a APPEND INBOX (\\Seen) {5+}",
        b"hello", b"a IDLE", b"DONE", b"a ENABLE UTF8=ACCEPT",
        b"a ID (\"name\" \"fuzz\")", b"a NAMESPACE", b"a EXPUNGE",
        b"a UNSELECT", b"a LSUB \"\" %"]
HTTP = [b"GET /health HTTP/1.1", b"Host: x", b"GET /api/mailboxes HTTP/1.1",
        b"Authorization: Bearer abc", b"Cookie: session=abc",
        b"POST /api/login HTTP/1.1", b"Content-Length: 52",
        b"Content-Type: application/json",
        b'{"user":"alice@example.test","password":"demo"}',
        b"GET /api/messages?mailbox=INBOX HTTP/1.1",
        b"GET /api/messages/1?mailbox=..%2f.. HTTP/1.1",
        b"Transfer-Encoding: chunked", b"Connection: keep-alive", b""]
NOISE = [b"\r", b"\n", b"\0", b"{", b"}", b"{4294967296}", b"{99+}", b"\"",
         b"(", b")", b"[", b"<", b">", b"%", b"*", b"\\", b":", b"=", b".",
         b"\xff", b"\xc3", b" " * 300, b"A" * 70000]

LOGIN = {"smtp": b"EHLO client.test\r\n",
         "submission": b"EHLO client.test\r\n"
                       b"AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABkZW1v\r\n",
         "pop3": b"USER alice@example.test\r\nPASS demo\r\n",
         "imap": b"l LOGIN alice@example.test demo\r\nl SELECT INBOX\r\n",
         "http": b""}
SEEDS = {"smtp": SMTP, "submission": SMTP, "pop3": POP3, "imap": IMAP,
         "http": HTTP}


def mutate(rng, line):
    """One mutation of a valid line, sometimes several stacked."""
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.randrange(7)
        pos = rng.randrange(len(line) + 1)
        if op == 0 and line:  # flip a byte
            i = rng.randrange(len(line))
            line = line[:i] + bytes([rng.randrange(256)]) + line[i + 1:]
        elif op == 1:  # insert noise
            line = line[:pos] + rng.choice(NOISE) + line[pos:]
        elif op == 2:  # cut
            line = line[:pos]
        elif op == 3:  # repeat a piece
            piece = line[pos:pos + rng.randrange(1, 40)]
            line = line[:pos] + piece * rng.randrange(2, 200) + line[pos:]
        elif op == 4:  # random bytes
            line = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        elif op == 5:  # splice with another seed's tail
            line = line[:pos] + b" " + line[::-1][:pos]
        # op 6: keep it valid
    return line


class ProtocolFuzzTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        # The mutated logins fail by the hundred from one address: the
        # login limits (tested in test_login_limits) would delay every
        # later session by seconds, so they are kept out of the way here.
        self.n = self.node("mail1", listen=LISTEN,
                           extra_node="allow_plaintext_auth = yes\n"
                                      "login_delay_ms = 0\n"
                                      "login_fail_limit = 0\n")

    def alive(self, role):
        self.assertIsNone(self.n.proc.poll(),
                          "mailnode died:\n" + self.n.log()[-3000:])
        port = self.n.ports[role]
        probe = {"http": b"GET /health HTTP/1.1\r\nHost: x\r\n"
                         b"Connection: close\r\n\r\n",
                 "imap": b"n NOOP\r\nq LOGOUT\r\n",
                 "pop3": b"QUIT\r\n"}.get(role, b"QUIT\r\n")
        out = exchange(port, probe, greeting=False, timeout=DEADLINE)
        self.assertRegex(out, {"http": r"^HTTP/1.1 200",
                               "imap": r"n OK", "pop3": r"\+OK"}.get(
                                   role, r"221 "), role)

    def fuzz(self, role, logged_in):
        rng = random.Random("%d %s %s" % (SEED, role, logged_in))
        seeds = SEEDS[role]
        sessions, per = (SESSIONS // 3, 2 * LINES) if logged_in \
            else (SESSIONS, LINES)
        for i in range(sessions):
            lines = [mutate(rng, rng.choice(seeds)) for _ in range(per)]
            data = (LOGIN[role] if logged_in else b"") + \
                b"".join(ln + b"\r\n" for ln in lines)
            exchange(self.n.ports[role], data, greeting=False,
                     timeout=DEADLINE)
            if i % 20 == 19:
                self.alive(role)
        self.alive(role)

    def test_smtp(self):
        self.fuzz("smtp", False)
        self.fuzz("smtp", True)
        self.fuzz("submission", True)

    def test_pop3(self):
        self.deliver(self.n, b"Subject: s\r\n\r\nbody\r\n")
        self.fuzz("pop3", False)
        self.fuzz("pop3", True)

    def test_imap(self):
        self.fuzz("imap", False)
        self.fuzz("imap", True)

    def test_http(self):
        self.fuzz("http", False)


if __name__ == "__main__":
    unittest.main()
