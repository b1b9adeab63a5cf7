/*
 * office.c: what every back-office operation shares: the actor and its
 * role check, the audit entry, and the program's "customers" section,
 * parsed once per program version.
 */
#include "people_int.h"
#include "program/program_section.h"
#include <kopilka/card_number.h>

#include <kopilka/clock.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the "customers" section, parsed once per program version
 * (program_section.h) */

static kp_err parse_any(const char *json, size_t len, void *out, kp_error *e)
{
    return kp_people_policy_parse(json, len, out, e);
}

static void defaults_any(void *out)
{
    kp_people_policy_default(out);
}

static program_section_cache policies =
    PROGRAM_SECTION_CACHE(kp_people_policy, parse_any, defaults_any);

const kp_people_policy *kp_people_policy_of(kp_store *st, const kp_program *program)
{
    return program_section_of(&policies, st, program);
}

void kp_office_init(kp_office *o, kp_store *st, const kp_pii *pii, const kp_program *program,
                    kp_time now, const kp_actor *actor, kp_scratch *sc)
{
    memset(o, 0, sizeof *o);
    o->st = st;
    o->pii = pii;
    o->program = program;
    o->policy = kp_people_policy_of(st, program);
    o->now = now;
    if (actor)
        o->actor = *actor;
    else
        snprintf(o->actor.name, sizeof o->actor.name, "cli");
    o->sc = sc;
}

/* What a customer may do on their own account (the cabinet, docs/api.md
 * "The customer's own API"); the operations check the "own". */
static bool self_may(kp_permission perm)
{
    switch (perm) {
    case KP_PERM_CUSTOMER_READ:
    case KP_PERM_CUSTOMER_EDIT:
    case KP_PERM_CUSTOMER_ERASE:
    case KP_PERM_CARD_READ:
    case KP_PERM_CARD_MANAGE:
    case KP_PERM_FAMILY:
    case KP_PERM_TRANSFER: return true;
    default: return false;
    }
}

kp_err kp_office_require(const kp_office *o, kp_permission perm, kp_error *e)
{
    bool ok;
    const char *who = "a terminal";
    switch (o->actor.kind) {
    case KP_ACTOR_CLI: ok = true; break;
    case KP_ACTOR_TERMINAL:
        ok = perm == KP_PERM_CUSTOMER_REGISTER || perm == KP_PERM_CARD_READ;
        break;
    case KP_ACTOR_STAFF:
        ok = kp_role_may(o->actor.role, perm);
        who = kp_role_name(o->actor.role);
        break;
    case KP_ACTOR_CUSTOMER:
        ok = (o->actor.customer_id > 0 && self_may(perm)) ||
             (o->actor.signup && perm == KP_PERM_CUSTOMER_REGISTER);
        who = "a customer";
        break;
    default: ok = false; break;
    }
    if (ok) return KP_OK;
    return kp_error_set(e, KP_ERR_FORBIDDEN, "", "%s may not do this (%s is needed)", who,
                        kp_permission_name(perm));
}

kp_err kp_office_require_back_office(const kp_office *o, kp_permission perm, kp_error *e)
{
    kp_err err = kp_office_require(o, perm, e);
    if (err == KP_OK && o->actor.kind == KP_ACTOR_CUSTOMER)
        err = kp_error_set(e, KP_ERR_FORBIDDEN, "",
                           "this is the back office's, not a customer's own (%s is needed)",
                           kp_permission_name(perm));
    return err;
}

bool kp_office_is_self(const kp_office *o)
{
    return o->actor.kind == KP_ACTOR_CUSTOMER && o->actor.customer_id > 0;
}

kp_err kp_office_require_customer(const kp_office *o, kp_permission perm, int64_t customer_id,
                                  kp_error *e)
{
    kp_err err = kp_office_require(o, perm, e);
    if (err == KP_OK && o->actor.kind == KP_ACTOR_CUSTOMER && o->actor.customer_id != customer_id)
        err = kp_error_set(e, KP_ERR_NOT_FOUND, "customer", "no customer %lld",
                           (long long)customer_id);
    return err;
}

