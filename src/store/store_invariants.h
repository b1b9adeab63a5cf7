/*
 * store_invariants.h: the ledger's invariants, stated once for every
 * backend. Each is a query in portable SQL (it runs unchanged on SQLite and
 * PostgreSQL) whose every row is one broken invariant, two integers (what
 * and by how much), and the sentence that reports such a row. `verify` of
 * each backend runs this very list (store_sqlite.c, store_pg.c).
 */
#ifndef KOPILKA_STORE_INVARIANTS_H
#define KOPILKA_STORE_INVARIANTS_H

#include <stddef.h>

typedef struct store_invariant {
    const char *sql;  /* rows: (id, amount), both integers */
    const char *what; /* printf format taking the two as long long */
} store_invariant;

extern const store_invariant store_invariants[];
extern const size_t store_invariants_count;

/* Problems a verify reports line by line; beyond it they are only counted. */
enum { STORE_INVARIANT_LINES_MAX = 100 };

#endif
