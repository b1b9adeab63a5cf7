#!/usr/bin/env bash
# Does the outbox keep up with 10 000 purchases a minute? Builds the Release
# binary (build-bench, as bench/run.sh does) and runs bench/notify_load.py:
# purchases of registered customers at a fixed rate against
# `kopilka serve --notify` with fast loopback providers (SMTP and SMS fakes),
# printing purchases/s, messages delivered/s and the outbox's max depth and
# age (bench/README.md).
#
# Usage: bench/notify_load.sh [--no-notify] [seconds=60] [purchases_per_second=166.7] [customers=500]
# --no-notify: the same load without notifications, for the purchases' latency
# without the outbox (compare "purchase latency ms" of the two runs).
set -euo pipefail
extra=()
if [ "${1:-}" = "--no-notify" ]; then extra=(--no-notify); shift; fi
secs=${1:-60}
rate=${2:-166.7}
customers=${3:-500}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=build-bench
echo "== building $build (Release)" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target kopilka_bin >/dev/null
py=python3
"$py" -c 'import aiosmtpd' 2>/dev/null || py=/usr/bin/python3
exec "$py" bench/notify_load.py --kopilka "$build/kopilka" --seconds "$secs" --rate "$rate" \
    --customers "$customers" ${extra[@]+"${extra[@]}"}
