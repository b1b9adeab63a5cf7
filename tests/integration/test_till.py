"""
test_till.py: a till sells and returns; it never creates points by itself
(issue 9). Black-box tests against a real `kopilka serve`:

- outside events: time-driven grants (birthday, tenure) come only from the
  scheduler, and a program declares which event types a till, a partner or
  the back office may send (`event_sources`); everything else is 403;
- a till's clock is bounded (`till.clock_skew_minutes`): purchases, quotes,
  returns and events dated years away are refused, and an offline till's
  later upload is its own mode (`"offline": true`, `till.offline_days`),
  marked on the operation and kept through the operation log;
- a purchase is returned at any store of the program (`original_store`);
- a customer who forgot the card is found by phone (`"phone"` instead of
  `"card"`, `POST /v1/identify`) when the program allows it.

The server's clock is fixed with `--now` (harness set_clock), so every
figure is exact.

    python3 test_till.py --kopilka build/kopilka [unittest options]
"""
import json
import os
import unittest

import harness
from harness import LABOR, PARTS

NOW = "2026-11-25T10:00:00Z"
PASSWORD = "correct horse battery"


def lines(amount=500000):
    return [{"sku": "LAB-1", "category": LABOR, "amount": amount},
            {"sku": "PART-1", "category": PARTS, "amount": 200000}]


def program_file(directory, name, example="autoservice-case1.json", **sections):
    """An example program with sections added or replaced; returns its path."""
    with open(harness.program_file(example), "rb") as f:
        doc = json.load(f)
    doc.update(sections)
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


class TillCase(unittest.TestCase):
    """A fresh database with `example` (plus `sections`), terminals "main"
    and "branch", a server whose clock stands at NOW."""

    example = "autoservice-case1.json"
    sections = None
    cards = 4

    def setUp(self):
        self.k = harness.Kopilka(cards=self.cards, program=self.example)
        self.addCleanup(self.k.close)
        if self.sections:
            self.load(**self.sections)
        self.key2 = self.k.terminal_add("branch")
        self.k.set_clock(NOW)

    def load(self, example=None, **sections):
        path = program_file(self.k.dir, "program-till.json", example or self.example, **sections)
        return harness.run_cli(["program", "load", self.k.db, path], check=False)

    def post(self, path, body, expect, key=harness.DEFAULT_KEY):
        status, ans = self.k.call("POST", path, body, key)
        self.assertEqual(status, expect, "POST %s %s -> %s %r"
                         % (path, json.dumps(body), status, self.k.last_raw()))
        return ans

    def assert_error(self, ans, code, field, *words):
        self.assertEqual((ans["error"]["code"], ans["error"].get("field")), (code, field), ans)
        for w in words:
            self.assertIn(w, ans["error"]["message"])

    def staff_token(self, role):
        pw = os.path.join(self.k.dir, "password")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        login = "u_" + role
        harness.run_cli(["staff", "add", self.k.db, "--login", login, "--role", role,
                         "--password-file", pw])
        a = self.post("/v1/admin/login", {"login": login, "password": PASSWORD}, 200, key=None)
        return a["token"]


