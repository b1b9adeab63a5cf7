/*
 * service_events.c: one-time grants and external events. A grant rule
 * (docs/rules.md, "grant") gives points on an event: registration, a
 * birthday, a survey, a partner club card shown at the desk, a custom event
 * with a value (annual mileage). What makes it happen once is a set of
 * grant keys stored with the grant in the same transaction:
 *
 *   <rule>/a<account>               once per customer
 *   <rule>/a<account>/y<year>       once per calendar year (birthday)
 *   <rule>/a<account>/n<years>      once per anniversary (tenure)
 *   <rule>/a<account>/e<hash>       once per event (store and event id)
 *   <rule>/t/<token>                each token once across the program
 *
 * Events are idempotent by (store, id): the answer is stored with the
 * event and a retry gets it back.
 *
 * An outside event (POST /v1/events) is accepted only for a type the
 * program lets its credential kind send (kp_program_event_from: declared in
 * "event_sources", or by default) and only dated within the till's clock
 * window. Time-driven grants (birthday, tenure) never come this way: the
 * scheduler calls kp_service_grant directly.
 */
#include "service_rules.h"
#include <kopilka/card_number.h>

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>
#include <kopilka/money.h>

#include "notify/notify.h"
#include "settle_book.h"

enum { KEY_MAX = KP_GRANT_KEY_MAX };

static void hex16(const void *data, size_t len, char out[33])
{
    uint8_t h[16];
    crypto_generichash(h, sizeof h, data, len, NULL, 0);
    sodium_bin2hex(out, 33, h, sizeof h);
}

/* The grant keys of `rule` for this account and context; false (with
 * `why`) when the rule needs something the context lacks. */
static bool grant_keys(const kp_program *p, const kp_rule *r, int64_t account,
                       const kp_grant_ctx *g, char keys[2][KEY_MAX], size_t *n, char *why,
                       size_t why_size)
{
    *n = 0;
    int y, m, d;
    kp_program_date(p, g->at, &y, &m, &d);
    char ev[33];
    switch (r->once) {
    case KP_ONCE_CUSTOMER:
        snprintf(keys[(*n)++], KEY_MAX, "%s/a%lld", r->id, (long long)account);
        break;
    case KP_ONCE_YEAR:
        if (strcmp(r->on, "tenure") == 0)
            snprintf(keys[(*n)++], KEY_MAX, "%s/a%lld/n%lld", r->id, (long long)account,
                     (long long)g->years);
        else
            snprintf(keys[(*n)++], KEY_MAX, "%s/a%lld/y%04d", r->id, (long long)account, y);
        break;
    case KP_ONCE_EVENT: {
        char both[2 * KP_STR_MAX + 32];
        if (g->event_id[0])
            snprintf(both, sizeof both, "%s\n%s", g->store, g->event_id);
        else
            snprintf(both, sizeof both, "@%lld", (long long)g->at);
        hex16(both, strlen(both), ev);
        snprintf(keys[(*n)++], KEY_MAX, "%s/a%lld/e%s", r->id, (long long)account, ev);
        break;
    }
    }
    if (r->unique_token) {
        if (g->token[0] == '\0') {
            snprintf(why, why_size, "the event needs a token (the card number to accept once)");
            return false;
        }
        if (strlen(g->token) <= 64) {
            snprintf(keys[(*n)++], KEY_MAX, "%s/t/%s", r->id, g->token);
        } else {
            hex16(g->token, strlen(g->token), ev);
            snprintf(keys[(*n)++], KEY_MAX, "%s/t/#%s", r->id, ev);
        }
    }
    return true;
}

