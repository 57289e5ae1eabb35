"""lbd's edge protection for real: per-source connection caps and rates
with several sources from 127.0.0.0/8 (a client socket bound to
127.0.0.2, 127.0.0.3, ...), each protocol's refusal text, allow and deny,
the table's bound, limits changed by SIGHUP with the table kept, the
counters in show status json, lbctl status and /metrics. Stand-in nodes
are real processes."""
import json
import signal
import socket
import time
import unittest

from lbdtest import LbdTestCase, free_port, recv_line, wait_for
from test_control import http_get
from test_lbd_relay import config

TOO_MANY = "Too many connections from your address, try again later"


def connect_from(src, port, timeout=3):
    """A connection to lbd from source address src."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def first_line(src, port, send=b""):
    """Connects from src, sends send, returns the first line heard."""
    with connect_from(src, port) as s:
        if send:
            s.sendall(send)
        return recv_line(s).rstrip("\r\n")


def read_all(s):
    """Everything s sends until it closes."""
    with s.makefile("rb") as f:
        return f.read().decode("latin-1")


def read_text(path):
    with open(path) as f:
        return f.read()


class EdgeTest(LbdTestCase):
    def start(self, proto="smtp", extra="", workers=2, lbd_extra="",
              node_args=()):
        node = self.node("n1", proto, args=node_args)
        port = free_port()
        l = self.lbd(config(port, [node], proto=proto, extra_service=extra,
                            workers=workers, lbd_extra=lbd_extra))
        l.wait_state("p", "n1", "up")
        return port, l

    def refused_by(self, l):
        return l.status()["services"][0]["refused_by"]

    def hold(self, src, port, n):
        """n connections from src, each past the node's greeting."""
        socks = []
        for _ in range(n):
            s = connect_from(src, port)
            self.assertIn("n1", recv_line(s))
            socks.append(s)
        return socks

    def close_all(self, socks):
        for s in socks:
            s.close()

    # -- max_conn_per_source ------------------------------------------------

    def test_max_conn_per_source_counts_each_source_across_workers(self):
        port, l = self.start(extra="max_conn_per_source = 3", workers=4)
        held = self.hold("127.0.0.2", port, 3)
        self.assertEqual(first_line("127.0.0.2", port),
                         "421 4.7.0 " + TOO_MANY)
        # another source is not affected
        other = self.hold("127.0.0.3", port, 3)
        self.assertEqual(self.refused_by(l)["max_conn_per_source"], 1)
        # a closed connection gives its place back
        held.pop().close()
        wait_for(lambda: l.status()["services"][0]["active"] == 5, 5,
                 what="the close seen")
        held += self.hold("127.0.0.2", port, 1)
        self.close_all(held + other)

    def test_refusal_text_per_protocol(self):
        want = {
            "imap": "* BYE [UNAVAILABLE] " + TOO_MANY,
            "pop3": "-ERR [SYS/TEMP] " + TOO_MANY,
        }
        for proto, text in want.items():
            with self.subTest(proto=proto):
                port, l = self.start(proto, "max_conn_per_source = 1")
                held = self.hold("127.0.0.2", port, 1)
                self.assertEqual(first_line("127.0.0.2", port), text)
                self.close_all(held)
                l.stop()
                self.nodes.pop().kill()

    def test_http_gets_429_with_retry_after(self):
        port, l = self.start("http", "max_conn_per_source = 1\n"
                             "deny = 127.0.0.9")
        with connect_from("127.0.0.2", port) as held:
            # the stand-in answers one request; lbd counts the connection
            # until it ends, so hold it open without a request
            wait_for(lambda: l.status()["services"][0]["active"] == 1, 5,
                     what="one connection")
            with connect_from("127.0.0.2", port) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                resp = read_all(s)
        head, body = resp.split("\r\n\r\n", 1)
        lines = head.split("\r\n")
        self.assertEqual(lines[0], "HTTP/1.1 429 Too Many Requests")
        self.assertIn("Retry-After: 60", lines)
        self.assertIn("Content-Length: %d" % len(body), lines)
        self.assertEqual(body, TOO_MANY + "\n")
        with connect_from("127.0.0.9", port) as s:
            self.assertTrue(read_all(s).startswith(
                "HTTP/1.1 429 Too Many Requests\r\n"))

    # -- rate_per_source ----------------------------------------------------

    def test_rate_per_source(self):
        port, l = self.start(extra="rate_per_source = 3/2")
        for _ in range(3):
            self.assertIn("n1", first_line("127.0.0.2", port))
        self.assertEqual(first_line("127.0.0.2", port),
                         "421 4.7.0 " + TOO_MANY)
        self.assertIn("n1", first_line("127.0.0.3", port))
        self.assertEqual(self.refused_by(l)["rate_per_source"], 1)
        time.sleep(2.1)  # a new window
        self.assertIn("n1", first_line("127.0.0.2", port))

    # -- allow and deny -----------------------------------------------------

    def test_allow_and_deny(self):
        port, l = self.start(extra="max_conn_per_source = 1\n"
                             "allow = 127.0.0.6/32, 127.0.1.0/24\n"
                             "deny = 127.0.0.5, 127.0.1.7")
        self.assertEqual(first_line("127.0.0.5", port),
                         "554 5.7.1 Access denied")
        # allow wins over deny, and has no per-source cap
        held = self.hold("127.0.0.6", port, 3) + self.hold("127.0.1.7", port, 2)
        self.assertEqual(self.refused_by(l)["deny"], 1)
        self.assertEqual(self.refused_by(l)["max_conn_per_source"], 0)
        self.close_all(held)

    def test_deny_text_imap_pop3(self):
        for proto, text in (("imap", "* BYE [UNAVAILABLE] Access denied"),
                            ("pop3", "-ERR [SYS/TEMP] Access denied")):
            with self.subTest(proto=proto):
                port, l = self.start(proto, "deny = 127.0.0.0/30")
                self.assertEqual(first_line("127.0.0.2", port), text)
                self.assertIn("n1", first_line("127.0.0.4", port))
                l.stop()
                self.nodes.pop().kill()

    # -- the table's bound --------------------------------------------------

    def test_table_bound_drops_least_recently_seen(self):
        port, l = self.start(extra="rate_per_source = 1/600\n"
                             "source_table_size = 3")
        for src in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            self.assertIn("n1", first_line(src, port))
        # .3 seen again (refused): .2 is now the least recently seen
        self.assertEqual(first_line("127.0.0.3", port), "421 4.7.0 " + TOO_MANY)
        self.assertIn("n1", first_line("127.0.0.5", port))  # drops .2
        self.assertEqual(l.status()["services"][0]["sources"], 3)
        self.assertIn("n1", first_line("127.0.0.2", port))  # forgotten: new
        # .3 was kept (seen more recently than .4, which .2 dropped)
        self.assertEqual(first_line("127.0.0.3", port), "421 4.7.0 " + TOO_MANY)
        self.assertEqual(first_line("127.0.0.5", port), "421 4.7.0 " + TOO_MANY)
        self.assertEqual(l.status()["services"][0]["sources"], 3)

    # -- reload -------------------------------------------------------------

    def test_limits_change_on_sighup_and_the_table_stays(self):
        port, l = self.start(extra="max_conn_per_source = 1")
        held = self.hold("127.0.0.2", port, 1)
        self.assertEqual(first_line("127.0.0.2", port), "421 4.7.0 " + TOO_MANY)
        with open(l.path) as f:
            text = f.read().replace("max_conn_per_source = 1",
                                    "max_conn_per_source = 2\n"
                                    "deny = 127.0.0.8")
        with open(l.path, "w") as f:
            f.write(text)
        l.signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in l.log(), 5, what="reload")
        # the held connection still counts: one more, not two
        held += self.hold("127.0.0.2", port, 1)
        self.assertEqual(first_line("127.0.0.2", port), "421 4.7.0 " + TOO_MANY)
        self.assertEqual(first_line("127.0.0.8", port), "554 5.7.1 Access denied")
        by = self.refused_by(l)
        self.assertEqual((by["max_conn_per_source"], by["deny"]), (2, 1))
        self.close_all(held)

    # -- pregreet and greet_delay_ms -----------------------------------------

    PREGREET = "554 5.5.1 Protocol error: talking before the greeting"

    def test_pregreet_during_the_greet_delay(self):
        port, l = self.start(extra="pregreet = on\ngreet_delay_ms = 500")
        t0 = time.monotonic()
        self.assertEqual(first_line("127.0.0.2", port, b"EHLO bot\r\n"),
                         self.PREGREET)
        self.assertLess(time.monotonic() - t0, 0.4)  # caught at once
        self.assertEqual(self.refused_by(l)["pregreet"], 1)
        # no node session was opened for it
        self.assertEqual(l.node("p", "n1")["total"], 0)

    def test_pregreet_before_a_slow_node_greets_ends_its_session(self):
        port, l = self.start(extra="pregreet = on",
                             node_args=("--greet-delay-ms", "400"))
        node_log = self.nodes[0].log.name
        self.assertEqual(first_line("127.0.0.2", port, b"EHLO bot\r\n"),
                         self.PREGREET)
        # the node heard QUIT (not the bot's EHLO), after its greeting
        wait_for(lambda: "smtp got QUIT" in read_text(node_log), 5,
                 what="QUIT at the node")
        self.assertEqual(self.refused_by(l)["pregreet"], 1)

    def test_polite_client_waits_greet_delay_ms_and_no_more(self):
        port, l = self.start(extra="pregreet = on\ngreet_delay_ms = 400")
        for src in ("127.0.0.2", "127.0.0.3"):
            with connect_from(src, port) as s:
                t0 = time.monotonic()
                line = recv_line(s)
                waited = time.monotonic() - t0
                self.assertIn("220 n1", line)
                self.assertGreaterEqual(waited, 0.39)
                self.assertLess(waited, 0.4 + 0.3)
                s.sendall(b"EHLO polite\r\n")
                self.assertTrue(recv_line(s).startswith("250-n1"))
        self.assertEqual(self.refused_by(l)["pregreet"], 0)

    def test_without_pregreet_early_talk_is_held_not_refused(self):
        port, l = self.start(extra="greet_delay_ms = 200")
        with connect_from("127.0.0.2", port) as s:
            s.sendall(b"EHLO early\r\n")
            self.assertIn("220 n1", recv_line(s))
            self.assertTrue(recv_line(s).startswith("250-n1"))

    def test_allowed_source_skips_pregreet_and_delay(self):
        port, l = self.start(extra="pregreet = on\ngreet_delay_ms = 2000\n"
                             "allow = 127.0.0.2")
        t0 = time.monotonic()
        with connect_from("127.0.0.2", port) as s:
            s.sendall(b"EHLO friend\r\n")
            self.assertIn("220 n1", recv_line(s))
            self.assertTrue(recv_line(s).startswith("250-n1"))
        self.assertLess(time.monotonic() - t0, 1.5)

    # -- counters -----------------------------------------------------------

    def test_counters_in_status_lbctl_and_metrics(self):
        mport = free_port()
        port, l = self.start(extra="deny = 127.0.0.7\nrate_per_source = 1/600",
                             lbd_extra="metrics = 127.0.0.1:%d" % mport)
        first_line("127.0.0.7", port)
        first_line("127.0.0.7", port)
        first_line("127.0.0.2", port)
        first_line("127.0.0.2", port)
        svc = json.loads(l.ctl("status", "--json").stdout)["services"][0]
        self.assertEqual(svc["refused_by"],
                         {"deny": 2, "max_conn_per_source": 0,
                          "rate_per_source": 1, "pregreet": 0, "dnsbl": 0})
        self.assertEqual(svc["sources"], 1)
        text = l.ctl("status").stdout.splitlines()
        i = text.index("")
        self.assertEqual(text[i + 1].split(),
                         ["SERVICE", "SOURCES", "DENY", "MAX-CONN", "RATE",
                          "PREGREET", "DNSBL"])
        self.assertEqual(text[i + 2].split(),
                         ["front", "1", "2", "0", "1", "0", "0"])
        metrics = http_get(mport, b"GET /metrics HTTP/1.0\r\n\r\n")
        self.assertIn('lbd_service_edge_refused_total{service="front",'
                      'reason="deny"} 2\n', metrics)
        self.assertIn('lbd_service_edge_refused_total{service="front",'
                      'reason="rate_per_source"} 1\n', metrics)
        self.assertIn('lbd_service_edge_sources{service="front"} 1\n', metrics)

    def test_no_edge_keys_no_edge_table_in_lbctl_status(self):
        port, l = self.start()
        self.assertNotIn("SERVICE", l.ctl("status").stdout)
        self.assertIn("n1", first_line("127.0.0.2", port))

    def test_bad_keys_refused(self):
        for extra, why in (("rate_per_source = 3", "COUNT/SECONDS"),
                           ("allow = 10.0.0.0/33", "allow"),
                           ("source_table_size = 0", "source_table_size"),
                           ("pregreet = on", "protocol = smtp")):
            with self.subTest(extra=extra):
                node = self.node("x", "imap")
                l = self.lbd(config(free_port(), [node], proto="imap",
                                    extra_service=extra), start=False)
                l.start(wait=False)
                self.assertNotEqual(l.proc.wait(10), 0)
                self.assertIn(why, l.log())
                self.nodes.pop().kill()


if __name__ == "__main__":
    unittest.main()