void kp_office_act_as_customer(kp_office *o, int64_t customer_id)
{
    memset(&o->actor, 0, sizeof o->actor);
    o->actor.kind = KP_ACTOR_CUSTOMER;
    o->actor.customer_id = customer_id;
    snprintf(o->actor.name, sizeof o->actor.name, "customer:%lld", (long long)customer_id);
}

kp_err kp_office_audit(kp_office *o, const char *action, const char *target, const char *fmt, ...)
{
    kp_audit_entry a;
    memset(&a, 0, sizeof a);
    a.at = o->now;
    snprintf(a.actor, sizeof a.actor, "%s", o->actor.name);
    if (o->actor.kind == KP_ACTOR_STAFF)
        snprintf(a.role, sizeof a.role, "%s", kp_role_name(o->actor.role));
    snprintf(a.action, sizeof a.action, "%s", action);
    snprintf(a.target, sizeof a.target, "%s", target);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a.detail, sizeof a.detail, fmt, ap);
    va_end(ap);
    a.mac_key = o->pii ? kp_pii_audit_key(o->pii) : NULL;
    return o->st->ops->people->audit_append(o->st, &a);
}

/* ---- request bodies and answers (people_int.h) */

json_t *people_json_load(const char *body, size_t len, kp_error *e)
{
    if (len == 0) return json_object();
    return kp_json_body_load(body, len, 0, e);
}

kp_err people_json_keys(json_t *obj, const char *const *allowed, kp_error *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++) ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            char field[64];
            snprintf(field, sizeof field, "%.60s", key);
            return kp_error_set(e, KP_ERR_INVALID, field, "unknown field");
        }
    }
    return KP_OK;
}

kp_err people_json_str(json_t *obj, const char *key, bool required, char *out, size_t max,
                       kp_error *e)
{
    json_t *v = json_object_get(obj, key);
    out[0] = '\0';
    if (v == NULL || json_is_null(v)) {
        if (required) return kp_error_set(e, KP_ERR_INVALID, key, "is required (a string)");
        return KP_OK;
    }
    if (!json_is_string(v)) return kp_error_set(e, KP_ERR_INVALID, key, "must be a string");
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n > max)
        return kp_error_set(e, KP_ERR_INVALID, key, "must be at most %zu bytes, got %zu", max, n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return kp_error_set(e, KP_ERR_INVALID, key, "must not contain control characters");
    if (required && n == 0) return kp_error_set(e, KP_ERR_INVALID, key, "must not be empty");
    memcpy(out, s, n + 1);
    return KP_OK;
}

kp_err people_json_int(json_t *obj, const char *key, bool required, int64_t min, int64_t max,
                       int64_t *out, kp_error *e)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        if (required)
            return kp_error_set(e, KP_ERR_INVALID, key,
                                "is required (an integer from %lld to %lld)", (long long)min,
                                (long long)max);
        return KP_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return kp_error_set(e, KP_ERR_INVALID, key, "must be an integer from %lld to %lld",
                            (long long)min, (long long)max);
    *out = json_integer_value(v);
    return KP_OK;
}

kp_err people_json_bool(json_t *obj, const char *key, bool *out, bool *present, kp_error *e)
{
    json_t *v = json_object_get(obj, key);
    if (present) *present = false;
    if (v == NULL || json_is_null(v)) return KP_OK;
    if (!json_is_boolean(v)) return kp_error_set(e, KP_ERR_INVALID, key, "must be true or false");
    *out = json_is_true(v);
    if (present) *present = true;
    return KP_OK;
}

