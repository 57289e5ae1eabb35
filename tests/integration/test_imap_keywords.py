"""IMAP keywords and \\Recent over one shared store, for real: two nodes,
one redis-server. Keywords are kept as Dovecot keeps them (a
dovecot-keywords file per mailbox, letters a-z after the flags in the
file name), so a file Dovecot named is read right; keywords two nodes add
at once both stay; a 27th keyword is refused with [LIMIT]. A message is
\\Recent in exactly one session, whichever node the others are on."""
import json
import os
import re
import threading

from nodetest import NodeTestCase
from test_http_api import request
from test_imap import simple
from test_imap_flags import flags_of
from wire import Lines

LISTEN = ("smtp", "imap", "http")


class ImapKeywordsTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        extra = "allow_plaintext_auth = yes\n"
        self.n1 = self.node("mail1", listen=LISTEN, extra_node=extra)
        self.n2 = self.node("mail2", listen=LISTEN, extra_node=extra)

    def session(self, node, select="INBOX"):
        r = Lines(node.ports["imap"])
        self.addCleanup(r.close)
        self.ok(r, "a", "LOGIN alice@example.test demo")
        if select:
            r.selected = self.ok(r, "b", "SELECT " + select)
        return r

    def ok(self, r, tag, text):
        out = r.cmd(tag, text)
        self.assertRegex(out[-1], r"^%s OK" % tag, out)
        return out

    def inbox(self):
        """alice's Maildir: STORE/example.test/h1/h2/alice."""
        for root, dirs, _ in os.walk(os.path.join(self.store,
                                                  "example.test")):
            if os.path.basename(root) == "alice" and "cur" in dirs:
                return root
        self.fail("no Maildir for alice")

    def keyword_lines(self, box=None):
        path = os.path.join(self.inbox() if box is None else box,
                            "dovecot-keywords")
        with open(path) as f:
            return [line.split(" ", 1) for line in f.read().splitlines()]

    def cur_names(self, box=None):
        return sorted(os.listdir(os.path.join(
            self.inbox() if box is None else box, "cur")))

    def test_stored_fetched_searched_and_kept_as_dovecot_does(self):
        for i in range(3):
            self.deliver(self.n1, simple("m%d" % i))
        a = self.session(self.n1)
        self.assertTrue(any("PERMANENTFLAGS" in l and "\\*" in l
                            for l in a.selected), a.selected)
        out = self.ok(a, "c", "STORE 1:2 +FLAGS ($Forwarded $Junk)")
        self.assertEqual(flags_of(out, 1), ["$Forwarded", "$Junk"])
        self.assertTrue(any(re.match(r"\* FLAGS \(.*\$Forwarded \$Junk\)",
                                     l) for l in out), out)
        self.assertEqual(self.keyword_lines(),
                         [["0", "$Forwarded"], ["1", "$Junk"]])
        names = self.cur_names()
        self.assertEqual(sum(n.endswith(":2,ab") for n in names), 2, names)
        # another node: FETCH, SEARCH KEYWORD and UNKEYWORD, FLAGS
        b = self.session(self.n2)
        self.assertTrue(any(re.match(r"\* FLAGS \(.*\$Forwarded \$Junk\)",
                                     l) for l in b.selected), b.selected)
        out = self.ok(b, "c", "FETCH 1:3 (FLAGS)")
        self.assertEqual(flags_of(out, 2), ["$Forwarded", "$Junk"])
        self.assertEqual(flags_of(out, 3), [])
        out = self.ok(b, "d", "SEARCH KEYWORD $junk")
        self.assertIn("* SEARCH 1 2", out)
        out = self.ok(b, "e", "SEARCH UNKEYWORD $Junk")
        self.assertIn("* SEARCH 3", out)
        out = self.ok(b, "f", "SEARCH KEYWORD $NotThere")
        self.assertIn("* SEARCH", out)
        out = self.ok(b, "g", "SEARCH UNKEYWORD $NotThere")
        self.assertIn("* SEARCH 1 2 3", out)
        # -FLAGS and FLAGS on the shared state: a's view is stale
        out = self.ok(b, "h", "STORE 1 -FLAGS ($Junk)")
        self.assertEqual(flags_of(out, 1), ["$Forwarded"])
        out = self.ok(a, "i", "STORE 1 +FLAGS (\\Seen)")
        self.assertEqual(flags_of(out, 1), ["$Forwarded", "\\Seen"])
        out = self.ok(a, "j", "STORE 2 FLAGS (\\Flagged $label1)")
        self.assertEqual(flags_of(out, 2), ["$label1", "\\Flagged"])
        out = self.ok(b, "k", "FETCH 2 (FLAGS)")
        self.assertEqual(flags_of(out, 2), ["$label1", "\\Flagged"])
        # APPEND with a keyword
        out = a.cmd("l", "APPEND INBOX (\\Seen $MDNSent) {%d+}\r\n%s" % (
            len(simple("app")), simple("app").decode()))
        self.assertRegex(out[-1], r"^l OK", out)
        self.ok(b, "m0", "NOOP")
        out = self.ok(b, "m", "UID FETCH 4 (FLAGS)")
        self.assertEqual(flags_of(out, 4), ["$MDNSent", "\\Seen"])
        # the API's flags list names them
        st, h, body = request(self.n1, "POST", "/api/login",
                              {"user": "alice@example.test",
                               "password": "demo"})
        token = json.loads(body)["token"]
        st, h, body = request(self.n1, "GET", "/api/messages?mailbox=INBOX",
                              headers={"Authorization": "Bearer " + token})
        self.assertEqual(st, 200, body)
        flags = {m["uid"]: sorted(m["flags"]) for m in json.loads(body)}
        self.assertEqual(flags[2], ["$label1", "\\Flagged"])
        self.assertEqual(flags[4], ["$MDNSent", "\\Seen"])

    def test_a_file_dovecot_named_is_read_right(self):
        self.deliver(self.n1, simple("first"))
        self.session(self.n1)  # INBOX's UIDs exist
        with open(os.path.join(self.inbox(), "dovecot-keywords"), "w") as f:
            f.write("0 $Junk\n1 $label1\n3 NonJunk\nbogus line\n30 $x\n")
        body = simple("from dovecot")
        # e: a letter dovecot-keywords does not name: not shown, kept
        name = "1700000000.M1P2.dovecot,S=%d,W=%d:2,RSbde" % (
            len(body), len(body))
        with open(os.path.join(self.inbox(), "cur", name), "wb") as f:
            f.write(body)
        a = self.session(self.n2)
        out = self.ok(a, "c", "FETCH 2 (FLAGS)")
        self.assertEqual(flags_of(out, 2),
                         ["$label1", "NonJunk", "\\Answered", "\\Seen"])
        self.assertTrue(any(re.match(r"\* FLAGS \(.*\$Junk \$label1 NonJunk"
                                     r"\)", l) for l in a.selected),
                        a.selected)
        # a new keyword takes the first free letter, c
        self.ok(a, "d", "STORE 2 +FLAGS (Work)")
        self.assertIn(["2", "Work"], self.keyword_lines())
        self.assertTrue(any(n.endswith(":2,RSbcde")
                            for n in self.cur_names()), self.cur_names())
        out = self.ok(a, "e", "STORE 2 FLAGS (\\Seen)")
        self.assertEqual(flags_of(out, 2), ["\\Seen"])
        self.assertTrue(any(n.endswith(":2,Se")
                            for n in self.cur_names()), self.cur_names())

    def test_two_nodes_adding_keywords_at_once_both_keep_theirs(self):
        self.deliver(self.n1, simple("one"))
        sessions = [self.session(n) for n in (self.n1, self.n2)]
        errors = []

        def worker(k):
            r = sessions[k]
            try:
                for i in range(10):
                    out = r.cmd("s%d" % i, "STORE 1 +FLAGS (node%d_%d)" %
                                (k, i))
                    if not out[-1].startswith("s%d OK" % i):
                        errors.append(out[-1])
            except Exception as e:  # told below
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(k,))
                   for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        want = sorted("node%d_%d" % (k, i) for k in range(2)
                      for i in range(10))
        self.assertEqual(sorted(n for _, n in self.keyword_lines()), want)
        for r in sessions:
            out = self.ok(r, "z", "FETCH 1 (FLAGS)")
            self.assertEqual(flags_of(out, 1), want)

    def test_more_than_26_keywords_is_a_limit(self):
        self.deliver(self.n1, simple("one"))
        a = self.session(self.n1)
        self.ok(a, "c", "STORE 1 +FLAGS (%s)" %
                " ".join("k%02d" % i for i in range(20)))
        out = a.cmd("d", "STORE 1 +FLAGS (%s)" %
                    " ".join("k%02d" % i for i in range(20, 30)))
        self.assertRegex(out[-1], r"^d NO \[LIMIT\]", out)
        self.assertEqual(len(self.keyword_lines()), 20)  # nothing added
        self.ok(a, "e", "STORE 1 +FLAGS (%s)" %
                " ".join("k%02d" % i for i in range(20, 26)))
        out = a.cmd("f", "STORE 1 +FLAGS (k26)")
        self.assertRegex(out[-1], r"^f NO \[LIMIT\]", out)
        out = a.cmd("g", "APPEND INBOX (k27) {%d+}\r\n%s" % (
            len(simple("x")), simple("x").decode()))
        self.assertRegex(out[-1], r"^g NO \[LIMIT\]", out)
        # known ones still work; PERMANENTFLAGS offers no \* now
        out = self.ok(a, "h", "STORE 1 -FLAGS (k00 k27)")
        self.assertNotIn("k00", flags_of(out, 1))
        out = self.ok(a, "i", "SELECT INBOX")
        perm = [l for l in out if "PERMANENTFLAGS" in l]
        self.assertTrue(perm and "\\*" not in perm[0] and "k25" in perm[0],
                        perm)
        self.ok(a, "j", "STORE 1 +FLAGS (K25)")  # case-insensitive

    def test_copy_and_move_map_keywords_to_the_target(self):
        self.deliver(self.n1, simple("one"))
        a = self.session(self.n1)
        self.ok(a, "c", "CREATE Work")
        self.ok(a, "d", "APPEND Work ($Other) {%d+}\r\n%s" % (
            len(simple("w")), simple("w").decode()))
        self.ok(a, "e", "STORE 1 +FLAGS ($Junk $Keep)")
        self.ok(a, "f", "COPY 1 Work")
        work = os.path.join(self.inbox(), ".Work")
        self.assertEqual(self.keyword_lines(work),
                         [["0", "$Other"], ["1", "$Junk"], ["2", "$Keep"]])
        self.assertTrue(any(n.endswith(":2,bc") for n in self.cur_names(work)),
                        self.cur_names(work))
        b = self.session(self.n2, select="Work")
        out = self.ok(b, "g", "FETCH 2 (FLAGS)")
        self.assertEqual(flags_of(out, 2), ["$Junk", "$Keep"])
        self.ok(a, "h", "MOVE 1 Work")
        self.ok(b, "h2", "NOOP")
        out = self.ok(b, "i", "FETCH 3 (FLAGS)")
        self.assertEqual(flags_of(out, 3), ["$Junk", "$Keep"])

    def test_recent_in_exactly_one_session_across_nodes(self):
        self.deliver(self.n1, simple("one"))
        a = self.session(self.n1)
        self.assertIn("* 1 RECENT", a.selected)
        b = self.session(self.n2)
        self.assertIn("* 0 RECENT", b.selected)
        c = self.session(self.n1)
        self.assertIn("* 0 RECENT", c.selected)
        out = self.ok(a, "c", "FETCH 1 (FLAGS)")
        self.assertIn("\\Recent", out[0])
        # new mail while three sessions have it selected: one gets it
        self.deliver(self.n2, simple("two"))
        told = []
        for r in (b, a, c):
            out = self.ok(r, "d", "NOOP")
            out += self.ok(r, "e", "FETCH 2 (FLAGS)")
            told.append("\\Recent" in " ".join(l for l in out
                                                if "FETCH" in l))
        self.assertEqual(told, [True, False, False])
        out = self.ok(b, "f", "SEARCH RECENT")
        self.assertIn("* SEARCH 2", out)
        # a later SELECT, anywhere, sees none; EXAMINE neither
        for node in (self.n1, self.n2):
            r = self.session(node)
            self.assertIn("* 0 RECENT", r.selected)
        r = self.session(self.n2, select=None)
        out = self.ok(r, "g", "STATUS INBOX (RECENT)")
        self.assertIn('* STATUS "INBOX" (RECENT 0)', out)


if __name__ == "__main__":
    import unittest
    unittest.main()
