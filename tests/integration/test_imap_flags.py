"""IMAP flag changes over one shared store, for real: two nodes, one
redis-server, sessions that do not know what the others just did.
+FLAGS and -FLAGS apply to the flags as they are on the store at that
moment, so no session's change is lost to another's stale view, and
every session hears the result."""
import random
import re
import threading
import time

from nodetest import NodeTestCase
from test_imap import simple
from wire import Lines

LISTEN = ("smtp", "imap")
FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")


def flags_of(lines, seq):
    """The flags the last untagged FETCH of message seq tells, or None."""
    told = None
    for line in lines:
        m = re.match(r"\* %d FETCH \(.*FLAGS \(([^)]*)\)" % seq, line)
        if m:
            told = sorted(f for f in m.group(1).split() if f != "\\Recent")
    return told


class ImapFlagsTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        extra = "allow_plaintext_auth = yes\n"
        self.n1 = self.node("mail1", listen=LISTEN, extra_node=extra)
        self.n2 = self.node("mail2", listen=LISTEN, extra_node=extra)

    def session(self, node):
        r = Lines(node.ports["imap"])
        self.addCleanup(r.close)
        self.assertRegex(r.cmd("a", "LOGIN alice@example.test demo")[-1],
                         r"^a OK")
        self.assertRegex(r.cmd("b", "SELECT INBOX")[-1], r"^b OK")
        return r

    def ok(self, r, tag, text):
        out = r.cmd(tag, text)
        self.assertRegex(out[-1], r"^%s OK" % tag, out)
        return out

    def two_sessions_lose_nothing(self, na, nb):
        self.deliver(self.n1, simple("one"))
        a, b = self.session(na), self.session(nb)
        self.ok(a, "c", "STORE 1 +FLAGS (\\Seen)")
        self.ok(b, "d", "NOOP")  # b knows \Seen, and no more
        out = self.ok(a, "e", "STORE 1 +FLAGS (\\Answered)")
        self.assertEqual(flags_of(out, 1), ["\\Answered", "\\Seen"])
        # b, not told of \Answered yet, takes \Seen away: \Answered stays.
        out = self.ok(b, "f", "STORE 1 -FLAGS (\\Seen)")
        self.assertEqual(flags_of(out, 1), ["\\Answered"])
        out = self.ok(a, "g", "NOOP")
        self.assertEqual(flags_of(out, 1), ["\\Answered"])
        out = self.ok(a, "h", "FETCH 1 (FLAGS)")
        self.assertEqual(flags_of(out, 1), ["\\Answered"])

    def test_stale_session_keeps_the_others_flag_on_one_node(self):
        self.two_sessions_lose_nothing(self.n1, self.n1)

    def test_stale_session_keeps_the_others_flag_on_two_nodes(self):
        self.two_sessions_lose_nothing(self.n1, self.n2)

    def test_silent_store_tells_flags_it_did_not_expect(self):
        self.deliver(self.n1, simple("one"))
        a, b = self.session(self.n1), self.session(self.n2)
        self.ok(a, "c", "STORE 1 +FLAGS.SILENT (\\Flagged)")
        # b expected () and gets (\Flagged): told, though silent.
        out = self.ok(b, "d", "STORE 1 -FLAGS.SILENT (\\Seen)")
        self.assertEqual(flags_of(out, 1), ["\\Flagged"])
        # Nothing unexpected: nothing told.
        out = self.ok(b, "e", "STORE 1 +FLAGS.SILENT (\\Seen)")
        self.assertIsNone(flags_of(out, 1), out)

    def test_fetch_setting_seen_keeps_the_others_flag(self):
        self.deliver(self.n1, simple("one"))
        a, b = self.session(self.n1), self.session(self.n2)
        self.ok(a, "c", "STORE 1 +FLAGS (\\Flagged)")
        self.ok(b, "d", "FETCH 1 (BODY[TEXT])")  # sets \Seen
        out = self.ok(a, "e", "FETCH 1 (FLAGS)")
        self.assertEqual(flags_of(out, 1), ["\\Flagged", "\\Seen"])

    def test_idle_on_the_other_node_hears_the_flags_as_stored(self):
        self.deliver(self.n1, simple("one"))
        a, b, c = (self.session(n) for n in (self.n1, self.n1, self.n2))
        self.ok(a, "c", "STORE 1 +FLAGS (\\Seen)")
        self.ok(b, "d", "NOOP")
        self.ok(c, "d", "NOOP")
        self.ok(a, "e", "STORE 1 +FLAGS (\\Answered)")
        c.send("f IDLE\r\n")
        line = c.line()
        if line.startswith("* 1 FETCH"):  # heard before IDLE began
            self.assertTrue(c.line().startswith("+ "))
        else:
            self.assertTrue(line.startswith("+ "), line)
            self.assertEqual(flags_of([c.line()], 1),
                             ["\\Answered", "\\Seen"])
        t0 = time.monotonic()
        self.ok(b, "g", "STORE 1 -FLAGS.SILENT (\\Seen)")
        line = c.line()
        took = time.monotonic() - t0
        self.assertEqual(flags_of([line], 1), ["\\Answered"], line)
        self.assertLess(took, 1.0)
        c.send("DONE\r\n")
        self.assertRegex(c.until("f")[-1], r"^f OK")

    def test_store_of_a_message_expunged_elsewhere_is_expungeissued(self):
        for i in range(2):
            self.deliver(self.n1, simple("m%d" % i))
        a, b = self.session(self.n1), self.session(self.n2)
        self.ok(a, "c", "STORE 1 +FLAGS.SILENT (\\Deleted)")
        self.ok(a, "d", "EXPUNGE")
        # b does not know: the file is gone when it renames it.
        out = b.cmd("e", "STORE 1:2 +FLAGS (\\Flagged)")
        self.assertRegex(out[-1], r"^e NO \[EXPUNGEISSUED\]", out)
        self.assertEqual(flags_of(out, 2), ["\\Flagged"])
        self.assertNotIn("EXPUNGE", "".join(out[:-1]))  # not during STORE
        # Known gone now, still not told: the same.
        out = b.cmd("f", "STORE 1 +FLAGS (\\Flagged)")
        self.assertRegex(out[-1], r"^f NO \[EXPUNGEISSUED\]", out)
        out = self.ok(b, "g", "UID STORE 1:* +FLAGS (\\Seen)")
        self.assertIn("* 1 EXPUNGE", out)

    def test_many_sessions_on_two_nodes_add_and_remove_different_flags(self):
        """Ten sessions, five on each node, each owning one flag on half
        of the messages, add and remove it at random on several messages
        at once, never told of the others' changes before they store; at
        the end every message carries exactly the flags whose owner last
        added them."""
        nmsg, ops, deadline = 6, 40, time.monotonic() + 120
        for i in range(nmsg):
            self.deliver(self.n1 if i % 2 else self.n2, simple("m%d" % i))
        owners = [(flag, half) for flag in FLAGS for half in (0, 1)]
        sessions = [self.session(self.n1 if half else self.n2)
                    for _, half in owners]
        want = {seq: set() for seq in range(1, nmsg + 1)}
        errors = []

        def worker(k):
            flag, half = owners[k]
            r, rnd = sessions[k], random.Random(1000 + k)
            mine = [s for s in range(1, nmsg + 1) if s % 2 == half]
            try:
                for i in range(ops):
                    if time.monotonic() > deadline:
                        errors.append("%s/%d: out of time" % (flag, half))
                        return
                    seqs = rnd.sample(mine, rnd.randint(1, len(mine)))
                    add = rnd.random() < 0.5
                    out = r.cmd("s%d" % i, "STORE %s %sFLAGS (%s)" % (
                        ",".join(map(str, seqs)), "+" if add else "-", flag))
                    if not out[-1].startswith("s%d OK" % i):
                        errors.append(out[-1])
                        return
                    for s in seqs:
                        (want[s].add if add else want[s].discard)(flag)
                        got = flags_of(out, s)
                        if got is None or (flag in got) != add:
                            errors.append("%s/%d: STORE %d told %s" % (
                                flag, half, s, got))
            except Exception as e:  # a thread's failure, told below
                errors.append("%s/%d: %r" % (flag, half, e))

        threads = [threading.Thread(target=worker, args=(k,))
                   for k in range(len(owners))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assertEqual(errors, [])
        for node in (self.n1, self.n2):
            out = self.ok(self.session(node), "z", "FETCH 1:* (FLAGS)")
            got = {s: flags_of(out, s) for s in want}
            self.assertEqual(got, {s: sorted(f) for s, f in want.items()})


if __name__ == "__main__":
    import unittest
    unittest.main()
