"""
test_campaign_start.py: a campaign's start written in chunks
(docs/marketing.md "The run"), the same on SQLite and PostgreSQL
(integration_campaign_start and its _pg twin):

  - the segment is evaluated on the scheduler's read connection, not in
    the writer: the audit entry of the start says "evaluated=reader";
  - a start throttled to chunks of 2 members (KOPILKA_CAMPAIGN_START_CHUNK,
    KOPILKA_CAMPAIGN_PAUSE_MS) and killed with kill -9 while `starting`
    leaves a part of the list and no grant; after a restart the start is
    redone from scratch (the part removed, the list written again, a new
    attempt), every member gets exactly one grant, and `verify` holds.

    python3 test_campaign_start.py --kopilka build/kopilka [unittest options]
"""
import time
import unittest

import campaign_fixture
import harness

CUSTOMERS = 40


def wait_for(what, pred, timeout=60):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


class CampaignStart(unittest.TestCase):
    def setUp(self):
        self.k = harness.Kopilka(cards=0)
        self.addCleanup(self.k.close)
        campaign_fixture.customers(self.k, CUSTOMERS, "CT")

    def start(self, env):
        self.token = campaign_fixture.start(self.k, env)

    def call(self, method, path, body=None):
        return self.k.call(method, path, body, key=self.token)

    def state(self, cid):
        s, lst = self.call("GET", "/v1/admin/campaigns")
        self.assertEqual(s, 200, self.k.last_raw())
        return [x["state"] for x in lst["campaigns"] if x["id"] == cid][0]

    def one(self, sql):
        return self.k.query(sql)[0][0]

    def test_kill9_while_starting_redoes_the_start_once(self):
        self.start({"KOPILKA_CAMPAIGN_START_CHUNK": "2", "KOPILKA_CAMPAIGN_PAUSE_MS": "500"})
        s, g = self.call("POST", "/v1/admin/segments", {"name": "all", "filter": {}})
        self.assertEqual(s, 201, self.k.last_raw())
        s, c = self.call("POST", "/v1/admin/campaigns", {
            "name": "Chunks", "segment": g["id"],
            "grant": {"kind": "premium", "points": 500, "validity_days": 30}})
        self.assertEqual(s, 201, self.k.last_raw())
        cid = c["id"]
        s, _ = self.call("POST", "/v1/admin/campaigns/%d/start" % cid, {})
        self.assertEqual(s, 200, self.k.last_raw())
        members = "SELECT COUNT(*) FROM campaign_members WHERE campaign_id = %d" % cid
        # Starting, with a part of the list written (a few chunks of 2).
        wait_for("a part of the list",
                 lambda: self.state(cid) == "starting" and self.one(members) >= 6)
        self.k.kill9()
        part = self.one(members)
        self.assertLess(part, CUSTOMERS)
        self.assertEqual(self.one("SELECT state FROM campaigns WHERE id = %d" % cid), 5)
        grants = ("SELECT COUNT(*) FROM ops WHERE type = 6 AND receipt LIKE 'campaign/%d/%%'"
                  % cid)
        self.assertEqual(self.one(grants), 0)  # a half list never runs
        self.assertEqual(self.one("SELECT COUNT(*) FROM audit WHERE action = 'campaign.run'"), 0)

        self.start({})
        wait_for("the campaign done", lambda: self.state(cid) == "done")
        self.assertEqual(self.one(members), CUSTOMERS)
        rows = self.k.query("SELECT account_id, COUNT(*) FROM ops WHERE type = 6 "
                            "AND receipt LIKE 'campaign/%d/%%' GROUP BY account_id" % cid)
        self.assertEqual(len(rows), CUSTOMERS)
        self.assertTrue(all(n == 1 for _, n in rows), rows)
        # One start recorded, its list evaluated on the read connection,
        # under the second attempt (the job state's cursor).
        runs = self.k.query("SELECT detail FROM audit WHERE action = 'campaign.run'")
        self.assertEqual(runs, [("members=%d evaluated=reader" % CUSTOMERS,)])
        self.assertEqual(self.one("SELECT cursor FROM job_state WHERE job = 'campaign:%d'" % cid),
                         2)
        s, x = self.call("GET", "/v1/admin/campaigns/%d" % cid)
        self.assertEqual((x["progress"]["members"], x["progress"]["granted"]),
                         (CUSTOMERS, CUSTOMERS))
        self.k.stop()
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
