"""
test_caps.py: black-box tests that no limit cuts data short in silence
against a real `kopilka serve`:
  - erasing a customer with 66 cards blocks all 66 (the erase read 64);
  - a family member with 66 cards: joining points all 66 at the pot, leaving
    points all 66 back (the moves read 64); a family lists all its 64
    members and refuses a 65th (the list was cut at 64 without a word);
  - 600 promo adjustments of one card: every point is in the balance, the
    lots and one debit of all of them (a load saw 512 lots);
  - a database with 600 open lots in one account (an older version's) is
    refused with a sentence naming the repair, `kopilka lots merge`, which
    brings it to 512 lots with every point kept;
  - `--readers` out of range is refused with the range and the value;
  - one error map: a search without criteria is 400 `bad_field` on the back
    office as on the till (the two maps disagreed), and the codes the till
    and the back office answered stay the same.

    python3 test_caps.py --kopilka build/kopilka [unittest options]
"""
import subprocess
import unittest

import harness
from harness import LABOR
from test_people import PeopleTestCase, CONSENT


class CardsPastSixtyFour(PeopleTestCase):
    cards = 70

    def add_cards(self, customer_id, numbers):
        for number in numbers:
            s, _ = self.as_("manager", "POST", "/v1/admin/customers/%d/cards" % customer_id,
                            {"card": number})
            self.assertEqual(s, 200, self.k.last_raw())

    def test_erase_blocks_all_66_cards(self):
        a = self.register(self.k.cards[0], name="Many Cards", phone="+380507770001")
        self.add_cards(a["id"], self.k.cards[1:66])
        s, c = self.as_("manager", "GET", "/v1/admin/customers/%d" % a["id"])
        self.assertEqual((s, len(c["cards"])), (200, 66), self.k.last_raw())
        s, r = self.as_("manager", "POST", "/v1/admin/customers/%d/erase" % a["id"],
                        {"reason": "request by letter"})
        self.assertEqual(s, 200, self.k.last_raw())
        states = [self.k.card(n)["state"] for n in self.k.cards[:66]]
        self.assertEqual(states, ["blocked"] * 66)
        # A blocked card earns nothing at the till: the 66th is refused.
        s, b = self.k.call("POST", "/v1/purchases",
                           {"card": self.k.cards[65], "receipt": "AFTER-ERASE",
                            "lines": [{"sku": "x", "category": LABOR, "amount": 100000}]})
        self.assertEqual((s, b["error"]["code"]), (404, "unknown_card"))
        self.k.stop()
        self.assertEqual(self.k.verify().returncode, 0)

    def test_family_join_and_leave_move_all_66_cards(self):
        owner = self.register(self.k.cards[0], name="Owner", phone="+380500000001")
        member = self.register(self.k.cards[1], name="Member", phone="+380500000002")
        self.add_cards(member["id"], self.k.cards[2:67])
        self.adjust(self.k.cards[1], 400, "F1")
        s, f = self.as_("call_centre", "POST", "/v1/admin/families", {"owner": owner["id"]})
        self.assertEqual(s, 201, self.k.last_raw())
        s, f = self.as_("call_centre", "POST", "/v1/admin/families/%d/members" % f["id"],
                        {"customer": member["id"], "may_spend": False})
        self.assertEqual((s, f["balance"]), (201, 400), self.k.last_raw())
        last = self.k.cards[66]
        # Every card of the member now shows the pot, and may not spend.
        self.assertEqual(self.k.card(last)["balance"], 400)
        s, c = self.as_("manager", "GET", "/v1/admin/customers/%d" % member["id"])
        self.assertEqual(len(c["cards"]), 66)
        self.assertEqual({x["may_spend"] for x in c["cards"]}, {False})
        # A purchase with the 66th card earns into the pot (4 % of 1000.00).
        s, r = self.k.call("POST", "/v1/purchases",
                           {"card": last, "receipt": "FAM-66",
                            "lines": [{"sku": "x", "category": LABOR, "amount": 100000}]})
        self.assertEqual((s, r["balance"]), (201, 1400), self.k.last_raw())
        self.assertEqual(self.k.card(self.k.cards[0])["balance"], 1400)
        s, _ = self.as_("call_centre", "POST", "/v1/admin/families/%d/members/%d/leave"
                        % (f["id"], member["id"]))
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual(self.k.card(last)["balance"], 0)
        self.assertEqual(self.k.card(self.k.cards[0])["balance"], 1400)
        s, c = self.as_("manager", "GET", "/v1/admin/customers/%d" % member["id"])
        self.assertEqual({x["may_spend"] for x in c["cards"]}, {True})
        self.k.stop()
        self.assertEqual(self.k.verify().returncode, 0)

    def test_family_of_64_lists_all_and_refuses_the_65th(self):
        ids = [self.register(self.k.cards[i], name="Member %d" % i,
                             phone="+38050%07d" % (1000 + i))["id"] for i in range(65)]
        s, f = self.as_("call_centre", "POST", "/v1/admin/families", {"owner": ids[0]})
        self.assertEqual(s, 201, self.k.last_raw())
        for cid in ids[1:64]:
            s, _ = self.as_("call_centre", "POST", "/v1/admin/families/%d/members" % f["id"],
                            {"customer": cid})
            self.assertEqual(s, 201, self.k.last_raw())
        s, a = self.as_("call_centre", "POST", "/v1/admin/families/%d/members" % f["id"],
                        {"customer": ids[64]})
        self.assertEqual((s, a["error"]["code"], a["error"]["field"], a["error"]["message"]),
                         (400, "bad_field", "family",
                          "family %d has 64 members, the most a family may have" % f["id"]))
        s, fam = self.as_("call_centre", "GET", "/v1/admin/families/%d" % f["id"])
        self.assertEqual(sorted(m["customer"] for m in fam["members"]), sorted(ids[:64]))


