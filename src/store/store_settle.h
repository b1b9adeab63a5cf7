/*
 * store_settle.h: kp_settle_ops (kopilka/coalition.h) written once for
 * every backend, as store_marketing.h states the segments and campaigns:
 * each operation is portable SQL (store_settle.c) that a backend runs
 * through its small executor (store_sqlite_settle.c, store_pg_settle.c), so
 * SQLite and PostgreSQL keep and find the same entries, periods and
 * statements by construction. The one statement that differs is the lock
 * of the settlement state: PostgreSQL's writers read it FOR SHARE and a
 * close FOR UPDATE; SQLite has one writer at a time and needs no lock.
 *
 * Parameters are $1, $2, ... (SQLite binds them by name, PostgreSQL by
 * number); each statement says their types and its columns' types, one
 * letter each: i an integer, t a text.
 */
#ifndef KOPILKA_STORE_SETTLE_H
#define KOPILKA_STORE_SETTLE_H

#include <kopilka/coalition.h>
#include <kopilka/store.h>

#include "store_sql.h"

typedef enum store_st_stmt {
    ST_STATE_SHARE,   /* the state row, locked FOR SHARE on PostgreSQL */
    ST_STATE_UPDATE,  /* the state row, locked FOR UPDATE on PostgreSQL */
    ST_ENTRY_INSERT,
    ST_ENTRIES_OF_OP,
    ST_ENTRIES_SCAN,
    ST_STATE_SET,
    ST_PERIOD_INSERT,
    ST_PERIOD_GET,
    ST_PERIOD_LIST,
    ST_STATEMENT_INSERT,
    ST_STATEMENT_GET,
    ST_STATEMENTS_OF,
    ST_ENTRY_PERIODS,
    ST__COUNT
} store_st_stmt;

typedef struct store_st_sql {
    const char *sql;
    const char *pg;     /* PostgreSQL's own text, NULL: `sql` */
    const char *params; /* "iit": $1 and $2 integers, $3 a text */
    const char *cols;   /* the columns of its rows, "" for none */
} store_st_sql;

extern const store_st_sql store_st_queries[ST__COUNT];

/* One value: a parameter or a column (store_sql.h). */
typedef store_sql_val store_st_val;
typedef store_sql_row_fn store_st_row_fn;

/* A backend's executor: runs `stmt` with parameters v[] (as
 * store_st_queries[stmt].params says), calls row(ctx, cols) for each row
 * (a failure of row stops and is returned). Errors as store.h says, the
 * message in s->last_error. */
typedef kp_err (*store_st_exec_fn)(kp_store *s, store_st_stmt stmt, const store_st_val *v,
                                   store_st_row_fn row, void *ctx);

/* SQLite's statements of these operations on one connection, prepared at
 * their first use and kept (an operation's entries are written on a
 * till's path); store_sqlite.c keeps the pointer and closes it with the
 * connection. */
struct sqlite_settle;
struct sqlite_settle **store_sqlite_settle_slot(kp_store *s);
void store_sqlite_settle_close(struct sqlite_settle *t);

kp_err store_sqlite_st_exec(kp_store *s, store_st_stmt stmt, const store_st_val *v,
                            store_st_row_fn row, void *ctx);
kp_err store_pg_st_exec(kp_store *s, store_st_stmt stmt, const store_st_val *v,
                        store_st_row_fn row, void *ctx);

/* entries_put's checks (KP_ERR_INVALID with the sentence in last_error)
 * and an entry's values for ST_ENTRY_INSERT, for a backend's own put. */
kp_err store_settle_entries_check(kp_store *s, int32_t period, const kp_settle_entry *entries,
                                  size_t n);
void store_settle_entry_values(int64_t op_id, kp_time booked_at, int32_t period,
                               const kp_settle_entry *e, store_st_val v[9]);
/* PostgreSQL's entries_put: the lock and the inserts in one round trip. */
kp_err store_pg_settle_entries_put(kp_store *s, int64_t op_id, kp_time booked_at, int32_t period,
                                   const kp_settle_entry *entries, size_t n);

/* The ops over each executor (store.h's kp_store_ops.settle). */
extern const kp_settle_ops store_sqlite_settle_ops;
extern const kp_settle_ops store_pg_settle_ops;

/* The tables, for SQLite (made at open) and PostgreSQL (migration 13). The
 * state's one row is made with them. */
extern const char store_sqlite_settle_schema[];
extern const char store_pg_settle_schema[];

#endif
