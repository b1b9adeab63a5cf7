"""
test_campaigns.py: segments and campaigns (docs/marketing.md "Segments and
campaigns", docs/api.md "Segments and campaigns") against a real `kopilka
serve`, the same on SQLite and PostgreSQL (integration_campaigns and its
_pg twin):

  - segments: counts of filters over a known set of customers (attributes,
    spend and visits in a period, recency, stores, birthday month, card
    state, marketing consent), each worked out by hand; refusals naming the
    field, the problem and what is allowed; save, change, delete.
  - campaigns: preview (count, points, cost, the program's limit on the
    kind, the message per channel and language); a run that grants each
    member once with the campaign as reason, holds out a control group and
    stops at the budget; `verify` holds; a run killed with kill -9 half way
    and restarted grants every member exactly once; a scheduled start.

    python3 test_campaigns.py --kopilka build/kopilka [unittest options]
"""
import json
import os
import time
import unittest

import fakes
import harness

PASSWORD = "correct horse battery"
CONSENT = {"given": True, "text_version": "2026-01"}
LABOR = "labor"


def program_with_attributes(directory):
    with open(harness.program_file(), "rb") as f:
        doc = json.load(f)
    doc["customers"] = {
        "unregistered": {"earn": True, "burn": True},
        "consent_version": "2026-01",
        "attributes": [
            {"name": "car_model", "type": "string", "max_length": 64},
            {"name": "mileage", "type": "integer", "min": 0, "max": 2000000},
        ],
    }
    path = os.path.join(directory, "program-marketing.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def wait_for(what, pred, timeout=60):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


class Case(unittest.TestCase):
    cards = 10
    env = {}

    def setUp(self):
        self.k = harness.Kopilka(cards=self.cards)
        self.addCleanup(self.k.close)
        harness.run_cli(["program", "load", self.k.db, program_with_attributes(self.k.dir)])
        pw = os.path.join(self.k.dir, "password")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        for role in ("admin", "marketer", "cashier"):
            harness.run_cli(["staff", "add", self.k.db, "--login", "u_" + role, "--role", role,
                             "--password-file", pw])
        self.tokens = {}
        self.at("2026-06-15T10:00:00Z")

    def at(self, when, env=None):
        """(Re)starts the server with its clock at `when`."""
        if self.k.proc is not None:
            self.k.stop()
        self.k.clock = when
        self.start(env)

    def start(self, env=None, more=()):
        saved = dict(os.environ)
        os.environ.update(env if env is not None else self.env)
        try:
            self.k.start(serve_args=["--tick", "1"] + list(more))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        self.tokens = {}

    def as_(self, role, method, path, body=None):
        if role not in self.tokens:
            self.tokens[role] = self.k.staff_token("u_" + role, PASSWORD)
        return self.k.call(method, path, body, key=self.tokens[role])

    def register(self, card, n, birthday=None, attributes=None):
        body = {"card": card, "full_name": "Customer %d" % n, "phone": "+38050123%04d" % n,
                "consent": CONSENT}
        if birthday:
            body["birthday"] = birthday
        if attributes:
            body["attributes"] = attributes
        s, a = self.k.call("POST", "/v1/customers", body)
        self.assertEqual(s, 201, self.k.last_raw())
        return a["customer"]["id"] if "customer" in a else a["id"]

    def buy(self, card, receipt, amount, key=None):
        s, a = self.k.call("POST", "/v1/purchases",
                           {"card": card, "receipt": receipt,
                            "lines": [{"sku": "L", "category": LABOR, "amount": amount}]},
                           key=key or self.k.key)
        self.assertEqual(s, 201, self.k.last_raw())

    def consent(self, customer, channels):
        s, _ = self.as_("admin", "PUT", "/v1/customers/%d/notifications" % customer,
                        {"marketing": channels,
                         "marketing_consent": {"given": True, "version": "2026-01"}})
        self.assertEqual(s, 200, self.k.last_raw())

    def count(self, flt):
        s, a = self.as_("marketer", "POST", "/v1/admin/segments/preview", {"filter": flt})
        self.assertEqual(s, 200, self.k.last_raw())
        return a["count"]


class Segments(Case):
    def story(self):
        """Six customers: cards 0..5. In the last 90 days (the clock is
        2026-06-15): c0 spent 30 000 in 3 visits (main), c1 15 000 in 1
        (north), c2 5 000 in 1 (main) 100 days ago (outside), c3 nothing,
        c4 8 000 in 2 (main, north), c5 nothing; c5's card blocked."""
        c = self.k.cards
        ids = [self.register(c[0], 0, "1990-03-10", {"car_model": "Lada Vesta", "mileage": 120000}),
               self.register(c[1], 1, "1985-03-31", {"car_model": "Kia Rio", "mileage": 40000}),
               self.register(c[2], 2, "1979-07-01", {"car_model": "Lada Vesta", "mileage": 5000}),
               self.register(c[3], 3, None, {"car_model": "Skoda Octavia"}),
               self.register(c[4], 4, "2000-12-24", None),
               self.register(c[5], 5, "1995-03-01", {"mileage": 250000})]
        north = self.k.terminal_add("north")
        self.at("2026-03-07T10:00:00Z")  # 100 days before
        self.buy(c[2], "OLD-1", 5000)
        self.at("2026-06-01T10:00:00Z")
        for i in range(3):
            self.buy(c[0], "A%d" % i, 10000)
        self.buy(c[1], "B0", 15000, key=north)
        self.buy(c[4], "E0", 4000)
        self.buy(c[4], "E1", 4000, key=north)
        self.at("2026-06-15T10:00:00Z")
        s, _ = self.as_("admin", "POST", "/v1/admin/cards/%s/block" % c[5], {"reason": "lost"})
        self.assertEqual(s, 200, self.k.last_raw())
        self.consent(ids[0], ["sms"])
        self.consent(ids[1], ["email"])
        return ids

    def test_counts_of_a_known_set(self):
        ids = self.story()
        self.assertEqual(self.count({}), 6)
        p90 = {"days": 90}
        self.assertEqual(self.count({"period": p90, "spend": {"min": 10000}}), 2)  # c0, c1
        self.assertEqual(self.count({"period": p90, "spend": {"min": 1, "max": 10000}}), 1)  # c4
        self.assertEqual(self.count({"period": {"days": 365}, "spend": {"min": 1}}), 4)
        self.assertEqual(self.count({"period": p90, "visits": {"min": 2}}), 2)  # c0, c4
        self.assertEqual(self.count({"period": p90, "visits": {"max": 0}}), 3)  # c2, c3, c5
        # Recency: days since the last purchase; who never bought is "long ago".
        self.assertEqual(self.count({"recency_days": {"max": 30}}), 3)  # c0, c1, c4
        self.assertEqual(self.count({"recency_days": {"min": 60}}), 3)  # c2, c3, c5
        self.assertEqual(self.count({"recency_days": {"min": 60, "max": 200}}), 1)  # c2
        self.assertEqual(self.count({"period": p90, "stores": ["north"]}), 2)  # c1, c4
        self.assertEqual(self.count({"period": p90, "stores": ["main"]}), 2)  # c0, c4
        self.assertEqual(self.count({"birthday_month": [3]}), 3)  # c0, c1, c5
        self.assertEqual(self.count({"birthday_month": [3, 12]}), 4)
        self.assertEqual(self.count({"attributes": {"car_model": {"in": ["Lada Vesta"]}}}), 2)
        self.assertEqual(self.count({"attributes": {"mileage": {"min": 100000}}}), 2)  # c0, c5
        self.assertEqual(self.count({"attributes": {"car_model": {"in": ["Lada Vesta"]},
                                                    "mileage": {"min": 100000}}}), 1)
        self.assertEqual(self.count({"card_state": ["blocked"]}), 1)
        self.assertEqual(self.count({"card_state": ["active"]}), 5)
        self.assertEqual(self.count({"consent": "any"}), 2)
        self.assertEqual(self.count({"consent": ["sms"]}), 1)
        self.assertEqual(self.count({"tier": ["none"]}), 6)
        # Everything at once: c0 alone.
        s, a = self.as_("marketer", "POST", "/v1/admin/segments/preview", {"filter": {
            "period": p90, "spend": {"min": 20000}, "birthday_month": [3],
            "attributes": {"car_model": {"in": ["Lada Vesta"]}}, "consent": ["sms"],
            "stores": ["main"], "card_state": ["active"]}})
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual((a["count"], a["sample"]), (1, [{"customer": ids[0]}]))

    def test_refusals_name_field_problem_and_allowed(self):
        cases = [
            ({"colour": ["red"]}, "filter", "recency_days"),
            ({"spend": {"min": "a lot"}}, "filter.spend.min", "whole number"),
            ({"spend": {"min": 5, "max": 1}}, "filter.spend", "over max"),
            ({"attributes": {"colour": {"in": ["red"]}}}, "filter.attributes.colour",
             "car_model, mileage"),
            ({"attributes": {"mileage": {"in": ["a"]}}}, "filter.attributes.mileage", "max"),
            ({"card_state": ["lost"]}, "filter.card_state", "issued, active, blocked, replaced"),
            ({"birthday_month": [13]}, "filter.birthday_month", "1 (January) to 12"),
            ({"consent": ["pigeon"]}, "filter.consent", "email, sms"),
            ({"tier": ["gold"]}, "filter.tier[0]", "none"),
            ({"period": {"days": 0}}, "filter.period.days", "3660"),
        ]
        for flt, field, allowed in cases:
            s, a = self.as_("marketer", "POST", "/v1/admin/segments/preview", {"filter": flt})
            self.assertEqual((s, a["error"]["field"]), (400, field), flt)
            self.assertIn(allowed, a["error"]["message"], flt)
        s, a = self.as_("cashier", "POST", "/v1/admin/segments/preview", {"filter": {}})
        self.assertEqual(s, 403)
        self.assertIn("campaign.manage", a["error"]["message"])

    def test_save_change_delete(self):
        self.story()
        s, g = self.as_("marketer", "POST", "/v1/admin/segments",
                        {"name": "Lada owners", "filter": {"attributes": {
                            "car_model": {"in": ["Lada Vesta"]}}}})
        self.assertEqual(s, 201, self.k.last_raw())
        self.assertEqual((g["name"], g["count"], len(g["sample"])), ("Lada owners", 2, 2))
        s, a = self.as_("marketer", "POST", "/v1/admin/segments",
                        {"name": "Lada owners", "filter": {}})
        self.assertEqual((s, a["error"]["field"]), (409, "name"))
        s, g2 = self.as_("marketer", "PATCH", "/v1/admin/segments/%d" % g["id"],
                         {"filter": {"birthday_month": [3]}})
        self.assertEqual((s, g2["count"], g2["name"]), (200, 3, "Lada owners"))
        s, lst = self.as_("marketer", "GET", "/v1/admin/segments")
        self.assertEqual([x["name"] for x in lst["segments"]], ["Lada owners"])
        s, _ = self.as_("marketer", "DELETE", "/v1/admin/segments/%d" % g["id"])
        self.assertEqual(s, 200)
        s, _ = self.as_("marketer", "GET", "/v1/admin/segments/%d" % g["id"])
        self.assertEqual(s, 404)


class Campaigns(Case):
    cards = 12

    def customers(self, n):
        return [self.register(self.k.cards[i], i) for i in range(n)]

    def segment(self, flt=None):
        s, g = self.as_("marketer", "POST", "/v1/admin/segments",
                        {"name": "everyone", "filter": flt or {}})
        self.assertEqual(s, 201, self.k.last_raw())
        return g["id"]

    def campaign(self, segment, **more):
        body = {"name": "Spring", "segment": segment,
                "grant": {"kind": "premium", "points": 500, "validity_days": 30},
                "message": {"text": {"ru": "Вам 500 баллов, {{first_name}}!",
                                     "en": "500 points for you, {{first_name}}!"},
                            "subject": {"ru": "Подарок", "en": "A gift"}}}
        body.update(more)
        s, c = self.as_("marketer", "POST", "/v1/admin/campaigns", body)
        self.assertEqual(s, 201, self.k.last_raw())
        return c

    def wait_state(self, cid, state, timeout=60):
        def done():
            s, c = self.as_("marketer", "GET", "/v1/admin/campaigns/%d" % cid)
            return c["state"] == state
        wait_for("campaign %d %s" % (cid, state), done, timeout)
        return self.as_("marketer", "GET", "/v1/admin/campaigns/%d" % cid)[1]

    def grants(self):
        return self.k.query("SELECT account_id, COUNT(*), SUM(points) FROM ops WHERE type = 6 "
                            "AND receipt LIKE 'campaign/%' GROUP BY account_id")

    def test_preview_run_budget_control(self):
        ids = self.customers(10)
        seg = self.segment()
        c = self.campaign(seg, budget=2000, control_share=0.2)
        self.assertEqual(c["state"], "draft")
        s, p = self.as_("marketer", "POST", "/v1/admin/campaigns/%d/preview" % c["id"])
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual(p["count"], 10)
        self.assertEqual(p["targeted"] + p["control"], 10)
        # The budget allows 4 grants of 500.
        self.assertEqual((p["grants"], p["points"]), (4, 2000))
        self.assertEqual(p["cost_minor"], 2000 * p["minor_per_point"])
        self.assertEqual([l["rule"] for l in p["limits"]],
                         ["burn-labor-10", "burn-labor-premium-50"])
        self.assertEqual(len(p["messages"]), 4)  # ru and en, by e-mail and SMS
        self.assertTrue(any("500 points for you" in (m.get("text") or "") for m in p["messages"]))
        # A bad text is refused naming its part and language.
        s, a = self.as_("marketer", "PATCH", "/v1/admin/campaigns/%d" % c["id"],
                        {"message": {"text": {"en": "Hi {{no_such_field}}"},
                                     "subject": {"en": "Hi"}}})
        self.assertEqual((s, a["error"]["field"]), (400, "message.text.en"))
        s, a = self.as_("marketer", "PATCH", "/v1/admin/campaigns/%d" % c["id"],
                        {"grant": {"kind": "gold", "points": 1}})
        self.assertEqual((s, a["error"]["field"]), (400, "grant.kind"))
        self.assertIn("regular, premium", a["error"]["message"])

        s, c = self.as_("marketer", "POST", "/v1/admin/campaigns/%d/start" % c["id"], {})
        self.assertEqual((s, c["state"]), (200, "scheduled"))
        c = self.wait_state(c["id"], "done")
        pr = c["progress"]
        self.assertEqual(pr["members"], 10)
        self.assertEqual(pr["control"], p["control"])
        self.assertEqual((pr["granted"], pr["points"], c["granted"]), (4, 2000, 2000))
        self.assertEqual(pr["budget"], 10 - p["control"] - 4)
        self.assertIn("budget of 2000 points reached", c["note"])
        g = self.grants()
        self.assertEqual(len(g), 4)
        self.assertTrue(all(n == 1 and pts == 500 for _, n, pts in g), g)
        # The campaign is each grant's reason, and its points are premium.
        rows = self.k.query("SELECT detail FROM ops WHERE type = 6")
        self.assertTrue(all(("campaign %d (Spring)" % c["id"]) in r[0] for r in rows), rows)
        kinds = self.k.query("SELECT DISTINCT l.kind FROM lots l JOIN ops o ON o.id = l.op_id "
                             "WHERE o.type = 6")
        self.assertEqual(kinds, [("premium",)])
        # One message event per granted member.
        ev = self.k.query("SELECT COUNT(*) FROM notify_events WHERE key LIKE 'campaign:#%d:%%'"
                          % c["id"])
        self.assertEqual(ev, [(4,)])
        s, r = self.as_("marketer", "GET", "/v1/admin/campaigns/%d/results?window_days=30"
                        % c["id"])
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual((r["grants"], r["points"]), (4, 2000))
        self.assertEqual(r["control"]["customers"], p["control"])
        self.k.stop()
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # The command line reads the same.
        shown = json.loads(self.k.cli("campaign", "show", "DB", str(c["id"])).stdout)
        self.assertEqual((shown["state"], shown["progress"]["granted"]), ("done", 4))
        res = json.loads(self.k.cli("campaign", "results", "DB", str(c["id"])).stdout)
        self.assertEqual(res["grants"], 4)
        counted = json.loads(self.k.cli("segment", "count", "DB", "{}").stdout)
        self.assertEqual(counted["count"], 10)
        bad = self.k.cli("segment", "count", "DB", '{"visits": {"min": -1}}', check=False)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("filter.visits.min", bad.stderr)

    def test_kill9_mid_run_grants_each_member_once(self):
        ids = self.customers(12)
        seg = self.segment()
        c = self.campaign(seg)
        self.at(self.k.clock, {"KOPILKA_CAMPAIGN_STEP": "1", "KOPILKA_CAMPAIGN_PAUSE_MS": "150"})
        s, _ = self.as_("marketer", "POST", "/v1/admin/campaigns/%d/start" % c["id"], {})
        self.assertEqual(s, 200, self.k.last_raw())

        def some():
            s, x = self.as_("marketer", "GET", "/v1/admin/campaigns/%d" % c["id"])
            return x["progress"]["granted"] >= 3
        wait_for("a few grants", some)
        self.k.kill9()
        before = len(self.grants())
        self.assertLess(before, 12)
        self.start({})
        done = self.wait_state(c["id"], "done")
        self.assertEqual(done["progress"]["granted"], 12)
        g = self.grants()
        self.assertEqual(len(g), 12)
        self.assertTrue(all(n == 1 for _, n, _ in g), g)
        ev = self.k.query("SELECT COUNT(*) FROM notify_events WHERE key LIKE 'campaign:#%d:%%'"
                          % c["id"])
        self.assertEqual(ev, [(12,)])
        self.k.stop()
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def test_the_message_reaches_who_consented(self):
        sms = fakes.SmsFake()
        sms.start()
        self.addCleanup(sms.stop)
        self.k.stop()
        self.start(more=["--notify", harness.notify_config(self.k.dir, sms_port=sms.port)])
        ids = self.customers(3)
        self.consent(ids[1], ["sms"])
        c = self.campaign(self.segment())
        s, _ = self.as_("marketer", "POST", "/v1/admin/campaigns/%d/start" % c["id"], {})
        self.assertEqual(s, 200, self.k.last_raw())
        self.wait_state(c["id"], "done")
        mine = lambda: [m for m in sms.received() if "500" in m["fields"].get("text", "")]
        wait_for("the SMS", lambda: len(mine()) >= 1)

        def sent():
            s, r = self.as_("marketer", "GET", "/v1/admin/campaigns/%d/results" % c["id"])
            return r["messages_sent"] == 1
        wait_for("the SMS recorded as sent", sent)
        time.sleep(1)
        got = mine()  # (the others are the registrations' welcome)
        self.assertEqual(len(got), 1, got)  # the two without consent get points, no SMS
        self.assertEqual(got[0]["fields"]["to"], "+380501230001")
        self.assertEqual(got[0]["fields"]["text"], "Вам 500 баллов, Customer!")
        self.assertEqual(len(self.grants()), 3)

    def test_two_servers_run_a_campaign_once(self):
        """Several servers on one PostgreSQL database each run the scheduler:
        the campaign's job lock lets one at a time step it, so each member
        is granted once and a monthly run is scheduled once."""
        if not self.k.on_pg():
            self.skipTest("several servers share a PostgreSQL database only")
        self.customers(12)
        c = self.campaign(self.segment(), every_months=1)
        env = {"KOPILKA_CAMPAIGN_STEP": "1", "KOPILKA_CAMPAIGN_PAUSE_MS": "20"}
        self.at(self.k.clock, env)
        other = self.k.another_server()
        self.addCleanup(other.close)
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            other.start(serve_args=["--tick", "1"])
        finally:
            os.environ.clear()
            os.environ.update(saved)
        s, _ = self.as_("marketer", "POST", "/v1/admin/campaigns/%d/start" % c["id"], {})
        self.assertEqual(s, 200, self.k.last_raw())
        done = self.wait_state(c["id"], "done")
        self.assertEqual(done["progress"]["granted"], 12)
        g = self.grants()
        self.assertEqual(len(g), 12)
        self.assertTrue(all(n == 1 for _, n, _ in g), g)
        s, lst = self.as_("marketer", "GET", "/v1/admin/campaigns")
        self.assertEqual(len([x for x in lst["campaigns"] if x["parent"] == c["id"]]), 1)
        other.stop()
        self.k.stop()
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def test_scheduled_start_and_cancel(self):
        self.customers(3)
        seg = self.segment()
        c = self.campaign(seg, every_months=1)
        s, c2 = self.as_("marketer", "POST", "/v1/admin/campaigns/%d/start" % c["id"],
                         {"at": "2026-06-16T09:00:00Z"})
        self.assertEqual((s, c2["state"], c2["start_at"]), (200, "scheduled",
                                                            "2026-06-16T09:00:00Z"))
        time.sleep(2.5)
        s, x = self.as_("marketer", "GET", "/v1/admin/campaigns/%d" % c["id"])
        self.assertEqual(x["state"], "scheduled")  # not before its time
        self.at("2026-06-16T09:00:05Z")
        self.wait_state(c["id"], "done")
        self.assertEqual(len(self.grants()), 3)
        # The next month's run is scheduled once.
        s, lst = self.as_("marketer", "GET", "/v1/admin/campaigns")
        runs = [x for x in lst["campaigns"] if x["parent"] == c["id"]]
        self.assertEqual([(x["state"], x["start_at"]) for x in runs],
                         [("scheduled", "2026-07-16T09:00:00Z")])
        s, x = self.as_("marketer", "POST", "/v1/admin/campaigns/%d/cancel" % runs[0]["id"])
        self.assertEqual((s, x["state"]), (200, "cancelled"))
        s, a = self.as_("marketer", "POST", "/v1/admin/campaigns/%d/start" % c["id"])
        self.assertEqual((s, a["error"]["field"]), (409, "campaign"))


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
