/*
 * store_sqlite_settle.c: the SQLite executor of the settlement operations
 * (store_settle.h), through store_sqlite_sql_run(). The tables
 * (store_sqlite_settle_schema) are made at open. SQLite has one writer at
 * a time, so the state needs no lock: a close and a booking never overlap.
 */
#include "store_settle.h"

kp_err store_sqlite_st_exec(kp_store *s, store_st_stmt stmt, const store_st_val *v,
                            store_st_row_fn row, void *ctx)
{
    const store_st_sql *q = &store_st_queries[stmt];
    return store_sqlite_sql_run(s, q->sql, q->params, q->cols, v, row, ctx, NULL);
}
