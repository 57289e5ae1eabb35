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
  W5 idle connections: N held through the proxy (resident KiB per connection)
plus each proxy's CPU time per unit of work, read from /proc.

usage: bench/run.py [--reps N] [--duration S] [--idle N] [--quick]
                    [--workloads W1,W2,...] [--out DIR]
"""
import argparse
import csv
import datetime
import json
import os
import platform
import re
import resource
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
TARGETS = ["direct", "haproxy", "nginx", "lbd"]
PROXIES = ["haproxy", "nginx", "lbd"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        self.procs = []
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
        self.spawn(["iperf3", "-s", "-p", str(self.bulk)], self.load_cpu, "iperf3")
        for i, p in enumerate(self.sink):
            self.spawn(["smtp-sink", "-u", "postfix", "127.0.0.1:%d" % p, "1024"],
                       self.load_cpu, "sink%d" % i)
        for p in self.web + self.sink + [self.bulk]:
            wait_port(p)

    # proxies ------------------------------------------------------------
    def start_proxies(self):
        self.ports = {"direct": {"web": self.web[0], "bulk": self.bulk,
                                 "smtp": self.sink[0]}}
        self.pids = {}
        for name in PROXIES:
            ports = {k: free_port() for k in ("web", "bulk", "smtp")}
            self.ports[name] = ports
            p = getattr(self, "start_" + name)(ports)
            self.pids[name] = p.pid
            try:
                for port in ports.values():
                    wait_port(port)
            except RuntimeError:
                with open(os.path.join(self.tmp, name + ".log"), "rb") as f:
                    sys.stderr.write(f.read().decode(errors="replace")[-2000:])
                raise
        time.sleep(1)  # first health checks

    def start_lbd(self, ports):
        nodes = lambda backs: "".join("node = b%d 127.0.0.1:%d\n" % (i, p)
                                      for i, p in enumerate(backs))
        conf = os.path.join(self.tmp, "lbd.ini")
        with open(conf, "w") as f:
            f.write("[lbd]\ncontrol = %s/lbd.sock\nworkers = 1\nlog_level = warn\n"
                    "[service web]\nlisten = 127.0.0.1:%d\npool = web\n"
                    "[service bulk]\nlisten = 127.0.0.1:%d\npool = bulk\n"
                    "[service smtp]\nlisten = 127.0.0.1:%d\nprotocol = smtp\npool = mx\n"
                    "[pool web]\ncheck = tcp\n%s"
                    "[pool bulk]\ncheck = tcp\n%s"
                    "[pool mx]\ncheck = tcp\n%s"
                    % (self.tmp, ports["web"], ports["bulk"], ports["smtp"],
                       nodes(self.web), nodes([self.bulk]), nodes(self.sink)))
        lbd = os.path.join(self.args.bin, "lbd")
        return self.spawn([lbd, "-c", conf], self.proxy_cpu, "lbd")

    def start_haproxy(self, ports):
        def backend(name, backs):
            return "backend %s\n balance roundrobin\n%s" % (name, "".join(
                " server b%d 127.0.0.1:%d check\n" % (i, p) for i, p in enumerate(backs)))
        conf = os.path.join(self.tmp, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write("global\n nbthread 1\n maxconn 9800\n"
                    "defaults\n mode tcp\n retries 2\n option redispatch\n"
                    " timeout connect 1s\n timeout client 300s\n timeout server 300s\n"
                    "frontend web\n bind 127.0.0.1:%d\n default_backend web\n"
                    "frontend bulk\n bind 127.0.0.1:%d\n default_backend bulk\n"
                    "frontend smtp\n bind 127.0.0.1:%d\n default_backend mx\n%s%s%s"
                    % (ports["web"], ports["bulk"], ports["smtp"],
                       backend("web", self.web), backend("bulk", [self.bulk]),
                       backend("mx", self.sink)))
        return self.spawn(["haproxy", "-db", "-f", conf], self.proxy_cpu, "haproxy")

    def start_nginx(self, ports):
        def up(name, backs):
            return "upstream %s { %s }\n" % (name, " ".join(
                "server 127.0.0.1:%d;" % p for p in backs))
        conf = os.path.join(self.tmp, "proxy-nginx.conf")
        with open(conf, "w") as f:
            f.write("load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n"
                    "worker_processes 1; daemon off; pid %s/proxy.pid;\n"
                    "worker_rlimit_nofile 65536; error_log %s/proxy-error.log;\n"
                    "events { worker_connections 19000; }\n"
                    "stream { %s%s%s"
                    "server { listen 127.0.0.1:%d backlog=4096; proxy_pass web; }\n"
                    "server { listen 127.0.0.1:%d; proxy_pass bulk; }\n"
                    "server { listen 127.0.0.1:%d backlog=4096; proxy_pass mx; } }\n"
                    % (self.tmp, self.tmp, up("web", self.web), up("bulk", [self.bulk]),
                       up("mx", self.sink), ports["web"], ports["bulk"], ports["smtp"]))
        return self.spawn(["nginx", "-c", conf, "-p", self.tmp], self.proxy_cpu, "nginx")

    # measurements -------------------------------------------------------
    def proxy_pids(self, target):
        """The proxy's processes: nginx does its work in a child."""
        if target == "direct":
            return []
        pid = self.pids[target]
        kids = []
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            pass
        return [pid] + kids

    def cpu(self, target):
        total = 0
        for pid in self.proxy_pids(target):
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / CLK_TCK

    def rss_kib(self, target):
        total = 0
        for pid in self.proxy_pids(target):
            with open("/proc/%d/status" % pid) as f:
                m = re.search(r"VmRSS:\s+(\d+) kB", f.read())
                total += int(m.group(1))
        return total

    def load(self, cmd, timeout):
        r = subprocess.run(["taskset", "-c", self.load_cpu] + cmd, capture_output=True,
                           text=True, timeout=timeout, preexec_fn=raise_nofile)
        if r.returncode != 0:
            raise RuntimeError("%s: %s" % (cmd[0], r.stderr[-500:]))
        return r.stdout

    @staticmethod
    def wrk_parse(out):
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        lat = {}
        for pct, val, unit in re.findall(r"\s(50|99)%\s+([\d.]+)(us|ms|s)\b", out):
            lat[pct] = float(val) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
        total = int(re.search(r"(\d+) requests in", out).group(1))
        return rps, lat.get("50"), lat.get("99"), total

    def w_short(self, target, keepalive):
        port = self.ports[target]["web"]
        d = self.args.duration
        cmd = ["wrk", "-t1", "-c32", "-d%ds" % d, "--latency"]
        if not keepalive:
            cmd += ["-H", "Connection: close"]
        c0 = self.cpu(target) if target != "direct" else 0
        out = self.load(cmd + ["http://127.0.0.1:%d/1k" % port], d + 30)
        c1 = self.cpu(target) if target != "direct" else 0
        rps, p50, p99, total = self.wrk_parse(out)
        return {"rate": rps, "p50_ms": p50, "p99_ms": p99,
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

    def W5(self, target):
        if target == "direct":
            return None
        port = self.ports[target]["web"]
        n = self.args.idle
        before = self.rss_kib(target)
        sock0 = self.sockstat_mem()
        conns = []
        try:
            for _ in range(n):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", port))
                conns.append(s)
            time.sleep(1.0)  # let the proxy connect every one onward
            after = self.rss_kib(target)
            sock1 = self.sockstat_mem()
        finally:
            for s in conns:
                s.close()
        time.sleep(1.0)
        return {"rate": (after - before) / n,
                "kernel_kib_per_conn": (sock1 - sock0) * PAGE / 1024 / n}

    @staticmethod
    def sockstat_mem():
        with open("/proc/net/sockstat") as f:
            m = re.search(r"TCP:.* mem (\d+)", f.read())
        return int(m.group(1))

    # the run ------------------------------------------------------------
    def run(self):
        rows = []
        workloads = self.args.workloads.split(",")
        for rep in range(self.args.reps):
            order = TARGETS[rep % len(TARGETS):] + TARGETS[:rep % len(TARGETS)]
            for w in workloads:
                for t in order:
                    r = getattr(self, w)(t)
                    if r is None:
                        continue
                    r.update({"workload": w, "target": t, "rep": rep})
                    rows.append(r)
                    print("%s rep %d %-8s %s" % (w, rep, t, {k: (round(v, 3) if isinstance(v, float) else v)
                                                              for k, v in r.items() if k not in ("workload", "target", "rep")}),
                          flush=True)
        return rows


UNITS = {"W1": "conn/s", "W2": "req/s", "W3": "Gbit/s", "W4": "sessions/s",
         "W5": "KiB/idle conn"}


def summarize(rows):
    """Median per workload and target, and the median of paired ratios
    (lbd / haproxy and target / direct, the same repetition)."""
    out = []
    for w in sorted({r["workload"] for r in rows}):
        by = {}
        for r in rows:
            if r["workload"] == w:
                by.setdefault(r["target"], {})[r["rep"]] = r
        for t in TARGETS:
            if t not in by:
                continue
            reps = by[t]
            def med(key):
                vals = [x[key] for x in reps.values() if x.get(key) is not None]
                return statistics.median(vals) if vals else None
            def ratio(other):
                if other not in by:
                    return None
                vals = [reps[k]["rate"] / by[other][k]["rate"] for k in reps
                        if k in by[other] and by[other][k]["rate"]]
                return statistics.median(vals) if vals else None
            cpu_key = "cpu_s_per_10GB" if w == "W3" else (
                "kernel_kib_per_conn" if w == "W5" else "cpu_us_per_unit")
            out.append({"workload": w, "unit": UNITS[w], "target": t,
                        "median": med("rate"), "p50_ms": med("p50_ms"),
                        "p99_ms": med("p99_ms"), "cpu": med(cpu_key),
                        "cpu_unit": {"cpu_us_per_unit": "proxy CPU µs/unit",
                                     "cpu_s_per_10GB": "proxy CPU-s/10 GB",
                                     "kernel_kib_per_conn": "kernel KiB/conn"}[cpu_key],
                        "vs_haproxy": ratio("haproxy") if t != "haproxy" else 1.0,
                        "vs_direct": ratio("direct") if t != "direct" else 1.0})
    return out


def fmt(v, nd=2):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return "%.0f" % v
    return "%.*f" % (nd, v)


def write_report(summary, rows, args):
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%dT%H%M")
    with open(os.path.join(args.out, "bench-%s.csv" % stamp), "w", newline="") as f:
        keys = sorted({k for r in rows for k in r})
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    lines = ["Benchmark of %s on %s (%d CPUs, %s), `bench/run.py --reps %d --duration %d --idle %d`; "
             "proxies pinned on CPU 0, load and backends on CPU 1. Medians of %d runs; "
             "ratios are medians of paired ratios within a repetition."
             % (datetime.date.today(), platform.node() or "this machine", os.cpu_count(),
                platform.platform(), args.reps, args.duration, args.idle, args.reps),
             "",
             "| workload | target | median | p50 ms | p99 ms | proxy cost | vs HAProxy | vs direct |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in summary:
        lines.append("| %s (%s) | %s | %s | %s | %s | %s %s | %s | %s |" % (
            s["workload"], s["unit"], s["target"], fmt(s["median"]), fmt(s["p50_ms"]),
            fmt(s["p99_ms"]), fmt(s["cpu"]), s["cpu_unit"] if s["cpu"] is not None else "",
            fmt(s["vs_haproxy"]), fmt(s["vs_direct"])))
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "bench-%s.md" % stamp), "w") as f:
        f.write(text)
    print(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk/iperf3 run")
    ap.add_argument("--idle", type=int, default=9000, help="W5 idle connections")
    ap.add_argument("--smtp-msgs", type=int, default=3000)
    ap.add_argument("--workloads", default="W1,W2,W3,W4,W5")
    ap.add_argument("--bin", default=os.path.join(TOP, "build", "bin"))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--quick", action="store_true", help="1 rep, 1 s runs: a smoke test")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.duration, args.idle, args.smtp_msgs = 1, 1, 1000, 300
    for tool in ("taskset", "wrk", "iperf3", "haproxy", "nginx", "smtp-source", "smtp-sink"):
        if shutil.which(tool) is None:
            sys.exit("bench: %s is missing (bench/run.sh installs it)" % tool)
    b = Bench(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        b.start_backends()
        b.start_proxies()
        rows = b.run()
    finally:
        b.stop_all()
    write_report(summarize(rows), rows, args)


if __name__ == "__main__":
    main()
