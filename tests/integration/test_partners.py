"""
test_partners.py: black-box tests of a coalition's partner staff
(docs/coalition.md "Partner staff and isolation", docs/api.md "Partners")
against a real `kopilka serve`: the partner role bound to a partner of the
running program (CLI and back office), a partner's session kept out of
every route of docs/openapi.json but its own, and GET /v1/partner/me,
/operations and /rules, each read with another partner's session too.

    python3 test_partners.py --kopilka build/kopilka [unittest options]
"""
import json
import os
import re
import time
import unittest

import harness
from harness import LABOR

PASSWORD = "correct horse battery"
HERE = os.path.dirname(os.path.abspath(__file__))
OPENAPI = os.path.join(HERE, "..", "..", "docs", "openapi.json")

# "wash" comes first, so a store both wash's "FUEL-WASH-*" and fuel's
# "FUEL-*" match is wash's: fuel's range of store codes holds it, and fuel
# must still never see it.
PARTNERS = [
    {"code": "wash", "name": "Car wash", "stores": ["WASH-*", "FUEL-WASH-*"]},
    {"code": "fuel", "name": "Fuel chain", "stores": ["FUEL-*", "KIOSK-9"],
     "fees": {"per_operation": 50, "per_point_percent": "2.5"},
     "breakage_to_operator": "30"},
    {"code": "bank", "name": "Bank", "bank": {"cashback_percent": "1", "point_kind": "regular"}},
]
RULES = [
    {"id": "wash-5", "kind": "earn_percent", "percent": 5, "partner": "wash"},
    {"id": "fuel-pays-at-wash", "kind": "earn_percent", "percent": 10, "partner": "fuel",
     "at_partner": "wash", "category": "parts"},
    {"id": "fuel-no-burn", "kind": "burn_limit", "category": "labor", "percent": 0,
     "partner": "fuel"},
]
# (store, receipt) of the purchases made; whose each is.
PURCHASES = [("WASH-1", "W-1", "wash"), ("FUEL-1", "F-1", "fuel"),
             ("FUEL-WASH-1", "FW-1", "wash"), ("main", "M-1", None), ("KIOSK-9", "K-1", "fuel"),
             ("WASH-2", "W-2", "wash"), ("KIOSK-90", "K-2", None)]


def program(directory, partners=PARTNERS, rules=RULES, name="program-partners.json"):
    with open(harness.program_file(), "rb") as f:
        doc = json.load(f)
    doc["partners"] = partners
    doc["rules"] = doc["rules"] + rules + [
        {"id": "club-300", "kind": "grant", "on": "club", "points": 300}]
    # A partner system sends "club" events; the back office does not.
    doc["event_sources"] = [{"type": "club", "from": ["partner"]}]
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


