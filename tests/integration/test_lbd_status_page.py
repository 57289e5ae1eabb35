"""lbd's status page (GET / on its metrics listener) and the document it
reads (/status.json), against a real lbd in front of two stand-in nodes:
the headers over plain HTTP (a Content-Security-Policy that allows exactly
the page's inline style and script, caching with an ETag and 304, nothing
but GET and HEAD), then in a real headless Chromium (browser.py): both
nodes listed up, one killed, shown down within its probe interval plus
one refresh, without a reload, nothing loaded from elsewhere and nothing
refused by the policy; lbd stopped, the page says so and keeps the last
data. The browser test writes status-page.png into
build/screenshots/ (MS_SCREENSHOTS overrides), as in the README.

    MS_BIN=build/bin python3 -m unittest -v test_lbd_status_page
"""
import base64
import hashlib
import json
import os
import re
import time

from browser import Browser
from lbdtest import BIN, LbdTestCase, free_port, greeting, wait_for
from test_control import http_get

CHECK_INTERVAL_MS = 500
FALL = 2
REFRESH_S = 2.0  # the page's REFRESH_MS


def config(port, mport, nodes):
    lines = "".join("node = %s %s\n" % (n.name, n.addr) for n in nodes)
    return """[lbd]
control = {control}
state_file = {state}
workers = 1
grace_s = 1
metrics = 127.0.0.1:%d

[service smtp]
listen = 127.0.0.1:%d
protocol = smtp
pool = mx

[pool mx]
check = smtp
check_interval_ms = %d
check_timeout_ms = 400
rise = 1
fall = %d
%s""" % (mport, port, CHECK_INTERVAL_MS, FALL, lines)


def split(answer):
    head, body = answer.split("\r\n\r\n", 1)
    lines = head.split("\r\n")
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, body


def csp_hash(text):
    return "'sha256-%s'" % base64.b64encode(
        hashlib.sha256(text.encode()).digest()).decode()


class StatusPageTest(LbdTestCase):
    def start(self):
        self.mport, self.port = free_port(), free_port()
        self.backends = [self.node("n1"), self.node("n2")]
        l = self.lbd(config(self.port, self.mport, self.backends))
        for n in self.backends:  # probed, not only up from the config
            wait_for(lambda: l.node("mx", n.name)["check_status"] == "ok",
                     5, what="%s probed" % n.name)
        return l

    def get(self, path, extra=""):
        return split(http_get(self.mport, (
            "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, extra)).encode()))

    def test_page_and_json_over_http(self):
        l = self.start()
        greeting(self.port)
        status, h, page = self.get("/")
        self.assertEqual(status, "HTTP/1.0 200 OK")
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        self.assertEqual(h["cache-control"], "no-cache")
        self.assertEqual(h["x-content-type-options"], "nosniff")
        self.assertEqual(h["x-frame-options"], "DENY")
        # The policy names exactly the page's own style and script.
        style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
        script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
        csp = dict(d.strip().split(" ", 1)
                   for d in h["content-security-policy"].split(";"))
        self.assertEqual(csp["default-src"], "'none'")
        self.assertEqual(csp["style-src"], csp_hash(style))
        self.assertEqual(csp["script-src"], csp_hash(script))
        self.assertEqual(csp["connect-src"], "'self'")
        self.assertEqual(csp["frame-ancestors"], "'none'")
        self.assertNotRegex(page, r"(?i)(src|href)=\"(https?:)?//")
        # A browser that has the page asks again and gets 304.
        status, h2, body = self.get("/", "If-None-Match: %s\r\n" % h["etag"])
        self.assertEqual(status, "HTTP/1.0 304 Not Modified")
        self.assertEqual((h2["etag"], body), (h["etag"], ""))
        self.assertEqual(self.get("/", 'If-None-Match: "x"\r\n')[0],
                         "HTTP/1.0 200 OK")
        # The document is `show status json`, never cached.
        status, h, body = self.get("/status.json?t=1")
        self.assertEqual(status, "HTTP/1.0 200 OK")
        self.assertEqual(h["content-type"], "application/json")
        self.assertEqual(h["cache-control"], "no-store")
        doc = json.loads(body)
        self.assertEqual([p["name"] for p in doc["pools"]],
                         [p["name"] for p in l.status()["pools"]])
        svc = doc["services"][0]
        self.assertEqual(svc["total"], 1)
        self.assertGreater(svc["bytes_out"], 0)
        n1 = doc["pools"][0]["nodes"][0]
        for key in ("check_latency_ms", "bytes_in", "bytes_out",
                    "connect_failures", "last_change_s", "check_status"):
            self.assertIn(key, n1)
        self.assertGreater(n1["check_latency_ms"], 0)
        # Read-only: nothing but GET and HEAD.
        for method in ("POST", "PUT", "DELETE"):
            self.assertTrue(http_get(self.mport, (
                "%s /status.json HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
                % method).encode()).startswith("HTTP/1.0 405"), method)
        status, h, body = split(http_get(self.mport, b"HEAD / HTTP/1.0\r\n\r\n"))
        self.assertEqual((status, body), ("HTTP/1.0 200 OK", ""))
        self.assertGreater(int(h["content-length"]), 1000)

    def test_node_going_down_in_the_browser(self):
        l = self.start()
        for _ in range(3):
            greeting(self.port)
        url = "http://127.0.0.1:%d/" % self.mport
        with Browser(self.tmp, width=1280, height=560) as b:
            b.get(url)

            def state(d, name):
                return d.find_element(
                    b.By.CSS_SELECTOR,
                    'tr[data-pool="mx"][data-node="%s"]' % name
                ).get_attribute("data-state")

            b.wait_for(lambda d: state(d, "n1") == state(d, "n2") == "up",
                       what="both nodes up")
            b.driver.execute_script("window.notReloaded = true;")
            self.backends[1].kill()
            t0 = time.monotonic()
            b.wait_for(lambda d: state(d, "n2") == "down", timeout=10,
                       what="n2 shown down")
            took = time.monotonic() - t0
            # fall probes one interval apart, one refresh, and a little.
            bound = FALL * CHECK_INTERVAL_MS / 1000 + REFRESH_S + 1.0
            self.assertLess(took, bound)
            self.assertEqual(state(b.driver, "n1"), "up")
            self.assertTrue(b.driver.execute_script(
                "return window.notReloaded === true;"), "the page reloaded")
            self.assertIn("1 of 2 nodes up in 1 pool", b.driver.find_element(
                b.By.ID, "summary").text)
            origin = url.rstrip("/")
            self.assertEqual([u for u in b.requests() if not
                              u.startswith((origin + "/", "data:"))], [])
            refused = [m for m in b.console()
                       if "Content Security Policy" in m.get("message", "")]
            self.assertEqual(refused, [])
            shots = os.environ.get("MS_SCREENSHOTS",
                                   os.path.join(BIN, "..", "screenshots"))
            os.makedirs(shots, exist_ok=True)
            b.screenshot(os.path.join(shots, "status-page.png"))
            print("n2 shown down %.2f s after the kill (bound %.1f s)"
                  % (took, bound))
            # lbd gone: the page says so and keeps the last data
            l.stop()
            b.wait_for(lambda d: "stale" in d.find_element(
                b.By.ID, "updated").get_attribute("class"), timeout=5,
                what="the page noticing lbd gone")
            self.assertIn("lbd did not answer",
                          b.driver.find_element(b.By.ID, "updated").text)
            self.assertEqual(state(b.driver, "n1"), "up")


if __name__ == "__main__":
    import unittest
    unittest.main()
