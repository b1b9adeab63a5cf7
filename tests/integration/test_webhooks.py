"""
test_webhooks.py: webhooks end to end against a real `kopilka serve
--notify FILE`: endpoints made through POST /v1/admin/webhooks (a staff
session), a receiver written here that checks the Standard Webhooks
signature as a company's would (and refuses a tampered body), "welcome"
and "earned" deliveries with their figures and webhook-id = the message's
key, a replay of a sent delivery with the same webhook-id, an endpoint
subscribed to "returned" only that hears nothing of a purchase, and an
endpoint answering 500 then 200 that gets the delivery once after a retry.

    python3 test_webhooks.py --kopilka build/kopilka [unittest options]
"""
import base64
import hashlib
import hmac
import json
import os
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness
import test_notify

PASSWORD = "correct horse battery"
PHONE = "+79161234567"


def signature_ok(secrets, headers, body):
    """A receiver's check: HMAC-SHA256 with the key (base64 after
    "whsec_") over "<webhook-id>.<webhook-timestamp>.<raw body>", compared
    in constant time with each "v1,<base64>" of webhook-signature; the
    timestamp within five minutes."""
    try:
        ts = int(headers["webhook-timestamp"])
        signed = "%s.%d." % (headers["webhook-id"], ts)
        given = headers["webhook-signature"].split(" ")
    except (KeyError, ValueError):
        return False
    if abs(time.time() - ts) > 300:
        return False
    for secret in secrets:
        key = base64.b64decode(secret[len("whsec_"):])
        mac = hmac.new(key, signed.encode() + body, hashlib.sha256).digest()
        want = "v1," + base64.b64encode(mac).decode()
        if any(hmac.compare_digest(want, g) for g in given):
            return True
    return False