class PartnersTestCase(unittest.TestCase):
    """A coalition program, a purchase at each store of PURCHASES, and staff
    of wash, fuel and the operator (an admin)."""

    def setUp(self):
        self.k = harness.Kopilka(cards=4)
        self.addCleanup(self.k.close)
        self.k.cli("program", "load", "DB", program(self.k.dir))
        self.keys = {store: self.k.terminal_add(store)
                     for store in {p[0] for p in PURCHASES} if store != "main"}
        self.keys["main"] = self.k.key
        self.pwfile = os.path.join(self.k.dir, "password")
        with open(self.pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        for login, role, partner in (("w_staff", "partner", "wash"),
                                     ("f_staff", "partner", "fuel"), ("boss", "admin", None)):
            args = ["staff", "add", "DB", "--login", login, "--role", role,
                    "--password-file", self.pwfile]
            if partner:
                args += ["--partner", partner]
            self.k.cli(*args)
        self.k.start()
        self.ops = {}
        for i, (store, receipt, owner) in enumerate(PURCHASES):
            s, a = self.k.call("POST", "/v1/purchases",
                               {"card": self.k.cards[i % 4], "receipt": receipt,
                                "lines": [{"sku": "s", "category": LABOR, "amount": 10000}]},
                               key=self.keys[store])
            self.assertEqual(s, 201, self.k.last_raw())
        self.wash = self.k.staff_token("w_staff", PASSWORD)
        self.fuel = self.k.staff_token("f_staff", PASSWORD)
        self.boss = self.k.staff_token("boss", PASSWORD)

    def get(self, token, path):
        return self.k.call("GET", path, key=token)


class StaffBinding(PartnersTestCase):

    def test_the_command_line_binds_a_partner_and_refuses_what_does_not_fit(self):
        def add(*more):
            return self.k.cli("staff", "add", "DB", "--login", "x", "--password-file",
                              self.pwfile, *more, check=False)
        p = add("--role", "partner")
        self.assertEqual(p.returncode, 1)
        self.assertIn("partner: is required for the partner role: one of the running "
                      "program's partners (wash, fuel, bank)", p.stderr)
        p = add("--role", "partner", "--partner", "cafe")
        self.assertEqual(p.returncode, 1)
        self.assertIn('no partner "cafe" in the running program', p.stderr)
        self.assertIn("must be one of wash, fuel, bank", p.stderr)
        p = add("--role", "cashier", "--partner", "wash")
        self.assertEqual(p.returncode, 1)
        self.assertIn("partner: only the partner role is bound to a partner; a cashier has none",
                      p.stderr)
        p = add("--role", "partner", "--partner", "bank")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("x (partner of bank)", p.stdout)

    def test_the_back_office_binds_a_partner_and_refuses_what_does_not_fit(self):
        def add(body):
            body = dict(body, login="olga", password=PASSWORD)
            return self.k.call("POST", "/v1/admin/staff", body, key=self.boss)
        s, a = add({"role": "partner"})
        self.assertEqual((s, a["error"]["field"]), (400, "partner"))
        self.assertIn("(wash, fuel, bank)", a["error"]["message"])
        s, a = add({"role": "partner", "partner": "nobody"})
        self.assertEqual((s, a["error"]["field"]), (400, "partner"))
        s, a = add({"role": "manager", "partner": "wash"})
        self.assertEqual((s, a["error"]["field"]), (400, "partner"))
        s, a = add({"role": "partner", "partner": "fuel"})
        self.assertEqual(s, 201, a)
        self.assertEqual((a["role"], a["partner"]), ("partner", "fuel"))
        olga = a["id"]
        s, lst = self.get(self.boss, "/v1/admin/staff")
        by_login = {x["login"]: x for x in lst["staff"]}
        self.assertEqual(by_login["w_staff"]["partner"], "wash")
        self.assertIsNone(by_login["boss"]["partner"])
        # Another partner; then another role, which unbinds.
        s, a = self.k.call("PATCH", "/v1/admin/staff/%d" % olga, {"partner": "wash"},
                           key=self.boss)
        self.assertEqual((s, a["partner"]), (200, "wash"))
        s, a = self.k.call("PATCH", "/v1/admin/staff/%d" % olga, {"partner": "nope"},
                           key=self.boss)
        self.assertEqual((s, a["error"]["field"]), (400, "partner"))
        s, a = self.k.call("PATCH", "/v1/admin/staff/%d" % olga, {"role": "auditor"},
                           key=self.boss)
        self.assertEqual((s, a["role"], a["partner"]), (200, "auditor", None))
        s, a = self.k.call("PATCH", "/v1/admin/staff/%d" % olga, {"role": "partner"},
                           key=self.boss)
        self.assertEqual((s, a["error"]["field"]), (400, "partner"))
        s, a = self.k.call("PATCH", "/v1/admin/staff/%d" % olga,
                           {"role": "cashier", "partner": "wash"}, key=self.boss)
        self.assertEqual((s, a["error"]["field"]), (400, "partner"))

    def test_the_session_carries_the_partner(self):
        s, a = self.k.call("POST", "/v1/admin/login", {"login": "w_staff", "password": PASSWORD},
                           key=None)
        self.assertEqual((s, a["role"], a["partner"]), (200, "partner", "wash"))
        s, me = self.get(self.wash, "/v1/admin/me")
        self.assertEqual((s, me["role"], me["partner"], me["permissions"]),
                         (200, "partner", "wash", []))
        s, me = self.get(self.boss, "/v1/admin/me")
        self.assertIsNone(me["partner"])
        s, a = self.k.call("POST", "/v1/admin/logout", key=self.wash)
        self.assertEqual(s, 200, a)
        s, a = self.get(self.wash, "/v1/partner/me")
        self.assertEqual(s, 401)

    def test_an_unbound_partner_account_cannot_log_in(self):
        self.k.execute("UPDATE staff SET partner = '' WHERE login = 'w_staff'")
        s, a = self.k.call("POST", "/v1/admin/login", {"login": "w_staff", "password": PASSWORD},
                           key=None)
        self.assertEqual((s, a["error"]["field"]), (403, "partner"))
        self.assertIn("bound to no partner", a["error"]["message"])


class Isolation(PartnersTestCase):

    # A partner's session reaches these besides /v1/partner/...: its own
    # session's routes, and POST /v1/events as a partner system (the
    # program's event_sources decide which types it may send).
    OWN = {("GET", "/v1/admin/me"), ("POST", "/v1/admin/logout"), ("POST", "/v1/events")}

    def operations(self):
        with open(OPENAPI) as f:
            doc = json.load(f)
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                if isinstance(op, dict) and method != "parameters":
                    yield method.upper(), path, [k for s in op.get("security", []) for k in s]

    def concrete(self, path):
        return re.sub(r"\{number\}", self.k.cards[0], re.sub(r"\{(?!number)[a-z_]+\}", "1", path))

    def test_every_route_but_the_partners_is_forbidden_to_a_partner(self):
        walked = partner_routes = 0
        for method, path, security in self.operations():
            if (method, path) in self.OWN or not security:
                continue  # public routes take no session at all
            body = {} if method in ("POST", "PUT", "PATCH") else None
            s, a = self.k.call(method, self.concrete(path), body, key=self.wash)
            what = "%s %s -> %s %r" % (method, path, s, a)
            if path.startswith("/v1/partner/"):
                partner_routes += 1
                self.assertNotEqual(s, 401, what)
                if s == 403:  # a bank's route: refused for what wash is, not for isolation
                    self.assertNotIn("may use only", a["error"]["message"], what)
            elif "staff" in security:
                walked += 1
                self.assertEqual(s, 403, what)
                self.assertEqual(a["error"]["code"], "forbidden", what)
                self.assertIn("a partner's session (partner wash) may use only the /v1/partner/",
                              a["error"]["message"], what)
            else:  # a terminal's or a customer's route: no staff session at all
                self.assertIn(s, (401, 403), what)
        self.assertGreater(walked, 90)
        self.assertGreaterEqual(partner_routes, 4)
        # Nothing was changed by any of them.
        s, me = self.get(self.wash, "/v1/admin/me")
        self.assertEqual(s, 200)

    def test_a_partners_session_still_sends_the_events_the_program_takes_from_partners(self):
        body = {"id": "club-1", "card": self.k.cards[1], "type": "club"}
        s, a = self.k.call("POST", "/v1/events", body, key=self.wash)
        self.assertEqual(s, 201, a)
        self.assertEqual((a["store"], a["points"]), ("#partner:w_staff", 300))
        s, a = self.k.call("POST", "/v1/events", dict(body, id="club-2"), key=self.boss)
        self.assertEqual((s, a["error"]["field"]), (403, "type"))

    def test_the_operators_staff_cannot_read_the_partner_routes(self):
        for path in ("/v1/partner/me", "/v1/partner/operations", "/v1/partner/rules"):
            s, a = self.get(self.boss, path)
            self.assertEqual(s, 403, path)
            self.assertIn("are for a partner's staff", a["error"]["message"])

    def test_a_partner_the_program_drops_sees_nothing(self):
        self.k.cli("program", "load", "DB",
                   program(self.k.dir, PARTNERS[1:], RULES[2:], "program-no-wash.json"))
        # Every server takes up a new version within a second.
        deadline = time.time() + 5
        while self.get(self.wash, "/v1/partner/me")[0] == 200 and time.time() < deadline:
            time.sleep(0.1)
        for path in ("/v1/partner/me", "/v1/partner/operations", "/v1/partner/rules"):
            s, a = self.get(self.wash, path)
            self.assertEqual(s, 403, path)
            self.assertIn("partner wash is not a partner of the running program",
                          a["error"]["message"])
        s, me = self.get(self.fuel, "/v1/partner/me")
        self.assertEqual((s, me["partner"]["code"]), (200, "fuel"))


class PartnerRoutes(PartnersTestCase):

    def test_me_is_the_partner_as_the_program_describes_it(self):
        s, me = self.get(self.fuel, "/v1/partner/me")
        self.assertEqual(s, 200, me)
        self.assertEqual(me["partner"], {
            "code": "fuel", "name": "Fuel chain",
            "stores": [{"match": "FUEL-*", "currency": None},
                       {"match": "KIOSK-9", "currency": None}],
            "fees": {"per_operation": 50, "per_point_percent": "2.5"},
            "breakage_to_operator": "30", "bank": None})
        self.assertEqual(me["currency"], "RUB")
        s, other = self.get(self.wash, "/v1/partner/me")
        self.assertEqual(other["partner"]["code"], "wash")
        self.assertNotIn("fuel", json.dumps(other))

    def receipts(self, token, query=""):
        s, a = self.get(token, "/v1/partner/operations" + query)
        self.assertEqual(s, 200, a)
        return a, [op["receipt"] for op in a["operations"]]

    def test_operations_are_the_partners_stores_only(self):
        for token, code in ((self.wash, "wash"), (self.fuel, "fuel")):
            a, got = self.receipts(token)
            mine = [r for (_, r, owner) in reversed(PURCHASES) if owner == code]
            self.assertEqual(got, mine, code)
            self.assertIsNone(a["next_before"])
            for op in a["operations"]:
                self.assertEqual(op["type"], "purchase")
                self.assertRegex(op["card"], r"^\*+\d{4}$")
                self.assertNotIn(op["card"], self.k.cards)
                self.assertEqual(op["amount"], 10000)
                self.assertEqual(set(op), {"id", "type", "store", "receipt", "at", "card",
                                           "amount", "points", "earned", "burned"})

    def test_operations_page_by_id_and_filter_by_period(self):
        a, first = self.receipts(self.wash, "?limit=2")
        self.assertEqual(first, ["W-2", "FW-1"])
        a, second = self.receipts(self.wash, "?limit=2&before=%d" % a["next_before"])
        self.assertEqual(second, ["W-1"])
        a, none = self.receipts(self.wash, "?from=2001-01-01&to=2001-01-31")
        self.assertEqual((none, a["from"], a["to"]), ([], "2001-01-01", "2001-01-31"))
        for query, field in (("?limit=0", "limit"), ("?limit=501", "limit"),
                             ("?from=yesterday", "from"), ("?before=x", "before")):
            s, e = self.get(self.wash, "/v1/partner/operations" + query)
            self.assertEqual((s, e["error"]["field"]), (400, field), query)

    def test_rules_are_those_naming_the_partner(self):
        s, a = self.get(self.wash, "/v1/partner/rules")
        self.assertEqual(s, 200, a)
        self.assertEqual([r["id"] for r in a["rules"]], ["wash-5", "fuel-pays-at-wash"])  # no club-300
        self.assertEqual(a["rules"][1], RULES[1])
        s, b = self.get(self.fuel, "/v1/partner/rules")
        self.assertEqual([r["id"] for r in b["rules"]], ["fuel-pays-at-wash", "fuel-no-burn"])
        self.assertEqual(a["program_version"], b["program_version"])
        s, c = self.k.call("GET", "/v1/partner/rules", key=self.k.key)
        self.assertEqual(s, 403)  # a terminal key: the route is for staff

    def test_statements_are_the_partners_own(self):
        p = self.k.cli("settlement", "close", "DB", "--period", "2026-04", "--now",
                       "2026-05-28T12:00:00Z")
        s, a = self.get(self.wash, "/v1/partner/statements")
        self.assertEqual(s, 200, a)
        self.assertEqual((a["partner"], a["next_before"]), ("wash", None))
        self.assertEqual([(x["party"], x["period"]) for x in a["statements"]],
                         [("wash", "2026-04")])
        mine = a["statements"][0]["number"]
        s, one = self.get(self.wash, "/v1/partner/statements/%d" % mine)
        self.assertEqual((s, one), (200, a["statements"][0]))
        s, b = self.get(self.fuel, "/v1/partner/statements")
        self.assertEqual([x["party"] for x in b["statements"]], ["fuel"])
        self.assertNotEqual(b["statements"][0]["number"], mine)
        # Another party's statement is as unknown as a number nobody has.
        for number in (mine, 999999):
            s, e = self.get(self.fuel, "/v1/partner/statements/%d" % number)
            self.assertEqual((s, e["error"]["field"]), (404, "number"), number)
        s, e = self.get(self.wash, "/v1/partner/statements?before=April")
        self.assertEqual((s, e["error"]["field"]), (400, "before"))
        s, a = self.get(self.wash, "/v1/partner/statements?before=2026-04")
        self.assertEqual((s, a["statements"]), (200, []))


class CoBrandedCard(PartnersTestCase):
    """The bank's cashback: 1 % of a card transaction, at 100 kopecks a point."""

    def setUp(self):
        super().setUp()
        self.k.cli("staff", "add", "DB", "--login", "b_staff", "--role", "partner", "--partner",
                   "bank", "--password-file", self.pwfile)
        self.bank = self.k.staff_token("b_staff", PASSWORD)
        self.card = self.k.cards[3]

    def balance(self):
        return self.k.card(self.card)["balance"]

    def txn(self, id, amount=150000, **more):
        return dict({"id": id, "at": "2026-05-20T10:00:00Z", "card": self.card,
                     "amount": amount, "currency": "RUB", "merchant": "Cafe, Main St"}, **more)

    def post(self, token, *txns):
        return self.k.call("POST", "/v1/partner/card-transactions",
                           {"transactions": list(txns)}, key=token)

    def test_the_bank_credits_cashback_once_per_transaction(self):
        before = self.balance()
        s, a = self.post(self.bank, self.txn("T-1"), self.txn("T-2", amount=99))
        self.assertEqual(s, 201, a)
        self.assertEqual(a["bank"], "bank")
        self.assertEqual([(c["id"], c["points"], c["replayed"]) for c in a["credited"]],
                         [("T-1", 15, False), ("T-2", 0, False)])
        self.assertEqual(a["points"], 15)
        self.assertEqual(self.balance(), before + 15)
        # Sent again: the same answer, nothing more credited.
        s, again = self.post(self.bank, self.txn("T-1"))
        self.assertEqual((s, again["credited"][0]["replayed"], again["credited"][0]["points"]),
                         (200, True, 15))
        self.assertEqual(self.balance(), before + 15)
        # The same id with another amount is another transaction: refused.
        s, e = self.post(self.bank, self.txn("T-1", amount=150100))
        self.assertEqual((s, e["error"]["field"]), (409, "transactions[0].id"))
        # One bad transaction and nothing of the request is credited.
        s, e = self.post(self.bank, self.txn("T-3"), self.txn("T-4", currency="KZT"))
        self.assertEqual((s, e["error"]["field"]), (400, "transactions[1].currency"))
        s, e = self.post(self.bank, self.txn("T-3"), self.txn("T-5", card="2999999999999"))
        self.assertEqual(e["error"]["field"], "transactions[1].card", e)
        s, e = self.post(self.bank, self.txn("T-3", amount=0))
        self.assertEqual((s, e["error"]["field"]), (400, "transactions[0].amount"))
        self.assertEqual(self.balance(), before + 15)
        # The bank issued them: its statement of the open month says so, and
        # verify finds each operation's entries equal to its ledger.
        s, periods = self.get(self.boss, "/v1/admin/settlement/periods")
        self.assertEqual(s, 200, periods)
        open_month = [p for p in periods["periods"] if p["state"] == "open"][0]["period"]
        s, period = self.get(self.boss, "/v1/admin/settlement/periods/" + open_month)
        bank = [x for x in period["statements"] if x["party"] == "bank"]
        self.assertEqual([x["issued"] for x in bank], [15], period["statements"])
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def test_only_a_bank_partners_staff_sends_card_transactions(self):
        s, e = self.post(self.wash, self.txn("W-1"))
        self.assertEqual(s, 403)
        self.assertIn("card transactions are a bank partner's", e["error"]["message"])
        s, e = self.post(self.boss, self.txn("W-1"))
        self.assertEqual(s, 403)
        s, e = self.post(self.bank, self.txn("W-1"))
        self.assertEqual(s, 201)
        # The bank's staff is a partner's staff like any: the rest is closed.
        s, e = self.k.call("GET", "/v1/admin/cards/" + self.card, key=self.bank)
        self.assertEqual(s, 403)

    def test_the_command_line_imports_a_file_whole_or_not_at_all(self):
        before = self.balance()
        path = os.path.join(self.k.dir, "txns.csv")
        with open(path, "w") as f:
            f.write("id,at,card,amount,currency,merchant\n"
                    "C-1,2026-05-20T10:00:00Z,%s,250000,RUB,\"Fuel, Ring Rd\"\n"
                    "C-2,2026-05-20T11:00:00Z,%s,10000,RUB,Bakery\n"
                    "C-3,2026-05-20T12:00:00Z,%s,10000,USD,Shop\n" % ((self.card,) * 3))
        p = self.k.cli("import", "DB", "--card-transactions", path, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("txns.csv:4: currency: \"USD\" is not a currency of the program", p.stderr)
        self.assertIn("1 bad lines", p.stderr)
        self.assertEqual(self.balance(), before)
        with open(path) as f:
            good = f.read().splitlines()[:3]
        with open(path, "w") as f:
            f.write("\n".join(good) + "\n")
        p = self.k.cli("import", "DB", "--card-transactions", path)
        self.assertIn("2 credited (26 points), 0 credited before", p.stdout)
        self.assertEqual(self.balance(), before + 26)
        p = self.k.cli("import", "DB", "--card-transactions", path)
        self.assertIn("0 credited (0 points), 2 credited before", p.stdout)
        self.assertEqual(self.balance(), before + 26)
        p = self.k.cli("import", "DB", "--card-transactions", path, "--bank", "wash",
                       check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn('no bank partner "wash": must be one of bank', p.stderr)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
