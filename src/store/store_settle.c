/*
 * store_settle.c: settlement entries, the settlement state, closed periods
 * and their statements (kp_settle_ops, kopilka/coalition.h) in portable SQL,
 * one text per operation for both backends (store_settle.h), and the
 * operations over a backend's executor.
 *
 * An entry's period is the caller's (the month of its booking); when that
 * period is closed already, the entry is booked into the first open one,
 * the month after the last closed (closed_through). Months are yyyymm
 * integers; the month after m is m + 1, or m + 89 from a December.
 */
#include "store_settle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY_COLS "op_id, seq, booked_at, period, currency, kind, payer, payee, points, amount_minor"
#define PERIOD_COLS "period, closed_at, closed_by, first_number, statements"
#define STATEMENT_COLS "number, period, party, currency, body"

const store_st_sql store_st_queries[ST__COUNT] = {
    [ST_STATE_SHARE] = {"SELECT closed_through, next_number FROM settle_state WHERE id = 1",
                        "SELECT closed_through, next_number FROM settle_state WHERE id = 1 "
                        "FOR SHARE",
                        "", "ii"},
    [ST_STATE_UPDATE] = {"SELECT closed_through, next_number FROM settle_state WHERE id = 1",
                         "SELECT closed_through, next_number FROM settle_state WHERE id = 1 "
                         "FOR UPDATE",
                         "", "ii"},
    /* seq: the entry's place among its operation's, after any put before;
     * period: $3, or the month after the last closed when $3 is closed. */
    [ST_ENTRY_INSERT] = {"INSERT INTO settle_entries(" ENTRY_COLS ") VALUES ($1, "
                         "(SELECT COALESCE(MAX(seq) + 1, 0) FROM settle_entries WHERE op_id = $1), "
                         "$2, (SELECT CASE WHEN $3 > closed_through THEN $3 "
                         "WHEN closed_through % 100 = 12 THEN closed_through + 89 "
                         "ELSE closed_through + 1 END FROM settle_state WHERE id = 1), "
                         "$4, $5, $6, $7, $8, $9)",
                         NULL, "iiitittii", ""},
    [ST_ENTRIES_OF_OP] = {"SELECT " ENTRY_COLS " FROM settle_entries WHERE op_id = $1 "
                          "ORDER BY seq",
                          NULL, "i", "iiiitittii"},
    /* $1 period (0: all), $2 whether a party is asked, $3 the party, a page
     * after ($4, $5) of at most $6. */
    [ST_ENTRIES_SCAN] = {"SELECT " ENTRY_COLS " FROM settle_entries "
                         "WHERE ($1 = 0 OR period = $1) AND ($2 = 0 OR payer = $3 OR payee = $3) "
                         "AND (op_id > $4 OR (op_id = $4 AND seq > $5)) "
                         "ORDER BY op_id, seq LIMIT $6",
                         NULL, "iitiii", "iiiitittii"},
    [ST_STATE_SET] = {"UPDATE settle_state SET closed_through = $1, next_number = $2 WHERE id = 1",
                      NULL, "ii", ""},
    [ST_PERIOD_INSERT] = {"INSERT INTO settle_periods(" PERIOD_COLS ", matrix) "
                          "VALUES ($1, $2, $3, $4, $5, $6)",
                          NULL, "iitiit", ""},
    [ST_PERIOD_GET] = {"SELECT " PERIOD_COLS ", matrix FROM settle_periods WHERE period = $1", NULL,
                       "i", "iitiit"},
    [ST_PERIOD_LIST] = {"SELECT " PERIOD_COLS " FROM settle_periods "
                        "WHERE ($1 = 0 OR period < $1) ORDER BY period DESC LIMIT $2",
                        NULL, "ii", "iitii"},
    [ST_STATEMENT_INSERT] = {"INSERT INTO settle_statements(" STATEMENT_COLS ") "
                             "VALUES ($1, $2, $3, $4, $5)",
                             NULL, "iittt", ""},
    [ST_STATEMENT_GET] = {"SELECT " STATEMENT_COLS " FROM settle_statements WHERE number = $1",
                          NULL, "i", "iittt"},
    [ST_STATEMENTS_OF] = {"SELECT " STATEMENT_COLS " FROM settle_statements WHERE period = $1 "
                          "ORDER BY number LIMIT $2",
                          NULL, "ii", "iittt"},
    [ST_ENTRY_PERIODS] = {"SELECT DISTINCT period FROM settle_entries WHERE period > $1 "
                          "ORDER BY period LIMIT $2",
                          NULL, "ii", "i"},
};

