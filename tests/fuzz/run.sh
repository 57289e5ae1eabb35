#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in their own build directory
# (build-fuzz/ at the top of the tree) and runs each for SECONDS (default
# 60) on a working copy of its corpus, one after the other. New coverage
# stays in build-fuzz/fuzz/work/<target>/; a crash stops the run, leaves
# its input as build-fuzz/fuzz/crash-* and is to be fixed and added to
# tests/fuzz/corpus/<target>/ as a regression input.
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
# Prints each target's executions and coverage (libFuzzer's "cov:", edges
# reached) at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
shift || true
build=build-fuzz
CC=clang cmake -S . -B "$build" -DMS_WERROR=ON -DMS_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j 2 >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do
    t=${f##*/fuzz_}
    targets+=("${t%.c}")
  done
fi
summary=()
for t in "${targets[@]}"; do
  work=$build/fuzz/work/$t
  mkdir -p "$work"
  log=$build/fuzz/$t.log
  echo "run.sh: $t for ${secs}s"
  if ! "$build/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz/" "$work" "tests/fuzz/corpus/$t" \
    >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "run.sh: $t failed; input in $build/fuzz/ (log $log)" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
  summary+=("$(printf '%-14s %10s execs  %s' "$t" "$execs" "$cov")")
done
printf '%s\n' "${summary[@]}"
