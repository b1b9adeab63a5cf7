"""
test_people.py: black-box tests of the back office (docs/api.md, "Back
office" and "Customers") against a real `kopilka serve`: staff login and
roles (each role denied what it may not do), registration with per-field
errors and conflicts, search, edit, erase, the card lifecycle (batch,
export, pictures, block, replace), manual adjustments, families, transfers,
the audit log and its hash chain, personal data unreadable without the key
file, CSV import and export.

    python3 test_people.py --kopilka build/kopilka [unittest options]

The class LargeImport imports 100 000 rows of each file and prints the
time; it runs when KOPILKA_LARGE_IMPORT=1 (its own CTest entry).
"""
import csv
import datetime
import json
import os
import re
import shutil
import subprocess
import time
import unittest

import harness
from harness import LABOR

PASSWORD = "correct horse battery"
CONSENT = {"given": True, "text_version": "2026-01"}

CUSTOMERS_SECTION = {
    "unregistered": {"earn": True, "burn": False},
    "transfers": {"max_points": 5000, "daily_max_points": 8000, "kinds": ["regular"]},
    "consent_version": "2026-01",
    "attributes": [
        {"name": "car_model", "type": "string", "max_length": 64},
        {"name": "vin", "type": "string", "min_length": 17, "max_length": 17},
        {"name": "mileage", "type": "integer", "min": 0, "max": 2000000},
    ],
}

# "partner" is reserved (no account can hold it): test_keys.py PartnerRole.
ROLES = ("cashier", "manager", "call_centre", "marketer", "admin", "auditor")


