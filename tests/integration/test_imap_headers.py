"""What a node keeps for IMAP, against two real nodes over one store and
a real redis-server: SEARCH on header fields and header FETCH through the
header cache, one node with the cache (mail1), one with it off (mail2,
imap_header_cache = 0), which must answer alike, cold and warm, after a
message is flagged on the other node (its file renamed) and after one is
expunged there; and a session's file names following many renames made
on the other node."""
import glob
import imaplib
import os
import re
import subprocess
import time
import unittest

from nodetest import MAILNODE, NodeTestCase

LISTEN = ("imap",)
PLAIN = "allow_plaintext_auth = yes\n"


def message(i, subject, sender, tag=None, date="Mon, 23 Nov 2026 10:00:00 +0000"):
    head = ("From: %s\r\nTo: alice@example.test\r\nSubject: %s\r\n"
            "Date: %s\r\nMessage-ID: <h%d@remote.test>\r\n"
            % (sender, subject, date, i))
    if tag:
        head += "X-Tag: %s\r\n" % tag
    return (head + "\r\nbody of %d, no quokka here\r\n" % i).encode()


# (subject, from, X-Tag, Date): which searches below match is computed
# from these, not written down twice.
MESSAGES = [
    ("quokka sighting", "Carol <carol@remote.test>", "red",
     "Mon, 23 Nov 2026 10:00:00 +0000"),
    ("weekly report", "Dave <dave@remote.test>", None,
     "Sun, 01 Feb 1998 10:00:00 +0000"),
    ("=?UTF-8?Q?Quokka_caf=C3=A9?=", "carol@remote.test", "blue",
     "Mon, 23 Nov 2026 11:00:00 +0000"),
    ("folded\r\n quokka subject", "Erin <erin@remote.test>", "red",
     "Tue, 24 Nov 2026 10:00:00 +0000"),
    ("nothing to see", "Carol <carol@remote.test>", None,
     "Sun, 01 Feb 1998 10:00:00 +0000"),
    ("QUOKKA in capitals", "Frank <frank@remote.test>", "green",
     "Mon, 23 Nov 2026 12:00:00 +0000"),
]

SEARCHES = [
    (("SUBJECT", "quokka"), lambda s, f, t, d: "quokka" in s.lower()),
    # only the decoded encoded word reads "Quokka caf..." with a space
    (("SUBJECT", '"quokka caf"'),
     lambda s, f, t, d: s.startswith("=?UTF-8?Q?Quokka_caf")),
    (("FROM", "carol"), lambda s, f, t, d: "carol" in f),
    (("HEADER", "X-Tag", "red"), lambda s, f, t, d: t == "red"),
    (("HEADER", "X-Tag", '""'), lambda s, f, t, d: t is not None),
    (("NOT", "HEADER", "X-Tag", '""'), lambda s, f, t, d: t is None),
    (("OR", "FROM", "frank", "SUBJECT", "report"),
     lambda s, f, t, d: "frank" in f or "report" in s),
    (("SENTBEFORE", "1-Jan-2000"), lambda s, f, t, d: "1998" in d),
]


class ImapHeaderCacheTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        self.n1 = self.node("mail1", listen=LISTEN, extra_node=PLAIN)
        self.n2 = self.node("mail2", listen=LISTEN,
                            extra_node=PLAIN + "imap_header_cache = 0\n")

    def test_config_key_checked(self):
        n = self.node("mail3", start=False, listen=LISTEN,
                      extra_node="imap_header_cache = 1048576\n")
        r = subprocess.run([MAILNODE, "-t", "-c", n.path],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        for bad in ("-1", "lots", "3000000000"):
            n = self.node("bad%s" % len(self.nodes), start=False,
                          listen=LISTEN,
                          extra_node="imap_header_cache = %s\n" % bad)
            r = subprocess.run([MAILNODE, "-t", "-c", n.path],
                               capture_output=True, text=True, timeout=20)
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn('imap_header_cache: "%s" is not a size in bytes '
                          '(0..2147483648)' % bad, r.stderr)

    def imap(self, node):
        m = imaplib.IMAP4("127.0.0.1", node.ports["imap"], timeout=10)
        m.login("alice@example.test", "demo")
        typ, _ = m.select("INBOX")
        self.assertEqual(typ, "OK")
        return m

    def search(self, m, *keys):
        typ, data = m.uid("SEARCH", "CHARSET", "UTF-8", *keys)
        self.assertEqual(typ, "OK", keys)
        return sorted(int(u) for u in data[0].split())

    def expected(self, uids, alive):
        return {keys: sorted(uids[i] for i, msg in enumerate(MESSAGES)
                             if i in alive and want(*msg))
                for keys, want in SEARCHES}

    def answers(self, m):
        return {keys: self.search(m, *keys) for keys, _ in SEARCHES}

    def test_header_searches_same_cold_warm_flagged_expunged(self):
        a = self.imap(self.n1)
        uids = []
        for i, (subj, sender, tag, date) in enumerate(MESSAGES):
            typ, data = a.append("INBOX", None, None,
                                 message(i, subj, sender, tag, date))
            self.assertEqual(typ, "OK")
            uids.append(int(re.search(rb"APPENDUID \d+ (\d+)",
                                      data[0]).group(1)))
        a.noop()
        b = self.imap(self.n2)
        alive = set(range(len(MESSAGES)))
        want = self.expected(uids, alive)
        # every search matches something and misses something
        for keys, found in want.items():
            self.assertTrue(0 < len(found) < len(MESSAGES), keys)
        self.assertEqual(self.answers(a), want)  # cold
        self.assertEqual(self.answers(a), want)  # warm
        self.assertEqual(self.answers(b), want)  # no cache
        # Flagged on the other node: the file gets a new name.
        typ, _ = b.uid("STORE", str(uids[0]), "+FLAGS", "(\\Flagged)")
        self.assertEqual(typ, "OK")
        a.noop()
        self.assertEqual(self.answers(a), want)
        self.assertEqual(self.search(a, "FLAGGED", "SUBJECT", "quokka"),
                         [uids[0]])
        # Expunged on the other node: gone from the answers once told.
        typ, _ = b.uid("STORE", str(uids[3]), "+FLAGS", "(\\Deleted)")
        self.assertEqual(typ, "OK")
        typ, _ = b.expunge()
        self.assertEqual(typ, "OK")
        typ, data = a.noop()
        self.assertEqual(typ, "OK")
        alive.discard(3)
        want = self.expected(uids, alive)
        self.assertNotIn(uids[3], want[("SUBJECT", "quokka")])
        self.assertEqual(self.answers(a), want)
        self.assertEqual(self.answers(b), want)
        # A fresh session on the caching node agrees too.
        c = self.imap(self.n1)
        self.assertEqual(self.answers(c), want)
        for m in (a, b, c):
            m.logout()

    def fetch_all(self, m, items):
        """Each message's whole FETCH answer, literals inlined."""
        out = []
        for uid in self.search(m, "ALL"):
            typ, data = m.uid("FETCH", str(uid), items)
            self.assertEqual(typ, "OK")
            out.append(b"".join(d if isinstance(d, bytes) else d[0] + d[1]
                                for d in data))
        return out

    def test_header_fetch_same_with_and_without_cache(self):
        a = self.imap(self.n1)
        for i, (subj, sender, tag, date) in enumerate(MESSAGES):
            typ, _ = a.append("INBOX", None, None,
                              message(i, subj, sender, tag, date))
            self.assertEqual(typ, "OK")
        # A file left in new/ by some other program: LF line ends, no
        # blank line (all header), no size in its name.
        boxes = glob.glob(os.path.join(self.store, "example.test", "*", "*",
                                       "alice", "new"))
        self.assertEqual(len(boxes), 1)
        lf = b"Subject: lf quokka\nFrom: Gina <gina@remote.test>\nX-Tag: lf"
        with open(os.path.join(boxes[0], "%d.lf.test" % time.time()),
                  "wb") as f:
            f.write(lf)
        a.noop()
        b = self.imap(self.n2)
        items = ("(ENVELOPE RFC822.HEADER RFC822.SIZE BODY.PEEK[HEADER] "
                 "BODY.PEEK[HEADER.FIELDS (SUBJECT X-TAG)] "
                 "BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT)])")
        cold = self.fetch_all(a, items)
        self.assertEqual(len(cold), len(MESSAGES) + 1)
        self.assertEqual(self.fetch_all(a, items), cold)  # warm
        self.assertEqual(self.fetch_all(b, items), cold)  # no cache
        # the header-only answers are those of the whole message
        full = self.fetch_all(a, "(ENVELOPE BODY.PEEK[TEXT])")
        for f, c in zip(full, cold):
            env = re.search(rb"ENVELOPE (\(.*\)) BODY\[TEXT\]", f,
                            re.S).group(1)
            self.assertIn(b"ENVELOPE " + env + b" RFC822.HEADER", c)
        crlf = lf.replace(b"\n", b"\r\n")
        self.assertIn(b"BODY[HEADER] {%d}%s" % (len(crlf), crlf), cold[-1])
        self.assertEqual(self.search(a, "SUBJECT", '"lf quokka"'),
                         self.search(b, "SUBJECT", '"lf quokka"'))
        self.assertEqual(len(self.search(a, "HEADER", "X-Tag", "lf")), 1)
        a.logout()
        b.logout()

    def test_names_follow_renames_from_other_node(self):
        a = self.imap(self.n1)
        bodies = []
        for i in range(4):
            body = message(i, "m%d" % i, "carol@remote.test")
            typ, _ = a.append("INBOX", None, None, body)
            self.assertEqual(typ, "OK")
            bodies.append(body)
        a.noop()
        b = self.imap(self.n2)
        flags = ["\\Seen", "\\Flagged", "\\Answered", "\\Draft"]
        # Each round renames every file; a learns the new names at each
        # NOOP (its name block grows, then is rewritten).
        for r in range(12):
            want = flags[: r % 4 + 1]
            typ, _ = b.store("1:*", "FLAGS", "(%s)" % " ".join(want))
            self.assertEqual(typ, "OK")
            a.noop()
            typ, data = a.fetch("1:*", "(FLAGS BODY.PEEK[])")
            self.assertEqual(typ, "OK")
            got = [d for d in data if isinstance(d, tuple)]
            self.assertEqual([d[1] for d in got], bodies)
            for d in got:
                f = re.search(rb"FLAGS \(([^)]*)\)", d[0]).group(1).split()
                self.assertEqual(sorted(x.decode() for x in f
                                        if x != b"\\Recent"), sorted(want))
        a.logout()
        b.logout()


if __name__ == "__main__":
    unittest.main()
