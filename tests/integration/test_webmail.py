"""The webmail in a real browser (headless Chromium, browser.py) through
lbd in front of two mailnodes on one store and one Redis: log in, read,
open an attachment, compose and send (checked over IMAP), reply, move,
delete, search; then the node that served the last click is SIGKILLed
and the next click works without logging in again (the session lives in
Redis). An HTML message with a script, an event handler, a javascript:
link, a remote image, a form, a frame and a meta refresh: nothing of it
runs or loads, seen from the browser (its console) and from a counting
server the remote URLs point at; "show images" then loads the image.
Screenshots go to build/screenshots/."""
import base64
import email
import email.policy
import http.server
import imaplib
import os
import threading
import time
import unittest

from browser import Browser
from lbdtest import BIN, Lbd, free_port, wait_for
from nodetest import NodeTestCase, tls_context

SHOTS = os.environ.get("MS_SCREENSHOTS",
                       os.path.join(BIN, "..", "screenshots"))
ATTACHMENT = b"%PDF-1.4 not really a PDF\n" * 40


def mail(subject, body, date, sender="Dave <dave@remote.test>",
         extra=b""):
    return (("From: %s\r\nTo: Alice <alice@example.test>\r\n"
             "Subject: %s\r\nDate: %s\r\nMessage-ID: <%s@remote.test>\r\n"
             % (sender, subject, date, subject.replace(" ", "."))).encode()
            + extra + b"\r\n" + body)


REPORT = mail("quarterly report", b"", "Mon, 1 Jan 2024 09:00:00 +0000",
              extra=b"MIME-Version: 1.0\r\n"
              b"Content-Type: multipart/mixed; boundary=b1\r\n") + (
    b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"The figures are attached.\r\n<script>not markup</script>\r\n"
    b"--b1\r\nContent-Type: application/pdf\r\n"
    b"Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n" +
    base64.encodebytes(ATTACHMENT).replace(b"\n", b"\r\n") + b"--b1--\r\n")


class Counter(http.server.BaseHTTPRequestHandler):
    """Counts every request that reaches it (a remote image, a form's
    target, a frame): the HTML test expects none until asked."""
    hits = []

    def do_GET(self):
        Counter.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/gif")
        gif = base64.b64decode("R0lGODlhAQABAAAAACH5BAEAAAAALAAAAAABAAEAAAIBAAA=")
        self.send_header("Content-Length", str(len(gif)))
        self.end_headers()
        self.wfile.write(gif)

    do_POST = do_GET

    def log_message(self, *args):
        pass


