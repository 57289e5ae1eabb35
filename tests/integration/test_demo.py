"""./demo.sh for real: the whole cluster comes up, mail goes in through lbd
on the front ports (swaks, as the README shows), the HTTP API, POP3, IMAP,
mbsync and mutt with the configs demo.sh writes read it, and SIGTERM stops
everything. swaks, mbsync and mutt come from scripts/install-deps.sh."""
import json
import os
import pathlib
import poplib
import signal
import smtplib
import ssl
import subprocess
import tempfile
import time
import unittest
import http.client
import imaplib

from lbdtest import wait_for
from mailclients import run_mutt

SRC = os.environ.get("MS_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))


class DemoTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="demotest-")
        self.dir = os.path.join(self._tmp.name, "demo")
        self.log = open(os.path.join(self._tmp.name, "demo.out"), "w+")
        env = dict(os.environ, DEMO_DIR=self.dir)
        self.proc = subprocess.Popen(["bash", os.path.join(SRC, "demo.sh")],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)

    def output(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def tearDown(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        self._tmp.cleanup()

    def test_demo_cluster(self):
        wait_for(lambda: "ready" in self.output() or self.proc.poll() is not None,
                 60, step=0.2, what="demo ready")
        self.assertIn("demo: ready", self.output())
        # MX through lbd, with the README's swaks command.
        r = subprocess.run(["swaks", "--server", "127.0.0.1:2525",
                            "--to", "alice@example.test",
                            "--from", "carol@remote.test",
                            "--header", "Subject: via lbd"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # Submission with STARTTLS and AUTH through lbd.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = smtplib.SMTP("127.0.0.1", 2587, timeout=10)
        c.starttls(context=ctx)
        c.login("bob@example.test", "demo")
        c.sendmail("bob@example.test", ["alice@example.test"],
                   b"Subject: submitted\r\n\r\nhi alice\r\n")
        c.quit()
        # The web API through lbd sees both, with the client's address
        # carried by PROXY v2 into Received:.
        h = http.client.HTTPConnection("127.0.0.1", 8080, timeout=10)
        h.request("POST", "/api/login", body=json.dumps(
            {"user": "alice@example.test", "password": "demo"}),
            headers={"Content-Type": "application/json"})
        r = h.getresponse()
        self.assertEqual(r.status, 200)
        token = json.loads(r.read())["token"]
        h.request("GET", "/api/messages?mailbox=INBOX",
                  headers={"Authorization": "Bearer " + token})
        r = h.getresponse()
        msgs = json.loads(r.read())
        self.assertEqual(sorted(m["subject"] for m in msgs), ["submitted", "via lbd"])
        h.request("GET", "/api/messages/%d?mailbox=INBOX" % msgs[0]["uid"],
                  headers={"Authorization": "Bearer " + token})
        raw = h.getresponse().read()
        self.assertTrue(raw.startswith(b"Return-Path: <"), raw[:100])
        self.assertIn(b"([127.0.0.1])", raw)
        # POP3 through lbd: STLS, login, both messages, nothing deleted.
        p = poplib.POP3("127.0.0.1", 2110, timeout=10)
        p.stls(context=ctx)
        p.user("alice@example.test")
        p.pass_("demo")
        self.assertEqual(p.stat()[0], 2)
        self.assertIn(b"Subject: via lbd", p.top(1, 0)[1] + p.top(2, 0)[1])
        p.quit()
        # IMAP through lbd: STARTTLS, login, the same two messages, and
        # the special-use folders a new user gets.
        m = imaplib.IMAP4("127.0.0.1", 2143, timeout=10)
        m.starttls(ssl_context=ctx)
        m.login("alice@example.test", "demo")
        self.assertEqual(m.select("INBOX", readonly=True), ("OK", [b"2"]))
        typ, data = m.fetch("1:2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects = b"".join(d[1] for d in data if isinstance(d, tuple))
        self.assertIn(b"Subject: via lbd", subjects)
        self.assertIn(b'"Sent"', b" ".join(m.list()[1]))
        m.logout()
        self.read_with_clients()
        # Ctrl-C / SIGTERM stops everything cleanly.
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(30), 0)
        self.assertIn("demo: stopped", self.output())
        self.assertFalse(os.path.exists(os.path.join(self.dir, "lbd.sock")))

    def read_with_clients(self):
        """A new user's way in: the client configs demo.sh writes read
        alice's two messages through lbd, with STARTTLS verifying the
        demo's certificate (mbsync into .demo/alice-mail; mutt in a
        pseudo-terminal, which also checks 127.0.0.1 against it)."""
        r = subprocess.run(["mbsync", "-c", os.path.join(self.dir, "mbsyncrc"),
                            "-a"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        inbox = os.path.join(self.dir, "alice-mail", "INBOX")
        got = [os.path.join(inbox, d, f) for d in ("cur", "new")
               for f in os.listdir(os.path.join(inbox, d))]
        self.assertEqual(len(got), 2)
        text = b"".join(pathlib.Path(f).read_bytes() for f in got)
        self.assertIn(b"Subject: submitted", text)
        status, out = run_mutt(os.path.join(self.dir, "muttrc"),
                               self._tmp.name, "<display-message><exit><quit>y")
        self.assertEqual(status, 0, out[-2000:])
        self.assertIn(b"Selecting INBOX", out)
        # mutt showed one message: the store says so (curses skips
        # drawing while pushed keys wait, so the screen cannot).
        ctx = ssl.create_default_context(
            cafile=os.path.join(self.dir, "cert.pem"))
        m = imaplib.IMAP4("127.0.0.1", 2143, timeout=10)
        m.starttls(ssl_context=ctx)
        m.login("alice@example.test", "demo")
        m.select("INBOX", readonly=True)
        self.assertEqual(m.search(None, "SEEN")[1][0], b"1")
        m.logout()

    def test_demo_keeps_its_config_across_a_restart(self):
        """Redis keeps its data in .demo/redis/ (append-only): a user
        added with mailctl is still there after the demo is stopped and
        started again, at the same config generation."""
        bin_dir = os.environ.get("MS_BIN", os.path.join(SRC, "build", "bin"))
        env = dict(os.environ, MAILCTL_REDIS="127.0.0.1:26379")
        mailctl = [os.path.join(bin_dir, "mailctl")]
        wait_for(lambda: "ready" in self.output() or self.proc.poll() is not None,
                 60, step=0.2, what="demo ready")
        subprocess.run(mailctl + ["user", "add", "carol@example.test",
                                  "--password-stdin"], input="pw\n", text=True,
                       env=env, check=True, timeout=20, capture_output=True)
        before = json.loads(subprocess.run(
            mailctl + ["export"], env=env, check=True, timeout=20,
            capture_output=True, text=True).stdout)
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(30), 0)
        self.log.truncate(0)
        self.proc = subprocess.Popen(
            ["bash", os.path.join(SRC, "demo.sh")], stdout=self.log,
            stderr=subprocess.STDOUT, env=dict(os.environ, DEMO_DIR=self.dir),
            start_new_session=True)
        wait_for(lambda: "ready" in self.output() or self.proc.poll() is not None,
                 60, step=0.2, what="demo ready again")
        after = json.loads(subprocess.run(
            mailctl + ["export"], env=env, check=True, timeout=20,
            capture_output=True, text=True).stdout)
        self.assertEqual(after, before)
        self.assertTrue(os.path.isdir(os.path.join(self.dir, "redis")))
        self.assertIn("carol@example.test",
                      [u["address"] for u in after["users"]])
        m = imaplib.IMAP4("127.0.0.1", 2143, timeout=10)
        m.starttls(ssl_context=ssl.create_default_context(
            cafile=os.path.join(self.dir, "cert.pem")))
        self.assertEqual(m.login("carol@example.test", "pw")[0], "OK")
        m.logout()


if __name__ == "__main__":
    unittest.main()
