/*
 * store_sqlite_int.h: helpers shared by the files of the SQLite backend
 * (store_sqlite.c, store_sqlite_people.c, store_sqlite_triggers.c), as
 * SQLite's own *Int.h headers are: one mapping of SQLite result codes to
 * kp_err, one way to reuse and run a prepared statement.
 */
#ifndef KOPILKA_STORE_SQLITE_INT_H
#define KOPILKA_STORE_SQLITE_INT_H

#include <sqlite3.h>
#include <stdio.h>

#include <kopilka/kopilka.h>

/* Records SQLite's message in err[size] and maps the result code. */
static inline kp_err store_sqlite_fail(sqlite3 *db, char *err, size_t size, int rc)
{
    snprintf(err, size, "%s", sqlite3_errmsg(db));
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return KP_ERR_BUSY;
    case SQLITE_CONSTRAINT: return KP_ERR_CONFLICT;
    case SQLITE_NOMEM: return KP_ERR_NOMEM;
    default: return KP_ERR_IO;
    }
}

/* Resets a prepared statement and clears its bindings before reuse. */
static inline sqlite3_stmt *store_sqlite_fresh(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Runs a statement whose rows, if any, are not read; resets it after. */
static inline kp_err store_sqlite_run(sqlite3 *db, char *err, size_t size, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    kp_err e = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? KP_OK : store_sqlite_fail(db, err, size, rc);
    sqlite3_reset(st);
    return e;
}

/* Prepares a part's n statements (persistent) into stmt[], after `rc`
 * (its tables' creation): stops at the first failure and returns SQLite's
 * code; the caller finalizes stmt[] either way (store_sqlite_finalize_all). */
static inline int store_sqlite_prepare_all(sqlite3 *db, int rc, const char *const *queries, int n,
                                           sqlite3_stmt **stmt)
{
    for (int i = 0; i < n && rc == SQLITE_OK; i++)
        rc = sqlite3_prepare_v3(db, queries[i], -1, SQLITE_PREPARE_PERSISTENT, &stmt[i], NULL);
    return rc;
}

static inline void store_sqlite_finalize_all(sqlite3_stmt **stmt, int n)
{
    for (int i = 0; i < n; i++) sqlite3_finalize(stmt[i]);
}

/* Copies a column's text (NULL reads as "") into out[size]. */
static inline void store_sqlite_copy_text(char *out, size_t size, const unsigned char *text)
{
    snprintf(out, size, "%s", text ? (const char *)text : "");
}

#endif
