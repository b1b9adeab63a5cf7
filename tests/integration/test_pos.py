"""
test_pos.py: black-box tests of the POS API (docs/api.md) against a real
`kopilka serve`, with the program of seed 004 case 1 (examples/
autoservice-case1.json): 4 % of labour and 12 % of parts earned, points pay
at most 10 % of labour, the first visit earns at least 1000 points, promo
lines cannot be paid with points; 1 point = 1 rouble = 100 minor units.

    python3 test_pos.py --kopilka build/kopilka [unittest options]

Every test starts its own database and server (harness.Kopilka), so tests
do not depend on one another or on their order. Figures are exact.
"""
import datetime
import http.client
import json
import os
import re
import select
import socket
import threading
import time
import unittest

import harness
from harness import DEFAULT_KEY, LABOR, PARTS

# Purchases are dated explicitly (`at`), in the past, and spaced by more
# than the program's pending period, so points earned by one purchase are
# spendable by the next whichever clock the server checks them against.
T_BASE = datetime.datetime(2026, 1, 5, 10, 0, 0, tzinfo=datetime.timezone.utc)
GAP_DAYS = 30 + harness.program_pending_days()


def at(step):
    """The instant of the step-th purchase of a story (RFC 3339, UTC)."""
    t = T_BASE + datetime.timedelta(days=GAP_DAYS * step)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def labor(amount, sku="LAB-1", **extra):
    d = {"sku": sku, "category": LABOR, "amount": amount}
    d.update(extra)
    return d


def parts(amount, sku="PART-1", **extra):
    d = {"sku": sku, "category": PARTS, "amount": amount}
    d.update(extra)
    return d


def purchase_body(card, receipt, lines, burn=None, when=None):
    b = {"card": card}
    if receipt is not None:
        b["receipt"] = receipt
    if when is not None:
        b["at"] = when
    if burn is not None:
        b["burn"] = burn
    b["lines"] = lines
    return b


