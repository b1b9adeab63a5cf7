/*
 * store_pg_sql.c: PostgreSQL's runner of portable statements (store_sql.h):
 * the statement named by its pg_stmt (prepared once per connection), its
 * parameters sent as text, each row's columns handed over.
 */
#include "store_pg_int.h"
#include "store_sql.h"

#include <string.h>

kp_err store_pg_sql_run(kp_store *st, pg_stmt *stmt, const char *params, const char *cols,
                        const store_sql_val *v, store_sql_row_fn row, void *ctx, int64_t *changes)
{
    pg_store *s = (pg_store *)st;
    pg_params p;
    memset(&p, 0, sizeof p);
    for (int i = 0; params[i]; i++) {
        if (params[i] == 't')
            pg_p_text(&p, v[i].t ? v[i].t : "");
        else
            pg_p_int(&p, v[i].i);
    }
    PGresult *r = NULL;
    kp_err err = pg_run(s, stmt, &p, &r);
    if (err) return err;
    store_sql_val out[STORE_SQL_COLS_MAX];
    for (int i = 0; err == KP_OK && row && i < PQntuples(r); i++) {
        for (int c = 0; cols[c] && c < STORE_SQL_COLS_MAX; c++) {
            out[c].i = cols[c] == 'i' ? pg_int(r, i, c) : 0;
            out[c].t = cols[c] == 't' ? PQgetvalue(r, i, c) : NULL;
        }
        err = row(ctx, out);
    }
    if (err == KP_OK && changes) *changes = pg_changes(r);
    PQclear(r);
    return err;
}
