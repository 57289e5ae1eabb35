#!/usr/bin/env python3
"""mailswitch's benchmark harness: the same workloads direct (no proxy),
through HAProxy, through nginx's stream proxy and through lbd, in one run,
interleaved (A B C D, then rotated), repeated, reported as medians and as
the median of paired ratios. The proxies run pinned on one core, the load
generators and backends on the other. This is a benchmark, not a test:
ctest times nothing.

  W1 short connections: wrk, 1 KiB file, Connection: close (conn/s, p50, p99)
  W2 keep-alive: wrk, 1 KiB file (req/s, p99)
  W3 bulk: iperf3 through the proxy (Gbit/s)
  W4 SMTP sessions: smtp-source into three smtp-sinks (sessions/s)
  W1S workers = 2: W1 through lbd (workers = 2) and HAProxy (nbthread 2),
      each allowed both cores, right after W1 (conn/s, ratio to one worker)
  W1R fixed rate: bench/fixedrate.c opens new connections at a fixed rate
      (open loop, about half HAProxy's W1 rate), latency from the
      scheduled start (p50, p99, p99.9)
  W2 keep-alive: wrk, 1 KiB file (req/s, p99)
  W3 bulk: iperf3 through the proxy (Gbit/s)
  W4 SMTP sessions: smtp-source into three smtp-sinks (sessions/s)
  W5 idle connections: N held through a proxy process started for the
      measurement (resident KiB per connection, kernel buffer memory)
  W5K idle connections at scale: --idle-many (100,000) held through one
      lbd with one worker and its defaults (from several 127.0.0.x source
      addresses, to a backend of several ports that greets and holds
      them: run.py --hold), lbd's resident KiB per connection beside the
      kernel's (socket buffers and slab), and meanwhile fresh connections'
      connect-to-greeting latency through it (p50, p99)
  W1L, W4L edge protection's cost: W1 and W4 through lbd, and through a
      second lbd whose services have per-source limits set high enough to
      refuse no one (max_conn_per_source, rate_per_source,
      source_table_size), paired in each repetition
  N1 mailnode vs Postfix: smtp-source into one mailnode and into a private
      Postfix instance, both fsyncing before 250 (messages/s accepted and
      delivered to Maildir)
  N2 outbound through the queue: smtp-source relays 10 KiB messages for a
      remote domain through the same mailnode (relay_networks, its queue,
      relayhost) and the same Postfix (mynetworks, its queue, relayhost)
      to one smtp-sink (messages/s end to end, CPU µs per message)
plus each proxy's CPU time per unit of work, read from /proc.

usage: bench/run.py [--reps N] [--duration S] [--idle N] [--idle-many N]
                    [--rate R] [--quick] [--workloads W1,W1S,...] [--out DIR]
                    [--targets direct,haproxy,lbd] [--lbd-set KEY=VALUE]
                    [--tuned-bin DIR] [--tuned-label TEXT]
"""
import argparse
import csv
import datetime
import errno
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
# relay-*: bench/relay_engines.c, the engine comparison's instrument, one
# process pinned as the proxies are: (engine, data path for bulk)
RELAYS = {"relay-epoll": ("epoll", "on"),          # lbd's: splice
          "relay-epoll-copy": ("epoll", "off"),    # 16 KiB buffers only
          "relay-uring": ("uring", "off"),         # provided buffers only
          "relay-uring-splice": ("uring", "on")}   # IORING_OP_SPLICE
TARGETS = ["direct", "haproxy", "nginx", "lbd", "lbdtuned"] + list(RELAYS)
PROXIES = ["haproxy", "nginx", "lbd", "lbdtuned"] + list(RELAYS)
# what runs when --targets is not given (the relay-* targets are asked
# for by name)
DEFAULT_TARGETS = ["direct", "haproxy", "nginx", "lbd", "lbdtuned"]


_issued_ports = set()


