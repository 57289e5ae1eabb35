"""An lbd upgrade under load refuses no connection: the successor started
with `lbd -x` takes the running lbd's listening sockets over its control
socket, the old one stops accepting and lets its connections finish.

Clients connect without pause (W1-like: connect, read the node's SMTP
greeting through lbd, close) across the upgrade; every one must get its
greeting. A plain stop-and-start under the same load is the control: it
refuses connections, which shows the load would see a refusal."""
import os
import socket
import threading
import time
import urllib.request

from lbdtest import Lbd, LbdTestCase, free_port, wait_for
from test_lbd_relay import config

CLIENTS = 4
LOAD_S = 1.0  # of load before and after the switch


class Load:
    """CLIENTS threads connecting to port until stopped; counts greetings
    and failures (refused, reset, no greeting), with the time of each."""

    def __init__(self, port):
        self.port = port
        self.ok = []  # time.monotonic() of each greeting
        self.failed = []  # (time, error)
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True)
                        for _ in range(CLIENTS)]
        for t in self.threads:
            t.start()

    def run(self):
        while not self.stopping.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port),
                                              timeout=5) as s:
                    line = s.makefile("rb").readline()
                if not line.startswith(b"220 "):
                    raise OSError("greeting %r" % line)
                self.ok.append(time.monotonic())
            except OSError as e:
                self.failed.append((time.monotonic(), repr(e)))

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(10)


class TestUpgrade(LbdTestCase):
    def setUp(self):
        super().setUp()
        self.port = free_port()
        self.mport = free_port()
        nodes = [self.node("n1"), self.node("n2")]
        self.conf = config(self.port, nodes, workers=2,
                           lbd_extra="metrics = 127.0.0.1:%d" % self.mport)
        self.old = self.lbd(self.conf)
        self.old.wait_state("p", "n1", "up")
        self.old.wait_state("p", "n2", "up")

    def successor(self, args):
        """A second lbd on the same config, control socket and state file
        (a new binary would be here), logging to its own file."""
        new = Lbd(self.tmp, self.conf, args=args)
        new.logpath = os.path.join(self.tmp, "lbd-new.log")
        self.lbds.append(new)
        return new

    def test_takeover_under_load_refuses_no_connection(self):
        load = Load(self.port)
        time.sleep(LOAD_S)
        new = self.successor(["-x"])
        switch = time.monotonic()
        new.start(wait=False)
        wait_for(lambda: self.old.proc.poll() is not None, 10,
                 what="the old lbd to finish")
        gone = time.monotonic()
        wait_for(new.ping, 10, what="the new lbd's control socket")
        time.sleep(LOAD_S)
        load.stop()
        self.assertEqual(load.failed, [], "refused or reset across the "
                         "upgrade (%d greetings)" % len(load.ok))
        self.assertEqual(self.old.proc.returncode, 0, self.old.log())
        self.assertGreater(len([t for t in load.ok if t < switch]), 50)
        self.assertGreater(len([t for t in load.ok if t > gone]), 50)
        self.assertIn("handover: 2 listening sockets given to a successor",
                      self.old.log())
        self.assertIn("handover: took 2 listening sockets", new.log())
        self.assertNotIn("not taken", new.log())
        # The successor runs the control socket and the metrics listener.
        self.assertEqual(new.node("p", "n1")["state"], "up")
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" %
                                    self.mport, timeout=5) as r:
            self.assertEqual(r.status, 200)
        print("upgrade under load: %d greetings, 0 failures" % len(load.ok))

    def test_plain_restart_under_load_refuses_connections(self):
        # The control: stop, then start, as without -x.
        load = Load(self.port)
        time.sleep(LOAD_S / 2)
        self.old.stop()
        new = self.successor([])
        new.start()
        time.sleep(LOAD_S / 2)
        load.stop()
        self.assertGreater(len(load.failed), 0)
        print("plain restart under load: %d greetings, %d failures" %
              (len(load.ok), len(load.failed)))

    def test_takeover_without_a_running_lbd_fails_clearly(self):
        self.old.stop()
        new = self.successor(["-x"])
        new.start(wait=False)
        new.proc.wait(10)
        self.assertEqual(new.proc.returncode, 1)
        self.assertIn("handover: control socket", new.log())
        self.assertIn("is the old lbd running", new.log())
