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
#include <stdarg.h>
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

/* The error of an unknown key: "unknown field; allowed: a, b, c". */
static kp_err unknown_key(const char *path, const char *key, const char *const *allowed,
                          kp_error *e)
{
    char field[64];
    program_field_name(field, sizeof field, path, key);
    kp_buf list;
    kp_buf_init(&list, 1024);
    for (size_t i = 0; allowed[i]; i++) kp_buf_printf(&list, "%s%s", i ? ", " : "", allowed[i]);
    kp_err err = kp_error_set(e, KP_ERR_INVALID, field, "unknown field; allowed: %s",
                              list.data ? list.data : "");
    kp_buf_release(&list);
    return err;
}

static bool key_allowed(const char *key, const char *const *allowed)
{
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(key, allowed[i]) == 0) return true;
    return false;
}

kp_err program_only_keys(json_t *obj, const char *const *allowed, const char *path, kp_error *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!key_allowed(key, allowed)) return unknown_key(path, key, allowed, e);
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

/* ---- one parse and its errors */

/* A parse of one program file: the checks note their errors here and the
 * parse goes on, so every error of the file is reported in one pass. */
typedef struct parse {
    kp_error e;      /* the error of the check in hand (the field readers fill it) */
    kp_error *first; /* the caller's: the first error noted */
    size_t n_errors;
    kp_program_error_fn report;
    void *report_ctx;
} parse;

/* Notes the error in x->e when err is one. True when err is KP_OK, so a
 * check that depends on a field reads `if (ok(x, get(...)) && ...)`. */
static bool ok(parse *x, kp_err err)
{
    if (err == KP_OK) return true;
    if (x->n_errors++ == 0 && x->first) *x->first = x->e;
    if (x->report) x->report(x->report_ctx, &x->e);
    kp_error_clear(&x->e);
    return false;
}

