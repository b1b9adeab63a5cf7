/*
 * cobrand.c: a co-branded card's cashback (cobrand.h): a bank's card
 * transactions checked, priced (amount x cashback share, down to whole
 * points) and credited as one grant-like operation each under
 * "#bank:<code>", idempotent by the bank's transaction id; the HTTP body
 * and the CSV file read into the same transactions.
 */
#include "cobrand.h"
#include "currency.h"
#include "partner.h"
#include "people_int.h"
#include "settle_book.h"
#include "simulate.h"

#include <jansson.h>
#include <kopilka/card_number.h>
#include <kopilka/clock.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

kp_err kp_cobrand_bank(const kp_program *program, const char *code, const char *field,
                       const kp_partner **out, kp_error *e)
{
    *out = NULL;
    char banks[KP_PARTNERS_MAX * KP_PARTNER_CODE_MAX + 8] = "";
    size_t at = 0, n = 0;
    for (size_t i = 0; program && i < program->n_partners; i++) {
        const kp_partner *p = &program->partners[i];
        if (!p->bank) continue;
        if (code && code[0] ? strcmp(p->code, code) == 0 : n == 0) *out = p;
        at += (size_t)snprintf(banks + at, sizeof banks - at, "%s%s", n ? ", " : "", p->code);
        if (at >= sizeof banks) at = sizeof banks - 1;
        n++;
    }
    if (n == 0)
        return kp_error_set(e, KP_ERR_INVALID, field,
                            "the running program has no bank partner (a partner with \"bank\": "
                            "docs/coalition.md, \"Co-branded card\")");
    if (*out == NULL)
        return kp_error_set(e, KP_ERR_INVALID, field, "no bank partner \"%s\": must be one of %s",
                            code, banks);
    if ((code == NULL || code[0] == '\0') && n > 1) {
        *out = NULL;
        return kp_error_set(e, KP_ERR_INVALID, field,
                            "the program has %zu bank partners: name one of %s", n, banks);
    }
    return KP_OK;
}

static kp_err field_error(kp_error *e, kp_err code, const char *prefix, const char *field,
                          const char *message)
{
    char name[sizeof e->field];
    /* A name too long for the field ends in "..." so the cut shows. */
    if (snprintf(name, sizeof name, "%s%s", prefix, field) >= (int)sizeof name)
        memcpy(name + sizeof name - 4, "...", 4);
    return kp_error_set(e, code, name, "%s", message);
}

kp_err kp_card_txn_check(kp_office *o, const kp_card_txn *t, const char *prefix, kp_error *e)
{
    if (t->id[0] == '\0')
        return field_error(e, KP_ERR_INVALID, prefix, "id",
                           "is required: the bank's id of the transaction");
    if (t->amount_minor <= 0 || t->amount_minor > KP_AMOUNT_MAX)
        return field_error(e, KP_ERR_INVALID, prefix, "amount",
                           "must be a whole number of minor units above 0 (a refund earns "
                           "nothing back and is not sent)");
    if (o->program && kp_program_minor_per_point(o->program, t->currency) <= 0) {
        char why[160];
        snprintf(why, sizeof why,
                 "\"%s\" is not a currency of the program: %s, or one of its \"currencies\"",
                 t->currency, o->program->currency);
        return field_error(e, KP_ERR_INVALID, prefix, "currency", why);
    }
    kp_card_info c;
    kp_err err = o->st->ops->people->card_info_get(o->st, t->card, &c);
    if (err == KP_ERR_NOT_FOUND) {
        char name[sizeof e->field];
        snprintf(name, sizeof name, "%scard", prefix);
        return kp_card_unknown(t->card, name, e);
    }
    if (err) return people_storage(o->st, err, e);
    if (c.state == KP_CARD_REPLACED) {
        char why[KP_STR_MAX + 64];
        snprintf(why, sizeof why, "was replaced by %s: the bank must send that card",
                 c.replaced_by);
        return field_error(e, KP_ERR_CONFLICT, prefix, "card", why);
    }
    return KP_OK;
}

/* What makes two sendings of one id the same transaction. */
static void txn_hash(const char *bank, const kp_card_txn *t, uint8_t out[16])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 16);
    crypto_generichash_update(&h, (const uint8_t *)"cobrand", 8);
    crypto_generichash_update(&h, (const uint8_t *)bank, strlen(bank) + 1);
    crypto_generichash_update(&h, (const uint8_t *)t->card, strlen(t->card) + 1);
    crypto_generichash_update(&h, (const uint8_t *)&t->amount_minor, sizeof t->amount_minor);
    crypto_generichash_update(&h, (const uint8_t *)t->currency, strlen(t->currency) + 1);
    crypto_generichash_update(&h, (const uint8_t *)&t->at, sizeof t->at);
    crypto_generichash_final(&h, out, 16);
}

