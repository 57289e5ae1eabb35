#!/usr/bin/env python3
"""IMAP benchmark: mailnode against Dovecot on copies of one Maildir.

What it does, in one run (everything on loopback, in a temp dir, stopped at
the end whatever happens):

  1. Starts a private redis-server, makes domain example.test and user
     alice@example.test (password "demo") with build/bin/mailctl, starts one
     mailnode (IMAP listener only, allow_plaintext_auth = yes) and Dovecot
     (`dovecot -F -c CONF`, a config of its own: ssl = no, a passwd-file
     passdb holding the very crypt(3) hash mailctl stored in Redis, so both
     servers pay the same hash per login, a static userdb as nobody:nogroup
     with a home in the temp dir, mail_location = maildir:~/Maildir).
     Servers run pinned on CPU 0 (taskset), this client on CPU 1.
  2. Builds a 10,000-message INBOX: varied messages of 2 to 8 KB, CRLF line
     ends, distinct subjects, one in ten with the search word in its
     Subject (a few more with it only in the body), one in three
     multipart. They are written straight into alice's Maildir new/ in the
     mailnode store (APPEND with an fsync per message would take minutes);
     a first mailnode SELECT gives them UIDs, then about 90 % are marked
     seen by renaming (`:2,S`, flags live in file names), and the Maildir's
     cur/ new/ tmp/ are copied to Dovecot's ~/Maildir (chown nobody).
  3. Warms both servers (SELECT + FETCH 1:* of UID FLAGS RFC822.SIZE and
     of the Message-ID header, untimed), which also maps each server's
     sequence numbers to the generated messages.
  4. Measures, targets interleaved (mailnode, dovecot, then dovecot,
     mailnode in the next rep, ...), --reps times:
       W1  SELECT INBOX + FETCH 1:* (UID FLAGS RFC822.SIZE)   seconds
       W2a SEARCH UNSEEN                                     seconds
       W2b SEARCH SUBJECT <word>                             seconds
       W3  --sessions concurrent sessions (threads), each connecting,
           logging in, selecting INBOX and fetching --per-session distinct
           messages' BODY.PEEK[], one FETCH each              wall seconds
     Login (W1, W2) is not timed; W3 times everything from connect on.
     Results: medians, and the median of the paired per-rep ratios
     mailnode/dovecot (the machine is shared and noisy; pairs cancel
     most of the drift). Target: ratio <= 1.0 on each.
  5. Also: each server's CPU seconds over the measured part (utime+stime
     from /proc, Dovecot's whole process tree under the master started
     here, reaped children included through the master's cutime/cstime)
     and peak resident memory (sampled sum of VmRSS over the tree; for
     mailnode also its VmHWM).

  6. Then, one server at a time (mailnode, then Dovecot), the idle
     workloads, with --idle-sessions users idle00000@example.test ... (one
     session each; one SHA-512-crypt hash of 1,000 rounds for all, so
     10,000 logins are cheap on both) whose mail directories exist (a
     first login of idle00000, copied to the others):
       I1  --idle-sessions sessions opened through lbd (two lbd processes,
           half the sessions each: the open-file limit is 20,000 here, one
           lbd holds two descriptors per session; PROXY v2 to the server:
           mailnode trusts 127.0.0.1, Dovecot gets a haproxy listener),
           each logging in, selecting INBOX and sending IDLE (64 at a time
           between connect and IDLE, in one epoll thread). Dovecot has
           imap_hibernate_timeout = 5s; once all its imap processes have
           hibernated: resident memory per session, the RSS delta of
           mailnode, of Dovecot's whole tree (imap-hibernate, imap-login,
           anvil, ...; RSS summed and PSS summed), of the two lbd, and the
           kernel's TCP buffers (/proc/net/sockstat) and TCP and socket
           inode slab objects (/proc/slabinfo), both for the whole network
           namespace (client, lbd and server sockets).   KiB/session
       I2  one message to each of --notify-users users spread over the
           sessions, in turn (mailnode: SMTP to its MX listener; Dovecot:
           LMTP), while all sessions IDLE: seconds from the start of each
           transaction to its session reading `* N EXISTS`; p50, p99,
           max. No other session may see EXISTS.   Target: p99 <= 1 s.
     Dovecot keeps an inotify instance per session as user nobody: the
     run raises fs.inotify.max_user_instances and puts it back at the
     end.

Direct connections (W1-W3, I2's deliveries) come from 127.0.0.2, since
mailnode waits for a PROXY header from 127.0.0.1 (the lbd address).

Correctness is checked on what is timed, and the run fails (exit 1) if
any check fails: FETCH 1:* must return --messages answers, SEARCH counts
must equal each other and what was generated, every BODY.PEEK[] must
return the exact bytes of the generated message.

Writes OUT/imap.md (a markdown table) and OUT/imap.csv (per rep, medians,
resources) and prints the table. W1 to W3 take a few minutes, I1/I2 with
10,000 sessions about 10 more on a loaded 2-CPU machine; every wait has a
timeout.

usage: bench/imap_bench.py [--reps N] [--messages N] [--sessions N]
                           [--per-session N] [--targets mailnode,dovecot]
                           [--idle-sessions N] [--notify-users N]
                           [--out DIR] [--keep]

Needs: build/bin/mailnode, build/bin/mailctl and build/bin/lbd (cmake
--build build --target mailnode mailctl lbd), redis-server, dovecot
(Debian dovecot-imapd, and dovecot-lmtpd for I2), taskset, root (Dovecot
runs its mail processes as nobody). --idle-sessions 0 skips I1 and I2,
--reps 0 skips W1 to W3. --targets
dovecot runs the Dovecot side alone (no mailnode, no Redis).
"""
import argparse
import csv
import datetime
import email.utils
import glob
import imaplib
import json
import os
import resource
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
BIN = os.environ.get("MS_BIN", os.path.join(TOP, "build", "bin"))
MAILNODE = os.path.join(BIN, "mailnode")
MAILCTL = os.path.join(BIN, "mailctl")
LBD = os.path.join(BIN, "lbd")
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
import redistest  # noqa: E402  (the tests' private redis-server and RESP client)

CLK_TCK = os.sysconf("SC_CLK_TCK")
USER, PASSWORD = "alice@example.test", "demo"
TARGETS = ["mailnode", "dovecot"]
IO_TIMEOUT = 60.0  # every socket operation of the client

WORDS = ("report invoice meeting budget review planning release schedule "
         "update notes draft summary minutes agenda proposal contract quarter "
         "travel server backup network storage cluster migration deadline "
         "feedback design roadmap incident ticket customer partner vendor "
         "holiday training hiring payroll audit policy security license").split()


class BenchError(Exception):
    pass


