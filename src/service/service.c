/*
 * service.c: quote, purchase, return and card lookup over the store, the
 * engine and the ledger; the answers' JSON; the stored detail of a purchase.
 */
#include "service.h"
#include "currency.h"
#include "chunks.h"

#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/card_number.h>
#include <kopilka/money.h>

#include "notify/notify.h"
#include "script/script.h"
#include "people.h"
#include "service_rules.h"
#include "settle_book.h"

kp_scratch *kp_scratch_new(void)
{
    kp_scratch *s = calloc(1, sizeof *s);
    if (s) kp_buf_init(&s->detail, 4 * KP_BODY_MAX);
    if (s) kp_buf_init(&s->answer, 4 * KP_BODY_MAX);
    if (s) kp_buf_init(&s->notify, 16 * 1024);
    if (s) s->till_burn_max = -1;
    return s;
}

void kp_scratch_free(kp_scratch *s)
{
    if (s == NULL) return;
    kp_script_cache_free(s->script);
    kp_buf_release(&s->detail);
    kp_buf_release(&s->answer);
    kp_buf_release(&s->notify);
    free(s);
}

/* ---- request hashes: what makes two requests "the same" for idempotency */

static void hash_str(crypto_generichash_state *h, const char *s)
{
    crypto_generichash_update(h, (const unsigned char *)s, strlen(s) + 1);
}

static void hash_i64(crypto_generichash_state *h, int64_t v)
{
    crypto_generichash_update(h, (const unsigned char *)&v, sizeof v);
}

static void purchase_hash(const kp_purchase_req *r, uint8_t out[16])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 16);
    hash_str(&h, "purchase");
    hash_str(&h, r->card);
    /* Hashed only when set, so requests of before these modes keep their
     * hashes: a retry of a purchase stored then still matches. */
    if (r->by_phone) hash_str(&h, "by phone");
    if (r->offline) hash_str(&h, "offline");
    if (r->currency[0]) {
        hash_str(&h, "currency");
        hash_str(&h, r->currency);
    }
    hash_i64(&h, r->at_given ? r->at : -1);
    hash_i64(&h, r->basket.burn_request);
    hash_i64(&h, (int64_t)r->basket.n_lines);
    for (size_t i = 0; i < r->basket.n_lines; i++) {
        const kp_line *l = &r->basket.lines[i];
        hash_str(&h, l->sku);
        hash_str(&h, l->category);
        hash_i64(&h, l->amount_minor);
        hash_i64(&h, l->qty);
        hash_i64(&h, l->promo);
    }
    crypto_generichash_final(&h, out, 16);
}

static void return_hash(const kp_return_req *r, uint8_t out[16])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 16);
    hash_str(&h, "return");
    hash_str(&h, r->card);
    hash_str(&h, r->original_receipt);
    if (r->original_store[0]) {
        hash_str(&h, "original store");
        hash_str(&h, r->original_store);
    }
    hash_i64(&h, r->request.whole);
    hash_i64(&h, (int64_t)r->request.n_lines);
    for (size_t i = 0; i < r->request.n_lines; i++) {
        hash_str(&h, r->request.lines[i].sku);
        hash_i64(&h, r->request.lines[i].qty);
    }
    crypto_generichash_final(&h, out, 16);
}

/* ---- the stored detail of a purchase: its lines and lot takes, one per
 * text line, tab-separated. sku and category never hold control characters
 * (the request parser refuses them), so tabs and newlines are safe. Flags
 * of how the till sent it are lines of their own: "O" an offline upload,
 * "P" the customer named by phone. "C" names the receipt's currency when it
 * is not the program's own (the operation's account is the card's account
 * of that currency). */

enum { DETAIL_OFFLINE = 1, DETAIL_BY_PHONE = 2 };

static void detail_write(kp_buf *b, const kp_purchase_record *r, unsigned flags,
                         const char *currency)
{
    kp_buf_reset(b);
    if (currency && currency[0]) kp_buf_printf(b, "C\t%s\n", currency);
    if (r->not_joined) kp_buf_puts(b, "N\t\n");
    if (flags & DETAIL_OFFLINE) kp_buf_puts(b, "O\t\n");
    if (flags & DETAIL_BY_PHONE) kp_buf_puts(b, "P\t\n");
    for (size_t i = 0; i < r->n_lines; i++) {
        const kp_op_line *l = &r->lines[i];
        kp_buf_printf(b, "L\t%s\t%s\t%lld\t%lld\t%d\t%lld\t%lld\t%lld\t%lld\t%lld\n", l->line.sku,
                      l->line.category, (long long)l->line.amount_minor, (long long)l->line.qty,
                      l->line.promo ? 1 : 0, (long long)l->result.discount_minor,
                      (long long)l->result.points_minor, (long long)l->result.paid_minor,
                      (long long)l->result.earned, (long long)l->returned_qty);
    }
    for (size_t i = 0; i < r->n_takes; i++)
        kp_buf_printf(b, "T\t%lld\t%lld\n", (long long)r->takes[i].lot_id,
                      (long long)r->takes[i].points);
}

static bool field_i64(char **p, int64_t *out)
{
    char *end;
    long long v = strtoll(*p, &end, 10);
    if (end == *p || (*end != '\t' && *end != '\n' && *end != '\0')) return false;
    *out = v;
    *p = *end ? end + 1 : end;
    return true;
}

static bool field_str(char **p, char *out, size_t size)
{
    char *end = strpbrk(*p, "\t\n");
    if (end == NULL) return false;
    size_t n = (size_t)(end - *p);
    if (n >= size) return false;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p = end + 1;
    return true;
}

static kp_err detail_read(const char *text, kp_purchase_record *r, unsigned *flags,
                          char currency[4])
{
    r->n_lines = r->n_takes = 0;
    r->not_joined = false;
    *flags = 0;
    currency[0] = '\0';
    char *copy = strdup(text ? text : "");
    if (copy == NULL) return KP_ERR_NOMEM;
    kp_err err = KP_OK;
    char *p = copy;
    while (*p && err == KP_OK) {
        char tag = *p;
        p += 2;
        if (tag == 'L' && r->n_lines < KP_LINES_MAX) {
            kp_op_line *l = &r->lines[r->n_lines++];
            memset(l, 0, sizeof *l);
            int64_t promo = 0;
            if (!field_str(&p, l->line.sku, sizeof l->line.sku) ||
                !field_str(&p, l->line.category, sizeof l->line.category) ||
                !field_i64(&p, &l->line.amount_minor) || !field_i64(&p, &l->line.qty) ||
                !field_i64(&p, &promo) || !field_i64(&p, &l->result.discount_minor) ||
                !field_i64(&p, &l->result.points_minor) || !field_i64(&p, &l->result.paid_minor) ||
                !field_i64(&p, &l->result.earned) || !field_i64(&p, &l->returned_qty))
                err = KP_ERR_INTERNAL;
            l->line.promo = promo != 0;
        } else if (tag == 'N' || tag == 'O' || tag == 'P') {
            if (tag == 'N') r->not_joined = true;
            if (tag == 'O') *flags |= DETAIL_OFFLINE;
            if (tag == 'P') *flags |= DETAIL_BY_PHONE;
            p = strchr(p, '\n');
            p = p ? p + 1 : copy + strlen(text ? text : "");
        } else if (tag == 'C') {
            if (!field_str(&p, currency, 4)) err = KP_ERR_INTERNAL;
        } else if (tag == 'T' && r->n_takes < KP_LOTS_MAX) {
            kp_lot_take *t = &r->takes[r->n_takes++];
            if (!field_i64(&p, &t->lot_id) || !field_i64(&p, &t->points)) err = KP_ERR_INTERNAL;
        } else {
            err = KP_ERR_INTERNAL;
        }
    }
    free(copy);
    return err;
}

