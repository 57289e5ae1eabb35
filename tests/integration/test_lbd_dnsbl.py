"""lbd's SMTP DNSBL check for real, against dnstest.py's DNS server on a
loopback port: a listed client refused with the zone named, one not
listed greeted, weights summed against dnsbl_threshold, a zone that never
answers counting as not listing, allow skipping the lookup, the cache
honouring the TTL, the counters. Stand-in nodes are real processes."""
import time
import unittest

from dnstest import DnsServer
from lbdtest import LbdTestCase, free_port, wait_for
from test_lbd_edge import first_line
from test_lbd_relay import config


def blocked(addr, zone):
    return ("554 5.7.1 Service unavailable; client [%s] blocked using %s"
            % (addr, zone))


class DnsblTest(LbdTestCase):
    def setUp(self):
        super().setUp()
        self.dns = DnsServer().start()
        self.addCleanup(self.dns.stop)

    def start(self, extra, workers=1):
        node = self.node("n1", "smtp")
        port = free_port()
        l = self.lbd(config(port, [node], extra_service=extra, workers=workers,
                            lbd_extra="resolver = %s" % self.dns.address))
        l.wait_state("p", "n1", "up")
        return port, l

    def refused_by(self, l):
        return l.status()["services"][0]["refused_by"]

    def test_listed_refused_not_listed_greeted(self):
        self.dns.add_a("2.0.0.127.bl.test", "127.0.0.2")
        port, l = self.start("dnsbl = bl.test")
        self.assertEqual(first_line("127.0.0.2", port),
                         blocked("127.0.0.2", "bl.test"))
        self.assertIn("220 n1", first_line("127.0.0.3", port))
        self.assertEqual(self.dns.count("3.0.0.127.bl.test"), 1)
        self.assertEqual(self.refused_by(l)["dnsbl"], 1)

    def test_weights_summed_against_the_threshold(self):
        for zone in ("a.test", "b.test"):
            self.dns.add_a("5.0.0.127." + zone, "127.0.0.2")
        self.dns.add_a("4.0.0.127.a.test", "127.0.0.2")
        self.dns.add_a("6.0.0.127.c.test", "127.0.0.10")
        # the "query refused" answer of public lists is no listing
        self.dns.add_a("7.0.0.127.c.test", "127.255.255.254")
        port, l = self.start("dnsbl = a.test=1, b.test=1, c.test=3\n"
                             "dnsbl_threshold = 2")
        self.assertIn("220 n1", first_line("127.0.0.4", port))  # 1 < 2
        self.assertIn(first_line("127.0.0.5", port),
                      (blocked("127.0.0.5", "a.test"),
                       blocked("127.0.0.5", "b.test")))  # 1 + 1
        self.assertEqual(first_line("127.0.0.6", port),
                         blocked("127.0.0.6", "c.test"))  # 3
        self.assertIn("220 n1", first_line("127.0.0.7", port))
        self.assertEqual(self.refused_by(l)["dnsbl"], 2)

    def test_a_zone_that_times_out_counts_as_not_listing(self):
        self.dns.silent("slow.test")
        self.dns.add_a("2.0.0.127.bl.test", "127.0.0.2")
        port, l = self.start("dnsbl = slow.test=5, bl.test\n"
                             "dnsbl_timeout_ms = 300")
        t0 = time.monotonic()
        self.assertIn("220 n1", first_line("127.0.0.3", port))
        waited = time.monotonic() - t0
        self.assertGreaterEqual(waited, 0.29)
        self.assertLess(waited, 1.5)
        self.assertEqual(self.dns.count("3.0.0.127.slow.test"), 1)
        # a listing elsewhere still counts
        self.assertEqual(first_line("127.0.0.2", port),
                         blocked("127.0.0.2", "bl.test"))

    def test_allow_skips_the_lookup(self):
        self.dns.add_a("2.0.0.127.bl.test", "127.0.0.2")
        port, l = self.start("dnsbl = bl.test\nallow = 127.0.0.2")
        self.assertIn("220 n1", first_line("127.0.0.2", port))
        self.assertEqual(self.dns.count("2.0.0.127.bl.test"), 0)

    def test_cache_honours_the_ttl(self):
        self.dns.add_a("2.0.0.127.bl.test", "127.0.0.2", ttl=1)
        port, l = self.start("dnsbl = bl.test")
        name = "2.0.0.127.bl.test"
        for _ in range(3):
            self.assertEqual(first_line("127.0.0.2", port),
                             blocked("127.0.0.2", "bl.test"))
        self.assertEqual(self.dns.count(name), 1)
        time.sleep(1.2)
        self.assertEqual(first_line("127.0.0.2", port),
                         blocked("127.0.0.2", "bl.test"))
        self.assertEqual(self.dns.count(name), 2)
        # a name not listed is cached too (DNSBL_NEG_TTL_S)
        first_line("127.0.0.3", port)
        first_line("127.0.0.3", port)
        self.assertEqual(self.dns.count("3.0.0.127.bl.test"), 1)

    def test_pregreet_while_the_lookup_runs(self):
        self.dns.silent("slow.test")
        port, l = self.start("dnsbl = slow.test\ndnsbl_timeout_ms = 1000\n"
                             "pregreet = on")
        self.assertEqual(first_line("127.0.0.2", port, b"EHLO bot\r\n"),
                         "554 5.5.1 Protocol error: talking before the greeting")
        wait_for(lambda: self.refused_by(l)["pregreet"] == 1, 5,
                 what="pregreet counted")
        # the cancelled lookup's late end harms nothing
        time.sleep(1.2)
        self.assertIn("220 n1", first_line("127.0.0.3", port))


if __name__ == "__main__":
    unittest.main()
