"""
test_writer_cache.py: the SQLite writer's cache of what a purchase reads
(src/store/store_sqlite_cache.c, docs/architecture.md "The writer's cache")
against everything else that writes the same rows while the server serves:
CLI commands in another process (import of opening balances, cards issued,
a personal discount), the back office through the writer (a card blocked
and unblocked), and a kill -9 under load on cards used again and again.

The server runs with KOPILKA_CACHE_CHECK=1: every cache hit is read again
from SQLite and compared, and a difference stops the server (so a stale
entry fails the test even where the answer would not show it). Besides,
each purchase is compared with a quote of the same basket made just before
it, which a reader prices from the database alone: the two must agree.

    python3 test_writer_cache.py --kopilka build/kopilka [unittest options]
"""
import http.client
import os
import re
import threading
import time
import unittest

import harness
from harness import LABOR, PARTS

NOW = "2026-03-02T10:00:00Z"
PASSWORD = "writer cache staff password"
FIGURES = ("amount", "discount", "burn_requested", "burned", "paid", "earned", "balance",
           "balance_before", "lines")


def labor(amount):
    return {"sku": "LAB-1", "category": LABOR, "amount": amount}


def parts(amount):
    return {"sku": "PART-1", "category": PARTS, "amount": amount}


def cache_line(log):
    """The figures of the server's closing `writer cache:` line."""
    m = re.search(r"writer cache: cards (\d+) hits, (\d+) misses; accounts (\d+) hits", log)
    return tuple(int(x) for x in m.groups()) if m else None


