"""
test_self.py: the customer's own API (docs/api.md, "The customer's own API
(the cabinet)") against a real `kopilka serve --notify FILE`: sign-up with a
phone's one-time code (a wrong code, a registered phone, a bad form that
keeps the code, a name that is markup round-tripping as plain text), the
history with the explanation of every point, paged, edits of one's own
data (the phone and a set birthday refused, naming the field), preferences,
blocking a lost card and its pictures, the family from the customer's side
(create, invite by phone, the invitee's notification and answer, who may
spend, remove, leave), transfers by phone within the program's limits, the
export of all one's data (an attachment, audited) and erasure (every
session ends). And every route with ANOTHER customer's session against the
first one's card, family and invitation ids: 404 or 403, nothing changed.

The providers are unreachable on purpose (a closed port): messages stay
pending with their sealed texts, which the back office's messages route
opens, so the codes are read from there.

    python3 test_self.py --kopilka build/kopilka [unittest options]
"""
import json
import os
import re
import time
import unittest

import harness
from harness import LABOR
from test_notify_routes import wait_for
from test_people import CUSTOMERS_SECTION, PASSWORD

CONSENT = {"given": True, "text_version": "2026-01"}
XSS = "<img src=x onerror=alert(1)>"


def program_file(directory):
    with open(harness.program_file(), "rb") as f:
        doc = json.load(f)
    doc["customers"] = CUSTOMERS_SECTION
    doc["notifications"] = {"language": "en", "quiet_hours": {"from": "00:00", "to": "00:00"}}
    path = os.path.join(directory, "program-self.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


class SelfTestCase(unittest.TestCase):
    """A database with the program (transfers on), staff, a server whose
    messages stay in the outbox, and helpers for customers' sessions."""

    def setUp(self):
        self.k = harness.Kopilka(cards=10)
        self.addCleanup(self.k.close)
        harness.run_cli(["program", "load", self.k.db, program_file(self.k.dir)])
        pw = os.path.join(self.k.dir, "password")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        harness.run_cli(["staff", "add", self.k.db, "--login", "boss", "--role", "admin",
                         "--password-file", pw])
        closed = harness.free_port()
        path = harness.notify_config(self.k.dir, smtp_port=closed, sms_port=closed, timeout=2,
                                     retry={"max_attempts": 2, "base_seconds": 3600,
                                            "max_seconds": 3600})
        self.k.start(serve_args=["--notify", path])
        self._admin = None

    # --- helpers -------------------------------------------------------
    def admin(self):
        if self._admin is None:
            s, a = self.k.call("POST", "/v1/admin/login", {"login": "boss", "password": PASSWORD},
                               key=None)
            self.assertEqual(s, 200, self.k.last_raw())
            self._admin = a["token"]
        return self._admin

    def staff(self, method, path, body=None, expect=200):
        s, a = self.k.call(method, path, body, key=self.admin())
        self.assertEqual(s, expect, "%s %s: %r" % (method, path, self.k.last_raw()[:600]))
        return a

    def me(self, token, method, path, body=None, expect=None):
        s, a = self.k.call(method, path, body, key=token)
        if expect is not None:
            self.assertEqual(s, expect, "%s %s: %r" % (method, path, self.k.last_raw()[:600]))
        return s, a

    def register(self, card, phone, name="Ivan Petrov"):
        s, a = self.k.call("POST", "/v1/customers", {"card": card, "full_name": name,
                                                     "phone": phone, "consent": CONSENT})
        self.assertEqual(s, 201, self.k.last_raw())
        return a["id"]

    def code_sent_to(self, phone, kind="login_code", seen=()):
        """The 6 digits of the newest message of `kind` to `phone`, opened
        by the admin from the outbox (ids in `seen` skipped)."""
        def find():
            msgs = self.staff("GET", "/v1/admin/messages?channel=sms&limit=100")["messages"]
            for m in msgs:
                if m["kind"] != kind or m["id"] in seen:
                    continue
                full = self.staff("GET", "/v1/admin/messages/%d" % m["id"])
                if full["content"] and full["content"]["to"] == phone:
                    return full["content"]["text"]
            return None
        text = wait_for("an SMS to " + phone, find)
        return re.search(r"\b(\d{6})\b", text).group(1)

    def session(self, phone):
        s, _ = self.k.call("POST", "/v1/login/code", {"phone": phone}, key=None)
        self.assertEqual(s, 202, self.k.last_raw())
        code = self.code_sent_to(phone)
        s, a = self.k.call("POST", "/v1/login", {"phone": phone, "code": code}, key=None)
        self.assertEqual(s, 200, self.k.last_raw())
        return a["token"]

    def customer(self, i, phone, name="Ivan Petrov"):
        """A registered customer on card i and their session token."""
        cid = self.register(self.k.cards[i], phone, name)
        return cid, self.session(phone)

    def buy(self, card, receipt, amount=100000, burn=0):
        body = {"card": card, "receipt": receipt, "burn": burn,
                "lines": [{"sku": "x", "category": LABOR, "amount": amount}]}
        s, r = self.k.call("POST", "/v1/purchases", body)
        self.assertEqual(s, 201, self.k.last_raw())
        return r

    def adjust(self, card, points, key, reason="goodwill"):
        return self.staff("POST", "/v1/admin/adjustments",
                          {"card": card, "points": points, "reason": reason, "key": key},
                          expect=201)

    def audit(self):
        return self.staff("GET", "/v1/admin/audit?limit=1000")["entries"]


# ---------------------------------------------------------------------------
class SignUp(SelfTestCase):

    def signup_body(self, phone, code, card, **more):
        body = {"phone": phone, "code": code, "card": card, "full_name": XSS,
                "email": "me@example.com", "receipt": "R-77",
                "consent": {"rules": True, "marketing": True, "version": "2026-01"}}
        body.update(more)
        return body

    def test_sign_up_with_the_code_sent_to_a_new_phone(self):
        phone = "+79161110001"
        taken = "+79161110002"
        self.register(self.k.cards[1], taken)
        s, a = self.k.call("POST", "/v1/login/code", {"phone": phone, "purpose": "signup"},
                           key=None)
        self.assertEqual(s, 202, self.k.last_raw())
        # A registered phone gets the same answer (and no code).
        s, b = self.k.call("POST", "/v1/login/code", {"phone": taken, "purpose": "signup"},
                           key=None)
        self.assertEqual((s, b), (202, a))
        s, e = self.k.call("POST", "/v1/login/code", {"phone": phone, "purpose": "join"},
                           key=None)
        self.assertEqual((s, e["error"]["field"]), (400, "purpose"))
        s, e = self.k.call("POST", "/v1/login/code", {"email": "x@example.com",
                                                      "purpose": "signup"}, key=None)
        self.assertEqual((s, e["error"]["field"]), (400, "phone"))
        code = self.code_sent_to(phone)
        wrong = "%06d" % ((int(code) + 1) % 1000000)
        card = self.k.cards[0]
        s, e = self.k.call("POST", "/v1/signup", self.signup_body(phone, wrong, card), key=None)
        self.assertEqual((s, e["error"]["code"], e["error"]["field"]),
                         (401, "unauthorized", "code"))
        # A registered phone: the same 401, whatever the code.
        s, e2 = self.k.call("POST", "/v1/signup", self.signup_body(taken, code, card), key=None)
        self.assertEqual((s, e2["error"]["message"]), (401, e["error"]["message"]))
        # The right code with a wrong form: the form's error, the code kept.
        s, e = self.k.call("POST", "/v1/signup",
                           self.signup_body(phone, code, "2000000000000"), key=None)
        self.assertIn(s, (400, 404))
        self.assertEqual(e["error"]["field"], "card")
        s, e = self.k.call("POST", "/v1/signup",
                           self.signup_body(phone, code, card, consent={"rules": False,
                                                                        "version": "2026-01"}),
                           key=None)
        self.assertEqual((s, e["error"]["field"]), (400, "consent.rules"))
        s, sess = self.k.call("POST", "/v1/signup", self.signup_body(phone, code, card),
                              key=None)
        self.assertEqual(s, 201, self.k.last_raw())
        self.assertTrue(sess["token"].startswith("kpc_"))
        cid = sess["customer"]
        s, _ = self.k.call("POST", "/v1/signup", self.signup_body(phone, code,
                                                                  self.k.cards[2]), key=None)
        self.assertEqual(s, 401, "a code is used once")
        # The name that is markup comes back as the same plain text in JSON.
        s, me = self.me(sess["token"], "GET", "/v1/me", expect=200)
        self.assertEqual([c["card"] for c in me["cards"]], [card])
        self.assertTrue(me["notifications"]["marketing_consent"]["given"])
        raw = self.k.last_raw().decode("utf-8")
        s, c = self.me(sess["token"], "PATCH", "/v1/me", {}, expect=200)
        self.assertEqual(c["full_name"], XSS)
        self.assertIn('"full_name":"<img src=x onerror=alert(1)>"',
                      self.k.last_raw().decode("utf-8"))
        self.assertNotIn("&lt;", raw)
        c = self.staff("GET", "/v1/admin/customers/%d" % cid)
        self.assertEqual((c["full_name"], c["phone"], c["receipt"]), (XSS, phone, "R-77"))
        self.assertEqual(c["consent"]["text_version"], "2026-01")
        entries = self.audit()
        reg = [x for x in entries if x["action"] == "customer.register"
               and x["target"] == "customer:%d" % cid]
        self.assertEqual([x["actor"] for x in reg], ["customer:%d" % cid])
        self.assertIn("signup.failed", [x["action"] for x in entries])
        self.assertNotIn(phone, json.dumps(entries))

    def test_sign_up_into_a_cookie_session(self):
        phone = "+79161110004"
        self.k.call("POST", "/v1/login/code", {"phone": phone, "purpose": "signup"}, key=None)
        code = self.code_sent_to(phone)
        s, sess = self.k.call("POST", "/v1/signup",
                              self.signup_body(phone, code, self.k.cards[3]), key=None,
                              headers={"X-Kopilka-Session": "cookie"})
        self.assertEqual(s, 201, self.k.last_raw())
        self.assertNotIn("token", sess)
        cookie = self.k._client.last_headers["Set-Cookie"]
        self.assertIn("HttpOnly", cookie)
        jar = {"Cookie": cookie.split(";")[0]}
        # A write by cookie needs the csrf; its answer is the customer, no csrf in it.
        s, _ = self.k.call("PATCH", "/v1/me", {"email": "c@example.com"}, key=None, headers=jar)
        self.assertEqual(s, 403)
        s, c = self.k.call("PATCH", "/v1/me", {"email": "c@example.com"}, key=None,
                           headers=dict(jar, **{"X-CSRF-Token": sess["csrf"]}))
        self.assertEqual((s, c["email"]), (200, "c@example.com"))
        self.assertNotIn("csrf", c)
        s, me = self.k.call("GET", "/v1/me", key=None, headers=jar)
        self.assertEqual((s, me["csrf"]), (200, sess["csrf"]))
        s, _ = self.k.call("POST", "/v1/me/erase", {"confirm": "ERASE"}, key=None,
                           headers=dict(jar, **{"X-CSRF-Token": sess["csrf"]}))
        self.assertEqual(s, 200)
        self.assertIn("Max-Age=0", self.k._client.last_headers["Set-Cookie"])
        s, _ = self.k.call("GET", "/v1/me", key=None, headers=jar)
        self.assertEqual(s, 401)

    def test_sign_up_code_limits_are_the_login_codes(self):
        phone = "+79161110003"
        s, _ = self.k.call("POST", "/v1/login/code", {"phone": phone, "purpose": "signup"},
                           key=None)
        self.assertEqual(s, 202)
        s, _ = self.k.call("POST", "/v1/login/code", {"phone": phone}, key=None)
        self.assertEqual(s, 429)
        code = self.code_sent_to(phone)
        # Signing up is no login: the code is not a session's.
        s, _ = self.k.call("POST", "/v1/login", {"phone": phone, "code": code}, key=None)
        self.assertEqual(s, 401)


# ---------------------------------------------------------------------------
class MyData(SelfTestCase):

    def test_history_explains_every_point_and_pages(self):
        cid, tok = self.customer(0, "+79161120001")
        card = self.k.cards[0]
        self.buy(card, "H1")
        self.adjust(card, 250, "ADJ-H", reason="double charge on 12.11")
        self.buy(card, "H2", burn=100)
        s, h = self.me(tok, "GET", "/v1/me/history", expect=200)
        self.assertEqual(h["customer"], cid)
        self.assertEqual([x["type"] for x in h["history"]], ["purchase", "adjustment", "purchase"])
        for x in h["history"]:
            self.assertTrue(x["explain"], x)
            for item in x["explain"]:
                self.assertEqual(set(item) - {"discount"},
                                 {"rule", "kind", "base", "rate", "points", "text"})
        self.assertIn("double charge on 12.11", h["history"][1]["explain"][0]["text"])
        self.assertEqual(h["history"][1]["explain"][0]["points"], 250)
        self.assertEqual(sum(i["points"] for i in h["history"][2]["explain"]
                             if i["kind"] != "discount"), h["history"][2]["earned"])
        self.assertIsNone(h["next_before"])
        s, p1 = self.me(tok, "GET", "/v1/me/history?limit=2", expect=200)
        self.assertEqual(len(p1["history"]), 2)
        s, p2 = self.me(tok, "GET", "/v1/me/history?limit=2&before=%d" % p1["next_before"],
                        expect=200)
        self.assertEqual([x["op_id"] for x in p1["history"] + p2["history"]],
                         [x["op_id"] for x in h["history"]])
        s, e = self.me(tok, "GET", "/v1/me/history?limit=101", expect=400)
        self.assertEqual(e["error"]["field"], "limit")
        # The staff route gives the same list.
        staff = self.staff("GET", "/v1/admin/customers/%d/history" % cid)
        self.assertEqual(staff["history"], h["history"])

    def test_edit_own_data_but_not_the_phone_or_a_set_birthday(self):
        cid, tok = self.customer(0, "+79161120002")
        s, c = self.me(tok, "PATCH", "/v1/me", {"full_name": "Ivan  Sidorov",
                                                "email": "New@Example.com"}, expect=200)
        self.assertEqual((c["full_name"], c["email"]), ("Ivan Sidorov", "new@example.com"))
        s, e = self.me(tok, "PATCH", "/v1/me", {"phone": "+79161129999"}, expect=400)
        self.assertEqual(e["error"]["field"], "phone")
        self.assertIn("call the shop", e["error"]["message"])
        s, e = self.me(tok, "PATCH", "/v1/me", {"receipt": "X"}, expect=400)
        self.assertEqual(e["error"]["field"], "receipt")
        s, c = self.me(tok, "PATCH", "/v1/me", {"birthday": "1990-05-06"}, expect=200)
        self.assertEqual(c["birthday"], "1990-05-06")
        s, e = self.me(tok, "PATCH", "/v1/me", {"birthday": "1991-05-06"}, expect=400)
        self.assertEqual(e["error"]["field"], "birthday")
        self.assertIn("birthday", e["error"]["message"])
        c = self.staff("GET", "/v1/admin/customers/%d" % cid)
        self.assertEqual((c["phone"], c["birthday"]), ("+79161120002", "1990-05-06"))
        edits = [x for x in self.audit() if x["action"] == "customer.edit"]
        self.assertEqual({x["actor"] for x in edits}, {"customer:%d" % cid})

    def test_notification_preferences_with_consent(self):
        cid, tok = self.customer(0, "+79161120003")
        body = {"marketing": ["sms"], "marketing_consent": {"given": True, "version": "m-1"}}
        s, p = self.me(tok, "PUT", "/v1/me/notifications", body, expect=200)
        self.assertEqual((p["customer"], p["marketing"]), (cid, ["sms"]))
        self.assertTrue(p["marketing_consent"]["given"])
        self.assertIsNotNone(p["marketing_consent"]["at"])
        s, e = self.me(tok, "PUT", "/v1/me/notifications",
                       {"marketing_consent": {"given": True}}, expect=400)
        self.assertEqual(e["error"]["field"], "marketing_consent.version")
        s, e = self.me(tok, "PUT", "/v1/me/notifications", {"marketing": ["webhook"]},
                       expect=400)
        self.assertEqual(e["error"]["field"], "marketing")

    def test_block_a_lost_card_and_show_its_pictures(self):
        cid, tok = self.customer(0, "+79161120004")
        card = self.k.cards[0]
        s, svg = self.me(tok, "GET", "/v1/me/cards/%s/barcode.svg" % card, expect=200)
        self.assertIn("<svg", self.k.last_raw().decode())
        self.assertEqual(self.k._client.last_headers["Content-Type"], "image/svg+xml")
        self.me(tok, "GET", "/v1/me/cards/%s/qr.svg" % card, expect=200)
        s, b = self.me(tok, "POST", "/v1/me/cards/%s/block" % card, {}, expect=200)
        self.assertEqual(b, {"card": card, "state": "blocked"})
        self.me(tok, "POST", "/v1/me/cards/%s/block" % card, {}, expect=409)
        c = self.staff("GET", "/v1/admin/cards/%s" % card)
        self.assertEqual(c["state"], "blocked")
        self.assertEqual(c["events"][-1]["actor"], "customer:%d" % cid)

    def test_export_is_an_audited_attachment_of_everything(self):
        cid, tok = self.customer(0, "+79161120005", name=XSS)
        self.buy(self.k.cards[0], "E1")
        s, x = self.me(tok, "GET", "/v1/me/export", expect=200)
        self.assertIn("attachment", self.k._client.last_headers["Content-Disposition"])
        self.assertEqual(x["customer"]["id"], cid)
        self.assertEqual(x["customer"]["full_name"], XSS)
        self.assertEqual(x["cards"][0]["number"], self.k.cards[0])
        self.assertEqual(x["history"][0]["receipt"], "E1")
        self.assertTrue(x["history_complete"] and x["messages_complete"])
        self.assertIn("language", x["notifications"])
        kinds = {m["kind"] for m in x["messages"]}
        self.assertIn("login_code", kinds)
        for m in x["messages"]:
            if m["kind"] == "login_code":
                self.assertIsNone(m["text"], "a login code's text stays out")
        self.assertIn({"action": "customer.export", "actor": "customer:%d" % cid},
                      [{"action": e["action"], "actor": e["actor"]} for e in self.audit()])

    def test_erase_ends_every_session(self):
        cid, tok = self.customer(0, "+79161120006")
        tok2 = self.session_again("+79161120006")
        s, e = self.me(tok, "POST", "/v1/me/erase", {"confirm": "yes"}, expect=400)
        self.assertEqual(e["error"]["field"], "confirm")
        s, r = self.me(tok, "POST", "/v1/me/erase", {"confirm": "ERASE"}, expect=200)
        self.assertEqual(r, {"erased": True, "customer": cid})
        for t in (tok, tok2):
            self.me(t, "GET", "/v1/me", expect=401)
        c = self.staff("GET", "/v1/admin/customers/%d" % cid)
        self.assertEqual((c["state"], c["full_name"]), ("erased", None))
        self.assertEqual(c["cards"][0]["state"], "blocked")
        erase = [x for x in self.audit() if x["action"] == "customer.erase"]
        self.assertEqual(erase[0]["actor"], "customer:%d" % cid)

    def session_again(self, phone):
        # The second code within a minute is refused: a later minute.
        self.k.set_clock(time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                       time.gmtime(time.time() + 120)))
        self._admin = None
        return self.session(phone)


