"""
test_multi.py: two `kopilka serve` on one PostgreSQL database (issue 15,
"several servers on one database"), black-box.

- Purchases on the same cards through both servers at once: no update is
  lost. Each card's acknowledged answers chain (each one's balance_before is
  another's balance, from 0 to the final balance) and the final balance,
  read through either server, is their sum; verify is clean.
- The same receipt sent to both servers at the same moment: one operation,
  and both answers are the same answer (one of them the replay).
- A program version loaded while both serve is used by both within seconds.
- The scheduler runs each due item once across both servers: birthday
  grants once per card, their expiry once per lot, and `kopilka jobs`
  lists each (job, due item) once.

Runs on PostgreSQL only (KOPILKA_TEST_STORE=pg with KOPILKA_TEST_PG, as
tests/pg_variant.sh sets them): two servers on one SQLite file are refused
by design (the operation log's lock).

    KOPILKA_TEST_PG=$(scripts/pg.sh start) KOPILKA_TEST_STORE=pg \\
        python3 test_multi.py --kopilka build/kopilka
"""
import json
import os
import random
import threading
import time
import unittest

import harness
from harness import LABOR, PARTS

WORKERS = 8           # client threads, half on each server
PURCHASES_EACH = 12   # purchases per thread
RETRIES = 50          # a 503 means "send the same receipt again"


def basket(labor, parts=0):
    lines = [{"sku": "LAB", "category": LABOR, "amount": labor}]
    if parts:
        lines.append({"sku": "OIL", "category": PARTS, "amount": parts})
    return lines


def post_until_answered(client, path, body):
    """Sends body until the answer is not a 503 (the server asks for the
    same receipt again when its outcome is unknown); returns (status, answer)."""
    for _ in range(RETRIES):
        status, answer = client.call("POST", path, body)
        if status != 503:
            return status, answer
        time.sleep(0.05)
    raise AssertionError("%s %s: still 503 after %d tries: %r"
                         % (path, body.get("receipt"), RETRIES, answer))


class TwoServers(unittest.TestCase):
    """A database on PostgreSQL with servers A (self.a) and B (self.b)."""

    cards = 4
    serve_args = ("--tick", "0")

    def setUp(self):
        if not harness.is_pg():
            self.skipTest("several servers share a PostgreSQL database only "
                          "(KOPILKA_TEST_STORE=pg)")
        self.a = harness.Kopilka(cards=self.cards)
        self.addCleanup(self.a.close)
        self.b = self.a.another_server()
        self.addCleanup(self.b.close)

    def start_both(self, serve_args=None):
        args = self.serve_args if serve_args is None else serve_args
        self.a.start(serve_args=args)
        self.b.start(serve_args=args)

    def stop_both(self):
        self.a.stop()
        self.b.stop()

    def assert_verifies(self):
        p = self.a.verify()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


