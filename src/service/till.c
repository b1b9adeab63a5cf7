/*
 * till.c: what a till may say and what a card may do at the till beyond the
 * program's rules.
 *
 * What a till may say (the program's "till" section, docs/rules.md): its
 * clock is bounded, so a purchase, a quote, a return or an event dated
 * years back or ahead is refused instead of earning under another year's
 * rules; an offline till's later upload is a separate mode with its own
 * limit; and a customer without the card may be named by phone when the
 * program allows it.
 *
 * What a card may do: an unregistered card under a program whose
 * "customers.unregistered" says it earns or spends nothing (seed 003: no
 * discount, and the engine's registered_only discounts see
 * kp_account.registered), and a family member whom the owner has not
 * allowed to spend the shared pot. Costs nothing for a registered card that
 * burns nothing: no lookup at all.
 */
#include "people.h"
#include "people_int.h"

#include <stdio.h>
#include <string.h>

#include <kopilka/clock.h>

/* "5 minutes", "1 minute", "0 minutes" */
static void minutes_text(int64_t seconds, char *out, size_t size)
{
    int64_t m = seconds / 60;
    snprintf(out, size, "%lld minute%s", (long long)m, m == 1 ? "" : "s");
}

kp_err kp_till_check_at(const kp_program *program, bool at_given, kp_time at, bool offline,
                        kp_time now, kp_error *e)
{
    const kp_till_policy *t = &program->till;
    if (offline && !at_given)
        return kp_error_set(e, KP_ERR_INVALID, "at",
                            "is required with \"offline\": true (the time of the sale at the "
                            "till)");
    if (offline && t->offline_days == 0)
        return kp_error_set(e, KP_ERR_INVALID, "offline",
                            "program version %lld accepts no offline uploads (till.offline_days "
                            "is 0): send the purchase while the till is online",
                            (long long)program->version);
    if (!at_given) return KP_OK;
    int64_t back =
        offline ? t->offline_days * KP_DAY_SECONDS + t->clock_skew_seconds : t->clock_skew_seconds;
    bool ahead = at > now && at - now > t->clock_skew_seconds;
    if (!ahead && !(at < now && now - at > back)) return KP_OK;
    /* Refused: only now are the times written out for the message. */
    char at_text[32], now_text[32], skew[32];
    kp_time_format(at, at_text, sizeof at_text);
    kp_time_format(now, now_text, sizeof now_text);
    minutes_text(t->clock_skew_seconds, skew, sizeof skew);
    if (ahead)
        return kp_error_set(e, KP_ERR_INVALID, "at",
                            "%s is ahead of the server's time %s by more than %s "
                            "(till.clock_skew_minutes of program version %lld): a till may not "
                            "date an operation in the future",
                            at_text, now_text, skew, (long long)program->version);
    if (offline)
        return kp_error_set(e, KP_ERR_INVALID, "at",
                            "%s is more than %lld days before the server's time %s: an offline "
                            "upload may be at most till.offline_days = %lld days old (program "
                            "version %lld)",
                            at_text, (long long)t->offline_days, now_text,
                            (long long)t->offline_days, (long long)program->version);
    return kp_error_set(e, KP_ERR_INVALID, "at",
                        "%s is behind the server's time %s by more than %s "
                        "(till.clock_skew_minutes of program version %lld); a till that was "
                        "offline uploads its sales with \"offline\": true, up to %lld days back",
                        at_text, now_text, skew, (long long)program->version,
                        (long long)t->offline_days);
}

