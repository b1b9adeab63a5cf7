/*
 * settlement.c: a coalition's periods and statements (settlement.h,
 * docs/coalition.md "Periods and statements"): the sums of a period's
 * entries per party and currency and its matrix, their JSON and CSV, the
 * close (under the settlement state's lock, through the caller's
 * transaction), the back office's reads, and the check of closed periods
 * against their entries.
 */
#include "settlement.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>

#include "people_int.h"

/* ---- periods */

bool kp_settle_period_parse(const char *text, int32_t *period)
{
    if (text == NULL || strlen(text) != 7 || text[4] != '-') return false;
    int32_t v = 0;
    for (int i = 0; i < 7; i++) {
        if (i == 4) continue;
        if (text[i] < '0' || text[i] > '9') return false;
        v = v * 10 + (text[i] - '0');
    }
    if (v % 100 < 1 || v % 100 > 12 || v / 100 < 1970) return false;
    *period = v;
    return true;
}

void kp_settle_period_format(int32_t period, char out[8])
{
    int y = period / 100 % 10000, m = period % 100;
    out[0] = (char)('0' + y / 1000);
    out[1] = (char)('0' + y / 100 % 10);
    out[2] = (char)('0' + y / 10 % 10);
    out[3] = (char)('0' + y % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10 % 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '\0';
}

static int32_t offset_of(const kp_program *p)
{
    return p ? p->utc_offset_minutes : 0;
}

/* The first instant after `period` in a calendar `offset` minutes from UTC. */
static kp_time period_end(int32_t period, int32_t offset)
{
    int y = period / 100, m = period % 100;
    if (++m > 12) {
        m = 1;
        y++;
    }
    return kp_time_from_civil(y, m, 1) - (kp_time)offset * 60;
}

/* ---- sums */

static bool add(int64_t *to, int64_t v)
{
    return !__builtin_add_overflow(*to, v, to);
}

static kp_settle_figures *figures_of(kp_settle_sums *s, const char *party, const char *currency)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->figures[i].party, party) == 0 &&
            strcmp(s->figures[i].currency, currency) == 0)
            return &s->figures[i];
    if (s->n == KP_SETTLE_STATEMENTS_MAX) return NULL;
    kp_settle_figures *f = &s->figures[s->n++];
    memset(f, 0, sizeof *f);
    snprintf(f->party, sizeof f->party, "%s", party);
    snprintf(f->currency, sizeof f->currency, "%s", currency);
    return f;
}

static kp_settle_cell *cell_of(kp_settle_sums *s, const kp_settle_entry *en)
{
    for (size_t i = 0; i < s->n_cells; i++) {
        kp_settle_cell *c = &s->cells[i];
        if (strcmp(c->payer, en->payer) == 0 && strcmp(c->payee, en->payee) == 0 &&
            strcmp(c->currency, en->currency) == 0)
            return c;
    }
    if (s->n_cells == KP_SETTLE_MATRIX_CELLS_MAX) return NULL;
    kp_settle_cell *c = &s->cells[s->n_cells++];
    memset(c, 0, sizeof *c);
    snprintf(c->currency, sizeof c->currency, "%s", en->currency);
    snprintf(c->payer, sizeof c->payer, "%s", en->payer);
    snprintf(c->payee, sizeof c->payee, "%s", en->payee);
    return c;
}

