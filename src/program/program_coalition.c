/*
 * program_coalition.c: the coalition parts of a program file
 * (docs/coalition.md): "partners" with their store patterns and terms,
 * "stores" (the operator's stores' currencies), "currencies" accepted
 * besides the program's own, "currency_rules", and the "partner",
 * "at_partner" and "currency" of a rule. Errors go through the program's
 * one parse, so a file's every error is named in one pass.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <kopilka/coalition.h>
#include <kopilka/program.h>

#include "program/program_fields.h"

static bool code_ok(const char *s)
{
    if (s[0] == '\0') return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            return false;
    return true;
}

static bool currency_code_ok(const char *s)
{
    if (strlen(s) != 3) return false;
    for (const char *c = s; *c; c++)
        if (*c < 'A' || *c > 'Z') return false;
    return true;
}

/* True when the program accepts `code`: its own currency or one listed. */
static bool currency_accepted(const kp_program *p, const char *code)
{
    return kp_program_minor_per_point(p, code) > 0;
}

/* A currency field: three capital letters the program accepts. */
static void check_currency(parse *x, const kp_program *p, const char *field, const char *code)
{
    if (!currency_code_ok(code))
        program_fail(x, KP_ERR_INVALID, field, "must be an ISO 4217 code like \"KZT\", got \"%s\"",
                     code);
    else if (!currency_accepted(p, code))
        program_fail(x, KP_ERR_INVALID, field,
                     "\"%s\" is not accepted by the program: add it to \"currencies\" (the "
                     "program's own is \"%s\")",
                     code, p->currency);
}

/* An optional currency field `key` of obj into out[4], checked. */
static void get_currency(parse *x, json_t *obj, const char *key, const char *path,
                         const kp_program *p, char out[4])
{
    char code[8] = "", field[128];
    if (!program_ok(x, program_get_string(obj, key, path, false, code, sizeof code,
                                          program_parse_error(x))) ||
        code[0] == '\0')
        return;
    program_field_name(field, sizeof field, path, key);
    check_currency(x, p, field, code);
    if (currency_code_ok(code)) memcpy(out, code, 4);
}

/* A list of store patterns: "WASH-*", or {"match": "KZ-*", "currency": "KZT"}. */
static void parse_patterns(parse *x, json_t *list, const char *path, const kp_program *p,
                           kp_store_pattern *out, size_t *n)
{
    if (!json_is_array(list)) {
        program_fail(x, KP_ERR_INVALID, path, "must be an array of store patterns like \"WASH-*\"");
        return;
    }
    if (json_array_size(list) > KP_STORE_PATTERNS_MAX) {
        program_fail(x, KP_ERR_LIMIT, path, "at most %d store patterns are allowed, got %zu",
                     KP_STORE_PATTERNS_MAX, json_array_size(list));
        return;
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        char ipath[96];
        snprintf(ipath, sizeof ipath, "%s[%zu]", path, i);
        json_t *v = json_array_get(list, i);
        kp_store_pattern *sp = &out[*n];
        memset(sp, 0, sizeof *sp);
        if (json_is_string(v)) {
            if (json_string_length(v) >= sizeof sp->match) {
                program_fail(x, KP_ERR_INVALID, ipath, "is longer than %zu bytes",
                             sizeof sp->match - 1);
                continue;
            }
            snprintf(sp->match, sizeof sp->match, "%s", json_string_value(v));
        } else if (json_is_object(v)) {
            static const char *const keys[] = {"match", "currency", NULL};
            program_keys(x, v, keys, ipath);
            if (!program_ok(x, program_get_string(v, "match", ipath, true, sp->match,
                                                  sizeof sp->match, program_parse_error(x))))
                continue;
            get_currency(x, v, "currency", ipath, p, sp->currency);
        } else {
            program_fail(x, KP_ERR_INVALID, ipath,
                         "must be a store pattern like \"WASH-*\" or {\"match\", \"currency\"}");
            continue;
        }
        const char *star = strchr(sp->match, '*');
        if (sp->match[0] == '\0' || (star && star[1] != '\0')) {
            program_fail(x, KP_ERR_INVALID, ipath,
                         "a store code, or a prefix ending in one '*' (\"WASH-*\"), got \"%s\"",
                         sp->match);
            continue;
        }
        (*n)++;
    }
}

