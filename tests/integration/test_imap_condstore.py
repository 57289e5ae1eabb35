"""CONDSTORE and QRESYNC (RFC 7162) over one shared store: two nodes,
mod-sequences equal on both, a client that changes flags and expunges on
one node while another, reconnecting to the other node with QRESYNC,
gets exactly those changes and the vanished UIDs."""
import imaplib
import os
import re
import threading

from nodetest import NodeTestCase
from test_imap import simple
from wire import Lines

LISTEN = ("smtp", "imap")


def highest(lines):
    for line in lines:
        m = re.search(r"\[HIGHESTMODSEQ (\d+)\]", line)
        if m:
            return int(m.group(1))
    return None


def status_highest(lines):
    for line in lines:
        m = re.match(r"\* STATUS .*HIGHESTMODSEQ (\d+)", line)
        if m:
            return int(m.group(1))
    return None


def fetches(lines):
    """{uid: (flags, modseq)} of the untagged FETCH answers."""
    out = {}
    for line in lines:
        m = re.match(r"\* \d+ FETCH \((.*)\)$", line)
        if not m:
            continue
        body = m.group(1)
        uid = re.search(r"UID (\d+)", body)
        flags = re.search(r"FLAGS \(([^)]*)\)", body)
        modseq = re.search(r"MODSEQ \((\d+)\)", body)
        out[int(uid.group(1)) if uid else None] = (
            sorted(f for f in flags.group(1).split() if f != "\\Recent")
            if flags else None,
            int(modseq.group(1)) if modseq else None)
    return out


class ImapCondstoreTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        extra = "allow_plaintext_auth = yes\n"
        self.n1 = self.node("mail1", listen=LISTEN, extra_node=extra)
        self.n2 = self.node("mail2", listen=LISTEN, extra_node=extra)

    def session(self, node, enable=None):
        r = Lines(node.ports["imap"])
        self.addCleanup(r.close)
        self.ok(r, "a", "LOGIN alice@example.test demo")
        if enable:
            out = self.ok(r, "e", "ENABLE " + enable)
            self.assertIn("* ENABLED " + enable, out)
        return r

    def ok(self, r, tag, text):
        out = r.cmd(tag, text)
        self.assertRegex(out[-1], r"^%s OK" % tag, out)
        return out

    def deliver_n(self, n):
        for i in range(n):
            self.deliver(self.n1, simple("m%d" % i))

    def test_capabilities_and_highestmodseq_equal_on_both_nodes(self):
        self.deliver_n(2)
        a, b = self.session(self.n1), self.session(self.n2)
        caps = self.ok(a, "c", "CAPABILITY")[0]
        for cap in ("CONDSTORE", "QRESYNC", "ENABLE"):
            self.assertIn(" " + cap, caps)
        ha = highest(self.ok(a, "s", "SELECT INBOX"))
        hb = highest(self.ok(b, "s", "SELECT INBOX"))
        self.assertEqual(ha, hb)
        # A flag change raises it, the same on both nodes.
        self.ok(a, "f", "STORE 1 +FLAGS (\\Flagged)")
        h1 = status_highest(self.ok(a, "t", "STATUS INBOX (HIGHESTMODSEQ)"))
        self.assertGreater(h1, ha)
        self.assertEqual(
            status_highest(self.ok(b, "t", "STATUS INBOX (HIGHESTMODSEQ)")),
            h1)
        # A delivery raises it too.
        self.deliver_n(1)
        self.assertGreater(
            status_highest(self.ok(b, "u", "STATUS INBOX (HIGHESTMODSEQ)")),
            h1)

    def test_fetch_modseq_changedsince_and_unchangedsince(self):
        self.deliver_n(3)
        a = self.session(self.n1)
        h0 = highest(self.ok(a, "s", "SELECT INBOX (CONDSTORE)"))
        ms = fetches(self.ok(a, "f", "UID FETCH 1:* (MODSEQ)"))
        self.assertEqual(len(ms), 3)
        self.assertTrue(all(m[1] and m[1] <= h0 for m in ms.values()))
        b = self.session(self.n2, "CONDSTORE")
        self.ok(b, "s", "SELECT INBOX")
        out = self.ok(b, "g", "STORE 2 +FLAGS (\\Seen)")
        (flags, m2), = fetches(out).values()
        self.assertEqual(flags, ["\\Seen"])
        self.assertGreater(m2, h0)
        # Only message 2 changed since h0, seen from the other node.
        out = self.ok(a, "h", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % h0)
        got = fetches(out)
        self.assertEqual(list(got), [2], out)
        self.assertEqual(got[2], (["\\Seen"], m2))
        # UNCHANGEDSINCE: message 2 changed after h0, message 1 did not.
        out = a.cmd("i", "UID STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS "
                    "(\\Flagged)" % h0)
        self.assertRegex(out[-1], r"^i OK \[MODIFIED 2\]", out)
        self.assertEqual(fetches(out)[1][0], ["\\Flagged"])
        # SEARCH MODSEQ: what changed at or after m2.
        out = self.ok(a, "j", "UID SEARCH MODSEQ %d" % m2)
        m = re.match(r"\* SEARCH ([\d ]+) \(MODSEQ (\d+)\)", out[0])
        self.assertEqual(sorted(map(int, m.group(1).split())), [1, 2], out)
        # the \Seen a FETCH of the body sets is a change the other node
        # sees with a new mod-sequence
        h1 = status_highest(self.ok(b, "k", "STATUS INBOX (HIGHESTMODSEQ)"))
        self.ok(a, "l", "FETCH 3 (BODY[])")
        out = self.ok(b, "m", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % h1)
        got = fetches(out)
        self.assertIn(3, got, out)
        self.assertEqual(got[3][0], ["\\Seen"])
        self.assertGreater(got[3][1], h1)

    def test_with_keywords_esearch_status_and_list_status(self):
        """What main's IMAP gained, with mod-sequences: a keyword STORE is
        a flag change (a new mod-sequence, seen on the other node with
        the keyword), ESEARCH tells MODSEQ, STATUS and LIST-STATUS take
        HIGHESTMODSEQ beside DELETED-STORAGE."""
        self.deliver_n(2)
        a = self.session(self.n1, "CONDSTORE")
        caps = self.ok(a, "c", "CAPABILITY")[0]
        for cap in ("CONDSTORE", "QRESYNC", "SORT", "THREAD=REFERENCES",
                    "ESEARCH", "LIST-STATUS", "BINARY", "QUOTA"):
            self.assertIn(" " + cap, caps)
        h0 = highest(self.ok(a, "s", "SELECT INBOX"))
        out = self.ok(a, "k", "STORE 1 +FLAGS ($Label1)")
        (flags, m1), = fetches(out).values()
        self.assertEqual(flags, ["$Label1"])
        self.assertGreater(m1, h0)
        b = self.session(self.n2, "CONDSTORE")
        self.ok(b, "s", "SELECT INBOX")
        got = fetches(self.ok(b, "f",
                              "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % h0))
        self.assertEqual(got, {1: (["$Label1"], m1)})
        # UNCHANGEDSINCE holds for keywords as for system flags
        out = b.cmd("u", "UID STORE 1:2 (UNCHANGEDSINCE %d) -FLAGS "
                    "($Label1)" % h0)
        self.assertRegex(out[-1], r"^u OK \[MODIFIED 1\]", out)
        out = self.ok(b, "e", "UID SEARCH RETURN (ALL COUNT) MODSEQ %d" % m1)
        self.assertRegex(out[0], r'^\* ESEARCH \(TAG "e"\) UID COUNT 1 '
                         r'ALL 1 MODSEQ %d$' % m1)
        out = self.ok(b, "t", "STATUS INBOX (HIGHESTMODSEQ DELETED-STORAGE)")
        self.assertRegex(out[0], r"HIGHESTMODSEQ %d DELETED-STORAGE 0\)"
                         % m1)
        out = self.ok(b, "l", 'LIST "" "INBOX" RETURN (STATUS '
                      "(MESSAGES HIGHESTMODSEQ))")
        self.assertIn('* STATUS "INBOX" (MESSAGES 2 HIGHESTMODSEQ %d)' % m1,
                      out)

    def test_concurrent_changes_on_two_nodes_get_distinct_modseqs(self):
        self.deliver_n(5)
        a = self.session(self.n1, "CONDSTORE")
        b = self.session(self.n2, "CONDSTORE")
        h0 = highest(self.ok(a, "s", "SELECT INBOX"))
        self.ok(b, "s", "SELECT INBOX")
        told = {}

        def flip(r, name, flag):
            # each STORE a real change: +, then -, then + on 1..5
            got = []
            for j in range(15):
                op = "+" if (j // 5) % 2 == 0 else "-"
                uid = j % 5 + 1
                out = r.cmd("t%d" % j, "UID STORE %d %sFLAGS (%s)"
                            % (uid, op, flag))
                # its own answer comes first; the other's change may follow
                mine = [x for x in out if "UID %d " % uid in x][:1]
                got.append((out[-1], fetches(mine)))
            told[name] = got

        threads = [threading.Thread(target=flip, args=(a, "a", "\\Seen")),
                   threading.Thread(target=flip, args=(b, "b", "\\Flagged"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        modseqs = []
        for name, got in told.items():
            for tagged, f in got:
                self.assertRegex(tagged, r"^t\d+ OK", name)
                (flags, m), = f.values()
                modseqs.append(m)
        self.assertEqual(len(modseqs), 30)
        self.assertEqual(len(set(modseqs)), 30, sorted(modseqs))
        self.assertGreater(min(modseqs), h0)
        # both nodes tell the same, once synced (a FETCH tells the flags
        # and mod-sequences of the session's last sync, together)
        self.ok(a, "n", "NOOP")
        self.ok(b, "n", "NOOP")
        fa = fetches(self.ok(a, "f", "UID FETCH 1:* (FLAGS MODSEQ)"))
        fb = fetches(self.ok(b, "f", "UID FETCH 1:* (FLAGS MODSEQ)"))
        self.assertEqual(fa, fb)
        self.assertEqual(max(m for _, m in fa.values()), max(modseqs))
        for uid, (flags, _) in fa.items():
            self.assertEqual(flags, ["\\Flagged", "\\Seen"], uid)
        self.assertEqual(
            status_highest(self.ok(a, "h", "STATUS INBOX (HIGHESTMODSEQ)")),
            status_highest(self.ok(b, "h", "STATUS INBOX (HIGHESTMODSEQ)")))

    def test_qresync_on_the_other_node_gets_exactly_the_changes(self):
        self.deliver_n(6)
        # The client's last session, on node 1: it knows all six.
        old = self.session(self.n1, "QRESYNC")
        out = self.ok(old, "s", "SELECT INBOX")
        uidvalidity = int(re.search(r"UIDVALIDITY (\d+)",
                                    " ".join(out)).group(1))
        known = highest(out)
        old.close()
        # Meanwhile, on node 1: flags of 2 and 5 change, 3 and 4 go.
        a = self.session(self.n1)
        self.ok(a, "s", "SELECT INBOX")
        self.ok(a, "f", "STORE 2 +FLAGS (\\Answered)")
        self.ok(a, "g", "STORE 5 +FLAGS (\\Seen)")
        self.ok(a, "h", "STORE 3:4 +FLAGS (\\Deleted)")
        self.ok(a, "i", "EXPUNGE")
        # The client comes back on node 2.
        b = self.session(self.n2, "QRESYNC")
        out = self.ok(b, "s", "SELECT INBOX (QRESYNC (%d %d 1:6))"
                      % (uidvalidity, known))
        vanished = [line for line in out if "VANISHED" in line]
        self.assertEqual(vanished, ["* VANISHED (EARLIER) 3:4"], out)
        got = fetches(out)
        self.assertEqual(sorted(got), [2, 5], out)
        self.assertEqual(got[2][0], ["\\Answered"])
        self.assertEqual(got[5][0], ["\\Seen"])
        # UID FETCH ... (CHANGEDSINCE known VANISHED) tells the same.
        out = self.ok(b, "t", "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d "
                      "VANISHED)" % known)
        self.assertIn("* VANISHED (EARLIER) 3:4", out)
        self.assertEqual(sorted(fetches(out)), [2, 5], out)
        # Expunges now come as VANISHED, not EXPUNGE, to this session.
        self.ok(a, "j", "STORE 1 +FLAGS (\\Deleted)")
        self.ok(a, "k", "EXPUNGE")
        out = self.ok(b, "n", "NOOP")
        self.assertIn("* VANISHED 1", out)
        self.assertFalse([x for x in out if x.endswith("EXPUNGE")], out)

    def forgotten_expunges(self):
        """Expunges the log no longer remembers (past its bound, the
        snapshot keeps the last 10,000): VANISHED (EARLIER) names every
        known UID that is not there."""
        self.deliver_n(3)  # UIDs 1 to 5
        a = self.session(self.n1, "QRESYNC")
        out = self.ok(a, "s", "SELECT INBOX")
        uv = int(re.search(r"UIDVALIDITY (\d+)", " ".join(out)).group(1))
        h0 = highest(out)
        self.ok(a, "d", "UID STORE 2,4 +FLAGS.SILENT (\\Deleted)")
        self.ok(a, "e", "EXPUNGE")
        mods = fetches(self.ok(a, "f", "UID FETCH 1:* (MODSEQ)"))
        box = os.path.dirname(os.path.dirname(
            self.maildir("alice@example.test")[0]))
        path = os.path.join(box, "mailswitch-modseq")
        with open(path) as f:
            last = f.read().splitlines()[-1].split()
        modseq, uidnext = int(last[0]), int(last[1])
        # the snapshot a compaction that dropped both expunges writes
        snap = "S %d %d %d\n" % (modseq - uidnext, uidnext, modseq)
        snap += "".join("= %d %d\n" % (m[1], uid)
                        for uid, m in sorted(mods.items()))
        with open(path + ".tmp", "w") as f:
            f.write(snap)
        os.rename(path + ".tmp", path)
        b = self.session(self.n2, "QRESYNC")
        out = self.ok(b, "s", "SELECT INBOX (QRESYNC (%d %d 1:5))"
                      % (uv, h0))
        self.assertIn("* VANISHED (EARLIER) 2,4", out)
        self.assertEqual(fetches(out), {}, out)
        self.assertEqual(highest(out), highest(
            self.ok(a, "g", "SELECT INBOX")))

    def test_qresync_rules_and_imaplib(self):
        self.deliver_n(2)
        # QRESYNC needs ENABLE QRESYNC first
        a = self.session(self.n2)
        out = a.cmd("s", "SELECT INBOX (QRESYNC (1 1))")
        self.assertRegex(out[-1], r"^s BAD")
        # another UIDVALIDITY: nothing more than a plain SELECT
        b = self.session(self.n2, "QRESYNC")
        out = self.ok(b, "s", "SELECT INBOX (QRESYNC (1 1))")
        self.assertFalse([x for x in out if "VANISHED" in x or
                          "FETCH" in x], out)
        self.forgotten_expunges()
        # Python's imaplib
        c = imaplib.IMAP4("127.0.0.1", self.n2.ports["imap"])
        self.addCleanup(c.logout)
        c.login("alice@example.test", "demo")
        typ, data = c.enable("CONDSTORE")
        self.assertEqual(typ, "OK")
        typ, data = c.select("INBOX")
        self.assertEqual(typ, "OK")
        typ, data = c.fetch("1:2", "(MODSEQ)")
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0].decode(), r"^1 \(MODSEQ \(\d+\)\)")
