"""
test_campaign_rules.py: a campaign's grant by a program rule, and a
campaign's used points told apart as spent and expired (docs/marketing.md
"A campaign" and "Results"), against a real `kopilka serve`, the same on
SQLite and PostgreSQL (integration_campaign_rules and its _pg twin):

  - a grant rule on "campaign" with points_by_tier, and one with
    percent_of_spend: each member's amount worked out by hand from their
    tier (set by the scheduler's tier review) and their spend; a member
    the rule gives 0 is skipped, saying why; the preview's distribution
    is what the run grants; a budget with varying amounts;
  - the refusals (unknown rule, a rule not on "campaign", both points and
    a rule), each naming the field;
  - the program version pinned at the start: a new version with other
    amounts loaded half way, the server killed with kill -9, the run
    resumed: every member granted exactly once, at the first version's
    amounts;
  - spent and expired: members spend part of the campaign's points at a
    till, the rest expires: points_spent and points_expired by hand, and
    an old database (lots.expired absent, as made before the column)
    reads 0 expired for the expiries before the upgrade.

    python3 test_campaign_rules.py --kopilka build/kopilka [unittest options]
"""
import json
import os
import unittest

import harness
from test_campaigns import wait_for

WAIT = 120  # seconds: a scheduler's tick under ASan on a loaded machine

PASSWORD = "correct horse battery"
CONSENT = {"given": True, "text_version": "2026-01"}

TIER_RULE = {"id": "vip-campaign", "kind": "grant", "on": "campaign", "point_kind": "premium",
             "points_by_tier": {"Gold": 1000, "Silver": 500}, "ttl_days": 30}
SPEND_RULE = {"id": "spend-back", "kind": "grant", "on": "campaign", "point_kind": "premium",
              "percent_of_spend": "2.5", "spend_days": 90, "points_max": 120}


def program(directory, gold=1000, name="program-rules.json"):
    with open(harness.program_file(), "rb") as f:
        doc = json.load(f)
    doc["customers"] = {"unregistered": {"earn": True, "burn": True},
                        "consent_version": "2026-01"}
    doc["tiers"] = {"window_days": 365, "review_months": 1,
                    "levels": [{"name": "Silver", "min_spend": 100000},
                               {"name": "Gold", "min_spend": 500000}]}
    tier_rule = dict(TIER_RULE, points_by_tier={"Gold": gold, "Silver": 500})
    doc["rules"] = doc["rules"] + [tier_rule, SPEND_RULE]
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


