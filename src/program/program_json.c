/*
 * program_json.c: reads a program file (JSON, see docs/rules.md) into a
 * kp_program, validating every field. Unknown fields are errors, so a typo in
 * a rule is caught on load instead of silently changing the program. Every
 * refusal names the field ("rules[3].steps[1].percent") and says what is
 * allowed.
 *
 * Numbers that are money are integers of minor units; percentages are
 * integers or strings with at most two decimals ("12.5"): never a JSON real,
 * so no binary floating point gets into a rate.
 */
#include <kopilka/program.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <kopilka/clock.h>

#include "core/buf.h"
#include "program/program_fields.h"
#include "service/phone.h"

const char *kp_rule_kind_name(kp_rule_kind kind)
{
    switch (kind) {
    case KP_RULE_EARN_PERCENT: return "earn_percent";
    case KP_RULE_FIRST_PURCHASE_MIN: return "first_purchase_min";
    case KP_RULE_BURN_LIMIT: return "burn_limit";
    case KP_RULE_BURN_MIN_BALANCE: return "burn_min_balance";
    case KP_RULE_DISCOUNT_FIXED: return "discount_fixed";
    case KP_RULE_DISCOUNT_CUMULATIVE: return "discount_cumulative";
    case KP_RULE_JOIN_MIN_PURCHASE: return "join_min_purchase";
    case KP_RULE_ANNUAL_SPEND_BONUS: return "annual_spend_bonus";
    case KP_RULE_GRANT: return "grant";
    case KP_RULE_TIER: return "tier";
    case KP_RULE_SCRIPT: return "script";
    }
    return "unknown";
}

const char *kp_grant_once_name(kp_grant_once once)
{
    switch (once) {
    case KP_ONCE_CUSTOMER: return "customer";
    case KP_ONCE_YEAR: return "year";
    case KP_ONCE_EVENT: return "event";
    }
    return "unknown";
}

const char *kp_downgrade_name(kp_downgrade d)
{
    switch (d) {
    case KP_DOWNGRADE_TO_QUALIFIED: return "to_qualified";
    case KP_DOWNGRADE_ONE_LEVEL: return "one_level";
    case KP_DOWNGRADE_NEVER: return "never";
    }
    return "unknown";
}

/* program_fields.h */
void program_field_name(char *out, size_t size, const char *path, const char *key)
{
    int n = snprintf(out, size, "%s%s%s", path, path[0] ? "." : "", key);
    /* A path too long for the error's field ends in "...", never cut silently. */
    if (n >= 0 && (size_t)n >= size && size >= 4) memcpy(out + size - 4, "...", 4);
}

kp_err program_only_keys(json_t *obj, const char *const *allowed, const char *path, kp_error *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(key, allowed[i]) == 0) ok = true;
        if (!ok) {
            char field[64];
            program_field_name(field, sizeof field, path, key);
            kp_buf list;
            kp_buf_init(&list, 1024);
            for (size_t i = 0; allowed[i]; i++)
                kp_buf_printf(&list, "%s%s", i ? ", " : "", allowed[i]);
            kp_err err = kp_error_set(e, KP_ERR_INVALID, field, "unknown field; allowed: %s",
                                      list.data ? list.data : "");
            kp_buf_release(&list);
            return err;
        }
    }
    return KP_OK;
}

static kp_err get_string(json_t *obj, const char *key, const char *path, bool required, char *out,
                         size_t out_size, kp_error *e)
{
    char field[64];
    program_field_name(field, sizeof field, path, key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required) return kp_error_set(e, KP_ERR_INVALID, field, "is required (a string)");
        return KP_OK;
    }
    if (!json_is_string(v)) return kp_error_set(e, KP_ERR_INVALID, field, "must be a string");
    if (json_string_length(v) >= out_size)
        return kp_error_set(e, KP_ERR_INVALID, field, "is longer than %zu bytes", out_size - 1);
    snprintf(out, out_size, "%s", json_string_value(v));
    return KP_OK;
}

kp_err program_get_int(json_t *obj, const char *key, const char *path, bool required, int64_t min,
                       int64_t max, int64_t *out, kp_error *e)
{
    char field[64];
    program_field_name(field, sizeof field, path, key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required) return kp_error_set(e, KP_ERR_INVALID, field, "is required (an integer)");
        return KP_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return kp_error_set(e, KP_ERR_INVALID, field, "must be an integer from %lld to %lld",
                            (long long)min, (long long)max);
    *out = json_integer_value(v);
    return KP_OK;
}

kp_err program_get_bool(json_t *obj, const char *key, const char *path, bool *out, kp_error *e)
{
    char field[64];
    program_field_name(field, sizeof field, path, key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL) return KP_OK;
    if (!json_is_boolean(v)) return kp_error_set(e, KP_ERR_INVALID, field, "must be true or false");
    *out = json_is_true(v);
    return KP_OK;
}

