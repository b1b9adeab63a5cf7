/*
 * store_migrate.c: the table-by-table copy of a SQLite database into
 * PostgreSQL behind `kopilka migrate` (store_migrate.h says what it
 * promises). Rows go out with COPY ... FROM STDIN in the text format, in
 * chunks of COPY_CHUNK bytes, all in the target store's one transaction.
 */
#include "store_migrate.h"
#include "store_pg_int.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

enum {
    MIG_TABLES_MAX = 64,
    MIG_COLUMNS_MAX = 48,
    MIG_NAME_MAX = 64,
    COPY_CHUNK = 1 << 16,
    COPY_BUF_MAX = 64 << 20, /* one row may hold a 16 MiB program, hex-encoded twice over */
    PROGRESS_EVERY_ROWS = 4096,
    SOURCE_BUSY_MS = 10000, /* a command writing to the source finishes first */
};

typedef struct mig_column {
    char name[MIG_NAME_MAX];
    bool bytea; /* the target column is bytea: the value goes out hex-encoded */
} mig_column;

typedef struct mig_table {
    char name[MIG_NAME_MAX];
    mig_column cols[MIG_COLUMNS_MAX];
    int n_cols;
    const char *where;        /* the source's rows to copy (NULL: all) */
    bool seeded;              /* the target's schema made rows in it: merged by key */
    char key[MIG_COLUMNS_MAX][MIG_NAME_MAX]; /* the target's primary key, when seeded */
    int n_key;
    unsigned oid;             /* the target's table */
    int64_t rows;             /* in the source snapshot (after `where`) */
} mig_table;

struct kp_migrate {
    sqlite3 *src;
    kp_store *dst;
    PGconn *conn;
    mig_table tables[MIG_TABLES_MAX];
    size_t n_tables;
    int64_t rows_total;
    bool in_txn;
    bool copied;
    char from[4096];
};

/* Tables whose rows the target's schema makes itself, and how the source's
 * rows join them (by key, the source's row replacing the target's). Every
 * other table must be empty in the target.
 *   meta: the keys that describe the SQLite file (its schema versions, the
 *     outbox's among them, its operation-log mark) are not copied: the target's own describe it;
 *     the rest (the database's identity, the terminal generation) are.
 *   sys_accounts: the program's own accounts, made at zero balance; the
 *     source's balances replace them. */
static const struct {
    const char *table;
    const char *where;        /* the source's rows to copy */
    const char *empty_unless; /* a target row "holds data" when this is true */
} seeded_tables[] = {
    {"meta",
     "key NOT IN ('schema_version', 'people_schema', 'terminals_schema', 'programs_schema', "
     "'notify_schema', 'lots_schema', 'accounts_schema', "
     "'oplog_seq')",
     NULL},
    {"sys_accounts", NULL, "balance <> 0"},
    /* settle_state: its one row, made with the table (store_settle.c); the
     * source's replaces it. */
    {"settle_state", NULL, "closed_through <> 0 OR next_number <> 1"},
};

static kp_err sqlite_failed(kp_migrate *m, kp_error *e, const char *what)
{
    return kp_error_set(e, KP_ERR_IO, "from", "cannot read %s of %s: %s", what, m->from,
                        sqlite3_errmsg(m->src));
}

/* Runs sql with text parameters on the target; the result when its status
 * is `want`, else NULL with e naming `what` and the server's message. */
static PGresult *pg_query(kp_migrate *m, const char *sql, int n, const char *const *params,
                          ExecStatusType want, const char *what, kp_error *e)
{
    PGresult *r = PQexecParams(m->conn, sql, n, NULL, params, NULL, NULL, 0);
    if (r && PQresultStatus(r) == want) return r;
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(m->conn);
    kp_error_set(e, KP_ERR_IO, "to", "%s: %.*s", what, (int)strcspn(msg, "\n"), msg);
    PQclear(r);
    return NULL;
}

/* Kopilka's tables are plain lower-case names; anything else in the file
 * is not Kopilka's and is refused rather than quoted into SQL. */
static bool plain_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= MIG_NAME_MAX || (s[0] >= '0' && s[0] <= '9')) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* ---- the source: tables, columns and counts of the snapshot */

