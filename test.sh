#!/usr/bin/env bash
# Installs what is missing (Debian/Ubuntu, apt-get, only when missing: the
# demo's packages and the tests' own), builds, and runs every test with
# ctest: once in build/ with the default compiler (gcc), once with clang
# under AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/, where
# the libFuzzer targets of tests/fuzz also run a few seconds each on their
# corpus. Lists the skipped tests, with why, at the end. Exits non-zero on
# any failure. Set MS_SKIP_ASAN=1 to skip the second run.
set -euo pipefail
cd "$(dirname "$0")"

. scripts/install-deps.sh
. scripts/build.sh

skipped=()

run_suite() {
  local dir=$1
  shift
  # A build directory configured for another compiler is made afresh.
  if [ -n "${CC:-}" ] && [ -f "$dir/CMakeCache.txt" ] &&
    ! grep -q "^CMAKE_C_COMPILER:.*$(command -v "$CC")\$" "$dir/CMakeCache.txt"; then
    rm -rf "$dir"
  fi
  ms_build "$dir" -DMS_WERROR=ON "$@"
  rm -rf "$dir/Testing/skipped"
  # -j 4 on 2 cores: most integration modules wait; the CPU-heavy and
  # latency-bound ones take 2 slots each (tests/CMakeLists.txt).
  (cd "$dir" && ctest --output-on-failure --timeout 300 -j 4)
  local f
  for f in "$dir"/Testing/skipped/*.txt; do
    [ -e "$f" ] || continue
    while IFS= read -r line; do
      skipped+=("$dir: $line")
    done <"$f"
  done
}

start=$SECONDS
install_missing "${TEST_PACKAGES[@]}"
run_suite build
if [ "${MS_SKIP_ASAN:-0}" != 1 ]; then
  CC=clang ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan -DMS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
fi
if [ ${#skipped[@]} -gt 0 ]; then
  echo "test.sh: ${#skipped[@]} tests skipped (ctest counts a module as" \
    "skipped only when all of its tests were):"
  printf '  %s\n' "${skipped[@]}"
fi
echo "test.sh: all tests passed in $((SECONDS - start)) s"