/* A rate: 12 or "12.5" (percent, at most 2 decimals) into basis points. */
static kp_err get_percent_key(json_t *obj, const char *key, const char *path, bool required,
                              int32_t max_bp, int32_t *bp, kp_error *e)
{
    char field[64];
    program_field_name(field, sizeof field, path, key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        if (required) return kp_error_set(e, KP_ERR_INVALID, field, "is required");
        return KP_OK;
    }
    if (json_is_integer(v)) {
        json_int_t p = json_integer_value(v);
        if (p < 0 || p * 100 > max_bp)
            return kp_error_set(e, KP_ERR_INVALID, field, "must be from 0 to %d", max_bp / 100);
        *bp = (int32_t)(p * 100);
        return KP_OK;
    }
    if (json_is_string(v)) {
        if (!kp_percent_parse(json_string_value(v), bp) || *bp > max_bp)
            return kp_error_set(e, KP_ERR_INVALID, field,
                                "must be a percentage from 0 to %d with at most 2 decimals, "
                                "like \"12.5\"; got \"%s\"",
                                max_bp / 100, json_string_value(v));
        return KP_OK;
    }
    return kp_error_set(e, KP_ERR_INVALID, field,
                        "must be an integer or a string like \"12.5\" (no floating point)");
}

static kp_err get_percent(json_t *obj, const char *path, int32_t max_bp, int32_t *bp, kp_error *e)
{
    return get_percent_key(obj, "percent", path, true, max_bp, bp, e);
}

/* An instant: RFC 3339, or a date "YYYY-MM-DD" meaning its start in the
 * program's calendar. */
static kp_err get_time(json_t *obj, const char *key, const char *path, const kp_program *p,
                       kp_time *out, kp_error *e)
{
    char field[64], text[40];
    program_field_name(field, sizeof field, path, key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL) return KP_OK;
    if (!json_is_string(v) || json_string_length(v) >= sizeof text)
        return kp_error_set(e, KP_ERR_INVALID, field,
                            "must be a date \"2026-12-20\" or a time \"2026-12-20T10:00:00Z\"");
    snprintf(text, sizeof text, "%s", json_string_value(v));
    if (strlen(text) == 10) {
        char full[64];
        snprintf(full, sizeof full, "%.10sT00:00:00Z", text);
        kp_time t;
        if (!kp_time_parse(full, &t))
            return kp_error_set(e, KP_ERR_INVALID, field, "\"%s\" is not a valid date", text);
        *out = t - (kp_time)p->utc_offset_minutes * 60;
        return KP_OK;
    }
    if (!kp_time_parse(text, out))
        return kp_error_set(e, KP_ERR_INVALID, field,
                            "must be a date \"2026-12-20\" or an RFC 3339 time, got \"%s\"", text);
    return KP_OK;
}

/* pending_days, ttl_days, ttl_months, expires_on of `obj` into *v; *given
 * says whether any expiry field was present. */
static kp_err get_validity(json_t *obj, const char *path, const kp_program *p, kp_validity *v,
                           bool *given, kp_error *e)
{
    kp_err err;
    int64_t months = v->ttl_months;
    bool has_days = json_object_get(obj, "ttl_days") != NULL;
    bool has_months = json_object_get(obj, "ttl_months") != NULL;
    bool has_on = json_object_get(obj, "expires_on") != NULL;
    if ((int)has_days + (int)has_months + (int)has_on > 1) {
        char field[64];
        program_field_name(field, sizeof field, path, "ttl_days");
        return kp_error_set(e, KP_ERR_INVALID, field,
                            "give at most one of ttl_days, ttl_months, expires_on");
    }
    if ((err = program_get_int(obj, "pending_days", path, false, 0, 3650, &v->pending_days, e)))
        return err;
    if (has_days || has_months || has_on) {
        v->ttl_days = 0;
        v->ttl_months = 0;
        v->expires_on = 0;
        months = 0;
    }
    if ((err = program_get_int(obj, "ttl_days", path, false, 0, 36500, &v->ttl_days, e)))
        return err;
    if ((err = program_get_int(obj, "ttl_months", path, false, 0, 1200, &months, e))) return err;
    v->ttl_months = (int32_t)months;
    if ((err = get_time(obj, "expires_on", path, p, &v->expires_on, e))) return err;
    if (given) *given = has_days || has_months || has_on || json_object_get(obj, "pending_days");
    return KP_OK;
}

/* A ladder: [{"<amount_key>": minor, "percent": p}, ...], strictly increasing. */
static kp_err get_steps(json_t *obj, const char *path, const char *amount_key, kp_rule *rule,
                        kp_error *e)
{
    char field[64], sp[96];
    program_field_name(field, sizeof field, path, "steps");
    json_t *steps = json_object_get(obj, "steps");
    if (!json_is_array(steps) || json_array_size(steps) == 0 ||
        json_array_size(steps) > KP_RATE_STEPS_MAX)
        return kp_error_set(e, KP_ERR_INVALID, field, "must be an array of 1 to %d steps",
                            KP_RATE_STEPS_MAX);
    for (size_t i = 0; i < json_array_size(steps); i++) {
        json_t *s = json_array_get(steps, i);
        snprintf(sp, sizeof sp, "%s[%zu]", field, i);
        if (!json_is_object(s)) return kp_error_set(e, KP_ERR_INVALID, sp, "must be an object");
        const char *const keys[] = {amount_key, "percent", NULL};
        kp_err err = program_only_keys(s, keys, sp, e);
        if (err) return err;
        kp_rate_step *st = &rule->steps[i];
        if ((err = program_get_int(s, amount_key, sp, true, 0, KP_AMOUNT_MAX * 1000, &st->min_minor,
                                   e)))
            return err;
        if ((err = get_percent(s, sp, 10000, &st->rate_bp, e))) return err;
        if (i > 0 && st->min_minor <= rule->steps[i - 1].min_minor) {
            char f[128];
            snprintf(f, sizeof f, "%s.%s", sp, amount_key);
            return kp_error_set(e, KP_ERR_INVALID, f, "steps must be in increasing order of %s",
                                amount_key);
        }
        rule->n_steps = i + 1;
    }
    return KP_OK;
}

