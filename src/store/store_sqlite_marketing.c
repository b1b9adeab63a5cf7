/*
 * store_sqlite_marketing.c: the SQLite executor of the marketing
 * operations (store_marketing.h), through store_sqlite_sql_run(): none of
 * these statements is on a till's path, so each is prepared when it runs.
 * The tables (store_sqlite_marketing_schema) are made at open.
 */
#include "store_marketing.h"

kp_err store_sqlite_mk_exec(kp_store *s, store_mk_stmt stmt, const store_mk_val *v,
                            store_mk_row_fn row, void *ctx, int64_t *changes)
{
    const store_mk_sql *q = &store_mk_queries[stmt];
    return store_sqlite_sql_run(s, q->sql, q->params, q->cols, v, row, ctx, changes);
}