void people_field_error(kp_field_errors *fe, kp_error *e, kp_err code, const char *field,
                        const char *message)
{
    if (e && e->code == KP_OK) kp_error_set(e, code, field, "%s", message);
    if (fe == NULL) return;
    if (fe->n == KP_FIELD_ERRORS_MAX) {
        fe->more++;
        return;
    }
    snprintf(fe->items[fe->n].field, sizeof fe->items[0].field, "%s", field);
    snprintf(fe->items[fe->n].message, sizeof fe->items[0].message, "%s", message);
    fe->n++;
}

kp_err people_storage(kp_store *st, kp_err err, kp_error *e)
{
    /* A limit of the store (an account with too many open lots) is no
     * failure of the storage: its own sentence says what is wrong. */
    return kp_error_set(e, err, "", "%s%s",
                        err == KP_ERR_LIMIT ? "" : "storage failed: ", st->last_error);
}

kp_err people_need_key(const kp_office *o, kp_error *e)
{
    if (o->pii) return KP_OK;
    return kp_error_set(e, KP_ERR_IO, "key",
                        "the personal-data key file (DB.key) is missing: personal data can be "
                        "neither stored nor read");
}

void people_time_kv(kp_buf *b, const char *key, kp_time t)
{
    kp_buf_puts(b, ",");
    kp_buf_json_key(b, key);
    if (t == 0 || t == KP_TIME_NEVER) {
        kp_buf_puts(b, "null");
        return;
    }
    char ts[32];
    kp_time_format(t, ts, sizeof ts);
    kp_buf_json_str(b, ts);
}

void people_day_format(kp_time t, char out[11])
{
    char ts[32];
    kp_time_format(t, ts, sizeof ts);
    memcpy(out, ts, 10);
    out[10] = '\0';
}

void people_credit_lot(const kp_office *o, const char *kind, kp_lot *lot)
{
    memset(lot, 0, sizeof *lot);
    const char *k = kind && kind[0] ? kind : (o->program ? o->program->point_kind : "regular");
    snprintf(lot->kind, sizeof lot->kind, "%s", k[0] ? k : "regular");
    lot->earned_at = o->now;
    lot->active_from = o->now;
    lot->expires_at = KP_TIME_NEVER;
    const kp_point_kind *pk = o->program ? kp_program_kind(o->program, lot->kind) : NULL;
    if (pk) {
        kp_time active;
        kp_validity_apply(&pk->validity, o->now, &active, &lot->expires_at);
    }
}

kp_err people_card_account(kp_office *o, const char *number, kp_card_info *card, kp_error *e)
{
    kp_err err = o->st->ops->people->card_info_get(o->st, number, card);
    if (err == KP_ERR_NOT_FOUND)
        return kp_card_unknown(number, "card", e);
    if (err) return people_storage(o->st, err, e);
    if (card->state == KP_CARD_BLOCKED || card->state == KP_CARD_REPLACED)
        return kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_CARD_CONFLICT, "card",
                             "card %s is %s and cannot be used", number,
                             kp_card_state_name(card->state));
    return KP_OK;
}

kp_err people_cards_all(kp_store *st, int64_t customer_id, kp_card_info **cards, size_t *n,
                        kp_error *e)
{
    *cards = NULL;
    *n = 0;
    /* Read with a limit; a full page means there may be more: read again
     * with twice the room. Most customers have one or two cards. */
    for (size_t cap = 64;; cap *= 2) {
        if (cap > KP_CARDS_PER_CUSTOMER_MAX)
            return kp_error_set(e, KP_ERR_LIMIT, "customer",
                                "customer %lld has more than %d cards, more than one operation "
                                "handles",
                                (long long)customer_id, KP_CARDS_PER_CUSTOMER_MAX);
        kp_card_info *more = realloc(*cards, cap * sizeof **cards);
        if (more == NULL) {
            free(*cards);
            *cards = NULL;
            return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        }
        *cards = more;
        kp_err err = st->ops->people->cards_of_customer(st, customer_id, *cards, cap, n);
        if (err) {
            free(*cards);
            *cards = NULL;
            *n = 0;
            return people_storage(st, err, e);
        }
        if (*n < cap) return KP_OK;
    }
}