static bool kind_known(const kp_program *p, const char *kind)
{
    return kind[0] == '\0' || strcmp(kind, p->point_kind) == 0 || kp_program_kind(p, kind) != NULL;
}

static kp_err check_kind(const kp_program *p, const kp_rule *rule, const char *path, kp_error *e)
{
    if (kind_known(p, rule->point_kind)) return KP_OK;
    char field[64];
    program_field_name(field, sizeof field, path, "point_kind");
    return kp_error_set(e, KP_ERR_INVALID, field,
                        "unknown point kind \"%s\"; define it in point_kinds", rule->point_kind);
}

static kp_err parse_window(json_t *r, const char *path, const kp_program *p, kp_rule *rule,
                           kp_error *e)
{
    kp_err err;
    if ((err = get_time(r, "starts", path, p, &rule->starts_at, e))) return err;
    if ((err = get_time(r, "ends", path, p, &rule->ends_at, e))) return err;
    if (rule->starts_at && rule->ends_at && rule->ends_at <= rule->starts_at) {
        char field[64];
        program_field_name(field, sizeof field, path, "ends");
        return kp_error_set(e, KP_ERR_INVALID, field, "must be after starts");
    }
    return KP_OK;
}

static bool event_type_ok(const char *s)
{
    if (s[0] == '\0') return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' ||
              *c == '.'))
            return false;
    return true;
}

static kp_err parse_grant(json_t *r, const char *path, kp_program *p, kp_rule *rule, kp_error *e)
{
    static const char *const keys[] = {"id",         "kind",         "on",       "points",
                                       "point_kind", "value_over",   "once",     "unique_token",
                                       "per_year",   "pending_days", "ttl_days", "ttl_months",
                                       "expires_on", "note",         NULL};
    kp_err err;
    char field[64];
    if ((err = program_only_keys(r, keys, path, e))) return err;
    if ((err = get_string(r, "on", path, true, rule->on, sizeof rule->on, e))) return err;
    if (!event_type_ok(rule->on)) {
        program_field_name(field, sizeof field, path, "on");
        return kp_error_set(e, KP_ERR_INVALID, field,
                            "must be an event type of a-z, 0-9, '_', '-', '.' (registration, "
                            "birthday, tenure, survey, partner_card, or your own)");
    }
    if ((err = program_get_int(r, "points", path, true, 1, 1000000000, &rule->points, e)))
        return err;
    snprintf(rule->point_kind, sizeof rule->point_kind, "%s", p->point_kind);
    if ((err = get_string(r, "point_kind", path, false, rule->point_kind, sizeof rule->point_kind,
                          e)))
        return err;
    if ((err = check_kind(p, rule, path, e))) return err;
    if (json_object_get(r, "value_over")) {
        rule->has_value_over = true;
        if ((err = program_get_int(r, "value_over", path, false, INT64_MIN / 2, INT64_MAX / 2,
                                   &rule->value_over, e)))
            return err;
    }
    bool yearly = strcmp(rule->on, "birthday") == 0 || strcmp(rule->on, "tenure") == 0;
    rule->once = yearly ? KP_ONCE_YEAR : KP_ONCE_CUSTOMER;
    char once[16] = "";
    if ((err = get_string(r, "once", path, false, once, sizeof once, e))) return err;
    if (once[0]) {
        if (strcmp(once, "customer") == 0)
            rule->once = KP_ONCE_CUSTOMER;
        else if (strcmp(once, "year") == 0)
            rule->once = KP_ONCE_YEAR;
        else if (strcmp(once, "event") == 0)
            rule->once = KP_ONCE_EVENT;
        else {
            program_field_name(field, sizeof field, path, "once");
            return kp_error_set(e, KP_ERR_INVALID, field,
                                "must be \"customer\", \"year\" or \"event\", got \"%s\"", once);
        }
    }
    if ((err = program_get_bool(r, "unique_token", path, &rule->unique_token, e))) return err;
    if ((err = program_get_bool(r, "per_year", path, &rule->per_year, e))) return err;
    if (rule->per_year && strcmp(rule->on, "tenure") != 0) {
        program_field_name(field, sizeof field, path, "per_year");
        return kp_error_set(e, KP_ERR_INVALID, field, "only a grant on \"tenure\" can be per_year");
    }
    const kp_point_kind *k = kp_program_kind(p, rule->point_kind);
    if (k) rule->validity = k->validity;
    return get_validity(r, path, p, &rule->validity, &rule->has_validity, e);
}

