#!/usr/bin/env python3
"""A stand-in mail node for lbd's tests: greets like the protocol it plays,
answers the few commands a probe or a test sends, and tells who it thinks
the client is (from the PROXY header when --proxy is on).

  standin_node.py --proto smtp|imap|pop3|http|echo|sink --port N --name NAME
                  [--proxy] [--ready-file PATH] [--greet-delay-ms N]

smtp:  "220 NAME ESMTP peer=IP:PORT" (with --proxy, "peer=vN SRC DST": the
       header's client and destination), after --greet-delay-ms; EHLO ->
       250, QUIT -> 221 (and "smtp got QUIT" in its log), else 250.
imap:  "* OK NAME peer=..."; TAG LOGOUT -> BYE + OK, else TAG OK.
pop3:  "+OK NAME peer=..."; QUIT -> +OK, else +OK.
http:  one request, 200 with body "NAME peer=...".
echo:  sends "NAME peer=...\\n", then reads to EOF and sends back every byte
       it read, then closes (for byte-exact relay and half-close tests).
finfirst: sends "NAME peer=...\\n" and its FIN at once, then reads to EOF
       and prints "finfirst got N bytes sha256 HEX" to its log (the node's
       FIN must not end the client-to-node direction).
It runs until killed; a test SIGKILLs it to play a node that dies.
"""
import argparse
import hashlib
import os
import socket
import struct
import sys
import threading
import time

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def read_proxy(conn):
    """Reads a PROXY v1 or v2 header; returns 'VERSION SRC DST', the
    client's ip:port and the one it connected to."""
    head = b""
    while len(head) < 16 and not (len(head) >= 6 and head.startswith(b"PROXY ")):
        chunk = conn.recv(6 - len(head) if len(head) < 6 else 16 - len(head))
        if not chunk:
            raise EOFError("no PROXY header")
        head += chunk
    if head.startswith(V2_SIG):
        ver_cmd, fam, length = head[12], head[13], struct.unpack("!H", head[14:16])[0]
        body = b""
        while len(body) < length:
            chunk = conn.recv(length - len(body))
            if not chunk:
                raise EOFError("short PROXY v2")
            body += chunk
        if ver_cmd == 0x20:
            return "v2 local"  # a health probe speaking for itself
        if ver_cmd != 0x21:
            raise ValueError("v2 command %#x" % ver_cmd)
        if fam == 0x11:
            src = socket.inet_ntop(socket.AF_INET, body[0:4])
            dst = socket.inet_ntop(socket.AF_INET, body[4:8])
            sport, dport = struct.unpack("!HH", body[8:12])
            return "v2 %s:%d %s:%d" % (src, sport, dst, dport)
        if fam == 0x21:
            src = socket.inet_ntop(socket.AF_INET6, body[0:16])
            dst = socket.inet_ntop(socket.AF_INET6, body[16:32])
            sport, dport = struct.unpack("!HH", body[32:36])
            return "v2 [%s]:%d [%s]:%d" % (src, sport, dst, dport)
        raise ValueError("v2 family %#x" % fam)
    if head.startswith(b"PROXY "):
        line = head
        while not line.endswith(b"\r\n"):
            if len(line) > 107:
                raise ValueError("v1 too long")
            chunk = conn.recv(1)
            if not chunk:
                raise EOFError("short PROXY v1")
            line += chunk
        parts = line.decode().split()
        if parts[1] == "UNKNOWN":
            return "v1 local"
        if parts[1] == "TCP6":
            return "v1 [%s]:%s [%s]:%s" % (parts[2], parts[4], parts[3], parts[5])
        return "v1 %s:%s %s:%s" % (parts[2], parts[4], parts[3], parts[5])
    raise ValueError("not a PROXY header: %r" % head)


def peer_of(conn, args):
    if args.proxy:
        return read_proxy(conn)
    host, port = conn.getpeername()[:2]
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


def lines(conn):
    buf = b""
    while True:
        data = conn.recv(4096)
        if not data:
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line.rstrip(b"\r").decode("latin-1")


def serve_smtp(conn, args, peer):
    if args.greet_delay_ms:
        time.sleep(args.greet_delay_ms / 1000.0)
    conn.sendall(("220 %s ESMTP peer=%s\r\n" % (args.name, peer)).encode())
    for line in lines(conn):
        verb = line.split(" ", 1)[0].upper()
        if verb in ("EHLO", "HELO"):
            conn.sendall(("250-%s\r\n250 PIPELINING\r\n" % args.name).encode())
        elif verb == "QUIT":
            print("smtp got QUIT", flush=True)
            conn.sendall(b"221 2.0.0 bye\r\n")
            return
        else:
            conn.sendall(b"250 2.0.0 ok\r\n")


def serve_imap(conn, args, peer):
    conn.sendall(("* OK %s peer=%s\r\n" % (args.name, peer)).encode())
    for line in lines(conn):
        parts = line.split(" ", 2)
        tag = parts[0]
        cmd = parts[1].upper() if len(parts) > 1 else ""
        if cmd == "LOGOUT":
            conn.sendall(("* BYE bye\r\n%s OK LOGOUT done\r\n" % tag).encode())
            return
        conn.sendall(("%s OK done\r\n" % tag).encode())


def serve_pop3(conn, args, peer):
    conn.sendall(("+OK %s peer=%s\r\n" % (args.name, peer)).encode())
    for line in lines(conn):
        if line.upper().startswith("QUIT"):
            conn.sendall(b"+OK bye\r\n")
            return
        conn.sendall(b"+OK\r\n")


def serve_http(conn, args, peer):
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk
    body = ("%s peer=%s\n" % (args.name, peer)).encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                 % len(body) + body)


def serve_echo(conn, args, peer):
    conn.sendall(("%s peer=%s\n" % (args.name, peer)).encode())
    received = []
    while True:
        data = conn.recv(65536)
        if not data:
            break
        received.append(data)
    # The client half-closed; the other direction must still work.
    conn.sendall(b"".join(received))


def serve_finfirst(conn, args, peer):
    conn.sendall(("%s peer=%s\n" % (args.name, peer)).encode())
    conn.shutdown(socket.SHUT_WR)
    got = bytearray()
    while True:
        data = conn.recv(65536)
        if not data:
            break
        got += data
    print("finfirst got %d bytes sha256 %s" % (len(got), hashlib.sha256(got).hexdigest()),
          flush=True)


SERVERS = {"smtp": serve_smtp, "imap": serve_imap, "pop3": serve_pop3,
           "http": serve_http, "echo": serve_echo, "finfirst": serve_finfirst}


def handle(conn, args):
    try:
        conn.settimeout(60)
        peer = peer_of(conn, args)
        SERVERS[args.proto](conn, args, peer)
    except (OSError, EOFError, ValueError) as e:
        sys.stderr.write("standin %s: %s\n" % (args.name, e))
    finally:
        try:
            if args.proto != "finfirst":
                conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proto", required=True, choices=sorted(SERVERS))
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--name", required=True)
    ap.add_argument("--proxy", action="store_true")
    ap.add_argument("--ready-file")
    ap.add_argument("--greet-delay-ms", type=int, default=0)
    args = ap.parse_args()
    fam = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.host, args.port))
    srv.listen(512)
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write(str(os.getpid()))
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn, args), daemon=True).start()


if __name__ == "__main__":
    main()
