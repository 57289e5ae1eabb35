#!/usr/bin/env bash
# Brings up a whole mailswitch cluster on loopback, in the foreground: a
# private redis-server, three mailnodes sharing one store (mail1 and mail2
# with the mta role, mail3 without), lbd in front, and a remote world for
# outbound mail (scripts/demo_remote.py: DNS and a catch-all MX for
# remote.test). Prints a line with "ready" once every pool has an up node.
# A node that dies is reported (which, and how) and the rest goes on, lbd
# routing around it; Ctrl-C or SIGTERM stops everything. State lives under
# .demo/ (DEMO_DIR), each process's PID in .demo/NAME.pid.
#
# Front ports on 127.0.0.1: SMTP 2525, submission 2587, IMAP 2143, POP3 2110,
# HTTP 8080, lbd's status page and metrics 9100; Redis 26379
# (DEMO_REDIS_PORT); the nodes 2N025, 2N587, 2N143, 2N110 and 2N080 for N
# in 1 2 3; remote.test's DNS 2553 (UDP) and MX 2625. Exit status 3 when
# one of them is taken, 1 when Redis, lbd or the remote world dies (or a
# process dies before ready), 0 after Ctrl-C or SIGTERM.
# Users alice@example.test and bob@example.test, password "demo".
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD
DEMO_DIR=${DEMO_DIR:-$top/.demo}
REDIS_PORT=${DEMO_REDIS_PORT:-26379}

# The fixed ports must be free: say which is taken and by what, and exit
# 3, before anything starts (tests/integration/test_demo.py skips on it).
DNS_PORT=2553 MX_PORT=2625
ports=(2525 2587 2143 2110 8080 9100 "$REDIS_PORT" "$MX_PORT")
for n in 1 2 3; do ports+=("2${n}025" "2${n}587" "2${n}143" "2${n}110" "2${n}080"); done
for p in "${ports[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    holder=$(ss -ltnpH "sport = :$p" 2>/dev/null | grep -o 'users:.*' | head -n 1)
    echo "demo: port $p on 127.0.0.1 is taken (${holder:-by another process});" \
      "the demo needs ${ports[*]}" >&2
    exit 3
  fi
done
if [ -n "$(ss -lunH "sport = :$DNS_PORT" 2>/dev/null)" ]; then
  echo "demo: UDP port $DNS_PORT on 127.0.0.1 is taken;" \
    "the demo's DNS for remote.test needs it" >&2
  exit 3
fi

. scripts/install-deps.sh
install_missing

# MS_BIN: use binaries built elsewhere (the tests do); else build here.
if [ -n "${MS_BIN:-}" ]; then
  BIN=$MS_BIN
else
  . scripts/build.sh
  ms_build build
  BIN=$top/build/bin
fi

mkdir -p "$DEMO_DIR"
DEMO_DIR=$(cd "$DEMO_DIR" && pwd)
mkdir -p "$DEMO_DIR/store" "$DEMO_DIR/log"
pids=() names=() # what started, in order: stopped in reverse

started() { # started NAME: records $! as NAME, in .demo/NAME.pid too
  pids+=($!)
  names+=("$1")
  echo "$!" >"$DEMO_DIR/$1.pid"
}

stop_all() { # stop_all STATUS
  trap - INT TERM EXIT
  echo "demo: stopping"
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" 2>/dev/null || true
    rm -f "$DEMO_DIR/${names[$i]}.pid"
  done
  echo "demo: stopped"
  exit "$1"
}
trap 'stop_all 0' INT TERM
trap 'stop_all $?' EXIT

# A self-signed certificate for localhost and 127.0.0.1: STARTTLS and
# implicit TLS are on, and the client configs below trust it. 127.0.0.1 is
# also a DNS name in it: mbsync and mutt match the host literally.
if ! openssl x509 -in "$DEMO_DIR/cert.pem" -noout -ext subjectAltName \
  2>/dev/null | grep -q "DNS:127.0.0.1"; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,DNS:127.0.0.1,IP:127.0.0.1" \
    -keyout "$DEMO_DIR/key.pem" -out "$DEMO_DIR/cert.pem" 2>/dev/null
fi