# ---------------------------------------------------------------------------
class OutsideEvents(TillCase):

    def test_till_birthday_event_is_refused_and_grants_nothing(self):
        # Seed 004 case 1 grants 2000 premium points on the birthday; this card
        # has no customer and no birthday. Before: 201 and 2000 points.
        card = self.k.cards[0]
        ans = self.post("/v1/events", {"id": "E-1", "card": card, "type": "birthday"}, 403)
        self.assert_error(ans, "forbidden", "type", '"birthday" is raised by the server itself')
        for t in ("tenure", "registration"):
            ans = self.post("/v1/events", {"id": "E-" + t, "card": card, "type": t}, 403)
            self.assert_error(ans, "forbidden", "type", "no outside source may send it")
        c = self.k.card(card)
        self.assertEqual((c["balance"], c["history"]), (0, []))

    def test_kopilka_event_is_the_back_office_and_cannot_send_a_birthday(self):
        self.k.stop()
        card = self.k.cards[0]
        p = self.k.cli("event", "DB", "--card", card, "--type", "birthday", "--id", "E-1",
                       check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("raised by the server itself", p.stderr)
        self.k.start()
        self.assertEqual(self.k.card(card)["balance"], 0)

    def test_an_undeclared_event_type_is_refused(self):
        ans = self.post("/v1/events", {"id": "E-1", "card": self.k.cards[0], "type": "survey"},
                        403)
        self.assert_error(ans, "forbidden", "type", 'events of type "survey"',
                          "a till may send: nothing")

    def test_back_dated_yearly_events_grant_once_not_five_times(self):
        # seed 000: a mileage bonus once a year; back-dating `at` to 2019..2023
        # used to grant it five times.
        self.load_example("auto-holding.json")
        card = self.k.cards[0]
        for year in range(2019, 2024):
            ans = self.post("/v1/events", {"id": "km-%d" % year, "card": card,
                                           "type": "annual_mileage", "value": 32000,
                                           "at": "%d-12-01T10:00:00Z" % year}, 400)
            self.assert_error(ans, "bad_field", "at", "behind the server's time",
                              "till.clock_skew_minutes")
        now = self.post("/v1/events", {"id": "km-now", "card": card, "type": "annual_mileage",
                                       "value": 32000}, 201)
        self.assertEqual((now["points"], now["at"]), (100, NOW))
        self.assertEqual(self.k.card(card)["balance"], 100)

    def load_example(self, example):
        self.k.stop()
        harness.run_cli(["program", "load", self.k.db, harness.program_file(example)])
        self.k.start()

    def test_program_declares_which_source_sends_which_type(self):
        rules = json.load(open(harness.program_file("auto-holding.json")))["rules"]
        self.k.stop()
        p = self.load(example="auto-holding.json", rules=rules, event_sources=[
            {"type": "survey", "from": ["back_office"]},
            {"type": "annual_mileage", "from": ["till", "partner"]}])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.k.start()
        card = self.k.cards[0]
        ans = self.post("/v1/events", {"id": "S-1", "card": card, "type": "survey"}, 403)
        self.assert_error(ans, "forbidden", "type",
                          'does not accept "survey" from a till credential',
                          "a till may send: annual_mileage")
        office = self.staff_token("call_centre")
        ok = self.post("/v1/events", {"id": "S-1", "card": card, "type": "survey"}, 201,
                       key=office)
        self.assertEqual((ok["points"], ok["store"]), (5, "#office"))
        again = self.post("/v1/events", {"id": "S-1", "card": card, "type": "survey"}, 200,
                          key=office)
        self.assertTrue(again["replayed"])
        ans = self.post("/v1/events", {"id": "K-1", "card": card, "type": "annual_mileage",
                                       "value": 10}, 403, key=office)
        self.assert_error(ans, "forbidden", "type", "a back_office may send: survey")
        auditor = self.staff_token("auditor")
        ans = self.post("/v1/events", {"id": "S-2", "card": card, "type": "survey"}, 403,
                        key=auditor)
        self.assertEqual(ans["error"]["code"], "forbidden")
        self.assertEqual(self.k.card(card)["balance"], 5)

    def test_program_file_refuses_bad_event_sources_and_till_settings(self):
        self.k.stop()
        cases = [
            ({"event_sources": [{"type": "birthday", "from": ["till"]}]},
             "event_sources[0].type", "raised by the server itself"),
            ({"event_sources": [{"type": "survey", "from": ["cashier"]}]},
             "event_sources[0].from", '"till", "partner" or "back_office"'),
            ({"event_sources": [{"type": "survey", "from": []}]},
             "event_sources[0].from", "non-empty array"),
            ({"event_sources": [{"type": "survey", "from": ["till"]},
                                {"type": "survey", "from": ["partner"]}]},
             "event_sources[1].type", "declared twice"),
            ({"till": {"clock_skew_minutes": 100000}}, "till.clock_skew_minutes",
             "from 0 to 1440"),
            ({"till": {"offline_days": -1}}, "till.offline_days", "from 0 to 90"),
            ({"till": {"identify_by_phone": "yes"}}, "till.identify_by_phone", "true or false"),
            ({"till": {"skew": 5}}, "till.skew", "unknown field"),
        ]
        for sections, field, words in cases:
            p = self.load(**sections)
            self.assertNotEqual(p.returncode, 0, sections)
            self.assertIn(field, p.stderr, sections)
            self.assertIn(words, p.stderr, sections)


# ---------------------------------------------------------------------------
class TillClock(TillCase):

    def test_purchases_dated_2001_or_2031_are_refused_and_record_nothing(self):
        card = self.k.cards[0]
        for when, words in (("2001-01-01T10:00:00Z", "behind the server's time"),
                            ("2031-01-01T10:00:00Z", "ahead of the server's time")):
            ans = self.post("/v1/purchases", {"card": card, "receipt": "R-" + when[:4],
                                              "at": when, "lines": lines()}, 400)
            self.assert_error(ans, "bad_field", "at", when, words, "by more than 5 minutes",
                              "till.clock_skew_minutes")
        c = self.k.card(card)
        self.assertEqual((c["balance"], c["purchases"], c["history"]), (0, 0, []))

    def test_the_window_is_five_minutes_each_way_by_default(self):
        card = self.k.cards[0]
        ok = self.post("/v1/purchases", {"card": card, "receipt": "R-1",
                                         "at": "2026-11-25T09:55:00Z", "lines": lines()}, 201)
        self.assertEqual(ok["at"], "2026-11-25T09:55:00Z")
        self.post("/v1/purchases", {"card": card, "receipt": "R-2",
                                    "at": "2026-11-25T10:05:00Z", "lines": lines()}, 201)
        for when in ("2026-11-25T09:54:59Z", "2026-11-25T10:05:01Z"):
            ans = self.post("/v1/purchases", {"card": card, "receipt": "R-" + when,
                                              "at": when, "lines": lines()}, 400)
            self.assertEqual(ans["error"]["field"], "at")
        self.assertEqual(self.k.card(card)["purchases"], 2)

    def test_a_retry_after_the_window_gets_the_first_answer(self):
        card = self.k.cards[0]
        body = {"card": card, "receipt": "R-1", "at": NOW, "lines": lines()}
        first = self.post("/v1/purchases", body, 201)
        self.k.set_clock("2026-11-25T12:00:00Z")
        again = self.post("/v1/purchases", body, 200)
        self.assertTrue(again["replayed"])
        self.assertEqual(again["earned"], first["earned"])

    def test_a_return_and_an_event_are_bounded_too(self):
        card = self.k.cards[0]
        self.post("/v1/purchases", {"card": card, "receipt": "R-1", "lines": lines()}, 201)
        ans = self.post("/v1/returns", {"card": card, "receipt": "RET-1", "original_receipt": "R-1",
                                        "at": "2025-01-01T00:00:00Z"}, 400)
        self.assert_error(ans, "bad_field", "at", "behind the server's time")
        self.assertEqual(self.k.card(card)["balance"], 1000)

    def test_program_sets_the_window(self):
        self.k.stop()
        self.assertEqual(self.load(till={"clock_skew_minutes": 60}).returncode, 0)
        self.k.start()
        card = self.k.cards[0]
        self.post("/v1/purchases", {"card": card, "receipt": "R-1",
                                    "at": "2026-11-25T09:01:00Z", "lines": lines()}, 201)
        ans = self.post("/v1/purchases", {"card": card, "receipt": "R-2",
                                          "at": "2026-11-25T11:01:00Z", "lines": lines()}, 400)
        self.assert_error(ans, "bad_field", "at", "by more than 60 minutes",
                          "program version 2")


class GiftShopQuote(TillCase):
    example = "gift-shop.json"

    def test_a_quote_dated_a_month_ahead_gets_no_promotion(self):
        # Promotions of 30 % and 60 % run from 20 December; it is 25 November.
        card = self.k.cards[0]
        basket = [{"sku": "BOX", "category": "", "amount": 100000}]
        ans = self.post("/v1/quote", {"card": card, "at": "2026-12-28T10:00:00Z",
                                      "lines": basket}, 400)
        self.assert_error(ans, "bad_field", "at", "ahead of the server's time",
                          "may not date an operation in the future")
        q = self.post("/v1/quote", {"card": card, "lines": basket}, 200)
        self.assertEqual((q["at"], q["earned"]), (NOW, 110))  # 11 %, no promotion


# ---------------------------------------------------------------------------
class OfflineUpload(TillCase):

    def test_offline_upload_within_the_limit_is_accepted_and_marked(self):
        card = self.k.cards[0]
        body = {"card": card, "receipt": "OFF-1", "at": "2026-11-23T12:00:00Z", "offline": True,
                "lines": lines()}
        a = self.post("/v1/purchases", body, 201)
        self.assertEqual((a["offline"], a["at"], a["earned"]), (True, body["at"], 1000))
        self.assertEqual(self.k.card(card)["history"][0]["at"], body["at"])
        again = self.post("/v1/purchases", body, 200)
        self.assertEqual((again["replayed"], again["offline"]), (True, True))
        # The same receipt without the mark is another request.
        online = dict(body)
        del online["offline"]
        ans = self.post("/v1/purchases", online, 409)
        self.assertEqual(ans["error"]["code"], "receipt_conflict")

    def test_offline_upload_past_the_limit_or_without_at_is_refused(self):
        card = self.k.cards[0]
        ans = self.post("/v1/purchases", {"card": card, "receipt": "OFF-1", "offline": True,
                                          "at": "2026-11-21T09:00:00Z", "lines": lines()}, 400)
        self.assert_error(ans, "bad_field", "at", "more than 3 days before",
                          "till.offline_days = 3")
        ans = self.post("/v1/purchases", {"card": card, "receipt": "OFF-2", "offline": True,
                                          "lines": lines()}, 400)
        self.assert_error(ans, "bad_field", "at", 'is required with "offline": true')
        ans = self.post("/v1/purchases", {"card": card, "receipt": "OFF-3", "offline": True,
                                          "at": "2026-11-26T09:00:00Z", "lines": lines()}, 400)
        self.assert_error(ans, "bad_field", "at", "ahead of the server's time")
        ans = self.post("/v1/quote", {"card": card, "offline": True, "lines": lines()}, 400)
        self.assert_error(ans, "bad_field", "offline", "only purchases are uploaded offline")
        ans = self.post("/v1/purchases", {"card": card, "receipt": "OFF-4", "offline": "yes",
                                          "lines": lines()}, 400)
        self.assert_error(ans, "bad_field", "offline", "true or false")
        self.assertEqual(self.k.card(card)["purchases"], 0)

    def test_a_program_without_offline_uploads_refuses_them(self):
        self.k.stop()
        self.assertEqual(self.load(till={"offline_days": 0}).returncode, 0)
        self.k.start()
        ans = self.post("/v1/purchases", {"card": self.k.cards[0], "receipt": "OFF-1",
                                          "offline": True, "at": NOW, "lines": lines()}, 400)
        self.assert_error(ans, "bad_field", "offline", "accepts no offline uploads")

    def test_offline_mark_survives_a_crash_through_the_operation_log(self):
        card = self.k.cards[0]
        body = {"card": card, "receipt": "OFF-1", "at": "2026-11-24T12:00:00Z", "offline": True,
                "lines": lines()}
        first = self.post("/v1/purchases", body, 201)
        self.k.kill9()
        self.k.start()
        again = self.post("/v1/purchases", body, 200)
        del again["replayed"]
        self.assertEqual(again, first)
        self.k.stop()
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)


