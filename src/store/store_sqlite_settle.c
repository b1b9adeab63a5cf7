/*
 * store_sqlite_settle.c: the SQLite executor of the settlement operations
 * (store_settle.h): prepares a statement's portable text when it runs,
 * binds its $n parameters by name, hands each row's columns over. The tables
 * (store_sqlite_settle_schema) are made at open. SQLite has one writer at
 * a time, so the state needs no lock: a close and a booking never overlap.
 */
#include "store_settle.h"
#include "store_sqlite_group.h"
#include "store_sqlite_int.h"

#include <stdio.h>
#include <string.h>

kp_err store_sqlite_st_exec(kp_store *s, store_st_stmt stmt, const store_st_val *v,
                            store_st_row_fn row, void *ctx)
{
    sqlite3 *db = store_sqlite_db(s);
    const store_st_sql *q = &store_st_queries[stmt];
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, q->sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return store_sqlite_fail(db, s->last_error, sizeof s->last_error, rc);
    char name[16];
    for (int i = 0; q->params[i]; i++) {
        snprintf(name, sizeof name, "$%d", i + 1);
        int at = sqlite3_bind_parameter_index(st, name);
        if (at == 0) continue;
        if (q->params[i] == 't')
            sqlite3_bind_text(st, at, v[i].t ? v[i].t : "", -1, SQLITE_STATIC);
        else
            sqlite3_bind_int64(st, at, v[i].i);
    }
    kp_err err = KP_OK;
    store_st_val cols[ST_COLS_MAX];
    while (err == KP_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; q->cols[c] && c < ST_COLS_MAX; c++) {
            cols[c].i = q->cols[c] == 'i' ? sqlite3_column_int64(st, c) : 0;
            cols[c].t = q->cols[c] == 't' ? (const char *)sqlite3_column_text(st, c) : NULL;
            if (q->cols[c] == 't' && cols[c].t == NULL) cols[c].t = "";
        }
        if (row) err = row(ctx, cols);
    }
    if (err == KP_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = store_sqlite_fail(db, s->last_error, sizeof s->last_error, rc);
    sqlite3_finalize(st);
    return err;
}