def free_port():
    """A free loopback port, never the same one twice in this run (the
    kernel may hand out one port to two bind-and-close calls in a row)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _issued_ports:
            _issued_ports.add(port)
            return port
    raise RuntimeError("no fresh free port")


def wait_port(port, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %d" % port)


def raise_nofile():
    """As many descriptors as the hard limit allows (W5 needs about three
    per idle connection in the proxy, one in the client)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="msbench-")
        # nginx's workers (www-data) must read the 1 KiB file, Postfix's
        # daemons (postfix) their directories: mkdtemp makes it 0700
        os.chmod(self.tmp, 0o755)
        self.procs = []
        self.rate = None
        # lbdtuned: lbd with the --lbd-set settings, beside lbd's defaults
        self.tuned = getattr(args, "lbd_set", [])
        self.tuned_bin = getattr(args, "tuned_bin", None) or args.bin
        want = getattr(args, "targets", "direct,haproxy,nginx,lbd").split(",")
        unknown = set(want) - set(TARGETS)
        if unknown:
            sys.exit("bench: unknown target %s (of %s)" % (
                ",".join(sorted(unknown)), ",".join(TARGETS)))
        self.targets = [t for t in TARGETS if t in want or
                        (t == "lbdtuned" and "lbd" in want and
                         (self.tuned or self.tuned_bin != args.bin))]
        ncpu = os.cpu_count() or 1
        self.proxy_cpu = "0"
        self.load_cpu = "1" if ncpu > 1 else "0"
        raise_nofile()

    # processes ----------------------------------------------------------
    def spawn(self, cmd, cpu, name):
        log = open(os.path.join(self.tmp, name + ".log"), "wb")
        p = subprocess.Popen(["taskset", "-c", cpu] + cmd, stdout=log,
                             stderr=log, preexec_fn=raise_nofile)
        self.procs.append(p)
        return p

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # backends -----------------------------------------------------------
    def start_backends(self):
        self.web = [free_port() for _ in range(3)]
        self.sink = [free_port() for _ in range(3)]
        self.bulk = free_port()
        root = os.path.join(self.tmp, "www")
        os.makedirs(root)
        with open(os.path.join(root, "1k"), "wb") as f:
            f.write(b"x" * 1024)
        servers = "".join(
            "server { listen 127.0.0.1:%d backlog=4096; root %s; "
            "keepalive_requests 1000000; }\n" % (p, root) for p in self.web)
        conf = os.path.join(self.tmp, "backend-nginx.conf")
        with open(conf, "w") as f:
            f.write("worker_processes 1; daemon off; pid %s/backend.pid;\n"
                    "worker_rlimit_nofile 65536; error_log %s/backend-error.log;\n"
                    "events { worker_connections 30000; }\n"
                    "http { access_log off; client_header_timeout 300s;\n"
                    "keepalive_timeout 300s; %s }\n" % (self.tmp, self.tmp, servers))
        self.spawn(["nginx", "-c", conf, "-p", self.tmp], self.load_cpu, "backend-nginx")
        # -B: its own address only (a wildcard bind fails while other
        # tests leave TIME_WAIT sockets on the port from 127.x addresses)
        self.spawn(["iperf3", "-s", "-B", "127.0.0.1", "-p", str(self.bulk)], self.load_cpu, "iperf3")
        for i, p in enumerate(self.sink):
            self.spawn(["smtp-sink", "-u", "postfix", "127.0.0.1:%d" % p, "1024"],
                       self.load_cpu, "sink%d" % i)
        for p in self.web + self.sink + [self.bulk]:
            wait_port(p)

    # proxies ------------------------------------------------------------
    # (kind, threads, cpus) per target: the W1S targets are the same
    # proxies with two threads (workers) allowed both cores.
    def target_spec(self, target):
        both = self.both_cpus()
        return {"haproxy": ("haproxy", 1, self.proxy_cpu),
                "nginx": ("nginx", 1, self.proxy_cpu),
                "lbd": ("lbd", 1, self.proxy_cpu),
                "haproxy2": ("haproxy", 2, both),
                "lbd2": ("lbd", 2, both),
                "lbdlim": ("lbd", 1, self.proxy_cpu),
                "lbdtuned": ("lbd", 1, self.proxy_cpu),
                **{r: ("relay", 1, self.proxy_cpu) for r in RELAYS}}[target]

    def start_proxy(self, target, tag=None):
        """Starts one proxy instance with fresh ports; returns (process,
        ports) once it listens and has had its first health checks."""
        kind, threads, cpus = self.target_spec(target)
        ports = {k: free_port() for k in ("web", "bulk", "smtp")}
        name = tag or target
        kw = ({"limits": True} if target == "lbdlim" else
              {"tuned": self.tuned, "bindir": self.tuned_bin}
              if target == "lbdtuned" else
              {"engine": RELAYS[target]} if kind == "relay" else {})
        p = getattr(self, "start_" + kind)(ports, name, threads, cpus, **kw)
        try:
            for port in ports.values():
                wait_port(port)
        except RuntimeError:
            with open(os.path.join(self.tmp, name + ".log"), "rb") as f:
                sys.stderr.write(f.read().decode(errors="replace")[-2000:])
            raise
        return p, ports

    def stop_proc(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def start_proxies(self, targets):
        self.ports = {"direct": {"web": self.web[0], "bulk": self.bulk,
                                 "smtp": self.sink[0]}}
        self.pids = {}
        for t in targets:
            p, ports = self.start_proxy(t)
            self.ports[t] = ports
            self.pids[t] = p.pid
        time.sleep(1)  # first health checks

    def start_lbd(self, ports, name, threads, cpus, limits=False, tuned=(),
                  bindir=None):
        """lbd with its defaults (workers aside); tuned: [lbd] settings
        (KEY=VALUE) added and bindir: where its binary is (default --bin),
        for the lbdtuned target. limits: every service
        gets per-source limits no load here reaches (EDGE_LIMITS), so
        their bookkeeping runs on every accept and close and refuses no
        one."""
        nodes = lambda backs: "".join("node = b%d 127.0.0.1:%d\n" % (i, p)
                                      for i, p in enumerate(backs))
        edge = EDGE_LIMITS if limits else ""
        conf = os.path.join(self.tmp, name + ".ini")
        with open(conf, "w") as f:
            f.write("[lbd]\ncontrol = %s/%s.sock\nworkers = %d\nlog_level = warn\n%s"
                    "[service web]\nlisten = 127.0.0.1:%d\npool = web\n%s"
                    "[service bulk]\nlisten = 127.0.0.1:%d\npool = bulk\n%s"
                    "[service smtp]\nlisten = 127.0.0.1:%d\nprotocol = smtp\npool = mx\n%s"
                    "[pool web]\ncheck = tcp\n%s"
                    "[pool bulk]\ncheck = tcp\n%s"
                    "[pool mx]\ncheck = tcp\n%s"
                    % (self.tmp, name, threads,
                       "".join(x + "\n" for x in tuned),
                       ports["web"], edge, ports["bulk"], edge,
                       ports["smtp"], edge, nodes(self.web), nodes([self.bulk]),
                       nodes(self.sink)))
        lbd = os.path.join(bindir or self.args.bin, "lbd")
        return self.spawn([lbd, "-c", conf], cpus, name)

    def start_relay(self, ports, name, threads, cpus, engine):
        """bench/relay_engines.c with one engine and data path (RELAYS):
        each port to the first backend of its pool (the web backends are
        one nginx process, so one port serves as well as three)."""
        routes = []
        for kind, back in (("web", self.web[0]), ("bulk", self.bulk),
                           ("smtp", self.sink[0])):
            routes += ["--route", "%d=127.0.0.1:%d" % (ports[kind], back)]
        collect = getattr(self.args, "relay_collect_us", 0)
        return self.spawn([self.compiled("relay_engines", "-luring"),
                           "--engine", engine[0],
                           "--splice", engine[1], "--collect-us", str(collect)]
                          + routes, cpus, name)

    def start_haproxy(self, ports, name, threads, cpus):
        def backend(bname, backs):
            return "backend %s\n balance roundrobin\n%s" % (bname, "".join(
                " server b%d 127.0.0.1:%d check\n" % (i, p) for i, p in enumerate(backs)))
        conf = os.path.join(self.tmp, name + ".cfg")
        with open(conf, "w") as f:
            f.write("global\n nbthread %d\n maxconn 9800\n"
                    "defaults\n mode tcp\n retries 2\n option redispatch\n"
                    " timeout connect 1s\n timeout client 300s\n timeout server 300s\n"
                    "frontend web\n bind 127.0.0.1:%d\n default_backend web\n"
                    "frontend bulk\n bind 127.0.0.1:%d\n default_backend bulk\n"
                    "frontend smtp\n bind 127.0.0.1:%d\n default_backend mx\n%s%s%s"
                    % (threads, ports["web"], ports["bulk"], ports["smtp"],
                       backend("web", self.web), backend("bulk", [self.bulk]),
                       backend("mx", self.sink)))
        return self.spawn(["haproxy", "-db", "-f", conf], cpus, name)

    def start_nginx(self, ports, name, threads, cpus):
        def up(uname, backs):
            return "upstream %s { %s }\n" % (uname, " ".join(
                "server 127.0.0.1:%d;" % p for p in backs))
        conf = os.path.join(self.tmp, name + "-proxy-nginx.conf")
        with open(conf, "w") as f:
            f.write("load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n"
                    "worker_processes %d; daemon off; pid %s/%s.pid;\n"
                    "worker_rlimit_nofile 65536; error_log %s/%s-error.log;\n"
                    "events { worker_connections 19000; }\n"
                    "stream { %s%s%s"
                    "server { listen 127.0.0.1:%d backlog=4096; proxy_pass web; }\n"
                    "server { listen 127.0.0.1:%d; proxy_pass bulk; }\n"
                    "server { listen 127.0.0.1:%d backlog=4096; proxy_pass mx; } }\n"
                    % (threads, self.tmp, name, self.tmp, name, up("web", self.web),
                       up("bulk", [self.bulk]), up("mx", self.sink),
                       ports["web"], ports["bulk"], ports["smtp"]))
        return self.spawn(["nginx", "-c", conf, "-p", self.tmp], cpus, name)

    # measurements -------------------------------------------------------
    def proxy_pids(self, target):
        """The proxy's processes: nginx does its work in a child. target
        is a target's name or a process id."""
        if target == "direct":
            return []
        pid = target if isinstance(target, int) else self.pids[target]
        kids = []
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            pass
        return [pid] + kids

    def cpu_split(self, target):
        """The proxy's user and system CPU seconds so far."""
        user = system = 0
        for pid in self.proxy_pids(target):
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        return user / CLK_TCK, system / CLK_TCK

    def cpu(self, target):
        return sum(self.cpu_split(target))

    def core_ticks(self):
        """(busy, all) ticks of the proxy's and the load's CPU so far,
        from /proc/stat (busy: all but idle and iowait; softirq work done
        on a CPU counts on it, whoever it was done for)."""
        out = {}
        with open("/proc/stat") as f:
            for line in f:
                name, _, rest = line.partition(" ")
                if name in ("cpu" + self.proxy_cpu, "cpu" + self.load_cpu):
                    v = [int(x) for x in rest.split()]
                    out[name[3:]] = (sum(v[:8]) - v[3] - v[4], sum(v[:8]))
        return out

    def measured(self, w, target):
        """Runs workload w through target, adding where the time went:
        how busy the load's CPU and the proxy's were (fractions of the
        run) and the proxy's share of its CPU spent in user space."""
        proxy = target in self.pids
        t0, u0 = self.core_ticks(), self.cpu_split(target) if proxy else None
        r = getattr(self, w)(target)
        t1 = self.core_ticks()
        if r is None:
            return None

        def busy(cpu):
            b0, a0 = t0[cpu]
            b1, a1 = t1[cpu]
            return (b1 - b0) / (a1 - a0) if a1 > a0 else None
        if self.load_cpu != self.proxy_cpu:
            r["load_core_busy"] = busy(self.load_cpu)
            r["proxy_core_busy"] = busy(self.proxy_cpu)
        if proxy:
            u1 = self.cpu_split(target)
            du, ds = u1[0] - u0[0], u1[1] - u0[1]
            r["proxy_user_share"] = du / (du + ds) if du + ds > 0 else None
        return r

    def rss_kib(self, target):
        total = 0
        for pid in self.proxy_pids(target):
            with open("/proc/%d/status" % pid) as f:
                m = re.search(r"VmRSS:\s+(\d+) kB", f.read())
                total += int(m.group(1))
        return total

    def load(self, cmd, timeout, cpus=None):
        r = subprocess.run(["taskset", "-c", cpus or self.load_cpu] + cmd, capture_output=True,
                           text=True, timeout=timeout, preexec_fn=raise_nofile)
        if r.returncode != 0:
            raise RuntimeError("%s: %s" % (cmd[0], r.stderr[-500:]))
        if r.stderr.strip():
            sys.stderr.write(r.stderr[-500:])
        return r.stdout

    @staticmethod
    def wrk_parse(out):
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        lat = {}
        for pct, val, unit in re.findall(r"\s(50|99)%\s+([\d.]+)(us|ms|s)\b", out):
            lat[pct] = float(val) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
        total = int(re.search(r"(\d+) requests in", out).group(1))
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        if bad:  # an error page is not the 1 KiB file: refuse the figure
            raise RuntimeError("wrk: %s of %d answers were not 2xx" % (bad.group(1), total))
        sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        errors = sum(int(x) for x in sock.groups()) if sock else 0
        return rps, lat.get("50"), lat.get("99"), total, errors

    def w_short(self, target, keepalive, threads=1, cpus=None):
        port = self.ports[target]["web"]
        d = self.args.duration
        cmd = ["wrk", "-t%d" % threads, "-c32", "-d%ds" % d, "--latency"]
        if not keepalive:
            cmd += ["-H", "Connection: close"]
        c0 = self.cpu(target) if target != "direct" else 0
        out = self.load(cmd + ["http://127.0.0.1:%d/1k" % port], d + 30, cpus)
        c1 = self.cpu(target) if target != "direct" else 0
        rps, p50, p99, total, errors = self.wrk_parse(out)
        return {"rate": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors,
                "cpu_us_per_unit": (c1 - c0) * 1e6 / total if target != "direct" else None}

    def W1(self, target):
        return self.w_short(target, False)

    def W2(self, target):
        return self.w_short(target, True)

    def W3(self, target):
        port = self.ports[target]["bulk"]
        d = self.args.duration
        c0 = self.cpu(target) if target != "direct" else 0
        out = json.loads(self.load(["iperf3", "-c", "127.0.0.1", "-p", str(port),
                                    "-t", str(d), "-J"], d + 30))
        c1 = self.cpu(target) if target != "direct" else 0
        end = out["end"]["sum_received"]
        gbit = end["bits_per_second"] / 1e9
        per10gb = (c1 - c0) / (end["bytes"] / 10e9) if target != "direct" else None
        return {"rate": gbit, "cpu_s_per_10GB": per10gb}

    def W4(self, target):
        port = self.ports[target]["smtp"]
        n = self.args.smtp_msgs
        c0 = self.cpu(target) if target != "direct" else 0
        t0 = time.monotonic()
        self.load(["smtp-source", "-s", "16", "-m", str(n), "-l", "1024",
                   "-f", "bench@example.test", "-t", "sink@example.test",
                   "127.0.0.1:%d" % port], 300)
        el = time.monotonic() - t0
        c1 = self.cpu(target) if target != "direct" else 0
        return {"rate": n / el,
                "cpu_us_per_unit": (c1 - c0) * 1e6 / n if target != "direct" else None}

    def W1L(self, target):
        return self.W1(target)

    def W4L(self, target):
        return self.W4(target)

    def W1S(self, target):
        """W1 with wrk's two threads allowed both cores (one wrk thread is
        the ceiling when it has one core), through one- and two-thread
        instances of lbd and HAProxy; the two-thread ones are allowed both
        cores, so load and proxy share them."""
        return self.w_short(target, False, 2, self.both_cpus())

    def both_cpus(self):
        return "0,1" if self.load_cpu != self.proxy_cpu else "0"

    def compiled(self, name, *libs):
        """bench/NAME.c (fixedrate, relay_engines), compiled once per run
        into the temporary directory (cc is there wherever lbd builds;
        relay_engines links liburing: bench/run.sh installs it)."""
        self._compiled = getattr(self, "_compiled", {})
        if name not in self._compiled:
            exe = os.path.join(self.tmp, name)
            subprocess.run(["cc", "-O2", "-Wall", "-o", exe,
                            os.path.join(HERE, name + ".c"), *libs], check=True)
            self._compiled[name] = exe
        return self._compiled[name]

    def w1r_rate(self, rows):
        """--rate, or half HAProxy's W1 rate in this run's first
        repetition (rounded to 100/s), or 6000/s without a W1."""
        if self.rate is None:
            if self.args.rate:
                self.rate = self.args.rate
            else:
                w1 = [r["rate"] for r in rows
                      if r["workload"] == "W1" and r["target"] == "haproxy"]
                self.rate = max(100, round(w1[0] / 2 / 100) * 100) if w1 else 6000
        return self.rate

    def W1R(self, target):
        port = self.ports[target]["web"]
        d = self.args.duration
        c0 = self.cpu(target)
        out = self.load([self.compiled("fixedrate"), "127.0.0.1", str(port), "/1k",
                         str(self.rate), str(d)], d + 30)
        c1 = self.cpu(target)
        v = dict(zip(out.split()[0::2], out.split()[1::2]))
        ok = int(v["ok"])
        return {"rate": float(v["rate"]), "offered": self.rate,
                "p50_ms": float(v["p50_ms"]), "p99_ms": float(v["p99_ms"]),
                "p999_ms": float(v["p999_ms"]), "max_ms": float(v["max_ms"]),
                "errors": int(v["errors"]),
                "cpu_us_per_unit": (c1 - c0) * 1e6 / ok if target != "direct" and ok else None}

    @staticmethod
    def established(ports):
        """Established TCP sockets whose local port is one of ports (IPv4
        loopback), from /proc/net/tcp."""
        want = {"%04X" % p for p in ports}
        n = 0
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split(None, 4)
                if fields[3] == "01" and fields[1].rsplit(":", 1)[1] in want:
                    n += 1
        return n

    @staticmethod
    def slab_kib():
        with open("/proc/meminfo") as f:
            return int(re.search(r"^Slab:\s+(\d+) kB", f.read(), re.M).group(1))

    def W5(self, target):
        """N idle connections through a proxy process started for this
        measurement (a proxy that already served the other workloads, or
        an earlier repetition, reuses memory it freed then, and shows
        about 0). Counts the connections the backends really hold."""
        if target == "direct":
            return None
        n = self.args.idle
        proc, ports = self.start_proxy(target, tag=target + "-w5")
        try:
            time.sleep(1.0)  # first health checks
            back0 = self.established(self.web)
            before = self.rss_kib(proc.pid)
            sock0, slab0 = self.sockstat_mem(), self.slab_kib()
            conns = []
            try:
                for _ in range(n):
                    s = socket.socket()
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    s.connect(("127.0.0.1", ports["web"]))
                    conns.append(s)
                # wait for the proxy to connect every one onward
                end = time.monotonic() + 10
                while time.monotonic() < end:
                    back = self.established(self.web) - back0
                    if back >= n:
                        break
                    time.sleep(0.2)
                time.sleep(0.5)
                front = self.established([ports["web"]])
                back = self.established(self.web) - back0
                after = self.rss_kib(proc.pid)
                sock1, slab1 = self.sockstat_mem(), self.slab_kib()
            finally:
                for s in conns:
                    s.close()
        finally:
            self.stop_proc(proc)
        if front < n or back < n:
            print("W5 %s: only %d of %d connections established at the proxy, "
                  "%d at the backends" % (target, front, n, back), file=sys.stderr)
        return {"rate": (after - before) / n, "rss_before_kib": before,
                "rss_after_kib": after, "front_established": front,
                "back_established": back,
                "kernel_kib_per_conn": (sock1 - sock0) * PAGE / 1024 / n,
                "slab_kib_per_conn": (slab1 - slab0) / n}

    @staticmethod
    def sockstat_mem():
        with open("/proc/net/sockstat") as f:
            m = re.search(r"TCP:.* mem (\d+)", f.read())
        return int(m.group(1))

    # W5K: W5 at scale ---------------------------------------------------
    W5K_PER_ADDR = 20000  # connections per address pair: below the
    # ephemeral range (32768-60999 by default), counted both ways: from
    # each client source address to lbd, and from lbd to each backend port
    W5K_BATCH = 500       # connects in flight: below lbd's backlog (1024)
    W5K_DEADLINE_S = 240  # to open them all
    W5K_GREETING = b"220 held\r\n"

    @staticmethod
    def slabinfo():
        """Bytes per slab cache, from /proc/slabinfo (root only)."""
        out = {}
        try:
            with open("/proc/slabinfo") as f:
                for line in f.readlines()[2:]:
                    x = line.split()
                    out[x[0]] = int(x[1]) * int(x[3])
        except OSError:
            pass
        return out

    @staticmethod
    def nofile_hard(n):
        """Raises this process's RLIMIT_NOFILE (soft and hard) to n where
        it may (CAP_SYS_RESOURCE), otherwise the soft one to the hard one;
        returns the limit got. Children inherit it."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(n, soft), max(n, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return resource.getrlimit(resource.RLIMIT_NOFILE)[1]

    def w5k_open(self, port, n, addrs):
        """Opens up to n connections to 127.0.0.1:port, W5K_BATCH in flight,
        from addrs in turn; returns (sockets, error)."""
        conns, err = [], None
        ep = select.epoll()
        end = time.monotonic() + self.W5K_DEADLINE_S
        try:
            while len(conns) < n and err is None:
                if time.monotonic() > end:
                    err = "deadline (%d s)" % self.W5K_DEADLINE_S
                    break
                batch = {}
                for _ in range(min(self.W5K_BATCH, n - len(conns) - len(batch))):
                    k = len(conns) + len(batch)
                    s = socket.socket()
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    s.setsockopt(socket.IPPROTO_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT
                    s.bind((addrs[k // self.W5K_PER_ADDR], 0))
                    s.setblocking(False)
                    e = s.connect_ex(("127.0.0.1", port))
                    if e not in (0, errno.EINPROGRESS):
                        s.close()
                        err = "connect: %s" % os.strerror(e)
                        break
                    batch[s.fileno()] = s
                    ep.register(s.fileno(), select.EPOLLOUT)
                stop = time.monotonic() + 10
                while batch and time.monotonic() < stop:
                    for fd, _ in ep.poll(1.0):
                        s = batch.pop(fd)
                        ep.unregister(fd)
                        e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if e:
                            s.close()
                            err = "connect: %s" % os.strerror(e)
                        else:
                            conns.append(s)
                for s in batch.values():
                    s.close()
                if batch and err is None:
                    err = "%d connects not done within 10 s" % len(batch)
        except OSError as e:
            err = str(e)
        finally:
            ep.close()
        return conns, err

    @staticmethod
    def greeted(conns):
        """How many of conns hold the backend's greeting (relayed by lbd)."""
        n = 0
        for s in conns:
            try:
                if s.recv(1, socket.MSG_PEEK):
                    n += 1
            except BlockingIOError:
                pass
        return n

    def w5k_probe(self, port, count, gap_s):
        """Fresh connections through lbd, one every gap_s: ms from the
        connect() to the greeting's first byte."""
        lat, errors = [], 0
        for _ in range(count):
            t0 = time.perf_counter()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    if s.recv(1):
                        lat.append((time.perf_counter() - t0) * 1000)
                    else:
                        errors += 1
            except OSError:
                errors += 1
            time.sleep(gap_s)
        return lat, errors

    def W5K(self, target):
        """--idle-many idle connections through one lbd with one worker
        and its defaults (only max_connections set, so lbd raises its own
        open-file limit for them); --probes fresh connections timed before
        (none held) and while those are held."""
        # lbd: 2 files per connection, its listener and 256 spare (its
        # max_connections is n + 100); this process and the backend: one
        # per connection, the probes and the backend's probes held
        n = self.args.idle_many
        lbd_need = lambda k: 2 * (k + 100) + 1 + 256
        spare = self.args.probes + 4096
        hard = self.nofile_hard(max(lbd_need(n), n + spare))
        limit_note = None
        if lbd_need(n) > hard or n + spare > hard:
            k = min((hard - 257) // 2 - 100, hard - spare)
            limit_note = ("open-file hard limit %d, which this process may not "
                          "raise (no CAP_SYS_RESOURCE): %d connections, not %d"
                          % (hard, k, n))
            print("W5K: " + limit_note, file=sys.stderr)
            n = k
        per = self.W5K_PER_ADDR
        nback = (n + self.args.probes) // per + 1
        back = [free_port() for _ in range(nback)]
        holder = subprocess.Popen(
            ["taskset", "-c", self.load_cpu, sys.executable, os.path.abspath(__file__),
             "--hold", ",".join(map(str, back))])
        self.procs.append(holder)
        name = "lbd-w5k"
        port = free_port()
        conf = os.path.join(self.tmp, name + ".ini")
        with open(conf, "w") as f:
            f.write("[lbd]\ncontrol = %s/%s.sock\nworkers = 1\n"
                    "[service idle]\nlisten = 127.0.0.1:%d\npool = hold\n"
                    "max_connections = %d\n[pool hold]\ncheck = tcp\n%s"
                    % (self.tmp, name, port, n + 100,
                       "".join("node = h%d 127.0.0.1:%d\n" % (i, p)
                               for i, p in enumerate(back))))
        load0 = os.getloadavg()
        conns, proc = [], None
        try:
            for p in back:
                wait_port(p)
            proc = self.spawn([os.path.join(self.args.bin, "lbd"), "-c", conf],
                              self.proxy_cpu, name)
            wait_port(port)
            time.sleep(1.5)  # first health checks
            lat0, _ = self.w5k_probe(port, self.args.probes, 0.005)  # none held
            before = self.rss_kib(proc.pid)
            sock0, slab0, caches0 = self.sockstat_mem(), self.slab_kib(), self.slabinfo()
            t0 = time.monotonic()
            addrs = ["127.0.0.%d" % (2 + i) for i in range(n // per + 1)]
            conns, err = self.w5k_open(port, n, addrs)
            open_s = time.monotonic() - t0
            end = time.monotonic() + 60
            while True:  # every one relayed to a backend and greeted
                greeted = self.greeted(conns)
                if greeted >= len(conns) or time.monotonic() > end:
                    break
                time.sleep(1.0)
            time.sleep(1.0)
            after = self.rss_kib(proc.pid)
            sock1, slab1, caches1 = self.sockstat_mem(), self.slab_kib(), self.slabinfo()
            lat, perrors = self.w5k_probe(port, self.args.probes, 0.005)
            held, opened = self.greeted(conns), len(conns)
            with open(os.path.join(self.tmp, name + ".log")) as f:
                nofile = [l.strip() for l in f if "open files" in l]
        finally:
            for s in conns:
                s.close()
            conns = []
            if proc is not None:
                self.stop_proc(proc)
            self.stop_proc(holder)
        if err or greeted < n:
            print("W5K: %d of %d connections opened, %d greeted through lbd%s"
                  % (opened, n, greeted, ": " + err if err else ""), file=sys.stderr)
        lat.sort()
        lat0.sort()
        q = lambda f, v=lat: v[min(len(v) - 1, int(f * len(v)))] if v else None
        m = max(greeted, 1)  # the connections relayed when measured
        top = sorted(((caches1.get(k, 0) - caches0.get(k, 0), k) for k in caches1),
                     reverse=True)[:6]
        return {"rate": (after - before) / m, "connections": greeted,
                "held_after_probes": held,
                "wanted": self.args.idle_many, "open_s": open_s,
                "rss_before_kib": before, "rss_after_kib": after,
                "kernel_kib_per_conn": (sock1 - sock0) * PAGE / 1024 / m,
                "slab_kib_per_conn": (slab1 - slab0) / m,
                "slab_top": " ".join("%s=%.0fB" % (k, d / m) for d, k in top),
                "p50_ms": q(0.50), "p99_ms": q(0.99), "p999_ms": None,
                "max_ms": lat[-1] if lat else None, "errors": perrors,
                "p50_none_held_ms": q(0.50, lat0), "p99_none_held_ms": q(0.99, lat0),
                "probes": len(lat), "load_before": "%.1f %.1f %.1f" % load0,
                "load_after": "%.1f %.1f %.1f" % os.getloadavg(),
                "lbd_nofile": nofile[-1] if nofile else None,
                "limit_note": limit_note}

    # mailnode and Postfix ----------------------------------------------
    def start_mail(self):
        """A private redis-server, mailctl's domain and user, one mailnode
        (CPU 0) and a private Postfix instance (CPU 0), each delivering to
        a Maildir under the same temporary directory (one filesystem)."""
        base = os.path.join(self.tmp, "mail")
        os.makedirs(base)
        self.mail_ports = {}
        # redis, on the load core: it is mailnode's directory, not its work
        rport = free_port()
        self.redis_pid = self.spawn(
            ["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", base],
            self.load_cpu, "redis").pid
        wait_port(rport)
        env = dict(os.environ, MAILCTL_REDIS="127.0.0.1:%d" % rport)
        mailctl = os.path.join(self.args.bin, "mailctl")
        for cmd, inp in ((["domain", "add", "example.test"], None),
                         (["user", "add", "bench@example.test", "--password-stdin"],
                          "bench\n")):
            subprocess.run([mailctl] + cmd, input=inp, env=env, text=True,
                           check=True, capture_output=True, timeout=20)
        # N2's remote world: one smtp-sink both relay to, counting
        self.relay_sink = free_port()
        self.spawn(["smtp-sink", "-c", "-u", "postfix",
                    "127.0.0.1:%d" % self.relay_sink, "1024"],
                   self.load_cpu, "relay-sink")
        wait_port(self.relay_sink)
        # mailnode
        store = os.path.join(base, "store")
        spool = os.path.join(base, "spool")
        os.makedirs(store)
        os.makedirs(spool)
        port = free_port()
        conf = os.path.join(base, "mailnode.ini")
        with open(conf, "w") as f:
            f.write("[node]\nname = bench1\nhostname = bench1.example.test\n"
                    "redis = 127.0.0.1:%d\nstore = %s\nspool = %s\n"
                    "relay_networks = 127.0.0.0/8\nrelayhost = 127.0.0.1:%d\n"
                    "[listen]\nsmtp = 127.0.0.1:%d\n"
                    % (rport, store, spool, self.relay_sink, port))
        self.mailnode_pid = self.spawn(
            [os.path.join(self.args.bin, "mailnode"), "-c", conf],
            self.proxy_cpu, "mailnode").pid
        wait_port(port)
        log = os.path.join(self.tmp, "mailnode.log")
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with open(log, "rb") as f:
                if b"directory: loaded" in f.read():
                    break
            time.sleep(0.05)
        self.mail_ports["mailnode"] = port
        self.maildirs = {"mailnode": store}
        # Postfix: its own config, queue and data directories
        pf = os.path.join(base, "postfix")
        cdir, qdir, ddir, mbox = (os.path.join(pf, d) for d in
                                  ("etc", "queue", "data", "mail"))
        for d in (cdir, qdir, ddir, mbox):
            os.makedirs(d)
        import pwd
        pw = pwd.getpwnam("postfix")
        for d in (ddir, mbox):
            os.chown(d, pw.pw_uid, pw.pw_gid)
        with open(os.path.join(cdir, "vmailbox"), "w") as f:
            f.write("bench@example.test example.test/bench/\n")
        port = free_port()
        with open(os.path.join(cdir, "main.cf"), "w") as f:
            f.write("compatibility_level = 3.6\n"
                    "queue_directory = %s\ndata_directory = %s\n"
                    "mail_owner = postfix\nsetgid_group = postdrop\n"
                    "inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n"
                    "myhostname = bench-postfix.example.test\nmydestination =\n"
                    "mynetworks = 127.0.0.0/8\nrelayhost = [127.0.0.1]:%d\n"
                    "smtpd_recipient_restrictions = permit_mynetworks, reject\n"
                    "virtual_mailbox_domains = example.test\n"
                    "virtual_mailbox_base = %s\n"
                    "virtual_mailbox_maps = texthash:%s/vmailbox\n"
                    "virtual_uid_maps = static:%d\nvirtual_gid_maps = static:%d\n"
                    "virtual_destination_concurrency_limit = 20\n"
                    "maillog_file = %s/maillog\nmaillog_file_prefixes = %s\n"
                    "smtpd_client_connection_rate_limit = 0\n"
                    "smtpd_client_message_rate_limit = 0\n"
                    "biff = no\n"
                    % (qdir, ddir, self.relay_sink, mbox, cdir, pw.pw_uid,
                       pw.pw_gid, ddir, ddir))
        services = [("127.0.0.1:%d" % port, "inet", "n", "-", "smtpd"),
                    ("pickup", "unix", "n", "60", "pickup"),
                    ("cleanup", "unix", "n", "-", "cleanup"),
                    ("qmgr", "unix", "n", "300", "qmgr"),
                    ("rewrite", "unix", "-", "-", "trivial-rewrite"),
                    ("bounce", "unix", "-", "-", "bounce"),
                    ("defer", "unix", "-", "-", "bounce"),
                    ("trace", "unix", "-", "-", "bounce"),
                    ("verify", "unix", "-", "-", "verify"),
                    ("flush", "unix", "n", "1000?", "flush"),
                    ("proxymap", "unix", "-", "-", "proxymap"),
                    ("smtp", "unix", "-", "-", "smtp"),
                    ("relay", "unix", "-", "-", "smtp"),
                    ("showq", "unix", "n", "-", "showq"),
                    ("error", "unix", "-", "-", "error"),
                    ("retry", "unix", "-", "-", "error"),
                    ("discard", "unix", "-", "-", "discard"),
                    ("local", "unix", "-", "-", "local"),
                    ("virtual", "unix", "-", "-", "virtual"),
                    ("anvil", "unix", "-", "-", "anvil"),
                    ("scache", "unix", "-", "-", "scache"),
                    ("postlog", "unix-dgram", "n", "-", "postlogd")]
        limits = {"pickup": "1", "qmgr": "1", "cleanup": "0", "bounce": "0",
                  "defer": "0", "trace": "0", "verify": "1", "flush": "0",
                  "anvil": "1", "scache": "1", "postlog": "1"}
        with open(os.path.join(cdir, "master.cf"), "w") as f:
            for name, typ, private, wake, cmd in services:
                unpriv = "n" if name in ("local", "virtual") else "-"
                f.write("%s %s %s %s n %s %s %s\n" % (
                    name, typ, private, unpriv, wake, limits.get(name, "-"), cmd))
        self.postfix_dir = cdir
        r = subprocess.run(["taskset", "-c", self.proxy_cpu, "postfix", "-c", cdir,
                            "start"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("postfix start: %s%s" % (r.stdout, r.stderr))
        wait_port(port)
        self.mail_ports["postfix"] = port
        self.maildirs["postfix"] = mbox
        self.postfix_queue = qdir

    def stop_mail(self):
        if getattr(self, "postfix_dir", None):
            subprocess.run(["postfix", "-c", self.postfix_dir, "stop"],
                           capture_output=True, timeout=60)
            self.postfix_dir = None

    @staticmethod
    def count_messages(top):
        n = 0
        for root, dirs, files in os.walk(top):
            if os.path.basename(root) in ("new", "cur"):
                n += len(files)
        return n

    def N1(self, target):
        if target not in ("mailnode", "postfix"):
            return None
        port = self.mail_ports[target]
        n = self.args.node_msgs
        have = self.count_messages(self.maildirs[target])
        t0 = time.monotonic()
        self.load(["smtp-source", "-s", "16", "-m", str(n), "-l", "1024",
                   "-f", "bench@example.test", "-t", "bench@example.test",
                   "127.0.0.1:%d" % port], 300)
        accepted = time.monotonic() - t0
        end = t0 + accepted + 60
        while time.monotonic() < end:
            if self.count_messages(self.maildirs[target]) - have >= n:
                break
            time.sleep(0.02)
        delivered_n = self.count_messages(self.maildirs[target]) - have
        delivered = time.monotonic() - t0
        return {"rate": n / accepted, "delivered_per_s": delivered_n / delivered,
                "delivered": delivered_n}

    def mail_cpu(self, target):
        """CPU seconds so far of mailnode with its Redis (the queue's
        claims go through it), or of the whole Postfix instance: its
        master, the live daemons, and those the master has reaped."""
        def stat(pid):
            with open("/proc/%d/stat" % pid) as f:
                return [int(x) for x in f.read().rsplit(")", 1)[1].split()[11:15]]
        if target == "mailnode":
            return sum(sum(stat(p)[:2]) for p in (self.mailnode_pid, self.redis_pid)) / CLK_TCK
        with open(os.path.join(self.postfix_queue, "pid", "master.pid")) as f:
            master = int(f.read().split()[0])
        total = sum(stat(master))  # its own and its reaped children's
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open("/proc/%s/stat" % d) as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    if int(fields[1]) == master:
                        total += int(fields[11]) + int(fields[12])
                except (OSError, IndexError, ValueError):
                    pass
        return total / CLK_TCK

    def sink_count(self):
        """Messages smtp-sink -c has counted (its last counter line)."""
        with open(os.path.join(self.tmp, "relay-sink.log"), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read().decode("ascii", "replace")
        # "sess=N quit=N mesg=N\r" after each event
        counts = re.findall(r"mesg=(\d+)", tail)
        return int(counts[-1]) if counts else 0

    def N2(self, target):
        if target not in ("mailnode", "postfix"):
            return None
        port = self.mail_ports[target]
        n = self.args.queue_msgs
        have = self.sink_count()
        cpu0 = self.mail_cpu(target)
        t0 = time.monotonic()
        self.load(["smtp-source", "-s", "16", "-m", str(n), "-l",
                   str(self.args.queue_size), "-f", "bench@example.test",
                   "-t", "someone@remote.test", "127.0.0.1:%d" % port], 600)
        accepted = time.monotonic() - t0
        end = t0 + accepted + 120
        while time.monotonic() < end and self.sink_count() - have < n:
            time.sleep(0.02)
        took = time.monotonic() - t0
        sent = self.sink_count() - have
        # the last deliveries' cleanup (queue files removed) is theirs too
        time.sleep(0.5)
        cpu = self.mail_cpu(target) - cpu0
        return {"rate": sent / took, "accepted_per_s": n / accepted,
                "delivered": sent, "cpu_us_per_msg": cpu * 1e6 / n}

    # the run ------------------------------------------------------------
    def run(self, workloads):
        rows = []
        self.rate = None
        for rep in range(self.args.reps):
            for w in workloads:
                if w == "W1R":
                    self.w1r_rate(rows)
                targets = WORKLOAD_TARGETS.get(w, self.targets)
                k = rep % len(targets)
                for t in targets[k:] + targets[:k]:
                    r = self.measured(w, t)
                    if r is None:
                        continue
                    r.update({"workload": w, "target": t, "rep": rep})
                    rows.append(r)
                    print("%s rep %d %-8s %s" % (w, rep, t, {k: (round(v, 3) if isinstance(v, float) else v)
                                                              for k, v in r.items() if k not in ("workload", "target", "rep")}),
                          flush=True)
        return rows


UNITS = {"W1": "conn/s", "W1S": "conn/s", "W1R": "conn/s", "W2": "req/s",
         "W3": "Gbit/s", "W4": "sessions/s", "W5": "KiB/idle conn",
         "W5K": "KiB/idle conn", "N1": "msg/s accepted", "W1L": "conn/s",
         "W4L": "sessions/s", "N2": "msg/s relayed"}
ORDER = ["W1", "W1S", "W1R", "W2", "W3", "W4", "W5", "W5K", "N1", "W1L", "W4L", "N2"]
# the targets of each workload; the others run through TARGETS
WORKLOAD_TARGETS = {"W1S": ["haproxy", "haproxy2", "lbd", "lbd2"], "W5K": ["lbd"],
                    "N1": ["postfix", "mailnode"],
                    "W1L": ["lbd", "lbdlim"], "W4L": ["lbd", "lbdlim"],
                    "N2": ["postfix", "mailnode"]}
# the workloads run through their own targets only (no HAProxy, nginx)
OWN_TARGETS = {"W1S", "W5", "W5K", "N1", "W1L", "W4L", "N2"}
# a target's one-thread counterpart and its HAProxy (for lbdlim: lbd
# without limits, what its cost is measured against)
ONE_WORKER = {"haproxy2": "haproxy", "lbd2": "lbd"}
HAPROXY_OF = {"lbd2": "haproxy2", "mailnode": "postfix", "lbdlim": "lbd"}
LABEL = {"haproxy2": "haproxy nbthread 2", "lbd2": "lbd workers = 2",
         "lbdlim": "lbd with per-source limits"}
# W1L, W4L: per-source limits that no load of this harness reaches (one
# source, 127.0.0.1, opens every connection)
EDGE_LIMITS = ("max_conn_per_source = 1000000\nrate_per_source = 1000000/1\n"
               "source_table_size = 100000\n")


def summarize(rows):
    """Median per workload and target, and the median of paired ratios
    (to HAProxy and to direct, the same repetition; W1S to one worker in
    the same repetition's W1; N1 mailnode to Postfix)."""
    out = []
    by_w = {}
    for r in rows:
        by_w.setdefault(r["workload"], {}).setdefault(r["target"], {})[r["rep"]] = r
    for w in sorted(by_w, key=lambda x: ORDER.index(x) if x in ORDER else 99):
        by = by_w[w]
        for t in WORKLOAD_TARGETS.get(w, TARGETS):
            if t not in by:
                continue
            reps = by[t]

            def med(key):
                vals = [x[key] for x in reps.values() if x.get(key) is not None]
                return statistics.median(vals) if vals else None

            def ratio(other, other_w=w, key="rate"):
                o = by_w.get(other_w, {}).get(other)
                if not o:
                    return None
                vals = [reps[k][key] / o[k][key] for k in reps
                        if k in o and reps[k].get(key) is not None and o[k].get(key)]
                return statistics.median(vals) if vals else None
            cpu_key = "cpu_s_per_10GB" if w == "W3" else (
                "kernel_kib_per_conn" if w in ("W5", "W5K") else (
                    "delivered_per_s" if w == "N1" else (
                        "cpu_us_per_msg" if w == "N2" else "cpu_us_per_unit")))
            hap = HAPROXY_OF.get(t, "haproxy")
            out.append({"workload": w, "unit": UNITS[w], "target": t,
                        "median": med("rate"), "p50_ms": med("p50_ms"),
                        "p99_ms": med("p99_ms"), "p999_ms": med("p999_ms"),
                        "errors": med("errors"), "cpu": med(cpu_key),
                        "load_busy": med("load_core_busy"),
                        "proxy_busy": med("proxy_core_busy"),
                        "user_share": med("proxy_user_share"),
                        "cpu_unit": {"cpu_us_per_unit": "proxy CPU µs/unit",
                                     "cpu_s_per_10GB": "proxy CPU-s/10 GB",
                                     "kernel_kib_per_conn": "kernel buffer KiB/conn",
                                     "delivered_per_s": "msg/s delivered",
                                     "cpu_us_per_msg": "CPU µs/msg"}[cpu_key],
                        "vs_haproxy": ratio(hap) if t != hap else 1.0,
                        "cost_vs_haproxy": (ratio(hap, key=cpu_key)
                                            if t not in (hap, "direct") and w != "N1"
                                            else None),
                        # the engine comparison: paired with relay-epoll
                        "vs_relay_epoll": (ratio("relay-epoll")
                                           if t not in ("relay-epoll", "direct")
                                           else None),
                        "cost_vs_relay_epoll": (ratio("relay-epoll", key=cpu_key)
                                                if t not in ("relay-epoll", "direct")
                                                and w not in ("N1", "N2")
                                                else None),
                        "vs_direct": (ratio(ONE_WORKER[t]) if t in ONE_WORKER
                                      else (ratio("direct") if t != "direct"
                                            and w not in ("N1", "N2") else None))})
    return out


def fmt(v, nd=2):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return "%.0f" % v
    return "%.*f" % (nd, v)


def write_report(summary, rows, args, rate):
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%dT%H%M")
    with open(os.path.join(args.out, "bench-%s.csv" % stamp), "w", newline="") as f:
        keys = sorted({k for r in rows for k in r})
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    cmd = "bench/run.py" + ("" if args.argv == [] else " " + " ".join(args.argv))
    lines = ["Benchmark of %s on %s (%d CPUs, %s), `%s` (reps %d, %d s runs, "
             "%d idle connections, W1R at %s conn/s, %d N1 messages, "
             "%d N2 messages of %d bytes); "
             "proxies pinned on CPU 0, load and backends on CPU 1 (W1S: the proxy on "
             "both). Medians of %d runs; ratios are medians of paired ratios "
             "within a repetition."
             % (datetime.date.today(), platform.node() or "this machine", os.cpu_count(),
                platform.platform(), cmd, args.reps, args.duration, args.idle,
                rate if rate else "-", args.node_msgs, args.queue_msgs,
                args.queue_size, args.reps),
             "",
             "| workload | target | median | p50 ms | p99 ms | p99.9 ms | cost | vs HAProxy | cost vs HAProxy | vs direct |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    # with relay-epoll in the run: two more columns, paired with it
    relay = any(s["target"] == "relay-epoll" for s in summary)
    if relay:
        lines[-2] += " vs relay-epoll | cost vs relay-epoll |"
        lines[-1] += " --- | --- |"
    for s in summary:
        vs_h, vs_d = fmt(s["vs_haproxy"]), fmt(s["vs_direct"])
        if s["target"] in ONE_WORKER and s["vs_direct"] is not None:
            vs_d += " (vs 1 worker)"
        if s["workload"] in ("N1", "N2") and s["target"] == "mailnode":
            vs_h += " (vs Postfix)"
        if s["target"] == "lbdlim":
            vs_h += " (vs lbd)"
        med = fmt(s["median"])
        if s["errors"]:
            med += " (%s errors)" % fmt(s["errors"], 0)
        lines.append("| %s (%s) | %s | %s | %s | %s | %s | %s %s | %s | %s | %s |" % (
            s["workload"], s["unit"], LABEL.get(s["target"], s["target"]), med,
            fmt(s["p50_ms"]), fmt(s["p99_ms"]), fmt(s["p999_ms"]), fmt(s["cpu"]),
            s["cpu_unit"] if s["cpu"] is not None else "", vs_h,
            fmt(s["cost_vs_haproxy"]), vs_d) + (
                " %s | %s |" % (fmt(s["vs_relay_epoll"]),
                                fmt(s["cost_vs_relay_epoll"])) if relay else ""))
    split = [s for s in summary if s["load_busy"] is not None]
    if split:
        lines += ["", "Where the time went (medians): how busy the load's CPU "
                  "and the proxy's were during each run, and the share of "
                  "the proxy's CPU time spent in user space (the rest is the "
                  "kernel's, loopback's receive processing of the peer "
                  "included).", "",
                  "| workload | target | load CPU busy | proxy CPU busy | proxy user share |",
                  "| --- | --- | --- | --- | --- |"]
        for s in split:
            lines.append("| %s | %s | %s | %s | %s |" % (
                s["workload"], LABEL.get(s["target"], s["target"]),
                fmt(s["load_busy"]), fmt(s["proxy_busy"]), fmt(s["user_share"])))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "bench-%s.md" % stamp), "w") as f:
        f.write(text)
    print(text)


def hold(ports):
    """W5K's backend (run.py --hold PORTS): accepts on each loopback port,
    writes a greeting and keeps the descriptor, nothing else (one epoll
    for the listeners alone), until SIGTERM."""
    ep = select.epoll()
    listeners = {}
    for p in ports:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", p))
        s.listen(4096)
        s.setblocking(False)
        listeners[s.fileno()] = s
        ep.register(s.fileno(), select.EPOLLIN)
    held = []
    while True:
        for fd, _ in ep.poll():
            while True:
                try:
                    c, _ = listeners[fd].accept()
                except BlockingIOError:
                    break
                except OSError as e:  # EMFILE: the limit is in the log
                    print("hold: accept: %s (%d held)" % (e, len(held)),
                          file=sys.stderr)
                    time.sleep(0.1)
                    break
                try:
                    os.write(c.fileno(), Bench.W5K_GREETING)
                except OSError:
                    pass
                held.append(c.detach())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk/iperf3/fixedrate run")
    ap.add_argument("--idle", type=int, default=9000, help="W5 idle connections")
    ap.add_argument("--idle-many", type=int, default=100000,
                    help="W5K idle connections through one lbd")
    ap.add_argument("--probes", type=int, default=1000,
                    help="W5K fresh connections timed meanwhile")
    ap.add_argument("--hold", help="(internal) W5K's backend: listen on these "
                    "loopback ports, greet and hold every connection")
    ap.add_argument("--rate", type=int, default=0,
                    help="W1R connections/s (default: half HAProxy's W1 rate)")
    ap.add_argument("--smtp-msgs", type=int, default=3000)
    ap.add_argument("--node-msgs", type=int, default=1500, help="N1 messages per run")
    ap.add_argument("--queue-msgs", type=int, default=5000, help="N2 messages per run")
    ap.add_argument("--queue-size", type=int, default=10240, help="N2 message bytes")
    ap.add_argument("--workloads", default=",".join(ORDER))
    ap.add_argument("--bin", default=os.path.join(TOP, "build", "bin"))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--quick", action="store_true", help="1 rep, 1 s runs: a smoke test")
    ap.add_argument("--targets", default=",".join(DEFAULT_TARGETS),
                    help="of %s: those W1-W4 and W1R run through (relay-*: "
                    "bench/relay_engines.c, the epoll and io_uring engines)"
                    % ",".join(t for t in TARGETS if t != "lbdtuned"))
    ap.add_argument("--lbd-set", action="append", default=[], metavar="KEY=VALUE",
                    help="an [lbd] setting of a second lbd, 'lbd tuned', run beside "
                    "lbd with its defaults (repeatable)")
    ap.add_argument("--relay-collect-us", type=int, default=0, metavar="N",
                    help="the relay-* targets' --collect-us (lbd's io_collect_us; "
                    "default 0: off)")
    ap.add_argument("--tuned-bin", metavar="DIR",
                    help="lbd tuned's binary directory (default --bin): a "
                    "before-and-after comparison")
    ap.add_argument("--tuned-label", help="lbd tuned's name in the report")
    args = ap.parse_args()
    LABEL["lbdtuned"] = args.tuned_label or "lbd tuned (%s)" % ", ".join(
        args.lbd_set + (["bin " + args.tuned_bin] if args.tuned_bin else []))
    if args.hold:
        hold([int(p) for p in args.hold.split(",")])
    args.argv = sys.argv[1:]
    if args.quick:
        args.reps, args.duration, args.idle, args.smtp_msgs, args.node_msgs = 1, 1, 1000, 300, 200
        args.idle_many, args.probes = 5000, 200
        args.queue_msgs = 200
    workloads = args.workloads.split(",")
    for w in ("N1", "N2"):
        if w in workloads and os.geteuid() != 0:
            print("bench: %s skipped: a private Postfix instance needs root" % w,
                  file=sys.stderr)
            workloads.remove(w)
    mail = bool({"N1", "N2"} & set(workloads))
    proxied = bool(set(workloads) - {"N1", "N2"})  # the web, bulk and SMTP backends
    tools = ["taskset", "smtp-source", "smtp-sink"]
    if proxied:
        tools += ["wrk", "iperf3", "haproxy", "nginx", "cc"]
    if mail:
        tools += ["redis-server", "postfix"]
    for tool in tools:
        if shutil.which(tool) is None:
            sys.exit("bench: %s is missing (bench/run.sh installs it)" % tool)
    b = Bench(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    proxies = ([t for t in PROXIES if t in b.targets]
               if set(workloads) - OWN_TARGETS else [])
    for w in ("W1S", "W1L", "W4L"):
        if w in workloads:
            proxies += [t for t in WORKLOAD_TARGETS[w] if t not in proxies]
    try:
        if proxied:
            b.start_backends()
            b.start_proxies(proxies)
        if mail:
            b.start_mail()
        if "W1R" in workloads:
            b.compiled("fixedrate")
        rows = b.run(workloads)
    finally:
        b.stop_mail()
        b.stop_all()
    write_report(summarize(rows), rows, args, b.rate)


if __name__ == "__main__":
    main()
