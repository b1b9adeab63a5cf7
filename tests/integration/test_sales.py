"""
test_sales.py: the sales history (issue 12, docs/analytics.md "Sales
history") against a real `kopilka serve`:

  - a till's purchase without a card or phone is an anonymous sale: 201
    with its figures, the same body again 200 "replayed": true with the
    first answer, another body (or a card purchase's receipt) 409
    receipt_conflict; no account is touched; POST /v1/quote without a card
    stays 400;
  - answered sales survive `kill -9` (the operation log replays them);
  - `kopilka import DB --sales F.csv`: a file with errors reports each (line,
    field) and writes nothing; a good one is written; running it again
    skips every receipt; POST /v1/admin/imports?kind=sales does the same.

    python3 test_sales.py --kopilka build/kopilka [unittest options]
"""
import os
import unittest

import harness

PASSWORD = "correct horse battery"

GOOD = """at,store,receipt,card,kind,sku,category,amount,qty,customer
2026-03-01T10:15:00+03:00,S1,r1,,sale,A-1,milk,"1250,50",2,K-77
2026-03-01T10:15:00+03:00,S1,r1,,,B-2,bread,30,,K-77
2026-03-01 11:00,S1,r2,2000000000001,return,A-1,milk,10.5,1,
2026-03-02,S2,r1,,,,,0.99,,
"""

BAD = """at,store,receipt,card,kind,sku,category,amount,qty,customer
2026-13-01,S1,x1,,sale,A-1,milk,5,1
2026-03-01,S1,x2,,gift,A-1,milk,1.234,0
2026-03-01,,x3,,,A-1,milk,1,1
2026-03-01,S1,x4,,,A-1,milk,1,1
2026-03-01,S1,x5,,,A-1,milk,1,1
2026-03-01,S1,x4,,,A-1,milk,1,1
2026-03-01,S1,x6,,,A-1,milk,1,1,K-1
2026-03-01,S1,x6,,,A-1,milk,1,1,K-2
"""


def sale_body(receipt, amount=150000, **more):
    body = {"receipt": receipt,
            "lines": [{"sku": "OIL-1", "category": harness.LABOR, "amount": amount, "qty": 1},
                      {"sku": "FLT-2", "category": "parts", "amount": 5000, "qty": 3}]}
    body.update(more)
    return body


def count(k, table):
    return k.query("SELECT count(*) FROM " + table)[0][0]


