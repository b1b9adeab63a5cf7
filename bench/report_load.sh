#!/usr/bin/env bash
# Purchases/s of bench/run.sh without and with the heaviest report
# (bench/report_loop.sh: the points report over 36 months) running in a
# loop beside the load, on the same machine one after the other, and their
# ratio. Usage: bench/report_load.sh [seconds=10] [connections=64]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
conns=${2:-64}
out=$(mktemp -d /tmp/kopilka-report-load.XXXXXX)
trap 'rm -rf "$out"' EXIT
rate() { awk '/^kopilka purchases\/s:/ { print $3; exit }' "$1"; }
echo "== without the report" >&2
bash "$root/bench/run.sh" "$secs" "$conns" --no-peer >"$out/plain.txt"
echo "== with the report in a loop" >&2
BENCH_BESIDE="$root/bench/report_loop.sh" bash "$root/bench/run.sh" "$secs" "$conns" --no-peer \
    >"$out/loop.txt"
plain=$(rate "$out/plain.txt")
loop=$(rate "$out/loop.txt")
reports=$(awk '/^beside:/ { print $2; exit }' "$out/loop.txt")
echo "purchases/s without the report: $plain"
echo "purchases/s with the report in a loop: $loop ($reports reports in ${secs}s + warm-up)"
awk -v a="$loop" -v b="$plain" 'BEGIN { if (b > 0) printf "ratio with/without: %.2f\n", a / b }'
