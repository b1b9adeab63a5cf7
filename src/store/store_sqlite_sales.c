/*
 * store_sqlite_sales.c: kp_sales_ops over SQLite (kopilka/sales.h): the
 * tables `sales` (one row a receipt, unique by store, receipt and kind,
 * indexed by time) and `sale_lines` (its lines, in order). Statements are
 * prepared once at open; one of them is on a card purchase's path (is the
 * receipt a till's sale without a card?), an indexed lookup.
 */
#include "store_sqlite_sales.h"
#include "store_sqlite_int.h"
#include "store_sales.h"

#include <stdlib.h>
#include <string.h>

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS sales (id INTEGER PRIMARY KEY, at INTEGER NOT NULL,"
    "  store TEXT NOT NULL, receipt TEXT NOT NULL, card TEXT NOT NULL DEFAULT '',"
    "  kind INTEGER NOT NULL, source INTEGER NOT NULL, amount INTEGER NOT NULL"
    "  CHECK (amount >= 0), customer TEXT NOT NULL DEFAULT '');"
    "CREATE UNIQUE INDEX IF NOT EXISTS sales_receipt ON sales(store, receipt, kind);"
    "CREATE INDEX IF NOT EXISTS sales_at ON sales(at, id);"
    "CREATE TABLE IF NOT EXISTS sale_lines (sale_id INTEGER NOT NULL, n INTEGER NOT NULL,"
    "  sku TEXT NOT NULL, category TEXT NOT NULL, amount INTEGER NOT NULL CHECK (amount >= 0),"
    "  qty INTEGER NOT NULL CHECK (qty >= 1), PRIMARY KEY (sale_id, n)) WITHOUT ROWID;";

enum { S_INSERT, S_LINE, S_SCAN, S_SPAN, S_GET, S_ANONYMOUS, S__COUNT };
_Static_assert(KP_SALE_PURCHASE == 1 && KP_SALE_TILL == 1, "S_ANONYMOUS's kind and source");

static const char *const queries[S__COUNT] = {
    [S_INSERT] = "INSERT INTO sales(at, store, receipt, card, kind, source, amount, customer) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(store, receipt, kind) DO NOTHING",
    [S_LINE] = "INSERT INTO sale_lines(sale_id, n, sku, category, amount, qty) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    /* One row a line, a sale's lines consecutive (sales_scan groups them). */
    [S_SCAN] = "SELECT s.id, s.at, s.store, s.receipt, s.card, s.kind, s.source, s.amount,"
               " l.sku, l.category, l.amount, l.qty, s.customer FROM sales s"
               " JOIN sale_lines l ON l.sale_id = s.id"
               " WHERE s.at >= ?1 AND (?2 = 0 OR s.at < ?2) AND (?3 = '' OR s.store = ?3)"
               " ORDER BY s.at, s.id, l.n",
    [S_GET] = "SELECT s.id, s.at, s.store, s.receipt, s.card, s.kind, s.source, s.amount,"
              " l.sku, l.category, l.amount, l.qty, s.customer FROM sales s"
              " JOIN sale_lines l ON l.sale_id = s.id"
              " WHERE s.store = ?1 AND s.receipt = ?2 AND s.kind = ?3 ORDER BY l.n",
    [S_SPAN] = "SELECT count(*), coalesce(min(at), 0), coalesce(max(at), 0) FROM sales",
    [S_ANONYMOUS] = "SELECT id FROM sales WHERE store = ?1 AND receipt = ?2 AND kind = 1"
                    " AND source = 1 AND card = ''",
};

struct sqlite_sales {
    sqlite3 *db;
    char *last_error;
    size_t last_error_size;
    sqlite3_stmt *stmt[S__COUNT];
};

static kp_err fail(sqlite_sales *t, int rc)
{
    return store_sqlite_fail(t->db, t->last_error, t->last_error_size, rc);
}

static sqlite3_stmt *q(sqlite_sales *t, int id) { return store_sqlite_fresh(t->stmt[id]); }

/* The contract's checks, made for every sale before anything is written. */
kp_err store_sales_check(kp_store *s, const kp_sale *sales, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const kp_sale *x = &sales[i];
        int64_t sum = 0;
        const char *bad = NULL;
        if (x->store[0] == '\0' || x->receipt[0] == '\0') bad = "has no store or receipt";
        else if (x->n_lines == 0 || x->n_lines > KP_SALE_LINES_MAX) bad = "has no lines or too many";
        else if (x->kind != KP_SALE_PURCHASE && x->kind != KP_SALE_RETURN) bad = "has an unknown kind";
        for (size_t j = 0; bad == NULL && j < x->n_lines; j++) {
            if (x->lines[j].amount < 0 || x->lines[j].qty < 1) bad = "has a negative amount or qty < 1";
            else sum += x->lines[j].amount;
        }
        if (bad == NULL && sum != x->amount) bad = "has an amount that is not the sum of its lines";
        if (bad) {
            snprintf(s->last_error, sizeof s->last_error, "sale %zu (%.60s/%.60s) %s", i, x->store,
                     x->receipt, bad);
            return KP_ERR_INVALID;
        }
    }
    return KP_OK;
}

