"""The web role's additions to the HTTP API (DESIGN.md "Web role"), for
real on one node: POST /api/send through the submission rules (sender
check, Message-ID and Date added, line ends normalised, local recipients
to the store, remote ones to the queue), flags, move, delete to Trash and
expunge from it, MIME parts decoded, search, and the webmail's files with
their caching headers and Content-Security-Policy."""
import base64
import email
import email.policy
import json
import os
import unittest

from nodetest import NodeTestCase
from test_http_api import bearer, json_bearer, request

ATTACHMENT = bytes(range(256)) * 4

MIME_MSG = (b"From: Carol <carol@remote.test>\r\nTo: alice@example.test\r\n"
            b"Subject: =?UTF-8?B?R3LDvMOfZQ==?= report\r\n"
            b"Date: Tue, 2 Jan 2024 10:00:00 +0000\r\n"
            b"Message-ID: <r1@remote.test>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n"
            b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            b"caf=C3=A9 numbers inside\r\n"
            b"--b1\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\n"
            b"Content-Disposition: attachment; filename=\"r.pdf\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" +
            base64.encodebytes(ATTACHMENT).replace(b"\n", b"\r\n") +
            b"--b1--\r\n")

PLAIN = (b"From: Dave <dave@remote.test>\r\nTo: alice@example.test\r\n"
         b"Subject: lunch\r\nDate: Wed, 3 Jan 2024 10:00:00 +0000\r\n\r\n"
         b"Pizza at noon?\r\n")


