#!/usr/bin/env python3
"""
test_cards.py: long CLI jobs beside a running server, and the printer's
export of a batch of cards.

- A purchase made while `kopilka cards issue` writes a large batch is
  answered at once (the job commits in chunks of a few milliseconds).
- The job's progress on stderr: rewritten in place on a terminal, plain
  lines otherwise, and a last line with the count, time and rate.
- An import cut short (SIGKILL) keeps what it committed, and running the
  same files again completes it.
- `kopilka cards export` writes a CSV naming the picture files it wrote.

Timing bounds are generous (the test machine is shared and the build has
AddressSanitizer): they tell a few milliseconds from many seconds.

    python3 tests/integration/test_cards.py --kopilka build-test/kopilka [Class]
"""
import csv
import os
import pty
import re
import resource
import select
import signal
import subprocess
import sys
import threading
import time
import unittest

import harness
from harness import LABOR

sys.path.insert(0, harness.HERE)
from test_people import program_with_customers, write_csv  # noqa: E402

ISSUE_COUNT = 100000   # about 10 s of work in the ASan build, one commit before
PURCHASE_BOUND_S = 1.0


def reap(job):
    """Cleanup: kills a job still running and closes its pipes."""
    if job.poll() is None:
        job.kill()
    job.communicate()


def purchase_body(card, receipt):
    return {"card": card, "receipt": receipt,
            "lines": [{"sku": "oil", "category": LABOR, "amount": 10000}]}


class IssueBesideTills(unittest.TestCase):

    def test_purchases_during_a_large_issue_are_answered_within_a_second(self):
        k = harness.Kopilka(cards=3)
        self.addCleanup(k.close)
        k.start()
        out_path = os.path.join(k.dir, "issued.txt")
        with open(out_path, "wb") as out:
            job = subprocess.Popen([harness.binary(), "cards", "issue", k.db, "--count",
                                    str(ISSUE_COUNT)], stdout=out, stderr=subprocess.PIPE,
                                   env=harness.cli_env([k.db]))
        self.addCleanup(reap, job)
        time.sleep(0.5)
        c = k.client()
        self.addCleanup(c.close)
        during, worst, n = 0, 0.0, 0
        while job.poll() is None and n < 400:
            running = job.poll() is None
            t0 = time.monotonic()
            status, body = c.call("POST", "/v1/purchases",
                                  purchase_body(k.cards[n % 3], "during-%d" % n))
            took = time.monotonic() - t0
            n += 1
            self.assertEqual(status, 201, c.last_raw)
            if running:
                during += 1
                worst = max(worst, took)
            time.sleep(0.02)
        _, err = job.communicate(timeout=300)
        self.assertEqual(job.returncode, 0, err[-2000:])
        self.assertLess(worst, PURCHASE_BOUND_S,
                        "a purchase waited %.3f s while the issue ran" % worst)
        self.assertGreaterEqual(during, 5, "the issue ended before the tills could buy")
        with open(out_path) as f:
            numbers = f.read().split()
        self.assertEqual(len(numbers), ISSUE_COUNT)
        self.assertEqual(len(set(numbers)), ISSUE_COUNT)
        last = err.decode().strip().splitlines()[-1]
        m = re.fullmatch(r"cards issue: %d cards in [0-9.]+ s \([0-9]+/s, ([0-9]+) commits, "
                         r"the longest held the database [0-9.]+ ms\)" % ISSUE_COUNT, last)
        self.assertIsNotNone(m, last)
        self.assertGreater(int(m.group(1)), 1)
        self.assertEqual(k.card(numbers[-1])["balance"], 0)
        k.stop()
        self.assertEqual(k.verify().returncode, 0)