kp_err kp_settle_sums_add(kp_settle_sums *s, const kp_settle_entry *en, kp_error *e)
{
    kp_settle_figures *payer = figures_of(s, en->payer, en->currency);
    kp_settle_figures *payee = payer ? figures_of(s, en->payee, en->currency) : NULL;
    if (payee == NULL)
        return kp_error_set(e, KP_ERR_LIMIT, "period",
                            "more than %d (party, currency) statements in one period",
                            (int)KP_SETTLE_STATEMENTS_MAX);
    bool self = payer == payee, ok = add(&s->entries, 1) && add(&payer->entries, 1);
    if (!self) ok = ok && add(&payee->entries, 1);
    int64_t pts = en->points, amt = en->amount_minor;
    switch (en->kind) {
    case KP_SETTLE_ISSUE: ok = ok && add(&payer->issued, pts); break;
    case KP_SETTLE_BURN:
        if (self) {
            ok = ok && add(&payer->burnt_own, pts);
        } else {
            ok = ok && add(&payee->burnt_others, pts) && add(&payee->burnt_others_minor, amt) &&
                 add(&payer->burnt_elsewhere, pts) && add(&payer->burnt_elsewhere_minor, amt);
        }
        break;
    case KP_SETTLE_EXPIRE:
        ok = ok && add(&payer->expired, pts);
        if (!self)
            ok = ok && add(&payer->breakage_paid_minor, amt) &&
                 add(&payee->breakage_received_minor, amt);
        break;
    case KP_SETTLE_PROMO:
        ok = ok && add(&payer->promotions_paid, pts) && add(&payer->promotions_paid_minor, amt) &&
             add(&payee->promotions_received, pts) && add(&payee->promotions_received_minor, amt);
        break;
    case KP_SETTLE_FEE:
        ok = ok && add(&payer->fees_paid_minor, amt) && add(&payee->fees_received_minor, amt);
        break;
    default:
        return kp_error_set(e, KP_ERR_INTERNAL, "kind", "entry of operation %lld: unknown kind %d",
                            (long long)en->op_id, (int)en->kind);
    }
    if (!self && amt != 0) {
        kp_settle_cell *c = cell_of(s, en);
        if (c == NULL)
            return kp_error_set(e, KP_ERR_LIMIT, "period",
                                "more than %d payer-payee pairs in one period",
                                (int)KP_SETTLE_MATRIX_CELLS_MAX);
        ok = ok && add(&c->amount_minor, amt) && add(&payee->owed_to_minor, amt) &&
             add(&payer->owed_by_minor, amt);
        ok = ok && !__builtin_sub_overflow(payee->owed_to_minor, payee->owed_by_minor,
                                           &payee->net_position_minor) &&
             !__builtin_sub_overflow(payer->owed_to_minor, payer->owed_by_minor,
                                     &payer->net_position_minor);
    }
    if (!ok)
        return kp_error_set(e, KP_ERR_OVERFLOW, "period",
                            "the sums of the period's entries do not fit (at operation %lld)",
                            (long long)en->op_id);
    return KP_OK;
}

/* The order of statements: the program's currency first, then by code;
 * the operator, the program's partners in file order, then the others. */
static const kp_program *order_program;

static int party_rank(const char *party)
{
    if (party[0] == '\0') return 0;
    for (size_t i = 0; order_program && i < order_program->n_partners; i++)
        if (strcmp(order_program->partners[i].code, party) == 0) return 1 + (int)i;
    return 1 + KP_PARTNERS_MAX;
}

static int figures_cmp(const void *a, const void *b)
{
    const kp_settle_figures *x = a, *y = b;
    const char *own = order_program ? order_program->currency : "";
    int cx = strcmp(x->currency, own) != 0, cy = strcmp(y->currency, own) != 0;
    if (cx != cy) return cx - cy;
    int c = strcmp(x->currency, y->currency);
    if (c) return c;
    int rx = party_rank(x->party), ry = party_rank(y->party);
    if (rx != ry) return rx - ry;
    return strcmp(x->party, y->party);
}

kp_err kp_settle_sums_finish(kp_settle_sums *s, const kp_program *program, kp_error *e)
{
    char currencies[KP_SETTLE_STATEMENTS_MAX][4];
    size_t n_cur = 0;
    if (program && program->currency[0]) snprintf(currencies[n_cur++], 4, "%s", program->currency);
    for (size_t i = 0; i < s->n; i++) {
        bool seen = false;
        for (size_t j = 0; j < n_cur && !seen; j++)
            seen = strcmp(currencies[j], s->figures[i].currency) == 0;
        if (!seen) snprintf(currencies[n_cur++], 4, "%s", s->figures[i].currency);
    }
    for (size_t c = 0; c < n_cur; c++) {
        if (figures_of(s, KP_OPERATOR, currencies[c]) == NULL) goto full;
        for (size_t i = 0; program && i < program->n_partners; i++)
            if (figures_of(s, program->partners[i].code, currencies[c]) == NULL) goto full;
    }
    order_program = program;
    qsort(s->figures, s->n, sizeof s->figures[0], figures_cmp);
    order_program = NULL;
    return KP_OK;
full:
    return kp_error_set(e, KP_ERR_LIMIT, "period",
                        "more than %d (party, currency) statements in one period",
                        (int)KP_SETTLE_STATEMENTS_MAX);
}

/* ---- JSON */

/* The figures' fields in order: the JSON keys and CSV columns. */
#define FIGURES(X)                                                                                 \
    X(entries, entries)                                                                            \
    X(issued, issued)                                                                              \
    X(burnt_own_at_own_stores, burnt_own)                                                          \
    X(burnt_others_at_own_stores, burnt_others)                                                    \
    X(burnt_others_at_own_stores_minor, burnt_others_minor)                                        \
    X(own_burnt_elsewhere, burnt_elsewhere)                                                        \
    X(own_burnt_elsewhere_minor, burnt_elsewhere_minor)                                            \
    X(expired, expired)                                                                            \
    X(breakage_paid_minor, breakage_paid_minor)                                                    \
    X(breakage_received_minor, breakage_received_minor)                                            \
    X(promotions_paid, promotions_paid)                                                            \
    X(promotions_paid_minor, promotions_paid_minor)                                                \
    X(promotions_received, promotions_received)                                                    \
    X(promotions_received_minor, promotions_received_minor)                                        \
    X(fees_paid_minor, fees_paid_minor)                                                            \
    X(fees_received_minor, fees_received_minor)                                                    \
    X(owed_to_party_minor, owed_to_minor)                                                          \
    X(owed_by_party_minor, owed_by_minor)                                                          \
    X(net_position_minor, net_position_minor)

