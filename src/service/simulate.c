/*
 * simulate.c: the economic model's replay (simulate.h). The history is held
 * in flat arrays (receipts, lines, interned strings); a run sorts the
 * receipts by (card, time, order read), cuts that order into one range per
 * thread at card boundaries, and each thread replays its cards one after
 * another with one account in memory (its lots, counters and the
 * purchases a return may reverse), through kp_service_price (the engine and
 * the program's script, as at a till) and the ledger's planning.
 */
#include "simulate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <kopilka/clock.h>
#include <kopilka/store.h>
#include <kopilka/sales.h>

#include "service.h"
#include "service_rules.h"

/* ---- the history: interned strings, receipts, lines */

typedef struct sim_line {
    uint32_t sku, category;
    int64_t amount, qty;
    bool promo;
} sim_line;

typedef struct sim_rec {
    kp_time at;
    uint64_t key; /* hash of (store, receipt): a return finds its purchase */
    uint64_t line0;
    int64_t amount;
    int64_t burn;  /* observed, -1 = unknown */
    uint32_t card; /* interned id, 0 = without a card */
    uint32_t store;
    uint32_t n_lines;
    uint8_t is_return;
} sim_rec;

typedef struct interner {
    char *chars;
    size_t n_chars, cap_chars;
    uint64_t *offs; /* offset of string id (1-based: offs[id]) */
    size_t n, cap;
    uint32_t *slots; /* open addressing: string ids, 0 = empty */
    size_t n_slots;
} interner;

/* What the history knows of a card beyond its receipts (kp_sim_history_card). */
typedef struct sim_card {
    uint8_t birth_month, birth_day; /* 0 = unknown */
    kp_time joined_at;              /* 0 = unknown */
} sim_card;

struct kp_sim_history {
    interner str;
    sim_card *cards; /* by interned id, n_cards of them (the rest unknown) */
    size_t n_cards, cap_cards;
    sim_rec *recs;
    size_t n_recs, cap_recs;
    sim_line *lines;
    size_t n_lines, cap_lines;
    kp_time first, last;
};

static uint64_t hash_bytes(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static bool grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * size);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

static const char *str_of(const interner *t, uint32_t id)
{
    return t->chars + t->offs[id];
}

static bool intern_rehash(interner *t)
{
    size_t n = t->n_slots ? t->n_slots * 2 : 1024;
    uint32_t *s = calloc(n, sizeof *s);
    if (!s) return false;
    for (size_t id = 1; id <= t->n; id++) {
        const char *v = str_of(t, (uint32_t)id);
        size_t i = hash_bytes(1469598103934665603ull, v, strlen(v)) & (n - 1);
        while (s[i]) i = (i + 1) & (n - 1);
        s[i] = (uint32_t)id;
    }
    free(t->slots);
    t->slots = s;
    t->n_slots = n;
    return true;
}

/* The id of `v` (1-based), 0 when out of memory. */
static uint32_t intern(interner *t, const char *v)
{
    if ((t->n + 1) * 2 > t->n_slots && !intern_rehash(t)) return 0;
    size_t len = strlen(v);
    size_t i = hash_bytes(1469598103934665603ull, v, len) & (t->n_slots - 1);
    while (t->slots[i]) {
        if (strcmp(str_of(t, t->slots[i]), v) == 0) return t->slots[i];
        i = (i + 1) & (t->n_slots - 1);
    }
    if (!grow((void **)&t->chars, &t->cap_chars, t->n_chars + len + 1, 1)) return 0;
    if (!grow((void **)&t->offs, &t->cap, t->n + 2, sizeof *t->offs)) return 0;
    memcpy(t->chars + t->n_chars, v, len + 1);
    t->offs[++t->n] = t->n_chars;
    t->n_chars += len + 1;
    t->slots[i] = (uint32_t)t->n;
    return (uint32_t)t->n;
}

kp_sim_history *kp_sim_history_new(void)
{
    kp_sim_history *h = calloc(1, sizeof *h);
    if (h && (intern(&h->str, "") == 0)) { /* id 1 = "" */
        kp_sim_history_free(h);
        return NULL;
    }
    return h;
}

void kp_sim_history_free(kp_sim_history *h)
{
    if (!h) return;
    free(h->str.chars);
    free(h->str.offs);
    free(h->str.slots);
    free(h->cards);
    free(h->recs);
    free(h->lines);
    free(h);
}

int64_t kp_sim_history_count(const kp_sim_history *h)
{
    return (int64_t)h->n_recs;
}

static uint64_t receipt_key(const char *store, const char *receipt)
{
    uint64_t k = hash_bytes(1469598103934665603ull, store, strlen(store) + 1);
    return hash_bytes(k, receipt, strlen(receipt));
}

static kp_err history_add(kp_sim_history *h, kp_time at, const char *store, uint64_t key,
                          const char *card, bool is_return, const kp_line *lines, size_t n,
                          int64_t burn, kp_error *e)
{
    if (n == 0 || n > KP_LINES_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "lines", "a receipt has 1 to %d lines",
                            KP_LINES_MAX);
    if (h->n_recs >= UINT32_MAX - 1)
        return kp_error_set(e, KP_ERR_LIMIT, "", "the history holds at most %u receipts",
                            UINT32_MAX - 2);
    if (!grow((void **)&h->recs, &h->cap_recs, h->n_recs + 1, sizeof *h->recs) ||
        !grow((void **)&h->lines, &h->cap_lines, h->n_lines + n, sizeof *h->lines))
        return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory reading the history");
    sim_rec *r = &h->recs[h->n_recs];
    memset(r, 0, sizeof *r);
    r->at = at;
    r->key = key;
    r->line0 = h->n_lines;
    r->n_lines = (uint32_t)n;
    r->burn = burn;
    r->is_return = is_return;
    r->store = intern(&h->str, store);
    r->card = card[0] ? intern(&h->str, card) : 0;
    if (!r->store || (card[0] && !r->card))
        return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory reading the history");
    for (size_t i = 0; i < n; i++) {
        sim_line *l = &h->lines[h->n_lines + i];
        l->sku = intern(&h->str, lines[i].sku);
        l->category = intern(&h->str, lines[i].category);
        if (!l->sku || !l->category)
            return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory reading the history");
        l->amount = lines[i].amount_minor;
        l->qty = lines[i].qty;
        l->promo = lines[i].promo;
        r->amount += l->amount;
    }
    h->n_lines += n;
    if (h->n_recs == 0 || at < h->first) h->first = at;
    if (h->n_recs == 0 || at > h->last) h->last = at;
    h->n_recs++;
    return KP_OK;
}

kp_err kp_sim_history_add(kp_sim_history *h, kp_time at, const char *store, const char *receipt,
                          const char *card, bool is_return, const kp_line *lines, size_t n,
                          int64_t burn, kp_error *e)
{
    return history_add(h, at, store, receipt_key(store, receipt), card, is_return, lines, n, burn,
                       e);
}

kp_err kp_sim_history_card(kp_sim_history *h, const char *card, int birth_month, int birth_day,
                           kp_time joined_at, kp_error *e)
{
    if (!card[0]) return KP_OK;
    if (birth_month < 0 || birth_month > 12 || birth_day < 0 || birth_day > 31 ||
        (birth_month == 0) != (birth_day == 0))
        return kp_error_set(e, KP_ERR_INVALID, "birthday", "month 1..12 and day 1..31, or none");
    uint32_t id = intern(&h->str, card);
    if (!id) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory reading the history");
    if (id >= h->n_cards) {
        if (!grow((void **)&h->cards, &h->cap_cards, (size_t)id + 1, sizeof *h->cards))
            return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory reading the history");
        memset(h->cards + h->n_cards, 0, ((size_t)id + 1 - h->n_cards) * sizeof *h->cards);
        h->n_cards = (size_t)id + 1;
    }
    h->cards[id] = (sim_card){(uint8_t)birth_month, (uint8_t)birth_day, joined_at};
    return KP_OK;
}

/* ---- the sales CSV */

enum {
    COL_AT,
    COL_STORE,
    COL_RECEIPT,
    COL_CARD,
    COL_KIND,
    COL_SKU,
    COL_CATEGORY,
    COL_AMOUNT,
    COL_QTY,
    COL_N
};
static const char *const col_names[COL_N] = {"at",  "store",    "receipt", "card", "kind",
                                             "sku", "category", "amount",  "qty"};

size_t kp_csv_split(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return n + 1;
        char *out = p;
        fields[n++] = out;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0') break;
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p++;
                }
            }
            while (*p && *p != ',') p++;
        } else {
            while (*p && *p != ',') *out++ = *p++;
        }
        bool more = *p == ',';
        if (more) p++;
        *out = '\0';
        if (!more) return n;
    }
}

static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS]" in the program's zone, or RFC 3339. */
static bool csv_time(const char *s, const kp_program *program, kp_time *out)
{
    if (kp_time_parse(s, out)) return true;
    const char *p = s;
    int y, mo, d, hh = 0, mi = 0, ss = 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return false;
    if (*p == ' ' || *p == 'T') {
        p++;
        if (!digits(&p, 2, &hh) || *p++ != ':' || !digits(&p, 2, &mi)) return false;
        if (*p == ':' && (p++, !digits(&p, 2, &ss))) return false;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || hh > 23 || mi > 59 || ss > 60) return false;
    *out = kp_program_date_start(program, y, mo, d) + (kp_time)hh * 3600 + mi * 60 + ss;
    return true;
}

