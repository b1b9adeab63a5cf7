"""
test_notify_routes.py: the notification routes of docs/api.md
("Notifications") against a real `kopilka serve --notify FILE`: the
outbox's messages (list, view with and without customer.read, retry of a
dead one, replay of a sent webhook, 409 on a pending one), webhook
endpoints (secret shown once, rotate, URL and kinds refused with the field
named), templates (list, get, put with an unknown field refused with
line:column and the allowed fields, preview, delete), preferences and
consent (withdrawing it cancels pending marketing messages), campaigns
(consenting customers only get messages), unsubscribe links (page and
one-click), SMS STOP replies, the cabinet's login codes end to end (the
code read from the outbox through the messages route), /v1/me, logout, the
per-contact limit of codes (429 with Retry-After), and permissions (a
cashier is refused).

The providers are unreachable on purpose (a closed port, retries an hour
apart): messages stay pending with their sealed texts, which the messages
route opens, so the flows do not depend on delivery.

    python3 test_notify_routes.py --kopilka build/kopilka [unittest options]
"""
import json
import os
import re
import time
import unittest

import harness

PASSWORD = "correct horse battery"
CONSENT = {"given": True, "text_version": "2026-01"}
TOKEN = "inbound-secret-1"


def program_file(directory):
    with open(harness.program_file(), "rb") as f:
        doc = json.load(f)
    doc["customers"] = {"unregistered": {"earn": True, "burn": False},
                        "consent_version": "2026-01"}
    doc["notifications"] = {"language": "en", "quiet_hours": {"from": "00:00", "to": "00:00"}}
    path = os.path.join(directory, "program-notify-routes.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def wait_for(what, check, timeout=20.0, step=0.1):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(step)


class NotifyRoutes(unittest.TestCase):

    def setUp(self):
        self.k = harness.Kopilka(cards=8)
        self.addCleanup(self.k.close)
        harness.run_cli(["program", "load", self.k.db, program_file(self.k.dir)])
        pw = os.path.join(self.k.dir, "password")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        self.tokens = {}
        for role in ("admin", "cashier", "marketer", "auditor", "call_centre"):
            harness.run_cli(["staff", "add", self.k.db, "--login", "u_" + role, "--role", role,
                             "--password-file", pw])
        closed = harness.free_port()  # nothing listens: every send fails, messages stay pending
        path = harness.notify_config(self.k.dir, smtp_port=closed, sms_port=closed, timeout=2,
                                     retry={"max_attempts": 2, "base_seconds": 3600,
                                            "max_seconds": 3600})
        with open(path) as f:
            doc = json.load(f)
        doc["sms"]["inbound_token"] = TOKEN
        doc["public_url"] = "https://loyalty.example"
        with open(path, "w") as f:
            json.dump(doc, f)
        self.k.start(serve_args=["--notify", path])

    # --- helpers
    def token(self, role):
        if role not in self.tokens:
            self.tokens[role] = self.k.staff_token("u_" + role, PASSWORD)
        return self.tokens[role]

    def as_(self, role, method, path, body=None, expect=None, headers=None):
        s, a = self.k.call(method, path, body, key=self.token(role), headers=headers)
        if expect is not None:
            self.assertEqual(s, expect, "%s %s: %r" % (method, path, self.k.last_raw()[:600]))
        return s, a

    def register(self, card, phone, email=None):
        body = {"card": card, "full_name": "Ivan Petrov", "phone": phone, "consent": CONSENT}
        if email:
            body["email"] = email
        s, a = self.k.call("POST", "/v1/customers", body)
        self.assertEqual(s, 201, self.k.last_raw())
        return a["id"]

    def messages(self, **q):
        query = "&".join("%s=%s" % kv for kv in q.items())
        _, a = self.as_("admin", "GET", "/v1/admin/messages?" + query, expect=200)
        return a["messages"]

    def consent(self, cid, channels=("email", "sms"), given=True):
        body = {"marketing": list(channels),
                "marketing_consent": {"given": given, "version": "m-2027"}}
        return self.as_("admin", "PUT", "/v1/customers/%d/notifications" % cid, body, expect=200)[1]

    # --- permissions
    def test_a_cashier_is_refused_and_roles_see_what_they_may(self):
        for method, path, body in (("GET", "/v1/admin/messages", None),
                                   ("GET", "/v1/admin/webhooks", None),
                                   ("GET", "/v1/admin/templates", None),
                                   ("POST", "/v1/admin/campaigns", {"name": "x"}),
                                   ("GET", "/v1/customers/1/notifications", None)):
            s, a = self.as_("cashier", method, path, body)
            self.assertEqual(s, 403, "%s %s %r" % (method, path, a))
            self.assertEqual(a["error"]["code"], "forbidden")
        self.as_("auditor", "GET", "/v1/admin/templates", expect=200)
        s, a = self.as_("auditor", "POST", "/v1/admin/webhooks", {"url": "https://a.example/h"})
        self.assertEqual(s, 403)
        self.assertIn("notify.manage", a["error"]["message"])
        self.as_("marketer", "POST", "/v1/admin/webhooks", {"url": "https://a.example/h"},
                 expect=201)
        # Without credentials: 401; a terminal key on a staff route: 403.
        s, _ = self.k.call("GET", "/v1/admin/messages", key=None)
        self.assertEqual(s, 401)
        s, _ = self.k.call("GET", "/v1/admin/messages")
        self.assertEqual(s, 403)
        s, a = self.as_("admin", "GET", "/v1/admin/me", expect=200)
        self.assertIn("notify.manage", a["permissions"])
        s, a = self.as_("call_centre", "GET", "/v1/admin/me", expect=200)
        self.assertIn("notify.read", a["permissions"])
        self.assertNotIn("notify.manage", a["permissions"])

    # --- webhook endpoints
    def test_webhook_endpoints_secret_once_rotate_and_errors(self):
        _, ep = self.as_("admin", "POST", "/v1/admin/webhooks",
                         {"url": "https://crm.example/hooks", "kinds": ["earned", "burnt"],
                          "description": "CRM"}, expect=201)
        self.assertTrue(ep["secret"].startswith("whsec_"))
        self.assertEqual(ep["kinds"], ["earned", "burnt"])
        self.assertTrue(ep["active"])
        self.assertFalse(self.k.holds_text(ep["secret"]), "the secret is stored sealed")
        _, got = self.as_("admin", "GET", "/v1/admin/webhooks/%d" % ep["id"], expect=200)
        self.assertNotIn("secret", got)
        _, lst = self.as_("admin", "GET", "/v1/admin/webhooks", expect=200)
        self.assertEqual([e["id"] for e in lst["endpoints"]], [ep["id"]])
        _, rot = self.as_("admin", "POST", "/v1/admin/webhooks/%d/rotate" % ep["id"], expect=200)
        self.assertTrue(rot["secret"].startswith("whsec_"))
        self.assertNotEqual(rot["secret"], ep["secret"])
        _, up = self.as_("admin", "PATCH", "/v1/admin/webhooks/%d" % ep["id"],
                         {"active": False, "kinds": []}, expect=200)
        self.assertFalse(up["active"])
        self.assertTrue(up["every_kind"])
        s, a = self.as_("admin", "POST", "/v1/admin/webhooks", {"url": "ftp://x.example/"},
                        expect=400)
        self.assertEqual(a["error"]["field"], "url")
        self.assertIn("http, https", a["error"]["message"])
        s, a = self.as_("admin", "POST", "/v1/admin/webhooks",
                        {"url": "https://x.example/", "kinds": ["earned", "nope"]}, expect=400)
        self.assertEqual(a["error"]["field"], "kinds[1]")
        self.assertIn("login_code", a["error"]["message"])
        self.as_("admin", "POST", "/v1/admin/webhooks", {"url": "https://x.example/", "x": 1},
                 expect=400)
        self.as_("admin", "GET", "/v1/admin/webhooks/999", expect=404)
        _, audit = self.as_("admin", "GET", "/v1/admin/audit?limit=1000", expect=200)
        actions = [e["action"] for e in audit["entries"]]
        for act in ("webhook.create", "webhook.rotate", "webhook.edit"):
            self.assertIn(act, actions)
        self.assertNotIn("whsec_", json.dumps(audit))

    # --- templates
    def test_templates_list_put_refuses_unknown_fields_preview_delete(self):
        _, lst = self.as_("auditor", "GET", "/v1/admin/templates", expect=200)
        kinds = {(t["kind"], t["channel"], t["language"]) for t in lst["templates"]}
        self.assertIn(("earned", "sms", "ru"), kinds)
        self.assertIn(("login_code", "email", "en"), kinds)
        _, t = self.as_("admin", "GET", "/v1/admin/templates/earned/sms/en", expect=200)
        self.assertEqual(t["source"], "builtin")
        self.assertIn("balance", t["fields"])
        bad = {"text": "Hello {{first_name}},\nyou have {{balanse}} points"}
        s, a = self.as_("marketer", "PUT", "/v1/admin/templates/earned/sms/en", bad, expect=400)
        self.assertEqual(a["error"]["field"], "text")
        self.assertIn("balanse", a["error"]["message"])
        self.assertIn("2:", a["error"]["message"])  # line 2, with its column
        self.assertIn("balance", a["error"]["message"])  # the allowed fields are listed
        s, a = self.as_("marketer", "PUT", "/v1/admin/templates/earned/sms/en",
                        {"text": "x", "subject": "y"}, expect=400)
        self.assertEqual(a["error"]["field"], "subject")
        self.as_("marketer", "PUT", "/v1/admin/templates/nope/sms/en", {"text": "x"}, expect=400)
        good = {"text": "+{{earned}} points, balance {{balance}}"}
        _, put = self.as_("marketer", "PUT", "/v1/admin/templates/earned/sms/en", good,
                          expect=200)
        self.assertEqual(put["source"], "stored")
        _, pv = self.as_("auditor", "POST", "/v1/admin/templates/earned/sms/en/preview",
                         expect=200)
        self.assertEqual(pv["text"], "+1,560 points, balance 4,426")
        _, pv = self.as_("auditor", "POST", "/v1/admin/templates/earned/email/ru/preview",
                         {"subject": "Баллы", "text": "Баланс {{balance}}",
                          "html": "<b>{{balance}}</b>"}, expect=200)
        self.assertIn("4", pv["text"])
        self.assertTrue(pv["html"].startswith("<b>"))
        s, a = self.as_("auditor", "POST", "/v1/admin/templates/earned/sms/en/preview",
                        {"text": "{{#earned}}x"}, expect=400)
        self.assertEqual(a["error"]["field"], "text")
        self.as_("auditor", "DELETE", "/v1/admin/templates/earned/sms/en", expect=403)
        self.as_("marketer", "DELETE", "/v1/admin/templates/earned/sms/en", expect=200)
        self.as_("marketer", "DELETE", "/v1/admin/templates/earned/sms/en", expect=404)
        _, t = self.as_("admin", "GET", "/v1/admin/templates/earned/sms/en", expect=200)
        self.assertEqual(t["source"], "builtin")

    # --- login codes, sessions, /v1/me
    def test_login_code_flow_end_to_end(self):
        phone = "+79161234567"
        cid = self.register(self.k.cards[0], phone)
        s, a = self.k.call("POST", "/v1/login/code", {"phone": "8 916 123-45-67"}, key=None)
        self.assertEqual(s, 202, self.k.last_raw())
        # An unknown contact gets the same answer (no enumeration).
        s, b = self.k.call("POST", "/v1/login/code", {"phone": "+79169999999"}, key=None)
        self.assertEqual((s, b), (202, a))
        s, e = self.k.call("POST", "/v1/login/code", {"phone": "12"}, key=None)
        self.assertEqual((s, e["error"]["field"]), (400, "phone"))
        # The second code within a minute is refused loudly.
        s, e = self.k.call("POST", "/v1/login/code", {"phone": phone}, key=None)
        self.assertEqual(s, 429)
        self.assertGreater(int(self.k._client.last_headers["Retry-After"]), 0)
        msg = wait_for("the login code's SMS", lambda: [
            m for m in self.messages(customer=cid, channel="sms") if m["kind"] == "login_code"])[0]
        # The marketer sees the message, not its text; the admin opens it.
        _, m = self.as_("marketer", "GET", "/v1/admin/messages/%d" % msg["id"], expect=200)
        self.assertIsNone(m["content"])
        _, m = self.as_("admin", "GET", "/v1/admin/messages/%d" % msg["id"], expect=200)
        self.assertEqual(m["content"]["to"], phone)
        code = re.search(r"\b(\d{6})\b", m["content"]["text"]).group(1)
        self.assertFalse(self.k.holds_text(code + '"'), "the code is sealed")
        wrong = "%06d" % ((int(code) + 1) % 1000000)
        s, e = self.k.call("POST", "/v1/login", {"phone": phone, "code": wrong}, key=None)
        self.assertEqual((s, e["error"]["code"]), (401, "unauthorized"))
        s, e = self.k.call("POST", "/v1/login", {"phone": "+79169999999", "code": code},
                           key=None)
        self.assertEqual(s, 401)
        s, sess = self.k.call("POST", "/v1/login", {"phone": phone, "code": code}, key=None)
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertTrue(sess["token"].startswith("kpc_"))
        self.assertEqual(sess["customer"], cid)
        s, _ = self.k.call("POST", "/v1/login", {"phone": phone, "code": code}, key=None)
        self.assertEqual(s, 401, "a code is used once")
        s, me = self.k.call("GET", "/v1/me", key=sess["token"])
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual([c["card"] for c in me["cards"]], [self.k.cards[0]])
        self.assertIn("balance", me["cards"][0])
        self.assertEqual(me["notifications"]["language"], "en")
        # A customer's session is no staff session and the other way round.
        s, _ = self.k.call("GET", "/v1/admin/messages", key=sess["token"])
        self.assertEqual(s, 403)
        s, _ = self.k.call("GET", "/v1/me", key=self.token("admin"))
        self.assertEqual(s, 403)
        s, _ = self.k.call("POST", "/v1/logout", key=sess["token"])
        self.assertEqual(s, 200)
        s, _ = self.k.call("GET", "/v1/me", key=sess["token"])
        self.assertEqual(s, 401)

    def test_wrong_codes_use_up_the_code(self):
        cid = self.register(self.k.cards[0], "+79161234568", email="a@example.com")
        s, _ = self.k.call("POST", "/v1/login/code", {"email": "A@Example.com"}, key=None)
        self.assertEqual(s, 202)
        msg = wait_for("the login code's e-mail", lambda: [
            m for m in self.messages(customer=cid, channel="email") if m["kind"] == "login_code"])
        _, m = self.as_("admin", "GET", "/v1/admin/messages/%d" % msg[0]["id"], expect=200)
        code = re.search(r"\b(\d{6})\b", m["content"]["text"]).group(1)
        wrong = "%06d" % ((int(code) + 1) % 1000000)
        for _ in range(5):  # the policy's attempts (default 5)
            s, _ = self.k.call("POST", "/v1/login", {"email": "a@example.com", "code": wrong},
                               key=None)
            self.assertEqual(s, 401)
        s, _ = self.k.call("POST", "/v1/login", {"email": "a@example.com", "code": code},
                           key=None)
        self.assertEqual(s, 401, "the right code after the attempts ran out is refused")

    # --- preferences, consent, campaigns, unsubscribe, SMS STOP
    def test_campaign_reaches_consenting_customers_and_withdrawal_cancels(self):
        yes = self.register(self.k.cards[0], "+79161230001", email="yes@example.com")
        no = self.register(self.k.cards[1], "+79161230002", email="no@example.com")
        p = self.consent(yes)
        self.assertTrue(p["marketing_consent"]["given"])
        self.assertEqual(p["marketing_consent"]["version"], "m-2027")
        _, p = self.as_("admin", "GET", "/v1/customers/%d/notifications" % no, expect=200)
        self.assertFalse(p["marketing_consent"]["given"])
        camp = {"name": "spring-2027", "customers": [yes, no],
                "subject": {"en": "Spring"}, "text": {"en": "Hello {{first_name}}, spring!"}}
        s, a = self.as_("marketer", "POST", "/v1/admin/campaigns",
                        dict(camp, text={"en": "Hi {{frist_name}}"}), expect=400)
        self.assertEqual(a["error"]["field"], "text.en")
        self.assertIn("frist_name", a["error"]["message"])
        _, a = self.as_("marketer", "POST", "/v1/admin/campaigns", camp, expect=202)
        self.assertEqual(a["queued"], 2)
        _, a = self.as_("marketer", "POST", "/v1/admin/campaigns", camp, expect=202)
        self.assertEqual((a["queued"], a["already"]), (0, 2))
        got = wait_for("the campaign's messages", lambda: [
            m for m in self.messages(customer=yes) if m["kind"] == "campaign"]
            if len([m for m in self.messages(customer=yes) if m["kind"] == "campaign"]) == 2
            else None)
        self.assertEqual(sorted(m["channel"] for m in got), ["email", "sms"])
        time.sleep(0.5)  # the dispatcher has passed the other customer's event too
        self.assertEqual([m for m in self.messages(customer=no) if m["kind"] == "campaign"], [])
        # Withdrawing consent cancels what is pending.
        wait_for("pending", lambda: all(m["state"] == "pending" for m in self.messages(
            customer=yes, state="pending") if m["kind"] == "campaign") or True)
        p = self.consent(yes, given=False)
        self.assertFalse(p["marketing_consent"]["given"])
        self.assertEqual(p["cancelled"], 2)
        states = {m["state"] for m in self.messages(customer=yes) if m["kind"] == "campaign"}
        self.assertEqual(states, {"cancelled"})
        # A cancelled message is not retried.
        s, a = self.as_("admin", "POST", "/v1/admin/messages/%d/retry" % got[0]["id"], expect=409)

    def test_unsubscribe_link_and_sms_stop(self):
        cid = self.register(self.k.cards[0], "+79161230003", email="u@example.com")
        self.consent(cid)
        self.as_("marketer", "POST", "/v1/admin/campaigns",
                 {"name": "c1", "customers": [cid], "subject": {"en": "S"},
                  "text": {"en": "News"}}, expect=202)
        email = wait_for("the campaign e-mail", lambda: [
            m for m in self.messages(customer=cid, channel="email") if m["kind"] == "campaign"])[0]
        _, m = self.as_("admin", "GET", "/v1/admin/messages/%d" % email["id"], expect=200)
        url = m["content"]["unsubscribe_url"]
        token = re.split(r"/v1/unsubscribe[/?](?:token=)?", url)[1]
        s, _ = self.k.call("GET", "/v1/unsubscribe/" + token, key=None,
                           headers={"Accept-Language": "ru-RU,ru;q=0.9"})
        self.assertEqual(s, 200)
        page = self.k.last_raw().decode()
        self.assertIn("Отписаться", page)
        self.assertIn('name="List-Unsubscribe" value="One-Click"', page)
        s, _ = self.k.call("GET", "/v1/unsubscribe/" + token, key=None)
        self.assertIn("Unsubscribe", self.k.last_raw().decode())
        tampered = token[:-6] + ("B" if token[-6] != "B" else "C") + token[-5:]
        s, a = self.k.call("GET", "/v1/unsubscribe/" + tampered, key=None)
        self.assertEqual((s, a["error"]["field"]), (404, "token"))
        s, _ = self.k.call("GET", "/v1/unsubscribe/" + tampered, key=None,
                           headers={"Accept": "text/html"})
        self.assertEqual(s, 404)
        self.assertIn("not valid", self.k.last_raw().decode())
        s, _ = self.k.call("POST", "/v1/unsubscribe/" + tampered, key=None)
        self.assertEqual(s, 404)
        s, a = self.k.call("POST", "/v1/unsubscribe/" + token, "List-Unsubscribe=One-Click",
                           key=None, headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual((a["channel"], a["cancelled"]), ("email", 1))
        _, p = self.as_("admin", "GET", "/v1/customers/%d/notifications" % cid, expect=200)
        self.assertEqual(p["marketing"], ["sms"])
        self.assertEqual({m["state"] for m in self.messages(customer=cid, channel="email")
                          if m["kind"] == "campaign"}, {"cancelled"})
        # SMS STOP from the gateway: its token is required.
        s, _ = self.k.call("POST", "/v1/sms/inbound", {"from": "+79161230003", "text": "STOP"},
                           key=None)
        self.assertEqual(s, 401)
        s, a = self.k.call("POST", "/v1/sms/inbound?token=" + TOKEN,
                           "from=%2B79161230003&text=+%D0%A1%D1%82%D0%BE%D0%BF%21", key=None,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((s, a), (200, {"stopped": True}), self.k.last_raw())
        _, p = self.as_("admin", "GET", "/v1/customers/%d/notifications" % cid, expect=200)
        self.assertEqual(p["marketing"], [])
        self.assertEqual({m["state"] for m in self.messages(customer=cid)
                          if m["kind"] == "campaign"}, {"cancelled"})
        s, a = self.k.call("POST", "/v1/sms/inbound", {"from": "+79161230003", "text": "thanks"},
                           key=None, headers={"X-Kopilka-Token": TOKEN})
        self.assertEqual((s, a), (200, {"stopped": False}))
        _, audit = self.as_("admin", "GET", "/v1/admin/audit?limit=1000", expect=200)
        unsub = [e for e in audit["entries"] if e["action"] == "notify.unsubscribe"]
        self.assertEqual(len(unsub), 2)
        self.assertNotIn("7916", json.dumps(audit))

    def test_preferences_are_checked_field_by_field(self):
        cid = self.register(self.k.cards[0], "+79161230004")
        _, p = self.as_("admin", "PUT", "/v1/customers/%d/notifications" % cid,
                        {"language": "ru", "utc_offset": "+03:00", "transactional": ["sms"]},
                        expect=200)
        self.assertEqual((p["language"], p["utc_offset"], p["transactional"]),
                         ("ru", "+03:00", ["sms"]))
        for body, field in (({"utc_offset": "3"}, "utc_offset"),
                            ({"transactional": ["fax"]}, "transactional"),
                            ({"marketing": ["webhook"]}, "marketing"),
                            ({"marketing_consent": {"given": True}}, "marketing_consent.version"),
                            ({"colour": "red"}, "colour")):
            s, a = self.as_("admin", "PUT", "/v1/customers/%d/notifications" % cid, body,
                            expect=400)
            self.assertEqual(a["error"]["field"], field, body)
        self.as_("admin", "GET", "/v1/customers/99999/notifications", expect=404)
        self.as_("auditor", "PUT", "/v1/customers/%d/notifications" % cid, {}, expect=403)

    # --- messages: list, retry, replay
    def test_messages_list_retry_and_replay(self):
        cid = self.register(self.k.cards[0], "+79161230005")
        # A webhook endpoint nobody listens on: its deliveries fail.
        closed = harness.free_port()
        self.as_("admin", "POST", "/v1/admin/webhooks",
                 {"url": "http://127.0.0.1:%d/hook" % closed}, expect=201)
        self.as_("admin", "POST", "/v1/admin/adjustments",
                 {"card": self.k.cards[0], "points": 100, "reason": "test", "key": "A1"},
                 expect=201)
        # Written (an id): the list's first page also shows the deliveries of
        # events not dispatched yet, id null (docs/api.md).
        hook = wait_for("the webhook delivery",
                        lambda: [m for m in self.messages(channel="webhook") if m["id"]])[0]
        self.assertIsNone(hook["customer"])
        s, a = self.as_("admin", "GET", "/v1/admin/messages?state=zombie", expect=400)
        self.assertEqual(a["error"]["field"], "state")
        self.as_("admin", "GET", "/v1/admin/messages?limit=0", expect=400)
        page = self.messages(limit=1)
        self.assertEqual(len(page), 1)
        pending = self.messages(customer=cid, state="pending")
        self.assertTrue(pending)
        s, a = self.as_("admin", "POST", "/v1/admin/messages/%d/retry" % pending[0]["id"],
                        expect=409)
        self.assertIn("pending", a["error"]["message"])
        # Make one dead and one sent (a provider's answers, as the store
        # would record them), then retry and replay. First wait for the
        # first try of each to be settled (the next is an hour away): a
        # delivery in flight would settle over the rows changed here.
        for m in (pending[0], hook):
            wait_for("the first try of message %d" % m["id"], lambda: self.as_(
                "admin", "GET", "/v1/admin/messages/%d" % m["id"], expect=200)[1]["attempts"] >= 1)
        self.k.execute("UPDATE messages SET state = 2, last_error = 'refused' WHERE id = ?",
                       (pending[0]["id"],))
        self.k.execute("UPDATE messages SET state = 1, sent_at = 1 WHERE id = ?", (hook["id"],))
        self.as_("marketer", "POST", "/v1/admin/messages/%d/retry" % pending[0]["id"],
                 expect=200)
        _, a = self.as_("marketer", "POST", "/v1/admin/messages/%d/retry" % hook["id"],
                        expect=200)
        self.assertEqual(a["done"], "replay")
        self.as_("auditor", "POST", "/v1/admin/messages/%d/retry" % hook["id"], expect=403)
        self.as_("admin", "GET", "/v1/admin/messages/999999", expect=404)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
