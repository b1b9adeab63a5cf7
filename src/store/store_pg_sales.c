/*
 * store_pg_sales.c: kp_sales_ops over PostgreSQL (kopilka/sales.h): the
 * tables `sales` and `sale_lines` (migration 5 of store_pg.c; migration 6
 * adds sales.customer). A sale and
 * its lines go in one statement: the lines as arrays, unnested.
 */
#include "store_pg_int.h"
#include "store_sales.h"

#include <stdlib.h>
#include <string.h>

#define P(st) ((pg_store *)(st))

const char store_pg_sales_schema[] =
    "CREATE TABLE IF NOT EXISTS sales (id BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL,"
    "  store TEXT NOT NULL, receipt TEXT NOT NULL, card TEXT NOT NULL DEFAULT '',"
    "  kind INTEGER NOT NULL, source INTEGER NOT NULL, amount BIGINT NOT NULL"
    "  CHECK (amount >= 0));"
    "CREATE UNIQUE INDEX IF NOT EXISTS sales_receipt ON sales(store, receipt, kind);"
    "CREATE INDEX IF NOT EXISTS sales_at ON sales(at, id);"
    "CREATE TABLE IF NOT EXISTS sale_lines (sale_id BIGINT NOT NULL, n INTEGER NOT NULL,"
    "  sku TEXT NOT NULL, category TEXT NOT NULL, amount BIGINT NOT NULL CHECK (amount >= 0),"
    "  qty BIGINT NOT NULL CHECK (qty >= 1), PRIMARY KEY (sale_id, n));";

/* Migration 6: the customer's key on a sale (kopilka/sales.h). */
const char store_pg_sales_customer[] =
    "ALTER TABLE sales ADD COLUMN IF NOT EXISTS customer TEXT NOT NULL DEFAULT ''";

/* Inserts the sale when its (store, receipt, kind) is new, then its lines;
 * the rows it touched are the lines' (0: the sale was there). */
static pg_stmt q_put = {
    "WITH s AS (INSERT INTO sales(at, store, receipt, card, kind, source, amount, customer)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $12) ON CONFLICT (store, receipt, kind) DO NOTHING"
    " RETURNING id)"
    " INSERT INTO sale_lines(sale_id, n, sku, category, amount, qty)"
    " SELECT s.id, l.n - 1, l.sku, l.category, l.amount, l.qty FROM s,"
    " unnest($8::text[], $9::text[], $10::bigint[], $11::bigint[])"
    " WITH ORDINALITY AS l(sku, category, amount, qty, n)",
    12, 0};
static pg_stmt q_scan = {
    "SELECT s.id, s.at, s.store, s.receipt, s.card, s.kind, s.source, s.amount,"
    " l.sku, l.category, l.amount, l.qty, s.customer FROM sales s"
    " JOIN sale_lines l ON l.sale_id = s.id"
    " WHERE s.at >= $1 AND ($2 = 0 OR s.at < $2) AND ($3 = '' OR s.store = $3)"
    " AND (s.at, s.id) > ($4, $5)"
    " ORDER BY s.at, s.id, l.n LIMIT 20000",
    5, 0};
static pg_stmt q_get = {
    "SELECT s.id, s.at, s.store, s.receipt, s.card, s.kind, s.source, s.amount,"
    " l.sku, l.category, l.amount, l.qty, s.customer FROM sales s"
    " JOIN sale_lines l ON l.sale_id = s.id"
    " WHERE s.store = $1 AND s.receipt = $2 AND s.kind = $3 ORDER BY l.n",
    3, 0};
static pg_stmt q_span = {
    "SELECT count(*), coalesce(min(at), 0), coalesce(max(at), 0) FROM sales", 0, 0};

/* A growing text buffer for an array literal. */
typedef struct text_buf {
    char *p;
    size_t len, cap;
} text_buf;

static bool put(text_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) return false;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

/* Appends one element, quoted, to an array literal ("{" ... "}"). */
static bool put_elem(text_buf *b, bool first, const char *v)
{
    bool ok = put(b, first ? "\"" : ",\"", first ? 1 : 2);
    for (const char *c = v; ok && *c; c++) {
        if (*c == '"' || *c == '\\') ok = put(b, "\\", 1);
        if (ok) ok = put(b, c, 1);
    }
    return ok && put(b, "\"", 1);
}

static kp_err sales_put(kp_store *st, const kp_sale *sales, size_t n, int64_t *inserted,
                        int64_t *skipped)
{
    *inserted = *skipped = 0;
    kp_err err = store_sales_check(st, sales, n);
    text_buf a[4] = {{0}};
    for (size_t i = 0; err == KP_OK && i < n; i++) {
        const kp_sale *x = &sales[i];
        bool ok = true;
        for (int k = 0; k < 4; k++) {
            a[k].len = 0;
            ok = ok && put(&a[k], "{", 1);
        }
        for (size_t j = 0; ok && j < x->n_lines; j++) {
            char num[2][24];
            snprintf(num[0], sizeof num[0], "%lld", (long long)x->lines[j].amount);
            snprintf(num[1], sizeof num[1], "%lld", (long long)x->lines[j].qty);
            ok = put_elem(&a[0], j == 0, x->lines[j].sku) &&
                 put_elem(&a[1], j == 0, x->lines[j].category) &&
                 put_elem(&a[2], j == 0, num[0]) && put_elem(&a[3], j == 0, num[1]);
        }
        for (int k = 0; k < 4; k++) ok = ok && put(&a[k], "}", 1);
        if (!ok) {
            err = KP_ERR_NOMEM;
            break;
        }
        pg_params p = {0};
        pg_p_int(&p, x->at);
        pg_p_text(&p, x->store);
        pg_p_text(&p, x->receipt);
        pg_p_text(&p, x->card);
        pg_p_int(&p, x->kind);
        pg_p_int(&p, x->source);
        pg_p_int(&p, x->amount);
        for (int k = 0; k < 4; k++) pg_p_text(&p, a[k].p);
        pg_p_text(&p, x->customer);
        PGresult *r;
        err = pg_run(P(st), &q_put, &p, &r);
        if (err) break;
        if (pg_changes(r) > 0) ++*inserted;
        else ++*skipped;
        PQclear(r);
    }
    for (int k = 0; k < 4; k++) free(a[k].p);
    return err;
}