/* "1250.50", "1250,5", "12": major units with up to 2 decimals. */
static bool csv_amount(const char *s, int64_t *out)
{
    int64_t v = 0;
    int dec = -1;
    if (!*s) return false;
    for (const char *p = s; *p; p++) {
        if ((*p == '.' || *p == ',') && dec < 0) {
            dec = 0;
            continue;
        }
        if (*p < '0' || *p > '9' || dec == 2) return false;
        if (v > KP_AMOUNT_MAX) return false;
        v = v * 10 + (*p - '0');
        if (dec >= 0) dec++;
    }
    for (int i = dec < 0 ? 0 : dec; i < 2; i++) v *= 10;
    if (v > KP_AMOUNT_MAX) return false;
    *out = v;
    return true;
}

static bool csv_qty(const char *s, int64_t *out)
{
    if (!*s) {
        *out = 1;
        return true;
    }
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > KP_QTY_MAX) return false;
        v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > KP_QTY_MAX) return false;
    *out = v;
    return true;
}

/* Copies s (checked shorter than KP_STR_MAX) into a KP_STR_MAX buffer. */
static void text_copy(char *out, const char *s)
{
    size_t n = strlen(s);
    memcpy(out, s, n + 1);
}

typedef struct csv_pending {
    bool open;
    kp_time at;
    bool is_return;
    char store[KP_STR_MAX], receipt[KP_STR_MAX], card[KP_STR_MAX];
    size_t n;
    kp_line lines[KP_LINES_MAX];
} csv_pending;

static kp_err csv_flush(kp_sim_history *h, csv_pending *c, kp_error *e)
{
    if (!c->open) return KP_OK;
    c->open = false;
    return kp_sim_history_add(h, c->at, c->store, c->receipt, c->card, c->is_return, c->lines, c->n,
                              -1, e);
}

kp_err kp_sim_history_csv(kp_sim_history *h, FILE *f, const kp_program *program, kp_error *e)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int col[COL_N];
    char *fields[16];
    long long lineno = 0;
    bool header = false;
    char last_at[64] = "";
    kp_time last_t = 0;
    kp_err err = KP_OK;
    csv_pending *c = calloc(1, sizeof *c);
    if (!c) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    while (err == KP_OK && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        char *text = line;
        if (lineno == 1 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB &&
            (unsigned char)text[2] == 0xBF)
            text += 3;
        if (!*text) continue;
        size_t n = kp_csv_split(text, fields, 16);
        if (!header) {
            header = true;
            for (int k = 0; k < COL_N; k++) col[k] = -1;
            for (size_t i = 0; i < n && i < 16; i++)
                for (int k = 0; k < COL_N; k++)
                    if (strcmp(fields[i], col_names[k]) == 0) col[k] = (int)i;
            for (int k = 0; k < COL_N; k++)
                if (col[k] < 0 && k != COL_QTY && k != COL_KIND && k != COL_SKU &&
                    k != COL_CATEGORY && k != COL_CARD)
                    err = kp_error_set(e, KP_ERR_INVALID, "line 1",
                                       "the header has no column \"%s\"; it names at, store, "
                                       "receipt, card, kind, sku, category, amount, qty",
                                       col_names[k]);
            continue;
        }
        const char *v[COL_N];
        for (int k = 0; k < COL_N; k++)
            v[k] = col[k] >= 0 && (size_t)col[k] < n ? fields[col[k]] : "";
        kp_time at = 0;
        bool is_return;
        int64_t amount = 0, qty = 1;
        char where[64];
        snprintf(where, sizeof where, "line %lld", lineno);
        /* the rows of one receipt repeat its time: parsed once */
        bool same_at = strcmp(v[COL_AT], last_at) == 0;
        if (same_at) at = last_t;
        if (!same_at && !csv_time(v[COL_AT], program, &at))
            err = kp_error_set(e, KP_ERR_INVALID, where,
                               "at \"%.40s\" is no time: RFC 3339, \"YYYY-MM-DD HH:MM[:SS]\" or "
                               "\"YYYY-MM-DD\"",
                               v[COL_AT]);
        else if (!*v[COL_STORE] || !*v[COL_RECEIPT] || strlen(v[COL_STORE]) >= KP_STR_MAX ||
                 strlen(v[COL_RECEIPT]) >= KP_STR_MAX || strlen(v[COL_CARD]) >= KP_STR_MAX ||
                 strlen(v[COL_SKU]) >= KP_STR_MAX || strlen(v[COL_CATEGORY]) >= KP_STR_MAX)
            err = kp_error_set(e, KP_ERR_INVALID, where,
                               "store and receipt are required, every text at most %d bytes",
                               KP_STR_MAX - 1);
        else if (strcmp(v[COL_KIND], "") && strcmp(v[COL_KIND], "sale") &&
                 strcmp(v[COL_KIND], "return"))
            err = kp_error_set(e, KP_ERR_INVALID, where,
                               "kind \"%.40s\" is unknown: \"sale\" (or empty) or \"return\"",
                               v[COL_KIND]);
        else if (!csv_amount(v[COL_AMOUNT], &amount))
            err = kp_error_set(e, KP_ERR_INVALID, where,
                               "amount \"%.40s\" is no amount: major units with up to 2 "
                               "decimals, never negative",
                               v[COL_AMOUNT]);
        else if (!csv_qty(v[COL_QTY], &qty))
            err = kp_error_set(e, KP_ERR_INVALID, where,
                               "qty \"%.40s\" is no quantity: a whole number from 1 to %d",
                               v[COL_QTY], KP_QTY_MAX);
        if (err) break;
        if (!same_at && strlen(v[COL_AT]) < sizeof last_at) {
            text_copy(last_at, v[COL_AT]);
            last_t = at;
        }
        is_return = strcmp(v[COL_KIND], "return") == 0;
        bool same = c->open && c->is_return == is_return && strcmp(c->store, v[COL_STORE]) == 0 &&
                    strcmp(c->receipt, v[COL_RECEIPT]) == 0;
        if (same && c->n == KP_LINES_MAX)
            err = kp_error_set(e, KP_ERR_INVALID, where, "a receipt has at most %d lines",
                               KP_LINES_MAX);
        if (!same && err == KP_OK) {
            if ((err = csv_flush(h, c, e))) break;
            c->open = true;
            c->at = at;
            c->is_return = is_return;
            c->n = 0;
            text_copy(c->store, v[COL_STORE]);
            text_copy(c->receipt, v[COL_RECEIPT]);
            text_copy(c->card, v[COL_CARD]);
        }
        if (err) break;
        kp_line *l = &c->lines[c->n++];
        l->promo = false;
        text_copy(l->sku, v[COL_SKU]);
        text_copy(l->category, v[COL_CATEGORY]);
        l->amount_minor = amount;
        l->qty = qty;
    }
    if (err == KP_OK && !header)
        err = kp_error_set(e, KP_ERR_INVALID, "line 1", "the file is empty: a header is required");
    if (err == KP_OK) err = csv_flush(h, c, e);
    free(line);
    free(c);
    return err;
}

/* ---- a database's history: the ledger's purchases and returns, and the
 * sales the store keeps (sales.h) when it has them */

typedef struct db_load {
    kp_sim_history *h;
    kp_purchase_record rec;
    kp_line lines[KP_LINES_MAX];
    /* purchase op id -> its receipt's index + 1 (open addressing) */
    int64_t *ids;
    uint32_t *idx;
    size_t n_slots, n_used;
    /* (account, card's interned id) of the ledger's purchases */
    struct db_member {
        int64_t account;
        uint32_t card;
    } *members;
    size_t n_members, cap_members;
    kp_err err;
    kp_error *e;
} db_load;

static bool ids_put(db_load *d, int64_t id, uint32_t rec)
{
    if ((d->n_used + 1) * 2 > d->n_slots) {
        size_t n = d->n_slots ? d->n_slots * 2 : 4096;
        int64_t *ids = calloc(n, sizeof *ids);
        uint32_t *idx = calloc(n, sizeof *idx);
        if (!ids || !idx) {
            free(ids);
            free(idx);
            return false;
        }
        for (size_t i = 0; i < d->n_slots; i++) {
            if (!d->idx[i]) continue;
            size_t k = (uint64_t)d->ids[i] * 11400714819323198485ull & (n - 1);
            while (idx[k]) k = (k + 1) & (n - 1);
            ids[k] = d->ids[i];
            idx[k] = d->idx[i];
        }
        free(d->ids);
        free(d->idx);
        d->ids = ids;
        d->idx = idx;
        d->n_slots = n;
    }
    size_t k = (uint64_t)id * 11400714819323198485ull & (d->n_slots - 1);
    while (d->idx[k]) k = (k + 1) & (d->n_slots - 1);
    d->ids[k] = id;
    d->idx[k] = rec + 1;
    d->n_used++;
    return true;
}

static uint32_t ids_get(const db_load *d, int64_t id)
{
    if (!d->n_slots) return 0;
    size_t k = (uint64_t)id * 11400714819323198485ull & (d->n_slots - 1);
    while (d->idx[k]) {
        if (d->ids[k] == id) return d->idx[k];
        k = (k + 1) & (d->n_slots - 1);
    }
    return 0;
}