static kp_err sales_put(kp_store *s, const kp_sale *sales, size_t n, int64_t *inserted,
                        int64_t *skipped)
{
    sqlite_sales *t = store_sqlite_sales_of(s);
    *inserted = *skipped = 0;
    kp_err err = store_sales_check(s, sales, n);
    for (size_t i = 0; err == KP_OK && i < n; i++) {
        const kp_sale *x = &sales[i];
        sqlite3_stmt *st = q(t, S_INSERT);
        sqlite3_bind_int64(st, 1, x->at);
        sqlite3_bind_text(st, 2, x->store, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, x->receipt, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, x->card, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, (int)x->kind);
        sqlite3_bind_int(st, 6, (int)x->source);
        sqlite3_bind_int64(st, 7, x->amount);
        sqlite3_bind_text(st, 8, x->customer, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            err = fail(t, rc);
            break;
        }
        if (sqlite3_changes(t->db) == 0) {
            ++*skipped;
            continue;
        }
        int64_t id = sqlite3_last_insert_rowid(t->db);
        for (size_t j = 0; err == KP_OK && j < x->n_lines; j++) {
            const kp_sale_line *l = &x->lines[j];
            st = q(t, S_LINE);
            sqlite3_bind_int64(st, 1, id);
            sqlite3_bind_int64(st, 2, (int64_t)j);
            sqlite3_bind_text(st, 3, l->sku, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 4, l->category, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 5, l->amount);
            sqlite3_bind_int64(st, 6, l->qty);
            err = store_sqlite_run(t->db, t->last_error, t->last_error_size, st);
        }
        if (err == KP_OK) ++*inserted;
    }
    return err;
}

/* Reads a row of S_SCAN or S_GET into *cur: the sale's columns when
 * `first`, then the line. */
static void row_read(sqlite3_stmt *st, bool first, kp_sale *cur, kp_sale_line *lines)
{
    if (first) {
        cur->id = sqlite3_column_int64(st, 0);
        cur->at = sqlite3_column_int64(st, 1);
        store_sqlite_copy_text(cur->store, sizeof cur->store, sqlite3_column_text(st, 2));
        store_sqlite_copy_text(cur->receipt, sizeof cur->receipt, sqlite3_column_text(st, 3));
        store_sqlite_copy_text(cur->card, sizeof cur->card, sqlite3_column_text(st, 4));
        cur->kind = (kp_sale_kind)sqlite3_column_int(st, 5);
        cur->source = (kp_sale_source)sqlite3_column_int(st, 6);
        cur->amount = sqlite3_column_int64(st, 7);
        store_sqlite_copy_text(cur->customer, sizeof cur->customer, sqlite3_column_text(st, 12));
        cur->n_lines = 0;
        cur->lines = lines;
    }
    if (cur->n_lines < KP_SALE_LINES_MAX) {
        kp_sale_line *l = &lines[cur->n_lines++];
        store_sqlite_copy_text(l->sku, sizeof l->sku, sqlite3_column_text(st, 8));
        store_sqlite_copy_text(l->category, sizeof l->category, sqlite3_column_text(st, 9));
        l->amount = sqlite3_column_int64(st, 10);
        l->qty = sqlite3_column_int64(st, 11);
    }
}