class ConcurrentPurchases(TwoServers):

    def test_purchases_on_the_same_cards_through_both_servers_lose_no_update(self):
        self.start_both()
        cards = self.a.cards
        answers = {c: [] for c in cards}
        failures = []
        lock = threading.Lock()

        def worker(i):
            server = self.a if i % 2 == 0 else self.b
            client = server.client()
            rnd = random.Random(i)
            try:
                for j in range(PURCHASES_EACH):
                    card = cards[(i + j) % len(cards)]
                    body = {"card": card, "receipt": "C-%d-%d" % (i, j),
                            "lines": basket(rnd.randrange(100000, 600000, 1000),
                                            rnd.choice((0, 150000)))}
                    if j % 3 == 2:
                        body["burn"] = 100
                    status, answer = post_until_answered(client, "/v1/purchases", body)
                    if status != 201:
                        raise AssertionError("purchase %s -> %s %r"
                                             % (body["receipt"], status, answer))
                    with lock:
                        answers[card].append(answer)
            except Exception as e:  # reported by the main thread
                with lock:
                    failures.append(repr(e))
            finally:
                client.close()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(failures, [])
        self.assertEqual(sum(len(v) for v in answers.values()), WORKERS * PURCHASES_EACH)
        for card, acked in answers.items():
            # Each acknowledged purchase moved the balance on from where the
            # one before it left it: the answers form one chain from 0.
            by_before = {}
            for ans in acked:
                self.assertNotIn(ans["balance_before"], by_before,
                                 "two purchases on %s both started from balance %d: an update "
                                 "was lost" % (card, ans["balance_before"]))
                by_before[ans["balance_before"]] = ans
            balance, seen = 0, 0
            while balance in by_before and seen <= len(acked):
                balance = by_before[balance]["balance"]
                seen += 1
            self.assertEqual(seen, len(acked), "the answers of %s do not chain from 0" % card)
            net = sum(ans["balance"] - ans["balance_before"] for ans in acked)
            self.assertEqual(balance, net)
            self.assertEqual(self.a.card(card)["balance"], net)
            self.assertEqual(self.b.card(card)["balance"], net)
        self.assert_verifies()

    def test_one_receipt_sent_to_both_servers_at_once_is_one_operation(self):
        self.start_both()
        card = self.a.cards[0]
        clients = [self.a.client(), self.b.client()]
        self.addCleanup(lambda: [c.close() for c in clients])
        earned = 0
        for round_ in range(12):
            body = {"card": card, "receipt": "SAME-%d" % round_,
                    "lines": basket(200000 + 1000 * round_, 50000)}
            gate = threading.Barrier(2)
            got = [None, None]

            def send(n):
                gate.wait()
                got[n] = post_until_answered(clients[n], "/v1/purchases", body)

            threads = [threading.Thread(target=send, args=(n,)) for n in (0, 1)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(sorted(s for s, _ in got), [200, 201], got)
            first = [a for s, a in got if s == 201][0]
            replay = dict([a for s, a in got if s == 200][0])
            self.assertIs(replay.pop("replayed"), True)
            self.assertEqual(replay, first)
            rows = self.a.query("SELECT count(*) FROM ops WHERE store = ? AND receipt = ?",
                                ("main", body["receipt"]))
            self.assertEqual(rows, [(1,)], body["receipt"])
            earned += first["balance"] - first["balance_before"]
        self.assertEqual(self.a.card(card)["balance"], earned)
        self.assert_verifies()


class ProgramVersions(TwoServers):

    def test_a_program_loaded_while_both_serve_is_used_by_both_within_seconds(self):
        self.start_both()
        # 4 % of 50 000.00 is 2000 points, past the first visit's 1000.
        quote = {"card": self.a.cards[0], "lines": basket(5000000)}
        before = [s.call("POST", "/v1/quote", quote)[1] for s in (self.a, self.b)]
        self.assertEqual([q["program_version"] for q in before], [1, 1])
        with open(harness.program_file(), "rb") as f:
            doc = json.load(f)
        rates = [r for r in doc["rules"] if r["kind"] == "earn_percent" and
                 r.get("category") == LABOR]
        self.assertEqual(len(rates), 1)
        rates[0]["percent"] += 6
        path = os.path.join(self.a.dir, "program-v2.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        out = self.a.cli("program", "load", "DB", path).stdout
        self.assertIn("2", out)
        for server in (self.a, self.b):
            deadline = time.monotonic() + 5
            while True:
                s, q = server.call("POST", "/v1/quote", quote)
                self.assertEqual(s, 200, q)
                if q["program_version"] == 2:
                    break
                self.assertLess(time.monotonic(), deadline,
                                "a server still prices with version 1 after 5 s")
                time.sleep(0.1)
            self.assertGreater(q["earned"], before[0]["earned"])
            s, p = server.call("POST", "/v1/purchases",
                               dict(quote, receipt="V2-%d" % server.port))
            self.assertEqual((s, p["program_version"], p["earned"]), (201, 2, q["earned"]))


class SchedulerOnce(TwoServers):
    """Birthday grants (2000 premium points, valid 3 months) and their
    expiry, with both servers' schedulers waking every second."""

    cards = 3

    def wait_balances(self, want, what):
        deadline = time.monotonic() + 30
        while [self.a.card(c)["balance"] for c in self.a.cards] != [want] * self.cards:
            self.assertLess(time.monotonic(), deadline, "the scheduler never " + what)
            time.sleep(0.2)
        # Several more wake-ups of both: nothing runs twice.
        time.sleep(3)
        self.assertEqual([self.b.card(c)["balance"] for c in self.a.cards], [want] * self.cards)

    def test_each_due_item_runs_once_across_both_servers(self):
        for card in self.a.cards:
            self.a.cli("birthday", "set", "DB", "--card", card, "--date", "1990-03-14")
        self.start_both(("--tick", "1", "--now", "2026-03-14T09:00:00Z"))
        self.wait_balances(2000, "granted the birthdays")
        self.stop_both()
        # After the premium points' three months (they end 2026-06-13T21:00Z):
        # the expiry, and every day's birthday run between, caught up.
        self.start_both(("--tick", "1", "--now", "2026-06-14T09:00:00Z"))
        self.wait_balances(0, "expired the birthday points")
        for card in self.a.cards:
            kinds = [h["type"] for h in self.a.card(card)["history"]]
            self.assertEqual(sorted(kinds), ["expiry", "grant"], card)
        self.stop_both()
        runs = self.a.cli("jobs", "DB", "--limit", "1000").stdout.splitlines()
        due = [tuple(line.split("\t")[1:3]) for line in runs]
        self.assertIn("birthday", {job for job, _ in due})
        self.assertGreater(len(due), 90, "a run for each day from 14 March to 14 June")
        twice = sorted({d for d in due if due.count(d) > 1})
        self.assertEqual(twice, [], "job runs recorded twice")
        self.assert_verifies()


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