bool kp_grant_prepare(const kp_program *p, const kp_rule *r, int64_t account_id,
                      const kp_grant_ctx *g, kp_grant_plan *out, char *why, size_t why_size)
{
    out->n_keys = 0;
    out->amount = 0;
    out->overflow = false;
    memset(&out->lot, 0, sizeof out->lot);
    if (r->has_value_over && (!g->has_value || g->value <= r->value_over)) {
        if (g->has_value)
            snprintf(why, why_size, "needs a value over %lld, got %lld", (long long)r->value_over,
                     (long long)g->value);
        else
            snprintf(why, why_size, "needs a value over %lld, the event has none",
                     (long long)r->value_over);
        return false;
    }
    if (!grant_keys(p, r, account_id, g, out->keys, &out->n_keys, why, why_size)) return false;
    out->amount = r->points;
    if (kp_grant_rule_by_member(r)) {
        if (!g->member) {
            snprintf(why, why_size, "rule %s gives points by the member: only a campaign grants it",
                     r->id);
            return false;
        }
        if (r->has_tier_points) {
            bool listed = g->tier >= 0 && g->tier < KP_TIERS_MAX && r->tier_points_set[g->tier];
            out->amount = listed ? r->tier_points[g->tier] : r->points;
            if (out->amount == 0) {
                snprintf(why, why_size, "rule %s gives 0 points to tier %s", r->id,
                         g->tier >= 0 && (size_t)g->tier < p->n_tiers ? p->tiers[g->tier].name
                                                                      : "none");
                return false;
            }
        } else {
            /* Whole points of spend_bp of the spend, rounded down. */
            int64_t mpp = p->minor_per_point > 0 ? p->minor_per_point : 1;
            __int128 v =
                g->spend_minor > 0 ? (__int128)g->spend_minor * r->spend_bp / 10000 / mpp : 0;
            if (r->points_max > 0 && v > r->points_max) v = r->points_max;
            if (v > 1000000000000LL) v = 1000000000000LL;
            out->amount = (int64_t)v;
            if (out->amount == 0) {
                snprintf(why, why_size,
                         "rule %s gives 0 points: spend %lld minor over %d days, %d.%02d %%", r->id,
                         (long long)g->spend_minor, (int)r->spend_days, (int)(r->spend_bp / 100),
                         (int)(r->spend_bp % 100));
                return false;
            }
        }
    }
    if (r->per_year &&
        __builtin_mul_overflow(r->points, g->years > 0 ? g->years : 1, &out->amount))
        out->overflow = true;
    snprintf(out->lot.kind, sizeof out->lot.kind, "%s", r->point_kind);
    out->lot.earned_at = g->at;
    kp_validity_apply(&r->validity, g->at, &out->lot.active_from, &out->lot.expires_at);
    return true;
}

bool kp_grant_rule_by_member(const kp_rule *r)
{
    return r->has_tier_points || r->spend_bp > 0;
}

kp_err kp_grant_member_figures(kp_store *st, const kp_program *p, const kp_rule *r,
                               int64_t account_id, kp_grant_ctx *g, kp_error *e)
{
    g->member = true;
    g->tier = -1;
    g->spend_minor = 0;
    kp_err err = KP_OK;
    if (r->has_tier_points) {
        kp_account_rules ar;
        if ((err = st->ops->triggers->account_rules_get(st, account_id, &ar)))
            return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
        if (ar.tier[0]) kp_program_tier(p, ar.tier, &g->tier);
    }
    if (r->spend_bp > 0 && (err = st->ops->triggers->account_spend_between(
                                st, account_id, g->at - (kp_time)r->spend_days * KP_DAY_SECONDS,
                                g->at, &g->spend_minor)))
        return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    return KP_OK;
}

