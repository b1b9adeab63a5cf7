/*
 * store_sqlite_settle.c: the SQLite executor of the settlement operations
 * (store_settle.h): each statement prepared at its first use on the
 * connection and kept until it closes (settlement entries are written on a
 * till's path, a few a purchase), run through store_sqlite_sql_step(). A
 * statement is not run again from inside its own rows' callback. The
 * tables (store_sqlite_settle_schema) are made at open. SQLite has one
 * writer at a time, so the state needs no lock: a close and a booking
 * never overlap.
 */
#include "store_settle.h"
#include "store_sqlite_group.h"
#include "store_sqlite_int.h"

#include <stdlib.h>

struct sqlite_settle {
    sqlite3_stmt *stmt[ST__COUNT];
};

void store_sqlite_settle_close(struct sqlite_settle *t)
{
    if (t == NULL) return;
    for (int i = 0; i < ST__COUNT; i++) sqlite3_finalize(t->stmt[i]);
    free(t);
}

kp_err store_sqlite_st_exec(kp_store *s, store_st_stmt stmt, const store_st_val *v,
                            store_st_row_fn row, void *ctx)
{
    struct sqlite_settle **slot = store_sqlite_settle_slot(s);
    if (*slot == NULL && (*slot = calloc(1, sizeof **slot)) == NULL) {
        snprintf(s->last_error, sizeof s->last_error, "out of memory");
        return KP_ERR_NOMEM;
    }
    const store_st_sql *q = &store_st_queries[stmt];
    sqlite3_stmt **st = &(*slot)->stmt[stmt];
    if (*st == NULL) {
        sqlite3 *db = store_sqlite_db(s);
        int rc = sqlite3_prepare_v3(db, q->sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
        if (rc != SQLITE_OK) {
            *st = NULL;
            return store_sqlite_fail(db, s->last_error, sizeof s->last_error, rc);
        }
    }
    return store_sqlite_sql_step(s, *st, q->params, q->cols, v, row, ctx, NULL);
}