class Case(unittest.TestCase):
    def setUp(self):
        self.k = harness.Kopilka(cards=6)
        self.addCleanup(self.k.close)
        harness.run_cli(["program", "load", self.k.db, program(self.k.dir)])
        pw = os.path.join(self.k.dir, "password")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        harness.run_cli(["staff", "add", self.k.db, "--login", "m", "--role", "marketer",
                         "--password-file", pw])
        self.at("2026-05-20T10:00:00Z")

    def at(self, when, env=None):
        """(Re)starts the server with its clock at `when`."""
        if self.k.proc is not None:
            self.k.stop()
        self.k.clock = when
        self.start(env)

    def start(self, env=None):
        saved = dict(os.environ)
        os.environ.update(env or {})
        try:
            self.k.start(serve_args=["--tick", "1"])
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self.token = self.k.staff_token("m", PASSWORD)

    def call(self, method, path, body=None):
        return self.k.call(method, path, body, key=self.token)

    def register(self, card, n):
        s, a = self.k.call("POST", "/v1/customers",
                           {"card": card, "full_name": "Customer %d" % n,
                            "phone": "+38050124%04d" % n, "consent": CONSENT})
        self.assertEqual(s, 201, self.k.last_raw())
        return a["customer"]["id"] if "customer" in a else a["id"]

    def buy(self, card, receipt, amount, burn=0):
        body = {"card": card, "receipt": receipt,
                "lines": [{"sku": "L", "category": "labor", "amount": amount}]}
        if burn:
            body["burn"] = burn
        s, a = self.k.call("POST", "/v1/purchases", body)
        self.assertEqual(s, 201, self.k.last_raw())
        return a

    def tiered(self):
        """Five customers (cards 0..4) who bought on 2026-05-20: 6 000,
        2 000, nothing, 7 000 and 1 500 roubles. The review of 2026-06-01
        (the server restarted on 2026-06-15) makes them Gold, Silver, none,
        Gold, Silver."""
        c = self.k.cards
        self.ids = [self.register(c[i], i) for i in range(5)]
        for i, amount in ((0, 600000), (1, 200000), (3, 700000), (4, 150000)):
            self.buy(c[i], "r-%d" % i, amount)
        self.at("2026-06-15T10:00:00Z")
        want = ["Gold", "Silver", None, "Gold", "Silver"]

        def reviewed():
            got = [(self.k.card(c[i]).get("tier") or {}).get("name") for i in range(5)]
            return got == want
        wait_for("the tier review", reviewed, WAIT)

    def segment(self):
        s, g = self.call("POST", "/v1/admin/segments", {"name": "all", "filter": {}})
        self.assertEqual(s, 201, self.k.last_raw())
        return g["id"]

    def campaign(self, seg, grant, **more):
        body = {"name": "Tiers", "segment": seg, "grant": grant}
        body.update(more)
        s, c = self.call("POST", "/v1/admin/campaigns", body)
        self.assertEqual(s, 201, self.k.last_raw())
        return c

    def wait_state(self, cid, state):
        def done():
            return self.call("GET", "/v1/admin/campaigns/%d" % cid)[1]["state"] == state
        wait_for("campaign %d %s" % (cid, state), done, WAIT)
        return self.call("GET", "/v1/admin/campaigns/%d" % cid)[1]

    def granted(self, cid):
        """{card index: points} of the campaign's grant operations."""
        rows = self.k.query("SELECT o.account_id, COUNT(*), SUM(o.points), MIN(o.detail) "
                            "FROM ops o WHERE o.type = 6 AND o.receipt LIKE ? "
                            "GROUP BY o.account_id", ("campaign/%d/%%" % cid,))
        accounts = {self.k.query("SELECT account_id FROM cards WHERE number = ?",
                                 (self.k.cards[i],))[0][0]: i for i in range(5)}
        out = {}
        for account, n, points, detail in rows:
            self.assertEqual(n, 1, rows)
            out[accounts[account]] = points
            self.details.append(detail)
        return out

    def verify(self):
        self.k.stop()
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)


