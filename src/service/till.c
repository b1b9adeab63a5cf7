/*
 * till.c: what a card may do at the till beyond the program's rules: an
 * unregistered card under a program whose "customers.unregistered" says it
 * earns or spends nothing (seed 003: no discount, and the engine's
 * registered_only discounts see kp_account.registered), and a family member
 * whom the owner has not allowed to spend the shared pot. Costs nothing for
 * a registered card that burns nothing: no lookup at all.
 */
#include "people.h"

#include <stdio.h>
#include <string.h>

kp_err kp_till_limits(kp_store *st, const kp_program *program, const kp_card *card,
                      const kp_basket *basket, kp_scratch *sc, bool *no_earn, const char **why)
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
        kp_card_info info;
        kp_err err = st->ops->people->card_info_get(st, card->number, &info);
        if (err == KP_OK && !info.may_burn) {
            sc->till_burn_max = 0;
            *why = "family card: the owner has not allowed this card to spend the shared points";
        } else if (err != KP_OK && err != KP_ERR_NOT_FOUND) {
            return err;
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
