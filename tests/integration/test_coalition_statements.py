"""
test_coalition_statements.py: issue 14's scenario end to end. Three
partners (a fuel chain, a car wash, a cafe) of examples/coalition.json, two
currencies (roubles everywhere, tenge at the Kazakh fuel stations and
cafes), a month of purchases through the tills, the month closed through
the back office, and every party's statement and the matrix of who owes
whom compared with a table computed by hand below. Then a late return of a
November purchase lands in December and the closed November never changes.

    python3 test_coalition_statements.py --kopilka build/kopilka
"""
import datetime
import json
import os
import unittest

import harness

UTC = datetime.timezone.utc
PASSWORD = "correct horse battery"


def iso(y, m, d, hh=10):
    return datetime.datetime(y, m, d, hh, 0, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The program: examples/coalition.json with a Kazakh cafe taking tenge.
def program(directory):
    with open(harness.program_file("coalition.json")) as f:
        doc = json.load(f)
    for p in doc["partners"]:
        if p["code"] == "cafe":
            p["stores"].append({"match": "KZ-CAFE-*", "currency": "KZT"})
    path = os.path.join(directory, "coalition-kz.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


# By hand (1 point = 1.00 RUB = 5.00 KZT; fuel pays the operator 0.50 per
# purchase and 2 % of the value of the points it issues; 1 % everywhere,
# 5 % at the wash, 10 % on coffee at the cafe paid by fuel):
#   W-1   WASH-1      1 000.00 RUB       wash issues 50
#   C-1   CAFE-1        200.00 RUB coffee, 30 points paid (the wash's):
#                     the wash owes the cafe 30.00; money part 170.00 earns
#                     17 at fuel's 10 %, 1 without it: fuel pays the cafe
#                     16.00 for 16 points; the cafe issues 17
#   F-1   FUEL-1        500.00 RUB       fuel issues 5; fees 0.50 + 0.10
#   K-1   KZ-FUEL-1  10 000.00 KZT       1 % = 100.00 KZT = 20 points fuel
#                     issues; fees 0.50 KZT + 2 % of 100.00 KZT = 2.00 KZT
#   K-2   KZ-CAFE-1   1 000.00 KZT, 10 points paid (fuel's, 50.00 KZT):
#                     fuel owes the cafe 50.00 KZT; 950.00 KZT earns 1 % =
#                     9.50 KZT = 1 point (down) the cafe issues
EXPECTED = {
    ("wash", "RUB"): {"issued": 50, "own_burnt_elsewhere": 30, "own_burnt_elsewhere_minor": 3000,
                      "owed_by_party_minor": 3000, "owed_to_party_minor": 0,
                      "net_position_minor": -3000},
    ("cafe", "RUB"): {"issued": 17, "burnt_others_at_own_stores": 30,
                      "burnt_others_at_own_stores_minor": 3000, "promotions_received": 16,
                      "promotions_received_minor": 1600, "owed_to_party_minor": 4600,
                      "owed_by_party_minor": 0, "net_position_minor": 4600},
    ("fuel", "RUB"): {"issued": 5, "promotions_paid": 16, "promotions_paid_minor": 1600,
                      "fees_paid_minor": 60, "owed_by_party_minor": 1660,
                      "net_position_minor": -1660},
    ("operator", "RUB"): {"issued": 0, "fees_received_minor": 60, "owed_to_party_minor": 60,
                          "net_position_minor": 60},
    ("fuel", "KZT"): {"issued": 20, "own_burnt_elsewhere": 10,
                      "own_burnt_elsewhere_minor": 5000, "fees_paid_minor": 250,
                      "owed_by_party_minor": 5250, "net_position_minor": -5250},
    ("cafe", "KZT"): {"issued": 1, "burnt_others_at_own_stores": 10,
                      "burnt_others_at_own_stores_minor": 5000, "owed_to_party_minor": 5000,
                      "net_position_minor": 5000},
    ("operator", "KZT"): {"fees_received_minor": 250, "net_position_minor": 250},
    ("wash", "KZT"): {"issued": 0, "net_position_minor": 0},
}
MATRIX = {
    "RUB": {("wash", "cafe"): 3000, ("fuel", "cafe"): 1600, ("fuel", "operator"): 60},
    "KZT": {("fuel", "cafe"): 5000, ("fuel", "operator"): 250},
}


class CoalitionStatements(unittest.TestCase):
    def setUp(self):
        self.k = harness.Kopilka(cards=2)
        self.addCleanup(self.k.close)
        harness.run_cli(["program", "load", self.k.db, program(self.k.dir)])
        pw = os.path.join(self.k.dir, "password")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        harness.run_cli(["staff", "add", self.k.db, "--login", "boss", "--role", "admin",
                         "--password-file", pw])
        self.keys = {s: self.k.terminal_add(s)
                     for s in ("WASH-1", "CAFE-1", "FUEL-1", "KZ-FUEL-1", "KZ-CAFE-1")}

    def till(self, store, path, body, when, expect=201):
        self.k.set_clock(when)
        s, a = self.k.call("POST", path, body, key=self.keys[store])
        self.assertEqual(s, expect, "%s %s -> %s %r" % (store, path, s, self.k.last_raw()))
        return a

    def boss(self, method, path, expect=200):
        s, a = self.k.call("POST", "/v1/admin/login", {"login": "boss", "password": PASSWORD},
                           key=None)
        self.assertEqual(s, 200, self.k.last_raw())
        s, a = self.k.call(method, path, key=a["token"])
        self.assertEqual(s, expect, "%s %s: %s" % (method, path, self.k.last_raw()[:800]))
        return a

    def test_a_month_of_three_partners_in_two_currencies(self):
        card = self.k.cards[0]
        a = self.till("WASH-1", "/v1/purchases", {
            "card": card, "receipt": "W-1", "at": iso(2026, 11, 2),
            "lines": [{"sku": "WASH", "category": "service", "amount": 100000}]}, iso(2026, 11, 2))
        self.assertEqual(a["earned"], 50)
        a = self.till("CAFE-1", "/v1/purchases", {
            "card": card, "receipt": "C-1", "at": iso(2026, 11, 3), "burn": 30,
            "lines": [{"sku": "LATTE", "category": "coffee", "amount": 20000, "qty": 2}]},
            iso(2026, 11, 3))
        self.assertEqual((a["burned"], a["earned"]), (30, 17))
        a = self.till("FUEL-1", "/v1/purchases", {
            "card": card, "receipt": "F-1", "at": iso(2026, 11, 5),
            "lines": [{"sku": "AI95", "category": "fuel", "amount": 50000}]}, iso(2026, 11, 5))
        self.assertEqual(a["earned"], 5)
        a = self.till("KZ-FUEL-1", "/v1/purchases", {
            "card": card, "receipt": "K-1", "at": iso(2026, 11, 6),
            "lines": [{"sku": "AI92", "category": "fuel", "amount": 1000000}]}, iso(2026, 11, 6))
        self.assertEqual((a["currency"], a["earned"]), ("KZT", 20))
        a = self.till("KZ-CAFE-1", "/v1/purchases", {
            "card": card, "receipt": "K-2", "at": iso(2026, 11, 7), "burn": 10,
            "lines": [{"sku": "PLOV", "category": "food", "amount": 100000}]}, iso(2026, 11, 7))
        self.assertEqual((a["currency"], a["burned"], a["earned"]), ("KZT", 10, 1))

        # November cannot close before it ends (+03:00), then closes once.
        self.k.set_clock(iso(2026, 11, 30, 20))
        self.boss("POST", "/v1/admin/settlement/periods/2026-11/close", expect=409)
        self.k.set_clock(iso(2026, 12, 2))
        closed = self.boss("POST", "/v1/admin/settlement/periods/2026-11/close", expect=201)
        self.assertEqual(closed["state"], "closed")
        got = {(s["party"], s["currency"]): s for s in closed["statements"]}
        for key, figures in EXPECTED.items():
            self.assertIn(key, got, sorted(got))
            for name, value in figures.items():
                self.assertEqual(got[key][name], value, "%s %s: %s" % (key, name, got[key]))
        for cur in ("RUB", "KZT"):
            self.assertEqual(sum(s["net_position_minor"] for (p, c), s in got.items() if c == cur),
                             0, cur)
        numbers = sorted(s["number"] for s in closed["statements"])
        self.assertEqual(numbers, list(range(numbers[0], numbers[0] + len(numbers))))
        matrix = {c["currency"]: c for c in closed["matrix"]["currencies"]}
        for cur, want in MATRIX.items():
            parties = matrix[cur]["parties"]
            per = matrix[cur]
            owed = {(parties[i], parties[j]): v
                    for i, row in enumerate(per["amounts_minor"])
                    for j, v in enumerate(row) if v}
            self.assertEqual(owed, want, cur)

        # A late return of C-1 (one coffee) lands in December: November's
        # statements stay as they were, byte for byte.
        before = self.boss("GET", "/v1/admin/settlement/periods/2026-11")
        r = self.till("CAFE-1", "/v1/returns", {
            "card": card, "receipt": "C-1-R", "original_receipt": "C-1",
            "lines": [{"sku": "LATTE", "qty": 1}]}, iso(2026, 12, 3))
        self.assertEqual((r["earned_reversed"], r["burned_refunded"]), (8, 15))
        self.assertEqual(self.boss("GET", "/v1/admin/settlement/periods/2026-11"), before)
        december = self.boss("GET", "/v1/admin/settlement/periods/2026-12")
        dec = {(s["party"], s["currency"]): s for s in december["statements"]}
        # The return: the cafe's 8 points back, 7 of fuel's promotion (16 x
        # 8/17 = 7.5, down), 15 of the wash's burnt points refunded.
        self.assertEqual(dec[("cafe", "RUB")]["issued"], -8)
        self.assertEqual(dec[("cafe", "RUB")]["net_position_minor"], -700 - 1500)
        self.assertEqual(dec[("wash", "RUB")]["net_position_minor"], 1500)
        self.assertEqual(dec[("fuel", "RUB")]["net_position_minor"], 700)
        p = self.k.verify()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


    def test_a_bank_card_spent_in_tenge_earns_in_the_tenge_account(self):
        """The bank's cashback on a tenge transaction: 1 % of 5 000.00 KZT
        = 50.00 KZT = 10 points, credited to the card's tenge account, the
        bank their issuer, booked in tenge."""
        pw = os.path.join(self.k.dir, "password")
        harness.run_cli(["staff", "add", self.k.db, "--login", "bank1", "--role", "partner",
                         "--partner", "bank", "--password-file", pw])
        self.k.set_clock(iso(2026, 11, 10))
        token = self.k.staff_token("bank1", PASSWORD)
        card = self.k.cards[1]
        txn = {"id": "T-KZ-1", "at": iso(2026, 11, 9), "card": card, "amount": 500000,
               "currency": "KZT", "merchant": "Almaty market"}
        s, a = self.k.call("POST", "/v1/partner/card-transactions", {"transactions": [txn]},
                           key=token)
        self.assertEqual(s, 201, self.k.last_raw())
        self.assertEqual(a["points"], 10)
        balances = {b["currency"]: b["balance"] for b in self.k.card(card)["balances"]}
        self.assertEqual(balances, {"RUB": 0, "KZT": 10})
        self.assertEqual([tuple(r) for r in self.k.query(
            "SELECT e.kind, e.payer, e.points, e.amount_minor, e.currency FROM settle_entries e "
            "JOIN ops o ON o.id = e.op_id WHERE o.receipt = 'T-KZ-1' ORDER BY e.seq")],
            [(1, "bank", 10, 0, "KZT")])
        # A currency the program does not take is refused on the field.
        s, a = self.k.call("POST", "/v1/partner/card-transactions",
                           {"transactions": [dict(txn, id="T-US-1", currency="USD")]}, key=token)
        self.assertEqual((s, a["error"]["field"]), (400, "transactions[0].currency"))
        p = self.k.verify()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main(verbosity=2)
