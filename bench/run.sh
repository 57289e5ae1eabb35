#!/usr/bin/env bash
# The benchmark: installs what it needs (Debian packages, only when
# missing), builds lbd, mailnode and mailctl, and runs bench/run.py (see
# its --help; it compiles bench/fixedrate.c and bench/relay_engines.c
# itself). Bounded: the default run takes about 9 minutes on 2 cores. N1 and N2 (mailnode vs a private Postfix)
# need root: Postfix's master starts as root.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/install-deps.sh
install_missing haproxy nginx-light libnginx-mod-stream wrk iperf3 postfix util-linux \
  strace # (bench only: syscalls.py)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target lbd mailnode mailctl >/dev/null
exec timeout 900 python3 bench/run.py "$@"
