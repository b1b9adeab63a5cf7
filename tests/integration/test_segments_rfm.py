"""
test_segments_rfm.py: the segment filter's `rfm` member (docs/marketing.md
"The filter") against a real `kopilka serve`, the same on SQLite and
PostgreSQL (integration_segments_rfm and its _pg twin): five customers whose
recency, frequency (and so R and F scores) are each a permutation, as in
test_customers_report.py, so each lands in a known RFM segment; the counts
of filters naming segments, over the default 365 days and over shorter
periods (scored again over the members of that period); the same members
as GET /v1/admin/reports/customers puts in each segment; refusals.

    python3 test_segments_rfm.py --kopilka build/kopilka [unittest options]
"""
import datetime
import unittest

import harness
from test_campaigns import Case

NOW = datetime.datetime(2026, 6, 15, 10, 0, tzinfo=datetime.timezone.utc)


def ago(days):
    return (NOW - datetime.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


class RfmSegments(Case):
    def story(self):
        """Cards 0..4 registered, card 5 registered and never buys. Last
        receipt (days ago) and receipts: A c0 (300, 2), B c1 (250, 1),
        C c2 (50, 3), D c3 (100, 4), E c4 (2, 5). Over 365 days the scores
        (R, F) are A (1, 2) lost, B (2, 1) hibernating, C (4, 3) potential
        loyalist, D (3, 4) loyal, E (5, 5) champion."""
        c = self.k.cards
        self.at(ago(300))
        for i in range(6):
            self.register(c[i], i)
        plan = [(300, 0, 2), (250, 1, 1), (100, 3, 4), (50, 2, 3), (2, 4, 5)]
        for days, card, receipts in plan:
            self.at(ago(days))
            for r in range(receipts):
                self.buy(c[card], "R%d-%d" % (card, r), 1000 * (card + 1))
        self.at(ago(0))

    def test_counts_of_known_segments(self):
        self.story()
        self.assertEqual(self.count({}), 6)
        one = {"champions": 1, "loyal": 1, "potential_loyalists": 1, "hibernating": 1, "lost": 1,
               "new": 0, "promising": 0, "need_attention": 0, "about_to_sleep": 0,
               "at_risk": 0, "cant_lose": 0}
        for name, n in one.items():
            self.assertEqual(self.count({"rfm": {"segments": [name]}}), n, name)
        self.assertEqual(self.count({"rfm": {"segments": list(one)}}), 5)  # not card 5
        self.assertEqual(self.count({"rfm": {"segments": ["champions", "loyal"],
                                             "period_days": 365}}), 2)
        # With the other criteria: champions or loyal with 5 visits in 30 days.
        self.assertEqual(self.count({"rfm": {"segments": ["champions", "loyal"]},
                                     "period": {"days": 30}, "visits": {"min": 5}}), 1)
        # Over 120 days only C, D and E bought; scored among themselves:
        # D (1, 2) lost, C (2, 1) hibernating, E (4, 4) loyal.
        p120 = {"period_days": 120}
        self.assertEqual(self.count({"rfm": dict(p120, segments=["loyal"])}), 1)
        self.assertEqual(self.count({"rfm": dict(p120, segments=["lost", "hibernating"])}), 2)
        self.assertEqual(self.count({"rfm": dict(p120, segments=["champions"])}), 0)
        # Over 5 days E alone: every score 1, lost.
        self.assertEqual(self.count({"rfm": {"segments": ["lost"], "period_days": 5}}), 1)
        self.assertEqual(self.count({"rfm": {"segments": ["champions"], "period_days": 5}}), 0)
        # The customers report of the same 365 days puts one member in each.
        today = NOW.date()
        start = today - datetime.timedelta(days=364)
        s, d = self.as_("admin", "GET", "/v1/admin/reports/customers?from=%s&to=%s"
                        % (start.isoformat(), today.isoformat()))
        self.assertEqual(s, 200, self.k.last_raw())
        seg = {x["segment"]: x["members"] for x in d["rfm"]["segments"]}
        self.assertEqual(seg, one)
        # A saved segment keeps the member.
        s, g = self.as_("marketer", "POST", "/v1/admin/segments",
                        {"name": "Best", "filter": {"rfm": {"segments": ["champions"]}}})
        self.assertEqual(s, 201, self.k.last_raw())

    def test_refusals_name_field_problem_and_allowed(self):
        cases = [
            ({"rfm": {"segments": ["whales"]}}, "filter.rfm.segments", "champions, loyal"),
            ({"rfm": {"segments": []}}, "filter.rfm.segments", "cant_lose"),
            ({"rfm": ["champions"]}, "filter.rfm", "segments"),
            ({"rfm": {"segments": ["lost"], "colour": 1}}, "filter.rfm", "period_days"),
            ({"rfm": {"segments": ["lost"], "period_days": 0}}, "filter.rfm.period_days",
             "1 to 1095"),
        ]
        for flt, field, allowed in cases:
            s, a = self.as_("marketer", "POST", "/v1/admin/segments/preview", {"filter": flt})
            self.assertEqual((s, a["error"]["field"]), (400, field), flt)
            self.assertIn(allowed, a["error"]["message"], flt)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