kp_err kp_till_card_by_phone(kp_store *st, const kp_pii *pii, const kp_program *program,
                             const char *phone, char card[KP_STR_MAX], kp_error *e)
{
    card[0] = '\0';
    if (program == NULL || !program->till.identify_by_phone)
        return kp_error_set(e, KP_ERR_FORBIDDEN, "phone",
                            "this program does not let a till find a customer by phone "
                            "(till.identify_by_phone is false): send the card number");
    char norm[KP_PHONE_MAX + 1];
    const char *why = NULL;
    if (!kp_norm_phone_in(phone, kp_phone_region_of(program), norm, &why))
        return kp_error_set(e, KP_ERR_INVALID, "phone", "%s", why);
    if (pii == NULL)
        return kp_error_set(e, KP_ERR_IO, "key",
                            "the personal-data key file (DB.key) is missing: a customer cannot "
                            "be found by phone; send the card number");
    uint8_t ix[32];
    kp_pii_index(pii, KP_PII_PHONE, norm, ix);
    const kp_people_ops *pp = st->ops->people;
    int64_t customer_id = 0;
    kp_err err = pp->customer_by_index(st, KP_CONTACT_PHONE, ix, &customer_id);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_setr(e, KP_ERR_NOT_FOUND, KP_REASON_UNKNOWN_PHONE, "phone",
                             "no customer has this phone number");
    if (err) return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    /* Every card of the customer: the active one may follow many replaced. */
    kp_card_info *cards = NULL;
    size_t n = 0;
    if ((err = people_cards_all(st, customer_id, &cards, &n, e))) return err;
    const kp_card_info *chosen = NULL;
    for (size_t i = 0; i < n && err == KP_OK; i++) {
        if (cards[i].state != KP_CARD_ACTIVE && cards[i].state != KP_CARD_ISSUED) continue;
        if (chosen && chosen->account_id != cards[i].account_id)
            err = kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_AMBIGUOUS_PHONE, "phone",
                                "the customer with this phone has active cards on several "
                                "accounts: scan or type the card to use");
        if (chosen == NULL) chosen = &cards[i];
    }
    if (err == KP_OK && chosen == NULL)
        err = kp_error_setr(e, KP_ERR_NOT_FOUND, KP_REASON_UNKNOWN_PHONE, "phone",
                            "the customer with this phone has no active card (blocked or "
                            "replaced cards cannot be used)");
    if (err == KP_OK) snprintf(card, KP_STR_MAX, "%s", chosen->number);
    free(cards);
    return err;
}

kp_err kp_till_purchase_by_phone(kp_store *st, const kp_pii *pii, const kp_program *program,
                                 const char *store, kp_purchase_req *req, kp_error *e)
{
    if (req->phone[0] == '\0') return KP_OK;
    kp_op_row row;
    kp_err err = st->ops->op_find(st, store, req->receipt, &row);
    if (err == KP_OK) {
        /* A retry: the card the first request was priced with. A different
         * body still meets its 409 in kp_service_purchase. */
        snprintf(req->card, KP_STR_MAX, "%s", row.card);
        kp_op_row_release(&row);
    } else if (err == KP_ERR_NOT_FOUND) {
        err = kp_till_card_by_phone(st, pii, program, req->phone, req->card, e);
        if (err) return err;
    } else {
        return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    }
    req->by_phone = true;
    return KP_OK;
}

kp_err kp_till_limits(kp_store *st, const kp_program *program, const kp_card *card,
                      const kp_basket *basket, const bool *may_burn, kp_scratch *sc,
                      bool *no_earn, const char **why)
{
    sc->till_burn_max = -1;
    *no_earn = false;
    *why = NULL;
    if (!card->registered) {
        const kp_people_policy *p = kp_people_policy_of(st, program);
        if (!p->unregistered.earn) {
            *no_earn = true;
            *why = "the card is not registered: it earns points once it is registered";
        }
        if (!p->unregistered.burn && basket->burn_request > 0) {
            sc->till_burn_max = 0;
            *why = "the card is not registered: its points can be spent once it is registered";
        }
    }
    if (basket->burn_request > 0 && sc->till_burn_max != 0) {
        bool allowed = true;
        if (may_burn) {
            allowed = *may_burn;
        } else {
            kp_card_info info;
            kp_err err = st->ops->people->card_info_get(st, card->number, &info);
            if (err == KP_OK) allowed = info.may_burn;
            else if (err != KP_ERR_NOT_FOUND) return err;
        }
        if (!allowed) {
            sc->till_burn_max = 0;
            *why = "family card: the owner has not allowed this card to spend the shared points";
        }
    }
    return KP_OK;
}

void kp_till_apply(kp_quote *q, bool burn_limited, bool no_earn, const char *why)
{
    if (burn_limited && q->burn_request > 0 && why)
        snprintf(q->burn_limited_by, sizeof q->burn_limited_by, "%s", why);
    if (no_earn && q->earned > 0)
        kp_quote_set_earned(q, 0, KP_RULE_EARN_PERCENT, "customers.unregistered",
                            "the card is not registered: it earns points once it is registered");
}
