"""Cluster-wide node settings (mailctl config set|get|unset|list) and
mailnode's reload on SIGHUP, with a real redis-server, real mailnodes and
smtplib:

- `mailctl config set` is applied by two nodes within a second (EHLO's
  SIZE, the RCPT cap), a key in a node's INI wins over it for that node,
  bad keys and values are refused with the INI's bounds, and the settings
  go into the node's snapshot;
- `mailctl export` / `import` carry the settings;
- SIGHUP with a renewed certificate: the next STARTTLS shows it, while a
  session opened before goes on and delivers;
- an INI with errors on SIGHUP is refused whole (logged with file, line
  and key), the node keeps its config and serves; a key that needs a
  restart keeps its value and is said."""
import hashlib
import json
import os
import signal
import smtplib
import subprocess
import time

from lbdtest import wait_for
from nodetest import NodeTestCase, tls_context

MSG = (b"From: carol@remote.test\r\nTo: alice@example.test\r\n"
       b"Subject: settings\r\n\r\nbody\r\n")


def ehlo_size(node):
    """The SIZE node's MX announces in its EHLO."""
    c = smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=10)
    try:
        c.ehlo()
        return int(c.esmtp_features["size"])
    finally:
        c.close()


def rcpt_codes(node, n):
    """The RCPT replies of one transaction to n recipients."""
    c = smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=10)
    try:
        c.ehlo()
        c.mail("carol@remote.test")
        rcpts = ["alice@example.test", "bob@example.test",
                 "team@example.test", "alice@example.test"]
        return [c.rcpt(rcpts[i % len(rcpts)])[0] for i in range(n)]
    finally:
        c.close()


def peer_cert(c):
    """The SHA-256 of the certificate an smtplib session was shown."""
    return hashlib.sha256(c.sock.getpeercert(binary_form=True)).hexdigest()


def starttls(node):
    c = smtplib.SMTP("127.0.0.1", node.ports["smtp"], timeout=10)
    c.ehlo()
    c.starttls(context=tls_context())
    c.ehlo()
    return c


