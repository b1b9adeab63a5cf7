#!/usr/bin/env bash
# What libmicrohttpd itself costs per request here: bench/http_floor answers
# every request with a canned 1.4 KB JSON, answered at once ("direct") or
# suspended and resumed from another thread ("suspend", the way the server
# answers a purchase once its group is durable), driven by bench/loadgen.
# Prints requests/s and the server's CPU per request for each mode.
#
# Usage: bench/http_floor.sh [seconds=5] [connections=64]
set -euo pipefail

secs=${1:-5}
conns=${2:-64}
[[ "$secs" =~ ^[0-9]+$ && "$secs" -ge 1 && "$secs" -le 600 ]] \
    || { echo "http_floor.sh: seconds must be 1..600" >&2; exit 2; }
[[ "$conns" =~ ^[0-9]+$ && "$conns" -ge 1 && "$conns" -le 4096 ]] \
    || { echo "http_floor.sh: connections must be 1..4096" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=build-bench
tmp=$(mktemp -d /tmp/kopilka-floor.XXXXXX)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --target http_floor -j2 >/dev/null
cc -std=c17 -Wall -Wextra -Werror -O2 -pthread -o "$build/loadgen" bench/loadgen.c
echo 2000000000001 >"$tmp/cards.txt" # the canned server reads no card
hz=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() {
    local port=$((20000 + RANDOM % 30000))
    "$build/http_floor" "$port" "$@" &
    server_pid=$!
    for _ in $(seq 50); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    "$build/loadgen" --host 127.0.0.1 --port "$port" --key x --cards "$tmp/cards.txt" \
        --connections "$conns" --seconds "$secs" --warmup 1 >"$tmp/lg.out" &
    local lg=$!
    sleep 1
    local t0 t1
    t0=$(cpu_ticks "$server_pid")
    wait "$lg"
    t1=$(cpu_ticks "$server_pid")
    kill -TERM "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=
    local rps errors
    rps=$(awk '/^purchases\/s:/ {print $2}' "$tmp/lg.out")
    errors=$(awk '/^errors:/ {print $2}' "$tmp/lg.out")
    awk -v m="$*" -v rps="$rps" -v err="$errors" -v ticks=$((t1 - t0)) -v hz="$hz" -v s="$secs" \
        'BEGIN { us = rps > 0 ? ticks / hz * 1e6 / (rps * s) : 0;
                 printf "%-16s requests/s: %7d  server CPU per request: %5.1f us  errors: %s\n",
                        m, rps, us, err }'
}

run direct
run suspend 0
run suspend 2000
