"""mailnode's HTTP API for real: two nodes on one store and one
redis-server, mail delivered with smtplib, read back over HTTP on the other
node, sessions shared through Redis, rate limits, and a parser that answers
every bad request and keeps the connection usable."""
import http.client
import json
import os
import re
import socket
import time
import unittest

from lbdtest import wait_for
from nodetest import NodeTestCase

MSG = (b"From: Carol <carol@remote.test>\r\nTo: alice@example.test\r\n"
       b"Subject: hello\r\n\tfolded\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
       b"\r\nHello Alice\r\n")


def request(node, method, path, body=None, headers=None, conn=None):
    """One request; returns (status, headers dict lowercased, body bytes)."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", node.ports["http"],
                                          timeout=10)
    hdrs = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    if own:
        conn.close()
    return out


def bearer(token):
    return {"Authorization": "Bearer " + token}


def json_bearer(token):
    """For a state-changing request: the session and a JSON type."""
    return dict(bearer(token), **{"Content-Type": "application/json"})


class RawConn:
    """A raw socket for what http.client will not send."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.s.makefile("rb")

    def send(self, data):
        self.s.sendall(data)

    def response(self):
        line = self.f.readline()
        if not line:
            return None
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", line)
        assert m, line
        headers = {}
        while True:
            h = self.f.readline()
            assert h.endswith(b"\r\n"), h
            if h == b"\r\n":
                break
            k, v = h.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = int(headers["content-length"])
        body = self.f.read(n)
        return int(m.group(1)), headers, body

    def closed(self):
        try:
            return self.f.read(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        self.f.close()
        self.s.close()


class HttpApiTest(NodeTestCase):
    def health(self, node):
        st, h, body = request(node, "GET", "/health")
        return st, json.loads(body)

    def ready(self, node):
        wait_for(lambda: self.health(node)[1]["status"] == "ok", 10,
                 what="%s healthy" % node.name)
        return node

    def login(self, node, user="alice@example.test", password="demo"):
        return request(node, "POST", "/api/login",
                       {"user": user, "password": password})

    def test_health(self):
        n = self.ready(self.node())
        st, h, body = request(n, "GET", "/health")
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "application/json")
        doc = json.loads(body)
        self.assertEqual(doc["status"], "ok")
        self.assertEqual(doc["node"], "mail1")
        self.assertEqual(doc["redis"], "up")
        self.assertEqual(doc["store"], "ok")
        self.assertEqual(doc["spool"], 0)
        st, h, body = request(n, "HEAD", "/health")
        self.assertEqual(st, 200)
        self.assertEqual(body, b"")
        self.assertGreater(int(h["content-length"]), 0)

    def test_login_on_one_node_read_on_the_other_logout_everywhere(self):
        n1 = self.ready(self.node("mail1"))
        n2 = self.ready(self.node("mail2"))
        self.deliver(n1, MSG)

        st, h, body = self.login(n1, "Alice@Example.TEST")
        self.assertEqual(st, 200, body)
        token = json.loads(body)["token"]
        self.assertRegex(token, r"^[0-9a-f]{64}$")
        cookie = h["set-cookie"]
        self.assertIn("session=%s;" % token, cookie)
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        self.assertEqual(self.redis.cli("GET", "ms:session:" + token),
                         "alice@example.test")
        ttl = self.redis.cli("TTL", "ms:session:" + token)
        self.assertTrue(0 < ttl <= 1800, ttl)

        # The other node knows the session; one keep-alive connection.
        conn = http.client.HTTPConnection("127.0.0.1", n2.ports["http"],
                                          timeout=10)
        st, h, body = request(n2, "GET", "/api/mailboxes",
                              headers=bearer(token), conn=conn)
        self.assertEqual(st, 200, body)
        used = os.path.getsize(self.maildir("alice@example.test")[0])
        quota = {"used": used, "limit": None}  # the user's, no limit
        self.assertEqual(json.loads(body),
                         [{"name": "INBOX", "messages": 1, "unseen": 1,
                           "quota": quota}])
        st, h, body = request(n2, "GET", "/api/messages?mailbox=INBOX",
                              headers=bearer(token), conn=conn)
        self.assertEqual(st, 200, body)
        msgs = json.loads(body)
        self.assertEqual(len(msgs), 1)
        m = msgs[0]
        self.assertEqual(m["uid"], 1)
        self.assertEqual(m["from"], "Carol <carol@remote.test>")
        self.assertEqual(m["subject"], "hello folded")
        self.assertEqual(m["date"], "Mon, 1 Jan 2024 10:00:00 +0000")
        self.assertEqual(m["flags"], [])
        stored = self.messages("alice@example.test")
        self.assertEqual(len(stored), 1)
        self.assertEqual(m["size"], len(stored[0]))
        self.assertRegex(self.maildir("alice@example.test")[0],
                         r"/cur/[^/]+,U=1:2,$")

        st, h, raw = request(n2, "GET", "/api/messages/1?mailbox=INBOX",
                             headers=bearer(token), conn=conn)
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "message/rfc822")
        self.assertTrue(raw.startswith(b"Return-Path: <carol@remote.test>\r\n"
                                       b"Received: "), raw[:100])
        self.assertEqual(raw, stored[0])
        self.assertTrue(raw.endswith(MSG))
        st, h, body = request(n2, "GET", "/api/messages/2",
                              headers=bearer(token), conn=conn)
        self.assertEqual(st, 404)
        conn.close()

        # The cookie works too, on the first node; the same UID there.
        st, h, raw1 = request(n1, "GET", "/api/messages/1",
                              headers={"Cookie": "x=y; session=" + token})
        self.assertEqual(st, 200)
        self.assertEqual(raw1, raw)

        # Sliding TTL: each use refreshes it.
        self.redis.cli("EXPIRE", "ms:session:" + token, 100)
        request(n1, "GET", "/api/mailboxes", headers=bearer(token))
        self.assertGreater(self.redis.cli("TTL", "ms:session:" + token), 1000)

        # Logout on the second node ends it on both.
        st, h, body = request(n2, "POST", "/api/logout",
                              headers=json_bearer(token))
        self.assertEqual(st, 200, body)
        self.assertIn("Max-Age=0", h["set-cookie"])
        for n in (n1, n2):
            st, h, body = request(n, "GET", "/api/mailboxes",
                                  headers=bearer(token))
            self.assertEqual(st, 401)
        st, h, body = request(n1, "POST", "/api/logout",
                              headers=json_bearer(token))
        self.assertEqual(st, 401)
        st, h, body = request(n1, "GET", "/api/mailboxes")
        self.assertEqual(st, 401)
        self.assertEqual(h["www-authenticate"], "Bearer")

    def test_folders_and_mailbox_names(self):
        n = self.ready(self.node())
        self.deliver(n, MSG)
        st, h, body = self.login(n)
        token = json.loads(body)["token"]
        inbox = os.path.dirname(os.path.dirname(self.maildir("alice@example.test")[0]))
        sent = os.path.join(inbox, ".Sent")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(sent, sub))
        with open(os.path.join(sent, "cur", "1.x,U=7:2,S"), "wb") as f:
            f.write(b"Subject: sent one\r\n\r\nbody\r\n")
        st, h, body = request(n, "GET", "/api/mailboxes", headers=bearer(token))
        quota = {"used": sum(os.path.getsize(p) for p in
                             self.maildir("alice@example.test")) +
                 os.path.getsize(os.path.join(sent, "cur", "1.x,U=7:2,S")),
                 "limit": None}  # one quota root for every mailbox
        self.assertEqual(json.loads(body), [
            {"name": "INBOX", "messages": 1, "unseen": 1, "quota": quota},
            {"name": "Sent", "messages": 1, "unseen": 0, "quota": quota}])
        st, h, body = request(n, "GET", "/api/messages?mailbox=Sent",
                              headers=bearer(token))
        self.assertEqual(st, 200)
        doc = json.loads(body)
        self.assertEqual(doc[0]["uid"], 7)
        self.assertEqual(doc[0]["flags"], ["\\Seen"])
        self.assertEqual(doc[0]["subject"], "sent one")
        for bad in ("..", "../../..", "%2Fetc", ".Sent", "a%2F..%2Fb", "x..y",
                    "%00"):
            st, h, body = request(n, "GET", "/api/messages?mailbox=" + bad,
                                  headers=bearer(token))
            self.assertEqual(st, 400, bad)
        st, h, body = request(n, "GET", "/api/messages?mailbox=Nope",
                              headers=bearer(token))
        self.assertEqual(st, 404)

    def test_bad_credentials_and_rate_limits_across_nodes(self):
        limits = "login_fail_limit = 5\nlogin_delay_ms = 10\n"
        n1 = self.ready(self.node("mail1", extra_node=limits))
        n2 = self.ready(self.node("mail2", extra_node=limits))
        st, h, body = self.login(n1, password="wrong")
        self.assertEqual(st, 401)
        st, h, body = self.login(n1, user="nobody@example.test")
        self.assertEqual(st, 401)
        st, h, body = self.login(n2, password="wrong")
        self.assertEqual(st, 401)
        st, h, body = self.login(n2, password="wrong")
        self.assertEqual(st, 401)
        self.assertEqual(
            self.redis.cli("GET", "ms:loginfail:user:alice@example.test"), "3")
        st, h, body = self.login(n1, password="wrong")
        self.assertEqual(st, 401)
        # Five failures from this address, four for alice: the next try
        # is refused before the password is looked at, on any node.
        for n in (n1, n2):
            st, h, body = self.login(n)
            self.assertEqual(st, 429, body)
            retry = int(h["retry-after"])
            self.assertTrue(0 < retry <= 300, retry)
        ttl = self.redis.cli("TTL", "ms:loginfail:addr:127.0.0.1")
        self.assertTrue(0 < ttl <= 300, ttl)
        # The window over, logins work again.
        self.redis.cli("DEL", "ms:loginfail:addr:127.0.0.1")
        st, h, body = self.login(n2)
        self.assertEqual(st, 200, body)
        # Per user, failures only delay: five failures for bob from
        # "other" addresses do not refuse bob from this one.
        self.redis.cli("SET", "ms:loginfail:user:bob@example.test", 5,
                       "EX", 300)
        st, h, body = self.login(n1, user="bob@example.test")
        self.assertEqual(st, 200, body)
        # Malformed logins are 400, not failures.
        for body in (b"", b"{", b'{"user":"alice@example.test"}',
                     b'{"user":1,"password":"demo"}', b"[]",
                     b'{"user":"a","password":"b"} x'):
            st, h, _ = request(n1, "POST", "/api/login", body=body,
                               headers={"Content-Type": "application/json"})
            self.assertEqual(st, 400, body)
        st, h, _ = request(n1, "POST", "/api/login", body=b"user=a",
                           headers={"Content-Type": "text/plain"})
        self.assertEqual(st, 415)

    def test_malformed_requests_are_answered_and_the_connection_goes_on(self):
        n = self.ready(self.node())
        port = n.ports["http"]
        c = RawConn(port)
        cases = [
            (b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
            (b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
             405),
            (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
            (b"GET /health HTTP/1.1\r\n\r\n", 400),
            (b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 +
             b"\r\n\r\n", 431),
            (b"GET /health HTTP/1.1\r\nHost: x\r\n" +
             b"".join(b"X-%d: y\r\n" % i for i in range(80)) + b"\r\n", 431),
            (b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            (b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            (b"GET /api/messages/abc HTTP/1.1\r\nHost: x\r\n\r\n", 404),
            (b"GET /api/mailboxes HTTP/1.1\r\nHost: x\r\n"
             b"Authorization: Bearer nonsense\r\n\r\n", 401),
            (b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
             b"Content-Type: application/json\r\n\r\n{\"a\":", 400),
            (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        ]
        for req, want in cases:
            c.send(req)
            st, h, body = c.response()
            self.assertEqual(st, want, req[:80])
            self.assertNotIn("connection", h)
            if st == 405:
                self.assertEqual(h["allow"], "GET, HEAD")
        # Pipelined: answered in order.
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
               b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
               b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
               b"Content-Type: application/json\r\n\r\n{}"
               b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual([c.response()[0] for _ in range(4)],
                         [200, 404, 400, 200])
        # Expect: 100-continue gets its interim answer.
        body = json.dumps({"user": "alice@example.test",
                           "password": "demo"}).encode()
        c.send(b"POST /api/login HTTP/1.1\r\nHost: x\r\nExpect: 100-continue"
               b"\r\nContent-Type: application/json"
               b"\r\nContent-Length: %d\r\n\r\n" % len(body))
        self.assertEqual(c.f.readline(), b"HTTP/1.1 100 Continue\r\n")
        self.assertEqual(c.f.readline(), b"\r\n")
        c.send(body)
        st, h, resp = c.response()
        self.assertEqual(st, 200, resp)
        # Connection: close is honoured.
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        st, h, body = c.response()
        self.assertEqual(st, 200)
        self.assertEqual(h["connection"], "close")
        self.assertTrue(c.closed())
        c.close()

        # What cannot be framed is answered, then the connection closes.
        for req, want in [
                (b"POST /api/login HTTP/1.1\r\nHost: x\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 411),
                (b"POST /api/login HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 100000\r\n\r\n", 413),
                (b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                 b"Content-Length: 2\r\n\r\n", 400),
                (b"GET /health HTTP/1.0\r\n\r\n", 200),
        ]:
            c = RawConn(port)
            c.send(req)
            st, h, body = c.response()
            self.assertEqual(st, want, req[:60])
            self.assertEqual(h.get("connection"), "close")
            self.assertTrue(c.closed())
            c.close()

        # Garbage and binary: an answer, never a crash.
        for junk in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 50 +
                     b"\r\n\r\n", b"\x00\xff\r\n\r\n", b"\r\n" * 10):
            c = RawConn(port)
            c.send(junk)
            r = c.response()
            self.assertIsNotNone(r)
            self.assertEqual(r[0] // 100, 4)
            c.close()
        self.assertEqual(self.health(n)[0], 200)

    def test_state_changes_need_json_or_this_origin(self):
        """CSRF: a form POST carrying the session cookie from another
        site must not end the session (nor change anything else)."""
        n = self.ready(self.node())
        st, h, body = self.login(n)
        token = json.loads(body)["token"]
        cookie = {"Cookie": "session=" + token}
        own = "http://127.0.0.1:%d" % n.ports["http"]
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        for headers, want in [
                (dict(cookie, Origin="http://evil.example", **form), 403),
                (dict(cookie, Origin="null", **form), 403),
                (dict(cookie, **form), 415),
                (dict(cookie, **{"Content-Type": "text/plain"}), 415),
                (cookie, 415),
                (dict(cookie, Origin="http://evil.example",
                      **{"Content-Type": "application/json"}), 403),
        ]:
            st, h, body = request(n, "POST", "/api/logout", body=b"x=1",
                                  headers=headers)
            self.assertEqual(st, want, headers)
            st, h, body = request(n, "GET", "/api/mailboxes",
                                  headers=cookie)
            self.assertEqual(st, 200, "session ended by %r" % headers)
        # A login from another site is refused too.
        st, h, body = request(n, "POST", "/api/login",
                              {"user": "alice@example.test",
                               "password": "demo"},
                              headers={"Origin": "http://evil.example"})
        self.assertEqual(st, 403)
        # The page's own origin may POST; so may JSON without Origin.
        st, h, body = request(n, "POST", "/api/logout",
                              headers=dict(cookie, Origin=own, **form))
        self.assertEqual(st, 200, body)
        st, h, body = self.login(n)
        token = json.loads(body)["token"]
        st, h, body = request(n, "POST", "/api/logout", headers={
            "Cookie": "session=" + token,
            "Content-Type": "application/json"})
        self.assertEqual(st, 200, body)

    def test_health_degraded_while_redis_hangs(self):
        n = self.ready(self.node())
        st, h, body = self.login(n)
        token = json.loads(body)["token"]
        self.redis.pause()
        try:
            wait_for(lambda: self.health(n)[1]["status"] == "degraded", 10,
                     what="degraded")
            st, doc = self.health(n)
            self.assertEqual(st, 200)
            self.assertEqual(doc["redis"], "down")
            # Sessions need Redis: a clear 503, quickly.
            t0 = time.monotonic()
            st, h, body = request(n, "GET", "/api/mailboxes",
                                  headers=bearer(token))
            self.assertEqual(st, 503)
            self.assertLess(time.monotonic() - t0, 3)
            st, h, body = self.login(n)
            self.assertEqual(st, 503)
        finally:
            self.redis.resume()
        wait_for(lambda: self.health(n)[1]["status"] == "ok", 15,
                 what="ok again")
        st, h, body = request(n, "GET", "/api/mailboxes", headers=bearer(token))
        self.assertEqual(st, 200)


if __name__ == "__main__":
    unittest.main()
