#!/usr/bin/env bash
# Purchases/s of bench/run.sh without and with a report (bench/
# report_loop.sh: over 36 months, on a reader) running in a loop beside the
# load, on the same machine one after the other, and their ratio.
# Usage: bench/report_load.sh [seconds=10] [connections=64] [report=points|members]
# (members: the tills' purchases with a card are its members' receipts, so
# it groups every one of them while they are made).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-10}
conns=${2:-64}
export BENCH_REPORT=${3:-points}
case $BENCH_REPORT in points | members) ;; *)
    echo "report_load.sh: the report must be points or members, got $BENCH_REPORT" >&2
    exit 2
    ;;
esac
out=$(mktemp -d /tmp/kopilka-report-load.XXXXXX)
trap 'rm -rf "$out"' EXIT
rate() { awk '/^kopilka purchases\/s:/ { print $3; exit }' "$1"; }
echo "== without the report" >&2
bash "$root/bench/run.sh" "$secs" "$conns" --no-peer --no-latency --no-floor >"$out/plain.txt"
echo "== with the $BENCH_REPORT report in a loop" >&2
BENCH_BESIDE="$root/bench/report_loop.sh" bash "$root/bench/run.sh" "$secs" "$conns" --no-peer --no-latency --no-floor \
    >"$out/loop.txt"
plain=$(rate "$out/plain.txt")
loop=$(rate "$out/loop.txt")
reports=$(awk '/^beside:/ { print $2; exit }' "$out/loop.txt")
echo "purchases/s without the report: $plain"
echo "purchases/s with the $BENCH_REPORT report in a loop: $loop ($reports reports in ${secs}s + warm-up)"
awk -v a="$loop" -v b="$plain" 'BEGIN { if (b > 0) printf "ratio with/without: %.2f\n", a / b }'
