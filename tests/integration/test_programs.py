"""
test_programs.py: program versions over HTTP and on the command line
(docs/api.md "Program versions", docs/rules.md "Program versions"), against
a real `kopilka serve`:

- a file with several errors is refused with every one named by its path,
  and nothing is loaded; a good one is checked, compared with the running
  version (rules matched by id) and loaded;
- a version scheduled from a date takes over when the server's clock passes
  it (a fixed clock moved with `--now`; and the real clock, without a
  restart, on every server of a PostgreSQL database), and every purchase
  records the version it ran with; a scheduled version can be cancelled
  until it takes effect, never after; an activation in the past, or a load
  that would keep a scheduled version from ever running, is refused;
- the sandbox quote answers what POST /v1/quote answers, for a real card
  or a blank account, under the running program or a draft, and writes
  nothing;
- who may do what: a cashier nothing, an auditor or a manager read, an
  admin load and cancel; loads and cancellations are audited.

    python3 test_programs.py --kopilka build/kopilka [unittest options]
"""
import copy
import json
import os
import time
import unittest

import harness
from harness import LABOR, PARTS

NOW = "2026-06-01T10:00:00Z"
HOUR_LATER = "2026-06-01T11:00:00Z"
TWO_HOURS_LATER = "2026-06-01T12:00:00Z"
PASSWORD = "correct horse battery"
BASKET = [{"sku": "LAB-1", "category": LABOR, "amount": 500000},
          {"sku": "PART-1", "category": PARTS, "amount": 200000}]


def example():
    with open(harness.program_file(), "rb") as f:
        return json.load(f)


def with_parts_percent(percent):
    """The harness's program with parts earning `percent` and one more rule."""
    doc = example()
    for rule in doc["rules"]:
        if rule["id"] == "earn-parts-12":
            rule["percent"] = percent
    doc["rules"].insert(0, {"id": "join-100", "kind": "join_min_purchase", "amount": 100})
    return doc


