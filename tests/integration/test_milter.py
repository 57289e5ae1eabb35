"""[node] milters (issue 16): the node hands each MX message to milters
(the Sendmail milter protocol, as Postfix speaks it) before answering
the final dot. A scripted milter covers each action and a milter that
hangs; a real rspamd (Debian's package, milter mode, no network) refuses
GTUBE, adds its headers to clean mail, and once stopped lets
milter_default_action decide."""
import os
import smtplib
import struct
import subprocess
import unittest
import urllib.request

from lbdtest import free_port, wait_for
from miltertest import Rspamd, RSPAMD, ScriptedMilter, z
from nodetest import MAILNODE, NodeTestCase
from wire import Lines

CLEAN = (b"From: carol@remote.test\r\nTo: alice@example.test\r\n"
         b"Subject: hello\r\nX-Old: one\r\nX-Old: two\r\n\r\n"
         b"Hi Alice,\r\nsee you.\r\n")
GTUBE = (b"From: carol@remote.test\r\nTo: alice@example.test\r\n"
         b"Subject: test\r\n\r\n"
         b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL"
         b"*C.34X\r\n")


def idx(i):
    return struct.pack("!I", i)


class MilterCase(NodeTestCase):
    def node_with(self, milters, extra=""):
        """A node with these milters; 2 s per step: a hung milter costs
        that much, and a scripted one answers in far less even on a
        loaded machine."""
        return self.node(listen=("smtp", "submission", "metrics"), tls=False,
                         extra_node="milters = %s\nmilter_timeout_s = 2\n%s"
                         % (milters, extra))

    def send(self, node, body=CLEAN, rcpts=("alice@example.test",)):
        """Sends; returns (code, text) of the answer to the final dot."""
        c = smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=10)
        try:
            c.ehlo("client.remote.test")
            c.mail("carol@remote.test")
            for r in rcpts:
                c.rcpt(r)
            code, text = c.data(body)
            c.rset()  # the session goes on after the verdict
            return code, text.decode()
        finally:
            c.close()

    def junk(self, address):
        """The message files of address's Junk folder."""
        local, domain = address.split("@")
        found = []
        for root, dirs, files in os.walk(os.path.join(self.store, domain)):
            parts = root.split(os.sep)
            if parts[-3:-1] == [local, ".Junk"] and parts[-1] in ("new",
                                                                   "cur"):
                found += [os.path.join(root, f) for f in files]
        return found

    def inbox(self, address):
        return self.maildir(address)

    def metric(self, node, line):
        url = "http://127.0.0.1:%d/metrics" % node.ports["metrics"]
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        for l in text.splitlines():
            if l.startswith(line + " "):
                return float(l.split()[-1])
        return None