kp_err kp_service_grant(kp_store *st, const kp_program *p, const kp_rule *r, int64_t account_id,
                        const kp_grant_ctx *g, kp_scratch *sc, int64_t *points, kp_time *expires_at,
                        char *why, size_t why_size, kp_error *e)
{
    *points = 0;
    *expires_at = KP_TIME_NEVER;
    kp_grant_plan gp;
    if (!kp_grant_prepare(p, r, account_id, g, &gp, why, why_size)) return KP_OK;
    char (*keys)[KEY_MAX] = gp.keys;
    size_t n_keys = gp.n_keys;
    const kp_triggers_ops *t = st->ops->triggers;
    for (size_t k = 0; k < n_keys; k++) {
        int64_t op_id;
        kp_err err = t->grant_key_find(st, keys[k], &op_id);
        if (err == KP_OK) {
            if (k == n_keys - 1 && r->unique_token)
                snprintf(why, why_size, "token %s was already used (operation %lld)", g->token,
                         (long long)op_id);
            else
                snprintf(why, why_size, "already given (%s, operation %lld)",
                         r->once == KP_ONCE_YEAR ? "this year" : "once per customer",
                         (long long)op_id);
            return KP_OK;
        }
        if (err != KP_ERR_NOT_FOUND)
            return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    }
    int64_t amount = gp.amount;
    if (gp.overflow)
        return kp_error_set(e, KP_ERR_OVERFLOW, "", "rule %s: points x years overflow", r->id);

    kp_err err = st->ops->account_load(st, account_id, &sc->account);
    if (err) return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    kp_lot lot = gp.lot;
    /* A grant rule naming a partner is that partner's: it funds the lot. */
    if (kp_program_is_coalition(p)) snprintf(lot.partner, sizeof lot.partner, "%s", r->partner);
    if ((err = kp_ledger_plan_move(&sc->account, KP_OP_GRANT, KP_SYS_ISSUED, amount, &lot, g->at,
                                   &sc->plan, e)))
        return err;

    char text[192];
    snprintf(text, sizeof text, "rule %s on %s: %lld %s points", r->id, r->on, (long long)amount,
             r->point_kind);
    kp_op_row row;
    memset(&row, 0, sizeof row);
    row.type = KP_OP_GRANT;
    row.account_id = account_id;
    snprintf(row.card, sizeof row.card, "%s", g->card);
    snprintf(row.receipt, sizeof row.receipt, "%s", keys[0]);
    row.program_version = p->version;
    row.at = g->at;
    row.earned = amount;
    row.points = amount;
    row.detail = text;
    /* BIRTHDAY for a birthday rule's grant, GRANTED for any other, written
     * with the operation. */
    kp_notify_figures f;
    memset(&f, 0, sizeof f);
    f.earned = amount;
    f.points = amount;
    kp_notify_figures_after(&sc->account, &sc->plan, g->at, &f);
    snprintf(f.rule, sizeof f.rule, "%s", r->id);
    snprintf(f.store, sizeof f.store, "%s", g->store);
    kp_notify_event ev;
    if ((err = kp_notify_event_fill(&ev,
                                    strcmp(r->on, "birthday") == 0 ? KP_NOTIFY_BIRTHDAY
                                                                   : KP_NOTIFY_GRANTED,
                                    NULL, account_id, 0, g->card, 0, g->at, &f, &sc->notify, e)))
        return err;
    row.notify = &ev;
    if ((err = st->ops->op_insert(st, &row)))
        return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    if ((err = st->ops->plan_apply(st, row.id, &sc->plan, g->at)))
        return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    if ((err = kp_book_credit(st, p, lot.partner, amount, row.id, g->at, e))) return err;
    for (size_t k = 0; k < n_keys; k++)
        if ((err = t->grant_key_insert(st, keys[k], row.id, g->at)))
            return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    *points = amount;
    *expires_at = lot.expires_at;
    snprintf(why, why_size, "%s", text);
    return KP_OK;
}

static void time_json(kp_buf *b, const char *key, kp_time t)
{
    kp_buf_puts(b, ",");
    kp_buf_json_key(b, key);
    if (t == KP_TIME_NEVER) {
        kp_buf_puts(b, "null");
        return;
    }
    char ts[32];
    kp_time_format(t, ts, sizeof ts);
    kp_buf_json_str(b, ts);
}