# ---------------------------------------------------------------------------
class ReturnAnywhere(TillCase):

    def test_a_purchase_is_returned_at_another_store(self):
        card = self.k.cards[0]
        p = self.post("/v1/purchases", {"card": card, "receipt": "R-1", "lines": lines()}, 201)
        self.assertEqual((p["store"], p["earned"]), ("main", 1000))
        # At the branch, without naming the store: not found, and told how.
        body = {"card": card, "receipt": "RET-1", "original_receipt": "R-1"}
        ans = self.post("/v1/returns", body, 404, key=self.key2)
        self.assert_error(ans, "unknown_receipt", "original_receipt",
                          "store branch has no purchase with receipt R-1", '"original_store"')
        body["original_store"] = "main"
        r = self.post("/v1/returns", body, 201, key=self.key2)
        self.assertEqual((r["store"], r["original_store"], r["earned_reversed"], r["balance"]),
                         ("branch", "main", 1000, 0))
        again = self.post("/v1/returns", body, 200, key=self.key2)
        self.assertTrue(again["replayed"])
        # The return's key is (branch, RET-1): at main the number is free,
        # and the purchase has nothing left to return.
        ans = self.post("/v1/returns", {"card": card, "receipt": "RET-1",
                                        "original_receipt": "R-1"}, 400)
        self.assertNotEqual(ans["error"]["code"], "receipt_conflict")
        c = self.k.card(card)
        self.assertEqual((c["balance"], c["spend"]), (0, 0))

    def test_a_return_at_its_own_store_names_it(self):
        card = self.k.cards[0]
        self.post("/v1/purchases", {"card": card, "receipt": "R-1", "lines": lines()}, 201)
        r = self.post("/v1/returns", {"card": card, "receipt": "RET-1",
                                      "original_receipt": "R-1"}, 201)
        self.assertEqual((r["store"], r["original_store"]), ("main", "main"))
        ans = self.post("/v1/returns", {"card": card, "receipt": "RET-2", "original_receipt": "R-1",
                                        "original_store": "nowhere"}, 404, key=self.key2)
        self.assert_error(ans, "unknown_receipt", "original_receipt",
                          "store nowhere has no purchase with receipt R-1")


