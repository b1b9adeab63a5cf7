"""
test_rules.py: each seed's program (examples/*.json) loaded into a real
`kopilka serve` and replayed through the HTTP API with the seed's own
numbers: seed 004 case 1 (birthday premium points beside regular points)
and case 2 (old discount card and partner club card grants), seed 001 (the
gift shop: 11 %, card from 500 roubles, promotional windows), seed 003
(cumulative discount), seed 000 (auto holding: Gold tier and privileges,
mileage and annual bonuses, bigger receipt bigger bonus, tenure). Time is
driven explicitly: purchases and events carry `at`, and due work runs with
`kopilka tick DB --now TIME` or the server's own scheduler.

    python3 test_rules.py --kopilka build/kopilka [unittest options]
"""
import datetime
import json
import time
import unittest

import harness

UTC = datetime.timezone.utc


def iso(y, m, d, hh=10, mm=0):
    return datetime.datetime(y, m, d, hh, mm, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def line(sku, amount, category="", **extra):
    d = {"sku": sku, "category": category, "amount": amount}
    d.update(extra)
    return d


class ProgramCase(unittest.TestCase):
    """A fresh database with the example `program`, a server, and cards."""

    program = None
    cards = 4
    # No scheduler on the real clock: these tests drive time with `tick`.
    serve_args = ("--tick", "0")

    def setUp(self):
        self.k = harness.Kopilka(cards=self.cards, program=self.program)
        self.addCleanup(self.k.close)
        self.k.start(serve_args=self.serve_args)

    def post(self, path, body, expect=201):
        status, ans = self.k.call("POST", path, body)
        self.assertEqual(status, expect, "POST %s %s -> %s %r"
                         % (path, json.dumps(body), status, self.k.last_raw()))
        return ans

    def purchase(self, card, receipt, lines, when, burn=None, expect=201):
        body = {"card": card, "receipt": receipt, "at": when, "lines": lines}
        if burn is not None:
            body["burn"] = burn
        self.k.set_clock(when)  # a till's `at` is within minutes of the server's time
        return self.post("/v1/purchases", body, expect)

    def quote(self, card, lines, when, burn=None):
        body = {"card": card, "at": when, "lines": lines}
        if burn is not None:
            body["burn"] = burn
        self.k.set_clock(when)
        return self.post("/v1/quote", body, 200)

    def event(self, card, event_id, type_, when, expect=201, **extra):
        body = {"id": event_id, "card": card, "type": type_, "at": when}
        body.update(extra)
        self.k.set_clock(when)
        return self.post("/v1/events", body, expect)

    def birthday(self, card, date, when):
        """Records the card's customer's birthday (YYYY-MM-DD) and runs the
        due work at `when`: birthday grants come only from the scheduler or
        `kopilka tick`, never from an outside event."""
        self.k.cli("birthday", "set", "DB", "--card", card, "--date", date)
        return self.tick(when)

    def tick(self, when):
        out = self.k.cli("tick", "DB", "--now", when).stdout
        self.assertIn("tick at", out)
        return out

    def explained(self, ans, rule):
        hits = [x for x in ans["explain"] if x["rule"] == rule]
        self.assertTrue(hits, "no explanation from rule %s: %r" % (rule, ans["explain"]))
        return hits[0]

    def verify(self):
        p = self.k.verify()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


# ---------------------------------------------------------------------------
class AutoserviceCase1(ProgramCase):
    """Seed 004 case 1: 4 % of labour, 12 % of parts; regular points never
    expire and pay at most 10 % of labour; at least 1000 points on the first
    visit; 2000 premium points on the birthday, valid 3 months, paying up to
    50 % of labour; promo items not payable with points."""

    program = "autoservice-case1.json"

    def test_birthday_premium_points_pay_half_of_labour_beside_regular_ten_percent(self):
        card = self.k.cards[0]
        a = self.purchase(card, "R-1", [line("LAB", 500000, "labor"), line("OIL", 200000, "parts")],
                          iso(2026, 3, 1))
        self.assertEqual(a["earned"], 1000)  # 200 + 240, raised to the first-visit 1000
        a2 = self.purchase(card, "R-1b", [line("TYRES", 1300000, "parts")], iso(2026, 3, 5))
        self.assertEqual(a2["earned"], 1560)  # 12 % of 13 000.00
        self.assertIn("1 birthday grants", self.birthday(card, "1990-03-14", iso(2026, 3, 14, 9)))
        c = self.k.card(card)
        self.assertEqual(c["balance"], 4560)
        lots = {l["kind"]: l for l in c["lots"]}
        self.assertEqual(lots["premium"]["remaining"], 2000)
        # From the start of 14 March in the program's +03:00, for 3 months.
        self.assertEqual(lots["premium"]["expires_at"], "2026-06-13T21:00:00Z")
        self.assertIsNone(lots["regular"]["expires_at"])

        # 10 000.00 of labour: premium may pay 5000, regular 1000, together at
        # most 5000. Premium expires first, so it goes first: 2000 + 1000.
        q = self.quote(card, [line("LAB-2", 1000000, "labor")], iso(2026, 4, 2), burn=10000)
        c = self.purchase(card, "R-2", [line("LAB-2", 1000000, "labor")], iso(2026, 4, 2),
                          burn=10000)
        for k in ("burned", "earned", "paid", "explain", "lines"):
            self.assertEqual(q[k], c[k], k)
        self.assertEqual(c["burned"], 3000)
        self.assertEqual(c["lines"][0]["paid_with_points"], 300000)
        self.assertEqual(c["paid"], 700000)
        self.assertEqual(c["earned"], 280)  # 4 % of the 7000.00 paid in money
        self.assertIn("burn-labor-10", c["burn_limited_by"])
        self.assertEqual(self.explained(c, "burn-labor-premium-50")["points"], 5000)
        self.assertEqual(self.explained(c, "burn-labor-10")["points"], 1000)
        self.assertEqual(c["balance"], 4560 - 3000 + 280)
        # A till cannot send the birthday itself.
        status, err = self.k.call("POST", "/v1/events",
                                  {"id": "bd-2026-again", "card": card, "type": "birthday"})
        self.assertEqual((status, err["error"]["code"], err["error"]["field"]),
                         (403, "forbidden", "type"))
        self.assertEqual(self.k.card(card)["balance"], 4560 - 3000 + 280)
        self.verify()

    def test_premium_alone_pays_up_to_half_of_labour_and_never_promo(self):
        card = self.k.cards[1]
        self.birthday(card, "1985-05-01", iso(2026, 5, 1, 12))
        a = self.purchase(card, "R-1", [line("LAB", 300000, "labor"),
                                        line("PROMO", 100000, "labor", promo=True)],
                          iso(2026, 5, 2), burn=2000)
        self.assertEqual(a["burned"], 1500)  # 50 % of 3000.00; the promo line pays none
        self.assertEqual(a["lines"][1]["paid_with_points"], 0)
        self.assertIn("burn-labor-premium-50", a["burn_limited_by"])

    def test_birthday_grant_comes_on_the_customers_day_once(self):
        card = self.k.cards[3]
        self.k.cli("birthday", "set", "DB", "--card", card, "--date", "1990-03-14")
        self.tick(iso(2026, 3, 12, 12))
        self.assertEqual(self.k.card(card)["balance"], 0)
        out = self.tick(iso(2026, 3, 14, 12))  # 14 March began at 21:00 UTC on the 13th (+03:00)
        self.assertIn("1 birthday grants", out)
        c = self.k.card(card)
        self.assertEqual(c["balance"], 2000)
        self.assertEqual(c["lots"][0]["kind"], "premium")
        self.assertEqual(c["lots"][0]["earned_at"], "2026-03-13T21:00:00Z")
        self.assertEqual(c["lots"][0]["expires_at"], "2026-06-13T21:00:00Z")
        self.assertEqual(c["history"][0]["type"], "grant")
        self.assertTrue(c["history"][0]["receipt"].startswith("birthday-2000/"))
        self.tick(iso(2026, 3, 20))
        self.assertEqual(self.k.card(card)["balance"], 2000)  # once a year
        self.tick(iso(2027, 3, 14, 12))
        self.assertEqual(self.k.card(card)["balance"], 2000 + 2000 - 2000)  # new; last year's expired
        self.verify()

    def test_unspent_premium_points_expire_after_three_months(self):
        card = self.k.cards[2]
        self.purchase(card, "R-1", [line("LAB", 100000, "labor")], iso(2026, 2, 1))  # 1000
        self.birthday(card, "1990-03-14", iso(2026, 3, 14, 9))
        self.tick(iso(2026, 6, 13, 20))  # an hour before expiry (21:00 UTC): nothing
        self.assertEqual(self.k.card(card)["balance"], 3000)
        out = self.tick(iso(2026, 6, 13, 22))
        self.assertIn("expired 2000 points of 1 accounts", out)
        c = self.k.card(card)
        self.assertEqual(c["balance"], 1000)
        self.assertEqual(c["history"][0]["type"], "expiry")
        self.assertEqual(c["history"][0]["points"], -2000)
        again = self.tick(iso(2026, 6, 20))  # exactly once
        self.assertIn("expired 0 points", again)
        self.assertEqual(self.k.card(card)["balance"], 1000)
        self.verify()


class SchedulerInServer(ProgramCase):
    """The server's own scheduler (--tick 1) expires points that are due,
    on the server's clock, without anyone running `kopilka tick`."""

    program = "autoservice-case1.json"
    serve_args = ("--tick", "1")

    def test_scheduler_thread_grants_birthdays_on_the_servers_day(self):
        # The server ran its jobs for today at start; tomorrow (in the
        # program's +03:00) is this customer's birthday, and the server is
        # restarted with its clock on tomorrow morning.
        card = self.k.cards[1]
        tomorrow = (datetime.datetime.now(UTC) + datetime.timedelta(hours=3, days=1)).date()
        self.k.stop()
        self.k.cli("birthday", "set", "DB", "--card", card,
                   "--date", "1988-%02d-%02d" % (tomorrow.month, tomorrow.day))
        self.k.start(serve_args=("--tick", "1", "--now",
                                 iso(tomorrow.year, tomorrow.month, tomorrow.day, 9)))
        deadline = time.monotonic() + 20
        while self.k.card(card)["balance"] != 2000:
            self.assertLess(time.monotonic(), deadline, "the scheduler never gave the grant")
            time.sleep(0.2)
        lots = self.k.card(card)["lots"]
        self.assertEqual(lots[0]["kind"], "premium")
        self.assertIn("birthday", self.k.cli("jobs", "DB").stdout)
        self.verify()

    def test_scheduler_thread_expires_due_points(self):
        # A birthday 100 days ago, granted by the scheduler of a server whose
        # clock stood on that day; then the server on the real clock expires it.
        card = self.k.cards[0]
        day = (datetime.datetime.now(UTC) + datetime.timedelta(hours=3, days=-100)).date()
        self.k.stop()
        self.k.close()
        self.k = harness.Kopilka(cards=1, program=self.program)
        self.addCleanup(self.k.close)
        card = self.k.cards[0]
        self.k.cli("birthday", "set", "DB", "--card", card,
                   "--date", "1980-%02d-%02d" % (day.month, day.day))
        self.k.start(serve_args=("--tick", "1", "--now", iso(day.year, day.month, day.day, 9)))
        deadline = time.monotonic() + 20
        while self.k.card(card)["balance"] != 2000:
            self.assertLess(time.monotonic(), deadline, "the scheduler never gave the grant")
            time.sleep(0.2)
        self.k.stop()
        self.k.start(serve_args=("--tick", "1"))
        deadline = time.monotonic() + 20
        while self.k.card(card)["balance"] != 0:
            self.assertLess(time.monotonic(), deadline, "the scheduler never expired the lot")
            time.sleep(0.2)
        c = self.k.card(card)
        self.assertEqual(c["history"][0]["type"], "expiry")
        runs = self.k.cli("jobs", "DB", "--limit", "1000").stdout
        self.assertIn("expiry", runs)
        self.verify()


# ---------------------------------------------------------------------------
class AutoserviceCase2(ProgramCase):
    """Seed 004 case 2: 10 % of labour, 5 % of parts, points pay at most
    10 % of labour; 3000 once to holders of the old discount card; 2000 for
    showing a partner club card, each partner card accepted once."""

    program = "autoservice-case2.json"

    def test_ten_percent_of_labour_five_of_parts_and_the_cap(self):
        card = self.k.cards[0]
        a = self.purchase(card, "R-1", [line("LAB", 2000000, "labor"), line("P", 1000000, "parts")],
                          iso(2026, 4, 1))
        self.assertEqual(a["earned"], 2000 + 500)
        b = self.purchase(card, "R-2", [line("LAB", 1000000, "labor"), line("P", 500000, "parts")],
                          iso(2026, 4, 20), burn=2500)
        self.assertEqual(b["burned"], 1000)  # 10 % of 10 000.00 of labour
        self.assertEqual(b["lines"][1]["paid_with_points"], 0)
        self.assertEqual(b["earned"], 900 + 250)

    def test_old_discount_card_gives_3000_once(self):
        a, b = self.k.cards[0], self.k.cards[1]
        first = self.event(a, "old-1", "old_discount_card", iso(2026, 4, 1), token="DK-000123")
        self.assertEqual(first["points"], 3000)
        self.assertEqual(self.k.card(a)["balance"], 3000)
        second = self.event(a, "old-2", "old_discount_card", iso(2026, 4, 2), token="DK-000999")
        self.assertEqual(second["points"], 0)
        self.assertIn("already given", second["refused"][0]["reason"])
        other = self.event(b, "old-3", "old_discount_card", iso(2026, 4, 3), token="DK-000123")
        self.assertEqual(other["points"], 0)
        self.assertIn("DK-000123 was already used", other["refused"][0]["reason"])
        self.assertEqual(self.k.card(b)["balance"], 0)

    def test_each_partner_club_card_is_accepted_once_program_wide(self):
        a, b = self.k.cards[0], self.k.cards[1]
        body = {"id": "club-1", "card": a, "type": "partner_card", "token": "CLUB-7781",
                "at": iso(2026, 5, 1)}
        self.k.set_clock(body["at"])
        first = self.post("/v1/events", body)
        self.assertEqual(first["points"], 2000)
        self.assertEqual(first["granted"][0]["rule"], "partner-club-card-2000")
        replay = self.post("/v1/events", body, expect=200)  # idempotent by event id
        self.assertTrue(replay["replayed"])
        self.assertEqual(replay["points"], 2000)
        self.assertEqual(self.k.card(a)["balance"], 2000)
        changed = dict(body, token="CLUB-0001")
        status, err = self.k.call("POST", "/v1/events", changed)
        self.assertEqual(status, 409)
        self.assertEqual(err["error"]["code"], "event_conflict")
        shared = self.event(b, "club-2", "partner_card", iso(2026, 5, 2), token="CLUB-7781")
        self.assertEqual(shared["points"], 0)
        own = self.event(b, "club-3", "partner_card", iso(2026, 5, 3), token="CLUB-5555")
        self.assertEqual(own["points"], 2000)
        self.assertEqual(self.k.card(b)["balance"], 2000)
        self.verify()

    def test_event_errors_name_the_field(self):
        status, err = self.k.call("POST", "/v1/events", {"id": "x", "card": self.k.cards[0]})
        self.assertEqual(status, 400)
        self.assertEqual(err["error"]["field"], "type")
        status, err = self.k.call("POST", "/v1/events", {"id": "x", "card": "2000000000008",
                                                         "type": "partner_card"})
        self.assertEqual(status, 404)
        self.assertEqual(err["error"]["code"], "unknown_card")
        # A type the program does not take from outside is refused outright.
        unknown = self.event(self.k.cards[0], "u-1", "newsletter", iso(2026, 5, 1), expect=403)
        self.assertEqual(unknown["error"]["field"], "type")
        self.assertIn("a till may send: old_discount_card, partner_card",
                      unknown["error"]["message"])


# ---------------------------------------------------------------------------
class GiftShop(ProgramCase):
    """Seed 001, "Red Cube": 11 % of each purchase, 1 point = 1 rouble, no
    product exclusions, a card from a 500-rouble purchase, promotional
    windows of 30 % and 60 %."""

    program = "gift-shop.json"

    def test_card_from_500_roubles_then_11_percent(self):
        card = self.k.cards[0]
        small = self.purchase(card, "R-1", [line("CANDLE", 30000)], iso(2026, 10, 1))
        self.assertFalse(small["joined"])
        self.assertEqual(small["earned"], 0)
        self.assertIn("500.00", self.explained(small, "card-from-500")["text"])
        self.assertEqual(self.k.card(card)["purchases"], 0)
        first = self.purchase(card, "R-2", [line("VASE", 50000)], iso(2026, 10, 2))
        self.assertTrue(first["joined"])
        self.assertEqual(first["earned"], 55)  # 11 % of 500.00
        later = self.purchase(card, "R-3", [line("CARD", 10000)], iso(2026, 10, 3))
        self.assertEqual(later["earned"], 11)  # any amount once a member
        self.assertEqual(self.k.card(card)["balance"], 66)

    def test_promotional_windows_earn_30_and_60_percent(self):
        card = self.k.cards[1]
        self.purchase(card, "R-0", [line("BOX", 100000)], iso(2026, 12, 1))  # 110
        a = self.purchase(card, "R-1", [line("BOX", 100000)], iso(2026, 12, 21))
        self.assertEqual(a["earned"], 300)
        self.assertEqual(a["explain"][0]["rule"], "promo-30")
        b = self.purchase(card, "R-2", [line("BOX", 100000)], iso(2026, 12, 28))
        self.assertEqual(b["earned"], 600)
        c = self.purchase(card, "R-3", [line("BOX", 100000)], iso(2027, 1, 5))
        self.assertEqual(c["earned"], 110)

    def test_one_point_pays_one_rouble_of_any_item(self):
        card = self.k.cards[2]
        self.purchase(card, "R-1", [line("LAMP", 100000)], iso(2026, 9, 1))  # 110 points
        a = self.purchase(card, "R-2", [line("MUG", 11000)], iso(2026, 9, 2), burn=110)
        self.assertEqual(a["burned"], 110)
        self.assertEqual(a["paid_with_points"], 11000)  # 110 points = 110.00 roubles
        self.assertEqual(a["paid"], 0)
        self.assertEqual(a["earned"], 0)
        self.assertIsNone(a["burn_limited_by"])


# ---------------------------------------------------------------------------
class CumulativeDiscount(ProgramCase):
    """Seed 003: 3 % from 5 000, 5 % from 15 000, 7 % from 25 000 roubles of
    accumulated spend, an individual rate from 100 000; returns lower the
    sum; a card that is not registered gets no discount."""

    program = "cumulative-discount.json"

    def register(self, card):
        """Registers the card's customer at the till (POST /v1/customers),
        which marks the card registered."""
        s, a = self.k.call("POST", "/v1/customers", {
            "card": card, "full_name": "Олена Коваль", "phone": "+380671234567",
            "consent": {"given": True, "text_version": "2026-01"}})
        self.assertEqual(s, 201, self.k.last_raw())
        self.assertTrue(self.k.card(card)["registered"])

    def test_steps_follow_accumulated_spend_and_a_return_lowers_it(self):
        card = self.k.cards[0]
        self.register(card)
        steps = [("R-1", 400000, 0), ("R-2", 200000, 0),   # 4 000, then 6 000 accumulated
                 ("R-3", 1000000, 30000),                   # 3 %: 15 700 after
                 ("R-4", 1000000, 50000),                   # 5 %: 25 200 after
                 ("R-5", 100000, 7000)]                     # 7 %: 26 130 after
        for i, (receipt, amount, discount) in enumerate(steps):
            a = self.purchase(card, receipt, [line("ORDER", amount)], iso(2026, 3, 1 + i))
            self.assertEqual(a["discount"], discount, receipt)
            self.assertEqual(a["paid"], amount - discount)
            if discount:
                x = self.explained(a, "cumulative")
                self.assertEqual(x["discount"], discount)
                self.assertEqual(x["kind"], "discount_cumulative")
        self.assertEqual(self.k.card(card)["spend"], 2613000)
        self.k.set_clock(iso(2026, 3, 10))
        r = self.post("/v1/returns", {"card": card, "receipt": "RET-4", "original_receipt": "R-4",
                                      "at": iso(2026, 3, 10)})
        self.assertEqual(r["spend_reversed"], 950000)
        self.assertEqual(self.k.card(card)["spend"], 1663000)  # back under 25 000
        b = self.purchase(card, "R-6", [line("ORDER", 100000)], iso(2026, 3, 11))
        self.assertEqual(b["discount"], 5000)  # 5 % again
        self.assertIn("Discount: 50.00 RUB", b["receipt_lines"])
        self.verify()

    def test_unregistered_card_gets_no_discount(self):
        card = self.k.cards[1]
        self.purchase(card, "R-1", [line("ORDER", 3000000)], iso(2026, 4, 1))
        a = self.purchase(card, "R-2", [line("ORDER", 100000)], iso(2026, 4, 2))
        self.assertEqual(a["discount"], 0)
        self.assertIn("not registered", self.explained(a, "cumulative")["text"])
        self.register(card)
        b = self.quote(card, [line("ORDER", 100000)], iso(2026, 4, 3))
        self.assertEqual(b["discount"], 7000)  # 31 000 accumulated: 7 %

    def test_individual_rate_from_100000(self):
        card = self.k.cards[2]
        self.register(card)
        self.purchase(card, "R-1", [line("CAR", 10000000)], iso(2026, 5, 1))
        a = self.quote(card, [line("ORDER", 100000)], iso(2026, 5, 2))
        self.assertEqual(a["discount"], 7000)  # no individual rate yet: the top step
        out = self.k.cli("discount", "set", "DB", "--card", card, "--percent", "12").stdout
        self.assertIn("12%", out)
        self.assertEqual(self.k.card(card)["personal_discount"], "12%")
        b = self.purchase(card, "R-2", [line("ORDER", 100000)], iso(2026, 5, 3))
        self.assertEqual(b["discount"], 12000)
        self.assertIn("individual", self.explained(b, "cumulative")["text"])


# ---------------------------------------------------------------------------
class AutoHolding(ProgramCase):
    """Seed 000: bigger receipt, bigger bonus; a bonus when a year's
    purchases pass 1000 USD; a bonus for over 30 000 km a year; a bonus for
    each full year; Gold tier with privileges the manager sees."""

    program = "auto-holding.json"

    def test_bigger_receipt_earns_a_bigger_rate(self):
        card = self.k.cards[0]
        a = self.purchase(card, "R-1", [line("SERVICE", 40000, "service")], iso(2026, 2, 1))
        self.assertEqual(a["earned"], 8)  # 2 % of 400.00
        b = self.purchase(card, "R-2", [line("SERVICE", 60000, "service")], iso(2026, 2, 2))
        self.assertEqual(b["earned"], 18)  # 3 % of 600.00
        self.assertEqual(b["explain"][0]["rate"], "3%")
        self.assertIn("receipts from 500.00", b["explain"][0]["text"])

    def test_passing_1000_usd_in_a_year_gives_a_bonus_once(self):
        card = self.k.cards[0]
        self.purchase(card, "R-1", [line("SERVICE", 60000)], iso(2026, 3, 1))  # 18
        a = self.purchase(card, "R-2", [line("TYRES", 45000)], iso(2026, 4, 1))
        self.assertEqual(a["earned"], 9 + 50)  # 2 % of 450.00 and the bonus: 1050.00 > 1000.00
        self.assertEqual(self.explained(a, "year-over-1000-usd")["points"], 50)
        b = self.purchase(card, "R-3", [line("WASH", 10000)], iso(2026, 5, 1))
        self.assertEqual(b["earned"], 2)  # already over this year
        c = self.purchase(card, "R-4", [line("CAR", 120000)], iso(2027, 1, 10))
        self.assertEqual(c["earned"], 36 + 50)  # a new year, over again at once

    def test_heavy_drivers_get_a_mileage_bonus_once_a_year(self):
        card = self.k.cards[1]
        low = self.event(card, "km-1", "annual_mileage", iso(2026, 12, 1), value=30000)
        self.assertEqual(low["points"], 0)
        self.assertIn("over 30000", low["refused"][0]["reason"])
        high = self.event(card, "km-2", "annual_mileage", iso(2026, 12, 2), value=35000)
        self.assertEqual(high["points"], 100)
        again = self.event(card, "km-3", "annual_mileage", iso(2026, 12, 20), value=41000)
        self.assertEqual(again["points"], 0)
        next_year = self.event(card, "km-4", "annual_mileage", iso(2027, 12, 2), value=32000)
        self.assertEqual(next_year["points"], 100)

    def test_gold_after_review_with_privileges_multiplier_and_discount(self):
        card, other = self.k.cards[2], self.k.cards[3]
        self.purchase(card, "R-1", [line("SERVICE", 30000)], iso(2026, 1, 10))
        self.purchase(card, "R-2", [line("PARTS", 25000)], iso(2026, 1, 20))  # 550.00 in January
        self.purchase(other, "R-3", [line("WASH", 5000)], iso(2026, 1, 21))
        self.assertIsNone(self.k.card(card)["tier"])
        self.tick(iso(2026, 1, 31, 12))  # the January review is before the purchases
        self.assertEqual(self.k.card(card)["tier"]["name"], "Silver")
        out = self.tick(iso(2026, 2, 1, 12))  # the review of 1 February (00:00 +03:00)
        self.assertIn("tier changes", out)
        c = self.k.card(card)
        self.assertEqual(c["tier"]["name"], "Gold")
        self.assertEqual(c["tier"]["privileges"], ["personal master", "free diagnostics",
                                                   "free wheel alignment", "extended warranty",
                                                   "replacement car"])
        self.assertEqual(self.k.card(other)["tier"]["name"], "Silver")
        q = self.quote(card, [line("SERVICE", 40000)], iso(2026, 2, 5))
        self.assertEqual(q["tier"]["name"], "Gold")
        self.assertEqual(q["discount"], 2000)  # Gold's 5 % of 400.00
        self.assertEqual(q["earned"], 11)  # 2 % of 380.00 = 7.6 -> x1.5 = 11.4 -> 11
        self.assertIn("Gold", " ".join(q["receipt_lines"]))
        # A year later, with no purchases since, the review steps down one level.
        self.tick(iso(2027, 2, 1, 12))
        self.assertEqual(self.k.card(card)["tier"]["name"], "Silver")
        runs = self.k.cli("jobs", "DB", "--limit", "1000").stdout
        self.assertEqual(runs.count("tier_review"), 14, runs)  # Jan 2026 .. Feb 2027, each once
        self.verify()

    def test_tenure_bonus_on_each_full_year(self):
        card = self.k.cards[0]
        issued = datetime.datetime.now(UTC) + datetime.timedelta(hours=3)  # the program's +03:00
        anniversary = issued.date().replace(year=issued.year + 1) \
            if not (issued.month == 2 and issued.day == 29) \
            else datetime.date(issued.year + 1, 2, 28)
        before = anniversary - datetime.timedelta(days=3)
        self.tick(iso(before.year, before.month, before.day, 12))
        self.assertEqual(self.k.card(card)["balance"], 0)
        out = self.tick(iso(anniversary.year, anniversary.month, anniversary.day, 12))
        self.assertIn("%d tenure grants" % len(self.k.cards), out)
        c = self.k.card(card)
        self.assertEqual(c["balance"], 25)
        self.assertEqual(c["history"][0]["type"], "grant")
        self.tick(iso(anniversary.year, anniversary.month, anniversary.day, 20))
        self.assertEqual(self.k.card(card)["balance"], 25)  # once
        second = anniversary.replace(year=anniversary.year + 1)
        self.tick(iso(second.year, second.month, second.day, 12))
        self.assertEqual(self.k.card(card)["balance"], 25 + 50)  # 2 full years: 25 x 2
        self.verify()


# ---------------------------------------------------------------------------
SCRIPT_PROGRAM = {
    "name": "Script hook",
    "rules": [{"id": "earn-5", "kind": "earn_percent", "percent": 5}],
    "script": {
        "source": [
            "function earn(b)",
            "  local n = 0",
            "  for _, l in ipairs(b.lines) do if l.category == 'tyres' then n = n + l.qty end end",
            "  if n >= 4 then return b.earned + 100, 'a set of 4 tyres: +100' end",
            "  return b.earned",
            "end",
            "function burn(b) if b.amount < 10000 then return 0 end return b.burned end",
            "function broken(b) while true do end end",
        ],
        "earn": "earn", "burn": "burn", "instructions_max": 50000,
    },
}


class ScriptHook(ProgramCase):
    """A program's Lua function adds a bonus the declarative rules cannot
    say (a full set of four tyres), through the POS API."""

    @classmethod
    def setUpClass(cls):
        import tempfile
        fd, cls.program = tempfile.mkstemp(suffix=".json", prefix="kopilka-script-")
        with open(fd, "w") as f:
            json.dump(SCRIPT_PROGRAM, f)

    @classmethod
    def tearDownClass(cls):
        import os
        os.unlink(cls.program)

    def test_script_adds_a_bonus_and_blocks_burn_on_small_baskets(self):
        card = self.k.cards[0]
        a = self.purchase(card, "R-1", [line("TYRE", 2000000, "tyres", qty=4)], iso(2026, 6, 1))
        self.assertEqual(a["earned"], 1000 + 100)
        x = self.explained(a, "script:earn")
        self.assertEqual(x["kind"], "script")
        self.assertEqual(x["points"], 100)
        self.assertIn("4 tyres", x["text"])
        b = self.purchase(card, "R-2", [line("CAP", 5000)], iso(2026, 6, 2), burn=20)
        self.assertEqual(b["burned"], 0)
        self.assertIn("script", b["burn_limited_by"])
        self.assertEqual(b["earned"], 2)
        self.verify()

    def test_a_broken_script_is_refused_at_load(self):
        import tempfile, os
        bad = dict(SCRIPT_PROGRAM, script=dict(SCRIPT_PROGRAM["script"], earn="missing"))
        fd, path = tempfile.mkstemp(suffix=".json")
        with open(fd, "w") as f:
            json.dump(bad, f)
        try:
            p = self.k.cli("program", "load", "DB", path, check=False)
        finally:
            os.unlink(path)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("script.earn", p.stderr)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main(verbosity=2)