class ConfigSettingsTest(NodeTestCase):
    def test_set_seen_on_two_nodes_ini_wins(self):
        mail1 = self.node("mail1", listen=("smtp",))
        mail2 = self.node("mail2", listen=("smtp",),
                          extra_node="max_recipients = 3\n")
        self.assertEqual(ehlo_size(mail1), 26214400)

        t0 = time.monotonic()
        self.mailctl("config", "set", "max_message_size", "100000")
        wait_for(lambda: ehlo_size(mail1) == 100000 and
                 ehlo_size(mail2) == 100000, 1.0,
                 what="max_message_size on both nodes")
        took = time.monotonic() - t0
        self.assertLess(took, 1.0)

        self.mailctl("config", "set", "max_recipients", "2")
        wait_for(lambda: rcpt_codes(mail1, 3) == [250, 250, 452], 1.0,
                 what="max_recipients on mail1")
        # mail2's INI says 3: the cluster's 2 does not apply there.
        self.assertEqual(rcpt_codes(mail2, 4), [250, 250, 250, 452])

        r = self.mailctl("config", "list")
        self.assertEqual(r.stdout, "max_message_size 100000\n"
                                   "max_recipients 2\n")
        self.assertEqual(self.mailctl("config", "get",
                                      "max_recipients").stdout, "2\n")
        with open(os.path.join(mail1.spool, "config.snapshot")) as f:
            snap = json.load(f)
        self.assertEqual(snap["settings"], {"max_message_size": "100000",
                                            "max_recipients": "2"})

        # Bad values and keys: the INI's own bounds, nothing written.
        gen = self.redis.cli("GET", "ms:config:gen")
        for args, why in (
                (("max_recipients", "0"), "1..100000"),
                (("max_message_size", "12x"), "is not a size in bytes"),
                (("smtp_tls", "sometimes"), "is not may, encrypt or verify"),
                (("proxy_trusted", "10.0.0.0/99"), "proxy_trusted"),
                (("route:example.org", "nowhere"), "HOST:PORT"),
                (("spool", "/tmp"), "unknown key \"spool\""),
                (("no_such_key", "1"), "unknown key")):
            r = self.mailctl("config", "set", *args, check=False)
            self.assertEqual(r.returncode, 1, args)
            self.assertIn(why, r.stderr, args)
        self.assertEqual(self.redis.cli("GET", "ms:config:gen"), gen)
        self.mailctl("config", "set", "route:example.org", "127.0.0.1:2525")
        r = self.mailctl("config", "unset", "no_such_key", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not set", r.stderr)

        self.mailctl("config", "unset", "max_message_size")
        wait_for(lambda: ehlo_size(mail1) == 26214400 and
                 ehlo_size(mail2) == 26214400, 1.0,
                 what="max_message_size back to its default")
        self.assertIn("reloaded", mail1.log())

    def test_export_import_carry_settings(self):
        self.mailctl("config", "set", "max_recipients", "7")
        self.mailctl("config", "set", "proxy_trusted", "10.0.0.0/8, ::1")
        path = os.path.join(self.tmp, "export.json")
        self.mailctl("export", path)
        with open(path) as f:
            doc = json.load(f)
        self.assertEqual(doc["settings"], {"max_recipients": "7",
                                           "proxy_trusted": "10.0.0.0/8, ::1"})
        self.mailctl("wipe", "--yes")
        self.assertEqual(self.mailctl("config", "list").stdout, "")
        self.mailctl("import", path)
        self.assertEqual(self.mailctl("config", "list").stdout,
                         "max_recipients 7\nproxy_trusted 10.0.0.0/8, ::1\n")
        # A document with a bad setting is refused whole.
        doc["settings"]["max_recipients"] = "-1"
        with open(path, "w") as f:
            json.dump(doc, f)
        r = self.mailctl("import", path, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("max_recipients", r.stderr)
        self.assertEqual(self.mailctl("config", "get",
                                      "max_recipients").stdout, "7\n")
        # A node that starts takes them with its first load, and again
        # from its snapshot when it starts while Redis is away.
        self.mailctl("config", "set", "max_recipients", "2")
        mail1 = self.node("mail1", listen=("smtp",))
        self.assertEqual(rcpt_codes(mail1, 3), [250, 250, 452])
        mail1.stop()
        self.redis.stop()
        mail1.start(wait_directory=False)
        self.assertIn("cluster settings from the snapshot", mail1.log())
        self.assertEqual(rcpt_codes(mail1, 3), [250, 250, 452])

    def renew_cert(self, node):
        """A new self-signed certificate and key in place of node's."""
        cert, key = os.path.join(self.tmp, "cert.pem"), \
            os.path.join(self.tmp, "key.pem")
        new = os.path.join(self.tmp, "renewed")
        os.makedirs(new)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", os.path.join(new, "key.pem"),
                        "-out", os.path.join(new, "cert.pem"), "-days", "30",
                        "-subj", "/CN=renewed.localhost"], check=True,
                       capture_output=True, timeout=60)
        os.replace(os.path.join(new, "key.pem"), key)
        os.replace(os.path.join(new, "cert.pem"), cert)

    def sighup(self, node):
        before = node.log().count("reload")
        node.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: node.log().count("reload") > before, 5,
                 what="mailnode %s reload" % node.name)

    def smtps_cert(self, node):
        c = smtplib.SMTP_SSL("127.0.0.1", node.ports["smtps"], timeout=10,
                             context=tls_context())
        try:
            return peer_cert(c)
        finally:
            c.close()

    def test_sighup_new_certificate_sessions_go_on(self):
        mail1 = self.node("mail1", listen=("smtp", "smtps"))
        old = starttls(mail1)
        old_cert = peer_cert(old)
        self.assertEqual(self.smtps_cert(mail1), old_cert)
        plain = smtplib.SMTP("127.0.0.1", mail1.ports["smtp"], timeout=10)
        plain.ehlo()

        self.renew_cert(mail1)
        self.sighup(mail1)
        self.assertIn("reloaded", mail1.log())

        new = starttls(mail1)
        new_cert = peer_cert(new)
        self.assertNotEqual(new_cert, old_cert)
        new.quit()
        # The implicit TLS listener too.
        self.assertEqual(self.smtps_cert(mail1), new_cert)
        # A session opened before the reload upgrades with the new one.
        plain.starttls(context=tls_context())
        self.assertNotEqual(peer_cert(plain), old_cert)
        plain.quit()
        # The session in TLS from before goes on and delivers.
        old.sendmail("carol@remote.test", ["alice@example.test"], MSG)
        old.quit()
        self.assertEqual(len(self.maildir("alice@example.test")), 1)

    def test_sighup_broken_ini_refused_node_serves(self):
        mail1 = self.node("mail1", listen=("smtp",))
        with open(mail1.path) as f:
            good = f.read()
        broken = good.replace(
            "[listen]\n",
            "max_message_size = 4096\nmax_recipients = banana\n[listen]\n")
        with open(mail1.path, "w") as f:
            f.write(broken)
        self.sighup(mail1)
        log = mail1.log()
        self.assertIn("refused", log)
        line = broken.splitlines().index("max_recipients = banana") + 1
        self.assertIn("%s:%d: max_recipients" % (mail1.path, line), log)
        # Nothing applied, not even the good key; the node serves.
        self.assertEqual(ehlo_size(mail1), 26214400)
        self.deliver(mail1, MSG)
        self.assertEqual(len(self.maildir("alice@example.test")), 1)

        # Fixed: applied; a key that needs a restart keeps its value.
        fixed = good.replace(
            "[listen]\n", "max_message_size = 4096\n[listen]\n").replace(
            "hostname = mail1.example.test", "hostname = other.example.test")
        with open(mail1.path, "w") as f:
            f.write(fixed)
        self.sighup(mail1)
        self.assertEqual(ehlo_size(mail1), 4096)
        self.assertIn("hostname changed", mail1.log())
        c = smtplib.SMTP("127.0.0.1", mail1.ports["smtp"], timeout=10)
        self.assertIn(b"mail1.example.test", c.ehlo()[1])
        c.quit()


if __name__ == "__main__":
    import unittest
    unittest.main()