static const char *const figure_keys[] = {
#define KEY(key, field) #key,
    FIGURES(KEY)
#undef KEY
};
enum { FIGURE_KEYS = sizeof figure_keys / sizeof figure_keys[0] };

static const char *party_name(const char *code)
{
    return code[0] ? code : "operator";
}

void kp_settle_statement_json(kp_buf *out, int64_t number, int32_t period,
                              const kp_settle_figures *f, kp_time closed_at)
{
    char p[8], at[32];
    kp_settle_period_format(period, p);
    kp_buf_puts(out, "{\"number\":");
    if (number > 0)
        kp_buf_i64(out, number);
    else
        kp_buf_puts(out, "null");
    kp_buf_json_kv_str(out, "period", p, true);
    kp_buf_json_kv_str(out, "state", number > 0 ? "closed" : "open", true);
    kp_buf_json_kv_str(out, "party", party_name(f->party), true);
    kp_buf_json_kv_str(out, "currency", f->currency, true);
    if (closed_at > 0) {
        kp_time_format(closed_at, at, sizeof at);
        kp_buf_json_kv_str(out, "closed_at", at, true);
    } else {
        kp_buf_puts(out, ",\"closed_at\":null");
    }
#define KV(key, field) kp_buf_json_kv_i64(out, #key, f->field, true);
    FIGURES(KV)
#undef KV
    kp_buf_puts(out, "}");
}

/* The matrix's parties of one currency: the operator first, then by code. */
static int code_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

void kp_settle_matrix_json(kp_buf *out, const kp_settle_sums *s)
{
    char (*cur)[4] = calloc(s->n_cells + 1, 4);
    char (*parties)[KP_PARTNER_CODE_MAX] = calloc(2 * s->n_cells + 1, KP_PARTNER_CODE_MAX);
    if (cur == NULL || parties == NULL) {
        out->failed = true;
        free(cur);
        free(parties);
        return;
    }
    size_t n_cur = 0;
    for (size_t i = 0; i < s->n_cells; i++) {
        bool seen = false;
        for (size_t j = 0; j < n_cur && !seen; j++) seen = strcmp(cur[j], s->cells[i].currency) == 0;
        if (!seen) snprintf(cur[n_cur++], 4, "%s", s->cells[i].currency);
    }
    qsort(cur, n_cur, 4, code_cmp);
    kp_buf_puts(out, "{\"currencies\":[");
    for (size_t c = 0; c < n_cur; c++) {
        size_t n = 0;
        for (size_t i = 0; i < s->n_cells; i++) {
            const kp_settle_cell *k = &s->cells[i];
            if (strcmp(k->currency, cur[c]) != 0) continue;
            const char *two[2] = {k->payer, k->payee};
            for (int t = 0; t < 2; t++) {
                bool seen = false;
                for (size_t j = 0; j < n && !seen; j++) seen = strcmp(parties[j], two[t]) == 0;
                if (!seen) snprintf(parties[n++], KP_PARTNER_CODE_MAX, "%s", two[t]);
            }
        }
        qsort(parties, n, KP_PARTNER_CODE_MAX, code_cmp); /* "" (the operator) sorts first */
        kp_buf_puts(out, c ? ",{" : "{");
        kp_buf_json_kv_str(out, "currency", cur[c], false);
        kp_buf_puts(out, ",\"parties\":[");
        for (size_t j = 0; j < n; j++) {
            if (j) kp_buf_puts(out, ",");
            kp_buf_json_str(out, party_name(parties[j]));
        }
        kp_buf_puts(out, "],\"amounts_minor\":[");
        for (size_t r = 0; r < n; r++) {
            kp_buf_puts(out, r ? ",[" : "[");
            for (size_t col = 0; col < n; col++) {
                int64_t v = 0;
                for (size_t i = 0; i < s->n_cells; i++) {
                    const kp_settle_cell *k = &s->cells[i];
                    if (strcmp(k->currency, cur[c]) == 0 && strcmp(k->payer, parties[r]) == 0 &&
                        strcmp(k->payee, parties[col]) == 0)
                        v = k->amount_minor;
                }
                if (col) kp_buf_puts(out, ",");
                kp_buf_i64(out, v);
            }
            kp_buf_puts(out, "]");
        }
        kp_buf_puts(out, "]}");
    }
    kp_buf_puts(out, "]}");
    free(cur);
    free(parties);
}