def luhn_digit(payload):
    """Luhn check digit for a string of digits (the card number scheme)."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def unissued_card(issued):
    """A well-formed (Luhn-valid) card number that was not issued."""
    prefix = issued[0][:2] if issued else "20"
    for n in range(1, 1000):
        payload = prefix + "%010d" % (9876543210 - n)
        number = payload + luhn_digit(payload)
        if number not in issued:
            return number
    raise AssertionError("no unissued number found")


# The figures of a priced basket: a quote and the purchase of the same basket
# must agree on all of them, and a replay must repeat them.
FIGURES = ("card", "program_version", "at", "amount", "discount", "burn_requested", "burned",
           "burn_limited_by", "paid", "earned", "balance", "balance_before", "lines",
           "explain")

BALANCE_WORD = re.compile(r"balance|баланс|остаток|залишок", re.IGNORECASE)


class KopilkaTestCase(unittest.TestCase):
    """Each test gets its own database and server: terminals "main"
    (self.k.key) and "branch" (self.key2), and 10 fresh cards."""

    cards = 10

    def setUp(self):
        self.k = harness.Kopilka(cards=self.cards)
        self.addCleanup(self.k.close)
        self.key2 = self.k.terminal_add("branch")
        # The server's clock stands at the story's first step: a till's
        # `at` must be within minutes of it (the helpers move it on).
        self.k.set_clock(at(0))

    # --- helpers -------------------------------------------------------
    def call(self, method, path, body=None, key=DEFAULT_KEY, headers=None):
        return self.k.call(method, path, body, key, headers)

    def purchase(self, card, receipt, lines, burn=None, when=None, key=DEFAULT_KEY,
                 expect=201):
        body = purchase_body(card, receipt, lines, burn, when)
        if when is not None:
            self.k.set_clock(when)
        status, ans = self.call("POST", "/v1/purchases", body, key)
        self.assertEqual(status, expect, "POST /v1/purchases %s -> %s %r"
                         % (json.dumps(body), status, self.k.last_raw()))
        self.assertIsInstance(ans, dict)
        return ans

    def quote(self, card, lines, burn=None, when=None, receipt=None):
        body = purchase_body(card, receipt, lines, burn, when)
        if when is not None:
            self.k.set_clock(when)
        status, ans = self.call("POST", "/v1/quote", body)
        self.assertEqual(status, 200, "POST /v1/quote %s -> %s %r"
                         % (json.dumps(body), status, self.k.last_raw()))
        self.assertIsInstance(ans, dict)
        return ans

    def ret(self, card, receipt, original, lines=None, key=DEFAULT_KEY, expect=201):
        body = {"card": card, "receipt": receipt, "original_receipt": original}
        if lines is not None:
            body["lines"] = lines
        status, ans = self.call("POST", "/v1/returns", body, key)
        self.assertEqual(status, expect, "POST /v1/returns %s -> %s %r"
                         % (json.dumps(body), status, self.k.last_raw()))
        self.assertIsInstance(ans, dict)
        return ans

    def assert_error(self, status, body, http_status, code, field=None, what=""):
        raw = self.k.last_raw()
        self.assertEqual(status, http_status, "%s: expected %d %s, got %s %r"
                         % (what, http_status, code, status, raw))
        self.assertIsInstance(body, dict, "%s: error body is not JSON: %r" % (what, raw))
        err = body.get("error")
        self.assertIsInstance(err, dict, "%s: no error object: %r" % (what, raw))
        self.assertEqual(err.get("code"), code, "%s: %r" % (what, raw))
        self.assertIsInstance(err.get("message"), str, "%s: %r" % (what, raw))
        self.assertTrue(err["message"].strip(), "%s: empty message: %r" % (what, raw))
        if field is not None:
            self.assertEqual(err.get("field"), field, "%s: %r" % (what, raw))

    def assert_receipt_mentions_balance(self, ans):
        lines = ans.get("receipt_lines")
        self.assertIsInstance(lines, list)
        self.assertTrue(lines, "receipt_lines is empty")
        for l in lines:
            self.assertIsInstance(l, str)
        wanted = str(ans["balance"])
        hits = [l for l in lines if BALANCE_WORD.search(l)
                and wanted in re.sub(r"[\s\u00a0\u202f]", "", l)]
        self.assertTrue(hits, "no receipt line names the balance %s: %r" % (wanted, lines))

    def assert_explained(self, ans):
        self.assertIsInstance(ans.get("explain"), list)
        self.assertTrue(ans["explain"], "explain is empty")
        for x in ans["explain"]:
            self.assertIsInstance(x.get("rule"), str)
            self.assertTrue(x["rule"], "explain entry without a rule id: %r" % x)
            self.assertIsInstance(x.get("text"), str)

    def earn_entries(self, ans):
        return sorted((x["base"], x["points"], x["rate"]) for x in ans["explain"]
                      if x.get("kind") == "earn_percent")

    def fund(self, card, labour_minor=100000000):
        """A first purchase of labour only (4 %, above the 1000 minimum):
        1 000 000.00 of labour earns 40000 points."""
        ans = self.purchase(card, "FUND-" + card, [labor(labour_minor, sku="LAB-FUND")],
                            when=at(0))
        self.assertEqual(ans["earned"], labour_minor * 4 // 100 // 100)
        return ans


# ---------------------------------------------------------------------------
class Seed004Case1(KopilkaTestCase):

    def test_case1_first_visit_minimum_then_burn_clamped_by_balance(self):
        card = self.k.cards[0]
        # First visit: labour 5000.00, parts 2000.00 -> 4 % = 200, 12 % = 240,
        # 440 raised to the first-visit minimum of 1000.
        a = self.purchase(card, "R-1", [labor(500000), parts(200000)], when=at(0))
        self.assertEqual(a["card"], card)
        self.assertEqual(a["receipt"], "R-1")
        self.assertEqual(a["store"], "main")
        self.assertEqual(a["at"], at(0))
        self.assertEqual(a["amount"], 700000)
        self.assertEqual(a["discount"], 0)
        self.assertEqual(a["burn_requested"], 0)
        self.assertEqual(a["burned"], 0)
        self.assertEqual(a["paid"], 700000)
        self.assertEqual(a["earned"], 1000)
        self.assertEqual(a["balance_before"], 0)
        self.assertEqual(a["balance"], 1000)
        self.assertNotIn("replayed", a)
        self.assertEqual(len(a["lines"]), 2)
        self.assertEqual([l["paid_with_points"] for l in a["lines"]], [0, 0])
        self.assertEqual([l["paid"] for l in a["lines"]], [500000, 200000])
        self.assertEqual(sum(l["earned"] for l in a["lines"]), 1000)
        self.assertEqual([l["sku"] for l in a["lines"]], ["LAB-1", "PART-1"])
        self.assert_explained(a)
        self.assertEqual(self.earn_entries(a), [(200000, 240, "12%"), (500000, 200, "4%")])
        bump = [x for x in a["explain"] if x.get("kind") != "earn_percent" and x["points"] == 560]
        self.assertEqual(len(bump), 1, "no explain entry for the 560-point first-visit top-up: %r"
                         % a["explain"])
        self.assert_receipt_mentions_balance(a)
        c = self.k.card(card)
        self.assertEqual(c["balance"], 1000)
        self.assertEqual(c["purchases"], 1)

        # Second visit: labour 20000.00, burn 5000 requested. The 10 % cap of
        # labour allows 2000, the balance 1000: 1000 burned. 4 % of the
        # 19000.00 paid in money = 760 earned.
        b = self.purchase(card, "R-2", [labor(2000000)], burn=5000, when=at(1))
        self.assertEqual(b["amount"], 2000000)
        self.assertEqual(b["burn_requested"], 5000)
        self.assertEqual(b["burned"], 1000)
        self.assertIsInstance(b["burn_limited_by"], str)
        self.assertTrue(b["burn_limited_by"], "burn was clamped but burn_limited_by is empty")
        self.assertEqual(b["paid"], 1900000)
        self.assertEqual(b["earned"], 760)
        self.assertEqual(b["balance_before"], 1000)
        self.assertEqual(b["balance"], 760)
        line = b["lines"][0]
        self.assertEqual((line["amount"], line["discount"], line["paid_with_points"], line["paid"],
                          line["earned"]), (2000000, 0, 100000, 1900000, 760))
        self.assert_explained(b)
        self.assertEqual(self.earn_entries(b), [(1900000, 760, "4%")])
        self.assert_receipt_mentions_balance(b)

        c = self.k.card(card)
        self.assertEqual(c["balance"], 760)
        self.assertEqual(c["purchases"], 2)
        self.assertEqual(c["debt"], 0)
        self.assertEqual([h["receipt"] for h in c["history"]], ["R-2", "R-1"])
        self.assertEqual([h["type"] for h in c["history"]], ["purchase", "purchase"])
        self.assertEqual([h["points"] for h in c["history"]], [-240, 1000])
        self.assertEqual(sum(l["remaining"] for l in c["lots"]) - c["debt"], 760)


# ---------------------------------------------------------------------------
class BurnLimits(KopilkaTestCase):

    def test_burn_above_10pct_of_labour_is_clamped_to_exactly_10pct(self):
        card = self.k.cards[0]
        self.fund(card)  # 40000 points
        # Labour 10000.00: 10 % = 1000.00 = 1000 points, whatever is asked.
        a = self.purchase(card, "R-CAP", [labor(1000000)], burn=5000, when=at(1))
        self.assertEqual(a["burn_requested"], 5000)
        self.assertEqual(a["burned"], 1000)
        self.assertIn("10%", a["burn_limited_by"])
        self.assertEqual(a["lines"][0]["paid_with_points"], 100000)
        self.assertEqual(a["lines"][0]["paid"], 900000)
        self.assertEqual(a["paid"], 900000)
        self.assertEqual(a["earned"], 360)  # 4 % of 9000.00
        self.assertEqual(a["balance_before"], 40000)
        self.assertEqual(a["balance"], 40000 - 1000 + 360)
        # Asking exactly the cap is granted in full, with no limit reported.
        b = self.purchase(card, "R-AT-CAP", [labor(1000000)], burn=1000, when=at(2))
        self.assertEqual(b["burned"], 1000)
        self.assertFalse(b.get("burn_limited_by"), b.get("burn_limited_by"))
        self.assertEqual(b["balance"], 39360 - 1000 + 360)
        self.assertEqual(self.k.card(card)["balance"], 38720)

    def test_promo_lines_cannot_be_paid_with_points(self):
        card = self.k.cards[0]
        self.fund(card)  # 40000 points
        a = self.purchase(card, "R-PROMO", [labor(1000000, sku="LAB-1"),
                                            labor(500000, sku="PROMO-1", promo=True)],
                          burn=500, when=at(1))
        self.assertEqual(a["burned"], 500)
        self.assertEqual(a["lines"][0]["paid_with_points"], 50000)
        self.assertEqual(a["lines"][0]["paid"], 950000)
        self.assertEqual(a["lines"][0]["earned"], 380)  # 4 % of 9500.00
        self.assertEqual(a["lines"][1]["promo"], True)
        self.assertEqual(a["lines"][1]["paid_with_points"], 0)
        self.assertEqual(a["lines"][1]["paid"], 500000)
        self.assertEqual(a["paid"], 1450000)
        self.assertEqual(a["balance"], 40000 - 500 + a["earned"])

    def test_all_promo_basket_burns_nothing(self):
        card = self.k.cards[0]
        self.fund(card)  # 40000 points
        a = self.purchase(card, "R-ALLPROMO", [labor(1000000, sku="PROMO-1", promo=True),
                                               parts(300000, sku="PROMO-2", promo=True)],
                          burn=500, when=at(1))
        self.assertEqual(a["burn_requested"], 500)
        self.assertEqual(a["burned"], 0)
        self.assertTrue(a["burn_limited_by"], "burn refused but burn_limited_by is empty")
        self.assertEqual([l["paid_with_points"] for l in a["lines"]], [0, 0])
        self.assertEqual([l["paid"] for l in a["lines"]], [1000000, 300000])
        self.assertEqual(a["paid"], 1300000)
        self.assertEqual(a["balance"], 40000 + a["earned"])
        self.assertEqual(self.k.card(card)["balance"], a["balance"])


# ---------------------------------------------------------------------------
class Quotes(KopilkaTestCase):

    def snapshot(self, card):
        c = self.k.card(card)
        return {k: c.get(k) for k in ("balance", "available", "pending", "debt", "purchases",
                                      "spend", "lots", "history")}

    def assert_same_figures(self, quote, purchase):
        for k in FIGURES:
            self.assertEqual(quote.get(k), purchase.get(k), "figure %r differs" % k)

    def test_quote_writes_nothing_and_equals_the_purchase(self):
        card = self.k.cards[0]
        empty = self.snapshot(card)
        self.assertEqual(empty["balance"], 0)
        self.assertEqual(empty["purchases"], 0)
        self.assertEqual(empty["history"], [])

        basket1 = [labor(500000), parts(200000)]
        q1 = self.quote(card, basket1, when=at(0))
        self.assertEqual((q1["earned"], q1["balance"]), (1000, 1000))
        self.assertEqual(self.snapshot(card), empty, "a quote changed the card")
        p1 = self.purchase(card, "R-1", basket1, when=at(0))  # still the first visit
        self.assert_same_figures(q1, p1)

        before = self.snapshot(card)
        basket2 = [labor(2000000)]
        # A quote may carry the receipt it is for; that stores nothing either.
        q2 = self.quote(card, basket2, burn=5000, when=at(1), receipt="R-2")
        self.assertEqual((q2["burned"], q2["earned"], q2["balance"]), (1000, 760, 760))
        q2again = self.quote(card, basket2, burn=5000, when=at(1))
        self.assertEqual(self.snapshot(card), before, "a quote changed the card")
        p2 = self.purchase(card, "R-2", basket2, burn=5000, when=at(1), expect=201)
        self.assertNotIn("replayed", p2)
        self.assert_same_figures(q2, p2)
        self.assert_same_figures(q2again, p2)
        self.assertEqual(self.k.card(card)["balance"], 760)


# ---------------------------------------------------------------------------
class Idempotency(KopilkaTestCase):

    def test_same_purchase_twice_returns_first_answer_and_counts_once(self):
        card = self.k.cards[0]
        body = purchase_body(card, "R-1", [labor(500000), parts(200000)], when=at(0))
        s1, a1 = self.call("POST", "/v1/purchases", body)
        self.assertEqual(s1, 201, self.k.last_raw())
        s2, a2 = self.call("POST", "/v1/purchases", body)
        self.assertEqual(s2, 200, self.k.last_raw())
        self.assertIs(a2.get("replayed"), True)
        a2.pop("replayed")
        self.assertEqual(a2, a1)
        c = self.k.card(card)
        self.assertEqual(c["balance"], 1000)
        self.assertEqual(c["purchases"], 1)
        self.assertEqual(len(c["history"]), 1)

    def test_replay_without_at_returns_the_first_instant(self):
        card = self.k.cards[0]
        body = purchase_body(card, "R-NOW", [labor(500000)])
        s1, a1 = self.call("POST", "/v1/purchases", body)
        self.assertEqual(s1, 201, self.k.last_raw())
        time.sleep(1.1)  # the server's clock moves on; the replay must not
        s2, a2 = self.call("POST", "/v1/purchases", body)
        self.assertEqual(s2, 200, self.k.last_raw())
        self.assertIs(a2.pop("replayed", None), True)
        self.assertEqual(a2, a1)
        self.assertEqual(self.k.card(card)["purchases"], 1)

    def test_same_receipt_with_different_body_is_409_receipt_conflict(self):
        card = self.k.cards[0]
        self.purchase(card, "R-1", [labor(500000), parts(200000)], when=at(0))
        for variant in (purchase_body(card, "R-1", [labor(500001), parts(200000)], when=at(0)),
                        purchase_body(card, "R-1", [labor(500000), parts(200000)], burn=10,
                                      when=at(0)),
                        purchase_body(self.k.cards[1], "R-1", [labor(500000), parts(200000)],
                                      when=at(0))):
            s, b = self.call("POST", "/v1/purchases", variant)
            self.assert_error(s, b, 409, "receipt_conflict", what=json.dumps(variant))
        c = self.k.card(card)
        self.assertEqual((c["balance"], c["purchases"]), (1000, 1))
        self.assertEqual(self.k.card(self.k.cards[1])["purchases"], 0)

    def test_same_receipt_from_another_store_is_a_separate_purchase(self):
        card = self.k.cards[0]
        basket = [labor(500000), parts(200000)]
        a = self.purchase(card, "R-1", basket, when=at(0))
        self.assertEqual((a["store"], a["earned"], a["balance"]), ("main", 1000, 1000))
        # Same body from the "branch" terminal: a new purchase (201), no longer
        # the first visit: 200 + 240 = 440.
        b = self.purchase(card, "R-1", basket, when=at(0), key=self.key2, expect=201)
        self.assertNotIn("replayed", b)
        self.assertEqual((b["store"], b["earned"], b["balance_before"], b["balance"]),
                         ("branch", 440, 1000, 1440))
        # And each store replays its own.
        r = self.purchase(card, "R-1", basket, when=at(0), key=self.key2, expect=200)
        self.assertIs(r.get("replayed"), True)
        self.assertEqual(r["store"], "branch")
        self.assertEqual(r["earned"], 440)
        r = self.purchase(card, "R-1", basket, when=at(0), expect=200)
        self.assertEqual((r["store"], r["earned"], r["balance"]), ("main", 1000, 1000))
        c = self.k.card(card)
        self.assertEqual((c["balance"], c["purchases"]), (1440, 2))
        self.assertEqual(sorted(h["store"] for h in c["history"]), ["branch", "main"])

    def test_concurrent_duplicates_apply_once(self):
        card = self.k.cards[0]
        body = json.dumps(purchase_body(card, "R-RACE", [labor(500000), parts(200000)],
                                        when=at(0))).encode()
        results = []
        lock = threading.Lock()
        barrier = threading.Barrier(8)

        def worker():
            cl = self.k.client()
            try:
                barrier.wait()
                r = cl.call("POST", "/v1/purchases", body)
            finally:
                cl.close()
            with lock:
                results.append(r)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), 8)
        statuses = sorted(s for s, _ in results)
        self.assertEqual(statuses, [200] * 7 + [201], results)
        first = [a for s, a in results if s == 201][0]
        for s, a in results:
            if s == 200:
                self.assertIs(a.pop("replayed", None), True)
                self.assertEqual(a, first)
        c = self.k.card(card)
        self.assertEqual((c["balance"], c["purchases"]), (1000, 1))


# ---------------------------------------------------------------------------
class Returns(KopilkaTestCase):

    def seed_story(self, card):
        """Seed 004 case 1: R-1 earns 1000; R-2 burns 1000 and earns 760."""
        a = self.purchase(card, "R-1", [labor(500000), parts(200000)], when=at(0))
        b = self.purchase(card, "R-2", [labor(2000000)], burn=5000, when=at(1))
        self.assertEqual((a["earned"], a["balance"]), (1000, 1000))
        self.assertEqual((b["burned"], b["earned"], b["balance"]), (1000, 760, 760))
        return a, b

    def test_whole_return_reverses_earned_and_refunds_burned(self):
        card = self.k.cards[0]
        self.purchase(card, "R-1", [labor(500000), parts(200000)], when=at(0))
        spend1 = self.k.card(card)["spend"]
        self.purchase(card, "R-2", [labor(2000000)], burn=5000, when=at(1))
        spend2 = self.k.card(card)["spend"]
        self.assertGreater(spend2, spend1)
        r = self.ret(card, "RET-1", "R-2")
        self.assertEqual(r["earned_reversed"], 760)
        self.assertEqual(r["burned_refunded"], 1000)
        self.assertEqual(r["balance"], 1000)
        self.assertEqual(r["spend_reversed"], spend2 - spend1)
        self.assertIsInstance(r["lines"], list)
        self.assert_receipt_mentions_balance(r)
        c = self.k.card(card)
        self.assertEqual(c["balance"], 1000)
        self.assertEqual(c["debt"], 0)
        self.assertEqual(c["spend"], spend1)
        self.assertEqual(c["history"][0]["receipt"], "RET-1")
        self.assertEqual(c["history"][0]["type"], "return")
        self.assertEqual(c["history"][0]["points"], 240)
        self.assertEqual(sum(l["remaining"] for l in c["lots"]) - c["debt"], 1000)

    def test_partial_return_by_line_reverses_that_part_only(self):
        card = self.k.cards[0]
        # Labour 20000.00 -> 800; parts 2 x 5000.00 -> 1200. 2000 > the minimum.
        a = self.purchase(card, "R-1", [labor(2000000, sku="LAB-1"),
                                        parts(1000000, sku="PART-1", qty=2)], when=at(0))
        self.assertEqual((a["earned"], a["balance"]), (2000, 2000))
        self.assertEqual([l["earned"] for l in a["lines"]], [800, 1200])
        r1 = self.ret(card, "RET-1", "R-1", lines=[{"sku": "PART-1", "qty": 1}])
        self.assertEqual((r1["earned_reversed"], r1["burned_refunded"], r1["balance"]),
                         (600, 0, 1400))
        self.assertEqual(r1["spend_reversed"], 500000)
        # More than what is left of the line is refused and changes nothing.
        s, b = self.call("POST", "/v1/returns", {"card": card, "receipt": "RET-X",
                                                 "original_receipt": "R-1",
                                                 "lines": [{"sku": "PART-1", "qty": 2}]})
        self.assert_error(s, b, 400, "bad_field", what="returning 2 of 1 left")
        s, b = self.call("POST", "/v1/returns", {"card": card, "receipt": "RET-Y",
                                                 "original_receipt": "R-1",
                                                 "lines": [{"sku": "NO-SUCH-SKU", "qty": 1}]})
        self.assert_error(s, b, 400, "bad_field", what="returning an sku not in the purchase")
        self.assertEqual(self.k.card(card)["balance"], 1400)
        # qty omitted: all that is left of the line.
        r2 = self.ret(card, "RET-2", "R-1", lines=[{"sku": "PART-1"}])
        self.assertEqual((r2["earned_reversed"], r2["burned_refunded"], r2["balance"]),
                         (600, 0, 800))
        # lines omitted: what is left of the purchase, the labour.
        r3 = self.ret(card, "RET-3", "R-1")
        self.assertEqual((r3["earned_reversed"], r3["burned_refunded"], r3["balance"]),
                         (800, 0, 0))
        self.assertEqual(r3["spend_reversed"], 2000000)
        c = self.k.card(card)
        self.assertEqual((c["balance"], c["debt"], c["spend"]), (0, 0, 0))

    def test_return_after_points_spent_goes_negative_and_next_purchase_repays(self):
        card = self.k.cards[0]
        self.seed_story(card)  # earned 1000 + 760, burned 1000: balance 760
        r = self.ret(card, "RET-1", "R-1")
        self.assertEqual((r["earned_reversed"], r["burned_refunded"], r["balance"]),
                         (1000, 0, -240))
        c = self.k.card(card)
        self.assertEqual(c["balance"], -240)
        self.assertGreaterEqual(c["debt"], 240)
        self.assertEqual(c["available"], 0)
        self.assertEqual(sum(l["remaining"] for l in c["lots"]) - c["debt"], -240)
        # In debt nothing can be burnt; labour 10000.00 earns 400, which first
        # repays the 240 owed.
        p = self.purchase(card, "R-3", [labor(1000000)], burn=100, when=at(2))
        self.assertEqual((p["balance_before"], p["burned"], p["earned"], p["balance"]),
                         (-240, 0, 400, 160))
        self.assertTrue(p["burn_limited_by"])
        c = self.k.card(card)
        self.assertEqual((c["balance"], c["debt"]), (160, 0))
        self.assertEqual(sum(l["remaining"] for l in c["lots"]), 160)
        # No point created or lost: 1000 + 760 + 400 earned, 1000 burned, 1000 reversed.
        self.assertEqual(1000 + 760 + 400 - 1000 - 1000, c["balance"])
        # The repaid balance is spendable again: 10 % of 10000.00 caps at 1000,
        # the balance at 160.
        q = self.quote(card, [labor(1000000)], burn=1000, when=at(3))
        self.assertEqual(q["burned"], 160)

    def test_return_of_unknown_receipt_is_404_unknown_receipt(self):
        card = self.k.cards[0]
        self.purchase(card, "R-1", [labor(500000), parts(200000)], when=at(0))
        s, b = self.call("POST", "/v1/returns",
                         {"card": card, "receipt": "RET-1", "original_receipt": "NO-SUCH"})
        self.assert_error(s, b, 404, "unknown_receipt", what="unknown original receipt")
        # A purchase of another store is unknown to this one.
        s, b = self.call("POST", "/v1/returns",
                         {"card": card, "receipt": "RET-2", "original_receipt": "R-1"},
                         key=self.key2)
        self.assert_error(s, b, 404, "unknown_receipt", what="original of another store")
        c = self.k.card(card)
        self.assertEqual((c["balance"], c["purchases"], len(c["history"])), (1000, 1, 1))

    def test_return_retried_is_idempotent(self):
        card = self.k.cards[0]
        self.seed_story(card)
        body = {"card": card, "receipt": "RET-1", "original_receipt": "R-2"}
        s1, r1 = self.call("POST", "/v1/returns", body)
        self.assertEqual(s1, 201, self.k.last_raw())
        self.assertEqual((r1["earned_reversed"], r1["burned_refunded"], r1["balance"]),
                         (760, 1000, 1000))
        s2, r2 = self.call("POST", "/v1/returns", body)
        self.assertEqual(s2, 200, self.k.last_raw())
        self.assertIs(r2.pop("replayed", None), True)
        self.assertEqual(r2, r1)
        # Same return receipt, another body: a conflict, not a second return.
        s3, b3 = self.call("POST", "/v1/returns", dict(body, original_receipt="R-1"))
        self.assert_error(s3, b3, 409, "receipt_conflict", what="return receipt reused")
        c = self.k.card(card)
        self.assertEqual(c["balance"], 1000)
        self.assertEqual([h["receipt"] for h in c["history"]], ["RET-1", "R-2", "R-1"])


# ---------------------------------------------------------------------------
def _send_raw(port, head, body, timeout=20):
    """harness.send_raw: (status, json)."""
    return harness.send_raw(port, head, body, timeout)


class Errors(KopilkaTestCase):
    """One test per documented error; then all of them in a row, after which
    the server still answers and the ledger verifies."""

    def bad_inputs(self):
        """(what, method, path, body, key, http status, code, field or None)."""
        card = self.k.cards[0]
        ok_line = labor(100000)
        nested = {"card": card, "receipt": "R-DEEP", "lines": [ok_line]}
        deep = []
        for _ in range(40):
            deep = [deep]
        nested["x"] = deep
        max64 = 9223372036854775807
        return [
            ("malformed JSON", "POST", "/v1/purchases", b'{"card": "' + card.encode() + b'", ',
             DEFAULT_KEY, 400, "bad_json", None),
            ("not JSON at all", "POST", "/v1/quote", b"card=1", DEFAULT_KEY, 400, "bad_json", None),
            ("nested past 16", "POST", "/v1/purchases", nested, DEFAULT_KEY, 400, "bad_json", None),
            # A purchase without a card is a sale without a card (test_sales.py);
            # a quote needs one.
            ("missing card", "POST", "/v1/quote", {"lines": [ok_line]},
             DEFAULT_KEY, 400, "bad_field", "card"),
            ("empty card", "POST", "/v1/purchases", {"card": "", "receipt": "R-E1",
                                                     "lines": [ok_line]},
             DEFAULT_KEY, 400, "bad_field", "card"),
            ("card not a string", "POST", "/v1/purchases",
             {"card": 2000000000017, "receipt": "R-E1", "lines": [ok_line]},
             DEFAULT_KEY, 400, "bad_field", "card"),
            ("missing receipt on a purchase", "POST", "/v1/purchases",
             {"card": card, "lines": [ok_line]}, DEFAULT_KEY, 400, "bad_field", "receipt"),
            ("negative amount", "POST", "/v1/purchases",
             {"card": card, "receipt": "R-E2", "lines": [labor(-1)]},
             DEFAULT_KEY, 400, "bad_field", "lines[0].amount"),
            ("amount as a string", "POST", "/v1/purchases",
             {"card": card, "receipt": "R-E3", "lines": [labor("100000")]},
             DEFAULT_KEY, 400, "bad_field", "lines[0].amount"),
            ("amount with a fraction", "POST", "/v1/purchases",
             {"card": card, "receipt": "R-E4", "lines": [labor(1000.5)]},
             DEFAULT_KEY, 400, "bad_field", "lines[0].amount"),
            ("amount over 10^13", "POST", "/v1/purchases",
             {"card": card, "receipt": "R-E5", "lines": [labor(10 ** 13 + 1)]},
             DEFAULT_KEY, 400, "bad_field", "lines[0].amount"),
            ("amount past int64", "POST", "/v1/quote",
             {"card": card, "lines": [labor(2 ** 64 + 5)]},
             DEFAULT_KEY, 400, "bad_field", "lines[0].amount"),
            ("amounts whose total overflows int64", "POST", "/v1/purchases",
             {"card": card, "receipt": "R-E6",
              "lines": [labor(max64, sku="A"), labor(max64, sku="B"), labor(2, sku="C")]},
             DEFAULT_KEY, 400, "bad_field", None),
            ("second line's amount wrong", "POST", "/v1/purchases",
             {"card": card, "receipt": "R-E7", "lines": [ok_line, parts(-5)]},
             DEFAULT_KEY, 400, "bad_field", "lines[1].amount"),
            ("qty 0", "POST", "/v1/purchases",
             {"card": card, "receipt": "R-E8", "lines": [labor(100, qty=0)]},
             DEFAULT_KEY, 400, "bad_field", "lines[0].qty"),
            ("qty over 100000", "POST", "/v1/purchases",
             {"card": card, "receipt": "R-E9", "lines": [labor(100, qty=100001)]},
             DEFAULT_KEY, 400, "bad_field", "lines[0].qty"),
            ("missing sku", "POST", "/v1/purchases",
             {"card": card, "receipt": "R-E10", "lines": [{"category": LABOR, "amount": 100}]},
             DEFAULT_KEY, 400, "bad_field", "lines[0].sku"),
            ("no lines", "POST", "/v1/purchases", {"card": card, "receipt": "R-E11", "lines": []},
             DEFAULT_KEY, 400, "bad_field", "lines"),
            ("201 lines", "POST", "/v1/purchases",
             {"card": card, "receipt": "R-E12",
              "lines": [labor(100, sku="L%d" % i) for i in range(201)]},
             DEFAULT_KEY, 400, "bad_field", "lines"),
            ("negative burn", "POST", "/v1/purchases",
             {"card": card, "receipt": "R-E13", "burn": -1, "lines": [ok_line]},
             DEFAULT_KEY, 400, "bad_field", "burn"),
            ("receipt over 256 bytes", "POST", "/v1/purchases",
             {"card": card, "receipt": "R" * 257, "lines": [ok_line]},
             DEFAULT_KEY, 400, "bad_field", "receipt"),
            ("bad at", "POST", "/v1/purchases",
             {"card": card, "receipt": "R-E14", "at": "yesterday", "lines": [ok_line]},
             DEFAULT_KEY, 400, "bad_field", "at"),
            ("no Authorization", "POST", "/v1/purchases",
             {"card": card, "receipt": "R-E15", "lines": [ok_line]},
             None, 401, "unauthorized", None),
            ("bad key", "POST", "/v1/purchases",
             {"card": card, "receipt": "R-E16", "lines": [ok_line]},
             "not-a-key", 401, "unauthorized", None),
            ("no key on GET card", "GET", "/v1/cards/" + card, None, None, 401,
             "unauthorized", None),
            ("unknown card", "POST", "/v1/purchases",
             {"card": unissued_card(self.k.cards), "receipt": "R-E17", "lines": [ok_line]},
             DEFAULT_KEY, 404, "unknown_card", None),
            ("unknown card on GET", "GET", "/v1/cards/" + unissued_card(self.k.cards), None,
             DEFAULT_KEY, 404, "unknown_card", None),
            ("unknown route", "GET", "/v1/nothing-here", None, DEFAULT_KEY, 404, "not_found", None),
            ("wrong method", "GET", "/v1/purchases", None, DEFAULT_KEY, 405,
             "method_not_allowed", None),
        ]

    def check(self, what):
        for case in self.bad_inputs():
            if case[0] == what:
                _, method, path, body, key, http_status, code, field = case
                s, b = self.call(method, path, body, key)
                self.assert_error(s, b, http_status, code, field, what=what)
                return
        raise AssertionError("no such case: " + what)

    def test_malformed_json_is_400_bad_json(self):
        self.check("malformed JSON")
        self.check("not JSON at all")

    def test_nesting_past_16_is_400_bad_json(self):
        self.check("nested past 16")

    def test_missing_card_is_400_bad_field_card(self):
        self.check("missing card")
        self.check("card not a string")

    def test_missing_receipt_on_purchase_is_400_bad_field_receipt(self):
        self.check("missing receipt on a purchase")

    def test_negative_amount_is_400_bad_field_lines0_amount(self):
        self.check("negative amount")
        self.check("second line's amount wrong")

    def test_amount_as_string_or_fraction_is_400_bad_field(self):
        self.check("amount as a string")
        self.check("amount with a fraction")

    def test_amount_out_of_range_or_overflowing_is_400_bad_field(self):
        self.check("amount over 10^13")
        self.check("amount past int64")
        self.check("amounts whose total overflows int64")

    def test_bad_qty_sku_lines_burn_at_are_400_bad_field(self):
        for what in ("qty 0", "qty over 100000", "missing sku", "no lines", "201 lines",
                     "negative burn", "receipt over 256 bytes", "bad at"):
            with self.subTest(what=what):
                self.check(what)

    def test_no_or_bad_key_is_401_unauthorized(self):
        self.check("no Authorization")
        self.check("bad key")
        self.check("no key on GET card")
        s, b = self.call("GET", "/v1/cards/" + self.k.cards[0], None, None,
                         headers={"Authorization": "Basic " + self.k.key})
        self.assert_error(s, b, 401, "unauthorized", what="Basic instead of Bearer")

    def test_unknown_card_is_404_unknown_card(self):
        self.check("unknown card")
        self.check("unknown card on GET")

    def test_unknown_route_404_and_wrong_method_405(self):
        self.check("unknown route")
        self.check("wrong method")

    def test_body_over_1mib_is_413_too_large(self):
        card = self.k.cards[0]
        prefix = b'{"card": "' + card.encode() + b'", "receipt": "R-BIG", "pad": "'
        body = prefix + b"a" * (1024 * 1024 + 1 - len(prefix) - 2) + b'"}'
        self.assertEqual(len(body), 1024 * 1024 + 1)
        head = ("POST /v1/purchases HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                "Content-Length: %d\r\nConnection: close\r\n\r\n" % (self.k.key, len(body))).encode()
        s, b = _send_raw(self.k.port, head, body)
        self.assertEqual(s, 413, b)
        self.assertIsInstance(b, dict, "413 without a JSON error body")
        self.assertEqual(b["error"]["code"], "too_large")
        self.assertTrue(b["error"]["message"])
        self.assertEqual(self.k.card(card)["purchases"], 0)

    def test_body_of_exactly_1mib_is_accepted(self):
        card = self.k.cards[0]
        body = json.dumps(purchase_body(card, "R-1MIB", [labor(500000), parts(200000)],
                                        when=at(0))).encode()
        body += b" " * (1024 * 1024 - len(body))
        self.assertEqual(len(body), 1024 * 1024)
        s, a = self.call("POST", "/v1/purchases", body)
        self.assertEqual(s, 201, self.k.last_raw()[:500])
        self.assertEqual(a["earned"], 1000)

    def test_strings_up_to_256_bytes_are_kept_whole(self):
        card = self.k.cards[0]
        receipt = "R" + "0123456789" * 25 + "abcde"  # 256 bytes
        sku = "S" + "x" * 254 + "z"  # 256 bytes
        self.assertEqual((len(receipt), len(sku)), (256, 256))
        a = self.purchase(card, receipt, [labor(500000, sku=sku)], when=at(0))
        self.assertEqual(a["receipt"], receipt)
        self.assertEqual(a["lines"][0]["sku"], sku)
        # Only the whole receipt replays; one differing in its last byte is new.
        r = self.purchase(card, receipt, [labor(500000, sku=sku)], when=at(0), expect=200)
        self.assertIs(r.get("replayed"), True)
        other = receipt[:-1] + "f"
        b = self.purchase(card, other, [labor(500000, sku=sku)], when=at(0), expect=201)
        self.assertEqual(b["receipt"], other)
        self.assertEqual(self.k.card(card)["purchases"], 2)
        self.ret(card, "RET-" + "y" * 252, receipt, lines=[{"sku": sku}])

    def test_server_survives_every_bad_input_and_ledger_verifies(self):
        card = self.k.cards[0]
        good = self.purchase(card, "R-GOOD", [labor(500000), parts(200000)], when=at(0))
        for case in self.bad_inputs():
            what, method, path, body, key, http_status, code, field = case
            with self.subTest(what=what):
                s, b = self.call(method, path, body, key)
                self.assert_error(s, b, http_status, code, field, what=what)
        head = ("POST /v1/purchases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                "Content-Length: %d\r\nConnection: close\r\n\r\n"
                % (self.k.key, 2 * 1024 * 1024)).encode()
        s, b = _send_raw(self.k.port, head, b"{" * (2 * 1024 * 1024))
        self.assertEqual(s, 413)
        # Still answering, nothing written by any of the above.
        self.assertTrue(self.k.alive(), self.k.log_tail())
        c = self.k.card(card)
        self.assertEqual((c["balance"], c["purchases"]), (good["balance"], 1))
        after = self.purchase(card, "R-AFTER", [labor(500000)], when=at(1))
        self.assertEqual(after["balance"], 1000 + 200)
        rc = self.k.stop()
        self.assertEqual(rc, 0, "SIGTERM after bad inputs: exit %s\n%s" % (rc, self.k.log_tail()))
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, "verify: %s %s" % (v.stdout, v.stderr))


# ---------------------------------------------------------------------------
class Lifecycle(KopilkaTestCase):

    def test_sigterm_stops_cleanly_and_data_survives_restart(self):
        card = self.k.cards[0]
        body = purchase_body(card, "R-1", [labor(500000), parts(200000)], when=at(0))
        s, first = self.call("POST", "/v1/purchases", body)
        self.assertEqual(s, 201, self.k.last_raw())
        rc = self.k.stop()
        self.assertEqual(rc, 0, "kopilka serve exited %s on SIGTERM\n%s" % (rc, self.k.log_tail()))
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, "verify: %s %s" % (v.stdout, v.stderr))
        self.k.start()
        c = self.k.card(card)
        self.assertEqual((c["balance"], c["purchases"]), (1000, 1))
        s, again = self.call("POST", "/v1/purchases", body)
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertIs(again.pop("replayed", None), True)
        self.assertEqual(again, first)


# ---------------------------------------------------------------------------
class Concurrency(KopilkaTestCase):

    THREADS = 8
    PER_THREAD = 50

    def test_parallel_purchases_on_one_card_sum_exactly(self):
        card = self.k.cards[0]
        answers = []
        failures = []
        lock = threading.Lock()
        barrier = threading.Barrier(self.THREADS)

        def worker(t):
            cl = self.k.client()
            mine = []
            try:
                barrier.wait()
                for i in range(self.PER_THREAD):
                    body = purchase_body(card, "C-%d-%d" % (t, i),
                                         [labor(1000000 + 100 * i), parts(10000 * t)],
                                         burn=10, when=at(0))
                    s, a = cl.call("POST", "/v1/purchases", body)
                    if s != 201:
                        mine.append(("fail", s, cl.last_raw[:300]))
                    else:
                        mine.append(("ok", a))
            except Exception as e:  # report, do not hang the barrier
                mine.append(("fail", "exception", repr(e)))
            finally:
                cl.close()
            with lock:
                for m in mine:
                    (answers if m[0] == "ok" else failures).append(m[1] if m[0] == "ok" else m)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(self.THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(failures, [])
        n = self.THREADS * self.PER_THREAD
        self.assertEqual(len(answers), n)
        self.assertEqual(len({a["receipt"] for a in answers}), n)
        for a in answers:
            self.assertEqual(a["balance"] - a["balance_before"], a["earned"] - a["burned"], a)
        # Serializable: sorted by balance_before, each purchase starts from the
        # balance the previous one left (balances rise: earned > burned here).
        chain = sorted(answers, key=lambda a: a["balance_before"])
        self.assertEqual(chain[0]["balance_before"], 0)
        for prev, cur in zip(chain, chain[1:]):
            self.assertEqual(cur["balance_before"], prev["balance"])
        expected = sum(a["earned"] for a in answers) - sum(a["burned"] for a in answers)
        self.assertEqual(chain[-1]["balance"], expected)
        self.assertEqual(sum(1 for a in answers if a["earned"] == 1000 and a["balance_before"] == 0), 1)
        c = self.k.card(card)
        self.assertEqual(c["balance"], expected)
        self.assertEqual(c["purchases"], n)
        self.assertEqual(len(c["history"]), 50)  # docs: newest first, at most 50
        self.assertEqual([h["receipt"] for h in c["history"]],
                         [a["receipt"] for a in reversed(chain[-50:])])
        self.k.stop()
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, "verify: %s %s" % (v.stdout, v.stderr))


# ---------------------------------------------------------------------------
def _raw_request(method, path, body, key):
    """The bytes of one HTTP/1.1 request with a JSON body."""
    payload = json.dumps(body).encode()
    head = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (method, path, key, len(payload))).encode()
    return head + payload


class EventLoop(KopilkaTestCase):
    """Purchases wait for their group commit on suspended connections, not
    on a thread each: many connections share a few threads, a client may go
    away while its purchase is being committed, and SIGTERM must wait for
    the suspended ones."""

    cards = 100

    def wait_for_purchases(self, card, n, seconds=10):
        deadline = time.monotonic() + seconds
        while True:
            c = self.k.card(card)
            if c["purchases"] >= n or time.monotonic() > deadline:
                return c
            time.sleep(0.05)

    def add_staff_for_logins(self):
        """Adds staff "anna"; returns the bytes of a login with a wrong
        password, whose answer (401) takes a deliberately slow hash
        (argon2id, about 0.13 s here)."""
        pw = "%s/pw" % self.k.dir
        with open(pw, "w") as f:
            f.write("correct horse battery staple\n")
        self.k.cli("staff", "add", "DB", "--login", "anna", "--role", "cashier",
                   "--password-file", pw)
        payload = json.dumps({"login": "anna", "password": "wrong wrong wrong"}).encode()
        return (b"POST /v1/admin/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                % len(payload)) + payload

    def send_logins(self, login, n):
        slow = [socket.create_connection(("127.0.0.1", self.k.port), timeout=20)
                for _ in range(n)]
        for s in slow:
            s.sendall(login)
        return slow

    def expect_401s(self, slow):
        for s in slow:
            self.assertIn(b" 401 ", s.recv(4096).split(b"\r\n")[0])
            s.close()

    def test_a_slow_back_office_request_does_not_stall_the_tills(self):
        # One event-loop thread. Logins run on the office lane, so a till's
        # purchase on another connection is answered while they are still
        # being checked. Run in the event loop, they would block it: the
        # purchase could not even be read before the logins were answered.
        login = self.add_staff_for_logins()
        self.k.stop()
        self.k.start(serve_args=("--http-threads", "1"))
        pending = []
        for attempt in range(3):  # a very slow machine may need another try
            slow = self.send_logins(login, 2)
            time.sleep(0.02)
            self.purchase(self.k.cards[attempt], "OFFICE-%d" % attempt, [labor(100000)],
                          when=at(0))
            answered, _, _ = select.select(slow, [], [], 0)
            pending.append(len(slow) - len(answered))
            self.expect_401s(slow)
            if pending[-1]:
                break
        self.assertGreater(max(pending), 0,
                           "the purchase was answered only after the logins: %r" % pending)

    def test_sigterm_waits_for_office_requests_in_flight(self):
        # Logins on the office lane when SIGTERM arrives are answered before
        # the server exits (it waits for resumed answers to go out, not only
        # for the work), and it exits cleanly.
        slow = self.send_logins(self.add_staff_for_logins(), 3)
        time.sleep(0.1)  # read by the server, and still hashing
        rc = self.k.stop()
        self.expect_401s(slow)
        self.assertEqual(rc, 0, "SIGTERM: exit %s\n%s" % (rc, self.k.log_tail()))

    def test_office_lane_under_many_short_connections(self):
        # Card lookups go through the office lane; each client closes its
        # connection right after the answer, racing the lane's thread that
        # resumed it. The server must answer all and survive.
        failures = []

        def worker(t):
            for i in range(25):
                try:
                    s = socket.create_connection(("127.0.0.1", self.k.port), timeout=10)
                    s.sendall(("GET /v1/cards/%s HTTP/1.1\r\nHost: x\r\nAuthorization: "
                               "Bearer %s\r\n\r\n" % (self.k.cards[t], self.k.key)).encode())
                    head = s.recv(4096).split(b"\r\n")[0]
                    s.close()
                    if b" 200 " not in head:
                        failures.append(head)
                except OSError as e:
                    failures.append(repr(e))

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(failures, [])
        self.assertTrue(self.k.alive(), self.k.log_tail())

    def test_client_closing_right_after_a_purchase_still_records_it(self):
        cards = self.k.cards[:20]
        bodies = [purchase_body(card, "GONE-%d" % i, [labor(500000), parts(200000)],
                                when=at(0)) for i, card in enumerate(cards)]
        for body in bodies:
            s = socket.create_connection(("127.0.0.1", self.k.port), timeout=10)
            s.sendall(_raw_request("POST", "/v1/purchases", body, self.k.key))
            s.close()  # at once: the answer finds no one
        # Clients that reset the connection instead (RST): their request may
        # be dropped by the kernel, but the server must survive them too.
        for i, card in enumerate(self.k.cards[20:30]):
            s = socket.create_connection(("127.0.0.1", self.k.port), timeout=10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.sendall(_raw_request("POST", "/v1/purchases", purchase_body(
                card, "RST-%d" % i, [labor(500000)], when=at(0)), self.k.key))
            s.close()
        self.assertTrue(self.k.alive(), self.k.log_tail())
        for body in bodies:
            c = self.wait_for_purchases(body["card"], 1)
            self.assertEqual((c["balance"], c["purchases"]), (1000, 1), body["card"])
            st, again = self.call("POST", "/v1/purchases", body)
            self.assertEqual(st, 200, self.k.last_raw())
            self.assertIs(again.pop("replayed", None), True)
            self.assertEqual((again["receipt"], again["earned"], again["balance"]),
                             (body["receipt"], 1000, 1000))
        for i, card in enumerate(self.k.cards[20:30]):
            st, a = self.call("POST", "/v1/purchases", purchase_body(
                card, "RST-%d" % i, [labor(500000)], when=at(0)))
            self.assertIn(st, (200, 201), self.k.last_raw())
            self.assertEqual(self.k.card(card)["purchases"], 1)
        rc = self.k.stop()
        self.assertEqual(rc, 0, "SIGTERM: exit %s\n%s" % (rc, self.k.log_tail()))
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, "verify: %s %s" % (v.stdout, v.stderr))

    def test_hundred_keepalive_connections_all_get_201_and_balances_add_up(self):
        n_threads, per_thread = 100, 5
        answers = {}  # card -> its answers
        failures = []
        lock = threading.Lock()
        barrier = threading.Barrier(n_threads)

        def worker(t):
            card = self.k.cards[t]
            cl = self.k.client()
            mine = []
            try:
                barrier.wait()
                for i in range(per_thread):
                    body = purchase_body(card, "M-%d-%d" % (t, i),
                                         [labor(100000 * (i + 1)), parts(50000 * t)],
                                         burn=10 * i, when=None)
                    st, a = cl.call("POST", "/v1/purchases", body)
                    if st != 201:
                        with lock:
                            failures.append((t, i, st, cl.last_raw[:300]))
                    else:
                        mine.append(a)
            except Exception as e:  # report, do not hang the barrier
                with lock:
                    failures.append((t, "exception", repr(e)))
            finally:
                cl.close()
            with lock:
                answers[card] = mine

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        self.assertEqual(failures, [])
        self.assertEqual(len(answers), n_threads)
        total = 0
        for card, mine in answers.items():
            self.assertEqual(len(mine), per_thread, card)
            balance = 0
            for a in mine:  # one connection, in order: each starts where the last ended
                self.assertEqual(a["card"], card)
                self.assertEqual(a["balance_before"], balance, a)
                balance += a["earned"] - a["burned"]
                self.assertEqual(a["balance"], balance, a)
            c = self.k.card(card)
            self.assertEqual((c["balance"], c["purchases"]), (balance, per_thread), card)
            total += balance
        self.assertEqual(total, sum(a["earned"] - a["burned"]
                                    for mine in answers.values() for a in mine))
        rc = self.k.stop()
        self.assertEqual(rc, 0, "SIGTERM: exit %s\n%s" % (rc, self.k.log_tail()))
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, "verify: %s %s" % (v.stdout, v.stderr))

    def test_sigterm_under_load_exits_cleanly_and_keeps_every_answered_purchase(self):
        n_threads = 32
        acked = []  # (body, answer) of every 201
        other = []
        lock = threading.Lock()
        stop = threading.Event()

        def worker(t):
            cl = self.k.client()
            i = 0
            try:
                while not stop.is_set():
                    body = purchase_body(self.k.cards[t], "T-%d-%d" % (t, i),
                                         [labor(100000 + 1000 * i)], when=at(0))
                    i += 1
                    try:
                        st, a = cl.call("POST", "/v1/purchases", body)
                    except (OSError, http.client.HTTPException):
                        return  # the server stopped: connection closed
                    with lock:
                        if st == 201:
                            acked.append((body, a))
                        elif st != 503:  # refused while stopping: allowed
                            other.append((st, cl.last_raw[:300]))
            finally:
                cl.close()

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with lock:
                if len(acked) >= 300:
                    break
            time.sleep(0.05)
        rc = self.k.stop()  # SIGTERM with every connection busy
        stop.set()
        for t in threads:
            t.join(30)
        self.assertEqual(rc, 0, "SIGTERM under load: exit %s\n%s" % (rc, self.k.log_tail()))
        self.assertEqual(other, [])
        self.assertGreater(len(acked), 0)
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, "verify: %s %s" % (v.stdout, v.stderr))
        self.k.start()
        for body, a in acked:
            st, r = self.call("POST", "/v1/purchases", body)
            self.assertEqual(st, 200, "answered %s lost after SIGTERM: %s %r"
                             % (a["receipt"], st, self.k.last_raw()))
            self.assertEqual((r["earned"], r["balance"]), (a["earned"], a["balance"]))


# ---------------------------------------------------------------------------
class SharedDatabase(KopilkaTestCase):
    """The CLI writes to the database a running server writes to."""

    def test_cli_write_gets_in_while_the_server_is_under_continuous_load(self):
        # The server keeps its transaction open across groups of purchases;
        # a CLI write must still get the database's write lock within a few
        # seconds (not fail after its 10 s busy timeout).
        stop = threading.Event()
        counts = [0] * 8
        errors = []

        def worker(t):
            cl = self.k.client()
            i = 0
            try:
                while not stop.is_set():
                    body = purchase_body(self.k.cards[t], "L-%d-%d" % (t, i),
                                         [labor(100000)], when=at(0))
                    i += 1
                    st, _ = cl.call("POST", "/v1/purchases", body)
                    if st != 201:
                        errors.append((st, cl.last_raw[:200]))
                        return
                    counts[t] += 1
            finally:
                cl.close()

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(len(counts))]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            before = sum(counts)
            t0 = time.monotonic()
            key = self.k.terminal_add("late")
            took = time.monotonic() - t0
            self.assertLess(took, 5.0, "terminal add waited %.1f s for the lock" % took)
            time.sleep(0.3)
            self.assertGreater(sum(counts), before, "the load had stopped")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertEqual(errors, [])
        self.purchase(self.k.cards[9], "LATE-1", [labor(100000)], key=key)


# ---------------------------------------------------------------------------
class DiskFull(KopilkaTestCase):
    """The server's files cannot grow (a file-size limit makes every write
    past it fail as on a full disk)."""

    def test_a_full_disk_refuses_purchases_and_loses_no_acknowledged_one(self):
        harness.sqlite_only(self, harness.FULL_DISK_IS_SQLITES)
        self.k.stop()
        sizes = [os.path.getsize(p) for p in (self.k.db, self.k.db + "-wal")
                 if os.path.exists(p)]
        self.k.start(file_size_limit=max(sizes) + 256 * 1024)
        acked, refused, other = [], [], []
        cl = self.k.client()
        for i in range(20000):
            body = purchase_body(self.k.cards[i % 10], "DF-%d" % i, [labor(100000)],
                                 when=at(0))
            st, a = cl.call("POST", "/v1/purchases", body)
            if st == 201:
                acked.append((body, a))
            elif st == 503:
                refused.append(a)
                if len(refused) == 5:
                    break
            else:
                other.append((st, cl.last_raw[:300]))
        cl.close()
        self.assertEqual(other, [])
        self.assertGreater(len(acked), 0)
        self.assertEqual(len(refused), 5, "the file-size limit was never reached")
        self.assertEqual(refused[0]["error"]["code"], "unavailable")
        self.assertTrue(self.k.alive(), self.k.log_tail())
        self.k.stop()
        # With room again, the next start recovers every acknowledged purchase.
        self.k.start()
        for body, a in acked:
            st, r = self.call("POST", "/v1/purchases", body)
            self.assertEqual(st, 200, "acknowledged %s lost: %s %r"
                             % (a["receipt"], st, self.k.last_raw()))
            self.assertEqual((r["earned"], r["balance"]), (a["earned"], a["balance"]))
        self.purchase(self.k.cards[0], "DF-AFTER", [labor(100000)], when=at(1))
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, "verify: %s %s" % (v.stdout, v.stderr))


# ---------------------------------------------------------------------------
class Crash(KopilkaTestCase):

    THREADS = 4

    def test_kill9_mid_load_loses_no_acknowledged_purchase(self):
        cards = self.k.cards[:self.THREADS]
        acked = []      # (body bytes, status, answer) of every 2xx
        unanswered = []  # bodies sent without an answer (in flight at the kill)
        other = []
        lock = threading.Lock()
        stop = threading.Event()

        def worker(t):
            cl = self.k.client()
            i = 0
            try:
                while not stop.is_set():
                    body = json.dumps(purchase_body(
                        cards[t], "K-%d-%d" % (t, i),
                        [labor(100000 + 1000 * (i % 50)), parts(5000 * (i % 7))],
                        burn=5 * (i % 3), when=at(0))).encode()
                    i += 1
                    try:
                        s, a = cl.call("POST", "/v1/purchases", body)
                    except (OSError, http.client.HTTPException):
                        with lock:
                            unanswered.append(body)
                        return
                    with lock:
                        if 200 <= s < 300 and isinstance(a, dict):
                            acked.append((body, s, a))
                        else:
                            other.append((s, cl.last_raw[:300]))
            finally:
                cl.close()

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(self.THREADS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            time.sleep(0.05)
            with lock:
                if len(acked) >= 200 and time.monotonic() > deadline - 1.0:
                    break
        self.k.kill9()
        stop.set()
        for t in threads:
            t.join(30)
        self.assertEqual(other, [])
        self.assertGreater(len(acked), 0, "nothing was acknowledged before the kill")
        for body, s, a in acked:
            self.assertEqual(s, 201)

        v = self.k.verify()
        self.assertEqual(v.returncode, 0, "verify after kill -9: %s %s" % (v.stdout, v.stderr))
        self.k.start()

        final = {}  # receipt -> answer, for every purchase now known to exist
        for body, _, a in acked:
            s, r = self.call("POST", "/v1/purchases", body)
            self.assertEqual(s, 200, "acknowledged %s lost after the crash: %s %r"
                             % (a["receipt"], s, self.k.last_raw()))
            self.assertIs(r.get("replayed"), True)
            self.assertEqual((r["earned"], r["burned"], r["balance"]),
                             (a["earned"], a["burned"], a["balance"]), a["receipt"])
            final[a["receipt"]] = r
        # In-flight purchases were either committed (replay) or not (new now).
        for body in unanswered:
            s, r = self.call("POST", "/v1/purchases", body)
            self.assertIn(s, (200, 201), self.k.last_raw())
            final[r["receipt"]] = r
        for card in cards:
            mine = [r for r in final.values() if r["card"] == card]
            c = self.k.card(card)
            self.assertEqual(c["purchases"], len(mine), card)
            self.assertEqual(c["balance"], sum(r["earned"] - r["burned"] for r in mine), card)
        self.k.stop()
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, "verify after restart: %s %s" % (v.stdout, v.stderr))


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