# Ready-made client configs for alice, through lbd with STARTTLS:
# `mutt -F .demo/muttrc` and `mbsync -c .demo/mbsyncrc -a` (into
# .demo/alice-mail/).
cat >"$DEMO_DIR/muttrc" <<RC
set imap_user = "alice@example.test"
set imap_pass = "demo"
set folder = "imap://127.0.0.1:2143/"
set spoolfile = "+INBOX"
set ssl_starttls = yes
set ssl_force_tls = yes
set certificate_file = "$DEMO_DIR/cert.pem"
set record = "+Sent"
set postponed = "+Drafts"
set from = "alice@example.test"
set smtp_url = "smtp://alice%40example.test@127.0.0.1:2587/"
set smtp_pass = "demo"
set header_cache = ""
set message_cachedir = ""
RC
mkdir -p "$DEMO_DIR/alice-mail"
cat >"$DEMO_DIR/mbsyncrc" <<RC
IMAPAccount demo
Host 127.0.0.1
Port 2143
User alice@example.test
Pass demo
SSLType STARTTLS
CertificateFile $DEMO_DIR/cert.pem

IMAPStore demo-remote
Account demo

MaildirStore demo-local
Path $DEMO_DIR/alice-mail/
Inbox $DEMO_DIR/alice-mail/INBOX
SubFolders Verbatim

Channel demo
Far :demo-remote:
Near :demo-local:
Patterns *
Create Both
Expunge Both
SyncState *
RC
chmod 600 "$DEMO_DIR/muttrc" "$DEMO_DIR/mbsyncrc"

# The config survives a restart of the demo: Redis keeps an append-only
# file in .demo/redis/ (fsynced every second), as the README recommends.
mkdir -p "$DEMO_DIR/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" \
  --appendonly yes --appendfsync everysec --dir "$DEMO_DIR/redis" \
  >"$DEMO_DIR/log/redis.log" 2>&1 &
started redis
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/"$REDIS_PORT") 2>/dev/null && break
  sleep 0.1
done

export MAILCTL_REDIS=127.0.0.1:$REDIS_PORT
"$BIN/mailctl" domain list | grep -qx example.test ||
  "$BIN/mailctl" domain add example.test
for u in alice bob; do
  "$BIN/mailctl" user list example.test | grep -qx "$u@example.test" ||
    echo demo | "$BIN/mailctl" user add "$u@example.test" --password-stdin
done

# The remote world: remote.test's DNS and MX (scripts/demo_remote.py),
# mail it receives in .demo/remote/mail/. The demo domain signs with DKIM
# (an Ed25519 key made once, kept on the shared queue by mailctl), and the
# remote DNS publishes the key, so what arrives there can be verified.
QUEUE=$DEMO_DIR/store/.queue
mkdir -p "$QUEUE" "$DEMO_DIR/remote"
[ -f "$DEMO_DIR/dkim.key" ] ||
  openssl genpkey -algorithm ed25519 -out "$DEMO_DIR/dkim.key" 2>/dev/null
dkim=$("$BIN/mailctl" -q "$QUEUE" dkim show example.test 2>/dev/null) ||
  dkim=$("$BIN/mailctl" -q "$QUEUE" dkim set example.test demo \
    "$DEMO_DIR/dkim.key")
