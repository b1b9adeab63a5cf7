/*
 * store_migrate.h: moving an embedded (SQLite) database into an empty
 * PostgreSQL database, table by table (`kopilka migrate FROM.db
 * postgresql://...`, src/cli/cmd_migrate.c).
 *
 * Generic by design: the tables and columns to copy are read from the
 * SQLite file itself, and each must exist in the target's schema (the
 * PostgreSQL backend uses the same table and column names); a table or a
 * column the target lacks is refused, never dropped. Rows keep their ids;
 * identity sequences are then moved past the largest id.
 *
 * All or nothing: the whole copy is one PostgreSQL transaction, which the
 * caller checks (kp_migrate_target() for verify, kp_migrate_totals() on
 * both sides) before kp_migrate_commit(); kp_migrate_close() without a
 * commit rolls every row back. The schema itself is created when the
 * target is opened (the backend's versioned migrations commit on their
 * own), so a failed run leaves the target with Kopilka's empty tables,
 * which a new run accepts and fills.
 *
 * The source is read in one SQLite transaction (one snapshot) on a
 * connection of this module's own, which holds the file's write lock until
 * kp_migrate_close(); the caller makes sure no server is serving it
 * (cmd_migrate.c holds its writer's lock, kp_group_ops.open, throughout).
 */
#ifndef KOPILKA_STORE_MIGRATE_H
#define KOPILKA_STORE_MIGRATE_H

#include <kopilka/store.h>

typedef struct kp_migrate kp_migrate;

/* Where the copy is, for the caller's display: rows() every few thousand
 * rows (all tables together), table() once a table is copied. Either may
 * be NULL. */
typedef struct kp_migrate_progress {
    void (*rows)(void *ctx, int64_t done, int64_t total);
    void (*table)(void *ctx, const char *table, int64_t rows);
    void *ctx;
} kp_migrate_progress;

/* What both sides must agree on after the copy. */
typedef struct kp_migrate_totals {
    int64_t accounts;
    int64_t balance_sum;     /* of customers' accounts */
    int64_t sys_balance_sum; /* of the program's own accounts */
    int64_t ops;
    int64_t postings;
    int64_t lots;
    int64_t lots_remaining;  /* points still in lots */
    int64_t lots_expired;    /* points the expiry took from lots (lots.expired) */
    int64_t customers;
    int64_t audit;           /* entries in the audit chain */
    char audit_head[65];     /* hex of the last entry's hash; "" when empty */
} kp_migrate_totals;

/* Opens the SQLite file at from_path (read in one snapshot) and the
 * PostgreSQL database at `to`, creating Kopilka's schema there when it is
 * missing; begins the target's transaction, locks the tables to copy
 * against writers, and checks the plan:
 *   - every table and column of the source exists in the target
 *     (KP_ERR_INVALID naming it);
 *   - the target holds no Kopilka data: its tables are empty, except the
 *     rows the schema itself makes (meta, and the program's own accounts
 *     at zero) (KP_ERR_CONFLICT naming the tables that hold rows).
 * *out is NULL on failure, with e saying why. */
kp_err kp_migrate_open(const char *from_path, const char *to, kp_migrate **out, kp_error *e);

/* How many tables will be copied, and the source's row count of table i
 * (in the order of the copy: tables a foreign key of the target names come
 * before the tables that name them). */
size_t kp_migrate_tables(const kp_migrate *m);
int64_t kp_migrate_table_rows(const kp_migrate *m, size_t i);

/* Copies every table with COPY ... FROM STDIN, in dependency order, then
 * moves each identity sequence past its table's largest id. A value the
 * target's column cannot hold (a BLOB into a text column) is refused
 * naming the table, the column and the row. Each table's copied row count
 * must equal the source's. Call once. */
kp_err kp_migrate_copy(kp_migrate *m, const kp_migrate_progress *progress, kp_error *e);

/* The totals of the source snapshot (target false) or of the target's
 * transaction so far (target true). */
kp_err kp_migrate_totals_of(kp_migrate *m, bool target, kp_migrate_totals *out, kp_error *e);

/* Writes one line per total that differs into report(ctx, line); returns
 * how many differ. */
int kp_migrate_totals_compare(const kp_migrate_totals *source, const kp_migrate_totals *target,
                              void (*report)(void *ctx, const char *line), void *ctx);

/* The target store, inside the copy's transaction: its verify() sees the
 * copied rows before they are committed. Owned by m; valid until
 * kp_migrate_close(). */
kp_store *kp_migrate_target(kp_migrate *m);

/* Commits the copy. On failure nothing of it is in the target. */
kp_err kp_migrate_commit(kp_migrate *m, kp_error *e);

/* Rolls back unless committed, and closes both connections. NULL is a no-op. */
void kp_migrate_close(kp_migrate *m);

#endif
