#!/usr/bin/env python3
"""
members_report.py: the members report (GET /v1/admin/reports/members) over
a large SQLite history, timed, with the server's peak memory.

    bench/members_report.py KOPILKA_BINARY [receipts=10000000] [dir | postgresql://...]

Makes a database with `kopilka init`, then fills the tables the report
reads straight with SQL (faster than importing, the same rows an import and
the tills would leave): the members' receipts split 30 % ledger purchases
(ops) and 10 % imported sales with a known card, 60 % sales without a card
(of them 5/6 with a customer key); 1 member a 4 member receipts, 1
followed customer a 3 keyed receipts, 24 months, 3 stores, a tenth of the
accounts in tier gold. Then serves it and asks the report over the 24
months (every store), over one store, and for gold, printing each one's
time and the server's peak resident memory (VmHWM) before and after.
"""
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

kopilka = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000_000
work = sys.argv[3] if len(sys.argv) > 3 else tempfile.mkdtemp(prefix="kp-members-")
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A PostgreSQL database (filled beforehand, e.g. with bench/members_report_pg.sql)
# is used as it is; its key file in KOPILKA_KEY_FILE.
on_pg = work.startswith(("postgresql://", "postgres://"))
if on_pg:
    db, work = work, tempfile.mkdtemp(prefix="kp-members-")
else:
    os.makedirs(work, exist_ok=True)
    db = os.path.join(work, "big.db")
prog = os.path.join(root, "examples", "autoservice-case1.json")
START = 1704067200  # 2024-01-01 UTC
SPAN = 730 * 86400

if not on_pg and not os.path.exists(db):
    subprocess.run([kopilka, "init", db, "--program", prog], check=True, capture_output=True)
    c = sqlite3.connect(db)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=OFF")
    rnd = random.Random(1)
    n_ops, n_card_sales, n_sales = n * 3 // 10, n // 10, n * 6 // 10
    members = max(1, (n_ops + n_card_sales) // 4)
    keyed = n_sales * 5 // 6
    followed = max(1, keyed // 3)
    t0 = time.time()
    c.executemany("INSERT INTO accounts(id, created_at) VALUES (?, ?)",
                  ((i, START) for i in range(1, members + 1)))
    c.executemany("INSERT INTO cards(number, account_id, state, created_at) VALUES (?, ?, 1, ?)",
                  (("M%08d" % i, i, START) for i in range(1, members + 1)))
    c.executemany("INSERT INTO account_rules(account_id, tier) VALUES (?, 'gold')",
                  ((i,) for i in range(1, members + 1, 10)))

    def ops():
        for i in range(n_ops):
            a = rnd.randint(1, members)
            yield (a, "M%08d" % a, "store-%d" % rnd.randint(1, 3), "O%d" % i,
                   START + rnd.randrange(SPAN), rnd.randint(500, 2000000))
    c.executemany("INSERT INTO ops(type, account_id, card, store, receipt, program_version, at,"
                  " amount, paid, earned, burned, points) VALUES (1, ?, ?, ?, ?, 1, ?, ?, 0, 0, 0, 0)",
                  ops())

    def sales():
        for i in range(n_card_sales + n_sales):
            card = customer = ""
            if i < n_card_sales:
                card = "M%08d" % rnd.randint(1, members)
            elif i < n_card_sales + keyed:
                customer = "N%08d" % rnd.randint(1, followed)
            yield (START + rnd.randrange(SPAN), "store-%d" % rnd.randint(1, 3), "S%d" % i, card,
                   rnd.randint(500, 1000000), customer)
    c.executemany("INSERT INTO sales(at, store, receipt, card, kind, source, amount, customer)"
                  " VALUES (?, ?, ?, ?, 1, 2, ?, ?)", sales())
    c.commit()
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    print("filled %s: %d receipts (%d members, %d followed customers) in %.0f s, %d MB"
          % (db, n, members, followed, time.time() - t0, os.path.getsize(db) >> 20), flush=True)

pw = os.path.join(work, "pw")
with open(pw, "w") as f:
    f.write("bench staff password\n")
subprocess.run([kopilka, "staff", "add", db, "--login", "bench_auditor", "--role", "auditor",
                "--password-file", pw], capture_output=True)
port = 18000 + os.getpid() % 1000
srv = subprocess.Popen([kopilka, "serve", db, "--listen", "127.0.0.1:%d" % port],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    base = "http://127.0.0.1:%d" % port
    for _ in range(300):
        try:
            if urllib.request.urlopen(base + "/ready").status == 200:
                break
        except OSError:
            time.sleep(0.1)
    req = urllib.request.Request(base + "/v1/admin/login", method="POST",
                                 data=b'{"login": "bench_auditor", "password": "bench staff password"}',
                                 headers={"Content-Type": "application/json"})
    token = json.load(urllib.request.urlopen(req))["token"]

    def hwm():
        with open("/proc/%d/status" % srv.pid) as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) // 1024

    print("server peak memory before the reports: %d MB" % hwm(), flush=True)
    for q in ("", "&store=store-2", "&tier=gold"):
        t = time.time()
        r = urllib.request.Request(base + "/v1/admin/reports/members?from=2024-01-01&to=2025-12-30" + q,
                                   headers={"Authorization": "Bearer " + token})
        d = json.load(urllib.request.urlopen(r, timeout=3600))
        print("report%s: %.1f s; members %d, member receipts %d, non-member receipts %d, followed "
              "customers %d, ratio %.4f, top %.4f, idle %.4f, recent %.4f; peak memory %d MB"
              % (q or " (every store)", time.time() - t, d["members"], d["member_receipts"],
                 d["nonmember_receipts"], d["followed_customers"], d["average_receipt_ratio"],
                 d["top_share"], d["idle_share"], d["recent_share"], hwm()), flush=True)
finally:
    srv.terminate()
    srv.wait()