class WriterCache(unittest.TestCase):
    def setUp(self):
        if harness.is_pg():
            self.skipTest("the writer's cache is the SQLite backend's")
        os.environ["KOPILKA_CACHE_CHECK"] = "1"
        self.addCleanup(os.environ.pop, "KOPILKA_CACHE_CHECK", None)
        self.k = harness.Kopilka(cards=6)
        self.addCleanup(self.k.close)
        pw = os.path.join(self.k.dir, "staff.pw")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        self.k.cli("staff", "add", "DB", "--login", "office", "--role", "admin",
                   "--password-file", pw)
        self.k.set_clock(NOW)
        self.token = None
        self.n = 0
        self.balance = {}

    def office(self, method, path, body=None, expect=200):
        if self.token is None:
            self.token = self.k.staff_token("office", PASSWORD)
        status, ans = self.k.call(method, path, body, key=None,
                                  headers={"Authorization": "Bearer " + self.token})
        self.assertEqual(status, expect, "%s %s -> %s %r" % (method, path, status,
                                                              self.k.last_raw()))
        return ans

    def buy(self, card, burn=0, expect=201):
        """A quote then the purchase of the same basket: equal figures, and
        the balance before it is the one the last answer (plus what the
        test added since) left."""
        self.n += 1
        body = {"card": card, "receipt": "WC-%d" % self.n, "burn": burn,
                "lines": [labor(100000 + 1000 * self.n), parts(5000 * (self.n % 5))]}
        quote = None
        if expect == 201:
            s, quote = self.k.call("POST", "/v1/quote", body)
            self.assertEqual(s, 200, self.k.last_raw())
        s, ans = self.k.call("POST", "/v1/purchases", body)
        self.assertEqual(s, expect, "purchase on %s -> %s %r\n%s"
                         % (card, s, self.k.last_raw(), self.k.log_tail()))
        if expect != 201:
            return ans
        for f in FIGURES:
            self.assertEqual(ans.get(f), quote.get(f), "%s: purchase %r, quote %r"
                             % (f, ans.get(f), quote.get(f)))
        if card in self.balance:
            self.assertEqual(ans["balance_before"], self.balance[card])
        self.balance[card] = ans["balance"]
        return ans

    def import_balances(self, rows, tag):
        path = os.path.join(self.k.dir, "balances-%s.csv" % tag)
        with open(path, "w") as f:
            f.write("card,points,key\n")
            for card, points in rows:
                f.write("%s,%d,%s-%s\n" % (card, points, tag, card))
        self.k.cli("import", "DB", "--balances", path)
        for card, points in rows:
            if card in self.balance:
                self.balance[card] += points

    def test_cli_and_office_writes_between_purchases_are_seen(self):
        c = self.k.cards
        for card in c[:4]:
            self.buy(card)
        for r in range(3):
            # Another process writes the accounts the cache holds.
            self.import_balances([(c[0], 700 + r), (c[1], 50)], "r%d" % r)
            a = self.buy(c[0], burn=300)
            self.assertGreater(a["burned"], 0, "the imported points were not spendable: %r" % a)
            self.buy(c[1], burn=40)
            # The back office, through the writer itself: a blocked card
            # is refused at once, and usable again once unblocked.
            self.office("POST", "/v1/admin/cards/%s/block" % c[2], {"reason": "lost"})
            e = self.buy(c[2], expect=404)
            self.assertEqual(e["error"]["code"], "unknown_card")
            self.office("POST", "/v1/admin/cards/%s/unblock" % c[2], {})
            self.buy(c[2])
            # A personal discount set and cleared by the CLI.
            self.k.cli("discount", "set", "DB", "--card", c[3], "--percent", "3")
            self.buy(c[3])
            self.k.cli("discount", "clear", "DB", "--card", c[3])
            self.buy(c[3], burn=10)
            # Cards issued meanwhile are found.
            fresh = self.k.issue_cards(1)[0]
            self.buy(fresh)
            self.buy(fresh)
        # What the server says of each card is what the answers said.
        for card, balance in self.balance.items():
            s, info = self.k.call("GET", "/v1/cards/%s" % card)
            self.assertEqual(s, 200, self.k.last_raw())
            self.assertEqual(info["balance"], balance, card)
        self.assertEqual(self.k.stop(), 0, self.k.log_tail())
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, "verify: %s %s" % (v.stdout, v.stderr))
        with open(self.k.log, errors="replace") as f:
            figures = cache_line(f.read())
        self.assertIsNotNone(figures, "no `writer cache:` line: %s" % self.k.log_tail())
        self.assertGreater(figures[0], 0, "the cache was never hit: %r" % (figures,))

    def test_kill9_under_load_on_cached_cards_loses_no_acknowledged_purchase(self):
        cards = self.k.cards[:4]
        acked, other = [], []
        lock = threading.Lock()
        stop = threading.Event()

        def worker(t):
            cl = self.k.client()
            i = 0
            try:
                while not stop.is_set():
                    body = {"card": cards[t % len(cards)], "receipt": "K-%d-%d" % (t, i),
                            "burn": 5 * (i % 3),
                            "lines": [labor(100000 + 1000 * (i % 50)), parts(5000 * (i % 7))]}
                    i += 1
                    try:
                        s, a = cl.call("POST", "/v1/purchases", body)
                    except (OSError, http.client.HTTPException):
                        return
                    with lock:
                        if s == 201:
                            acked.append((body, a))
                        else:
                            other.append((s, cl.last_raw[:300]))
            finally:
                cl.close()

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with lock:
                if len(acked) >= 300:
                    break
            time.sleep(0.05)
        self.k.kill9()
        stop.set()
        for t in threads:
            t.join(30)
        self.assertEqual(other, [])
        self.assertGreater(len(acked), 0)
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, "verify after kill -9: %s %s" % (v.stdout, v.stderr))
        self.k.start()
        for body, a in acked:
            s, r = self.k.call("POST", "/v1/purchases", body)
            self.assertEqual(s, 200, "acknowledged %s lost after kill -9: %s %r"
                             % (body["receipt"], s, self.k.last_raw()))
            self.assertEqual((r["earned"], r["burned"], r["balance"]),
                             (a["earned"], a["burned"], a["balance"]))
        self.assertEqual(self.k.stop(), 0, self.k.log_tail())
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, "verify after the replays: %s %s"
                         % (v.stdout, v.stderr))

if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
