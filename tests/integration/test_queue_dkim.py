"""DKIM signatures on outbound mail (RSA and Ed25519), verified by an
independent verifier (python3-dkim)."""
import os
import re
import subprocess
import unittest

from lbdtest import wait_for
from queuetest import BODY, QueueTestCase, import_dkim


class DkimTest(QueueTestCase):
    def key(self, name, algorithm):
        path = os.path.join(self.tmp, name)
        opts = ["-pkeyopt", "rsa_keygen_bits:2048"] if algorithm == "RSA" else []
        subprocess.run(["openssl", "genpkey", "-algorithm", algorithm] + opts +
                       ["-out", path], check=True, capture_output=True,
                       timeout=60)
        return path

    def dkim_set(self, domain, selector, path):
        out = self.mailctl("-q", self.queue, "dkim", "set", domain, selector,
                           path).stdout
        m = re.match(r'^(\S+)\._domainkey\.(\S+)\. IN TXT "(.+)"\n$', out)
        self.assertIsNotNone(m, out)
        self.assertEqual((m.group(1), m.group(2)), (selector, domain))
        return m.group(3)

    def verify(self, data, records):
        dkim = import_dkim()

        def dnsfunc(name, timeout=5):
            name = name.decode() if isinstance(name, bytes) else name
            return records.get(name.rstrip("."), "").encode()
        return dkim.verify(data, dnsfunc=dnsfunc)

    def test_signed_rsa_and_ed25519_verified_independently(self):
        rsa = self.dkim_set("example.test", "s2048", self.key("rsa.pem", "RSA"))
        self.assertTrue(rsa.startswith("v=DKIM1; k=rsa; p="))
        mode = os.stat(os.path.join(self.queue, ".dkim", "example.test")).st_mode
        self.assertEqual(mode & 0o777, 0o600)
        show = self.mailctl("-q", self.queue, "dkim", "show", "example.test").stdout
        self.assertIn(rsa, show)
        n = self.outbound_node()
        self.submit(n, ["carol@remote.test"])
        wait_for(lambda: self.mx.delivered, 15, what="delivery")
        data = self.mx.delivered[0][2]
        self.assertTrue(data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; "
                                        b"c=relaxed/relaxed; d=example.test; s=s2048;"))
        self.assertTrue(data.endswith(BODY))
        records = {"s2048._domainkey.example.test": rsa}
        self.assertTrue(self.verify(data, records))
        self.assertFalse(self.verify(data.replace(b"line one", b"line 1"), records))

        ed = self.dkim_set("example.test", "ed1", self.key("ed.pem", "ed25519"))
        self.assertTrue(ed.startswith("v=DKIM1; k=ed25519; p="))
        self.submit(n, ["dave@remote.test"])
        wait_for(lambda: len(self.mx.delivered) == 2, 15, what="second delivery")
        data = self.mx.delivered[1][2]
        self.assertIn(b"a=ed25519-sha256", data.split(b"\r\n")[0])
        records = {"ed1._domainkey.example.test": ed}
        self.assertTrue(self.verify(data, records))
        self.assertFalse(self.verify(data.replace(b"outbound", b"inbound"), records))

        self.mailctl("-q", self.queue, "dkim", "del", "example.test")
        self.submit(n, ["erin@remote.test"])
        wait_for(lambda: len(self.mx.delivered) == 3, 15, what="third delivery")
        self.assertNotIn(b"DKIM-Signature", self.mx.delivered[2][2])

    def test_bad_key_refused(self):
        bad = os.path.join(self.tmp, "bad.pem")
        with open(bad, "w") as f:
            f.write("not a key\n")
        r = self.mailctl("-q", self.queue, "dkim", "set", "example.test", "s",
                         bad, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not an RSA or Ed25519 private key", r.stderr)


if __name__ == "__main__":
    unittest.main()