/* Reads row i of q_scan or q_get into *cur: the sale's columns when
 * `first`, then the line. */
static void row_read(const PGresult *r, int i, bool first, kp_sale *cur, kp_sale_line *lines)
{
    if (first) {
        cur->id = pg_int(r, i, 0);
        cur->at = pg_int(r, i, 1);
        pg_text(r, i, 2, cur->store, sizeof cur->store);
        pg_text(r, i, 3, cur->receipt, sizeof cur->receipt);
        pg_text(r, i, 4, cur->card, sizeof cur->card);
        cur->kind = (kp_sale_kind)pg_int(r, i, 5);
        cur->source = (kp_sale_source)pg_int(r, i, 6);
        cur->amount = pg_int(r, i, 7);
        pg_text(r, i, 12, cur->customer, sizeof cur->customer);
        cur->n_lines = 0;
        cur->lines = lines;
    }
    if (cur->n_lines < KP_SALE_LINES_MAX) {
        kp_sale_line *l = &lines[cur->n_lines++];
        pg_text(r, i, 8, l->sku, sizeof l->sku);
        pg_text(r, i, 9, l->category, sizeof l->category);
        l->amount = pg_int(r, i, 10);
        l->qty = pg_int(r, i, 11);
    }
}

/* Reads the scan in pages of rows, keyed by (at, id): a page ends inside a
 * sale only when it is full, and then that sale is read again whole. */
static kp_err sales_scan(kp_store *st, kp_time from, kp_time to, const char *store, kp_sale_fn fn,
                         void *ctx)
{
    kp_sale_line *lines = malloc(KP_SALE_LINES_MAX * sizeof *lines);
    if (lines == NULL) return KP_ERR_NOMEM;
    kp_sale cur;
    memset(&cur, 0, sizeof cur);
    cur.lines = lines;
    kp_time after_at = from - 1;
    int64_t after_id = 0;
    kp_err err = KP_OK;
    for (bool more = true, go = true; more && go && err == KP_OK;) {
        pg_params p = {0};
        pg_p_int(&p, from);
        pg_p_int(&p, to);
        pg_p_text(&p, store);
        pg_p_int(&p, after_at);
        pg_p_int(&p, after_id);
        PGresult *r;
        err = pg_run(P(st), &q_scan, &p, &r);
        if (err) break;
        int rows = PQntuples(r);
        more = rows == 20000;
        /* When the page is full, its last sale may be cut: leave it for the
         * next page (a sale has at most KP_SALE_LINES_MAX lines). */
        int end = rows;
        if (more) {
            int64_t last = pg_int(r, rows - 1, 0);
            while (end > 0 && pg_int(r, end - 1, 0) == last) end--;
        }
        bool have = false;
        for (int i = 0; i < end && go; i++) {
            int64_t id = pg_int(r, i, 0);
            if (have && id != cur.id) {
                go = fn(ctx, &cur);
                have = false;
                if (!go) break;
            }
            row_read(r, i, !have, &cur, lines);
            have = true;
        }
        if (go && have) {
            go = fn(ctx, &cur);
            after_at = cur.at;
            after_id = cur.id;
        }
        PQclear(r);
    }
    free(lines);
    return err;
}

static kp_err sale_get(kp_store *st, const char *store, const char *receipt, kp_sale_kind kind,
                       kp_sale *out, kp_sale_line *lines)
{
    memset(out, 0, sizeof *out);
    pg_params p = {0};
    pg_p_text(&p, store);
    pg_p_text(&p, receipt);
    pg_p_int(&p, kind);
    PGresult *r;
    kp_err err = pg_run(P(st), &q_get, &p, &r);
    if (err) return err;
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) row_read(r, i, i == 0, out, lines);
    PQclear(r);
    return rows ? KP_OK : KP_ERR_NOT_FOUND;
}

static kp_err sales_span(kp_store *st, int64_t *count, kp_time *first, kp_time *last)
{
    PGresult *r;
    pg_params p = {0};
    kp_err err = pg_run(P(st), &q_span, &p, &r);
    if (err) return err;
    *count = pg_int(r, 0, 0);
    *first = pg_int(r, 0, 1);
    *last = pg_int(r, 0, 2);
    PQclear(r);
    return KP_OK;
}

const kp_sales_ops store_pg_sales_ops = {
    .sales_put = sales_put,
    .sales_scan = sales_scan,
    .sales_span = sales_span,
    .sale_get = sale_get,
};
