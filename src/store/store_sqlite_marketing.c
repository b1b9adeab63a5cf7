/*
 * store_sqlite_marketing.c: the SQLite executor of the marketing
 * operations (store_marketing.h), through store_sqlite_sql_run(): none of
 * these statements is on a till's path, so each is prepared when it runs.
 * The tables (store_sqlite_marketing_schema) are made at open, and a
 * table made before campaign_members.lot_id gets it there
 * (store_sqlite_marketing_open).
 */
#include "store_marketing.h"

#include <sqlite3.h>

kp_err store_sqlite_mk_exec(kp_store *s, store_mk_stmt stmt, const store_mk_val *v,
                            store_mk_row_fn row, void *ctx, int64_t *changes)
{
    const store_mk_sql *q = &store_mk_queries[stmt];
    return store_sqlite_sql_run(s, q->sql, q->params, q->cols, v, row, ctx, changes);
}

int store_sqlite_marketing_open(sqlite3 *db)
{
    int rc = sqlite3_exec(db, store_sqlite_marketing_schema, NULL, NULL, NULL);
    if (rc != SQLITE_OK) return rc;
    /* campaigns.rule and program_version (a grant by a program rule). */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT rule FROM campaigns LIMIT 0", -1, &st, NULL) == SQLITE_OK)
        sqlite3_finalize(st);
    else if ((rc = sqlite3_exec(db, "SAVEPOINT mk_rule", NULL, NULL, NULL)) == SQLITE_OK) {
        rc = sqlite3_exec(db, store_mk_rule_columns, NULL, NULL, NULL);
        if (rc != SQLITE_OK) sqlite3_exec(db, "ROLLBACK TO mk_rule", NULL, NULL, NULL);
        sqlite3_exec(db, "RELEASE mk_rule", NULL, NULL, NULL);
        if (rc != SQLITE_OK) return rc;
    } else {
        return rc;
    }
    /* A table that has the column reads it. */
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
