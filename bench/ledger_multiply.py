#!/usr/bin/env python3
"""ledger_multiply.py: makes a ledger bench_fill filled TIMES as big, for
timing `kopilka verify` at 100 million postings where filling them through
the service would take hours (bench/README.md "At scale").

    python3 bench/ledger_multiply.py DB TIMES

Appends TIMES - 1 copies of the operations, postings and lots the database
holds when it starts (the server must be stopped): copy j numbers its
operations id + j * (largest id), its receipts receipt + "~j", and keeps
every other column, so the rows are the service's rows, as wide and in
the same order (each copy's postings follow its operations, in operation
order). The accounts' balances and debts and the system accounts'
balances are multiplied by TIMES, so every invariant `verify` checks
still holds. Not exercised: the copies made no purchase (no engine, no
idempotency lookup); the outbox's events, the sales history and the
counters are not copied (verify checks none of them against the ledger).
Prints each copy's progress and the rows at the end.
"""
import sqlite3
import sys
import time


def cols(db, table):
    return [r[1] for r in db.execute(f"PRAGMA table_info({table})")]


def main():
    if len(sys.argv) != 3 or not sys.argv[2].isdigit() or int(sys.argv[2]) < 2:
        sys.exit("usage: ledger_multiply.py DB TIMES (TIMES >= 2)")
    path, times = sys.argv[1], int(sys.argv[2])
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-262144")
    max_op = db.execute("SELECT COALESCE(max(id), 0) FROM ops").fetchone()[0]
    max_lot = db.execute("SELECT COALESCE(max(id), 0) FROM lots").fetchone()[0]
    max_post = db.execute("SELECT COALESCE(max(rowid), 0) FROM postings").fetchone()[0]
    ops_cols = cols(db, "ops")
    lot_cols = [c for c in cols(db, "lots") if c != "id"]

    def op_expr(c):
        if c == "id":
            return "id + :off"
        if c == "receipt":
            return "CASE WHEN receipt IS NULL THEN NULL ELSE receipt || :tag END"
        if c == "original_op_id":
            return "CASE WHEN original_op_id IS NULL THEN NULL ELSE original_op_id + :off END"
        return c

    ops_sql = (f"INSERT INTO ops({', '.join(ops_cols)}) SELECT "
               f"{', '.join(op_expr(c) for c in ops_cols)} FROM ops WHERE id <= :max ORDER BY id")
    post_sql = ("INSERT INTO postings(op_id, account_id, points) SELECT op_id + :off, account_id, "
                "points FROM postings WHERE rowid <= :maxp ORDER BY rowid")
    lot_sql = (f"INSERT INTO lots({', '.join(lot_cols)}) SELECT "
               f"{', '.join('op_id + :off' if c == 'op_id' else c for c in lot_cols)} "
               f"FROM lots WHERE id <= :maxl ORDER BY id")
    t0 = time.time()
    for j in range(1, times):
        args = {"off": j * max_op, "tag": f"~{j}", "max": max_op, "maxp": max_post,
                "maxl": max_lot}
        db.execute("BEGIN")
        db.execute(ops_sql, args)
        db.execute(post_sql, args)
        db.execute(lot_sql, args)
        db.execute("COMMIT")
        print(f"ledger_multiply: copy {j + 1}/{times} written, {time.time() - t0:.0f} s",
              file=sys.stderr, flush=True)
    db.execute("BEGIN")
    db.execute("UPDATE accounts SET balance = balance * ?1, debt = debt * ?1", (times,))
    db.execute("UPDATE sys_accounts SET balance = balance * ?1", (times,))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for t in ("ops", "postings", "lots", "accounts"):
        n = db.execute(f"SELECT max(rowid) FROM {t}").fetchone()[0]
        print(f"{t}: largest rowid {n}")
    print(f"seconds: {time.time() - t0:.0f}")


if __name__ == "__main__":
    main()
