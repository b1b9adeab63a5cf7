/*
 * partner.c: a partner's staff's view of the coalition (partner.h): who the
 * actor's partner is, its stores' operations, read pattern by pattern
 * through kp_people_ops.ops_of_stores and kept only where the program says
 * the store is the partner's, the program's rules that name it, and its
 * own statements of closed settlement periods.
 */
#include "partner.h"
#include "people_int.h"
#include "settlement.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

kp_err kp_partner_of_actor(const kp_office *o, const kp_partner **out, kp_error *e)
{
    *out = NULL;
    const kp_actor *a = &o->actor;
    if (a->kind != KP_ACTOR_STAFF || a->role != KP_ROLE_PARTNER || a->partner[0] == '\0')
        return kp_error_set(e, KP_ERR_FORBIDDEN, "",
                            "the /v1/partner/ routes are for a partner's staff (role partner, "
                            "bound to a partner of the running program)");
    const kp_partner *p = o->program ? kp_program_partner(o->program, a->partner) : NULL;
    if (p == NULL)
        return kp_error_set(e, KP_ERR_FORBIDDEN, "",
                            "partner %s is not a partner of the running program%s: ask the "
                            "operator",
                            a->partner, o->program ? "" : " (none runs)");
    *out = p;
    return KP_OK;
}

/* A share in basis points as the program file writes it: "2", "2.5", "0.05". */
static void bp_text(int32_t bp, char out[24])
{
    int32_t whole = bp / 100, frac = bp % 100;
    if (frac == 0)
        snprintf(out, 24, "%d", (int)whole);
    else if (frac % 10 == 0)
        snprintf(out, 24, "%d.%d", (int)whole, (int)(frac / 10));
    else
        snprintf(out, 24, "%d.%02d", (int)whole, (int)frac);
}

kp_err kp_partner_me_json(kp_office *o, kp_buf *out, kp_error *e)
{
    const kp_partner *p;
    kp_err err = kp_partner_of_actor(o, &p, e);
    if (err) return err;
    char pct[24];
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"partner\":{");
    kp_buf_json_kv_str(out, "code", p->code, false);
    kp_buf_json_kv_str(out, "name", p->name, true);
    kp_buf_puts(out, ",\"stores\":[");
    for (size_t i = 0; i < p->n_stores; i++) {
        kp_buf_puts(out, i ? ",{" : "{");
        kp_buf_json_kv_str(out, "match", p->stores[i].match, false);
        if (p->stores[i].currency[0])
            kp_buf_json_kv_str(out, "currency", p->stores[i].currency, true);
        else
            kp_buf_puts(out, ",\"currency\":null");
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "],\"fees\":{");
    kp_buf_json_kv_i64(out, "per_operation", p->fee_per_operation_minor, false);
    bp_text(p->fee_per_point_bp, pct);
    kp_buf_json_kv_str(out, "per_point_percent", pct, true);
    kp_buf_puts(out, "}");
    bp_text(p->breakage_to_operator_bp, pct);
    kp_buf_json_kv_str(out, "breakage_to_operator", pct, true);
    if (p->bank) {
        bp_text(p->cashback_bp, pct);
        kp_buf_puts(out, ",\"bank\":{");
        kp_buf_json_kv_str(out, "cashback_percent", pct, false);
        kp_buf_json_kv_str(out, "point_kind", p->cashback_kind, true);
        kp_buf_puts(out, "}");
    } else {
        kp_buf_puts(out, ",\"bank\":null");
    }
    kp_buf_puts(out, "}");
    kp_buf_json_kv_i64(out, "program_version", o->program->version, true);
    kp_buf_json_kv_str(out, "currency", o->program->currency, true);
    kp_buf_puts(out, "}");
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

/* ---- operations */

/* Merges the n_b rows of b (newest first) into the n_a rows of a (newest
 * first, room for cap), dropping an id a has already, keeping the newest
 * cap. tmp has room for cap. */
static size_t merge_newest(kp_history_entry *a, size_t n_a, const kp_history_entry *b, size_t n_b,
                           kp_history_entry *tmp, size_t cap)
{
    size_t i = 0, j = 0, n = 0;
    while (n < cap && (i < n_a || j < n_b)) {
        if (j >= n_b || (i < n_a && a[i].op_id >= b[j].op_id)) {
            if (j < n_b && a[i].op_id == b[j].op_id) j++;
            tmp[n++] = a[i++];
        } else {
            tmp[n++] = b[j++];
        }
    }
    memcpy(a, tmp, n * sizeof *a);
    return n;
}

/* The card number as a partner sees it: every character but the last 4
 * as '*'. */
