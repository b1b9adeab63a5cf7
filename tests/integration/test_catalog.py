"""
test_catalog.py: the rewards catalog (docs/marketing.md "Rewards catalog",
docs/api.md "Rewards catalog") against a real `kopilka serve`, on SQLite
and PostgreSQL (integration_catalog and its _pg twin):

  - items, stock per store and an image (type- and size-checked, served
    with an ETag and answered 304 when it has not changed);
  - an order at the till: points and stock taken at once, a retry with the
    same key answered without a second order, a key reused for another
    order refused, 409 out_of_stock naming the store and the item, 422
    not_enough_points; handing over; no cancelling after it;
  - the cabinet: the offered items, an order for one's own card (not
    another's), one's own orders, a cancellation giving back points and
    stock, refused once the store marked the order ready;
  - many orders at once for the last few items (from several servers on
    PostgreSQL): exactly as many succeed as there were items, the stock
    ends at 0, every refused order took no points;
  - `kopilka verify` holds after all of it; the audit log has every change.

    python3 test_catalog.py --kopilka build/kopilka [unittest options]
"""
import json
import threading
import unittest

import harness
from test_self import SelfTestCase

# The smallest files of each kind whose first bytes say what they are.
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 64


class CatalogCase(SelfTestCase):

    def item(self, name="Mug", price=200, **more):
        body = {"name": name, "price": price}
        body.update(more)
        return self.staff("POST", "/v1/admin/catalog/items", body, expect=201)

    def stock(self, item_id, **stores):
        return self.staff("PUT", "/v1/admin/catalog/items/%d/stock" % item_id,
                          {"stock": [{"store": s, "qty": q} for s, q in stores.items()]})

    def till_order(self, card, item_id, key, qty=None, client=None):
        body = {"card": card, "item_id": item_id, "key": key}
        if qty is not None:
            body["qty"] = qty
        if client is not None:
            return client.call("POST", "/v1/orders", body)
        return self.k.call("POST", "/v1/orders", body)

    def balance(self, card):
        s, c = self.k.call("GET", "/v1/cards/" + card)
        self.assertEqual(s, 200, self.k.last_raw())
        return c["balance"]

    def left(self, item_id, store="main"):
        items = self.staff("GET", "/v1/catalog?all=1")["items"]
        it = [i for i in items if i["id"] == item_id][0]
        return {s["store"]: s["qty"] for s in it["stock"]}.get(store)

    def assertVerified(self):
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)


