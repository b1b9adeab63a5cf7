"""
test_durability.py: black-box tests of what the server does when its
storage is damaged or fails (docs/api.md "Health" and "When storage fails",
docs/architecture.md "Recovery"), against a real `kopilka serve`:

  - a bit flipped in an operation-log record the database does not hold
    yet, with readable records after it: the server refuses to start and
    says which operations would be lost and how to go on (`kopilka recover
    DB --accept-loss`), `verify` refuses too, and nothing is lost silently;
    a torn tail (the log cut inside a record) starts and recovers every
    record before the tear;
  - after a storage failure (a file-size limit) /health and /ready say so
    with a reason, /live stays 200, card lookups answer 503 "degraded", and
    every refused purchase tells the till to send the same receipt again,
    which then counts it exactly once; a missing key file makes /health
    "degraded";
  - a database with damaged pages is refused at start (SQLite's quick
    check) and `verify` / `verify --full` list the damage; a read-only
    database or folder says "read-only"; the database and its journal are
    created readable by their owner only; a customer whose personal data
    cannot be opened with the key file is a 503 with the reason.

    python3 test_durability.py --kopilka build/kopilka [unittest options]
"""
import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import threading
import time
import unittest

import harness

MAGIC = 0x4c4f504b  # "KPOL"
HEADER = 32


def purchase_body(card, receipt, amount=100000):
    return {"card": card, "receipt": receipt,
            "lines": [{"sku": "LAB-1", "category": harness.LABOR, "amount": amount}]}


def meta(k, key):
    """A value of the database's meta table."""
    rows = k.query("SELECT value FROM meta WHERE key = ?", (key,))
    return rows[0][0] if rows else None


def oplog_records(k):
    """Every record with a good hash in DB.oplog-0/-1 of Kopilka k: (seq, file, offset,
    payload length), by sequence number. The hash is BLAKE2b-128 keyed with
    the database's identity (include/kopilka/oplog.h)."""
    key = bytes.fromhex(meta(k, "db_id"))
    found = []
    for i in (0, 1):
        with open("%s.oplog-%d" % (k.db, i), "rb") as f:
            data = f.read()
        off = 0
        while off + HEADER <= len(data):
            magic, length, seq = struct.unpack_from("<IIQ", data, off)
            padded = (length + 7) & ~7
            ok = magic == MAGIC and 0 < length and off + HEADER + padded <= len(data)
            if ok:
                h = hashlib.blake2b(key=key, digest_size=16)
                h.update(data[off:off + 16])
                h.update(data[off + HEADER:off + HEADER + length])
                ok = h.digest() == data[off + 16:off + 32]
            if not ok:
                off += 8
                continue
            found.append((seq, i, off, length))
            off += HEADER + padded
    return sorted(found)