static void parse_partner(parse *x, json_t *o, size_t index, kp_program *p)
{
    char path[32], field[64];
    snprintf(path, sizeof path, "partners[%zu]", index);
    if (!json_is_object(o)) {
        program_fail(x, KP_ERR_INVALID, path, "must be an object");
        return;
    }
    static const char *const keys[] = {"code", "name", "stores", "fees", "breakage_to_operator",
                                       "bank", "note", NULL};
    program_keys(x, o, keys, path);
    kp_partner *pt = &p->partners[p->n_partners];
    memset(pt, 0, sizeof *pt);
    if (program_ok(x, program_get_string(o, "code", path, true, pt->code, sizeof pt->code,
                                         program_parse_error(x)))) {
        program_field_name(field, sizeof field, path, "code");
        if (!code_ok(pt->code))
            program_fail(x, KP_ERR_INVALID, field,
                         "must be 1 to %d of a-z, 0-9, '_' and '-', got \"%s\"",
                         KP_PARTNER_CODE_MAX - 1, pt->code);
        for (size_t i = 0; i < p->n_partners; i++)
            if (strcmp(p->partners[i].code, pt->code) == 0)
                program_fail(x, KP_ERR_INVALID, field, "\"%s\" is already the code of partners[%zu]",
                             pt->code, i);
    }
    program_ok(x, program_get_string(o, "name", path, true, pt->name, sizeof pt->name,
                                     program_parse_error(x)));
    json_t *stores = json_object_get(o, "stores");
    if (stores) {
        program_field_name(field, sizeof field, path, "stores");
        parse_patterns(x, stores, field, p, pt->stores, &pt->n_stores);
    }
    json_t *fees = json_object_get(o, "fees");
    if (fees) {
        program_field_name(field, sizeof field, path, "fees");
        if (!json_is_object(fees)) {
            program_fail(x, KP_ERR_INVALID, field,
                         "must be {\"per_operation\": minor units, \"per_point_percent\": \"2\"}");
        } else {
            static const char *const fkeys[] = {"per_operation", "per_point_percent", NULL};
            program_keys(x, fees, fkeys, field);
            program_ok(x, program_get_int(fees, "per_operation", field, false, 0, KP_AMOUNT_MAX,
                                          &pt->fee_per_operation_minor, program_parse_error(x)));
            program_ok(x, program_get_percent(fees, "per_point_percent", field, false, 10000,
                                              &pt->fee_per_point_bp, program_parse_error(x)));
        }
    }
    program_ok(x, program_get_percent(o, "breakage_to_operator", path, false, 10000,
                                      &pt->breakage_to_operator_bp, program_parse_error(x)));
    json_t *bank = json_object_get(o, "bank");
    if (bank) {
        program_field_name(field, sizeof field, path, "bank");
        if (!json_is_object(bank)) {
            program_fail(x, KP_ERR_INVALID, field,
                         "must be {\"cashback_percent\": \"1\", \"point_kind\": \"regular\"}");
        } else {
            static const char *const bkeys[] = {"cashback_percent", "point_kind", NULL};
            program_keys(x, bank, bkeys, field);
            pt->bank = true;
            program_ok(x, program_get_percent(bank, "cashback_percent", field, true, 10000,
                                              &pt->cashback_bp, program_parse_error(x)));
            program_ok(x, program_get_string(bank, "point_kind", field, false, pt->cashback_kind,
                                             sizeof pt->cashback_kind, program_parse_error(x)));
        }
    }
    p->n_partners++;
}

static void parse_currencies(parse *x, json_t *list, kp_program *p)
{
    if (!json_is_array(list)) {
        program_fail(x, KP_ERR_INVALID, "currencies",
                     "must be an array like [{\"code\": \"KZT\", \"minor_per_point\": 500}]");
        return;
    }
    if (json_array_size(list) > KP_CURRENCIES_MAX) {
        program_fail(x, KP_ERR_LIMIT, "currencies", "at most %d currencies are allowed, got %zu",
                     KP_CURRENCIES_MAX, json_array_size(list));
        return;
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        char path[48], field[64];
        snprintf(path, sizeof path, "currencies[%zu]", i);
        json_t *o = json_array_get(list, i);
        if (!json_is_object(o)) {
            program_fail(x, KP_ERR_INVALID, path, "must be an object");
            continue;
        }
        static const char *const keys[] = {"code", "minor_per_point", NULL};
        program_keys(x, o, keys, path);
        kp_currency_def *c = &p->currencies[p->n_currencies];
        memset(c, 0, sizeof *c);
        char code[8] = "";
        program_field_name(field, sizeof field, path, "code");
        if (!program_ok(x, program_get_string(o, "code", path, true, code, sizeof code,
                                              program_parse_error(x))))
            continue;
        if (!currency_code_ok(code)) {
            program_fail(x, KP_ERR_INVALID, field, "must be an ISO 4217 code like \"KZT\", got \"%s\"",
                         code);
            continue;
        }
        memcpy(c->code, code, 4);
        if (currency_accepted(p, c->code)) {
            program_fail(x, KP_ERR_INVALID, field, "\"%s\" is listed twice (or is the program's own)",
                         c->code);
            continue;
        }
        if (!program_ok(x, program_get_int(o, "minor_per_point", path, true, 1, 1000000,
                                           &c->minor_per_point, program_parse_error(x))))
            continue;
        p->n_currencies++;
    }
}