static kp_err source_columns(kp_migrate *m, mig_table *t, kp_error *e)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->src, "SELECT name FROM pragma_table_info(?1) ORDER BY cid", -1,
                           &st, NULL) != SQLITE_OK)
        return sqlite_failed(m, e, "the columns");
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
    kp_err err = KP_OK;
    int rc;
    while (err == KP_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *col = (const char *)sqlite3_column_text(st, 0);
        if (col == NULL || !plain_name(col))
            err = kp_error_set(e, KP_ERR_INVALID, "from",
                               "table %s of %s has a column named \"%s\", not one of Kopilka's "
                               "(lower-case letters, digits and _): is it a Kopilka database?",
                               t->name, m->from, col ? col : "");
        else if (t->n_cols == MIG_COLUMNS_MAX)
            err = kp_error_set(e, KP_ERR_LIMIT, "from",
                               "table %s of %s has more than %d columns, more than any of "
                               "Kopilka's",
                               t->name, m->from, MIG_COLUMNS_MAX);
        else
            snprintf(t->cols[t->n_cols++].name, MIG_NAME_MAX, "%s", col);
    }
    if (err == KP_OK && rc != SQLITE_DONE) err = sqlite_failed(m, e, "the columns");
    sqlite3_finalize(st);
    return err;
}

static kp_err source_count(kp_migrate *m, mig_table *t, kp_error *e)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"%s%s", t->name, t->where ? " WHERE " : "",
             t->where ? t->where : "");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->src, sql, -1, &st, NULL) != SQLITE_OK)
        return sqlite_failed(m, e, t->name);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) t->rows = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? KP_OK : sqlite_failed(m, e, t->name);
}

/* Opens the file and takes the snapshot every later read sees: one
 * transaction, held until close, that also holds SQLite's write lock, so a
 * command started meanwhile (`terminal add`) waits, then fails, instead of
 * adding a row the copy would miss. Only reads run in it. */