static kp_err parse_rule(json_t *r, size_t index, kp_program *p, kp_error *e)
{
    char path[32], field[64];
    snprintf(path, sizeof path, "rules[%zu]", index);
    if (!json_is_object(r)) return kp_error_set(e, KP_ERR_INVALID, path, "must be an object");
    kp_rule *rule = &p->rules[index];
    char kind[32] = "";
    kp_err err;
    if ((err = get_string(r, "id", path, true, rule->id, sizeof rule->id, e))) return err;
    if (rule->id[0] == '\0') {
        program_field_name(field, sizeof field, path, "id");
        return kp_error_set(e, KP_ERR_INVALID, field, "must not be empty");
    }
    for (size_t i = 0; i < index; i++)
        if (strcmp(p->rules[i].id, rule->id) == 0) {
            program_field_name(field, sizeof field, path, "id");
            return kp_error_set(e, KP_ERR_INVALID, field, "\"%s\" is already the id of rules[%zu]",
                                rule->id, i);
        }
    if ((err = get_string(r, "kind", path, true, kind, sizeof kind, e))) return err;
    if ((err = get_string(r, "category", path, false, rule->category, sizeof rule->category, e)))
        return err;
    if ((err = get_string(r, "store", path, false, rule->store, sizeof rule->store, e))) return err;
    if (strcmp(kind, "earn_percent") == 0) {
        static const char *const keys[] = {"id",   "kind",    "category", "store",
                                           "tier", "percent", "steps",    "starts",
                                           "ends", "note",    NULL};
        rule->kind = KP_RULE_EARN_PERCENT;
        if ((err = program_only_keys(r, keys, path, e))) return err;
        if ((err = get_string(r, "tier", path, false, rule->tier, sizeof rule->tier, e)))
            return err;
        if (rule->tier[0] && kp_program_tier(p, rule->tier, NULL) == NULL) {
            program_field_name(field, sizeof field, path, "tier");
            return kp_error_set(e, KP_ERR_INVALID, field, "no tier is named \"%s\"", rule->tier);
        }
        if ((err = parse_window(r, path, p, rule, e))) return err;
        bool has_percent = json_object_get(r, "percent") != NULL;
        bool has_steps = json_object_get(r, "steps") != NULL;
        if (has_percent == has_steps) {
            program_field_name(field, sizeof field, path, "percent");
            return kp_error_set(e, KP_ERR_INVALID, field,
                                "give either percent or steps (a ladder by receipt amount)");
        }
        if (has_steps) return get_steps(r, path, "min_amount", rule, e);
        return get_percent(r, path, 10000 * 100, &rule->rate_bp, e);
    }
    if (strcmp(kind, "burn_limit") == 0) {
        static const char *const keys[] = {"id",      "kind", "category", "point_kind",
                                           "percent", "note", NULL};
        rule->kind = KP_RULE_BURN_LIMIT;
        if ((err = program_only_keys(r, keys, path, e))) return err;
        if ((err = get_string(r, "point_kind", path, false, rule->point_kind,
                              sizeof rule->point_kind, e)))
            return err;
        if ((err = check_kind(p, rule, path, e))) return err;
        for (size_t i = 0; i < index; i++) {
            const kp_rule *o = &p->rules[i];
            if (o->kind == KP_RULE_BURN_LIMIT && strcmp(o->category, rule->category) == 0 &&
                strcmp(o->point_kind, rule->point_kind) == 0) {
                program_field_name(field, sizeof field, path, "category");
                return kp_error_set(e, KP_ERR_INVALID, field,
                                    "rules[%zu] already limits %s points on %s", i,
                                    rule->point_kind[0] ? rule->point_kind : "all",
                                    rule->category[0] ? rule->category : "the basket");
            }
        }
        return get_percent(r, path, 10000, &rule->rate_bp, e);
    }
    if (strcmp(kind, "first_purchase_min") == 0 || strcmp(kind, "burn_min_balance") == 0) {
        static const char *const keys[] = {"id", "kind", "points", "note", NULL};
        rule->kind = kind[0] == 'f' ? KP_RULE_FIRST_PURCHASE_MIN : KP_RULE_BURN_MIN_BALANCE;
        if ((err = program_only_keys(r, keys, path, e))) return err;
        return program_get_int(r, "points", path, true, 1, 1000000000, &rule->points, e);
    }
    if (strcmp(kind, "discount_fixed") == 0) {
        static const char *const keys[] = {
            "id",     "kind", "category", "store", "percent", "registered_only",
            "starts", "ends", "note",     NULL};
        rule->kind = KP_RULE_DISCOUNT_FIXED;
        if ((err = program_only_keys(r, keys, path, e))) return err;
        if ((err = program_get_bool(r, "registered_only", path, &rule->registered_only, e)))
            return err;
        if ((err = parse_window(r, path, p, rule, e))) return err;
        return get_percent(r, path, 10000, &rule->rate_bp, e);
    }
    if (strcmp(kind, "discount_cumulative") == 0) {
        static const char *const keys[] = {
            "id", "kind", "category", "steps", "individual_from", "registered_only", "note", NULL};
        rule->kind = KP_RULE_DISCOUNT_CUMULATIVE;
        if ((err = program_only_keys(r, keys, path, e))) return err;
        if ((err = program_get_bool(r, "registered_only", path, &rule->registered_only, e)))
            return err;
        if ((err = program_get_int(r, "individual_from", path, false, 1, KP_AMOUNT_MAX * 1000,
                                   &rule->amount_minor, e)))
            return err;
        return get_steps(r, path, "min_spend", rule, e);
    }
    if (strcmp(kind, "join_min_purchase") == 0) {
        static const char *const keys[] = {"id", "kind", "amount", "note", NULL};
        rule->kind = KP_RULE_JOIN_MIN_PURCHASE;
        if ((err = program_only_keys(r, keys, path, e))) return err;
        return program_get_int(r, "amount", path, true, 1, KP_AMOUNT_MAX, &rule->amount_minor, e);
    }
    if (strcmp(kind, "annual_spend_bonus") == 0) {
        static const char *const keys[] = {"id", "kind", "spend_over", "points", "note", NULL};
        rule->kind = KP_RULE_ANNUAL_SPEND_BONUS;
        if ((err = program_only_keys(r, keys, path, e))) return err;
        if ((err = program_get_int(r, "spend_over", path, true, 0, KP_AMOUNT_MAX * 1000,
                                   &rule->amount_minor, e)))
            return err;
        return program_get_int(r, "points", path, true, 1, 1000000000, &rule->points, e);
    }
    if (strcmp(kind, "grant") == 0) {
        rule->kind = KP_RULE_GRANT;
        return parse_grant(r, path, p, rule, e);
    }
    program_field_name(field, sizeof field, path, "kind");
    return kp_error_set(e, KP_ERR_INVALID, field,
                        "unknown rule kind \"%s\"; allowed: earn_percent, first_purchase_min, "
                        "burn_limit, burn_min_balance, discount_fixed, discount_cumulative, "
                        "join_min_purchase, annual_spend_bonus, grant",
                        kind);
}