class ByRule(Case):
    def setUp(self):
        super().setUp()
        self.details = []

    def test_tiers_and_spend_by_hand(self):
        self.tiered()
        seg = self.segment()
        # Refusals, each naming the field and what is allowed.
        for grant, field, text in (
                ({"rule": "no-such"}, "grant.rule", "vip-campaign, spend-back"),
                ({"rule": "birthday-2000"}, "grant.rule", "grant on another event"),
                ({"rule": "earn-labor-4"}, "grant.rule", "not a grant rule"),
                ({"rule": "vip-campaign", "points": 5}, "grant.points", "not both")):
            s, a = self.call("POST", "/v1/admin/campaigns",
                             {"name": "Bad", "segment": seg, "grant": grant})
            self.assertEqual((s, a["error"]["field"]), (400, field), a)
            self.assertIn(text, a["error"]["message"])
        # An event from outside never grants a campaign's rule.
        s, a = self.k.call("POST", "/v1/events", {"id": "e1", "card": self.k.cards[0],
                                                  "type": "campaign"})
        self.assertNotEqual(s, 201, self.k.last_raw())

        # By tier: Gold 1000, Silver 500, no tier 0 (skipped).
        c = self.campaign(seg, {"rule": "vip-campaign"})
        self.assertEqual(c["grant"], {"rule": "vip-campaign", "kind": "premium",
                                      "program_version": 0})
        s, p = self.call("POST", "/v1/admin/campaigns/%d/preview" % c["id"])
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual((p["grants"], p["points"]), (4, 3000))
        self.assertEqual(p["cost_minor"], 3000 * p["minor_per_point"])
        d = p["distribution"]
        self.assertEqual((d["members"], d["min"], d["median"], d["max"], d["zero"]),
                         (4, 500, 750, 1000, 1))
        self.assertIn("tier none", d["zero_why"])
        s, _ = self.call("POST", "/v1/admin/campaigns/%d/start" % c["id"], {})
        self.assertEqual(s, 200, self.k.last_raw())
        done = self.wait_state(c["id"], "done")
        self.assertEqual((done["progress"]["granted"], done["progress"]["skipped"]), (4, 1))
        self.assertEqual(done["granted"], 3000)
        self.assertIn("tier none", done["note"])
        version = done["grant"]["program_version"]
        self.assertGreater(version, 0)
        self.assertEqual(self.granted(c["id"]), {0: 1000, 1: 500, 3: 1000, 4: 500})
        self.assertTrue(all("rule vip-campaign on campaign" in x for x in self.details),
                        self.details)
        # Valid 30 days from the grant: the rule's ttl_days.
        exp = self.k.query("SELECT DISTINCT l.expires_at - o.at FROM lots l JOIN ops o "
                           "ON o.id = l.op_id WHERE o.receipt LIKE ?", ("campaign/%d/%%" % c["id"],))
        self.assertEqual(exp, [(30 * 86400,)])

        # By spend: 2.5 % of the last 90 days' spend in points (1 point = 100
        # minor units), rounded down, at most 120: 6 000 roubles -> 150 ->
        # 120; 2 000 -> 50; none -> 0; 7 000 -> 175 -> 120; 1 500 -> 37.5 -> 37.
        c2 = self.campaign(seg, {"rule": "spend-back"}, name="Spend")
        s, p = self.call("POST", "/v1/admin/campaigns/%d/preview" % c2["id"])
        self.assertEqual((p["grants"], p["points"]), (4, 327))
        self.assertEqual((p["distribution"]["min"], p["distribution"]["median"],
                          p["distribution"]["max"]), (37, 85, 120))
        self.call("POST", "/v1/admin/campaigns/%d/start" % c2["id"], {})
        self.wait_state(c2["id"], "done")
        self.assertEqual(self.granted(c2["id"]), {0: 120, 1: 50, 3: 120, 4: 37})

        # A budget of 2000 with varying amounts, in customer order: 1000,
        # 500, (skipped), 1000 would pass it (budget), 500 still fits.
        c3 = self.campaign(seg, {"rule": "vip-campaign"}, name="Budget", budget=2000)
        s, p = self.call("POST", "/v1/admin/campaigns/%d/preview" % c3["id"])
        self.assertEqual((p["grants"], p["points"], p["over_budget"]), (3, 2000, 1))
        self.call("POST", "/v1/admin/campaigns/%d/start" % c3["id"], {})
        done = self.wait_state(c3["id"], "done")
        pr = done["progress"]
        self.assertEqual((pr["granted"], pr["budget"], pr["skipped"], done["granted"]),
                         (3, 1, 1, 2000))
        self.assertEqual(self.granted(c3["id"]), {0: 1000, 1: 500, 4: 500})
        self.verify()

    def test_pinned_version_and_kill9_resume(self):
        self.tiered()
        seg = self.segment()
        c = self.campaign(seg, {"rule": "vip-campaign"})
        self.at(self.k.clock, {"KOPILKA_CAMPAIGN_STEP": "1", "KOPILKA_CAMPAIGN_PAUSE_MS": "1500"})
        s, _ = self.call("POST", "/v1/admin/campaigns/%d/start" % c["id"], {})
        self.assertEqual(s, 200, self.k.last_raw())

        def some():
            return self.call("GET", "/v1/admin/campaigns/%d" % c["id"])[1]["progress"]["granted"] >= 1
        wait_for("a grant", some, WAIT)
        # A new version gives Gold 5000; the campaign keeps the version its
        # start pinned.
        harness.run_cli(["program", "load", self.k.db,
                         program(self.k.dir, gold=5000, name="program-rules-2.json")])
        self.k.kill9()
        self.assertLess(len(self.granted(c["id"])), 4)
        self.start({})
        done = self.wait_state(c["id"], "done")
        self.assertEqual(self.granted(c["id"]), {0: 1000, 1: 500, 3: 1000, 4: 500})
        self.assertEqual(done["granted"], 3000)
        versions = self.k.query("SELECT DISTINCT program_version FROM ops WHERE receipt LIKE ?",
                                ("campaign/%d/%%" % c["id"],))
        self.assertEqual(versions, [(done["grant"]["program_version"],)])
        self.verify()


