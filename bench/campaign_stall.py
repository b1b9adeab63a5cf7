#!/usr/bin/env python3
"""
campaign_stall.py: how long do the tills wait while a campaign starts?
(docs/marketing.md "The run"; the "before" figure of moving the start's
segment read off the writer, issue 13.)

Runs `kopilka serve` on a fresh database (tests/integration/harness.py)
holding --customers imported customers (`kopilka import --cards
--customers`, not timed), drives it with a paced till load (--tills
connections together making --rate purchases a second, each a new
receipt), and after --before seconds starts a campaign over every customer
(`{}`: 500 premium points each). Prints how long the start took (from the
POST until the campaign is `running`: the segment evaluated and its list
written) and the grants (until `done`, or --grants seconds), and the
latency of the purchases sent in each phase: count, p50, p99, worst, not
2xx; the same for the quiet seconds before, for comparison.

    python3 bench/campaign_stall.py --kopilka build-bench/kopilka --customers 100000 --rate 100

Standard library only. Use a Release build for figures worth quoting.
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import campaign_fixture  # noqa: E402
import harness  # noqa: E402
from cli_stall import start_tills, summary  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kopilka", required=True, help="the kopilka binary")
    ap.add_argument("--customers", type=int, default=100000, help="customers in the segment")
    ap.add_argument("--rate", type=float, default=100.0, help="purchases a second, all tills")
    ap.add_argument("--tills", type=int, default=4, help="till connections")
    ap.add_argument("--before", type=float, default=3.0, help="seconds of load before the start")
    ap.add_argument("--grants", type=float, default=20.0,
                    help="seconds of the grants to measure after the start (0: none)")
    args = ap.parse_args()
    harness.take_argv(["--kopilka", args.kopilka])
    if not (1 <= args.tills <= 64 and 0.1 <= args.rate <= 2000 and
            1 <= args.customers <= 1000000):
        ap.error("--tills 1..64, --rate 0.1..2000, --customers 1..1000000")
    k = harness.Kopilka(cards=200)
    try:
        took = campaign_fixture.customers(k, args.customers, "CS")
        print("imported %d customers in %.1f s" % (args.customers, took))
        token = campaign_fixture.start(k, {})
        s, g = k.call("POST", "/v1/admin/segments", {"name": "all", "filter": {}}, key=token)
        assert s == 201, k.last_raw()
        s, c = k.call("POST", "/v1/admin/campaigns", {
            "name": "Bench", "segment": g["id"],
            "grant": {"kind": "premium", "points": 500, "validity_days": 30},
            "message": {"text": {"ru": "500", "en": "500"}, "subject": {"ru": "-", "en": "-"}}},
            key=token)
        assert s == 201, k.last_raw()
        stop, samples, threads = start_tills(k, args.tills, args.rate)
        time.sleep(args.before)
        watch = k.client()
        start_at = time.monotonic()
        s, _ = watch.call("POST", "/v1/admin/campaigns/%d/start" % c["id"], {}, key=token)
        assert s == 200, k.last_raw()
        state, running_at = "scheduled", None
        while True:
            s, x = watch.call("GET", "/v1/admin/campaigns/%d" % c["id"], key=token)
            now = time.monotonic()
            if running_at is None and x.get("state") in ("running", "done"):
                running_at = now
            state = x.get("state")
            if state in ("done", "cancelled") or (running_at and now - running_at >= args.grants):
                break
            time.sleep(0.05)
        end_at = time.monotonic()
        stop.set()
        for t in threads:
            t.join()
        watch.close()
        print("start of %d members: %.2f s; then %.1f s of grants (%s, %d granted); "
              "till load %.0f/s on %d connections"
              % (args.customers, running_at - start_at, end_at - running_at, state,
                 x["progress"]["granted"], args.rate, args.tills))
        summary("before", [q for q in samples if q[0] < start_at])
        summary("start", [q for q in samples if start_at <= q[0] < running_at])
        summary("grants", [q for q in samples if running_at <= q[0] < end_at])
        return 0
    finally:
        k.close()


if __name__ == "__main__":
    sys.exit(main())
