#!/usr/bin/env python3
"""
cli_stall.py: how long do the tills wait while a long CLI job writes?

Runs `kopilka serve` on a fresh database (tests/integration/harness.py),
drives it with a paced till load (--tills connections together making
--rate purchases a second, each a new receipt), and after --before seconds
runs `kopilka cards issue DB --count N` beside it. Prints the job's own
duration and the latency of every purchase sent while the job ran: count,
p50, p99, worst, and the answers that were not 2xx; the same for the quiet
seconds before the job, for comparison.

    python3 bench/cli_stall.py --kopilka build-bench/kopilka --count 1000000 --rate 200

Standard library only. Use a Release build for figures worth quoting.
"""
import argparse
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, int(len(sorted_values) * p))
    return sorted_values[i]


def till(k, cards, index, interval, stop, out):
    """One till: a purchase every `interval` seconds on its own connection."""
    c = k.client()
    n = 0
    next_at = time.monotonic() + interval * index / 8.0
    while not stop.is_set():
        now = time.monotonic()
        if now < next_at:
            time.sleep(next_at - now)
        next_at += interval
        body = {"card": cards[(index * 7919 + n) % len(cards)],
                "receipt": "stall-%d-%d" % (index, n),
                "lines": [{"sku": "oil", "category": harness.LABOR, "amount": 10000}]}
        n += 1
        t0 = time.monotonic()
        try:
            status, _ = c.call("POST", "/v1/purchases", body)
        except Exception:  # a transport failure counts as a failed answer
            status = 0
            c.close()
            c = k.client()
        out.append((t0, time.monotonic() - t0, status))
    c.close()


def start_tills(k, tills, rate):
    """`tills` paced tills together making `rate` purchases a second:
    (stop event, samples of (sent at, seconds, status), threads)."""
    stop = threading.Event()
    samples = []
    threads = [threading.Thread(target=till, args=(k, k.cards, i, tills / rate, stop, samples))
               for i in range(tills)]
    for t in threads:
        t.start()
    return stop, samples, threads


def summary(name, samples):
    lat = sorted(s[1] * 1000 for s in samples)
    bad = sum(1 for s in samples if not 200 <= s[2] < 300)
    print("%-10s purchases: %6d  not 2xx: %d  p50 ms: %7.1f  p99 ms: %7.1f  worst ms: %7.1f"
          % (name, len(lat), bad, percentile(lat, 0.5), percentile(lat, 0.99),
             lat[-1] if lat else float("nan")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kopilka", required=True, help="the kopilka binary")
    ap.add_argument("--count", type=int, default=1000000, help="cards the job issues")
    ap.add_argument("--rate", type=float, default=100.0, help="purchases a second, all tills")
    ap.add_argument("--tills", type=int, default=4, help="till connections")
    ap.add_argument("--before", type=float, default=3.0, help="seconds of load before the job")
    ap.add_argument("--import-cards", type=int, default=0, metavar="N",
                    help="instead of the issue, import a cards.csv of N new cards")
    ap.add_argument("--control", type=float, default=0.0,
                    help="instead of the issue, run a CPU-bound process that never touches "
                         "the database for this many seconds (what the CPU alone costs)")
    args = ap.parse_args()
    harness.take_argv(["--kopilka", args.kopilka])
    if not (1 <= args.tills <= 64 and 0.1 <= args.rate <= 2000 and 1 <= args.count <= 10000000):
        ap.error("--tills 1..64, --rate 0.1..2000, --count 1..10000000")
    k = harness.Kopilka(cards=200)
    try:
        k.start()
        stop, samples, threads = start_tills(k, args.tills, args.rate)
        time.sleep(args.before)
        job_start = time.monotonic()
        if args.control > 0:
            job = [sys.executable, "-c", "import time\nt = time.monotonic() + %f\n"
                   "while time.monotonic() < t: pass\nimport sys; sys.stderr.write('cpu')"
                   % args.control]
        elif args.import_cards > 0:
            path = os.path.join(k.dir, "import-cards.csv")
            with open(path, "w") as f:
                f.write("number,state\n")
                for i in range(args.import_cards):
                    f.write("IMP%08d,issued\n" % i)
            job = [harness.binary(), "import", k.db, "--cards", path]
            args.count = args.import_cards
        else:
            job = [harness.binary(), "cards", "issue", k.db, "--count", str(args.count)]
        with open(os.devnull, "wb") as null:
            p = subprocess.run(job, stdout=null, stderr=subprocess.PIPE)
        job_end = time.monotonic()
        stop.set()
        for t in threads:
            t.join()
        if p.returncode != 0:
            print("the job failed (%d): %s" % (p.returncode, p.stderr.decode()[-500:]))
        rate = args.count / (job_end - job_start)
        print("%s %d: %.1f s (%.0f rows/s), exit %d; till load %.0f/s on %d connections"
              % ("control" if args.control > 0 else
                 "import --cards" if args.import_cards > 0 else "cards issue --count",
                 args.count, job_end - job_start, rate, p.returncode, args.rate, args.tills))
        tail = p.stderr.decode(errors="replace").strip().splitlines()
        print("the job said: %s" % (tail[-1] if tail else "(nothing)"))
        summary("before", [s for s in samples if s[0] < job_start])
        summary("during", [s for s in samples if job_start <= s[0] < job_end])
        return 0 if p.returncode == 0 else 1
    finally:
        k.close()


if __name__ == "__main__":
    sys.exit(main())
