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

enum {
    /* Inserts a pipeline carries (with the lock's statement and the
     * prepares of a new connection, well within PG_PIPE_MAX). */
    PUT_PIPE = 256,
};

/* The lock FOR SHARE and the inserts go out in one pipeline (one round
 * trip for an operation's few entries; a long list in several). Each
 * statement runs in a snapshot of its own (READ COMMITTED): the inserts,
 * after the lock is held, see the state a close left, so an entry of a
 * month just closed lands in the next (ST_ENTRY_INSERT's period). */
kp_err store_pg_settle_entries_put(kp_store *st, int64_t op_id, kp_time booked_at, int32_t period,
                                   const kp_settle_entry *entries, size_t n)
{
    if (n == 0) return KP_OK;
    pg_store *s = (pg_store *)st;
    kp_err err = store_settle_entries_check(st, period, entries, n);
    if (err) return err;
    pthread_once(&stmts_once, stmts_make);
    for (size_t at = 0; err == KP_OK && at < n; at += PUT_PIPE) {
        if ((err = pg_pipe_begin(s, s->pipe))) break;
        if (at == 0) pg_pipe_send(s, s->pipe, &stmts[ST_STATE_SHARE], NULL, 1, "settlement state");
        for (size_t i = at; i < n && i < at + PUT_PIPE; i++) {
            store_st_val v[9];
            store_settle_entry_values(op_id, booked_at, period, &entries[i], v);
            pg_params p;
            memset(&p, 0, sizeof p);
            const char *types = store_st_queries[ST_ENTRY_INSERT].params;
            for (int k = 0; types[k]; k++) {
                if (types[k] == 't')
                    pg_p_text(&p, v[k].t);
                else
                    pg_p_int(&p, v[k].i);
            }
            pg_pipe_send(s, s->pipe, &stmts[ST_ENTRY_INSERT], &p, 1, "settlement entry");
        }
        err = pg_pipe_end(s, s->pipe);
    }
    return err;
}

kp_err store_pg_st_exec(kp_store *st, store_st_stmt stmt, const store_st_val *v,
                        store_st_row_fn row, void *ctx)
{
    pthread_once(&stmts_once, stmts_make);
    const store_st_sql *q = &store_st_queries[stmt];
    return store_pg_sql_run(st, &stmts[stmt], q->params, q->cols, v, row, ctx, NULL);
}