#define ST_TABLES(INT)                                                                             \
    "CREATE TABLE IF NOT EXISTS settle_entries (op_id " INT " NOT NULL, seq " INT " NOT NULL,"     \
    "  booked_at " INT " NOT NULL, period " INT " NOT NULL, currency TEXT NOT NULL,"               \
    "  kind " INT " NOT NULL, payer TEXT NOT NULL, payee TEXT NOT NULL,"                           \
    "  points " INT " NOT NULL, amount_minor " INT " NOT NULL, PRIMARY KEY (op_id, seq));"         \
    "CREATE INDEX IF NOT EXISTS settle_entries_period ON settle_entries(period, op_id, seq);"      \
    "CREATE TABLE IF NOT EXISTS settle_state (id " INT " PRIMARY KEY CHECK (id = 1),"              \
    "  closed_through " INT " NOT NULL, next_number " INT " NOT NULL);"                            \
    "INSERT INTO settle_state(id, closed_through, next_number) VALUES (1, 0, 1)"                   \
    "  ON CONFLICT DO NOTHING;"                                                                    \
    "CREATE TABLE IF NOT EXISTS settle_periods (period " INT " PRIMARY KEY,"                       \
    "  closed_at " INT " NOT NULL, closed_by TEXT NOT NULL, first_number " INT " NOT NULL,"        \
    "  statements " INT " NOT NULL, matrix TEXT NOT NULL);"                                        \
    "CREATE TABLE IF NOT EXISTS settle_statements (number " INT " PRIMARY KEY,"                    \
    "  period " INT " NOT NULL, party TEXT NOT NULL, currency TEXT NOT NULL,"                      \
    "  body TEXT NOT NULL, UNIQUE (period, party, currency));"

const char store_sqlite_settle_schema[] = ST_TABLES("INTEGER");
const char store_pg_settle_schema[] = ST_TABLES("BIGINT");

enum {
    SCAN_PAGE = 4096, /* entries a scan reads at a time */
};
/* Points and amounts of one entry: far above any receipt's, far below
 * what a period's sums could overflow on. */
#define VALUE_MAX 1000000000000000LL

void kp_settle_period_row_release(kp_settle_period_row *row)
{
    if (row == NULL) return;
    free(row->matrix);
    row->matrix = NULL;
}

void kp_settle_statement_row_release(kp_settle_statement_row *row)
{
    if (row == NULL) return;
    free(row->body);
    row->body = NULL;
}

static void copy(char *out, size_t size, const char *t)
{
    snprintf(out, size, "%s", t ? t : "");
}

static bool period_valid(int64_t p)
{
    return p >= 100 && p <= 999912 && p % 100 >= 1 && p % 100 <= 12;
}

__attribute__((format(printf, 2, 3))) static kp_err invalid(kp_store *s, const char *why, ...)
{
    va_list ap;
    va_start(ap, why);
    vsnprintf(s->last_error, sizeof s->last_error, why, ap);
    va_end(ap);
    return KP_ERR_INVALID;
}

/* ---- row readers */

static kp_err state_row(void *ctx, const store_st_val *c)
{
    kp_settle_state *st = ctx;
    st->closed_through = (int32_t)c[0].i;
    st->next_number = c[1].i;
    return KP_OK;
}

