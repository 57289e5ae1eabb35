"""The README's rolling upgrade of the nodes, run as written while mail
keeps coming through lbd: for each node in turn, drain it with lbctl,
wait until it holds no connection, stop it, start it again (where the new
version would be installed), enable it, wait until lbd has it up. Every
message the sender was told 250 is in the store exactly once, and no
sender was refused along the way."""
import re
import smtplib
import threading
import time

from lbdtest import Lbd, free_port, wait_for
from nodetest import NodeTestCase


def lbd_config(port, nodes):
    lines = "".join("node = %s 127.0.0.1:%d\n" % (n.name, n.ports["smtp"])
                    for n in nodes)
    return ("[lbd]\ncontrol = {control}\nstate_file = {state}\nworkers = 1\n"
            "grace_s = 5\n[service mx]\nlisten = 127.0.0.1:%d\n"
            "protocol = smtp\npool = p\nretries = 2\n"
            "connect_timeout_ms = 500\n[pool p]\ncheck = smtp\n"
            "check_interval_ms = 200\ncheck_timeout_ms = 1000\nrise = 2\n"
            "fall = 2\n%s" % (port, lines))


class Sender:
    """Sends one message per SMTP session through lbd, without pause,
    until stopped; remembers what got 250 and what failed."""

    def __init__(self, port):
        self.port = port
        self.accepted, self.failed = [], []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        i = 0
        while not self.stopping.is_set():
            i += 1
            subject = "rolling-%d" % i
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as c:
                    c.sendmail("carol@remote.test", ["alice@example.test"],
                               "Subject: %s\r\n\r\nbody %d\r\n" % (subject, i))
                self.accepted.append(subject)
            except (OSError, smtplib.SMTPException) as e:
                self.failed.append((subject, repr(e)))
            time.sleep(0.01)

    def stop(self):
        self.stopping.set()
        self.thread.join(20)


class RollingUpgradeTest(NodeTestCase):
    def test_rolling_upgrade_loses_no_mail(self):
        nodes = [self.node("mail1", listen=("smtp",)),
                 self.node("mail2", listen=("smtp",))]
        port = free_port()
        l = Lbd(self.tmp, lbd_config(port, nodes))
        self.addCleanup(l.stop)
        l.start()
        for n in nodes:
            l.wait_state("p", n.name, "up")
        sender = Sender(port)
        self.addCleanup(sender.stop)
        wait_for(lambda: len(sender.accepted) >= 10, 20, what="mail flowing")
        for n in nodes:
            before = len(sender.accepted)
            # 1. drain: new connections go to the other node
            l.ctl("node", "drain", "p", n.name)
            # 2. wait until the node holds no connection
            wait_for(lambda: l.node("p", n.name)["active"] == 0, 20,
                     what="%s drained" % n.name)
            # 3. stop it (SIGTERM: what is in progress completes)
            self.assertEqual(n.stop(), 0, n.log())
            # 4. the new version would be installed here; 5. start it
            n.start()
            # 6. enable it and wait until lbd's probes have it up
            l.ctl("node", "enable", "p", n.name)
            l.wait_state("p", n.name, "up", timeout=20)
            wait_for(lambda: len(sender.accepted) >= before + 10, 20,
                     what="mail flowing after %s" % n.name)
        sender.stop()
        self.assertEqual(sender.failed, [])
        stored = [re.search(rb"^Subject: (\S+)", m, re.M).group(1).decode()
                  for m in self.messages("alice@example.test")]
        self.assertEqual(sorted(stored), sorted(sender.accepted))
        self.assertEqual(len(set(stored)), len(stored))
        # Both nodes served mail between their restarts.
        for n in nodes:
            self.assertIn("from=<carol@remote.test> rcpts=1", n.log())
        print("rolling upgrade: %d messages accepted, none refused, all "
              "stored once" % len(sender.accepted))