class Receiver:
    """A company's endpoint on loopback: POST /<name> is checked against
    the secret registered for <name>; a bad signature gets 401. `fail[name]`
    answers that many valid deliveries with 500 first. Every request is
    kept: (name, headers, body, status)."""

    def __init__(self, delay=0.0):
        self.secrets, self.fail, self.got = {}, {}, []
        self.delay = delay  # seconds each request waits before its answer
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.delay:
                    time.sleep(receiver.delay)
                name = self.path.strip("/")
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    if not signature_ok([receiver.secrets.get(name, "whsec_")], headers, body):
                        status = 401
                    elif receiver.fail.get(name, 0) > 0:
                        receiver.fail[name] -= 1
                        status = 500
                    else:
                        status = 200
                    receiver.got.append((name, headers, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name):
        return "http://127.0.0.1:%d/%s" % (self.port, name)

    def accepted(self, name):
        """The deliveries to `name` answered 200: (webhook-id, parsed body)."""
        with self.lock:
            return [(h["webhook-id"], json.loads(b)) for n, h, b, s in self.got
                    if n == name and s == 200]

    def requests(self, name):
        with self.lock:
            return [(h, b, s) for n, h, b, s in self.got if n == name]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def kopilka_with_admin(test):
    """A Kopilka of 8 cards with test_notify's program and a staff "admin"
    (PASSWORD), closed with the test."""
    k = harness.Kopilka(cards=8)
    test.addCleanup(k.close)
    harness.run_cli(["program", "load", k.db, test_notify.program_file(k.dir)])
    pw = os.path.join(k.dir, "password")
    with open(pw, "w") as f:
        f.write(PASSWORD + "\n")
    harness.run_cli(["staff", "add", k.db, "--login", "admin", "--role", "admin",
                     "--password-file", pw])
    return k


class Webhooks(unittest.TestCase):
    def setUp(self):
        self.k = kopilka_with_admin(self)
        self.rx = Receiver()
        self.addCleanup(self.rx.stop)
        # Webhooks only; a failed delivery is tried again within a second.
        config = harness.notify_config(self.k.dir, timeout=5,
                                       retry={"max_attempts": 5, "base_seconds": 1,
                                              "max_seconds": 1})
        self.k.start(serve_args=["--notify", config])
        s, a = self.k.call("POST", "/v1/admin/login", {"login": "admin", "password": PASSWORD},
                           key=None)
        self.assertEqual(s, 200, self.k.last_raw())
        self.token = a["token"]

    def admin(self, method, path, body=None, expect=200):
        s, a = self.k.call(method, path, body, key=self.token)
        self.assertEqual(s, expect, "%s %s: %s" % (method, path, self.k.last_raw()[:600]))
        return a

    def endpoint(self, name, kinds=None):
        body = {"url": self.rx.url(name), "description": name}
        if kinds is not None:
            body["kinds"] = kinds
        ep = self.admin("POST", "/v1/admin/webhooks", body, expect=201)
        with self.rx.lock:
            self.rx.secrets[name] = ep["secret"]
        return ep

    def hooks(self):
        return self.admin("GET", "/v1/admin/messages?channel=webhook&limit=100")["messages"]

    def test_deliveries_signed_replayed_filtered_and_retried(self):
        every = self.endpoint("every")
        returned = self.endpoint("returned", kinds=["returned"])
        flaky = self.endpoint("flaky", kinds=["earned"])
        with self.rx.lock:
            self.rx.fail["flaky"] = 1
        card = self.k.cards[0]
        s, customer = self.k.call("POST", "/v1/customers",
                                  {"card": card, "full_name": "Ivan Petrov", "phone": PHONE,
                                   "consent": test_notify.CONSENT})
        self.assertEqual(s, 201, self.k.last_raw())
        s, sale = self.k.call("POST", "/v1/purchases",
                              {"card": card, "receipt": "W-1",
                               "lines": [{"sku": "svc", "category": harness.LABOR,
                                          "amount": 150000}]})
        self.assertEqual(s, 201, self.k.last_raw())

        got = test_notify.wait_for(
            "welcome and earned at the endpoint of every kind",
            lambda: (lambda a: a if {b["type"] for _, b in a} >= {"welcome", "earned"} else None)(
                self.rx.accepted("every")), timeout=60)
        by_type = {b["type"]: (hid, b) for hid, b in got}
        hid, earned = by_type["earned"]
        self.assertEqual(earned["data"]["card"], card)
        self.assertEqual(earned["data"]["customer_id"], customer["id"])
        self.assertEqual(earned["data"]["earned"], sale["earned"])
        self.assertEqual(earned["data"]["balance"], sale["balance"])
        self.assertEqual(by_type["welcome"][1]["data"]["customer_id"], customer["id"])
        # webhook-id is the message's key, "<event id>/webhook/<endpoint id>".
        keys = {m["key"]: m for m in self.hooks()}
        for t, (h, body) in by_type.items():
            self.assertEqual(h, "%d/webhook/%d" % (body["data"]["event_id"], every["id"]), t)
            self.assertIn(h, keys)

        # A tampered body with the genuine headers is refused by the receiver.
        headers, body, _ = next(r for r in self.rx.requests("every")
                                if r[0]["webhook-id"] == hid and r[2] == 200)
        forged = body.replace(b'"earned":%d' % sale["earned"], b'"earned":%d' % (sale["earned"] * 10))
        self.assertNotEqual(forged, body)
        self.assertTrue(signature_ok([self.rx.secrets["every"]], headers, body))
        self.assertFalse(signature_ok([self.rx.secrets["every"]], headers, forged))

        # 500 first, then 200 after the retry: delivered once, two attempts.
        test_notify.wait_for("the flaky endpoint's delivery",
                             lambda: self.rx.accepted("flaky"), timeout=60)
        final = test_notify.wait_for(
            "the flaky delivery recorded as sent",
            lambda: [m for m in self.hooks() if m["endpoint"] == flaky["id"]
                     and m["state"] == "sent"], timeout=30)
        self.assertEqual(final[0]["attempts"], 2, final)
        self.assertEqual(final[0]["kind"], "earned")
        self.assertEqual(final[0]["key"], "%d/webhook/%d" % (earned["data"]["event_id"], flaky["id"]))
        statuses = [s for _, _, s in self.rx.requests("flaky")]
        self.assertEqual(statuses, [500, 200])
        self.assertEqual(self.rx.accepted("flaky")[0][0], final[0]["key"])

        # Replay of the sent "earned" delivery: the same webhook-id again.
        msg = test_notify.wait_for(
            "the earned delivery recorded as sent",
            lambda: [m for m in self.hooks() if m["key"] == hid and m["state"] == "sent"])[0]
        a = self.admin("POST", "/v1/admin/messages/%d/retry" % msg["id"])
        self.assertEqual(a["done"], "replay")
        again = test_notify.wait_for(
            "the replayed delivery",
            lambda: [x for x in self.rx.accepted("every") if x[0] == hid][1:], timeout=60)
        self.assertEqual(again[0][1], earned)

        # Nothing for the endpoint of returns (a purchase is no return), no
        # message made for it, and nothing delivered twice but the replay.
        time.sleep(1)
        self.assertEqual(self.rx.requests("returned"), [])
        self.assertFalse([m for m in self.hooks() if m["endpoint"] == returned["id"]])
        ids = [h for h, _ in self.rx.accepted("every")]
        self.assertEqual(ids.count(hid), 2, ids)
        self.assertEqual(len(ids), 3, ids)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