static void answer_json(kp_buf *out, const kp_card_txn *t, int64_t points, bool replayed,
                        bool comma)
{
    kp_buf_puts(out, comma ? ",{" : "{");
    kp_buf_json_kv_str(out, "id", t->id, false);
    kp_buf_json_kv_str(out, "card", t->card, true);
    kp_buf_json_kv_i64(out, "amount", t->amount_minor, true);
    kp_buf_json_kv_str(out, "currency", t->currency, true);
    kp_buf_json_kv_str(out, "merchant", t->merchant, true);
    kp_buf_json_kv_i64(out, "points", points, true);
    kp_buf_puts(out, replayed ? ",\"replayed\":true}" : ",\"replayed\":false}");
}

kp_err kp_card_txn_credit(kp_office *o, const kp_partner *bank, const kp_card_txn *t,
                          const char *prefix, bool comma, kp_buf *out, int64_t *points,
                          bool *replayed, kp_error *e)
{
    *points = 0;
    *replayed = false;
    char store[KP_STR_MAX];
    snprintf(store, sizeof store, "#bank:%s", bank->code);
    uint8_t hash[16];
    txn_hash(bank->code, t, hash);
    kp_op_row prior;
    kp_err err = o->st->ops->op_find(o->st, store, t->id, &prior);
    if (err == KP_OK) {
        bool same = prior.type == KP_OP_GRANT && memcmp(prior.request_hash, hash, 16) == 0;
        *points = prior.points;
        kp_op_row_release(&prior);
        if (!same)
            return field_error(e, KP_ERR_CONFLICT, prefix, "id",
                               "this transaction id was credited before with other fields");
        *replayed = true;
        answer_json(out, t, *points, true, comma);
        return KP_OK;
    }
    if (err != KP_ERR_NOT_FOUND) return people_storage(o->st, err, e);
    int64_t per_point = kp_program_minor_per_point(o->program, t->currency);
    /* amount x share, down to whole points: never more than the bank pays. */
    __int128 minor = (__int128)t->amount_minor * bank->cashback_bp / 10000;
    int64_t pts = per_point > 0 ? (int64_t)(minor / per_point) : 0;
    if (pts == 0) {
        answer_json(out, t, 0, false, comma);
        return KP_OK;
    }
    kp_card_info c;
    if ((err = o->st->ops->people->card_info_get(o->st, t->card, &c)))
        return people_storage(o->st, err, e);
    kp_account *a = &o->sc->account;
    if ((err = o->st->ops->account_load(o->st, c.account_id, a)))
        return people_storage(o->st, err, e);
    /* Spend in another currency earns in the card's account of it. */
    bool own_currency = strcmp(t->currency, o->program->currency) == 0;
    if (!own_currency && (err = kp_service_currency_switch(o->st, o->program, t->currency, true,
                                                           o->now, o->now, NULL, a, e)))
        return err;
    kp_lot lot;
    people_credit_lot(o, bank->cashback_kind[0] ? bank->cashback_kind : NULL, &lot);
    snprintf(lot.partner, sizeof lot.partner, "%s", bank->code); /* the bank issues them */
    if ((err = kp_ledger_plan_move(a, KP_OP_GRANT, KP_SYS_ISSUED, pts, &lot, o->now, &o->sc->plan,
                                   e)))
        return err;
    size_t mark = out->len;
    answer_json(out, t, pts, false, comma);
    kp_op_row row;
    memset(&row, 0, sizeof row);
    row.type = KP_OP_GRANT;
    row.account_id = a->id;
    snprintf(row.card, sizeof row.card, "%s", t->card);
    snprintf(row.store, sizeof row.store, "%s", store);
    snprintf(row.receipt, sizeof row.receipt, "%s", t->id);
    memcpy(row.request_hash, hash, 16);
    row.program_version = o->program->version;
    row.at = o->now;
    row.amount_minor = t->amount_minor;
    row.earned = pts;
    row.points = pts;
    size_t from = mark + (comma ? 1 : 0), n = out->len - from;
    char *response = malloc(n + 1);
    if (response == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    memcpy(response, out->data + from, n);
    response[n] = '\0';
    row.response = response;
    err = o->st->ops->op_insert(o->st, &row);
    if (err == KP_OK) err = o->st->ops->plan_apply(o->st, row.id, &o->sc->plan, o->now);
    free(response);
    if (err) return people_storage(o->st, err, e);
    /* Settlement: the bank's "issue" of the points and its per-point fee. */
    if ((err = kp_book_credit_in(o->st, o->program, bank->code, own_currency ? "" : t->currency,
                                 pts, row.id, o->now, e)))
        return err;
    *points = pts;
    return KP_OK;
}

/* ---- the HTTP body */

static kp_err txn_from_json(json_t *v, const char *prefix, kp_card_txn *t, kp_error *e)
{
    memset(t, 0, sizeof *t);
    if (!json_is_object(v)) return field_error(e, KP_ERR_INVALID, prefix, "", "must be an object");
    static const char *const keys[] = {"id", "at", "card", "amount", "currency", "merchant", NULL};
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x)
    {
        bool ok = false;
        for (size_t i = 0; keys[i] && !ok; i++) ok = strcmp(key, keys[i]) == 0;
        if (!ok)
            return field_error(e, KP_ERR_INVALID, prefix, key,
                               "unknown field (allowed: id, at, card, amount, currency, "
                               "merchant)");
    }
    kp_error sub = {0};
    char at[40] = "", currency[8] = "";
    int64_t amount = 0;
    kp_err err;
    if ((err = people_json_str(v, "id", true, t->id, KP_STR_MAX - 1, &sub)) ||
        (err = people_json_str(v, "at", true, at, sizeof at - 1, &sub)) ||
        (err = people_json_str(v, "card", true, t->card, KP_STR_MAX - 1, &sub)) ||
        (err = people_json_int(v, "amount", true, 1, KP_AMOUNT_MAX, &amount, &sub)) ||
        (err = people_json_str(v, "currency", true, currency, 3, &sub)) ||
        (err = people_json_str(v, "merchant", false, t->merchant, KP_STR_MAX - 1, &sub)))
        return field_error(e, err, prefix, sub.field, sub.message);
    if (!kp_time_parse(at, &t->at))
        return field_error(e, KP_ERR_INVALID, prefix, "at",
                           "must be a time as 2026-11-03T10:00:00Z");
    t->amount_minor = amount;
    snprintf(t->currency, sizeof t->currency, "%.3s", currency);
    return KP_OK;
}

