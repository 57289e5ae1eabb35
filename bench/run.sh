#!/usr/bin/env bash
# The benchmark: installs what it needs (Debian packages, only when
# missing), builds lbd, and runs bench/run.py (see its --help). Bounded:
# the default run takes about 8 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/install-deps.sh
install_missing haproxy nginx-light libnginx-mod-stream wrk iperf3 postfix util-linux
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc)" --target lbd >/dev/null
exec timeout 900 python3 bench/run.py "$@"