kp_err kp_service_trigger(kp_store *st, const kp_program *p, int64_t account_id, const char *type,
                          const kp_grant_ctx *g, kp_scratch *sc, kp_buf *out, int64_t *total,
                          kp_error *e)
{
    /* Two passes over the rules so the answer lists grants, then refusals,
     * without keeping a list: the second pass only formats. Results of the
     * first pass are kept per rule (bounded by KP_RULES_MAX). */
    static _Thread_local struct {
        int64_t points;
        kp_time expires_at;
        char why[192];
    } res[KP_RULES_MAX];
    *total = 0;
    bool any = false;
    for (size_t r = 0; r < p->n_rules; r++) {
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_GRANT || strcmp(rule->on, type) != 0) continue;
        any = true;
        kp_err err = kp_service_grant(st, p, rule, account_id, g, sc, &res[r].points,
                                      &res[r].expires_at, res[r].why, sizeof res[r].why, e);
        if (err) return err;
        if (!kp_add_checked(total, res[r].points))
            return kp_error_set(e, KP_ERR_OVERFLOW, "", "the points granted overflow");
    }
    kp_buf_puts(out, ",\"granted\":[");
    bool first = true;
    for (size_t r = 0; r < p->n_rules; r++) {
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_GRANT || strcmp(rule->on, type) != 0 || res[r].points == 0)
            continue;
        kp_buf_puts(out, first ? "{" : ",{");
        first = false;
        kp_buf_json_kv_str(out, "rule", rule->id, false);
        kp_buf_json_kv_i64(out, "points", res[r].points, true);
        kp_buf_json_kv_str(out, "point_kind", rule->point_kind, true);
        time_json(out, "expires_at", res[r].expires_at);
        kp_buf_json_kv_str(out, "text", res[r].why, true);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "],\"refused\":[");
    first = true;
    for (size_t r = 0; r < p->n_rules; r++) {
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_GRANT || strcmp(rule->on, type) != 0 || res[r].points != 0)
            continue;
        kp_buf_puts(out, first ? "{" : ",{");
        first = false;
        kp_buf_json_kv_str(out, "rule", rule->id, false);
        kp_buf_json_kv_str(out, "reason", res[r].why, true);
        kp_buf_puts(out, "}");
    }
    if (!any) {
        char why[160];
        snprintf(why, sizeof why, "no grant rule of program version %lld is on \"%s\"",
                 (long long)p->version, type);
        kp_buf_puts(out, "{\"rule\":null,");
        kp_buf_json_kv_str(out, "reason", why, false);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "]");
    return KP_OK;
}

/* ---- events */

static void event_hash(const kp_event_req *r, uint8_t out[16])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 16);
    const char *parts[] = {"event", r->card, r->type, r->token};
    for (size_t i = 0; i < 4; i++)
        crypto_generichash_update(&h, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
    int64_t nums[3] = {r->has_value ? 1 : 0, r->value, r->at_given ? r->at : -1};
    crypto_generichash_update(&h, (const unsigned char *)nums, sizeof nums);
    crypto_generichash_final(&h, out, 16);
}

/* Refuses an event type the program does not let `from` send, saying
 * what it does let it send. */