class Sales(unittest.TestCase):
    def setUp(self):
        self.k = harness.Kopilka(cards=2)
        self.k.start()

    def tearDown(self):
        self.k.close()

    def write(self, name, text):
        path = os.path.join(self.k.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_anonymous_sale_replay_conflict_and_no_account(self):
        card = self.k.cards[0]
        before = self.k.card(card)
        s, a = self.k.call("POST", "/v1/purchases", sale_body("A-1"))
        self.assertEqual(s, 201, self.k.last_raw())
        self.assertTrue(a["anonymous"])
        self.assertEqual((a["store"], a["receipt"], a["amount"]), ("main", "A-1", 155000))
        self.assertEqual([l["sku"] for l in a["lines"]], ["OIL-1", "FLT-2"])
        self.assertNotIn("replayed", a)
        self.assertEqual(self.k.card(card), before)
        # The same body again: its first answer, replayed.
        s, b = self.k.call("POST", "/v1/purchases", sale_body("A-1"))
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertTrue(b.pop("replayed"))
        self.assertEqual(a, b)
        # Another body under the same receipt: 409.
        s, c = self.k.call("POST", "/v1/purchases", sale_body("A-1", amount=1))
        self.assertEqual((s, c["error"]["code"]), (409, "receipt_conflict"), c)
        # A card purchase's receipt is not an anonymous sale's.
        s, _ = self.k.call("POST", "/v1/purchases", sale_body("C-1", card=card))
        self.assertEqual(s, 201, self.k.last_raw())
        s, c = self.k.call("POST", "/v1/purchases", sale_body("C-1"))
        self.assertEqual((s, c["error"]["code"]), (409, "receipt_conflict"), c)
        # An empty card is still refused, and a quote needs a card.
        s, c = self.k.call("POST", "/v1/purchases", sale_body("A-2", card=""))
        self.assertEqual((s, c["error"]["field"]), (400, "card"), c)
        s, c = self.k.call("POST", "/v1/quote", sale_body("Q-1"))
        self.assertEqual(s, 400, c)
        # No account moved for the anonymous sale: one op (the card's), one
        # sale (read once the server has committed and stopped).
        self.k.stop()
        self.assertEqual(count(self.k, "ops"), 1)
        self.assertEqual(count(self.k, "sales"), 1)
        rows = self.k.query("SELECT card, source, amount FROM sales")
        self.assertEqual([tuple(r) for r in rows], [("", 1, 155000)])


    def test_answered_sales_survive_kill9(self):
        """Sales answered 201, then kill -9 at once; on SQLite, tried until
        some were past the database's last commit (only in the operation
        log) when the server died, as test_durability.py does."""
        answers, replayed_from_log, n = {}, False, 0
        for attempt in range(8):
            for _ in range(20):
                receipt = "K-%d" % n
                n += 1
                s, a = self.k.call("POST", "/v1/purchases", sale_body(receipt))
                self.assertEqual(s, 201, self.k.last_raw())
                answers[receipt] = a
            self.k.kill9()
            if harness.is_pg():
                replayed_from_log = True  # no log: each group is a commit
            else:
                from test_durability import meta, oplog_records
                mark = int(meta(self.k, "oplog_seq") or 0)
                replayed_from_log = any(r[0] > mark for r in oplog_records(self.k))
            self.k.start()
            if replayed_from_log:
                break
        self.assertTrue(replayed_from_log, "every try committed before the kill")
        for receipt, first in answers.items():
            s, a = self.k.call("POST", "/v1/purchases", sale_body(receipt))
            self.assertEqual(s, 200, self.k.last_raw())
            self.assertTrue(a.pop("replayed"))
            self.assertEqual(a, first)
        self.k.stop()
        self.assertEqual(count(self.k, "sales"), len(answers))
        self.assertEqual(count(self.k, "ops"), 0)

    def test_cli_import_errors_ok_and_rerun(self):
        bad = self.write("bad.csv", BAD)
        r = self.k.cli("import", "DB", "--sales", bad, check=False)
        self.assertNotEqual(r.returncode, 0)
        for want in ("bad.csv:2: at:", "bad.csv:3: kind:", "bad.csv:3: amount:",
                     "bad.csv:3: qty:", "bad.csv:4: store:", "bad.csv:7: receipt:",
                     "bad.csv:9: customer:"):
            self.assertIn(want, r.stderr)
        self.assertIn("nothing was imported", r.stderr)
        self.assertEqual(count(self.k, "sales"), 0)
        good = self.write("sales.csv", GOOD)
        r = self.k.cli("import", "DB", "--sales", good)
        self.assertIn("4 rows", r.stdout)
        self.assertIn("sales 3 new, 0 unchanged", r.stdout)
        self.assertIn("import:", r.stderr)  # progress
        rows = self.k.query("SELECT store, receipt, card, kind, source, amount, at, customer "
                            "FROM sales ORDER BY id")
        self.assertEqual([tuple(x) for x in rows],
                         [("S1", "r1", "", 1, 2, 128050, 1772349300, "K-77"),
                          ("S1", "r2", "2000000000001", 2, 2, 1050, 1772352000, ""),
                          ("S2", "r1", "", 1, 2, 99, 1772398800, "")])
        self.assertEqual(count(self.k, "sale_lines"), 4)
        r = self.k.cli("import", "DB", "--sales", good)
        self.assertIn("sales 0 new, 3 unchanged", r.stdout)
        self.assertEqual(count(self.k, "sales"), 3)

    def test_http_import_kind_sales(self):
        harness.run_cli(["staff", "add", self.k.db, "--login", "u_admin", "--role", "admin",
                         "--password-file", self.write("pw", PASSWORD + "\n")])
        token = self.k.staff_token("u_admin", PASSWORD)
        csv_headers = {"Content-Type": "text/csv"}
        s, a = self.k.call("POST", "/v1/admin/imports?kind=sales", BAD.encode(), key=token,
                           headers=csv_headers)
        self.assertEqual(s, 400, a)
        self.assertEqual(a["inserted"], 0)
        self.assertIn({"line": 2, "field": "at"},
                      [{"line": e["line"], "field": e["field"]} for e in a["errors"]])
        self.assertEqual(count(self.k, "sales"), 0)
        s, a = self.k.call("POST", "/v1/admin/imports?kind=sales", GOOD.encode(), key=token,
                           headers=csv_headers)
        self.assertEqual((s, a["kind"], a["rows"], a["inserted"], a["skipped"]),
                         (200, "sales", 4, 3, 0), a)
        s, a = self.k.call("POST", "/v1/admin/imports?kind=sales", GOOD.encode(), key=token,
                           headers=csv_headers)
        self.assertEqual((s, a["inserted"], a["skipped"]), (200, 0, 3), a)
        self.assertEqual(count(self.k, "sales"), 3)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