class ScriptedMilterTest(MilterCase):
    def scripted(self, **kw):
        m = ScriptedMilter(**kw)
        self.addCleanup(m.stop)
        return m

    def test_accept_sees_the_message_as_postfix_sends_it(self):
        m = self.scripted()
        n = self.node_with("inet:127.0.0.1:%d" % m.port)
        code, _ = self.send(n, rcpts=("alice@example.test", "team@example.test"))
        self.assertEqual(code, 250)
        s = m.seen[0]
        cmds = [c for c in s["cmds"] if c != b"D"]  # macros before steps
        self.assertEqual(cmds[:7], [b"O", b"C", b"H", b"M", b"R", b"R",
                                    b"T"])
        self.assertEqual(cmds[-3:], [b"N", b"B", b"E"])
        self.assertEqual(s["mail"], "<carol@remote.test>")
        self.assertEqual(s["rcpts"], ["<alice@example.test>",
                                      "<team@example.test>"])
        self.assertIn(("Subject", "hello"), s["headers"])
        self.assertEqual(s["body"], b"Hi Alice,\r\nsee you.\r\n")
        self.assertEqual(s["macros"]["{client_addr}"], "127.0.0.1")
        self.assertEqual(s["macros"]["{daemon_name}"], "smtp")
        self.assertTrue(s["macros"]["i"])
        self.assertEqual(len(self.inbox("alice@example.test")), 1)
        self.assertEqual(self.metric(
            n, 'mailnode_milter_results_total{result="accept"}'), 1)

    def test_verdicts_answer_the_dot_and_store_nothing(self):
        # one node, one milter whose script changes between messages
        m = self.scripted()
        n = self.node_with("inet:127.0.0.1:%d" % m.port)
        for script, want in (
                ({"eob": [(b"r", b"")]},
                 (550, "5.7.1 Message content rejected")),
                ({"eob": [(b"t", b"")]},
                 (451, "4.7.1 Service unavailable - try again later")),
                ({b"R": (b"r", b"")},  # at RCPT: the whole message
                 (550, "5.7.1 Message content rejected")),
                ({"eob": [(b"p", b""), (b"y", z("554 5.7.1 Not today"))]},
                 (554, "5.7.1 Not today")),
                ({b"M": (b"y", z("421 4.7.0 Later"))},
                 (421, "4.7.0 Later")),
                ({"hang": True},  # milter_timeout_s, then the default
                 (451, "4.7.1 Service unavailable - try again later")),
                ({"eob": [(b"d", b"")]}, None)):
            m.script = script
            m.hang = script.get("hang", False)
            code, text = self.send(n)
            if want is None:  # discard: a 250 that keeps nothing
                self.assertEqual(code, 250)
            else:
                self.assertEqual((code, text), want)
        self.assertEqual(self.maildir("alice@example.test"), [])
        for result, count in (("reject", 3), ("tempfail", 3),
                              ("discard", 1), ("accept", 0)):
            self.assertEqual(self.metric(
                n, 'mailnode_milter_results_total{result="%s"}' % result),
                count, result)
        self.assertEqual(self.metric(n, "mailnode_milter_unavailable_total"),
                         1)

    def test_header_edits_are_applied_in_order(self):
        m = self.scripted(script={"eob": [
            (b"h", z("X-Added", "yes")),
            (b"i", idx(0) + z("X-First", "top")),
            (b"m", idx(2) + z("X-Old", "changed")),
            (b"m", idx(1) + z("X-Old", "")),         # deleted
            (b"h", z("X-Folded", "a\n\tb")),
            (b"c", b"")]})
        n = self.node_with("inet:127.0.0.1:%d" % m.port)
        self.assertEqual(self.send(n)[0], 250)
        msg = self.messages("alice@example.test")[0]
        head = msg.split(b"\r\n\r\n")[0]
        # the node's own Return-Path: and Received: come first
        fields = head.split(b"X-First: top\r\n")[1]
        self.assertTrue(fields.startswith(b"From: carol@remote.test\r\n"))
        self.assertIn(b"X-Old: changed\r\nX-Added: yes\r\n"
                      b"X-Folded: a\r\n\tb", fields)
        self.assertNotIn(b"X-Old: one", head)
        self.assertTrue(msg.endswith(b"\r\n\r\nHi Alice,\r\nsee you.\r\n"))

    def test_body_replaced_and_seen_by_the_next_milter(self):
        first = self.scripted(script={"eob": [
            (b"b", b"new body\nline"), (b"b", b" two\r\n"), (b"a", b"")]})
        second = self.scripted()
        n = self.node_with("%s, %s" % (first.where, second.where))
        self.assertEqual(self.send(n)[0], 250)
        self.assertEqual(second.seen[0]["body"],
                         b"new body\r\nline two\r\n")
        msg = self.messages("alice@example.test")[0]
        self.assertTrue(msg.endswith(b"X-Old: two\r\n\r\n"
                                     b"new body\r\nline two\r\n"), msg)
        # a milter that stops halfway through its new body: 451, even
        # with milter_default_action = accept
        n.stop()
        first.script = {"eob": [(b"b", b"half"), None]}
        n = self.node_with(first.where, "milter_default_action = accept\n")
        self.assertEqual(self.send(n)[0], 451)
        self.assertEqual(len(self.maildir("alice@example.test")), 1)

    def test_spam_mark_files_into_junk(self):
        m = self.scripted(script={"eob": [(b"h", z("X-Spam", "Yes")),
                                          (b"a", b"")]},
                          unix=os.path.join(self.tmp, "milter.sock"))
        n = self.node_with(m.where, "spam_to_junk = yes\n")
        self.assertEqual(self.send(n)[0], 250)
        self.assertEqual(len(self.junk("alice@example.test")), 1)
        self.assertEqual(self.inbox("alice@example.test"), [])
        self.assertEqual(self.metric(
            n, 'mailnode_milter_results_total{result="junk"}'), 1)
        # \Junk through the folder's name; subscribed
        userdir = os.path.dirname(os.path.dirname(os.path.dirname(
            self.junk("alice@example.test")[0])))
        with open(os.path.join(userdir, "subscriptions")) as f:
            self.assertIn("Junk", f.read().split())

    def test_steps_without_answers_and_skipped_steps(self):
        # NR_HDR | NR_BODY | NOHELO: headers and body sent without waiting
        m = self.scripted(steps=0x80 | 0x80000 | 0x02)
        n = self.node_with("inet:127.0.0.1:%d" % m.port)
        body = CLEAN + (b"x" * 998 + b"\r\n") * 200
        self.assertEqual(self.send(n, body=body)[0], 250)
        s = m.seen[0]
        self.assertNotIn(b"H", s["cmds"])
        self.assertEqual(len(s["body"]), len(body.split(b"\r\n\r\n", 1)[1]))
        self.assertEqual(len(self.maildir("alice@example.test")), 1)

    def test_chain_goes_on_after_an_accept_past_one_away_and_one_hung(self):
        first, hung, second = self.scripted(), self.scripted(hang=True), \
            self.scripted(script={"eob": [(b"h", z("X-Second", "1")),
                                          (b"c", b"")]})
        away = free_port()
        n = self.node_with(", ".join("inet:127.0.0.1:%d" % p for p in (
            first.port, hung.port, away, second.port)),
            "milter_default_action = accept\n")
        self.assertEqual(self.send(n)[0], 250)
        self.assertEqual((len(first.seen), len(hung.seen)), (1, 1))
        self.assertIn(b"X-Second: 1", self.messages("alice@example.test")[0])
        self.assertEqual(self.metric(n, "mailnode_milter_unavailable_total"),
                         2)

    def test_submission_only_with_milter_submission(self):
        m = self.scripted(script={"eob": [(b"r", b"")]})
        n = self.node_with("inet:127.0.0.1:%d" % m.port,
                           "allow_plaintext_auth = yes\n")
        c = smtplib.SMTP("127.0.0.1", n.ports["submission"], timeout=10)
        c.login("alice@example.test", "demo")
        c.sendmail("alice@example.test", ["bob@example.test"], CLEAN)
        c.quit()
        self.assertEqual(m.seen, [])
        n.stop()
        n = self.node_with("inet:127.0.0.1:%d" % m.port,
                           "allow_plaintext_auth = yes\n"
                           "milter_submission = yes\n")
        c = smtplib.SMTP("127.0.0.1", n.ports["submission"], timeout=10)
        c.login("alice@example.test", "demo")
        with self.assertRaises(smtplib.SMTPDataError) as e:
            c.sendmail("alice@example.test", ["bob@example.test"], CLEAN)
        c.close()
        self.assertEqual(e.exception.smtp_code, 550)
        self.assertEqual(m.seen[0]["macros"]["{auth_authen}"],
                         "alice@example.test")


    def test_client_gone_while_the_milters_run(self):
        # the hung milter holds the message; the client leaves at once,
        # with QUIT pipelined behind its dot
        m = self.scripted(hang=True)
        n = self.node_with(m.where)
        c = Lines(n.ports["smtp"])
        c.send(b"EHLO c\r\nMAIL FROM:<carol@remote.test>\r\n"
               b"RCPT TO:<alice@example.test>\r\nDATA\r\n")
        for _ in range(4 + 8):  # the EHLO lines, 250, 250, 354
            if c.line().startswith("354"):
                break
        c.send(CLEAN + b".\r\nQUIT\r\n")
        c.close()
        wait_for(lambda: len(m.seen) == 1, 5, what="milter connection")
        m.hang = False
        self.assertEqual(self.send(n)[0], 250)  # the node goes on
        self.assertIsNone(n.proc.poll())
        self.assertEqual(len(self.maildir("alice@example.test")), 1)

    def test_config_errors_name_file_line_and_key(self):
        n = self.node(start=False)
        with open(n.path) as f:
            good = f.read()
        for value, why in (
                ("milters = tcp:1.2.3.4:5", "not unix:PATH or inet:HOST:PORT"),
                ("milters = unix:relative.sock", "absolute path"),
                ("milters = inet:example.test:11332", "milters:"),
                ("milters = " + ",".join(["inet:127.0.0.1:1"] * 9),
                 "more than 8 milters"),
                ("milter_default_action = reject", '"reject" is not one of tempfail, accept'),
                ("milter_timeout_s = 0", "milter_timeout_s"),
                ("spam_to_junk = maybe", "spam_to_junk")):
            text = good.replace("[node]\n", "[node]\n%s\n" % value, 1)
            with open(n.path, "w") as f:
                f.write(text)
            r = subprocess.run([MAILNODE, "-t", "-c", n.path],
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 2, value)
            self.assertIn("%s:2: " % n.path, r.stderr)
            self.assertIn(why, r.stderr)


