"""lbd's open-file limit: raised by lbd itself at start (the soft limit
to the hard one, the hard one too as root when max_connections needs
it), a clear refusal, at start and at a reload, when the services'
max_connections cannot fit, and, with no max_connections, a listener
that rests (no spinning, one log line) while accept() finds no
descriptor."""
import os
import signal
import socket
import subprocess
import sys
import time

from lbdtest import LbdTestCase, free_port, recv_line, wait_for

SOFT, HARD = 256, 4096


def config(port, node, max_connections=0):
    return """[lbd]
control = {control}
workers = 1
grace_s = 1
[service front]
listen = 127.0.0.1:%d
protocol = smtp
pool = p
max_connections = %d
[pool p]
check = tcp
check_interval_ms = 200
node = %s %s
""" % (port, max_connections, node.name, node.addr)


def open_files(pid):
    """(soft, hard) "Max open files" of a process, from /proc/PID/limits."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no Max open files in /proc/%d/limits" % pid)


def may_raise_hard(to):
    """Whether a process here may raise its hard limit (CAP_SYS_RESOURCE:
    root in a container may lack it)."""
    code = ("import resource as r; r.setrlimit(r.RLIMIT_NOFILE, (%d, %d)); "
            "r.setrlimit(r.RLIMIT_NOFILE, (%d, %d))" % (SOFT, HARD, to, to))
    return subprocess.run([sys.executable, "-c", code],
                          capture_output=True).returncode == 0


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def nr_open():
    with open("/proc/sys/fs/nr_open") as f:
        return int(f.read())


class NofileTest(LbdTestCase):
    def test_raises_soft_limit_and_holds_more(self):
        n = self.node("n1", "smtp")
        port = free_port()
        l = self.lbd(config(port, n), nofile=(SOFT, HARD))
        l.wait_state("p", "n1", "up")
        self.assertEqual(open_files(l.proc.pid), (HARD, HARD))
        self.assertIn("open files: limit %d (was %d, hard %d)" % (HARD, SOFT, HARD),
                      l.log())
        # two descriptors each in lbd: more than the old soft limit holds
        clients = []
        try:
            for _ in range(SOFT // 2 + 72):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                clients.append(s)
                self.assertTrue(recv_line(s).startswith("220 n1 "))
        finally:
            for s in clients:
                s.close()
        self.assertNotIn("accept:", l.log())

    def test_hard_limit_raised_or_refused(self):
        # max_connections 3000 needs 2 * 3000 + 1 + 256 = 6257 > HARD:
        # with CAP_SYS_RESOURCE (root, outside a container that drops
        # it) lbd raises its hard limit to that; without, it is refused
        n = self.node("n1", "smtp")
        port = free_port()
        l = self.lbd(config(port, n, 3000), nofile=(SOFT, HARD), start=False)
        l.start(wait=False)
        if may_raise_hard(6257):
            wait_for(l.ping, 10, what="lbd control socket")
            self.assertEqual(open_files(l.proc.pid), (6257, 6257))
            return
        self.assertEqual(l.proc.wait(10), 1)
        self.assertIn("max_connections need 6257 open files", l.log())
        self.assertIn("RLIMIT_NOFILE is %d hard" % HARD, l.log())

    def test_refused_beyond_nr_open(self):
        # 10,000,000 connections: above fs.nr_open even for root
        if 2 * 10000000 <= nr_open():
            self.skipTest("fs.nr_open %d holds 20,000,000 files" % nr_open())
        n = self.node("n1", "smtp")
        port = free_port()
        l = self.lbd(config(port, n, 10000000), nofile=(SOFT, HARD), start=False)
        l.start(wait=False)
        self.assertEqual(l.proc.wait(10), 1)
        log = l.log()
        self.assertIn("max_connections need 20000257 open files", log)
        self.assertIn("RLIMIT_NOFILE", log)
        self.assertIn("lower max_connections", log)

    def test_reload_refused_beyond_the_limit(self):
        n = self.node("n1", "smtp")
        port = free_port()
        l = self.lbd(config(port, n, 100), nofile=(SOFT, HARD))
        l.write_config(config(port, n, 10000000))
        l.signal(signal.SIGHUP)
        wait_for(lambda: "reload of" in l.log(), 10, what="the reload's refusal")
        self.assertIn("refused, the running config stays: the services' "
                      "max_connections need 20000257", l.log())
        l.wait_state("p", "n1", "up")

    def test_accept_rests_at_the_limit(self):
        # 300 files, no max_connections: about 140 connections fit, the
        # rest wait in the backlog until some close
        n = self.node("n1", "smtp")
        port = free_port()
        l = self.lbd(config(port, n), nofile=(300, 300))
        l.wait_state("p", "n1", "up")
        clients = []
        try:
            for _ in range(200):
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            wait_for(lambda: "accept: Too many open files" in l.log(), 10,
                     what="accept's EMFILE")
            c0 = cpu_s(l.proc.pid)
            time.sleep(2)
            self.assertLess(cpu_s(l.proc.pid) - c0, 0.5, "lbd spins on accept")
            self.assertLess(l.log().count("accept: "), 20)
            for s in clients[:80]:
                s.close()
            # each answered once descriptors are free: the node's
            # greeting, or lbd's 421 for one accepted when no socket for
            # the node could be had
            for s in clients[80:]:
                self.assertRegex(recv_line(s), r"^(220 n1 |421 )")
        finally:
            for s in clients:
                s.close()