static bool db_op(void *ctx, const kp_op_row *row)
{
    db_load *d = ctx;
    kp_sim_history *h = d->h;
    if (row->type == KP_OP_PURCHASE) {
        if (kp_service_detail_read(row->detail, &d->rec) || d->rec.n_lines == 0) return true;
        for (size_t i = 0; i < d->rec.n_lines; i++) d->lines[i] = d->rec.lines[i].line;
        uint32_t at = (uint32_t)h->n_recs;
        d->err = kp_sim_history_add(h, row->at, row->store, row->receipt, row->card, false,
                                    d->lines, d->rec.n_lines, row->burned, d->e);
        if (d->err == KP_OK && !ids_put(d, row->id, at))
            d->err = kp_error_set(d->e, KP_ERR_NOMEM, "", "out of memory reading the history");
        if (d->err == KP_OK && h->recs[at].card) {
            if (!grow((void **)&d->members, &d->cap_members, d->n_members + 1,
                      sizeof *d->members))
                d->err = kp_error_set(d->e, KP_ERR_NOMEM, "", "out of memory reading the history");
            else
                d->members[d->n_members++] = (struct db_member){row->account_id, h->recs[at].card};
        }
        return d->err == KP_OK;
    }
    /* A return: its lines (sku, qty) are in its stored answer. */
    uint32_t orig = ids_get(d, row->original_op_id);
    if (!orig || !row->response) return true;
    json_error_t je;
    json_t *root = json_loads(row->response, 0, &je);
    json_t *lines = root ? json_object_get(root, "lines") : NULL;
    size_t n = 0;
    for (size_t i = 0; json_is_array(lines) && i < json_array_size(lines) && n < KP_LINES_MAX;
         i++) {
        json_t *l = json_array_get(lines, i);
        const char *sku = json_string_value(json_object_get(l, "sku"));
        json_int_t qty = json_integer_value(json_object_get(l, "qty"));
        if (!sku || qty < 1) continue;
        kp_line *x = &d->lines[n++];
        memset(x, 0, sizeof *x);
        snprintf(x->sku, sizeof x->sku, "%s", sku);
        x->qty = qty;
    }
    json_decref(root);
    if (n == 0) return true;
    const sim_rec *p = &h->recs[orig - 1];
    d->err = history_add(h, row->at, str_of(&h->str, p->store), p->key, row->card, true, d->lines,
                         n, -1, d->e);
    if (d->err == KP_OK) h->recs[h->n_recs - 1].amount = -row->amount_minor;
    return d->err == KP_OK;
}

static bool db_sale(void *ctx, const kp_sale *sale)
{
    db_load *d = ctx;
    size_t n = sale->n_lines < KP_LINES_MAX ? sale->n_lines : KP_LINES_MAX;
    for (size_t i = 0; i < n; i++) {
        kp_line *x = &d->lines[i];
        memset(x, 0, sizeof *x);
        memcpy(x->sku, sale->lines[i].sku, sizeof x->sku);
        memcpy(x->category, sale->lines[i].category, sizeof x->category);
        x->amount_minor = sale->lines[i].amount;
        x->qty = sale->lines[i].qty;
    }
    if (n == 0) return true;
    d->err = kp_sim_history_add(d->h, sale->at, sale->store, sale->receipt, sale->card,
                                sale->kind == KP_SALE_RETURN, d->lines, n, -1, d->e);
    return d->err == KP_OK;
}

static int member_cmp(const void *pa, const void *pb)
{
    const struct db_member *a = pa, *b = pb;
    if (a->account != b->account) return a->account < b->account ? -1 : 1;
    return (a->card > b->card) - (a->card < b->card);
}

/* Sets what `set` says of every card of `account` (the members, sorted). */
static kp_err members_set(kp_sim_history *h, const db_load *d, int64_t account, int month,
                          int day, kp_time joined_at, kp_error *e)
{
    size_t lo = 0, hi = d->n_members;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->members[mid].account < account)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < d->n_members && d->members[i].account == account; i++) {
        uint32_t c = d->members[i].card;
        sim_card now = c < h->n_cards ? h->cards[c] : (sim_card){0, 0, 0};
        if (month) {
            now.birth_month = (uint8_t)month;
            now.birth_day = (uint8_t)day;
        }
        if (joined_at) now.joined_at = joined_at;
        kp_err err = kp_sim_history_card(h, str_of(&h->str, c), now.birth_month, now.birth_day,
                                         now.joined_at, e);
        if (err) return err;
    }
    return KP_OK;
}

/* The ledger's members' birthdays (through `birthdays`, which holds the
 * key to the sealed dates) and the creation of their accounts: every
 * month-day of the year asked once, a page at a time. */
