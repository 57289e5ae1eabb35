#!/usr/bin/env bash
# Installs the Debian packages mailswitch needs, only those missing.
# Sourced by test.sh and demo.sh; runnable on its own.
PACKAGES=(build-essential cmake pkg-config python3 openssl
  libev-dev libssl-dev libhiredis-dev libinih-dev libcriterion-dev
  libcrypt-dev libc-ares-dev redis-server keepalived iproute2
  curl isync fetchmail getmail6 mutt swaks python3-dkim)

install_missing() {
  local missing=()
  for p in "${PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing missing packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || {
      echo "need root (or sudo) to install: ${missing[*]}" >&2
      return 1
    }
    sudo=sudo
  fi
  $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
      --no-install-recommends "${missing[@]}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  install_missing "$@"
fi