static kp_err parse_kinds(json_t *kinds, kp_program *p, kp_error *e)
{
    if (!json_is_array(kinds) || json_array_size(kinds) > KP_POINT_KINDS_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "point_kinds",
                            "must be an array of at most %d kinds", KP_POINT_KINDS_MAX);
    for (size_t i = 0; i < json_array_size(kinds); i++) {
        json_t *k = json_array_get(kinds, i);
        char path[48];
        snprintf(path, sizeof path, "point_kinds[%zu]", i);
        if (!json_is_object(k)) return kp_error_set(e, KP_ERR_INVALID, path, "must be an object");
        static const char *const keys[] = {"name",       "pending_days", "ttl_days", "ttl_months",
                                           "expires_on", "note",         NULL};
        kp_err err = program_only_keys(k, keys, path, e);
        if (err) return err;
        kp_point_kind *pk = &p->kinds[i];
        if ((err = get_string(k, "name", path, true, pk->name, sizeof pk->name, e))) return err;
        if (pk->name[0] == '\0' || kp_program_kind(p, pk->name)) {
            char field[64];
            program_field_name(field, sizeof field, path, "name");
            return kp_error_set(e, KP_ERR_INVALID, field, "must be a non-empty, unique name");
        }
        if ((err = get_validity(k, path, p, &pk->validity, NULL, e))) return err;
        p->n_kinds = i + 1;
    }
    return KP_OK;
}

static kp_err parse_tiers(json_t *t, kp_program *p, kp_error *e)
{
    static const char *const keys[] = {"window_days", "review_months", "downgrade",
                                       "levels",      "note",          NULL};
    if (!json_is_object(t)) return kp_error_set(e, KP_ERR_INVALID, "tiers", "must be an object");
    kp_err err = program_only_keys(t, keys, "tiers", e);
    if (err) return err;
    p->tier_window_days = 365;
    if ((err = program_get_int(t, "window_days", "tiers", false, 1, 3660, &p->tier_window_days, e)))
        return err;
    int64_t months = 1;
    if ((err = program_get_int(t, "review_months", "tiers", false, 0, 120, &months, e))) return err;
    p->tier_review_months = (int32_t)months;
    char down[16] = "to_qualified";
    if ((err = get_string(t, "downgrade", "tiers", false, down, sizeof down, e))) return err;
    if (strcmp(down, "to_qualified") == 0)
        p->tier_downgrade = KP_DOWNGRADE_TO_QUALIFIED;
    else if (strcmp(down, "one_level") == 0)
        p->tier_downgrade = KP_DOWNGRADE_ONE_LEVEL;
    else if (strcmp(down, "never") == 0)
        p->tier_downgrade = KP_DOWNGRADE_NEVER;
    else
        return kp_error_set(e, KP_ERR_INVALID, "tiers.downgrade",
                            "must be \"to_qualified\", \"one_level\" or \"never\", got \"%s\"",
                            down);
    json_t *levels = json_object_get(t, "levels");
    if (!json_is_array(levels) || json_array_size(levels) == 0 ||
        json_array_size(levels) > KP_TIERS_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "tiers.levels",
                            "must be an array of 1 to %d tiers, lowest first", KP_TIERS_MAX);
    for (size_t i = 0; i < json_array_size(levels); i++) {
        json_t *l = json_array_get(levels, i);
        char path[48], field[64];
        snprintf(path, sizeof path, "tiers.levels[%zu]", i);
        if (!json_is_object(l)) return kp_error_set(e, KP_ERR_INVALID, path, "must be an object");
        static const char *const lkeys[] = {
            "name", "min_spend", "earn_multiplier", "discount_percent", "privileges", "note", NULL};
        if ((err = program_only_keys(l, lkeys, path, e))) return err;
        kp_tier *tier = &p->tiers[i];
        if ((err = get_string(l, "name", path, true, tier->name, sizeof tier->name, e))) return err;
        if (tier->name[0] == '\0' || kp_program_tier(p, tier->name, NULL)) {
            program_field_name(field, sizeof field, path, "name");
            return kp_error_set(e, KP_ERR_INVALID, field, "must be a non-empty, unique name");
        }
        if ((err = program_get_int(l, "min_spend", path, true, 0, KP_AMOUNT_MAX * 1000,
                                   &tier->min_spend_minor, e)))
            return err;
        if (i > 0 && tier->min_spend_minor <= p->tiers[i - 1].min_spend_minor) {
            program_field_name(field, sizeof field, path, "min_spend");
            return kp_error_set(e, KP_ERR_INVALID, field,
                                "tiers are listed lowest first: must be above %lld",
                                (long long)p->tiers[i - 1].min_spend_minor);
        }
        /* A multiplier is written like a percentage without the sign:
         * "1.5" reads as 150 hundredths, the way "1.5" % reads as 150 bp. */
        tier->earn_multiplier_x100 = 100;
        if ((err = get_percent_key(l, "earn_multiplier", path, false, 1000,
                                   &tier->earn_multiplier_x100, e)))
            return err;
        if ((err =
                 get_percent_key(l, "discount_percent", path, false, 10000, &tier->discount_bp, e)))
            return err;
        json_t *priv = json_object_get(l, "privileges");
        if (priv) {
            program_field_name(field, sizeof field, path, "privileges");
            if (!json_is_array(priv) || json_array_size(priv) > KP_TIER_PRIVILEGES_MAX)
                return kp_error_set(e, KP_ERR_INVALID, field,
                                    "must be an array of at most %d names", KP_TIER_PRIVILEGES_MAX);
            for (size_t k = 0; k < json_array_size(priv); k++) {
                json_t *s = json_array_get(priv, k);
                if (!json_is_string(s) || json_string_length(s) == 0 ||
                    json_string_length(s) >= KP_PRIVILEGE_NAME_MAX)
                    return kp_error_set(e, KP_ERR_INVALID, field,
                                        "each privilege is a name of 1 to %d bytes",
                                        KP_PRIVILEGE_NAME_MAX - 1);
                snprintf(tier->privileges[k], KP_PRIVILEGE_NAME_MAX, "%s", json_string_value(s));
                tier->n_privileges = k + 1;
            }
        }
        p->n_tiers = i + 1;
    }
    return KP_OK;
}

