"""Quotas for real: `mailctl user quota` in the shared config, usage kept
in the store's maildirsize and so the same on two nodes, the SMTP codes
(452 4.2.2 at RCPT, 552 5.2.2 for SIZE= at RCPT and at the end of DATA),
IMAP QUOTA (RFC 9208) and APPEND/COPY refused with [OVERQUOTA], the API's
usage and limit, a recount after files were removed behind the nodes'
back, and `quota none` lifting it."""
import http.client
import imaplib
import json
import os
import smtplib

from lbdtest import wait_for
from nodetest import NodeTestCase

LISTEN = ("smtp", "imap", "http")
ALICE = "alice@example.test"


def message(size, subject="hi"):
    head = ("From: carol@remote.test\r\nTo: %s\r\nSubject: %s\r\n\r\n"
            % (ALICE, subject)).encode()
    line = b"x" * 78 + b"\r\n"
    body = (line * (size // len(line) + 1))[:max(0, size - len(head) - 2)]
    return head + body + b"\r\n"


class QuotaTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        self.n1 = self.node("mail1", listen=LISTEN,
                            extra_node="allow_plaintext_auth = yes\n")
        self.n2 = self.node("mail2", listen=LISTEN,
                            extra_node="allow_plaintext_auth = yes\n")
        self.tokens = {}

    # ---- helpers ----

    def api_quota(self, node):
        """The quota object of alice's INBOX in GET /api/mailboxes."""
        if node.name not in self.tokens:
            st, _, body = self.http(node, "POST", "/api/login",
                                    {"user": ALICE, "password": "demo"})
            self.assertEqual(st, 200, body)
            self.tokens[node.name] = json.loads(body)["token"]
        st, _, body = self.http(node, "GET", "/api/mailboxes",
                                headers={"Authorization": "Bearer " +
                                         self.tokens[node.name]})
        self.assertEqual(st, 200, body)
        boxes = json.loads(body)
        self.assertEqual(len({json.dumps(b["quota"]) for b in boxes}), 1,
                         "one quota root for every mailbox")
        return boxes[0]["quota"]

    @staticmethod
    def http(node, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", node.ports["http"],
                                       timeout=10)
        hdrs = dict(headers or {})
        if body is not None:
            body = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        out = (r.status, r.getheaders(), r.read())
        c.close()
        return out

    def set_quota(self, limit):
        """mailctl user quota, then waits until both nodes have it."""
        self.mailctl("user", "quota", ALICE, limit)
        want = None if limit == "none" else int(limit)
        for n in (self.n1, self.n2):
            wait_for(lambda: self.api_quota(n)["limit"] == want, 10,
                     what="%s takes the quota" % n.name)

    def files(self, folder=None):
        """alice's message files: of every mailbox, or of one folder."""
        local, domain = ALICE.split("@")
        out = []
        for root, _, names in os.walk(os.path.join(self.store, domain)):
            box, sub = os.path.split(root)
            if sub not in ("cur", "new"):
                continue
            if os.path.basename(box).startswith("."):
                name, box = os.path.basename(box)[1:], os.path.dirname(box)
            else:
                name = "INBOX"
            if os.path.basename(box) == local and folder in (None, name):
                out += [os.path.join(root, n) for n in names]
        return out

    def used_on_disk(self):
        return sum(os.path.getsize(p) for p in self.files())

    def smtp(self, node):
        c = smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=10)
        c.ehlo("client.test")
        return c

    def send(self, node, rcpts, data, size=None):
        """One transaction: (RCPT replies, DATA reply or None)."""
        c = self.smtp(node)
        opts = ["SIZE=%d" % size] if size else []
        self.assertEqual(c.mail("carol@remote.test", opts)[0], 250)
        replies = [c.rcpt(r) for r in rcpts]
        done = None
        if any(code == 250 for code, _ in replies):
            done = c.data(data)
        c.quit()
        return replies, done

    def bounces(self):
        """The non-delivery notices in the shared queue."""
        q = os.path.join(self.store, ".queue")
        out = []
        for f in sorted(os.listdir(q)) if os.path.isdir(q) else []:
            if f.endswith(".msg"):
                with open(os.path.join(q, f), "rb") as fh:
                    out.append(fh.read())
        return [m for m in out if b"delivery-status" in m]

    def imap(self, node):
        m = imaplib.IMAP4("127.0.0.1", node.ports["imap"], timeout=10)
        m.login(ALICE, "demo")
        return m

    # ---- tests ----

    def test_smtp_codes_on_two_nodes_and_equal_usage(self):
        self.set_quota("3000")
        # Room: delivered through mail1, counted the same on both nodes.
        _, done = self.send(self.n1, [ALICE], message(1000))
        self.assertEqual(done[0], 250)
        used = self.used_on_disk()
        for n in (self.n1, self.n2):
            self.assertEqual(self.api_quota(n), {"used": used, "limit": 3000})
        # SIZE= that would take alice over: 552 5.2.2 at RCPT, alone.
        replies, _ = self.send(self.n2, [ALICE, "bob@example.test"],
                               message(2500), size=2500)
        self.assertEqual(replies[0][0], 552)
        self.assertIn(b"5.2.2", replies[0][1])
        self.assertEqual(replies[1][0], 250)
        # No SIZE=: the end of DATA says 552 5.2.2, on either node.
        for n in (self.n1, self.n2):
            replies, done = self.send(n, [ALICE], message(2500))
            self.assertEqual(replies[0][0], 250)
            self.assertEqual(done[0], 552)
            self.assertIn(b"5.2.2", done[1])
        self.assertEqual(self.used_on_disk(), used)
        # Several recipients, one reply: bob gets it, alice does not, and
        # the sender is sent a non-delivery notice for her (RFC 3464).
        bob_before = len(self.maildir("bob@example.test"))
        replies, done = self.send(self.n2, ["team@example.test"],
                                  message(2500))
        self.assertEqual(done[0], 250)
        self.assertEqual(len(self.maildir("bob@example.test")), bob_before + 1)
        self.assertEqual(self.used_on_disk(), used)
        self.assertEqual(len(self.bounces()), 1)
        dsn = self.bounces()[0]
        self.assertIn(b"To: <carol@remote.test>", dsn)
        self.assertIn(b"Final-Recipient: rfc822; alice@example.test", dsn)
        self.assertIn(b"Status: 5.2.2", dsn)
        self.assertNotIn(b"bob@example.test\r\nAction", dsn)
        # Full (a limit below what she has): 452 at RCPT.
        self.set_quota("1000")
        # Over: 452 4.2.2 at RCPT on both nodes, usage equal on both.
        for n in (self.n1, self.n2):
            self.assertEqual(self.api_quota(n)["used"], used)
            replies, done = self.send(n, [ALICE], message(100))
            self.assertEqual(replies[0][0], 452)
            self.assertIn(b"4.2.2", replies[0][1])
            self.assertIsNone(done)
        # Redis away: the limit is in the nodes' cache and usage on the
        # store, so nothing changes: alice full, bob served, no 5xx.
        self.redis.stop()
        for n in (self.n1, self.n2):
            replies, done = self.send(n, [ALICE, "bob@example.test"],
                                      message(100))
            self.assertEqual([r[0] for r in replies], [452, 250])
            self.assertEqual(done[0], 250)

    def test_imap_quota_append_copy_expunge(self):
        m = self.imap(self.n1)
        typ, caps = m.capability()
        self.assertIn(b"QUOTA", caps[0].split())
        self.assertIn(b"QUOTA=RES-STORAGE", caps[0].split())
        # No limit: no quota root.
        typ, data = m.getquotaroot("INBOX")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0], [b'"INBOX"'])
        self.assertEqual(m.getquota('""')[0], "NO")
        self.set_quota("10240")
        typ, _ = m.append("INBOX", None, None, message(4000))
        self.assertEqual(typ, "OK")
        typ, data = m.getquotaroot("INBOX")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0], [b'"INBOX" ""'])
        kib = self.used_on_disk() // 1024
        self.assertEqual(data[1], [('"" (STORAGE %d 10)' % kib).encode()])
        m2 = self.imap(self.n2)
        self.assertEqual(m2.getquota('""')[1],
                         [('"" (STORAGE %d 10)' % kib).encode()])
        # Over the limit: APPEND and COPY refused, on the other node too.
        typ, data = m2.append("INBOX", None, None, message(7000))
        self.assertEqual(typ, "NO")
        self.assertIn(b"[OVERQUOTA]", data[0])
        typ, _ = m.append("INBOX", None, None, message(4000))
        self.assertEqual(typ, "OK")
        m2.create("Archive")
        m2.select("INBOX")
        typ, data = m2.copy("1:2", "Archive")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[OVERQUOTA]", data[0])
        typ, data = m2.setquota('""', "(STORAGE 100)")
        self.assertEqual(typ, "NO")
        # MOVE takes no more room: allowed; EXPUNGE gives room back.
        typ, _ = m2._simple_command("MOVE", "1", "Archive")
        self.assertEqual(typ, "OK")
        m2.select("Archive")
        m2.store("1", "+FLAGS", "(\\Deleted)")
        kib = (os.path.getsize(self.files("Archive")[0]) + 1023) // 1024
        typ, data = m.status("Archive", "(MESSAGES DELETED-STORAGE)")
        self.assertEqual(data[0], ('"Archive" (MESSAGES 1 DELETED-STORAGE '
                                   '%d)' % kib).encode())
        m2.expunge()
        typ, data = m.status("Archive", "(DELETED-STORAGE)")
        self.assertEqual(data[0], b'"Archive" (DELETED-STORAGE 0)')
        used = self.used_on_disk()
        for n in (self.n1, self.n2):
            self.assertEqual(self.api_quota(n)["used"], used)
        typ, _ = m.append("INBOX", None, None, message(4000))
        self.assertEqual(typ, "OK")
        m.logout()
        m2.logout()

    def test_recount_and_none(self):
        for i in range(3):
            self.deliver(self.n1, message(1500, "m%d" % i))
        self.set_quota("4000")
        with open(os.path.join(self.n1.spool, "config.snapshot")) as f:
            snap = json.load(f)
        self.assertIn({"address": ALICE, "password": snap["users"][0][
            "password"], "quota": 4000}, snap["users"])
        before = self.used_on_disk()
        self.assertEqual(self.api_quota(self.n2)["used"], before)
        self.assertEqual(self.send(self.n2, [ALICE], message(10))[0][0][0],
                         452)
        # Files removed behind the nodes' back: usage stays until a
        # recount from the store repairs it, seen on both nodes.
        os.remove(self.maildir(ALICE)[0])
        os.remove(self.maildir(ALICE)[0])
        after = self.used_on_disk()
        self.assertEqual(self.api_quota(self.n1)["used"], before)
        r = self.mailctl("-s", self.store, "user", "quota-recount", ALICE)
        self.assertEqual(r.stdout.strip(),
                         "%s %d bytes, 1 messages, limit 4000"
                         % (ALICE, after))
        for n in (self.n1, self.n2):
            self.assertEqual(self.api_quota(n)["used"], after)
        replies, done = self.send(self.n2, [ALICE], message(100))
        self.assertEqual(done[0], 250)
        # In the config: shown, exported, and lifted by none.
        self.assertEqual(self.mailctl("user", "quota", ALICE).stdout, "4000\n")
        doc = json.loads(self.mailctl("export").stdout)
        user = [u for u in doc["users"] if u["address"] == ALICE][0]
        self.assertEqual(user["quota"], 4000)
        self.assertEqual(self.mailctl("user", "quota", ALICE, "1x",
                                      check=False).returncode, 2)
        self.set_quota("1000")  # below what alice has: full
        self.assertEqual(self.send(self.n1, [ALICE], message(10))[0][0][0],
                         452)
        self.set_quota("none")
        self.assertEqual(self.mailctl("user", "quota", ALICE).stdout, "none\n")
        self.assertEqual(self.send(self.n1, [ALICE], message(10))[1][0], 250)
        self.assertEqual(self.api_quota(self.n2)["used"], self.used_on_disk())
        self.mailctl("user", "quota", ALICE, "1M")
        self.assertEqual(self.mailctl("user", "quota", ALICE).stdout,
                         "1048576\n")
