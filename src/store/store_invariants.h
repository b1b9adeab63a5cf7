/*
 * store_invariants.h: the ledger's invariants, stated once for every
 * backend. Each is a query in portable SQL (it runs unchanged on SQLite and
 * PostgreSQL) whose every row is one broken invariant, two integers (what
 * and by how much), and the sentence that reports such a row. `verify` of
 * each backend runs this very list (store_sqlite.c, store_pg.c). So is
 * the count of sealed values behind kp_people_ops.sealed_count.
 */
#ifndef KOPILKA_STORE_INVARIANTS_H
#define KOPILKA_STORE_INVARIANTS_H

#include <stddef.h>
#include <stdint.h>

#include <kopilka/people.h>

typedef struct store_invariant {
    const char *sql;  /* rows: (id, amount), both integers */
    const char *what; /* printf format taking the two as long long */
} store_invariant;

extern const store_invariant store_invariants[];
extern const size_t store_invariants_count;

/* The first STORE_INVARIANTS_LEDGER are the ledger's (double entry,
 * balances, lots, debt, system accounts, the total, operations' changes,
 * settlement entries): SQLite's verify checks them in one streaming pass
 * (store_sqlite_verify.c) with these very sentences; the rest, and
 * PostgreSQL's all, run as SQL. A new ledger invariant goes before the
 * outbox's: added to that pass too, or after these first ones (the lots'
 * expiry checks, which SQLite runs as SQL as well). */
enum { STORE_INVARIANTS_LEDGER = 11 };

/* kp_people_ops.sealed_count's query, one row of one integer, run as is by
 * each backend: what the database holds that only its key file opens or
 * checks. */
extern const char store_sealed_count_sql[];

/* Problems a verify reports line by line; beyond it they are only counted. */
enum { STORE_INVARIANT_LINES_MAX = 100 };

/* The audit chain (people.h, kp_audit_entry), checked the same way by each
 * backend's verify: it reads every entry in seq order and gives each to
 * store_audit_step(). An entry must be numbered right after the one before
 * (none deleted), carry that one's hash as prev_hash (none inserted or
 * reordered), and hash to its own `hash` (none changed). A problem is one
 * line to report(ctx, line), while *problems is under
 * STORE_INVARIANT_LINES_MAX, and is counted in *problems. */
typedef struct store_audit_walk {
    int64_t seq;          /* the last entry walked, 0 before the first */
    uint8_t prev[32];     /* its hash; all zero before the first */
} store_audit_walk;

void store_audit_step(store_audit_walk *w, const kp_audit_entry *a,
                      void (*report)(void *ctx, const char *line), void *ctx, int64_t *problems);

#endif
