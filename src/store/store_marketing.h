/*
 * store_marketing.h: kp_marketing_ops (kopilka/marketing.h) written once
 * for every backend, as store_report.h states the reports: each operation
 * is portable SQL (store_marketing.c) that a backend runs unchanged through
 * its small executor (store_sqlite_marketing.c, store_pg_marketing.c), so
 * SQLite and PostgreSQL keep and find the same rows by construction.
 *
 * Parameters are $1, $2, ... (SQLite binds them by name, PostgreSQL by
 * number); each statement says their types and its columns' types, one
 * letter each: i an integer, t a text.
 */
#ifndef KOPILKA_STORE_MARKETING_H
#define KOPILKA_STORE_MARKETING_H

#include <kopilka/marketing.h>

#include "store_sql.h"

typedef enum store_mk_stmt {
    MK_SEG_INSERT,
    MK_SEG_UPDATE,
    MK_SEG_GET,
    MK_SEG_LIST,
    MK_SEG_DELETE,
    MK_SEG_SCAN,
    MK_CAMP_INSERT,
    MK_CAMP_UPDATE,
    MK_CAMP_GET,
    MK_CAMP_LIST,
    MK_CAMP_DUE,
    MK_MEM_ADD,
    MK_MEM_LIST,
    MK_MEM_SETTLE,
    MK_MEM_DELETE,
    MK_STATS_MEMBERS,
    MK_STATS_USED,
    MK_STATS_MESSAGES,
    MK_STATS_REVENUE,
    MK__COUNT
} store_mk_stmt;

enum { MK_PARAMS_MAX = 24, MK_COLS_MAX = 24 };

typedef struct store_mk_sql {
    const char *sql;
    const char *params; /* "iit": $1 and $2 integers, $3 a text */
    const char *cols;   /* the columns of its rows, "" for none */
} store_mk_sql;

extern const store_mk_sql store_mk_queries[MK__COUNT];

/* One value: a parameter or a column (store_sql.h). */
typedef store_sql_val store_mk_val;
typedef store_sql_row_fn store_mk_row_fn;

/* A backend's executor: runs statement `stmt` with its parameters v[]
 * (as store_mk_queries[stmt].params says), calls row(ctx, cols) for each
 * row (a failure of row stops and is returned), and sets *changes (may be
 * NULL) to the rows a write touched. Errors as store.h says, the message
 * in s->last_error. */
typedef kp_err (*store_mk_exec_fn)(kp_store *s, store_mk_stmt stmt, const store_mk_val *v,
                                   store_mk_row_fn row, void *ctx, int64_t *changes);

kp_err store_sqlite_mk_exec(kp_store *s, store_mk_stmt stmt, const store_mk_val *v,
                            store_mk_row_fn row, void *ctx, int64_t *changes);
kp_err store_pg_mk_exec(kp_store *s, store_mk_stmt stmt, const store_mk_val *v,
                        store_mk_row_fn row, void *ctx, int64_t *changes);

/* The ops over each executor (store.h's kp_store_ops.marketing). */
extern const kp_marketing_ops store_sqlite_marketing_ops;
extern const kp_marketing_ops store_pg_marketing_ops;

/* The tables, for SQLite (made at open) and PostgreSQL (migration 7). */
extern const char store_sqlite_marketing_schema[];
extern const char store_pg_marketing_schema[];
/* campaign_members.lot_id added, and filled for the members granted
 * before it (SQLite: at open when missing; PostgreSQL: migration 11). */
extern const char store_mk_lot_column[];
extern const char store_mk_lot_fill[];
/* campaigns.rule and campaigns.program_version (SQLite at open,
 * PostgreSQL migration 16). */
extern const char store_mk_rule_columns[];

struct sqlite3;
/* Makes the tables at open, adding lot_id to an older campaign_members;
 * an SQLite result code. */
int store_sqlite_marketing_open(struct sqlite3 *db);

#endif
