/*
 * store_sqlite_draws.c: kp_draws_ops over SQLite (kopilka/draws.h): the
 * table `draws`, one row a draw, its closing columns empty (closed_at 0)
 * until draw_close fills them once.
 */
#include "store_sqlite_draws.h"
#include "store_draws.h"
#include "store_sqlite_int.h"

#include <stdlib.h>
#include <string.h>

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS draws (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    "  from_at INTEGER NOT NULL, to_at INTEGER NOT NULL, rule INTEGER NOT NULL,"
    "  per_minor INTEGER NOT NULL, store TEXT NOT NULL, tier TEXT NOT NULL,"
    "  prizes TEXT NOT NULL, commitment TEXT NOT NULL, sealed_seed TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL, created_by TEXT NOT NULL,"
    "  closed_at INTEGER NOT NULL DEFAULT 0, closed_by TEXT NOT NULL DEFAULT '',"
    "  seed TEXT NOT NULL DEFAULT '', entries TEXT, winners TEXT);";

enum { S_INSERT, S_GET, S_LIST, S_CLOSE, S_EXISTS, S__COUNT };

static const char *const queries[S__COUNT] = {
    [S_INSERT] = "INSERT INTO draws(name, from_at, to_at, rule, per_minor, store, tier, prizes,"
                 " commitment, sealed_seed, created_at, created_by)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [S_GET] = "SELECT " STORE_DRAW_COLUMNS ", entries, winners FROM draws WHERE id = ?1",
    [S_LIST] = "SELECT " STORE_DRAW_COLUMNS " FROM draws WHERE (?1 = 0 OR id < ?1)"
               " ORDER BY id DESC LIMIT ?2",
    [S_CLOSE] = "UPDATE draws SET closed_at = ?2, closed_by = ?3, seed = ?4, entries = ?5,"
                " winners = ?6 WHERE id = ?1 AND closed_at = 0",
    [S_EXISTS] = "SELECT count(*) FROM draws WHERE id = ?1",
};

struct sqlite_draws {
    sqlite3 *db;
    char *last_error;
    size_t last_error_size;
    sqlite3_stmt *stmt[S__COUNT];
};

static kp_err fail(sqlite_draws *t, int rc)
{
    return store_sqlite_fail(t->db, t->last_error, t->last_error_size, rc);
}

static sqlite3_stmt *q(sqlite_draws *t, int id) { return store_sqlite_fresh(t->stmt[id]); }

static char *dup_col(sqlite3_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    return v ? strdup((const char *)v) : NULL;
}

static kp_err draw_insert(kp_store *s, kp_draw *d)
{
    sqlite_draws *t = store_sqlite_draws_of(s);
    kp_err err = store_draw_check(s, d);
    if (err) return err;
    sqlite3_stmt *st = q(t, S_INSERT);
    sqlite3_bind_text(st, 1, d->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, d->from);
    sqlite3_bind_int64(st, 3, d->to);
    sqlite3_bind_int(st, 4, (int)d->rule);
    sqlite3_bind_int64(st, 5, d->per_minor);
    sqlite3_bind_text(st, 6, d->store, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, d->tier, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, d->prizes, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, d->commitment, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, d->sealed_seed, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 11, d->created_at);
    sqlite3_bind_text(st, 12, d->created_by, -1, SQLITE_STATIC);
    err = store_sqlite_run(t->db, t->last_error, t->last_error_size, st);
    if (err == KP_OK) d->id = sqlite3_last_insert_rowid(t->db);
    return err;
}

/* Reads a row of S_GET or S_LIST (STORE_DRAW_COLUMNS, then entries and
 * winners when `texts`) into *d; false when out of memory (d released). */
static bool row_read(sqlite3_stmt *st, bool texts, kp_draw *d)
{
    memset(d, 0, sizeof *d);
    d->id = sqlite3_column_int64(st, 0);
    store_sqlite_copy_text(d->name, sizeof d->name, sqlite3_column_text(st, 1));
    d->from = sqlite3_column_int64(st, 2);
    d->to = sqlite3_column_int64(st, 3);
    d->rule = (kp_draw_rule)sqlite3_column_int(st, 4);
    d->per_minor = sqlite3_column_int64(st, 5);
    store_sqlite_copy_text(d->store, sizeof d->store, sqlite3_column_text(st, 6));
    store_sqlite_copy_text(d->tier, sizeof d->tier, sqlite3_column_text(st, 7));
    d->prizes = dup_col(st, 8);
    store_sqlite_copy_text(d->commitment, sizeof d->commitment, sqlite3_column_text(st, 9));
    store_sqlite_copy_text(d->sealed_seed, sizeof d->sealed_seed, sqlite3_column_text(st, 10));
    d->created_at = sqlite3_column_int64(st, 11);
    store_sqlite_copy_text(d->created_by, sizeof d->created_by, sqlite3_column_text(st, 12));
    d->closed_at = sqlite3_column_int64(st, 13);
    store_sqlite_copy_text(d->closed_by, sizeof d->closed_by, sqlite3_column_text(st, 14));
    store_sqlite_copy_text(d->seed, sizeof d->seed, sqlite3_column_text(st, 15));
    bool ok = d->prizes != NULL;
    if (texts) {
        d->entries = dup_col(st, 16);
        d->winners = dup_col(st, 17);
        if ((sqlite3_column_type(st, 16) != SQLITE_NULL && d->entries == NULL) ||
            (sqlite3_column_type(st, 17) != SQLITE_NULL && d->winners == NULL))
            ok = false;
    }
    if (!ok) kp_draw_release(d);
    return ok;
}

static kp_err draw_get(kp_store *s, int64_t id, kp_draw *out)
{
    sqlite_draws *t = store_sqlite_draws_of(s);
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = q(t, S_GET);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    kp_err err = KP_OK;
    if (rc == SQLITE_ROW) err = row_read(st, true, out) ? KP_OK : KP_ERR_NOMEM;
    else if (rc == SQLITE_DONE) err = KP_ERR_NOT_FOUND;
    else err = fail(t, rc);
    sqlite3_reset(st);
    return err;
}

static kp_err draw_list(kp_store *s, int64_t before, kp_draw *items, size_t limit, size_t *n)
{
    sqlite_draws *t = store_sqlite_draws_of(s);
    *n = 0;
    sqlite3_stmt *st = q(t, S_LIST);
    sqlite3_bind_int64(st, 1, before);
    sqlite3_bind_int64(st, 2, (int64_t)limit);
    int rc;
    kp_err err = KP_OK;
    while (err == KP_OK && *n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (row_read(st, false, &items[*n])) ++*n;
        else err = KP_ERR_NOMEM;
    }
    if (err == KP_OK && *n < limit && rc != SQLITE_DONE) err = fail(t, rc);
    sqlite3_reset(st);
    if (err)
        while (*n > 0) kp_draw_release(&items[--*n]);
    return err;
}

static kp_err draw_close(kp_store *s, int64_t id, const kp_draw *d)
{
    sqlite_draws *t = store_sqlite_draws_of(s);
    sqlite3_stmt *st = q(t, S_CLOSE);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, d->closed_at);
    sqlite3_bind_text(st, 3, d->closed_by, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, d->seed, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, d->entries ? d->entries : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, d->winners ? d->winners : "", -1, SQLITE_STATIC);
    kp_err err = store_sqlite_run(t->db, t->last_error, t->last_error_size, st);
    if (err || sqlite3_changes(t->db) > 0) return err;
    st = q(t, S_EXISTS);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        err = sqlite3_column_int64(st, 0) ? KP_ERR_CONFLICT : KP_ERR_NOT_FOUND;
    else
        err = fail(t, rc);
    sqlite3_reset(st);
    if (err == KP_ERR_CONFLICT)
        snprintf(t->last_error, t->last_error_size, "draw %lld is closed already", (long long)id);
    else if (err == KP_ERR_NOT_FOUND)
        snprintf(t->last_error, t->last_error_size, "no draw %lld", (long long)id);
    return err;
}

kp_err store_sqlite_draws_open(sqlite3 *db, char *last_error, size_t last_error_size,
                               sqlite_draws **out)
{
    *out = NULL;
    sqlite_draws *t = calloc(1, sizeof *t);
    if (t == NULL) return KP_ERR_NOMEM;
    t->db = db;
    t->last_error = last_error;
    t->last_error_size = last_error_size;
    int rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
    rc = store_sqlite_prepare_all(db, rc, queries, S__COUNT, t->stmt);
    if (rc != SQLITE_OK) {
        kp_err err = fail(t, rc);
        store_sqlite_draws_close(t);
        return err;
    }
    *out = t;
    return KP_OK;
}

void store_sqlite_draws_close(sqlite_draws *t)
{
    if (t == NULL) return;
    store_sqlite_finalize_all(t->stmt, S__COUNT);
    free(t);
}

const kp_draws_ops store_sqlite_draws_ops = {
    .draw_insert = draw_insert,
    .draw_get = draw_get,
    .draw_list = draw_list,
    .draw_close = draw_close,
};
