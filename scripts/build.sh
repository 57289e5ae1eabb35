#!/usr/bin/env bash
# ms_build DIR [CMAKE-ARG...]: configures and builds mailswitch in DIR,
# showing its progress: one line that counts up on a terminal, a line
# every 25 % otherwise; compiler warnings and errors as they come. The
# whole output is in DIR/build.log, named (with its last lines) on
# failure. Sourced by demo.sh and test.sh.

ms_build() {
  local dir=$1
  shift
  mkdir -p "$dir"
  local log=$dir/build.log start=$SECONDS tty=0
  [ -t 1 ] && tty=1
  echo "building in $dir/ (log: $log)"
  if ! cmake -S . -B "$dir" "$@" >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    echo "cmake failed to configure $dir; the whole output is in $log" >&2
    return 1
  fi
  local status errexit=0
  [[ $- == *e* ]] && errexit=1
  set +e
  cmake --build "$dir" -j "$(nproc)" 2>&1 | tee -a "$log" | awk -v tty=$tty '
    /^\[ *[0-9]+%\]/ {
      pct = substr($0, 2, index($0, "%") - 2) + 0
      if (tty) { printf "\r  [%3d%%] %-60.60s", pct, substr($0, index($0, "]") + 2); fflush() }
      else if (pct >= next_pct) { printf "  [%3d%%]\n", pct; next_pct = pct - pct % 25 + 25; fflush() }
      next
    }
    /warning:|error:/ { if (tty) printf "\r%-70s\r", ""; print; fflush() }
    END { if (tty) printf "\r%-70s\r", "" }'
  status=${PIPESTATUS[0]}
  [ "$errexit" = 1 ] && set -e
  if [ "$status" -ne 0 ]; then
    tail -n 30 "$log" >&2
    echo "the build failed in $dir; the whole output is in $log" >&2
    return 1
  fi
  echo "built in $((SECONDS - start)) s"
}
