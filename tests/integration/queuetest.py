"""The outbound queue's test fixture: a node whose queue delivers to a
scripted remote MX (mxtest.py) found through a test DNS server
(dnstest.py), and what the queue's test modules share
(test_queue*.py, test_demo.py)."""
import glob
import json
import os
import smtplib
import sys
import urllib.request

from dnstest import ZoneServer
from mxtest import ScriptedMX
from nodetest import NodeTestCase


BODY = (b"From: alice@example.test\r\nTo: carol@remote.test\r\n"
        b"Subject: outbound\r\n\r\nline one\r\n.leading dot\r\n"
        b"\xc3\xa9t\xc3\xa9 8bit\r\n")


class QueueTestCase(NodeTestCase):
    def setUp(self):
        super().setUp()
        self.mx = ScriptedMX()
        self.dns = ZoneServer({
            "remote.test": [("MX", 10, "mx1.remote.test")],
            "mx1.remote.test": [("A", "127.0.0.1")],
            "implicit.test": [("A", "127.0.0.1")],
            "nullmx.test": [("MX", 0, ".")],
        })
        self.queue = os.path.join(self.store, ".queue")

    def tearDown(self):
        self.mx.stop()
        self.dns.stop()
        super().tearDown()

    def outbound_node(self, name="mail1", roles=None, extra="", **kw):
        cfg = ("allow_plaintext_auth = yes\nresolver = 127.0.0.1:%d\n"
               "mx_port = %d\nqueue_retry_min_s = 1\nqueue_retry_max_s = 2\n"
               % (self.dns.port, self.mx.port))
        if roles:
            cfg += "roles = %s\n" % roles
        return self.node(name, extra_node=cfg + extra, **kw)

    def submit(self, node, rcpts, body=BODY, sender="alice@example.test",
               user="alice@example.test"):
        c = smtplib.SMTP("127.0.0.1", node.ports["submission"], timeout=10)
        c.login(user, "demo")
        c.sendmail(sender, rcpts, body)
        c.quit()

    def queued(self):
        return sorted(glob.glob(os.path.join(self.queue, "*.env")))

    def health(self, node):
        with urllib.request.urlopen("http://127.0.0.1:%d/health" %
                                    node.ports["http"], timeout=5) as r:
            return json.loads(r.read())


def import_dkim():
    """dkimpy from Debian's python3-dkim, also under another python3."""
    try:
        import dkim
    except ImportError:
        sys.path.append("/usr/lib/python3/dist-packages")
        import dkim
    return dkim

