"""
test_campaign_view.py: a large campaign's view answers in seconds
(docs/marketing.md "Results"): 30 000 imported customers, a campaign over
every one of them run to its end by the scheduler, then the campaign's
view (`GET /v1/admin/campaigns/{id}`), its results and `kopilka campaign
show` each answer within VIEW_SECONDS, with "points used" counting the
premium points a member then spends at a till (the member's lot is kept
with the member, so the view joins lots by primary key, never a scan of
lots a member). Run on SQLite and PostgreSQL (integration_campaign_view
and its _pg twin, with 3 000 members).

    python3 test_campaign_view.py --kopilka build/kopilka [unittest options]
"""
import json
import os
import time
import unittest

import campaign_fixture
import harness

# On PostgreSQL, 3 000: the import and the grants (several round trips
# each) of 30 000 take minutes under ASan there; its 30 000 figure is in
# docs/marketing.md "Results".
MEMBERS = int(os.environ.get("KOPILKA_TEST_VIEW_MEMBERS",
                             "3000" if os.environ.get("KOPILKA_TEST_STORE") == "pg" else "30000"))
VIEW_SECONDS = 10.0


class CampaignView(unittest.TestCase):
    def timed(self, k, what, path, token):
        """GET path, answered 200 within VIEW_SECONDS."""
        t0 = time.monotonic()
        s, x = k.call("GET", path, key=token)
        took = time.monotonic() - t0
        self.assertEqual(s, 200, k.last_raw())
        print("%s of %d members: %.2f s" % (what, MEMBERS, took))
        self.assertLess(took, VIEW_SECONDS)
        return x

    def test_the_view_of_a_large_campaign_answers_in_seconds(self):
        k = harness.Kopilka(cards=0)
        self.addCleanup(k.close)
        took = campaign_fixture.customers(k, MEMBERS, "CV")
        print("imported %d customers: %.1f s" % (MEMBERS, took))
        token = campaign_fixture.start(k, {"KOPILKA_CAMPAIGN_STEP": "10000"})
        s, g = k.call("POST", "/v1/admin/segments", {"name": "all", "filter": {}}, key=token)
        self.assertEqual(s, 201, k.last_raw())
        s, c = k.call("POST", "/v1/admin/campaigns", {
            "name": "Big", "segment": g["id"],
            "grant": {"kind": "premium", "points": 500, "validity_days": 30}}, key=token)
        self.assertEqual(s, 201, k.last_raw())
        cid = c["id"]
        s, _ = k.call("POST", "/v1/admin/campaigns/%d/start" % cid, {}, key=token)
        self.assertEqual(s, 200, k.last_raw())
        t0 = time.monotonic()
        deadline = t0 + float(os.environ.get("KOPILKA_TEST_VIEW_WAIT", "240"))
        while True:
            # The campaign's state without its figures (the list route).
            s, lst = k.call("GET", "/v1/admin/campaigns", key=token)
            self.assertEqual(s, 200, k.last_raw())
            if [x["state"] for x in lst["campaigns"] if x["id"] == cid] == ["done"]:
                break
            if time.monotonic() > deadline:
                with open(k.log, errors="replace") as f:
                    self.fail("campaign not done: %r ...%s" % (lst, f.read()[-2000:]))
            time.sleep(0.5)
        print("campaign of %d members run: %.1f s" % (MEMBERS, time.monotonic() - t0))
        # A member spends 300 of the campaign's premium points at a till.
        s, a = k.call("POST", "/v1/purchases",
                      {"card": "CV00000007", "receipt": "view-1",
                       "lines": [{"sku": "L", "category": "labor", "amount": 600000}],
                       "burn": 300})
        self.assertEqual(s, 201, k.last_raw())
        spent = a["burned"]
        self.assertGreater(spent, 0, k.last_raw())

        x = self.timed(k, "view", "/v1/admin/campaigns/%d" % cid, token)
        self.assertEqual(x["progress"]["members"], MEMBERS)
        self.assertEqual(x["progress"]["granted"], MEMBERS)
        r = self.timed(k, "results", "/v1/admin/campaigns/%d/results" % cid, token)
        self.assertEqual(r["points"], 500 * MEMBERS)
        self.assertEqual(r["points_used"], spent)
        k.stop()
        t0 = time.monotonic()
        shown = json.loads(k.cli("campaign", "show", "DB", str(cid)).stdout)
        took = time.monotonic() - t0
        print("campaign show: %.2f s" % took)
        self.assertLess(took, VIEW_SECONDS)
        self.assertEqual(shown["progress"]["granted"], MEMBERS)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
