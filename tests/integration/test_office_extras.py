"""
test_office_extras.py: the back office's dashboard, CSV imports over HTTP,
the audit log's filters and the login limits (docs/api.md, "Dashboard",
"Imports", "Audit log", "Login limits") against a real `kopilka serve`:

  - the dashboard's figures on a small story told across three months
    (registrations, purchases at two stores, a return, a manual adjustment,
    imported opening balances that expire), exact to the point, the same on
    SQLite and PostgreSQL (this file runs on both: integration_office_extras
    and its _pg twin); a store's figures; a period over 36 months refused
    on `from`;
  - an import with per-line errors (400, each with its line, field and
    message, nothing written), then the same file fixed (200); a dry run
    that counts and writes nothing; more than 1000 problems capped with
    errors_more; a cashier refused; 413 past 32 MiB on the import route and
    past 1 MiB on every other;
  - the audit log filtered by actor, action prefix, target and time, and
    paged newest first with `before`;
  - failed logins limited per account (5) and per address (20) with 429
    rate_limited and Retry-After, audited once; the cabinet's login and
    code routes limited per address; X-Forwarded-For believed only with
    `serve --trust-proxy`.

    python3 test_office_extras.py --kopilka build/kopilka [unittest options]
"""
import os
import time
import unittest

import harness
from harness import LABOR, PARTS
from test_people import CONSENT, PASSWORD, program_with_customers

SEPTEMBER = "2026-09-10T09:00:00Z"
OCTOBER = "2026-10-05T09:00:00Z"
NOVEMBER = "2026-11-02T09:00:00Z"


class OfficeCase(unittest.TestCase):
    """A database with staff of every role needed; tokens made on demand
    (and made again after the clock moved: a session lasts 8 hours)."""

    cards = 6
    serve_args = ()

    def setUp(self):
        self.k = harness.Kopilka(cards=self.cards)
        self.addCleanup(self.k.close)
        harness.run_cli(["program", "load", self.k.db, program_with_customers(self.k.dir)])
        pw = os.path.join(self.k.dir, "password")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        for role in ("admin", "manager", "cashier", "auditor", "call_centre"):
            harness.run_cli(["staff", "add", self.k.db, "--login", "u_" + role, "--role", role,
                             "--password-file", pw])
        self.tokens = {}
        self.k.start(serve_args=self.serve_args)

    def set_clock(self, when):
        self.k.set_clock(when)
        self.tokens = {}

    def token(self, role):
        if role not in self.tokens:
            self.tokens[role] = self.k.staff_token("u_" + role, PASSWORD)
        return self.tokens[role]

    def as_(self, role, method, path, body=None, headers=None):
        return self.k.call(method, path, body, key=self.token(role), headers=headers)

    def register(self, card, phone):
        s, a = self.k.call("POST", "/v1/customers",
                           {"card": card, "full_name": "Ivan Petrenko", "phone": phone,
                            "consent": CONSENT})
        self.assertEqual(s, 201, self.k.last_raw())
        return a

    def purchase(self, card, receipt, lines, key=None, burn=None):
        body = {"card": card, "receipt": receipt, "lines": lines}
        if burn is not None:
            body["burn"] = burn
        s, a = self.k.call("POST", "/v1/purchases", body, key=key or self.k.key)
        self.assertEqual(s, 201, self.k.last_raw())
        return a

    def csv_import(self, role, kind, text, dry_run=False):
        path = "/v1/admin/imports?kind=" + kind + ("&dry_run=1" if dry_run else "")
        return self.as_(role, "POST", path, text.encode("utf-8"),
                        headers={"Content-Type": "text/csv"})


