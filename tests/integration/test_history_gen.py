"""
test_history_gen.py: `kopilka history generate` (docs/analytics.md
"## Synthetic history") run as a command; the CSV it writes is read back
here and the four figures of seeds 000 and 001 are computed from it
independently of the generator, by the definitions of docs/analytics.md:

  1. members' average receipt / non-members' = 2.6 (within 0.5 %);
  2. the top 10 % of non-members by spend give 25 % of the non-members'
     revenue (within 0.5 percentage points);
  3. 37 % of members bought almost nothing (exactly one sale, at most the
     members' average receipt) and give 6 % of the members' revenue;
  4. 70 % of members bought within the last 12 months of the history.

Also: the CSV's shape (header, rows of a receipt consecutive, 1 to 5 lines,
the five categories, returns about 2 % of the receipts, in time order), the
same bytes for the same seed and others for another, the cards file
imported by `kopilka import DB --cards`, and refused options.

    python3 test_history_gen.py --kopilka build/kopilka [unittest options]
"""
import collections
import csv
import datetime
import filecmp
import os
import sys
import tempfile
import unittest

import harness

HEADER = ["at", "store", "receipt", "card", "kind", "sku", "category", "amount", "qty", "customer"]


def cents(text):
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def read_sales(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def figures(rows, start, months):
    """The four figures, computed from the rows of kind "sale"."""
    receipts = collections.OrderedDict()  # (store, receipt) -> [card, total, at]
    for r in rows:
        at, store, receipt, card, kind, _sku, _cat, amount, _qty, customer = r
        if kind != "sale":
            continue
        x = receipts.setdefault((store, receipt), [card, 0, at, customer])
        x[1] += cents(amount)
    m_rev = m_cnt = n_rev = n_cnt = 0
    members = collections.defaultdict(list)  # card -> [(total, at)]
    guests = collections.defaultdict(int)    # the customer of "N<id>-<k>" -> spend
    for (_store, receipt), (card, total, at, customer) in receipts.items():
        if card:
            m_rev += total
            m_cnt += 1
            members[card].append((total, at))
        else:
            n_rev += total
            n_cnt += 1
            assert customer == receipt.split("-")[0], (customer, receipt)
            guests[customer] += total
    m_avg = m_rev / m_cnt
    ratio = m_avg / (n_rev / n_cnt)
    spends = sorted(guests.values(), reverse=True)
    top = int(len(spends) * 0.1 + 0.5)
    top_revenue = sum(spends[:top]) / n_rev
    idle = [c for c, xs in members.items() if len(xs) == 1 and xs[0][0] <= m_avg]
    idle_share = len(idle) / len(members)
    idle_revenue = sum(members[c][0][0] for c in idle) / m_rev
    y, m = start.year * 12 + start.month - 1 + months - 12, start.day
    cutoff = "%04d-%02d-%02d" % (y // 12, y % 12 + 1, m)
    recent = [c for c, xs in members.items() if max(at for _t, at in xs)[:10] >= cutoff]
    return ratio, top_revenue, idle_share, idle_revenue, len(recent) / len(members)


class HistoryGenerate(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kp-history-")

    def tearDown(self):
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)

    def generate(self, name, *args):
        out = os.path.join(self.dir, name)
        p = harness.run_cli(["history", "generate", "--out", out] + [str(a) for a in args],
                            timeout=300)
        return out, p

    def check_figures(self, path, start, months):
        header, rows = read_sales(path)
        self.assertEqual(header, HEADER)
        ratio, top, idle_share, idle_rev, recent = figures(rows, start, months)
        self.assertAlmostEqual(ratio, 2.6, delta=2.6 * 0.005)
        self.assertAlmostEqual(top, 0.25, delta=0.005)
        self.assertAlmostEqual(idle_share, 0.37, delta=0.005)
        self.assertAlmostEqual(idle_rev, 0.06, delta=0.005)
        self.assertAlmostEqual(recent, 0.70, delta=0.005)
        return rows

    def test_figures_hold_for_the_defaults_and_other_sizes(self):
        path, p = self.generate("a.csv", "--seed", 42)
        rows = self.check_figures(path, datetime.date(2024, 1, 1), 24)
        self.assertIn("2.600", p.stdout)
        self.assertIn("history generate:", p.stderr)  # the progress's last line
        for seed, more, start, months in ((5, ["--members", 300, "--non-members", 5000,
                                                "--stores", 1], "2025-03-15", 13),
                                          (9, ["--members", 20000, "--non-members", 20000,
                                               "--stores", 7], "2020-02-29", 60)):
            path2, _ = self.generate("s%d.csv" % seed, "--seed", seed, "--start", start,
                                     "--months", months, *more)
            self.check_figures(path2, datetime.date.fromisoformat(start), months)
        # the shape of the default one
        cats = set()
        receipts = []  # (store, receipt, kind) in order of first row
        lines = collections.Counter()
        last_at = ""
        for r in rows:
            at, store, receipt, card, kind, sku, cat, amount, qty, customer = r
            self.assertGreaterEqual(at, last_at)
            last_at = at
            self.assertIn(kind, ("sale", "return"))
            cats.add(cat)
            self.assertTrue(sku.startswith(cat + "-"))
            self.assertGreaterEqual(int(qty), 1)
            self.assertEqual(customer, receipt.split("-")[0])
            self.assertGreaterEqual(cents(amount), 0)
            key = (store, receipt, kind)
            if not receipts or receipts[-1] != key:
                self.assertNotIn(key, lines, "rows of %s not consecutive" % (key,))
                receipts.append(key)
            lines[key] += 1
        self.assertEqual(cats, {"labor", "parts", "oil", "tires", "wash"})
        self.assertTrue(all(1 <= n <= 5 for n in lines.values()))
        sales = sum(1 for k in lines if k[2] == "sale")
        returns = [k for k in lines if k[2] == "return"]
        self.assertAlmostEqual(len(returns) / sales, 0.02, delta=0.002)
        for store, receipt, _ in returns:
            self.assertIn((store, receipt, "sale"), lines)
        self.assertEqual({r[1] for r in rows}, {"store-1", "store-2", "store-3"})
        # seasonality: April (tyres) busier than January
        months = collections.Counter(r[0][5:7] for r in rows if r[4] == "sale")
        self.assertGreater(months["04"], months["01"] * 1.3)

    def test_same_seed_same_bytes_other_seed_other_bytes(self):
        a, _ = self.generate("a.csv", "--seed", 3, "--members", 500, "--non-members", 500)
        b, _ = self.generate("b.csv", "--seed", 3, "--members", 500, "--non-members", 500)
        c, _ = self.generate("c.csv", "--seed", 4, "--members", 500, "--non-members", 500)
        self.assertTrue(filecmp.cmp(a, b, shallow=False))
        self.assertFalse(filecmp.cmp(a, c, shallow=False))

    def test_cards_file_is_imported(self):
        cards = os.path.join(self.dir, "cards.csv")
        path, p = self.generate("a.csv", "--seed", 8, "--members", 50, "--non-members", 50,
                                "--cards-out", cards)
        _, rows = read_sales(path)
        with open(cards, newline="") as f:
            listed = list(csv.reader(f))
        self.assertEqual(listed[0], ["number", "state"])
        numbers = {r[0] for r in listed[1:]}
        self.assertEqual(len(numbers), 50)
        self.assertEqual({r[3] for r in rows if r[3]}, numbers)
        k = harness.Kopilka(cards=0)
        try:
            q = k.cli("import", "DB", "--cards", cards)
            self.assertIn("cards 50 new", q.stdout)
            ((n,),) = k.query("SELECT count(*) FROM cards WHERE number LIKE 'HG-%'")
            self.assertEqual(n, 50)
        finally:
            k.close()

    def test_refusals_name_the_option(self):
        for args, word in ((["--seed", "x"], "--seed"), (["--seed", 1, "--months", 12], "--months"),
                           (["--seed", 1, "--returns", "0.9"], "--returns"),
                           (["--seed", 1, "--start", "2024-02-30"], "--start"),
                           (["--seed", 1, "--members", 5], "--members")):
            p = harness.run_cli(["history", "generate", "--out", os.path.join(self.dir, "x.csv")]
                                + [str(a) for a in args], check=False)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(word, p.stderr)
        p = harness.run_cli(["history", "--help"])
        self.assertIn("history generate", p.stdout)


if __name__ == "__main__":
    unittest.main(argv=harness.take_argv())
