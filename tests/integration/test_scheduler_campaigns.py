"""
test_scheduler_campaigns.py: a long campaign does not hold up the
scheduler's other work (docs/marketing.md "The run", src/server/scheduler.c)
against a real `kopilka serve`, on SQLite and PostgreSQL
(integration_scheduler_campaigns and its _pg twin): a campaign of one member
a step with a pause runs for seconds; while it runs a customer's lot falls
due (its expiry moved into the past behind the server's back, as the clock
of a test stands still); the lot is expired while the campaign is still
running, and the campaign then ends with every member granted once.

    python3 test_scheduler_campaigns.py --kopilka build/kopilka [unittest options]
"""
import calendar
import time
import unittest

import harness
import test_campaigns
from test_campaigns import Case, wait_for

C = test_campaigns.Campaigns


class Interleave(Case):
    cards = 24
    # The campaigns suite's helpers, not its tests.
    customers, segment, campaign, wait_state, grants = (
        C.customers, C.segment, C.campaign, C.wait_state, C.grants)

    def test_expiry_runs_while_a_long_campaign_is_in_progress(self):
        c = self.k.cards
        self.customers(24)
        self.buy(c[0], "EARN-1", 10000)
        before = self.k.card(c[0])["balance"]
        self.assertGreater(before, 0)
        cid = self.campaign(self.segment())["id"]
        # 24 steps of one member, 250 ms apart: six seconds at the least;
        # two steps a wake-up, so the scheduler looks at expiry in between.
        self.at(self.k.clock, {"KOPILKA_CAMPAIGN_STEP": "1", "KOPILKA_CAMPAIGN_PAUSE_MS": "250",
                               "KOPILKA_CAMPAIGN_WAKE_STEPS": "2"})
        s, _ = self.as_("marketer", "POST", "/v1/admin/campaigns/%d/start" % cid, {})
        self.assertEqual(s, 200, self.k.last_raw())

        def granted():
            return self.as_("marketer", "GET", "/v1/admin/campaigns/%d" % cid)[1]["progress"]["granted"]
        wait_for("a few grants", lambda: granted() >= 2)
        now = calendar.timegm(time.strptime(self.k.clock, "%Y-%m-%dT%H:%M:%SZ"))
        lot = self.k.query("SELECT MIN(id) FROM lots")[0][0]
        self.k.execute("UPDATE lots SET expires_at = ? WHERE id = ?", (now - 60, lot))

        def expired():
            return self.k.query("SELECT remaining FROM lots WHERE id = ?", (lot,))[0][0] == 0
        wait_for("the lot's expiry", expired, timeout=30)
        shown = self.as_("marketer", "GET", "/v1/admin/campaigns/%d" % cid)[1]
        self.assertEqual(shown["state"], "running")
        self.assertLess(shown["progress"]["granted"], 24)
        done = self.wait_state(cid, "done")
        self.assertEqual(done["progress"]["granted"], 24)
        self.assertEqual(len(self.grants()), 24)
        self.assertIn("ok", self.k.cli("verify", "DB").stdout.lower())


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