class Durability(unittest.TestCase):

    def setUp(self):
        harness.sqlite_only(self, "SQLite's operation log and its recovery (on PostgreSQL "
                                  "an acknowledged purchase is committed: test_pos.py Crash)")
        self.k = harness.Kopilka(cards=8)
        self.addCleanup(self.k.close)

    THREADS = 16

    def crash_with_records_past_the_mark(self, wanted=20, attempts=10):
        """Purchases from 16 threads, then kill -9 while the database has
        not committed the last ones (they are only in the operation log:
        the writer commits the database after 2 ms without work, so the
        threads keep it busy). Returns (acknowledged receipts, the mark,
        records numbered past it)."""
        for attempt in range(attempts):
            self.k.start()
            acked = []
            lock = threading.Lock()
            stop = threading.Event()

            def worker(t):
                cl = self.k.client()
                i = 0
                try:
                    while not stop.is_set():
                        body = purchase_body(self.k.cards[t % 8],
                                             "C%d-%d-%d-%d" % (attempt, len(acked), t % 8,
                                                               i * 2 + t // 8))
                        i += 1
                        try:
                            s, a = cl.call("POST", "/v1/purchases", body)
                        except OSError:
                            return
                        if s == 201:
                            with lock:
                                acked.append(body["receipt"])
                except Exception:
                    return
                finally:
                    cl.close()

            threads = [threading.Thread(target=worker, args=(t,)) for t in range(self.THREADS)]
            for t in threads:
                t.start()
            time.sleep(1.2)
            self.k.kill9()
            stop.set()
            for t in threads:
                t.join(30)
            mark = int(meta(self.k, "oplog_seq") or 0)
            past = [r for r in oplog_records(self.k) if r[0] > mark]
            if len(past) >= wanted:
                return acked, mark, past
            # Everything was committed: recover and try again.
            self.k.start()
            self.k.stop()
        self.fail("no crash left %d records past the database's mark in %d tries"
                  % (wanted, attempts))

    def flip_a_bit_mid_log(self, past):
        """Flips a payload bit of the middle record of `past`; returns its
        sequence number and receipt (src/service/durable.c: format, type,
        time, program version, store, answer hash, card, receipt)."""
        seq, f, off, length = past[len(past) // 2]
        path = "%s.oplog-%d" % (self.k.db, f)
        with open(path, "rb") as fh:
            fh.seek(off + HEADER)
            payload = fh.read(length)
        pos = 18
        n = struct.unpack_from("<H", payload, pos)[0]
        pos += 2 + n + 16
        n = struct.unpack_from("<H", payload, pos)[0]
        pos += 2 + n
        n = struct.unpack_from("<H", payload, pos)[0]
        receipt = payload[pos + 2:pos + 2 + n].decode()
        self.unreadable_receipt = receipt
        with open(path, "r+b") as fh:
            fh.seek(off + HEADER + length // 2)
            b = fh.read(1)
            fh.seek(off + HEADER + length // 2)
            fh.write(bytes([b[0] ^ 0x04]))
        return seq

    def test_a_flipped_bit_mid_log_refuses_to_start_and_says_what_is_lost(self):
        acked, mark, past = self.crash_with_records_past_the_mark()
        seq = self.flip_a_bit_mid_log(past)
        last = past[-1][0]
        lost = last - seq + 1
        with self.assertRaises(RuntimeError) as cm:
            self.k.start()
        msg = str(cm.exception)
        self.assertIn("the operation log is damaged: record %d cannot be read, yet %d later "
                      "records up to %d can" % (seq, lost - 1, last), msg)
        self.assertIn("would silently lose the acknowledged operations %d to %d" % (seq, last),
                      msg)
        self.assertIn("kopilka recover %s --accept-loss" % self.k.db, msg)
        # verify refuses too, and neither changed the database.
        v = self.k.verify()
        self.assertEqual(v.returncode, 2, v.stdout + v.stderr)
        self.assertIn("record %d cannot be read" % seq, v.stderr)
        self.assertEqual(int(meta(self.k, "oplog_seq") or 0), mark)
        # Without --accept-loss, recover explains and changes nothing.
        r = self.k.cli("recover", "DB", check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("acknowledged operations %d to %d" % (seq, last), r.stderr)
        self.assertEqual(int(meta(self.k, "oplog_seq") or 0), mark)
        # The way forward: keep what is before the damage, list the rest.
        r = self.k.cli("recover", "DB", "--accept-loss")
        lost_lines = [l for l in r.stdout.splitlines() if l.startswith("LOST ")]
        self.assertEqual(len(lost_lines), lost - 1, r.stdout)
        self.assertIn("recovered %d operations before the damage; of operations %d to %d after "
                      "it, 1 cannot be read, 0 were salvaged and %d are lost"
                      % (seq - 1 - mark, seq, last, lost - 1), r.stdout)
        lost_receipts = {l.split("receipt=")[1].split(" -- ")[0] for l in lost_lines}
        self.k.start()
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # Every acknowledged receipt not listed (and not the unreadable one)
        # is there: sent again, it is answered from the database.
        kept = [rc for rc in acked if rc not in lost_receipts]
        replayed = 0
        for rc in kept[:200] + kept[-200:]:
            t = int(rc.split("-")[2])
            s, a = self.k.call("POST", "/v1/purchases", purchase_body(self.k.cards[t], rc))
            self.assertIn(s, (200, 201), self.k.last_raw())
            replayed += s == 200
        self.assertGreater(replayed, 0)
        for l in lost_lines[:20]:
            rc = l.split("receipt=")[1].split(" -- ")[0]
            t = int(rc.split("-")[2])
            s, a = self.k.call("POST", "/v1/purchases", purchase_body(self.k.cards[t], rc))
            self.assertEqual(s, 201, "a dropped receipt is priced anew: %r" % self.k.last_raw())

    def test_salvage_applies_every_readable_record_after_the_damage(self):
        acked, mark, past = self.crash_with_records_past_the_mark()
        seq = self.flip_a_bit_mid_log(past)
        last = past[-1][0]
        r = self.k.cli("recover", "DB", "--accept-loss", "--salvage")
        salvaged = [l for l in r.stdout.splitlines() if l.startswith("SALVAGED ")]
        self.assertEqual(len(salvaged), last - seq, r.stdout)
        self.assertIn("of operations %d to %d after it, 1 cannot be read, %d were salvaged and "
                      "0 are lost" % (seq, last, last - seq), r.stdout)
        self.k.start()
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        # Every acknowledged receipt but the unreadable one is in the
        # database: sent again, each is answered from it (200).
        new = []
        for rc in acked:
            t = int(rc.split("-")[2])
            s, a = self.k.call("POST", "/v1/purchases", purchase_body(self.k.cards[t], rc))
            self.assertIn(s, (200, 201), self.k.last_raw())
            if s == 201:
                new.append(rc)
        self.assertEqual(set(new) - {self.unreadable_receipt}, set())
        # The unreadable one was not applied: sent again, it is new.
        t = int(self.unreadable_receipt.split("-")[2])
        s, _ = self.k.call("POST", "/v1/purchases",
                           purchase_body(self.k.cards[t], self.unreadable_receipt))
        self.assertIn(s, (200, 201) if self.unreadable_receipt in new else (201,),
                      self.k.last_raw())

    def test_a_torn_tail_starts_and_recovers_everything_before_the_tear(self):
        acked, mark, past = self.crash_with_records_past_the_mark()
        seq, f, off, length = past[-1]
        # Cut the file in the middle of its last record: a torn write.
        path = "%s.oplog-%d" % (self.k.db, f)
        os.truncate(path, off + HEADER // 2 + length // 2)
        self.k.start()
        self.assertEqual(int(meta(self.k, "oplog_seq")), seq - 1)
        self.assertIn("recovered %d operations from the operation log" % (seq - 1 - mark),
                      self.k.log_tail())
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)


class StorageFailure(unittest.TestCase):
    """The server's files cannot grow past a limit (RLIMIT_FSIZE): writes
    fail as on a full disk."""

    def setUp(self):
        self.k = harness.Kopilka(cards=8)
        self.addCleanup(self.k.close)

    def health(self, path):
        st, body = self.k.call("GET", path, key=None)
        return st, body

    def test_health_ready_lookups_and_503s_tell_the_truth_after_a_storage_failure(self):
        harness.sqlite_only(self, harness.FULL_DISK_IS_SQLITES)
        self.k.start()
        self.assertEqual(self.health("/health"), (200, {"status": "ok", "problems": []}))
        self.assertEqual(self.health("/ready"), (200, {"status": "ok", "problems": []}))
        self.assertEqual(self.health("/live"), (200, {"status": "ok", "problems": []}))
        self.k.stop()
        sizes = [os.path.getsize(p) for p in (self.k.db, self.k.db + "-wal")
                 if os.path.exists(p)]
        self.k.start(file_size_limit=max(sizes) + 256 * 1024)
        acked, refused = [], []
        cl = self.k.client()
        for i in range(20000):
            body = purchase_body(self.k.cards[i % 8], "DF-%d" % i)
            st, a = cl.call("POST", "/v1/purchases", body)
            if st == 201:
                acked.append(body)
            else:
                self.assertEqual(st, 503, cl.last_raw)
                refused.append((body, a["error"]))
                if len(refused) == 3:
                    break
        cl.close()
        self.assertEqual(len(refused), 3, "the file-size limit was never reached")
        # Storage failed under a purchase (its outcome is not known) or
        # before it (it was not run): either way the till is told to send
        # the same receipt again, which is safe.
        for _, err in refused:
            self.assertEqual(err["code"], "unavailable")
            self.assertIn("send the same receipt again", err["message"])
            self.assertTrue(
                "its outcome is not known" in err["message"]
                or "not run (nothing of it was written)" in err["message"], err)
        # Health tells the truth; a load balancer takes tills elsewhere.
        st, h = self.health("/health")
        self.assertEqual((st, h["status"], h["problems"][0]["check"]), (503, "failed", "storage"))
        self.assertIn("restart the server", h["problems"][0]["reason"])
        st, r = self.health("/ready")
        self.assertEqual((st, r["status"]), (503, "failed"))
        self.assertEqual(self.health("/live"), (200, {"status": "ok", "problems": []}))
        # A card lookup does not answer from the rolled-back view.
        st, c = self.k.call("GET", "/v1/cards/" + self.k.cards[0])
        self.assertEqual(st, 503, self.k.last_raw())
        self.assertEqual(c["error"]["code"], "unavailable")
        self.assertIn("the server is degraded: storage failed", c["error"]["message"])
        self.k.stop()
        # With room again: every acknowledged purchase is there, and each
        # refused one, sent again, is either answered from the database
        # (it was written) or applied now: never twice.
        self.k.start()
        self.assertEqual(self.health("/health"), (200, {"status": "ok", "problems": []}))
        for body in acked:
            st, _ = self.k.call("POST", "/v1/purchases", body)
            self.assertEqual(st, 200, self.k.last_raw())
        for body, _ in refused:
            st, _ = self.k.call("POST", "/v1/purchases", body)
            self.assertIn(st, (200, 201), self.k.last_raw())
            st, _ = self.k.call("POST", "/v1/purchases", body)
            self.assertEqual(st, 200, self.k.last_raw())
        total = sum(self.k.card(c)["purchases"] for c in self.k.cards)
        self.assertEqual(total, len(acked) + len(refused))
        v = self.k.verify()
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)

    def test_a_missing_key_file_makes_health_degraded_not_ready(self):
        os.rename(self.k.key_file, self.k.key_file + "-away")
        self.k.start()
        st, h = self.health("/health")
        self.assertEqual((st, h["status"], len(h["problems"])), (503, "degraded", 1))
        self.assertEqual(h["problems"][0]["check"], "key")
        self.assertIn("no key file %s" % self.k.key_file, h["problems"][0]["reason"])
        self.assertEqual(self.health("/ready"), (200, {"status": "ok", "problems": []}))
        self.k.stop()
        os.rename(self.k.key_file + "-away", self.k.key_file)
        self.k.start()
        self.assertEqual(self.health("/health"), (200, {"status": "ok", "problems": []}))


PASSWORD = "correct horse battery"


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class FilesAndKeys(unittest.TestCase):

    def setUp(self):
        self.k = harness.Kopilka(cards=2)
        self.addCleanup(self.k.close)

    def test_database_and_journal_are_readable_by_their_owner_only(self):
        self.assertEqual(mode(self.k.key_file), 0o600)
        harness.sqlite_only(self, "the modes of SQLite's files (PostgreSQL keeps its own)")
        self.assertEqual(mode(self.k.db), 0o600)
        self.k.start()
        s, _ = self.k.call("POST", "/v1/purchases", purchase_body(self.k.cards[0], "M-1"))
        self.assertEqual(s, 201, self.k.last_raw())
        for suffix in ("-wal", "-shm", ".key", ".oplog-0", ".oplog-1"):
            self.assertEqual(mode(self.k.db + suffix), 0o600, suffix)
        # A database made before (0644) starts with a warning.
        self.k.stop()
        os.chmod(self.k.db, 0o644)
        self.k.start()
        self.assertIn("%s is readable or writable by others (mode 0644)" % self.k.db,
                      self.k.log_tail())

    def test_a_damaged_database_is_refused_at_start_and_verify_lists_the_damage(self):
        harness.sqlite_only(self, "pages of the SQLite file damaged, found by its quick check")
        self.k.issue_cards(3000)
        size = os.path.getsize(self.k.db)
        self.assertEqual(os.path.getsize(self.k.db + "-wal") if os.path.exists(
            self.k.db + "-wal") else 0, 0)
        # Garbage over 8 pages in the middle, their headers too: an empty
        # table's page (the schema has several) is damaged as surely as one
        # full of cards.
        with open(self.k.db, "r+b") as f:
            for page in range(size // 4096 // 2, size // 4096 // 2 + 8):
                f.seek(page * 4096)
                f.write(bytes((i * 7919) % 251 for i in range(2000)))
        with self.assertRaises(RuntimeError) as cm:
            self.k.start()
        msg = str(cm.exception)
        # Found by the quick check at start, or, when a damaged page is one
        # the open itself reads (the schema, the meta table), at open.
        self.assertTrue("failed SQLite's quick check" in msg or "could not read" in msg, msg)
        self.assertIn("the database file is damaged", msg)
        self.assertIn("kopilka verify %s --full" % self.k.db, msg)
        for args in (["verify", self.k.db], ["verify", self.k.db, "--full"]):
            v = harness.run_cli(args, check=False)
            self.assertEqual(v.returncode, 1, v.stdout + v.stderr)
            self.assertIn("FAIL the database file is damaged: ", v.stdout)
            self.assertNotIn(": ok (", v.stdout)

    def health(self, path):
        return self.k.call("GET", path, key=None)

    def damage_middle_pages(self):
        """Garbage over 8 pages in the middle of the file (cards' pages)."""
        size = os.path.getsize(self.k.db)
        with open(self.k.db, "r+b") as f:
            for page in range(size // 4096 // 2, size // 4096 // 2 + 8):
                f.seek(page * 4096)
                f.write(bytes((i * 7919) % 251 for i in range(2000)))

    def start_checking_beside(self):
        """Starts the server as if its file were too large to check before
        serving (KOPILKA_FILE_CHECK_AT_START_MAX=0)."""
        old = os.environ.get("KOPILKA_FILE_CHECK_AT_START_MAX")
        os.environ["KOPILKA_FILE_CHECK_AT_START_MAX"] = "0"
        try:
            self.k.start()
        finally:
            if old is None:
                del os.environ["KOPILKA_FILE_CHECK_AT_START_MAX"]
            else:
                os.environ["KOPILKA_FILE_CHECK_AT_START_MAX"] = old

    def test_a_large_file_is_checked_beside_the_tills(self):
        harness.sqlite_only(self, "SQLite's quick check of the file")
        self.start_checking_beside()
        deadline = time.monotonic() + 30
        while "passed SQLite's quick check" not in self.k.log_tail():
            self.assertLess(time.monotonic(), deadline, self.k.log_tail())
            time.sleep(0.05)
        self.assertIn("SQLite's quick check of it runs beside the tills", self.k.log_tail())
        s, _ = self.k.call("POST", "/v1/purchases", purchase_body(self.k.cards[0], "Q-1"))
        self.assertEqual(s, 201, self.k.last_raw())
        self.assertEqual(self.health("/health"), (200, {"status": "ok", "problems": []}))

    def test_a_large_damaged_file_starts_then_refuses_writes_when_its_check_ends(self):
        harness.sqlite_only(self, "pages of the SQLite file damaged, found by its quick check")
        self.k.issue_cards(3000)
        self.damage_middle_pages()
        try:
            self.start_checking_beside()
        except RuntimeError as err:
            # A damaged page the open itself reads: refused at once.
            self.assertIn("could not read", str(err))
            return
        deadline = time.monotonic() + 30
        while True:
            st, h = self.health("/health")
            if st == 503:
                break
            self.assertLess(time.monotonic(), deadline, self.k.log_tail())
            time.sleep(0.05)
        self.assertEqual((h["status"], h["problems"][0]["check"]), ("failed", "storage"))
        self.assertIn("the database file is damaged (problems found by SQLite's quick check",
                      h["problems"][0]["reason"])
        self.assertEqual(self.health("/ready")[0], 503)
        s, err = self.k.call("POST", "/v1/purchases", purchase_body(self.k.cards[1], "Q-2"))
        self.assertEqual(s, 503, self.k.last_raw())
        self.assertIn("failed SQLite's quick check", self.k.log_tail())
        self.assertIn("kopilka verify %s --full" % self.k.db, self.k.log_tail())

    def run_as_other_user(self, args):
        """Runs `kopilka ARGS` where permission bits apply: as nobody when
        the tests run as root (root ignores them), as ourselves otherwise."""
        kw = {}
        if os.getuid() == 0:
            for root, dirs, files in os.walk(self.k.dir):
                for n in dirs + files:
                    os.chown(os.path.join(root, n), 65534, -1)
            os.chown(self.k.dir, 65534, -1)
            kw["user"] = 65534
        return subprocess.run([harness.binary()] + args, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=30, **kw)

    def test_a_read_only_database_or_folder_says_read_only(self):
        harness.sqlite_only(self, "the SQLite file's and folder's permission bits")
        os.chmod(self.k.db, 0o400)
        p = self.run_as_other_user(["verify", self.k.db])
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("%s is read-only (" % self.k.db, p.stderr)
        self.assertNotIn("unable to open database file", p.stderr)
        os.chmod(self.k.db, 0o600)
        os.chmod(self.k.dir, 0o500)
        try:
            p = self.run_as_other_user(["serve", self.k.db, "--listen",
                                        "127.0.0.1:%d" % harness.free_port()])
        finally:
            os.chmod(self.k.dir, 0o700)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("the folder %s is read-only (" % self.k.dir, p.stderr)

    def test_a_customer_sealed_with_another_key_is_503_with_the_reason(self):
        with open(harness.program_file(), "rb") as f:
            doc = json.load(f)
        doc["customers"] = {"unregistered": {"earn": True, "burn": False},
                            "consent_version": "2026-01"}
        prog = os.path.join(self.k.dir, "program-people.json")
        with open(prog, "w") as f:
            json.dump(doc, f)
        self.k.cli("program", "load", "DB", prog)
        pw = os.path.join(self.k.dir, "password")
        with open(pw, "w") as f:
            f.write(PASSWORD + "\n")
        self.k.cli("staff", "add", "DB", "--login", "anna", "--role", "admin",
                   "--password-file", pw)
        self.k.start()
        s, c = self.k.call("POST", "/v1/customers", {
            "card": self.k.cards[0], "full_name": "Ivan Petrenko", "phone": "+380501234567",
            "consent": {"given": True, "text_version": "2026-01"}})
        self.assertEqual(s, 201, self.k.last_raw())
        self.k.stop()
        # Another database's key file in its place.
        other = harness.Kopilka(cards=0)
        self.addCleanup(other.close)
        shutil.copy(other.key_file, self.k.key_file)
        self.k.start()
        s, a = self.k.call("POST", "/v1/admin/login", {"login": "anna", "password": PASSWORD},
                           key=None)
        self.assertEqual(s, 200, self.k.last_raw())
        s, e = self.k.call("GET", "/v1/admin/customers/%d" % c["id"], key=a["token"])
        self.assertEqual(s, 503, self.k.last_raw())
        self.assertEqual(e["error"]["code"], "unavailable")
        self.assertEqual(e["error"]["field"], "key")
        self.assertIn("personal data cannot be opened with the key file", e["error"]["message"])
        self.assertIn("put back the key file it was written with", e["error"]["message"])
        st, _ = self.k.call("GET", "/v1/admin/export/customers.csv", key=a["token"])
        self.assertEqual(st, 503, self.k.last_raw())
        self.assertIn(b"cannot be opened with the key file", self.k.last_raw())


if __name__ == "__main__":
    harness.take_argv()
    unittest.main(verbosity=2)
