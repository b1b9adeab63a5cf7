"""
test_sales_receipts.py: one receipt is one sale, with a card or without
(issue 12, docs/api.md "Purchases without a card"), against a real
`kopilka serve`:

  - a purchase with a card under the (store, receipt) of a till's sale
    without a card is 409 receipt_conflict on field `receipt`, saying what
    it clashes with; the anonymous sale's own retry still gets its first
    answer;
  - a sale without a card under a card purchase's receipt is 409 the same
    way; the card purchase's own retry still gets its first answer;
  - nothing is written by the refusals: no operation, no sale, no point.

    python3 test_sales_receipts.py --kopilka build/kopilka [unittest options]
"""
import unittest

import harness


def body(receipt, card=None, amount=150000):
    b = {"receipt": receipt,
         "lines": [{"sku": "OIL-1", "category": harness.LABOR, "amount": amount, "qty": 1},
                   {"sku": "FLT-2", "category": "parts", "amount": 5000, "qty": 3}]}
    if card:
        b["card"] = card
    return b


class ReceiptIsOneSale(unittest.TestCase):
    def setUp(self):
        self.k = harness.Kopilka(cards=1)
        self.k.start()

    def tearDown(self):
        self.k.close()

    def refused(self, status, ans, *words):
        self.assertEqual(status, 409, self.k.last_raw())
        err = ans["error"]
        self.assertEqual((err["code"], err.get("field")), ("receipt_conflict", "receipt"), ans)
        for w in words:
            self.assertIn(w, err["message"])

    def test_card_purchase_under_an_anonymous_sales_receipt(self):
        card = self.k.cards[0]
        before = self.k.card(card)
        s, first = self.k.call("POST", "/v1/purchases", body("A-1"))
        self.assertEqual(s, 201, self.k.last_raw())
        s, ans = self.k.call("POST", "/v1/purchases", body("A-1", card=card))
        self.refused(s, ans, "receipt A-1 of store main", "already a sale without a card",
                     "a purchase with a card cannot use it")
        self.assertEqual(self.k.card(card), before)
        # The anonymous sale's retry: its first answer, as before.
        s, again = self.k.call("POST", "/v1/purchases", body("A-1"))
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertTrue(again.pop("replayed"))
        self.assertEqual(again, first)
        # Refused again on a retry of the card purchase: nothing was stored.
        s, ans = self.k.call("POST", "/v1/purchases", body("A-1", card=card))
        self.refused(s, ans, "already a sale without a card")
        self.k.stop()
        self.assertEqual(self.k.query("SELECT count(*) FROM ops")[0][0], 0)
        self.assertEqual(self.k.query("SELECT count(*) FROM sales")[0][0], 1)

    def test_anonymous_sale_under_a_card_purchases_receipt(self):
        card = self.k.cards[0]
        s, first = self.k.call("POST", "/v1/purchases", body("C-1", card=card))
        self.assertEqual(s, 201, self.k.last_raw())
        after = self.k.card(card)
        s, ans = self.k.call("POST", "/v1/purchases", body("C-1"))
        self.refused(s, ans, "receipt C-1 of store main", "already a purchase with a card",
                     "a sale without a card cannot use it")
        # The card purchase's retry: its first answer, as before.
        s, again = self.k.call("POST", "/v1/purchases", body("C-1", card=card))
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertTrue(again.pop("replayed"))
        self.assertEqual(again, first)
        self.assertEqual(self.k.card(card), after)
        s, ans = self.k.call("POST", "/v1/purchases", body("C-1"))
        self.refused(s, ans, "already a purchase with a card")
        self.k.stop()
        self.assertEqual(self.k.query("SELECT count(*) FROM ops")[0][0], 1)
        self.assertEqual(self.k.query("SELECT count(*) FROM sales")[0][0], 0)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