static void entry_read(kp_settle_entry *e, const store_st_val *c)
{
    memset(e, 0, sizeof *e);
    e->op_id = c[0].i;
    e->booked_at = c[2].i;
    e->period = (int32_t)c[3].i;
    copy(e->currency, sizeof e->currency, c[4].t);
    e->kind = (kp_settle_kind)c[5].i;
    copy(e->payer, sizeof e->payer, c[6].t);
    copy(e->payee, sizeof e->payee, c[7].t);
    e->points = c[8].i;
    e->amount_minor = c[9].i;
}

typedef struct of_op {
    kp_settle_entry *out;
    size_t max, n;
} of_op;

static kp_err of_op_row(void *ctx, const store_st_val *c)
{
    of_op *o = ctx;
    if (o->n < o->max) entry_read(&o->out[o->n], c);
    o->n++;
    return KP_OK;
}

typedef struct scan {
    kp_settle_entry_fn fn;
    void *ctx;
    int64_t last_op, last_seq;
    size_t rows;
    bool stopped;
} scan;

static kp_err scan_row(void *ctx, const store_st_val *c)
{
    scan *sc = ctx;
    sc->rows++;
    sc->last_op = c[0].i;
    sc->last_seq = c[1].i;
    if (sc->stopped) return KP_OK;
    kp_settle_entry e;
    entry_read(&e, c);
    if (!sc->fn(sc->ctx, &e)) sc->stopped = true;
    return KP_OK;
}

static kp_err period_read(kp_settle_period_row *p, const store_st_val *c, bool matrix)
{
    memset(p, 0, sizeof *p);
    p->period = (int32_t)c[0].i;
    p->closed_at = c[1].i;
    copy(p->closed_by, sizeof p->closed_by, c[2].t);
    p->first_number = c[3].i;
    p->statements = c[4].i;
    if (matrix && (p->matrix = strdup(c[5].t ? c[5].t : "")) == NULL) return KP_ERR_NOMEM;
    return KP_OK;
}

typedef struct page {
    void *out;
    size_t limit, n;
} page;

static kp_err period_one(void *ctx, const store_st_val *c)
{
    page *p = ctx;
    if (p->n >= p->limit) return KP_OK;
    kp_err err = period_read((kp_settle_period_row *)p->out + p->n, c, true);
    if (err == KP_OK) p->n++;
    return err;
}

static kp_err period_item(void *ctx, const store_st_val *c)
{
    page *p = ctx;
    if (p->n >= p->limit) return KP_OK;
    period_read((kp_settle_period_row *)p->out + p->n++, c, false);
    return KP_OK;
}

static kp_err statement_item(void *ctx, const store_st_val *c)
{
    page *p = ctx;
    if (p->n >= p->limit) return KP_OK;
    kp_settle_statement_row *r = (kp_settle_statement_row *)p->out + p->n;
    memset(r, 0, sizeof *r);
    r->number = c[0].i;
    r->period = (int32_t)c[1].i;
    copy(r->party, sizeof r->party, c[2].t);
    copy(r->currency, sizeof r->currency, c[3].t);
    if ((r->body = strdup(c[4].t ? c[4].t : "")) == NULL) return KP_ERR_NOMEM;
    p->n++;
    return KP_OK;
}

static kp_err period_value(void *ctx, const store_st_val *c)
{
    page *p = ctx;
    if (p->n < p->limit) ((int32_t *)p->out)[p->n++] = (int32_t)c[0].i;
    return KP_OK;
}

/* ---- the operations over an executor */

static kp_err state_get(store_st_exec_fn x, kp_store *s, bool for_close, kp_settle_state *out)
{
    memset(out, 0, sizeof *out);
    out->next_number = -1;
    kp_err err = x(s, for_close ? ST_STATE_UPDATE : ST_STATE_SHARE, NULL, state_row, out);
    if (err == KP_OK && out->next_number < 1) {
        snprintf(s->last_error, sizeof s->last_error, "the settlement state's row is missing");
        err = KP_ERR_INTERNAL;
    }
    if (err) memset(out, 0, sizeof *out);
    return err;
}

