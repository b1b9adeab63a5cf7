"""
test_customers_report.py: GET /v1/admin/reports/customers (docs/api.md
"Reports", docs/analytics.md "The customers report") against a real
`kopilka serve` on a story built by hand, every figure worked out below,
the same on SQLite and PostgreSQL (integration_customers_report and its
_pg twin):

  - tiers: seed 000's auto holding (Silver from 0, Gold from 500.00 over
    365 days, reviewed monthly, one level down): every account Silver at
    the review of 1 January 2026, card 0 Gold on 1 February after 550.00 in
    January, back to Silver on 1 February 2027; the distribution at the
    read and the moves up and down;
  - RFM: five members (two buying at the till, two known cards and one
    unknown card in imported sales) whose recency, frequency and spend are
    each a permutation, so each scores 1..5 once and lands in a known
    segment;
  - cohorts by month of joining (a registration, else the first receipt);
  - before and after joining, followed by the `customer` key of imported
    sales without a card;
  - the tier filter, the window, the CSV form, refusals.

    python3 test_customers_report.py --kopilka build/kopilka [unittest options]
"""
import csv
import datetime
import io
import json
import os
import unittest

import harness
from test_people import CONSENT, CUSTOMERS_SECTION, PASSWORD

UTC = datetime.timezone.utc
PERIOD = "?from=2026-01-01&to=2027-03-31"
# The period's end: 2027-04-01 00:00 at +03:00 (the program's zone).
END = datetime.datetime(2027, 3, 31, 21, 0, tzinfo=UTC)
MONTH = 2629746  # a window's month: a twelfth of the Gregorian year, in seconds