kp_err kp_card_txns_http(kp_office *o, const char *body, size_t len, kp_buf *out, bool *replayed,
                         kp_error *e)
{
    *replayed = false;
    const kp_partner *bank;
    kp_err err = kp_partner_of_actor(o, &bank, e);
    if (err) return err;
    if (!bank->bank)
        return kp_error_set(e, KP_ERR_FORBIDDEN, "",
                            "card transactions are a bank partner's (partner %s has no \"bank\" "
                            "terms in the running program)",
                            bank->code);
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"transactions", NULL};
    kp_card_txn *txns = NULL;
    json_t *list = json_object_get(root, "transactions");
    size_t n = json_array_size(list);
    if ((err = people_json_keys(root, keys, e))) goto out;
    if (!json_is_array(list) || n == 0 || n > KP_CARD_TXNS_MAX) {
        err = kp_error_set(e, KP_ERR_INVALID, "transactions",
                           "must be an array of 1 to %d transactions", KP_CARD_TXNS_MAX);
        goto out;
    }
    txns = calloc(n, sizeof *txns);
    if (txns == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    char prefix[40];
    for (size_t i = 0; i < n; i++) {
        snprintf(prefix, sizeof prefix, "transactions[%zu].", i);
        if ((err = txn_from_json(json_array_get(list, i), prefix, &txns[i], e)) ||
            (err = kp_card_txn_check(o, &txns[i], prefix, e)))
            goto out;
    }
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "bank", bank->code, false);
    kp_buf_puts(out, ",\"credited\":[");
    int64_t total = 0, credited = 0;
    size_t replays = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(prefix, sizeof prefix, "transactions[%zu].", i);
        int64_t pts;
        bool again;
        if ((err = kp_card_txn_credit(o, bank, &txns[i], prefix, i > 0, out, &pts, &again, e)))
            goto out;
        total += pts;
        if (again)
            replays++;
        else if (pts)
            credited++;
    }
    kp_buf_puts(out, "]");
    kp_buf_json_kv_i64(out, "points", total, true);
    kp_buf_puts(out, "}");
    *replayed = replays == n;
    if (out->failed) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large");
        goto out;
    }
    char target[KP_PARTNER_CODE_MAX + 10];
    snprintf(target, sizeof target, "partner:%s", bank->code);
    if ((err = kp_office_audit(o, "cobrand.credit", target,
                               "transactions=%zu credited=%lld replayed=%zu points=%lld", n,
                               (long long)credited, replays, (long long)total)))
        err = people_storage(o->st, err, e);
out:
    free(txns);
    json_decref(root);
    return err;
}

/* ---- the CSV file */

static const char CSV_HEADER[] = "id,at,card,amount,currency,merchant";