dkim_name=${dkim%%. *} dkim_txt=${dkim#*\"} dkim_txt=${dkim_txt%\"}
python3 "$top/scripts/demo_remote.py" "$DEMO_DIR/remote" "$DNS_PORT" \
  "$MX_PORT" "$DEMO_DIR/cert.pem" "$DEMO_DIR/key.pem" "$dkim_name" \
  "$dkim_txt" >"$DEMO_DIR/log/remote.log" 2>&1 &
started remote

# Three nodes: node N listens on 127.0.0.1:2N025, 2N587, 2N110, 2N080.
# mail1 and mail2 deliver outbound mail (the mta role), resolving
# remote.test with the remote world's DNS; mail3 only queues it.
for n in 1 2 3; do
  mkdir -p "$DEMO_DIR/spool$n"
  if [ "$n" = 3 ]; then
    mta="roles = mx, submission, access, web"
  else
    mta="resolver = 127.0.0.1:$DNS_PORT
mx_port = $MX_PORT
queue_retry_min_s = 10
queue_retry_max_s = 60"
  fi
  cat >"$DEMO_DIR/mail$n.ini" <<INI
[node]
name = mail$n
hostname = mail$n.example.test
redis = 127.0.0.1:$REDIS_PORT
store = $DEMO_DIR/store
spool = $DEMO_DIR/spool$n
tls_cert = $DEMO_DIR/cert.pem
tls_key = $DEMO_DIR/key.pem
proxy_protocol = on
proxy_trusted = 127.0.0.0/8
$mta

[listen]
smtp = 127.0.0.1:2${n}025
submission = 127.0.0.1:2${n}587
imap = 127.0.0.1:2${n}143
pop3 = 127.0.0.1:2${n}110
http = 127.0.0.1:2${n}080
INI
  "$BIN/mailnode" -c "$DEMO_DIR/mail$n.ini" >"$DEMO_DIR/log/mail$n.log" 2>&1 &
  started "mail$n"
done

nodes() { # nodes PORTSUFFIX
  for n in 1 2 3; do echo "node = mail$n 127.0.0.1:2${n}$1"; done
}
cat >"$DEMO_DIR/lbd.ini" <<INI
[lbd]
control = $DEMO_DIR/lbd.sock
state_file = $DEMO_DIR/lbd.state
workers = 1
grace_s = 5
metrics = 127.0.0.1:9100

[service smtp]
listen = 127.0.0.1:2525
protocol = smtp
pool = mx
proxy_protocol = v2

[service submission]
listen = 127.0.0.1:2587
protocol = smtp
pool = submission
proxy_protocol = v2

[service imap]
listen = 127.0.0.1:2143
protocol = imap
pool = access
proxy_protocol = v2

[service pop3]
listen = 127.0.0.1:2110
protocol = pop3
pool = pop
proxy_protocol = v2

[service http]
listen = 127.0.0.1:8080
protocol = http
pool = web
proxy_protocol = v2

[pool mx]
check = smtp
check_interval_ms = 1000
$(nodes 025)

[pool submission]
balance = leastconn
check = smtp
check_interval_ms = 1000
$(nodes 587)

[pool access]
balance = leastconn
check = imap
check_interval_ms = 1000
$(nodes 143)

[pool pop]
check = pop3
check_interval_ms = 1000
$(nodes 110)

[pool web]
check = http
check_path = /health
check_interval_ms = 1000
$(nodes 080)
INI
"$BIN/lbd" -c "$DEMO_DIR/lbd.ini" >"$DEMO_DIR/log/lbd.log" 2>&1 &
started lbd

# Ready once every pool has a node up and probed.
export LBCTL_SOCKET=$DEMO_DIR/lbd.sock
for _ in $(seq 300); do
  if status=$("$BIN/lbctl" status --json 2>/dev/null) &&
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if all(any(n["state"]=="up" and n["check_status"]=="ok" for n in p["nodes"]) for p in d["pools"]) else 1)' "$status"; then
    echo "demo: ready: SMTP 127.0.0.1:2525, submission 2587, IMAP 2143, POP3 2110, HTTP 8080;" \
      "users alice@example.test and bob@example.test (password demo);" \
      "lbctl -s $DEMO_DIR/lbd.sock status; status page http://127.0.0.1:9100/;" \
      "mail to remote.test lands in $DEMO_DIR/remote/mail/"
    break
  fi
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "demo: a process died; logs in $DEMO_DIR/log" >&2; exit 1; }
  done
  sleep 0.1
done
[ -n "${status:-}" ] || echo "demo: not ready after 30 s; logs in $DEMO_DIR/log" >&2
for i in "${!pids[@]}"; do
  echo "demo: ${names[$i]} is pid ${pids[$i]} ($DEMO_DIR/${names[$i]}.pid)"
done

# Supervise: a node that dies is reported and left dead (lbd's probes take
# it out of every pool, the other nodes serve); the demo ends only when
# what every node needs dies (Redis, lbd, the remote world), or at Ctrl-C.
alive=("${!pids[@]}")
while [ "${#alive[@]}" -gt 0 ]; do
  live=()
  for i in "${alive[@]}"; do live+=("${pids[$i]}"); done
  dead=
  # (bash's own "Killed" notice is left out: the line below says it)
  wait -n -p dead "${live[@]}" 2>/dev/null && st=0 || st=$?
  [ -n "$dead" ] || continue
  for i in "${alive[@]}"; do [ "${pids[$i]}" = "$dead" ] && break; done
  name=${names[$i]}
  rm -f "$DEMO_DIR/$name.pid"
  if [ "$st" -gt 128 ]; then
    how="was killed by signal $((st - 128)) (SIG$(kill -l $((st - 128))))"
  else
    how="exited with status $st"
  fi
  case $name in
  mail*)
    echo "demo: $name (pid $dead) $how; lbd routes around it, the other" \
      "nodes go on serving (log: $DEMO_DIR/log/$name.log)" >&2
    rest=()
    for j in "${alive[@]}"; do [ "$j" = "$i" ] || rest+=("$j"); done
    alive=("${rest[@]}")
    ;;
  *)
    echo "demo: $name (pid $dead) $how; the demo cannot go on without it" \
      "(log: $DEMO_DIR/log/$name.log)" >&2
    exit 1
    ;;
  esac
done
