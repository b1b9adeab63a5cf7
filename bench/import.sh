#!/usr/bin/env bash
# Measures `kopilka import DB --cards --customers --balances` (docs/import.md)
# at scale (issue 16's goal: 1 000 000 customers with cards and balances in
# under 30 s): generates N cards, N customers (name, phone, e-mail,
# birthday, consent, 2 attributes) and N opening balances, imports the three
# files into a fresh SQLite database (or a postgresql:// target) with a
# Release build, and prints the seconds of each file, the total, the peak
# RSS, the re-run (every row unchanged) and `kopilka verify`. Each file is
# imported in a run of its own so its time is its own; the total is their
# sum. A benchmark, not a test: only verify is required to pass.
#
# Usage: bench/import.sh [N=1000000]
# Environment: BUILD (default build-bench, as bench/run.sh) or KOPILKA (a
#              binary to measure instead, e.g. an older build for a
#              before/after pair), CSV_DIR (reuse the CSVs there, made when
#              missing), DB (a postgresql:// URL instead of a fresh SQLite
#              file; the database must exist and be empty; its key file is
#              KOPILKA_KEY_FILE, default one in the temp dir), KEEP=1 keeps
#              the temp dir.
set -euo pipefail

n=${1:-1000000}
build=${BUILD:-build-bench}
tmp=$(mktemp -d /tmp/kopilka-import-bench.XXXXXX)
cleanup() { [ "${KEEP:-0}" = 1 ] && echo "kept $tmp" >&2 || rm -rf "$tmp"; }
trap cleanup EXIT

if [ -n "${KOPILKA:-}" ]; then
    kopilka=$KOPILKA
else
    echo "== building Kopilka (Release) in $build" >&2
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >"$tmp/build.log" 2>&1 &&
        cmake --build "$build" -j2 --target kopilka_bin >>"$tmp/build.log" 2>&1 ||
        { cat "$tmp/build.log" >&2; exit 1; }
    kopilka=$build/kopilka
fi

csv=${CSV_DIR:-$tmp}
mkdir -p "$csv"
if [ ! -s "$csv/balances.csv" ] || [ "$(cat "$csv/rows" 2>/dev/null)" != "$n" ]; then
    echo "== generating $n rows of each file in $csv" >&2
    python3 - "$n" "$csv" <<'PY'
import json, os, sys
n, d = int(sys.argv[1]), sys.argv[2]
def write(name, header, rows):
    with open(os.path.join(d, name), "w", buffering=1 << 20) as f:
        f.write(header + "\n")
        out = []
        for r in rows:
            out.append(r)
            if len(out) == 100000:
                f.write("".join(out)); out = []
        f.write("".join(out))
write("cards.csv", "number,state,batch",
      ("OLD%08d,issued,legacy\n" % i for i in range(n)))
write("customers.csv",
      "external_id,cards,full_name,phone,email,birthday,consent_version,attr.car_model,attr.mileage",
      ("c%d,OLD%08d,Customer Number %d,+38067%07d,c%d@example.com,19%02d-%02d-%02d,2026-01,"
       "Model %d,%d\n" % (i, i, i, i, i, 50 + i % 50, 1 + i % 12, 1 + i % 28, i % 40,
                          i * 7 % 300000) for i in range(n)))
write("balances.csv", "card,points,kind,expires_at",
      ("OLD%08d,%d,,\n" % (i, 1 + i % 5000) for i in range(n)))
# The program: the gift shop's, with the customers section the import needs.
with open("examples/gift-shop.json") as f:
    doc = json.load(f)
doc["customers"] = {
    "consent_version": "2026-01",
    "attributes": [{"name": "car_model", "type": "string", "max_length": 64},
                   {"name": "mileage", "type": "integer", "min": 0, "max": 2000000}]}
with open(os.path.join(d, "program.json"), "w") as f:
    json.dump(doc, f)
with open(os.path.join(d, "rows"), "w") as f:
    f.write(str(n))
PY
fi

if [ -n "${DB:-}" ]; then
    db=$DB
    export KOPILKA_KEY_FILE=${KOPILKA_KEY_FILE:-$tmp/pg.key}
    "$kopilka" init "$db" --program "$csv/program.json" >/dev/null
else
    db=$tmp/k.db
    "$kopilka" init "$db" --program "$csv/program.json" >/dev/null
fi
echo "== $kopilka, $n rows of each file, $(uptime | sed 's/.*load/load/')" >&2

peak=0
total=0
cpu=0
one() { # label, args...
    local label=$1
    shift
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$kopilka" import "$db" "$@" \
        >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
    read -r secs user sys kib <"$tmp/time"
    [ "$kib" -gt "$peak" ] && peak=$kib
    total=$(python3 -c "print(round($total + $secs, 2))")
    cpu=$(python3 -c "print(round($cpu + $user + $sys, 2))")
    printf '%-10s %7.2f s  %6.2f s CPU  %7d KiB peak  %s\n' "$label" "$secs" \
        "$(python3 -c "print($user + $sys)")" "$kib" "$(tail -1 "$tmp/err")"
}
one cards --cards "$csv/cards.csv"
one customers --customers "$csv/customers.csv"
one balances --balances "$csv/balances.csv"
printf '%-10s %7.2f s  %6.2f s CPU  %7d KiB peak (the largest of the three)\n' total \
    "$total" "$cpu" "$peak"
first=$total
first_cpu=$cpu
total=0
one re-run --cards "$csv/cards.csv" --customers "$csv/customers.csv" --balances "$csv/balances.csv"
/usr/bin/time -f "%e" -o "$tmp/time" "$kopilka" verify "$db" >"$tmp/verify" 2>&1 ||
    { cat "$tmp/verify" >&2; exit 1; }
printf 'verify     %7.2f s  %s\n' "$(cat "$tmp/time")" "$(tail -1 "$tmp/verify")"
echo "IMPORT $n rows x 3: first run $first s ($first_cpu s CPU), load $(cut -d' ' -f1 /proc/loadavg)"