# ---------------------------------------------------------------------------
class FamilyAndTransfers(SelfTestCase):

    def test_family_from_the_customers_side(self):
        owner, a = self.customer(0, "+79161130001", name="Anna Owner")
        member, b = self.customer(1, "+79161130002", name="Boris Member")
        self.adjust(self.k.cards[1], 300, "FB")
        self.me(b, "GET", "/v1/me/family", expect=404)
        s, f = self.me(a, "POST", "/v1/me/family", expect=201)
        self.assertEqual((f["owner"], len(f["members"])), (owner, 1))
        self.me(a, "POST", "/v1/me/family", expect=409)
        s, e = self.me(b, "POST", "/v1/me/family/invitations", {"phone": "+79161130001"},
                       expect=409)
        self.assertEqual(e["error"]["field"], "family")
        s, inv = self.me(a, "POST", "/v1/me/family/invitations", {"phone": "8 916 113-00-02"},
                         expect=201)
        self.assertEqual((inv["state"], inv["phone"], inv["family"]),
                         ("pending", "+79161130002", f["id"]))
        s, again = self.me(a, "POST", "/v1/me/family/invitations", {"phone": "+79161130002"},
                           expect=200)
        self.assertEqual(again["id"], inv["id"])
        self.me(a, "POST", "/v1/me/family/invitations", {"phone": "+79161130001"}, expect=400)
        s, lst = self.me(a, "GET", "/v1/me/family/invitations", expect=200)
        self.assertEqual(([i["id"] for i in lst["sent"]], lst["received"]), ([inv["id"]], []))
        s, lst = self.me(b, "GET", "/v1/me/family/invitations", expect=200)
        self.assertEqual(([i["id"] for i in lst["received"]], lst["sent"]), ([inv["id"]], []))
        self.assertEqual(lst["received"][0]["inviter_name"], "Anna Owner")
        self.assertNotIn("phone", lst["received"][0])
        note = wait_for("the family_invite message", lambda: [
            m for m in self.staff("GET", "/v1/admin/messages?customer=%d" % member)["messages"]
            if m["kind"] == "family_invite"])
        self.assertEqual(note[0]["customer"], member)
        s, fam = self.me(b, "POST", "/v1/me/family/invitations/%d/accept" % inv["id"],
                         expect=200)
        self.assertEqual(fam["balance"], 300)
        self.me(b, "POST", "/v1/me/family/invitations/%d/accept" % inv["id"], expect=409)
        s, fam = self.me(b, "GET", "/v1/me/family", expect=200)
        self.assertEqual({(m["customer"], m["may_spend"]) for m in fam["members"]},
                         {(owner, True), (member, False)})
        # Only the owner decides who may spend and removes; a member leaves.
        self.me(b, "PATCH", "/v1/me/family/members/%d" % member, {"may_spend": True},
                expect=403)
        self.me(b, "POST", "/v1/me/family/members/%d/remove" % owner, expect=403)
        s, fam = self.me(a, "PATCH", "/v1/me/family/members/%d" % member, {"may_spend": True},
                         expect=200)
        self.assertIn({"customer": member, "may_spend": True},
                      [{"customer": m["customer"], "may_spend": m["may_spend"]}
                       for m in fam["members"]])
        s, left = self.me(b, "POST", "/v1/me/family/members/%d/remove" % member, expect=200)
        self.assertEqual(left, {"left": True, "family": f["id"]})
        self.me(b, "GET", "/v1/me/family", expect=404)
        actors = {x["actor"] for x in self.audit() if x["action"].startswith("family.")}
        self.assertEqual(actors, {"customer:%d" % owner, "customer:%d" % member})
        self.k.stop()
        self.assertEqual(self.k.verify().returncode, 0)

    def test_invitation_to_a_phone_that_signs_up_later_and_expiry(self):
        owner, a = self.customer(0, "+79161130011")
        self.me(a, "POST", "/v1/me/family", expect=201)
        s, inv = self.me(a, "POST", "/v1/me/family/invitations", {"phone": "+79161130012"},
                         expect=201)
        s, _ = self.k.call("POST", "/v1/login/code", {"phone": "+79161130012",
                                                      "purpose": "signup"}, key=None)
        code = self.code_sent_to("+79161130012")
        s, sess = self.k.call("POST", "/v1/signup", {
            "phone": "+79161130012", "code": code, "card": self.k.cards[1],
            "full_name": "Late Comer", "consent": {"rules": True, "version": "2026-01"}},
            key=None)
        self.assertEqual(s, 201, self.k.last_raw())
        s, lst = self.me(sess["token"], "GET", "/v1/me/family/invitations", expect=200)
        self.assertEqual([i["id"] for i in lst["received"]], [inv["id"]])
        # A week later it is gone.
        self.k.set_clock(time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                       time.gmtime(time.time() + 8 * 86400)))
        self._admin = None
        tok = self.session("+79161130012")  # the sign-up's session ran out too (7 days)
        s, lst = self.me(tok, "GET", "/v1/me/family/invitations", expect=200)
        self.assertEqual(lst["received"], [])
        s, e = self.me(tok, "POST", "/v1/me/family/invitations/%d/decline" % inv["id"],
                       expect=409)
        self.assertIn("expired", e["error"]["message"])

    def test_transfer_by_phone_within_the_programs_limits(self):
        giver, a = self.customer(0, "+79161130021")
        taker, b = self.customer(1, "+79161130022")
        self.adjust(self.k.cards[0], 9000, "T0")
        body = {"to_phone": "8 916 113-00-22", "points": 5001, "key": "gift-1"}
        s, e = self.me(a, "POST", "/v1/me/transfers", body, expect=400)
        self.assertEqual(e["error"]["field"], "points")
        body["points"] = 5000
        s, t = self.me(a, "POST", "/v1/me/transfers", body, expect=201)
        self.assertEqual((t["points"], t["balance"], t["from_card"], t["to_card_last4"]),
                         (5000, 4000, self.k.cards[0], self.k.cards[1][-4:]))
        self.assertNotIn("to_balance", t)
        self.assertNotIn("to_card", t)
        s, again = self.me(a, "POST", "/v1/me/transfers", body, expect=200)
        self.assertTrue(again.pop("replayed"))
        self.assertEqual(again, t)
        s, e = self.me(a, "POST", "/v1/me/transfers",
                       {"to_card": self.k.cards[1], "points": 3001, "key": "gift-2"},
                       expect=400)
        self.assertIn("a day", e["error"]["message"])
        s, e = self.me(a, "POST", "/v1/me/transfers",
                       {"to_phone": "+79161130021", "points": 1, "key": "gift-3"}, expect=400)
        self.assertEqual(e["error"]["field"], "to_phone")
        s, e = self.me(a, "POST", "/v1/me/transfers",
                       {"to_phone": "+79161139999", "points": 1, "key": "gift-4"}, expect=404)
        self.assertEqual(e["error"]["field"], "to_phone")
        self.assertEqual(self.k.card(self.k.cards[1])["balance"], 5000)
        s, h = self.me(b, "GET", "/v1/me/history", expect=200)
        self.assertEqual((h["history"][0]["type"], h["history"][0]["points"]), ("transfer", 5000))
        self.assertEqual(h["history"][0]["explain"][0]["kind"], "transfer")
        moves = [x for x in self.audit() if x["action"] == "ledger.transfer"]
        self.assertEqual(moves[0]["actor"], "customer:%d" % giver)