static kp_err source_open(kp_migrate *m, kp_error *e)
{
    if (sqlite3_open_v2(m->from, &m->src, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(m->src, SOURCE_BUSY_MS) != SQLITE_OK ||
        sqlite3_exec(m->src, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return kp_error_set(e, KP_ERR_IO, "from", "cannot open %s: %s", m->from,
                            m->src ? sqlite3_errmsg(m->src) : "out of memory");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->src,
                           "SELECT name FROM sqlite_schema WHERE type = 'table' AND "
                           "name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
                           -1, &st, NULL) != SQLITE_OK)
        return sqlite_failed(m, e, "the tables");
    kp_err err = KP_OK;
    int rc;
    while (err == KP_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (name == NULL || !plain_name(name)) {
            err = kp_error_set(e, KP_ERR_INVALID, "from",
                               "%s has a table named \"%s\", not one of Kopilka's (lower-case "
                               "letters, digits and _): is it a Kopilka database?",
                               m->from, name ? name : "");
            break;
        }
        if (m->n_tables == MIG_TABLES_MAX) {
            err = kp_error_set(e, KP_ERR_LIMIT, "from", "%s has more than %d tables", m->from,
                               MIG_TABLES_MAX);
            break;
        }
        mig_table *t = &m->tables[m->n_tables++];
        snprintf(t->name, sizeof t->name, "%s", name);
        for (size_t i = 0; i < sizeof seeded_tables / sizeof seeded_tables[0]; i++)
            if (strcmp(name, seeded_tables[i].table) == 0) t->where = seeded_tables[i].where;
    }
    if (err == KP_OK && rc != SQLITE_DONE) err = sqlite_failed(m, e, "the tables");
    sqlite3_finalize(st);
    if (err == KP_OK && m->n_tables == 0)
        err = kp_error_set(e, KP_ERR_INVALID, "from", "%s has no tables: not a Kopilka database",
                           m->from);
    for (size_t i = 0; i < m->n_tables && err == KP_OK; i++) {
        if ((err = source_columns(m, &m->tables[i], e)) == KP_OK)
            err = source_count(m, &m->tables[i], e);
        m->rows_total += m->tables[i].rows;
    }
    return err;
}

/* ---- the target: the plan checked against its schema */

/* Finds t in the target (its oid) and matches its columns: each of the
 * source's must be there; each of the target's that the source lacks must
 * be nullable or have a default. */
static kp_err target_table(kp_migrate *m, mig_table *t, kp_error *e)
{
    char quoted[MIG_NAME_MAX + 2], oid[16];
    snprintf(quoted, sizeof quoted, "\"%s\"", t->name);
    const char *p[1] = {quoted};
    PGresult *r = pg_query(m, "SELECT to_regclass($1)::oid", 1, p, PGRES_TUPLES_OK,
                           "cannot read the target's tables", e);
    if (r == NULL) return KP_ERR_IO;
    bool missing = PQgetisnull(r, 0, 0);
    t->oid = missing ? 0 : (unsigned)strtoul(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (missing)
        return kp_error_set(e, KP_ERR_INVALID, "to",
                            "table %s of %s has no counterpart in the target's schema: this "
                            "version of Kopilka cannot migrate it",
                            t->name, m->from);
    snprintf(oid, sizeof oid, "%u", t->oid);
    p[0] = oid;
    r = pg_query(m,
                 "SELECT attname, atttypid = 'bytea'::regtype, "
                 "attnotnull AND NOT atthasdef AND attidentity = '' FROM pg_attribute "
                 "WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped",
                 1, p, PGRES_TUPLES_OK, "cannot read the target's columns", e);
    if (r == NULL) return KP_ERR_IO;
    kp_err err = KP_OK;
    bool found[MIG_COLUMNS_MAX] = {false};
    for (int row = 0; row < PQntuples(r) && err == KP_OK; row++) {
        const char *name = PQgetvalue(r, row, 0);
        int c = 0;
        while (c < t->n_cols && strcmp(t->cols[c].name, name) != 0) c++;
        if (c < t->n_cols) {
            found[c] = true;
            t->cols[c].bytea = PQgetvalue(r, row, 1)[0] == 't';
        } else if (PQgetvalue(r, row, 2)[0] == 't') {
            err = kp_error_set(e, KP_ERR_INVALID, "to",
                               "the target's column %s.%s needs a value (NOT NULL, no "
                               "default) that %s does not have",
                               t->name, name, m->from);
        }
    }
    PQclear(r);
    for (int c = 0; c < t->n_cols && err == KP_OK; c++)
        if (!found[c])
            err = kp_error_set(e, KP_ERR_INVALID, "to",
                               "column %s.%s of %s has no counterpart in the target's schema: "
                               "this version of Kopilka cannot migrate it",
                               t->name, t->cols[c].name, m->from);
    return err;
}

/* The target's primary key of t, for merging into a seeded table. */
static kp_err target_key(kp_migrate *m, mig_table *t, kp_error *e)
{
    char oid[16];
    snprintf(oid, sizeof oid, "%u", t->oid);
    const char *p[1] = {oid};
    PGresult *r = pg_query(m,
                           "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON "
                           "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                           "WHERE i.indrelid = $1::oid AND i.indisprimary",
                           1, p, PGRES_TUPLES_OK, "cannot read the target's keys", e);
    if (r == NULL) return KP_ERR_IO;
    t->n_key = 0;
    for (int row = 0; row < PQntuples(r) && t->n_key < MIG_COLUMNS_MAX; row++)
        snprintf(t->key[t->n_key++], MIG_NAME_MAX, "%s", PQgetvalue(r, row, 0));
    PQclear(r);
    if (t->n_key == 0)
        return kp_error_set(e, KP_ERR_INVALID, "to",
                            "the target's table %s holds rows of its own and has no primary "
                            "key to merge %s's rows by",
                            t->name, m->from);
    return KP_OK;
}

/* Refuses a target that holds Kopilka data; marks the tables whose rows
 * the schema made (merged by key at the copy). */
static kp_err target_empty(kp_migrate *m, kp_error *e)
{
    char held[200] = "";
    size_t n_held = 0;
    for (size_t i = 0; i < m->n_tables; i++) {
        mig_table *t = &m->tables[i];
        const char *unless = NULL;
        bool seedable = false;
        for (size_t s = 0; s < sizeof seeded_tables / sizeof seeded_tables[0]; s++)
            if (strcmp(t->name, seeded_tables[s].table) == 0) {
                seedable = true;
                unless = seeded_tables[s].empty_unless;
            }
        char sql[512];
        snprintf(sql, sizeof sql, "SELECT EXISTS (SELECT 1 FROM \"%s\"), EXISTS (SELECT 1 FROM "
                 "\"%s\" WHERE %s)", t->name, t->name, seedable ? (unless ? unless : "false")
                 : "true");
        PGresult *r = pg_query(m, sql, 0, NULL, PGRES_TUPLES_OK, "cannot read the target", e);
        if (r == NULL) return KP_ERR_IO;
        bool rows = PQgetvalue(r, 0, 0)[0] == 't', data = PQgetvalue(r, 0, 1)[0] == 't';
        PQclear(r);
        if (data) {
            size_t len = strlen(held);
            if (len + strlen(t->name) + 8 < sizeof held)
                snprintf(held + len, sizeof held - len, "%s%s", n_held ? ", " : "", t->name);
            n_held++;
        } else if (rows) {
            t->seeded = true;
            kp_err err = target_key(m, t, e);
            if (err) return err;
        }
    }
    if (n_held)
        return kp_error_set(e, KP_ERR_CONFLICT, "to",
                            "the target already holds Kopilka data (rows in %s%s): migrate "
                            "fills an empty database only; create a new one",
                            held, n_held > 6 ? ", ..." : "");
    return KP_OK;
}

/* Orders the tables so that each comes after the tables its foreign keys
 * in the target name (the source has none: SQLite's are off). */
static kp_err target_order(kp_migrate *m, kp_error *e)
{
    PGresult *r = pg_query(m,
                           "SELECT conrelid::oid, confrelid::oid FROM pg_constraint "
                           "WHERE contype = 'f' AND conrelid <> confrelid",
                           0, NULL, PGRES_TUPLES_OK, "cannot read the target's foreign keys", e);
    if (r == NULL) return KP_ERR_IO;
    mig_table sorted[MIG_TABLES_MAX];
    bool placed[MIG_TABLES_MAX] = {false};
    size_t n = 0;
    while (n < m->n_tables) {
        size_t before = n;
        for (size_t i = 0; i < m->n_tables; i++) {
            if (placed[i]) continue;
            bool ready = true;
            for (int row = 0; row < PQntuples(r) && ready; row++) {
                if (strtoul(PQgetvalue(r, row, 0), NULL, 10) != m->tables[i].oid) continue;
                unsigned to = (unsigned)strtoul(PQgetvalue(r, row, 1), NULL, 10);
                for (size_t j = 0; j < m->n_tables; j++)
                    if (!placed[j] && j != i && m->tables[j].oid == to) ready = false;
            }
            if (ready) {
                placed[i] = true;
                sorted[n++] = m->tables[i];
            }
        }
        if (n == before) {
            PQclear(r);
            return kp_error_set(e, KP_ERR_INVALID, "to",
                                "the target's foreign keys make a cycle among the tables to "
                                "copy: no order fills them one after the other");
        }
    }
    PQclear(r);
    memcpy(m->tables, sorted, n * sizeof sorted[0]);
    return KP_OK;
}

kp_err kp_migrate_open(const char *from_path, const char *to, kp_migrate **out, kp_error *e)
{
    *out = NULL;
    if (!store_pg_location(to))
        return kp_error_set(e, KP_ERR_INVALID, "to", "the target must be a postgresql:// location");
    kp_migrate *m = calloc(1, sizeof *m);
    if (m == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    snprintf(m->from, sizeof m->from, "%s", from_path);
    kp_err err = source_open(m, e);
    if (err) goto out;
    if ((err = kp_store_open(to, true, &m->dst, e))) goto out;
    m->conn = ((pg_store *)m->dst)->conn;
    /* begin() defers its BEGIN (store_pg_int.h): send it before using conn. */
    if ((err = m->dst->ops->begin(m->dst)) || (err = pg_flush((pg_store *)m->dst))) {
        kp_error_set(e, err, "to", "cannot begin a transaction: %s", m->dst->last_error);
        goto out;
    }
    m->in_txn = true;
    for (size_t i = 0; i < m->n_tables && err == KP_OK; i++)
        err = target_table(m, &m->tables[i], e);
    if (err) goto out;
    /* Writers wait until the copy commits; readers see the empty tables. A
     * second migrate into the same database waits too, then finds data. */
    kp_buf lock;
    kp_buf_init(&lock, 16384);
    kp_buf_puts(&lock, "LOCK TABLE ");
    for (size_t i = 0; i < m->n_tables; i++)
        kp_buf_printf(&lock, "%s\"%s\"", i ? ", " : "", m->tables[i].name);
    kp_buf_puts(&lock, " IN EXCLUSIVE MODE");
    kp_buf_append(&lock, "", 1);
    PGresult *r = lock.failed ? NULL
                              : pg_query(m, lock.data, 0, NULL, PGRES_COMMAND_OK,
                                         "cannot lock the target's tables", e);
    kp_buf_release(&lock);
    if (r == NULL) {
        err = KP_ERR_IO;
        goto out;
    }
    PQclear(r);
    if ((err = target_empty(m, e)) == KP_OK) err = target_order(m, e);
out:
    if (err) {
        kp_migrate_close(m);
        return err;
    }
    *out = m;
    return KP_OK;
}

size_t kp_migrate_tables(const kp_migrate *m) { return m->n_tables; }
int64_t kp_migrate_table_rows(const kp_migrate *m, size_t i) { return m->tables[i].rows; }
kp_store *kp_migrate_target(kp_migrate *m) { return m->dst; }

/* ---- the copy */

/* Appends one value of the source row in COPY's text format. */
static kp_err copy_value(kp_migrate *m, const mig_table *t, int c, sqlite3_stmt *st,
                         int64_t row, kp_buf *b, kp_error *e)
{
    static const char hex[] = "0123456789abcdef";
    int type = sqlite3_column_type(st, c);
    if (type == SQLITE_NULL) return kp_buf_puts(b, "\\N") ? KP_OK : KP_ERR_LIMIT;
    if (t->cols[c].bytea) {
        const unsigned char *v = type == SQLITE_BLOB ? sqlite3_column_blob(st, c)
                                                     : sqlite3_column_text(st, c);
        int n = sqlite3_column_bytes(st, c);
        if (!kp_buf_reserve(b, b->len + 3 + 2 * (size_t)n)) return KP_ERR_LIMIT;
        kp_buf_puts(b, "\\\\x");
        for (int i = 0; i < n; i++) {
            b->data[b->len++] = hex[v[i] >> 4];
            b->data[b->len++] = hex[v[i] & 15];
        }
        return KP_OK;
    }
    if (type == SQLITE_BLOB)
        return kp_error_set(e, KP_ERR_INVALID, "from",
                            "%s.%s, row %lld of %s: a BLOB, which the target's column (not "
                            "bytea) cannot hold",
                            t->name, t->cols[c].name, (long long)row, m->from);
    if (type == SQLITE_INTEGER) return kp_buf_i64(b, sqlite3_column_int64(st, c)) ? KP_OK
                                                                                 : KP_ERR_LIMIT;
    const char *v = (const char *)sqlite3_column_text(st, c);
    int n = sqlite3_column_bytes(st, c);
    if (v == NULL) return KP_ERR_NOMEM;
    if ((int)strlen(v) != n)
        return kp_error_set(e, KP_ERR_INVALID, "from",
                            "%s.%s, row %lld of %s: text with a NUL byte, which PostgreSQL's "
                            "text cannot hold",
                            t->name, t->cols[c].name, (long long)row, m->from);
    if (!kp_buf_reserve(b, b->len + 2 * (size_t)n)) return KP_ERR_LIMIT;
    for (int i = 0; i < n; i++) {
        char ch = v[i], esc = ch == '\\' ? '\\' : ch == '\n' ? 'n' : ch == '\r' ? 'r'
                                                : ch == '\t' ? 't' : 0;
        if (esc) b->data[b->len++] = '\\';
        b->data[b->len++] = esc ? esc : ch;
    }
    return KP_OK;
}

static kp_err copy_send(kp_migrate *m, kp_buf *b, kp_error *e)
{
    if (b->len && PQputCopyData(m->conn, b->data, (int)b->len) != 1)
        return kp_error_set(e, KP_ERR_IO, "to", "cannot send rows: %s",
                            PQerrorMessage(m->conn));
    kp_buf_reset(b);
    return KP_OK;
}

/* Streams the source rows of t into the COPY the target is waiting on. */
static kp_err copy_rows(kp_migrate *m, const mig_table *t, const kp_migrate_progress *progress,
                        int64_t *done_all, kp_error *e)
{
    kp_buf sql;
    kp_buf_init(&sql, 8192);
    kp_buf_puts(&sql, "SELECT ");
    for (int c = 0; c < t->n_cols; c++)
        kp_buf_printf(&sql, "%s\"%s\"", c ? ", " : "", t->cols[c].name);
    kp_buf_printf(&sql, " FROM \"%s\"%s%s", t->name, t->where ? " WHERE " : "",
                  t->where ? t->where : "");
    kp_buf_append(&sql, "", 1);
    sqlite3_stmt *st = NULL;
    kp_err err = KP_OK;
    if (sql.failed || sqlite3_prepare_v2(m->src, sql.data, -1, &st, NULL) != SQLITE_OK)
        err = sqlite_failed(m, e, t->name);
    kp_buf_release(&sql);
    kp_buf b;
    kp_buf_init(&b, COPY_BUF_MAX);
    int64_t row = 0;
    int rc = SQLITE_DONE;
    while (err == KP_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        row++;
        for (int c = 0; c < t->n_cols && err == KP_OK; c++) {
            if (c) kp_buf_append(&b, "\t", 1);
            err = copy_value(m, t, c, st, row, &b, e);
        }
        if (err == KP_OK && !kp_buf_append(&b, "\n", 1)) err = KP_ERR_LIMIT;
        if (err == KP_ERR_LIMIT || (err == KP_OK && b.failed))
            err = kp_error_set(e, KP_ERR_LIMIT, "from", "%s, row %lld of %s: over %d MiB",
                               t->name, (long long)row, m->from, COPY_BUF_MAX >> 20);
        if (err == KP_OK && b.len >= COPY_CHUNK) err = copy_send(m, &b, e);
        if (err == KP_OK && row % PROGRESS_EVERY_ROWS == 0 && progress && progress->rows)
            progress->rows(progress->ctx, *done_all + row, m->rows_total);
    }
    if (err == KP_OK && rc != SQLITE_DONE) err = sqlite_failed(m, e, t->name);
    if (err == KP_OK) err = copy_send(m, &b, e);
    kp_buf_release(&b);
    sqlite3_finalize(st);
    *done_all += row;
    return err;
}

/* One table: COPY into it (or, when seeded, into a temporary table merged
 * into it by key), then the count check. */
static kp_err copy_table(kp_migrate *m, const mig_table *t, const kp_migrate_progress *progress,
                         int64_t *done_all, kp_error *e)
{
    kp_buf cols, sql;
    kp_buf_init(&cols, 8192);
    kp_buf_init(&sql, 32768);
    for (int c = 0; c < t->n_cols; c++)
        kp_buf_printf(&cols, "%s\"%s\"", c ? ", " : "", t->cols[c].name);
    kp_buf_append(&cols, "", 1);
    kp_err err = KP_OK;
    PGresult *r = NULL;
    if (t->seeded) {
        kp_buf_printf(&sql, "CREATE TEMPORARY TABLE kp_migrate_in (LIKE \"%s\") ON COMMIT DROP",
                      t->name);
        kp_buf_append(&sql, "", 1);
        if ((r = pg_query(m, sql.data, 0, NULL, PGRES_COMMAND_OK, t->name, e)) == NULL)
            err = KP_ERR_IO;
        PQclear(r);
        kp_buf_reset(&sql);
    }
    kp_buf_printf(&sql, "COPY %s%s%s (%s) FROM STDIN", t->seeded ? "kp_migrate_in" : "\"",
                  t->seeded ? "" : t->name, t->seeded ? "" : "\"", cols.data);
    kp_buf_append(&sql, "", 1);
    if (err == KP_OK && (cols.failed || sql.failed))
        err = kp_error_set(e, KP_ERR_LIMIT, "from", "table %s: its column list is too long",
                           t->name);
    if (err == KP_OK && (r = pg_query(m, sql.data, 0, NULL, PGRES_COPY_IN, t->name, e)) == NULL)
        err = KP_ERR_IO;
    PQclear(r);
    if (err == KP_OK) {
        err = copy_rows(m, t, progress, done_all, e);
        /* Ending with an error message aborts the COPY (and the transaction). */
        if (PQputCopyEnd(m->conn, err ? "kopilka migrate stopped" : NULL) != 1 && err == KP_OK)
            err = kp_error_set(e, KP_ERR_IO, "to", "cannot end the copy of %s: %s", t->name,
                               PQerrorMessage(m->conn));
        int64_t copied = -1;
        while ((r = PQgetResult(m->conn)) != NULL) {
            if (err == KP_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
                const char *msg = PQresultErrorMessage(r);
                err = kp_error_set(e, KP_ERR_IO, "to", "the target refused %s: %.*s", t->name,
                                   (int)strcspn(msg, "\n"), msg);
            } else if (err == KP_OK) {
                copied = strtoll(PQcmdTuples(r), NULL, 10);
            }
            PQclear(r);
        }
        if (err == KP_OK && copied != t->rows)
            err = kp_error_set(e, KP_ERR_IO, "to",
                               "table %s: %lld rows copied, the source has %lld", t->name,
                               (long long)copied, (long long)t->rows);
    }
    if (err == KP_OK && t->seeded) {
        kp_buf_reset(&sql);
        kp_buf_printf(&sql, "INSERT INTO \"%s\" (%s) SELECT %s FROM kp_migrate_in ON CONFLICT (",
                      t->name, cols.data, cols.data);
        for (int k = 0; k < t->n_key; k++)
            kp_buf_printf(&sql, "%s\"%s\"", k ? ", " : "", t->key[k]);
        kp_buf_puts(&sql, ") DO UPDATE SET ");
        for (int c = 0; c < t->n_cols; c++)
            kp_buf_printf(&sql, "%s\"%s\" = EXCLUDED.\"%s\"", c ? ", " : "", t->cols[c].name,
                          t->cols[c].name);
        kp_buf_puts(&sql, "; DROP TABLE kp_migrate_in");
        kp_buf_append(&sql, "", 1);
        if (sql.failed)
            err = kp_error_set(e, KP_ERR_LIMIT, "from", "table %s: its column list is too long",
                               t->name);
        else if ((r = PQexec(m->conn, sql.data)) == NULL ||
                 PQresultStatus(r) != PGRES_COMMAND_OK) {
            const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(m->conn);
            err = kp_error_set(e, KP_ERR_IO, "to", "cannot merge %s into the target's rows: %.*s",
                               t->name, (int)strcspn(msg, "\n"), msg);
        }
        PQclear(r);
    }
    kp_buf_release(&cols);
    kp_buf_release(&sql);
    return err;
}

/* Moves every identity (or serial) sequence of t past the largest value
 * copied, so that the next row the server adds gets a new id. */
static kp_err copy_sequences(kp_migrate *m, const mig_table *t, kp_error *e)
{
    char quoted[MIG_NAME_MAX + 2];
    snprintf(quoted, sizeof quoted, "\"%s\"", t->name);
    kp_err err = KP_OK;
    for (int c = 0; c < t->n_cols && err == KP_OK; c++) {
        const char *p[2] = {quoted, t->cols[c].name};
        PGresult *r = pg_query(m, "SELECT pg_get_serial_sequence($1, $2)", 2, p,
                               PGRES_TUPLES_OK, "cannot read the target's sequences", e);
        if (r == NULL) return KP_ERR_IO;
        if (!PQgetisnull(r, 0, 0)) {
            char sql[512];
            snprintf(sql, sizeof sql,
                     "SELECT setval($1, coalesce(greatest(max(\"%s\"), 0), 0) + 1, false) "
                     "FROM \"%s\"",
                     t->cols[c].name, t->name);
            const char *seq[1] = {PQgetvalue(r, 0, 0)};
            PGresult *s = pg_query(m, sql, 1, seq, PGRES_TUPLES_OK, "cannot move a sequence", e);
            if (s == NULL) err = KP_ERR_IO;
            PQclear(s);
        }
        PQclear(r);
    }
    return err;
}

kp_err kp_migrate_copy(kp_migrate *m, const kp_migrate_progress *progress, kp_error *e)
{
    if (m->copied) return kp_error_set(e, KP_ERR_INVALID, "", "the copy has been made already");
    m->copied = true;
    PGresult *r = pg_query(m, "SET LOCAL client_encoding = 'UTF8'", 0, NULL, PGRES_COMMAND_OK,
                           "cannot set the encoding", e);
    if (r == NULL) return KP_ERR_IO;
    PQclear(r);
    int64_t done_all = 0;
    for (size_t i = 0; i < m->n_tables; i++) {
        const mig_table *t = &m->tables[i];
        kp_err err = copy_table(m, t, progress, &done_all, e);
        if (err == KP_OK) err = copy_sequences(m, t, e);
        if (err) return err;
        if (progress && progress->rows) progress->rows(progress->ctx, done_all, m->rows_total);
        if (progress && progress->table) progress->table(progress->ctx, t->name, t->rows);
    }
    return KP_OK;
}

/* ---- totals on both sides, with the same SQL */

static const struct {
    const char *sql;
    size_t offset;
    const char *what;
} total_queries[] = {
    {"SELECT count(*) FROM accounts", offsetof(kp_migrate_totals, accounts), "accounts"},
    {"SELECT coalesce(sum(balance), 0) FROM accounts", offsetof(kp_migrate_totals, balance_sum),
     "sum of balances"},
    {"SELECT coalesce(sum(balance), 0) FROM sys_accounts",
     offsetof(kp_migrate_totals, sys_balance_sum), "sum of the program's own balances"},
    {"SELECT count(*) FROM ops", offsetof(kp_migrate_totals, ops), "operations"},
    {"SELECT count(*) FROM postings", offsetof(kp_migrate_totals, postings), "postings"},
    {"SELECT count(*) FROM lots", offsetof(kp_migrate_totals, lots), "lots"},
    {"SELECT coalesce(sum(remaining), 0) FROM lots", offsetof(kp_migrate_totals, lots_remaining),
     "points left in lots"},
    {"SELECT coalesce(sum(expired), 0) FROM lots", offsetof(kp_migrate_totals, lots_expired),
     "points the expiry took from lots"},
    {"SELECT count(*) FROM customers", offsetof(kp_migrate_totals, customers), "customers"},
    {"SELECT count(*) FROM audit", offsetof(kp_migrate_totals, audit), "audit entries"},
};

/* The hash of the newest audit entry, as lower-case hex on both sides. */
static const char audit_head_sqlite[] = "SELECT lower(hex(hash)) FROM audit ORDER BY seq DESC "
                                        "LIMIT 1";
static const char audit_head_pg[] = "SELECT encode(hash, 'hex') FROM audit ORDER BY seq DESC "
                                    "LIMIT 1";

/* One value of the source (its first column, as text); "" when no row. */
static kp_err source_value(kp_migrate *m, const char *sql, char *out, size_t size, kp_error *e)
{
    sqlite3_stmt *st;
    out[0] = '\0';
    if (sqlite3_prepare_v2(m->src, sql, -1, &st, NULL) != SQLITE_OK)
        return sqlite_failed(m, e, "the totals");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? KP_OK : sqlite_failed(m, e, "the totals");
}

static kp_err target_value(kp_migrate *m, const char *sql, char *out, size_t size, kp_error *e)
{
    out[0] = '\0';
    PGresult *r = pg_query(m, sql, 0, NULL, PGRES_TUPLES_OK, "cannot read the totals", e);
    if (r == NULL) return KP_ERR_IO;
    if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) snprintf(out, size, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return KP_OK;
}

kp_err kp_migrate_totals_of(kp_migrate *m, bool target, kp_migrate_totals *out, kp_error *e)
{
    memset(out, 0, sizeof *out);
    char value[80];
    for (size_t i = 0; i < sizeof total_queries / sizeof total_queries[0]; i++) {
        kp_err err = target ? target_value(m, total_queries[i].sql, value, sizeof value, e)
                            : source_value(m, total_queries[i].sql, value, sizeof value, e);
        if (err) return err;
        *(int64_t *)((char *)out + total_queries[i].offset) = strtoll(value, NULL, 10);
    }
    return target ? target_value(m, audit_head_pg, out->audit_head, sizeof out->audit_head, e)
                  : source_value(m, audit_head_sqlite, out->audit_head, sizeof out->audit_head, e);
}

int kp_migrate_totals_compare(const kp_migrate_totals *source, const kp_migrate_totals *target,
                              void (*report)(void *ctx, const char *line), void *ctx)
{
    int differ = 0;
    char line[256];
    for (size_t i = 0; i < sizeof total_queries / sizeof total_queries[0]; i++) {
        int64_t a = *(const int64_t *)((const char *)source + total_queries[i].offset);
        int64_t b = *(const int64_t *)((const char *)target + total_queries[i].offset);
        if (a == b) continue;
        snprintf(line, sizeof line, "%s: %lld in the source, %lld in the target",
                 total_queries[i].what, (long long)a, (long long)b);
        report(ctx, line);
        differ++;
    }
    if (strcmp(source->audit_head, target->audit_head) != 0) {
        snprintf(line, sizeof line, "the audit chain's head: %s in the source, %s in the target",
                 source->audit_head[0] ? source->audit_head : "(none)",
                 target->audit_head[0] ? target->audit_head : "(none)");
        report(ctx, line);
        differ++;
    }
    return differ;
}

kp_err kp_migrate_commit(kp_migrate *m, kp_error *e)
{
    if (!m->in_txn || !m->copied)
        return kp_error_set(e, KP_ERR_INVALID, "", "nothing copied to commit");
    m->in_txn = false;
    kp_err err = m->dst->ops->commit(m->dst);
    if (err)
        return kp_error_set(e, err, "to", "cannot commit the copy: %s", m->dst->last_error);
    return KP_OK;
}

void kp_migrate_close(kp_migrate *m)
{
    if (m == NULL) return;
    if (m->in_txn) m->dst->ops->rollback(m->dst);
    kp_store_close(m->dst);
    sqlite3_close(m->src); /* ends the read transaction */
    free(m);
}
