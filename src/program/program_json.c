/*
 * program_json.c: reads a program file (JSON, see docs/rules.md) into a
 * kp_program, validating every field. Unknown fields are errors, so a typo in
 * a rule is caught on load instead of silently changing the program.
 */
#include <kopilka/program.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

const char *kp_rule_kind_name(kp_rule_kind kind)
{
    switch (kind) {
    case KP_RULE_EARN_PERCENT: return "earn_percent";
    case KP_RULE_FIRST_PURCHASE_MIN: return "first_purchase_min";
    case KP_RULE_BURN_LIMIT: return "burn_limit";
    }
    return "unknown";
}

static kp_err check_keys(json_t *obj, const char *const *allowed, const char *path, kp_error *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(key, allowed[i]) == 0) ok = true;
        if (!ok) {
            char field[64], list[200] = "";
            snprintf(field, sizeof field, "%s%s%s", path, path[0] ? "." : "", key);
            for (size_t i = 0; allowed[i]; i++) {
                strncat(list, allowed[i], sizeof list - strlen(list) - 1);
                if (allowed[i + 1]) strncat(list, ", ", sizeof list - strlen(list) - 1);
            }
            return kp_error_set(e, KP_ERR_INVALID, field, "unknown field; allowed: %s", list);
        }
    }
    return KP_OK;
}

static kp_err get_string(json_t *obj, const char *key, const char *path, bool required,
                         char *out, size_t out_size, kp_error *e)
{
    char field[64];
    snprintf(field, sizeof field, "%s%s%s", path, path[0] ? "." : "", key);
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

static kp_err get_int(json_t *obj, const char *key, const char *path, bool required,
                      int64_t min, int64_t max, int64_t *out, kp_error *e)
{
    char field[64];
    snprintf(field, sizeof field, "%s%s%s", path, path[0] ? "." : "", key);
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

/* "percent": 12 or "percent": "12.5"; never a JSON real (binary floating point). */
static kp_err get_percent(json_t *obj, const char *path, int32_t max_bp, int32_t *bp, kp_error *e)
{
    char field[64];
    snprintf(field, sizeof field, "%s.percent", path);
    json_t *v = json_object_get(obj, "percent");
    if (v == NULL) return kp_error_set(e, KP_ERR_INVALID, field, "is required");
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

static kp_err parse_rule(json_t *r, size_t index, kp_program *p, kp_error *e)
{
    char path[32];
    snprintf(path, sizeof path, "rules[%zu]", index);
    if (!json_is_object(r)) return kp_error_set(e, KP_ERR_INVALID, path, "must be an object");
    kp_rule *rule = &p->rules[index];
    char kind[32] = "";
    kp_err err;
    if ((err = get_string(r, "id", path, true, rule->id, sizeof rule->id, e))) return err;
    if (rule->id[0] == '\0') {
        char field[48];
        snprintf(field, sizeof field, "%s.id", path);
        return kp_error_set(e, KP_ERR_INVALID, field, "must not be empty");
    }
    for (size_t i = 0; i < index; i++)
        if (strcmp(p->rules[i].id, rule->id) == 0) {
            char field[48];
            snprintf(field, sizeof field, "%s.id", path);
            return kp_error_set(e, KP_ERR_INVALID, field, "\"%s\" is already the id of rules[%zu]",
                                rule->id, i);
        }
    if ((err = get_string(r, "kind", path, true, kind, sizeof kind, e))) return err;
    if ((err = get_string(r, "category", path, false, rule->category, sizeof rule->category, e)))
        return err;
    if (strcmp(kind, "earn_percent") == 0) {
        static const char *const keys[] = {"id", "kind", "category", "percent", "note", NULL};
        rule->kind = KP_RULE_EARN_PERCENT;
        if ((err = check_keys(r, keys, path, e))) return err;
        return get_percent(r, path, 10000 * 100, &rule->rate_bp, e);
    }
    if (strcmp(kind, "burn_limit") == 0) {
        static const char *const keys[] = {"id", "kind", "category", "percent", "note", NULL};
        rule->kind = KP_RULE_BURN_LIMIT;
        if ((err = check_keys(r, keys, path, e))) return err;
        return get_percent(r, path, 10000, &rule->rate_bp, e);
    }
    if (strcmp(kind, "first_purchase_min") == 0) {
        static const char *const keys[] = {"id", "kind", "points", "note", NULL};
        rule->kind = KP_RULE_FIRST_PURCHASE_MIN;
        if ((err = check_keys(r, keys, path, e))) return err;
        return get_int(r, "points", path, true, 1, 1000000000, &rule->points, e);
    }
    char field[48];
    snprintf(field, sizeof field, "%s.kind", path);
    return kp_error_set(e, KP_ERR_INVALID, field,
                        "unknown rule kind \"%s\"; allowed: earn_percent, burn_limit, "
                        "first_purchase_min",
                        kind);
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
    static const char *const keys[] = {"name", "currency", "minor_per_point", "rounding",
                                       "earn", "rules", "description", NULL};
    if ((err = check_keys(root, keys, "", e))) goto out;
    if ((err = get_string(root, "name", "", true, p->name, sizeof p->name, e))) goto out;
    snprintf(p->currency, sizeof p->currency, "RUB");
    if ((err = get_string(root, "currency", "", false, p->currency, sizeof p->currency, e)))
        goto out;
    p->minor_per_point = 100;
    if ((err = get_int(root, "minor_per_point", "", false, 1, 1000000, &p->minor_per_point, e)))
        goto out;
    char rounding[16] = "down";
    if ((err = get_string(root, "rounding", "", false, rounding, sizeof rounding, e))) goto out;
    if (strcmp(rounding, "down") == 0) p->rounding = KP_ROUND_DOWN;
    else if (strcmp(rounding, "half_up") == 0) p->rounding = KP_ROUND_HALF_UP;
    else if (strcmp(rounding, "up") == 0) p->rounding = KP_ROUND_UP;
    else {
        err = kp_error_set(e, KP_ERR_INVALID, "rounding",
                           "must be \"down\", \"half_up\" or \"up\", got \"%s\"", rounding);
        goto out;
    }
    snprintf(p->point_kind, sizeof p->point_kind, "regular");
    json_t *earn = json_object_get(root, "earn");
    if (earn) {
        static const char *const earn_keys[] = {"point_kind", "pending_days", "ttl_days", NULL};
        if (!json_is_object(earn)) {
            err = kp_error_set(e, KP_ERR_INVALID, "earn", "must be an object");
            goto out;
        }
        if ((err = check_keys(earn, earn_keys, "earn", e))) goto out;
        if ((err = get_string(earn, "point_kind", "earn", false, p->point_kind,
                              sizeof p->point_kind, e)))
            goto out;
        if ((err = get_int(earn, "pending_days", "earn", false, 0, 3650, &p->earn_pending_days, e)))
            goto out;
        if ((err = get_int(earn, "ttl_days", "earn", false, 0, 36500, &p->earn_ttl_days, e)))
            goto out;
    }
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
out:
    json_decref(root);
    if (err != KP_OK) memset(p, 0, sizeof *p);
    return err;
}
