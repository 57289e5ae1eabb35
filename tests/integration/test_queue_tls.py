"""STARTTLS on outbound mail: may, encrypt, verify, and AUTH to a
relayhost inside TLS."""
import os
import subprocess
import unittest

from lbdtest import wait_for
from mxtest import ScriptedMX
from queuetest import BODY, QueueTestCase


class TlsTest(QueueTestCase):
    def setUp(self):
        super().setUp()
        self.cert = os.path.join(self.tmp, "mx-cert.pem")
        self.key = os.path.join(self.tmp, "mx-key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", self.key, "-out", self.cert,
                        "-days", "30", "-subj", "/CN=mx1.remote.test",
                        "-addext", "subjectAltName=DNS:mx1.remote.test"],
                       check=True, capture_output=True, timeout=60)
        self.mx.stop()
        self.mx = ScriptedMX(tls=(self.cert, self.key))

    def test_starttls_when_offered(self):
        n = self.outbound_node()  # smtp_tls = may, the default
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: self.mx.delivered, 15, what="delivery")
        self.assertEqual(self.mx.tls_delivered, 1)
        self.assertEqual(self.mx.sni, ["mx1.remote.test"])
        self.assertTrue(self.mx.delivered[0][2].endswith(BODY))
        self.assertIn("TLS with mx1.remote.test[127.0.0.1]", n.log())

    def test_encrypt_needs_starttls(self):
        self.mx.stop()
        self.mx = ScriptedMX()  # no STARTTLS
        n = self.outbound_node(extra="smtp_tls = encrypt\n")
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: "status=deferred" in n.log(), 15, what="deferral")
        self.assertIn("451 4.7.5 TLS is required, but was not offered", n.log())
        self.assertEqual(self.mx.delivered, [])

    def test_relayhost_auth_inside_tls(self):
        self.mx.auth = ("relayuser", "s3cret")
        pw = os.path.join(self.tmp, "relay.pw")
        with open(pw, "w") as f:
            f.write("s3cret\n")
        n = self.outbound_node(
            extra="relayhost = 127.0.0.1:%d\nrelayhost_user = relayuser\n"
                  "relayhost_password_file = %s\n" % (self.mx.port, pw))
        self.submit(n, ["x@nowhere.test"])
        wait_for(lambda: self.mx.delivered, 15, what="delivery through AUTH")
        self.assertEqual(self.mx.authed, ["relayuser"])
        self.assertEqual(self.mx.tls_delivered, 1)
        n.stop()  # the queue is shared: only the next node may take it
        with open(pw, "w") as f:
            f.write("wrong\n")
        m = self.outbound_node("mail2", extra="relayhost = 127.0.0.1:%d\n"
                               "relayhost_user = relayuser\n"
                               "relayhost_password_file = %s\n" % (self.mx.port, pw))
        self.mx.authed = []
        self.submit(m, ["y@nowhere.test"])
        wait_for(lambda: "status=deferred (535 5.7.8" in m.log(), 15,
                 what="refused AUTH")
        self.assertEqual(len(self.mx.delivered), 1)

    def test_verify_checks_chain_and_name(self):
        n = self.outbound_node(
            extra="smtp_tls = verify\nsmtp_tls_ca = %s\n" % self.cert,
            sections="[route]\nbyaddress.test = 127.0.0.1:%d\n" % self.mx.port)
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: self.mx.delivered, 15, what="verified delivery")
        self.assertEqual(self.mx.tls_delivered, 1)
        self.assertIn("(verified)", n.log())
        # A route by address: the certificate does not name 127.0.0.1.
        self.submit(n, ["dave@byaddress.test"])
        wait_for(lambda: "to=<dave@byaddress.test>" in n.log(), 15,
                 what="attempt by address")
        self.assertRegex(n.log(), r"to=<dave@byaddress\.test>.*status=deferred "
                         r"\(451 4\.4\.2 lost connection with 127\.0\.0\.1"
                         r"\[127\.0\.0\.1\]:\d+ while starting TLS")
        self.assertEqual(len(self.mx.delivered), 1)


if __name__ == "__main__":
    unittest.main()
