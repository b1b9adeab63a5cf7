"""
test_coalition_funding.py: a coalition program (examples/coalition.json:
fuel, wash, cafe and a bank; 1 point = 1 rouble) through a real
`kopilka serve`, and the settlement entries every operation books in its
own transaction (docs/coalition.md), read back from the database and
compared with a table computed by hand: earn at the wash, burn the wash's
points at the cafe with a promotion the fuel chain pays, return half of the
cafe purchase, earn at the fuel chain (its fees), let everything expire
(the fuel chain's breakage share), and `kopilka verify` reconciles each
operation's entries with its postings.

    python3 test_coalition_funding.py --kopilka build/kopilka
"""
import datetime
import json
import os
import unittest

import harness

UTC = datetime.timezone.utc


def iso(y, m, d, hh=10, mm=0):
    return datetime.datetime(y, m, d, hh, mm, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CoalitionFunding(unittest.TestCase):
    def setUp(self):
        self.k = harness.Kopilka(cards=2, program="coalition.json")
        self.addCleanup(self.k.close)
        self.keys = {s: self.k.terminal_add(s) for s in ("WASH-1", "CAFE-1", "FUEL-1")}
        self.k.start(serve_args=("--tick", "0"))

    def post(self, store, path, body, when, expect=201):
        self.k.set_clock(when)
        status, ans = self.k.call("POST", path, body, key=self.keys[store])
        self.assertEqual(status, expect, "%s %s -> %s %r" % (store, path, status, self.k.last_raw()))
        return ans

    def boss(self, when):
        """Adds an admin (the server stopped meanwhile) and logs in at `when`;
        returns a function (method, path, body, expect) -> answer."""
        self.k.stop()
        pw = os.path.join(self.k.dir, "password")
        with open(pw, "w") as f:
            f.write("correct horse battery\n")
        self.k.cli("staff", "add", "DB", "--login", "boss", "--role", "admin",
                   "--password-file", pw)
        self.k.set_clock(when)
        s, a = self.k.call("POST", "/v1/admin/login",
                           {"login": "boss", "password": "correct horse battery"}, key=None)
        self.assertEqual(s, 200, self.k.last_raw())
        token = a["token"]

        def staff(method, path, body, expect):
            s, a = self.k.call(method, path, body, key=token)
            self.assertEqual(s, expect, "%s %s: %r" % (method, path, self.k.last_raw()))
            return a
        return staff

    def entries(self, receipt):
        """(kind, payer, payee, points, amount, currency) of the operation
        with `receipt` (any store), in the order booked."""
        return [tuple(r) for r in self.k.query(
            "SELECT e.kind, e.payer, e.payee, e.points, e.amount_minor, e.currency "
            "FROM settle_entries e JOIN ops o ON o.id = e.op_id WHERE o.receipt = ? "
            "ORDER BY e.seq", (receipt,))]

    def test_funding_table(self):
        card = self.k.cards[0]
        ISSUE, BURN, EXPIRE, PROMO, FEE = 1, 2, 3, 4, 5
        # 1. The wash: 1000.00 at its own 5 %: 50 points the wash issues.
        a = self.post("WASH-1", "/v1/purchases", {
            "card": card, "receipt": "W-1", "at": iso(2026, 11, 2),
            "lines": [{"sku": "WASH", "category": "service", "amount": 100000}]}, iso(2026, 11, 2))
        self.assertEqual(a["earned"], 50)
        # 2. The cafe: two coffees, 200.00, 30 points burnt (the wash's).
        # Money part 170.00: at fuel's 10 % promotion 17 points; without it
        # 1 % = 1.7, down to 1: the promotion added 16, fuel pays the cafe
        # 16.00. The wash owes the cafe 30 x 1.00.
        a = self.post("CAFE-1", "/v1/purchases", {
            "card": card, "receipt": "C-1", "at": iso(2026, 11, 3), "burn": 30,
            "lines": [{"sku": "LATTE", "category": "coffee", "amount": 20000, "qty": 2}]},
            iso(2026, 11, 3))
        self.assertEqual((a["burned"], a["earned"]), (30, 17))
        # 3. One coffee back: earned 17 x 1/2 = 8 reversed; 15.00 of the
        # 30.00 paid with points refunded (15 points). Promo 16 x 8/17 =
        # 7.5, down to 7; the wash's burn -15.
        r = self.post("CAFE-1", "/v1/returns", {
            "card": card, "receipt": "C-1-R", "original_receipt": "C-1",
            "lines": [{"sku": "LATTE", "qty": 1}]}, iso(2026, 11, 4))
        self.assertEqual((r["earned_reversed"], r["burned_refunded"]), (8, 15))
        # 4. The fuel chain: 500.00 at 1 %: 5 points; 0.50 per purchase,
        # 2 % of 5.00 = 0.10 per point.
        a = self.post("FUEL-1", "/v1/purchases", {
            "card": card, "receipt": "F-1", "at": iso(2026, 11, 5),
            "lines": [{"sku": "AI95", "category": "fuel", "amount": 50000}]}, iso(2026, 11, 5))
        self.assertEqual(a["earned"], 5)
        # The card's lots, each of its issuer: the wash 50 - 30 + 15 = 35,
        # the cafe 17 - 8 = 9 (the claw-back takes the latest expiry), fuel 5.
        lots = {l["partner"]: l["remaining"] for l in self.k.card(card)["lots"]}
        self.assertEqual(lots, {"wash": 35, "cafe": 9, "fuel": 5})
        # 5. 30 days on, everything expires: fuel's 5 points are 5.00, 30 %
        # of which (1.50) the operator keeps.
        self.k.stop()
        out = self.k.cli("tick", "DB", "--now", iso(2026, 12, 6)).stdout
        self.assertIn("expired 49 points of 1 accounts", out)
        self.k.start(serve_args=("--tick", "0"))

        self.assertEqual(self.entries("W-1"), [(ISSUE, "wash", "wash", 50, 0, "RUB")])
        self.assertEqual(self.entries("C-1"), [
            (ISSUE, "cafe", "cafe", 17, 0, "RUB"),
            (PROMO, "fuel", "cafe", 16, 1600, "RUB"),
            (BURN, "wash", "cafe", 30, 3000, "RUB")])
        self.assertEqual(self.entries("C-1-R"), [
            (ISSUE, "cafe", "cafe", -8, 0, "RUB"),
            (PROMO, "fuel", "cafe", -7, -700, "RUB"),
            (BURN, "wash", "cafe", -15, -1500, "RUB")])
        self.assertEqual(self.entries("F-1"), [
            (ISSUE, "fuel", "fuel", 5, 0, "RUB"),
            (FEE, "fuel", "", 0, 50, "RUB"),
            (FEE, "fuel", "", 5, 10, "RUB")])
        expiry = [tuple(r) for r in self.k.query(
            "SELECT e.kind, e.payer, e.payee, e.points, e.amount_minor, e.currency "
            "FROM settle_entries e JOIN ops o ON o.id = e.op_id WHERE o.type = 4 "
            "ORDER BY e.op_id, e.seq")]
        self.assertEqual(sorted(expiry), sorted([
            (EXPIRE, "wash", "", 35, 0, "RUB"),
            (EXPIRE, "cafe", "", 9, 0, "RUB"),
            (EXPIRE, "fuel", "", 5, 150, "RUB")]))
        # Periods: the month of booking in the program's calendar (+03:00).
        periods = {r[0] for r in self.k.query("SELECT DISTINCT period FROM settle_entries")}
        self.assertEqual(periods, {202611, 202612})
        # Who owes whom, net: fuel the cafe 9.00, the wash the cafe 15.00,
        # fuel the operator 0.50 + 0.10 + 1.50.
        net = {(r[0], r[1]): r[2] for r in self.k.query(
            "SELECT payer, payee, sum(amount_minor) FROM settle_entries "
            "WHERE payer <> payee GROUP BY payer, payee HAVING sum(amount_minor) <> 0")}
        self.assertEqual(net, {("fuel", "cafe"): 900, ("wash", "cafe"): 1500, ("fuel", ""): 210})

        p = self.k.verify()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

        # verify reconciles each operation's entries with its postings: one
        # point more in any kind's entry, and it says which operation.
        (c1,), = self.k.query("SELECT id FROM ops WHERE receipt = 'C-1'")
        (f1,), = self.k.query("SELECT id FROM ops WHERE receipt = 'F-1'")
        (ex,), = self.k.query("SELECT min(id) FROM ops WHERE type = 4")
        for kind, op, word in ((2, c1, "burn"), (1, f1, "issue"), (3, ex, "expire")):
            self.k.stop()
            self.k.execute("UPDATE settle_entries SET points = points + 1 "
                           "WHERE op_id = ? AND kind = ? AND seq = (SELECT min(seq) FROM "
                           "settle_entries WHERE op_id = ? AND kind = ?)", (op, kind, op, kind))
            p = self.k.verify()
            self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("operation %d: its %s entries differ" % (op, word), p.stdout + p.stderr)
            self.k.execute("UPDATE settle_entries SET points = points - 1 "
                           "WHERE op_id = ? AND kind = ? AND seq = (SELECT min(seq) FROM "
                           "settle_entries WHERE op_id = ? AND kind = ?)", (op, kind, op, kind))
        p = self.k.verify()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_catalog_order_burns_at_the_operator(self):
        """A rewards order burns at the operator, each issuer's points
        apart; its cancellation books the same entries negated; an
        adjustment books none (its lot is the operator's)."""
        card = self.k.cards[1]
        BURN = 2
        self.post("WASH-1", "/v1/purchases", {
            "card": card, "receipt": "W-2", "at": iso(2026, 11, 2),
            "lines": [{"sku": "WASH", "category": "service", "amount": 100000}]}, iso(2026, 11, 2))
        staff = self.boss(iso(2026, 11, 3))
        staff("POST", "/v1/admin/adjustments",
              {"card": card, "points": 20, "reason": "goodwill", "key": "ADJ-1"}, 201)
        lots = {l["partner"]: l["remaining"] for l in self.k.card(card)["lots"]}
        self.assertEqual(lots, {"wash": 50, "operator": 20})
        item = staff("POST", "/v1/admin/catalog/items",
                     {"name": "Mug", "price": 60, "unlimited": True}, 201)
        # The till of the operator's store "main": 50 of the wash's points
        # (the wash owes the operator 50.00) and 10 of the operator's own.
        s, order = self.k.call("POST", "/v1/orders", {"card": card, "item_id": item["id"],
                                                      "key": "O-1"})
        self.assertEqual(s, 201, self.k.last_raw())
        q = ("SELECT e.kind, e.payer, e.payee, e.points, e.amount_minor FROM settle_entries e "
             "JOIN ops o ON o.id = e.op_id WHERE o.receipt = ? ORDER BY e.seq")
        self.assertEqual([tuple(r) for r in self.k.query(q, ("order:%d" % order["id"],))],
                         [(BURN, "wash", "", 50, 5000), (BURN, "", "", 10, 0)])
        s, _ = self.k.call("POST", "/v1/orders/%d/cancel" % order["id"])
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual([tuple(r) for r in self.k.query(q, ("order:%d:cancel" % order["id"],))],
                         [(BURN, "wash", "", -50, -5000), (BURN, "", "", -10, 0)])
        self.assertEqual(self.k.query(
            "SELECT count(*) FROM settle_entries e JOIN ops o ON o.id = e.op_id "
            "WHERE o.type = 3"), [(0,)])
        p = self.k.verify()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_transfer_moves_the_liability_to_the_operator(self):
        """A transfer between customers burns the sender's points at the
        operator (their issuer pays) and the receiver's lot is the
        operator's, which issues it."""
        ISSUE, BURN = 1, 2
        with open(harness.program_file("coalition.json")) as f:
            doc = json.load(f)
        doc["customers"] = {"transfers": {"max_points": 5000, "daily_max_points": 8000,
                                          "kinds": ["regular"]},
                            "consent_version": "2026-01"}
        path = os.path.join(self.k.dir, "coalition-transfers.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        self.k.stop()
        self.k.cli("program", "load", "DB", path)
        a, b = self.k.cards
        self.post("WASH-1", "/v1/purchases", {
            "card": a, "receipt": "W-3", "at": iso(2026, 11, 2),
            "lines": [{"sku": "WASH", "category": "service", "amount": 100000}]}, iso(2026, 11, 2))
        staff = self.boss(iso(2026, 11, 3))
        for card, phone in ((a, "+79990000001"), (b, "+79990000002")):
            s, _ = self.k.call("POST", "/v1/customers", {
                "card": card, "full_name": "Holder " + card[-2:], "phone": phone,
                "consent": {"given": True, "text_version": "2026-01"}})
            self.assertEqual(s, 201, self.k.last_raw())
        staff("POST", "/v1/transfers", {"from_card": a, "to_card": b, "points": 30,
                                        "key": "G-1"}, 201)
        q = ("SELECT e.kind, e.payer, e.payee, e.points, e.amount_minor FROM settle_entries e "
             "JOIN ops o ON o.id = e.op_id WHERE o.receipt = ? ORDER BY e.seq")
        self.assertEqual([tuple(r) for r in self.k.query(q, ("G-1",))],
                         [(BURN, "wash", "", 30, 3000)])
        self.assertEqual([tuple(r) for r in self.k.query(q, ("G-1#in",))],
                         [(ISSUE, "", "", 30, 0)])
        self.assertEqual({l["partner"]: l["remaining"] for l in self.k.card(b)["lots"]},
                         {"operator": 30})
        p = self.k.verify()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_a_partner_funded_grant(self):
        """A grant rule naming a partner: the partner issues the lot, and
        pays the operator its per-point fee (fuel: 2 % of 10.00)."""
        ISSUE, FEE = 1, 5
        with open(harness.program_file("coalition.json")) as f:
            doc = json.load(f)
        doc["rules"].append({"id": "welcome", "kind": "grant", "on": "registration",
                             "points": 10, "partner": "fuel"})
        doc["customers"] = {"consent_version": "2026-01"}
        path = os.path.join(self.k.dir, "coalition-welcome.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        self.k.stop()
        self.k.cli("program", "load", "DB", path)
        self.k.set_clock(iso(2026, 11, 2))
        card = self.k.cards[0]
        s, _ = self.k.call("POST", "/v1/customers", {
            "card": card, "full_name": "Holder", "phone": "+79990000003",
            "consent": {"given": True, "text_version": "2026-01"}})
        self.assertEqual(s, 201, self.k.last_raw())
        self.assertEqual({l["partner"]: l["remaining"] for l in self.k.card(card)["lots"]},
                         {"fuel": 10})
        self.assertEqual([tuple(r) for r in self.k.query(
            "SELECT e.kind, e.payer, e.payee, e.points, e.amount_minor FROM settle_entries e "
            "JOIN ops o ON o.id = e.op_id WHERE o.type = 6 ORDER BY e.seq")],
            [(ISSUE, "fuel", "fuel", 10, 0), (FEE, "fuel", "", 10, 20)])
        p = self.k.verify()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main(verbosity=2)