static kp_err sales_scan(kp_store *s, kp_time from, kp_time to, const char *store, kp_sale_fn fn,
                         void *ctx)
{
    sqlite_sales *t = store_sqlite_sales_of(s);
    kp_sale_line *lines = malloc(KP_SALE_LINES_MAX * sizeof *lines);
    if (lines == NULL) return KP_ERR_NOMEM;
    sqlite3_stmt *st = q(t, S_SCAN);
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    sqlite3_bind_text(st, 3, store, -1, SQLITE_STATIC);
    kp_sale cur;
    memset(&cur, 0, sizeof cur);
    cur.lines = lines;
    bool have = false, go = true;
    int rc;
    while (go && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (have && id != cur.id) {
            go = fn(ctx, &cur);
            have = false;
            if (!go) break;
        }
        row_read(st, !have, &cur, lines);
        have = true;
    }
    kp_err err = KP_OK;
    if (go && rc != SQLITE_DONE) err = fail(t, rc);
    else if (go && have) fn(ctx, &cur);
    sqlite3_reset(st);
    free(lines);
    return err;
}

static kp_err sale_get(kp_store *s, const char *store, const char *receipt, kp_sale_kind kind,
                       kp_sale *out, kp_sale_line *lines)
{
    sqlite_sales *t = store_sqlite_sales_of(s);
    sqlite3_stmt *st = q(t, S_GET);
    sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, receipt, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, (int)kind);
    memset(out, 0, sizeof *out);
    int rc, n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) row_read(st, n++ == 0, out, lines);
    kp_err err = rc == SQLITE_DONE ? (n ? KP_OK : KP_ERR_NOT_FOUND) : fail(t, rc);
    sqlite3_reset(st);
    return err;
}

kp_err store_sqlite_sales_anonymous(kp_store *s, const char *store, const char *receipt,
                                    int64_t *id)
{
    sqlite_sales *t = store_sqlite_sales_of(s);
    sqlite3_stmt *st = q(t, S_ANONYMOUS);
    sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, receipt, -1, SQLITE_STATIC);
    *id = 0;
    int rc = sqlite3_step(st);
    kp_err err = KP_OK;
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        err = fail(t, rc);
    sqlite3_reset(st);
    return err;
}

static kp_err sales_span(kp_store *s, int64_t *count, kp_time *first, kp_time *last)
{
    sqlite_sales *t = store_sqlite_sales_of(s);
    sqlite3_stmt *st = q(t, S_SPAN);
    int rc = sqlite3_step(st);
    kp_err err = KP_OK;
    if (rc == SQLITE_ROW) {
        *count = sqlite3_column_int64(st, 0);
        *first = sqlite3_column_int64(st, 1);
        *last = sqlite3_column_int64(st, 2);
    } else {
        err = fail(t, rc);
    }
    sqlite3_reset(st);
    return err;
}

/* A database made before sales had a `customer` column gets it (empty). */
static int customer_column(sqlite3 *db)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(
        db, "SELECT count(*) FROM pragma_table_info('sales') WHERE name = 'customer'", -1, &st,
        NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    bool has = rc == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return rc;
    if (has) return SQLITE_OK;
    return sqlite3_exec(db, "ALTER TABLE sales ADD COLUMN customer TEXT NOT NULL DEFAULT ''", NULL,
                        NULL, NULL);
}

kp_err store_sqlite_sales_open(sqlite3 *db, char *last_error, size_t last_error_size,
                               sqlite_sales **out)
{
    *out = NULL;
    sqlite_sales *t = calloc(1, sizeof *t);
    if (t == NULL) return KP_ERR_NOMEM;
    t->db = db;
    t->last_error = last_error;
    t->last_error_size = last_error_size;
    int rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = customer_column(db);
    /* Sales by customer key: the customers report's "before and after
     * joining" (store_report.c). */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db,
                          "CREATE INDEX IF NOT EXISTS sales_customer ON sales(customer) "
                          "WHERE customer <> ''",
                          NULL, NULL, NULL);
    rc = store_sqlite_prepare_all(db, rc, queries, S__COUNT, t->stmt);
    if (rc != SQLITE_OK) {
        kp_err err = fail(t, rc);
        store_sqlite_sales_close(t);
        return err;
    }
    *out = t;
    return KP_OK;
}

void store_sqlite_sales_close(sqlite_sales *t)
{
    if (t == NULL) return;
    store_sqlite_finalize_all(t->stmt, S__COUNT);
    free(t);
}

const kp_sales_ops store_sqlite_sales_ops = {
    .sales_put = sales_put,
    .sales_scan = sales_scan,
    .sales_span = sales_span,
    .sale_get = sale_get,
};
