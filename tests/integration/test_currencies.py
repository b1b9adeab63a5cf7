"""
test_currencies.py: a card's accounts per currency (docs/coalition.md
"Currencies") against a real `kopilka serve`, the same on SQLite and
PostgreSQL (integration_currencies and its _pg twin).

A RUB program that also accepts KZT (a point is 1 rouble, or 5 tenge),
earning 10 % everywhere; stores RU-* take roubles, KZ-* tenge. One card:

  - earns 100 points on a 1000-rouble receipt at RU-1 (its own account)
    and 20 on a 1000-tenge receipt at KZ-1 (its KZT account, made then);
  - asks to burn 50 points on a KZT receipt: only its 20 KZT points pay
    (20 x 5 tenge = 100 tenge off), the 100 RUB points stay;
  - a KZT receipt at RU-1 (whose pattern fixes RUB) and a USD receipt are
    refused on "currency", nothing written;
  - a quote in KZT for a card without a KZT account prices an empty one
    and makes none;
  - the card's views (till, back office, /v1/me) give "balances" per
    currency beside the program currency's figures; the history says each
    operation's currency;
  - the KZT purchase returned at KZ-1 goes back to the KZT account;
  - the points report per currency never mixes the two.

    python3 test_currencies.py --kopilka build/kopilka [unittest options]
"""
import json
import os
import shutil
import tempfile
import unittest

import harness
from test_people import CONSENT, CUSTOMERS_SECTION, PASSWORD

PROGRAM = {
    "name": "Red Cube, two countries",
    "currency": "RUB",
    "minor_per_point": 100,
    "currencies": [{"code": "KZT", "minor_per_point": 500}],
    "stores": [{"match": "RU-*", "currency": "RUB"}, {"match": "KZ-*", "currency": "KZT"}],
    "rounding": "down",
    "utc_offset": "+03:00",
    "point_kinds": [{"name": "regular"}],
    "earn": {"point_kind": "regular"},
    "rules": [{"id": "earn-10", "kind": "earn_percent", "percent": 10}],
    "customers": CUSTOMERS_SECTION,
}

LINE = [{"sku": "CUBE", "category": "gifts", "amount": 100000}]


