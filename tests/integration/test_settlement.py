"""
test_settlement.py: a coalition's periods and statements (docs/coalition.md
"Periods and statements", docs/api.md "Settlement") against a real `kopilka
serve`, on SQLite and PostgreSQL (integration_settlement and its _pg twin):

  - a coalition program (partners fuel and wash, roubles and tenge) and
    purchases at the partners' stores and the operator's;
  - permissions: a cashier may not read (403 naming settlement.read), a
    manager and an auditor may read and not close (403 naming
    settlement.manage);
  - November cannot be closed before it has ended (409 on period, naming the
    instant); on December 2nd it is closable, closes (201) with statements
    numbered from 1, and again answers the same (200);
  - every statement's figures and the matrix equal what this file computes
    again from the settlement entries in the database, and the net positions
    of a currency add up to zero;
  - a statement by number, JSON and CSV; the period as CSV and the matrix as
    CSV; `kopilka settlement show|periods|statement` print what HTTP answers;
  - the close under purchases running at the same time: nothing fails, every
    entry is in exactly one period, the closed period's statements do not
    change afterwards;
  - `kopilka verify` is clean, then catches a statement changed in the
    database.

Settlement entries are written by the purchases themselves (the `funding`
work); until that lands in this branch, the purchases write none and the
figures checked are those of an empty period.

    python3 test_settlement.py --kopilka build/kopilka [unittest options]
"""
import csv
import io
import json
import os
import threading
import unittest

import harness
from harness import LABOR
from test_people import PASSWORD

NOV15 = "2026-11-15T09:00:00Z"
DEC02 = "2026-12-02T09:00:00Z"

FIGURES = ("entries", "issued", "burnt_own_at_own_stores", "burnt_others_at_own_stores",
           "burnt_others_at_own_stores_minor", "own_burnt_elsewhere", "own_burnt_elsewhere_minor",
           "expired", "breakage_paid_minor", "breakage_received_minor", "promotions_paid",
           "promotions_paid_minor", "promotions_received", "promotions_received_minor",
           "fees_paid_minor", "fees_received_minor", "owed_to_party_minor",
           "owed_by_party_minor", "net_position_minor")
ISSUE, BURN, EXPIRE, PROMO, FEE = 1, 2, 3, 4, 5