/* ---- reading a period's entries */

typedef struct sum_ctx {
    kp_settle_sums *sums;
    kp_error *e;
    kp_err err;
} sum_ctx;

static bool sum_entry(void *ctx, const kp_settle_entry *en)
{
    sum_ctx *c = ctx;
    c->err = kp_settle_sums_add(c->sums, en, c->e);
    return c->err == KP_OK;
}

/* The sums of `period`'s entries into *out (malloc'd; the caller frees). */
static kp_err period_sums(kp_store *st, int32_t period, kp_settle_sums **out, kp_error *e)
{
    *out = calloc(1, sizeof **out);
    if (*out == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    sum_ctx c = {*out, e, KP_OK};
    kp_err err = st->ops->settle->entries_scan(st, period, NULL, sum_entry, &c);
    if (err) err = people_storage(st, err, e);
    if (err == KP_OK) err = c.err;
    if (err) {
        free(*out);
        *out = NULL;
    }
    return err;
}

/* ---- the office's answers */

static void period_head(kp_buf *out, int32_t period, const char *state)
{
    char p[8];
    kp_settle_period_format(period, p);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "period", p, false);
    kp_buf_json_kv_str(out, "state", state, true);
}

static void closed_json(kp_buf *out, const kp_settle_period_row *row)
{
    char at[32];
    kp_time_format(row->closed_at, at, sizeof at);
    kp_buf_json_kv_str(out, "closed_at", at, true);
    kp_buf_json_kv_str(out, "closed_by", row->closed_by, true);
    kp_buf_json_kv_i64(out, "first_number", row->first_number, true);
    kp_buf_json_kv_i64(out, "statements_count", row->statements, true);
}

static kp_err state_of(kp_office *o, kp_settle_state *state, kp_error *e)
{
    kp_err err = o->st->ops->settle->state_get(o->st, false, state);
    return err ? people_storage(o->st, err, e) : KP_OK;
}

/* The current period on the program's calendar. */
static int32_t period_now(const kp_office *o)
{
    return kp_settle_period_of(o->now, offset_of(o->program));
}

kp_err kp_settlement_periods(kp_office *o, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require_back_office(o, KP_PERM_SETTLEMENT_READ, e);
    if (err) return err;
    kp_settle_state state;
    if ((err = state_of(o, &state, e))) return err;
    enum { OPEN_MAX = 240 };
    int32_t open[OPEN_MAX + 2];
    size_t n_open = 0;
    if ((err = o->st->ops->settle->open_periods(o->st, open, OPEN_MAX, &n_open)))
        return people_storage(o->st, err, e);
    /* The last month and the current one are listed even without entries:
     * the last is the one to close next. */
    int32_t now = period_now(o), last = now % 100 == 1 ? now - 89 : now - 1;
    const int32_t extra[2] = {last, now};
    for (int x = 0; x < 2; x++) {
        if (extra[x] <= state.closed_through) continue;
        size_t at = 0;
        while (at < n_open && open[at] < extra[x]) at++;
        if (at < n_open && open[at] == extra[x]) continue;
        memmove(open + at + 1, open + at, (n_open - at) * sizeof open[0]);
        open[at] = extra[x];
        n_open++;
    }
    kp_settle_period_row *rows = calloc(KP_SETTLE_PERIODS_LIST_MAX, sizeof *rows);
    if (rows == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    size_t n = 0;
    if ((err = o->st->ops->settle->periods_list(o->st, 0, rows, KP_SETTLE_PERIODS_LIST_MAX, &n))) {
        free(rows);
        return people_storage(o->st, err, e);
    }
    char p[8];
    kp_buf_reset(out);
    kp_settle_period_format(now, p);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "current", p, false);
    if (state.closed_through > 0) {
        kp_settle_period_format(state.closed_through, p);
        kp_buf_json_kv_str(out, "closed_through", p, true);
    } else {
        kp_buf_puts(out, ",\"closed_through\":null");
    }
    kp_buf_puts(out, ",\"periods\":[");
    for (size_t i = n_open; i-- > 0;) {
        if (i + 1 < n_open) kp_buf_puts(out, ",");
        period_head(out, open[i], "open");
        /* Closable: its month has ended and it is the earliest open one. */
        bool closable = open[i] < now && i == 0;
        kp_buf_puts(out, closable ? ",\"closable\":true}" : ",\"closable\":false}");
    }
    for (size_t i = 0; i < n; i++) {
        if (i || n_open) kp_buf_puts(out, ",");
        period_head(out, rows[i].period, "closed");
        kp_buf_puts(out, ",\"closable\":false");
        closed_json(out, &rows[i]);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "]}");
    free(rows);
    return KP_OK;
}

