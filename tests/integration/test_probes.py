"""The health probes against stand-in servers: each probe type's verdict and
reason for healthy, broken, silent and refusing nodes, TLS and STARTTLS with
certificate checks, logins, the polite ending of every session, and many
probes in flight at once.

Run from tests/integration: MS_TESTBIN=<build>/tests python3 -m unittest -v
test_probes. It drives <build>/tests/probe_check."""

import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import probe_servers as ps

TESTBIN = os.environ.get("MS_TESTBIN", os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "tests"))
PROBE_CHECK = os.path.join(TESTBIN, "probe_check")


def probe(check, addr, *args, timeout_ms=2000):
    """Runs probe_check. Returns (exit code, output lines, seconds)."""
    start = time.monotonic()
    r = subprocess.run(
        [PROBE_CHECK, check, addr, "--timeout-ms", str(timeout_ms)]
        + list(args), capture_output=True, text=True, timeout=60)
    took = time.monotonic() - start
    # a sanitizer build reports there; probe_check itself says nothing
    if r.stderr:
        raise AssertionError("probe_check stderr: " + r.stderr[-2000:])
    return r.returncode, r.stdout.splitlines(), took


class ProbeCase(unittest.TestCase):
    def assertPass(self, check, addr, *args, **kw):
        rc, out, _ = probe(check, addr, *args, **kw)
        self.assertEqual(len(out), 1, out)
        self.assertRegex(out[0], r"^ok \d+\.\d+$")
        self.assertEqual(rc, 0)

    def assertFail(self, check, addr, reason, *args, **kw):
        """reason: a regular expression the whole reason must match."""
        rc, out, took = probe(check, addr, *args, **kw)
        self.assertEqual(len(out), 1, out)
        self.assertTrue(out[0].startswith("fail "), out)
        self.assertRegex(out[0][5:], "^(?:%s)$" % reason)
        self.assertEqual(rc, 1)
        return took


@unittest.skipUnless(os.access(PROBE_CHECK, os.X_OK), "no probe_check built")
class TestTcp(ProbeCase):
    def test_listening_port_passes(self):
        with ps.StandIn(ps.silent_handler) as srv:
            self.assertPass("tcp", srv.addr)

    def test_refused_port(self):
        port = ps.free_port_refused()
        self.assertFail("tcp", "127.0.0.1:%d" % port, "connect refused")

    def test_connect_timeout(self):
        full = ps.FullBacklog()
        try:
            took = self.assertFail("tcp", full.addr, "connect timeout",
                                   timeout_ms=500)
            self.assertGreater(took, 0.45)
            self.assertLess(took, 3)
        finally:
            full.close()

    def test_ipv6(self):
        try:
            srv = ps.StandIn(ps.smtp_handler(), host="::1")
        except OSError:
            self.skipTest("no IPv6 loopback")
        with srv:
            self.assertPass("smtp", srv.addr)
            self.assertTrue(any(c.startswith("EHLO [IPv6:::1]")
                                for c in srv.commands), srv.commands)


