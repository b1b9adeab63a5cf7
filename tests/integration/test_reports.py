"""
test_reports.py: the back office's reports (docs/api.md "Reports",
docs/analytics.md "Reports") against a real `kopilka serve`, on the story
of test_office_extras.py's dashboard (three months: purchases at two
stores, a return, a burn, a manual credit, an opening balance that
expires), every figure exact and worked out by hand below, the same on
SQLite and PostgreSQL (integration_reports and its _pg twin):

  - GET /v1/admin/reports/points: issued, burnt, expired, outstanding,
    breakage and redemption rates, the program's cost and its share of
    members' revenue, cost per retained customer, the liability schedule;
    a month alone (a retained customer); a store's figures; the CSV form;
    refusals (format, dates, a cashier).

    python3 test_reports.py --kopilka build/kopilka [unittest options]
"""
import csv
import io
import unittest

import harness
from test_office_extras import Dashboard, OfficeCase


class PointsReport(OfficeCase):
    story = Dashboard.story

    def points(self, query, role="auditor"):
        s, d = self.as_(role, "GET", "/v1/admin/reports/points" + query)
        self.assertEqual(s, 200, self.k.last_raw())
        return d

    def test_figures_of_a_known_story(self):
        self.story()
        d = self.points("?from=2026-09-01&to=2026-11-30")
        self.assertEqual((d["from"], d["to"], d["store"]), ("2026-09-01", "2026-11-30", None))
        # As the dashboard's: issued 1000 + 19 + 1000 - 1000, burnt 20, the
        # opening balance's 50 expired, a credit of 300.
        self.assertEqual((d["issued"], d["burnt"], d["expired"], d["adjusted"],
                          d["outstanding"]), (1019, 20, 50, 300, 1299))
        self.assertEqual((d["minor_per_point"], d["liability_minor"]), (100, 129900))
        # 50 / (50 + 20) = 0.714285...; 20 / 1019 = 0.019627...
        self.assertEqual((d["breakage_rate"], d["redemption_rate"]), (0.7143, 0.0196))
        # Revenue: 10000 + 30000 + 5000 - 5000 (the return); the cost is
        # 20 points x 100 = 2000, 5 % of it.
        self.assertEqual((d["members_revenue_minor"], d["cost_minor"], d["cost_share"]),
                         (40000, 2000, 0.05))
        # Both buyers bought first in the period: nobody retained.
        self.assertEqual((d["buyers"], d["retained"], d["cost_per_retained_minor"]), (2, 0, 0))
        # The schedule, the lots as they are now: the program's regular
        # points never expire; customer 1's 1000 - 20 + 19 joined one lot,
        # customer 2's 300 is the other (the 1000 taken back, the 50 gone).
        self.assertEqual(d["schedule"], [{"kind": "regular", "month": "never", "points": 1299,
                                          "lots": 2}])

        # October alone: customer 1 (first bought in September) is retained.
        d = self.points("?from=2026-10-01&to=2026-10-31")
        self.assertEqual((d["issued"], d["burnt"], d["expired"], d["adjusted"],
                          d["outstanding"]), (19, 20, 0, 300, 1349))
        self.assertEqual((d["buyers"], d["retained"], d["cost_per_retained_minor"]),
                         (2, 1, 2000))
        # 0 / 20; 20 / 19 = 1.05263...; 2000 / 30000 = 0.06666...
        self.assertEqual((d["breakage_rate"], d["redemption_rate"], d["cost_share"]),
                         (0.0, 1.0526, 0.0667))
        self.assertEqual(d["members_revenue_minor"], 30000)

        # The north store: its purchase and its return cancel out; expiries
        # (which have no store) and outstanding are the programme's.
        d = self.points("?from=2026-09-01&to=2026-11-30&store=north", role="manager")
        self.assertEqual(d["store"], "north")
        self.assertEqual((d["issued"], d["burnt"], d["expired"], d["adjusted"],
                          d["outstanding"]), (0, 0, 50, 0, 1299))
        self.assertEqual((d["members_revenue_minor"], d["buyers"], d["retained"]), (0, 1, 0))
        self.assertEqual(d["breakage_rate"], 1.0)

        # The same report as CSV: one figure a row.
        s, _ = self.as_("auditor", "GET",
                        "/v1/admin/reports/points?from=2026-10-01&to=2026-10-31&format=csv")
        self.assertEqual(s, 200)
        self.assertEqual(self.k._client.last_headers.get("Content-Type"),
                         "text/csv; charset=utf-8")
        rows = list(csv.reader(io.StringIO(self.k.last_raw().decode("utf-8"))))
        self.assertEqual(rows[0], ["figure", "kind", "month", "value"])
        figures = {r[0]: r[3] for r in rows[1:] if r[0] != "schedule_points"}
        self.assertEqual(figures["issued"], "19")
        self.assertEqual(figures["outstanding"], "1349")
        self.assertEqual(figures["redemption_rate"], "1.0526")
        self.assertEqual(figures["cost_per_retained_minor"], "2000")
        self.assertEqual(figures["retained"], "1")
        schedule = [r for r in rows[1:] if r[0] == "schedule_points"]
        self.assertEqual(schedule, [["schedule_points", "regular", "never", "1299"]])

    def test_refusals(self):
        self.set_clock("2026-10-05T09:00:00Z")
        for query, field in (("?format=xml", "format"), ("?from=2026-13-01", "from"),
                             ("?from=2026-10-02&to=2026-10-01", "to"),
                             ("?from=2023-10-05&to=2026-10-05", "from")):
            s, a = self.as_("auditor", "GET", "/v1/admin/reports/points" + query)
            self.assertEqual((s, a["error"]["field"]), (400, field), query)
        s, a = self.as_("auditor", "GET", "/v1/admin/reports/points?format=xml")
        self.assertIn("json or csv", a["error"]["message"])
        s, a = self.as_("cashier", "GET", "/v1/admin/reports/points")
        self.assertEqual(s, 403)
        self.assertIn("report.read", a["error"]["message"])
        # Without dates: the 12 calendar months ending today, nothing yet.
        d = self.points("")
        self.assertEqual((d["from"], d["to"], d["issued"], d["schedule"]),
                         ("2025-11-01", "2026-10-05", 0, []))


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