class Items(CatalogCase):

    def test_items_stock_and_image(self):
        it = self.item("Mug", 200, description="A red mug", copay=5000)
        self.assertEqual((it["name"], it["price"], it["copay"], it["active"], it["unlimited"]),
                         ("Mug", 200, 5000, True, False))
        self.assertEqual(it["kind"], "regular")  # the program's purchase kind
        self.assertIsNone(it["image"])
        it = self.stock(it["id"], main=3, north=1)
        self.assertEqual(it["stock"], [{"store": "main", "qty": 3}, {"store": "north", "qty": 1}])
        self.assertEqual(it["available"], 4)
        # A change keeps what it does not name.
        it = self.staff("PATCH", "/v1/admin/catalog/items/%d" % it["id"], {"price": 250})
        self.assertEqual((it["price"], it["copay"], it["description"]), (250, 5000, "A red mug"))
        # Refusals name the field.
        s, a = self.k.call("POST", "/v1/admin/catalog/items", {"name": "X", "price": 0},
                           key=self.admin())
        self.assertEqual((s, a["error"]["field"]), (400, "price"))
        s, a = self.k.call("POST", "/v1/admin/catalog/items",
                           {"name": "X", "price": 5, "kind": "gold"}, key=self.admin())
        self.assertEqual((s, a["error"]["field"]), (400, "kind"))
        svc = self.item("Car wash", 100, unlimited=True)
        s, a = self.k.call("PUT", "/v1/admin/catalog/items/%d/stock" % svc["id"],
                           {"stock": [{"store": "main", "qty": 1}]}, key=self.admin())
        self.assertEqual((s, a["error"]["field"]), (400, "stock"))

        # The image: each type, checked against its bytes and its size.
        path = "/v1/admin/catalog/items/%d/image" % it["id"]
        for data, ctype in ((JPEG, "image/jpeg"), (WEBP, "image/webp"), (PNG, "image/png")):
            s, a = self.k.call("PUT", path, data, key=self.admin(),
                               headers={"Content-Type": ctype})
            self.assertEqual(s, 200, self.k.last_raw())
        self.assertTrue(a["image"].startswith("/v1/catalog/items/%d/image" % it["id"]))
        s, a = self.k.call("PUT", path, PNG, key=self.admin(),
                           headers={"Content-Type": "image/gif"})
        self.assertEqual((s, a["error"]["field"]), (400, "Content-Type"))
        s, a = self.k.call("PUT", path, JPEG, key=self.admin(),
                           headers={"Content-Type": "image/png"})
        self.assertEqual((s, a["error"]["field"]), (400, "image"))
        s, a = self.k.call("PUT", path, PNG + b"\x00" * (512 * 1024), key=self.admin(),
                           headers={"Content-Type": "image/png"})
        self.assertEqual((s, a["error"]["field"]), (400, "image"))
        self.assertIn("512 KiB", a["error"]["message"])
        # Served to anyone, cached by its ETag.
        c = self.k.client(key=None)
        s, _ = c.call("GET", "/v1/catalog/items/%d/image" % it["id"], key=None)
        self.assertEqual(s, 200)
        self.assertEqual(c.last_raw, PNG)
        h = c.last_headers
        self.assertEqual(h["Content-Type"], "image/png")
        self.assertIn("max-age", h["Cache-Control"])
        etag = h["ETag"]
        s, _ = c.call("GET", "/v1/catalog/items/%d/image" % it["id"], key=None,
                      headers={"If-None-Match": etag})
        self.assertEqual((s, c.last_raw), (304, b""))
        s, _ = c.call("GET", "/v1/catalog/items/%d/image" % svc["id"], key=None)
        self.assertEqual(s, 404)
        c.close()
        # Only catalog.manage changes the catalog: a till reads it.
        s, a = self.k.call("POST", "/v1/admin/catalog/items", {"name": "X", "price": 5})
        self.assertEqual(s, 403)
        s, a = self.k.call("GET", "/v1/catalog")
        self.assertEqual(s, 200)
        self.assertEqual(a["store"], "main")
        mug = [i for i in a["items"] if i["id"] == it["id"]][0]
        self.assertEqual(mug["stock"], [{"store": "main", "qty": 3}])  # its store only
        # An inactive item is not offered, and takes no orders.
        self.staff("PATCH", "/v1/admin/catalog/items/%d" % svc["id"], {"active": False})
        s, a = self.k.call("GET", "/v1/catalog")
        self.assertNotIn(svc["id"], [i["id"] for i in a["items"]])
        self.adjust(self.k.cards[0], 1000, "adj-0")
        s, a = self.till_order(self.k.cards[0], svc["id"], "o-inactive")
        self.assertEqual((s, a["error"]["field"]), (409, "item_id"))
        actions = [e["action"] for e in self.audit()]
        for action in ("catalog.item_add", "catalog.item_change", "catalog.stock",
                       "catalog.image"):
            self.assertIn(action, actions)