# ---------------------------------------------------------------------------
class Dashboard(OfficeCase):
    """Three months: September (customer 1 registers and buys), October
    (customer 2 registers and buys at the north store, which takes it back;
    customer 1 buys again burning points; a manual credit; an opening
    balance imported that expires on the 20th), November (the expiry)."""

    def story(self):
        c = self.k.cards
        north = self.k.terminal_add("north")
        self.set_clock(SEPTEMBER)
        self.register(c[0], "+380501230001")
        a1 = self.purchase(c[0], "A1", [{"sku": "LAB-1", "category": LABOR, "amount": 10000}])
        self.assertEqual(a1["earned"], 1000)  # the first visit's minimum
        self.set_clock(OCTOBER)
        self.register(c[1], "+380501230002")
        b1 = self.purchase(c[0], "B1", [{"sku": "LAB-1", "category": LABOR, "amount": 20000},
                                        {"sku": "PART-1", "category": PARTS, "amount": 10000}],
                           burn=20)
        self.assertEqual((b1["earned"], b1["burned"]), (19, 20))  # 4% of labour paid in money, 12% of parts
        n1 = self.purchase(c[1], "N1", [{"sku": "LAB-1", "category": LABOR, "amount": 5000}],
                           key=north)
        self.assertEqual(n1["earned"], 1000)
        s, r = self.k.call("POST", "/v1/returns", {"card": c[1], "receipt": "NR1",
                                                   "original_receipt": "N1"}, key=north)
        self.assertEqual(s, 201, self.k.last_raw())
        self.assertEqual(r["earned_reversed"], 1000)
        s, _ = self.as_("manager", "POST", "/v1/admin/adjustments",
                        {"card": c[1], "points": 300, "reason": "goodwill", "key": "adj-1"})
        self.assertEqual(s, 201, self.k.last_raw())
        s, a = self.csv_import("admin", "balances",
                               "card,points,expires_at\n%s,50,2026-10-20T00:00:00Z\n" % c[2])
        self.assertEqual(s, 200, self.k.last_raw())
        # The scheduler runs at start: the 50 points expire on November's.
        self.set_clock(NOVEMBER)
        deadline = time.monotonic() + 20
        while self.k.card(c[2])["balance"] != 0:
            self.assertLess(time.monotonic(), deadline, "the expiry did not run")
            time.sleep(0.1)
        return north

    def dashboard(self, query, role="auditor"):
        s, d = self.as_(role, "GET", "/v1/admin/dashboard" + query)
        self.assertEqual(s, 200, self.k.last_raw())
        return d

    def test_figures_of_a_known_story(self):
        self.story()
        d = self.dashboard("?from=2026-09-01&to=2026-11-30")
        self.assertEqual((d["from"], d["to"], d["store"]), ("2026-09-01", "2026-11-30", None))
        self.assertEqual((d["members"], d["members_active"], d["active_share"]), (2, 2, 1.0))
        # Issued: 1000 + 19 + 1000 - 1000 (the return); burnt 20; the
        # opening balance is not issued by the program, but is outstanding
        # until it expires: 1000 + 19 - 20 (customer 1) + 300 (customer 2).
        self.assertEqual(d["points"], {"issued": 1019, "burnt": 20, "expired": 50,
                                       "adjusted": 300, "outstanding": 1299})
        self.assertEqual((d["minor_per_point"], d["liability_minor"]), (100, 129900))
        self.assertEqual(d["by_month"], [
            {"month": "2026-09", "issued": 1000, "burnt": 0, "expired": 0, "new_members": 1,
             "purchases": 1, "revenue_minor": 10000},
            {"month": "2026-10", "issued": 19, "burnt": 20, "expired": 0, "new_members": 1,
             "purchases": 2, "revenue_minor": 30000},
            {"month": "2026-11", "issued": 0, "burnt": 0, "expired": 50, "new_members": 0,
             "purchases": 0, "revenue_minor": 0},
        ])
        # October alone: outstanding at its end still holds the 50.
        d = self.dashboard("?from=2026-10-01&to=2026-10-31")
        self.assertEqual(d["points"], {"issued": 19, "burnt": 20, "expired": 0,
                                       "adjusted": 300, "outstanding": 1349})
        self.assertEqual([m["month"] for m in d["by_month"]], ["2026-10"])
        # The north store: its purchase and the return that took it back;
        # members and outstanding are the programme's.
        d = self.dashboard("?from=2026-09-01&to=2026-11-30&store=north", role="manager")
        self.assertEqual(d["store"], "north")
        self.assertEqual((d["members"], d["members_active"], d["active_share"]), (2, 1, 0.5))
        self.assertEqual(d["points"], {"issued": 0, "burnt": 0, "expired": 0, "adjusted": 0,
                                       "outstanding": 1299})
        self.assertEqual(d["by_month"][1], {"month": "2026-10", "issued": 0, "burnt": 0,
                                            "expired": 0, "new_members": 1, "purchases": 1,
                                            "revenue_minor": 0})
        # Before the story: nobody yet.
        d = self.dashboard("?from=2026-01-01&to=2026-08-31")
        self.assertEqual((d["members"], d["members_active"], d["active_share"]), (0, 0, 0.0))
        self.assertEqual(len(d["by_month"]), 8)

    def test_defaults_and_refusals(self):
        self.set_clock(OCTOBER)
        # Without dates: the 12 calendar months ending with today's.
        d = self.dashboard("")
        self.assertEqual((d["from"], d["to"]), ("2025-11-01", "2026-10-05"))
        self.assertEqual(len(d["by_month"]), 12)
        # 36 months at most: from 2023-10-06 to 2026-10-05 is 36 months.
        d = self.dashboard("?from=2023-10-06&to=2026-10-05")
        self.assertEqual(len(d["by_month"]), 37)
        s, a = self.as_("auditor", "GET", "/v1/admin/dashboard?from=2023-10-05&to=2026-10-05")
        self.assertEqual(s, 400)
        self.assertEqual(a["error"]["field"], "from")
        self.assertIn("36 months", a["error"]["message"])
        for query, field in (("?from=2026-13-01", "from"), ("?to=yesterday", "to"),
                             ("?from=2026-10-02&to=2026-10-01", "to")):
            s, a = self.as_("auditor", "GET", "/v1/admin/dashboard" + query)
            self.assertEqual((s, a["error"]["field"]), (400, field), query)
        s, a = self.as_("cashier", "GET", "/v1/admin/dashboard")
        self.assertEqual(s, 403)
        self.assertIn("report.read", a["error"]["message"])


