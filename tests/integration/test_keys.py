"""
test_keys.py: black-box tests of terminal keys, the audit of manual changes,
the individual-discount route, `kopilka birthday set`, the key file and the
partner role without partners (docs/api.md "Terminal keys", "Audit log", "Roles")
against a real `kopilka serve`.

    python3 test_keys.py --kopilka build/kopilka [unittest options]
"""
import csv
import datetime
import json
import os
import pwd
import time
import unittest

import harness
from harness import LABOR

PASSWORD = "correct horse battery"
CONSENT = {"given": True, "text_version": "2026-01"}
OS_USER = "cli:" + pwd.getpwuid(os.geteuid()).pw_name
HEADER = "id\tstore\tstate\tcreated\trotated\tlast used\trevoked"


def program_with_customers(directory):
    """The harness's program plus a "customers" section; returns its path."""
    with open(harness.program_file(), "rb") as f:
        doc = json.load(f)
    doc["customers"] = {"unregistered": {"earn": True, "burn": True},
                        "consent_version": "2026-01"}
    doc["event_sources"] = [{"type": "survey", "from": ["back_office"]}]
    path = os.path.join(directory, "program-keys.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def purchase_body(card, receipt, amount=100000):
    return {"card": card, "receipt": receipt,
            "lines": [{"sku": "oil", "category": LABOR, "amount": amount}]}


class KeysTestCase(unittest.TestCase):
    """A fresh database (program with a customers section), a server, and
    staff logged in on demand."""

    serve_args = ()

    def setUp(self):
        self.k = harness.Kopilka(cards=6)
        self.addCleanup(self.k.close)
        harness.run_cli(["program", "load", self.k.db, program_with_customers(self.k.dir)])
        self.pwfile = os.path.join(self.k.dir, "password")
        with open(self.pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        self._tokens = {}
        self.k.start(serve_args=self.serve_args)

    def token(self, role):
        if role not in self._tokens:
            login = "k_" + role
            harness.run_cli(["staff", "add", self.k.db, "--login", login, "--role", role,
                             "--password-file", self.pwfile])
            s, a = self.k.call("POST", "/v1/admin/login", {"login": login, "password": PASSWORD},
                               key=None)
            self.assertEqual(s, 200, self.k.last_raw())
            self._tokens[role] = a["token"]
        return self._tokens[role]

    def as_(self, role, method, path, body=None):
        return self.k.call(method, path, body, key=self.token(role))

    def buy(self, key, receipt, card=None, expect=201):
        s, a = self.k.call("POST", "/v1/purchases", purchase_body(card or self.k.cards[0], receipt),
                           key=key)
        self.assertEqual(s, expect, self.k.last_raw())
        return a

    def terminals(self):
        """`kopilka terminal list DB` as a list of dicts (after checking the header)."""
        out = self.k.cli("terminal", "list", "DB").stdout.splitlines()
        self.assertEqual(out[0], HEADER)
        names = ["id", "store", "state", "created", "rotated", "last_used", "revoked"]
        return [dict(zip(names, line.split("\t"))) for line in out[1:]]

    def audit(self, action=None):
        s, a = self.as_("admin", "GET", "/v1/admin/audit?limit=1000")
        self.assertEqual(s, 200, self.k.last_raw())
        return [e for e in a["entries"] if action is None or e["action"] == action]


# ---------------------------------------------------------------------------
class TerminalKeysCli(KeysTestCase):

    def test_list_shows_store_state_and_times(self):
        self.k.terminal_add("kiosk")
        rows = self.terminals()
        self.assertEqual([(r["id"], r["store"], r["state"]) for r in rows],
                         [("1", "main", "active"), ("2", "kiosk", "active")])
        for r in rows:
            self.assertRegex(r["created"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            self.assertEqual((r["rotated"], r["revoked"]), ("-", "-"))

    def test_a_key_revoked_by_the_cli_is_refused_at_once_by_the_running_server(self):
        other = self.k.terminal_add("kiosk")
        self.buy(self.k.key, "R-1")
        s, _ = self.k.call("POST", "/v1/customers", {"card": self.k.cards[1]})  # cached too
        self.assertEqual(s, 400, self.k.last_raw())
        p = self.k.cli("terminal", "revoke", "DB", "--id", "1")
        self.assertEqual(p.stdout.strip(), "terminal 1 (store main) revoked: its key is "
                         "refused from now on, also by a running server")
        a = self.buy(self.k.key, "R-2", expect=401)
        self.assertEqual(a["error"]["code"], "unauthorized")
        s, a = self.k.call("GET", "/v1/cards/" + self.k.cards[0])
        self.assertEqual(s, 401)
        s, a = self.k.call("POST", "/v1/customers", {"card": self.k.cards[1]})
        self.assertEqual(s, 401, self.k.last_raw())
        self.assertEqual(self.buy(other, "R-3")["store"], "kiosk")  # others still pass
        rows = self.terminals()
        self.assertEqual([(r["store"], r["state"]) for r in rows],
                         [("main", "revoked"), ("kiosk", "active")])
        self.assertNotEqual(rows[0]["revoked"], "-")
        # After a restart too.
        self.k.stop()
        self.k.start()
        self.buy(self.k.key, "R-4", expect=401)

    def test_rotate_prints_a_new_key_and_the_old_one_is_refused(self):
        self.buy(self.k.key, "R-1")
        p = self.k.cli("terminal", "rotate", "DB", "--id", "1")
        new = p.stdout.strip()
        self.assertRegex(new, r"^kp_[0-9a-f]{48}$")
        self.assertNotEqual(new, self.k.key)
        self.buy(self.k.key, "R-2", expect=401)
        self.assertEqual(self.buy(new, "R-3")["store"], "main")
        row = self.terminals()[0]
        self.assertEqual((row["id"], row["store"], row["state"]), ("1", "main", "active"))
        self.assertNotEqual(row["rotated"], "-")

    def test_revoke_and_rotate_refuse_what_they_cannot_do(self):
        p = self.k.cli("terminal", "revoke", "DB", "--id", "9", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("kopilka terminal revoke: terminal: no terminal 9", p.stderr)
        p = self.k.cli("terminal", "revoke", "DB", "--id", "one", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--id must be a terminal id (a positive integer", p.stderr)
        self.k.cli("terminal", "revoke", "DB", "--id", "1")
        for verb in ("revoke", "rotate"):
            p = self.k.cli("terminal", verb, "DB", "--id", "1", check=False)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("terminal: terminal 1 was revoked at", p.stderr)
        self.buy(self.k.key, "R-1", expect=401)

    def test_last_used_is_kept_in_memory_and_written_at_stop(self):
        started = time.monotonic()
        self.buy(self.k.key, "R-1")
        self.buy(self.k.key, "R-2")
        rows = self.terminals()
        if time.monotonic() - started < 8:  # before the first 10-second flush
            self.assertEqual(rows[0]["last_used"], "-", "written per purchase")
        self.k.stop()
        self.assertEqual(self.terminals()[0]["last_used"], "2026-05-01T10:00:00Z")

    serve_args = ("--now", "2026-05-01T10:00:00Z")


class OldDatabase(unittest.TestCase):
    """A database made before keys could be revoked: terminals without
    rotated_at, last_used_at, revoked_at is brought up to date on open."""

    def test_old_terminals_table_is_migrated(self):
        k = harness.Kopilka(cards=1)
        self.addCleanup(k.close)
        harness.sqlite_only(self, "the terminals table of an older SQLite schema; "
                                  "PostgreSQL's schema began with today's")
        k.execute(
            "CREATE TABLE t2 (id INTEGER PRIMARY KEY, store TEXT NOT NULL,"
            " key_hash BLOB NOT NULL UNIQUE, created_at INTEGER NOT NULL);"
            "INSERT INTO t2 SELECT id, store, key_hash, created_at FROM terminals;"
            "DROP TABLE terminals; ALTER TABLE t2 RENAME TO terminals;"
            "DELETE FROM meta WHERE key IN ('terminals_schema', 'terminals_generation');")
        rows = k.cli("terminal", "list", "DB").stdout.splitlines()
        self.assertEqual(rows[0], HEADER)
        self.assertEqual(rows[1].split("\t")[:3], ["1", "main", "active"])
        k.start()
        s, _ = k.call("POST", "/v1/purchases", purchase_body(k.cards[0], "R-1"))
        self.assertEqual(s, 201, k.last_raw())
        k.cli("terminal", "revoke", "DB", "--id", "1")
        s, _ = k.call("POST", "/v1/purchases", purchase_body(k.cards[0], "R-2"))
        self.assertEqual(s, 401)


# ---------------------------------------------------------------------------
class TerminalKeysBackOffice(KeysTestCase):

    def test_admin_adds_lists_rotates_and_revokes_keys(self):
        s, a = self.as_("admin", "POST", "/v1/admin/terminals", {"store": "kiosk"})
        self.assertEqual(s, 201, self.k.last_raw())
        self.assertEqual((a["id"], a["store"], a["state"], a["revoked_at"]),
                         (2, "kiosk", "active", None))
        key = a["key"]
        self.assertRegex(key, r"^kp_[0-9a-f]{48}$")
        self.assertEqual(self.buy(key, "K-1")["store"], "kiosk")
        s, lst = self.as_("admin", "GET", "/v1/admin/terminals")
        self.assertEqual(s, 200)
        self.assertEqual([(t["id"], t["store"], t["state"]) for t in lst["terminals"]],
                         [(1, "main", "active"), (2, "kiosk", "active")])
        self.assertNotIn("key", lst["terminals"][0])
        self.assertEqual(lst["next_after"], 2)

        s, a = self.as_("admin", "POST", "/v1/admin/terminals/2/rotate")
        self.assertEqual(s, 200, self.k.last_raw())
        new = a["key"]
        self.assertNotEqual(new, key)
        self.buy(key, "K-2", expect=401)  # refused by this very server at once
        self.buy(new, "K-3")

        s, a = self.as_("admin", "POST", "/v1/admin/terminals/2/revoke")
        self.assertEqual((s, a["state"]), (200, "revoked"), self.k.last_raw())
        self.assertNotIn("key", a)
        self.buy(new, "K-4", expect=401)
        s, a = self.as_("admin", "POST", "/v1/admin/terminals/2/revoke")
        self.assertEqual((s, a["error"]["code"], a["error"]["field"]),
                         (409, "conflict", "terminal"))
        s, a = self.as_("admin", "POST", "/v1/admin/terminals/99/rotate")
        self.assertEqual((s, a["error"]["code"], a["error"]["field"]),
                         (404, "not_found", "terminal"))
        s, a = self.as_("admin", "POST", "/v1/admin/terminals", {"store": "#x"})
        self.assertEqual((s, a["error"]["field"]), (400, "store"))
        s, a = self.as_("admin", "POST", "/v1/admin/terminals", {"shop": "x"})
        self.assertEqual((s, a["error"]["field"]), (400, "shop"))
        self.buy(self.k.key, "M-1")  # the main key was never touched

        entries = [(e["actor"], e["role"], e["action"], e["target"]) for e in self.audit()
                   if e["action"].startswith("terminal.")]
        self.assertEqual(entries, [
            (OS_USER, "", "terminal.add", "terminal:1"),
            ("staff:k_admin", "admin", "terminal.add", "terminal:2"),
            ("staff:k_admin", "admin", "terminal.rotate", "terminal:2"),
            ("staff:k_admin", "admin", "terminal.revoke", "terminal:2")])

    def test_only_the_admin_manages_keys(self):
        for role in ("manager", "cashier", "auditor", "call_centre", "marketer"):
            for method, path, body in (("GET", "/v1/admin/terminals", None),
                                       ("POST", "/v1/admin/terminals", {"store": "x"}),
                                       ("POST", "/v1/admin/terminals/1/revoke", None)):
                s, a = self.as_(role, method, path, body)
                self.assertEqual((s, a["error"]["code"]), (403, "forbidden"),
                                 "%s %s %s" % (role, method, path))
        s, a = self.k.call("GET", "/v1/admin/terminals")  # a terminal key
        self.assertEqual(s, 403)
        self.buy(self.k.key, "R-1")


# ---------------------------------------------------------------------------
class Discount(KeysTestCase):

    def test_manager_sets_and_clears_the_discount_with_an_audit_entry(self):
        card = self.k.cards[2]
        path = "/v1/admin/cards/%s/discount" % card
        s, a = self.as_("manager", "POST", path, {"percent": "7.5"})
        self.assertEqual((s, a), (200, {"card": card, "personal_discount": "7.5%"}),
                         self.k.last_raw())
        self.assertEqual(self.k.card(card)["personal_discount"], "7.5%")
        s, a = self.as_("admin", "POST", path, {"percent": 10})
        self.assertEqual((s, a["personal_discount"]), (200, "10%"))
        s, a = self.as_("manager", "DELETE", path)
        self.assertEqual((s, a), (200, {"card": card, "personal_discount": None}))
        self.assertNotIn("personal_discount", self.k.card(card))
        entries = [(e["actor"], e["role"], e["action"], e["detail"])
                   for e in self.audit() if e["action"].startswith("discount.")]
        self.assertEqual(entries, [
            ("staff:k_manager", "manager", "discount.set", "card=%s percent=7.5%%" % card),
            ("staff:k_admin", "admin", "discount.set", "card=%s percent=10%%" % card),
            ("staff:k_manager", "manager", "discount.clear", "card=%s" % card)])

    def test_the_role_is_checked_and_bad_input_named(self):
        card = self.k.cards[2]
        path = "/v1/admin/cards/%s/discount" % card
        for role in ("cashier", "call_centre", "marketer", "auditor"):
            s, a = self.as_(role, "POST", path, {"percent": "5"})
            self.assertEqual((s, a["error"]["code"]), (403, "forbidden"), role)
            self.assertIn("discount is needed", a["error"]["message"])
        s, a = self.k.call("POST", path, {"percent": "5"})  # a till never sets a discount
        self.assertEqual((s, a["error"]["code"]), (403, "forbidden"))
        for bad in ("101", "7.555", -1, 5.5, None, "x"):
            s, a = self.as_("manager", "POST", path, {"percent": bad})
            self.assertEqual((s, a["error"]["field"]), (400, "percent"), repr(bad))
        s, a = self.as_("manager", "POST", "/v1/admin/cards/0000000000000/discount",
                        {"percent": "5"})
        self.assertEqual((s, a["error"]["code"]), (404, "unknown_card"))
        self.assertNotIn("personal_discount", self.k.card(card))
        self.assertEqual(self.audit("discount.set"), [])


# ---------------------------------------------------------------------------
class Audit(KeysTestCase):

    def test_every_manual_change_from_the_cli_is_audited_as_the_os_user(self):
        k = self.k
        card = k.cards[3]
        self.token("admin")  # its staff.add comes first
        env_user = os.environ.get("USER")
        os.environ["USER"] = "mallory"  # $USER is not who runs the command
        self.addCleanup(lambda: os.environ.__setitem__("USER", env_user) if env_user
                        else os.environ.pop("USER", None))
        k.cli("program", "load", "DB", program_with_customers(k.dir))
        k.cli("terminal", "add", "DB", "--store", "kiosk")
        k.cli("terminal", "rotate", "DB", "--id", "2")
        k.cli("terminal", "revoke", "DB", "--id", "2")
        k.cli("discount", "set", "DB", "--card", card, "--percent", "3")
        k.cli("discount", "clear", "DB", "--card", card)
        k.cli("birthday", "set", "DB", "--card", card, "--date", "1990-03-14")
        k.cli("event", "DB", "--card", card, "--type", "survey", "--id", "E-1")
        cards_csv = os.path.join(k.dir, "cards.csv")
        with open(cards_csv, "w", newline="") as f:
            csv.writer(f).writerows([["number", "state", "batch"], ["1C-0001", "issued", "1c"]])
        k.cli("import", "DB", "--cards", cards_csv)
        k.cli("cards", "issue", "DB", "--count", "2")
        got = [(e["actor"], e["action"]) for e in self.audit() if e["actor"].startswith("cli")]
        self.assertEqual(got[-10:], [(OS_USER, a) for a in (
            "program.load", "terminal.add", "terminal.rotate", "terminal.revoke", "discount.set",
            "discount.clear", "birthday.set", "event.apply", "import", "card.issue")])
        details = {e["action"]: (e["target"], e["detail"]) for e in self.audit()}
        self.assertEqual(details["program.load"][0], "program:3")
        self.assertEqual(details["event.apply"],
                         ("card:" + card, "type=survey id=E-1 store=cli"))
        self.assertEqual(details["discount.set"][1], "card=%s percent=3%%" % card)
        k.stop()
        p = k.verify()
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertNotIn("older ones without MACs", p.stdout)  # init's entry has its MAC too


# ---------------------------------------------------------------------------
class Birthday(KeysTestCase):

    def register(self, card, birthday):
        s, a = self.k.call("POST", "/v1/customers", {
            "card": card, "full_name": "Ivan Petrenko", "phone": "+380501234567",
            "birthday": birthday, "consent": CONSENT})
        self.assertEqual(s, 201, self.k.last_raw())
        return a["id"]

    def test_birthday_set_writes_the_customer_record(self):
        card = self.k.cards[1]
        cid = self.register(card, "1985-04-12")
        p = self.k.cli("birthday", "set", "DB", "--card", card, "--date", "1990-03-14")
        self.assertEqual(p.stdout.strip(), "card %s: birthday 1990-03-14 recorded in customer "
                         "%d's record" % (card, cid))
        s, a = self.as_("manager", "GET", "/v1/admin/customers/%d" % cid)
        self.assertEqual((s, a["birthday"]), (200, "1990-03-14"), self.k.last_raw())
        edits = [(e["actor"], e["target"], e["detail"]) for e in self.audit("customer.edit")]
        self.assertEqual(edits, [(OS_USER, "customer:%d" % cid, "fields=birthday")])

    def test_the_registration_replaces_a_birthday_set_before_it(self):
        k = self.k
        kept, dropped, replaced = k.cards[3], k.cards[4], k.cards[5]
        for card in (kept, dropped, replaced):
            p = k.cli("birthday", "set", "DB", "--card", card, "--date", "1990-03-14")
            self.assertIn("the card has no customer record yet", p.stdout)
        s, _ = k.call("POST", "/v1/customers", {"card": dropped, "full_name": "No Birthday",
                                                "phone": "+380501234001", "consent": CONSENT})
        self.assertEqual(s, 201, k.last_raw())
        s, _ = k.call("POST", "/v1/customers", {"card": replaced, "full_name": "Other Day",
                                                "phone": "+380501234002", "consent": CONSENT,
                                                "birthday": "1990-07-01"})
        self.assertEqual(s, 201, k.last_raw())
        k.stop()
        out = k.cli("tick", "DB", "--now", "2027-03-14T12:00:00Z").stdout
        self.assertIn("1 birthday grants", out)  # `kept` only: the records have no 14 March
        out = k.cli("tick", "DB", "--now", "2027-07-01T12:00:00Z").stdout
        self.assertIn("1 birthday grants", out)  # `replaced`, by its record's date
        k.start()
        grants = [[h["receipt"][:14] for h in k.card(c)["history"] if h["type"] == "grant"]
                  for c in (kept, dropped, replaced)]
        # (kept's March points expired after 3 months, by the July tick)
        self.assertEqual(grants, [["birthday-2000/"], [], ["birthday-2000/"]])

    def test_a_future_birthday_is_refused_as_in_the_api(self):
        card = self.k.cards[1]
        tomorrow = (datetime.datetime.now(datetime.timezone.utc)
                    + datetime.timedelta(days=2)).date().isoformat()
        p = self.k.cli("birthday", "set", "DB", "--card", card, "--date", tomorrow, check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("kopilka birthday set: date: must not be in the future", p.stderr)
        p = self.k.cli("birthday", "set", "DB", "--card", card, "--date", "1990-02-30",
                       check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("birthday set: date:", p.stderr)
        self.assertEqual(self.audit("birthday.set"), [])

    def test_no_new_key_file_for_a_database_with_sealed_data(self):
        self.register(self.k.cards[1], "1985-04-12")
        self.k.stop()
        key = self.k.key_file
        os.rename(key, key + ".saved")
        p = self.k.cli("birthday", "set", "DB", "--card", self.k.cards[2], "--date",
                       "1990-03-14", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("the key file %s is missing" % key, p.stderr)
        self.assertIn("restore %s (mode 0600)" % key, p.stderr)
        self.assertFalse(os.path.exists(key), "a new key file was made")
        os.rename(key + ".saved", key)
        self.k.cli("birthday", "set", "DB", "--card", self.k.cards[2], "--date", "1990-03-14")
        self.assertEqual(self.k.verify().returncode, 0)


# ---------------------------------------------------------------------------
class PartnerRole(KeysTestCase):

    def test_the_partner_role_needs_a_partner_of_the_program(self):
        # This program has no partners: nobody can be given the role
        # (test_partners.py binds partners of a coalition program).
        p = harness.run_cli(["staff", "add", self.k.db, "--login", "bank", "--role", "partner",
                             "--password-file", self.pwfile], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("partner: the running program has no partners, so nobody can be given "
                      "the partner role", p.stderr)
        s, a = self.as_("admin", "POST", "/v1/admin/staff",
                        {"login": "bank", "role": "partner", "password": PASSWORD})
        self.assertEqual((s, a["error"]["field"]), (400, "partner"))
        self.token("cashier")
        s, lst = self.as_("admin", "GET", "/v1/admin/staff")
        cashier = [x for x in lst["staff"] if x["login"] == "k_cashier"][0]
        s, a = self.as_("admin", "PATCH", "/v1/admin/staff/%d" % cashier["id"],
                        {"role": "partner"})
        self.assertEqual((s, a["error"]["field"]), (400, "partner"))
        s, a = self.as_("admin", "PATCH", "/v1/admin/staff/%d" % cashier["id"],
                        {"role": "auditor"})
        self.assertEqual(s, 200)

    def test_an_old_partner_account_cannot_log_in(self):
        self.token("cashier")
        self.k.execute("UPDATE staff SET role = 7 WHERE login = 'k_cashier'")
        s, a = self.k.call("POST", "/v1/admin/login", {"login": "k_cashier",
                                                       "password": PASSWORD}, key=None)
        self.assertEqual((s, a["error"]["code"], a["error"]["field"]), (403, "forbidden", "partner"))
        self.assertIn("this partner account is bound to no partner", a["error"]["message"])


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