@unittest.skipUnless(os.access(PROBE_CHECK, os.X_OK), "no probe_check built")
class TestSmtp(ProbeCase):
    def test_healthy_multiline_greeting_and_quit(self):
        with ps.StandIn(ps.smtp_handler()) as srv:
            self.assertPass("smtp", srv.addr)
            self.assertEqual(srv.sessions[0], ["EHLO [127.0.0.1]", "QUIT"])

    def test_bad_greeting_fails_and_quits(self):
        with ps.StandIn(ps.smtp_handler(
                greeting=("554 5.3.2 too busy, go away " + "x" * 60,))) as srv:
            self.assertFail("smtp", srv.addr,
                            re.escape("bad greeting: 554 5.3.2 too busy, "
                                      "go away xxxxxxxxxxxx"))
            self.assertEqual(srv.sessions[0], ["QUIT"])

    def test_garbage_greeting(self):
        with ps.StandIn(ps.greeting_handler("SSH-2.0-OpenSSH\r\n")) as srv:
            self.assertFail("smtp", srv.addr, "bad greeting: SSH-2.0-OpenSSH")

    def test_ehlo_refused(self):
        with ps.StandIn(ps.smtp_handler(
                ehlo=("550-5.7.1 no", "550 5.7.1 not you"))) as srv:
            self.assertFail("smtp", srv.addr, "EHLO refused: 550 5.7.1 not you")
            self.assertTrue(srv.saw("QUIT"))

    def test_silent_server_times_out_within_bound(self):
        with ps.StandIn(ps.silent_handler) as srv:
            took = self.assertFail("smtp", srv.addr, "timeout", timeout_ms=400)
            self.assertGreater(took, 0.35)
            self.assertLess(took, 2.5)

    def test_timeout_covers_the_whole_probe(self):
        with ps.StandIn(ps.smtp_handler(stall_after_ehlo=True)) as srv:
            took = self.assertFail("smtp", srv.addr, "timeout", timeout_ms=400)
            self.assertLess(took, 2.5)

    def test_connection_closed(self):
        with ps.StandIn(ps.closing_handler) as srv:
            self.assertFail("smtp", srv.addr, "connection closed")

    def test_overlong_line(self):
        with ps.StandIn(ps.greeting_handler("220 " + "x" * 3000)) as srv:
            self.assertFail("smtp", srv.addr, "line too long")


@unittest.skipUnless(os.access(PROBE_CHECK, os.X_OK), "no probe_check built")
class TestImap(ProbeCase):
    def test_healthy_and_logout(self):
        with ps.StandIn(ps.imap_handler()) as srv:
            self.assertPass("imap", srv.addr)
            self.assertEqual(srv.sessions[0], ["a1 LOGOUT"])

    def test_bad_greeting(self):
        with ps.StandIn(ps.imap_handler(greeting="* BYE too many")) as srv:
            self.assertFail("imap", srv.addr, re.escape("bad greeting: * BYE "
                                                        "too many"))
            self.assertTrue(srv.saw("a1 LOGOUT"))

    def test_login_select_logout(self):
        users = {"probe@example.test": 'p"a\\ss'}
        with ps.StandIn(ps.imap_handler(users=users)) as srv:
            self.assertPass("imap", srv.addr, "--user", "probe@example.test",
                            "--password", 'p"a\\ss')
            self.assertEqual(srv.sessions[0], [
                'a1 LOGIN "probe@example.test" "p\\"a\\\\ss"',
                '<login probe@example.test p"a\\ss>',
                "a2 SELECT INBOX", "a3 LOGOUT"])

    def test_failed_login_names_the_answer_and_logs_out(self):
        with ps.StandIn(ps.imap_handler(users={})) as srv:
            self.assertFail("imap", srv.addr,
                            re.escape("login failed: NO [AUTHENTICATIONFAILED]"
                                      " Invalid creden"),
                            "--user", "probe", "--password", "bad")
            self.assertTrue(srv.saw("a2 LOGOUT"))

    def test_failed_select(self):
        with ps.StandIn(ps.imap_handler(users={"u": "p"},
                                        select_ok=False)) as srv:
            self.assertFail("imap", srv.addr,
                            re.escape("SELECT INBOX failed: NO [UNAVAILABLE] "
                                      "store unreachable"),
                            "--user", "u", "--password", "p")
            self.assertTrue(srv.saw("a3 LOGOUT"))