class HttpMailTest(NodeTestCase):
    def setUp(self):
        super().setUp()
        self.n = self.node()

    def login(self, user="alice@example.test"):
        st, h, body = request(self.n, "POST", "/api/login",
                              {"user": user, "password": "demo"})
        self.assertEqual(st, 200, body)
        return json.loads(body)["token"]

    def call(self, token, method, path, body=None):
        headers = json_bearer(token) if method != "GET" else bearer(token)
        if body is not None:
            body = json.dumps(body).encode()
        elif method != "GET":
            body = b"{}"
        st, h, data = request(self.n, method, path, body, headers)
        return st, h, data

    def test_send_through_the_submission_rules(self):
        alice = self.login()
        msg = {"to": ["Bob <bob@example.test>"], "cc": "team@example.test",
               "bcc": ["carol@remote.test"], "subject": "Grüße",
               "text": "one\rtwo\nthree\r\n" + "x" * 200,
               "in_reply_to": "<r1@remote.test>",
               "references": "<r0@remote.test> <r1@remote.test>",
               "attachments": [{"name": "data é.bin",
                                "type": "application/octet-stream",
                                "data": base64.b64encode(ATTACHMENT).decode()}]}
        st, h, body = self.call(alice, "POST", "/api/send", msg)
        self.assertEqual(st, 200, body)
        doc = json.loads(body)
        self.assertEqual(doc["local"], 2)  # bob, and alice through team
        self.assertEqual(doc["remote"], 1)
        self.assertEqual(doc["status"], "delivered")
        self.assertTrue(doc["queue_id"])
        self.assertRegex(doc["message_id"], r"^<.+@mail1\.example\.test>$")

        raw = self.messages("bob@example.test")[0]
        self.assertTrue(raw.startswith(b"Return-Path: <alice@example.test>\r\n"
                                       b"Received: from webmail"), raw[:80])
        self.assertNotIn(b"\r\r", raw)
        self.assertNotRegex(raw, rb"[^\r]\n")  # every line end CRLF
        self.assertNotIn(b"Bcc:", raw)
        m = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(m["Message-ID"], doc["message_id"])
        self.assertTrue(m["Date"])
        self.assertEqual(m["Subject"], "Grüße")
        self.assertEqual(m["From"], "alice@example.test")
        self.assertEqual(m["In-Reply-To"], "<r1@remote.test>")
        text, att = list(m.iter_parts())
        # bare CR and LF made CRLF; the long line cut by soft breaks
        self.assertEqual(text.get_content(),
                         "one\r\ntwo\r\nthree\r\n" + "x" * 200)
        self.assertNotRegex(raw, rb"\n[^\r\n]{77}")
        self.assertEqual(att.get_filename(), "data é.bin")
        self.assertEqual(att.get_content(), ATTACHMENT)
        # alice's copy through team@ (INBOX), and one in her Sent, seen
        self.assertEqual(len(self.messages("alice@example.test")), 1)
        st, h, body = self.call(alice, "GET", "/api/messages?mailbox=Sent")
        sent = json.loads(body)
        self.assertEqual([(m["subject"], m["flags"]) for m in sent],
                         [("Grüße", ["\\Seen"])])
        st, h, body = self.call(alice, "GET", "/api/messages/%d?mailbox=Sent"
                                % sent[0]["uid"])
        self.assertTrue(body.startswith(b"Message-ID: " +
                                        doc["message_id"].encode()), body[:80])

        # The sender must be the user's own address or an alias of it.
        st, h, body = self.call(alice, "POST", "/api/send",
                                {"from": "bob@example.test",
                                 "to": ["bob@example.test"], "text": "x"})
        self.assertEqual(st, 403, body)
        st, h, body = self.call(alice, "POST", "/api/send",
                                {"from": "team@example.test",
                                 "to": ["bob@example.test"], "text": "x"})
        self.assertEqual(st, 200, body)
        for bad, why in (({"to": ["nobody@example.test"]}, b"no such user"),
                         ({"to": ["bob@example.test"],
                           "subject": "x\r\nBcc: eve@remote.test"},
                          b"control"),
                         ({"to": ["not an address"]}, b"bad address"),
                         ({"text": "no one"}, b"no recipient"),
                         ({"to": ["bob@example.test"], "attachments":
                           [{"name": "a", "data": "!!"}]}, b"base64")):
            st, h, body = self.call(alice, "POST", "/api/send", bad)
            self.assertEqual(st, 400, (bad, body))
            self.assertIn(why, body)
        self.assertEqual(len(self.messages("bob@example.test")), 2)
        # A state change without JSON and without Origin: refused.
        st, h, body = request(self.n, "POST", "/api/send", b"{}",
                              dict(bearer(alice),
                                   **{"Content-Type": "text/plain"}))
        self.assertEqual(st, 415)
        st, h, body = request(self.n, "POST", "/api/send", {"to": ["x"]})
        self.assertEqual(st, 401)

    def test_parts_flags_move_delete_search(self):
        self.deliver(self.n, MIME_MSG)
        self.deliver(self.n, PLAIN)
        t = self.login()
        st, h, body = self.call(t, "GET", "/api/messages/1/parts")
        self.assertEqual(st, 200, body)
        doc = json.loads(body)
        self.assertEqual(doc["headers"]["subject"], "Grüße report")
        self.assertEqual(doc["headers"]["message_id"], "<r1@remote.test>")
        self.assertEqual([(p["part"], p["type"], p["name"]) for p in doc["parts"]],
                         [("1", "text/plain", None),
                          ("2", "application/pdf", "r.pdf")])
        st, h, body = self.call(t, "GET", "/api/messages/1/parts/1")
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "text/plain; charset=utf-8")
        self.assertEqual(body, "café numbers inside".encode())
        self.assertIn("sandbox", h["content-security-policy"])
        st, h, body = self.call(t, "GET", "/api/messages/1/parts/2?download=1")
        self.assertEqual(st, 200)
        self.assertEqual(body, ATTACHMENT)
        self.assertEqual(h["content-type"], "application/pdf")
        self.assertEqual(h["content-disposition"],
                         "attachment; filename*=UTF-8''r.pdf")
        self.assertEqual(self.call(t, "GET", "/api/messages/1/parts/3")[0], 404)
        self.assertEqual(self.call(t, "GET", "/api/messages/9/parts")[0], 404)

        # Flags: both Maildir letters, as IMAP would see them.
        st, h, body = self.call(t, "POST", "/api/messages/1/flags",
                                {"add": ["\\Seen", "\\Flagged"]})
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["flags"], ["\\Seen", "\\Flagged"])
        st, h, body = self.call(t, "POST", "/api/messages/1/flags",
                                {"remove": ["\\Flagged"]})
        self.assertEqual(json.loads(body)["flags"], ["\\Seen"])
        self.assertEqual(self.call(t, "POST", "/api/messages/1/flags",
                                   {"add": ["\\Bogus"]})[0], 400)
        st, h, body = self.call(t, "GET", "/api/mailboxes")
        self.assertEqual(json.loads(body)[0]["unseen"], 1)

        # Search: a header, a decoded body, nothing.
        for q, uids in (("lunch", [2]), ("café", [1]), ("NUMBERS", [1]),
                        ("remote.test", [1, 2]), ("absent", [])):
            st, h, body = self.call(t, "GET", "/api/search?mailbox=INBOX&q="
                                    + q.replace("é", "%C3%A9"))
            self.assertEqual(st, 200, body)
            self.assertEqual([m["uid"] for m in json.loads(body)], uids, q)
        self.assertEqual(self.call(t, "GET", "/api/search?q=")[0], 400)

        # Move to a folder that does not exist: 404; to Archive: moved.
        self.assertEqual(self.call(t, "POST", "/api/messages/2/move",
                                   {"mailbox": "Archive"})[0], 404)
        userdir = os.path.dirname(os.path.dirname(
            self.maildir("alice@example.test")[0]))
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(userdir, ".Archive", d))
        st, h, body = self.call(t, "POST", "/api/messages/2/move",
                                {"mailbox": "Archive"})
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body), {"uid": 1, "mailbox": "Archive"})
        st, h, body = self.call(t, "GET", "/api/messages?mailbox=Archive")
        self.assertEqual([m["subject"] for m in json.loads(body)], ["lunch"])

        # Delete: to Trash (made on first use), then from Trash: gone.
        st, h, body = self.call(t, "DELETE", "/api/messages/1")
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["mailbox"], "Trash")
        st, h, body = self.call(t, "GET", "/api/messages")
        self.assertEqual(json.loads(body), [])
        st, h, body = self.call(t, "DELETE", "/api/messages/1?mailbox=Trash")
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body), {"expunged": True})
        st, h, body = self.call(t, "GET", "/api/messages?mailbox=Trash")
        self.assertEqual(json.loads(body), [])
        for method in ("PUT", "POST"):
            st, h, body = request(self.n, method, "/api/messages/1", b"{}",
                                  json_bearer(t))
            self.assertEqual(st, 405)
            self.assertEqual(h["allow"], "GET, HEAD, DELETE")

    def test_webmail_files(self):
        st, h, body = request(self.n, "GET", "/")
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        self.assertIn(b'<script src="/app.js">', body)
        csp = h["content-security-policy"]
        self.assertIn("default-src 'self'", csp)
        self.assertIn("script-src 'self';", csp)
        self.assertNotIn("unsafe-eval", csp)
        self.assertNotIn("script-src 'self' 'unsafe-inline'", csp)
        self.assertEqual(h["cache-control"], "no-cache")
        etag = h["etag"]
        self.assertRegex(etag, r'^"[0-9a-f]{20}"$')
        st, h, body = request(self.n, "GET", "/", headers={"If-None-Match": etag})
        self.assertEqual(st, 304)
        self.assertEqual(body, b"")
        for path, ctype in (("/app.js", "text/javascript; charset=utf-8"),
                            ("/strings.js", "text/javascript; charset=utf-8"),
                            ("/webmail.css", "text/css; charset=utf-8")):
            st, h, body = request(self.n, "GET", path)
            self.assertEqual((st, h["content-type"]), (200, ctype), path)
            self.assertNotEqual(h["etag"], etag)
        self.assertEqual(request(self.n, "GET", "/nothing.js")[0], 404)
        self.assertEqual(request(self.n, "POST", "/", {})[0], 405)


if __name__ == "__main__":
    unittest.main()
