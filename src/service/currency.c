/*
 * currency.c: a card's accounts per currency in the service layer
 * (docs/coalition.md "Currencies"): which currency a receipt is in, the
 * card's account of that currency (created at its first purchase), and
 * the balances per currency every view of a card shows. Nothing converts:
 * a receipt earns and burns only in its own currency's account.
 */
#include "currency.h"
#include "service_rules.h"

#include <jansson.h>

#include <kopilka/coalition.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

bool kp_service_currency_accepted(const kp_program *p, const char *code)
{
    return code[0] && kp_program_minor_per_point(p, code) > 0;
}

/* "RUB, KZT": the program's currencies, for a refusal's sentence. */
static void accepted_list(const kp_program *p, char *out, size_t size)
{
    size_t at = (size_t)snprintf(out, size, "%s", p->currency);
    for (size_t i = 0; i < p->n_currencies && at < size; i++)
        at += (size_t)snprintf(out + at, size - at, ", %s", p->currencies[i].code);
}

kp_err kp_service_receipt_currency(const kp_program *p, const char *store, const char *given,
                                   char out[4], kp_error *e)
{
    out[0] = '\0';
    const char *fixed = kp_program_store_currency(p, store);
    const char *code = given && given[0] ? given : fixed[0] ? fixed : p->currency;
    char list[64]; /* written only for a refusal: not on every purchase */
    if (given && given[0] && !kp_service_currency_accepted(p, given)) {
        accepted_list(p, list, sizeof list);
        return kp_error_set(e, KP_ERR_INVALID, "currency",
                            "the program does not accept %s receipts; it accepts %s", given, list);
    }
    if (given && given[0] && fixed[0] && strcmp(given, fixed) != 0)
        return kp_error_set(e, KP_ERR_INVALID, "currency",
                            "store %s takes receipts in %s only (the program's store patterns "
                            "say so), not %s",
                            store, fixed, given);
    if (!kp_service_currency_accepted(p, code)) {
        accepted_list(p, list, sizeof list);
        return kp_error_set(e, KP_ERR_INVALID, "currency",
                            "store %s is set to %s, which the program does not accept (%s)",
                            store, code, list);
    }
    if (strcmp(code, p->currency) != 0) snprintf(out, 4, "%s", code);
    return KP_OK;
}

kp_err kp_service_currency_switch(kp_store *st, const kp_program *program, const char *currency,
                                  bool create, kp_time now, kp_time at,
                                  const kp_account_rules *rules, kp_account *account,
                                  kp_error *e)
{
    const int64_t own = account->id;
    kp_account_rules own_rules;
    if (rules == NULL && kp_service_uses_rule_state(program)) {
        kp_err err = st->ops->triggers->account_rules_get(st, own, &own_rules);
        if (err) return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
        rules = &own_rules;
    }
    const bool registered = account->registered;
    const int64_t own_purchases = account->purchases;
    int64_t sub = 0;
    kp_err err;
    if (create) {
        err = st->ops->account_currency(st, own, currency, now, &sub);
        if (err)
            return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    } else {
        kp_currency_account list[KP_CURRENCY_ACCOUNTS_MAX];
        size_t n = 0;
        if ((err = st->ops->account_currencies(st, own, list, KP_CURRENCY_ACCOUNTS_MAX, &n)))
            return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
        for (size_t i = 0; i < n; i++)
            if (strcmp(list[i].currency, currency) == 0) sub = list[i].account_id;
    }
    if (sub) {
        if ((err = st->ops->account_load(st, sub, account)))
            return kp_error_set(e, err, "", "%s%s", err == KP_ERR_LIMIT ? "" : "storage failed: ",
                                st->last_error);
    } else {
        /* No account in this currency yet: a quote prices for an empty one. */
        memset(account, 0, offsetof(kp_account, lots));
        account->n_lots = 0;
    }
    account->registered = registered;
    /* Whether the customer has joined or bought before (join_min_purchase,
     * first_purchase_min) counts the purchases of the card's own account
     * too: a first receipt in tenge is not the customer's first purchase.
     * Spend stays the currency's own: sums of two currencies mean nothing. */
    if (__builtin_add_overflow(account->purchases, own_purchases, &account->purchases))
        account->purchases = INT64_MAX;
    /* The tier and the individual discount are the customer's, kept on the
     * card's own account; this year's spend is the currency's own. */
    return kp_service_account_rules(st, program, at, account, rules, e);
}

static void balance_item(kp_buf *out, bool first, const char *currency, const kp_account *a,
                         kp_time now)
{
    kp_buf_puts(out, first ? "{" : ",{");
    kp_buf_json_kv_str(out, "currency", currency, false);
    kp_buf_json_kv_i64(out, "balance", a->balance, true);
    kp_buf_json_kv_i64(out, "available", kp_account_spendable(a, now), true);
    kp_buf_json_kv_i64(out, "debt", a->debt, true);
    kp_buf_puts(out, "}");
}

kp_err kp_service_balances_json(kp_store *st, const char *own_currency, const kp_account *own,
                                kp_time now, kp_buf *out, kp_error *e)
{
    kp_currency_account list[KP_CURRENCY_ACCOUNTS_MAX];
    size_t n = 0;
    kp_err err = st->ops->account_currencies(st, own->id, list, KP_CURRENCY_ACCOUNTS_MAX, &n);
    if (err) return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    kp_buf_puts(out, ",\"balances\":[");
    balance_item(out, true, own_currency, own, now);
    kp_account *a = n ? malloc(sizeof *a) : NULL;
    if (n && a == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    for (size_t i = 0; i < n && err == KP_OK; i++) {
        if ((err = st->ops->account_load(st, list[i].account_id, a)))
            kp_error_set(e, err, "", "%s%s", err == KP_ERR_LIMIT ? "" : "storage failed: ",
                         st->last_error);
        else
            balance_item(out, false, list[i].currency, a, now);
    }
    free(a);
    kp_buf_puts(out, "]");
    return err;
}

kp_err kp_service_own_currency_only(json_t *request, const kp_program *p, const char *what,
                                    kp_error *e)
{
    json_t *v = json_object_get(request, "currency");
    if (v == NULL || json_is_null(v)) return KP_OK;
    const char *own = p ? p->currency : "";
    if (json_is_string(v) && own[0] && strcmp(json_string_value(v), own) == 0) return KP_OK;
    return kp_error_set(e, KP_ERR_INVALID, "currency",
                        "%s use points of the program's own currency (%s) only: points in "
                        "another currency stay in the card's account of that currency",
                        what, own[0] ? own : "none: no program is loaded");
}
