#!/usr/bin/env bash
# Installs the Debian packages Kopilka builds and tests with, when missing.
# Called by scripts/run.sh and scripts/test.sh; safe to run again.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libsqlite3-dev libmicrohttpd-dev
      libjansson-dev libsodium-dev libcmocka-dev liblua5.4-dev libzint-dev libpng-dev
      libcurl4-openssl-dev libpq-dev python3 sqlite3
      libphonenumber-dev g++
      nginx openssl)  # nginx, openssl: tests/integration/test_deploy.py (deploy/nginx)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