class Orders(CatalogCase):

    def test_till_order_retry_refusals_hand_over(self):
        card = self.k.cards[0]
        self.adjust(card, 500, "adj-1")
        mug = self.item("Mug", 200, copay=1500)
        self.stock(mug["id"], main=2)
        s, o = self.till_order(card, mug["id"], "o-1")
        self.assertEqual(s, 201, self.k.last_raw())
        self.assertEqual((o["state"], o["store"], o["points"], o["copay"], o["balance"],
                          o["source"]), ("ordered", "main", 200, 1500, 300, "till"))
        self.assertEqual((self.balance(card), self.left(mug["id"])), (300, 1))
        # The same request again: the same order, nothing taken twice.
        s, again = self.till_order(card, mug["id"], "o-1")
        self.assertEqual((s, again["id"], again.get("replayed")), (200, o["id"], True))
        self.assertEqual((self.balance(card), self.left(mug["id"])), (300, 1))
        # The key used for another order.
        s, a = self.till_order(card, mug["id"], "o-1", qty=2)
        self.assertEqual((s, a["error"]["code"], a["error"]["field"]), (409, "key_conflict", "key"))
        # Two more than the one left: which item, which store, how many left.
        s, a = self.till_order(card, mug["id"], "o-2", qty=2)
        self.assertEqual((s, a["error"]["code"]), (409, "out_of_stock"))
        self.assertIn("store main", a["error"]["message"])
        self.assertIn("Mug", a["error"]["message"])
        self.assertIn("1 left", a["error"]["message"])
        # More points than the card has.
        big = self.item("Bike", 10000, unlimited=True)
        s, a = self.till_order(card, big["id"], "o-3")
        self.assertEqual((s, a["error"]["code"], a["error"]["field"]),
                         (422, "not_enough_points", "points"))
        self.assertIn("300", a["error"]["message"])
        self.assertEqual((self.balance(card), self.left(mug["id"])), (300, 1))
        # Another store's till cannot order there, or see this store's order.
        north = self.k.terminal_add("north")
        s, a = self.k.call("POST", "/v1/orders", {"card": card, "item_id": mug["id"], "key": "n",
                                                  "store": "main"}, key=north)
        self.assertEqual((s, a["error"]["field"]), (403, "store"))
        s, a = self.k.call("POST", "/v1/orders/%d/hand-over" % o["id"], key=north)
        self.assertEqual(s, 404)
        # The till's list, and the hand-over.
        s, a = self.k.call("GET", "/v1/orders?card=" + card)
        self.assertEqual([x["id"] for x in a["orders"]], [o["id"]])
        s, a = self.k.call("POST", "/v1/orders/%d/hand-over" % o["id"])
        self.assertEqual((s, a["state"]), (200, "handed_over"), self.k.last_raw())
        s, a = self.k.call("POST", "/v1/orders/%d/cancel" % o["id"])
        self.assertEqual((s, a["error"]["field"]), (409, "state"))
        # The ledger: one operation of the order, explained.
        s, c = self.k.call("GET", "/v1/cards/" + card)
        types = [h.get("type") for h in c.get("history", [])]
        self.assertIn("reward", types, c)
        self.assertVerified()

    def test_verify_finds_an_order_the_ledger_does_not_back(self):
        card = self.k.cards[0]
        self.adjust(card, 500, "adj-v")
        mug = self.item("Mug", 200)
        self.stock(mug["id"], main=2)
        s, o = self.till_order(card, mug["id"], "v-1")
        self.assertEqual(s, 201)
        self.assertVerified()
        # Marked cancelled behind the server's back: no points were given back.
        self.k.execute("UPDATE catalog_orders SET state = 4 WHERE id = %d" % o["id"])
        v = self.k.verify()
        self.assertNotEqual(v.returncode, 0)
        self.assertIn("catalog order %d: in state 4" % o["id"], v.stdout + v.stderr)

    def test_cabinet_orders_and_cancels(self):
        cid, tok = self.customer(0, "+79161230001")
        other = self.k.cards[1]
        self.register(other, "+79161230002", "Petr Ivanov")
        card = self.k.cards[0]
        self.adjust(card, 1000, "adj-2")
        self.adjust(other, 1000, "adj-3")
        mug = self.item("Mug", 300)
        self.stock(mug["id"], main=5)
        s, cat = self.me(tok, "GET", "/v1/me/catalog", expect=200)
        self.assertEqual([i["name"] for i in cat["items"]], ["Mug"])
        # Not for another customer's card: as unknown as a card never made.
        s, a = self.me(tok, "POST", "/v1/me/orders",
                       {"card": other, "item_id": mug["id"], "store": "main", "key": "k0"})
        self.assertEqual(s, 404)
        s, o = self.me(tok, "POST", "/v1/me/orders",
                       {"card": card, "item_id": mug["id"], "store": "main", "qty": 2,
                        "key": "k1"}, expect=201)
        self.assertEqual((o["points"], o["balance"], o["source"]), (600, 400, "cabinet"))
        self.assertEqual(self.left(mug["id"]), 3)
        s, mine = self.me(tok, "GET", "/v1/me/orders", expect=200)
        self.assertEqual([x["id"] for x in mine["orders"]], [o["id"]])
        # Cancelled: both come back.
        s, c = self.me(tok, "POST", "/v1/me/orders/%d/cancel" % o["id"], expect=200)
        self.assertEqual((c["state"], c["balance"]), ("cancelled", 1000))
        self.assertEqual((self.balance(card), self.left(mug["id"])), (1000, 5))
        s, a = self.me(tok, "POST", "/v1/me/orders/%d/cancel" % o["id"], expect=409)
        # Once the store has it ready, only the store cancels it.
        s, o2 = self.me(tok, "POST", "/v1/me/orders",
                        {"card": card, "item_id": mug["id"], "store": "main", "key": "k2"},
                        expect=201)
        self.staff("POST", "/v1/orders/%d/ready" % o2["id"])
        s, a = self.me(tok, "POST", "/v1/me/orders/%d/cancel" % o2["id"], expect=409)
        self.assertIn("ask the store", a["error"]["message"])
        s, a = self.k.call("POST", "/v1/orders/%d/cancel" % o2["id"])
        self.assertEqual((s, a["state"], a["balance"]), (200, "cancelled", 1000))
        # The same key of another customer is theirs alone.
        tok2 = self.session("+79161230002")
        s, o3 = self.me(tok2, "POST", "/v1/me/orders",
                        {"card": other, "item_id": mug["id"], "store": "main", "key": "k1"},
                        expect=201)
        self.assertNotEqual(o3["id"], o["id"])
        # A customer does not see another's orders, nor cancel them.
        self.me(tok, "POST", "/v1/me/orders/%d/cancel" % o3["id"], expect=404)
        # Every change is in the audit log.
        audit = [(e["action"], e["target"]) for e in self.audit()]
        self.assertIn(("catalog.order", "catalog_order:%d" % o["id"]), audit)
        self.assertIn(("catalog.order_state", "catalog_order:%d" % o2["id"]), audit)
        self.assertVerified()

    def test_many_orders_for_the_last_items(self):
        """Twelve cards order the last three mugs at once (on PostgreSQL
        through two servers): three orders, nine refusals, stock 0, and the
        refused took no points."""
        cards = self.k.cards[:10]
        for i, c in enumerate(cards):
            self.adjust(c, 500, "adj-many-%d" % i)
        mug = self.item("Mug", 100)
        self.stock(mug["id"], main=3)
        servers = [self.k]
        if harness.is_pg():
            k2 = self.k.another_server()
            k2.start()
            self.addCleanup(k2.close)
            servers.append(k2)
        results = [None] * len(cards)
        start = threading.Barrier(len(cards))

        def order(i):
            c = servers[i % len(servers)].client()
            try:
                start.wait()
                results[i] = self.till_order(cards[i], mug["id"], "m-%d" % i, client=c)
            finally:
                c.close()

        threads = [threading.Thread(target=order, args=(i,)) for i in range(len(cards))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(s for s, _ in results)
        self.assertEqual(codes, [201] * 3 + [409] * 7, results)
        for (s, a), c in zip(results, cards):
            self.assertEqual(self.balance(c), 400 if s == 201 else 500)
            if s == 409:
                self.assertEqual(a["error"]["code"], "out_of_stock")
        self.assertEqual(self.left(mug["id"]), 0)
        # Cancelling one gives its mug back: one more order then succeeds.
        won = [a["id"] for s, a in results if s == 201]
        self.k.call("POST", "/v1/orders/%d/cancel" % won[0])
        self.assertEqual(self.left(mug["id"]), 1)
        self.assertVerified()

    def test_the_same_order_sent_at_once_is_made_once(self):
        """Eight copies of one order (one key) at once, through two servers
        on PostgreSQL: one order, one payment; every answer names it."""
        card = self.k.cards[0]
        self.adjust(card, 1000, "adj-same")
        mug = self.item("Mug", 100)
        self.stock(mug["id"], main=5)
        servers = [self.k]
        if harness.is_pg():
            k2 = self.k.another_server()
            k2.start()
            self.addCleanup(k2.close)
            servers.append(k2)
        n = 8
        results = [None] * n
        start = threading.Barrier(n)

        def order(i):
            c = servers[i % len(servers)].client()
            try:
                start.wait()
                results[i] = self.till_order(card, mug["id"], "same", client=c)
            finally:
                c.close()

        threads = [threading.Thread(target=order, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(s for s, _ in results), [200] * (n - 1) + [201], results)
        self.assertEqual(len({a["id"] for _, a in results}), 1)
        self.assertEqual((self.balance(card), self.left(mug["id"])), (900, 4))
        self.assertVerified()


class OperatorCli(CatalogCase):
    """`kopilka catalog list | orders | order-state`: the back office's
    reads and state changes from the command line, audited as the
    operating-system user, the customer told as from the back office."""

    def cli(self, *args, code=0):
        p = harness.run_cli(["catalog"] + list(args), check=False)
        self.assertEqual(p.returncode, code, p.stdout + p.stderr)
        return json.loads(p.stdout) if code == 0 and p.stdout.startswith("{") else p

    def test_list_orders_and_state_changes(self):
        card = self.k.cards[0]
        self.adjust(card, 1000, "adj-cli")
        mug = self.item("Mug", 200)
        self.stock(mug["id"], main=3)
        hidden = self.item("Old mug", 100, active=False)
        items = self.cli("list", self.k.db)["items"]
        self.assertEqual([(i["id"], i["active"], i["available"]) for i in items
                          if i["id"] in (mug["id"], hidden["id"])],
                         [(mug["id"], True, 3), (hidden["id"], False, 0)])
        s, o1 = self.till_order(card, mug["id"], "cli-1")
        self.assertEqual(s, 201, self.k.last_raw())
        s, o2 = self.till_order(card, mug["id"], "cli-2", qty=2)
        self.assertEqual(s, 201, self.k.last_raw())
        orders = self.cli("orders", self.k.db, "--state", "ordered", "--card", card)
        self.assertEqual([o["id"] for o in orders["orders"]], [o2["id"], o1["id"]])
        page = self.cli("orders", self.k.db, "--limit", "1")
        self.assertEqual(([o["id"] for o in page["orders"]], page["next_before"]),
                         ([o2["id"]], o2["id"]))
        page = self.cli("orders", self.k.db, "--limit", "1", "--before", str(o2["id"]))
        self.assertEqual([o["id"] for o in page["orders"]], [o1["id"]])

        a = self.cli("order-state", self.k.db, str(o1["id"]), "ready")
        self.assertEqual(a["state"], "ready")
        a = self.cli("order-state", self.k.db, str(o1["id"]), "handed-over")
        self.assertEqual(a["state"], "handed_over")
        a = self.cli("order-state", self.k.db, str(o2["id"]), "cancel")
        self.assertEqual((a["state"], a["balance"]), ("cancelled", 800))
        self.assertEqual((self.balance(card), self.left(mug["id"])), (800, 2))
        # Refusals say why; a wrong word or a missing order is the usage.
        p = self.cli("order-state", self.k.db, str(o1["id"]), "cancel", code=1)
        self.assertIn("state: order %d is handed_over" % o1["id"], p.stderr)
        p = self.cli("order-state", self.k.db, "999", "ready", code=1)
        self.assertIn("id: no order 999", p.stderr)
        p = self.cli("order-state", self.k.db, str(o1["id"]), "done", code=2)
        self.assertIn("ready|handed-over|cancel", p.stderr)
        p = self.cli("orders", self.k.db, "--state", "lost", code=1)
        self.assertIn("state: must be ordered, ready, handed_over or cancelled", p.stderr)
        p = self.cli("orders", self.k.db, "--limit", "0", code=2)
        p = self.cli("order-state", "--help")
        self.assertIn("Usage: kopilka catalog order-state DB ORDER", p.stdout)
        # Audited as the operating-system user; the customer told of ready
        # and cancelled (handing over tells nothing).
        moves = [e for e in self.audit() if e["action"] == "catalog.order_state"]
        self.assertEqual(len(moves), 3)
        self.assertTrue(all(e["actor"].startswith("cli:") for e in moves), moves)
        keys = [k for (k,) in self.k.query(
            "SELECT key FROM notify_events WHERE key LIKE 'catalog-order:%' ORDER BY id")]
        self.assertEqual(keys[-2:], ["catalog-order:%d:ready" % o1["id"],
                                     "catalog-order:%d:cancelled" % o2["id"]])
        self.assertVerified()


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
