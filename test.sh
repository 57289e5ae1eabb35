#!/usr/bin/env bash
# Installs what is missing (Debian/Ubuntu, apt-get, only when missing),
# builds, and runs every test with ctest: once in build/, once under
# AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/.
# Exits non-zero on any failure. Set MS_SKIP_ASAN=1 to skip the second run.
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(build-essential cmake pkg-config python3 openssl
  libev-dev libssl-dev libhiredis-dev libinih-dev libcriterion-dev
  libcrypt-dev redis-server)

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "test.sh: installing missing packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
      echo "test.sh: need root (or sudo) to install: ${missing[*]}" >&2
      exit 1
    }
    sudo=sudo
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
}

run_suite() {
  local dir=$1
  shift
  echo "test.sh: building in $dir $*"
  cmake -S . -B "$dir" -DMS_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
  (cd "$dir" && ctest --output-on-failure --timeout 300 -j 2)
}

install_missing
run_suite build
if [ "${MS_SKIP_ASAN:-0}" != 1 ]; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan -DMS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
fi
echo "test.sh: all tests passed"