/* ---- CSV, from the statements' JSON (stored or computed alike) */

static void csv_text(kp_buf *out, const char *s)
{
    kp_buf_puts(out, "\"");
    for (const char *p = s; *p; p++) kp_buf_puts(out, *p == '"' ? "\"\"" : (char[]){*p, 0});
    kp_buf_puts(out, "\"");
}

static const char *const head_keys[] = {"number", "period", "state", "party", "currency",
                                        "closed_at"};
enum { HEAD_KEYS = sizeof head_keys / sizeof head_keys[0] };

static void csv_value(kp_buf *out, json_t *v)
{
    if (json_is_integer(v))
        kp_buf_i64(out, (int64_t)json_integer_value(v));
    else if (json_is_string(v))
        csv_text(out, json_string_value(v));
}

static kp_err statement_csv_line(kp_buf *out, const char *body, kp_error *e)
{
    json_t *j = json_loads(body, 0, NULL);
    if (j == NULL) return kp_error_set(e, KP_ERR_INTERNAL, "", "a stored statement is no JSON");
    for (size_t k = 0; k < HEAD_KEYS + FIGURE_KEYS; k++) {
        if (k) kp_buf_puts(out, ",");
        csv_value(out, json_object_get(j, k < HEAD_KEYS ? head_keys[k] : figure_keys[k - HEAD_KEYS]));
    }
    kp_buf_puts(out, "\r\n");
    json_decref(j);
    return KP_OK;
}

static void csv_header(kp_buf *out)
{
    for (size_t k = 0; k < HEAD_KEYS + FIGURE_KEYS; k++) {
        if (k) kp_buf_puts(out, ",");
        kp_buf_puts(out, k < HEAD_KEYS ? head_keys[k] : figure_keys[k - HEAD_KEYS]);
    }
    kp_buf_puts(out, "\r\n");
}

static kp_err matrix_csv(kp_buf *out, const char *matrix, kp_error *e)
{
    json_t *j = json_loads(matrix, 0, NULL);
    if (j == NULL) return kp_error_set(e, KP_ERR_INTERNAL, "", "a stored matrix is no JSON");
    kp_buf_puts(out, "currency,payer,payee,amount_minor\r\n");
    size_t c;
    json_t *cur;
    json_array_foreach(json_object_get(j, "currencies"), c, cur) {
        json_t *parties = json_object_get(cur, "parties"), *rows = json_object_get(cur, "amounts_minor");
        size_t r;
        json_t *row;
        json_array_foreach(rows, r, row) {
            size_t col;
            json_t *v;
            json_array_foreach(row, col, v) {
                if (json_integer_value(v) == 0) continue;
                csv_value(out, json_object_get(cur, "currency"));
                kp_buf_puts(out, ",");
                csv_value(out, json_array_get(parties, r));
                kp_buf_puts(out, ",");
                csv_value(out, json_array_get(parties, col));
                kp_buf_printf(out, ",%lld\r\n", (long long)json_integer_value(v));
            }
        }
    }
    json_decref(j);
    return KP_OK;
}

/* A period's answer from its statements' texts and its matrix. */
static kp_err period_answer(kp_buf *out, int32_t period, const kp_settle_period_row *closed,
                            bool closable, char *const *bodies, size_t n, const char *matrix,
                            bool csv, bool want_matrix, kp_error *e)
{
    kp_buf_reset(out);
    kp_err err = KP_OK;
    if (csv && want_matrix) return matrix_csv(out, matrix, e);
    if (csv) {
        csv_header(out);
        for (size_t i = 0; err == KP_OK && i < n; i++) err = statement_csv_line(out, bodies[i], e);
        return err;
    }
    period_head(out, period, closed ? "closed" : "open");
    if (closed)
        closed_json(out, closed);
    else
        kp_buf_puts(out, closable ? ",\"closable\":true" : ",\"closable\":false");
    kp_buf_puts(out, ",\"statements\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) kp_buf_puts(out, ",");
        kp_buf_puts(out, bodies[i]);
    }
    kp_buf_puts(out, "],\"matrix\":");
    kp_buf_puts(out, matrix);
    kp_buf_puts(out, "}");
    return KP_OK;
}