def coalition_program(directory):
    with open(harness.program_file(), "rb") as f:
        doc = json.load(f)
    doc["currencies"] = [{"code": "KZT", "minor_per_point": 500}]
    doc["partners"] = [
        {"code": "fuel", "name": "Fuel chain", "stores": ["FUEL-*"],
         "fees": {"per_operation": 50, "per_point_percent": "2"}, "breakage_to_operator": "30"},
        {"code": "wash", "name": "Car wash", "stores": ["WASH-*"]}]
    path = os.path.join(directory, "coalition.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def expected(rows, period):
    """The statements' figures and the matrix of `period`, computed again
    from the entries' rows (op_id, period, currency, kind, payer, payee,
    points, amount_minor) by the rules of docs/coalition.md."""
    figs, cells = {}, {}

    def f(party, cur):
        return figs.setdefault((party or "operator", cur), dict.fromkeys(FIGURES, 0))

    for _, p, cur, kind, payer, payee, pts, amt in rows:
        if p != period:
            continue
        a, b = f(payer, cur), f(payee, cur)
        self_ = payer == payee
        a["entries"] += 1
        if not self_:
            b["entries"] += 1
        if kind == ISSUE:
            a["issued"] += pts
        elif kind == BURN and self_:
            a["burnt_own_at_own_stores"] += pts
        elif kind == BURN:
            b["burnt_others_at_own_stores"] += pts
            b["burnt_others_at_own_stores_minor"] += amt
            a["own_burnt_elsewhere"] += pts
            a["own_burnt_elsewhere_minor"] += amt
        elif kind == EXPIRE:
            a["expired"] += pts
            if not self_:
                a["breakage_paid_minor"] += amt
                b["breakage_received_minor"] += amt
        elif kind == PROMO:
            a["promotions_paid"] += pts
            a["promotions_paid_minor"] += amt
            b["promotions_received"] += pts
            b["promotions_received_minor"] += amt
        elif kind == FEE:
            a["fees_paid_minor"] += amt
            b["fees_received_minor"] += amt
        if not self_ and amt:
            key = (cur, payer or "operator", payee or "operator")
            cells[key] = cells.get(key, 0) + amt
            b["owed_to_party_minor"] += amt
            a["owed_by_party_minor"] += amt
    for x in figs.values():
        x["net_position_minor"] = x["owed_to_party_minor"] - x["owed_by_party_minor"]
    return figs, {k: v for k, v in cells.items() if v}


class Settlement(unittest.TestCase):

    def setUp(self):
        self.k = harness.Kopilka(cards=10)
        self.addCleanup(self.k.close)
        harness.run_cli(["program", "load", self.k.db, coalition_program(self.k.dir)])
        pw = os.path.join(self.k.dir, "password")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        for login, role in (("boss", "admin"), ("mgr", "manager"), ("aud", "auditor"),
                            ("cash", "cashier")):
            harness.run_cli(["staff", "add", self.k.db, "--login", login, "--role", role,
                             "--password-file", pw])
        self.fuel = self.k.terminal_add("FUEL-1")
        self.wash = self.k.terminal_add("WASH-1")
        self.tokens = {}
        self.k.set_clock(NOV15)

    def token(self, login):
        if login not in self.tokens:
            s, a = self.k.call("POST", "/v1/admin/login", {"login": login, "password": PASSWORD},
                               key=None)
            self.assertEqual(s, 200, self.k.last_raw())
            self.tokens[login] = a["token"]
        return self.tokens[login]

    def as_(self, login, method, path, expect=200):
        s, a = self.k.call(method, path, key=self.token(login))
        self.assertEqual(s, expect, "%s %s: %s" % (method, path, self.k.last_raw()[:600]))
        return a

    def raw(self, login, path):
        self.as_(login, "GET", path)
        return self.k.last_raw()

    def buy(self, key, card, receipt, amount, burn=None):
        body = {"card": card, "receipt": receipt,
                "lines": [{"sku": "x", "category": LABOR, "amount": amount}]}
        if burn is not None:
            body["burn"] = burn
        s, a = self.k.call("POST", "/v1/purchases", body, key=key)
        self.assertEqual(s, 201, self.k.last_raw())
        return a

    def entries(self):
        return self.k.query("SELECT op_id, period, currency, kind, payer, payee, points, "
                            "amount_minor FROM settle_entries ORDER BY op_id, seq")

    def check_figures(self, answer, period):
        figs, cells = expected(self.entries(), period)
        got = {(st["party"], st["currency"]): st for st in answer["statements"]}
        for key, want in figs.items():
            self.assertIn(key, got, "no statement of %s in %s" % key)
            for name in FIGURES:
                self.assertEqual(got[key][name], want[name], "%s of %s" % (name, key))
        for key, st in got.items():
            if key not in figs:
                self.assertTrue(all(st[n] == 0 for n in FIGURES), "%s: %r" % (key, st))
        for cur in {c for _, c in got}:
            self.assertEqual(sum(st["net_position_minor"] for (p, c), st in got.items()
                                 if c == cur), 0, cur)
        m = {}
        for block in answer["matrix"]["currencies"]:
            ps = block["parties"]
            for i, row in enumerate(block["amounts_minor"]):
                for j, v in enumerate(row):
                    if v:
                        m[(block["currency"], ps[i], ps[j])] = v
        self.assertEqual(m, cells)
        # One statement per party (the operator and both partners) in roubles.
        for party in ("operator", "fuel", "wash"):
            self.assertIn((party, "RUB"), got)

    def test_periods_statements_close_and_verify(self):
        c = self.k.cards
        # --- November: purchases at the partners' stores and the operator's
        self.buy(self.fuel, c[0], "F1", 100000)
        self.buy(self.wash, c[1], "W1", 40000)
        self.buy(self.k.key, c[2], "M1", 25000)
        self.buy(self.wash, c[0], "W2", 30000, burn=100)
        # --- who may read and close
        s, a = self.k.call("GET", "/v1/admin/settlement/periods", key=self.token("cash"))
        self.assertEqual(s, 403)
        self.assertIn("settlement.read", a["error"]["message"])
        self.as_("mgr", "GET", "/v1/admin/settlement/periods")
        s, a = self.k.call("POST", "/v1/admin/settlement/periods/2026-11/close",
                           key=self.token("aud"))
        self.assertEqual(s, 403)
        self.assertIn("settlement.manage", a["error"]["message"])
        # --- before the month's end
        p = self.as_("aud", "GET", "/v1/admin/settlement/periods")
        self.assertEqual(p["current"], "2026-11")
        self.assertIsNone(p["closed_through"])
        self.assertEqual(p["periods"][0], {"period": "2026-11", "state": "open",
                                           "closable": False})
        a = self.as_("boss", "POST", "/v1/admin/settlement/periods/2026-11/close", expect=409)
        self.assertEqual(a["error"]["field"], "period")
        self.assertIn("2026-11-30T21:00:00Z", a["error"]["message"])  # +03:00
        a = self.as_("boss", "GET", "/v1/admin/settlement/periods/2026-11x", expect=400)
        self.assertEqual(a["error"]["field"], "period")
        preview = self.as_("aud", "GET", "/v1/admin/settlement/periods/2026-11")
        self.assertEqual(preview["state"], "open")
        self.assertTrue(all(st["number"] is None for st in preview["statements"]))
        self.check_figures(preview, 202611)

        # --- December 2nd: closable, closed, numbered, the same again
        self.k.set_clock(DEC02)
        self.tokens = {}
        p = self.as_("mgr", "GET", "/v1/admin/settlement/periods")
        nov = [x for x in p["periods"] if x["period"] == "2026-11"][0]
        self.assertTrue(nov["closable"])
        closed = self.as_("boss", "POST", "/v1/admin/settlement/periods/2026-11/close", expect=201)
        self.assertEqual(closed["state"], "closed")
        self.assertEqual(closed["first_number"], 1)
        numbers = [st["number"] for st in closed["statements"]]
        self.assertEqual(numbers, list(range(1, len(numbers) + 1)))
        self.assertEqual(closed["statements_count"], len(numbers))
        self.assertEqual(closed["closed_by"], "staff:boss")
        self.check_figures(closed, 202611)
        first = self.k.last_raw()
        again = self.as_("boss", "POST", "/v1/admin/settlement/periods/2026-11/close")
        self.assertEqual(again, closed)
        self.assertEqual(self.raw("aud", "/v1/admin/settlement/periods/2026-11"), first)
        p = self.as_("aud", "GET", "/v1/admin/settlement/periods")
        self.assertEqual(p["closed_through"], "2026-11")

        # --- a statement, JSON and CSV; the period and its matrix as CSV
        n = closed["statements"][1]["number"]
        st = self.as_("aud", "GET", "/v1/admin/settlement/statements/%d" % n)
        self.assertEqual(st, closed["statements"][1])
        lines = dict(r for r in csv.reader(io.StringIO(
            self.raw("aud", "/v1/admin/settlement/statements/%d?format=csv" % n).decode())))
        self.assertEqual(lines["party"], st["party"])
        self.assertEqual(int(lines["net_position_minor"]), st["net_position_minor"])
        self.as_("aud", "GET", "/v1/admin/settlement/statements/999", expect=404)
        rows = list(csv.DictReader(io.StringIO(
            self.raw("aud", "/v1/admin/settlement/periods/2026-11?format=csv").decode())))
        self.assertEqual([int(r["number"]) for r in rows], numbers)
        self.assertEqual([int(r["issued"]) for r in rows],
                         [x["issued"] for x in closed["statements"]])
        mx = list(csv.DictReader(io.StringIO(self.raw(
            "aud", "/v1/admin/settlement/periods/2026-11?format=csv&part=matrix").decode())))
        self.assertEqual({(r["currency"], r["payer"], r["payee"]): int(r["amount_minor"])
                          for r in mx}, expected(self.entries(), 202611)[1])

        # --- the CLI prints what HTTP answers
        out = self.k.cli("settlement", "show", "DB", "--period", "2026-11").stdout
        self.assertEqual(json.loads(out), closed)
        out = self.k.cli("settlement", "statement", "DB", str(n)).stdout
        self.assertEqual(json.loads(out), st)
        out = self.k.cli("settlement", "periods", "DB", "--now", DEC02).stdout
        self.assertEqual(json.loads(out)["closed_through"], "2026-11")
        r = self.k.cli("settlement", "close", "DB", "--period", "2026-11", "--now", DEC02)
        self.assertEqual(json.loads(r.stdout), closed)
        self.assertIn("closed already", r.stderr)
        r = self.k.cli("settlement", "close", "DB", "--period", "2026-13", check=False)
        self.assertEqual(r.returncode, 2)

        # --- December's own purchases (a burn of fuel's points at wash), then
        # its close on 3 January under purchases running meanwhile
        self.buy(self.fuel, c[5], "F2", 50000)
        self.buy(self.wash, c[0], "W3", 20000, burn=50)
        self.k.set_clock("2027-01-03T09:00:00Z")
        self.tokens = {}
        stop, errors = threading.Event(), []

        def till(key, card, prefix):
            client = self.k.client(key)
            i = 0
            while not stop.is_set() and i < 200:
                i += 1
                s, _ = client.call("POST", "/v1/purchases", {
                    "card": card, "receipt": "%s%d" % (prefix, i),
                    "lines": [{"sku": "x", "category": LABOR, "amount": 1000 + i}]}, key=key)
                if s != 201:
                    errors.append(s)
            client.close()

        threads = [threading.Thread(target=till, args=(self.fuel, c[3], "CF")),
                   threading.Thread(target=till, args=(self.wash, c[4], "CW"))]
        for t in threads:
            t.start()
        dec = self.as_("boss", "POST", "/v1/admin/settlement/periods/2026-12/close", expect=201)
        stop.set()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(dec["first_number"], len(numbers) + 1)
        self.check_figures(dec, 202612)
        rows = self.entries()
        # Each entry has one period, and every period up to the last closed
        # one holds only what its statements count.
        self.assertTrue(all(r[1] in (202611, 202612, 202701) for r in rows), rows[:5])
        self.assertEqual(self.as_("aud", "GET", "/v1/admin/settlement/periods/2026-11"), closed)
        self.assertEqual(self.as_("aud", "GET", "/v1/admin/settlement/periods/2026-12"), dec)

        # --- verify: clean, then a statement changed under it
        r = self.k.verify()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.k.execute("UPDATE settle_statements SET body = REPLACE(body, "
                       "'\"issued\":', '\"issued\":1') WHERE number = 2")
        r = self.k.verify()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("settlement 2026-11: statement 2", r.stdout)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
