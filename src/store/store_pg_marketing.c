/*
 * store_pg_marketing.c: the PostgreSQL executor of the marketing
 * operations (store_marketing.h): each portable text a named statement of
 * this backend (prepared once per connection, as every pg_stmt), its
 * parameters sent as text, each row's columns handed over. The tables
 * (store_pg_marketing_schema) are migration 7 (store_pg.c).
 */
#include "store_marketing.h"
#include "store_pg_int.h"

#include <pthread.h>
#include <string.h>

static pg_stmt stmts[MK__COUNT];
static pthread_once_t stmts_once = PTHREAD_ONCE_INIT;

static void stmts_make(void)
{
    for (int i = 0; i < MK__COUNT; i++) {
        stmts[i].sql = store_mk_queries[i].sql;
        stmts[i].n_params = (int)strlen(store_mk_queries[i].params);
    }
}

kp_err store_pg_mk_exec(kp_store *st, store_mk_stmt stmt, const store_mk_val *v,
                        store_mk_row_fn row, void *ctx, int64_t *changes)
{
    pthread_once(&stmts_once, stmts_make);
    const store_mk_sql *q = &store_mk_queries[stmt];
    return store_pg_sql_run(st, &stmts[stmt], q->params, q->cols, v, row, ctx, changes);
}
