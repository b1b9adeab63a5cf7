#!/usr/bin/env bash
# Installs the Debian packages Kopilka builds with, when missing; with
# --test also those only the tests use. Called by scripts/run.sh (build) and
# scripts/test.sh (--test); safe to run again.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libsqlite3-dev libmicrohttpd-dev
      libjansson-dev libsodium-dev libcmocka-dev liblua5.4-dev libzint-dev libpng-dev
      libcurl4-openssl-dev libpq-dev python3 sqlite3
      libphonenumber-dev g++)
case "${1:-}" in
  --test)
    # tests/integration/test_deploy.py runs deploy/nginx/kopilka.conf in a
    # real nginx. Debian's package also enables nginx's own service where
    # systemd runs; the demo (scripts/run.sh) does not install it.
    # postgresql: scripts/test.sh runs every suite on a throwaway cluster
    # too (scripts/pg.sh).
    # python3-aiosmtpd: tests/integration/fakes.py's SMTP server, which
    # test_notify_send and the notification tests send e-mail to.
    # chromium: the browser tests (tests/browser) drive Debian's chromium
    # through playwright-core (web/package-lock.json).
    pkgs+=(nginx openssl postgresql python3-aiosmtpd chromium) ;;
  "") ;;
  *) echo "usage: scripts/deps.sh [--test]" >&2; exit 2 ;;
esac
# Node.js bundles the pages (web/). An image that ships its own Node.js
# with npm keeps it (Debian's npm package would conflict with it).
command -v node >/dev/null && command -v npm >/dev/null || pkgs+=(nodejs npm)
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

# The pages' npm packages, exactly as web/package-lock.json pins them; again
# only when the lockfile changed since the last install.
web="$(dirname "$0")/../web"
if [ ! -f "$web/node_modules/.package-lock.json" ] ||
   [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
  echo "deps: npm ci in web/" >&2
  npm ci --prefix "$web" --no-audit --no-fund --loglevel=error
fi
# playwright-core (the browser tests) needs Node.js 20 or later; Debian 12's
# own nodejs is 18. Say so before the tests fail on it.
if [ "${1:-}" = "--test" ]; then
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    echo "deps: the browser tests (tests/browser) need Node.js 20 or later for playwright-core;" \
         "this machine has $(node --version): install a newer Node.js (e.g. from NodeSource)" >&2
    exit 1
  fi
fi