void program_parse_coalition(parse *x, json_t *root, kp_program *p)
{
    json_t *currencies = json_object_get(root, "currencies");
    if (currencies) parse_currencies(x, currencies, p);
    char mode[16] = "shared";
    if (program_ok(x, program_get_string(root, "currency_rules", "", false, mode, sizeof mode,
                                         program_parse_error(x)))) {
        if (strcmp(mode, "separate") == 0)
            p->rules_per_currency = true;
        else if (strcmp(mode, "shared") != 0)
            program_fail(x, KP_ERR_INVALID, "currency_rules",
                         "must be \"shared\" (one set of rules) or \"separate\" (every rule names "
                         "its currency), got \"%s\"",
                         mode);
    }
    json_t *stores = json_object_get(root, "stores");
    if (stores) {
        parse_patterns(x, stores, "stores", p, p->store_currencies, &p->n_store_currencies);
        for (size_t i = 0; i < p->n_store_currencies; i++)
            if (p->store_currencies[i].currency[0] == '\0') {
                char field[64];
                snprintf(field, sizeof field, "stores[%zu].currency", i);
                program_fail(x, KP_ERR_INVALID, field,
                             "is required: the program's \"stores\" say their receipts' currency");
            }
    }
    json_t *partners = json_object_get(root, "partners");
    if (partners == NULL) return;
    if (!json_is_array(partners)) {
        program_fail(x, KP_ERR_INVALID, "partners", "must be an array of partners");
        return;
    }
    if (json_array_size(partners) > KP_PARTNERS_MAX) {
        program_fail(x, KP_ERR_LIMIT, "partners", "at most %d partners are allowed, got %zu",
                     KP_PARTNERS_MAX, json_array_size(partners));
        return;
    }
    for (size_t i = 0; i < json_array_size(partners); i++)
        parse_partner(x, json_array_get(partners, i), i, p);
}

void program_parse_rule_coalition(parse *x, json_t *r, const char *path, kp_program *p,
                                  kp_rule *rule)
{
    char field[64];
    if (program_ok(x, program_get_string(r, "partner", path, false, rule->partner,
                                         sizeof rule->partner, program_parse_error(x))) &&
        rule->partner[0] && kp_program_partner(p, rule->partner) == NULL) {
        program_field_name(field, sizeof field, path, "partner");
        program_fail(x, KP_ERR_INVALID, field, "no partner has the code \"%s\" (see \"partners\")",
                     rule->partner);
    }
    if (program_ok(x, program_get_string(r, "at_partner", path, false, rule->at_partner,
                                         sizeof rule->at_partner, program_parse_error(x))) &&
        rule->at_partner[0]) {
        program_field_name(field, sizeof field, path, "at_partner");
        if (kp_program_partner(p, rule->at_partner) == NULL)
            program_fail(x, KP_ERR_INVALID, field,
                         "no partner has the code \"%s\" (see \"partners\")", rule->at_partner);
        else if (rule->partner[0] == '\0')
            program_fail(x, KP_ERR_INVALID, field,
                         "needs \"partner\": the partner that pays for the promotion at "
                         "\"%s\"'s stores",
                         rule->at_partner);
        else if (strcmp(rule->partner, rule->at_partner) == 0)
            program_fail(x, KP_ERR_INVALID, field,
                         "is the rule's own partner: leave it out (a partner's rule applies at "
                         "its own stores)");
    }
    get_currency(x, r, "currency", path, p, rule->currency);
}

void program_check_rules_coalition(parse *x, kp_program *p)
{
    for (size_t i = 0; i < p->n_partners; i++) {
        kp_partner *pt = &p->partners[i];
        if (!pt->bank) continue;
        if (pt->cashback_kind[0] == '\0')
            snprintf(pt->cashback_kind, sizeof pt->cashback_kind, "%s", p->point_kind);
        else if (kp_program_kind(p, pt->cashback_kind) == NULL) {
            char field[64];
            snprintf(field, sizeof field, "partners[%zu].bank.point_kind", i);
            program_fail(x, KP_ERR_INVALID, field, "no point kind is named \"%s\"",
                         pt->cashback_kind);
        }
    }
    if (!p->rules_per_currency) return;
    for (size_t i = 0; i < p->n_rules; i++) {
        const kp_rule *rule = &p->rules[i];
        if (rule->kind == KP_RULE_GRANT || rule->currency[0]) continue;
        char field[64];
        snprintf(field, sizeof field, "rules[%zu].currency", i);
        program_fail(x, KP_ERR_INVALID, field,
                     "is required: \"currency_rules\" is \"separate\", so every rule but a grant "
                     "names the currency it applies to");
    }
}