/* The answer of a closed period, as stored. */
static kp_err closed_answer(kp_office *o, const kp_settle_period_row *row, bool csv,
                            bool want_matrix, kp_buf *out, kp_error *e)
{
    kp_settle_statement_row *st = calloc(KP_SETTLE_STATEMENTS_MAX, sizeof *st);
    char **bodies = calloc(KP_SETTLE_STATEMENTS_MAX, sizeof *bodies);
    size_t n = 0;
    kp_err err = st && bodies ? KP_OK : kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK &&
        (err = o->st->ops->settle->statements_of(o->st, row->period, st, KP_SETTLE_STATEMENTS_MAX,
                                                 &n)))
        err = people_storage(o->st, err, e);
    for (size_t i = 0; i < n; i++) bodies[i] = st[i].body;
    if (err == KP_OK)
        err = period_answer(out, row->period, row, false, bodies, n, row->matrix, csv, want_matrix,
                            e);
    for (size_t i = 0; st && i < n; i++) kp_settle_statement_row_release(&st[i]);
    free(st);
    free(bodies);
    return err;
}

/* Statements' texts of sums s: numbered from `first` (0: an open period's
 * preview), into one buffer with the bodies pointing into it. */
typedef struct rendered {
    kp_buf text;
    char **bodies;
    size_t n;
} rendered;

static kp_err render(const kp_settle_sums *s, int32_t period, int64_t first, kp_time closed_at,
                     rendered *r, kp_error *e)
{
    kp_buf_init(&r->text, (size_t)1 << 28);
    r->n = s->n;
    r->bodies = calloc(s->n + 1, sizeof *r->bodies);
    size_t *at = calloc(s->n + 1, sizeof *at);
    if (r->bodies == NULL || at == NULL) {
        free(at);
        return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    }
    for (size_t i = 0; i < s->n; i++) {
        at[i] = r->text.len;
        kp_settle_statement_json(&r->text, first ? first + (int64_t)i : 0, period, &s->figures[i],
                                 closed_at);
        kp_buf_append(&r->text, "", 1);
    }
    kp_err err = KP_OK;
    if (r->text.failed)
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    else
        for (size_t i = 0; i < s->n; i++) r->bodies[i] = r->text.data + at[i];
    free(at);
    return err;
}

static void rendered_release(rendered *r)
{
    kp_buf_release(&r->text);
    free(r->bodies);
    memset(r, 0, sizeof *r);
}

/* The earliest open period with entries, 0 when none. */
static kp_err first_open(kp_office *o, int32_t *first, kp_error *e)
{
    int32_t open[1];
    size_t n = 0;
    kp_err err = o->st->ops->settle->open_periods(o->st, open, 1, &n);
    if (err) return people_storage(o->st, err, e);
    *first = n ? open[0] : 0;
    return KP_OK;
}

kp_err kp_settlement_period(kp_office *o, int32_t period, bool csv, bool want_matrix, kp_buf *out,
                            kp_error *e)
{
    kp_err err = kp_office_require_back_office(o, KP_PERM_SETTLEMENT_READ, e);
    if (err) return err;
    kp_settle_period_row row;
    err = o->st->ops->settle->period_get(o->st, period, &row);
    if (err == KP_OK) {
        err = closed_answer(o, &row, csv, want_matrix, out, e);
        kp_settle_period_row_release(&row);
        return err;
    }
    if (err != KP_ERR_NOT_FOUND) return people_storage(o->st, err, e);
    kp_settle_state state;
    if ((err = state_of(o, &state, e))) return err;
    char p[8];
    kp_settle_period_format(period, p);
    if (period <= state.closed_through)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "period",
                            "%s was closed without entries: it has no statements", p);
    int32_t first = 0;
    if ((err = first_open(o, &first, e))) return err;
    bool closable = period < period_now(o) && (first == 0 || first >= period);
    kp_settle_sums *s = NULL;
    if ((err = period_sums(o->st, period, &s, e))) return err;
    rendered r = {0};
    kp_buf matrix;
    kp_buf_init(&matrix, (size_t)1 << 28);
    err = kp_settle_sums_finish(s, o->program, e);
    if (err == KP_OK) err = render(s, period, 0, 0, &r, e);
    if (err == KP_OK) {
        kp_settle_matrix_json(&matrix, s);
        kp_buf_append(&matrix, "", 1);
        if (matrix.failed) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    }
    if (err == KP_OK)
        err = period_answer(out, period, NULL, closable, r.bodies, r.n, matrix.data, csv,
                            want_matrix, e);
    kp_buf_release(&matrix);
    rendered_release(&r);
    free(s);
    return err;
}

