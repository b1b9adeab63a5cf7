#!/usr/bin/env bash
# Measures GET /v1/admin/reports/customers (docs/analytics.md "The customers
# report") on a generated history: `kopilka history generate` with MEMBERS
# card holders and as many customers without a card over 24 months, the
# cards and sales imported into a fresh SQLite database (Release build),
# then the report over the last 12 months of the history, timed, with the
# server's peak resident memory before and after it (VmHWM). A benchmark,
# not a test: nothing is asserted.
#
# Usage: bench/customers_report.sh [members=1000000]
# Environment: BUILD (default build-bench), KEEP=1 keeps the temp directory,
#              PORT (default 18931).
set -euo pipefail

members=${1:-1000000}
build=${BUILD:-build-bench}
port=${PORT:-18931}
tmp=$(mktemp -d /tmp/kopilka-customers-bench.XXXXXX)
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    [ "${KEEP:-0}" = 1 ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

if [ ! -x "$build/kopilka" ]; then
    echo "== building Kopilka (Release) in $build" >&2
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DKOPILKA_WEB=OFF >"$tmp/build.log" 2>&1 &&
        cmake --build "$build" -j2 --target kopilka_bin >>"$tmp/build.log" 2>&1 ||
        { cat "$tmp/build.log" >&2; exit 1; }
fi
kopilka=$build/kopilka
tf="%e s elapsed, %U s user, %S s system, %M KiB max resident"

echo "== generating $members members, $members non-members, 24 months" >&2
/usr/bin/time -f "$tf" "$kopilka" history generate --seed 7 --members "$members" \
    --non-members "$members" --months 24 --start 2024-01-01 \
    --out "$tmp/sales.csv" --cards-out "$tmp/cards.csv" 2>"$tmp/gen.log" >/dev/null
tail -1 "$tmp/gen.log" >&2
"$kopilka" init "$tmp/k.db" --program examples/auto-holding.json >/dev/null
echo "== import" >&2
/usr/bin/time -f "$tf" "$kopilka" import "$tmp/k.db" --cards "$tmp/cards.csv" 2>&1 | tail -1 >&2
/usr/bin/time -f "$tf" "$kopilka" import "$tmp/k.db" --sales "$tmp/sales.csv" 2>&1 | tail -1 >&2
rm -f "$tmp/sales.csv"
ls -l "$tmp/k.db" >&2

printf 'bench-password-1\n' >"$tmp/pw"
"$kopilka" staff add "$tmp/k.db" --login bench --role auditor --password-file "$tmp/pw" >/dev/null
"$kopilka" serve "$tmp/k.db" --listen "127.0.0.1:$port" --tick 0 --now 2026-01-02T12:00:00Z \
    >"$tmp/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/live" >/dev/null && break; sleep 0.1; done
token=$(curl -sf -X POST "http://127.0.0.1:$port/v1/admin/login" \
    -d '{"login":"bench","password":"bench-password-1"}' | sed 's/.*"token":"\([^"]*\)".*/\1/')
hwm() { awk '/^VmHWM/ { print $2 " KiB" }' "/proc/$server/status"; }
echo "server peak memory before the report: $(hwm)"
start=$(date +%s.%N)
code=$(curl -s -o "$tmp/report.json" -w '%{http_code}' -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$port/v1/admin/reports/customers?from=2025-01-01&to=2025-12-31")
end=$(date +%s.%N)
echo "report: HTTP $code in $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s"
echo "server peak memory after the report: $(hwm)"
python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
print('rfm members:', d['rfm']['members'], '; cohorts:', len(d['cohorts']),
      '; before/after members:', d['before_after']['members'], 'followed:', d['before_after']['followed'])
" "$tmp/report.json" 2>/dev/null || head -c 400 "$tmp/report.json"
