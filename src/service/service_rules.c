/*
 * service_rules.c: pricing with the account's rule state and the program's
 * script, the tier shown at the till, the individual discount.
 */
#include "service_rules.h"
#include <kopilka/card_number.h>

#include <stdio.h>
#include <string.h>

#include <kopilka/clock.h>
#include <kopilka/money.h>

#include "script/script.h"

bool kp_service_uses_rule_state(const kp_program *p)
{
    if (p->n_tiers > 0) return true;
    for (size_t r = 0; r < p->n_rules; r++)
        if (p->rules[r].kind == KP_RULE_DISCOUNT_CUMULATIVE && p->rules[r].amount_minor > 0)
            return true;
    return false;
}

static bool program_uses_year_spend(const kp_program *p)
{
    for (size_t r = 0; r < p->n_rules; r++)
        if (p->rules[r].kind == KP_RULE_ANNUAL_SPEND_BONUS) return true;
    return false;
}

kp_err kp_service_account_rules(kp_store *st, const kp_program *program, kp_time at, kp_account *a,
                                const kp_account_rules *known, kp_error *e)
{
    a->tier[0] = '\0';
    a->has_personal_discount = false;
    a->personal_discount_bp = 0;
    a->year_spend_minor = 0;
    const kp_triggers_ops *t = st->ops->triggers;
    kp_err err;
    if (kp_service_uses_rule_state(program)) {
        kp_account_rules rules;
        if (known) rules = *known;
        else if ((err = t->account_rules_get(st, a->id, &rules)))
            return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
        memcpy(a->tier, rules.tier, sizeof a->tier);
        a->has_personal_discount = rules.has_personal_discount;
        a->personal_discount_bp = rules.personal_discount_bp;
    }
    if (program_uses_year_spend(program)) {
        int y, m, d;
        kp_program_date(program, at, &y, &m, &d);
        kp_time year_start = kp_program_date_start(program, y, 1, 1);
        if ((err = t->account_spend_between(st, a->id, year_start, at, &a->year_spend_minor)))
            return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    }
    return KP_OK;
}

kp_err kp_service_price(const kp_program *program, const char *store, const kp_purchase_req *req,
                        kp_time at, kp_scratch *sc, kp_error *e)
{
    kp_price_opts opts = {.store = store,
                          .burn_max = sc->till_burn_max,
                          .index = program->compiled,
                          .currency = sc->currency,
                          .defer_text = sc->defer_text};
    sc->till_burn_max = -1; /* consumed: the next pricing starts without it */
    char burn_note[192] = "", earn_note[192] = "";
    int64_t earned = 0;
    bool has_script = program->script_earn[0] || program->script_burn[0];
    if (has_script && program->script_burn[0] && req->basket.burn_request > 0) {
        /* The burn hook sees the basket as the declarative rules price it,
         * and may lower how many points it burns. */
        kp_err err =
            kp_engine_price_opts(program, &sc->account, &req->basket, &opts, at, &sc->quote, e);
        if (err) return err;
        int64_t max = -1;
        if (kp_script_burn(&sc->script, program, &sc->account, &req->basket, &sc->quote, at, &max,
                           burn_note, sizeof burn_note) == KP_OK &&
            max < sc->quote.burned)
            opts.burn_max = max;
    }
    kp_err err =
        kp_engine_price_opts(program, &sc->account, &req->basket, &opts, at, &sc->quote, e);
    if (err) return err;
    kp_quote *q = &sc->quote;
    if (burn_note[0] && q->n_explain < KP_EXPLAIN_MAX) {
        kp_explain *x = &q->explain[q->n_explain++];
        memset(x, 0, sizeof *x);
        snprintf(x->rule, sizeof x->rule, "script:%.40s", program->script_burn);
        x->kind = KP_RULE_SCRIPT;
        snprintf(x->text, sizeof x->text, "%s", burn_note);
    }
    if (has_script && program->script_earn[0] && q->joined) {
        char rule[48];
        snprintf(rule, sizeof rule, "script:%.40s", program->script_earn);
        if (kp_script_earn(&sc->script, program, &sc->account, &req->basket, q, at, &earned,
                           earn_note, sizeof earn_note) == KP_OK) {
            if (earned != q->earned)
                kp_quote_set_earned(q, earned, KP_RULE_SCRIPT, rule, earn_note);
        } else if (q->n_explain < KP_EXPLAIN_MAX) {
            kp_explain *x = &q->explain[q->n_explain++];
            memset(x, 0, sizeof *x);
            snprintf(x->rule, sizeof x->rule, "%s", rule);
            x->kind = KP_RULE_SCRIPT;
            snprintf(x->text, sizeof x->text, "%s", earn_note);
        }
    }
    return KP_OK;
}

void kp_service_tier_json(kp_buf *b, const kp_program *program, int index)
{
    kp_buf_puts(b, ",\"tier\":");
    if (index < 0 || (size_t)index >= program->n_tiers) {
        kp_buf_puts(b, "null");
        return;
    }
    const kp_tier *t = &program->tiers[index];
    char mult[16], disc[16];
    kp_percent_format(t->earn_multiplier_x100, mult, sizeof mult);
    mult[strlen(mult) - 1] = '\0';
    kp_percent_format(t->discount_bp, disc, sizeof disc);
    kp_buf_puts(b, "{");
    kp_buf_json_kv_str(b, "name", t->name, false);
    kp_buf_json_kv_str(b, "earn_multiplier", mult, true);
    kp_buf_json_kv_str(b, "discount", disc, true);
    kp_buf_puts(b, ",\"privileges\":[");
    for (size_t i = 0; i < t->n_privileges; i++) {
        if (i) kp_buf_puts(b, ",");
        kp_buf_json_str(b, t->privileges[i]);
    }
    kp_buf_puts(b, "]}");
}

kp_err kp_service_discount_set(kp_store *st, const char *number, bool has, int32_t bp, kp_error *e)
{
    kp_card card;
    kp_err err = st->ops->card_find(st, number, &card);
    if (err == KP_ERR_NOT_FOUND)
        return kp_card_unknown(number, "card", e);
    if (err) return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    if (has && (bp < 0 || bp > 10000))
        return kp_error_set(e, KP_ERR_INVALID, "percent", "must be from 0 to 100");
    if ((err = st->ops->triggers->account_discount_set(st, card.account_id, has, bp)))
        return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    return KP_OK;
}
