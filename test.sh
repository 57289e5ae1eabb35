#!/usr/bin/env bash
# Installs what is missing (Debian/Ubuntu, apt-get, only when missing),
# builds, and runs every test with ctest: once in build/ with the default
# compiler (gcc), once with clang under AddressSanitizer +
# UndefinedBehaviorSanitizer in build-asan/, where the libFuzzer targets of
# tests/fuzz also run a few seconds each on their corpus.
# Exits non-zero on any failure. Set MS_SKIP_ASAN=1 to skip the second run.
set -euo pipefail
cd "$(dirname "$0")"

. scripts/install-deps.sh

run_suite() {
  local dir=$1
  shift
  # A build directory configured for another compiler is made afresh.
  if [ -n "${CC:-}" ] && [ -f "$dir/CMakeCache.txt" ] &&
    ! grep -q "^CMAKE_C_COMPILER:.*$(command -v "$CC")\$" "$dir/CMakeCache.txt"; then
    rm -rf "$dir"
  fi
  echo "test.sh: building in $dir ${CC:+CC=$CC }$*"
  cmake -S . -B "$dir" -DMS_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
  (cd "$dir" && ctest --output-on-failure --timeout 300 -j 2)
}

install_missing
run_suite build
if [ "${MS_SKIP_ASAN:-0}" != 1 ]; then
  CC=clang ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan -DMS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
fi
echo "test.sh: all tests passed"