# ---------------------------------------------------------------------------
class Imports(OfficeCase):

    def count(self, sql, params=()):
        return self.k.query(sql, params)[0][0]

    def test_errors_per_line_then_success(self):
        bad = ("number,state,batch\nIMP-1,issued,spring\nIMP-2,lost,spring\n\n"
               "IMP-1,issued,spring\n%s,issued,\n" % self.k.cards[0])
        s, a = self.csv_import("manager", "cards", bad)
        self.assertEqual(s, 400, self.k.last_raw())
        self.assertEqual(a["error"]["code"], "bad_field")
        self.assertEqual(a["error"]["field"], "body")
        self.assertEqual((a["kind"], a["rows"], a["inserted"], a["dry_run"], a["errors_more"]),
                         ("cards", 4, 0, False, 0))
        self.assertEqual(a["errors"], [
            {"line": 3, "field": "state", "message": "must be issued, active or blocked"},
            {"line": 5, "field": "number", "message": "card IMP-1 is listed twice"},
        ])
        self.assertEqual(self.count("SELECT count(*) FROM cards WHERE number LIKE 'IMP-%'"), 0)
        good = "number,state,batch\nIMP-1,issued,spring\nIMP-2,blocked,spring\n%s,issued,\n" \
            % self.k.cards[0]
        s, a = self.csv_import("manager", "cards", good)
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual(a, {"kind": "cards", "rows": 3, "inserted": 2, "updated": 0,
                             "skipped": 1, "dry_run": False, "errors": [], "errors_more": 0})
        self.assertEqual(self.count("SELECT count(*) FROM cards WHERE number LIKE 'IMP-%'"), 2)
        s, audit = self.as_("admin", "GET", "/v1/admin/audit?action=import&order=desc&limit=1")
        self.assertEqual(s, 200)
        self.assertEqual(audit["entries"][0]["actor"], "staff:u_manager")
        self.assertEqual(audit["entries"][0]["action"], "import")
        # Customers: the same code as `kopilka import`, personal data sealed.
        s, a = self.csv_import("admin", "customers",
                               "external_id,cards,full_name,phone,consent_version\n"
                               "old-7,IMP-1,Olga Shevchenko,+380501239999,2026-01\n")
        self.assertEqual((s, a["inserted"]), (200, 1), self.k.last_raw())
        self.assertFalse(self.k.holds_text("Shevchenko"))
        s, a = self.csv_import("admin", "customers",
                               "external_id,cards,full_name,phone,consent_version\n"
                               "old-7,IMP-1,Olga Shevchenko-Koval,+380501239999,2026-01\n")
        self.assertEqual((s, a["inserted"], a["updated"], a["skipped"]), (200, 0, 1, 0))

    def test_dry_run_counts_and_writes_nothing(self):
        audit_before = self.count("SELECT count(*) FROM audit")
        text = "number\nDRY-1\nDRY-2\n%s\n" % self.k.cards[0]
        s, a = self.csv_import("admin", "cards", text, dry_run=True)
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual(a, {"kind": "cards", "rows": 3, "inserted": 2, "updated": 0,
                             "skipped": 1, "dry_run": True, "errors": [], "errors_more": 0})
        self.assertEqual(self.count("SELECT count(*) FROM cards WHERE number LIKE 'DRY-%'"), 0)
        # Logging in wrote one entry; the dry run none.
        self.assertEqual(self.count("SELECT count(*) FROM audit"), audit_before + 1)
        s, a = self.csv_import("admin", "balances", "card,points\nDRY-1,10\n", dry_run=True)
        self.assertEqual(s, 400)
        self.assertEqual(a["errors"], [{"line": 2, "field": "card", "message":
                                        "card DRY-1 is neither in the database nor in cards.csv"}])

    def test_more_than_a_thousand_problems_are_capped(self):
        text = "number,state\n" + "".join("CAP-%d,lost\n" % i for i in range(1200))
        s, a = self.csv_import("admin", "cards", text, dry_run=True)
        self.assertEqual(s, 400)
        self.assertEqual((len(a["errors"]), a["errors_more"], a["rows"]), (1000, 200, 1200))
        self.assertEqual(a["errors"][999]["line"], 1001)

    def test_refusals(self):
        s, a = self.csv_import("cashier", "cards", "number\nX-1\n")
        self.assertEqual(s, 403)
        self.assertIn("import", a["error"]["message"])
        for path, field in (("/v1/admin/imports", "kind"),
                            ("/v1/admin/imports?kind=staff", "kind"),
                            ("/v1/admin/imports?kind=cards&dry_run=maybe", "dry_run")):
            s, a = self.as_("admin", "POST", path, b"number\nX-1\n")
            self.assertEqual((s, a["error"]["field"]), (400, field), path)
        s, a = self.csv_import("admin", "cards", "")
        self.assertEqual(s, 400)
        self.assertEqual(a["errors"][0]["line"], 1)
        s, a = self.csv_import("admin", "cards", "numero\nX-1\n")
        self.assertEqual(s, 400)
        self.assertEqual([(e["line"], e["field"]) for e in a["errors"]],
                         [(1, "numero"), (1, "number")])

    def test_body_limits(self):
        tok = self.token("admin")
        # A file past 1 MiB goes through on the import route...
        row = "BIG-%05d,issued," + "r" * 240 + "\n"
        text = "number,state,block_reason\n" + "".join(row % i for i in range(8500))
        self.assertGreater(len(text), 2 * 1024 * 1024)
        s, a = self.csv_import("admin", "cards", text, dry_run=True)
        self.assertEqual((s, a["inserted"]), (200, 8500), self.k.last_raw()[:300])
        # ... but not past 32 MiB (refused on its Content-Length, unread).
        def post(path, length, key):
            head = ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                    "Content-Type: text/csv\r\nContent-Length: %d\r\n\r\n"
                    % (path, key, length)).encode()
            return harness.send_raw(self.k.port, head, b"x" * min(length, 2 * 1024 * 1024))

        s, a = post("/v1/admin/imports?kind=cards", 32 * 1024 * 1024 + 1, tok)
        self.assertEqual(s, 413)
        self.assertEqual(a["error"], {"code": "too_large", "message":
                                      "the body is over the limit of 33554432 bytes"})
        # Every other route keeps 1 MiB.
        s, a = post("/v1/admin/adjustments", 1024 * 1024 + 1, tok)
        self.assertEqual(s, 413)
        self.assertEqual(a["error"]["message"], "the body is over the limit of 1048576 bytes")
        s, a = post("/v1/purchases", 1024 * 1024 + 1, self.k.key)
        self.assertEqual(s, 413)