static bool identifier_ok(const char *s)
{
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_'))
            return false;
    return true;
}

static kp_err parse_script(json_t *s, kp_program *p, kp_error *e)
{
    static const char *const keys[] = {"source",        "earn", "burn", "instructions_max",
                                       "memory_max_kb", "note", NULL};
    if (!json_is_object(s)) return kp_error_set(e, KP_ERR_INVALID, "script", "must be an object");
    kp_err err = program_only_keys(s, keys, "script", e);
    if (err) return err;
    json_t *src = json_object_get(s, "source");
    size_t used = 0;
    if (json_is_string(src)) {
        if (json_string_length(src) >= KP_SCRIPT_MAX)
            return kp_error_set(e, KP_ERR_LIMIT, "script.source", "is over %d bytes",
                                KP_SCRIPT_MAX - 1);
        snprintf(p->script, sizeof p->script, "%s", json_string_value(src));
    } else if (json_is_array(src)) {
        /* An array of lines, so a script reads well in a JSON file. */
        for (size_t i = 0; i < json_array_size(src); i++) {
            json_t *line = json_array_get(src, i);
            if (!json_is_string(line))
                return kp_error_set(e, KP_ERR_INVALID, "script.source",
                                    "must be a string or an array of strings (lines)");
            size_t n = json_string_length(line);
            if (used + n + 2 > KP_SCRIPT_MAX)
                return kp_error_set(e, KP_ERR_LIMIT, "script.source", "is over %d bytes",
                                    KP_SCRIPT_MAX - 1);
            memcpy(p->script + used, json_string_value(line), n);
            used += n;
            p->script[used++] = '\n';
            p->script[used] = '\0';
        }
    } else {
        return kp_error_set(e, KP_ERR_INVALID, "script.source",
                            "is required: Lua 5.4 source, a string or an array of lines");
    }
    if ((err = get_string(s, "earn", "script", false, p->script_earn, sizeof p->script_earn, e)))
        return err;
    if ((err = get_string(s, "burn", "script", false, p->script_burn, sizeof p->script_burn, e)))
        return err;
    if (p->script_earn[0] && !identifier_ok(p->script_earn))
        return kp_error_set(e, KP_ERR_INVALID, "script.earn", "must be a Lua function name");
    if (p->script_burn[0] && !identifier_ok(p->script_burn))
        return kp_error_set(e, KP_ERR_INVALID, "script.burn", "must be a Lua function name");
    if (p->script_earn[0] == '\0' && p->script_burn[0] == '\0')
        return kp_error_set(e, KP_ERR_INVALID, "script",
                            "name the function that adjusts earn (\"earn\") or burn (\"burn\")");
    p->script_instructions_max = 100000;
    if ((err = program_get_int(s, "instructions_max", "script", false, 1000, 100000000,
                               &p->script_instructions_max, e)))
        return err;
    int64_t kb = 1024;
    if ((err = program_get_int(s, "memory_max_kb", "script", false, 64, 65536, &kb, e))) return err;
    p->script_memory_max_bytes = kb * 1024;
    return KP_OK;
}