class Currencies(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kp-cur-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        path = os.path.join(self.tmp, "program.json")
        with open(path, "w") as f:
            json.dump(PROGRAM, f)
        self.k = harness.Kopilka(cards=3, store="RU-1", program=path)
        self.addCleanup(self.k.close)
        pw = os.path.join(self.k.dir, "password")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        harness.run_cli(["staff", "add", self.k.db, "--login", "u_auditor", "--role", "auditor",
                         "--password-file", pw])
        harness.run_cli(["staff", "add", self.k.db, "--login", "u_admin", "--role", "admin",
                         "--password-file", pw])
        self.kz = self.k.terminal_add("KZ-1")
        self.main = self.k.terminal_add("MAIN")
        self.k.start()
        self.k.set_clock("2026-11-10T09:00:00Z")
        for i, card in enumerate(self.k.cards):
            s, _ = self.k.call("POST", "/v1/customers",
                               {"card": card, "full_name": "Aigerim %d" % i,
                                "phone": "+7701555000%d" % i, "consent": CONSENT})
            self.assertEqual(s, 201, self.k.last_raw())

    def buy(self, receipt, key=None, status=201, **extra):
        body = {"card": self.k.cards[0], "receipt": receipt, "lines": LINE}
        body.update(extra)
        s, a = self.k.call("POST", "/v1/purchases", body, key=key or self.k.key)
        self.assertEqual(s, status, self.k.last_raw())
        return a

    def staff(self, login, method, path):
        token = self.k.staff_token(login, PASSWORD)
        s, a = self.k.call(method, path, None, key=token)
        self.assertEqual(s, 200, self.k.last_raw())
        return a

    def test_two_currencies_never_mix(self):
        card = self.k.cards[0]
        r1 = self.buy("R1")
        self.assertEqual((r1["currency"], r1["earned"], r1["balance"]), ("RUB", 100, 100))
        k1 = self.buy("K1", key=self.kz)
        # 10 % of 1000 tenge = 100 tenge = 20 points at 5 tenge a point.
        self.assertEqual((k1["currency"], k1["earned"], k1["balance_before"], k1["balance"]),
                         ("KZT", 20, 0, 20))
        self.assertIn("Amount: 1000.00 KZT", k1["receipt_lines"])

        # Burn asked 50: only the 20 KZT points pay, at 5 tenge each.
        k2 = self.buy("K2", key=self.kz, burn=50)
        self.assertEqual((k2["burned"], k2["paid_with_points"], k2["paid"]), (20, 10000, 90000))
        self.assertEqual((k2["earned"], k2["balance"]), (18, 18))

        # A KZT receipt where the store's pattern fixes RUB; an unknown one.
        a = self.buy("R2", status=400, currency="KZT")
        self.assertEqual(a["error"]["field"], "currency")
        self.assertIn("RUB", a["error"]["message"])
        a = self.buy("R3", key=self.main, status=400, currency="USD")
        self.assertEqual(a["error"]["field"], "currency")
        self.assertIn("KZT", a["error"]["message"])
        s, a = self.k.call("POST", "/v1/quote", {"card": card, "lines": LINE, "currency": "kzt"})
        self.assertEqual((s, a["error"]["field"]), (400, "currency"))
        # A sale without a card: its currency checked too.
        s, a = self.k.call("POST", "/v1/purchases", {"receipt": "S1", "lines": LINE,
                                                     "currency": "KZT"})
        self.assertEqual((s, a["error"]["field"]), (400, "currency"), self.k.last_raw())
        # A store no pattern names takes the currency the till says.
        m1 = self.buy("M1", key=self.main, currency="KZT")
        self.assertEqual((m1["currency"], m1["earned"], m1["balance"]), ("KZT", 20, 38))
        # A retry is the same purchase: no second account, no second earn.
        again = self.buy("M1", key=self.main, status=200, currency="KZT")
        self.assertEqual((again.get("replayed"), again["balance"]), (True, 38))

        # A quote in KZT for a card with no KZT account: an empty one.
        other = self.k.cards[1]
        s, q = self.k.call("POST", "/v1/quote", {"card": other, "lines": LINE, "burn": 5},
                           key=self.kz)
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual((q["currency"], q["burned"], q["earned"], q["balance"]), ("KZT", 0, 20, 20))
        self.assertEqual([b["currency"] for b in self.k.card(other)["balances"]], ["RUB"])

        # The card at the till: the program currency's figures, and every
        # currency's balance; the history names each operation's currency.
        c = self.k.card(card)
        self.assertEqual(c["balance"], 100)
        self.assertEqual([(b["currency"], b["balance"], b["available"]) for b in c["balances"]],
                         [("RUB", 100, 100), ("KZT", 38, 38)])
        self.assertEqual([(h["receipt"], h["currency"], h["points"]) for h in c["history"]],
                         [("M1", "KZT", 20), ("K2", "KZT", -2), ("K1", "KZT", 20),
                          ("R1", "RUB", 100)])
        # The back office's card.
        office = self.staff("u_admin", "GET", "/v1/admin/cards/" + card)
        self.assertEqual([(b["currency"], b["balance"]) for b in office["balances"]],
                         [("RUB", 100), ("KZT", 38)])

        # The KZT purchase K2 returned at KZ-1: to the KZT account.
        s, r = self.k.call("POST", "/v1/returns", {"card": card, "receipt": "KR2",
                                                   "original_receipt": "K2"}, key=self.kz)
        self.assertEqual(s, 201, self.k.last_raw())
        self.assertEqual((r["currency"], r["earned_reversed"], r["burned_refunded"], r["balance"]),
                         ("KZT", 18, 20, 40))
        # Said in the wrong currency: refused.
        s, r = self.k.call("POST", "/v1/returns", {"card": card, "receipt": "KR1", "currency": "RUB",
                                                   "original_receipt": "K1"}, key=self.kz)
        self.assertEqual((s, r["error"]["field"]), (400, "currency"))
        c = self.k.card(card)
        self.assertEqual([(b["currency"], b["balance"]) for b in c["balances"]],
                         [("RUB", 100), ("KZT", 40)])

        # The points report, one currency at a time.
        base = "/v1/admin/reports/points?from=2026-11-01&to=2026-11-30"
        rub = self.staff("u_auditor", "GET", base)
        self.assertEqual((rub["currency"], rub["issued"], rub["burnt"], rub["outstanding"],
                          rub["minor_per_point"], rub["members_revenue_minor"]),
                         ("RUB", 100, 0, 100, 100, 100000))
        kzt = self.staff("u_auditor", "GET", base + "&currency=KZT")
        # Issued 20 + 18 + 20 - 18 (the return), burnt 20 - 20; revenue
        # 1000 + 1000 + 1000 - 1000 tenge.
        self.assertEqual((kzt["currency"], kzt["issued"], kzt["burnt"], kzt["outstanding"],
                          kzt["minor_per_point"], kzt["members_revenue_minor"]),
                         ("KZT", 40, 0, 40, 500, 200000))
        self.assertEqual(kzt["schedule"], [{"kind": "regular", "month": "never", "points": 40,
                                            "lots": kzt["schedule"][0]["lots"]}])
        token = self.k.staff_token("u_auditor", PASSWORD)
        s, a = self.k.call("GET", base + "&currency=USD", None, key=token)
        self.assertEqual((s, a["error"]["field"]), (400, "currency"))

        # Transfers and catalog orders stay in the program's own currency.
        admin = self.k.staff_token("u_admin", PASSWORD)
        s, a = self.k.call("POST", "/v1/transfers",
                           {"from_card": card, "to_card": self.k.cards[1], "points": 5,
                            "key": "t-1", "currency": "KZT"}, key=admin)
        self.assertEqual((s, a["error"]["field"]), (400, "currency"), self.k.last_raw())
        self.assertIn("RUB", a["error"]["message"])
        s, a = self.k.call("POST", "/v1/transfers",
                           {"from_card": card, "to_card": self.k.cards[1], "points": 5,
                            "key": "t-2", "currency": "RUB"}, key=admin)
        self.assertEqual(s, 201, self.k.last_raw())
        self.assertEqual([(b["currency"], b["balance"]) for b in self.k.card(card)["balances"]],
                         [("RUB", 95), ("KZT", 40)])

        # The ledger's invariants hold with the currency accounts.
        out = harness.run_cli(["verify", self.k.db]).stdout
        self.assertIn("ok", out.lower())


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
