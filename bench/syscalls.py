#!/usr/bin/env python3
"""System calls per unit of work: HAProxy and lbd (and nginx's stream
proxy, and run.py's relay-* targets) under run.py's W1, W2, W3 and W4
loads, counted with `strace -c -f` attached to the proxy for one bounded
load run each, divided by the units the load generator completed
(connections, requests, 64 KiB of W3's iperf3 stream, SMTP sessions). An
io_uring_enter counts as one call however many requests it carries.
strace slows the proxy down, so the rates are meaningless; the counts per
unit are what this is for. Before it, the same load runs untraced and
gives the proxy's sleeps per unit (its threads' voluntary context
switches: each is a wait in epoll_wait or a collect interval, and a
wake-up after it) and CPU µs per unit. Same backends, proxy configs and
pinning as run.py (it imports them).

usage: bench/syscalls.py [--duration S] [--workloads W1,W2,W3,W4]
                         [--targets haproxy,lbd] [--bin DIR]
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402

LINE = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$")


def strace_counts(text):
    """{syscall: (calls, errors)} from strace -c's table."""
    out = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if m and m.group(3) != "total":
            out[m.group(3)] = (int(m.group(1)), int(m.group(2) or 0))
    return out


def units(b, w, target):
    """Runs one load of workload w against target; returns its units."""
    port = b.ports[target][{"W3": "bulk", "W4": "smtp"}.get(w, "web")]
    if w == "W3":
        out = json.loads(b.load(["iperf3", "-c", "127.0.0.1", "-p", str(port),
                                 "-t", str(b.args.duration), "-J"],
                                b.args.duration + 30))
        return max(1, out["end"]["sum_received"]["bytes"] // 65536)
    if w == "W4":
        n = b.args.smtp_msgs
        b.load(["smtp-source", "-s", "16", "-m", str(n), "-l", "1024",
                "-f", "bench@example.test", "-t", "sink@example.test",
                "127.0.0.1:%d" % port], 300)
        return n
    cmd = ["wrk", "-t1", "-c32", "-d%ds" % b.args.duration, "--latency"]
    if w == "W1":
        cmd += ["-H", "Connection: close"]
    out = b.load(cmd + ["http://127.0.0.1:%d/1k" % port], b.args.duration + 30)
    return b.wrk_parse(out)[3]


def switches(b, target):
    """Voluntary context switches of all the proxy's threads so far."""
    n = 0
    for pid in b.proxy_pids(target):
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                n += int(re.search(r"voluntary_ctxt_switches:\s+(\d+)",
                                   f.read()).group(1))
    return n


def untraced(b, w, target):
    """(sleeps, CPU µs, user CPU µs) per unit of one untraced load run."""
    s0, (u0, k0) = switches(b, target), b.cpu_split(target)
    n = units(b, w, target)
    u1, k1 = b.cpu_split(target)
    return ((switches(b, target) - s0) / n, (u1 + k1 - u0 - k0) * 1e6 / n,
            (u1 - u0) * 1e6 / n)


def measure(b, w, target):
    plain = untraced(b, w, target)
    log = os.path.join(b.tmp, "strace-%s-%s.txt" % (w, target))
    pids = b.proxy_pids(target)
    cmd = ["strace", "-c", "-f", "-o", log]
    for pid in pids[-1:] if target == "nginx" else pids[:1]:
        cmd += ["-p", str(pid)]
    st = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached to every thread
    try:
        n = units(b, w, target)
    finally:
        st.send_signal(signal.SIGINT)
        st.wait(30)
    with open(log) as f:
        return n, strace_counts(f.read()), plain


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--smtp-msgs", type=int, default=600)
    ap.add_argument("--workloads", default="W1,W2,W4")
    ap.add_argument("--targets", default="haproxy,lbd")
    ap.add_argument("--bin", default=os.path.join(run.TOP, "build", "bin"))
    ap.add_argument("--lbd-set", action="append", default=[], metavar="KEY=VALUE",
                    help="as run.py's: adds the target lbdtuned")
    ap.add_argument("--tuned-bin", metavar="DIR", help="as run.py's")
    args = ap.parse_args()
    args.reps, args.idle, args.rate, args.node_msgs = 1, 0, 0, 0
    b = run.Bench(args)
    targets = b.targets
    try:
        b.start_backends()
        b.start_proxies(targets)
        for w in args.workloads.split(","):
            res = {t: measure(b, w, t) for t in targets}
            names = sorted({s for _, c, _ in res.values() for s in c},
                           key=lambda s: -max(c.get(s, (0, 0))[0] / n
                                              for n, c, _ in res.values()))
            print("\n%s, system calls per %s (errors in brackets)" % (
                w, {"W1": "connection", "W2": "request", "W3": "64 KiB",
                    "W4": "session"}[w]))
            print("| call | " + " | ".join(targets) + " |")
            print("| --- |" + " --- |" * len(targets))
            for s in names:
                cells = []
                for t in targets:
                    n, c, _ = res[t]
                    calls, errs = c.get(s, (0, 0))
                    cells.append("%.2f" % (calls / n) +
                                 (" (%.2f)" % (errs / n) if errs else ""))
                if any(float(x.split()[0]) >= 0.01 for x in cells):
                    print("| %s | %s |" % (s, " | ".join(cells)))
            print("| total | " + " | ".join(
                "%.2f" % (sum(x[0] for x in res[t][1].values()) / res[t][0])
                for t in targets) + " |")
            print("| units | " + " | ".join(str(res[t][0]) for t in targets) + " |")
            print("| sleeps (untraced) | " + " | ".join(
                "%.3f" % res[t][2][0] for t in targets) + " |")
            print("| CPU µs (untraced) | " + " | ".join(
                "%.1f" % res[t][2][1] for t in targets) + " |")
            print("| of which user µs | " + " | ".join(
                "%.1f" % res[t][2][2] for t in targets) + " |", flush=True)
    finally:
        b.stop_all()


if __name__ == "__main__":
    main()
