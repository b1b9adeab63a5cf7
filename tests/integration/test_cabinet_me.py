"""
test_cabinet_me.py: what the customer cabinet (web/src/cabinet) reads beside
the customer's own API: GET /v1/me with the customer's own record
("profile") and the program's transfer limits ("transfers"), the consent
version a sign-up's code answers, and the names of a family's members.
The server and its helpers are test_self.py's (messages stay in the
outbox; the back office opens the codes).

    python3 test_cabinet_me.py --kopilka build/kopilka [unittest options]
"""
import unittest

import harness
from test_self import XSS, SelfTestCase


class CabinetMe(SelfTestCase):

    def test_me_has_the_profile_and_the_transfer_limits(self):
        cid, tok = self.customer(0, "+79161230001", XSS)
        s, me = self.me(tok, "GET", "/v1/me", expect=200)
        p = me["profile"]
        self.assertEqual((p["id"], p["full_name"], p["phone"]), (cid, XSS, "+79161230001"))
        self.assertIsNone(p["birthday"])
        self.assertEqual(p["cards"][0]["number"], self.k.cards[0])
        self.assertEqual(me["transfers"],
                         {"max_points": 5000, "daily_max_points": 8000, "kinds": ["regular"]})
        # An edit shows at once.
        self.me(tok, "PATCH", "/v1/me", {"email": "Me@Example.com", "birthday": "1990-05-17"},
                expect=200)
        s, me = self.me(tok, "GET", "/v1/me", expect=200)
        self.assertEqual((me["profile"]["email"], me["profile"]["birthday"]),
                         ("me@example.com", "1990-05-17"))
        # Nobody else's record: the profile is always the session's.
        other, tok2 = self.customer(1, "+79161230002", "Anna")
        s, me2 = self.me(tok2, "GET", "/v1/me", expect=200)
        self.assertEqual((me2["profile"]["id"], me2["profile"]["full_name"]), (other, "Anna"))

    def test_a_signup_code_answers_the_consent_version(self):
        s, a = self.k.call("POST", "/v1/login/code", {"phone": "+79161230003",
                                                      "purpose": "signup"}, key=None)
        self.assertEqual(s, 202, self.k.last_raw())
        self.assertEqual(a["consent_version"], "2026-01")
        # A login's code says nothing of it.
        s, a = self.k.call("POST", "/v1/login/code", {"phone": "+79161230004"}, key=None)
        self.assertEqual(s, 202)
        self.assertNotIn("consent_version", a)

    def test_family_members_are_named(self):
        owner, a = self.customer(0, "+79161230005", "Maria")
        member, b = self.customer(1, "+79161230006", XSS)
        self.me(a, "POST", "/v1/me/family", expect=201)
        self.me(a, "POST", "/v1/me/family/invitations", {"phone": "+79161230006"}, expect=201)
        s, lst = self.me(b, "GET", "/v1/me/family/invitations", expect=200)
        self.me(b, "POST", "/v1/me/family/invitations/%d/accept" % lst["received"][0]["id"],
                expect=200)
        for tok in (a, b):
            s, fam = self.me(tok, "GET", "/v1/me/family", expect=200)
            names = {m["customer"]: m["name"] for m in fam["members"]}
            self.assertEqual(names, {owner: "Maria", member: XSS})
        # The back office reads them too (customer.read).
        fam = self.staff("GET", "/v1/admin/families/%d" % fam["id"])
        self.assertEqual(sorted(m["name"] for m in fam["members"]), sorted(["Maria", XSS]))
        # An erased member has no name any more.
        self.me(b, "POST", "/v1/me/family/members/%d/remove" % member, expect=200)
        self.staff("POST", "/v1/admin/customers/%d/erase" % member, {"reason": "asked"})
        s, fam = self.me(a, "GET", "/v1/me/family", expect=200)
        self.assertEqual([m["name"] for m in fam["members"]], ["Maria"])


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
