"""
test_catalog_notify.py: a rewards catalog order tells its customer
(docs/notifications.md, kinds order_placed, order_ready, order_cancelled)
against a real `kopilka serve --notify FILE` with the SMS gateway and the
SMTP server faked on loopback (fakes.py), as test_notify.py does:

  - an order at the till reaches the customer by SMS and e-mail with the
    item, the order's number and the points; marking it ready, and
    cancelling another, do too (the cancellation with the points given
    back and the balance after);
  - handing an order over and a refused order (out of stock) write no
    event: each event is written with the order's change, or not at all.

    python3 test_catalog_notify.py --kopilka build/kopilka [unittest options]
"""
import os
import unittest

import harness
from test_notify import NotifyTestCase, PASSWORD, points, wait_for


class CatalogNotify(NotifyTestCase):

    def staff(self, method, path, body=None, expect=200):
        if not hasattr(self, "_token"):
            s, a = self.k.call("POST", "/v1/admin/login",
                               {"login": "boss", "password": PASSWORD}, key=None)
            self.assertEqual(s, 200, self.k.last_raw())
            self._token = a["token"]
        s, a = self.k.call(method, path, body, key=self._token)
        self.assertEqual(s, expect, "%s %s: %r" % (method, path, self.k.last_raw()[:600]))
        return a

    def order(self, card, item_id, key, qty=1, expect=201):
        s, a = self.k.call("POST", "/v1/orders",
                           {"card": card, "item_id": item_id, "key": key, "qty": qty})
        self.assertEqual(s, expect, self.k.last_raw())
        return a

    def sms_with(self, text):
        return wait_for("an SMS with %r" % text,
                        lambda: [r for r in self.sms_to() if text in r["fields"]["text"]])

    def events(self):
        return [k for (k,) in self.k.query("SELECT key FROM notify_events WHERE key LIKE "
                                           "'catalog-order:%' ORDER BY id")]

    def test_placed_ready_and_cancelled_reach_the_customer(self):
        pw = os.path.join(self.k.dir, "password")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        harness.run_cli(["staff", "add", self.k.db, "--login", "boss", "--role", "admin",
                         "--password-file", pw])
        self.fakes()
        self.k.start(serve_args=["--notify", self.config()])
        card = self.k.cards[0]
        self.register(card)
        balance = self.purchase(card, "R-1", labor=500000)["balance"]
        self.assertGreaterEqual(balance, 600, "the purchase earns enough for two mugs")
        mug = self.staff("POST", "/v1/admin/catalog/items", {"name": "Travel mug", "price": 200},
                         expect=201)
        self.staff("PUT", "/v1/admin/catalog/items/%d/stock" % mug["id"],
                   {"stock": [{"store": "main", "qty": 3}]})

        # Placed: the SMS and the e-mail name the item, the number, the points.
        o1 = self.order(card, mug["id"], "o-1")
        self.sms_with("Order %d: Travel mug for 200 points" % o1["id"])
        mail = wait_for("the order's e-mail", lambda: [
            m for m in self.mails_to() if m["subject"] == "Order %d placed" % o1["id"]])
        self.assertIn("You ordered Travel mug for 200 points", mail[0]["text"])
        self.assertIn("Collect it at store main", mail[0]["text"])
        self.assertIn("Balance: %s" % points(o1["balance"]), mail[0]["text"])

        # Ready, at its store.
        s, a = self.k.call("POST", "/v1/orders/%d/ready" % o1["id"])
        self.assertEqual((s, a["state"]), (200, "ready"), self.k.last_raw())
        self.sms_with("Order %d (Travel mug) is ready: collect it at store main." % o1["id"])

        # Two more, cancelled: the points back and the balance after.
        o2 = self.order(card, mug["id"], "o-2", qty=2)
        mail = wait_for("the second order's e-mail", lambda: [
            m for m in self.mails_to() if m["subject"] == "Order %d placed" % o2["id"]])
        self.assertIn("Travel mug (x2) for 400 points", mail[0]["text"])
        s, a = self.k.call("POST", "/v1/orders/%d/cancel" % o2["id"])
        self.assertEqual((s, a["state"]), (200, "cancelled"), self.k.last_raw())
        self.sms_with("Order %d cancelled, points back: +400, balance %s."
                      % (o2["id"], points(a["balance"])))

        # Handing over tells nothing; a refused order writes no event.
        s, a = self.k.call("POST", "/v1/orders/%d/hand-over" % o1["id"])
        self.assertEqual((s, a["state"]), (200, "handed_over"), self.k.last_raw())
        s, a = self.k.call("POST", "/v1/orders",
                           {"card": card, "item_id": mug["id"], "key": "o-3", "qty": 5})
        self.assertEqual((s, a["error"]["code"]), (409, "out_of_stock"), self.k.last_raw())
        self.assertEqual(self.events(), [
            "catalog-order:%d:ordered" % o1["id"], "catalog-order:%d:ready" % o1["id"],
            "catalog-order:%d:ordered" % o2["id"], "catalog-order:%d:cancelled" % o2["id"]])
        # Transactional: each went by both channels, once.
        wait_for("every message sent", lambda: all(m[3] == 1 for m in self.messages())
                 and len(self.messages()) >= 10)
        kinds = self.k.query("SELECT m.kind, m.channel FROM messages m JOIN notify_events e "
                             "ON e.id = m.event_id WHERE e.key LIKE 'catalog-order:%'")
        self.assertEqual(len(kinds), 8, kinds)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
