#!/usr/bin/env bash
# Installs the Debian packages mailswitch needs, only those missing.
# Sourced by demo.sh (PACKAGES), test.sh (PACKAGES and TEST_PACKAGES) and
# bench/run.sh; runnable on its own: `scripts/install-deps.sh` installs
# PACKAGES, `scripts/install-deps.sh --test` TEST_PACKAGES too.
#
# apt's output goes to a log file (INSTALL_LOG), named on failure.
# Installing redis-server on Debian also starts and enables the system
# Redis on 127.0.0.1:6379; the demo and the tests run their own on other
# ports and never use it.

# Runtime: build mailswitch and run ./demo.sh with the clients the README
# shows (swaks needs Net::SSLeay for --tls; PLAIN and LOGIN need no more).
PACKAGES=(build-essential cmake pkg-config python3 openssl
  libev-dev libssl-dev libhiredis-dev libinih-dev libcrypt-dev libc-ares-dev libjansson-dev
  liburing-dev
  redis-server
  curl swaks libnet-ssleay-perl mutt isync)

# What ./test.sh adds: unit tests (criterion), the VIP test (keepalived,
# ip netns), the mail clients the integration tests drive, mandoc (the man
# pages' lint), PyYAML (the alert rules' check), python3-dkim (checks the
# DKIM signatures of outbound mail), clang and
# libclang-rt-14-dev (the sanitizers' and libFuzzer's runtimes: the second
# run builds with clang and runs the fuzz targets), rspamd (the milter
# tests: a real rspamd in milter mode, started by the test).
TEST_PACKAGES=(libcriterion-dev keepalived iproute2 fetchmail getmail6 mandoc
  python3-yaml python3-dkim clang libclang-rt-14-dev
  chromium chromium-driver python3-selenium rspamd)

INSTALL_LOG=${INSTALL_LOG:-${TMPDIR:-/tmp}/mailswitch-install-deps.log}

install_missing() { # install_missing [PACKAGE...]: PACKAGES and these
  local missing=()
  for p in "${PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
      echo "need root (or sudo) to install: ${missing[*]}" >&2
      return 1
    }
    sudo=sudo
  fi
  echo "installing ${#missing[@]} missing packages with apt-get" \
    "(their dependencies too; log: $INSTALL_LOG): ${missing[*]}"
  local start=$SECONDS
  if ! { $sudo apt-get update -q &&
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends "${missing[@]}"; } >"$INSTALL_LOG" 2>&1; then
    tail -n 20 "$INSTALL_LOG" >&2
    echo "apt-get failed; its whole output is in $INSTALL_LOG" >&2
    return 1
  fi
  echo "installed in $((SECONDS - start)) s"
  case " ${missing[*]} " in *" redis-server "*)
    echo "note: Debian started and enabled a system redis-server on" \
      "127.0.0.1:6379; mailswitch's demo and tests do not use it" \
      "(\`systemctl disable --now redis-server\` stops it)" ;;
  esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  if [ "${1:-}" = --test ]; then
    shift
    set -- "${TEST_PACKAGES[@]}" "$@"
  fi
  install_missing "$@"
fi
