/*
 * store_pg_settle.c: the PostgreSQL executor of the settlement operations
 * (store_settle.h): each text a named statement of this backend (prepared
 * once per connection, as every pg_stmt), its parameters sent as text,
 * each row's columns handed over. The state's lock statements are this
 * backend's own texts (FOR SHARE for a writer booking entries, FOR UPDATE
 * for a close), so a close waits for every booking under way and a booking
 * for the close. The tables (store_pg_settle_schema) are migration 13
 * (store_pg.c).
 */
#include "store_pg_int.h"
#include "store_settle.h"

#include <pthread.h>
#include <string.h>

static pg_stmt stmts[ST__COUNT];
static pthread_once_t stmts_once = PTHREAD_ONCE_INIT;

static void stmts_make(void)
{
    for (int i = 0; i < ST__COUNT; i++) {
        const store_st_sql *q = &store_st_queries[i];
        stmts[i].sql = q->pg ? q->pg : q->sql;
        stmts[i].n_params = (int)strlen(q->params);
    }
}

kp_err store_pg_st_exec(kp_store *st, store_st_stmt stmt, const store_st_val *v,
                        store_st_row_fn row, void *ctx)
{
    pg_store *s = (pg_store *)st;
    pthread_once(&stmts_once, stmts_make);
    const store_st_sql *q = &store_st_queries[stmt];
    pg_params p;
    memset(&p, 0, sizeof p);
    for (int i = 0; q->params[i]; i++) {
        if (q->params[i] == 't')
            pg_p_text(&p, v[i].t ? v[i].t : "");
        else
            pg_p_int(&p, v[i].i);
    }
    PGresult *r = NULL;
    kp_err err = pg_run(s, &stmts[stmt], &p, &r);
    if (err) return err;
    store_st_val cols[ST_COLS_MAX];
    for (int i = 0; err == KP_OK && row && i < PQntuples(r); i++) {
        for (int c = 0; q->cols[c] && c < ST_COLS_MAX; c++) {
            cols[c].i = q->cols[c] == 'i' ? pg_int(r, i, c) : 0;
            cols[c].t = q->cols[c] == 't' ? PQgetvalue(r, i, c) : NULL;
        }
        err = row(ctx, cols);
    }
    PQclear(r);
    return err;
}