class WebmailTest(NodeTestCase):
    @classmethod
    def setUpClass(cls):
        cls.browser_tmp = __import__("tempfile").mkdtemp(prefix="webmail-")
        cls.b = Browser(cls.browser_tmp)
        os.makedirs(SHOTS, exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        cls.b.close()
        __import__("shutil").rmtree(cls.browser_tmp, ignore_errors=True)

    def setUp(self):
        super().setUp()
        listen = ("smtp", "submission", "http", "imap")
        self.n = {name: self.node(name, listen=listen)
                  for name in ("mail1", "mail2")}
        self.port = free_port()
        nodes = "".join("node = %s 127.0.0.1:%d\n" % (k, v.ports["http"])
                        for k, v in self.n.items())
        self.lbd = Lbd(self.tmp, """[lbd]
control = {control}
state_file = {state}
grace_s = 0

[service web]
listen = 127.0.0.1:%d
protocol = http
pool = web
retries = 2
connect_timeout_ms = 500

[pool web]
check = http
check_path = /health
check_interval_ms = 200
check_timeout_ms = 300
rise = 1
fall = 1
%s""" % (self.port, nodes)).start()
        for name in self.n:
            self.lbd.wait_state("web", name, "up")
        self.url = "http://127.0.0.1:%d/" % self.port
        self.b.driver.delete_all_cookies()
        self.b.console()  # forget what came before
        self.b.requests()

    def tearDown(self):
        self.lbd.stop()
        super().tearDown()

    # ---- helpers ----

    def find(self, css):
        return self.b.driver.find_element(self.b.By.CSS_SELECTOR, css)

    def finds(self, css):
        return self.b.driver.find_elements(self.b.By.CSS_SELECTOR, css)

    def rows(self):
        return [r.text for r in self.finds("#message-list tbody tr")]

    def wait_rows(self, pred, what):
        return self.b.wait_for(lambda d: pred(self.rows()), what=what)

    def row(self, subject):
        for r in self.finds("#message-list tbody tr"):
            if subject in r.text:
                return r
        raise AssertionError("no row %r in %r" % (subject, self.rows()))

    def open(self, subject):
        self.row(subject).click()
        self.b.wait_for(lambda d: self.find("#msg-subject").text == subject
                        and self.find("#reader").is_displayed(),
                        what="message %r open" % subject)

    def status_is(self, text):
        try:
            self.b.wait_for(lambda d: text in self.find("#list-status").text,
                            what="status %r" % text)
        except AssertionError:
            self.fail("status %r, not %r" % (self.find("#list-status").text,
                                             text))

    def login(self):
        self.b.get(self.url)
        self.b.wait_for(lambda d: self.find("#user").is_displayed(),
                        what="the login form")
        self.find("#user").send_keys("alice@example.test")
        self.find("#password").send_keys("demo")
        self.find("#login-btn").click()
        self.b.wait_for(lambda d: self.find("#app").is_displayed(),
                        what="the app after login")

    def shot(self, name):
        self.b.screenshot(os.path.join(SHOTS, "webmail-%s.png" % name))

    def imap(self, user, node):
        c = imaplib.IMAP4("127.0.0.1", self.n[node].ports["imap"], timeout=10)
        c.starttls(ssl_context=tls_context())
        c.login(user, "demo")
        return c

    # ---- tests ----

    def test_read_send_reply_move_delete_search_and_survive_a_node(self):
        mn = self.n["mail1"]
        self.deliver(mn, REPORT)
        self.deliver(mn, mail("lunch", b"Pizza at noon?\r\n",
                              "Tue, 2 Jan 2024 12:00:00 +0000"))
        self.deliver(mn, mail("archive me", b"old news\r\n",
                              "Wed, 3 Jan 2024 12:00:00 +0000"))
        self.deliver(mn, mail("delete me", b"spam-ish\r\n",
                              "Thu, 4 Jan 2024 12:00:00 +0000"))
        self.deliver(mn, mail("after the crash", b"still here\r\n",
                              "Fri, 5 Jan 2024 12:00:00 +0000"))
        userdir = os.path.join(self.store, "example.test", "alice")
        wait_for(lambda: self.maildir("alice@example.test"), 5,
                 what="alice's Maildir")
        userdir = os.path.dirname(os.path.dirname(
            self.maildir("alice@example.test")[0]))
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(userdir, ".Archive", d))

        self.b.get(self.url)
        self.b.wait_for(lambda d: self.find("#user").is_displayed(),
                        what="the login form")
        self.shot("login")
        self.login()
        self.wait_rows(lambda r: len(r) == 5, "five messages")
        # newest first, unread in bold, the folder's unread count
        self.assertIn("after the crash", self.rows()[0])
        self.assertIn("quarterly report", self.rows()[4])
        self.assertEqual(len(self.finds("#message-list tr.unread")), 5)
        self.assertIn("5", self.find("#folder-list a.current").text)
        self.shot("list")

        # Read: plain text escaped, the attachment listed and opened.
        self.open("quarterly report")
        self.assertIn("<script>not markup</script>",
                      self.find("#msg-text").text)
        link = self.find("#attachments a.attachment")
        self.assertIn("report.pdf", link.text)
        got = self.b.driver.execute_async_script(
            "const done = arguments[1];"
            "fetch(arguments[0]).then(r => r.arrayBuffer())"
            ".then(b => done(btoa(String.fromCharCode(...new Uint8Array(b)))))",
            link.get_attribute("href"))
        self.assertEqual(base64.b64decode(got), ATTACHMENT)
        self.b.wait_for(lambda d: len(self.finds(
            "#message-list tr.unread")) == 4, what="read, not bold")
        self.shot("message")

        # Compose with an attachment to bob: it arrives, seen over IMAP.
        path = os.path.join(self.tmp, "notes.txt")
        with open(path, "wb") as f:
            f.write(b"attached notes\n")
        self.find("#compose-btn").click()
        self.find("#c-to").send_keys("bob@example.test")
        self.find("#c-subject").send_keys("from the browser")
        self.find("#c-text").send_keys("Hello Bob,\nsee the notes.")
        self.find("#c-files").send_keys(path)
        self.b.wait_for(lambda d: "notes.txt" in
                        self.find("#c-attachments").text, what="attached")
        self.find("#send-btn").click()
        self.status_is("Message sent.")
        c = self.imap("bob@example.test", "mail2")
        c.select("INBOX")
        typ, data = c.search(None, "SUBJECT", '"from the browser"')
        self.assertEqual(len(data[0].split()), 1, data)
        typ, data = c.fetch(data[0].split()[0], "(RFC822)")
        m = email.message_from_bytes(data[0][1], policy=email.policy.default)
        c.logout()
        self.assertEqual(m["From"], "alice@example.test")
        self.assertTrue(m["Message-ID"] and m["Date"])
        body, att = list(m.iter_parts())
        self.assertIn("see the notes.", body.get_content())
        self.assertEqual(att.get_filename(), "notes.txt")
        self.assertEqual(att.get_payload(decode=True), b"attached notes\n")

        # Reply: to the sender, quoted, In-Reply-To; the original answered.
        self.open("lunch")
        self.find("#reply-btn").click()
        self.b.wait_for(lambda d: self.find("#compose").is_displayed(),
                        what="the reply form")
        self.assertEqual(self.find("#c-to").get_attribute("value"),
                         "Dave <dave@remote.test>")
        self.assertEqual(self.find("#c-subject").get_attribute("value"),
                         "Re: lunch")
        self.assertIn("> Pizza at noon?",
                      self.find("#c-text").get_attribute("value"))
        self.find("#c-cc").send_keys("bob@example.test")
        self.find("#send-btn").click()
        self.status_is("Message sent.")
        c = self.imap("bob@example.test", "mail1")
        c.select("INBOX")
        typ, data = c.search(None, "SUBJECT", '"Re: lunch"')
        typ, data = c.fetch(data[0].split()[0], "(BODY.PEEK[HEADER])")
        self.assertIn(b"In-Reply-To: <lunch@remote.test>", data[0][1])
        c.logout()
        c = self.imap("alice@example.test", "mail2")
        c.select("INBOX")
        typ, data = c.search(None, "ANSWERED")
        self.assertEqual(len(data[0].split()), 1)
        c.logout()

        # Move to Archive, delete to Trash, search.
        self.open("archive me")
        self.b.driver.execute_script(
            "document.getElementById('move-select').value = 'Archive'")
        self.find("#move-btn").click()
        self.status_is("Moved to Archive.")
        self.open("delete me")
        self.find("#delete-btn").click()
        self.status_is("Deleted.")
        self.assertEqual(len(self.rows()), 3)
        folders = self.find("#folder-list").text
        self.assertIn("Archive", folders)
        self.assertIn("Trash", folders)
        self.find("#search-input").send_keys("pizza")
        self.find("#search-btn").click()
        self.status_is('1 found for "pizza"')
        self.assertIn("lunch", self.rows()[0])
        self.find("#search-clear").click()
        self.wait_rows(lambda r: len(r) == 3, "the folder again")

        # The node that served the last request dies; the next click
        # goes on on the other one, the session still good.
        self.open("quarterly report")
        served = self.b.driver.execute_script(
            "return document.body.dataset.node")
        self.assertIn(served, self.n)
        self.n[served].kill()
        self.row("after the crash").click()
        self.b.wait_for(lambda d: self.find("#msg-subject").text ==
                        "after the crash", timeout=15,
                        what="the next message after the node died")
        self.assertFalse(self.find("#login").is_displayed())
        self.assertIn("still here", self.find("#msg-text").text)
        other = self.b.driver.execute_script(
            "return document.body.dataset.node")
        self.assertNotEqual(other, served)

    def test_html_mail_runs_and_loads_nothing(self):
        Counter.hits = []
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counter)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        far = "http://127.0.0.1:%d" % srv.server_address[1]
        html = ("""<html><head><meta http-equiv="refresh" content="0;url=%(u)s/refresh">
<link rel="stylesheet" href="%(u)s/css"><style>p { color: #345 }
body { background: url(%(u)s/style-bg) }</style></head><body>
<p id="hello">Hello <b>Alice</b></p>
<script>console.log("XSS-MARKER-script"); new Image().src = "%(u)s/script";</script>
<img id="broken" src="nowhere" onerror="console.log('XSS-MARKER-onerror')">
<a id="jslink" href="javascript:console.log('XSS-MARKER-link')">click me</a>
<a id="weblink" href="https://example.org/">a web link</a>
<img id="pixel" src="%(u)s/pixel.gif" alt="remote">
<div style="background-image: url(%(u)s/inline-bg)">styled</div>
<form action="%(u)s/form" method="post"><input name="q" value="x">
<button id="submit" type="submit">send</button></form>
<iframe src="%(u)s/frame"></iframe><object data="%(u)s/object"></object>
<svg><script>console.log("XSS-MARKER-svg")</script></svg>
<img src="x" onload="console.log('XSS-MARKER-onload')">
</body></html>""" % {"u": far}).encode()
        html = html.replace(b"</body>", b'<img id="inline" src="cid:logo@x">'
                            b"</body>")
        related = (b"--r1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
                   + html + b"\r\n--r1\r\nContent-Type: image/gif\r\n"
                   b"Content-ID: <logo@x>\r\n"
                   b"Content-Transfer-Encoding: base64\r\n\r\n"
                   b"R0lGODlhAQABAIAAAP///wAAACwAAAAAAQABAAACAkQBADs=\r\n"
                   b"--r1--\r\n")
        self.deliver(self.n["mail1"], mail(
            "newsletter", related, "Mon, 1 Jan 2024 09:00:00 +0000",
            extra=b"MIME-Version: 1.0\r\nContent-Type: multipart/related;"
                  b" boundary=r1\r\n"))
        self.login()
        self.wait_rows(lambda r: len(r) == 1, "the newsletter")
        self.open("newsletter")
        frame = self.find("#msg-html")
        self.assertTrue(frame.is_displayed())
        sandbox = frame.get_attribute("sandbox")
        self.assertNotIn("allow-scripts", sandbox)
        self.assertNotIn("allow-same-origin", sandbox)
        self.assertTrue(self.find("#images-note").is_displayed())
        self.b.driver.switch_to.frame(frame)
        try:
            hello = self.find("#hello")
            self.assertEqual(hello.text, "Hello Alice")
            self.assertGreater(hello.size["height"], 0)  # painted
            self.assertIsNone(self.find("#jslink").get_attribute("href"))
            self.assertEqual(self.finds("form"), [])
            self.assertEqual(self.finds("script"), [])
            self.assertIsNone(self.find("#pixel").get_attribute("src"))
            self.assertEqual(self.find("#weblink").get_attribute("target"),
                             "_blank")
            # the inline image, from the message itself
            self.assertTrue(self.find("#inline").get_attribute("src")
                            .startswith("data:image/gif;base64,"))
        finally:
            self.b.driver.switch_to.default_content()
        self.shot("html")
        self.b.driver.set_window_size(390, 844)  # a phone
        self.shot("phone")
        self.b.driver.set_window_size(1280, 900)
        # Nothing ran, nothing loaded: what would have come did so within
        # this (a page load on loopback takes milliseconds).
        time.sleep(0.5)
        logs = " ".join(e["message"] for e in self.b.console())
        self.assertNotIn("XSS-MARKER", logs)
        self.assertEqual(Counter.hits, [])
        self.assertFalse([u for u in self.b.requests() if far in u])

        # Asked for: the remote image (and the styles' images) load; the
        # form, the frame, the object, the refresh still do not.
        self.find("#show-images").click()
        wait_for(lambda: "/pixel.gif" in Counter.hits, 5,
                 what="the remote image after show images")
        self.assertFalse(self.find("#images-note").is_displayed())
        time.sleep(0.3)
        self.assertFalse(set(Counter.hits) & {
            "/form", "/frame", "/object", "/refresh", "/css", "/script"},
            Counter.hits)
        logs = " ".join(e["message"] for e in self.b.console())
        self.assertNotIn("XSS-MARKER", logs)


if __name__ == "__main__":
    unittest.main()