kp_err kp_settlement_statement(kp_office *o, int64_t number, bool csv, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require_back_office(o, KP_PERM_SETTLEMENT_READ, e);
    if (err) return err;
    kp_settle_statement_row row;
    err = o->st->ops->settle->statement_get(o->st, number, &row);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "number", "no statement has number %lld", (long long)number);
    if (err) return people_storage(o->st, err, e);
    kp_buf_reset(out);
    if (!csv) {
        kp_buf_puts(out, row.body);
        kp_settle_statement_row_release(&row);
        return KP_OK;
    }
    json_t *j = json_loads(row.body, 0, NULL);
    kp_settle_statement_row_release(&row);
    if (j == NULL) return kp_error_set(e, KP_ERR_INTERNAL, "", "a stored statement is no JSON");
    kp_buf_puts(out, "field,value\r\n");
    for (size_t k = 0; k < HEAD_KEYS + FIGURE_KEYS; k++) {
        const char *key = k < HEAD_KEYS ? head_keys[k] : figure_keys[k - HEAD_KEYS];
        kp_buf_printf(out, "%s,", key);
        csv_value(out, json_object_get(j, key));
        kp_buf_puts(out, "\r\n");
    }
    json_decref(j);
    return KP_OK;
}

/* ---- the close */

kp_err kp_settlement_close(kp_office *o, int32_t period, kp_buf *out, bool *replayed, kp_error *e)
{
    *replayed = false;
    kp_err err = kp_office_require_back_office(o, KP_PERM_SETTLEMENT_MANAGE, e);
    if (err) return err;
    char p[8], end_text[32];
    kp_settle_period_format(period, p);
    kp_time end = period_end(period, offset_of(o->program));
    if (o->now < end) {
        kp_time_format(end, end_text, sizeof end_text);
        return kp_error_set(e, KP_ERR_CONFLICT, "period",
                            "%s has not ended: it may be closed from %s (the program's calendar)",
                            p, end_text);
    }
    /* The lock first: every booking under way ends before, none starts
     * until this transaction ends. */
    kp_settle_state state;
    err = o->st->ops->settle->state_get(o->st, true, &state);
    if (err) return people_storage(o->st, err, e);
    if (period <= state.closed_through) {
        kp_settle_period_row row;
        err = o->st->ops->settle->period_get(o->st, period, &row);
        if (err == KP_ERR_NOT_FOUND)
            return kp_error_set(e, KP_ERR_CONFLICT, "period",
                                "%s was closed without entries (periods up to the last closed "
                                "are closed): it has no statements",
                                p);
        if (err) return people_storage(o->st, err, e);
        *replayed = true;
        err = closed_answer(o, &row, false, false, out, e);
        kp_settle_period_row_release(&row);
        return err;
    }
    int32_t first = 0;
    if ((err = first_open(o, &first, e))) return err;
    if (first != 0 && first < period) {
        char f[8];
        kp_settle_period_format(first, f);
        return kp_error_set(e, KP_ERR_CONFLICT, "period",
                            "%s has entries and is open: periods close in order, close %s first",
                            f, f);
    }
    kp_settle_sums *s = NULL;
    if ((err = period_sums(o->st, period, &s, e))) return err;
    rendered r = {0};
    kp_buf matrix;
    kp_buf_init(&matrix, (size_t)1 << 28);
    kp_settle_statement_row *rows = calloc(KP_SETTLE_STATEMENTS_MAX, sizeof *rows);
    if (rows == NULL) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK) err = kp_settle_sums_finish(s, o->program, e);
    if (err == KP_OK) err = render(s, period, state.next_number, o->now, &r, e);
    if (err == KP_OK) {
        kp_settle_matrix_json(&matrix, s);
        kp_buf_append(&matrix, "", 1);
        if (matrix.failed) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    }
    kp_settle_period_row row = {.period = period, .closed_at = o->now};
    snprintf(row.closed_by, sizeof row.closed_by, "%s", o->actor.name);
    row.matrix = matrix.data;
    for (size_t i = 0; err == KP_OK && i < s->n; i++) {
        snprintf(rows[i].party, sizeof rows[i].party, "%s", s->figures[i].party);
        snprintf(rows[i].currency, sizeof rows[i].currency, "%s", s->figures[i].currency);
        rows[i].body = r.bodies[i];
    }
    if (err == KP_OK && (err = o->st->ops->settle->period_close(o->st, &row, rows, s->n)))
        err = people_storage(o->st, err, e);
    if (err == KP_OK && row.first_number != state.next_number)
        err = kp_error_set(e, KP_ERR_INTERNAL, "", "statement numbers moved under the lock");
    if (err == KP_OK)
        err = kp_office_audit(o, "settlement.close", p, "statements=%zu entries=%lld first=%lld",
                              s->n, (long long)s->entries, (long long)row.first_number);
    if (err == KP_OK)
        err = period_answer(out, period, &row, false, r.bodies, r.n, matrix.data, false, false, e);
    free(rows);
    kp_buf_release(&matrix);
    rendered_release(&r);
    free(s);
    return err;
}

/* ---- verify */

typedef struct verify_ctx {
    void (*report)(void *ctx, const char *line);
    void *ctx;
    int64_t *problems;
} verify_ctx;