def program_with_customers(directory):
    """The harness's program plus a "customers" section; returns its path."""
    with open(harness.program_file(), "rb") as f:
        doc = json.load(f)
    doc["customers"] = CUSTOMERS_SECTION
    path = os.path.join(directory, "program-people.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


class PeopleTestCase(unittest.TestCase):
    """A fresh database with the customers section loaded, a server, and
    staff logged in on demand (self.token(role))."""

    cards = 8

    def setUp(self):
        self.k = harness.Kopilka(cards=self.cards)
        self.addCleanup(self.k.close)
        harness.run_cli(["program", "load", self.k.db, program_with_customers(self.k.dir)])
        self.pwfile = os.path.join(self.k.dir, "password")
        with open(self.pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        self._tokens = {}
        self._made = set()
        self.k.start()

    # --- helpers -------------------------------------------------------
    def add_staff(self, login, role):
        harness.run_cli(["staff", "add", self.k.db, "--login", login, "--role", role,
                         "--password-file", self.pwfile])
        self._made.add(login)

    def token(self, role):
        if role not in self._tokens:
            login = "u_" + role
            if login not in self._made:
                self.add_staff(login, role)
            s, a = self.k.call("POST", "/v1/admin/login",
                               {"login": login, "password": PASSWORD}, key=None)
            self.assertEqual(s, 200, self.k.last_raw())
            self._tokens[role] = a["token"]
        return self._tokens[role]

    def as_(self, role, method, path, body=None):
        return self.k.call(method, path, body, key=self.token(role))

    def register(self, card, name="Іван Петренко", phone="+380501234567", key=None, expect=201,
                 **extra):
        body = {"card": card, "full_name": name, "phone": phone, "consent": CONSENT}
        body.update(extra)
        s, a = self.k.call("POST", "/v1/customers", body,
                           key=key if key is not None else self.k.key)
        self.assertEqual(s, expect, self.k.last_raw())
        return a

    def adjust(self, card, points, key, role="manager", expect=201):
        s, a = self.as_(role, "POST", "/v1/admin/adjustments",
                        {"card": card, "points": points, "reason": "test", "key": key})
        self.assertEqual(s, expect, self.k.last_raw())
        return a


# ---------------------------------------------------------------------------
class Staff(PeopleTestCase):

    def test_login_me_logout(self):
        tok = self.token("manager")
        s, me = self.k.call("GET", "/v1/admin/me", key=tok)
        self.assertEqual(s, 200)
        self.assertEqual((me["login"], me["role"], me["adjust_limit"]),
                         ("u_manager", "manager", 100000))
        self.assertIn("customer.erase", me["permissions"])
        self.assertNotIn("staff", me["permissions"])
        s, _ = self.k.call("POST", "/v1/admin/logout", key=tok)
        self.assertEqual(s, 200)
        s, a = self.k.call("GET", "/v1/admin/me", key=tok)
        self.assertEqual((s, a["error"]["code"]), (401, "unauthorized"))

    def test_wrong_password_is_refused_and_audited(self):
        self.add_staff("anna", "cashier")
        s, a = self.k.call("POST", "/v1/admin/login", {"login": "anna", "password": "nope nope nope"},
                           key=None)
        self.assertEqual((s, a["error"]["code"]), (401, "unauthorized"))
        s, a = self.k.call("POST", "/v1/admin/login", {"login": "ghost", "password": PASSWORD},
                           key=None)
        self.assertEqual(s, 401)
        s, log = self.as_("auditor", "GET", "/v1/admin/audit?limit=1000")
        self.assertEqual(s, 200, self.k.last_raw())
        failed = [e["target"] for e in log["entries"] if e["action"] == "staff.login_failed"]
        self.assertEqual(failed, ["staff:anna", "staff:ghost"])

    def test_no_credentials_and_terminal_keys_on_staff_routes(self):
        s, a = self.k.call("GET", "/v1/admin/audit", key=None)
        self.assertEqual((s, a["error"]["code"]), (401, "unauthorized"))
        s, a = self.k.call("GET", "/v1/admin/audit")  # a terminal key
        self.assertEqual((s, a["error"]["code"]), (403, "forbidden"))
        s, a = self.k.call("GET", "/v1/admin/audit", key="kps_" + "0" * 64)
        self.assertEqual(s, 401)

    def test_admin_manages_staff_and_a_disabled_account_loses_its_session(self):
        s, a = self.as_("admin", "POST", "/v1/admin/staff",
                        {"login": "olga", "role": "call_centre", "password": PASSWORD})
        self.assertEqual(s, 201, self.k.last_raw())
        s, a = self.as_("admin", "POST", "/v1/admin/staff",
                        {"login": "olga", "role": "call_centre", "password": PASSWORD})
        self.assertEqual((s, a["error"]["code"]), (409, "login_in_use"))
        s, a = self.as_("admin", "POST", "/v1/admin/staff",
                        {"login": "pavlo", "role": "boss", "password": PASSWORD})
        self.assertEqual((s, a["error"]["field"]), (400, "role"))
        s, login = self.k.call("POST", "/v1/admin/login", {"login": "olga", "password": PASSWORD},
                               key=None)
        self.assertEqual(s, 200)
        s, lst = self.as_("admin", "GET", "/v1/admin/staff")
        olga = [x for x in lst["staff"] if x["login"] == "olga"][0]
        s, a = self.as_("admin", "PATCH", "/v1/admin/staff/%d" % olga["id"], {"active": False})
        self.assertEqual((s, a["active"]), (200, False), self.k.last_raw())
        s, _ = self.k.call("GET", "/v1/admin/me", key=login["token"])
        self.assertEqual(s, 401)


# ---------------------------------------------------------------------------
class Roles(PeopleTestCase):
    """Each role is refused (403 forbidden) what it may not do."""

    def setUp(self):
        super().setUp()
        self.customer = self.register(self.k.cards[0])
        self.cid = self.customer["id"]

    def requests(self):
        c = self.k.cards
        return {
            "search": ("POST", "/v1/admin/customers/search", {"phone": "+380501234567"}),
            "view": ("GET", "/v1/admin/customers/%d" % self.cid, None),
            "edit": ("PATCH", "/v1/admin/customers/%d" % self.cid, {"email": "x@example.com"}),
            "erase": ("POST", "/v1/admin/customers/999/erase", {"reason": "r"}),
            "register": ("POST", "/v1/customers", {"card": c[7], "full_name": "A B",
                                                   "phone": "+380509999999",
                                                   "consent": CONSENT}),
            "adjust": ("POST", "/v1/admin/adjustments",
                       {"card": c[0], "points": 10, "reason": "r", "key": "RK"}),
            "batch": ("POST", "/v1/admin/card-batches", {"name": "RB", "count": 1}),
            "block": ("POST", "/v1/admin/cards/%s/block" % c[6], {"reason": "lost"}),
            "card": ("GET", "/v1/admin/cards/%s" % c[0], None),
            "staff": ("POST", "/v1/admin/staff", {"login": "x", "role": "cashier",
                                                  "password": PASSWORD}),
            "audit": ("GET", "/v1/admin/audit", None),
            "family": ("POST", "/v1/admin/families", {"owner": 999}),
            "transfer": ("POST", "/v1/transfers", {"from_card": c[0], "to_card": c[5],
                                                   "points": 1, "key": "RT"}),
            "export_customers": ("GET", "/v1/admin/export/customers.csv", None),
            "export_balances": ("GET", "/v1/admin/export/balances.csv", None),
        }

    DENIED = {
        "cashier": ["search", "view", "edit", "erase", "adjust", "batch", "block", "staff",
                    "audit", "family", "transfer", "export_customers", "export_balances"],
        "call_centre": ["erase", "batch", "staff", "audit", "export_customers",
                        "export_balances"],
        "manager": ["staff", "audit"],
        "marketer": ["search", "view", "edit", "erase", "register", "adjust", "block", "staff",
                     "audit", "family", "transfer", "export_customers"],
        "auditor": ["edit", "erase", "register", "adjust", "batch", "block", "staff", "family",
                    "transfer", "export_customers", "export_balances"],
        "admin": [],
    }

    def test_each_role_is_denied_what_it_may_not_do(self):
        reqs = self.requests()
        for role in ROLES:
            for name in self.DENIED[role]:
                method, path, body = reqs[name]
                s, a = self.as_(role, method, path, body)
                self.assertEqual(s, 403, "%s %s: %s %r" % (role, name, s, self.k.last_raw()))
                self.assertEqual(a["error"]["code"], "forbidden")

    # The status of each request when the role may make it.
    SUCCESS = {"search": 200, "view": 200, "edit": 200, "erase": 200, "register": 201,
               "adjust": 201, "batch": 201, "block": 200, "card": 200, "staff": 201,
               "audit": 200, "family": 201, "transfer": 201, "export_customers": 200,
               "export_balances": 200}

    def test_allowed_requests_pass_the_role_check(self):
        # What the requests act on exists, so each allowed one succeeds:
        # a customer to erase, a registered card to transfer to, an owner.
        c = self.k.cards
        erasable = self.register(c[4], phone="+380501230004")["id"]
        self.register(c[5], phone="+380501230005")
        for role, card, phone in (("manager", c[7], "+380509999999"), ("auditor", c[2], ""),
                                  ("cashier", c[3], "+380501230003")):
            reqs = self.requests()
            reqs["erase"] = ("POST", "/v1/admin/customers/%d/erase" % erasable,
                             {"reason": "asked to"})
            reqs["family"] = ("POST", "/v1/admin/families", {"owner": self.cid})
            reqs["register"] = ("POST", "/v1/customers", {"card": card, "full_name": "A B",
                                                          "phone": phone, "consent": CONSENT})
            for name in reqs:
                if name in self.DENIED[role]:
                    continue
                method, path, body = reqs[name]
                s, _ = self.as_(role, method, path, body)
                self.assertEqual(s, self.SUCCESS[name],
                                 "%s %s: %r" % (role, name, self.k.last_raw()))

    def test_adjustment_size_is_limited_by_role(self):
        card = self.k.cards[0]
        self.adjust(card, 1001, "L1", role="call_centre", expect=403)
        self.adjust(card, 1000, "L2", role="call_centre")
        self.adjust(card, 100001, "L3", role="manager", expect=403)
        self.adjust(card, 100000, "L4", role="manager")
        self.assertEqual(self.k.card(card)["balance"], 101000)


# ---------------------------------------------------------------------------
class Customers(PeopleTestCase):

    def test_registration_raises_the_programs_registration_grant_once(self):
        with open(program_with_customers(self.k.dir)) as f:
            doc = json.load(f)
        doc["rules"].append({"id": "welcome-500", "kind": "grant", "on": "registration",
                             "points": 500})
        path = os.path.join(self.k.dir, "program-welcome.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        self.k.stop()
        harness.run_cli(["program", "load", self.k.db, path])
        self.k.start()
        card = self.k.cards[0]
        a = self.register(card)
        self.assertEqual([g["rule"] for g in a.get("granted", [])], ["welcome-500"],
                         self.k.last_raw())
        self.assertEqual(self.k.card(card)["balance"], 500)
        # The card is registered now: a second registration is refused and
        # grants nothing more.
        self.register(card, phone="+380501234999", expect=409)
        self.assertEqual(self.k.card(card)["balance"], 500)
        self.assertEqual(self.k.verify().returncode, 0)

    def test_registration_marks_the_card_registered(self):
        card = self.k.cards[0]
        self.assertFalse(self.k.card(card)["registered"])
        a = self.register(card, email="Ivan@Example.com", birthday="1985-04-12", receipt="R-77",
                          attributes={"car_model": "Kia Rio", "mileage": 12000})
        self.assertEqual((a["full_name"], a["phone"], a["email"], a["birthday"]),
                         ("Іван Петренко", "+380501234567", "ivan@example.com", "1985-04-12"))
        self.assertEqual(a["consent"]["text_version"], "2026-01")
        self.assertEqual(a["attributes"], {"car_model": "Kia Rio", "mileage": 12000})
        c = self.k.card(card)
        self.assertEqual((c["registered"], c["state"]), (True, "active"))

    def test_every_bad_field_is_reported(self):
        s, a = self.k.call("POST", "/v1/customers", {
            "card": self.k.cards[0], "full_name": " ", "phone": "12-34", "email": "nobody@",
            "birthday": "1985-02-30", "consent": {"given": True, "text_version": "2025-01"},
            "attributes": {"vin": "SHORT", "colour": "red"}})
        self.assertEqual((s, a["error"]["code"]), (400, "bad_field"), self.k.last_raw())
        fields = sorted(x["field"] for x in a["error"]["fields"])
        self.assertEqual(fields, ["attributes.colour", "attributes.vin", "birthday",
                                  "consent.text_version", "email", "full_name", "phone"])

    def test_a_phone_or_email_in_use_is_a_conflict_not_a_second_customer(self):
        self.register(self.k.cards[0], email="ivan@example.com")
        s, a = self.k.call("POST", "/v1/customers", {
            "card": self.k.cards[1], "full_name": "Another", "phone": "+380 50 123 45 67",
            "consent": CONSENT})
        self.assertEqual((s, a["error"]["code"], a["error"]["field"]), (409, "phone_in_use", "phone"))
        s, a = self.k.call("POST", "/v1/customers", {
            "card": self.k.cards[1], "full_name": "Another", "phone": "+380501111111",
            "email": "IVAN@example.com", "consent": CONSENT})
        self.assertEqual((s, a["error"]["code"]), (409, "email_in_use"))
        s, a = self.k.call("POST", "/v1/customers", {
            "card": self.k.cards[0], "full_name": "Again", "phone": "+380502222222",
            "consent": CONSENT})
        self.assertEqual((s, a["error"]["code"]), (409, "card_conflict"))
        s, a = self.k.call("POST", "/v1/customers", {
            "card": "2000000000008", "full_name": "Nobody", "phone": "+380503333333",
            "consent": CONSENT})
        self.assertEqual((s, a["error"]["code"]), (404, "unknown_card"))

    def test_search_edit_and_history(self):
        a = self.register(self.k.cards[0], name="Petrenko Ivan Ivanovych", email="ivan@example.com")
        self.register(self.k.cards[1], name="Olha Petrenko", phone="+380501234568")
        for query, n in (({"name": "petrenko"}, 2), ({"name": "IVAN petrenko"}, 1),
                         ({"phone": "+380 (50) 123-45-67"}, 1), ({"email": "Ivan@Example.com"}, 1),
                         ({"card": self.k.cards[1]}, 1), ({"phone": "+380999999999"}, 0)):
            s, r = self.as_("call_centre", "POST", "/v1/admin/customers/search", query)
            self.assertEqual(s, 200, self.k.last_raw())
            self.assertEqual(len(r["customers"]), n, query)
        s, r = self.as_("call_centre", "PATCH", "/v1/admin/customers/%d" % a["id"],
                        {"phone": "+380509990000", "email": None,
                         "attributes": {"mileage": 30500}})
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual((r["phone"], r["email"], r["attributes"]), ("+380509990000", None,
                                                                     {"mileage": 30500}))
        s, r = self.as_("call_centre", "PATCH", "/v1/admin/customers/%d" % a["id"],
                        {"phone": "+380501234568"})
        self.assertEqual((s, r["error"]["code"]), (409, "phone_in_use"))
        self.adjust(self.k.cards[0], 150, "H1")
        s, h = self.as_("call_centre", "GET", "/v1/admin/customers/%d/history" % a["id"])
        self.assertEqual(s, 200)
        self.assertEqual([(x["type"], x["points"], x["customer"]) for x in h["history"]],
                         [("adjustment", 150, a["id"])])

    def test_erase_removes_personal_data_keeps_the_ledger(self):
        card = self.k.cards[0]
        a = self.register(card, name="Zoryana Erased", phone="+380507770000")
        self.adjust(card, 300, "E1")
        s, r = self.as_("manager", "POST", "/v1/admin/customers/%d/erase" % a["id"],
                        {"reason": "request by letter of 2026-11-20"})
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual((r["state"], r["full_name"], r["phone"]), ("erased", None, None))
        s, r = self.as_("manager", "POST", "/v1/admin/customers/search", {"name": "zoryana"})
        self.assertEqual(r["customers"], [])
        c = self.k.card(card)
        self.assertEqual((c["state"], c["balance"]), ("blocked", 300))
        self.k.stop()
        self.assertEqual(self.k.verify().returncode, 0)
        self.assertFalse(self.k.holds_text("Zoryana"))
        self.assertTrue(self.k.holds_text(card))


# ---------------------------------------------------------------------------
class Cards(PeopleTestCase):

    def test_batch_export_and_pictures(self):
        s, b = self.as_("marketer", "POST", "/v1/admin/card-batches", {"name": "spring", "count": 5})
        self.assertEqual(s, 201, self.k.last_raw())
        self.assertEqual(len(b["cards"]), 5)
        for n in b["cards"]:
            self.assertEqual(len(n), 13)
            self.assertEqual(self.k.card(n)["state"], "issued")
        s, _ = self.as_("marketer", "POST", "/v1/admin/card-batches", {"name": "spring", "count": 1})
        self.assertEqual(s, 409)
        s, _ = self.as_("marketer", "GET", b["batch"]["export"])
        self.assertEqual(s, 200)
        rows = list(csv.reader(self.k.last_raw().decode().splitlines()))
        self.assertEqual(rows[0], ["number", "batch", "state", "barcode", "qr"])
        self.assertEqual(sorted(r[0] for r in rows[1:]), sorted(b["cards"]))
        number = b["cards"][0]
        c = self.k.client()
        s, _ = c.call("GET", "/v1/cards/%s/barcode.svg" % number)
        self.assertEqual(s, 200)
        self.assertTrue(c.last_raw.startswith(b"<?xml"))
        self.assertIn(number.encode(), c.last_raw)
        self.assertEqual(c.last_headers.get("Content-Type"), "image/svg+xml")
        s, _ = c.call("GET", "/v1/cards/%s/qr.png" % number)
        self.assertEqual(s, 200)
        self.assertTrue(c.last_raw.startswith(b"\x89PNG\r\n"))
        s, _ = c.call("GET", "/v1/cards/%s/barcode.png" % number)
        self.assertEqual(s, 200)
        s, _ = c.call("GET", "/v1/cards/2000000000008/barcode.svg")
        self.assertEqual(s, 404)
        c.close()

    def test_lost_card_is_blocked_then_replaced_with_balance_and_history(self):
        old, new = self.k.cards[0], self.k.cards[1]
        self.register(old)
        self.adjust(old, 700, "R1")
        s, r = self.as_("call_centre", "POST", "/v1/admin/cards/%s/block" % old, {"reason": "lost"})
        self.assertEqual((s, r["state"], r["block_reason"]), (200, "blocked", "lost"))
        st, _ = self.k.call("POST", "/v1/purchases", {"card": old, "receipt": "P1",
                                                     "lines": [{"sku": "x", "category": LABOR,
                                                                "amount": 10000}]})
        self.assertEqual(st, 404)
        s, r = self.as_("call_centre", "POST", "/v1/admin/cards/%s/replace" % old,
                        {"reason": "lost", "new_card": new})
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual((r["card"], r["state"], r["balance"]), (new, "active", 700))
        c = self.k.card(new)
        self.assertEqual((c["balance"], c["registered"]), (700, True))
        self.assertEqual([h["points"] for h in c["history"]], [700])
        s, r = self.as_("call_centre", "GET", "/v1/admin/cards/%s" % old)
        self.assertEqual((r["state"], r["replaced_by"]), ("replaced", new))
        self.assertEqual([(e["from"], e["to"], e["actor"]) for e in r["events"]],
                         [("issued", "active", "terminal:main"),
                          ("active", "blocked", "staff:u_call_centre"),
                          ("blocked", "replaced", "staff:u_call_centre")])
        s, _ = self.as_("call_centre", "POST", "/v1/admin/cards/%s/unblock" % old, {})
        self.assertEqual(s, 409)
        st, _ = self.k.call("POST", "/v1/purchases", {"card": old, "receipt": "P2",
                                                     "lines": [{"sku": "x", "category": LABOR,
                                                                "amount": 10000}]})
        self.assertEqual(st, 404)
        # Replacing without naming a card issues a fresh number.
        s, r = self.as_("call_centre", "POST", "/v1/admin/cards/%s/replace" % new, {"reason": "worn"})
        self.assertEqual((s, r["balance"]), (200, 700))
        self.assertNotIn(r["card"], (old, new))

    def test_unregistered_card_earns_but_cannot_spend_until_registered(self):
        card = self.k.cards[2]
        self.adjust(card, 100, "U1")
        body = {"card": card, "burn": 50, "lines": [{"sku": "x", "category": LABOR,
                                                     "amount": 100000}]}
        s, q = self.k.call("POST", "/v1/quote", body)
        self.assertEqual((s, q["burned"]), (200, 0))
        self.assertIn("not registered", q["burn_limited_by"])
        self.register(card)
        s, q = self.k.call("POST", "/v1/quote", body)
        self.assertEqual(q["burned"], 50)


# ---------------------------------------------------------------------------
class FamiliesAndTransfers(PeopleTestCase):

    def test_family_pot_who_earned_and_who_may_spend(self):
        owner = self.register(self.k.cards[0], name="Owner One", phone="+380500000001")
        member = self.register(self.k.cards[1], name="Member Two", phone="+380500000002")
        self.adjust(self.k.cards[1], 400, "F1")
        s, f = self.as_("call_centre", "POST", "/v1/admin/families", {"owner": owner["id"]})
        self.assertEqual(s, 201, self.k.last_raw())
        s, f = self.as_("call_centre", "POST", "/v1/admin/families/%d/members" % f["id"],
                        {"customer": member["id"], "may_spend": False})
        self.assertEqual((s, f["balance"]), (201, 400), self.k.last_raw())
        p = {"card": self.k.cards[1], "receipt": "FP1", "burn": 100,
             "lines": [{"sku": "x", "category": LABOR, "amount": 100000}]}
        s, r = self.k.call("POST", "/v1/purchases", p)
        self.assertEqual((s, r["burned"]), (201, 0), self.k.last_raw())
        self.assertIn("owner", r["burn_limited_by"])
        self.assertEqual(self.k.card(self.k.cards[0])["balance"], r["balance"])
        s, f2 = self.as_("call_centre", "PATCH",
                         "/v1/admin/families/%d/members/%d" % (f["id"], member["id"]),
                         {"may_spend": True})
        self.assertEqual(s, 200)
        p["receipt"] = "FP2"
        s, r = self.k.call("POST", "/v1/purchases", p)
        self.assertEqual((s, r["burned"]), (201, 100))
        s, fam = self.as_("call_centre", "GET", "/v1/admin/families/%d" % f["id"])
        by = {(h["receipt"], h["customer"]) for h in fam["history"] if h["type"] == "purchase"}
        self.assertEqual(by, {("FP1", member["id"]), ("FP2", member["id"])})
        s, _ = self.as_("call_centre", "POST", "/v1/admin/families/%d/members/%d/leave"
                        % (f["id"], member["id"]))
        self.assertEqual(s, 200)
        self.assertEqual(self.k.card(self.k.cards[1])["balance"], 0)
        self.k.stop()
        self.assertEqual(self.k.verify().returncode, 0)

    def test_transfer_limits_idempotency_and_both_histories(self):
        a = self.k.cards[0]
        b = self.k.cards[1]
        self.register(a, phone="+380500000001")
        self.register(b, name="Friend", phone="+380500000002")
        self.adjust(a, 9000, "T0")
        body = {"from_card": a, "to_card": b, "points": 5001, "key": "G0"}
        s, r = self.as_("call_centre", "POST", "/v1/transfers", body)
        self.assertEqual((s, r["error"]["field"]), (400, "points"))
        body.update(points=5000, key="G1")
        s, r = self.as_("call_centre", "POST", "/v1/transfers", body)
        self.assertEqual((s, r["from_balance"], r["to_balance"]), (201, 4000, 5000), self.k.last_raw())
        s, again = self.as_("call_centre", "POST", "/v1/transfers", body)
        self.assertEqual((s, again.pop("replayed")), (200, True))
        self.assertEqual(again, r)
        body.update(points=3001, key="G2")
        s, r = self.as_("call_centre", "POST", "/v1/transfers", body)
        self.assertEqual(s, 400)  # 8000 a day
        self.assertEqual(self.k.card(a)["history"][0]["points"], -5000)
        self.assertEqual(self.k.card(b)["history"][0]["points"], 5000)
        self.k.stop()
        self.assertEqual(self.k.verify().returncode, 0)


# ---------------------------------------------------------------------------
class AuditAndConfidentiality(PeopleTestCase):

    def test_audit_log_chains_and_verify_detects_tampering(self):
        c = self.register(self.k.cards[0])
        self.adjust(self.k.cards[0], 500, "A1")
        s, log = self.as_("auditor", "GET", "/v1/admin/audit")
        self.assertEqual(s, 200)
        entries = log["entries"]
        actions = [e["action"] for e in entries]
        for want in ("staff.add", "customer.register", "ledger.adjust", "staff.login"):
            self.assertIn(want, actions)
        for prev, cur in zip(entries, entries[1:]):
            self.assertEqual(cur["prev_hash"], prev["hash"])
            self.assertEqual(cur["seq"], prev["seq"] + 1)
        adj = [e for e in entries if e["action"] == "ledger.adjust"][0]
        self.assertEqual(adj["actor"], "staff:u_manager")
        self.assertIn("points=500", adj["detail"])
        self.assertNotIn("Петренко", json.dumps(log, ensure_ascii=False))
        s, page = self.as_("auditor", "GET", "/v1/admin/audit?after=%d&limit=1" % entries[0]["seq"])
        self.assertEqual([e["seq"] for e in page["entries"]], [entries[1]["seq"]])
        self.k.stop()
        v = self.k.verify()
        self.assertEqual(v.returncode, 0)
        # Every entry was written by the server or the CLI with DB.key at
        # hand, so each carries a MAC that verify checked.
        m = re.search(r"audit entries with a MAC of the key file: (\d+)\)", v.stdout)
        self.assertIsNotNone(m, v.stdout)
        self.assertEqual(int(m.group(1)), len(entries))
        key = self.k.key_file
        os.rename(key, key + ".away")
        v = self.k.verify()
        self.assertEqual(v.returncode, 0)
        self.assertIn("its MACs not checked: no key file", v.stdout)
        os.rename(key + ".away", key)
        with self.assertRaises(harness.DatabaseError):
            self.k.execute("UPDATE audit SET detail = 'points=5' WHERE action = 'ledger.adjust'")
        # Someone with write access removes the append-only guard (triggers).
        self.k.execute("ALTER TABLE audit DISABLE TRIGGER USER" if harness.is_pg()
                       else "DROP TRIGGER audit_no_update")
        self.k.execute("UPDATE audit SET detail = 'points=5' WHERE action = 'ledger.adjust'")
        v = self.k.verify()
        self.assertEqual(v.returncode, 1, v.stdout)
        self.assertIn("changed after it was written", v.stdout)

    def test_a_database_copied_without_its_key_reveals_no_personal_data(self):
        self.register(self.k.cards[0], name="Myroslava Kovalchuk", phone="+380671234500",
                      email="myroslava.k@example.net", birthday="1991-07-15",
                      attributes={"vin": "WVWZZZ1JZXW000001"})
        self.k.stop()
        secrets = ("Myroslava", "Kovalchuk", "380671234500", "671234500", "myroslava.k",
                   "1991-07-15", "WVWZZZ1JZXW000001")
        for secret in secrets:
            self.assertFalse(self.k.holds_text(secret), secret)
        self.assertTrue(self.k.holds_text(self.k.cards[0]))
        if harness.is_pg():
            # The database served without its key file.
            copy = self.k.db
            env = dict(harness.cli_env([copy]),
                       KOPILKA_KEY_FILE=os.path.join(self.k.dir, "no-such.key"))
        else:
            copy_dir = os.path.join(self.k.dir, "copy")
            os.mkdir(copy_dir)
            copy = os.path.join(copy_dir, "kopilka.db")
            shutil.copy(self.k.db, copy)  # holds_text() checkpointed the journal into it
            env = None
        # The copy without its key: the server runs, but personal data stays shut.
        port = harness.free_port()
        proc = subprocess.Popen([harness.binary(), "serve", copy, "--listen",
                                 "127.0.0.1:%d" % port], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=env)
        try:
            deadline = time.monotonic() + 10
            client = harness.Client(port, None)
            while True:
                try:
                    s, a = client.call("POST", "/v1/admin/login",
                                       {"login": "u_x", "password": PASSWORD}, key=None)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            harness.run_cli(["staff", "add", copy, "--login", "reader", "--role", "admin",
                             "--password-file", self.pwfile])
            s, a = client.call("POST", "/v1/admin/login",
                               {"login": "reader", "password": PASSWORD}, key=None)
            self.assertEqual(s, 200)
            s, r = client.call("POST", "/v1/admin/customers/search", {"card": self.k.cards[0]},
                               key=a["token"])
            self.assertEqual((s, r["error"]["code"]), (503, "unavailable"))
            self.assertNotIn(b"Myroslava", client.last_raw)
            client.close()
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
        self.assertIn(b"key", err)
        self.assertNotIn(b"Myroslava", err)

    def test_key_file_is_private(self):
        mode = os.stat(self.k.key_file).st_mode & 0o777
        self.assertEqual(mode, 0o600)


# ---------------------------------------------------------------------------
def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


class ImportExport(PeopleTestCase):

    def test_import_reports_bad_rows_then_imports_once(self):
        d = self.k.dir
        cards = os.path.join(d, "cards.csv")
        customers = os.path.join(d, "customers.csv")
        balances = os.path.join(d, "balances.csv")
        write_csv(cards, ["number", "state", "batch"],
                  [["1C-0001", "issued", "1c"], ["1C-0002", "issued", "1c"], ["1C-0001", "", ""]])
        write_csv(customers, ["external_id", "cards", "full_name", "phone", "email",
                              "consent_version", "attr.mileage"],
                  [["10", "1C-0001", "Petro Ivanenko", "+380671000001", "", "2026-01", "5000"],
                   ["11", "1C-0009", "Nina", "bad", "", "2026-01", "x"]])
        write_csv(balances, ["card", "points", "expires_at"],
                  [["1C-0001", "1200", ""], ["1C-0002", "0", ""]])
        args = ["import", self.k.db, "--cards", cards, "--customers", customers,
                "--balances", balances]
        p = harness.run_cli(args, check=False)
        self.assertEqual(p.returncode, 1)
        lines = p.stderr.splitlines()
        for want in ("cards.csv:4: number:", "customers.csv:3: phone:",
                     "customers.csv:3: attr.mileage:", "customers.csv:3: cards:",
                     "balances.csv:3: points:"):
            self.assertTrue(any(want in l for l in lines), "%s not in %s" % (want, p.stderr))
        s, r = self.k.call("GET", "/v1/cards/1C-0001")
        self.assertEqual(s, 404)  # nothing was written
        write_csv(cards, ["number", "state", "batch"],
                  [["1C-0001", "issued", "1c"], ["1C-0002", "issued", "1c"]])
        write_csv(customers, ["external_id", "cards", "full_name", "phone", "email",
                              "consent_version", "attr.mileage"],
                  [["10", "1C-0001", "Petro Ivanenko", "+380671000001", "", "2026-01", "5000"]])
        write_csv(balances, ["card", "points", "expires_at"],
                  [["1C-0001", "1200", ""], ["1C-0002", "30", "2030-01-01T00:00:00Z"]])
        p = harness.run_cli(args)
        self.assertIn("cards 2 new", p.stdout)
        p = harness.run_cli(args)
        self.assertIn("cards 0 new, 2 unchanged; customers 0 new, 1 unchanged; balances 0 "
                      "posted, 2 unchanged", p.stdout)
        c = self.k.card("1C-0001")
        self.assertEqual((c["balance"], c["registered"]), (1200, True))
        s, r = self.as_("call_centre", "POST", "/v1/admin/customers/search",
                        {"phone": "+380671000001"})
        self.assertEqual(r["customers"][0]["attributes"], {"mileage": 5000})
        s, _ = self.as_("manager", "GET", "/v1/admin/export/balances.csv")
        self.assertEqual(s, 200)
        rows = {r[0]: r for r in csv.reader(self.k.last_raw().decode().splitlines())}
        self.assertEqual(rows["1C-0001"][5], "1200")
        self.assertEqual(rows["1C-0002"][5], "30")
        s, _ = self.as_("manager", "GET", "/v1/admin/export/customers.csv")
        self.assertIn("Petro Ivanenko", self.k.last_raw().decode())
        self.k.stop()
        self.assertEqual(self.k.verify().returncode, 0)
        out = os.path.join(d, "export.csv")
        harness.run_cli(["export", self.k.db, "--customers", out])
        self.assertEqual(os.stat(out).st_mode & 0o777, 0o600)


class HttpFuzz(PeopleTestCase):
    """Mutated requests to every kind of route, with every kind of
    credential: each is answered with a status the API documents and a JSON
    error naming what was wrong; never a 500, never a crash (the server runs
    under ASan and UBSan in CI), and the ledger still verifies."""

    ROUNDS = 1000
    ALLOWED = {200, 201, 400, 401, 403, 404, 405, 409, 413}

    def seeds(self):
        c = self.k.cards
        purchase = {"card": c[0], "receipt": "F-1", "burn": 10,
                    "lines": [{"sku": "A", "category": "labor", "amount": 500000, "qty": 1},
                              {"sku": "B", "category": "parts", "amount": 100, "promo": True}]}
        return [
            ("POST", "/v1/purchases", purchase),
            ("POST", "/v1/quote", purchase),
            ("POST", "/v1/returns", {"card": c[0], "receipt": "F-R", "original_receipt": "F-1",
                                     "lines": [{"sku": "A", "qty": 1}]}),
            ("POST", "/v1/events", {"card": c[1], "type": "birthday", "id": "E-1"}),
            ("POST", "/v1/customers", {"card": c[2], "full_name": "A B", "phone": "+380501112233",
                                       "consent": CONSENT}),
            ("POST", "/v1/admin/customers/search", {"phone": "+380501112233"}),
            ("PATCH", "/v1/admin/customers/1", {"email": "x@example.com"}),
            ("POST", "/v1/admin/adjustments", {"card": c[3], "points": 10, "reason": "r",
                                               "key": "K-1"}),
            ("POST", "/v1/admin/card-batches", {"name": "B", "count": 2}),
            ("POST", "/v1/admin/cards/%s/block" % c[4], {"reason": "lost"}),
            ("POST", "/v1/admin/staff", {"login": "x", "role": "cashier", "password": PASSWORD}),
            ("POST", "/v1/admin/families", {"owner": 1}),
            ("POST", "/v1/transfers", {"from_card": c[0], "to_card": c[5], "points": 1,
                                       "key": "T-1"}),
            ("GET", "/v1/cards/%s" % c[0], None),
            ("GET", "/v1/admin/audit?limit=5&after=0", None),
            ("GET", "/v1/cards/%s/qr.svg" % c[0], None),
        ]

    JUNK = [None, True, -1, 0, 2 ** 63, -2 ** 63, 1e308, "", "x" * 300, "\u0000", "\ud7ff",
            [], {}, [[[[[]]]]], "2026-13-45T99:00:00Z", "-5", "+380", " "]

    def mutate(self, rng, body):
        """One change to a JSON body: a value replaced by junk, a key
        dropped or added, or the text itself cut, flipped or padded."""
        how = rng.randrange(6)
        if isinstance(body, dict) and body and how < 3:
            b = json.loads(json.dumps(body))
            target = b
            while True:  # walk into a random nested object or list
                key = rng.choice(list(target)) if isinstance(target, dict) else \
                    rng.randrange(len(target))
                child = target[key]
                if isinstance(child, (dict, list)) and child and rng.random() < 0.5:
                    target = child
                    continue
                break
            if how == 0:
                target[key] = rng.choice(self.JUNK)
            elif how == 1 and isinstance(target, dict):
                del target[key]
            else:
                if isinstance(target, dict):
                    target["extra_%d" % rng.randrange(9)] = rng.choice(self.JUNK)
            return json.dumps(b).encode()
        text = bytearray(json.dumps(body).encode() if body is not None else b"{}")
        if how == 3 and text:
            del text[rng.randrange(len(text)):]
        elif how == 4 and text:
            i = rng.randrange(len(text))
            text[i] = rng.randrange(256)
        else:
            text += rng.choice([b"}", b"]]]]", b"\x00", b"{" * 200, b'"', b" " * 10])
        return bytes(text)

    def test_mutated_requests_never_break_the_server(self):
        import random
        rng = random.Random(20261123)
        admin = self.token("admin")
        creds = [self.k.key, None, "kp_" + "0" * 48, "garbage\x7f", admin,
                 self.token("cashier")]
        seeds = self.seeds()
        client = self.k.client()
        bad = []
        seen = {}
        for i in range(self.ROUNDS):
            method, path, body = rng.choice(seeds)
            if rng.random() < 0.15:  # a path or a query string of junk
                path = path + rng.choice(["/x", "%00", "?limit=-1", "?limit=99999999999",
                                          "/../../etc", "?after=abc", "//"])
            payload = self.mutate(rng, body) if rng.random() < 0.9 else None
            if rng.random() < 0.7:  # mostly the credential the route wants
                staff = path.startswith("/v1/admin") or path.startswith("/v1/transfers")
                key = admin if staff else self.k.key
            else:
                key = rng.choice(creds)
            try:
                status, ans = client.call(method, path, payload, key=key)
            except Exception as e:  # a transport error is a failure too
                bad.append((i, method, path, repr(e)))
                client = self.k.client()
                continue
            seen[status] = seen.get(status, 0) + 1
            if status not in self.ALLOWED:
                bad.append((i, method, path, status, client.last_raw[:200]))
            elif status >= 400:
                err = ans.get("error") if isinstance(ans, dict) else None
                if not (isinstance(err, dict) and err.get("code") and err.get("message")):
                    bad.append((i, method, path, status, "no JSON error", client.last_raw[:200]))
        client.close()
        print("FUZZ", sorted(seen.items()))
        self.assertEqual(bad, [])
        self.assertTrue(self.k.alive(), self.k.log_tail())
        s, _ = self.k.call("GET", "/health")
        self.assertEqual(s, 200)
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)


@unittest.skipUnless(os.environ.get("KOPILKA_LARGE_IMPORT") == "1",
                     "set KOPILKA_LARGE_IMPORT=1 (its own CTest entry)")
class LargeImport(unittest.TestCase):
    """100 000 cards, 100 000 customers and 100 000 opening balances."""

    ROWS = 100000

    def test_import_100000_rows_of_each_file(self):
        k = harness.Kopilka(cards=0)
        self.addCleanup(k.close)
        harness.run_cli(["program", "load", k.db, program_with_customers(k.dir)])
        n = self.ROWS
        cards = os.path.join(k.dir, "cards.csv")
        customers = os.path.join(k.dir, "customers.csv")
        balances = os.path.join(k.dir, "balances.csv")
        write_csv(cards, ["number", "state", "batch"],
                  (["OLD%07d" % i, "issued", "legacy"] for i in range(n)))
        write_csv(customers, ["external_id", "cards", "full_name", "phone", "email", "birthday",
                              "consent_version", "attr.car_model", "attr.mileage"],
                  (["c%d" % i, "OLD%07d" % i, "Customer Number %d" % i, "+38067%07d" % i,
                    "c%d@example.com" % i, "19%02d-%02d-%02d" % (50 + i % 50, 1 + i % 12, 1 + i % 28),
                    "2026-01", "Model %d" % (i % 40), str(i * 7 % 300000)] for i in range(n)))
        write_csv(balances, ["card", "points", "kind", "expires_at"],
                  (["OLD%07d" % i, str(1 + i % 5000), "", ""] for i in range(n)))
        args = ["import", k.db, "--cards", cards, "--customers", customers, "--balances", balances]
        t0 = time.monotonic()
        p = harness.run_cli(args, timeout=3600)
        first = time.monotonic() - t0
        self.assertIn("cards %d new" % n, p.stdout)
        self.assertIn("customers %d new" % n, p.stdout)
        self.assertIn("balances %d posted" % n, p.stdout)
        t0 = time.monotonic()
        p = harness.run_cli(args, timeout=3600)
        second = time.monotonic() - t0
        self.assertIn("cards 0 new, %d unchanged" % n, p.stdout)
        v = k.verify()
        self.assertEqual(v.returncode, 0, v.stdout)
        print("\nLARGE IMPORT: %d rows x 3 files: first run %.1f s, re-run (no change) %.1f s"
              % (n, first, second))


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