class ManyLots(PeopleTestCase):

    def test_600_promo_adjustments_every_point_counts(self):
        card = self.k.cards[0]
        self.register(card)
        client = self.k.client(self.token("admin"))
        try:
            for i in range(600):
                s, a = client.call("POST", "/v1/admin/adjustments",
                                   {"card": card, "points": 10, "reason": "promo",
                                    "key": "LOT-%d" % i, "kind": "premium"})
                self.assertEqual(s, 201, a)
        finally:
            client.close()
        c = self.k.card(card)
        self.assertEqual(c["balance"], 6000)
        self.assertEqual(len(c["lots"]), 512)
        self.assertEqual(sum(l["remaining"] for l in c["lots"]), 6000)
        # One debit of every point: before, a load saw 512 lots (5120 points)
        # and refused it.
        s, a = self.as_("admin", "POST", "/v1/admin/adjustments",
                        {"card": card, "points": -6000, "reason": "test", "key": "ALL"})
        self.assertEqual((s, a.get("balance")), (201, 0), self.k.last_raw())
        self.assertEqual(self.k.card(card)["lots"], [])
        self.k.stop()
        self.assertEqual(self.k.verify().returncode, 0)


class RepairsNeedTheServerStopped(unittest.TestCase):
    """`lots merge` and `phones migrate` write in one long transaction: with
    the server running they refuse instead of holding the tills up."""

    def test_refused_while_serving_run_once_stopped(self):
        k = harness.Kopilka(cards=1)
        self.addCleanup(k.close)
        k.start()
        for command in (["lots", "merge"], ["phones", "migrate"]):
            p = subprocess.run([harness.binary()] + command + [k.db], capture_output=True,
                               text=True, timeout=30, env=harness.cli_env([k.db]))
            self.assertEqual(p.returncode, 1, p.stderr)
            if harness.is_pg():  # the servers' advisory lock, not the log's file lock
                self.assertIn("a kopilka server is serving %s" % k.db, p.stderr)
                self.assertIn("runs with every server on the database stopped", p.stderr)
            else:
                self.assertIn("is in use by another process", p.stderr)
                self.assertIn("run it with the server stopped", p.stderr)
        k.stop()
        p = subprocess.run([harness.binary(), "lots", "merge", k.db], capture_output=True,
                           text=True, timeout=30, env=harness.cli_env([k.db]))
        self.assertEqual(p.returncode, 0, p.stderr)