def iso(y, m, d, hh=12):
    return datetime.datetime(y, m, d, hh, 0, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_to_end(y, m, d):
    return (END - datetime.datetime(y, m, d, 12, 0, tzinfo=UTC)).days


# Imported receipts: (card, customer key, date, amount in major units).
C2, C3 = 2, 3  # the harness's cards 2 and 3, known, never registered
SALES = [
    # card 2: first receipt 2026-02-10 (its joining); 3 receipts, 200.00
    ("c2", "K-C2", (2026, 2, 10), "60.00"),
    ("c2", "K-C2", (2026, 5, 15), "70.00"),
    ("c2", "K-C2", (2027, 3, 1), "70.00"),
    # card 3: 4 receipts of 100.00, no customer key (cannot be followed)
    ("c3", "", (2026, 4, 2), "100.00"),
    ("c3", "", (2026, 4, 20), "100.00"),
    ("c3", "", (2026, 9, 9), "100.00"),
    ("c3", "", (2026, 12, 1), "100.00"),
    # an unknown card: 5 receipts, 900.00, joined 2026-06-01
    ("X-1", "K-X", (2026, 6, 1), "100.00"),
    ("X-1", "K-X", (2026, 7, 1), "150.00"),
    ("X-1", "K-X", (2026, 8, 1), "200.00"),
    ("X-1", "K-X", (2027, 1, 15), "200.00"),
    ("X-1", "K-X", (2027, 3, 30), "250.00"),
    # without a card, under the members' keys: before and after joining
    ("", "K-C2", (2025, 1, 5), "500.00"),  # more than 6 months before: outside
    ("", "K-C2", (2025, 10, 1), "100.00"),
    ("", "K-C2", (2025, 12, 1), "140.00"),
    ("", "K-C2", (2026, 3, 1), "80.00"),
    ("", "K-X", (2026, 3, 15), "50.00"),
    ("", "K-NOBODY", (2026, 3, 15), "999.00"),  # nobody's: never counted
]


class CustomersReport(unittest.TestCase):
    cards = 6

    def setUp(self):
        self.k = harness.Kopilka(cards=self.cards, program="auto-holding.json")
        self.addCleanup(self.k.close)
        with open(harness.program_file("auto-holding.json")) as f:
            doc = json.load(f)
        doc["customers"] = CUSTOMERS_SECTION
        path = os.path.join(self.k.dir, "program-people.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        harness.run_cli(["program", "load", self.k.db, path])
        pw = os.path.join(self.k.dir, "password")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        for role in ("admin", "auditor", "cashier"):
            harness.run_cli(["staff", "add", self.k.db, "--login", "u_" + role, "--role", role,
                             "--password-file", pw])
        self.tokens = {}
        # No scheduler on the real clock: the story drives reviews with `tick`.
        self.k.start(serve_args=("--tick", "0"))

    def clock(self, when):
        self.k.set_clock(when)
        self.tokens = {}

    def as_(self, role, method, path, body=None, headers=None):
        if role not in self.tokens:
            self.tokens[role] = self.k.staff_token("u_" + role, PASSWORD)
        return self.k.call(method, path, body, key=self.tokens[role], headers=headers)

    def ok(self, status, what):
        self.assertIn(status, (200, 201), "%s: %s %r" % (what, status, self.k.last_raw()))

    def register(self, card, phone, when):
        self.clock(when)
        s, _ = self.k.call("POST", "/v1/customers", {"card": card, "full_name": "Ivan Petrenko",
                                                     "phone": phone, "consent": CONSENT})
        self.ok(s, "register")

    def buy(self, card, receipt, amount, when):
        self.clock(when)
        s, _ = self.k.call("POST", "/v1/purchases", {
            "card": card, "receipt": receipt, "at": when,
            "lines": [{"sku": "SERVICE", "category": "service", "amount": amount}]})
        self.ok(s, "purchase " + receipt)

    def tick(self, when):
        self.assertIn("tick at", self.k.cli("tick", "DB", "--now", when).stdout)

    def story(self):
        c = self.k.cards
        self.register(c[0], "+380501230001", iso(2026, 1, 5))
        self.buy(c[0], "R-1", 30000, iso(2026, 1, 10))
        self.buy(c[0], "R-2", 25000, iso(2026, 1, 20))
        self.register(c[1], "+380501230002", iso(2026, 1, 21, 9))
        self.buy(c[1], "R-3", 5000, iso(2026, 1, 21))
        self.register(c[4], "+380501230004", iso(2026, 3, 10))  # never buys
        self.tick(iso(2026, 1, 31))  # review of 1 January: every account Silver
        self.tick(iso(2026, 2, 1))   # review of 1 February: card 0 Gold (550.00)
        self.tick(iso(2027, 2, 1))   # ... 1 February 2027: nothing in 365 days, Silver
        self.assertEqual(self.k.card(c[0])["tier"]["name"], "Silver")
        rows = ["at,store,receipt,card,kind,sku,category,amount,qty,customer"]
        for i, (card, key, (y, m, d), amount) in enumerate(SALES):
            number = {"c2": c[C2], "c3": c[C3]}.get(card, card)
            rows.append("%s,main,S-%d,%s,sale,X,service,%s,1,%s"
                        % (iso(y, m, d), i, number, amount, key))
        self.clock(iso(2027, 4, 2))
        s, a = self.as_("admin", "POST", "/v1/admin/imports?kind=sales",
                        ("\n".join(rows) + "\n").encode("utf-8"),
                        headers={"Content-Type": "text/csv"})
        self.ok(s, "import")

    def report(self, query, role="auditor"):
        s, d = self.as_(role, "GET", "/v1/admin/reports/customers" + query)
        self.assertEqual(s, 200, self.k.last_raw())
        return d

    def test_the_story(self):
        self.story()
        d = self.report(PERIOD)
        self.assertEqual((d["from"], d["to"], d["store"], d["tier"]),
                         ("2026-01-01", "2027-03-31", None, None))

        # 1. Tiers: six accounts, all Silver now; six "" -> Silver on 1 January
        # (at `from` itself), Silver -> Gold, then Gold -> Silver.
        t = d["tiers"]
        self.assertEqual(t["accounts"], [{"tier": "Silver", "accounts": 6}])
        moves = sorted((m["from"], m["to"], m["direction"], m["moves"]) for m in t["moves"])
        self.assertEqual(moves, [("", "Silver", "up", 6), ("Gold", "Silver", "down", 1),
                                 ("Silver", "Gold", "up", 1)])
        self.assertEqual((t["up"], t["down"]), (7, 1))

        # 2. RFM. Members and (recency days, receipts, spend):
        #   A card 0  (435, 2, 55000)   B card 1 (434, 1, 5000)
        #   C card 2  (30, 3, 20000)    D card 3 (120, 4, 40000)
        #   E X-1     (1, 5, 90000)
        r = d["rfm"]
        rec = {n: days_to_end(*ymd) for n, ymd in (("A", (2026, 1, 20)), ("B", (2026, 1, 21)),
                                                  ("C", (2027, 3, 1)), ("D", (2026, 12, 1)),
                                                  ("E", (2027, 3, 30)))}
        self.assertEqual((rec["A"], rec["B"], rec["C"], rec["D"], rec["E"]), (435, 434, 30, 120, 1))
        self.assertEqual(r["members"], 5)
        # The k-th boundary is the k-th value in ascending order (best last).
        self.assertEqual(r["cutoffs"], {"recency_days": [435, 434, 120, 30],
                                        "frequency": [1, 2, 3, 4],
                                        "monetary_minor": [5000, 20000, 40000, 55000]})
        # Scores (R, F): A (1, 2) lost, B (2, 1) hibernating, C (4, 3)
        # potential loyalist, D (3, 4) loyal, E (5, 5) champion.
        grid = [[0] * 5 for _ in range(5)]
        for rr, ff in ((1, 2), (2, 1), (4, 3), (3, 4), (5, 5)):
            grid[rr - 1][ff - 1] = 1
        self.assertEqual(r["grid"], grid)
        self.assertEqual(r["grid_segments"][4], ["new", "potential_loyalists",
                                                 "potential_loyalists", "champions", "champions"])
        seg = {s["segment"]: s for s in r["segments"]}
        self.assertEqual(len(seg), 11)
        want = {"lost": ("A", 2, 55000), "hibernating": ("B", 1, 5000),
                "potential_loyalists": ("C", 3, 20000), "loyal": ("D", 4, 40000),
                "champions": ("E", 5, 90000)}
        for name, s in seg.items():
            if name not in want:
                self.assertEqual((s["members"], s["revenue_minor"]), (0, 0), name)
                continue
            who, receipts, spend = want[name]
            self.assertEqual((s["members"], s["revenue_minor"], s["mean_recency_days"],
                              s["mean_frequency"], s["mean_monetary_minor"]),
                             (1, spend, rec[who], receipts, spend), name)

        # 3. Cohorts, month 0 = January 2026 (15 months to March 2027):
        # January: cards 0 and 1 registered, both bought that month; February:
        # card 2 (first receipt 10 Feb; again in May and March 2027); March:
        # card 4, registered, never bought; April: card 3 (April, September,
        # December); June: X-1 (June, July, August, January, March).
        co = {c["month"]: c for c in d["cohorts"]}
        self.assertEqual(len(d["cohorts"]), 15)
        self.assertEqual([c["month"] for c in d["cohorts"]][:2], ["2026-01", "2026-02"])

        def active(n, months):
            return [1 if k in months else 0 for k in range(n)]

        self.assertEqual((co["2026-01"]["members"], co["2026-01"]["active"]),
                         (2, [2] + [0] * 14))
        self.assertEqual(co["2026-01"]["share"], [1.0] + [0.0] * 14)
        self.assertEqual((co["2026-02"]["members"], co["2026-02"]["active"]),
                         (1, active(14, {0, 3, 13})))
        self.assertEqual((co["2026-03"]["members"], co["2026-03"]["active"]), (1, [0] * 13))
        self.assertEqual(co["2026-03"]["share"], [0.0] * 13)
        self.assertEqual((co["2026-04"]["members"], co["2026-04"]["active"]),
                         (1, active(12, {0, 5, 8})))
        self.assertEqual((co["2026-05"]["members"], co["2026-05"]["active"]), (0, [0] * 11))
        self.assertEqual((co["2026-06"]["members"], co["2026-06"]["active"]),
                         (1, active(10, {0, 1, 2, 7, 9})))
        self.assertEqual(co["2027-03"]["active"], [0])

        # 4. Before and after joining, 6 months each side: all six joined by
        # 2026-09-30, so each has a whole window after; followed: card 2
        # (K-C2) and X-1 (K-X). Before: K-C2's 100.00 and 140.00 (2025-10-01,
        # 2025-12-01; 2025-01-05 is outside), K-X's 50.00. After: card 2's
        # 60.00 and 70.00 and K-C2's 80.00 without a card; X-1's 100.00,
        # 150.00, 200.00 (2027-01-15 is past the window).
        ba = d["before_after"]
        self.assertEqual((ba["window_months"], ba["members"], ba["followed"]), (6, 6, 2))
        self.assertEqual(ba["before"], {"receipts": 3, "amount_minor": 29000,
                                        "receipts_per_month": 0.25,  # 3 / (2 x 6)
                                        "average_receipt_minor": 9667})  # 29000 / 3
        self.assertEqual(ba["after"], {"receipts": 6, "amount_minor": 66000,
                                       "receipts_per_month": 0.5,
                                       "average_receipt_minor": 11000})
        # A window of 12 months (of 30.44 days): only those who joined by
        # 2026-03-31 have a whole window after (cards 0, 1, 2, 4); followed:
        # card 2. Before: K-C2's 100.00 and 140.00 (2025-01-05 is 13 months
        # before); after: 60.00, 70.00 and K-C2's 80.00 (2027-03-01 is past).
        w = self.report(PERIOD + "&window=12")["before_after"]
        cutoff = END - datetime.timedelta(seconds=12 * MONTH)
        self.assertEqual(cutoff.date(), datetime.date(2026, 3, 31))
        self.assertEqual((w["window_months"], w["members"], w["followed"]), (12, 4, 1))
        self.assertEqual((w["before"]["receipts"], w["before"]["amount_minor"]), (2, 24000))
        self.assertEqual((w["after"]["receipts"], w["after"]["amount_minor"]), (3, 21000))

        # The tier filter: Silver keeps the accounts' members (not X-1).
        s = self.report(PERIOD + "&tier=Silver")
        self.assertEqual(s["tier"], "Silver")
        self.assertEqual(s["rfm"]["members"], 4)
        self.assertEqual({c["month"]: c["members"] for c in s["cohorts"]}["2026-06"], 0)
        self.assertEqual(s["tiers"], t)  # the tiers part is never filtered
        self.assertEqual(self.report(PERIOD + "&tier=Gold")["rfm"]["members"], 0)

        # A store: nobody bought at "north".
        n = self.report(PERIOD + "&store=north")
        self.assertEqual((n["store"], n["rfm"]["members"], n["before_after"]["followed"]),
                         ("north", 0, 2))
        self.assertEqual(n["before_after"]["before"]["receipts"], 0)

        # The CSV: one figure a row.
        s, _ = self.as_("auditor", "GET", "/v1/admin/reports/customers" + PERIOD + "&format=csv")
        self.assertEqual(s, 200)
        self.assertEqual(self.k._client.last_headers.get("Content-Type"),
                         "text/csv; charset=utf-8")
        rows = list(csv.reader(io.StringIO(self.k.last_raw().decode("utf-8"))))
        self.assertEqual(rows[0], ["figure", "key", "sub", "value"])
        self.assertIn(["tier_accounts", "Silver", "", "6"], rows)
        self.assertIn(["tier_move_down", "Gold", "Silver", "1"], rows)
        self.assertIn(["segment_members", "champions", "", "1"], rows)
        self.assertIn(["segment_mean_recency_days", "lost", "", "435.00"], rows)
        self.assertIn(["rfm_grid", "5", "5", "1"], rows)
        self.assertIn(["cohort_members", "2026-01", "", "2"], rows)
        self.assertIn(["cohort_share", "2026-02", "3", "1.0000"], rows)
        self.assertIn(["before_receipts_per_month", "", "", "0.25"], rows)
        self.assertIn(["after_average_receipt_minor", "", "", "11000"], rows)

    def test_refusals(self):
        self.clock("2026-10-05T09:00:00Z")
        for query, field in (("?format=xml", "format"), ("?window=0", "window"),
                             ("?window=25", "window"), ("?window=six", "window"),
                             ("?tier=Platinum", "tier"), ("?from=2023-10-05&to=2026-10-05", "from")):
            s, a = self.as_("auditor", "GET", "/v1/admin/reports/customers" + query)
            self.assertEqual((s, a["error"]["field"]), (400, field), query)
        s, a = self.as_("auditor", "GET", "/v1/admin/reports/customers?tier=Platinum")
        self.assertIn("Silver, Gold", a["error"]["message"])
        s, a = self.as_("cashier", "GET", "/v1/admin/reports/customers")
        self.assertEqual(s, 403)
        self.assertIn("report.read", a["error"]["message"])
        # Nothing yet: 12 months, empty parts, every segment at zero.
        d = self.report("")
        self.assertEqual((d["from"], d["to"], d["rfm"]["members"], len(d["cohorts"])),
                         ("2025-11-01", "2026-10-05", 0, 12))
        self.assertEqual(d["before_after"]["before"]["receipts_per_month"], 0)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