# ---------------------------------------------------------------------------
class PhoneAtTheTill(TillCase):

    sections = {"till": {"identify_by_phone": True}}
    PHONE = "+7 916 765-43-21"

    def register(self, card, phone):
        body = {"card": card, "full_name": "Анна Смирнова", "phone": phone,
                "consent": {"given": True, "text_version": "2026-01"}}
        return self.post("/v1/customers", body, 201)

    def test_a_customer_without_the_card_buys_by_phone(self):
        card = self.k.cards[1]
        self.register(card, "+79167654321")
        typed = "+7 (916) 765-43-21"
        found = self.post("/v1/identify", {"phone": typed}, 200)
        self.assertEqual((found["identified_by"], found["card"], found["balance"]),
                         ("phone", card, 0))
        q = self.post("/v1/quote", {"phone": typed, "lines": lines()}, 200)
        self.assertEqual((q["card"], q["identified_by"], q["earned"]), (card, "phone", 1000))
        body = {"phone": typed, "receipt": "R-1", "lines": lines()}
        a = self.post("/v1/purchases", body, 201)
        self.assertEqual((a["card"], a["identified_by"], a["earned"], a["balance"]),
                         (card, "phone", 1000, 1000))
        again = self.post("/v1/purchases", body, 200)
        self.assertEqual((again["replayed"], again["identified_by"], again["balance"]),
                         (True, "phone", 1000))
        self.k.kill9()
        self.k.start()
        after = self.post("/v1/purchases", body, 200)
        del after["replayed"]
        self.assertEqual(after, a)
        self.assertEqual(self.k.card(card)["balance"], 1000)

    def test_the_phone_is_found_however_the_cashier_types_it(self):
        card = self.k.cards[1]
        self.register(card, "8 916 765-43-21")  # stored as +79167654321 (country RU)
        for typed in ("8 916 765-43-21", "8(916)7654321", "+7 916 765 43 21",
                      "916 765-43-21", "79167654321"):
            found = self.post("/v1/identify", {"phone": typed}, 200)
            self.assertEqual((found["identified_by"], found["card"]), ("phone", card), typed)

    def test_a_resent_phone_purchase_gets_its_first_answer_after_the_card_changed(self):
        card = self.k.cards[1]
        self.register(card, "+79167654321")
        body = {"phone": "8 916 765-43-21", "receipt": "R-9", "lines": lines()}
        first = self.post("/v1/purchases", body, 201)
        office = self.staff_token("manager")
        s, _ = self.k.call("POST", "/v1/admin/cards/%s/block" % card, {"reason": "lost"},
                           key=office)
        self.assertEqual(s, 200, self.k.last_raw())
        again = self.post("/v1/purchases", body, 200)  # not 404: the phone is not looked up
        self.assertTrue(again.pop("replayed"))
        self.assertEqual(again, first)
        other = dict(body, lines=lines() + lines())
        ans = self.post("/v1/purchases", other, 409)
        self.assert_error(ans, "receipt_conflict", "receipt")

    def test_phone_errors_name_the_field(self):
        card = self.k.cards[1]
        self.register(card, "+79167654321")
        ans = self.post("/v1/purchases", {"phone": "+7 999 000-00-00", "receipt": "R-1",
                                          "lines": lines()}, 404)
        self.assert_error(ans, "unknown_phone", "phone", "no customer has this phone number")
        self.assertNotIn("999", ans["error"]["message"])
        ans = self.post("/v1/quote", {"phone": "call me", "lines": lines()}, 400)
        self.assert_error(ans, "bad_field", "phone")
        ans = self.post("/v1/quote", {"phone": self.PHONE, "card": card, "lines": lines()}, 400)
        self.assert_error(ans, "bad_field", "phone", "not both")
        # The card is blocked: the customer has no card the till may use.
        office = self.staff_token("manager")
        s, _ = self.k.call("POST", "/v1/admin/cards/%s/block" % card, {"reason": "lost"},
                           key=office)
        self.assertEqual(s, 200, self.k.last_raw())
        ans = self.post("/v1/identify", {"phone": self.PHONE}, 404)
        self.assert_error(ans, "unknown_phone", "phone", "no active card")