class LegacyLots(unittest.TestCase):
    """A database with more open lots in one account than the ledger keeps
    (written by an older version): refused loudly, then repaired by
    `kopilka lots merge` with every point kept."""

    def test_more_than_512_lots_refused_then_merged(self):
        k = harness.Kopilka(cards=1)
        self.addCleanup(k.close)
        card = k.cards[0]
        ((account,),) = k.query("SELECT account_id FROM cards WHERE number = ?", (card,))
        k.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                  "WHERE i < 600) INSERT INTO lots(account_id, kind, amount, remaining, "
                  "earned_at, active_from, expires_at, op_id) SELECT ?, 'premium', 1, 1, 0, 0, "
                  "4000000000 + i * 86400, 1 FROM n", (account,))
        k.execute("UPDATE accounts SET balance = 600 WHERE id = ?", (account,))
        k.start()
        s, a = k.call("GET", "/v1/cards/" + card)
        self.assertEqual(s, 400, k.last_raw())
        self.assertEqual(a["error"]["message"],
                         "account %d has more than 512 open lots, more than one operation may "
                         "see; `kopilka lots merge DB` merges them" % account)
        k.stop()
        p = k.cli("lots", "merge", "DB")
        self.assertEqual(p.stdout, "account %d: 600 open lots, 512 after merging\n"
                         "%s: 1 account(s) had more than 512 open lots\n" % (account, k.db))
        k.start()
        c = k.card(card)
        self.assertEqual((c["balance"], len(c["lots"])), (600, 512))
        self.assertEqual(sum(l["remaining"] for l in c["lots"]), 600)
        self.assertEqual(c["lots"][-1]["remaining"], 1)
        k.stop()
        p = k.cli("lots", "merge", "DB")
        self.assertEqual(p.stdout, "%s: 0 account(s) had more than 512 open lots\n" % k.db)


class OneErrorMap(PeopleTestCase):

    def test_search_without_criteria_is_bad_field(self):
        s, a = self.as_("manager", "POST", "/v1/admin/customers/search", {})
        self.assertEqual((s, a["error"]["code"]), (400, "bad_field"), self.k.last_raw())

    def test_codes_kept_on_both_sides(self):
        s, a = self.k.call("POST", "/v1/quote", b"card=1")
        self.assertEqual((s, a["error"]["code"]), (400, "bad_json"))
        s, a = self.as_("manager", "POST", "/v1/admin/customers/search", b"{")
        self.assertEqual((s, a["error"]["code"]), (400, "bad_json"))
        s, a = self.k.call("POST", "/v1/returns",
                           {"card": self.k.cards[0], "receipt": "R1",
                            "original_receipt": "NOPE"})
        self.assertEqual((s, a["error"]["code"], a["error"]["field"]),
                         (404, "unknown_receipt", "original_receipt"))
        s, a = self.k.call("GET", "/v1/cards/2000000000008")
        self.assertEqual((s, a["error"]["code"]), (404, "unknown_card"), self.k.last_raw())
        s, a = self.k.call("POST", "/v1/events",
                           {"id": "E1", "card": "2000000000008", "type": "survey"})
        self.assertEqual((s, a["error"]["code"]), (403, "forbidden"), self.k.last_raw())
        s, a = self.as_("manager", "POST", "/v1/admin/adjustments",
                        {"card": "2000000000008", "points": 5, "reason": "r", "key": "K"})
        self.assertEqual((s, a["error"]["code"]), (404, "unknown_card"), self.k.last_raw())
        s, a = self.as_("manager", "GET", "/v1/cards/2000000000008/qr.svg")
        self.assertEqual((s, a["error"]["code"]), (404, "unknown_card"), self.k.last_raw())
        self.register(self.k.cards[0], phone="+380501112233")
        s, a = self.k.call("POST", "/v1/customers",
                           {"card": self.k.cards[1], "full_name": "Other",
                            "phone": "+380501112233", "consent": CONSENT})
        self.assertEqual((s, a["error"]["code"]), (409, "phone_in_use"))
        s, a = self.k.call("POST", "/v1/customers",
                           {"card": self.k.cards[0], "full_name": "Again",
                            "phone": "+380509998877", "consent": CONSENT})
        self.assertEqual((s, a["error"]["code"]), (409, "card_conflict"))


class ReadersOption(unittest.TestCase):

    def test_readers_out_of_range_refused_with_range_and_value(self):
        k = harness.Kopilka(cards=0)
        self.addCleanup(k.close)
        for value in ("0", "65", "eight", ""):
            p = subprocess.run([harness.binary(), "serve", k.db, "--readers", value,
                                "--listen", "127.0.0.1:%d" % harness.free_port()],
                               capture_output=True, text=True, timeout=30,
                               env=harness.cli_env([k.db]))
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertEqual(p.stderr.strip(),
                             ("kopilka serve: --readers must be from 1 to 64, got %s"
                              % value).strip())


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
