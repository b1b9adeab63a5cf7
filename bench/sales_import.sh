#!/usr/bin/env bash
# Measures `kopilka import DB --sales F.csv` (docs/import.md "sales.csv"):
# generates ROWS receipt lines (default 10 000 000; receipts of 1 to 5 lines,
# a third of them without a card, 20 stores, a year of times), imports them
# into a fresh SQLite database with a Release build, then imports the same
# file again (every receipt skipped). Prints both times and rows/s. A
# benchmark, not a test: nothing is asserted.
#
# Usage: bench/sales_import.sh [rows=10000000]
# Environment: BUILD (default build-bench, as bench/run.sh), KEEP=1 keeps the
#              temp directory (the CSV is about 70 bytes a row).
set -euo pipefail

rows=${1:-10000000}
build=${BUILD:-build-bench}
tmp=$(mktemp -d /tmp/kopilka-sales-bench.XXXXXX)
cleanup() { [ "${KEEP:-0}" = 1 ] && echo "kept $tmp" || rm -rf "$tmp"; }
trap cleanup EXIT

echo "== building Kopilka (Release) in $build" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >"$tmp/build.log" 2>&1 &&
    cmake --build "$build" -j2 --target kopilka_bin >>"$tmp/build.log" 2>&1 ||
    { cat "$tmp/build.log" >&2; exit 1; }
kopilka=$build/kopilka

echo "== generating $rows rows" >&2
python3 - "$rows" "$tmp/sales.csv" <<'PY'
import random, sys, time
rows, path = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(12)
cats = ["milk", "bread", "meat", "fruit", "drinks", "household", "labor", "parts"]
t0 = 1767225600  # 2026-01-01T00:00:00Z
step = 365 * 86400 / max(rows, 1)
with open(path, "w", buffering=1 << 20) as f:
    f.write("at,store,receipt,card,kind,sku,category,amount,qty\n")
    n, r = 0, 0
    out = []
    while n < rows:
        r += 1
        lines = min(rnd.randint(1, 5), rows - n)
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t0 + n * step)))
        store = "S%02d" % (r % 20)
        card = "" if r % 3 == 0 else "2%012d" % (r % 500000)
        kind = "return" if r % 50 == 0 else ""
        for _ in range(lines):
            out.append("%s,%s,R%d,%s,%s,SKU-%d,%s,%d.%02d,%d\n" % (
                at, store, r, card, kind, rnd.randrange(5000), cats[rnd.randrange(len(cats))],
                rnd.randrange(1, 3000), rnd.randrange(100), rnd.randint(1, 3)))
            n += 1
        if len(out) >= 100000:
            f.write("".join(out))
            out = []
    f.write("".join(out))
PY
ls -l "$tmp/sales.csv" >&2

"$kopilka" init "$tmp/k.db" --program examples/gift-shop.json >/dev/null
echo "== import" >&2
/usr/bin/time -f "%e s elapsed, %U s user, %S s system, %M KiB max resident" \
    "$kopilka" import "$tmp/k.db" --sales "$tmp/sales.csv"
echo "== the same file again (every receipt skipped)" >&2
/usr/bin/time -f "%e s elapsed, %U s user, %S s system, %M KiB max resident" \
    "$kopilka" import "$tmp/k.db" --sales "$tmp/sales.csv"
ls -l "$tmp/k.db" >&2