static kp_err check_source(const kp_program *p, kp_event_from from, const char *type, kp_error *e)
{
    unsigned allowed = kp_program_event_from(p, type);
    if (allowed & (unsigned)from) return KP_OK;
    if (kp_event_type_internal(type))
        return kp_error_set(e, KP_ERR_FORBIDDEN, "type",
                            "\"%s\" is raised by the server itself (birthday, tenure, "
                            "annual_spend, tier_review and expiry by the scheduler on the "
                            "program's calendar, registration by the back office): no outside "
                            "source may send it",
                            type);
    char list[512] = "";
    size_t used = 0;
    bool any = false;
    /* The types this credential kind may send: declared ones, or the
     * grants' types by default. */
    for (size_t i = 0; i < (p->event_sources_declared ? p->n_event_sources : p->n_rules); i++) {
        const char *t = p->event_sources_declared ? p->event_sources[i].type : p->rules[i].on;
        if (!p->event_sources_declared && p->rules[i].kind != KP_RULE_GRANT) continue;
        if (!(kp_program_event_from(p, t) & (unsigned)from)) continue;
        bool listed = false; /* two grant rules on one type: name it once */
        for (size_t j = 0; j < i && !p->event_sources_declared && !listed; j++)
            listed = p->rules[j].kind == KP_RULE_GRANT && strcmp(p->rules[j].on, t) == 0;
        if (listed) continue;
        int n = snprintf(list + used, sizeof list - used, "%s%s", any ? ", " : "", t);
        if (n < 0 || (size_t)n >= sizeof list - used) break;
        used += (size_t)n;
        any = true;
    }
    if (allowed)
        return kp_error_set(e, KP_ERR_FORBIDDEN, "type",
                            "program version %lld does not accept \"%s\" from a %s credential "
                            "(event_sources); a %s may send: %s",
                            (long long)p->version, type, kp_event_from_name(from),
                            kp_event_from_name(from), any ? list : "nothing");
    return kp_error_set(e, KP_ERR_FORBIDDEN, "type",
                        "program version %lld does not accept events of type \"%s\" from outside "
                        "(event_sources); a %s may send: %s",
                        (long long)p->version, type, kp_event_from_name(from),
                        any ? list : "nothing");
}

kp_err kp_service_event(kp_store *st, const kp_program *p, kp_event_from from, const char *store,
                        const kp_event_req *req, kp_time now, kp_scratch *sc, kp_buf *out,
                        bool *replayed, kp_error *e)
{
    *replayed = false;
    uint8_t hash[16];
    event_hash(req, hash);
    const kp_triggers_ops *t = st->ops->triggers;
    kp_event_row row;
    kp_err err = t->event_find(st, store, req->id, &row);
    if (err == KP_OK) {
        if (memcmp(row.request_hash, hash, 16) != 0) {
            kp_event_row_release(&row);
            return kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_EVENT_CONFLICT, "id",
                                 "event %s of store %s was already sent with a different body",
                                 req->id, store);
        }
        kp_buf_reset(out);
        kp_buf_puts(out, "{\"replayed\":true,");
        kp_buf_puts(out, row.response + 1);
        kp_event_row_release(&row);
        *replayed = true;
        return KP_OK;
    }
    if (err != KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    if ((err = check_source(p, from, req->type, e))) return err;
    if ((err = kp_till_check_at(p, req->at_given, req->at, false, now, e))) return err;

    kp_card card;
    err = st->ops->card_find(st, req->card, &card);
    if (err == KP_ERR_NOT_FOUND)
        return kp_card_unknown(req->card, "card", e);
    if (err) return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    if (card.state == KP_CARD_BLOCKED || card.state == KP_CARD_REPLACED)
        return kp_error_setr(e, KP_ERR_NOT_FOUND, KP_REASON_UNKNOWN_CARD, "card",
                             "card %s is %s and cannot be used", req->card,
                             kp_card_state_name(card.state));
    kp_time at = req->at_given ? req->at : now;
    kp_grant_ctx g = {.card = req->card,
                      .store = store,
                      .event_id = req->id,
                      .token = req->token,
                      .has_value = req->has_value,
                      .value = req->value,
                      .at = at};
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "event", req->id, false);
    kp_buf_json_kv_str(out, "store", store, true);
    kp_buf_json_kv_str(out, "type", req->type, true);
    kp_buf_json_kv_str(out, "card", req->card, true);
    time_json(out, "at", at);
    if (req->has_value) kp_buf_json_kv_i64(out, "value", req->value, true);
    if (req->token[0]) kp_buf_json_kv_str(out, "token", req->token, true);
    kp_buf_json_kv_i64(out, "program_version", p->version, true);
    int64_t total = 0;
    if ((err = kp_service_trigger(st, p, card.account_id, req->type, &g, sc, out, &total, e)))
        return err;
    if ((err = st->ops->account_load(st, card.account_id, &sc->account)))
        return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    kp_buf_json_kv_i64(out, "points", total, true);
    kp_buf_json_kv_i64(out, "balance", sc->account.balance, true);
    kp_buf_puts(out, "}");
    if (out->failed) return kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large");

    memset(&row, 0, sizeof row);
    snprintf(row.store, sizeof row.store, "%s", store);
    snprintf(row.id, sizeof row.id, "%s", req->id);
    snprintf(row.type, sizeof row.type, "%s", req->type);
    row.account_id = card.account_id;
    memcpy(row.request_hash, hash, 16);
    row.at = at;
    row.response = out->data;
    if ((err = t->event_insert(st, &row)))
        return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    return KP_OK;
}

