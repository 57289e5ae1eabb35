"""mailnode's IMAP4rev1 for real: imaplib against two real nodes over one
store and a real redis-server, mail delivered by smtplib, raw sockets for
what imaplib cannot say (literals, IDLE, garbage)."""
import imaplib
import os
import re
import time
import unittest

from nodetest import NodeTestCase, tls_context
from wire import Lines

LISTEN = ("smtp", "imap", "imaps", "pop3")

MULTIPART = (b"From: Carol <carol@remote.test>\r\n"
             b"To: alice@example.test\r\n"
             b"Subject: =?UTF-8?B?R3LDvMOfZQ==?= parts\r\n"
             b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
             b"Message-ID: <m1@remote.test>\r\n"
             b"MIME-Version: 1.0\r\n"
             b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
             b"\r\n"
             b"--XX\r\n"
             b"Content-Type: text/plain; charset=us-ascii\r\n"
             b"\r\n"
             b"hello body words\r\n"
             b"--XX\r\n"
             b"Content-Type: application/octet-stream; name=\"a.bin\"\r\n"
             b"Content-Transfer-Encoding: base64\r\n"
             b"Content-Disposition: attachment; filename=\"a.bin\"\r\n"
             b"\r\n"
             b"AAECAwQ=\r\n"
             b"--XX--\r\n")


def simple(subject, body="hello\r\n"):
    return ("From: carol@remote.test\r\nTo: alice@example.test\r\n"
            "Subject: %s\r\n\r\n%s" % (subject, body)).encode()


class ImapTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        self.n1 = self.node("mail1", listen=LISTEN,
                            extra_node="allow_plaintext_auth = yes\n")
        self.n2 = self.node("mail2", listen=LISTEN,
                            extra_node="allow_plaintext_auth = yes\n")

    def imap(self, node, user="alice@example.test", password="demo",
             select="INBOX"):
        m = imaplib.IMAP4("127.0.0.1", node.ports["imap"], timeout=10)
        m.login(user, password)
        if select:
            typ, _ = m.select(select)
            self.assertEqual(typ, "OK")
        return m

    def uids_flags(self, m):
        typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
        self.assertEqual(typ, "OK")
        out = {}
        for d in data:
            if d is None:
                continue
            s = d.decode() if isinstance(d, bytes) else d[0].decode()
            uid = int(re.search(r"UID (\d+)", s).group(1))
            flags = re.search(r"FLAGS \(([^)]*)\)", s).group(1).split()
            out[uid] = sorted(f for f in flags if f != "\\Recent")
        return out

    # ---- getting in ----

    def test_greeting_capabilities_starttls_and_login(self):
        strict = self.node("mail3", listen=("imap",))
        r = Lines(strict.ports["imap"])
        self.assertRegex(r.greeting, r"^\* OK \[CAPABILITY IMAP4rev1 .*\]")
        caps = r.cmd("a1", "CAPABILITY")[0]
        for cap in ("IMAP4rev1", "STARTTLS", "LOGINDISABLED", "IDLE",
                    "UIDPLUS", "LITERAL+", "NAMESPACE", "ID", "ENABLE",
                    "UNSELECT", "MOVE", "SPECIAL-USE", "CHILDREN"):
            self.assertIn(cap, caps.split())
        for cap in ("CONDSTORE", "QRESYNC", "SORT", "THREAD=REFERENCES"):
            self.assertIn(cap, caps.split())
        # No credentials in clear text when the config does not allow it.
        out = r.cmd("a2", "LOGIN alice@example.test demo")
        self.assertRegex(out[-1], r"^a2 NO \[PRIVACYREQUIRED\]")
        r.close()
        m = imaplib.IMAP4("127.0.0.1", strict.ports["imap"], timeout=10)
        m.starttls(ssl_context=tls_context())
        self.assertIn("AUTH=PLAIN", m.capabilities)
        self.assertNotIn("LOGINDISABLED", m.capabilities)
        with self.assertRaises(imaplib.IMAP4.error):
            m.login("alice@example.test", "wrong")
        typ, data = m.login("alice@example.test", "demo")
        self.assertEqual(typ, "OK")
        m.logout()

    def test_authenticate_plain_and_implicit_tls(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.n1.ports["imaps"],
                              ssl_context=tls_context(), timeout=10)
        typ, _ = m.authenticate(
            "PLAIN", lambda _: b"\0alice@example.test\0demo")
        self.assertEqual(typ, "OK")
        typ, data = m.namespace()
        self.assertEqual(data[0], b'(("" ".")) NIL NIL')
        m.logout()

    # ---- one store, two nodes ----

    def test_same_uids_and_flags_on_both_nodes(self):
        for i in range(5):
            self.deliver(self.n1 if i % 2 else self.n2, simple("m%d" % i))
        a, b = self.imap(self.n1), self.imap(self.n2)
        ua, ub = self.uids_flags(a), self.uids_flags(b)
        self.assertEqual(len(ua), 5)
        self.assertEqual(ua, ub)
        self.assertEqual(sorted(ua), list(range(min(ua), min(ua) + 5)))
        va = a.response("UIDVALIDITY")
        a.select("INBOX")
        vb = b.select("INBOX") and b.response("UIDVALIDITY")
        self.assertEqual(a.response("UIDVALIDITY"), vb)
        first = min(ua)
        typ, _ = a.uid("STORE", str(first), "+FLAGS", "(\\Flagged \\Seen)")
        self.assertEqual(typ, "OK")
        typ, _ = b.noop()
        self.assertEqual(self.uids_flags(b)[first], ["\\Flagged", "\\Seen"])
        # POP3 on the same store names the messages by the same UIDs.
        import poplib
        p = poplib.POP3("127.0.0.1", self.n2.ports["pop3"], timeout=10)
        p.user("alice@example.test")
        p.pass_("demo")
        uidl = [l.split()[1].decode() for l in p.uidl()[1]]
        p.quit()
        self.assertEqual([int(u.split(".")[1]) for u in uidl], sorted(ua))
        a.logout()
        b.logout()

    def test_append_on_one_fetch_on_the_other_byte_exact(self):
        a, b = self.imap(self.n1), self.imap(self.n2)
        typ, data = a.append("INBOX", "(\\Seen)", None, MULTIPART)
        self.assertEqual(typ, "OK")
        m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
        self.assertIsNotNone(m, data)
        uid = m.group(2).decode()
        b.noop()
        typ, data = b.uid("FETCH", uid, "(BODY.PEEK[] RFC822.SIZE FLAGS)")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0][1], MULTIPART)
        self.assertIn(b"RFC822.SIZE %d" % len(MULTIPART), data[0][0] + data[1])
        self.assertIn(b"\\Seen", data[0][0] + data[1])
        typ, data = b.uid("FETCH", uid, "(BODYSTRUCTURE ENVELOPE)")
        text = data[0] if isinstance(data[0], bytes) else data[0][0]
        self.assertIn(b'("TEXT" "PLAIN" ("CHARSET" "us-ascii")', text)
        self.assertIn(b'"MIXED"', text)
        self.assertIn(b'"<m1@remote.test>"', text)
        typ, data = b.uid("FETCH", uid, "(BODY.PEEK[1] BODY.PEEK[2.MIME] "
                          "BODY.PEEK[HEADER.FIELDS (SUBJECT)] "
                          "BODY.PEEK[]<0.10>)")
        blob = b"".join(x[1] for x in data if isinstance(x, tuple))
        self.assertIn(b"hello body words", blob)  # its CRLF is the boundary's
        self.assertIn(b"Content-Transfer-Encoding: base64", blob)
        self.assertIn(b"Subject: =?UTF-8?B?R3LDvMOfZQ==?= parts\r\n\r\n", blob)
        self.assertIn(MULTIPART[:10], blob)
        a.logout()
        b.logout()

    def test_size_of_a_dovecot_lf_file_is_what_imap_sends(self):
        # A mailbox migrated from Dovecot: files stored with LF line ends,
        # S= their size on disk, W= their size with CRLF line ends.
        self.deliver(self.n1, simple("first"))
        inbox = os.path.dirname(os.path.dirname(
            self.maildir("alice@example.test")[0]))
        lf = b"From: dave@remote.test\nSubject: migrated\n\none\ntwo\n"
        crlf = lf.replace(b"\n", b"\r\n")
        name = "1700000000.M1P1.old,S=%d,W=%d" % (len(lf), len(crlf))
        with open(os.path.join(inbox, "new", name), "wb") as f:
            f.write(lf)
        m = self.imap(self.n1)
        # RFC822.SIZE alone comes from the listing, not from a loaded body
        typ, data = m.fetch("2", "(RFC822.SIZE)")
        self.assertIn(b"RFC822.SIZE %d)" % len(crlf), data[0])
        typ, data = m.fetch("2", "(BODY.PEEK[])")
        self.assertEqual(data[0][1], crlf)
        typ, data = m.search(None, "LARGER", str(len(crlf) - 1),
                             "SMALLER", str(len(crlf) + 1))
        self.assertEqual(data[0].split(), [b"2"])
        # a copy keeps the size with CRLF line ends (,W= in its name)
        self.assertEqual(m.create("Archive")[0], "OK")
        self.assertEqual(m.copy("2", "Archive")[0], "OK")
        self.assertEqual(m.select("Archive")[0], "OK")
        typ, data = m.fetch("1", "(RFC822.SIZE)")
        self.assertIn(b"RFC822.SIZE %d)" % len(crlf), data[0])
        m.logout()

    def test_search(self):
        self.deliver(self.n1, simple("alpha one", "needle in body\r\n"))
        self.deliver(self.n1, simple("beta two"))
        a = self.imap(self.n1)
        a.append("INBOX", "(\\Flagged)", None, MULTIPART)
        self.assertEqual(a.search(None, "ALL")[1][0], b"1 2 3")
        self.assertEqual(a.search(None, "SUBJECT", "beta")[1][0], b"2")
        self.assertEqual(a.search(None, "BODY", "needle")[1][0], b"1")
        self.assertEqual(a.search(None, "FLAGGED")[1][0], b"3")
        self.assertEqual(a.search(None, "OR", "FLAGGED", "SUBJECT",
                                  "alpha")[1][0], b"1 3")
        self.assertEqual(a.search(None, "NOT", "FLAGGED", "2:*")[1][0], b"2")
        # Encoded words are decoded before comparing (charset UTF-8).
        a.literal = "Grüße".encode()
        typ, data = a.search("UTF-8", "SUBJECT")
        self.assertEqual(data[0], b"3")
        typ, data = a.uid("SEARCH", "SENTON", "23-Nov-2026")
        self.assertEqual(len(data[0].split()), 1)
        a.logout()

    def test_idle_hears_a_delivery_through_the_other_node(self):
        r = Lines(self.n1.ports["imap"])
        r.cmd("a", "LOGIN alice@example.test demo")
        out = r.cmd("b", "SELECT INBOX")
        self.assertIn("* 0 EXISTS", out)
        r.send("c IDLE\r\n")
        self.assertTrue(r.line().startswith("+ "))
        t0 = time.monotonic()
        self.deliver(self.n2, simple("wake up"))
        line = r.line()
        took = time.monotonic() - t0
        self.assertEqual(line, "* 1 EXISTS")
        self.assertLess(took, 1.0, "IDLE heard the delivery after %.2fs" % took)
        r.send("DONE\r\n")
        self.assertRegex(r.until("c")[-1], r"^c OK")
        r.close()

    def test_copy_move_expunge_with_uidplus(self):
        for i in range(4):
            self.deliver(self.n1, simple("c%d" % i))
        b = self.imap(self.n2)
        r = Lines(self.n1.ports["imap"])
        r.cmd("l", "LOGIN alice@example.test demo")
        r.cmd("s", "SELECT INBOX")
        out = r.cmd("c", "UID COPY 1:2 Trash")
        self.assertRegex(out[-1], r"^c OK \[COPYUID \d+ 1:2 1:2\]")
        out = r.cmd("m", "UID MOVE 3 Junk")
        self.assertRegex(out[0], r"^\* OK \[COPYUID \d+ 3 1\]")
        self.assertIn("* 3 EXPUNGE", out)
        self.assertRegex(out[-1], r"^m OK")
        out = r.cmd("u", "UID SEARCH ALL")
        self.assertEqual(out[0], "* SEARCH 1 2 4")
        r.cmd("d", "UID STORE 1 +FLAGS.SILENT (\\Deleted)")
        out = r.cmd("e", "EXPUNGE")
        self.assertEqual(out, ["* 1 EXPUNGE", "e OK EXPUNGE completed"])
        b.noop()  # the other node hears of the expunges and the move
        self.assertEqual(b.uid("SEARCH", "ALL")[1][0], b"2 4")
        self.assertEqual(b.status("Trash", "(MESSAGES UIDNEXT)")[1][0],
                         b'"Trash" (MESSAGES 2 UIDNEXT 3)')
        out = r.cmd("n", "UID COPY 2 Nowhere")
        self.assertRegex(out[-1], r"^n NO \[TRYCREATE\]")
        r.close()
        b.logout()

    def test_folders_list_special_use_and_subscriptions(self):
        a = self.imap(self.n1, select=None)
        typ, data = a.list()
        names = {l.decode().rsplit(" ", 1)[1].strip('"'): l.decode()
                 for l in data}
        for name, use in (("Sent", "\\Sent"), ("Drafts", "\\Drafts"),
                          ("Trash", "\\Trash"), ("Junk", "\\Junk")):
            self.assertIn(use, names[name])
        self.assertIn("INBOX", names)
        self.assertEqual(a.create("Work.2026")[0], "OK")
        typ, data = a.list('""', "%")
        top = [l.decode() for l in data]
        self.assertTrue(any(l.endswith('"Work"') and "\\HasChildren" in l
                            for l in top), top)
        self.assertEqual(a.rename("Work", "Jobs")[0], "OK")
        self.assertEqual(a.list('""', "Jobs.*")[1][0].decode().split()[-1],
                         '"Jobs.2026"')
        self.assertEqual(a.create("Jobs.2026")[0], "NO")
        self.assertEqual(a.subscribe("Jobs.2026")[0], "OK")
        self.assertIn(b'"Jobs.2026"', b" ".join(a.lsub()[1]))
        self.assertEqual(a.delete("Jobs.2026")[0], "OK")
        self.assertEqual(a.select("Jobs.2026")[0], "NO")
        # International names travel in modified UTF-7.
        self.assertEqual(a.create("&ZeVnLIqe-")[0], "OK")
        self.assertEqual(a.select("&ZeVnLIqe-")[0], "OK")
        self.assertEqual(a.create("&Jjo!")[0], "NO")
        a.logout()

    def test_traversal_names_are_refused(self):
        a = self.imap(self.n1, select=None)
        before = sorted(os.listdir(self.tmp))
        for name in ("../../evil", "a/b", "/etc", "..", ".hidden", "x..y",
                     "Trash/../../x"):
            for cmd in ("create", "select", "delete"):
                typ, _ = getattr(a, cmd)('"%s"' % name)
                self.assertEqual(typ, "NO", "%s %s" % (cmd, name))
        typ, _ = a.rename("Trash", '"../../stolen"')
        self.assertEqual(typ, "NO")
        self.assertEqual(sorted(os.listdir(self.tmp)), before)
        a.logout()

    def test_list_wildcards_are_not_mailbox_names(self):
        a = self.imap(self.n1, select=None)
        for name in ('"*"', '"%"', '"a*b"', '"Jobs.%"'):
            typ, _ = a.create(name)
            self.assertEqual(typ, "NO", name)
        self.assertEqual(a.create("Real")[0], "OK")
        self.assertEqual(a.rename("Real", '"R%"')[0], "NO")
        typ, data = a.list()
        self.assertFalse([d for d in data if b'"*"' in d or b'"%"' in d
                          or b"R%" in d], data)
        a.logout()

    def test_largest_number_is_a_number_not_star(self):
        r = Lines(self.n1.ports["imap"])
        r.cmd("l", "LOGIN alice@example.test demo")
        for subj in ("one", "two"):
            msg = simple(subj)
            r.send(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(msg), msg))
            self.assertRegex(r.until("a")[-1], r"^a OK")
        r.cmd("s", "SELECT INBOX")
        out = r.cmd("f", "UID FETCH 1:4294967295 (UID)")
        self.assertRegex(out[-1], r"^f OK")
        self.assertEqual(len([x for x in out if "FETCH (UID" in x]), 2, out)
        out = r.cmd("g", "UID FETCH 4294967295 (UID)")
        self.assertRegex(out[-1], r"^g OK")
        self.assertEqual(len(out), 1, out)  # no message has that UID
        out = r.cmd("h", "FETCH 1:4294967295 (FLAGS)")
        self.assertRegex(out[-1], r"^h OK")
        self.assertEqual(len(out), 3, out)
        out = r.cmd("i", "SEARCH UID 2:4294967295")
        self.assertRegex(out[-1], r"^i OK")
        self.assertIn("* SEARCH 2", out)
        out = r.cmd("j", "UID SEARCH UID 4294967295")
        self.assertIn("* SEARCH", out)
        self.assertRegex(out[-1], r"^j OK")
        r.close()

    def test_literals_sync_and_nonsync(self):
        r = Lines(self.n1.ports["imap"])
        r.send("a LOGIN {18}\r\n")
        self.assertTrue(r.line().startswith("+ "))
        r.send("alice@example.test {4+}\r\ndemo\r\n")
        self.assertRegex(r.until("a")[-1], r"^a OK")
        msg = b"Subject: lit\r\n\r\nbody\r\n"
        r.send(b"b APPEND INBOX {%d+}\r\n%s\r\n" % (len(msg), msg))
        self.assertRegex(r.until("b")[-1], r"^b OK \[APPENDUID \d+ 1\]")
        out = r.cmd("c", "SELECT INBOX")
        self.assertIn("* 1 EXISTS", out)
        r.send("d FETCH 1 BODY[]\r\n")
        head = r.line()
        self.assertEqual(head, "* 1 FETCH (BODY[] {%d}" % len(msg))
        out = r.until("d")
        self.assertRegex(out[-1], r"^d OK")
        out = r.cmd("e", "FETCH 1 FLAGS")
        self.assertIn("\\Seen", out[0])  # BODY[] set it
        r.close()

    def test_malformed_commands_get_bad_and_the_session_lives(self):
        r = Lines(self.n1.ports["imap"])
        for bad in ("", "nocommand", "a FROB", "a LOGIN", "a SELECT INBOX",
                    "a LOGIN \"unterminated", "a FETCH 1 (FLAGS)",
                    "a LOGIN {99999999999}", "* NOOP", "a UID NOOP"):
            if not bad:
                continue
            r.send(bad + "\r\n")
            ans = r.line()
            self.assertRegex(ans, r"^\S+ (BAD|NO) ", bad)
        r.cmd("l", "LOGIN alice@example.test demo")
        r.cmd("s", "SELECT INBOX")
        for bad in ("f FETCH 1:x FLAGS", "f FETCH 1 (NOSUCH)",
                    "f STORE 1 FLAGS (\\Recent)", "f SEARCH NOSUCHKEY",
                    "f SEARCH CHARSET KOI8-R ALL", "f UID FETCH",
                    "f COPY 1", "f FETCH 1 BODY[1.MIME"):
            out = r.cmd("f", bad[2:])
            self.assertRegex(out[-1], r"^f (BAD|NO) ", bad)
        r.send(b"x" * 70000 + b"\r\n")
        self.assertRegex(r.line(), r"^\* BAD")
        r.send(bytes(range(256)) + b"\r\n")
        self.assertRegex(r.line(), r"BAD")
        self.assertRegex(r.cmd("n", "NOOP")[-1], r"^n OK")
        r.close()
        # The node is still up for a new client.
        self.imap(self.n1).logout()

    def test_large_fetch_goes_out_in_slices(self):
        body = ("x" * 998 + "\r\n") * 100  # ~100 KB each
        a = self.imap(self.n1)
        for i in range(40):
            a.append("INBOX", None, None, simple("big %d" % i, body))
        a.select("INBOX")
        typ, data = a.fetch("1:*", "(BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        bodies = [d[1] for d in data if isinstance(d, tuple)]
        self.assertEqual(len(bodies), 40)
        self.assertTrue(all(b.endswith(body.encode()) for b in bodies))
        a.logout()


if __name__ == "__main__":
    unittest.main()
