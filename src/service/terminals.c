/*
 * terminals.c: the tills' API keys in the back office: list them (store,
 * created, rotated, last used, revoked), add one, revoke one, rotate one
 * (a new key for the same terminal; the old one is refused from the same
 * commit on); and a card's individual discount (seed 003), which only a
 * manager or an admin sets. Each change checks the actor's role and writes
 * one audit entry in the transaction of the change. A key is shown once,
 * when it is made; only its hash is stored.
 */
#include "people_int.h"
#include <kopilka/card_number.h>
#include "service_rules.h"

#include <kopilka/money.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* A new key "kp_" + 48 hex digits (192 random bits) and its hash. */
static void key_new(char key_out[65], uint8_t hash[32])
{
    uint8_t raw[24];
    randombytes_buf(raw, sizeof raw);
    memcpy(key_out, "kp_", 3);
    sodium_bin2hex(key_out + 3, 62, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    kp_service_key_hash(key_out, hash);
}

static kp_err terminal_load(kp_office *o, int64_t id, kp_terminal *t, kp_error *e)
{
    kp_err err = o->st->ops->terminal_get(o->st, id, t);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "terminal", "no terminal %lld (see `kopilka terminal list`)",
                            (long long)id);
    return err ? people_storage(o->st, err, e) : KP_OK;
}

kp_err kp_terminal_add(kp_office *o, const char *store, char key_out[65], kp_terminal *out,
                       kp_error *e)
{
    key_out[0] = '\0';
    memset(out, 0, sizeof *out);
    kp_err err = kp_office_require(o, KP_PERM_TERMINALS, e);
    if (err) return err;
    if (store[0] == '\0' || strlen(store) >= KP_STR_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "store", "must be 1 to %d bytes", KP_STR_MAX - 1);
    /* "#adjust", "#transfer", ... are the back office's idempotency scopes. */
    if (store[0] == '#') return kp_error_set(e, KP_ERR_INVALID, "store", "must not start with '#'");
    uint8_t hash[32];
    key_new(key_out, hash);
    int64_t id = 0;
    if ((err = o->st->ops->terminal_insert(o->st, store, hash, &id)) ||
        (err = o->st->ops->terminal_get(o->st, id, out))) {
        key_out[0] = '\0';
        return people_storage(o->st, err, e);
    }
    char target[48];
    snprintf(target, sizeof target, "terminal:%lld", (long long)id);
    if ((err = kp_office_audit(o, "terminal.add", target, "store=%s", store))) {
        key_out[0] = '\0';
        return people_storage(o->st, err, e);
    }
    return KP_OK;
}

/* Revokes (key_out NULL) or rotates terminal id. */
static kp_err change(kp_office *o, int64_t id, char *key_out, kp_terminal *out, kp_error *e)
{
    memset(out, 0, sizeof *out);
    if (key_out) key_out[0] = '\0';
    kp_err err = kp_office_require(o, KP_PERM_TERMINALS, e);
    if (err == KP_OK) err = terminal_load(o, id, out, e);
    if (err) return err;
    if (out->revoked_at) {
        char at[32];
        kp_time_format(out->revoked_at, at, sizeof at);
        return kp_error_set(e, KP_ERR_CONFLICT, "terminal",
                            "terminal %lld was revoked at %s; add a new one with `kopilka "
                            "terminal add` or POST /v1/admin/terminals",
                            (long long)id, at);
    }
    uint8_t hash[32];
    if (key_out) key_new(key_out, hash);
    if ((err = o->st->ops->terminal_change(o->st, id, key_out ? hash : NULL, o->now)) ||
        (err = o->st->ops->terminal_get(o->st, id, out))) {
        if (key_out) key_out[0] = '\0';
        return people_storage(o->st, err, e);
    }
    char target[48];
    snprintf(target, sizeof target, "terminal:%lld", (long long)id);
    if ((err = kp_office_audit(o, key_out ? "terminal.rotate" : "terminal.revoke", target,
                               "store=%s", out->store))) {
        if (key_out) key_out[0] = '\0';
        return people_storage(o->st, err, e);
    }
    return KP_OK;
}

kp_err kp_terminal_revoke(kp_office *o, int64_t id, kp_terminal *out, kp_error *e)
{
    return change(o, id, NULL, out, e);
}

kp_err kp_terminal_rotate(kp_office *o, int64_t id, char key_out[65], kp_terminal *out,
                          kp_error *e)
{
    return change(o, id, key_out, out, e);
}

kp_err kp_terminal_list(kp_office *o, int64_t after_id, kp_terminal *out, size_t limit, size_t *n,
                        kp_error *e)
{
    *n = 0;
    kp_err err = kp_office_require(o, KP_PERM_TERMINALS, e);
    if (err) return err;
    if (limit == 0 || limit > KP_TERMINALS_PAGE_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "limit", "must be from 1 to %d",
                            KP_TERMINALS_PAGE_MAX);
    if ((err = o->st->ops->terminal_list(o->st, after_id, out, limit, n)))
        return people_storage(o->st, err, e);
    return KP_OK;
}

kp_err kp_discount_set(kp_office *o, const char *card, bool has, int32_t bp, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_DISCOUNT, e);
    if (err) return err;
    if (has && (bp < 0 || bp > 10000))
        return kp_error_set(e, KP_ERR_INVALID, "percent",
                            "must be from 0 to 100 with at most 2 decimals");
    kp_card c;
    err = o->st->ops->card_find(o->st, card, &c);
    if (err == KP_ERR_NOT_FOUND)
        return kp_card_unknown(card, "card", e);
    if (err) return people_storage(o->st, err, e);
    if ((err = kp_service_discount_set(o->st, card, has, bp, e))) return err;
    char target[48], rate[16];
    snprintf(target, sizeof target, "account:%lld", (long long)c.account_id);
    kp_percent_format(bp, rate, sizeof rate);
    err = has ? kp_office_audit(o, "discount.set", target, "card=%s percent=%s", card, rate)
              : kp_office_audit(o, "discount.clear", target, "card=%s", card);
    return err ? people_storage(o->st, err, e) : KP_OK;
}