class SpentExpired(Case):
    def run_campaign(self):
        self.ids = [self.register(self.k.cards[i], i) for i in range(3)]
        s, g = self.call("POST", "/v1/admin/segments", {"name": "all", "filter": {}})
        c = self.campaign(g["id"], {"kind": "premium", "points": 500, "validity_days": 30},
                          name="Fixed")
        self.call("POST", "/v1/admin/campaigns/%d/start" % c["id"], {})
        self.wait_state(c["id"], "done")
        return c["id"]

    def results(self, cid):
        s, r = self.call("GET", "/v1/admin/campaigns/%d/results" % cid)
        self.assertEqual(s, 200, self.k.last_raw())
        return r["points_used"], r["points_spent"], r["points_expired"]

    def spend(self):
        # Card 0 pays 200 of its 500 premium points, card 1 100 (the
        # earliest-expiring points go first: the campaign's).
        self.assertEqual(self.buy(self.k.cards[0], "s-0", 600000, burn=200)["burned"], 200)
        self.assertEqual(self.buy(self.k.cards[1], "s-1", 600000, burn=100)["burned"], 100)

    def test_spent_then_expired_by_hand(self):
        cid = self.run_campaign()
        self.spend()
        self.assertEqual(self.results(cid), (300, 300, 0))
        # 31 days on, the rest expires: 300 + 400 + 500.
        self.at("2026-06-21T10:00:00Z")
        wait_for("the expiry", lambda: self.results(cid)[2] == 1200, WAIT)
        self.assertEqual(self.results(cid), (1500, 300, 1200))
        self.k.stop()
        res = json.loads(self.k.cli("campaign", "results", "DB", str(cid)).stdout)
        self.assertEqual((res["points_spent"], res["points_expired"]), (300, 1200))
        self.verify()
        # verify checks lots.expired against the expiry's postings.
        lot = self.k.query("SELECT MIN(id) FROM lots WHERE expired > 0")[0][0]
        self.k.execute("UPDATE lots SET expired = expired + 1 WHERE id = %d" % lot)
        v = self.k.verify()
        self.assertNotEqual(v.returncode, 0)
        self.assertIn("more expired than its expiry operations took", v.stdout + v.stderr)

    def test_an_old_database_reads_0_expired_for_the_past(self):
        cid = self.run_campaign()
        self.spend()
        self.at("2026-06-21T10:00:00Z")
        wait_for("the expiry", lambda: self.results(cid)[2] == 1200, WAIT)
        self.k.stop()
        # The database as a binary before lots.expired left it: the column
        # absent, the schema marked as before it. Its expiries happened, but
        # nothing recorded what each took from each lot.
        if self.k.on_pg():
            self.k.execute("ALTER TABLE lots DROP COLUMN expired; "
                           "DELETE FROM kopilka_schema WHERE version >= 16")
        else:
            self.k.execute("ALTER TABLE lots DROP COLUMN expired; "
                           "UPDATE meta SET value = '2' WHERE key = 'lots_schema'")
        self.start()
        self.assertEqual(self.k.query("SELECT COUNT(*) FROM lots WHERE expired <> 0"), [(0,)])
        # Used still counts everything; the past's expiry reads as 0 expired
        # (docs/marketing.md "Results": counted with the spent).
        self.assertEqual(self.results(cid), (1500, 1500, 0))
        self.verify()

if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