/* "event_sources": [{"type": "survey", "from": ["till", "back_office"]}, ...] */
static kp_err parse_event_sources(json_t *list, kp_program *p, kp_error *e)
{
    char path[48], field[64];
    if (!json_is_array(list) || json_array_size(list) > KP_EVENT_SOURCES_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "event_sources",
                            "must be an array of at most %d {\"type\", \"from\"} objects",
                            KP_EVENT_SOURCES_MAX);
    p->event_sources_declared = true;
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *s = json_array_get(list, i);
        snprintf(path, sizeof path, "event_sources[%zu]", i);
        if (!json_is_object(s)) return kp_error_set(e, KP_ERR_INVALID, path, "must be an object");
        static const char *const keys[] = {"type", "from", "note", NULL};
        kp_err err = program_only_keys(s, keys, path, e);
        if (err) return err;
        kp_event_source *src = &p->event_sources[i];
        if ((err = get_string(s, "type", path, true, src->type, sizeof src->type, e))) return err;
        program_field_name(field, sizeof field, path, "type");
        if (!event_type_ok(src->type))
            return kp_error_set(e, KP_ERR_INVALID, field,
                                "must be an event type of a-z, 0-9, '_', '-', '.'");
        if (kp_event_type_internal(src->type))
            return kp_error_set(e, KP_ERR_INVALID, field,
                                "\"%s\" is raised by the server itself (birthday, tenure, "
                                "annual_spend, tier_review and expiry by the scheduler, "
                                "registration by the back office): no outside source may send it",
                                src->type);
        for (size_t k = 0; k < i; k++)
            if (strcmp(p->event_sources[k].type, src->type) == 0)
                return kp_error_set(e, KP_ERR_INVALID, field, "\"%s\" is declared twice",
                                    src->type);
        json_t *from = json_object_get(s, "from");
        program_field_name(field, sizeof field, path, "from");
        if (!json_is_array(from) || json_array_size(from) == 0 || json_array_size(from) > 3)
            return kp_error_set(e, KP_ERR_INVALID, field,
                                "is required: a non-empty array of \"till\", \"partner\", "
                                "\"back_office\"");
        for (size_t k = 0; k < json_array_size(from); k++) {
            json_t *f = json_array_get(from, k);
            const char *name = json_is_string(f) ? json_string_value(f) : "";
            unsigned bit = strcmp(name, "till") == 0          ? KP_FROM_TILL
                           : strcmp(name, "partner") == 0     ? KP_FROM_PARTNER
                           : strcmp(name, "back_office") == 0 ? KP_FROM_BACK_OFFICE
                                                              : 0;
            if (bit == 0)
                return kp_error_set(e, KP_ERR_INVALID, field,
                                    "each source is \"till\", \"partner\" or \"back_office\"");
            src->from |= bit;
        }
        p->n_event_sources = i + 1;
    }
    return KP_OK;
}

/* "till": {"clock_skew_minutes", "offline_days", "identify_by_phone"} */
static kp_err parse_till(json_t *t, kp_program *p, kp_error *e)
{
    if (!json_is_object(t)) return kp_error_set(e, KP_ERR_INVALID, "till", "must be an object");
    static const char *const keys[] = {"clock_skew_minutes", "offline_days", "identify_by_phone",
                                       "note", NULL};
    kp_err err = program_only_keys(t, keys, "till", e);
    if (err) return err;
    int64_t minutes = p->till.clock_skew_seconds / 60;
    if ((err = program_get_int(t, "clock_skew_minutes", "till", false, 0, 1440, &minutes, e)))
        return err;
    p->till.clock_skew_seconds = minutes * 60;
    if ((err = program_get_int(t, "offline_days", "till", false, 0, 90, &p->till.offline_days, e)))
        return err;
    return program_get_bool(t, "identify_by_phone", "till", &p->till.identify_by_phone, e);
}

static kp_err parse_utc_offset(json_t *root, kp_program *p, kp_error *e)
{
    json_t *v = json_object_get(root, "utc_offset");
    if (v == NULL) return KP_OK;
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    int h = 0, m = 0;
    bool ok = strlen(s) == 6 && (s[0] == '+' || s[0] == '-') && s[3] == ':';
    for (int i = 1; ok && i < 6; i++)
        if (i != 3 && (s[i] < '0' || s[i] > '9')) ok = false;
    if (ok) {
        h = (s[1] - '0') * 10 + (s[2] - '0');
        m = (s[4] - '0') * 10 + (s[5] - '0');
        ok = h <= 14 && m < 60;
    }
    if (!ok)
        return kp_error_set(e, KP_ERR_INVALID, "utc_offset",
                            "must be like \"+03:00\" (the program's calendar for birthdays, "
                            "years and reviews)");
    p->utc_offset_minutes = (s[0] == '-' ? -1 : 1) * (h * 60 + m);
    return KP_OK;
}

/* "country": the ISO 3166 code of phones typed without + (libphonenumber
 * must know it), or "" for none (every phone then starts with +). Absent:
 * the country of the currency (RUB: RU, UAH: UA, KZT: KZ, BYN: BY), else
 * KP_PHONE_REGION_DEFAULT. Call after the currency is read. */
