"""
test_members_report.py: GET /v1/admin/reports/members (docs/api.md
"Reports", docs/analytics.md "The members report") against a real `kopilka
serve`, the same on SQLite and PostgreSQL (integration_members_report and
its _pg twin):

  - the known answer: `kopilka history generate` (a few thousand
    customers), its cards and sales imported, and the report over the
    history's span gives the four figures the generator measured (and
    test_history_gen.figures() computes again from the CSV);
  - a small story built by hand, every figure worked out below: purchases
    at the tills with a card, imported sales with a known card, with an
    unknown card, without a card with and without a customer key, a till's
    sale without a card, a return (not subtracted), receipts before the
    period (figure 4); the store and tier filters; the CSV form; the
    points report's total revenue beside the members' one; refusals.

    python3 test_members_report.py --kopilka build/kopilka [unittest options]
"""
import csv
import datetime
import io
import os
import re
import unittest

import harness
from test_history_gen import figures, read_sales
from test_office_extras import OfficeCase

LABOR = "labor"


class MembersReport(OfficeCase):
    def members(self, query, role="auditor"):
        s, d = self.as_(role, "GET", "/v1/admin/reports/members" + query)
        self.assertEqual(s, 200, self.k.last_raw())
        return d

    def import_sales(self, text):
        path = os.path.join(self.k.dir, "sales-%d.csv" % len(text))
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        self.k.cli("import", "DB", "--sales", path)

    def sale(self, receipt, amount, card=None, store_key=None):
        body = {"receipt": receipt, "lines": [{"sku": "LAB-1", "category": LABOR,
                                               "amount": amount}]}
        if card:
            body["card"] = card
        s, a = self.k.call("POST", "/v1/purchases", body, key=store_key or self.k.key)
        self.assertIn(s, (200, 201), self.k.last_raw())
        return a

    # ------------------------------------------------------------------
    def test_known_answer_of_a_generated_history(self):
        out = os.path.join(self.k.dir, "history.csv")
        cards = os.path.join(self.k.dir, "history-cards.csv")
        p = harness.run_cli(["history", "generate", "--seed", "12", "--members", "400",
                             "--non-members", "1600", "--months", "24", "--start", "2024-01-01",
                             "--out", out, "--cards-out", cards], timeout=300)
        printed = p.stdout
        self.k.cli("import", "DB", "--cards", cards)
        self.k.cli("import", "DB", "--sales", out)
        _, rows = read_sales(out)
        ratio, top, idle_share, idle_rev, recent = figures(rows, datetime.date(2024, 1, 1), 24)

        d = self.members("?from=2024-01-01&to=2025-12-31")
        self.assertEqual((d["from"], d["to"], d["store"], d["tier"], d["recent_since"]),
                         ("2024-01-01", "2025-12-31", None, None, "2025-01-01"))
        # Exactly what the CSV says, to the report's 4 decimals.
        self.assertAlmostEqual(d["average_receipt_ratio"], ratio, delta=0.00006)
        self.assertAlmostEqual(d["top_share"], top, delta=0.00006)
        self.assertAlmostEqual(d["idle_share"], idle_share, delta=0.00006)
        self.assertAlmostEqual(d["idle_revenue_share"], idle_rev, delta=0.00006)
        self.assertAlmostEqual(d["recent_share"], recent, delta=0.00006)
        # And what the generator printed, within docs/analytics.md's
        # tolerances (0.5 % of the ratio, 0.5 points of a share).
        def said(pattern):
            m = re.search(pattern, printed)
            self.assertIsNotNone(m, printed)
            return float(m.group(1))
        g_ratio = said(r"non-members': ([0-9.]+) \(target")
        g_top = said(r"by spend: ([0-9.]+)% of their revenue")
        g_idle = said(r"almost nothing: ([0-9.]+)% of members")
        g_idle_rev = said(r"\), ([0-9.]+)% of members' revenue")
        g_recent = said(r"last 12 months: ([0-9.]+)%")
        self.assertAlmostEqual(d["average_receipt_ratio"], g_ratio, delta=g_ratio * 0.005)
        self.assertAlmostEqual(d["top_share"] * 100, g_top, delta=0.5)
        self.assertAlmostEqual(d["idle_share"] * 100, g_idle, delta=0.5)
        self.assertAlmostEqual(d["idle_revenue_share"] * 100, g_idle_rev, delta=0.5)
        self.assertAlmostEqual(d["recent_share"] * 100, g_recent, delta=0.5)
        # The seeds' claims, as the generator builds them.
        self.assertAlmostEqual(d["average_receipt_ratio"], 2.6, delta=2.6 * 0.005)
        self.assertAlmostEqual(d["top_share"], 0.25, delta=0.005)
        self.assertAlmostEqual(d["idle_share"], 0.37, delta=0.005)
        self.assertAlmostEqual(d["idle_revenue_share"], 0.06, delta=0.005)
        self.assertAlmostEqual(d["recent_share"], 0.70, delta=0.005)
        # Every customer is in the history, every non-member followed by key.
        self.assertEqual((d["members"], d["members_before"], d["followed_customers"],
                          d["top_customers"]), (400, 400, 1600, 160))
        self.assertEqual((d["unfollowed_receipts"], d["followed_receipts_share"]), (0, 1.0))
        self.assertEqual(d["total_revenue_minor"],
                         d["member_revenue_minor"] + d["nonmember_revenue_minor"])
        self.assertFalse(d["returns_subtracted"])

    # ------------------------------------------------------------------
    def story(self):
        """Members (cards of the harness: c0..c3, and ZZ-1 nobody knows):
          2025-08-01  c2 buys 7000 at main (before the 12 months)
          2026-01-15  c3 buys 9000 at main (recent, before the period)
          2026-10-05  c0 buys 10000 and 30000 at main, c1 5000 at north;
                      a till's sale without a card, 600 at main
        imported: c0 20000 at main, ZZ-1 4000 at north; without a card
        K1 1000 + 3000 (the 3000 returned), K2 2000, K4 8000, K5 700 at
        main, K3 500 at north, two without a key (1500 main, 2500 north),
        and K2 9999 in September (before the period)."""
        c = self.k.cards
        north = self.k.terminal_add("north")
        self.set_clock("2025-08-01T10:00:00Z")
        self.sale("P-C2", 7000, card=c[2])
        self.set_clock("2026-01-15T10:00:00Z")
        self.sale("P-C3", 9000, card=c[3])
        self.set_clock("2026-10-05T10:00:00Z")
        self.sale("A1", 10000, card=c[0])
        self.sale("A2", 30000, card=c[0])
        self.sale("N1", 5000, card=c[1], store_key=north)
        self.sale("T1", 600)
        rows = [
            ("2026-10-01 12:00:00", "main", "S1", c[0], "sale", 20000, ""),
            ("2026-10-02 12:00:00", "north", "S2", "ZZ-1", "sale", 4000, ""),
            ("2026-10-02 13:00:00", "main", "K1-1", "", "sale", 1000, "K1"),
            ("2026-10-03 13:00:00", "main", "K1-2", "", "sale", 3000, "K1"),
            ("2026-10-04 13:00:00", "main", "K1-2", "", "return", 3000, "K1"),
            ("2026-10-03 14:00:00", "main", "K2-1", "", "sale", 2000, "K2"),
            ("2026-09-20 14:00:00", "main", "K2-0", "", "sale", 9999, "K2"),
            ("2026-10-06 14:00:00", "north", "K3-1", "", "sale", 500, "K3"),
            ("2026-10-07 14:00:00", "main", "K4-1", "", "sale", 8000, "K4"),
            ("2026-10-08 14:00:00", "main", "K5-1", "", "sale", 700, "K5"),
            ("2026-10-09 15:00:00", "main", "U1", "", "sale", 1500, ""),
            ("2026-10-10 15:00:00", "north", "U2", "", "sale", 2500, ""),
        ]
        text = "at,store,receipt,card,kind,sku,category,amount,qty,customer\n"
        for at, store, receipt, card, kind, amount, customer in rows:
            text += "%s,%s,%s,%s,%s,LAB-1,labor,%d.%02d,1,%s\n" % (
                at, store, receipt, card, kind, amount // 100, amount % 100, customer)
        self.import_sales(text)
        self.set_clock("2026-11-02T10:00:00Z")

    def test_figures_of_a_known_story(self):
        self.story()
        d = self.members("?from=2026-10-01&to=2026-10-31")
        self.assertEqual(d["recent_since"], "2025-11-01")
        # Members in October: c0 (10000 + 30000 + the imported 20000: one
        # account, 3 receipts), c1 (5000), ZZ-1 (4000, its card alone).
        self.assertEqual((d["members"], d["member_receipts"], d["member_revenue_minor"],
                          d["member_average_receipt_minor"]), (3, 5, 69000, 13800))
        # Non-members: K1 1000 + 3000 (the return not subtracted), K2 2000,
        # K3 500, K4 8000, K5 700, 1500 and 2500 without a key, the till's
        # 600: 9 receipts, 19800, an average of 2200.
        self.assertEqual((d["nonmember_receipts"], d["nonmember_revenue_minor"],
                          d["nonmember_average_receipt_minor"]), (9, 19800, 2200))
        # (1) 13800 / 2200 = 6.2727...
        self.assertEqual(d["average_receipt_ratio"], 6.2727)
        # Followed: 6 receipts of 5 keys, 15200; not followed: 3, 4600.
        self.assertEqual((d["followed_receipts"], d["followed_revenue_minor"],
                          d["followed_customers"], d["unfollowed_receipts"],
                          d["unfollowed_revenue_minor"]), (6, 15200, 5, 3, 4600))
        self.assertEqual((d["followed_receipts_share"], d["followed_revenue_share"]),
                         (0.6667, 0.7677))
        # (2) round(5 / 10) = 1 top customer, K4: 8000 / 15200 = 0.5263.
        self.assertEqual((d["top_customers"], d["top_revenue_minor"], d["top_threshold_minor"],
                          d["top_share"]), (1, 8000, 8000, 0.5263))
        # (3) one receipt of at most 13800: c1 and ZZ-1, 9000 of 69000.
        self.assertEqual((d["idle_members"], d["idle_revenue_minor"], d["idle_share"],
                          d["idle_revenue_share"]), (2, 9000, 0.6667, 0.1304))
        # (4) before the end of October: c0, c1, ZZ-1, c2, c3; since
        # 2025-11-01 all but c2.
        self.assertEqual((d["members_before"], d["members_recent"], d["recent_share"]),
                         (5, 4, 0.8))
        self.assertEqual((d["total_receipts"], d["total_revenue_minor"]), (14, 88800))

        # The main store: c0 alone in October (3 receipts, not idle); c2
        # and c3 bought there before. Non-members: K1 1000 + 3000, K2, K4,
        # K5, 1500, the till's 600: 7 receipts, 16800; 4 keys, no top.
        d = self.members("?from=2026-10-01&to=2026-10-31&store=main", role="manager")
        self.assertEqual(d["store"], "main")
        self.assertEqual((d["members"], d["member_receipts"], d["member_revenue_minor"]),
                         (1, 3, 60000))
        self.assertEqual((d["nonmember_receipts"], d["nonmember_revenue_minor"],
                          d["followed_customers"], d["top_customers"], d["top_share"]),
                         (7, 16800, 4, 0, 0.0))
        self.assertEqual(d["average_receipt_ratio"], 8.3333)  # 20000 / 2400
        self.assertEqual((d["idle_members"], d["idle_share"]), (0, 0.0))
        self.assertEqual((d["members_before"], d["members_recent"], d["recent_share"]),
                         (3, 2, 0.6667))

        # Gold: c0's account only; the non-members stay all of them.
        ((acc,),) = self.k.query("SELECT account_id FROM cards WHERE number = ?",
                                 (self.k.cards[0],))
        self.k.execute("INSERT INTO account_rules(account_id, tier, tier_since) "
                       "VALUES (?, 'gold', 0) ON CONFLICT (account_id) DO UPDATE "
                       "SET tier = 'gold'", (acc,))
        d = self.members("?from=2026-10-01&to=2026-10-31&tier=gold")
        self.assertEqual(d["tier"], "gold")
        self.assertEqual((d["members"], d["member_receipts"], d["member_revenue_minor"],
                          d["nonmember_receipts"], d["nonmember_revenue_minor"]),
                         (1, 3, 60000, 9, 19800))
        self.assertEqual(d["average_receipt_ratio"], 9.0909)  # 20000 / 2200
        self.assertEqual((d["members_before"], d["members_recent"], d["idle_members"]),
                         (1, 1, 0))
        d = self.members("?from=2026-10-01&to=2026-10-31&tier=silver")
        self.assertEqual((d["members"], d["members_before"], d["average_receipt_ratio"],
                          d["nonmember_receipts"]), (0, 0, 0.0, 9))

        # September: K2's 9999 alone, nobody's card.
        d = self.members("?from=2026-09-01&to=2026-09-30")
        self.assertEqual((d["members"], d["nonmember_receipts"], d["followed_customers"],
                          d["top_customers"], d["top_share"]), (0, 1, 1, 0, 0.0))
        # Before September only c2 and c3 had bought; c3 within 12 months.
        self.assertEqual((d["members_before"], d["members_recent"]), (2, 1))

        # CSV: one figure a row.
        s, _ = self.as_("auditor", "GET",
                        "/v1/admin/reports/members?from=2026-10-01&to=2026-10-31&format=csv")
        self.assertEqual(s, 200)
        self.assertEqual(self.k._client.last_headers.get("Content-Type"),
                         "text/csv; charset=utf-8")
        rows = list(csv.reader(io.StringIO(self.k.last_raw().decode("utf-8"))))
        self.assertEqual(rows[0], ["figure", "value"])
        got = dict(rows[1:])
        self.assertEqual((got["average_receipt_ratio"], got["top_share"], got["idle_share"],
                          got["recent_share"], got["total_revenue_minor"]),
                         ("6.2727", "0.5263", "0.6667", "0.8000", "88800"))

        # The points report: members' revenue is the ledger's (45000 in
        # October); the total adds the sales without a card less their
        # return: 19800 - 3000.
        s, p = self.as_("auditor", "GET", "/v1/admin/reports/points?from=2026-10-01&to=2026-10-31")
        self.assertEqual(s, 200)
        self.assertEqual((p["members_revenue_minor"], p["total_revenue_minor"]), (45000, 61800))
        self.assertEqual(p["cost_share_of_total"],
                         round(p["cost_minor"] / 61800 + 1e-12, 4))

    def test_refusals(self):
        self.set_clock("2026-10-05T09:00:00Z")
        for query, field in (("?format=xml", "format"), ("?from=2026-13-01", "from"),
                             ("?from=2026-10-02&to=2026-10-01", "to"),
                             ("?from=2023-10-05&to=2026-10-05", "from"),
                             ("?tier=" + "g" * 300, "tier")):
            s, a = self.as_("auditor", "GET", "/v1/admin/reports/members" + query)
            self.assertEqual((s, a["error"]["field"]), (400, field), query)
        s, a = self.as_("cashier", "GET", "/v1/admin/reports/members")
        self.assertEqual(s, 403)
        self.assertIn("report.read", a["error"]["message"])
        d = self.members("")
        self.assertEqual((d["from"], d["to"], d["members"], d["average_receipt_ratio"]),
                         ("2025-11-01", "2026-10-05", 0, 0.0))


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
