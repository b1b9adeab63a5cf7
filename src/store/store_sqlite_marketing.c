/*
 * store_sqlite_marketing.c: the SQLite executor of the marketing
 * operations (store_marketing.h): prepares a statement's portable text,
 * binds its $n parameters by name, hands each row's columns over. None of
 * these statements is on a till's path, so each is prepared when it runs.
 * The tables (store_sqlite_marketing_schema) are made at open, and a
 * table made before campaign_members.lot_id gets it there
 * (store_sqlite_marketing_open).
 */
#include "store_marketing.h"
#include "store_sqlite_group.h"
#include "store_sqlite_int.h"

#include <string.h>

kp_err store_sqlite_mk_exec(kp_store *s, store_mk_stmt stmt, const store_mk_val *v,
                            store_mk_row_fn row, void *ctx, int64_t *changes)
{
    sqlite3 *db = store_sqlite_db(s);
    const store_mk_sql *q = &store_mk_queries[stmt];
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
    store_mk_val cols[MK_COLS_MAX];
    while (err == KP_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; q->cols[c] && c < MK_COLS_MAX; c++) {
            cols[c].i = q->cols[c] == 'i' ? sqlite3_column_int64(st, c) : 0;
            cols[c].t = q->cols[c] == 't' ? (const char *)sqlite3_column_text(st, c) : NULL;
            if (q->cols[c] == 't' && cols[c].t == NULL) cols[c].t = "";
        }
        if (row) err = row(ctx, cols);
    }
    if (err == KP_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = store_sqlite_fail(db, s->last_error, sizeof s->last_error, rc);
    if (err == KP_OK && changes) *changes = sqlite3_changes(db);
    sqlite3_finalize(st);
    return err;
}

int store_sqlite_marketing_open(sqlite3 *db)
{
    int rc = sqlite3_exec(db, store_sqlite_marketing_schema, NULL, NULL, NULL);
    if (rc != SQLITE_OK) return rc;
    /* A table that has the column reads it. */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT lot_id FROM campaign_members LIMIT 0", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_finalize(st);
        return SQLITE_OK;
    }
    /* One transaction: a crash between the two leaves neither. */
    rc = sqlite3_exec(db, "SAVEPOINT mk_lot_id", NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, store_mk_lot_column, NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, store_mk_lot_fill, NULL, NULL, NULL);
    if (rc != SQLITE_OK) sqlite3_exec(db, "ROLLBACK TO mk_lot_id", NULL, NULL, NULL);
    sqlite3_exec(db, "RELEASE mk_lot_id", NULL, NULL, NULL);
    return rc;
}