/* Notes an error the parser finds itself; always false. */
static bool fail(parse *x, kp_err code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool fail(parse *x, kp_err code, const char *field, const char *fmt, ...)
{
    char message[sizeof x->e.message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return ok(x, kp_error_set(&x->e, code, field, "%s", message));
}

/* Every key of obj not in allowed is one error. True when there is none. */
static bool only_keys(parse *x, json_t *obj, const char *const *allowed, const char *path)
{
    bool all = true;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (!key_allowed(key, allowed)) all = ok(x, unknown_key(path, key, allowed, &x->e)) && all;
    }
    return all;
}

/* program_fields.h: the parse as the other files of a program see it. */
bool program_ok(parse *x, kp_err err) { return ok(x, err); }

bool program_fail(parse *x, kp_err code, const char *field, const char *fmt, ...)
{
    char message[sizeof x->e.message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return ok(x, kp_error_set(&x->e, code, field, "%s", message));
}

bool program_keys(parse *x, json_t *obj, const char *const *allowed, const char *path)
{
    return only_keys(x, obj, allowed, path);
}

kp_error *program_parse_error(parse *x) { return &x->e; }

kp_err program_get_string(json_t *obj, const char *key, const char *path, bool required, char *out,
                          size_t out_size, kp_error *e)
{
    return get_string(obj, key, path, required, out, out_size, e);
}

kp_err program_get_percent(json_t *obj, const char *key, const char *path, bool required,
                           int32_t max_bp, int32_t *bp, kp_error *e)
{
    return get_percent_key(obj, key, path, required, max_bp, bp, e);
}

/* pending_days, ttl_days, ttl_months, expires_on of `obj` into *v; *given
 * says whether any validity field was present. */
static void get_validity(parse *x, json_t *obj, const char *path, const kp_program *p,
                         kp_validity *v, bool *given)
{
    int64_t months = v->ttl_months;
    bool has_days = json_object_get(obj, "ttl_days") != NULL;
    bool has_months = json_object_get(obj, "ttl_months") != NULL;
    bool has_on = json_object_get(obj, "expires_on") != NULL;
    if (given) *given = has_days || has_months || has_on || json_object_get(obj, "pending_days");
    ok(x, program_get_int(obj, "pending_days", path, false, 0, 3650, &v->pending_days, &x->e));
    if ((int)has_days + (int)has_months + (int)has_on > 1) {
        char field[64];
        program_field_name(field, sizeof field, path, "ttl_days");
        fail(x, KP_ERR_INVALID, field, "give at most one of ttl_days, ttl_months, expires_on");
        return;
    }
    if (has_days || has_months || has_on) {
        v->ttl_days = 0;
        v->ttl_months = 0;
        v->expires_on = 0;
        months = 0;
    }
    ok(x, program_get_int(obj, "ttl_days", path, false, 0, 36500, &v->ttl_days, &x->e));
    ok(x, program_get_int(obj, "ttl_months", path, false, 0, 1200, &months, &x->e));
    v->ttl_months = (int32_t)months;
    ok(x, get_time(obj, "expires_on", path, p, &v->expires_on, &x->e));
}

/* A ladder: [{"<amount_key>": minor, "percent": p}, ...], strictly increasing. */
static void get_steps(parse *x, json_t *obj, const char *path, const char *amount_key,
                      kp_rule *rule)
{
    char field[64], sp[96];
    program_field_name(field, sizeof field, path, "steps");
    json_t *steps = json_object_get(obj, "steps");
    if (!json_is_array(steps) || json_array_size(steps) == 0 ||
        json_array_size(steps) > KP_RATE_STEPS_MAX) {
        fail(x, KP_ERR_INVALID, field, "must be an array of 1 to %d steps", KP_RATE_STEPS_MAX);
        return;
    }
    for (size_t i = 0; i < json_array_size(steps); i++) {
        json_t *s = json_array_get(steps, i);
        snprintf(sp, sizeof sp, "%s[%zu]", field, i);
        rule->n_steps = i + 1;
        if (!json_is_object(s)) {
            fail(x, KP_ERR_INVALID, sp, "must be an object");
            continue;
        }
        const char *const keys[] = {amount_key, "percent", NULL};
        only_keys(x, s, keys, sp);
        kp_rate_step *st = &rule->steps[i];
        bool amount_ok = ok(x, program_get_int(s, amount_key, sp, true, 0, KP_AMOUNT_MAX * 1000,
                                               &st->min_minor, &x->e));
        ok(x, get_percent(s, sp, 10000, &st->rate_bp, &x->e));
        if (amount_ok && i > 0 && st->min_minor <= rule->steps[i - 1].min_minor) {
            char f[128];
            snprintf(f, sizeof f, "%s.%s", sp, amount_key);
            fail(x, KP_ERR_INVALID, f, "steps must be in increasing order of %s", amount_key);
        }
    }
}

static bool kind_known(const kp_program *p, const char *kind)
{
    return kind[0] == '\0' || strcmp(kind, p->point_kind) == 0 || kp_program_kind(p, kind) != NULL;
}

static void check_kind(parse *x, const kp_program *p, const kp_rule *rule, const char *path)
{
    if (kind_known(p, rule->point_kind)) return;
    char field[64];
    program_field_name(field, sizeof field, path, "point_kind");
    fail(x, KP_ERR_INVALID, field, "unknown point kind \"%s\"; define it in point_kinds",
         rule->point_kind);
}

static void parse_window(parse *x, json_t *r, const char *path, const kp_program *p, kp_rule *rule)
{
    bool starts = ok(x, get_time(r, "starts", path, p, &rule->starts_at, &x->e));
    bool ends = ok(x, get_time(r, "ends", path, p, &rule->ends_at, &x->e));
    if (starts && ends && rule->starts_at && rule->ends_at && rule->ends_at <= rule->starts_at) {
        char field[64];
        program_field_name(field, sizeof field, path, "ends");
        fail(x, KP_ERR_INVALID, field, "must be after starts");
    }
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

/* A grant on "campaign" whose points depend on the member:
 * points_by_tier, or percent_of_spend (with spend_days, points_max). Only
 * a campaign's grant reads the member's tier and spend (src/service/
 * marketing.c); an event's or the scheduler's grant does not, so the
 * fields are refused on any other event. True when one of them is given
 * (then `points` is optional: the default of a tier points_by_tier does
 * not list). */
static bool parse_grant_member(parse *x, json_t *r, const char *path, const kp_program *p,
                               kp_rule *rule)
{
    char field[64];
    json_t *tiers = json_object_get(r, "points_by_tier");
    bool pct = json_object_get(r, "percent_of_spend") != NULL;
    bool extra = json_object_get(r, "spend_days") || json_object_get(r, "points_max");
    if (!tiers && !pct && !extra) return false;
    if (strcmp(rule->on, "campaign") != 0) {
        program_field_name(field, sizeof field, path,
                           tiers ? "points_by_tier"
                           : pct ? "percent_of_spend"
                                 : "spend_days");
        fail(x, KP_ERR_INVALID, field,
             "only a grant on \"campaign\" can depend on the member (points_by_tier, "
             "percent_of_spend, spend_days, points_max); this rule is on \"%s\"",
             rule->on);
        return true;
    }
    if (tiers && pct) {
        program_field_name(field, sizeof field, path, "percent_of_spend");
        fail(x, KP_ERR_INVALID, field, "give either points_by_tier or percent_of_spend, not both");
        return true;
    }
    if (extra && !pct) {
        program_field_name(field, sizeof field, path,
                           json_object_get(r, "spend_days") ? "spend_days" : "points_max");
        fail(x, KP_ERR_INVALID, field, "goes with percent_of_spend only");
        return true;
    }
    if (tiers) {
        program_field_name(field, sizeof field, path, "points_by_tier");
        if (!json_is_object(tiers) || json_object_size(tiers) == 0) {
            fail(x, KP_ERR_INVALID, field,
                 "must be an object of tier names to whole points, e.g. {\"Gold\": 1000, "
                 "\"Silver\": 500}");
            return true;
        }
        rule->has_tier_points = true;
        const char *name;
        json_t *v;
        json_object_foreach(tiers, name, v)
        {
            int index = -1;
            if (kp_program_tier(p, name, &index) == NULL || index < 0) {
                char list[256] = "";
                size_t n = 0;
                for (size_t i = 0; i < p->n_tiers; i++)
                    n += (size_t)snprintf(list + n, n < sizeof list ? sizeof list - n : 0, "%s%s",
                                          i ? ", " : "", p->tiers[i].name);
                fail(x, KP_ERR_INVALID, field, "\"%s\" is not a tier of the program: %s", name,
                     n ? list : "the program has no tiers");
                return true;
            }
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > 1000000000) {
                fail(x, KP_ERR_INVALID, field, "\"%s\" must be whole points, 0 to 1000000000",
                     name);
                return true;
            }
            rule->tier_points_set[index] = true;
            rule->tier_points[index] = json_integer_value(v);
        }
        return true;
    }
    if (ok(x, get_percent_key(r, "percent_of_spend", path, true, 10000 * 100, &rule->spend_bp,
                              &x->e)) &&
        rule->spend_bp <= 0) {
        program_field_name(field, sizeof field, path, "percent_of_spend");
        fail(x, KP_ERR_INVALID, field, "must be over 0");
    }
    int64_t days = 365, max = 0;
    ok(x, program_get_int(r, "spend_days", path, false, 1, 1095, &days, &x->e));
    ok(x, program_get_int(r, "points_max", path, false, 0, 1000000000, &max, &x->e));
    rule->spend_days = (int32_t)days;
    rule->points_max = max;
    return true;
}

static void parse_grant(parse *x, json_t *r, const char *path, kp_program *p, kp_rule *rule)
{
    static const char *const keys[] = {
        "id",         "kind",           "on",               "points",     "point_kind",
        "value_over", "once",           "unique_token",     "per_year",   "pending_days",
        "ttl_days",   "ttl_months",     "expires_on",       "note",       "partner",
        "points_by_tier", "percent_of_spend", "spend_days", "points_max", NULL};
    char field[64];
    only_keys(x, r, keys, path);
    if (ok(x, get_string(r, "on", path, true, rule->on, sizeof rule->on, &x->e)) &&
        !event_type_ok(rule->on)) {
        program_field_name(field, sizeof field, path, "on");
        fail(x, KP_ERR_INVALID, field,
             "must be an event type of a-z, 0-9, '_', '-', '.' (registration, birthday, tenure, "
             "survey, partner_card, campaign, or your own)");
    }
    bool by_member = parse_grant_member(x, r, path, p, rule);
    ok(x, program_get_int(r, "points", path, !by_member, by_member ? 0 : 1, 1000000000,
                          &rule->points, &x->e));
    snprintf(rule->point_kind, sizeof rule->point_kind, "%s", p->point_kind);
    if (ok(x, get_string(r, "point_kind", path, false, rule->point_kind, sizeof rule->point_kind,
                         &x->e)))
        check_kind(x, p, rule, path);
    if (json_object_get(r, "value_over")) {
        rule->has_value_over = true;
        ok(x, program_get_int(r, "value_over", path, false, INT64_MIN / 2, INT64_MAX / 2,
                              &rule->value_over, &x->e));
    }
    bool yearly = strcmp(rule->on, "birthday") == 0 || strcmp(rule->on, "tenure") == 0;
    rule->once = yearly ? KP_ONCE_YEAR : KP_ONCE_CUSTOMER;
    char once[16] = "";
    if (ok(x, get_string(r, "once", path, false, once, sizeof once, &x->e)) && once[0]) {
        if (strcmp(once, "customer") == 0)
            rule->once = KP_ONCE_CUSTOMER;
        else if (strcmp(once, "year") == 0)
            rule->once = KP_ONCE_YEAR;
        else if (strcmp(once, "event") == 0)
            rule->once = KP_ONCE_EVENT;
        else {
            program_field_name(field, sizeof field, path, "once");
            fail(x, KP_ERR_INVALID, field,
                 "must be \"customer\", \"year\" or \"event\", got \"%s\"", once);
        }
    }
    ok(x, program_get_bool(r, "unique_token", path, &rule->unique_token, &x->e));
    ok(x, program_get_bool(r, "per_year", path, &rule->per_year, &x->e));
    if (rule->per_year && rule->on[0] && strcmp(rule->on, "tenure") != 0) {
        program_field_name(field, sizeof field, path, "per_year");
        fail(x, KP_ERR_INVALID, field, "only a grant on \"tenure\" can be per_year");
    }
    const kp_point_kind *k = kp_program_kind(p, rule->point_kind);
    if (k) rule->validity = k->validity;
    get_validity(x, r, path, p, &rule->validity, &rule->has_validity);
}

/* The fields of an earn_percent rule after its id and kind. */
static void parse_earn_percent(parse *x, json_t *r, const char *path, kp_program *p, kp_rule *rule)
{
    static const char *const keys[] = {"id",      "kind",       "category", "store",  "tier",
                                       "percent", "steps",      "starts",   "ends",   "note",
                                       "partner", "at_partner", "currency", NULL};
    char field[64];
    only_keys(x, r, keys, path);
    if (ok(x, get_string(r, "tier", path, false, rule->tier, sizeof rule->tier, &x->e)) &&
        rule->tier[0] && kp_program_tier(p, rule->tier, NULL) == NULL) {
        program_field_name(field, sizeof field, path, "tier");
        fail(x, KP_ERR_INVALID, field, "no tier is named \"%s\"", rule->tier);
    }
    parse_window(x, r, path, p, rule);
    bool has_percent = json_object_get(r, "percent") != NULL;
    bool has_steps = json_object_get(r, "steps") != NULL;
    if (has_percent == has_steps) {
        program_field_name(field, sizeof field, path, "percent");
        fail(x, KP_ERR_INVALID, field, "give either percent or steps (a ladder by receipt amount)");
    } else if (has_steps) {
        get_steps(x, r, path, "min_amount", rule);
    } else {
        ok(x, get_percent(r, path, 10000 * 100, &rule->rate_bp, &x->e));
    }
}

static void parse_burn_limit(parse *x, json_t *r, const char *path, size_t index, kp_program *p,
                             kp_rule *rule)
{
    static const char *const keys[] = {"id",   "kind",    "category", "point_kind", "percent",
                                       "note", "partner", "currency", NULL};
    only_keys(x, r, keys, path);
    if (ok(x, get_string(r, "point_kind", path, false, rule->point_kind, sizeof rule->point_kind,
                         &x->e)))
        check_kind(x, p, rule, path);
    for (size_t i = 0; i < index; i++) {
        const kp_rule *o = &p->rules[i];
        if (o->kind == KP_RULE_BURN_LIMIT && strcmp(o->category, rule->category) == 0 &&
            strcmp(o->point_kind, rule->point_kind) == 0 && strcmp(o->partner, rule->partner) == 0 &&
            strcmp(o->currency, rule->currency) == 0) {
            char field[64];
            program_field_name(field, sizeof field, path, "category");
            fail(x, KP_ERR_INVALID, field, "rules[%zu] already limits %s points on %s", i,
                 rule->point_kind[0] ? rule->point_kind : "all",
                 rule->category[0] ? rule->category : "the basket");
            break;
        }
    }
    ok(x, get_percent(r, path, 10000, &rule->rate_bp, &x->e));
}

static void parse_rule(parse *x, json_t *r, size_t index, kp_program *p)
{
    char path[32], field[64];
    snprintf(path, sizeof path, "rules[%zu]", index);
    if (!json_is_object(r)) {
        fail(x, KP_ERR_INVALID, path, "must be an object");
        return;
    }
    kp_rule *rule = &p->rules[index];
    char kind[32] = "";
    if (ok(x, get_string(r, "id", path, true, rule->id, sizeof rule->id, &x->e))) {
        program_field_name(field, sizeof field, path, "id");
        if (rule->id[0] == '\0') fail(x, KP_ERR_INVALID, field, "must not be empty");
        for (size_t i = 0; i < index && rule->id[0]; i++)
            if (strcmp(p->rules[i].id, rule->id) == 0) {
                fail(x, KP_ERR_INVALID, field, "\"%s\" is already the id of rules[%zu]", rule->id,
                     i);
                break;
            }
    }
    bool kind_read = ok(x, get_string(r, "kind", path, true, kind, sizeof kind, &x->e));
    ok(x, get_string(r, "category", path, false, rule->category, sizeof rule->category, &x->e));
    ok(x, get_string(r, "store", path, false, rule->store, sizeof rule->store, &x->e));
    program_parse_rule_coalition(x, r, path, p, rule);
    if (!kind_read) return; /* its other fields depend on the kind */
    if (strcmp(kind, "earn_percent") == 0) {
        rule->kind = KP_RULE_EARN_PERCENT;
        parse_earn_percent(x, r, path, p, rule);
    } else if (strcmp(kind, "burn_limit") == 0) {
        rule->kind = KP_RULE_BURN_LIMIT;
        parse_burn_limit(x, r, path, index, p, rule);
    } else if (strcmp(kind, "first_purchase_min") == 0 || strcmp(kind, "burn_min_balance") == 0) {
        static const char *const keys[] = {"id", "kind", "points", "note", "currency", NULL};
        rule->kind = kind[0] == 'f' ? KP_RULE_FIRST_PURCHASE_MIN : KP_RULE_BURN_MIN_BALANCE;
        only_keys(x, r, keys, path);
        ok(x, program_get_int(r, "points", path, true, 1, 1000000000, &rule->points, &x->e));
    } else if (strcmp(kind, "discount_fixed") == 0) {
        static const char *const keys[] = {
            "id",     "kind", "category", "store",   "percent",  "registered_only",
            "starts", "ends", "note",     "partner", "currency", NULL};
        rule->kind = KP_RULE_DISCOUNT_FIXED;
        only_keys(x, r, keys, path);
        ok(x, program_get_bool(r, "registered_only", path, &rule->registered_only, &x->e));
        parse_window(x, r, path, p, rule);
        ok(x, get_percent(r, path, 10000, &rule->rate_bp, &x->e));
    } else if (strcmp(kind, "discount_cumulative") == 0) {
        static const char *const keys[] = {
            "id",   "kind",    "category", "steps", "individual_from", "registered_only",
            "note", "currency", NULL};
        rule->kind = KP_RULE_DISCOUNT_CUMULATIVE;
        only_keys(x, r, keys, path);
        ok(x, program_get_bool(r, "registered_only", path, &rule->registered_only, &x->e));
        ok(x, program_get_int(r, "individual_from", path, false, 1, KP_AMOUNT_MAX * 1000,
                              &rule->amount_minor, &x->e));
        get_steps(x, r, path, "min_spend", rule);
    } else if (strcmp(kind, "join_min_purchase") == 0) {
        static const char *const keys[] = {"id", "kind", "amount", "note", "currency", NULL};
        rule->kind = KP_RULE_JOIN_MIN_PURCHASE;
        only_keys(x, r, keys, path);
        ok(x,
           program_get_int(r, "amount", path, true, 1, KP_AMOUNT_MAX, &rule->amount_minor, &x->e));
    } else if (strcmp(kind, "annual_spend_bonus") == 0) {
        static const char *const keys[] = {"id",   "kind",    "spend_over", "points",
                                           "note", "currency", NULL};
        rule->kind = KP_RULE_ANNUAL_SPEND_BONUS;
        only_keys(x, r, keys, path);
        ok(x, program_get_int(r, "spend_over", path, true, 0, KP_AMOUNT_MAX * 1000,
                              &rule->amount_minor, &x->e));
        ok(x, program_get_int(r, "points", path, true, 1, 1000000000, &rule->points, &x->e));
    } else if (strcmp(kind, "grant") == 0) {
        rule->kind = KP_RULE_GRANT;
        parse_grant(x, r, path, p, rule);
    } else {
        program_field_name(field, sizeof field, path, "kind");
        fail(x, KP_ERR_INVALID, field,
             "unknown rule kind \"%s\"; allowed: earn_percent, first_purchase_min, burn_limit, "
             "burn_min_balance, discount_fixed, discount_cumulative, join_min_purchase, "
             "annual_spend_bonus, grant",
             kind);
    }
}

static void parse_kinds(parse *x, json_t *kinds, kp_program *p)
{
    if (!json_is_array(kinds) || json_array_size(kinds) > KP_POINT_KINDS_MAX) {
        fail(x, KP_ERR_INVALID, "point_kinds", "must be an array of at most %d kinds",
             KP_POINT_KINDS_MAX);
        return;
    }
    for (size_t i = 0; i < json_array_size(kinds); i++) {
        json_t *k = json_array_get(kinds, i);
        char path[48];
        snprintf(path, sizeof path, "point_kinds[%zu]", i);
        if (!json_is_object(k)) {
            fail(x, KP_ERR_INVALID, path, "must be an object");
            continue;
        }
        static const char *const keys[] = {"name",       "pending_days", "ttl_days", "ttl_months",
                                           "expires_on", "note",         NULL};
        only_keys(x, k, keys, path);
        kp_point_kind *pk = &p->kinds[i];
        if (ok(x, get_string(k, "name", path, true, pk->name, sizeof pk->name, &x->e)) &&
            (pk->name[0] == '\0' || kp_program_kind(p, pk->name))) {
            char field[64];
            program_field_name(field, sizeof field, path, "name");
            fail(x, KP_ERR_INVALID, field, "must be a non-empty, unique name");
        }
        get_validity(x, k, path, p, &pk->validity, NULL);
        p->n_kinds = i + 1;
    }
}

static void parse_privileges(parse *x, json_t *priv, const char *path, kp_tier *tier)
{
    char field[64];
    program_field_name(field, sizeof field, path, "privileges");
    if (!json_is_array(priv) || json_array_size(priv) > KP_TIER_PRIVILEGES_MAX) {
        fail(x, KP_ERR_INVALID, field, "must be an array of at most %d names",
             KP_TIER_PRIVILEGES_MAX);
        return;
    }
    for (size_t k = 0; k < json_array_size(priv); k++) {
        json_t *s = json_array_get(priv, k);
        if (!json_is_string(s) || json_string_length(s) == 0 ||
            json_string_length(s) >= KP_PRIVILEGE_NAME_MAX) {
            char item[96];
            snprintf(item, sizeof item, "%s[%zu]", field, k);
            fail(x, KP_ERR_INVALID, item, "each privilege is a name of 1 to %d bytes",
                 KP_PRIVILEGE_NAME_MAX - 1);
            continue;
        }
        snprintf(tier->privileges[k], KP_PRIVILEGE_NAME_MAX, "%s", json_string_value(s));
        tier->n_privileges = k + 1;
    }
}

static void parse_tiers(parse *x, json_t *t, kp_program *p)
{
    static const char *const keys[] = {"window_days", "review_months", "downgrade",
                                       "levels",      "note",          NULL};
    if (!json_is_object(t)) {
        fail(x, KP_ERR_INVALID, "tiers", "must be an object");
        return;
    }
    only_keys(x, t, keys, "tiers");
    p->tier_window_days = 365;
    ok(x, program_get_int(t, "window_days", "tiers", false, 1, 3660, &p->tier_window_days, &x->e));
    int64_t months = 1;
    ok(x, program_get_int(t, "review_months", "tiers", false, 0, 120, &months, &x->e));
    p->tier_review_months = (int32_t)months;
    char down[16] = "to_qualified";
    if (ok(x, get_string(t, "downgrade", "tiers", false, down, sizeof down, &x->e))) {
        if (strcmp(down, "to_qualified") == 0)
            p->tier_downgrade = KP_DOWNGRADE_TO_QUALIFIED;
        else if (strcmp(down, "one_level") == 0)
            p->tier_downgrade = KP_DOWNGRADE_ONE_LEVEL;
        else if (strcmp(down, "never") == 0)
            p->tier_downgrade = KP_DOWNGRADE_NEVER;
        else
            fail(x, KP_ERR_INVALID, "tiers.downgrade",
                 "must be \"to_qualified\", \"one_level\" or \"never\", got \"%s\"", down);
    }
    json_t *levels = json_object_get(t, "levels");
    if (!json_is_array(levels) || json_array_size(levels) == 0 ||
        json_array_size(levels) > KP_TIERS_MAX) {
        fail(x, KP_ERR_INVALID, "tiers.levels", "must be an array of 1 to %d tiers, lowest first",
             KP_TIERS_MAX);
        return;
    }
    for (size_t i = 0; i < json_array_size(levels); i++) {
        json_t *l = json_array_get(levels, i);
        char path[48], field[64];
        snprintf(path, sizeof path, "tiers.levels[%zu]", i);
        if (!json_is_object(l)) {
            fail(x, KP_ERR_INVALID, path, "must be an object");
            continue;
        }
        static const char *const lkeys[] = {
            "name", "min_spend", "earn_multiplier", "discount_percent", "privileges", "note", NULL};
        only_keys(x, l, lkeys, path);
        kp_tier *tier = &p->tiers[i];
        if (ok(x, get_string(l, "name", path, true, tier->name, sizeof tier->name, &x->e)) &&
            (tier->name[0] == '\0' || kp_program_tier(p, tier->name, NULL))) {
            program_field_name(field, sizeof field, path, "name");
            fail(x, KP_ERR_INVALID, field, "must be a non-empty, unique name");
        }
        if (ok(x, program_get_int(l, "min_spend", path, true, 0, KP_AMOUNT_MAX * 1000,
                                  &tier->min_spend_minor, &x->e)) &&
            i > 0 && tier->min_spend_minor <= p->tiers[i - 1].min_spend_minor) {
            program_field_name(field, sizeof field, path, "min_spend");
            fail(x, KP_ERR_INVALID, field, "tiers are listed lowest first: must be above %lld",
                 (long long)p->tiers[i - 1].min_spend_minor);
        }
        /* A multiplier is written like a percentage without the sign:
         * "1.5" reads as 150 hundredths, the way "1.5" % reads as 150 bp. */
        tier->earn_multiplier_x100 = 100;
        ok(x, get_percent_key(l, "earn_multiplier", path, false, 1000, &tier->earn_multiplier_x100,
                              &x->e));
        ok(x,
           get_percent_key(l, "discount_percent", path, false, 10000, &tier->discount_bp, &x->e));
        json_t *priv = json_object_get(l, "privileges");
        if (priv) parse_privileges(x, priv, path, tier);
        p->n_tiers = i + 1;
    }
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

static void parse_script_source(parse *x, json_t *src, kp_program *p)
{
    size_t used = 0;
    if (json_is_string(src)) {
        if (json_string_length(src) >= KP_SCRIPT_MAX) {
            fail(x, KP_ERR_LIMIT, "script.source", "is over %d bytes", KP_SCRIPT_MAX - 1);
            return;
        }
        snprintf(p->script, sizeof p->script, "%s", json_string_value(src));
    } else if (json_is_array(src)) {
        /* An array of lines, so a script reads well in a JSON file. */
        for (size_t i = 0; i < json_array_size(src); i++) {
            json_t *line = json_array_get(src, i);
            if (!json_is_string(line)) {
                p->script[0] = '\0';
                fail(x, KP_ERR_INVALID, "script.source",
                     "must be a string or an array of strings (lines)");
                return;
            }
            size_t n = json_string_length(line);
            if (used + n + 2 > KP_SCRIPT_MAX) {
                p->script[0] = '\0';
                fail(x, KP_ERR_LIMIT, "script.source", "is over %d bytes", KP_SCRIPT_MAX - 1);
                return;
            }
            memcpy(p->script + used, json_string_value(line), n);
            used += n;
            p->script[used++] = '\n';
            p->script[used] = '\0';
        }
    } else {
        fail(x, KP_ERR_INVALID, "script.source",
             "is required: Lua 5.4 source, a string or an array of lines");
    }
}

static void parse_script(parse *x, json_t *s, kp_program *p)
{
    static const char *const keys[] = {"source",        "earn", "burn", "instructions_max",
                                       "memory_max_kb", "note", NULL};
    if (!json_is_object(s)) {
        fail(x, KP_ERR_INVALID, "script", "must be an object");
        return;
    }
    only_keys(x, s, keys, "script");
    parse_script_source(x, json_object_get(s, "source"), p);
    bool earn =
        ok(x, get_string(s, "earn", "script", false, p->script_earn, sizeof p->script_earn, &x->e));
    if (earn && p->script_earn[0] && !identifier_ok(p->script_earn)) {
        p->script_earn[0] = '\0';
        earn = fail(x, KP_ERR_INVALID, "script.earn", "must be a Lua function name");
    }
    bool burn =
        ok(x, get_string(s, "burn", "script", false, p->script_burn, sizeof p->script_burn, &x->e));
    if (burn && p->script_burn[0] && !identifier_ok(p->script_burn)) {
        p->script_burn[0] = '\0';
        burn = fail(x, KP_ERR_INVALID, "script.burn", "must be a Lua function name");
    }
    if (earn && burn && p->script_earn[0] == '\0' && p->script_burn[0] == '\0')
        fail(x, KP_ERR_INVALID, "script",
             "name the function that adjusts earn (\"earn\") or burn (\"burn\")");
    p->script_instructions_max = 100000;
    ok(x, program_get_int(s, "instructions_max", "script", false, 1000, 100000000,
                          &p->script_instructions_max, &x->e));
    int64_t kb = 1024;
    ok(x, program_get_int(s, "memory_max_kb", "script", false, 64, 65536, &kb, &x->e));
    p->script_memory_max_bytes = kb * 1024;
}

/* "event_sources": [{"type": "survey", "from": ["till", "back_office"]}, ...] */
static void parse_event_source(parse *x, json_t *s, size_t i, kp_program *p)
{
    char path[48], field[64];
    snprintf(path, sizeof path, "event_sources[%zu]", i);
    if (!json_is_object(s)) {
        fail(x, KP_ERR_INVALID, path, "must be an object");
        return;
    }
    static const char *const keys[] = {"type", "from", "note", NULL};
    only_keys(x, s, keys, path);
    kp_event_source *src = &p->event_sources[i];
    program_field_name(field, sizeof field, path, "type");
    if (ok(x, get_string(s, "type", path, true, src->type, sizeof src->type, &x->e))) {
        if (!event_type_ok(src->type))
            fail(x, KP_ERR_INVALID, field, "must be an event type of a-z, 0-9, '_', '-', '.'");
        else if (kp_event_type_internal(src->type))
            fail(x, KP_ERR_INVALID, field,
                 "\"%s\" is raised by the server itself (birthday, tenure, annual_spend, "
                 "tier_review and expiry by the scheduler, registration by the back office): no "
                 "outside source may send it",
                 src->type);
        for (size_t k = 0; k < i; k++)
            if (src->type[0] && strcmp(p->event_sources[k].type, src->type) == 0) {
                fail(x, KP_ERR_INVALID, field, "\"%s\" is declared twice", src->type);
                break;
            }
    }
    json_t *from = json_object_get(s, "from");
    program_field_name(field, sizeof field, path, "from");
    if (!json_is_array(from) || json_array_size(from) == 0 || json_array_size(from) > 3) {
        fail(x, KP_ERR_INVALID, field,
             "is required: a non-empty array of \"till\", \"partner\", \"back_office\"");
        return;
    }
    for (size_t k = 0; k < json_array_size(from); k++) {
        json_t *f = json_array_get(from, k);
        const char *name = json_is_string(f) ? json_string_value(f) : "";
        unsigned bit = strcmp(name, "till") == 0          ? KP_FROM_TILL
                       : strcmp(name, "partner") == 0     ? KP_FROM_PARTNER
                       : strcmp(name, "back_office") == 0 ? KP_FROM_BACK_OFFICE
                                                          : 0;
        if (bit == 0) {
            fail(x, KP_ERR_INVALID, field,
                 "each source is \"till\", \"partner\" or \"back_office\"");
            break;
        }
        src->from |= bit;
    }
}

static void parse_event_sources(parse *x, json_t *list, kp_program *p)
{
    if (!json_is_array(list) || json_array_size(list) > KP_EVENT_SOURCES_MAX) {
        fail(x, KP_ERR_INVALID, "event_sources",
             "must be an array of at most %d {\"type\", \"from\"} objects", KP_EVENT_SOURCES_MAX);
        return;
    }
    p->event_sources_declared = true;
    for (size_t i = 0; i < json_array_size(list); i++) {
        parse_event_source(x, json_array_get(list, i), i, p);
        p->n_event_sources = i + 1;
    }
}

/* "till": {"clock_skew_minutes", "offline_days", "identify_by_phone"} */
static void parse_till(parse *x, json_t *t, kp_program *p)
{
    if (!json_is_object(t)) {
        fail(x, KP_ERR_INVALID, "till", "must be an object");
        return;
    }
    static const char *const keys[] = {"clock_skew_minutes", "offline_days", "identify_by_phone",
                                       "note", NULL};
    only_keys(x, t, keys, "till");
    int64_t minutes = p->till.clock_skew_seconds / 60;
    ok(x, program_get_int(t, "clock_skew_minutes", "till", false, 0, 1440, &minutes, &x->e));
    p->till.clock_skew_seconds = minutes * 60;
    ok(x, program_get_int(t, "offline_days", "till", false, 0, 90, &p->till.offline_days, &x->e));
    ok(x, program_get_bool(t, "identify_by_phone", "till", &p->till.identify_by_phone, &x->e));
}

static void parse_utc_offset(parse *x, json_t *root, kp_program *p)
{
    json_t *v = json_object_get(root, "utc_offset");
    if (v == NULL) return;
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    int h = 0, m = 0;
    bool good = strlen(s) == 6 && (s[0] == '+' || s[0] == '-') && s[3] == ':';
    for (int i = 1; good && i < 6; i++)
        if (i != 3 && (s[i] < '0' || s[i] > '9')) good = false;
    if (good) {
        h = (s[1] - '0') * 10 + (s[2] - '0');
        m = (s[4] - '0') * 10 + (s[5] - '0');
        good = h <= 14 && m < 60;
    }
    if (!good) {
        fail(x, KP_ERR_INVALID, "utc_offset",
             "must be like \"+03:00\" (the program's calendar for birthdays, years and reviews)");
        return;
    }
    p->utc_offset_minutes = (s[0] == '-' ? -1 : 1) * (h * 60 + m);
}

/* "country": the ISO 3166 code of phones typed without + (libphonenumber
 * must know it), or "" for none (every phone then starts with +). Absent:
 * the country of the currency (RUB: RU, UAH: UA, KZT: KZ, BYN: BY), else
 * KP_PHONE_REGION_DEFAULT. Call after the currency is read. */
static void parse_country(parse *x, json_t *root, kp_program *p)
{
    static const char *const by_currency[][2] = {
        {"RUB", "RU"}, {"UAH", "UA"}, {"KZT", "KZ"}, {"BYN", "BY"}};
    json_t *v = json_object_get(root, "country");
    snprintf(p->country, sizeof p->country, "%s", KP_PHONE_REGION_DEFAULT);
    if (v == NULL) {
        for (size_t i = 0; i < sizeof by_currency / sizeof by_currency[0]; i++)
            if (strcmp(p->currency, by_currency[i][0]) == 0)
                snprintf(p->country, sizeof p->country, "%s", by_currency[i][1]);
        return;
    }
    const char *c = json_is_string(v) ? json_string_value(v) : NULL;
    if (c && c[0] == '\0') {
        p->country[0] = '\0';
        return;
    }
    if (c == NULL || strlen(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' ||
        !kp_phone_region_known(c)) {
        fail(x, KP_ERR_INVALID, "country",
             "must be a two-letter ISO 3166 country code with a telephone numbering plan (\"RU\", "
             "\"UA\", \"KZ\"), or \"\" for none");
        return;
    }
    snprintf(p->country, sizeof p->country, "%s", c);
}

/* "earn": the kind of the points purchases earn and their validity. */
static void parse_earn(parse *x, json_t *earn, kp_program *p)
{
    static const char *const earn_keys[] = {"point_kind", "pending_days", "ttl_days",
                                            "ttl_months", "expires_on",   NULL};
    if (earn && !json_is_object(earn)) {
        fail(x, KP_ERR_INVALID, "earn", "must be an object");
        earn = NULL;
    }
    if (earn) {
        only_keys(x, earn, earn_keys, "earn");
        if (ok(x, get_string(earn, "point_kind", "earn", false, p->point_kind, sizeof p->point_kind,
                             &x->e)) &&
            p->point_kind[0] == '\0') {
            snprintf(p->point_kind, sizeof p->point_kind, "regular");
            fail(x, KP_ERR_INVALID, "earn.point_kind", "must not be empty");
        }
    }
    /* Earned points take their kind's validity; the earn section may
     * override any part of it for purchases (a return window as pending). */
    const kp_point_kind *earn_kind = kp_program_kind(p, p->point_kind);
    if (earn_kind) p->earn_validity = earn_kind->validity;
    if (earn) get_validity(x, earn, "earn", p, &p->earn_validity, NULL);
}

static void parse_root(parse *x, json_t *root, kp_program *p)
{
    /* "customers" is read by kp_people_policy_parse (people.h),
     * "notifications" by kp_notify_policy_parse (src/notify/notify.h). */
    static const char *const keys[] = {"name",     "currency",      "minor_per_point",
                                       "rounding", "utc_offset",    "point_kinds",
                                       "earn",     "tiers",         "rules",
                                       "script",   "description",   "customers",
                                       "till",     "event_sources", "country",
                                       "notifications", "partners", "stores",
                                       "currencies", "currency_rules", NULL};
    only_keys(x, root, keys, "");
    ok(x, get_string(root, "name", "", true, p->name, sizeof p->name, &x->e));
    snprintf(p->currency, sizeof p->currency, "RUB");
    ok(x, get_string(root, "currency", "", false, p->currency, sizeof p->currency, &x->e));
    parse_country(x, root, p);
    p->minor_per_point = 100;
    ok(x,
       program_get_int(root, "minor_per_point", "", false, 1, 1000000, &p->minor_per_point, &x->e));
    char rounding[16] = "down";
    if (ok(x, get_string(root, "rounding", "", false, rounding, sizeof rounding, &x->e))) {
        if (strcmp(rounding, "down") == 0)
            p->rounding = KP_ROUND_DOWN;
        else if (strcmp(rounding, "half_up") == 0)
            p->rounding = KP_ROUND_HALF_UP;
        else if (strcmp(rounding, "up") == 0)
            p->rounding = KP_ROUND_UP;
        else
            fail(x, KP_ERR_INVALID, "rounding",
                 "must be \"down\", \"half_up\" or \"up\", got \"%s\"", rounding);
    }
    parse_utc_offset(x, root, p);
    json_t *kinds = json_object_get(root, "point_kinds");
    /* Partners and currencies before the rules, which name them. */
    program_parse_coalition(x, root, p);
    if (kinds) parse_kinds(x, kinds, p);
    snprintf(p->point_kind, sizeof p->point_kind, "regular");
    parse_earn(x, json_object_get(root, "earn"), p);
    json_t *tiers = json_object_get(root, "tiers");
    if (tiers) parse_tiers(x, tiers, p);

    json_t *rules = json_object_get(root, "rules");
    if (!json_is_array(rules))
        fail(x, KP_ERR_INVALID, "rules", "is required: an array of rules");
    else if (json_array_size(rules) > KP_RULES_MAX)
        fail(x, KP_ERR_LIMIT, "rules", "at most %d rules are allowed, got %zu", KP_RULES_MAX,
             json_array_size(rules));
    else
        for (size_t i = 0; i < json_array_size(rules); i++) {
            parse_rule(x, json_array_get(rules, i), i, p);
            p->n_rules = i + 1;
        }
    program_check_rules_coalition(x, p);
    json_t *script = json_object_get(root, "script");
    if (script) parse_script(x, script, p);
    p->till.clock_skew_seconds = KP_TILL_SKEW_SECONDS_DEFAULT;
    p->till.offline_days = KP_TILL_OFFLINE_DAYS_DEFAULT;
    json_t *till = json_object_get(root, "till");
    if (till) parse_till(x, till, p);
    json_t *sources = json_object_get(root, "event_sources");
    if (sources) parse_event_sources(x, sources, p);
}

kp_err kp_program_parse_each(const char *text, size_t len, kp_program *p,
                             kp_program_error_fn report, void *ctx, kp_error *e)
{
    memset(p, 0, sizeof *p);
    kp_error first = {0};
    parse x = {.first = &first, .report = report, .report_ctx = ctx};
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        fail(&x, KP_ERR_INVALID, "", "not valid JSON at line %d column %d: %s", jerr.line,
             jerr.column, jerr.text);
    else if (!json_is_object(root))
        fail(&x, KP_ERR_INVALID, "", "a program file is a JSON object");
    else
        parse_root(&x, root, p);
    json_decref(root);
    if (x.n_errors == 0) return KP_OK;
    if (e) *e = first;
    return first.code;
}

kp_err kp_program_parse(const char *text, size_t len, kp_program *p, kp_error *e)
{
    kp_err err = kp_program_parse_each(text, len, p, NULL, NULL, e);
    if (err != KP_OK) memset(p, 0, sizeof *p);
    return err;
}