static kp_err members_load(kp_sim_history *h, db_load *d, kp_store *st,
                           const kp_birthday_finder *birthdays, kp_error *e)
{
    if (d->n_members == 0) return KP_OK;
    qsort(d->members, d->n_members, sizeof *d->members, member_cmp);
    size_t out = 0;
    for (size_t i = 0; i < d->n_members; i++)
        if (out == 0 || member_cmp(&d->members[out - 1], &d->members[i]) != 0)
            d->members[out++] = d->members[i];
    d->n_members = out;
    static const int days_in[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    enum { PAGE = 256 };
    int64_t ids[PAGE];
    kp_time created[PAGE];
    kp_err err = KP_OK;
    for (int m = 1; m <= 12 && !err; m++)
        for (int day = 1; day <= days_in[m - 1] && !err; day++) {
            int64_t after = 0;
            for (;;) {
                size_t n = 0;
                if ((err = st->ops->triggers->accounts_created_on(st, m, day, 0, INT64_MAX, after,
                                                                  ids, created, PAGE, &n)))
                    return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
                for (size_t i = 0; i < n && !err; i++)
                    err = members_set(h, d, ids[i], 0, 0, created[i] ? created[i] : 1, e);
                if (err || n < PAGE) break;
                after = ids[n - 1];
            }
            after = 0;
            while (!err && birthdays && birthdays->find) {
                size_t n = 0;
                if ((err = birthdays->find(birthdays->ctx, st, m, day, after, ids, PAGE, &n)))
                    return kp_error_set(e, err, "", "storage failed reading birthdays: %s",
                                        st->last_error);
                for (size_t i = 0; i < n && !err; i++)
                    err = members_set(h, d, ids[i], m, day, 0, e);
                if (err || n < PAGE) break;
                after = ids[n - 1];
            }
        }
    return err;
}

kp_err kp_sim_history_db(kp_sim_history *h, kp_store *st, kp_time from, kp_time to,
                         const kp_birthday_finder *birthdays, kp_error *e)
{
    db_load *d = calloc(1, sizeof *d);
    if (!d) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    d->h = h;
    d->e = e;
    kp_err err = st->ops->ops_scan(st, from, to, db_op, d);
    if (err == KP_OK)
        err = d->err;
    else
        kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    if (err == KP_OK && st->ops->sales && st->ops->sales->sales_scan) {
        err = st->ops->sales->sales_scan(st, from, to, "", db_sale, d);
        if (err == KP_OK)
            err = d->err;
        else
            kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    }
    if (err == KP_OK) err = members_load(h, d, st, birthdays, e);
    free(d->members);
    free(d->ids);
    free(d->idx);
    free(d);
    return err;
}

/* ---- the replay */

typedef struct sim_pline {
    uint64_t hline; /* index into the history's lines */
    kp_line_result result;
    int64_t returned_qty;
} sim_pline;

/* Points one rule gave a purchase: a return takes its share back from it. */
typedef struct sim_gave {
    size_t rule;       /* index in worker.rules */
    int64_t points;    /* what the rule's explanation says it gave */
    int16_t earn_rule; /* an earn rule: its index in the program (lines name it); -1 = the
                          receipt's (tier, bonus, script) */
} sim_gave;

/* A purchase of the current card a later return may reverse. */
typedef struct sim_purchase {
    uint64_t key;
    size_t pline0, n_lines, take0, n_takes, gave0, n_gave;
    int64_t earned, burned, points_minor;
    int tier_index; /* the tier it was priced at (a tier's discount is that tier's) */
    bool not_joined;
} sim_purchase;

/* What a purchase or a return adds to the card's spend, as the ledger's
 * operation amount does (the receipt's amount; minus what a return took
 * back): what tier reviews and the annual spend read. */
typedef struct sim_spend {
    kp_time at;
    int64_t amount_minor;
} sim_spend;

typedef struct worker {
    const kp_sim_history *h;
    const kp_program *p;
    const kp_sim_opts *o;
    const uint32_t *order;
    size_t lo, hi;
    kp_scratch *sc;
    kp_purchase_req req;
    kp_return_request rreq;
    kp_lot_merge merges[KP_LOTS_MAX];
    /* every lot of the current card, by id - 1 (closed ones too: a return reopens them) */
    kp_lot *lots;
    size_t n_lots, cap_lots;
    sim_purchase *purs;
    size_t n_purs, cap_purs;
    sim_pline *plines;
    size_t n_plines, cap_plines;
    kp_lot_take *takes;
    size_t n_takes, cap_takes;
    sim_gave *gave;
    size_t n_gave, cap_gave;
    int year;
    int64_t year_spend;
    /* the card's spend in time order, for its tier reviews: the window of
     * the next review is spends[spend_lo..], worth spend_sum */
    sim_spend *spends;
    size_t n_spends, cap_spends, spend_lo;
    int64_t spend_sum;
    kp_time review_first; /* the first review of the period; KP_TIME_NEVER = none */
    kp_time review_due;   /* the card's next review */
    int tier;             /* the card's tier, index in the program, -1 = none */
    /* the scheduler's grants (birthday, tenure): days after grants_after are
     * due; the once-keys the card used */
    bool grants_birthday, grants_tenure; /* the program has grant rules on them */
    kp_time grants_from;                 /* the day before the period's first */
    kp_time grants_after;
    kp_time grants_next; /* no grant day before it (0 = not known yet) */
    sim_card card_info; /* joined_at: the first receipt when not known */
    char (*keys)[KP_GRANT_KEY_MAX];
    size_t n_keys, cap_keys;
    /* counts */
    kp_sim_month *months;
    size_t n_months;
    int month0; /* year * 12 + month - 1 of months[0] */
    kp_sim_rule *rules;
    size_t n_rules, cap_rules;
    int64_t receipts, cards, skipped;
    int64_t tier_changes;
    int64_t tier_cards[KP_TIERS_MAX + 1]; /* cards per tier at the end; [0] = none */
    int64_t birthday_grants, tenure_grants, cards_without_birthday, cards_joined_unknown;
    bool nomem;
    atomic_llong *done;
    atomic_int *finished;
} worker;

static kp_sim_month *month_of(worker *w, kp_time t)
{
    int y, m, d;
    kp_program_date(w->p, t, &y, &m, &d);
    long i = (long)y * 12 + m - 1 - w->month0;
    if (i < 0) i = 0;
    if ((size_t)i >= w->n_months) i = (long)w->n_months - 1;
    return &w->months[i];
}

/* The index in w->rules of (rule, kind), added when new; SIZE_MAX when out
 * of memory. */
static size_t rule_slot(worker *w, const char *rule, kp_rule_kind kind)
{
    for (size_t i = 0; i < w->n_rules; i++)
        if (w->rules[i].kind == kind && strcmp(w->rules[i].rule, rule) == 0) return i;
    if (!grow((void **)&w->rules, &w->cap_rules, w->n_rules + 1, sizeof *w->rules)) {
        w->nomem = true;
        return SIZE_MAX;
    }
    kp_sim_rule *r = &w->rules[w->n_rules];
    memset(r, 0, sizeof *r);
    snprintf(r->rule, sizeof r->rule, "%s", rule);
    r->kind = kind;
    return w->n_rules++;
}

/* Counts what a purchase's explanation `x` gave to its rule, and keeps the
 * points in w->gave for a return to take back (index of the earn rule when
 * it is one: its lines name it, q->lines[].earn_rule). */
static void rule_gave(worker *w, const kp_quote *q, const kp_explain *x)
{
    if (x->points == 0 && x->discount_minor == 0) return;
    /* a burn rule's points are a cap or a floor, not points given */
    if (x->kind == KP_RULE_BURN_LIMIT || x->kind == KP_RULE_BURN_MIN_BALANCE) return;
    size_t slot = rule_slot(w, x->rule, x->kind);
    if (slot == SIZE_MAX) return;
    w->rules[slot].points += x->points;
    w->rules[slot].discount_minor += x->discount_minor;
    if (x->points == 0) return;
    int16_t earn_rule = -1;
    for (size_t i = 0; x->kind == KP_RULE_EARN_PERCENT && i < q->n_lines && earn_rule < 0; i++) {
        int16_t r = q->lines[i].earn_rule;
        if (r >= 0 && strcmp(w->p->rules[r].id, x->rule) == 0) earn_rule = r;
    }
    if (!grow((void **)&w->gave, &w->cap_gave, w->n_gave + 1, sizeof *w->gave)) {
        w->nomem = true;
        return;
    }
    w->gave[w->n_gave++] = (sim_gave){slot, x->points, earn_rule};
}

/* Takes a returned line's share back from the rules that gave it: its
 * discount from the rule (or tier) that discounted it; its points
 * (`taken`, the ledger's claw-back of the line) from the rules that gave
 * the purchase points, each in proportion to what it gave this line: an
 * earn rule its points spread over its own lines by what they paid, a
 * receipt's rule (a tier's multiplier, a bonus, the script) its points
 * spread over every line by what it paid. Integer shares; what rounding
 * leaves goes to the largest giver, so the rules' points add up to the
 * points issued net of returns. */
static void rule_take_back(worker *w, const sim_purchase *p, const kp_purchase_record *rec,
                           size_t k, int64_t taken, int64_t discount)
{
    const kp_line_result *lr = &rec->lines[k].result;
    int16_t src = lr->discount_rule;
    if (discount && src >= 0) {
        size_t slot = SIZE_MAX;
        if ((size_t)src < w->p->n_rules)
            slot = rule_slot(w, w->p->rules[src].id, w->p->rules[src].kind);
        else if (p->tier_index >= 0 && (size_t)p->tier_index < w->p->n_tiers)
            slot = rule_slot(w, w->p->tiers[p->tier_index].name, KP_RULE_TIER);
        if (slot != SIZE_MAX) {
            w->rules[slot].discount_minor -= discount;
            w->rules[slot].discount_returned_minor += discount;
        }
    }
    if (taken == 0 || p->n_gave == 0) return;
    enum { SCALE = 1000000 };
    static _Thread_local __int128 weight[KP_EXPLAIN_MAX];
    __int128 total = 0;
    int64_t paid_all = 0;
    for (size_t i = 0; i < rec->n_lines; i++) paid_all += rec->lines[i].result.paid_minor;
    size_t n = p->n_gave < KP_EXPLAIN_MAX ? p->n_gave : KP_EXPLAIN_MAX, big = 0;
    for (size_t g = 0; g < n; g++) {
        const sim_gave *x = &w->gave[p->gave0 + g];
        int64_t base = paid_all;
        weight[g] = 0;
        if (x->earn_rule >= 0) {
            if (lr->earn_rule != x->earn_rule) continue;
            base = 0;
            for (size_t i = 0; i < rec->n_lines; i++)
                if (rec->lines[i].result.earn_rule == x->earn_rule)
                    base += rec->lines[i].result.paid_minor;
        }
        if (base > 0) weight[g] = (__int128)x->points * lr->paid_minor * SCALE / base;
        total += weight[g];
        if ((weight[g] < 0 ? -weight[g] : weight[g]) >
            (weight[big] < 0 ? -weight[big] : weight[big]))
            big = g;
    }
    int64_t left = taken;
    for (size_t g = 0; g < n && total != 0; g++) {
        int64_t share = (int64_t)((__int128)taken * weight[g] / total);
        size_t slot = w->gave[p->gave0 + g].rule;
        w->rules[slot].points -= share;
        w->rules[slot].points_returned += share;
        left -= share;
    }
    size_t slot = w->gave[p->gave0 + big].rule;
    w->rules[slot].points -= left;
    w->rules[slot].points_returned += left;
}

static int lot_cmp(const kp_lot *a, const kp_lot *b)
{
    if (a->expires_at != b->expires_at) return a->expires_at < b->expires_at ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* The account's open lots again from w->lots after a plan changed `ids`:
 * updated in place, reopened or new ones added, spent ones dropped, burn
 * order (earliest expiry, then id) restored by insertion. */
static void open_lots_sync(worker *w, const int64_t *ids, size_t n_ids)
{
    kp_account *a = &w->sc->account;
    for (size_t k = 0; k < n_ids; k++) {
        int64_t id = ids[k];
        const kp_lot *src = &w->lots[id - 1];
        size_t i;
        for (i = 0; i < a->n_lots; i++)
            if (a->lots[i].id == id) break;
        if (i < a->n_lots)
            a->lots[i] = *src;
        else if (src->remaining > 0 && a->n_lots < KP_LOTS_MAX)
            a->lots[a->n_lots++] = *src;
    }
    size_t out = 0;
    for (size_t i = 0; i < a->n_lots; i++)
        if (a->lots[i].remaining > 0) a->lots[out++] = a->lots[i];
    a->n_lots = out;
    for (size_t i = 1; i < a->n_lots; i++) {
        kp_lot l = a->lots[i];
        size_t j = i;
        while (j > 0 && lot_cmp(&a->lots[j - 1], &l) > 0) {
            a->lots[j] = a->lots[j - 1];
            j--;
        }
        a->lots[j] = l;
    }
}

/* Applies a plan to the account in memory, as a store's plan_apply does. */
static void plan_apply(worker *w, const kp_ledger_plan *pl, kp_time now)
{
    kp_account *a = &w->sc->account;
    static _Thread_local int64_t ids[KP_LOTS_MAX * 2 + 1];
    size_t n_ids = 0;
    for (size_t i = 0; i < pl->n_changes; i++) {
        w->lots[pl->changes[i].lot_id - 1].remaining += pl->changes[i].delta;
        ids[n_ids++] = pl->changes[i].lot_id;
    }
    if (pl->has_new_lot) {
        const kp_lot *nl = &pl->new_lot;
        if (nl->id) {
            kp_lot *l = &w->lots[nl->id - 1];
            l->amount += nl->amount;
            l->remaining += nl->amount;
            if (nl->active_from > l->active_from) l->active_from = nl->active_from;
            if (nl->expires_at > l->expires_at) l->expires_at = nl->expires_at;
            ids[n_ids++] = nl->id;
        } else if (grow((void **)&w->lots, &w->cap_lots, w->n_lots + 1, sizeof *w->lots)) {
            kp_lot *l = &w->lots[w->n_lots++];
            *l = *nl;
            l->id = (int64_t)w->n_lots;
            l->remaining = nl->amount;
            if (!l->earned_at) l->earned_at = now;
            ids[n_ids++] = l->id;
        } else {
            w->nomem = true;
        }
    }
    open_lots_sync(w, ids, n_ids);
    if (pl->lots_merge) {
        size_t n = a->n_lots;
        size_t m = kp_lots_merge_plan(a->lots, &n, KP_LOTS_MAX, pl->lots_merge_at, w->merges);
        a->n_lots = n;
        for (size_t i = 0; i < m; i++) {
            kp_lot *into = &w->lots[w->merges[i].into_id - 1];
            kp_lot *from = &w->lots[w->merges[i].from_id - 1];
            into->remaining += w->merges[i].points;
            into->amount += w->merges[i].points;
            from->remaining -= w->merges[i].points;
            into->active_from = w->merges[i].active_from;
            into->expires_at = w->merges[i].expires_at;
        }
    }
    a->balance = pl->balance_after;
    a->debt = pl->debt_after;
    a->purchases += pl->purchases_delta;
    a->spend_minor += pl->spend_delta_minor;
}

/* Expires, lot by lot in time order, what expired at or before `t`, each
 * in the month it expired. */
static void expire_until(worker *w, kp_time t)
{
    kp_account *a = &w->sc->account;
    for (;;) {
        kp_time x = KP_TIME_NEVER;
        for (size_t i = 0; i < a->n_lots; i++)
            if (a->lots[i].expires_at <= t && a->lots[i].expires_at < x) x = a->lots[i].expires_at;
        if (x == KP_TIME_NEVER) return;
        int64_t expired = 0;
        if (kp_ledger_plan_expire(a, x, &w->sc->plan, &expired) || w->sc->plan.n_changes == 0)
            return;
        plan_apply(w, &w->sc->plan, x);
        month_of(w, x)->expired += expired;
    }
}

static void card_start(worker *w, uint32_t card, kp_time first_at)
{
    const kp_sim_history *h = w->h;
    w->card_info = card < h->n_cards ? h->cards[card] : (sim_card){0, 0, 0};
    if (w->grants_birthday && !w->card_info.birth_month) w->cards_without_birthday++;
    if (!w->card_info.joined_at) {
        w->card_info.joined_at = first_at;
        if (w->grants_tenure) w->cards_joined_unknown++;
    }
    w->grants_after = w->grants_from;
    w->grants_next = 0;
    w->n_keys = 0;
    kp_account *a = &w->sc->account;
    memset(a, 0, offsetof(kp_account, lots));
    a->id = card;
    a->n_lots = 0;
    a->registered = true;
    w->n_lots = w->n_purs = w->n_plines = w->n_takes = w->n_gave = 0;
    w->year = 0;
    w->year_spend = 0;
    w->n_spends = w->spend_lo = 0;
    w->spend_sum = 0;
    w->review_due = w->review_first;
    w->tier = -1;
    w->cards++;
}

/* Adds to the card's spend at `at` (the ledger's purchase or return
 * amount): this calendar year's spend, and the log tier reviews read. */
static void spend_add(worker *w, kp_time at, int64_t amount_minor)
{
    int y, m, d;
    kp_program_date(w->p, at, &y, &m, &d);
    if (y != w->year) {
        w->year = y;
        w->year_spend = 0;
    }
    w->year_spend += amount_minor;
    if (w->review_first == KP_TIME_NEVER) return;
    if (!grow((void **)&w->spends, &w->cap_spends, w->n_spends + 1, sizeof *w->spends)) {
        w->nomem = true;
        return;
    }
    w->spends[w->n_spends++] = (sim_spend){at, amount_minor};
    w->spend_sum += amount_minor;
}

/* Runs the card's tier reviews due at or before `t`, as the scheduler's
 * tier_review job does (service_tick.c, the same functions): the spend of
 * [due - window, due) decides the tier, limited by the downgrade rule.
 * Every spend logged so far is before the due review: the replay reaches
 * a receipt at `t` only after the reviews due at or before it. */
static void reviews_until(worker *w, kp_time t)
{
    const kp_program *p = w->p;
    while (w->review_due <= t) {
        kp_time from = w->review_due - p->tier_window_days * KP_DAY_SECONDS;
        while (w->spend_lo < w->n_spends && w->spends[w->spend_lo].at < from)
            w->spend_sum -= w->spends[w->spend_lo++].amount_minor;
        int next = kp_tier_reviewed(p, w->tier, kp_program_tier_for_spend(p, w->spend_sum));
        if (next != w->tier) {
            kp_account *a = &w->sc->account;
            const char *name = next >= 0 ? p->tiers[next].name : "";
            memcpy(a->tier, name, strlen(name) + 1);
            w->tier = next;
            w->tier_changes++;
        }
        w->review_due = kp_tier_review_next(p, w->review_due);
    }
}

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* The start of (month, day) in year y of the program's calendar; 29
 * February is 28 February in other years, as the scheduler's daily jobs
 * take it. */
static kp_time grant_day(const kp_program *p, int y, int month, int day)
{
    if (month == 2 && day == 29 && !leap_year(y)) day = 28;
    return kp_program_date_start(p, y, month, day);
}

static bool key_used(const worker *w, const char *key)
{
    for (size_t i = 0; i < w->n_keys; i++)
        if (strcmp(w->keys[i], key) == 0) return true;
    return false;
}

/* Gives the card the program's grant rules on `on` ("birthday", "tenure")
 * for day `day`, as the scheduler's daily job does (service_tick.c): the
 * rule's points, once-keys and lot from kp_grant_prepare, the keys checked
 * against those the card used, the ledger's planning of the move. */
static void grant(worker *w, const char *on, kp_time day, int64_t years)
{
    const kp_program *p = w->p;
    kp_scratch *sc = w->sc;
    for (size_t r = 0; r < p->n_rules; r++) {
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_GRANT || strcmp(rule->on, on) != 0) continue;
        kp_grant_ctx g = {
            .card = "", .store = "", .event_id = "", .token = "", .years = years, .at = day};
        kp_grant_plan gp;
        char why[192];
        if (!kp_grant_prepare(p, rule, sc->account.id, &g, &gp, why, sizeof why) || gp.overflow)
            continue;
        bool used = false;
        for (size_t k = 0; k < gp.n_keys && !used; k++) used = key_used(w, gp.keys[k]);
        if (used) continue;
        kp_error e;
        if (kp_ledger_plan_move(&sc->account, KP_OP_GRANT, KP_SYS_ISSUED, gp.amount, &gp.lot, day,
                                &sc->plan, &e) ||
            kp_ledger_plan_check(&sc->plan, NULL)) {
            w->skipped++;
            continue;
        }
        if (!grow((void **)&w->keys, &w->cap_keys, w->n_keys + gp.n_keys, sizeof *w->keys)) {
            w->nomem = true;
            return;
        }
        for (size_t k = 0; k < gp.n_keys; k++) memcpy(w->keys[w->n_keys++], gp.keys[k], sizeof *w->keys);
        plan_apply(w, &sc->plan, day);
        month_of(w, day)->issued += gp.amount;
        size_t slot = rule_slot(w, rule->id, rule->kind);
        if (slot != SIZE_MAX) w->rules[slot].points += gp.amount;
        if (strcmp(on, "birthday") == 0)
            w->birthday_grants++;
        else
            w->tenure_grants++;
    }
}

/* Runs the card's birthday and tenure grants of the days after
 * w->grants_after up to `t`, as a scheduler's tick at `t` does: every
 * birthday day, then every anniversary (full years since joining, the
 * account created before that day). A birthday only when the history knows
 * it, and only once the card had joined by the end of that day. */
static void grants_until(worker *w, kp_time t)
{
    if ((!w->grants_birthday && !w->grants_tenure) || t <= w->grants_after) return;
    if (t < w->grants_next) { /* most receipts: no grant day since the last one */
        w->grants_after = t;
        return;
    }
    const kp_program *p = w->p;
    const sim_card *c = &w->card_info;
    int y0, y1, m, d;
    kp_program_date(p, w->grants_after + 1, &y0, &m, &d);
    kp_program_date(p, t, &y1, &m, &d);
    if (w->grants_birthday && c->birth_month)
        for (int y = y0; y <= y1; y++) {
            kp_time day = grant_day(p, y, c->birth_month, c->birth_day);
            if (day > w->grants_after && day <= t && c->joined_at < day + KP_DAY_SECONDS)
                grant(w, "birthday", day, 0);
        }
    int cy = 0, cm = 0, cd = 0;
    if (w->grants_tenure) {
        kp_program_date(p, c->joined_at, &cy, &cm, &cd);
        for (int y = y0; y <= y1; y++) {
            kp_time day = grant_day(p, y, cm, cd);
            if (day > w->grants_after && day <= t && c->joined_at < day)
                grant(w, "tenure", day, y - cy);
        }
    }
    w->grants_after = t;
    /* The first grant day after t: this year's or next year's. */
    w->grants_next = KP_TIME_NEVER;
    for (int y = y1; y <= y1 + 1; y++) {
        kp_time b = w->grants_birthday && c->birth_month
                        ? grant_day(p, y, c->birth_month, c->birth_day)
                        : KP_TIME_NEVER,
                ten = w->grants_tenure ? grant_day(p, y, cm, cd) : KP_TIME_NEVER;
        if (b > t && b < w->grants_next) w->grants_next = b;
        if (ten > t && ten < w->grants_next) w->grants_next = ten;
    }
}

/* The card's replay is over at `end`: what expires by then expires, the
 * grants and reviews due by then run, and its tier is counted. */
static void card_end(worker *w, kp_time end)
{
    expire_until(w, end);
    grants_until(w, end);
    reviews_until(w, end);
    w->tier_cards[w->tier + 1]++;
}

static void basket_fill(worker *w, const sim_rec *r, kp_basket *b)
{
    b->n_lines = r->n_lines;
    b->burn_request = 0;
    for (size_t i = 0; i < r->n_lines; i++) {
        const sim_line *sl = &w->h->lines[r->line0 + i];
        kp_line *l = &b->lines[i];
        const char *sku = str_of(&w->h->str, sl->sku), *cat = str_of(&w->h->str, sl->category);
        size_t ns = strlen(sku), nc = strlen(cat);
        memcpy(l->sku, sku, ns + 1);
        memcpy(l->category, cat, nc + 1);
        l->amount_minor = sl->amount;
        l->qty = sl->qty;
        l->promo = sl->promo;
    }
}

static bool uses_year_spend(const kp_program *p)
{
    for (size_t r = 0; r < p->n_rules; r++)
        if (p->rules[r].kind == KP_RULE_ANNUAL_SPEND_BONUS) return true;
    return false;
}

static void do_purchase(worker *w, const sim_rec *r)
{
    kp_scratch *sc = w->sc;
    kp_account *a = &sc->account;
    kp_sim_month *m = month_of(w, r->at);
    m->revenue_minor += r->amount;
    m->member_revenue_minor += r->amount;
    m->receipts++;
    kp_basket *b = &w->req.basket;
    basket_fill(w, r, b);
    int y, mo, d;
    kp_program_date(w->p, r->at, &y, &mo, &d);
    if (y != w->year) {
        w->year = y;
        w->year_spend = 0;
    }
    a->year_spend_minor = uses_year_spend(w->p) ? w->year_spend : 0;
    const char *store = str_of(&w->h->str, r->store);
    kp_error e;
    int32_t bp = w->o->redemption_bp;
    int64_t spendable = a->balance > 0 ? kp_account_spendable(a, r->at) : 0;
    b->burn_request = bp < 0 ? (r->burn > 0 ? r->burn : 0) : (bp > 0 ? spendable : 0);
    sc->till_burn_max = -1;
    if (kp_service_price(w->p, store, &w->req, r->at, sc, &e)) {
        w->skipped++;
        return;
    }
    if (bp > 0 && bp < 10000 && sc->quote.burned > 0) {
        int64_t want = (int64_t)((__int128)sc->quote.burned * bp / 10000);
        if (want != sc->quote.burned) {
            b->burn_request = want;
            if (kp_service_price(w->p, store, &w->req, r->at, sc, &e)) {
                w->skipped++;
                return;
            }
        }
    }
    const kp_quote *q = &sc->quote;
    if (kp_ledger_plan_purchase(w->p, a, b, q, r->at, &sc->plan) ||
        kp_ledger_plan_check(&sc->plan, NULL)) {
        w->skipped++;
        return;
    }
    /* Kept for a return: the lines' results and the lots burnt. */
    if (!grow((void **)&w->purs, &w->cap_purs, w->n_purs + 1, sizeof *w->purs) ||
        !grow((void **)&w->plines, &w->cap_plines, w->n_plines + r->n_lines, sizeof *w->plines) ||
        !grow((void **)&w->takes, &w->cap_takes, w->n_takes + q->n_takes + 1, sizeof *w->takes)) {
        w->nomem = true;
        return;
    }
    sim_purchase *p = &w->purs[w->n_purs++];
    p->key = r->key;
    p->pline0 = w->n_plines;
    p->n_lines = r->n_lines;
    p->take0 = w->n_takes;
    p->n_takes = q->n_takes;
    p->earned = q->earned;
    p->burned = q->burned;
    p->points_minor = q->points_minor;
    p->not_joined = !q->joined;
    p->tier_index = q->tier_index;
    p->gave0 = w->n_gave;
    for (size_t i = 0; i < r->n_lines; i++)
        w->plines[w->n_plines++] = (sim_pline){r->line0 + i, q->lines[i], 0};
    memcpy(w->takes + w->n_takes, q->takes, q->n_takes * sizeof *q->takes);
    w->n_takes += q->n_takes;

    m->discount_minor += q->discount_minor;
    m->burnt_minor += q->points_minor;
    m->issued += q->earned;
    m->burnt += q->burned;
    for (size_t i = 0; i < q->n_explain; i++) rule_gave(w, q, &q->explain[i]);
    p = &w->purs[w->n_purs - 1];
    p->n_gave = w->n_gave - p->gave0;
    spend_add(w, r->at, q->amount_minor);
    plan_apply(w, &sc->plan, r->at);
}

static void do_return(worker *w, const sim_rec *r)
{
    kp_scratch *sc = w->sc;
    kp_sim_month *m = month_of(w, r->at);
    sim_purchase *p = NULL;
    for (size_t i = w->n_purs; i-- > 0;)
        if (w->purs[i].key == r->key) {
            p = &w->purs[i];
            break;
        }
    if (!p) { /* a return of a purchase the history does not hold: money only */
        m->revenue_minor -= r->amount;
        m->member_revenue_minor -= r->amount;
        return;
    }
    kp_purchase_record *rec = &sc->record;
    rec->op_id = (int64_t)(p - w->purs) + 1;
    rec->account_id = sc->account.id;
    rec->earned = p->earned;
    rec->burned = p->burned;
    rec->points_minor = p->points_minor;
    rec->not_joined = p->not_joined;
    rec->n_lines = p->n_lines;
    for (size_t i = 0; i < p->n_lines; i++) {
        const sim_pline *pl = &w->plines[p->pline0 + i];
        const sim_line *sl = &w->h->lines[pl->hline];
        kp_line *l = &rec->lines[i].line;
        snprintf(l->sku, sizeof l->sku, "%s", str_of(&w->h->str, sl->sku));
        snprintf(l->category, sizeof l->category, "%s", str_of(&w->h->str, sl->category));
        l->amount_minor = sl->amount;
        l->qty = sl->qty;
        l->promo = sl->promo;
        rec->lines[i].result = pl->result;
        rec->lines[i].returned_qty = pl->returned_qty;
    }
    rec->n_takes = p->n_takes;
    memcpy(rec->takes, w->takes + p->take0, p->n_takes * sizeof *rec->takes);
    kp_return_request *rq = &w->rreq;
    rq->whole = false;
    rq->n_lines = r->n_lines;
    for (size_t i = 0; i < r->n_lines; i++) {
        const sim_line *sl = &w->h->lines[r->line0 + i];
        snprintf(rq->lines[i].sku, sizeof rq->lines[i].sku, "%s", str_of(&w->h->str, sl->sku));
        rq->lines[i].qty = sl->qty;
    }
    kp_return_result *res = &sc->ret;
    kp_error e;
    if (kp_ledger_plan_return(&sc->account, rec, rq, res, r->at, &sc->plan, &e) ||
        kp_ledger_plan_check(&sc->plan, NULL)) {
        w->skipped++;
        m->revenue_minor -= r->amount;
        m->member_revenue_minor -= r->amount;
        return;
    }
    int64_t points_minor = 0, discount = 0;
    for (size_t i = 0; i < res->n_lines; i++) {
        size_t k = res->lines[i].index;
        points_minor += res->lines[i].points_minor;
        const kp_op_line *ol = &rec->lines[k];
        int64_t d = (int64_t)((__int128)ol->result.discount_minor * res->lines[i].qty /
                              (ol->line.qty ? ol->line.qty : 1));
        discount += d;
        rule_take_back(w, p, rec, k, res->lines[i].earned_reversed, d);
    }
    for (size_t i = 0; i < p->n_lines; i++)
        w->plines[p->pline0 + i].returned_qty = rec->lines[i].returned_qty;
    m->revenue_minor -= res->amount_reversed_minor;
    m->member_revenue_minor -= res->amount_reversed_minor;
    m->discount_minor -= discount;
    m->burnt_minor -= points_minor;
    m->issued -= res->earned_reversed;
    m->burnt -= res->burned_refunded;
    spend_add(w, r->at, -res->amount_reversed_minor);
    plan_apply(w, &sc->plan, r->at);
}

static void *worker_run(void *arg)
{
    worker *w = arg;
    const kp_sim_history *h = w->h;
    uint32_t card = 0;
    kp_time end = w->o->to ? w->o->to - 1 : h->last;
    int64_t since = 0;
    for (size_t i = w->lo; i < w->hi && !w->nomem; i++) {
        const sim_rec *r = &h->recs[w->order[i]];
        if (r->card != card) {
            if (card) card_end(w, end);
            card = r->card;
            if (card) card_start(w, card, r->at);
        }
        w->receipts++;
        if (!card) {
            kp_sim_month *m = month_of(w, r->at);
            int64_t sign = r->is_return ? -1 : 1;
            m->revenue_minor += sign * r->amount;
            if (!r->is_return) m->receipts_nocard++;
        } else {
            expire_until(w, r->at);
            grants_until(w, r->at);
            reviews_until(w, r->at);
            if (r->is_return)
                do_return(w, r);
            else
                do_purchase(w, r);
        }
        if (++since == 4096) {
            atomic_fetch_add(w->done, since);
            since = 0;
        }
    }
    if (card) card_end(w, end);
    atomic_fetch_add(w->done, since);
    atomic_fetch_add(w->finished, 1);
    return NULL;
}

/* Sort key of the order: (card, at, index). */
static const kp_sim_history *sort_h;
static int order_cmp(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    const sim_rec *x = &sort_h->recs[a], *y = &sort_h->recs[b];
    if (x->card != y->card) return x->card < y->card ? -1 : 1;
    if (x->at != y->at) return x->at < y->at ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* Sort key of the rules: their cost in money (points at sort_mpp each, plus
 * discounts), most first. */
static int64_t sort_mpp;
static int rule_cmp(const void *pa, const void *pb)
{
    const kp_sim_rule *a = pa, *b = pb;
    int64_t ca = a->points * sort_mpp + a->discount_minor,
            cb = b->points * sort_mpp + b->discount_minor;
    if (ca != cb) return ca > cb ? -1 : 1;
    int c = strcmp(a->rule, b->rule);
    return c ? c : (a->kind > b->kind) - (a->kind < b->kind);
}

void kp_sim_result_free(kp_sim_result *r)
{
    free(r->months);
    free(r->rules);
    memset(r, 0, sizeof *r);
}

/* Adds b's counts (not the liability, a running sum) to a. */
static void month_add(kp_sim_month *a, const kp_sim_month *b)
{
    a->receipts += b->receipts;
    a->receipts_nocard += b->receipts_nocard;
    a->revenue_minor += b->revenue_minor;
    a->member_revenue_minor += b->member_revenue_minor;
    a->discount_minor += b->discount_minor;
    a->burnt_minor += b->burnt_minor;
    a->issued += b->issued;
    a->burnt += b->burnt;
    a->expired += b->expired;
}

static pthread_mutex_t sort_lock = PTHREAD_MUTEX_INITIALIZER;

static kp_err sim_run(const kp_sim_history *h, const kp_program *program, const kp_sim_opts *opts,
                      kp_sim_result *out, kp_error *e)
{
    memset(out, 0, sizeof *out);
    out->minor_per_point = program->minor_per_point;
    out->n_tiers = program->n_tiers;
    for (size_t i = 0; i < program->n_tiers; i++)
        memcpy(out->tier_names[i], program->tiers[i].name, sizeof out->tier_names[i]);
    int nt = opts->threads < 1 ? 1 : opts->threads > 64 ? 64 : opts->threads;
    /* The receipts in the period, by (card, time, order read). */
    uint32_t *order = malloc((h->n_recs ? h->n_recs : 1) * sizeof *order);
    if (!order) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    size_t n = 0;
    kp_time lo_t = 0, hi_t = 0;
    for (size_t i = 0; i < h->n_recs; i++) {
        kp_time at = h->recs[i].at;
        if ((opts->from && at < opts->from) || (opts->to && at >= opts->to)) continue;
        if (n == 0 || at < lo_t) lo_t = at;
        if (n == 0 || at > hi_t) hi_t = at;
        order[n++] = (uint32_t)i;
    }
    pthread_mutex_lock(&sort_lock);
    sort_h = h;
    qsort(order, n, sizeof *order, order_cmp);
    pthread_mutex_unlock(&sort_lock);
    if (opts->to && opts->to - 1 > hi_t) hi_t = opts->to - 1;
    if (n == 0) hi_t = lo_t = opts->from;
    int y0, m0, y1, m1, d;
    kp_program_date(program, lo_t, &y0, &m0, &d);
    kp_program_date(program, hi_t, &y1, &m1, &d);
    int month0 = y0 * 12 + m0 - 1;
    size_t n_months = (size_t)(y1 * 12 + m1 - 1 - month0 + 1);
    worker *ws = calloc((size_t)nt, sizeof *ws);
    pthread_t *tids = calloc((size_t)nt, sizeof *tids);
    atomic_llong done = 0;
    atomic_int finished = 0;
    kp_err err = KP_OK;
    if (!ws || !tids) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    /* Ranges at card boundaries, about n / nt receipts each. */
    size_t start = 0;
    for (int t = 0; t < nt && !err; t++) {
        worker *w = &ws[t];
        size_t end = t == nt - 1 ? n : (n * (size_t)(t + 1)) / (size_t)nt;
        if (end < start) end = start;
        while (end < n && end > start && h->recs[order[end]].card == h->recs[order[end - 1]].card)
            end++;
        w->h = h;
        w->p = program;
        w->o = opts;
        w->order = order;
        w->lo = start;
        w->hi = end;
        w->done = &done;
        w->finished = &finished;
        w->month0 = month0;
        for (size_t k = 0; k < program->n_rules; k++) {
            const kp_rule *rule = &program->rules[k];
            if (rule->kind != KP_RULE_GRANT) continue;
            if (strcmp(rule->on, "birthday") == 0) w->grants_birthday = true;
            if (strcmp(rule->on, "tenure") == 0) w->grants_tenure = true;
        }
        {
            int fy, fm, fd;
            kp_program_date(program, lo_t, &fy, &fm, &fd);
            w->grants_from = kp_program_date_start(program, fy, fm, fd) - 1;
        }
        w->review_first = program->n_tiers > 0 && program->tier_review_months > 0 && n > 0
                              ? kp_tier_review_at_or_before(program, lo_t)
                              : KP_TIME_NEVER;
        w->n_months = n_months;
        w->months = calloc(n_months, sizeof *w->months);
        w->sc = kp_scratch_new();
        if (w->sc) w->sc->defer_text = true; /* rule_gave reads figures, not sentences */
        if (!w->months || !w->sc) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        start = end;
    }
    int started = 0;
    for (int t = 0; t < nt && !err; t++) {
        if (pthread_create(&tids[t], NULL, worker_run, &ws[t])) {
            err = kp_error_set(e, KP_ERR_NOMEM, "", "cannot start a thread");
            break;
        }
        started++;
    }
    /* The progress, from this thread, while they work. */
    if (started && opts->progress) {
        for (;;) {
            int64_t dn = atomic_load(&done);
            bool all = atomic_load(&finished) == started;
            opts->progress(opts->progress_ctx, dn, (int64_t)n);
            if (all) break;
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    for (int t = 0; t < started; t++) pthread_join(tids[t], NULL);
    /* Sums of integers: the same whatever the split. */
    if (!err) {
        out->months = calloc(n_months, sizeof *out->months);
        if (!out->months) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    }
    for (int t = 0; t < nt && ws && !err; t++) {
        worker *w = &ws[t];
        if (w->nomem) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory replaying");
        out->receipts += w->receipts;
        out->cards += w->cards;
        out->skipped += w->skipped;
        out->tier_changes += w->tier_changes;
        out->birthday_grants += w->birthday_grants;
        out->tenure_grants += w->tenure_grants;
        out->cards_without_birthday += w->cards_without_birthday;
        out->cards_joined_unknown += w->cards_joined_unknown;
        for (size_t k = 0; k <= KP_TIERS_MAX; k++) out->tier_cards[k] += w->tier_cards[k];
        for (size_t i = 0; i < n_months; i++) month_add(&out->months[i], &w->months[i]);
        for (size_t i = 0; i < w->n_rules && !err; i++) {
            size_t k;
            for (k = 0; k < out->n_rules; k++)
                if (out->rules[k].kind == w->rules[i].kind &&
                    strcmp(out->rules[k].rule, w->rules[i].rule) == 0)
                    break;
            if (k == out->n_rules) {
                kp_sim_rule *nr = realloc(out->rules, (out->n_rules + 1) * sizeof *nr);
                if (!nr) {
                    err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
                    break;
                }
                out->rules = nr;
                out->rules[out->n_rules] = w->rules[i];
                out->n_rules++;
            } else {
                out->rules[k].points += w->rules[i].points;
                out->rules[k].discount_minor += w->rules[i].discount_minor;
                out->rules[k].points_returned += w->rules[i].points_returned;
                out->rules[k].discount_returned_minor += w->rules[i].discount_returned_minor;
            }
        }
    }
    if (!err) {
        out->n_months = n_months;
        int64_t liability = 0;
        kp_sim_month *tot = &out->total;
        for (size_t i = 0; i < n_months; i++) {
            kp_sim_month *a = &out->months[i];
            a->year = (month0 + (int)i) / 12;
            a->month = (month0 + (int)i) % 12 + 1;
            liability += a->issued - a->burnt - a->expired;
            a->liability = liability;
            month_add(tot, a);
        }
        tot->liability = liability;
        pthread_mutex_lock(&sort_lock);
        sort_mpp = program->minor_per_point;
        if (out->n_rules) qsort(out->rules, out->n_rules, sizeof *out->rules, rule_cmp);
        pthread_mutex_unlock(&sort_lock);
    }
    for (int t = 0; t < nt && ws; t++) {
        free(ws[t].months);
        free(ws[t].rules);
        free(ws[t].lots);
        free(ws[t].purs);
        free(ws[t].plines);
        free(ws[t].takes);
        free(ws[t].spends);
        free(ws[t].gave);
        free(ws[t].keys);
        kp_scratch_free(ws[t].sc);
    }
    free(ws);
    free(tids);
    free(order);
    if (err) kp_sim_result_free(out);
    return err;
}

/* ---- the report */

/* Cost of the program in money: discounts given and what points paid. */
static int64_t cost_of(const kp_sim_month *m)
{
    return m->discount_minor + m->burnt_minor;
}

/* What the points issued will cost once the unexpired ones are spent:
 * the discounts plus the points issued less those expired, at their value. */
static int64_t accrued_of(const kp_sim_month *m, int64_t mpp)
{
    return m->discount_minor + (m->issued - m->expired) * mpp;
}

/* A share of revenue in basis points (0 with no revenue). */
static int64_t share_bp(int64_t part, int64_t revenue)
{
    return revenue > 0 ? (int64_t)((__int128)part * 10000 / revenue) : 0;
}

static void month_json(kp_buf *b, const kp_sim_month *m, int64_t mpp, bool total)
{
    kp_buf_puts(b, "{");
    if (!total) kp_buf_printf(b, "\"month\":\"%04d-%02d\",", m->year, m->month);
    kp_buf_printf(b,
                  "\"receipts\":%lld,\"receipts_without_card\":%lld,\"revenue_minor\":%lld,"
                  "\"member_revenue_minor\":%lld,\"discount_minor\":%lld,"
                  "\"points_paid_minor\":%lld,\"issued\":%lld,\"burnt\":%lld,\"expired\":%lld,"
                  "\"liability\":%lld,\"liability_minor\":%lld,\"cost_minor\":%lld,"
                  "\"cost_share_bp\":%lld,\"accrued_cost_minor\":%lld,\"margin_impact_bp\":%lld}",
                  (long long)m->receipts, (long long)m->receipts_nocard,
                  (long long)m->revenue_minor, (long long)m->member_revenue_minor,
                  (long long)m->discount_minor, (long long)m->burnt_minor, (long long)m->issued,
                  (long long)m->burnt, (long long)m->expired, (long long)m->liability,
                  (long long)(m->liability * mpp), (long long)cost_of(m),
                  (long long)share_bp(cost_of(m), m->revenue_minor), (long long)accrued_of(m, mpp),
                  (long long)-share_bp(accrued_of(m, mpp), m->revenue_minor));
}

static void result_json(kp_buf *b, const kp_sim_result *r)
{
    kp_buf_printf(b, "{\"receipts\":%lld,\"cards\":%lld,\"skipped\":%lld,\"minor_per_point\":%lld,",
                  (long long)r->receipts, (long long)r->cards, (long long)r->skipped,
                  (long long)r->minor_per_point);
    kp_buf_printf(b,
                  "\"birthday_grants\":%lld,\"tenure_grants\":%lld,\"cards_without_birthday\":%lld,"
                  "\"cards_joined_unknown\":%lld,",
                  (long long)r->birthday_grants, (long long)r->tenure_grants,
                  (long long)r->cards_without_birthday, (long long)r->cards_joined_unknown);
    kp_buf_puts(b, "\"months\":[");
    for (size_t i = 0; i < r->n_months; i++) {
        if (i) kp_buf_puts(b, ",");
        month_json(b, &r->months[i], r->minor_per_point, false);
    }
    kp_buf_puts(b, "],\"rules\":[");
    for (size_t i = 0; i < r->n_rules; i++) {
        const kp_sim_rule *x = &r->rules[i];
        if (i) kp_buf_puts(b, ",");
        kp_buf_puts(b, "{");
        kp_buf_json_kv_str(b, "rule", x->rule, false);
        kp_buf_json_kv_str(b, "kind", kp_rule_kind_name(x->kind), true);
        kp_buf_json_kv_i64(b, "points", x->points, true);
        kp_buf_json_kv_i64(b, "points_minor", x->points * r->minor_per_point, true);
        kp_buf_json_kv_i64(b, "discount_minor", x->discount_minor, true);
        kp_buf_json_kv_i64(b, "points_returned", x->points_returned, true);
        kp_buf_json_kv_i64(b, "discount_returned_minor", x->discount_returned_minor, true);
        kp_buf_puts(b, "}");
    }
    kp_buf_printf(b, "],\"tier_changes\":%lld,\"tiers\":[", (long long)r->tier_changes);
    for (size_t i = 0; r->n_tiers && i <= r->n_tiers; i++) {
        if (i) kp_buf_puts(b, ",");
        kp_buf_puts(b, "{");
        if (i)
            kp_buf_json_kv_str(b, "tier", r->tier_names[i - 1], false);
        else
            kp_buf_puts(b, "\"tier\":null");
        kp_buf_json_kv_i64(b, "cards", r->tier_cards[i], true);
        kp_buf_puts(b, "}");
    }
    kp_buf_puts(b, "],\"total\":");
    month_json(b, &r->total, r->minor_per_point, true);
    kp_buf_puts(b, "}");
}

void kp_sim_json(kp_buf *b, const kp_sim_result *candidate, const kp_sim_result *baseline)
{
    kp_buf_puts(b, "{\"candidate\":");
    result_json(b, candidate);
    kp_buf_puts(b, ",\"baseline\":");
    if (baseline)
        result_json(b, baseline);
    else
        kp_buf_puts(b, "null");
    kp_buf_puts(b, "}");
}

static void money(char *out, size_t size, int64_t minor)
{
    int64_t a = minor < 0 ? -minor : minor;
    snprintf(out, size, "%s%lld.%02lld", minor < 0 ? "-" : "", (long long)(a / 100),
             (long long)(a % 100));
}

static void pct(char *out, size_t size, int64_t bp)
{
    int64_t a = bp < 0 ? -bp : bp;
    snprintf(out, size, "%s%lld.%02lld%%", bp < 0 ? "-" : "", (long long)(a / 100),
             (long long)(a % 100));
}

static void month_row(FILE *f, const char *label, const kp_sim_month *m, int64_t mpp)
{
    char rev[32], disc[32], paid[32], lia[32], share[32], margin[32];
    money(rev, sizeof rev, m->revenue_minor);
    money(disc, sizeof disc, m->discount_minor);
    money(paid, sizeof paid, m->burnt_minor);
    money(lia, sizeof lia, m->liability * mpp);
    pct(share, sizeof share, share_bp(cost_of(m), m->revenue_minor));
    pct(margin, sizeof margin, -share_bp(accrued_of(m, mpp), m->revenue_minor));
    fprintf(f, "%-8s %14s %12s %12lld %12lld %10lld %14s %12s %8s %8s\n", label, rev, disc,
            (long long)m->issued, (long long)m->burnt, (long long)m->expired, lia, paid, share,
            margin);
}

static void result_text(FILE *f, const char *title, const kp_sim_result *r)
{
    fprintf(f, "%s: %lld receipts, %lld cards%s\n", title, (long long)r->receipts,
            (long long)r->cards, r->skipped ? "" : "");
    if (r->skipped)
        fprintf(f, "  %lld receipts refused by the engine or the ledger\n", (long long)r->skipped);
    if (r->birthday_grants || r->cards_without_birthday)
        fprintf(f,
                "  birthday grants: %lld; %lld cards have no known birthday and got none "
                "(only members from the ledger have one; imported cards and a CSV have none)\n",
                (long long)r->birthday_grants, (long long)r->cards_without_birthday);
    if (r->tenure_grants || r->cards_joined_unknown)
        fprintf(f,
                "  tenure grants: %lld; %lld cards without a known joining date count their "
                "years from their first receipt in the history\n",
                (long long)r->tenure_grants, (long long)r->cards_joined_unknown);
    fprintf(f, "%-8s %14s %12s %12s %12s %10s %14s %12s %8s %8s\n", "month", "revenue", "discounts",
            "issued", "burnt", "expired", "liability", "paid_pts", "cost", "margin");
    for (size_t i = 0; i < r->n_months; i++) {
        char label[16];
        snprintf(label, sizeof label, "%04d-%02d", r->months[i].year, r->months[i].month);
        month_row(f, label, &r->months[i], r->minor_per_point);
    }
    month_row(f, "total", &r->total, r->minor_per_point);
    if (r->n_tiers) {
        fprintf(f, "tiers at the end (%lld changes by reviews):", (long long)r->tier_changes);
        for (size_t i = 0; i <= r->n_tiers; i++)
            fprintf(f, " %s %lld", i ? r->tier_names[i - 1] : "none", (long long)r->tier_cards[i]);
        fprintf(f, "\n");
    }
    if (r->n_rules) fprintf(f, "rules by cost, net of returns (taken back by returns):\n");
    for (size_t i = 0; i < r->n_rules && i < 10; i++) {
        const kp_sim_rule *x = &r->rules[i];
        char disc[32], disc_back[32];
        money(disc, sizeof disc, x->discount_minor);
        money(disc_back, sizeof disc_back, x->discount_returned_minor);
        fprintf(f, "  %-40s %-22s %12lld points (%lld) %14s discount (%s)\n", x->rule,
                kp_rule_kind_name(x->kind), (long long)x->points, (long long)x->points_returned,
                disc, disc_back);
    }
}

void kp_sim_text(FILE *f, const kp_sim_result *candidate, const kp_sim_result *baseline)
{
    result_text(f, "candidate", candidate);
    if (baseline) {
        fprintf(f, "\n");
        result_text(f, "baseline", baseline);
        char c[32], b[32];
        pct(c, sizeof c, share_bp(cost_of(&candidate->total), candidate->total.revenue_minor));
        pct(b, sizeof b, share_bp(cost_of(&baseline->total), baseline->total.revenue_minor));
        fprintf(f, "\ncost as a share of revenue: candidate %s, baseline %s\n", c, b);
    }
}

/* The till prices with the program compiled (the server's program cache
 * compiles every version: engine.h, kp_engine_compile); the simulation
 * prices a program not compiled yet with a compiled copy, as fast and with
 * the same answers. */
kp_err kp_sim_run(const kp_sim_history *h, const kp_program *program, const kp_sim_opts *opts,
                  kp_sim_result *out, kp_error *e)
{
    if (program->compiled) return sim_run(h, program, opts, out, e);
    struct {
        kp_program program;
        kp_engine_index index;
    } *c = malloc(sizeof *c);
    if (c == NULL) return sim_run(h, program, opts, out, e);
    c->program = *program;
    kp_engine_compile(&c->program, &c->index);
    c->program.compiled = &c->index;
    kp_err err = sim_run(h, &c->program, opts, out, e);
    free(c);
    return err;
}