static void card_masked(const char *card, char *out, size_t cap)
{
    size_t n = strlen(card);
    if (n >= cap) n = cap - 1;
    for (size_t i = 0; i < n; i++) out[i] = i + 4 < n ? '*' : card[i];
    out[n] = '\0';
}

static void op_json(kp_buf *out, const kp_history_entry *h, bool comma)
{
    char masked[KP_STR_MAX];
    card_masked(h->card, masked, sizeof masked);
    kp_buf_puts(out, comma ? ",{" : "{");
    kp_buf_json_kv_i64(out, "id", h->op_id, false);
    kp_buf_json_kv_str(out, "type", kp_op_type_name(h->type), true);
    kp_buf_json_kv_str(out, "store", h->store, true);
    kp_buf_json_kv_str(out, "receipt", h->receipt, true);
    people_time_kv(out, "at", h->at);
    kp_buf_json_kv_str(out, "card", masked, true);
    kp_buf_json_kv_i64(out, "amount", h->amount_minor, true);
    kp_buf_json_kv_i64(out, "points", h->points, true);
    kp_buf_json_kv_i64(out, "earned", h->earned, true);
    kp_buf_json_kv_i64(out, "burned", h->burned, true);
    kp_buf_puts(out, "}");
}

kp_err kp_partner_operations_json(kp_office *o, const char *from, const char *to, int64_t before,
                                  int64_t limit, kp_buf *out, kp_error *e)
{
    const kp_partner *p;
    kp_err err = kp_partner_of_actor(o, &p, e);
    if (err) return err;
    if (limit < 1 || limit > KP_PARTNER_OPS_PAGE_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "limit", "must be a whole number from 1 to %d",
                            KP_PARTNER_OPS_PAGE_MAX);
    if (before < 0)
        return kp_error_set(e, KP_ERR_INVALID, "before",
                            "must be an operation id (a whole number >= 0): the next_before of "
                            "the page before");
    kp_report_period pd;
    if ((err = kp_period_read(o, from, to, NULL, &pd, e))) return err;
    size_t cap = (size_t)limit;
    kp_history_entry *best = calloc(cap, sizeof *best), *got = calloc(cap, sizeof *got),
                     *tmp = calloc(cap, sizeof *tmp);
    if (best == NULL || got == NULL || tmp == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "partner", p->code, false);
    kp_buf_json_kv_str(out, "from", pd.from, true);
    kp_buf_json_kv_str(out, "to", pd.to, true);
    kp_buf_puts(out, ",\"operations\":[");
    size_t kept = 0;
    int64_t cursor = before, next_before = 0;
    for (;;) {
        /* The newest `limit` rows below the cursor over every pattern: each
         * pattern's newest `limit`, merged. */
        size_t n_best = 0;
        for (size_t i = 0; i < p->n_stores; i++) {
            const char *match = p->stores[i].match;
            size_t len = strlen(match);
            bool prefix = len > 0 && match[len - 1] == '*';
            char code[KP_STORE_PATTERN_MAX];
            snprintf(code, sizeof code, "%.*s", (int)(prefix ? len - 1 : len), match);
            size_t n = 0;
            if ((err = o->st->ops->people->ops_of_stores(o->st, code, !prefix, cursor, pd.from_at,
                                                         pd.to_at, got, cap, &n))) {
                err = people_storage(o->st, err, e);
                goto out;
            }
            n_best = merge_newest(best, n_best, got, n, tmp, cap);
        }
        /* Only the partner's own stores: a store an earlier partner's
         * pattern also matches is that partner's; "#..." are not stores. */
        for (size_t i = 0; i < n_best && kept < cap; i++) {
            const char *owner = kp_program_partner_of_store(o->program, best[i].store);
            if (best[i].store[0] == '#' || strcmp(owner, p->code) != 0) continue;
            op_json(out, &best[i], kept > 0);
            kept++;
            if (kept == cap) next_before = best[i].op_id;
        }
        if (kept == cap || n_best < cap) break;
        cursor = best[n_best - 1].op_id;
    }
    kp_buf_puts(out, "]");
    if (next_before)
        kp_buf_json_kv_i64(out, "next_before", next_before, true);
    else
        kp_buf_puts(out, ",\"next_before\":null");
    kp_buf_puts(out, "}");
    if (out->failed) err = kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large");
out:
    free(best);
    free(got);
    free(tmp);
    return err;
}

/* ---- rules */

static bool names_partner(json_t *rule, const char *key, const char *code)
{
    const char *v = json_string_value(json_object_get(rule, key));
    return v && strcmp(v, code) == 0;
}