static kp_err parse_country(json_t *root, kp_program *p, kp_error *e)
{
    static const char *const by_currency[][2] = {
        {"RUB", "RU"}, {"UAH", "UA"}, {"KZT", "KZ"}, {"BYN", "BY"}};
    json_t *v = json_object_get(root, "country");
    if (v == NULL) {
        snprintf(p->country, sizeof p->country, "%s", KP_PHONE_REGION_DEFAULT);
        for (size_t i = 0; i < sizeof by_currency / sizeof by_currency[0]; i++)
            if (strcmp(p->currency, by_currency[i][0]) == 0)
                snprintf(p->country, sizeof p->country, "%s", by_currency[i][1]);
        return KP_OK;
    }
    const char *c = json_is_string(v) ? json_string_value(v) : NULL;
    if (c && c[0] == '\0') {
        p->country[0] = '\0';
        return KP_OK;
    }
    if (c == NULL || strlen(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' ||
        !kp_phone_region_known(c))
        return kp_error_set(e, KP_ERR_INVALID, "country",
                            "must be a two-letter ISO 3166 country code with a telephone "
                            "numbering plan (\"RU\", \"UA\", \"KZ\"), or \"\" for none");
    snprintf(p->country, sizeof p->country, "%s", c);
    return KP_OK;
}

kp_err kp_program_parse(const char *text, size_t len, kp_program *p, kp_error *e)
{
    memset(p, 0, sizeof *p);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    kp_err err = KP_OK;
    if (root == NULL)
        return kp_error_set(e, KP_ERR_INVALID, "", "not valid JSON at line %d column %d: %s",
                            jerr.line, jerr.column, jerr.text);
    if (!json_is_object(root)) {
        err = kp_error_set(e, KP_ERR_INVALID, "", "a program file is a JSON object");
        goto out;
    }
    /* "customers" is read by kp_people_policy_parse (people.h),
     * "notifications" by kp_notify_policy_parse (src/notify/notify.h). */
    static const char *const keys[] = {"name",     "currency",      "minor_per_point",
                                       "rounding", "utc_offset",    "point_kinds",
                                       "earn",     "tiers",         "rules",
                                       "script",   "description",   "customers",
                                       "till",     "event_sources", "country",
                                       "notifications", NULL};
    if ((err = program_only_keys(root, keys, "", e))) goto out;
    if ((err = get_string(root, "name", "", true, p->name, sizeof p->name, e))) goto out;
    snprintf(p->currency, sizeof p->currency, "RUB");
    if ((err = get_string(root, "currency", "", false, p->currency, sizeof p->currency, e)))
        goto out;
    if ((err = parse_country(root, p, e))) goto out;
    p->minor_per_point = 100;
    if ((err = program_get_int(root, "minor_per_point", "", false, 1, 1000000, &p->minor_per_point,
                               e)))
        goto out;
    char rounding[16] = "down";
    if ((err = get_string(root, "rounding", "", false, rounding, sizeof rounding, e))) goto out;
    if (strcmp(rounding, "down") == 0)
        p->rounding = KP_ROUND_DOWN;
    else if (strcmp(rounding, "half_up") == 0)
        p->rounding = KP_ROUND_HALF_UP;
    else if (strcmp(rounding, "up") == 0)
        p->rounding = KP_ROUND_UP;
    else {
        err = kp_error_set(e, KP_ERR_INVALID, "rounding",
                           "must be \"down\", \"half_up\" or \"up\", got \"%s\"", rounding);
        goto out;
    }
    if ((err = parse_utc_offset(root, p, e))) goto out;
    json_t *kinds = json_object_get(root, "point_kinds");
    if (kinds && (err = parse_kinds(kinds, p, e))) goto out;

    snprintf(p->point_kind, sizeof p->point_kind, "regular");
    json_t *earn = json_object_get(root, "earn");
    if (earn) {
        static const char *const earn_keys[] = {"point_kind", "pending_days", "ttl_days",
                                                "ttl_months", "expires_on",   NULL};
        if (!json_is_object(earn)) {
            err = kp_error_set(e, KP_ERR_INVALID, "earn", "must be an object");
            goto out;
        }
        if ((err = program_only_keys(earn, earn_keys, "earn", e))) goto out;
        if ((err = get_string(earn, "point_kind", "earn", false, p->point_kind,
                              sizeof p->point_kind, e)))
            goto out;
        if (p->point_kind[0] == '\0') {
            err = kp_error_set(e, KP_ERR_INVALID, "earn.point_kind", "must not be empty");
            goto out;
        }
    }
    /* Earned points take their kind's validity; the earn section may
     * override any part of it for purchases (a return window as pending). */
    const kp_point_kind *earn_kind = kp_program_kind(p, p->point_kind);
    if (earn_kind) p->earn_validity = earn_kind->validity;
    if (earn && (err = get_validity(earn, "earn", p, &p->earn_validity, NULL, e))) goto out;

    json_t *tiers = json_object_get(root, "tiers");
    if (tiers && (err = parse_tiers(tiers, p, e))) goto out;

    json_t *rules = json_object_get(root, "rules");
    if (!json_is_array(rules)) {
        err = kp_error_set(e, KP_ERR_INVALID, "rules", "is required: an array of rules");
        goto out;
    }
    if (json_array_size(rules) > KP_RULES_MAX) {
        err = kp_error_set(e, KP_ERR_LIMIT, "rules", "at most %d rules are allowed, got %zu",
                           KP_RULES_MAX, json_array_size(rules));
        goto out;
    }
    for (size_t i = 0; i < json_array_size(rules); i++) {
        if ((err = parse_rule(json_array_get(rules, i), i, p, e))) goto out;
        p->n_rules = i + 1;
    }
    json_t *script = json_object_get(root, "script");
    if (script && (err = parse_script(script, p, e))) goto out;
    p->till.clock_skew_seconds = KP_TILL_SKEW_SECONDS_DEFAULT;
    p->till.offline_days = KP_TILL_OFFLINE_DAYS_DEFAULT;
    json_t *till = json_object_get(root, "till");
    if (till && (err = parse_till(till, p, e))) goto out;
    json_t *sources = json_object_get(root, "event_sources");
    if (sources && (err = parse_event_sources(sources, p, e))) goto out;
out:
    json_decref(root);
    if (err != KP_OK) memset(p, 0, sizeof *p);
    return err;
}
