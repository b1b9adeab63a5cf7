"""
test_migrate.py: `kopilka migrate FROM.db postgresql://...` against a real
PostgreSQL (the cluster of $KOPILKA_TEST_PG, scripts/pg.sh).

A SQLite database is filled the way a shop fills it: two program versions,
purchases (one paid partly with points), a return, customers with personal
data, a family, staff and their sessions, manual adjustments, a blocked and
replaced card, a card batch, a partner event, a birthday, a scheduler run,
a revoked terminal and the audit log of all of it. It is migrated into an
empty PostgreSQL database, and `kopilka serve` on PostgreSQL must then
answer as the SQLite server did: the same balances, lots and histories, the
same customers' data (opened with the key file the migration copied), the
same audit entries, whose chain `kopilka verify` checks; a purchase retried
with an old receipt gets its old answer. New work continues (ids do not
collide). Refusals: a target that holds Kopilka data, a source a server is
serving, an existing --key-out file; a copy that fails half-way leaves no
row behind.

    KOPILKA_TEST_PG=$(scripts/pg.sh start) python3 test_migrate.py --kopilka build/kopilka

Needs psql (Debian's postgresql-client, a dependency of postgresql).
"""
import datetime
import hashlib
import json
import os
import sqlite3
import stat
import unittest

import harness
from harness import LABOR, PARTS

PASSWORD = "correct horse battery"
CONSENT = {"given": True, "text_version": "2026-01"}


def pg_base():
    if not os.environ.get("KOPILKA_TEST_PG"):
        raise unittest.SkipTest("KOPILKA_TEST_PG is not set (scripts/pg.sh start prints it)")
    return harness.pg_base()


_made = [0]