# ---------------------------------------------------------------------------
class AnotherCustomersIds(SelfTestCase):
    """Every route with another customer's session against the first
    one's ids: 404 (or 403 where the caller's own family is named), and
    nothing changes."""

    def test_nothing_of_another_customer_is_reachable(self):
        first, a = self.customer(0, "+79161140001")
        member, b = self.customer(1, "+79161140002")
        other, c = self.customer(2, "+79161140003")
        self.adjust(self.k.cards[0], 1000, "X0")
        s, fam = self.me(a, "POST", "/v1/me/family", expect=201)
        s, inv = self.me(a, "POST", "/v1/me/family/invitations", {"phone": "+79161140002"},
                         expect=201)
        s, inv2 = self.me(a, "POST", "/v1/me/family/invitations", {"phone": "+79161149999"},
                          expect=201)
        card = self.k.cards[0]
        before = self.staff("GET", "/v1/admin/cards/%s" % card)
        for method, path, body in (
                ("POST", "/v1/me/cards/%s/block" % card, {}),
                ("GET", "/v1/me/cards/%s/barcode.svg" % card, None),
                ("GET", "/v1/me/cards/%s/qr.svg" % card, None),
                ("POST", "/v1/me/family/invitations/%d/accept" % inv["id"], None),
                ("POST", "/v1/me/family/invitations/%d/decline" % inv["id"], None),
                ("POST", "/v1/me/family/invitations/%d/accept" % inv2["id"], None),
                ("PATCH", "/v1/me/family/members/%d" % first, {"may_spend": False}),
                ("POST", "/v1/me/family/members/%d/remove" % first, None),
                ("GET", "/v1/me/family", None)):
            s, e = self.me(c, method, path, body)
            self.assertEqual(s, 404, "%s %s: %r" % (method, path, self.k.last_raw()[:300]))
        # In a family of their own, the first one's members are still nobody.
        self.me(c, "POST", "/v1/me/family", expect=201)
        for method, path, body in (
                ("PATCH", "/v1/me/family/members/%d" % first, {"may_spend": False}),
                ("POST", "/v1/me/family/members/%d/remove" % first, None)):
            self.me(c, method, path, body, expect=404)
        # A transfer only ever gives from the caller's own card.
        s, t = self.me(c, "POST", "/v1/me/transfers",
                       {"to_card": self.k.cards[2], "points": 1, "key": "steal"})
        self.assertEqual(s, 400)
        # Nothing changed.
        self.assertEqual(self.staff("GET", "/v1/admin/cards/%s" % card), before)
        s, lst = self.me(a, "GET", "/v1/me/family/invitations", expect=200)
        self.assertEqual(sorted(i["id"] for i in lst["sent"]), sorted([inv["id"], inv2["id"]]))
        s, lst = self.me(b, "GET", "/v1/me/family/invitations", expect=200)
        self.assertEqual([i["state"] for i in lst["received"]], ["pending"])
        self.assertEqual(self.k.card(card)["balance"], 1000)
        # Sessions and roles do not cross.
        self.me(c, "GET", "/v1/admin/customers/%d" % first, expect=403)
        s, _ = self.k.call("GET", "/v1/me/history", key=self.admin())
        self.assertEqual(s, 403)
        s, _ = self.k.call("GET", "/v1/me/history", key=None)
        self.assertEqual(s, 401)
        s, _ = self.k.call("GET", "/v1/me/export")  # a terminal key
        self.assertEqual(s, 403)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