class IssueCutShort(unittest.TestCase):

    def test_an_issue_stopped_by_a_full_disk_printed_exactly_the_cards_it_kept(self):
        k = harness.Kopilka(cards=0)
        self.addCleanup(k.close)
        harness.sqlite_only(self, "the disk fills under the SQLite file its process writes; "
                                  "PostgreSQL's files are its server's")
        limit = os.path.getsize(k.db) + 6 * 1024 * 1024

        def full_disk():
            # A write past the limit fails with EFBIG, as on a full disk.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        p = subprocess.run([harness.binary(), "cards", "issue", k.db, "--count", "200000"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=full_disk, timeout=300)
        self.assertEqual(p.returncode, 1, p.stderr)
        numbers = p.stdout.split()
        kept = [r[0] for r in k.query("SELECT number FROM cards")]
        self.assertGreater(len(kept), 0)
        self.assertLess(len(kept), 200000)
        self.assertEqual(sorted(numbers), sorted(kept))
        self.assertIn("cards issue: stopped after %d of 200000 cards" % len(kept), p.stderr)
        self.assertEqual(k.verify().returncode, 0)


class Progress(unittest.TestCase):

    def setUp(self):
        self.k = harness.Kopilka(cards=0)
        self.addCleanup(self.k.close)

    def test_on_a_terminal_the_line_is_rewritten_in_place(self):
        master, slave = pty.openpty()
        with open(os.devnull, "wb") as null:
            job = subprocess.Popen([harness.binary(), "cards", "issue", self.k.db, "--count",
                                    "30000"], stdout=null, stderr=slave,
                                   env=harness.cli_env([self.k.db]))
        os.close(slave)
        data = b""
        while True:
            r, _, _ = select.select([master], [], [], 120)
            if not r:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the job closed its end
                break
            if not chunk:
                break
            data += chunk
        os.close(master)
        self.assertEqual(job.wait(timeout=60), 0)
        text = data.decode()
        updates = re.findall(r"\rcards issue: ([0-9]+)/30000 cards \(([0-9]+)%\), [0-9]+/s, "
                             r"[0-9]+:[0-9]{2} left\x1b\[K", text)
        self.assertGreaterEqual(len(updates), 1, repr(text[-500:]))
        for done, percent in updates:
            self.assertEqual(int(percent), int(done) * 100 // 30000)
        self.assertRegex(text, r"\r\x1b\[Kcards issue: 30000 cards in [0-9.]+ s \([0-9]+/s, "
                               r"[0-9]+ commits, the longest held the database [0-9.]+ ms\)\r?\n$")

    def test_elsewhere_plain_lines_and_the_last_line(self):
        p = harness.run_cli(["cards", "issue", self.k.db, "--count", "2000"])
        self.assertEqual(len(p.stdout.split()), 2000)
        self.assertNotIn("\r", p.stderr)
        self.assertNotIn("\x1b", p.stderr)
        lines = p.stderr.splitlines()
        for line in lines[:-1]:
            self.assertRegex(line, r"^cards issue: [0-9]+/2000 cards \([0-9]+%\), [0-9]+/s, "
                                   r"[0-9]+:[0-9]{2} left$")
        self.assertRegex(lines[-1], r"^cards issue: 2000 cards in [0-9.]+ s \([0-9]+/s, "
                                    r"[0-9]+ commits, the longest held the database [0-9.]+ ms\)$")

    def test_a_refused_issue_prints_no_number_and_no_progress(self):
        p = harness.run_cli(["cards", "issue", self.k.db, "--count", "0"], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")
        self.assertEqual(p.stderr, "kopilka cards issue: count: must be from 1 to 10000000\n")


class ImportInChunks(unittest.TestCase):
    ROWS = 6000

    def test_an_import_killed_half_way_is_completed_by_running_it_again(self):
        k = harness.Kopilka(cards=0)
        self.addCleanup(k.close)
        harness.run_cli(["program", "load", k.db, program_with_customers(k.dir)])
        n = self.ROWS
        cards = os.path.join(k.dir, "cards.csv")
        customers = os.path.join(k.dir, "customers.csv")
        write_csv(cards, ["number", "state"], (["IMP%06d" % i, "issued"] for i in range(n)))
        write_csv(customers, ["external_id", "cards", "full_name", "phone", "consent_version"],
                  (["x%d" % i, "IMP%06d" % i, "Customer %d" % i, "+38050%07d" % i, "2026-01"]
                   for i in range(n)))
        args = [harness.binary(), "import", k.db, "--cards", cards, "--customers", customers]
        job = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=harness.cli_env(args))
        self.addCleanup(reap, job)
        # Kill it once some customers are committed (before: none until the end).
        seen = 0
        deadline = time.monotonic() + 120
        while job.poll() is None and time.monotonic() < deadline:
            try:
                ((seen,),) = k.query("SELECT count(*) FROM customers")
            except harness.DatabaseError:
                seen = 0
            if seen > 0:
                job.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        job.communicate(timeout=60)
        self.assertEqual(job.returncode, -signal.SIGKILL,
                         "the import ended before any customer was committed")
        ((kept,),) = k.query("SELECT count(*) FROM customers")
        self.assertGreater(kept, 0)
        self.assertLess(kept, n)
        p = harness.run_cli(["import", k.db, "--cards", cards, "--customers", customers],
                            timeout=300)
        m = re.search(r"cards ([0-9]+) new, ([0-9]+) unchanged; customers ([0-9]+) new, "
                      r"([0-9]+) unchanged", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        cards_new, cards_same, cust_new, cust_same = map(int, m.groups())
        self.assertEqual((cards_new + cards_same, cust_new + cust_same), (n, n))
        self.assertEqual(cust_same, kept)
        self.assertEqual(cards_new, 0)  # the cards' file is written before the customers'
        self.assertRegex(p.stderr.splitlines()[-1],
                         r"^import: %d rows in [0-9.]+ s \([0-9]+/s, [0-9]+ commits, the longest "
                         r"held the database [0-9.]+ ms\)$" % (2 * n))
        self.assertEqual(k.query("SELECT count(*) FROM customers"), [(n,)])
        self.assertEqual(k.verify().returncode, 0)


class Export(unittest.TestCase):

    def test_the_csv_names_the_files_it_wrote(self):
        k = harness.Kopilka(cards=0)
        self.addCleanup(k.close)
        p = harness.run_cli(["cards", "issue", k.db, "--count", "60", "--batch", "autumn"])
        numbers = p.stdout.split()
        self.assertEqual(len(numbers), 60)
        out = os.path.join(k.dir, "print")
        p = harness.run_cli(["cards", "export", k.db, "--batch", "autumn", "--out", out])
        self.assertEqual(p.stdout, "wrote %s/cards.csv (60 cards) and 240 images\n" % out)
        self.assertRegex(p.stderr.splitlines()[-1],
                         r"^cards export: 60 cards in [0-9.]+ s \([0-9]+/s, [0-9]+ thread\(s\), "
                         r"4 pictures a card\)$")
        with open(os.path.join(out, "cards.csv"), newline="") as f:
            rows = list(csv.reader(f))
        self.assertEqual(rows[0], ["number", "batch", "state", "barcode_png", "barcode_svg",
                                   "qr_png", "qr_svg"])
        self.assertEqual([r[0] for r in rows[1:]], sorted(numbers))
        for r in rows[1:]:
            n = r[0]
            self.assertEqual(r[1:], ["autumn", "issued", n + "-barcode.png", n + "-barcode.svg",
                                     n + "-qr.png", n + "-qr.svg"])
            for name in r[3:]:
                path = os.path.join(out, name)
                self.assertTrue(os.path.isfile(path), name)
            with open(os.path.join(out, r[3]), "rb") as f:
                png = f.read()
            self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
            self.assertEqual((png[24], png[25]), (1, 0))  # 1-bit greyscale
            with open(os.path.join(out, r[4]), "rb") as f:
                svg = f.read()
            self.assertTrue(svg.startswith(b"<?xml"))
            self.assertIn(("<title>%s</title>" % n).encode(), svg)
        self.assertEqual(len(os.listdir(out)), 1 + 4 * 60)

    def test_an_unknown_batch_names_the_field(self):
        k = harness.Kopilka(cards=0)
        self.addCleanup(k.close)
        p = harness.run_cli(["cards", "export", k.db, "--batch", "nope", "--out",
                             os.path.join(k.dir, "o")], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr, "kopilka cards export: batch: no batch of cards named \"nope\"\n")
        self.assertFalse(os.path.exists(os.path.join(k.dir, "o")))  # no empty folder left


if __name__ == "__main__":
    harness.take_argv()
    unittest.main()