def pg_database(test):
    """A new empty database on the test cluster, dropped when the test ends;
    returns its location."""
    _made[0] += 1
    name = "kp_migrate_%d_%d" % (os.getpid(), _made[0])
    admin = pg_base() + "/postgres"
    harness.psql(admin, "CREATE DATABASE %s" % name)
    test.addCleanup(harness.psql, admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
    return pg_base() + "/" + name


def program_with_customers(directory):
    """Seed 004 case 2 (its partner-card grant makes an event) with a
    birthday grant (a scheduler job) and a customers section: version 2 of
    the database's program."""
    with open(harness.program_file("autoservice-case2.json"), "rb") as f:
        doc = json.load(f)
    doc["rules"].append({"id": "birthday-500", "kind": "grant", "on": "birthday", "points": 500})
    # A second currency: a card's KZT account moves with its link (issue 14).
    doc["currencies"] = [{"code": "KZT", "minor_per_point": 500}]
    doc["customers"] = {
        "unregistered": {"earn": True, "burn": False},
        "transfers": {"max_points": 5000, "daily_max_points": 8000, "kinds": ["regular"]},
        "consent_version": "2026-01",
        "attributes": [{"name": "car_model", "type": "string", "max_length": 64}],
    }
    path = os.path.join(directory, "program-v2.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def basket(labor, parts=0):
    lines = [{"sku": "LAB", "category": LABOR, "amount": labor}]
    if parts:
        lines.append({"sku": "OIL", "category": PARTS, "amount": parts})
    return lines


class Shop:
    """A SQLite database with some of everything, and what its server
    answered, to compare the migrated database's answers with."""

    def __init__(self):
        # The source is SQLite whatever backend the other suites run on.
        os.environ.pop("KOPILKA_TEST_STORE", None)
        self.k = harness.Kopilka(cards=8, program="autoservice-case2.json")
        try:
            self._fill()
        except Exception:
            self.k.close()
            raise

    def staff_token(self, login, role):
        if login not in self.tokens:
            s, a = self.k.call("POST", "/v1/admin/login", {"login": login, "password": PASSWORD},
                               key=None)
            assert s == 200, self.k.last_raw()
            self.tokens[login] = a["token"]
        return self.tokens[login]

    def ok(self, status, expect, what):
        if status != expect:
            raise AssertionError("%s -> %s %r" % (what, status, self.k.last_raw()))

    def _fill(self):
        k = self.k
        c = k.cards
        self.tokens = {}
        pw = os.path.join(k.dir, "password")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        k.cli("program", "load", "DB", program_with_customers(k.dir))
        for login, role in (("olga", "admin"), ("ivan", "manager"), ("petra", "auditor")):
            k.cli("staff", "add", "DB", "--login", login, "--role", role, "--password-file", pw)
        k.terminal_add("north")
        gone = k.terminal_add("south")
        listed = k.cli("terminal", "list", "DB").stdout.splitlines()
        south = [l.split("\t")[0] for l in listed if "\tsouth\t" in l][0]
        k.cli("terminal", "revoke", "DB", "--id", south)
        self.batch = k.cli("cards", "issue", "DB", "--count", "3", "--batch", "B1").stdout.split()
        k.cli("discount", "set", "DB", "--card", c[5], "--percent", "3.5")
        # Today in the program's +03:00 is this card's birthday: the tick
        # grants it and records the job's run.
        today = (datetime.datetime.now(datetime.timezone.utc)
                 + datetime.timedelta(hours=3)).date()
        k.cli("birthday", "set", "DB", "--card", c[6],
              "--date", "1992-%02d-%02d" % (today.month, today.day))
        assert "1 birthday grants" in k.cli("tick", "DB").stdout
        k.start(serve_args=("--tick", "0"))

        self.answers = {}
        for i, (card, labor, parts) in enumerate([(c[0], 500000, 200000), (c[1], 300000, 0),
                                                  (c[2], 100000, 900000), (c[0], 700000, 0),
                                                  (c[3], 250000, 120000)]):
            body = {"card": card, "receipt": "R-%d" % i, "lines": basket(labor, parts)}
            s, a = k.call("POST", "/v1/purchases", body)
            self.ok(s, 201, "purchase R-%d" % i)
            self.answers["R-%d" % i] = (body, a)
        s, a = k.call("POST", "/v1/returns", {"card": c[2], "receipt": "RET-1",
                                              "original_receipt": "R-2"})
        self.ok(s, 201, "return")
        s, a = k.call("POST", "/v1/events", {"id": "club-1", "card": c[3], "type": "partner_card",
                                             "token": "CLUB-7781"})
        self.ok(s, 201, "partner event")

        self.customers = []
        for card, name, phone, email in ((c[0], "Іван Петренко", "+380501234567", "ivan@example.com"),
                                         (c[1], "Олена Петренко", "+380501234568", None),
                                         (c[4], "Anna Smith", "+380501234569", "anna@example.com")):
            body = {"card": card, "full_name": name, "phone": phone, "consent": CONSENT,
                    "attributes": {"car_model": "Lada"}}
            if email:
                body["email"] = email
            s, a = k.call("POST", "/v1/customers", body)
            self.ok(s, 201, "register %s" % name)
            self.customers.append(a["id"])
        burn = {"card": c[0], "receipt": "R-burn", "burn": 300, "lines": basket(400000)}
        s, a = k.call("POST", "/v1/purchases", burn)
        self.ok(s, 201, "purchase with burn")
        assert a["burned"] > 0, a
        self.answers["R-burn"] = (burn, a)
        kzt = {"card": c[0], "receipt": "R-kzt", "currency": "KZT", "lines": basket(500000)}
        s, a = k.call("POST", "/v1/purchases", kzt)
        self.ok(s, 201, "purchase in KZT")
        assert a["currency"] == "KZT" and a["earned"] > 0, a
        self.answers["R-kzt"] = (kzt, a)
        manager = self.staff_token("ivan", "manager")
        s, fam = k.call("POST", "/v1/admin/families", {"owner": self.customers[0]}, key=manager)
        self.ok(s, 201, "family")
        s, _ = k.call("POST", "/v1/admin/families/%d/members" % fam["id"],
                      {"customer": self.customers[1], "may_spend": True}, key=manager)
        self.ok(s, 201, "family member")
        self.family = fam["id"]
        s, _ = k.call("POST", "/v1/admin/adjustments", {"card": c[4], "points": 750,
                                                        "reason": "goodwill", "key": "ADJ-1"},
                      key=manager)
        self.ok(s, 201, "adjustment")
        s, _ = k.call("POST", "/v1/admin/cards/%s/block" % c[4], {"reason": "lost"}, key=manager)
        self.ok(s, 200, "block")
        s, _ = k.call("POST", "/v1/admin/cards/%s/replace" % c[4],
                      {"reason": "lost", "new_card": c[7]}, key=manager)
        self.ok(s, 200, "replace")

        # Prize draws (issue 13): one closed, one whose period ends in two
        # seconds, closed on the target with the moved key.
        admin = self.staff_token("olga", "admin")
        soon = (datetime.datetime.now(datetime.timezone.utc)
                + datetime.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.draws = []
        for to in ("2020-02-01T00:00:00Z", soon):
            s, d = k.call("POST", "/v1/admin/draws", {
                "name": "Draw to " + to, "from": "2020-01-01T00:00:00Z", "to": to,
                "rule": {"kind": "visit"}, "prizes": [{"name": "Mug", "count": 2}]}, key=admin)
            self.ok(s, 201, "draw")
            self.draws.append(d["id"])
        s, _ = k.call("POST", "/v1/admin/draws/%d/close" % self.draws[0], key=admin)
        self.ok(s, 200, "draw close")
        self.draw_answers = [k.call("GET", "/v1/draws/%d" % i, key=None)[1] for i in self.draws]
        # Coalition settlement (issue 14): a past month closed, its statements
        # numbered; the target goes on numbering after them.
        s, self.settled = k.call("POST", "/v1/admin/settlement/periods/2020-01/close", key=admin)
        self.ok(s, 201, "settlement close")

        # The rewards catalog (issue 13): an item with its image and stock,
        # an order and a cancelled one (their ledger operations too).
        olga = self.staff_token("olga", "admin")
        s, mug = k.call("POST", "/v1/admin/catalog/items", {"name": "Mug", "price": 5},
                        key=olga)
        self.ok(s, 201, "catalog item")
        self.mug = mug["id"]
        self.png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
        s, _ = k.call("PUT", "/v1/admin/catalog/items/%d/image" % self.mug, self.png, key=olga,
                      headers={"Content-Type": "image/png"})
        self.ok(s, 200, "catalog image")
        s, _ = k.call("PUT", "/v1/admin/catalog/items/%d/stock" % self.mug,
                      {"stock": [{"store": "main", "qty": 5}]}, key=olga)
        self.ok(s, 200, "catalog stock")
        for key in ("CAT-1", "CAT-2"):
            s, o = k.call("POST", "/v1/orders", {"card": c[0], "item_id": self.mug, "key": key})
            self.ok(s, 201, "catalog order " + key)
        s, _ = k.call("POST", "/v1/orders/%d/cancel" % o["id"])
        self.ok(s, 200, "catalog cancel")

        # What the SQLite server answers, read before the migration.
        self.cards = {n: k.card(n) for n in c + self.batch}
        self.customer_data = {}
        for cid in self.customers:
            s, a = k.call("GET", "/v1/admin/customers/%d" % cid, key=manager)
            self.ok(s, 200, "customer %d" % cid)
            self.customer_data[cid] = a
        s, self.family_data = k.call("GET", "/v1/admin/families/%d" % self.family, key=manager)
        self.ok(s, 200, "family")
        body, first = self.answers["R-1"]
        s, self.replay = k.call("POST", "/v1/purchases", body)
        self.ok(s, 200, "replay of R-1")
        # A sale without a card (issue 12): a row of the sales history.
        self.anonymous_body = {"receipt": "ANON-1", "lines": [
            {"sku": "OIL-1", "category": "parts", "amount": 4200, "qty": 2}]}
        s, self.anonymous = k.call("POST", "/v1/purchases", self.anonymous_body)
        self.ok(s, 201, "sale without a card")
        s, log = k.call("GET", "/v1/admin/audit?limit=1000", key=self.staff_token("petra", "auditor"))
        self.ok(s, 200, "audit")
        self.audit = log["entries"]
        k.stop()
        self.db_key = k.db + ".key"


class MigrateCase(unittest.TestCase):
    shop = None

    @classmethod
    def setUpClass(cls):
        pg_base()
        if MigrateCase.shop is None:
            MigrateCase.shop = Shop()

    def migrate(self, source, target, *extra, expect=0):
        p = harness.run_cli(["migrate", source, target] + list(extra), timeout=300, check=False)
        self.assertEqual(p.returncode, expect, "migrate exited %d\nstdout: %s\nstderr: %s"
                         % (p.returncode, p.stdout, p.stderr))
        return p

    def copy_of_source(self, name, *statements):
        """A copy of the shop's database (`kopilka backup`, with its key
        file), spoiled by `statements`; removed when the test ends."""
        path = os.path.join(self.shop.k.dir, name)
        self.addCleanup(lambda: [os.unlink(path + s) for s in ("", ".key", "-wal", "-shm",
                                                                 ".oplog-0", ".oplog-1")
                                 if os.path.exists(path + s)])
        harness.run_cli(["backup", self.shop.k.db, path], timeout=120)
        with sqlite3.connect(path) as db:
            for sql in statements:
                db.execute(sql)
        return path

    def kopilka_tables(self, location):
        return int(harness.psql(location, "SELECT count(*) FROM pg_tables WHERE tablename IN "
                                          "('accounts', 'ops', 'audit', 'customers')"))

    def rows(self, location, table):
        return int(harness.psql(location, "SELECT count(*) FROM %s" % table))


class Moves(MigrateCase):

    def test_a_migrated_database_answers_as_the_original_did(self):
        shop = self.shop
        target = pg_database(self)
        key_out = os.path.join(shop.k.dir, "moved.key")
        self.addCleanup(lambda: os.path.exists(key_out) and os.unlink(key_out))
        # A partner's staff (issue 14): its partner moves with it.
        with sqlite3.connect(shop.k.db) as src:
            src.execute("INSERT OR IGNORE INTO staff(login, role, password_hash, active, "
                        "created_at, partner) VALUES ('washer', 7, 'x', 1, 0, 'wash')")
        p = self.migrate(shop.k.db, target, "--key-out", key_out)
        # The key's whereabouts said; rows per table below.
        self.assertIn("KOPILKA_KEY_FILE=%s" % key_out, p.stdout)
        self.assertIn("committed", p.stdout)
        with open(key_out, "rb") as a, open(shop.db_key, "rb") as b:
            self.assertEqual(a.read(), b.read())
        self.assertEqual(stat.S_IMODE(os.stat(key_out).st_mode), 0o600)
        with sqlite3.connect(shop.k.db) as src:
            for table in ("ops", "postings", "lots", "audit", "customers", "staff", "sessions",
                          "families", "family_members", "card_events", "card_batches",
                          "programs", "terminals", "events", "job_runs", "account_birthdays",
                          "account_rules", "customer_name_ix", "card_info",
                          # The outbox (issue 10): its tables exist on both sides
                          # and every row of them moves.
                          "notify_events", "messages", "notify_prefs", "notify_templates",
                          "webhook_endpoints", "login_codes", "customer_sessions",
                          # The cabinet's family invitations (issue 11).
                          "family_invitations",
                          # The sales history (issue 12).
                          "sales", "sale_lines",
                          # The rewards catalog (issue 13).
                          "catalog_items", "catalog_images", "catalog_stock",
                          "catalog_orders",
                          # Prize draws (issue 13).
                          "draws",
                          # Coalition settlement (issue 14).
                          "settle_entries", "settle_state", "settle_periods",
                          "settle_statements",
                          # A card's accounts per currency (issue 14).
                          "accounts", "account_currencies"):
                n = src.execute("SELECT count(*) FROM %s" % table).fetchone()[0]
                self.assertEqual(self.rows(target, table), n, table)
                self.assertRegex(p.stdout, r"(?m)^%s +%d rows$" % (table, n))
            staff = src.execute("SELECT login, role, partner FROM staff ORDER BY id").fetchall()
            self.assertIn(("washer", 7, "wash"), staff)
            self.assertEqual(harness.psql(target, "SELECT login, role, partner FROM staff "
                                          "ORDER BY id").split(),
                             ["%s|%d|%s" % row for row in staff])
            # The database keeps its identity and its terminal generation.
            for key in ("db_id", "terminals_generation"):
                value = src.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]
                self.assertEqual(harness.psql(target, "SELECT value FROM meta WHERE key = '%s'"
                                              % key).strip(), str(value), key)

        # Every command and the server on the target use the key it names.
        pg = harness.Kopilka.existing(target, shop.k.key, key_out)
        self.addCleanup(pg.close)
        v = pg.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertIn("MAC", v.stdout)
        pg.start(serve_args=("--tick", "0"))
        for number, before in shop.cards.items():
            s, after = pg.call("GET", "/v1/cards/" + number)
            self.assertEqual((s, after), (200, before), number)
        s, a = pg.call("POST", "/v1/admin/login", {"login": "ivan", "password": PASSWORD}, key=None)
        self.assertEqual(s, 200, "staff passwords moved: %r" % (a,))
        manager = a["token"]
        for cid, before in shop.customer_data.items():
            s, after = pg.call("GET", "/v1/admin/customers/%d" % cid, key=manager)
            self.assertEqual((s, after), (200, before), "customer %d" % cid)
        s, fam = pg.call("GET", "/v1/admin/families/%d" % shop.family, key=manager)
        self.assertEqual((s, fam), (200, shop.family_data))
        # The same old receipt gets the same old answer, not a new purchase.
        body, first = shop.answers["R-1"]
        s, again = pg.call("POST", "/v1/purchases", body)
        self.assertEqual((s, again), (200, shop.replay))
        s, again = pg.call("POST", "/v1/purchases", shop.anonymous_body)
        self.assertEqual((s, again), (200, dict(shop.anonymous, replayed=True)))
        self.assertEqual(pg.call("GET", "/v1/cards/" + body["card"])[1]["balance"],
                         shop.cards[body["card"]]["balance"])
        s, a = pg.call("POST", "/v1/admin/login", {"login": "petra", "password": PASSWORD},
                       key=None)
        s, log = pg.call("GET", "/v1/admin/audit?limit=1000", key=a["token"])
        self.assertEqual(s, 200)
        self.assertEqual(log["entries"][:len(shop.audit)], shop.audit)

        # Draws answer as before; the open one's sealed seed opens with the
        # moved key when it is closed there, and matches its commitment.
        for i, before in zip(shop.draws, shop.draw_answers):
            self.assertEqual(pg.call("GET", "/v1/draws/%d" % i, key=None), (200, before))
        s, a = pg.call("POST", "/v1/admin/login", {"login": "olga", "password": PASSWORD},
                       key=None)
        s, closed = pg.call("POST", "/v1/admin/draws/%d/close" % shop.draws[1], key=a["token"])
        self.assertEqual(s, 200, closed)
        self.assertEqual(hashlib.sha256(bytes.fromhex(closed["seed"])).hexdigest(),
                         shop.draw_answers[1]["commitment"])
        # The closed period answers as before; the next close numbers on.
        s, period = pg.call("GET", "/v1/admin/settlement/periods/2020-01", key=a["token"])
        self.assertEqual((s, period), (200, shop.settled))
        s, feb = pg.call("POST", "/v1/admin/settlement/periods/2020-02/close", key=a["token"])
        self.assertEqual(s, 201, feb)
        self.assertEqual(feb["first_number"],
                         shop.settled["first_number"] + shop.settled["statements_count"])
        # The catalog's image moved byte for byte; a new order takes the next id.
        c = pg.client(key=None)
        s, _ = c.call("GET", "/v1/catalog/items/%d/image" % shop.mug, key=None)
        self.assertEqual((s, c.last_raw), (200, shop.png))
        c.close()
        s, o = pg.call("POST", "/v1/orders", {"card": shop.k.cards[0], "item_id": shop.mug,
                                              "key": "PG-CAT"})
        self.assertEqual((s, o["id"]), (201, 3), o)
        # New work goes on where the old left off: new ids, no collision.
        card = shop.k.cards[3]
        s, a = pg.call("POST", "/v1/purchases", {"card": card, "receipt": "PG-1",
                                                 "lines": basket(100000)})
        self.assertEqual(s, 201, a)
        self.assertEqual(a["balance"], shop.cards[card]["balance"] + a["earned"])
        s, a = pg.call("POST", "/v1/customers", {"card": shop.k.cards[5], "full_name": "New One",
                                                 "phone": "+380501230000", "consent": CONSENT})
        self.assertEqual(s, 201, a)
        self.assertGreater(a["id"], max(shop.customers))
        pg.stop()
        v = pg.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)


class Refuses(MigrateCase):

    def test_a_target_that_holds_kopilka_data_is_refused_and_left_alone(self):
        target = pg_database(self)
        self.migrate(self.shop.k.db, target)
        ops = self.rows(target, "ops")
        p = self.migrate(self.shop.k.db, target, expect=1)
        self.assertIn("already holds Kopilka data", p.stderr)
        self.assertEqual(self.rows(target, "ops"), ops)

    def test_a_source_a_server_is_serving_is_refused(self):
        target = pg_database(self)
        self.shop.k.start(serve_args=("--tick", "0"))
        try:
            p = self.migrate(self.shop.k.db, target, expect=1)
        finally:
            self.shop.k.stop()
        self.assertIn("server", p.stderr)
        self.assertEqual(self.kopilka_tables(target), 0, "nothing made in the target")

    def test_an_existing_key_file_is_never_overwritten(self):
        target = pg_database(self)
        p = self.migrate(self.shop.k.db, target, "--key-out", self.shop.db_key, expect=2)
        self.assertIn("--key-out", p.stderr)
        self.assertEqual(self.kopilka_tables(target), 0)

    def test_a_copy_that_fails_half_way_leaves_no_row(self):
        # A value the target's text column cannot hold, in a table copied
        # after the ledger's.
        broken = self.copy_of_source("broken.db", "UPDATE job_runs SET detail = x'00ff' "
                                     "WHERE id = (SELECT max(id) FROM job_runs)")
        target = pg_database(self)
        p = self.migrate(broken, target, expect=1)
        self.assertIn("job_runs.detail", p.stderr)
        self.assertIn("nothing was committed", p.stderr)
        for table in ("programs", "accounts", "ops", "audit", "job_runs"):
            self.assertEqual(self.rows(target, table), 0, table)
        # The empty schema left behind is no obstacle: the whole copy goes in.
        self.migrate(self.shop.k.db, target)
        self.assertGreater(self.rows(target, "ops"), 0)

    def test_a_source_that_does_not_verify_is_refused_before_the_target_is_touched(self):
        bad = self.copy_of_source("bad.db", "UPDATE accounts SET balance = balance + 7 "
                                  "WHERE id = (SELECT max(account_id) FROM lots)")
        target = pg_database(self)
        p = self.migrate(bad, target, expect=1)
        self.assertIn("does not verify", p.stderr)
        self.assertIn("differs from", p.stderr)
        self.assertEqual(self.kopilka_tables(target), 0)

    def test_a_table_the_target_lacks_is_refused(self):
        odd = self.copy_of_source("odd.db", "CREATE TABLE notes (id INTEGER PRIMARY KEY, "
                                  "text TEXT)", "INSERT INTO notes(text) VALUES ('keep me')")
        target = pg_database(self)
        p = self.migrate(odd, target, expect=1)
        self.assertIn("table notes", p.stderr)
        self.assertIn("no counterpart", p.stderr)
        self.assertEqual(self.rows(target, "programs"), 0)


def tearDownModule():
    if MigrateCase.shop is not None:
        MigrateCase.shop.k.close()


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