/* ---- the request body */

static kp_err ev_str(json_t *root, const char *key, bool required, char *out, size_t size,
                     kp_error *e)
{
    json_t *v = json_object_get(root, key);
    out[0] = '\0';
    if (v == NULL || json_is_null(v)) {
        if (required) return kp_error_set(e, KP_ERR_INVALID, key, "is required (a string)");
        return KP_OK;
    }
    if (!json_is_string(v)) return kp_error_set(e, KP_ERR_INVALID, key, "must be a string");
    size_t n = json_string_length(v);
    if (n >= size)
        return kp_error_set(e, KP_ERR_INVALID, key, "must be at most %zu bytes", size - 1);
    const char *s = json_string_value(v);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return kp_error_set(e, KP_ERR_INVALID, key, "must not contain control characters");
    if (required && n == 0) return kp_error_set(e, KP_ERR_INVALID, key, "must not be empty");
    memcpy(out, s, n + 1);
    return KP_OK;
}

kp_err kp_event_req_parse(const char *body, size_t len, kp_event_req *out, kp_error *e)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return kp_error_setr(e, KP_ERR_INVALID, KP_REASON_BAD_JSON, "",
                             "not valid JSON at line %d column %d: %s", jerr.line, jerr.column,
                             jerr.text);
    kp_err err = KP_OK;
    if (!json_is_object(root)) {
        err = kp_error_setr(e, KP_ERR_INVALID, KP_REASON_BAD_JSON, "",
                            "the body must be a JSON object");
        goto out;
    }
    static const char *const keys[] = {"id", "card", "type", "value", "token", "at", NULL};
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        bool ok = false;
        for (size_t i = 0; keys[i] && !ok; i++) ok = strcmp(key, keys[i]) == 0;
        if (!ok) {
            char field[64];
            snprintf(field, sizeof field, "%.60s", key);
            err = kp_error_set(e, KP_ERR_INVALID, field,
                               "unknown field; allowed: id, card, type, value, token, at");
            goto out;
        }
    }
    if ((err = ev_str(root, "id", true, out->id, sizeof out->id, e))) goto out;
    if ((err = ev_str(root, "card", true, out->card, sizeof out->card, e))) goto out;
    if ((err = ev_str(root, "type", true, out->type, sizeof out->type, e))) goto out;
    for (const char *c = out->type; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' ||
              *c == '.')) {
            err = kp_error_set(e, KP_ERR_INVALID, "type",
                               "must be an event type of a-z, 0-9, '_', '-', '.'");
            goto out;
        }
    if ((err = ev_str(root, "token", false, out->token, sizeof out->token, e))) goto out;
    json_t *value = json_object_get(root, "value");
    if (value && !json_is_null(value)) {
        if (!json_is_integer(value)) {
            err = kp_error_set(e, KP_ERR_INVALID, "value", "must be an integer");
            goto out;
        }
        out->has_value = true;
        out->value = json_integer_value(value);
    }
    json_t *at = json_object_get(root, "at");
    if (at && !json_is_null(at)) {
        if (!json_is_string(at) || !kp_time_parse(json_string_value(at), &out->at)) {
            err = kp_error_set(e, KP_ERR_INVALID, "at",
                               "must be an RFC 3339 time like \"2026-11-23T10:00:00Z\"");
            goto out;
        }
        out->at_given = true;
    }
out:
    json_decref(root);
    return err;
}
