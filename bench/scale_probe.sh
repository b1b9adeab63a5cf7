#!/usr/bin/env bash
# scale_probe.sh: the figures docs/scaling.md extrapolates from, measured on
# this machine with a Release build: bytes a member and a purchase take in
# the embedded database (and in the operation log), and how long the
# whole-file jobs take per gigabyte: the start-up quick check, `verify`,
# `backup`. Prints one "name: value" line per figure.
#
# Usage: bench/scale_probe.sh [cards=200000] [seconds=20] [connections=64]
# Needs build-bench/ (bench/run.sh builds it) or builds it the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
ncards=${1:-200000}; secs=${2:-20}; conns=${3:-64}
build=build-bench; kopilka=$build/kopilka; loadgen=$build/loadgen
if [ ! -x "$kopilka" ] || [ ! -x "$loadgen" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j2 >/dev/null
  cc -std=c17 -Wall -Wextra -Werror -O2 -pthread -o "$loadgen" bench/loadgen.c
fi
tmp=$(mktemp -d /tmp/kp-scale.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
db=$tmp/k.db
size() { { du -cb "$db" "$db"-wal 2>/dev/null || true; } | awk 'END {print $1}'; }
secs_of() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }

"$kopilka" init "$db" --program examples/autoservice-case1.json >/dev/null
key=$("$kopilka" terminal add "$db" --store bench)
empty=$(size)
"$kopilka" cards issue "$db" --count "$ncards" >"$tmp/cards.txt"
with_cards=$(size)
echo "cards: $ncards"
echo "bytes per issued card: $(( (with_cards - empty) / ncards ))"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$kopilka" serve "$db" --listen "127.0.0.1:$port" 2>"$tmp/serve.log" &
pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
"$loadgen" --host 127.0.0.1 --port "$port" --key "$key" --cards "$tmp/cards.txt" \
  --connections "$conns" --seconds "$secs" --warmup 1 >"$tmp/lg.out"
oplog=$({ du -cb "$db".oplog-* 2>/dev/null || true; } | awk 'END {print $1}')
kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
ops=$(sqlite3 "$db" 'SELECT count(*) FROM ops')
after=$(size)
echo "purchases: $ops ($(awk '/^purchases\/s:/ {print $2}' "$tmp/lg.out")/s)"
echo "bytes per purchase (database): $(( (after - with_cards) / ops ))"
echo "operation log bytes at stop: $oplog"
sqlite3 "$db" "SELECT 'rows per purchase: lots ' || round((SELECT count(*) FROM lots)*1.0/$ops,2) || ', postings ' || round((SELECT count(*) FROM postings)*1.0/$ops,2)"
gb=$(echo "$after / 1000000000" | bc -l)
printf 'database size: %.1f MB\n' "$(echo "$after / 1000000" | bc -l)"
qc=$(secs_of sqlite3 "$db" 'PRAGMA quick_check')
printf 'quick check: %.2f s (%.1f s per GB)\n' "$qc" "$(echo "$qc / $gb" | bc -l)"
vf=$(secs_of "$kopilka" verify "$db")
printf 'verify: %.2f s (%.1f s per GB, %.2f s per million purchases)\n' "$vf" \
  "$(echo "$vf / $gb" | bc -l)" "$(echo "$vf * 1000000 / $ops" | bc -l)"
bk=$(secs_of "$kopilka" backup "$db" "$tmp/backup.db")
printf 'backup: %.2f s (%.1f s per GB)\n' "$bk" "$(echo "$bk / $gb" | bc -l)"
grep -E '^(server|kopilka: writer)' "$tmp/serve.log" | tail -2 || true