@unittest.skipUnless(os.path.exists(RSPAMD), "rspamd is not installed "
                     "(scripts/install-deps.sh --test installs it)")
class RspamdTest(MilterCase):
    @classmethod
    def setUpClass(cls):
        cls.rspamd = Rspamd().start()

    @classmethod
    def tearDownClass(cls):
        cls.rspamd.cleanup()

    def milters(self):
        return "inet:127.0.0.1:%d" % self.rspamd.port

    def test_1_gtube_is_refused(self):
        n = self.node_with(self.milters())
        code, text = self.send(n, body=GTUBE)
        self.assertTrue(500 <= code < 600, (code, text, self.rspamd.log()))
        self.assertEqual(self.maildir("alice@example.test"), [])

    def test_2_clean_mail_gets_rspamd_headers(self):
        n = self.node_with(self.milters(), "spam_to_junk = yes\n")
        code, text = self.send(n)
        self.assertEqual(code, 250, (text, self.rspamd.log()))
        self.assertEqual(len(self.inbox("alice@example.test")), 1)
        msg = self.messages("alice@example.test")[0]
        self.assertIn(b"X-Spamd-Result: default: False", msg)

    def test_3_stopped_rspamd_gets_the_default_action(self):
        self.rspamd.stop()
        n = self.node_with(self.milters())
        self.assertEqual(self.send(n)[0], 451)
        n.stop()
        n = self.node_with(self.milters(), "milter_default_action = accept\n")
        self.assertEqual(self.send(n)[0], 250)
        self.assertEqual(len(self.maildir("alice@example.test")), 1)


if __name__ == "__main__":
    unittest.main()