kp_err store_settle_entries_check(kp_store *s, int32_t period, const kp_settle_entry *entries,
                                  size_t n)
{
    if (n > KP_SETTLE_ENTRIES_MAX)
        return invalid(s, "%zu entries of one operation: at most %d are allowed", n,
                       (int)KP_SETTLE_ENTRIES_MAX);
    if (!period_valid(period)) return invalid(s, "period %d is no yyyymm month", (int)period);
    for (size_t i = 0; i < n; i++) {
        const kp_settle_entry *e = &entries[i];
        if (e->kind < KP_SETTLE_ISSUE || e->kind > KP_SETTLE_FEE)
            return invalid(s, "entries[%lld].kind: unknown", (long long)i);
        if (e->currency[0] == '\0' || memchr(e->currency, '\0', sizeof e->currency) == NULL)
            return invalid(s, "entries[%lld].currency: empty or longer than 3 bytes",
                           (long long)i);
        if (memchr(e->payer, '\0', sizeof e->payer) == NULL ||
            memchr(e->payee, '\0', sizeof e->payee) == NULL)
            return invalid(s, "entries[%lld]: a party's code is too long", (long long)i);
        if (e->points < -VALUE_MAX || e->points > VALUE_MAX || e->amount_minor < -VALUE_MAX ||
            e->amount_minor > VALUE_MAX)
            return invalid(s, "entries[%lld]: points or amount out of range (at most 10^15)",
                           (long long)i);
    }
    return KP_OK;
}

void store_settle_entry_values(int64_t op_id, kp_time booked_at, int32_t period,
                               const kp_settle_entry *e, store_st_val v[9])
{
    store_st_val all[9] = {{.i = op_id},       {.i = booked_at}, {.i = period},
                           {.t = e->currency}, {.i = e->kind},   {.t = e->payer},
                           {.t = e->payee},    {.i = e->points}, {.i = e->amount_minor}};
    memcpy(v, all, sizeof all);
}

/* One insert per entry: SQLite's one writer needs no lock of the state (a
 * close cannot run meanwhile), and each insert reads closed_through itself.
 * PostgreSQL's is store_pg_settle_entries_put(). */
static kp_err entries_put(store_st_exec_fn x, kp_store *s, int64_t op_id, kp_time booked_at,
                          int32_t period, const kp_settle_entry *entries, size_t n)
{
    if (n == 0) return KP_OK;
    kp_err err = store_settle_entries_check(s, period, entries, n);
    for (size_t i = 0; err == KP_OK && i < n; i++) {
        store_st_val v[9];
        store_settle_entry_values(op_id, booked_at, period, &entries[i], v);
        err = x(s, ST_ENTRY_INSERT, v, NULL, NULL);
    }
    return err;
}

static kp_err sqlite_entries_put(kp_store *s, int64_t op_id, kp_time booked_at, int32_t period,
                                 const kp_settle_entry *entries, size_t n)
{
    return entries_put(store_sqlite_st_exec, s, op_id, booked_at, period, entries, n);
}

static kp_err entries_of_op(store_st_exec_fn x, kp_store *s, int64_t op_id, kp_settle_entry *out,
                            size_t max, size_t *n)
{
    *n = 0;
    of_op o = {out, max, 0};
    store_st_val v[1] = {{.i = op_id}};
    kp_err err = x(s, ST_ENTRIES_OF_OP, v, of_op_row, &o);
    if (err) return err;
    *n = o.n;
    if (o.n > max) {
        snprintf(s->last_error, sizeof s->last_error,
                 "operation %lld has %zu settlement entries, more than the %zu asked for",
                 (long long)op_id, o.n, max);
        return KP_ERR_LIMIT;
    }
    return KP_OK;
}

static kp_err entries_scan(store_st_exec_fn x, kp_store *s, int32_t period, const char *partner,
                           kp_settle_entry_fn fn, void *ctx)
{
    scan sc = {fn, ctx, 0, -1, 0, false};
    kp_err err = KP_OK;
    do {
        sc.rows = 0;
        store_st_val v[6] = {{.i = period},       {.i = partner != NULL},
                             {.t = partner},      {.i = sc.last_op},
                             {.i = sc.last_seq},  {.i = SCAN_PAGE}};
        err = x(s, ST_ENTRIES_SCAN, v, scan_row, &sc);
    } while (err == KP_OK && !sc.stopped && sc.rows == SCAN_PAGE);
    return err;
}

