/*
 * store_sqlite_sql.c: SQLite's runner of portable statements (store_sql.h):
 * prepares the text when it runs (none of these statements is on a till's
 * hot path but settlement entries, a few a purchase), binds its $n
 * parameters by name, hands each row's columns over.
 */
#include "store_sql.h"
#include "store_sqlite_group.h"
#include "store_sqlite_int.h"

#include <stdio.h>

kp_err store_sqlite_sql_step(kp_store *s, sqlite3_stmt *st, const char *params, const char *cols,
                             const store_sql_val *v, store_sql_row_fn row, void *ctx,
                             int64_t *changes)
{
    sqlite3 *db = store_sqlite_db(s);
    char name[16];
    for (int i = 0; params[i]; i++) {
        snprintf(name, sizeof name, "$%d", i + 1);
        int at = sqlite3_bind_parameter_index(st, name);
        if (at == 0) continue;
        if (params[i] == 't')
            sqlite3_bind_text(st, at, v[i].t ? v[i].t : "", -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, at, v[i].i);
    }
    kp_err err = KP_OK;
    int rc;
    store_sql_val out[STORE_SQL_COLS_MAX];
    while (err == KP_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; cols[c] && c < STORE_SQL_COLS_MAX; c++) {
            out[c].i = cols[c] == 'i' ? sqlite3_column_int64(st, c) : 0;
            out[c].t = cols[c] == 't' ? (const char *)sqlite3_column_text(st, c) : NULL;
            if (cols[c] == 't' && out[c].t == NULL) out[c].t = "";
        }
        if (row) err = row(ctx, out);
    }
    if (err == KP_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = store_sqlite_fail(db, s->last_error, sizeof s->last_error, rc);
    if (err == KP_OK && changes) *changes = sqlite3_changes(db);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}

kp_err store_sqlite_sql_run(kp_store *s, const char *sql, const char *params, const char *cols,
                            const store_sql_val *v, store_sql_row_fn row, void *ctx,
                            int64_t *changes)
{
    sqlite3 *db = store_sqlite_db(s);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return store_sqlite_fail(db, s->last_error, sizeof s->last_error, rc);
    kp_err err = store_sqlite_sql_step(s, st, params, cols, v, row, ctx, changes);
    sqlite3_finalize(st);
    return err;
}