# ---------------------------------------------------------------------------
class AuditFilters(OfficeCase):

    def test_filters_are_applied_by_the_query(self):
        c = self.k.cards
        self.set_clock(SEPTEMBER)
        s, _ = self.as_("manager", "POST", "/v1/admin/cards/%s/block" % c[0],
                        {"reason": "lost"})
        self.assertEqual(s, 200, self.k.last_raw())
        self.set_clock(OCTOBER)
        s, _ = self.as_("call_centre", "POST", "/v1/admin/cards/%s/unblock" % c[0], {})
        self.assertEqual(s, 200, self.k.last_raw())
        s, _ = self.as_("call_centre", "POST", "/v1/admin/cards/%s/block" % c[1],
                        {"reason": "stolen"})
        self.assertEqual(s, 200, self.k.last_raw())

        def entries(query, role="auditor"):
            s, a = self.as_(role, "GET", "/v1/admin/audit" + query)
            self.assertEqual(s, 200, self.k.last_raw())
            return a

        # The harness issued the cards from the command line first.
        a = entries("?action=card.")
        self.assertEqual([e["action"] for e in a["entries"]],
                         ["card.issue", "card.block", "card.unblock", "card.block"])
        self.assertEqual(a["entries"][0]["actor"][:4], "cli:")
        a = entries("?action=card.block&actor=staff:u_call_centre")
        self.assertEqual([e["target"] for e in a["entries"]], ["card:" + c[1]])
        a = entries("?target=card:" + c[0])
        self.assertEqual([e["action"] for e in a["entries"]], ["card.block", "card.unblock"])
        a = entries("?action=card.&from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z")
        self.assertEqual([e["action"] for e in a["entries"]], ["card.unblock", "card.block"])
        a = entries("?action=card.&to=2026-10-01T00:00:00%2B03:00")
        self.assertEqual([e["action"] for e in a["entries"]], ["card.block"])
        self.assertEqual(a["next_after"], a["entries"][0]["seq"])
        # Newest first, paged with before.
        everything = entries("?limit=1000")["entries"]
        newest = entries("?order=desc&limit=2")
        self.assertEqual([e["seq"] for e in newest["entries"]],
                         [everything[-1]["seq"], everything[-2]["seq"]])
        page = entries("?before=%d&limit=2" % newest["next_before"])
        self.assertEqual([e["seq"] for e in page["entries"]],
                         [everything[-3]["seq"], everything[-4]["seq"]])
        a = entries("?order=desc&action=staff.login&actor=staff:u_auditor&limit=1")
        self.assertEqual(a["entries"][0]["action"], "staff.login")
        self.assertEqual(entries("?actor=nobody")["entries"], [])
        for query, field in (("?from=yesterday", "from"), ("?order=sideways", "order"),
                             ("?before=-1", "before"), ("?action=" + "x" * 60, "action"),
                             ("?from=2026-10-02T00:00:00Z&to=2026-10-01T00:00:00Z", "to")):
            s, a = self.as_("auditor", "GET", "/v1/admin/audit" + query)
            self.assertEqual((s, a["error"]["field"]), (400, field), query)
        s, _ = self.as_("manager", "GET", "/v1/admin/audit?action=card.")
        self.assertEqual(s, 403)