static kp_err period_close(store_st_exec_fn x, kp_store *s, kp_settle_period_row *row,
                           kp_settle_statement_row *st, size_t n)
{
    if (!period_valid(row->period)) return invalid(s, "period %d is no yyyymm month", (int)row->period);
    if (n > KP_SETTLE_STATEMENTS_MAX)
        return invalid(s, "%zu statements in one period: at most %d", n, (int)KP_SETTLE_STATEMENTS_MAX);
    for (size_t i = 0; i < n; i++)
        if (st[i].body == NULL || st[i].currency[0] == '\0')
            return invalid(s, "statements[%lld]: no body or no currency", (long long)i);
    kp_settle_state state;
    kp_err err = state_get(x, s, true, &state);
    if (err) return err;
    if (row->period <= state.closed_through) {
        snprintf(s->last_error, sizeof s->last_error,
                 "period %d is not after the last closed one, %d", (int)row->period,
                 (int)state.closed_through);
        return KP_ERR_CONFLICT;
    }
    row->first_number = state.next_number;
    row->statements = (int64_t)n;
    store_st_val pv[6] = {{.i = row->period},       {.i = row->closed_at},
                          {.t = row->closed_by},    {.i = row->first_number},
                          {.i = row->statements},   {.t = row->matrix ? row->matrix : "{}"}};
    err = x(s, ST_PERIOD_INSERT, pv, NULL, NULL);
    for (size_t i = 0; err == KP_OK && i < n; i++) {
        st[i].number = state.next_number + (int64_t)i;
        st[i].period = row->period;
        store_st_val v[5] = {{.i = st[i].number}, {.i = st[i].period}, {.t = st[i].party},
                             {.t = st[i].currency}, {.t = st[i].body}};
        err = x(s, ST_STATEMENT_INSERT, v, NULL, NULL);
    }
    store_st_val sv[2] = {{.i = row->period}, {.i = state.next_number + (int64_t)n}};
    if (err == KP_OK) err = x(s, ST_STATE_SET, sv, NULL, NULL);
    return err;
}

static kp_err period_get(store_st_exec_fn x, kp_store *s, int32_t period, kp_settle_period_row *out)
{
    memset(out, 0, sizeof *out);
    page p = {out, 1, 0};
    store_st_val v[1] = {{.i = period}};
    kp_err err = x(s, ST_PERIOD_GET, v, period_one, &p);
    if (err == KP_OK && p.n == 0) {
        snprintf(s->last_error, sizeof s->last_error, "period %d is not closed", (int)period);
        err = KP_ERR_NOT_FOUND;
    }
    if (err) kp_settle_period_row_release(out);
    return err;
}

static kp_err periods_list(store_st_exec_fn x, kp_store *s, int32_t before,
                           kp_settle_period_row *out, size_t limit, size_t *n)
{
    page p = {out, limit, 0};
    store_st_val v[2] = {{.i = before}, {.i = (int64_t)limit}};
    kp_err err = x(s, ST_PERIOD_LIST, v, period_item, &p);
    *n = err ? 0 : p.n;
    return err;
}

static kp_err open_periods(store_st_exec_fn x, kp_store *s, int32_t *out, size_t limit, size_t *n)
{
    *n = 0;
    kp_settle_state st;
    kp_err err = state_get(x, s, false, &st);
    if (err) return err;
    page p = {out, limit, 0};
    store_st_val v[2] = {{.i = st.closed_through}, {.i = (int64_t)limit}};
    err = x(s, ST_ENTRY_PERIODS, v, period_value, &p);
    *n = err ? 0 : p.n;
    return err;
}

static void statements_release(kp_settle_statement_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) kp_settle_statement_row_release(&rows[i]);
}

