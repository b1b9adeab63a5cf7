#!/usr/bin/env python3
"""
campaign_preview.py: what does a campaign's preview cost when its grant is
by a program rule? (docs/marketing.md "A campaign": each member's tier or
spend is read to compute their points, issue 13.)

Runs `kopilka serve` on a fresh database (tests/integration/harness.py)
holding --customers imported customers (`kopilka import`, not timed), the
seed program with tiers and the two grant rules on "campaign" of
tests/integration/test_campaign_rules.py (2.5 % of the last 90 days'
spend, at most 120; Gold 1000, Silver 500), and three campaigns on the
segment `{}`: a fixed 500 points, by spend, by tier. Times
`POST /v1/admin/campaigns/{id}/preview` of each, --rounds rounds
alternated, and prints the load average.

    python3 bench/campaign_preview.py --kopilka build/kopilka --customers 10000

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
import test_campaign_rules  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--kopilka", required=True, help="the kopilka binary")
    ap.add_argument("--customers", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    harness.take_argv(["--kopilka", args.kopilka])
    k = harness.Kopilka(cards=0)
    try:
        campaign_fixture.customers(k, args.customers, "BP")
        path = test_campaign_rules.program(k.dir)
        harness.run_cli(["program", "load", k.db, path])
        token = campaign_fixture.start(k, {})
        s, g = k.call("POST", "/v1/admin/segments", {"name": "all", "filter": {}}, key=token)
        ids = {}
        for name, grant in (("fixed", {"kind": "premium", "points": 500}),
                            ("spend", {"rule": "spend-back"}), ("tier", {"rule": "vip-campaign"})):
            s, c = k.call("POST", "/v1/admin/campaigns",
                          {"name": name, "segment": g["id"], "grant": grant}, key=token)
            if s != 201:
                sys.exit("campaign %s: %s" % (name, k.last_raw()))
            ids[name] = c["id"]
        for rnd in range(args.rounds):
            for name in ("fixed", "spend", "tier"):
                t0 = time.monotonic()
                s, p = k.call("POST", "/v1/admin/campaigns/%d/preview" % ids[name], key=token)
                if s != 200:
                    sys.exit("preview %s: %s" % (name, k.last_raw()))
                print("round %d %-5s preview of %d: %.2f s (points %d)"
                      % (rnd, name, args.customers, time.monotonic() - t0, p["points"]))
        with open("/proc/loadavg") as f:
            print("load", f.read().strip())
    finally:
        k.close()


if __name__ == "__main__":
    main()
