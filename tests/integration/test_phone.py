"""
test_phone.py: data that people type, against a real `kopilka serve`:

- a phone registered in one typed form (`8 916 765-43-21`) is found by
  every other form (`8(916)7654321`, `+7 916 765 43 21`, `916 765-43-21`,
  `79167654321`), in the program's country (RU by default, UA when the
  program says "country": "UA"); a bad phone says what is wrong;
- re-importing a known customer with other data updates them (with an
  audit entry) instead of saying "unchanged"; a row naming another
  customer's card is refused;
- `kopilka export --customers` imports back (the same columns), and an
  edited export updates;
- a card number with a wrong check digit is told as such (400, field card),
  at the till, at registration and in the back office;
- `kopilka phones migrate` on a database in E.164 changes nothing (the
  rewriting of old spellings is unit-tested in tests/unit/test_phone.c).

    python3 test_phone.py --kopilka build/kopilka [unittest options]
"""
import csv
import json
import os
import unittest

import harness
from harness import LABOR

PASSWORD = "correct horse battery"
CONSENT = {"given": True, "text_version": "2026-01"}
TYPED = ["8 916 765-43-21", "8(916)7654321", "+7 916 765 43 21", "916 765-43-21", "79167654321"]
E164 = "+79167654321"


def luhn_digit(payload):
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def mistyped(number):
    """The number with its check digit made wrong."""
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def program_file(directory, **fields):
    """The harness's program with `fields` set at the top level and the
    attributes the export test uses; returns its path."""
    with open(harness.program_file(), "rb") as f:
        doc = json.load(f)
    doc.update(fields)
    doc["customers"] = {"consent_version": "2026-01", "attributes": [
        {"name": "car_model", "type": "string", "max_length": 64}]}
    path = os.path.join(directory, "program-phone.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


class PhoneTestCase(unittest.TestCase):
    program_fields = {}

    def setUp(self):
        self.k = harness.Kopilka(cards=6)
        self.addCleanup(self.k.close)
        harness.run_cli(["program", "load", self.k.db,
                         program_file(self.k.dir, **self.program_fields)])
        pw = os.path.join(self.k.dir, "password")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        harness.run_cli(["staff", "add", self.k.db, "--login", "mgr", "--role", "manager",
                         "--password-file", pw])
        harness.run_cli(["staff", "add", self.k.db, "--login", "aud", "--role", "auditor",
                         "--password-file", pw])
        self.k.start()
        self.tokens = {}

    def staff(self, login, method, path, body=None):
        if login not in self.tokens:
            s, a = self.k.call("POST", "/v1/admin/login", {"login": login, "password": PASSWORD},
                               key=None)
            self.assertEqual(s, 200, self.k.last_raw())
            self.tokens[login] = a["token"]
        return self.k.call(method, path, body, key=self.tokens[login])

    def register(self, card, phone, name="Ivan Petrov", expect=201, **extra):
        body = {"card": card, "full_name": name, "phone": phone, "consent": CONSENT}
        body.update(extra)
        s, a = self.k.call("POST", "/v1/customers", body)
        self.assertEqual(s, expect, self.k.last_raw())
        return a

    def search(self, **query):
        s, r = self.staff("mgr", "POST", "/v1/admin/customers/search", query)
        self.assertEqual(s, 200, self.k.last_raw())
        return [c["id"] for c in r["customers"]]

    def audit(self, action):
        s, log = self.staff("aud", "GET", "/v1/admin/audit?limit=1000")
        self.assertEqual(s, 200, self.k.last_raw())
        return [e for e in log["entries"] if e["action"] == action]


# ---------------------------------------------------------------------------
class RussianPhones(PhoneTestCase):

    def test_registered_in_one_form_found_by_every_other(self):
        for i, first in enumerate(TYPED):
            with self.subTest(registered_as=first):
                # A fresh phone per round: the same number, other customers.
                a = self.register(self.k.cards[i], first, name="Customer %d" % i)
                self.assertEqual(a["phone"], E164)
                for other in TYPED:
                    self.assertEqual(self.search(phone=other), [a["id"]], other)
                s, _ = self.staff("mgr", "POST", "/v1/admin/customers/%d/erase" % a["id"],
                                  {"reason": "next form"})
                self.assertEqual(s, 200, self.k.last_raw())

    def test_the_same_number_typed_another_way_is_in_use(self):
        self.register(self.k.cards[0], "8 916 765-43-21")
        a = self.register(self.k.cards[1], "+7 (916) 765-43-21", name="Someone Else",
                          expect=409)
        self.assertEqual((a["error"]["code"], a["error"]["field"]), ("phone_in_use", "phone"))

    def test_an_edit_normalises_the_same_way(self):
        a = self.register(self.k.cards[0], "+7 999 123 45 67")
        s, r = self.staff("mgr", "PATCH", "/v1/admin/customers/%d" % a["id"],
                          {"phone": "8 (916) 765-43-21"})
        self.assertEqual((s, r["phone"]), (200, E164), self.k.last_raw())
        self.assertEqual(self.search(phone="916 765 43 21"), [a["id"]])
        self.assertEqual(self.search(phone="+7 999 123 45 67"), [])
        # The name is still found after an edit of the phone alone.
        self.assertEqual(self.search(name="Petrov"), [a["id"]])

    def test_bad_phones_say_what_is_wrong(self):
        cases = [("8 916 765", "number of digits"),
                 ("8 916 765-43-21 x12", "may hold only digits"),
                 ("+999 123 456 789", "unknown country code"),
                 ("050 123 4567", "")]
        for typed, part in cases:
            with self.subTest(typed=typed):
                a = self.register(self.k.cards[0], typed, expect=400)
                fields = {x["field"]: x["message"] for x in a["error"]["fields"]}
                self.assertIn("phone", fields)
                self.assertIn(part, fields["phone"])
                s, r = self.staff("mgr", "POST", "/v1/admin/customers/search", {"phone": typed})
                self.assertEqual((s, r["error"]["code"], r["error"]["field"]),
                                 (400, "bad_field", "phone"))


class PhonesMigrate(PhoneTestCase):

    def test_migrate_on_a_database_in_e164_changes_nothing(self):
        a = self.register(self.k.cards[0], "8 916 765-43-21")
        self.k.stop()
        p = harness.run_cli(["phones", "migrate", self.k.db, "--dry-run"])
        self.assertIn("phones (dry run, nothing written): 1 checked, 0 to rewrite in E.164, "
                      "0 unreadable, 0 conflicts (numbers without + read in country RU)", p.stdout)
        p = harness.run_cli(["phones", "migrate", self.k.db])
        self.assertIn("phones: 1 checked, 0 rewritten in E.164", p.stdout)
        p = harness.run_cli(["phones", "migrate", self.k.db, "--bogus"], check=False)
        self.assertEqual(p.returncode, 2)
        self.k.start()
        self.assertEqual(self.search(phone="+7 916 765 43 21"), [a["id"]])
        (entry,) = self.audit("customer.phones_migrate")
        self.assertEqual(entry["detail"],
                         "country=RU checked=1 changed=0 unreadable=0 conflicts=0")


class UkrainianPhones(PhoneTestCase):
    program_fields = {"country": "UA"}

    def test_country_ua_reads_numbers_without_plus_as_ukrainian(self):
        a = self.register(self.k.cards[0], "050 123 4567")
        self.assertEqual(a["phone"], "+380501234567")
        for typed in ("+380 50 123 4567", "(050) 123-45-67", "380501234567"):
            self.assertEqual(self.search(phone=typed), [a["id"]], typed)
        # A Russian number still registers with its + and country code.
        b = self.register(self.k.cards[1], "+7 916 765 43 21", name="Olga Ivanova")
        self.assertEqual(b["phone"], E164)
        # ... but without it, it is read as Ukrainian, and is not one.
        self.register(self.k.cards[2], "8 916 765-43-21", name="Nobody", expect=400)

    def test_an_unknown_country_is_refused_on_load(self):
        path = program_file(self.k.dir, country="XX")
        p = harness.run_cli(["program", "load", self.k.db, path], check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("country", p.stderr)
        self.assertIn("two-letter ISO 3166 country code", p.stderr)


# ---------------------------------------------------------------------------
class Reimport(PhoneTestCase):

    def import_(self, customers, check=True, cards=None):
        args = ["import", self.k.db, "--customers", customers]
        if cards:
            args += ["--cards", cards]
        return harness.run_cli(args, check=check)

    def test_a_changed_customer_is_updated_with_an_audit_entry(self):
        d = self.k.dir
        cards, customers = os.path.join(d, "cards.csv"), os.path.join(d, "customers.csv")
        write_csv(cards, ["number"], [["OLD-1"], ["OLD-2"]])
        header = ["external_id", "cards", "full_name", "phone", "email", "consent_version"]
        write_csv(customers, header,
                  [["c1", "OLD-1", "Petr Sidorov", "8 916 765-43-21", "p@example.com", "2026-01"],
                   ["c2", "OLD-2", "Anna Sidorova", "", "", "2026-01"]])
        p = self.import_(customers, cards=cards)
        self.assertIn("customers 2 new, 0 unchanged", p.stdout)
        (cid,) = self.search(phone="+79167654321")
        # The old system changed the phone and the name of c1; c2 is the same.
        write_csv(customers, header,
                  [["c1", "OLD-1", "Petr Sidorov-Ivanov", "+7 999 123-45-67", "p@example.com",
                    "2026-01"],
                   ["c2", "OLD-2", "Anna Sidorova", "", "", "2026-01"]])
        p = self.import_(customers, cards=cards)
        self.assertIn("customers 0 new, 1 updated, 1 unchanged", p.stdout)
        self.assertEqual(self.search(phone="8 999 123 45 67"), [cid])
        self.assertEqual(self.search(phone="8 916 765-43-21"), [])
        self.assertEqual(self.search(name="Sidorov-Ivanov"), [cid])
        s, c = self.staff("mgr", "GET", "/v1/admin/customers/%d" % cid)
        self.assertEqual((c["full_name"], c["phone"], c["email"]),
                         ("Petr Sidorov-Ivanov", "+79991234567", "p@example.com"))
        updates = self.audit("customer.import_update")
        self.assertEqual([(e["target"], e["detail"]) for e in updates],
                         [("customer:%d" % cid, "fields=full_name,phone line=customers.csv:2")])
        # Once more: nothing changes.
        p = self.import_(customers, cards=cards)
        self.assertIn("customers 0 new, 2 unchanged", p.stdout)
        self.assertEqual(len(self.audit("customer.import_update")), 1)

    def test_a_row_naming_another_customers_card_is_a_conflict(self):
        d = self.k.dir
        cards, customers = os.path.join(d, "cards.csv"), os.path.join(d, "customers.csv")
        write_csv(cards, ["number"], [["OLD-1"], ["OLD-2"]])
        header = ["external_id", "cards", "full_name", "consent_version"]
        write_csv(customers, header, [["c1", "OLD-1", "Petr", "2026-01"],
                                      ["c2", "OLD-2", "Anna", "2026-01"]])
        self.import_(customers, cards=cards)
        write_csv(customers, header, [["c1", "OLD-2", "Petr", "2026-01"]])
        p = self.import_(customers, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("customers.csv:2: cards: card OLD-2 is not customer", p.stderr)
        self.assertEqual(self.search(name="Petr")[0:1], self.search(card="OLD-1"))
        # A card new to the database is not added to a known customer either.
        write_csv(cards, ["number"], [["OLD-3"]])
        write_csv(customers, header, [["c1", "OLD-1;OLD-3", "Petr", "2026-01"]])
        p = self.import_(customers, check=False, cards=cards)
        self.assertEqual(p.returncode, 1)
        self.assertIn("customers.csv:2: cards: card OLD-3 is new, but customer", p.stderr)
        s, _ = self.k.call("GET", "/v1/cards/OLD-3")
        self.assertEqual(s, 404)


# ---------------------------------------------------------------------------
class ExportImport(PhoneTestCase):

    def test_an_export_imports_back_and_an_edited_export_updates(self):
        a = self.register(self.k.cards[0], "8 916 765-43-21", email="ivan@example.com",
                          birthday="1980-05-17", attributes={"car_model": "Lada Vesta"})
        b = self.register(self.k.cards[1], "+380 50 123 4567", name="Taras Shevchenko")
        gone = self.register(self.k.cards[2], "+7 999 000 11 22", name="Gone Person")
        s, _ = self.staff("mgr", "POST", "/v1/admin/customers/%d/erase" % gone["id"],
                          {"reason": "asked"})
        self.assertEqual(s, 200)
        self.k.stop()
        out = os.path.join(self.k.dir, "export.csv")
        harness.run_cli(["export", self.k.db, "--customers", out])
        rows = read_csv(out)
        self.assertEqual(rows[0][:4], ["id", "external_id", "state", "full_name"])
        p = harness.run_cli(["import", self.k.db, "--customers", out])
        self.assertIn("customers 0 new, 3 unchanged", p.stdout)
        # Edit the export as a spreadsheet would: a new e-mail, a phone typed
        # the local way, the attribute cleared.
        head = rows[0]
        for r in rows[1:]:
            if r[0] == str(a["id"]):
                r[head.index("email")] = "ivan.new@example.com"
                r[head.index("attr.car_model")] = ""
            if r[0] == str(b["id"]):
                r[head.index("phone")] = "8 (916) 111-22-33"
        write_csv(out, head, rows[1:])
        p = harness.run_cli(["import", self.k.db, "--customers", out])
        self.assertIn("customers 0 new, 2 updated, 1 unchanged", p.stdout)
        harness.run_cli(["export", self.k.db, "--customers", out])
        again = {r[0]: dict(zip(head, r)) for r in read_csv(out)[1:]}
        ra, rb = again[str(a["id"])], again[str(b["id"])]
        self.assertEqual((ra["email"], ra["phone"], ra["birthday"], ra["attr.car_model"]),
                         ("ivan.new@example.com", E164, "1980-05-17", ""))
        self.assertEqual(rb["phone"], "+79161112233")
        self.assertEqual(again[str(gone["id"])]["state"], "erased")
        self.assertEqual(self.k.verify().returncode, 0)

    def test_an_export_row_with_an_unknown_id_is_refused(self):
        self.register(self.k.cards[0], "8 916 765-43-21")
        self.k.stop()
        out = os.path.join(self.k.dir, "export.csv")
        harness.run_cli(["export", self.k.db, "--customers", out])
        rows = read_csv(out)
        rows[1][0] = "999"
        write_csv(out, rows[0], rows[1:])
        p = harness.run_cli(["import", self.k.db, "--customers", out], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("customers.csv", p.stderr.replace("export.csv", "customers.csv"))
        self.assertIn("id: there is no customer 999 in this database", p.stderr)


# ---------------------------------------------------------------------------
class CheckDigit(PhoneTestCase):

    def assert_check_digit_error(self, s, a, field="card"):
        self.assertEqual((s, a["error"]["code"], a["error"]["field"]), (400, "bad_field", field),
                         self.k.last_raw())
        self.assertIn("has a wrong check digit", a["error"]["message"])

    def test_a_mistyped_card_says_its_check_digit_is_wrong(self):
        bad = mistyped(self.k.cards[0])
        body = {"card": bad, "receipt": "R-1",
                "lines": [{"sku": "L", "category": LABOR, "amount": 100000}]}
        s, a = self.k.call("POST", "/v1/quote", body)
        self.assert_check_digit_error(s, a)
        s, a = self.k.call("POST", "/v1/purchases", body)
        self.assert_check_digit_error(s, a)
        s, a = self.k.call("GET", "/v1/cards/%s" % bad)
        self.assert_check_digit_error(s, a)
        a = self.register(bad, "8 916 765-43-21", expect=400)
        self.assert_check_digit_error(400, a)
        s, a = self.staff("mgr", "POST", "/v1/admin/customers/search", {"card": bad})
        self.assert_check_digit_error(s, a)
        s, a = self.staff("mgr", "GET", "/v1/admin/cards/%s" % bad)
        self.assert_check_digit_error(s, a)
        # A well-formed number nobody was given is still "no such card".
        payload = "20" + "9" * 10
        unknown = payload + luhn_digit(payload)
        s, a = self.k.call("GET", "/v1/cards/%s" % unknown)
        self.assertEqual((s, a["error"]["code"]), (404, "unknown_card"))

    def test_import_refuses_a_kopilka_form_number_with_a_wrong_check_digit(self):
        cards = os.path.join(self.k.dir, "cards.csv")
        payload = "21" + "3" * 10
        write_csv(cards, ["number"], [[mistyped(payload + luhn_digit(payload))], ["OLD-7"]])
        p = harness.run_cli(["import", self.k.db, "--cards", cards], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("cards.csv:2: number:", p.stderr)
        self.assertIn("has a wrong check digit", p.stderr)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