class PhoneManyCards(TillCase):

    sections = {"till": {"identify_by_phone": True}}
    cards = 20

    def test_the_active_card_after_seventeen_blocked_ones_is_found(self):
        first = self.k.cards[0]
        body = {"card": first, "full_name": "Анна Смирнова", "phone": "8 916 765-43-21",
                "consent": {"given": True, "text_version": "2026-01"}}
        customer = self.post("/v1/customers", body, 201)
        office = self.staff_token("manager")
        for number in self.k.cards[1:18]:
            s, _ = self.k.call("POST", "/v1/admin/customers/%d/cards" % customer["id"],
                               {"card": number}, key=office)
            self.assertEqual(s, 200, self.k.last_raw())
        for number in self.k.cards[:17]:  # the oldest 17 are lost; the 18th is in use
            s, _ = self.k.call("POST", "/v1/admin/cards/%s/block" % number,
                               {"reason": "lost"}, key=office)
            self.assertEqual(s, 200, self.k.last_raw())
        found = self.post("/v1/identify", {"phone": "8 916 765-43-21"}, 200)
        self.assertEqual((found["identified_by"], found["card"]), ("phone", self.k.cards[17]))


class PhoneNotAllowed(TillCase):

    def test_the_demo_program_does_not_identify_by_phone(self):
        ans = self.post("/v1/purchases", {"phone": "+7 916 765-43-21", "receipt": "R-1",
                                          "lines": lines()}, 403)
        self.assert_error(ans, "forbidden", "phone", "till.identify_by_phone is false")
        ans = self.post("/v1/identify", {"phone": "+7 916 765-43-21"}, 403)
        self.assertEqual(ans["error"]["code"], "forbidden")


if __name__ == "__main__":
    unittest.main(argv=harness.take_argv())
