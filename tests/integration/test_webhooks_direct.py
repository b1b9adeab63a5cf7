"""
test_webhooks_direct.py: a webhook's first attempt without a row
(docs/notifications.md, "The outbox": the server sends a delivery due at
once straight from the dispatcher and writes it, in the state its attempt
left it, with its event's dispatch). Against a real `kopilka serve
--notify FILE` and a slow receiver written here:

- while the first attempts are under way, /metrics counts them pending
  (they have no row yet) and their events pending;
- kill -9 with deliveries in flight, then a restart: every purchase's
  delivery arrives, the only ones received twice were received before the
  kill and not recorded as sent, and every delivery ends with one row,
  sent;
- the same run with KOPILKA_NOTIFY_DIRECT=0 (every delivery written first,
  claimed, settled) gives the same rows.

    python3 test_webhooks_direct.py --kopilka build/kopilka [unittest options]
"""
import http.client
import os
import re
import time
import unittest

import harness
import test_notify
import test_webhooks

PASSWORD = test_webhooks.PASSWORD
PURCHASES = 24


def metric(port, series):
    """The value of one series of GET /metrics (0 when absent)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode("utf-8")
    finally:
        c.close()
    m = re.search(r"^%s (\S+)$" % re.escape(series), text, re.M)
    return float(m.group(1)) if m else 0.0


class Direct(unittest.TestCase):
    def start(self, direct="1"):
        os.environ["KOPILKA_NOTIFY_DIRECT"] = direct
        try:
            self.k.start(serve_args=["--notify", self.config])
        finally:
            del os.environ["KOPILKA_NOTIFY_DIRECT"]

    def setUp(self):
        self.k = test_webhooks.kopilka_with_admin(self)
        self.rx = test_webhooks.Receiver(delay=1.0)
        self.addCleanup(self.rx.stop)
        # Webhooks only, 8 at once (the default), 2 s timeouts.
        self.config = harness.notify_config(self.k.dir, timeout=2,
                                            retry={"max_attempts": 5, "base_seconds": 1,
                                                   "max_seconds": 1})

    def endpoint(self):
        s, a = self.k.call("POST", "/v1/admin/login", {"login": "admin", "password": PASSWORD},
                           key=None)
        self.assertEqual(s, 200, self.k.last_raw())
        self.token = a["token"]
        s, ep = self.k.call("POST", "/v1/admin/webhooks",
                            {"url": self.rx.url("crm"), "description": "crm"}, key=a["token"])
        self.assertEqual(s, 201, self.k.last_raw())
        with self.rx.lock:
            self.rx.secrets["crm"] = ep["secret"]
        return ep

    def purchases(self):
        """PURCHASES purchases on the loader's anonymous cards: each an
        "earned" event whose only delivery is the endpoint's."""
        for i in range(PURCHASES):
            s, _ = self.k.call("POST", "/v1/purchases",
                               {"card": self.k.cards[i % len(self.k.cards)],
                                "receipt": "D-%d" % i,
                                "lines": [{"sku": "svc", "category": harness.LABOR,
                                           "amount": 10000 + i}]})
            self.assertEqual(s, 201, self.k.last_raw())

    def rows(self):
        return self.k.query("SELECT key, state, attempts FROM messages WHERE channel = 3 "
                            "ORDER BY id")

    def expected_keys(self, ep):
        # The purchases are durable when answered; their SQLite commit may
        # come a moment later.
        events = test_notify.wait_for(
            "every purchase's event",
            lambda: (lambda r: r if len(r) == PURCHASES else None)(
                self.k.query("SELECT id FROM notify_events WHERE kind = 1 ORDER BY id")),
            timeout=30)
        return {"%d/webhook/%d" % (e, ep["id"]) for (e,) in events}

    def listed(self):
        s, a = self.k.call("GET", "/v1/admin/messages?channel=webhook&limit=100", key=self.token)
        self.assertEqual(s, 200, self.k.last_raw())
        return a["messages"]

    def test_kill9_during_first_attempts_resends_only_what_was_in_flight(self):
        self.start()
        ep = self.endpoint()
        self.purchases()
        test_notify.wait_for("some deliveries", lambda: len(self.rx.accepted("crm")) >= 4,
                             timeout=60)
        # Mid-way: the deliveries being tried count as pending messages and
        # their events as pending events, though none has a row yet; the
        # back office's list shows every delivery, written or not.
        keys = self.expected_keys(ep)
        listed = self.listed()
        self.assertEqual({m["key"] for m in listed}, keys)
        unwritten = [m for m in listed if m["id"] is None]
        self.assertTrue(all(m["state"] == "pending" and m["attempts"] == 0 for m in unwritten),
                        unwritten)
        self.assertTrue(unwritten, listed)
        metric(self.k.port, "kopilka_outbox_events_pending")  # asks for a fresh sample
        time.sleep(1.2)
        pending = metric(self.k.port,
                         'kopilka_outbox_messages{channel="webhook",state="pending"}')
        events = metric(self.k.port, "kopilka_outbox_events_pending")
        self.assertGreater(pending, 0)
        self.assertGreater(events, 0)
        self.k.kill9()
        sent = {key for key, state, _ in self.rows() if state == 1}
        time.sleep(self.rx.delay + 0.5)  # requests that reached the receiver end
        before = {h for h, _ in self.rx.accepted("crm")}
        self.start()
        test_notify.wait_for("every delivery",
                             lambda: {h for h, _ in self.rx.accepted("crm")} >= keys, timeout=90)
        test_notify.wait_for("every delivery recorded sent",
                             lambda: {k for k, st, _ in self.rows() if st == 1} == keys,
                             timeout=30)
        counts = {}
        for h, _ in self.rx.accepted("crm"):
            counts[h] = counts.get(h, 0) + 1
        twice = {k for k, n in counts.items() if n > 1}
        self.assertTrue(twice <= before - sent, (twice, before, sent))
        self.assertTrue(all(n <= 2 for n in counts.values()), counts)
        rows = self.rows()
        self.assertEqual(len(rows), PURCHASES, rows)
        self.assertTrue(all(a == 1 for _, _, a in rows), rows)
        self.assertEqual(self.k.query("SELECT count(*) FROM notify_events "
                                      "WHERE dispatched_at IS NULL"), [(0,)])

    def test_rows_first_gives_the_same_rows(self):
        self.rx.delay = 0
        self.start(direct="0")
        ep = self.endpoint()
        self.purchases()
        keys = self.expected_keys(ep)
        test_notify.wait_for("every delivery recorded sent",
                             lambda: {k for k, st, _ in self.rows() if st == 1} == keys,
                             timeout=60)
        self.assertEqual(sorted(h for h, _ in self.rx.accepted("crm")), sorted(keys))
        self.assertTrue(all(a == 1 for _, _, a in self.rows()))


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