@unittest.skipUnless(os.access(PROBE_CHECK, os.X_OK), "no probe_check built")
class TestPop3(ProbeCase):
    def test_healthy_and_quit(self):
        with ps.StandIn(ps.pop3_handler()) as srv:
            self.assertPass("pop3", srv.addr)
            self.assertEqual(srv.sessions[0], ["QUIT"])

    def test_bad_greeting(self):
        with ps.StandIn(ps.pop3_handler(greeting="-ERR [SYS/TEMP] down")) \
                as srv:
            self.assertFail("pop3", srv.addr,
                            re.escape("bad greeting: -ERR [SYS/TEMP] down"))
            self.assertTrue(srv.saw("QUIT"))

    def test_login_stat_quit(self):
        with ps.StandIn(ps.pop3_handler(users={"u@x": "secret"})) as srv:
            self.assertPass("pop3", srv.addr, "--user", "u@x",
                            "--password", "secret")
            self.assertEqual(srv.sessions[0],
                             ["USER u@x", "PASS secret", "STAT", "QUIT"])

    def test_failed_login_and_quit(self):
        with ps.StandIn(ps.pop3_handler(users={})) as srv:
            self.assertFail("pop3", srv.addr,
                            re.escape("login failed: -ERR [AUTH] invalid "
                                      "credentials"),
                            "--user", "u", "--password", "p")
            self.assertEqual(srv.sessions[0], ["USER u", "PASS p", "QUIT"])

    def test_failed_stat(self):
        with ps.StandIn(ps.pop3_handler(users={"u": "p"},
                                        stat_ok=False)) as srv:
            self.assertFail("pop3", srv.addr,
                            re.escape("STAT failed: -ERR [SYS/TEMP] store "
                                      "unreachable"),
                            "--user", "u", "--password", "p")
            self.assertTrue(srv.saw("QUIT"))


@unittest.skipUnless(os.access(PROBE_CHECK, os.X_OK), "no probe_check built")
class TestHttp(ProbeCase):
    def test_healthy_request(self):
        with ps.StandIn(ps.http_handler()) as srv:
            self.assertPass("http", srv.addr, "--path", "/health")
            self.assertEqual(srv.sessions[0][0], "GET /health HTTP/1.0")
            self.assertIn("Host: " + srv.addr, srv.sessions[0])
            self.assertIn("Connection: close", srv.sessions[0])

    def test_default_path(self):
        with ps.StandIn(ps.http_handler()) as srv:
            self.assertPass("http", srv.addr)
            self.assertEqual(srv.sessions[0][0], "GET / HTTP/1.0")

    def test_http_500(self):
        with ps.StandIn(ps.http_handler("500 Internal Server Error")) as srv:
            self.assertFail("http", srv.addr, "HTTP 500")

    def test_redirect_is_not_healthy(self):
        with ps.StandIn(ps.http_handler("302 Found")) as srv:
            self.assertFail("http", srv.addr, "HTTP 302")

    def test_bad_status_line(self):
        with ps.StandIn(ps.http_handler(status_line="220 smtp here")) as srv:
            self.assertFail("http", srv.addr, "bad status line: 220 smtp here")

    def test_bad_path_is_refused_before_sending(self):
        with ps.StandIn(ps.http_handler()) as srv:
            self.assertFail("http", srv.addr, "bad check_path",
                            "--path", "/a b")