static kp_err statement_get(store_st_exec_fn x, kp_store *s, int64_t number,
                            kp_settle_statement_row *out)
{
    memset(out, 0, sizeof *out);
    page p = {out, 1, 0};
    store_st_val v[1] = {{.i = number}};
    kp_err err = x(s, ST_STATEMENT_GET, v, statement_item, &p);
    if (err == KP_OK && p.n == 0) {
        snprintf(s->last_error, sizeof s->last_error, "no statement has number %lld",
                 (long long)number);
        err = KP_ERR_NOT_FOUND;
    }
    if (err) statements_release(out, p.n);
    return err;
}

static kp_err statements_of(store_st_exec_fn x, kp_store *s, int32_t period,
                            kp_settle_statement_row *out, size_t limit, size_t *n)
{
    *n = 0;
    page p = {out, limit, 0};
    store_st_val v[2] = {{.i = period}, {.i = (int64_t)limit}};
    kp_err err = x(s, ST_STATEMENTS_OF, v, statement_item, &p);
    if (err) {
        statements_release(out, p.n);
        return err;
    }
    *n = p.n;
    return KP_OK;
}

/* One ops table per executor: each entry hands its executor to the shared
 * operation above. */
#define ST_OPS(NAME, X, PUT)                                                                       \
    static kp_err NAME##_of(kp_store *s, int64_t op, kp_settle_entry *o, size_t max, size_t *n)   \
    {                                                                                              \
        return entries_of_op(X, s, op, o, max, n);                                                 \
    }                                                                                              \
    static kp_err NAME##_scan(kp_store *s, int32_t period, const char *partner,                   \
                              kp_settle_entry_fn fn, void *ctx)                                    \
    {                                                                                              \
        return entries_scan(X, s, period, partner, fn, ctx);                                       \
    }                                                                                              \
    static kp_err NAME##_state(kp_store *s, bool for_close, kp_settle_state *o)                   \
    {                                                                                              \
        return state_get(X, s, for_close, o);                                                      \
    }                                                                                              \
    static kp_err NAME##_close(kp_store *s, kp_settle_period_row *r, kp_settle_statement_row *st, \
                               size_t n)                                                           \
    {                                                                                              \
        return period_close(X, s, r, st, n);                                                       \
    }                                                                                              \
    static kp_err NAME##_pget(kp_store *s, int32_t period, kp_settle_period_row *o)               \
    {                                                                                              \
        return period_get(X, s, period, o);                                                        \
    }                                                                                              \
    static kp_err NAME##_plist(kp_store *s, int32_t before, kp_settle_period_row *o, size_t l,    \
                               size_t *n)                                                          \
    {                                                                                              \
        return periods_list(X, s, before, o, l, n);                                                \
    }                                                                                              \
    static kp_err NAME##_open(kp_store *s, int32_t *o, size_t l, size_t *n)                       \
    {                                                                                              \
        return open_periods(X, s, o, l, n);                                                        \
    }                                                                                              \
    static kp_err NAME##_sget(kp_store *s, int64_t number, kp_settle_statement_row *o)            \
    {                                                                                              \
        return statement_get(X, s, number, o);                                                     \
    }                                                                                              \
    static kp_err NAME##_sof(kp_store *s, int32_t period, kp_settle_statement_row *o, size_t l,   \
                             size_t *n)                                                            \
    {                                                                                              \
        return statements_of(X, s, period, o, l, n);                                               \
    }                                                                                              \
    const kp_settle_ops NAME = {                                                                   \
        .entries_put = PUT,                                                                 \
        .entries_of_op = NAME##_of,                                                                \
        .entries_scan = NAME##_scan,                                                               \
        .state_get = NAME##_state,                                                                 \
        .period_close = NAME##_close,                                                              \
        .period_get = NAME##_pget,                                                                 \
        .periods_list = NAME##_plist,                                                              \
        .open_periods = NAME##_open,                                                               \
        .statement_get = NAME##_sget,                                                              \
        .statements_of = NAME##_sof,                                                               \
    };

ST_OPS(store_sqlite_settle_ops, store_sqlite_st_exec, sqlite_entries_put)
ST_OPS(store_pg_settle_ops, store_pg_st_exec, store_pg_settle_entries_put)