class ProgramsTestCase(unittest.TestCase):
    """A database, staff of every role on demand (self.as_(role, ...)), and
    a server at NOW unless a test starts it itself."""

    clock = NOW

    def setUp(self):
        self.k = harness.Kopilka(cards=4)
        self.addCleanup(self.k.close)
        self.pwfile = os.path.join(self.k.dir, "password")
        with open(self.pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        self._tokens = {}
        if self.clock:
            self.k.set_clock(self.clock)

    def token(self, role, server=None):
        server = server or self.k
        key = (role, server.port)
        if key not in self._tokens:
            login = "u_" + role
            if not any(r == role for r, _ in self._tokens):
                harness.run_cli(["staff", "add", self.k.db, "--login", login, "--role", role,
                                 "--password-file", self.pwfile])
            s, a = server.call("POST", "/v1/admin/login", {"login": login, "password": PASSWORD},
                               key=None)
            self.assertEqual(s, 200, server.last_raw())
            self._tokens[key] = a["token"]
        return self._tokens[key]

    def as_(self, role, method, path, body=None, server=None):
        server = server or self.k
        return server.call(method, path, body, key=self.token(role, server))

    def versions(self, server=None):
        s, a = self.as_("admin", "GET", "/v1/admin/programs", server=server)
        self.assertEqual(s, 200, self.k.last_raw())
        return a

    def quote_version(self, server=None):
        server = server or self.k
        s, q = server.call("POST", "/v1/quote", {"card": self.k.cards[0], "lines": BASKET})
        self.assertEqual(s, 200, server.last_raw())
        return q["program_version"]


# ---------------------------------------------------------------------------
class Upload(ProgramsTestCase):

    def test_a_file_with_two_errors_names_both_and_loads_nothing(self):
        bad = example()
        bad["rules"][0]["percent"] = "four"          # not a percentage
        bad["rules"][3]["kind"] = "burn_limits"      # no such kind
        for path in ("/v1/admin/programs", "/v1/admin/programs/validate"):
            s, a = self.as_("admin", "POST", path, {"program": bad})
            self.assertEqual(s, 400, self.k.last_raw())
            self.assertEqual(a["error"]["code"], "bad_field")
            fields = [f["field"] for f in a["error"]["fields"]]
            self.assertEqual(fields, ["rules[0].percent", "rules[3].kind"])
            self.assertIn("\"four\"", a["error"]["fields"][0]["message"])
            self.assertIn("allowed: earn_percent", a["error"]["fields"][1]["message"])
            self.assertEqual(a["error"]["field"], "rules[0].percent")
        self.assertEqual([v["version"] for v in self.versions()["versions"]], [1])
        # The command line names both too.
        path = os.path.join(self.k.dir, "bad.json")
        with open(path, "w") as f:
            json.dump(bad, f)
        p = self.k.cli("program", "load", "DB", path, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("rules[0].percent: must be a percentage", p.stderr)
        self.assertIn("rules[3].kind: unknown rule kind \"burn_limits\"", p.stderr)

    def test_every_section_reports_its_errors_in_one_answer(self):
        bad = example()
        bad["rounding"] = "sideways"
        bad["point_kinds"][1]["ttl_months"] = -1
        bad["rules"][1]["typo"] = 1
        bad["rules"][2]["points"] = 0
        bad["till"] = {"offline_days": 365}
        bad["customers"] = {"unregistered": {"earn": "yes"}}
        s, a = self.as_("admin", "POST", "/v1/admin/programs/validate", {"program": bad})
        self.assertEqual(s, 400, self.k.last_raw())
        self.assertEqual([f["field"] for f in a["error"]["fields"]],
                         ["rounding", "point_kinds[1].ttl_months", "rules[1].typo",
                          "rules[2].points", "till.offline_days",
                          "customers.unregistered.earn"])
        self.assertIn("and 5 more errors", a["error"]["message"])

    def test_a_good_file_is_checked_compared_and_loaded(self):
        new = with_parts_percent(15)
        s, a = self.as_("admin", "POST", "/v1/admin/programs/validate", {"program": new})
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertTrue(a["valid"])
        self.assertEqual(a["against"], 1)
        self.assertEqual(a["changes"], [
            {"path": "rules[id=earn-parts-12].percent", "op": "changed", "from": 12, "to": 15},
            {"path": "rules[id=join-100]", "op": "added", "from": None,
             "to": {"id": "join-100", "kind": "join_min_purchase", "amount": 100}}])
        self.assertEqual(self.quote_version(), 1)
        s, a = self.as_("admin", "POST", "/v1/admin/programs",
                        {"program": new, "name": "parts 15%"})
        self.assertEqual(s, 201, self.k.last_raw())
        self.assertEqual(a, {"version": 2, "state": "running", "activates_at": None})
        # This server uses it from its next request.
        self.assertEqual(self.quote_version(), 2)
        lst = self.versions()
        self.assertEqual(lst["running"], 2)
        self.assertEqual([(v["version"], v["state"], v["name"]) for v in lst["versions"]],
                         [(2, "running", "parts 15%"),
                          (1, "past", "Autoservice, case 1 (seed 004)")])
        self.assertEqual(lst["versions"][0]["loaded_by"], "staff:u_admin")
        self.assertEqual(lst["versions"][0]["loaded_at"], NOW)
        s, one = self.as_("admin", "GET", "/v1/admin/programs/2")
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual(one["program"], new)
        self.assertEqual(one["state"], "running")
        # The diff of the old one against it, by number; rules keep their order.
        s, d = self.as_("admin", "POST", "/v1/admin/programs/diff",
                        {"program": example(), "against": 2})
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual([(c["path"], c["op"]) for c in d["changes"]],
                         [("rules[id=join-100]", "removed"),
                          ("rules[id=earn-parts-12].percent", "changed")])
        s, audit = self.as_("admin", "GET", "/v1/admin/audit")
        loads = [(e["action"], e["target"]) for e in audit["entries"]
                 if e["action"].startswith("program.")]
        self.assertEqual(loads, [("program.load", "program:1"), ("program.load", "program:2")])
        s, a = self.as_("admin", "GET", "/v1/admin/programs/9")
        self.assertEqual((s, a["error"]["field"]), (404, "version"))

    def test_the_body_is_checked(self):
        cases = [({}, "program"), ({"program": []}, "program"),
                 ({"program": example(), "extra": 1}, "extra"),
                 ({"program": example(), "activates_at": "tomorrow"}, "activates_at"),
                 ({"program": example(), "name": 5}, "name")]
        for body, field in cases:
            s, a = self.as_("admin", "POST", "/v1/admin/programs", body)
            self.assertEqual((s, a["error"]["field"]), (400, field), body)


# ---------------------------------------------------------------------------
class Schedule(ProgramsTestCase):

    def schedule(self, doc, when, expect=201):
        s, a = self.as_("admin", "POST", "/v1/admin/programs",
                        {"program": doc, "activates_at": when})
        self.assertEqual(s, expect, self.k.last_raw())
        return a

    def buy(self, receipt):
        s, a = self.k.call("POST", "/v1/purchases",
                           {"card": self.k.cards[1], "receipt": receipt, "lines": BASKET})
        self.assertEqual(s, 201, self.k.last_raw())
        return a

    def test_a_scheduled_version_takes_over_when_the_clock_passes_it(self):
        a = self.schedule(with_parts_percent(15), HOUR_LATER)
        self.assertEqual(a, {"version": 2, "state": "scheduled", "activates_at": HOUR_LATER})
        lst = self.versions()
        self.assertEqual(lst["running"], 1)
        self.assertEqual([v["state"] for v in lst["versions"]], ["scheduled", "running"])
        self.assertEqual(self.buy("before")["program_version"], 1)
        self.k.set_clock(TWO_HOURS_LATER)
        lst = self.versions()
        self.assertEqual(lst["running"], 2)
        self.assertEqual([v["state"] for v in lst["versions"]], ["running", "past"])
        after = self.buy("after")
        self.assertEqual(after["program_version"], 2)
        # 12 % then 15 % of 2000.00 of parts, 4 % of 5000.00 of labour.
        self.assertEqual(after["earned"], 200 + 300)
        self.k.stop()  # what it acknowledged is published
        rows = self.k.query("SELECT receipt, program_version FROM ops WHERE receipt IS NOT NULL "
                            "ORDER BY id")
        self.assertEqual(rows, [("before", 1), ("after", 2)])
        self.k.start()
        # Its time has come: it can no longer be cancelled.
        s, e = self.as_("admin", "POST", "/v1/admin/programs/2/cancel")
        self.assertEqual((s, e["error"]["code"]), (409, "conflict"), self.k.last_raw())
        self.assertIn("took effect at " + HOUR_LATER, e["error"]["message"])

    def test_an_activation_in_the_past_or_too_near_is_refused(self):
        for when in ("2026-06-01T09:59:59Z", NOW, "2026-06-01T10:00:04Z", "2040-01-01T00:00:00Z"):
            s, a = self.as_("admin", "POST", "/v1/admin/programs",
                            {"program": example(), "activates_at": when})
            self.assertEqual((s, a["error"]["field"]), (400, "activates_at"), when)
            self.assertIn("must be from 2026-06-01T10:00:05Z", a["error"]["message"])
        self.assertEqual(len(self.versions()["versions"]), 1)

    def test_a_scheduled_version_is_cancelled_before_it_takes_effect(self):
        self.schedule(with_parts_percent(15), HOUR_LATER)
        # Loading at once now would keep version 2 from ever running.
        s, a = self.as_("admin", "POST", "/v1/admin/programs", {"program": example()})
        self.assertEqual((s, a["error"]["field"]), (409, "activates_at"), self.k.last_raw())
        self.assertIn("version 2 is scheduled for " + HOUR_LATER, a["error"]["message"])
        s, a = self.as_("admin", "POST", "/v1/admin/programs/1/cancel")
        self.assertEqual(s, 409, self.k.last_raw())
        s, a = self.as_("admin", "POST", "/v1/admin/programs/2/cancel")
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual((a["version"], a["state"], a["cancelled_at"]), (2, "cancelled", NOW))
        s, a = self.as_("admin", "POST", "/v1/admin/programs/2/cancel")
        self.assertEqual(s, 409, self.k.last_raw())
        s, a = self.as_("admin", "POST", "/v1/admin/programs/7/cancel")
        self.assertEqual((s, a["error"]["field"]), (404, "version"))
        self.k.set_clock(TWO_HOURS_LATER)
        lst = self.versions()
        self.assertEqual(lst["running"], 1)
        self.assertEqual([v["state"] for v in lst["versions"]], ["cancelled", "running"])
        self.assertEqual(self.quote_version(), 1)
        s, audit = self.as_("admin", "GET", "/v1/admin/audit")
        self.assertIn(("program.cancel", "program:2"),
                      [(e["action"], e["target"]) for e in audit["entries"]])

    def test_the_command_line_schedules_lists_and_cancels(self):
        path = os.path.join(self.k.dir, "v2.json")
        with open(path, "w") as f:
            json.dump(with_parts_percent(15), f)
        p = self.k.cli("program", "load", "DB", path, "--activate-at", HOUR_LATER, "--now", NOW)
        self.assertEqual(p.stdout.strip(), "program version 2, scheduled for " + HOUR_LATER)
        p = self.k.cli("program", "list", "DB", "--now", NOW)
        lines = [l.split("\t") for l in p.stdout.strip().splitlines()]
        self.assertEqual(lines[0], ["version", "name", "loaded at", "loaded by", "activates at",
                                    "state"])
        self.assertEqual([(l[0], l[4], l[5]) for l in lines[1:]],
                         [("2", HOUR_LATER, "scheduled"), ("1", "-", "running")])
        p = self.k.cli("program", "list", "DB", "--now", TWO_HOURS_LATER)
        self.assertEqual([l.split("\t")[5] for l in p.stdout.strip().splitlines()[1:]],
                         ["running", "past"])
        p = self.k.cli("program", "load", "DB", path, "--activate-at", "2026-01-01T00:00:00Z",
                       "--now", NOW, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("activates_at: is in the past", p.stderr)
        p = self.k.cli("program", "cancel", "DB", "--version", "2", "--now", TWO_HOURS_LATER,
                       check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("took effect", p.stderr)
        p = self.k.cli("program", "cancel", "DB", "--version", "2", "--now", NOW)
        self.assertIn("is cancelled", p.stdout)
        # The running server sees the cancellation.
        self.assertEqual(self.versions()["versions"][0]["state"], "cancelled")


class ScheduleRealClock(ProgramsTestCase):
    """The real clock: a scheduled version takes over without a restart, on
    every server of the database (two on PostgreSQL)."""

    clock = None

    def test_a_running_server_switches_at_the_activation_time(self):
        servers = [self.k]
        if self.k.on_pg():
            servers.append(self.k.another_server())
            self.addCleanup(servers[1].close)
        for server in servers:
            server.start()
            self.token("admin", server)  # logins take a while: before the clock is read
        when = time.time() + 7
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
        s, a = self.as_("admin", "POST", "/v1/admin/programs",
                        {"program": with_parts_percent(15), "activates_at": stamp})
        self.assertEqual(s, 201, self.k.last_raw())
        for server in servers:
            self.assertEqual(self.quote_version(server), 1)
        deadline = time.monotonic() + 20
        seen = [None] * len(servers)
        while time.monotonic() < deadline and seen != [2] * len(servers):
            for i, server in enumerate(servers):
                seen[i] = self.quote_version(server)
            time.sleep(0.2)
        self.assertEqual(seen, [2] * len(servers))
        self.assertGreaterEqual(time.time(), int(when))
        for server in servers:
            self.assertEqual(self.versions(server)["running"], 2)


# ---------------------------------------------------------------------------
class Sandbox(ProgramsTestCase):

    def snapshot(self):
        tables = ("accounts", "lots", "ops", "postings", "sys_accounts", "programs", "audit",
                  "cards", "card_info")
        return {t: self.k.query("SELECT * FROM %s ORDER BY 1" % t) for t in tables}

    def test_a_sandbox_quote_with_a_card_is_the_quote_and_writes_nothing(self):
        card = self.k.cards[0]
        s, a = self.k.call("POST", "/v1/purchases",
                           {"card": card, "receipt": "r-1", "lines": BASKET})
        self.assertEqual(s, 201, self.k.last_raw())
        body = {"card": card, "burn": 800, "lines": BASKET}
        self.token("auditor")
        before = self.snapshot()
        s, quote = self.k.call("POST", "/v1/quote", body)
        self.assertEqual(s, 200, self.k.last_raw())
        s, sandbox = self.as_("auditor", "POST", "/v1/admin/programs/sandbox",
                              dict(body, store="main"))
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual(sandbox, quote)
        self.assertEqual(sandbox["balance_before"], a["balance"])
        self.assertTrue(sandbox["explain"])
        self.assertIn("burn-labor-10", sandbox["burn_limited_by"])
        # A draft program prices the same basket as version 0.
        s, draft = self.as_("auditor", "POST", "/v1/admin/programs/sandbox",
                            dict(body, store="main", program=with_parts_percent(15)))
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual(draft["program_version"], 0)
        self.assertEqual(draft["earned"] - quote["earned"], 60)  # 3 % more of 2000.00 of parts
        self.assertEqual(self.snapshot(), before)

    def test_a_sandbox_quote_without_a_card_uses_a_blank_account(self):
        self.token("manager")
        before = self.snapshot()
        s, q = self.as_("manager", "POST", "/v1/admin/programs/sandbox",
                        {"balance": 5000, "burn": 5000, "lines": BASKET})
        self.assertEqual(s, 200, self.k.last_raw())
        self.assertEqual(q["card"], "")
        self.assertEqual(q["program_version"], 1)
        self.assertEqual(q["balance_before"], 5000)
        self.assertEqual(q["burned"], 500)  # 10 % of 5000.00 of labour
        self.assertIn("burn-labor-10", q["burn_limited_by"])
        self.assertIn("burn-labor-10", [x["rule"] for x in q["explain"]])
        self.assertEqual(q["receipt_lines"][-1], "Balance: %d points" % q["balance"])
        # A first purchase: at least 1000 points (first-visit-1000).
        self.assertEqual(q["earned"], 1000)
        for body, field in [({"card": "1", "balance": 5, "lines": BASKET}, "balance"),
                            ({"balance": -1, "lines": BASKET}, "balance"),
                            ({"balance": 5}, "lines"),
                            ({"card": "no-such-card", "lines": BASKET}, "card"),
                            ({"lines": BASKET, "program": {"name": "x"}}, "rules")]:
            s, a = self.as_("manager", "POST", "/v1/admin/programs/sandbox", body)
            self.assertIn(s, (400, 404), self.k.last_raw())
            self.assertEqual(a["error"]["field"], field, body)
        self.assertEqual(self.snapshot(), before)


# ---------------------------------------------------------------------------
class Permissions(ProgramsTestCase):

    def test_a_cashier_may_do_nothing_an_auditor_only_read(self):
        reads = [("GET", "/v1/admin/programs", None),
                 ("GET", "/v1/admin/programs/1", None),
                 ("POST", "/v1/admin/programs/validate", {"program": example()}),
                 ("POST", "/v1/admin/programs/diff", {"program": example()}),
                 ("POST", "/v1/admin/programs/sandbox", {"balance": 1, "lines": BASKET})]
        writes = [("POST", "/v1/admin/programs", {"program": example(),
                                                  "activates_at": HOUR_LATER}),
                  ("POST", "/v1/admin/programs/2/cancel", None)]
        for role in ("cashier", "call_centre"):
            for method, path, body in reads + writes:
                s, a = self.as_(role, method, path, body)
                self.assertEqual((s, a["error"]["code"]), (403, "forbidden"), (role, path))
        for role in ("auditor", "manager", "marketer"):
            for method, path, body in reads:
                s, a = self.as_(role, method, path, body)
                self.assertEqual(s, 200, (role, path, self.k.last_raw()))
            for method, path, body in writes:
                s, a = self.as_(role, method, path, body)
                self.assertEqual(s, 403, (role, path, self.k.last_raw()))
                self.assertIn("program.manage", a["error"]["message"])
        # Even a bad file is 403, not 400, for who may not load.
        s, a = self.as_("auditor", "POST", "/v1/admin/programs", {"program": {}})
        self.assertEqual(s, 403)
        s, a = self.as_("admin", *writes[0][:2], body=writes[0][2])
        self.assertEqual(s, 201, self.k.last_raw())
        s, a = self.as_("admin", *writes[1][:2])
        self.assertEqual(s, 200, self.k.last_raw())
        s, a = self.k.call("GET", "/v1/admin/programs")  # a terminal key
        self.assertEqual(s, 403)
        s, a = self.k.call("GET", "/v1/admin/programs", key=None)
        self.assertEqual(s, 401)


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