kp_err kp_card_txns_import(kp_office *o, const char *bank_code, const char *path,
                           void (*bad)(void *ctx, const char *line), void *ctx, int64_t *credited,
                           int64_t *replayed, int64_t *points, kp_error *e)
{
    *credited = *replayed = *points = 0;
    const kp_partner *bank;
    kp_err err = kp_cobrand_bank(o->program, bank_code, "bank", &bank, e);
    if (err) return err;
    FILE *f = fopen(path, "r");
    if (f == NULL) return kp_error_set(e, KP_ERR_IO, "card-transactions", "cannot read %s", path);
    size_t cap = 1024, n = 0;
    kp_card_txn *txns = malloc(cap * sizeof *txns);
    char line[4096], message[sizeof line + 400];
    int64_t lineno = 0, problems = 0;
    while (txns && fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (lineno == 1) {
            if (strcmp(line, CSV_HEADER) != 0) {
                snprintf(message, sizeof message, "%s:1: the header must be %s", path, CSV_HEADER);
                bad(ctx, message);
                problems++;
                break;
            }
            continue;
        }
        if (len == 0) continue;
        char *cols[7];
        size_t k = kp_csv_split(line, cols, 6);
        kp_card_txn t;
        memset(&t, 0, sizeof t);
        kp_error row = {0};
        char *end = NULL;
        long long amount = k == 6 ? strtoll(cols[3], &end, 10) : 0;
        if (k != 6)
            kp_error_set(&row, KP_ERR_INVALID, "", "must have the 6 columns of %s", CSV_HEADER);
        else if (strlen(cols[0]) >= KP_STR_MAX || strlen(cols[2]) >= KP_STR_MAX ||
                 strlen(cols[5]) >= KP_STR_MAX || strlen(cols[4]) > 3)
            kp_error_set(&row, KP_ERR_INVALID, "", "a value is too long");
        else if (!kp_time_parse(cols[1], &t.at))
            kp_error_set(&row, KP_ERR_INVALID, "at", "must be a time as 2026-11-03T10:00:00Z");
        else if (end == cols[3] || *end != '\0')
            kp_error_set(&row, KP_ERR_INVALID, "amount", "must be a whole number of minor units");
        if (row.message[0] == '\0') {
            snprintf(t.id, sizeof t.id, "%s", cols[0]);
            snprintf(t.card, sizeof t.card, "%s", cols[2]);
            t.amount_minor = amount;
            snprintf(t.currency, sizeof t.currency, "%s", cols[4]);
            snprintf(t.merchant, sizeof t.merchant, "%s", cols[5]);
            kp_card_txn_check(o, &t, "", &row);
        }
        if (row.message[0]) {
            snprintf(message, sizeof message, "%s:%lld: %s%s%s", path, (long long)lineno, row.field,
                     row.field[0] ? ": " : "", row.message);
            if (problems < 100) bad(ctx, message);
            problems++;
            continue;
        }
        if (n == cap) {
            kp_card_txn *more = realloc(txns, cap * 2 * sizeof *txns);
            if (more == NULL) break;
            txns = more;
            cap *= 2;
        }
        txns[n++] = t;
    }
    bool read_error = ferror(f) != 0;
    fclose(f);
    if (txns == NULL || read_error) {
        free(txns);
        return kp_error_set(e, KP_ERR_IO, "card-transactions", "cannot read %s", path);
    }
    if (problems) {
        free(txns);
        return kp_error_set(e, KP_ERR_INVALID, "card-transactions",
                            "%lld bad lines in %s; nothing was credited", (long long)problems,
                            path);
    }
    kp_buf scratch;
    kp_buf_init(&scratch, 1 << 20);
    for (size_t i = 0; i < n && err == KP_OK; i++) {
        char prefix[40];
        snprintf(prefix, sizeof prefix, "line %zu: ", i + 2);
        int64_t pts;
        bool again;
        kp_buf_reset(&scratch);
        err = kp_card_txn_credit(o, bank, &txns[i], prefix, false, &scratch, &pts, &again, e);
        if (err) break;
        *points += again ? 0 : pts;
        if (again)
            ++*replayed;
        else if (pts)
            ++*credited;
    }
    kp_buf_release(&scratch);
    free(txns);
    if (err) return err;
    char target[KP_PARTNER_CODE_MAX + 10];
    snprintf(target, sizeof target, "partner:%s", bank->code);
    if ((err = kp_office_audit(o, "cobrand.credit", target,
                               "file=%s credited=%lld replayed=%lld points=%lld", path,
                               (long long)*credited, (long long)*replayed, (long long)*points)))
        return people_storage(o->st, err, e);
    return KP_OK;
}