static void problem(verify_ctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(verify_ctx *v, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (*v->problems < 100) v->report(v->ctx, line);
    ++*v->problems;
}

static kp_err verify_period(kp_store *st, const kp_settle_period_row *row, verify_ctx *v,
                            kp_error *e)
{
    char p[8];
    kp_settle_period_format(row->period, p);
    kp_settle_sums *s = NULL;
    kp_err err = period_sums(st, row->period, &s, e);
    if (err) return err;
    kp_settle_statement_row *rows = calloc(KP_SETTLE_STATEMENTS_MAX, sizeof *rows);
    bool *matched = calloc(s->n + 1, sizeof *matched);
    size_t n = 0;
    kp_buf b;
    kp_buf_init(&b, (size_t)1 << 28);
    if (rows == NULL || matched == NULL) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK &&
        (err = st->ops->settle->statements_of(st, row->period, rows, KP_SETTLE_STATEMENTS_MAX, &n)))
        err = people_storage(st, err, e);
    if (err == KP_OK && (int64_t)n != row->statements)
        problem(v, "settlement %s: %lld statements recorded, %zu stored", p,
                (long long)row->statements, n);
    for (size_t i = 0; err == KP_OK && i < n; i++) {
        kp_settle_figures zero = {0}, *f = &zero;
        snprintf(zero.party, sizeof zero.party, "%s", rows[i].party);
        snprintf(zero.currency, sizeof zero.currency, "%s", rows[i].currency);
        for (size_t j = 0; j < s->n; j++)
            if (strcmp(s->figures[j].party, rows[i].party) == 0 &&
                strcmp(s->figures[j].currency, rows[i].currency) == 0) {
                f = &s->figures[j];
                matched[j] = true;
            }
        kp_buf_reset(&b);
        kp_settle_statement_json(&b, rows[i].number, row->period, f, row->closed_at);
        kp_buf_append(&b, "", 1);
        if (b.failed) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        else if (strcmp(b.data, rows[i].body) != 0) {
            json_t *j = json_loads(rows[i].body, 0, NULL);
            json_t *net = json_object_get(j, "net_position_minor");
            char stored[32] = "unreadable";
            if (json_is_integer(net))
                snprintf(stored, sizeof stored, "%lld", (long long)json_integer_value(net));
            json_decref(j);
            problem(v, "settlement %s: statement %lld (%s, %s) differs from what its entries "
                       "give now (net position stored %s, now %lld)",
                    p, (long long)rows[i].number, party_name(rows[i].party), rows[i].currency,
                    stored, (long long)f->net_position_minor);
        }
    }
    for (size_t j = 0; err == KP_OK && j < s->n; j++)
        if (!matched[j] && s->figures[j].entries > 0)
            problem(v, "settlement %s: entries of %s in %s have no statement", p,
                    party_name(s->figures[j].party), s->figures[j].currency);
    if (err == KP_OK) {
        kp_buf_reset(&b);
        kp_settle_matrix_json(&b, s);
        kp_buf_append(&b, "", 1);
        if (b.failed) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        else if (strcmp(b.data, row->matrix ? row->matrix : "") != 0)
            problem(v, "settlement %s: the stored matrix differs from what its entries give now",
                    p);
    }
    for (size_t i = 0; rows && i < n; i++) kp_settle_statement_row_release(&rows[i]);
    kp_buf_release(&b);
    free(rows);
    free(matched);
    free(s);
    return err;
}

kp_err kp_settlement_verify(kp_store *st, void (*report)(void *ctx, const char *line), void *ctx,
                            int64_t *problems)
{
    verify_ctx v = {report, ctx, problems};
    kp_settle_period_row *list = calloc(KP_SETTLE_PERIODS_LIST_MAX, sizeof *list);
    if (list == NULL) {
        snprintf(st->last_error, sizeof st->last_error, "out of memory");
        return KP_ERR_NOMEM;
    }
    kp_err err = KP_OK;
    int32_t before = 0;
    size_t n;
    kp_error e = {0};
    do {
        if ((err = st->ops->settle->periods_list(st, before, list, KP_SETTLE_PERIODS_LIST_MAX, &n)))
            break;
        for (size_t i = 0; err == KP_OK && i < n; i++) {
            kp_settle_period_row row;
            if ((err = st->ops->settle->period_get(st, list[i].period, &row))) break;
            err = verify_period(st, &row, &v, &e);
            kp_settle_period_row_release(&row);
            if (err) snprintf(st->last_error, sizeof st->last_error, "%s", e.message);
            before = list[i].period;
        }
    } while (err == KP_OK && n == KP_SETTLE_PERIODS_LIST_MAX);
    free(list);
    return err;
}
