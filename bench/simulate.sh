#!/usr/bin/env bash
# The economic model's speed: `kopilka simulate` over a generated sales
# history (bench/gen_sales.py) of N receipts with 2 threads and redemption
# 0.6, under examples/gift-shop.json with examples/cumulative-discount.json
# as the baseline when BASELINE=1. Prints receipts/s of the replay (the
# CSV's reading is timed apart).
#
# Usage: bench/simulate.sh [receipts=1000000] [threads=2]
#   KOPILKA_BIN=path: the binary to time (default: a Release build in build-bench)
set -euo pipefail

n=${1:-1000000}
threads=${2:-2}
[[ "$n" =~ ^[0-9]+$ && "$n" -ge 1 ]] || { echo "simulate.sh: receipts must be a number" >&2; exit 2; }
[[ "$threads" =~ ^[0-9]+$ && "$threads" -ge 1 && "$threads" -le 64 ]] \
    || { echo "simulate.sh: threads must be 1..64" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=${KOPILKA_BIN:-}
if [ -z "$bin" ]; then
    cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build-bench --target kopilka_bin -j2 >/dev/null
    bin=build-bench/kopilka
fi
csv=/tmp/kopilka-sales-$n.csv
if [ ! -s "$csv" ]; then
    echo "generating $n receipts into $csv" >&2
    python3 bench/gen_sales.py "$n" > "$csv.tmp" && mv "$csv.tmp" "$csv"
fi
base=()
if [ "${BASELINE:-0}" = 1 ]; then base=(--baseline examples/cumulative-discount.json); fi
t0=$(date +%s.%N)
"$bin" simulate --history "$csv" --program examples/gift-shop.json "${base[@]}" \
    --redemption 0.6 --threads "$threads" --json > /tmp/kopilka-sim-$n.json 2> /tmp/kopilka-sim-$n.err
t1=$(date +%s.%N)
grep -E "^simulate" /tmp/kopilka-sim-$n.err | tail -2 >&2
python3 - "$n" "$t0" "$t1" /tmp/kopilka-sim-$n.json <<'PY'
import json, sys
n, t0, t1, path = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
r = json.load(open(path))["candidate"]
wall = t1 - t0
print("receipts %d  cards %d  wall %.1f s (reading the CSV included)  %.0f receipts/s"
      % (r["receipts"], r["cards"], wall, r["receipts"] / wall))
PY
