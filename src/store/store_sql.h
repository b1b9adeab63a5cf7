/*
 * store_sql.h: running one statement of portable SQL text on either
 * backend, for the parts written once for both (store_marketing.c,
 * store_settle.c): its parameters $1, $2, ... and its columns each typed
 * by one letter (i an integer, t a text), its rows handed over one by one.
 * SQLite binds the parameters by name and prepares the text when it runs;
 * PostgreSQL runs it as a named statement of the connection (pg_stmt).
 */
#ifndef KOPILKA_STORE_SQL_H
#define KOPILKA_STORE_SQL_H

#include <kopilka/store.h>

enum { STORE_SQL_COLS_MAX = 24 };

/* One value: a parameter or a column (text valid during the call only;
 * a NULL column reads as 0 or ""). */
typedef struct store_sql_val {
    int64_t i;
    const char *t;
} store_sql_val;

typedef kp_err (*store_sql_row_fn)(void *ctx, const store_sql_val *cols);

/* Runs `sql` with parameters v[] typed by `params`, calls row(ctx, cols)
 * (may be NULL) for each row of columns typed by `cols` (a failure of row
 * stops and is returned), and sets *changes (may be NULL) to the rows a
 * write touched. Errors as store.h says, the message in s->last_error. */
kp_err store_sqlite_sql_run(kp_store *s, const char *sql, const char *params, const char *cols,
                            const store_sql_val *v, store_sql_row_fn row, void *ctx,
                            int64_t *changes);
/* The same with a statement prepared already (st, of sqlite3_prepare*),
 * reset after: no text prepared on the way. */
struct sqlite3_stmt;
kp_err store_sqlite_sql_step(kp_store *s, struct sqlite3_stmt *st, const char *params,
                             const char *cols, const store_sql_val *v, store_sql_row_fn row,
                             void *ctx, int64_t *changes);
/* The same on PostgreSQL; `stmt` is a struct pg_stmt (store_pg_int.h)
 * whose text is the statement's. */
struct pg_stmt;
kp_err store_pg_sql_run(kp_store *s, struct pg_stmt *stmt, const char *params, const char *cols,
                        const store_sql_val *v, store_sql_row_fn row, void *ctx, int64_t *changes);

#endif