kp_err kp_service_detail_read(const char *text, kp_purchase_record *r)
{
    unsigned flags;
    char currency[4];
    return detail_read(text, r, &flags, currency);
}

/* ---- the stored answer of a purchase. A purchase's JSON answer (about
 * 1.4 KB) was the largest thing written per purchase, four fifths of the
 * journal's bytes; it is stored instead as what quote_json() needs beyond the
 * operation row and its detail, one text line per item, and an idempotent
 * retry renders the same JSON from it (answer_render). Strings here can hold
 * anything a program or its script wrote, so tab, newline and backslash are
 * escaped. A stored answer that begins with '{' is JSON (returns, other
 * operations, purchases stored before this format) and is replayed as is.
 *
 *   A <tab> burn_request discount points_minor balance_before balance_after
 *          tier_index burn_limited_by
 *   X <tab> rule kind base rate_bp points discount text      (one per explain) */

static void put_escaped(kp_buf *b, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\' ? "\\\\" : *s == '\t' ? "\\t" : *s == '\n' ? "\\n" : NULL;
        if (esc == NULL) continue;
        kp_buf_append(b, run, (size_t)(s - run));
        kp_buf_puts(b, esc);
        run = s + 1;
    }
    kp_buf_append(b, run, (size_t)(s - run));
}

static bool field_escaped(char **p, char *out, size_t size)
{
    size_t n = 0;
    char *s = *p;
    for (; *s && *s != '\t' && *s != '\n'; s++) {
        char c = *s;
        if (c == '\\') {
            c = s[1] == 't' ? '\t' : s[1] == 'n' ? '\n' : s[1] == '\\' ? '\\' : 0;
            if (c == 0) return false;
            s++;
        }
        if (n + 1 >= size) return false;
        out[n++] = c;
    }
    if (*s == '\0') return false;
    out[n] = '\0';
    *p = s + 1;
    return true;
}

static void answer_write(kp_buf *b, const kp_quote *q)
{
    kp_buf_reset(b);
    kp_buf_printf(b, "A\t%lld\t%lld\t%lld\t%lld\t%lld\t%d\t", (long long)q->burn_request,
                  (long long)q->discount_minor, (long long)q->points_minor,
                  (long long)q->balance_before, (long long)q->balance_after, q->tier_index);
    put_escaped(b, q->burn_limited_by);
    kp_buf_puts(b, "\n");
    for (size_t i = 0; i < q->n_explain; i++) {
        const kp_explain *x = &q->explain[i];
        kp_buf_puts(b, "X\t");
        put_escaped(b, x->rule);
        kp_buf_printf(b, "\t%d\t%lld\t%d\t%lld\t%lld\t", (int)x->kind, (long long)x->base_minor,
                      (int)x->rate_bp, (long long)x->points, (long long)x->discount_minor);
        put_escaped(b, x->text);
        kp_buf_puts(b, "\n");
    }
}

/* Reads answer_write()'s text into the figures of *q it holds. */
static kp_err answer_read(const char *text, kp_quote *q)
{
    char *copy = strdup(text);
    if (copy == NULL) return KP_ERR_NOMEM;
    kp_err err = KP_OK;
    bool have_a = false;
    q->n_explain = 0;
    char *p = copy;
    while (*p && err == KP_OK) {
        char tag = *p;
        if (p[1] != '\t') { err = KP_ERR_INTERNAL; break; }
        p += 2;
        int64_t v[6];
        if (tag == 'A') {
            for (int i = 0; i < 6 && err == KP_OK; i++)
                if (!field_i64(&p, &v[i])) err = KP_ERR_INTERNAL;
            if (err == KP_OK &&
                !field_escaped(&p, q->burn_limited_by, sizeof q->burn_limited_by))
                err = KP_ERR_INTERNAL;
            q->burn_request = v[0];
            q->discount_minor = v[1];
            q->points_minor = v[2];
            q->balance_before = v[3];
            q->balance_after = v[4];
            q->tier_index = (int)v[5];
            have_a = true;
        } else if (tag == 'X' && q->n_explain < KP_EXPLAIN_MAX) {
            kp_explain *x = &q->explain[q->n_explain++];
            if (!field_escaped(&p, x->rule, sizeof x->rule)) err = KP_ERR_INTERNAL;
            for (int i = 0; i < 5 && err == KP_OK; i++)
                if (!field_i64(&p, &v[i])) err = KP_ERR_INTERNAL;
            if (err == KP_OK && !field_escaped(&p, x->text, sizeof x->text)) err = KP_ERR_INTERNAL;
            x->kind = (kp_rule_kind)v[0];
            x->base_minor = v[1];
            x->rate_bp = (int32_t)v[2];
            x->points = v[3];
            x->discount_minor = v[4];
        } else {
            err = KP_ERR_INTERNAL;
        }
    }
    free(copy);
    return err == KP_OK && !have_a ? KP_ERR_INTERNAL : err;
}

/* ---- answers */

static void time_field(kp_buf *b, const char *key, kp_time t)
{
    char ts[32];
    kp_buf_puts(b, ",");
    kp_buf_json_key(b, key);
    if (t == KP_TIME_NEVER) {
        kp_buf_puts(b, "null");
        return;
    }
    kp_time_format(t, ts, sizeof ts);
    kp_buf_json_str(b, ts);
}