kp_err kp_partner_rules_json(kp_office *o, kp_buf *out, kp_error *e)
{
    const kp_partner *p;
    kp_err err = kp_partner_of_actor(o, &p, e);
    if (err) return err;
    char *text = NULL;
    int64_t version = 0;
    if ((err = o->st->ops->program_get(o->st, o->program->version, o->now, &text, &version)))
        return people_storage(o->st, err, e);
    json_error_t je;
    json_t *root = json_loads(text, 0, &je);
    free(text);
    json_t *rules = json_object_get(root, "rules");
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_i64(out, "program_version", version, false);
    kp_buf_json_kv_str(out, "partner", p->code, true);
    kp_buf_puts(out, ",\"rules\":[");
    size_t i, n = 0;
    json_t *rule;
    json_array_foreach(rules, i, rule)
    {
        if (!names_partner(rule, "partner", p->code) && !names_partner(rule, "at_partner", p->code))
            continue;
        char *one = json_dumps(rule, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (one == NULL) continue;
        if (n++) kp_buf_puts(out, ",");
        kp_buf_puts(out, one);
        free(one);
    }
    kp_buf_puts(out, "]}");
    json_decref(root);
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

/* ---- statements */

kp_err kp_partner_statements_json(kp_office *o, const char *before, kp_buf *out, kp_error *e)
{
    const kp_partner *p;
    kp_err err = kp_partner_of_actor(o, &p, e);
    if (err) return err;
    int32_t below = 0;
    if (before && before[0] && !kp_settle_period_parse(before, &below))
        return kp_error_set(e, KP_ERR_INVALID, "before",
                            "must be a month as 2026-11: the next_before of the page before");
    kp_settle_period_row periods[KP_PARTNER_PERIODS_PAGE];
    size_t n_periods = 0;
    if ((err = o->st->ops->settle->periods_list(o->st, below, periods, KP_PARTNER_PERIODS_PAGE,
                                                &n_periods)))
        return people_storage(o->st, err, e);
    kp_settle_statement_row *rows = calloc(KP_SETTLE_STATEMENTS_MAX, sizeof *rows);
    if (rows == NULL) {
        for (size_t i = 0; i < n_periods; i++) kp_settle_period_row_release(&periods[i]);
        return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    }
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "partner", p->code, false);
    kp_buf_puts(out, ",\"statements\":[");
    size_t shown = 0;
    for (size_t i = 0; i < n_periods && err == KP_OK; i++) {
        size_t n = 0;
        err = o->st->ops->settle->statements_of(o->st, periods[i].period, rows,
                                                KP_SETTLE_STATEMENTS_MAX, &n);
        if (err) {
            err = people_storage(o->st, err, e);
            break;
        }
        for (size_t j = 0; j < n; j++) {
            if (strcmp(rows[j].party, p->code) == 0 && rows[j].body) {
                if (shown++) kp_buf_puts(out, ",");
                kp_buf_puts(out, rows[j].body);
            }
            kp_settle_statement_row_release(&rows[j]);
        }
    }
    kp_buf_puts(out, "]");
    if (err == KP_OK && n_periods == KP_PARTNER_PERIODS_PAGE) {
        char month[8];
        kp_settle_period_format(periods[n_periods - 1].period, month);
        kp_buf_json_kv_str(out, "next_before", month, true);
    } else {
        kp_buf_puts(out, ",\"next_before\":null");
    }
    kp_buf_puts(out, "}");
    for (size_t i = 0; i < n_periods; i++) kp_settle_period_row_release(&periods[i]);
    free(rows);
    if (err == KP_OK && out->failed)
        err = kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large");
    return err;
}

kp_err kp_partner_statement_json(kp_office *o, int64_t number, kp_buf *out, kp_error *e)
{
    const kp_partner *p;
    kp_err err = kp_partner_of_actor(o, &p, e);
    if (err) return err;
    kp_settle_statement_row row;
    memset(&row, 0, sizeof row);
    err = number > 0 ? o->st->ops->settle->statement_get(o->st, number, &row) : KP_ERR_NOT_FOUND;
    if (err == KP_OK && strcmp(row.party, p->code) != 0) {
        kp_settle_statement_row_release(&row);
        err = KP_ERR_NOT_FOUND;
    }
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "number", "partner %s has no statement numbered %lld", p->code,
                            (long long)number);
    if (err) return people_storage(o->st, err, e);
    kp_buf_reset(out);
    kp_buf_puts(out, row.body ? row.body : "{}");
    kp_settle_statement_row_release(&row);
    return KP_OK;
}
