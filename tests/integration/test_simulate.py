"""
test_simulate.py: the economic model (docs/analytics.md "The economic
model", docs/api.md "Simulations") against a real `kopilka serve` and the
command line:

- purchases (some burning points) and returns made at the tills, then the
  running program replayed over the database (POST /v1/admin/simulations,
  and `kopilka simulate --history DB`) reproduces the ledger's own totals
  of points earned and burnt, exactly;
- a candidate and a baseline side by side, a redemption share, the
  month-by-month figures; the same answer over HTTP and on the command
  line;
- refusals name the field; an unknown run is 404; who may: program.read
  (an admin, an auditor), not a cashier;
- `kopilka simulate` over a sales CSV, text and --json.

    python3 test_simulate.py --kopilka build/kopilka [unittest options]
"""
import json
import os
import time
import unittest

import harness
from harness import LABOR, PARTS

NOW = "2026-06-01T10:00:00Z"
PASSWORD = "correct horse battery"


def example():
    with open(harness.program_file(), "rb") as f:
        return json.load(f)


class Simulations(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.k = harness.Kopilka(cards=4)
        cls.k.set_clock(NOW)
        cls.pwfile = os.path.join(cls.k.dir, "password")
        with open(cls.pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        cls.tokens = {}
        for role in ("admin", "auditor", "cashier"):
            harness.run_cli(["staff", "add", cls.k.db, "--login", "u_" + role, "--role", role,
                             "--password-file", cls.pwfile])
            cls.tokens[role] = cls.k.staff_token("u_" + role, PASSWORD)
        # A story at the tills: each card buys three times, the later
        # purchases burning what they may; one part is returned.
        n = 0
        cls.issued = cls.burnt = 0
        for round_ in range(3):
            for i, card in enumerate(cls.k.cards):
                n += 1
                body = {"card": card, "receipt": "R-%d" % n,
                        "lines": [{"sku": "LAB-1", "category": LABOR,
                                   "amount": 300000 + 10000 * i},
                                  {"sku": "PART-1", "category": PARTS, "amount": 150000,
                                   "qty": 2}]}
                if round_ > 0:
                    body["burn"] = 500 * (i + 1)
                s, a = cls.k.call("POST", "/v1/purchases", body)
                assert s in (200, 201), cls.k.last_raw()
                cls.issued += a["earned"]
                cls.burnt += a["burned"]
        s, a = cls.k.call("POST", "/v1/returns", {"card": cls.k.cards[0], "receipt": "RET-1",
                                                  "original_receipt": "R-1",
                                                  "lines": [{"sku": "PART-1", "qty": 1}]})
        assert s == 201, cls.k.last_raw()
        cls.issued -= a["earned_reversed"]
        cls.burnt -= a["burned_refunded"]

    @classmethod
    def tearDownClass(cls):
        cls.k.close()

    def as_(self, role, method, path, body=None):
        return self.k.call(method, path, body, key=self.tokens[role])

    def run_sim(self, body, role="admin"):
        s, a = self.as_(role, "POST", "/v1/admin/simulations", body)
        self.assertEqual(s, 202, self.k.last_raw())
        self.assertEqual(a["state"], "running")
        deadline = time.time() + 60
        while True:
            s, g = self.as_(role, "GET", "/v1/admin/simulations/" + a["id"])
            self.assertEqual(s, 200, self.k.last_raw())
            if g["state"] != "running":
                break
            self.assertLess(time.time(), deadline, "the simulation did not finish")
            time.sleep(0.05)
        self.assertEqual(g["state"], "done", g)
        self.assertEqual(g["progress"]["done"], g["progress"]["total"])
        return g["result"]

    def test_the_running_program_reproduces_the_ledger(self):
        self.assertGreater(self.burnt, 0)
        r = self.run_sim({"program": example()})
        c = r["candidate"]
        self.assertIsNone(r["baseline"])
        self.assertEqual(c["receipts"], 13)
        self.assertEqual(c["cards"], 4)
        self.assertEqual(c["skipped"], 0)
        self.assertEqual(c["total"]["issued"], self.issued)
        self.assertEqual(c["total"]["burnt"], self.burnt)
        self.assertEqual(c["total"]["liability"], self.issued - self.burnt)
        self.assertEqual([m["month"] for m in c["months"]], ["2026-06"])
        self.assertEqual(sum(x["points"] for x in c["rules"]) > 0, True)
        # An auditor may read it too.
        self.assertEqual(self.run_sim({"program": example()}, role="auditor"), r)
        # With the server stopped: the ledger's postings hold the same
        # totals, and the command line on the database answers the same.
        self.k.stop()
        try:
            self.assertEqual(-self.k.query("SELECT coalesce(sum(points), 0) FROM postings "
                                           "WHERE account_id = -1")[0][0], self.issued)
            self.assertEqual(self.k.query("SELECT coalesce(sum(points), 0) FROM postings "
                                          "WHERE account_id = -2")[0][0], self.burnt)
            p = self.k.cli("simulate", "--history", "DB", "--program", harness.program_file(),
                           "--json")
            self.assertEqual(json.loads(p.stdout), r)
        finally:
            self.k.start()

    def test_candidate_and_baseline_side_by_side(self):
        richer = example()
        for rule in richer["rules"]:
            if rule["kind"] == "earn_percent":
                rule["percent"] = rule["percent"] * 2
        r = self.run_sim({"program": richer, "baseline": example(), "redemption": 0})
        c, b = r["candidate"], r["baseline"]
        self.assertEqual(c["total"]["burnt"], 0)
        self.assertEqual(b["total"]["burnt"], 0)
        self.assertGreater(c["total"]["issued"], b["total"]["issued"])
        self.assertEqual(c["total"]["revenue_minor"], b["total"]["revenue_minor"])
        # redemption 1: every purchase burns all the rules allow
        full = self.run_sim({"program": example(), "redemption": 1})["candidate"]
        self.assertGreater(full["total"]["burnt"], 0)
        # a period with nothing in it
        empty = self.run_sim({"program": example(), "from": "2027-01-01"})["candidate"]
        self.assertEqual(empty["receipts"], 0)

    def test_refusals(self):
        bad = example()
        bad["rules"][0]["percent"] = "four"
        for body, field in (({}, "program"),
                            ({"program": bad}, "rules[0].percent"),
                            ({"program": example(), "redemption": 2}, "redemption"),
                            ({"program": example(), "from": "June"}, "from"),
                            ({"program": example(), "baseline": 7}, "baseline"),
                            ({"program": example(), "threads": 2}, "threads")):
            s, a = self.as_("admin", "POST", "/v1/admin/simulations", body)
            self.assertEqual(s, 400, (body, self.k.last_raw()))
            self.assertIn(field, json.dumps(a["error"]), (body, a))
        s, a = self.as_("admin", "GET", "/v1/admin/simulations/nope")
        self.assertEqual(s, 404, self.k.last_raw())
        s, a = self.as_("cashier", "POST", "/v1/admin/simulations", {"program": example()})
        self.assertEqual(s, 403, self.k.last_raw())

    def test_a_sales_csv_on_the_command_line(self):
        path = os.path.join(self.k.dir, "sales.csv")
        with open(path, "w") as f:
            f.write("at,store,receipt,card,kind,sku,category,amount,qty\n"
                    "2026-01-05 10:00,s1,r1,A,sale,LAB-1,labor,1000.00,1\n"
                    "2026-01-05 10:00,s1,r1,A,sale,PART-1,parts,500,2\n"
                    "2026-02-10,s1,r2,,sale,PART-1,parts,300,1\n")
        p = self.k.cli("simulate", "--history", path, "--program", harness.program_file(),
                       "--baseline", harness.program_file(), "--json")
        r = json.loads(p.stdout)
        self.assertEqual(r["candidate"], r["baseline"])
        self.assertEqual(r["candidate"]["receipts"], 2)
        self.assertEqual([m["month"] for m in r["candidate"]["months"]], ["2026-01", "2026-02"])
        self.assertEqual(r["candidate"]["months"][1]["receipts_without_card"], 1)
        p = self.k.cli("simulate", "--history", path, "--program", harness.program_file())
        self.assertIn("2026-01", p.stdout)
        self.assertIn("total", p.stdout)
        # Seed 004's points against seed 003's cumulative discount: from
        # 5 000 roubles of earlier orders a card gets 3% off.
        with open(path, "a") as f:
            f.write("2026-02-11,s1,r3,A,sale,LAB-1,labor,5000,1\n"
                    "2026-02-12,s1,r4,A,sale,LAB-1,labor,1000,1\n")
        discount = os.path.join(harness.REPO, "examples", "cumulative-discount.json")
        p = self.k.cli("simulate", "--history", path, "--program", harness.program_file(),
                       "--baseline", discount, "--json")
        r = json.loads(p.stdout)
        self.assertEqual(r["baseline"]["total"]["discount_minor"], 3000)
        self.assertEqual(r["baseline"]["total"]["issued"], 0)
        self.assertEqual(r["candidate"]["total"]["discount_minor"], 0)
        self.assertGreater(r["candidate"]["total"]["issued"], 0)
        self.assertEqual(r["baseline"]["rules"][0]["rule"], "cumulative")
        p = self.k.cli("simulate", "--history", path, "--program", harness.program_file(),
                       "--redemption", "1.5", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--redemption", p.stderr)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