static void receipt_line(kp_buf *b, bool *first, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void receipt_line(kp_buf *b, bool *first, const char *fmt, ...)
{
    char line[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (!*first) kp_buf_puts(b, ",");
    *first = false;
    kp_buf_json_str(b, line);
}

/* The explain list of a quote as a JSON array: why every point. */
static void explain_json(kp_buf *b, const kp_quote *q)
{
    kp_buf_puts(b, "[");
    for (size_t i = 0; i < q->n_explain; i++) {
        const kp_explain *x = &q->explain[i];
        char rate[16];
        kp_percent_format(x->rate_bp, rate, sizeof rate);
        kp_buf_puts(b, i ? ",{" : "{");
        kp_buf_json_kv_str(b, "rule", x->rule, false);
        kp_buf_json_kv_str(b, "kind", kp_rule_kind_name(x->kind), true);
        kp_buf_json_kv_i64(b, "base", x->base_minor, true);
        kp_buf_json_kv_str(b, "rate", x->rate_bp ? rate : "", true);
        kp_buf_json_kv_i64(b, "points", x->points, true);
        if (x->discount_minor) kp_buf_json_kv_i64(b, "discount", x->discount_minor, true);
        kp_buf_json_kv_str(b, "text", x->text, true);
        kp_buf_puts(b, "}");
    }
    kp_buf_puts(b, "]");
}

/* currency: the receipt's ("" = the program's own); its points and money
 * are in it. */
static void quote_json(kp_buf *b, const kp_program *program, const char *store,
                       const char *currency, const kp_purchase_req *req, kp_time at,
                       const kp_quote *q, bool is_quote, bool replayed)
{
    const char *cur = currency && currency[0] ? currency : program->currency;
    kp_buf_puts(b, replayed ? "{\"replayed\":true," : "{");
    kp_buf_json_kv_str(b, "card", req->card, false);
    if (req->by_phone) kp_buf_puts(b, ",\"identified_by\":\"phone\"");
    kp_buf_json_kv_str(b, "receipt", req->receipt, true);
    kp_buf_json_kv_str(b, "store", store, true);
    kp_buf_json_kv_i64(b, "program_version", program->version, true);
    kp_buf_json_kv_str(b, "currency", cur, true);
    time_field(b, "at", at);
    if (req->offline) kp_buf_puts(b, ",\"offline\":true");
    kp_buf_json_kv_i64(b, "amount", q->amount_minor, true);
    kp_buf_json_kv_i64(b, "discount", q->discount_minor, true);
    kp_buf_json_kv_i64(b, "burn_requested", q->burn_request, true);
    kp_buf_json_kv_i64(b, "burned", q->burned, true);
    kp_buf_json_kv_i64(b, "paid_with_points", q->points_minor, true);
    kp_buf_puts(b, ",");
    kp_buf_json_key(b, "burn_limited_by");
    if (q->burn_limited_by[0]) kp_buf_json_str(b, q->burn_limited_by);
    else kp_buf_puts(b, "null");
    kp_buf_json_kv_i64(b, "paid", q->paid_minor, true);
    kp_buf_json_kv_i64(b, "earned", q->earned, true);
    kp_buf_json_kv_i64(b, "balance_before", q->balance_before, true);
    kp_buf_json_kv_i64(b, "balance", q->balance_after, true);
    kp_buf_puts(b, q->joined ? ",\"joined\":true" : ",\"joined\":false");
    kp_service_tier_json(b, program, q->tier_index);
    kp_buf_puts(b, ",\"lines\":[");
    for (size_t i = 0; i < q->n_lines; i++) {
        const kp_line *l = &req->basket.lines[i];
        const kp_line_result *r = &q->lines[i];
        kp_buf_puts(b, i ? ",{" : "{");
        kp_buf_json_kv_str(b, "sku", l->sku, false);
        kp_buf_json_kv_str(b, "category", l->category, true);
        kp_buf_json_kv_i64(b, "amount", l->amount_minor, true);
        kp_buf_json_kv_i64(b, "qty", l->qty, true);
        kp_buf_puts(b, l->promo ? ",\"promo\":true" : ",\"promo\":false");
        kp_buf_json_kv_i64(b, "discount", r->discount_minor, true);
        kp_buf_json_kv_i64(b, "paid_with_points", r->points_minor, true);
        kp_buf_json_kv_i64(b, "paid", r->paid_minor, true);
        kp_buf_json_kv_i64(b, "earned", r->earned, true);
        kp_buf_puts(b, "}");
    }
    kp_buf_puts(b, "],\"explain\":");
    explain_json(b, q);
    kp_buf_puts(b, ",\"receipt_lines\":[");
    bool first = true;
    char money[32];
    receipt_line(b, &first, "%s card %s", is_quote ? "Quote for" : "Loyalty", req->card);
    kp_money_format(q->amount_minor, money, sizeof money);
    receipt_line(b, &first, "Amount: %s %s", money, cur);
    if (q->tier_index >= 0)
        receipt_line(b, &first, "Tier: %s", program->tiers[q->tier_index].name);
    if (q->discount_minor > 0) {
        kp_money_format(q->discount_minor, money, sizeof money);
        receipt_line(b, &first, "Discount: %s %s", money, cur);
    }
    if (q->burned > 0) {
        kp_money_format(q->points_minor, money, sizeof money);
        receipt_line(b, &first, "Paid with points: %lld (%s %s)", (long long)q->burned, money,
                     cur);
    }
    kp_money_format(q->paid_minor, money, sizeof money);
    receipt_line(b, &first, "To pay: %s %s", money, cur);
    receipt_line(b, &first, "Points earned: %lld", (long long)q->earned);
    if (currency && currency[0])
        receipt_line(b, &first, "Balance: %lld points (%s)", (long long)q->balance_after, cur);
    else
        receipt_line(b, &first, "Balance: %lld points", (long long)q->balance_after);
    kp_buf_puts(b, "]}");
}

/* A card found (or not) that a till may use: unknown, blocked and
 * replaced cards are refused. */
static kp_err card_usable(const char *number, bool found, const kp_card *card, kp_error *e)
{
    if (!found) return kp_card_unknown(number, "card", e);
    if (card->state == KP_CARD_BLOCKED || card->state == KP_CARD_REPLACED)
        return kp_error_setr(e, KP_ERR_NOT_FOUND, KP_REASON_UNKNOWN_CARD, "card",
                             "card %s is %s and cannot be used", number,
                             kp_card_state_name(card->state));
    return KP_OK;
}

static kp_err card_account(kp_store *st, const char *number, kp_card *card, kp_error *e)
{
    kp_err err = st->ops->card_find(st, number, card);
    if (err != KP_OK && err != KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    return card_usable(number, err == KP_OK, card, e);
}

static kp_err storage_error(kp_store *st, kp_err err, kp_error *e)
{
    /* A limit of the store (an account with too many open lots) is no
     * failure of the storage: its own sentence says what is wrong. */
    return kp_error_set(e, err, "", "%s%s",
                        err == KP_ERR_LIMIT ? "" : "storage failed: ", st->last_error);
}

/* Prices the basket under the program and under what the card may do at
 * the till (an unregistered card, a family member who may not spend:
 * till.c). */
static kp_err price_at_till(kp_store *st, const kp_program *program, const char *store,
                            const kp_card *card, const kp_purchase_req *req, kp_time at,
                            const bool *may_burn, kp_scratch *sc, kp_error *e)
{
    bool no_earn = false;
    const char *why = NULL;
    kp_err err = kp_till_limits(st, program, card, &req->basket, may_burn, sc, &no_earn, &why);
    if (err) return storage_error(st, err, e);
    bool burn_limited = sc->till_burn_max == 0;
    if ((err = kp_service_price(program, store, req, at, sc, e))) return err;
    kp_till_apply(&sc->quote, burn_limited, no_earn, why);
    return KP_OK;
}

/* A quote's card and account: the card's account of the receipt's
 * currency (sc->currency), with its rule state, into sc->account; one not
 * made yet is an empty one (a quote writes nothing). */
static kp_err quote_account(kp_store *st, const kp_program *program, const kp_purchase_req *req,
                            kp_time now, kp_time at, kp_card *card, kp_scratch *sc, kp_error *e)
{
    kp_err err = card_account(st, req->card, card, e);
    if (err) return err;
    if ((err = st->ops->account_load(st, card->account_id, &sc->account)))
        return storage_error(st, err, e);
    sc->account.registered = card->registered;
    if (sc->currency[0])
        return kp_service_currency_switch(st, program, sc->currency, false, now, at, NULL,
                                          &sc->account, e);
    return kp_service_account_rules(st, program, at, &sc->account, NULL, e);
}

kp_err kp_service_quote(kp_store *st, const kp_program *program, const char *store,
                        const kp_purchase_req *req, kp_time now, kp_scratch *sc, kp_buf *out,
                        kp_error *e)
{
    kp_err err = kp_till_check_at(program, req->at_given, req->at, req->offline, now, e);
    if (err) return err;
    if ((err = kp_service_receipt_currency(program, store, req->currency, sc->currency, e)))
        return err;
    kp_card card;
    kp_time at = req->at_given ? req->at : now;
    if ((err = quote_account(st, program, req, now, at, &card, sc, e))) return err;
    if ((err = price_at_till(st, program, store, &card, req, at, NULL, sc, e))) return err;
    kp_buf_reset(out);
    quote_json(out, program, store, sc->currency, req, at, &sc->quote, true, false);
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

kp_err kp_service_sandbox(kp_store *st, const kp_program *program, const char *store,
                          const kp_purchase_req *req, int64_t balance, kp_time now,
                          kp_scratch *sc, kp_buf *out, kp_error *e)
{
    kp_time at = req->at_given ? req->at : now;
    kp_err err = kp_service_receipt_currency(program, store, req->currency, sc->currency, e);
    if (err) return err;
    if (req->card[0]) {
        kp_card card;
        if ((err = quote_account(st, program, req, now, at, &card, sc, e))) return err;
        if ((err = price_at_till(st, program, store, &card, req, at, NULL, sc, e))) return err;
    } else {
        if (balance < 0 || balance > KP_SANDBOX_BALANCE_MAX)
            return kp_error_set(e, KP_ERR_INVALID, "balance", "must be from 0 to %lld points",
                                (long long)KP_SANDBOX_BALANCE_MAX);
        /* A blank registered account: no history, tier or counters, its
         * points in one lot of the purchase kind, spendable, never expiring. */
        kp_account *a = &sc->account;
        memset(a, 0, offsetof(kp_account, lots));
        a->registered = true;
        a->balance = balance;
        a->n_lots = 0;
        if (balance > 0) {
            kp_lot *lot = &a->lots[a->n_lots++];
            memset(lot, 0, sizeof *lot);
            snprintf(lot->kind, sizeof lot->kind, "%s", program->point_kind);
            lot->amount = lot->remaining = balance;
            lot->earned_at = lot->active_from = at;
            lot->expires_at = KP_TIME_NEVER;
        }
        sc->till_burn_max = -1;
        if ((err = kp_service_price(program, store, req, at, sc, e))) return err;
    }
    kp_buf_reset(out);
    quote_json(out, program, store, sc->currency, req, at, &sc->quote, true, false);
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

/* Renders a purchase's answer again from its row, its detail and its stored
 * figures (answer_write), as quote_json() first wrote it, marked replayed.
 * The tier's name and the currency come from the program version that
 * priced it, read again if it is not the current one. */
static kp_err answer_render(kp_store *st, const kp_program *current, const kp_op_row *row,
                            kp_scratch *sc, kp_buf *out, kp_error *e)
{
    kp_quote *q = &sc->quote;
    kp_purchase_record *rec = &sc->record;
    memset(q, 0, sizeof *q);
    unsigned flags = 0;
    char currency[4];
    if (detail_read(row->detail, rec, &flags, currency) != KP_OK ||
        answer_read(row->response, q) != KP_OK)
        return kp_error_set(e, KP_ERR_INTERNAL, "", "the stored answer of receipt %s is unreadable",
                            row->receipt);
    kp_purchase_req *req = &sc->replay_req;
    snprintf(req->card, sizeof req->card, "%s", row->card);
    req->offline = (flags & DETAIL_OFFLINE) != 0;
    req->by_phone = (flags & DETAIL_BY_PHONE) != 0;
    snprintf(req->receipt, sizeof req->receipt, "%s", row->receipt);
    req->basket.n_lines = rec->n_lines;
    q->n_lines = rec->n_lines;
    for (size_t i = 0; i < rec->n_lines; i++) {
        req->basket.lines[i] = rec->lines[i].line;
        q->lines[i] = rec->lines[i].result;
    }
    q->amount_minor = row->amount_minor;
    q->paid_minor = row->paid_minor;
    q->earned = row->earned;
    q->burned = row->burned;
    q->joined = !rec->not_joined;
    const kp_program *program = current;
    kp_program *priced_by = NULL;
    if (current == NULL || current->version != row->program_version) {
        if ((priced_by = malloc(sizeof *priced_by)) == NULL)
            return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        kp_err err = kp_service_program_get(st, row->program_version, priced_by, e);
        if (err) {
            free(priced_by);
            return err;
        }
        program = priced_by;
    }
    if (q->tier_index < 0 || (size_t)q->tier_index >= program->n_tiers) q->tier_index = -1;
    kp_buf_reset(out);
    quote_json(out, program, row->store, currency, req, row->at, q, false, true);
    free(priced_by);
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

/* Answers an idempotent retry from the stored answer, or refuses a reused key. */
static kp_err replay(kp_store *st, const kp_program *program, const kp_op_row *row,
                     kp_op_type type, const uint8_t hash[16], kp_scratch *sc, kp_buf *out,
                     bool *replayed, kp_error *e)
{
    if (row->type != type || memcmp(row->request_hash, hash, 16) != 0)
        return kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_RECEIPT_CONFLICT, "receipt",
                             "receipt %s of store %s was already used for a different request",
                             row->receipt, row->store);
    *replayed = true;
    if (type == KP_OP_PURCHASE && row->response && row->response[0] != '{')
        return answer_render(st, program, row, sc, out, e);
    kp_buf_reset(out);
    const char *resp = row->response ? row->response : "{}";
    kp_buf_puts(out, "{\"replayed\":true,");
    kp_buf_puts(out, resp + 1);
    return KP_OK;
}

/* The notification event of a purchase or return about to be stored as
 * `row`: its figures after sc->plan on sc->account, the payload in
 * sc->notify (for kp_op_row.notify). */
/* account: the card's own account (whose customer is told); currency:
 * the operation's account's ("" = the program's own). */
static kp_err op_notify(kp_notify_kind kind, const kp_op_row *row, int64_t account,
                        const char *currency, int64_t earned, int64_t burnt,
                        const kp_program *program, kp_scratch *sc, kp_notify_event *ev,
                        kp_error *e)
{
    kp_notify_figures f;
    memset(&f, 0, sizeof f);
    f.earned = earned;
    f.burnt = burnt;
    f.points = row->points;
    kp_notify_figures_after(&sc->account, &sc->plan, row->at, &f);
    f.amount_minor = row->amount_minor < 0 ? -row->amount_minor : row->amount_minor;
    if (currency && currency[0]) snprintf(f.currency, sizeof f.currency, "%s", currency);
    else if (program) snprintf(f.currency, sizeof f.currency, "%s", program->currency);
    snprintf(f.store, sizeof f.store, "%s", row->store);
    snprintf(f.receipt, sizeof f.receipt, "%s", row->receipt);
    return kp_notify_event_fill(ev, kind, NULL, account, 0, row->card, 0, row->at, &f,
                                &sc->notify, e);
}

kp_err kp_service_purchase(kp_store *st, const kp_program *program, const char *store,
                           const kp_purchase_req *req, kp_time now, kp_scratch *sc, kp_buf *out,
                           bool *replayed, kp_error *e)
{
    if (req->card[0] == '\0' && !req->by_phone) {
        /* A sale without a card has no account: its currency is checked,
         * not kept (docs/coalition.md "Currencies"). */
        char currency[4];
        kp_err err = kp_service_receipt_currency(program, store, req->currency, currency, e);
        if (err) return err;
        return kp_service_sale_anonymous(st, program, store, req, now, out, replayed, e);
    }
    *replayed = false;
    uint8_t hash[16];
    purchase_hash(req, hash);
    /* Everything the purchase reads, in one call (one round trip on
     * PostgreSQL): the stored operation, the card, its account locked. */
    unsigned want = (kp_service_uses_rule_state(program) ? KP_TILL_RULES : 0u) |
                    (req->basket.burn_request > 0 ? KP_TILL_MAY_BURN : 0u);
    kp_till_read tr;
    kp_err err = st->ops->till_load(st, store, req->receipt, req->card, want, &sc->account, &tr);
    if (err) return storage_error(st, err, e);
    if (tr.op_found) {
        err = replay(st, program, &tr.op, KP_OP_PURCHASE, hash, sc, out, replayed, e);
        kp_op_row_release(&tr.op);
        return err;
    }
    /* One receipt is one sale: the till sent it without a card before. */
    if (tr.anonymous_sale_id)
        return kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_RECEIPT_CONFLICT, "receipt",
                             "receipt %s of store %s is already a sale without a card (sale %lld): "
                             "a purchase with a card cannot use it; send this purchase under a "
                             "receipt of its own",
                             req->receipt, store, (long long)tr.anonymous_sale_id);
    /* After the lookup: a retry of a purchase already made gets its first
     * answer even when it comes later than the clock allows. */
    if (!req->log_format1 &&
        (err = kp_till_check_at(program, req->at_given, req->at, req->offline, now, e)))
        return err;
    if ((err = kp_service_receipt_currency(program, store, req->currency, sc->currency, e)))
        return err;

    const kp_card card = tr.card;
    if ((err = card_usable(req->card, tr.card_found, &card, e))) return err;
    if (tr.account) return storage_error(st, tr.account, e);
    sc->account.registered = card.registered;
    kp_time at = req->at_given ? req->at : now;
    kp_quote *q = &sc->quote;
    /* A receipt in another currency earns and burns in the card's account
     * of that currency, made at its first purchase. */
    if (sc->currency[0])
        err = kp_service_currency_switch(st, program, sc->currency, true, now, at,
                                         (want & KP_TILL_RULES) ? &tr.rules : NULL, &sc->account,
                                         e);
    else
        err = kp_service_account_rules(st, program, at, &sc->account,
                                       (want & KP_TILL_RULES) ? &tr.rules : NULL, e);
    if (err) return err;
    if ((err = price_at_till(st, program, store, &card, req, at,
                             (want & KP_TILL_MAY_BURN) ? &tr.may_burn : NULL, sc, e)))
        return err;
    if ((err = kp_ledger_plan_purchase_issued(program, &sc->account, &req->basket, q,
                                              kp_program_partner_of_store(program, store), at,
                                              &sc->plan))) {
        /* The plan's own check says why, in words (and logs a broken
         * invariant by name). */
        if (kp_ledger_plan_check(&sc->plan, e) == KP_OK)
            kp_error_set(e, err, "", "the ledger refused the purchase");
        return err;
    }

    kp_buf_reset(out);
    quote_json(out, program, store, sc->currency, req, at, q, false, false);
    if (out->failed) return kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large");

    kp_purchase_record *rec = &sc->record;
    rec->n_lines = req->basket.n_lines;
    for (size_t i = 0; i < rec->n_lines; i++) {
        rec->lines[i].line = req->basket.lines[i];
        rec->lines[i].result = q->lines[i];
        rec->lines[i].returned_qty = 0;
    }
    rec->n_takes = q->n_takes;
    rec->not_joined = !q->joined;
    memcpy(rec->takes, q->takes, q->n_takes * sizeof q->takes[0]);
    detail_write(&sc->detail, rec,
                 (req->offline ? DETAIL_OFFLINE : 0u) | (req->by_phone ? DETAIL_BY_PHONE : 0u),
                 sc->currency);
    if (sc->detail.failed) return kp_error_set(e, KP_ERR_NOMEM, "", "the purchase is too large");

    kp_op_row row;
    memset(&row, 0, sizeof row);
    row.type = KP_OP_PURCHASE;
    row.account_id = sc->account.id; /* the currency's account */
    snprintf(row.card, sizeof row.card, "%s", req->card);
    snprintf(row.store, sizeof row.store, "%s", store);
    snprintf(row.receipt, sizeof row.receipt, "%s", req->receipt);
    memcpy(row.request_hash, hash, 16);
    row.program_version = program->version;
    row.at = at;
    row.amount_minor = q->amount_minor;
    row.paid_minor = q->paid_minor;
    row.earned = q->earned;
    row.burned = q->burned;
    row.points = q->earned - q->burned;
    row.detail = sc->detail.data;
    answer_write(&sc->answer, q);
    if (sc->answer.failed) return kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large");
    row.response = sc->answer.data;
    /* Its notification goes with the operation, in the same store call:
     * earned (and burnt nothing) or burnt; neither tells nobody. */
    kp_notify_event ev;
    if (q->earned > 0 || q->burned > 0) {
        if ((err = op_notify(q->burned > 0 ? KP_NOTIFY_BURNT : KP_NOTIFY_EARNED, &row,
                             card.account_id, sc->currency, q->earned, q->burned, program, sc,
                             &ev, e)))
            return err;
        row.notify = &ev;
    }
    if ((err = st->ops->op_insert_apply(st, &row, &sc->plan, at)))
        return storage_error(st, err, e);
    /* A coalition program's settlement entries, in the same transaction. */
    if (kp_program_is_coalition(program))
        return kp_book_purchase(st, program, store, sc->currency, &sc->account, &req->basket, q,
                                at, row.id, now, e);
    return KP_OK;
}

/* Whether the return `req` with `card` may reverse purchase `orig` made in
 * `currency` ("" = the program's own): the purchase's account is the
 * card's own, or the card's account of that currency; the currency the
 * till names, if any, is the purchase's. */
static kp_err return_account_check(kp_store *st, const kp_program *program,
                                   const kp_return_req *req, const kp_card *card,
                                   const kp_op_row *orig, const char *currency, kp_error *e)
{
    bool mine = card->account_id == orig->account_id && currency[0] == '\0';
    if (!mine && currency[0]) {
        kp_currency_account list[KP_CURRENCY_ACCOUNTS_MAX];
        size_t n = 0;
        kp_err err = st->ops->account_currencies(st, card->account_id, list,
                                                 KP_CURRENCY_ACCOUNTS_MAX, &n);
        if (err) return storage_error(st, err, e);
        for (size_t i = 0; i < n; i++)
            if (list[i].account_id == orig->account_id && strcmp(list[i].currency, currency) == 0)
                mine = true;
    }
    if (!mine)
        return kp_error_set(e, KP_ERR_INVALID, "card",
                            "purchase %s was made with another card's account",
                            req->original_receipt);
    const char *was = currency[0] ? currency : program ? program->currency : "";
    if (req->currency[0] && was[0] && strcmp(req->currency, was) != 0)
        return kp_error_set(e, KP_ERR_INVALID, "currency",
                            "purchase %s was paid in %s, not %s: a return goes back in the "
                            "purchase's currency (leave \"currency\" out or send %s)",
                            req->original_receipt, was, req->currency, was);
    return KP_OK;
}

kp_err kp_service_return(kp_store *st, const kp_program *program, const char *store,
                         const kp_return_req *req, kp_time now, kp_scratch *sc, kp_buf *out,
                         bool *replayed, kp_error *e)
{
    *replayed = false;
    uint8_t hash[16];
    return_hash(req, hash);
    kp_op_row row, orig;
    kp_err err = st->ops->op_find(st, store, req->receipt, &row);
    if (err == KP_OK) {
        err = replay(st, NULL, &row, KP_OP_RETURN, hash, sc, out, replayed, e);
        kp_op_row_release(&row);
        return err;
    }
    if (err != KP_ERR_NOT_FOUND) return storage_error(st, err, e);
    if (program && !req->log_format1 &&
        (err = kp_till_check_at(program, req->at_given, req->at, false, now, e)))
        return err;
    /* A purchase may be returned at any store of the program: the
     * return's own store unless the request names the purchase's. */
    const char *orig_store = req->original_store[0] ? req->original_store : store;
    err = st->ops->op_find(st, orig_store, req->original_receipt, &orig);
    if (err == KP_ERR_NOT_FOUND || (err == KP_OK && orig.type != KP_OP_PURCHASE)) {
        if (err == KP_OK) kp_op_row_release(&orig);
        if (req->original_store[0])
            return kp_error_setr(e, KP_ERR_NOT_FOUND, KP_REASON_UNKNOWN_RECEIPT, "original_receipt",
                                "store %s has no purchase with receipt %s", orig_store,
                                req->original_receipt);
        return kp_error_setr(e, KP_ERR_NOT_FOUND, KP_REASON_UNKNOWN_RECEIPT, "original_receipt",
                            "store %s has no purchase with receipt %s; a purchase made at "
                            "another store is returned with \"original_store\" naming it",
                            store, req->original_receipt);
    }
    if (err != KP_OK) return storage_error(st, err, e);
    kp_card card;
    if ((err = card_account(st, req->card, &card, e))) goto out;
    kp_purchase_record *rec = &sc->record;
    unsigned flags = 0;
    char currency[4];
    if ((err = detail_read(orig.detail, rec, &flags, currency))) {
        err = kp_error_set(e, KP_ERR_INTERNAL, "", "purchase %s has an unreadable detail",
                           req->original_receipt);
        goto out;
    }
    /* The return goes to the purchase's own account: the card's account of
     * the purchase's currency. */
    if ((err = return_account_check(st, program, req, &card, &orig, currency, e))) goto out;
    rec->op_id = orig.id;
    rec->account_id = orig.account_id;
    rec->earned = orig.earned;
    rec->burned = orig.burned;
    rec->points_minor = 0;
    for (size_t i = 0; i < rec->n_lines; i++) rec->points_minor += rec->lines[i].result.points_minor;
    if ((err = st->ops->account_load(st, orig.account_id, &sc->account))) {
        err = storage_error(st, err, e);
        goto out;
    }
    kp_return_result *res = &sc->ret;
    kp_time at = req->at_given ? req->at : now;
    bool coalition = program && kp_program_is_coalition(program);
    int64_t earned_before = 0, burned_before = 0;
    if (coalition) kp_book_return_before(rec, &earned_before, &burned_before);
    if ((err = kp_ledger_plan_return(&sc->account, rec, &req->request, res, at, &sc->plan, e)))
        goto out;

    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "card", req->card, false);
    kp_buf_json_kv_str(out, "receipt", req->receipt, true);
    kp_buf_json_kv_str(out, "original_receipt", req->original_receipt, true);
    if (!req->log_format1) kp_buf_json_kv_str(out, "original_store", orig_store, true);
    kp_buf_json_kv_str(out, "store", store, true);
    if (currency[0] || (program && !req->log_format1))
        kp_buf_json_kv_str(out, "currency", currency[0] ? currency : program->currency, true);
    time_field(out, "at", at);
    kp_buf_json_kv_i64(out, "earned_reversed", res->earned_reversed, true);
    kp_buf_json_kv_i64(out, "burned_refunded", res->burned_refunded, true);
    kp_buf_json_kv_i64(out, "spend_reversed", res->spend_reversed_minor, true);
    kp_buf_json_kv_i64(out, "balance", sc->plan.balance_after, true);
    kp_buf_json_kv_i64(out, "debt", sc->plan.debt_after, true);
    kp_buf_puts(out, ",\"lines\":[");
    for (size_t i = 0; i < res->n_lines; i++) {
        const kp_op_line *ol = &rec->lines[res->lines[i].index];
        kp_buf_puts(out, i ? ",{" : "{");
        kp_buf_json_kv_str(out, "sku", ol->line.sku, false);
        kp_buf_json_kv_i64(out, "qty", res->lines[i].qty, true);
        kp_buf_json_kv_i64(out, "earned_reversed", res->lines[i].earned_reversed, true);
        kp_buf_json_kv_i64(out, "paid_with_points_refunded", res->lines[i].points_minor, true);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "],\"receipt_lines\":[");
    bool first = true;
    receipt_line(out, &first, "Return for card %s, purchase %s", req->card, req->original_receipt);
    if (res->burned_refunded)
        receipt_line(out, &first, "Points refunded: %lld", (long long)res->burned_refunded);
    receipt_line(out, &first, "Points reversed: %lld", (long long)res->earned_reversed);
    receipt_line(out, &first, "Balance: %lld points", (long long)sc->plan.balance_after);
    kp_buf_puts(out, "]}");
    if (out->failed) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large");
        goto out;
    }

    memset(&row, 0, sizeof row);
    row.type = KP_OP_RETURN;
    row.account_id = orig.account_id;
    snprintf(row.card, sizeof row.card, "%s", req->card);
    snprintf(row.store, sizeof row.store, "%s", store);
    snprintf(row.receipt, sizeof row.receipt, "%s", req->receipt);
    memcpy(row.request_hash, hash, 16);
    row.program_version = orig.program_version;
    row.at = at;
    row.amount_minor = -res->amount_reversed_minor;
    row.earned = -res->earned_reversed;
    row.burned = -res->burned_refunded;
    row.points = res->burned_refunded - res->earned_reversed;
    row.original_op_id = orig.id;
    row.response = out->data;
    /* The return's notification, written with its operation: earned =
     * points taken back, burnt = points given back, points = the net
     * change. */
    kp_notify_event ev;
    if (res->earned_reversed > 0 || res->burned_refunded > 0) {
        if ((err = op_notify(KP_NOTIFY_RETURNED, &row, card.account_id, currency,
                             res->earned_reversed, res->burned_refunded, program, sc, &ev, e)))
            goto out;
        row.notify = &ev;
    }
    if ((err = st->ops->op_insert(st, &row))) { err = storage_error(st, err, e); goto out; }
    detail_write(&sc->detail, rec, flags, currency);
    if ((err = st->ops->op_set_detail(st, orig.id, sc->detail.data))) {
        err = storage_error(st, err, e);
        goto out;
    }
    if ((err = st->ops->plan_apply(st, row.id, &sc->plan, at))) {
        err = storage_error(st, err, e);
        goto out;
    }
    if (coalition)
        err = kp_book_return(st, program, orig.id, orig.earned, earned_before,
                             earned_before + res->earned_reversed, orig.burned, burned_before,
                             burned_before + res->burned_refunded, row.id, now, e);
out:
    kp_op_row_release(&orig);
    return err;
}

void kp_service_lots_json(kp_buf *out, const kp_account *a)
{
    kp_buf_puts(out, ",\"lots\":[");
    for (size_t i = 0; i < a->n_lots; i++) {
        const kp_lot *l = &a->lots[i];
        kp_buf_puts(out, i ? ",{" : "{");
        kp_buf_json_kv_str(out, "kind", l->kind, false);
        kp_buf_json_kv_i64(out, "amount", l->amount, true);
        kp_buf_json_kv_i64(out, "remaining", l->remaining, true);
        time_field(out, "earned_at", l->earned_at);
        time_field(out, "active_from", l->active_from);
        time_field(out, "expires_at", l->expires_at);
        kp_buf_json_kv_str(out, "partner", l->partner[0] ? l->partner : "operator", true);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "]");
}

/* ---- why an operation moved points (a history's explain lists) */

/* One item of an explain list, in the shape of a purchase's items. */
static void explain_item(kp_buf *b, bool *first, const char *rule, const char *kind,
                         int64_t points, const char *text)
{
    kp_buf_puts(b, *first ? "{" : ",{");
    *first = false;
    kp_buf_json_kv_str(b, "rule", rule, false);
    kp_buf_json_kv_str(b, "kind", kind, true);
    kp_buf_json_kv_i64(b, "base", 0, true);
    kp_buf_json_kv_str(b, "rate", "", true);
    kp_buf_json_kv_i64(b, "points", points, true);
    kp_buf_json_kv_str(b, "text", text, true);
    kp_buf_puts(b, "}");
}

static int64_t json_i64_of(json_t *root, const char *key)
{
    json_t *v = root ? json_object_get(root, key) : NULL;
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static const char *json_str_of(json_t *root, const char *key)
{
    json_t *v = root ? json_object_get(root, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : "";
}

kp_err kp_service_explain(kp_store *st, kp_op_type type, const char *store, const char *receipt,
                          int64_t points, kp_scratch *sc, kp_buf *out, kp_error *e)
{
    kp_op_row row;
    memset(&row, 0, sizeof row);
    bool found = false;
    if (receipt[0] && type != KP_OP_EXPIRE && type != KP_OP_TRANSFER && type != KP_OP_OPENING) {
        kp_err err = st->ops->op_find(st, store, receipt, &row);
        if (err != KP_OK && err != KP_ERR_NOT_FOUND) return storage_error(st, err, e);
        found = err == KP_OK;
    }
    const char *response = found && row.response ? row.response : "";
    json_t *answer = response[0] == '{' ? json_loads(response, 0, NULL) : NULL;
    bool first = true;
    char text[KP_REASON_MAX + 96];
    switch (type) {
    case KP_OP_PURCHASE:
        if (response[0] && response[0] != '{') {
            kp_quote *q = sc ? &sc->quote : malloc(sizeof *q);
            bool read = q && (memset(q, 0, sizeof *q), answer_read(response, q) == KP_OK);
            if (read) explain_json(out, q);
            if (sc == NULL) free(q);
            if (read) break;
        }
        {
            /* A purchase stored as JSON (before the compact answers) has
             * its list in the answer as the till got it. */
            json_t *list = answer ? json_object_get(answer, "explain") : NULL;
            char *dump = json_is_array(list) ? json_dumps(list, JSON_COMPACT) : NULL;
            kp_buf_puts(out, dump ? dump : "[]");
            free(dump);
        }
        break;
    case KP_OP_RETURN: {
        kp_buf_puts(out, "[");
        const char *original = json_str_of(answer, "original_receipt");
        int64_t taken = json_i64_of(answer, "earned_reversed");
        int64_t given = json_i64_of(answer, "burned_refunded");
        snprintf(text, sizeof text, "a return of purchase %s: the points it earned taken back",
                 original);
        if (taken) explain_item(out, &first, "", "return", -taken, text);
        snprintf(text, sizeof text, "a return of purchase %s: the points paid with given back",
                 original);
        if (given) explain_item(out, &first, "", "refund", given, text);
        if (first) explain_item(out, &first, "", "return", points, "a return");
        kp_buf_puts(out, "]");
        break;
    }
    case KP_OP_GRANT: {
        /* The detail reads "rule ID on TRIGGER: N KIND points". */
        const char *detail = found && row.detail ? row.detail : "";
        char rule[KP_STR_MAX] = "";
        if (strncmp(detail, "rule ", 5) == 0) {
            const char *end = strstr(detail + 5, " on ");
            size_t n = end ? (size_t)(end - detail - 5) : 0;
            if (n < sizeof rule) snprintf(rule, sizeof rule, "%.*s", (int)n, detail + 5);
        }
        kp_buf_puts(out, "[");
        explain_item(out, &first, rule, "grant", points, detail[0] ? detail : "a bonus");
        kp_buf_puts(out, "]");
        break;
    }
    case KP_OP_ADJUST:
        snprintf(text, sizeof text, "a manual adjustment: %s", json_str_of(answer, "reason"));
        kp_buf_puts(out, "[");
        explain_item(out, &first, "", "adjustment", points, text);
        kp_buf_puts(out, "]");
        break;
    case KP_OP_TRANSFER:
        kp_buf_puts(out, "[");
        explain_item(out, &first, "", "transfer", points,
                     strcmp(store, "#family") == 0
                         ? (points < 0 ? "moved into the family's shared account on joining"
                                       : "a member's points moved in on joining the family")
                         : (points < 0 ? "given to another customer"
                                       : "received from another customer"));
        kp_buf_puts(out, "]");
        break;
    case KP_OP_EXPIRE:
        kp_buf_puts(out, "[");
        explain_item(out, &first, "", "expiry", points, "points whose validity ended");
        kp_buf_puts(out, "]");
        break;
    case KP_OP_REWARD:
    case KP_OP_REWARD_CANCEL:
        /* The receipt is "order:<id>" (":cancel" for the points given back). */
        snprintf(text, sizeof text, "%s %s from the rewards catalog",
                 type == KP_OP_REWARD ? "paid for" : "given back: cancelled", receipt);
        kp_buf_puts(out, "[");
        explain_item(out, &first, "", type == KP_OP_REWARD ? "reward" : "reward_cancel", points,
                     text);
        kp_buf_puts(out, "]");
        break;
    case KP_OP_OPENING:
        kp_buf_puts(out, "[");
        explain_item(out, &first, "", "opening", points,
                     "the balance carried over from the previous program");
        kp_buf_puts(out, "]");
        break;
    default: kp_buf_puts(out, "[]"); break;
    }
    json_decref(answer);
    kp_op_row_release(&row);
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

kp_err kp_service_card(kp_store *st, const char *number, kp_time now, kp_scratch *sc, kp_buf *out,
                       kp_error *e)
{
    return kp_service_card_program(st, NULL, number, now, sc, out, e);
}

kp_err kp_service_card_program(kp_store *st, const kp_program *program, const char *number,
                               kp_time now, kp_scratch *sc, kp_buf *out, kp_error *e)
{
    kp_card card;
    kp_err err = st->ops->card_find(st, number, &card);
    if (err == KP_ERR_NOT_FOUND)
        return kp_card_unknown(number, "card", e);
    if (err) return storage_error(st, err, e);
    kp_account *a = &sc->account;
    if ((err = st->ops->account_load(st, card.account_id, a))) return storage_error(st, err, e);
    size_t n_hist = 0;
    if ((err = st->ops->history(st, card.account_id, sc->history, 50, &n_hist)))
        return storage_error(st, err, e);
    int64_t pending = 0;
    for (size_t i = 0; i < a->n_lots; i++)
        if (a->lots[i].active_from > now && a->lots[i].expires_at > now)
            pending += a->lots[i].remaining;
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "card", number, false);
    kp_buf_json_kv_str(out, "state", kp_card_state_name(card.state), true);
    kp_buf_puts(out, card.registered ? ",\"registered\":true" : ",\"registered\":false");
    kp_buf_json_kv_i64(out, "balance", a->balance, true);
    kp_buf_json_kv_i64(out, "available", kp_account_spendable(a, now), true);
    kp_buf_json_kv_i64(out, "pending", pending, true);
    kp_buf_json_kv_i64(out, "debt", a->debt, true);
    kp_buf_json_kv_i64(out, "purchases", a->purchases, true);
    kp_buf_json_kv_i64(out, "spend", a->spend_minor, true);
    /* The figures above are the card's own account's, in the program's
     * currency; "balances" has every currency's (docs/coalition.md). */
    if ((err = kp_service_balances_json(st, program ? program->currency : "", a, now, out, e)))
        return err;
    if (program) {
        /* What the till shows beside the balance: tier, privileges, the
         * individual discount. */
        kp_account_rules rules;
        if ((err = st->ops->triggers->account_rules_get(st, card.account_id, &rules)))
            return storage_error(st, err, e);
        int tier_index = -1;
        kp_program_tier(program, rules.tier, &tier_index);
        kp_service_tier_json(out, program, tier_index);
        if (rules.has_personal_discount) {
            char rate[16];
            kp_percent_format(rules.personal_discount_bp, rate, sizeof rate);
            kp_buf_json_kv_str(out, "personal_discount", rate, true);
        }
    }
    kp_service_lots_json(out, a);
    kp_buf_puts(out, ",\"history\":[");
    for (size_t i = 0; i < n_hist; i++) {
        const kp_history_item *h = &sc->history[i];
        kp_buf_puts(out, i ? ",{" : "{");
        kp_buf_json_kv_str(out, "type", kp_op_type_name(h->type), false);
        kp_buf_json_kv_str(out, "receipt", h->receipt, true);
        kp_buf_json_kv_str(out, "store", h->store, true);
        time_field(out, "at", h->at);
        kp_buf_json_kv_i64(out, "points", h->points, true);
        kp_buf_json_kv_i64(out, "amount", h->amount_minor, true);
        if (h->currency[0]) kp_buf_json_kv_str(out, "currency", h->currency, true);
        else if (program) kp_buf_json_kv_str(out, "currency", program->currency, true);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "]}");
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

kp_err kp_service_identify(kp_store *st, const kp_program *program, const kp_purchase_req *req,
                           kp_time now, kp_scratch *sc, kp_buf *out, kp_error *e)
{
    kp_err err = kp_service_card_program(st, program, req->card, now, sc, out, e);
    if (err || !req->by_phone) return err;
    /* The card answer again, after the mark: sc->answer is free on a
     * reader (only purchases use it). */
    kp_buf_reset(&sc->answer);
    kp_buf_append(&sc->answer, out->data, out->len);
    if (sc->answer.failed) return kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large");
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"identified_by\":\"phone\",");
    kp_buf_append(out, sc->answer.data + 1, sc->answer.len - 1);
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

/* ---- administration */

/* The errors of one check of a program file (kp_service_program_check). */
typedef struct program_check {
    kp_program_error_fn report;
    void *ctx;
    kp_error first;
    size_t n;
    bool script_error; /* an error in the "script" section */
    bool unreadable;   /* not JSON, or not an object: nothing else to check */
} program_check;

static void program_check_note(void *arg, const kp_error *error)
{
    program_check *c = arg;
    if (c->n++ == 0) c->first = *error;
    if (strncmp(error->field, "script", 6) == 0) c->script_error = true;
    if (error->field[0] == '\0') c->unreadable = true;
    if (c->report) c->report(c->ctx, error);
}

kp_err kp_service_program_check(const char *json, size_t len, kp_program *p,
                                kp_program_error_fn report, void *ctx, kp_error *e)
{
    program_check c = {.report = report, .ctx = ctx};
    kp_error first;
    kp_program_parse_each(json, len, p, program_check_note, &c, &first);
    kp_error one = {0};
    /* The script is run only when its section was read without error: a
     * function name in error would be reported twice. */
    if (!c.unreadable && !c.script_error && (p->script_earn[0] || p->script_burn[0]) &&
        kp_script_check(p, &one) != KP_OK)
        program_check_note(&c, &one);
    if (!c.unreadable) {
        /* The "customers" section (people.h) and the "notifications"
         * section (src/notify/notify.h) are checked here too, so a typo
         * there fails the load, not a registration later. */
        kp_people_policy *policy = malloc(sizeof *policy);
        kp_notify_policy np;
        kp_error_clear(&one);
        if (policy == NULL) kp_error_set(&one, KP_ERR_NOMEM, "", "out of memory");
        if (policy == NULL || kp_people_policy_parse(json, len, policy, &one) != KP_OK)
            program_check_note(&c, &one);
        free(policy);
        kp_error_clear(&one);
        if (kp_notify_policy_parse(json, len, &np, &one) != KP_OK) program_check_note(&c, &one);
    }
    if (c.n == 0) return KP_OK;
    if (e) *e = c.first;
    return c.first.code;
}

kp_err kp_service_program_insert(kp_store *st, const char *json, size_t len,
                                 const kp_program_version *meta, int64_t *version,
                                 kp_program_error_fn report, void *ctx, kp_error *e)
{
    kp_program *p = malloc(sizeof *p);
    char *text = strndup(json, len);
    kp_err err = p && text ? kp_service_program_check(json, len, p, report, ctx, e)
                           : kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK) {
        kp_program_version row = *meta;
        if (row.name[0] == '\0') snprintf(row.name, sizeof row.name, "%s", p->name);
        err = st->ops->program_insert(st, text, &row, version);
        if (err == KP_ERR_CONFLICT)
            kp_error_set(e, err, "activates_at", "%s", st->last_error);
        else if (err)
            storage_error(st, err, e);
    }
    free(text);
    free(p);
    return err;
}

kp_err kp_service_program_load(kp_store *st, const char *json, size_t len, int64_t *version,
                               kp_error *e)
{
    kp_program_version meta;
    memset(&meta, 0, sizeof meta);
    snprintf(meta.loaded_by, sizeof meta.loaded_by, "cli");
    meta.loaded_at = kp_clock_now(NULL);
    return kp_service_program_insert(st, json, len, &meta, version, NULL, NULL, e);
}

kp_err kp_service_program_running(kp_store *st, int64_t version, kp_time at, kp_program *out,
                                  kp_error *e)
{
    char *json = NULL;
    int64_t v = 0;
    kp_err err = st->ops->program_get(st, version, at, &json, &v);
    if (err == KP_ERR_NOT_FOUND && version)
        return kp_error_set(e, err, "program", "there is no program version %lld",
                            (long long)version);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "program", "no program is loaded (use `kopilka program load`)");
    if (err) return storage_error(st, err, e);
    err = kp_program_parse(json, strlen(json), out, e);
    free(json);
    if (err == KP_OK) out->version = v;
    return err;
}

kp_err kp_service_program_get(kp_store *st, int64_t version, kp_program *out, kp_error *e)
{
    return kp_service_program_running(st, version, kp_clock_now(NULL), out, e);
}

void kp_service_key_hash(const char *key, uint8_t hash[32])
{
    /* The key is 256 random bits, so a fast keyed-less BLAKE2b is enough:
     * there is nothing to brute-force that a slow password hash would slow. */
    crypto_generichash(hash, 32, (const unsigned char *)key, strlen(key), NULL, 0);
}

kp_err kp_service_terminal_add(kp_store *st, const char *store, char key_out[65], kp_error *e)
{
    if (store[0] == '\0' || strlen(store) >= KP_STR_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "store", "must be 1 to %d bytes", KP_STR_MAX - 1);
    /* "#adjust", "#transfer", ... are the back office's idempotency scopes. */
    if (store[0] == '#')
        return kp_error_set(e, KP_ERR_INVALID, "store", "must not start with '#'");
    uint8_t raw[24], hash[32];
    randombytes_buf(raw, sizeof raw);
    memcpy(key_out, "kp_", 3);
    sodium_bin2hex(key_out + 3, 62, raw, sizeof raw);
    kp_service_key_hash(key_out, hash);
    int64_t id;
    kp_err err = st->ops->terminal_insert(st, store, hash, &id);
    if (err) return storage_error(st, err, e);
    return KP_OK;
}

kp_err kp_service_terminal_auth(kp_store *st, const char *key, kp_terminal *out)
{
    uint8_t hash[32];
    kp_service_key_hash(key, hash);
    return st->ops->terminal_find(st, hash, out);
}

kp_err kp_service_cards_issue(kp_store *st, int64_t count, kp_time now,
                              void (*emit)(void *ctx, const char *number), void *ctx, kp_error *e)
{
    return kp_service_cards_issue_chunks(st, count, now, emit, ctx, NULL, e);
}

kp_err kp_service_cards_issue_chunks(kp_store *st, int64_t count, kp_time now,
                                     void (*emit)(void *ctx, const char *number), void *ctx,
                                     struct kp_chunks *ch, kp_error *e)
{
    if (count < 1 || count > 10000000)
        return kp_error_set(e, KP_ERR_INVALID, "count", "must be from 1 to 10000000");
    for (int64_t i = 0; i < count; i++) {
        char number[KP_CARD_DIGITS + 1];
        int64_t account_id;
        kp_err err;
        int tries = 0;
        /* A number already taken is looked up first: card_create makes the
         * account before the card, so a collision there would leave an
         * empty account behind. */
        do {
            kp_card taken;
            kp_card_number_generate("20", number);
            err = st->ops->card_find(st, number, &taken);
            if (err == KP_OK) err = KP_ERR_CONFLICT;
            else if (err == KP_ERR_NOT_FOUND)
                err = st->ops->card_create(st, number, KP_CARD_ISSUED, now, &account_id);
        } while (err == KP_ERR_CONFLICT && ++tries < 16);
        if (err) return storage_error(st, err, e);
        emit(ctx, number);
        if (ch && (err = kp_chunks_step(ch, 1, e))) return err;
    }
    return KP_OK;
}