# ---------------------------------------------------------------------------
class LoginLimits(OfficeCase):
    """Behind a proxy: the address is X-Forwarded-For's last one."""

    serve_args = ("--trust-proxy", "--now", OCTOBER)

    def login(self, login, password, address, via="10.1.1.1"):
        return self.k.call("POST", "/v1/admin/login", {"login": login, "password": password},
                           key=None, headers={"X-Forwarded-For": "%s, %s" % (via, address)})

    def retry_after(self):
        return self.k._client.last_headers.get("Retry-After")

    def test_five_failures_lock_the_account_for_fifteen_minutes(self):
        for i in range(5):
            s, _ = self.login("u_admin", "wrong password", "192.0.2.%d" % i)
            self.assertEqual(s, 401)
        # The right password is refused now too, from any address.
        s, a = self.login("u_admin", PASSWORD, "192.0.2.99")
        self.assertEqual(s, 429, self.k.last_raw())
        self.assertEqual((a["error"]["code"], a["error"]["field"]), ("rate_limited", "login"))
        self.assertEqual(self.retry_after(), "900")  # the clock is fixed: the whole window
        s, _ = self.login("u_admin", PASSWORD, "192.0.2.98")
        self.assertEqual(s, 429)
        # Another account is not affected.
        s, _ = self.login("u_manager", PASSWORD, "192.0.2.0")
        self.assertEqual(s, 200)
        s, a = self.as_("auditor", "GET", "/v1/admin/audit?action=staff.login_failed"
                                          "&target=staff:u_admin")
        details = [e["detail"] for e in a["entries"]]
        self.assertEqual(details, [""] * 5 + [
            "rate_limited: 5 failed attempts for this login within 15 minutes"])

    def test_a_good_login_clears_the_count(self):
        for i in range(4):
            self.assertEqual(self.login("u_admin", "wrong", "192.0.2.1")[0], 401)
        self.assertEqual(self.login("u_admin", PASSWORD, "192.0.2.1")[0], 200)
        for i in range(4):
            self.assertEqual(self.login("u_admin", "wrong", "192.0.2.1")[0], 401)
        self.assertEqual(self.login("u_admin", PASSWORD, "192.0.2.1")[0], 200)

    def test_twenty_failures_lock_the_address(self):
        for i in range(20):
            s, _ = self.login("ghost%d" % i, "wrong", "198.51.100.7")
            self.assertEqual(s, 401)
        s, a = self.login("u_admin", PASSWORD, "198.51.100.7")
        self.assertEqual(s, 429)
        self.assertIn("from this address", a["error"]["message"])
        self.assertEqual(self.retry_after(), "900")
        # The addresses a client claims before the proxy's are not believed.
        s, _ = self.login("u_admin", PASSWORD, "198.51.100.7", via="203.0.113.5")
        self.assertEqual(s, 429)
        s, _ = self.login("u_admin", PASSWORD, "198.51.100.8")
        self.assertEqual(s, 200)

    def test_the_cabinet_is_limited_per_address(self):
        for i in range(20):
            s, _ = self.k.call("POST", "/v1/login", {"phone": "+38050123%04d" % i,
                                                     "code": "123456"},
                               key=None, headers={"X-Forwarded-For": "192.0.2.50"})
            self.assertEqual(s, 401, self.k.last_raw())
        s, a = self.k.call("POST", "/v1/login", {"phone": "+380501230000", "code": "123456"},
                           key=None, headers={"X-Forwarded-For": "192.0.2.50"})
        self.assertEqual((s, a["error"]["code"]), (429, "rate_limited"))
        self.assertEqual(self.retry_after(), "900")
        # A sign-up checks a code too: the same count.
        signup = {"phone": "+380501230000", "code": "123456", "card": self.k.cards[0],
                  "full_name": "Ivan Petrenko", "consent": {"rules": True, "version": "2026-01"}}
        s, a = self.k.call("POST", "/v1/signup", signup, key=None,
                           headers={"X-Forwarded-For": "192.0.2.50"})
        self.assertEqual((s, a["error"]["code"]), (429, "rate_limited"))
        s, a = self.k.call("POST", "/v1/signup", signup, key=None,
                           headers={"X-Forwarded-For": "192.0.2.53"})
        self.assertEqual((s, a["error"]["field"]), (401, "code"))
        for i in range(20):
            s, _ = self.k.call("POST", "/v1/login/code", {"phone": "+38050124%04d" % i},
                               key=None, headers={"X-Forwarded-For": "192.0.2.51"})
            self.assertEqual(s, 202, self.k.last_raw())
        s, a = self.k.call("POST", "/v1/login/code", {"phone": "+380501249999"},
                           key=None, headers={"X-Forwarded-For": "192.0.2.51"})
        self.assertEqual((s, a["error"]["code"]), (429, "rate_limited"))
        s, _ = self.k.call("POST", "/v1/login/code", {"phone": "+380501249999"},
                           key=None, headers={"X-Forwarded-For": "192.0.2.52"})
        self.assertEqual(s, 202)


class LoginLimitsWithoutProxy(OfficeCase):
    """Without --trust-proxy X-Forwarded-For is the client's own word: every
    attempt counts against the connection's address."""

    serve_args = ("--now", OCTOBER)

    def test_forwarded_for_is_ignored(self):
        for i in range(20):
            s, _ = self.k.call("POST", "/v1/admin/login", {"login": "ghost%d" % i,
                                                           "password": "x"},
                               key=None, headers={"X-Forwarded-For": "192.0.2.%d" % i})
            self.assertEqual(s, 401)
        s, _ = self.k.call("POST", "/v1/admin/login", {"login": "u_admin", "password": PASSWORD},
                           key=None, headers={"X-Forwarded-For": "192.0.2.200"})
        self.assertEqual(s, 429)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