def log(msg):
    sys.stderr.write("[imap_bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise BenchError("timed out after %.0f s waiting for %s" % (timeout, what))


def can_connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- messages

def make_message(n, rng, word, base_time):
    """Message n (1-based): bytes with CRLF line ends, 2 to 8 KB."""
    subj_words = rng.sample(WORDS, 3)
    has_word = n % 10 == 3                      # word in Subject
    body_word = (not has_word) and n % 10 == 7  # word only in the body
    subject = "%s %s %s #%05d" % (subj_words[0].capitalize(), subj_words[1],
                                  subj_words[2], n)
    if has_word:
        subject = "%s %s" % (subject, word)
    sender = "%s.%s@sender%d.example" % (rng.choice(WORDS), rng.choice(WORDS),
                                         n % 37)
    date = email.utils.formatdate(base_time + n, usegmt=True)
    multipart = n % 3 == 0
    # text to fill: the chosen size less headers (and MIME parts)
    target = rng.randint(2200, 8000) - (1100 if multipart else 550)
    hdr = [
        "Return-Path: <%s>" % sender,
        "Received: from sender%d.example by bench.example.test; %s" % (n % 37, date),
        "From: %s" % sender,
        "To: Alice <alice@example.test>",
        "Subject: %s" % subject,
        "Date: %s" % date,
        "Message-ID: <bench-%d@example.test>" % n,
        "MIME-Version: 1.0",
    ]
    para = []
    while sum(len(p) + 2 for p in para) < target:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12)))
        para.append(line.capitalize() + ".")
    if body_word:
        para.insert(rng.randrange(len(para) + 1), "About the %s: see below." % word)
    text = "\r\n".join(para)
    if multipart:
        boundary = "=_bench_%d_boundary" % n
        hdr.append('Content-Type: multipart/mixed; boundary="%s"' % boundary)
        att = " ".join("%08x" % rng.getrandbits(32) for _ in range(40))
        body = ("This is a multi-part message in MIME format.\r\n"
                "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n"
                "Content-Transfer-Encoding: 7bit\r\n\r\n%s\r\n"
                "--%s\r\nContent-Type: text/plain; name=\"data-%d.txt\"\r\n"
                "Content-Disposition: attachment; filename=\"data-%d.txt\"\r\n"
                "\r\n%s\r\n--%s--\r\n" % (boundary, text, boundary, n, n, att,
                                          boundary))
    else:
        hdr.append("Content-Type: text/plain; charset=us-ascii")
        body = text + "\r\n"
    msg = ("\r\n".join(hdr) + "\r\n\r\n" + body).encode("ascii")
    if not 2000 <= len(msg) <= 8192:
        raise BenchError("message %d has %d bytes" % (n, len(msg)))
    return msg, has_word


class Mailbox:
    """The generated messages, and which are seen or carry the word."""

    def __init__(self, count, word, seed=4242):
        rng = random.Random(seed)
        self.base_time = int(time.time()) - count - 86400
        self.word = word
        self.msgs = {}          # n -> bytes
        self.with_word = set()  # n with word in Subject
        for n in range(1, count + 1):
            m, has = make_message(n, rng, word, self.base_time)
            self.msgs[n] = m
            if has:
                self.with_word.add(n)
        self.seen = {n for n in self.msgs if rng.random() < 0.9}
        self.unseen = set(self.msgs) - self.seen

    def fname(self, n):
        return "%d.M%06dP%dQ%d.bench,S=%d" % (self.base_time + n, n % 1000000,
                                              os.getpid(), n, len(self.msgs[n]))

    def write_new(self, maildir):
        new = os.path.join(maildir, "new")
        for n, data in self.msgs.items():
            p = os.path.join(new, self.fname(n))
            with open(p, "wb") as f:
                f.write(data)
            os.utime(p, (self.base_time + n, self.base_time + n))

    def mark_seen(self, maildir):
        """Adds S to the flags of the seen messages' files, wherever a
        server put them (new/ moves to cur/ with :2,S), as another node
        storing flags would. Returns how many files were renamed."""
        q = re.compile(r"Q(\d+)\.bench")
        done = 0
        for sub in ("new", "cur"):
            d = os.path.join(maildir, sub)
            for name in os.listdir(d):
                m = q.search(name)
                if not m or int(m.group(1)) not in self.seen:
                    continue
                if ":2," in name:
                    base, flags = name.split(":2,", 1)
                else:
                    base, flags = name, ""
                if "S" in flags:
                    continue
                flags = "".join(sorted(flags + "S"))
                os.rename(os.path.join(d, name),
                          os.path.join(maildir, "cur", base + ":2," + flags))
                done += 1
        return done


# ---------------------------------------------------------------- /proc

def proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def proc_tree(root):
    """root and its descendants (pids), from /proc."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            ppid = int(proc_stat(int(d))[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def tree_cpu(root):
    """CPU seconds of root's tree: utime+stime+cutime+cstime of each
    live process (reaped children count in their parent's c-times)."""
    total = 0
    for pid in proc_tree(root):
        try:
            f = proc_stat(pid)
        except OSError:
            continue
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / CLK_TCK


def status_kib(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            m = re.search(r"^%s:\s+(\d+) kB" % key, f.read(), re.M)
    except OSError:
        return 0
    return int(m.group(1)) if m else 0


def pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            m = re.search(r"^Pss:\s+(\d+) kB", f.read(), re.M)
    except OSError:
        return 0
    return int(m.group(1)) if m else 0


def tree_mem_kib(root):
    """(summed VmRSS, summed Pss) of root's tree. RSS counts pages shared
    between processes once per process; Pss splits them."""
    pids = proc_tree(root)
    return (sum(status_kib(p, "VmRSS") for p in pids),
            sum(pss_kib(p) for p in pids))


class RssSampler(threading.Thread):
    """Samples the summed VmRSS and Pss of each server's tree."""

    def __init__(self, roots, interval=0.25):
        super().__init__(daemon=True)
        self.roots, self.interval = roots, interval
        self.peak = {k: 0 for k in roots}
        self.peak_pss = {k: 0 for k in roots}
        self.stop_ev = threading.Event()

    def sample(self):
        for k, pid in self.roots.items():
            rss, pss = tree_mem_kib(pid)
            self.peak[k] = max(self.peak[k], rss)
            self.peak_pss[k] = max(self.peak_pss[k], pss)

    def run(self):
        while not self.stop_ev.wait(self.interval):
            self.sample()

    def stop(self):
        self.stop_ev.set()
        self.join(5)
        self.sample()


# ---------------------------------------------------------------- servers

class Servers:
    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp
        self.procs = {}   # name -> Popen
        self.logs = {}    # name -> path
        self.ports = {}
        self.redis = None
        self.server_cpu = str(args.server_cpu)

    def spawn(self, name, cmd, **kw):
        path = os.path.join(self.tmp, name + ".out")
        f = open(path, "ab")
        self.logs.setdefault(name, path)
        p = subprocess.Popen(["taskset", "-c", self.server_cpu] + cmd,
                             stdout=f, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, **kw)
        f.close()
        self.procs[name] = p
        return p

    def tail(self, name, n=3000):
        out = []
        for path in (self.logs.get(name), os.path.join(self.tmp, name + ".log"),
                     os.path.join(self.tmp, name, name + ".log")):
            if path and os.path.exists(path):
                with open(path, "rb") as f:
                    out.append(f.read()[-n:].decode("utf-8", "replace"))
        return "\n".join(out)

    # redis + mailctl + mailnode
    def start_redis(self):
        self.redis = redistest.RedisServer(self.tmp, port=free_port())
        # as RedisServer.start() does, but pinned: it serves mailnode only
        cmd = ["redis-server", "--port", str(self.redis.port), "--bind",
               "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
               self.tmp, "--daemonize", "no"]
        self.redis.proc = self.spawn("redis", cmd)
        wait_for(lambda: self.redis.proc.poll() is not None or
                 self._redis_ping(), 10, "redis-server")
        if self.redis.proc.poll() is not None:
            raise BenchError("redis-server exited:\n" + self.tail("redis"))

    def _redis_ping(self):
        try:
            return self.redis.cli("PING") == "PONG"
        except Exception:
            return False

    def mailctl(self, *args, input=None):
        env = dict(os.environ, MAILCTL_REDIS="127.0.0.1:%d" % self.redis.port)
        r = subprocess.run([MAILCTL] + list(args), input=input, env=env,
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise BenchError("mailctl %s: exit %d: %s" % (" ".join(args),
                                                          r.returncode, r.stderr))
        return r.stdout

    def add_idle_users(self, n):
        """idle_user(0 .. n-1), through mailctl export and import."""
        if not n:
            return
        cfg = json.loads(self.mailctl("export"))
        h = idle_hash()
        cfg["users"] += [{"address": idle_user(i), "password": h}
                         for i in range(n)]
        path = os.path.join(self.tmp, "config.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.mailctl("import", path)

    def user_hash(self):
        h = self.redis.cli("HGET", "ms:user:" + USER, "password")
        if not h or not h.startswith("$"):
            raise BenchError("no crypt hash for %s in Redis (got %r)" % (USER, h))
        return h

    def start_mailnode(self):
        self.store = os.path.join(self.tmp, "store")
        spool = os.path.join(self.tmp, "spool")
        os.makedirs(self.store)
        os.makedirs(spool)
        port = self.ports["mailnode"] = free_port()
        conf = os.path.join(self.tmp, "mailnode.ini")
        with open(conf, "w") as f:
            f.write("[node]\nname = bench1\nhostname = bench1.example.test\n"
                    "redis = 127.0.0.1:%d\nstore = %s\nspool = %s\n"
                    "allow_plaintext_auth = yes\ngrace_s = 1\n"
                    # I1/I2: 10,000 sessions from one address through lbd
                    "max_connections = 0\nmax_connections_per_source = 0\n"
                    "proxy_protocol = on\nproxy_trusted = 127.0.0.1/32\n\n"
                    "[listen]\nimap = 127.0.0.1:%d\nsmtp = 127.0.0.1:%d\n"
                    % (self.redis.port, self.store, spool, port,
                       self.ports.setdefault("mailnode_smtp", free_port())))
        p = self.spawn("mailnode", [MAILNODE, "-c", conf])
        wait_for(lambda: p.poll() is not None or can_connect(port), 15,
                 "mailnode's IMAP port")
        wait_for(lambda: p.poll() is not None or
                 "directory: loaded" in self.tail("mailnode", 100000), 15,
                 "mailnode's directory load")
        if p.poll() is not None:
            raise BenchError("mailnode exited %d:\n%s" % (p.returncode,
                                                          self.tail("mailnode")))

    def mailnode_maildir(self):
        found = [d for d in glob.glob(os.path.join(self.store, "example.test",
                                                   "*", "*", "alice"))
                 if os.path.isdir(os.path.join(d, "new"))]
        if len(found) != 1:
            raise BenchError("alice's Maildir not found under %s (found %r)"
                             % (self.store, found))
        return found[0]

    # dovecot
    def setup_dovecot(self, crypt_hash):
        d = os.path.join(self.tmp, "dovecot")
        self.dovecot_dir = d
        self.dovecot_home = os.path.join(d, "home", "alice")
        for sub in ("run", "state", "home/alice/Maildir/cur",
                    "home/alice/Maildir/new", "home/alice/Maildir/tmp"):
            os.makedirs(os.path.join(d, sub))
        # the login, auth and mail processes (dovenull, dovecot, nobody)
        # must reach their files: the temp dirs are mode 0700 by default
        os.chmod(self.tmp, 0o755)
        os.chmod(d, 0o755)
        passwd = os.path.join(d, "passwd")
        with open(passwd, "w") as f:
            f.write("%s:{CRYPT}%s\n" % (USER, crypt_hash))
            h = idle_hash()
            for i in range(self.args.idle_sessions):
                f.write("%s:{CRYPT}%s\n" % (idle_user(i), h))
        os.chmod(passwd, 0o644)
        port = self.ports["dovecot"] = free_port()
        hport = self.ports["dovecot_haproxy"] = free_port()
        lport = self.ports["dovecot_lmtp"] = free_port()
        self.dovecot_conf = os.path.join(d, "dovecot.conf")
        with open(self.dovecot_conf, "w") as f:
            f.write(DOVECOT_CONF % dict(dir=d, port=port, passwd=passwd,
                                        hport=hport, lport=lport))

    def dovecot_maildir(self):
        return os.path.join(self.dovecot_home, "Maildir")

    def start_dovecot(self):
        subprocess.run(["chown", "-R", "nobody:nogroup",
                        os.path.dirname(self.dovecot_home)],
                       check=True, timeout=60)
        p = self.spawn("dovecot", ["dovecot", "-F", "-c", self.dovecot_conf])
        port = self.ports["dovecot"]
        wait_for(lambda: p.poll() is not None or can_connect(port), 15,
                 "dovecot's IMAP port")
        if p.poll() is not None:
            raise BenchError("dovecot exited %d:\n%s" % (p.returncode,
                                                         self.tail("dovecot")))

    def pid(self, name):
        return self.procs[name].pid

    def stop_all(self):
        for name in ("lbd0", "lbd1", "mailnode", "dovecot", "redis"):
            p = self.procs.get(name)
            if not p or p.poll() is not None:
                continue
            tree = proc_tree(p.pid)
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                log("%s (pid %d) did not stop on SIGTERM; SIGKILL" % (name, p.pid))
                p.kill()
                p.wait(10)
            # Dovecot's children exit when the master does; make sure
            time.sleep(0.2)
            for pid in tree[1:]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass


DOVECOT_CONF = """\
# imap_bench.py's private Dovecot: loopback only, no TLS, nothing shared
# with a system instance (own base_dir, state_dir, instance_name, logs).
protocols = imap lmtp
listen = 127.0.0.1
instance_name = imapbench
base_dir = %(dir)s/run
state_dir = %(dir)s/state
log_path = %(dir)s/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = %(passwd)s
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=%(dir)s/home/%%n
}
# I1/I2: lbd in front, as in front of mailnode: PROXY v2 on a listener of
# its own, the client's address from it
haproxy_trusted_networks = 127.0.0.0/8
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %(port)d
  }
  inet_listener imaps {
    port = 0
  }
  inet_listener imap_haproxy {
    address = 127.0.0.1
    port = %(hport)d
    haproxy = yes
  }
}
# I1/I2: hibernation of IDLE sessions, as Dovecot's documentation sets it
# up (doc.dovecot.org, configuration_manual/hibernation): after 5 s of
# IDLE the connection moves to imap-hibernate and its imap process ends
service imap {
  unix_listener imap-master {
    user = $default_internal_user
  }
  extra_groups = $default_internal_group
  # imap processes alive at once: those logged in and not hibernated yet
  process_limit = 2048
}
service imap-hibernate {
  unix_listener imap-hibernate {
    mode = 0660
    group = $default_internal_group
  }
}
# I2: deliveries over LMTP (Debian's dovecot-lmtpd)
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = %(lport)d
  }
}
protocol imap {
  # the default, 10, would refuse the concurrent sessions of W3
  mail_max_userip_connections = 1000
  imap_hibernate_timeout = 5s
}
"""


# ---------------------------------------------------------------- client

# Direct connections (W1-W3, I2's deliveries) come from 127.0.0.2:
# mailnode trusts PROXY headers from 127.0.0.1 (lbd, I1/I2) and waits
# for one from there.
CLIENT_ADDR = "127.0.0.2"


class IMAP4(imaplib.IMAP4):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(CLIENT_ADDR, 0))


def connect(port):
    m = IMAP4("127.0.0.1", port, timeout=IO_TIMEOUT)
    m.login(USER, PASSWORD)
    return m


def ok(typ, data, what):
    if typ != "OK":
        raise BenchError("%s: %s %r" % (what, typ, data))
    return data


FETCH_RE = re.compile(rb"^(\d+) \(")
MSGID_RE = re.compile(rb"<bench-(\d+)@example\.test>")


def seq_map(m, count):
    """Sequence number -> generated message number, from Message-ID."""
    data = ok(*m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"),
              what="FETCH 1:* Message-ID")
    out = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        s = FETCH_RE.match(item[0])
        mid = MSGID_RE.search(item[1])
        if s and mid:
            out[int(s.group(1))] = int(mid.group(1))
    if len(out) != count or sorted(out.values()) != list(range(1, count + 1)):
        raise BenchError("Message-ID map: %d answers, %d distinct messages "
                         "(want %d)" % (len(out), len(set(out.values())), count))
    return out


def w1_w2(port, mbox, word):
    """W1 then W2a, W2b on one logged-in session. Returns seconds and
    checks what came back."""
    m = connect(port)
    try:
        t0 = time.perf_counter()
        typ, data = m.select("INBOX")
        data2 = ok(*m.fetch("1:*", "(UID FLAGS RFC822.SIZE)"),
                   what="FETCH 1:*")
        t1 = time.perf_counter()
        ok(typ, data, "SELECT")
        n = len(mbox.msgs)
        if int(data[0]) != n:
            raise BenchError("SELECT: %s EXISTS, want %d" % (data[0], n))
        answers = [d for d in data2 if isinstance(d, bytes) and FETCH_RE.match(d)]
        if len(answers) != n:
            raise BenchError("FETCH 1:* gave %d answers, want %d" % (len(answers), n))
        t2 = time.perf_counter()
        unseen = ok(*m.search(None, "UNSEEN"), what="SEARCH UNSEEN")
        t3 = time.perf_counter()
        subj = ok(*m.search(None, "SUBJECT", word), what="SEARCH SUBJECT")
        t4 = time.perf_counter()
        counts = (len(unseen[0].split()), len(subj[0].split()))
        m.logout()
    except BaseException:
        try:
            m.shutdown()
        except Exception:
            pass
        raise
    return {"W1": t1 - t0, "W2a": t3 - t2, "W2b": t4 - t3}, counts


def w3(port, mbox, smap, sessions, per_session, timeout):
    """sessions threads at once, each: connect, login, SELECT, then
    per_session FETCH n (BODY.PEEK[]). Returns wall seconds; checks every
    body against the generated bytes."""
    count = len(mbox.msgs)
    stride = max(1, count // (sessions * per_session))
    plans = []
    for i in range(sessions):
        seqs = [((i * per_session + k) * stride) % count + 1
                for k in range(per_session)]
        plans.append(seqs)
    barrier = threading.Barrier(sessions + 1, timeout=timeout)
    results = [None] * sessions
    errors = []

    def session(i):
        got = []
        try:
            barrier.wait()
            m = IMAP4("127.0.0.1", port, timeout=IO_TIMEOUT)
            m.login(USER, PASSWORD)
            ok(*m.select("INBOX"), what="SELECT")
            for s in plans[i]:
                data = ok(*m.fetch(str(s), "(BODY.PEEK[])"), what="FETCH %d" % s)
                body = next((d[1] for d in data if isinstance(d, tuple)), None)
                got.append((s, body))
            m.logout()
            results[i] = got
        except BaseException as e:  # noqa: B902 (reported by the caller)
            errors.append("session %d: %r" % (i, e))

    # one more session, selected beforehand, sends NOOP every 100 ms
    # during the run: how long the server leaves an idle client waiting
    probe = IMAP4("127.0.0.1", port, timeout=IO_TIMEOUT)
    probe.login(USER, PASSWORD)
    ok(*probe.select("INBOX"), what="probe SELECT")
    probe_lat = []
    probe_stop = threading.Event()

    def prober():
        try:
            while not probe_stop.wait(0.1):
                p0 = time.perf_counter()
                ok(*probe.noop(), what="probe NOOP")
                probe_lat.append(time.perf_counter() - p0)
        except BaseException as e:  # noqa: B902
            errors.append("probe: %r" % e)

    threads = [threading.Thread(target=session, args=(i,), daemon=True)
               for i in range(sessions)]
    for t in threads:
        t.start()
    pt = threading.Thread(target=prober, daemon=True)
    barrier.wait()
    t0 = time.perf_counter()
    pt.start()
    end = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.1, end - time.monotonic()))
    t1 = time.perf_counter()
    probe_stop.set()
    pt.join(IO_TIMEOUT)
    try:
        probe.logout()
    except Exception:
        pass
    if any(t.is_alive() for t in threads):
        raise BenchError("W3: %d sessions still running after %.0f s"
                         % (sum(t.is_alive() for t in threads), timeout))
    if errors:
        raise BenchError("W3: %d sessions failed, first: %s" % (len(errors), errors[0]))
    fetched = 0
    for got in results:
        for s, body in got:
            want = mbox.msgs[smap[s]]
            if body != want:
                raise BenchError("W3: FETCH %d BODY.PEEK[] gave %s bytes, not "
                                 "the %d bytes of message %d" % (
                                     s, None if body is None else len(body),
                                     len(want), smap[s]))
            fetched += 1
    if fetched != sessions * per_session:
        raise BenchError("W3: %d bodies, want %d" % (fetched, sessions * per_session))
    return t1 - t0, max(probe_lat) if probe_lat else None


# ---------------------------------------------------------------- I1, I2: idle sessions

# I1/I2's users: idle00000@example.test ...; one cheap hash for all of
# them (SHA-512 crypt, 1,000 rounds), so 10,000 logins per server do not
# take minutes of yescrypt on a shared machine. Both servers check it
# with crypt(3) at each login.
IDLE_PASSWORD = "idle"
IDLE_RE = re.compile(rb"^\* (\d+) EXISTS")


def idle_user(i):
    return "idle%05d@example.test" % i


def idle_hash():
    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # deprecated, still in 3.11
    return crypt.crypt(IDLE_PASSWORD, "$6$rounds=1000$imapbenchidle$")


def start_lbds(srv, targets, count=2):
    """count lbd processes, each with an IMAP service per target in front
    of it (PROXY v2, no health checks, no per-source limits). Two, because
    one lbd holds two descriptors per session and the open-file limit
    here is 20,000 (raising it needs CAP_SYS_RESOURCE): 5,000 sessions
    each. Returns {target: [port of each lbd]}."""
    backend = {"mailnode": srv.ports.get("mailnode"),
               "dovecot": srv.ports.get("dovecot_haproxy")}
    ports = {t: [] for t in targets}
    for k in range(count):
        name = "lbd%d" % k
        conf = ["[lbd]", "control = %s" % os.path.join(srv.tmp, name + ".sock"),
                "workers = 1", "log_level = warn", "grace_s = 1", ""]
        for t in targets:
            p = free_port()
            ports[t].append(p)
            conf += ["[service %s]" % t, "listen = 127.0.0.1:%d" % p,
                     "protocol = imap", "pool = %s" % t, "proxy_protocol = v2",
                     "", "[pool %s]" % t, "check = none",
                     "node = %s 127.0.0.1:%d" % (t, backend[t]), ""]
        path = os.path.join(srv.tmp, name + ".ini")
        with open(path, "w") as f:
            f.write("\n".join(conf))
        p = srv.spawn(name, [LBD, "-c", path])
        for t in targets:
            wait_for(lambda: p.poll() is not None or can_connect(ports[t][-1]),
                     15, "%s's %s port" % (name, t))
        if p.poll() is not None:
            raise BenchError("%s exited %d:\n%s" % (name, p.returncode, srv.tail(name)))
    return ports


class IdleFleet:
    """n IMAP sessions in one thread (epoll): each connects to one of
    ports (round robin), logs in as idle_user(i), selects INBOX and sends
    IDLE. At most `inflight` are between connect and IDLE at once. Then
    watch() notes when each first reads `* N EXISTS`."""

    def __init__(self, ports, n, inflight=64):
        import selectors
        self.sel = selectors.DefaultSelector()
        self.ports, self.n, self.inflight = ports, n, inflight
        self.socks = [None] * n
        self.buf = [b""] * n
        self.stage = [0] * n     # 0 greeting, 1 LOGIN, 2 SELECT, 3 IDLE, 4 idling
        self.exists_at = [None] * n
        self.idling = 0
        self.stop_ev = threading.Event()
        self.thread = None
        self.error = None

    def _open(self, i):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", self.ports[i % len(self.ports)]))
        except BlockingIOError:
            pass
        self.socks[i] = s
        self.sel.register(s, 1, i)  # EVENT_READ

    def _line(self, i, line):
        st = self.stage[i]
        s = self.socks[i]
        if st == 4:
            if self.exists_at[i] is None and IDLE_RE.match(line):
                self.exists_at[i] = time.perf_counter()
            return
        if st == 0 and line.startswith(b"* OK"):
            s.sendall(b"a LOGIN %s %s\r\n" % (idle_user(i).encode(),
                                              IDLE_PASSWORD.encode()))
        elif st == 1 and line.startswith(b"a "):
            if not line.startswith(b"a OK"):
                raise BenchError("session %d LOGIN: %r" % (i, line))
            s.sendall(b"b SELECT INBOX\r\n")
        elif st == 2 and line.startswith(b"b "):
            if not line.startswith(b"b OK"):
                raise BenchError("session %d SELECT: %r" % (i, line))
            s.sendall(b"c IDLE\r\n")
        elif st == 3 and line.startswith(b"+"):
            self.idling += 1
        elif st == 3 and line.startswith(b"c "):
            raise BenchError("session %d IDLE: %r" % (i, line))
        else:
            return
        self.stage[i] = st + 1

    def _poll(self, timeout):
        for key, _ in self.sel.select(timeout):
            i = key.data
            try:
                data = self.socks[i].recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            if not data:
                raise BenchError("session %d (stage %d): closed by the server"
                                 % (i, self.stage[i]))
            b = self.buf[i] + data
            while b"\n" in b:
                line, b = b.split(b"\n", 1)
                self._line(i, line)
            if len(b) > 65536:
                raise BenchError("session %d: a line over 64 KiB" % i)
            self.buf[i] = b

    def connect_all(self, timeout):
        """Returns seconds until every session is in IDLE."""
        t0 = time.monotonic()
        end = t0 + timeout
        opened = 0
        last = time.monotonic()
        while self.idling < self.n:
            while opened < self.n and opened - self.idling < self.inflight:
                self._open(opened)
                opened += 1
            self._poll(0.5)
            now = time.monotonic()
            if now > end:
                raise BenchError("%d of %d sessions in IDLE after %.0f s"
                                 % (self.idling, self.n, timeout))
            if now - last > 30:
                log("  %d of %d sessions in IDLE" % (self.idling, self.n))
                last = now
        return time.monotonic() - t0

    def watch(self):
        def run():
            try:
                while not self.stop_ev.is_set():
                    self._poll(0.2)
            except BaseException as e:  # noqa: B902 (reported by stop_watch)
                self.error = e
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def stop_watch(self):
        self.stop_ev.set()
        self.thread.join(10)
        if self.error:
            raise BenchError("while watching: %r" % self.error)

    def close(self):
        for s in self.socks:
            if s is not None:
                try:
                    self.sel.unregister(s)
                except (KeyError, ValueError):
                    pass
                s.close()
        self.sel.close()


def fnv1a(text):
    h = 2166136261
    for c in text.encode():
        h = ((h ^ c) * 16777619) & 0xffffffff
    return h


def idle_homes(target, srv, n):
    """The users' mail directories, as a first login leaves them: made by
    one first login (idle00000), then copied to the others. mailnode's
    first login makes INBOX and the special-use folders with an fsync
    each (about 0.3 s here, on the loop), so 10,000 first logins would be
    most of the run; real users log in to mail they already have."""
    port = srv.ports["mailnode" if target == "mailnode" else "dovecot"]
    m = IMAP4("127.0.0.1", port, timeout=IO_TIMEOUT)
    m.login(idle_user(0), IDLE_PASSWORD)
    ok(*m.select("INBOX"), what="%s first SELECT of %s" % (target, idle_user(0)))
    m.logout()
    if target == "mailnode":
        def home(i):
            local = idle_user(i).split("@")[0]
            h = fnv1a(local)
            return os.path.join(srv.store, "example.test", "%02x" % (h >> 24),
                                "%02x" % ((h >> 16) & 0xff), local)
    else:
        def home(i):
            return os.path.join(srv.dovecot_dir, "home",
                                idle_user(i).split("@")[0])
    src = home(0)
    if not os.path.isdir(src):
        raise BenchError("%s: %s's mail is not in %s" % (target, idle_user(0), src))
    for i in range(1, n):
        shutil.copytree(src, home(i), symlinks=True)
    if target == "dovecot":
        subprocess.run(["chown", "-R", "nobody:nogroup",
                        os.path.join(srv.dovecot_dir, "home")],
                       check=True, timeout=300)


def kernel_sock_kib():
    """(TCP buffer KiB from /proc/net/sockstat, KiB of the TCP and
    socket-inode slab objects from /proc/slabinfo): whole namespace."""
    mem = 0
    with open("/proc/net/sockstat") as f:
        m = re.search(r"^TCP:.* mem (\d+)", f.read(), re.M)
        mem = int(m.group(1)) * 4 if m else 0
    slab = 0
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                p = line.split()
                if p and p[0] in ("TCP", "sock_inode_cache"):
                    slab += int(p[1]) * int(p[3])
    except OSError:
        pass
    return mem, slab / 1024.0


INOTIFY = "/proc/sys/fs/inotify/max_user_instances"
_inotify_saved = []


def inotify_limit(n):
    """Dovecot keeps an inotify instance per session, all of one user
    (nobody), 128 by default: raises the limit to n (None: puts back what
    was there)."""
    if n is None:
        if _inotify_saved:
            with open(INOTIFY, "w") as f:
                f.write(_inotify_saved.pop())
        return
    with open(INOTIFY) as f:
        old = f.read().strip()
    if int(old) < n:
        with open(INOTIFY, "w") as f:
            f.write(str(n))
        _inotify_saved.append(old)
        log("%s: %s -> %d (put back at the end)" % (INOTIFY, old, n))


def comm_count(root):
    out = {}
    for pid in proc_tree(root):
        try:
            with open("/proc/%d/comm" % pid) as f:
                c = f.read().strip()
        except OSError:
            continue
        out[c] = out.get(c, 0) + 1
    return out


def deliver(target, srv, users, sent_at, timeout):
    """One message to each user, in turn (mailnode: SMTP to its MX
    listener; Dovecot: LMTP), a new connection every 100. sent_at[i] =
    when user i's transaction began (MAIL FROM)."""
    import smtplib
    end = time.monotonic() + timeout
    conn = None
    try:
        for k, i in enumerate(users):
            if time.monotonic() > end:
                raise BenchError("deliveries: %d of %d after %.0f s"
                                 % (k, len(users), timeout))
            if k % 100 == 0:
                if conn is not None:
                    conn.quit()
                if target == "mailnode":
                    conn = smtplib.SMTP("127.0.0.1", srv.ports["mailnode_smtp"],
                                        timeout=IO_TIMEOUT,
                                        source_address=(CLIENT_ADDR, 0))
                else:
                    conn = smtplib.LMTP("127.0.0.1", srv.ports["dovecot_lmtp"],
                                        timeout=IO_TIMEOUT,
                                        source_address=(CLIENT_ADDR, 0))
                conn.ehlo_or_helo_if_needed()
            msg = ("From: <bench@sender.example>\r\nTo: <%s>\r\n"
                   "Subject: ping %d\r\nMessage-ID: <idle-%d@sender.example>\r\n"
                   "Date: %s\r\n\r\nA new message for an idle session.\r\n"
                   % (idle_user(i), i, i, email.utils.formatdate(usegmt=True)))
            sent_at[i] = time.perf_counter()
            refused = conn.sendmail("bench@sender.example", [idle_user(i)], msg)
            if refused:
                raise BenchError("delivery to %s refused: %r" % (idle_user(i), refused))
        conn.quit()
    except smtplib.SMTPException as e:
        raise BenchError("%s delivery: %r" % (target, e))


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def idle_run(target, srv, ports, args):
    """I1 and I2 on one server. Returns a dict of figures."""
    n, u = args.idle_sessions, args.notify_users
    root = srv.pid(target)
    lbd_pids = [srv.pid("lbd%d" % k) for k in range(len(ports))]
    out = {}
    t0 = time.monotonic()
    idle_homes(target, srv, n)
    log("%s: %d users' mail directories made in %.0f s"
        % (target, n, time.monotonic() - t0))
    time.sleep(1)
    rss0, pss0 = tree_mem_kib(root)
    lbd0 = sum(tree_mem_kib(p)[0] for p in lbd_pids)
    k0 = kernel_sock_kib()
    fleet = IdleFleet(ports, n)
    try:
        log("%s: opening %d IDLE sessions through %d lbd" % (target, n, len(ports)))
        out["connect_s"] = fleet.connect_all(args.idle_timeout)
        log("%s: %d sessions in IDLE after %.0f s" % (target, n, out["connect_s"]))
        fleet.watch()
        if target == "dovecot":   # until every session hibernated
            wait_for(lambda: comm_count(root).get("imap", 0) == 0,
                     args.idle_timeout, "Dovecot's imap processes to hibernate")
        time.sleep(3)
        rss1, pss1 = tree_mem_kib(root)
        lbd1 = sum(tree_mem_kib(p)[0] for p in lbd_pids)
        k1 = kernel_sock_kib()
        out["rss_kib"] = (rss1 - rss0) / n
        out["pss_kib"] = (pss1 - pss0) / n
        out["lbd_kib"] = (lbd1 - lbd0) / n
        out["kbuf_kib"] = (k1[0] - k0[0]) / n
        out["kslab_kib"] = (k1[1] - k0[1]) / n
        out["procs"] = comm_count(root)
        if fleet.idling != n or any(fleet.exists_at):
            raise BenchError("%s: EXISTS before any delivery" % target)
        log("%s: %.2f KiB RSS, %.2f KiB PSS per session (%s)" % (
            target, out["rss_kib"], out["pss_kib"], out["procs"]))

        # I2: one message to each of u users, spread over the sessions
        users = [k * n // u for k in range(u)]
        sent_at = {}
        cpu0 = tree_cpu(root)
        t0 = time.monotonic()
        deliver(target, srv, users, sent_at, args.idle_timeout)
        out["deliver_s"] = time.monotonic() - t0
        wait_for(lambda: all(fleet.exists_at[i] is not None for i in users),
                 30, "EXISTS in every session delivered to")
        time.sleep(1)  # any EXISTS where none belongs
        fleet.stop_watch()
        out["deliver_cpu"] = tree_cpu(root) - cpu0
        lat = [fleet.exists_at[i] - sent_at[i] for i in users]
        stray = sum(1 for i in range(n) if fleet.exists_at[i] is not None) - u
        if stray:
            raise BenchError("%s: %d sessions without a delivery saw EXISTS"
                             % (target, stray))
        out["lat"] = (pct(lat, 50), pct(lat, 99), max(lat))
        out["within_1s"] = sum(1 for v in lat if v <= 1.0)
        log("%s: delivery to EXISTS p50 %.3f p99 %.3f max %.3f s; %d "
            "deliveries in %.1f s" % ((target,) + out["lat"] + (u, out["deliver_s"])))
    finally:
        fleet.stop_ev.set()
        if fleet.thread:
            fleet.thread.join(10)
        fleet.close()
    return out


def idle_report(args, idle, load):
    a, b = idle.get("mailnode"), idle.get("dovecot")

    def g(d, k, nd=2):
        return fmt(d[k], nd) if d and d.get(k) is not None else "n/a"

    def lat(d, j):
        return fmt(d["lat"][j], 3) if d else "n/a"

    r1 = (a["rss_kib"] / b["rss_kib"]) if a and b and b["rss_kib"] > 0 else None
    r1p = (a["rss_kib"] / b["pss_kib"]) if a and b and b["pss_kib"] > 0 else None
    r2 = (a["lat"][1] / b["lat"][1]) if a and b and b["lat"][1] > 0 else None
    n, u = args.idle_sessions, args.notify_users
    lines = [
        "",
        "Idle sessions: %d IMAP sessions (user idle00000 ... one session "
        "each) logged in, INBOX selected, in IDLE, each through one of two "
        "lbd in front of the server (PROXY v2); Dovecot with "
        "imap_hibernate_timeout = 5s, measured once all its imap processes "
        "had hibernated. Load average at the start: %s." % (n, load),
        "",
        "| workload | mailnode | dovecot | ratio | target |",
        "| --- | ---: | ---: | ---: | --- |",
        "| I1 resident KiB per idle session (RSS delta / sessions; Dovecot: "
        "sum over imap, imap-hibernate, imap-login, ...) | %s | %s | %s | ≤ 1.0%s |"
        % (g(a, "rss_kib"), g(b, "rss_kib"), fmt(r1, 2),
           "" if r1 is None else (" (met)" if r1 <= 1.0 else " (missed)")),
        "| I1 the same with Dovecot's PSS (shared pages split) | %s | %s | %s | - |"
        % (g(a, "rss_kib"), g(b, "pss_kib"), fmt(r1p, 2)),
        "| I2 delivery to `* N EXISTS`, %d users, p50 s | %s | %s | - | - |"
        % (u, lat(a, 0), lat(b, 0)),
        "| I2 p99 s | %s | %s | %s | ≤ 1 s%s |" % (
            lat(a, 1), lat(b, 1), fmt(r2, 2), "" if not a else (
                " (met)" if a["lat"][1] <= 1.0 else " (missed)")),
        "| I2 max s | %s | %s | - | - |" % (lat(a, 2), lat(b, 2)),
        "| I2 EXISTS within 1 s of the delivery's start | %s | %s | - | - |" % (
            "%d/%d" % (a["within_1s"], u) if a else "n/a",
            "%d/%d" % (b["within_1s"], u) if b else "n/a"),
        "| I2 seconds to deliver the %d messages (one connection at a time) | %s | %s | - | - |"
        % (u, g(a, "deliver_s", 1), g(b, "deliver_s", 1)),
        "| I2 server CPU seconds during the deliveries | %s | %s | - | - |"
        % (g(a, "deliver_cpu"), g(b, "deliver_cpu")),
        "| seconds to open the %d sessions (64 logins at a time) | %s | %s | - | - |"
        % (n, g(a, "connect_s", 1), g(b, "connect_s", 1)),
        "| lbd resident KiB per session (both lbd, RSS delta; on Dovecot's turn lbd reuses what mailnode's turn freed) | %s | %s | - | - |"
        % (g(a, "lbd_kib"), g(b, "lbd_kib")),
        "| kernel TCP buffers KiB per session (sockstat, whole namespace) | %s | %s | - | - |"
        % (g(a, "kbuf_kib"), g(b, "kbuf_kib")),
        "| kernel TCP + socket-inode slab KiB per session (client, lbd and server sockets) | %s | %s | - | - |"
        % (g(a, "kslab_kib"), g(b, "kslab_kib")),
        "| server processes while idle | %s | %s | - | - |" % (
            " ".join("%s=%d" % kv for kv in sorted(a["procs"].items())) if a else "n/a",
            " ".join("%s=%d" % kv for kv in sorted(b["procs"].items())) if b else "n/a"),
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- report

WORKLOADS = [
    ("W1", "SELECT INBOX + FETCH 1:* (UID FLAGS RFC822.SIZE)"),
    ("W2a", "SEARCH UNSEEN"),
    ("W2b", "SEARCH SUBJECT {word}"),
    ("W3", "{sessions} concurrent sessions x {per} FETCH BODY.PEEK[] (wall)"),
]


def fmt(v, nd=3):
    return "n/a" if v is None else ("%.*f" % (nd, v))


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            model = m.group(1).strip() if m else model
    except OSError:
        pass
    return "%s, %d CPUs (%s), Linux %s" % (platform.node(), os.cpu_count(),
                                           model, platform.release())


def dovecot_version():
    try:
        return subprocess.run(["dovecot", "--version"], capture_output=True,
                              text=True, timeout=10).stdout.split()[0]
    except Exception:
        return "?"


def report(args, targets, times, resources, counts, started, elapsed, idle,
           load):
    """times[workload][target] = [seconds per rep]."""
    names = {k: v.format(word=args.word, sessions=args.sessions,
                         per=args.per_session) for k, v in WORKLOADS}
    rows = []
    for key, _ in WORKLOADS:
        med = {t: statistics.median(times[key][t]) if times[key].get(t) else None
               for t in TARGETS}
        ratio = None
        if all(times[key].get(t) for t in TARGETS):
            ratio = statistics.median(a / b for a, b in
                                      zip(times[key]["mailnode"], times[key]["dovecot"]))
        rows.append((key, names[key], med["mailnode"], med["dovecot"], ratio))
    lines = [
        "IMAP benchmark, mailnode against Dovecot %s: %d messages, %d reps, "
        "%s UTC, %s; run took %.0f s." % (
            dovecot_version(), args.messages, args.reps,
            started.strftime("%Y-%m-%d %H:%M"), machine(), elapsed),
        "",
        "| workload | mailnode s | dovecot s | ratio | target |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for key, name, a, b, r in rows:
        met = "" if r is None else (" (met)" if r <= 1.0 else " (missed)")
        lines.append("| %s %s | %s | %s | %s | ≤ 1.0%s |" % (
            key, name, fmt(a), fmt(b), fmt(r, 2), met))
    lines += [
        "",
        "Seconds are medians over the reps; ratio is the median of the "
        "per-rep ratios mailnode/dovecot.",
        "",
        "| resource (measured part) | mailnode | dovecot |",
        "| --- | ---: | ---: |",
        "| CPU seconds | %s | %s |" % (fmt(resources.get(("cpu", "mailnode")), 2),
                                      fmt(resources.get(("cpu", "dovecot")), 2)),
        "| peak RSS MiB (sum over processes) | %s | %s |" % (
            fmt(resources.get(("rss", "mailnode")), 1),
            fmt(resources.get(("rss", "dovecot")), 1)),
        "| peak PSS MiB (sum over processes, shared pages split) | %s | %s |" % (
            fmt(resources.get(("pss", "mailnode")), 1),
            fmt(resources.get(("pss", "dovecot")), 1)),
    ]
    lines.append("| longest NOOP of an idle selected session during W3, s (median over reps) | %s | %s |" % (
        fmt(resources.get(("noop", "mailnode")), 3),
        fmt(resources.get(("noop", "dovecot")), 3)))
    if resources.get(("cpu", "redis")) is not None:
        lines.append("| CPU seconds of redis-server (mailnode's) | %s | - |"
                     % fmt(resources[("cpu", "redis")], 2))
    if resources.get(("procs", "dovecot")) is not None:
        lines.append("| processes at the end | 1 | %d |" % resources[("procs", "dovecot")])
    if resources.get("redis_timeouts"):
        lines += ["", "mailnode logged %d Redis timeouts (\"no answer within "
                  "500 ms\") during the run." % resources["redis_timeouts"]]
    lines += ["",
              "Checked: FETCH 1:* gave %d answers on each; SEARCH UNSEEN %d and "
              "SEARCH SUBJECT %d matches on each (as generated); every "
              "BODY.PEEK[] byte-identical to the generated message." % (
                  args.messages, counts[0], counts[1])]
    md = "\n".join(lines) + "\n"
    if idle:
        md += idle_report(args, idle, load)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "imap.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, "imap.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workload", "rep", "mailnode_s", "dovecot_s", "ratio"])
        for key, name, a, b, r in rows:
            for i in range(args.reps):
                va = times[key].get("mailnode", [None] * args.reps)[i]
                vb = times[key].get("dovecot", [None] * args.reps)[i]
                w.writerow([name, i + 1, fmt(va, 6), fmt(vb, 6),
                            fmt(va / vb if va and vb else None, 4)])
            w.writerow([name, "median", fmt(a, 6), fmt(b, 6), fmt(r, 4)])
        for what in ("cpu", "rss", "pss", "noop"):
            w.writerow([{"cpu": "cpu_seconds", "rss": "peak_rss_mib",
                         "pss": "peak_pss_mib", "noop": "w3_max_noop_s"}[what], "run",
                        fmt(resources.get((what, "mailnode")), 3),
                        fmt(resources.get((what, "dovecot")), 3), ""])
    return md


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the top of this file for what is measured and checked.")
    ap.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    ap.add_argument("--messages", type=int, default=10000,
                    help="messages in the INBOX (default 10000)")
    ap.add_argument("--sessions", type=int, default=50,
                    help="concurrent sessions of W3 (default 50)")
    ap.add_argument("--per-session", type=int, default=100,
                    help="messages each W3 session fetches (default 100)")
    ap.add_argument("--idle-sessions", type=int, default=10000,
                    help="I1/I2: concurrent IDLE sessions, one user each "
                    "(default 10000; 0: no I1/I2)")
    ap.add_argument("--notify-users", type=int, default=1000,
                    help="I2: users delivered one message each (default 1000)")
    ap.add_argument("--idle-timeout", type=float, default=900,
                    help="bound of opening the sessions and of the "
                    "deliveries, seconds (default 900)")
    ap.add_argument("--word", default="quokka",
                    help="the SEARCH SUBJECT word (default quokka)")
    ap.add_argument("--targets", default="mailnode,dovecot",
                    help="mailnode,dovecot (default) or one of them")
    ap.add_argument("--server-cpu", type=int, default=0,
                    help="CPU the servers are pinned on (default 0)")
    ap.add_argument("--client-cpu", type=int, default=1,
                    help="CPU this client is pinned on (default 1)")
    ap.add_argument("--timeout", type=float, default=120,
                    help="bound of each timed step, seconds (default 120)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"),
                    help="where imap.md and imap.csv go (default bench/results)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir (configs, logs, Maildirs)")
    args = ap.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    if not targets or any(t not in TARGETS for t in targets):
        ap.error("--targets: mailnode and/or dovecot")
    if os.geteuid() != 0 and "dovecot" in targets:
        ap.error("Dovecot needs root here (its mail processes run as nobody)")
    if "mailnode" in targets:
        for b in (MAILNODE, MAILCTL):
            if not os.access(b, os.X_OK):
                ap.error("%s missing: cmake --build build --target mailnode mailctl" % b)
    if args.idle_sessions and not os.access(LBD, os.X_OK):
        ap.error("%s missing: cmake --build build --target lbd" % LBD)
    if args.idle_sessions and not 0 < args.notify_users <= args.idle_sessions:
        ap.error("--notify-users: 1 to --idle-sessions")
    if "dovecot" in targets and args.idle_sessions and \
            not os.path.exists("/usr/lib/dovecot/lmtp"):
        ap.error("I2 delivers to Dovecot over LMTP: apt-get install dovecot-lmtpd")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if args.idle_sessions + 200 > hard:
        ap.error("--idle-sessions: the open-file limit is %d" % hard)
    # the client's sockets; the servers and lbd inherit it
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.sessions * args.per_session > args.messages:
        ap.error("--sessions x --per-session must not exceed --messages")

    os.sched_setaffinity(0, {args.client_cpu})
    started = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="imapbench-")
    srv = Servers(args, tmp)
    rc = 1
    try:
        log("temp dir %s; generating %d messages" % (tmp, args.messages))
        mbox = Mailbox(args.messages, args.word)
        log("%d seen, %d unseen, %d with %r in Subject" % (
            len(mbox.seen), len(mbox.unseen), len(mbox.with_word), args.word))

        crypt_hash = None
        if "mailnode" in targets:
            srv.start_redis()
            srv.mailctl("domain", "add", "example.test")
            srv.mailctl("user", "add", USER, "--password-stdin", input=PASSWORD + "\n")
            crypt_hash = srv.user_hash()
            srv.add_idle_users(args.idle_sessions)
            srv.start_mailnode()
            port = srv.ports["mailnode"]
            m = connect(port)          # the first login makes the Maildir
            ok(*m.select("INBOX"), what="mailnode first SELECT")
            m.logout()
            md = srv.mailnode_maildir()
            log("mailnode Maildir %s; writing messages into new/" % md)
            mbox.write_new(md)
            t0 = time.monotonic()
            m = connect(port)          # this SELECT gives the UIDs
            m.socket().settimeout(max(IO_TIMEOUT, args.timeout))
            typ, data = m.select("INBOX")
            ok(typ, data, "mailnode SELECT (UID assignment)")
            m.logout()
            log("mailnode's first SELECT (UIDs for %s messages): %.1f s"
                % (data[0].decode(), time.monotonic() - t0))
            log("marked %d seen by renaming" % mbox.mark_seen(md))
        if "dovecot" in targets:
            if crypt_hash is None:  # no mailctl: the same kind of hash
                import warnings
                warnings.simplefilter("ignore", DeprecationWarning)
                import crypt  # deprecated, still in 3.11
                crypt_hash = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512))
            srv.setup_dovecot(crypt_hash)
            dmd = srv.dovecot_maildir()
            if "mailnode" in targets:
                for sub in ("cur", "new", "tmp"):
                    shutil.rmtree(os.path.join(dmd, sub))
                    shutil.copytree(os.path.join(md, sub), os.path.join(dmd, sub))
            else:
                mbox.write_new(dmd)
                mbox.mark_seen(dmd)
            srv.start_dovecot()

        # warm up; map sequence numbers to generated messages
        smaps = {}
        for t in targets:
            t0 = time.monotonic()
            m = connect(srv.ports[t])
            m.socket().settimeout(max(IO_TIMEOUT, args.timeout))
            ok(*m.select("INBOX"), what="%s warm SELECT" % t)
            ok(*m.fetch("1:*", "(UID FLAGS RFC822.SIZE)"), what="%s warm FETCH" % t)
            smaps[t] = seq_map(m, args.messages)
            m.logout()
            log("%s warmed in %.1f s" % (t, time.monotonic() - t0))

        roots = {t: srv.pid(t) for t in targets}
        if "mailnode" in targets:
            roots["redis"] = srv.pid("redis")
        cpu0 = {k: tree_cpu(p) for k, p in roots.items()}
        sampler = RssSampler({t: srv.pid(t) for t in targets})
        sampler.start()

        times = {k: {t: [] for t in targets} for k, _ in WORKLOADS}
        want_counts = (len(mbox.unseen), len(mbox.with_word))
        noop_max = {}  # target -> the longest probe NOOP of each W3
        for rep in range(args.reps):
            order = targets if rep % 2 == 0 else targets[::-1]
            for t in order:
                secs, counts = w1_w2(srv.ports[t], mbox, args.word)
                if counts != want_counts:
                    raise BenchError(
                        "%s: SEARCH UNSEEN/SUBJECT gave %d/%d matches, "
                        "want %d/%d" % ((t,) + counts + want_counts))
                for k, v in secs.items():
                    times[k][t].append(v)
            for t in order:
                wall, noop = w3(srv.ports[t], mbox, smaps[t], args.sessions,
                                args.per_session, args.timeout)
                times["W3"][t].append(wall)
                if noop is not None:
                    noop_max.setdefault(t, []).append(noop)
            log("rep %d/%d: %s" % (rep + 1, args.reps, "; ".join(
                "%s %s" % (k, " ".join("%s=%.3f" % (t, times[k][t][-1])
                                       for t in targets))
                for k, _ in WORKLOADS)))
        sampler.stop()
        resources = {}
        for k, p in roots.items():
            resources[("cpu", k)] = tree_cpu(p) - cpu0[k]
        for t in targets:
            if noop_max.get(t):
                resources[("noop", t)] = statistics.median(noop_max[t])
            resources[("rss", t)] = sampler.peak[t] / 1024.0
            resources[("pss", t)] = sampler.peak_pss[t] / 1024.0
        if "mailnode" in targets:
            resources[("rss", "mailnode")] = max(
                resources[("rss", "mailnode")],
                status_kib(srv.pid("mailnode"), "VmHWM") / 1024.0)
        if "dovecot" in targets:
            resources[("procs", "dovecot")] = len(proc_tree(srv.pid("dovecot")))
        for t in targets:
            if srv.procs[t].poll() is not None:
                raise BenchError("%s died during the run:\n%s" % (t, srv.tail(t)))
        if "mailnode" in targets:
            resources["redis_timeouts"] = srv.tail("mailnode", 10 ** 8).count(
                "no answer within")
        idle = {}
        load = "%.1f %.1f %.1f" % os.getloadavg()
        if args.idle_sessions:
            ports = start_lbds(srv, targets)
            inotify_limit(args.idle_sessions + 1000)
            for t in targets:
                idle[t] = idle_run(t, srv, ports[t], args)
                if srv.procs[t].poll() is not None:
                    raise BenchError("%s died during I1/I2:\n%s" % (t, srv.tail(t)))
        md = report(args, targets, times, resources, want_counts, started,
                    time.monotonic() - t_start, idle, load)
        print(md)
        rc = 0
    except (BenchError, imaplib.IMAP4.error, OSError, subprocess.SubprocessError,
            threading.BrokenBarrierError) as e:
        log("FAILED: %s: %s" % (type(e).__name__, e))
        for name in srv.procs:
            log("---- %s log tail ----\n%s" % (name, srv.tail(name)))
    finally:
        srv.stop_all()
        inotify_limit(None)
        if args.keep:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
