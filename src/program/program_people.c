/*
 * program_people.c: the optional "customers" section of a program file
 * (docs/rules.md, "Customers"): what an unregistered card gets, transfers of
 * points between customers and their limits, the consent text version, and
 * the custom attributes a customer record may carry with their types.
 * Unknown fields are errors, as in the rest of the program file.
 */
#include <kopilka/people.h>

#include "program/program_fields.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

void kp_people_policy_default(kp_people_policy *out)
{
    memset(out, 0, sizeof *out);
    out->unregistered.earn = true;
    out->unregistered.burn = true;
}

/* Attribute names are identifiers: they become JSON keys and CSV column names. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= KP_ATTR_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

static kp_err parse_attribute(json_t *a, size_t index, kp_people_policy *p, kp_error *e)
{
    char path[64];
    snprintf(path, sizeof path, "customers.attributes[%zu]", index);
    if (!json_is_object(a)) return kp_error_set(e, KP_ERR_INVALID, path, "must be an object");
    static const char *const keys[] = {"name",       "type",       "required", "min", "max",
                                       "min_length", "max_length", "note",     NULL};
    kp_err err = program_only_keys(a, keys, path, e);
    if (err) return err;
    kp_attr_decl *d = &p->attributes[index];
    char field[96];
    json_t *name = json_object_get(a, "name");
    snprintf(field, sizeof field, "%s.name", path);
    if (!json_is_string(name) || !name_ok(json_string_value(name)))
        return kp_error_set(e, KP_ERR_INVALID, field,
                            "is required: lowercase letters, digits and _, up to %d bytes",
                            KP_ATTR_NAME_MAX - 1);
    snprintf(d->name, sizeof d->name, "%s", json_string_value(name));
    for (size_t i = 0; i < index; i++)
        if (strcmp(p->attributes[i].name, d->name) == 0)
            return kp_error_set(e, KP_ERR_INVALID, field, "\"%s\" is declared twice", d->name);
    json_t *type = json_object_get(a, "type");
    snprintf(field, sizeof field, "%s.type", path);
    const char *t = json_is_string(type) ? json_string_value(type) : "";
    if (strcmp(t, "string") == 0)
        d->type = KP_ATTR_STRING;
    else if (strcmp(t, "integer") == 0)
        d->type = KP_ATTR_INTEGER;
    else if (strcmp(t, "date") == 0)
        d->type = KP_ATTR_DATE;
    else if (strcmp(t, "boolean") == 0)
        d->type = KP_ATTR_BOOLEAN;
    else
        return kp_error_set(e, KP_ERR_INVALID, field,
                            "is required: one of string, integer, date, boolean");
    if ((err = program_get_bool(a, "required", path, &d->required, e))) return err;
    if (d->type == KP_ATTR_INTEGER) {
        d->min = INT64_MIN / 2;
        d->max = INT64_MAX / 2;
        if ((err =
                 program_get_int(a, "min", path, false, INT64_MIN / 2, INT64_MAX / 2, &d->min, e)))
            return err;
        if ((err =
                 program_get_int(a, "max", path, false, INT64_MIN / 2, INT64_MAX / 2, &d->max, e)))
            return err;
    } else if (d->type == KP_ATTR_STRING) {
        d->min = 0;
        d->max = KP_STR_MAX - 1;
        if ((err = program_get_int(a, "min_length", path, false, 0, KP_STR_MAX - 1, &d->min, e)))
            return err;
        if ((err = program_get_int(a, "max_length", path, false, 1, KP_STR_MAX - 1, &d->max, e)))
            return err;
    } else if (json_object_get(a, "min") || json_object_get(a, "max") ||
               json_object_get(a, "min_length") || json_object_get(a, "max_length")) {
        return kp_error_set(e, KP_ERR_INVALID, path, "a %s attribute takes no bounds", t);
    }
    if (d->min > d->max)
        return kp_error_set(e, KP_ERR_INVALID, path, "the lower bound is above the upper one");
    return KP_OK;
}

static kp_err parse_section(json_t *c, kp_people_policy *p, kp_error *e)
{
    if (!json_is_object(c))
        return kp_error_set(e, KP_ERR_INVALID, "customers", "must be an object");
    static const char *const keys[] = {"unregistered", "transfers", "consent_version",
                                       "attributes",   "note",      NULL};
    kp_err err = program_only_keys(c, keys, "customers", e);
    if (err) return err;

    json_t *u = json_object_get(c, "unregistered");
    if (u) {
        if (!json_is_object(u))
            return kp_error_set(e, KP_ERR_INVALID, "customers.unregistered", "must be an object");
        static const char *const ukeys[] = {"earn", "burn", "note", NULL};
        if ((err = program_only_keys(u, ukeys, "customers.unregistered", e))) return err;
        if ((err = program_get_bool(u, "earn", "customers.unregistered", &p->unregistered.earn, e)))
            return err;
        if ((err = program_get_bool(u, "burn", "customers.unregistered", &p->unregistered.burn, e)))
            return err;
    }

    json_t *t = json_object_get(c, "transfers");
    if (t) {
        const char *path = "customers.transfers";
        if (!json_is_object(t)) return kp_error_set(e, KP_ERR_INVALID, path, "must be an object");
        static const char *const tkeys[] = {"enabled", "max_points", "daily_max_points",
                                            "kinds",   "note",       NULL};
        if ((err = program_only_keys(t, tkeys, path, e))) return err;
        p->transfers.enabled = true;
        if ((err = program_get_bool(t, "enabled", path, &p->transfers.enabled, e))) return err;
        if ((err = program_get_int(t, "max_points", path, false, 0, 1000000000000LL,
                                   &p->transfers.max_points, e)))
            return err;
        if ((err = program_get_int(t, "daily_max_points", path, false, 0, 1000000000000LL,
                                   &p->transfers.daily_max_points, e)))
            return err;
        json_t *kinds = json_object_get(t, "kinds");
        if (kinds) {
            if (!json_is_array(kinds) || json_array_size(kinds) > KP_TRANSFER_KINDS_MAX)
                return kp_error_set(e, KP_ERR_INVALID, "customers.transfers.kinds",
                                    "must be an array of at most %d point kinds",
                                    KP_TRANSFER_KINDS_MAX);
            size_t i;
            json_t *k;
            json_array_foreach(kinds, i, k)
            {
                if (!json_is_string(k) || json_string_length(k) == 0 ||
                    json_string_length(k) >= sizeof p->transfers.kinds[0]) {
                    char field[64];
                    snprintf(field, sizeof field, "customers.transfers.kinds[%zu]", i);
                    return kp_error_set(e, KP_ERR_INVALID, field,
                                        "must be a point kind of 1 to 15 bytes");
                }
                snprintf(p->transfers.kinds[i], sizeof p->transfers.kinds[i], "%s",
                         json_string_value(k));
            }
            p->transfers.n_kinds = json_array_size(kinds);
        }
    }

    json_t *cv = json_object_get(c, "consent_version");
    if (cv) {
        if (!json_is_string(cv) || json_string_length(cv) >= sizeof p->consent_version)
            return kp_error_set(e, KP_ERR_INVALID, "customers.consent_version",
                                "must be a string of at most %zu bytes",
                                sizeof p->consent_version - 1);
        snprintf(p->consent_version, sizeof p->consent_version, "%s", json_string_value(cv));
    }

    json_t *attrs = json_object_get(c, "attributes");
    if (attrs) {
        if (!json_is_array(attrs) || json_array_size(attrs) > KP_ATTRS_MAX)
            return kp_error_set(e, KP_ERR_INVALID, "customers.attributes",
                                "must be an array of at most %d attributes", KP_ATTRS_MAX);
        size_t i;
        json_t *a;
        json_array_foreach(attrs, i, a)
        {
            if ((err = parse_attribute(a, i, p, e))) return err;
            p->n_attributes = i + 1;
        }
    }
    return KP_OK;
}

kp_err kp_people_policy_parse(const char *json, size_t len, kp_people_policy *out, kp_error *e)
{
    kp_people_policy_default(out);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return kp_error_set(e, KP_ERR_INVALID, "", "not valid JSON at line %d: %s", jerr.line,
                            jerr.text);
    kp_err err = KP_OK;
    json_t *c = json_is_object(root) ? json_object_get(root, "customers") : NULL;
    if (c) err = parse_section(c, out, e);
    json_decref(root);
    if (err) kp_people_policy_default(out);
    return err;
}
