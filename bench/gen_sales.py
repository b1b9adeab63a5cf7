#!/usr/bin/env python3
"""gen_sales.py: a quick sales history in the CSV of docs/analytics.md
(at,store,receipt,card,kind,sku,category,amount,qty) for bench/simulate.sh:
N receipts over a year, one in five without a card, one to three lines,
about 2% of receipts followed by a return of their first line.
Deterministic for a given N and seed.

Usage: bench/gen_sales.py N [seed] > sales.csv
"""
import random
import sys


def main():
    n = int(sys.argv[1])
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    cards = max(1, n // 40)
    cats = ("labor", "parts", "goods")
    start = 1767225600  # 2026-01-01T00:00:00Z
    step = 365 * 86400 / max(1, n)
    out = sys.stdout
    out.write("at,store,receipt,card,kind,sku,category,amount,qty\n")
    buf = []
    import datetime
    for i in range(n):
        t = start + int(i * step)
        at = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        store = "s%d" % (i % 5 + 1)
        card = "" if rng.random() < 0.2 else "c%d" % rng.randrange(cards)
        first = None
        for k in range(rng.randint(1, 3)):
            cat = cats[rng.randrange(3)]
            amount = rng.randrange(100, 500000)
            row = "%s,%s,r%d,%s,sale,%s-%d,%s,%d.%02d,1\n" % (
                at, store, i, card, cat, k, cat, amount // 100, amount % 100)
            if first is None:
                first = row
            buf.append(row)
        if card and rng.random() < 0.02:
            buf.append(first.replace(",sale,", ",return,", 1))
        if len(buf) > 100000:
            out.write("".join(buf))
            buf.clear()
    out.write("".join(buf))


if __name__ == "__main__":
    main()