@unittest.skipUnless(os.access(PROBE_CHECK, os.X_OK), "no probe_check built")
@unittest.skipUnless(shutil.which("openssl"), "no openssl command")
class TestTls(ProbeCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.certs = ps.make_certs(cls.tmp.name)
        c = cls.certs
        cls.good = ps.server_ctx(c["good.pem"], c["good.key"])
        cls.soon = ps.server_ctx(c["soon.pem"], c["soon.key"])
        cls.rogue = ps.server_ctx(c["rogue.pem"], c["rogue.key"])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def ca(self):
        return ("--ca", self.certs["ca.pem"])

    # implicit TLS: no certificate verification (self-signed is fine)
    def test_implicit_tls_forms_pass_on_self_signed(self):
        cases = (("smtps", ps.smtp_handler(), "QUIT"),
                 ("imaps", ps.imap_handler(), "a1 LOGOUT"),
                 ("pop3s", ps.pop3_handler(), "QUIT"),
                 ("https", ps.http_handler(), "GET / HTTP/1.0"))
        for check, handler, polite in cases:
            with self.subTest(check=check):
                with ps.StandIn(handler, tls_ctx=self.rogue) as srv:
                    self.assertPass(check, srv.addr)
                    self.assertTrue(srv.saw(polite), srv.commands)

    def test_implicit_tls_against_plaintext(self):
        with ps.StandIn(ps.smtp_handler()) as srv:
            self.assertFail("smtps", srv.addr, "TLS handshake failed: .+")

    def test_implicit_tls_silent_handshake(self):
        with ps.StandIn(ps.silent_handler) as srv:
            self.assertFail("imaps", srv.addr, "TLS handshake timeout",
                            timeout_ms=400)

    def test_https_500(self):
        with ps.StandIn(ps.http_handler("500 Oops"), tls_ctx=self.rogue) \
                as srv:
            self.assertFail("https", srv.addr, "HTTP 500")

    # STARTTLS: verified chain and days left
    def test_smtp_starttls_redoes_ehlo_and_quits_inside_tls(self):
        with ps.StandIn(ps.smtp_handler(starttls_ctx=self.good)) as srv:
            self.assertPass("smtp-starttls", srv.addr, *self.ca())
            self.assertEqual(srv.sessions[0], [
                "EHLO [127.0.0.1]", "STARTTLS", "<tls>", "EHLO [127.0.0.1]",
                "QUIT"])

    def test_smtp_starttls_expiring_certificate(self):
        with ps.StandIn(ps.smtp_handler(starttls_ctx=self.soon)) as srv:
            self.assertFail("smtp-starttls", srv.addr,
                            "certificate expires in [12] days?", *self.ca())
            self.assertEqual(srv.sessions[0][-2:], ["<tls>", "QUIT"])

    def test_cert_days_is_a_threshold(self):
        with ps.StandIn(ps.smtp_handler(starttls_ctx=self.good)) as srv:
            self.assertFail("smtp-starttls", srv.addr,
                            "certificate expires in 36[45] days", *self.ca(),
                            "--cert-days", "400")
            self.assertPass("smtp-starttls", srv.addr, *self.ca(),
                            "--cert-days", "300")

    def test_smtp_starttls_untrusted_certificate(self):
        with ps.StandIn(ps.smtp_handler(starttls_ctx=self.rogue)) as srv:
            self.assertFail("smtp-starttls", srv.addr,
                            "certificate does not verify: self[- ]signed "
                            "certificate", *self.ca())
            self.assertTrue(srv.saw("QUIT"))

    def test_system_store_does_not_know_the_test_ca(self):
        with ps.StandIn(ps.smtp_handler(starttls_ctx=self.good)) as srv:
            self.assertFail("smtp-starttls", srv.addr,
                            "certificate does not verify: unable to get "
                            "local issuer certificate")

    def test_smtp_starttls_not_offered(self):
        with ps.StandIn(ps.smtp_handler()) as srv:
            self.assertFail("smtp-starttls", srv.addr, "STARTTLS not offered",
                            *self.ca())
            self.assertTrue(srv.saw("QUIT"))

    def test_bare_250_after_a_greeting_naming_starttls(self):
        # The greeting leaves "STARTTLS" in the probe's buffer just past
        # where a bare "250" line ends; only the line itself counts.
        with ps.StandIn(ps.smtp_handler(
                greeting=("220 STARTTLS",), ehlo_raw="250\n",
                starttls_ctx=self.good,
                starttls_reply="454 4.7.0 TLS not available")) as srv:
            self.assertFail("smtp-starttls", srv.addr, "STARTTLS not offered",
                            *self.ca())
            self.assertFalse(srv.saw("STARTTLS"))

    def test_smtp_starttls_refused(self):
        with ps.StandIn(ps.smtp_handler(
                starttls_ctx=self.good,
                starttls_reply="454 4.7.0 TLS not available")) as srv:
            self.assertFail("smtp-starttls", srv.addr,
                            "STARTTLS refused: 454 4.7.0 TLS not available",
                            *self.ca())
            self.assertTrue(srv.saw("QUIT"))

    def test_plaintext_injected_after_go_ahead(self):
        with ps.StandIn(ps.smtp_handler(
                starttls_ctx=self.good,
                starttls_reply="220 go ahead\r\n250 injected")) as srv:
            self.assertFail("smtp-starttls", srv.addr,
                            "plaintext after the STARTTLS go-ahead",
                            *self.ca())

    def test_imap_starttls_with_login(self):
        with ps.StandIn(ps.imap_handler(starttls_ctx=self.good,
                                        users={"u": "p"})) as srv:
            self.assertPass("imap-starttls", srv.addr, *self.ca(),
                            "--user", "u", "--password", "p")
            self.assertEqual(srv.sessions[0], [
                "a1 STARTTLS", "<tls>", 'a2 LOGIN "u" "p"', "<login u p>",
                "a3 SELECT INBOX", "a4 LOGOUT"])

    def test_imap_starttls_refused(self):
        with ps.StandIn(ps.imap_handler(starttls_ctx=self.good,
                                        starttls_ok=False)) as srv:
            self.assertFail("imap-starttls", srv.addr,
                            re.escape("STARTTLS refused: NO [UNAVAILABLE] "
                                      "not now"), *self.ca())
            self.assertTrue(srv.saw("a2 LOGOUT"))

    def test_imap_starttls_expiring(self):
        with ps.StandIn(ps.imap_handler(starttls_ctx=self.soon)) as srv:
            self.assertFail("imap-starttls", srv.addr,
                            "certificate expires in [12] days?", *self.ca())
            self.assertEqual(srv.sessions[0], ["a1 STARTTLS", "<tls>",
                                               "a2 LOGOUT"])

    def test_pop3_starttls(self):
        with ps.StandIn(ps.pop3_handler(starttls_ctx=self.good)) as srv:
            self.assertPass("pop3-starttls", srv.addr, *self.ca())
            self.assertEqual(srv.sessions[0], ["STLS", "<tls>", "QUIT"])

    def test_pop3_starttls_untrusted(self):
        with ps.StandIn(ps.pop3_handler(starttls_ctx=self.rogue)) as srv:
            self.assertFail("pop3-starttls", srv.addr,
                            "certificate does not verify: .+", *self.ca())
            self.assertEqual(srv.sessions[0], ["STLS", "<tls>", "QUIT"])


@unittest.skipUnless(os.access(PROBE_CHECK, os.X_OK), "no probe_check built")
class TestParallel(ProbeCase):
    def test_fifty_probes_in_flight_against_a_slow_server(self):
        n, delay, timeout_ms = 50, 0.4, 3000
        with ps.StandIn(ps.smtp_handler(greeting_delay=delay)) as srv:
            rc, out, took = probe("smtp", srv.addr, "--parallel", str(n),
                                  timeout_ms=timeout_ms)
            self.assertEqual(rc, 0, out)
            self.assertEqual(len(out), n)
            latencies = [float(l.split()[1]) for l in out]
            self.assertTrue(all(delay * 1000 <= ms < timeout_ms
                                for ms in latencies), latencies)
            # one after the other this would take n * delay = 20 s
            self.assertLess(took, timeout_ms / 1000)
            self.assertGreaterEqual(srv.open_max, n * 0.8)
            self.assertEqual(sum(s == ["EHLO [127.0.0.1]", "QUIT"]
                                 for s in srv.sessions), n)

    def test_mixed_results_each_reported_once(self):
        with ps.StandIn(ps.silent_handler) as srv:
            rc, out, took = probe("imap", srv.addr, "--parallel", "20",
                                  timeout_ms=300)
            self.assertEqual(rc, 1)
            self.assertEqual(out, ["fail timeout"] * 20)
            self.assertLess(took, 2.5)

    def test_cancel_stops_probes_in_flight_without_callbacks(self):
        for check in ("smtp", "imaps"):  # mid-session, mid-handshake
            with self.subTest(check=check):
                with ps.StandIn(ps.silent_handler) as srv:
                    rc, out, took = probe(check, srv.addr, "--parallel",
                                          "10", "--cancel-after-ms", "200",
                                          timeout_ms=3000)
                    self.assertEqual(out, ["cancelled 10"])
                    self.assertEqual(rc, 1)
                    self.assertLess(took, 2)
                    deadline = time.monotonic() + 3
                    while srv.open_now and time.monotonic() < deadline:
                        time.sleep(0.05)
                    self.assertEqual(srv.open_now, 0, "sockets were closed")

    def test_cancel_after_the_last_callback_is_a_no_op(self):
        with ps.StandIn(ps.pop3_handler()) as srv:
            rc, out, _ = probe("pop3", srv.addr, "--parallel", "5",
                               "--cancel-after-ms", "1500")
            self.assertEqual(rc, 0, out)
            self.assertEqual(len(out), 5)


if __name__ == "__main__":
    unittest.main()
