/*
 * engine.c: prices a basket. Pure and allocation-free: the result depends only
 * on the program, the account state, the basket and `now`, and every array
 * is bounded by the limits in kopilka.h.
 *
 * Splitting an amount over lines uses cumulative rounding: line i gets
 * R(sum of lines 0..i) - R(sum of lines 0..i-1), so the parts always add up
 * to exactly R(total) and no point is created or lost by rounding per line.
 */
#include <kopilka/engine.h>

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <kopilka/clock.h>
#include <kopilka/money.h>

kp_err kp_basket_validate(const kp_basket *basket, kp_error *e)
{
    if (basket->n_lines == 0)
        return kp_error_set(e, KP_ERR_INVALID, "lines", "a basket needs at least one line");
    if (basket->n_lines > KP_LINES_MAX)
        return kp_error_set(e, KP_ERR_LIMIT, "lines", "at most %d lines are allowed, got %zu",
                            KP_LINES_MAX, basket->n_lines);
    if (basket->burn_request < 0)
        return kp_error_set(e, KP_ERR_INVALID, "burn", "must be >= 0, got %lld",
                            (long long)basket->burn_request);
    int64_t total = 0;
    for (size_t i = 0; i < basket->n_lines; i++) {
        const kp_line *l = &basket->lines[i];
        char field[64];
        if (l->sku[0] == '\0') {
            snprintf(field, sizeof field, "lines[%zu].sku", i);
            return kp_error_set(e, KP_ERR_INVALID, field, "must be a non-empty string");
        }
        if (l->amount_minor < 0 || l->amount_minor > KP_AMOUNT_MAX) {
            snprintf(field, sizeof field, "lines[%zu].amount", i);
            return kp_error_set(e, KP_ERR_INVALID, field,
                                "must be an integer number of minor units from 0 to %lld, got %lld",
                                (long long)KP_AMOUNT_MAX, (long long)l->amount_minor);
        }
        if (l->qty < 1 || l->qty > KP_QTY_MAX) {
            snprintf(field, sizeof field, "lines[%zu].qty", i);
            return kp_error_set(e, KP_ERR_INVALID, field, "must be from 1 to %d, got %lld",
                                KP_QTY_MAX, (long long)l->qty);
        }
        if (!kp_add_checked(&total, l->amount_minor))
            return kp_error_set(e, KP_ERR_OVERFLOW, "lines", "the basket total overflows");
    }
    return KP_OK;
}

static bool lot_spendable(const kp_lot *lot, kp_time now)
{
    return lot->remaining > 0 && lot->active_from <= now && lot->expires_at > now;
}

int64_t kp_account_spendable(const kp_account *account, kp_time now)
{
    int64_t sum = 0;
    for (size_t i = 0; i < account->n_lots; i++)
        if (lot_spendable(&account->lots[i], now)) sum += account->lots[i].remaining;
    sum -= account->debt;
    if (sum > account->balance) sum = account->balance;
    return sum > 0 ? sum : 0;
}

/* The earn_percent rule for a line: one naming its category wins over one
 * for the whole basket; -1 when none applies. */
static int earn_rule_for(const kp_program *p, const kp_line *line)
{
    int basket_wide = -1;
    for (size_t r = 0; r < p->n_rules; r++) {
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_EARN_PERCENT) continue;
        if (rule->category[0] == '\0') {
            if (basket_wide < 0) basket_wide = (int)r;
        } else if (strcmp(rule->category, line->category) == 0) {
            return (int)r;
        }
    }
    return basket_wide;
}

/* The burn_limit rule (pot) a line belongs to, by the same specificity;
 * -1 = not payable with points. With no burn_limit rules at all, every
 * non-promo line may be paid in full: pot KP_RULES_MAX stands for that. */
static int burn_pot_for(const kp_program *p, const kp_line *line, bool any_burn_rule)
{
    if (line->promo) return -1;
    if (!any_burn_rule) return KP_RULES_MAX;
    int basket_wide = -1;
    for (size_t r = 0; r < p->n_rules; r++) {
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_BURN_LIMIT) continue;
        if (rule->category[0] == '\0') {
            if (basket_wide < 0) basket_wide = (int)r;
        } else if (strcmp(rule->category, line->category) == 0) {
            return (int)r;
        }
    }
    return basket_wide;
}

static kp_explain *explain_add(kp_quote *q, const kp_rule *rule, kp_rule_kind kind)
{
    assert(q->n_explain < KP_EXPLAIN_MAX);
    kp_explain *x = &q->explain[q->n_explain++];
    memset(x, 0, sizeof *x);
    if (rule) snprintf(x->rule, sizeof x->rule, "%s", rule->id);
    x->kind = kind;
    return x;
}

static const char *category_label(const char *category)
{
    return category[0] ? category : "the basket";
}

/* Distributes `total` over lines of `group` in proportion to weight[i] with
 * cumulative rounding down; adds each share into share[i]. */
static void distribute(const int64_t *weight, const int *group, int group_id, size_t n,
                       int64_t total, int64_t *share)
{
    int64_t weight_sum = 0;
    for (size_t i = 0; i < n; i++)
        if (group[i] == group_id) weight_sum += weight[i];
    if (total == 0) return;
    if (weight_sum == 0) {
        for (size_t i = 0; i < n; i++)
            if (group[i] == group_id) {
                share[i] += total;
                return;
            }
        return;
    }
    int64_t cum = 0, given = 0;
    for (size_t i = 0; i < n; i++) {
        if (group[i] != group_id) continue;
        cum += weight[i];
        int64_t upto = kp_muldiv(total, cum, weight_sum, KP_ROUND_DOWN);
        share[i] += upto - given;
        given = upto;
    }
    assert(given == total);
}

kp_err kp_engine_price(const kp_program *program, const kp_account *account,
                       const kp_basket *basket, kp_time now, kp_quote *q, kp_error *e)
{
    /* Only the header is zeroed: the arrays are written before they are read
     * and are 90 KB, which would be waste on every quote. */
    memset(q, 0, offsetof(kp_quote, lines));
    q->n_explain = 0;
    q->n_takes = 0;
    kp_err err = kp_basket_validate(basket, e);
    if (err != KP_OK) return err;
    assert(program->minor_per_point > 0);

    const size_t n = basket->n_lines;
    const int64_t mpp = program->minor_per_point;
    int64_t net[KP_LINES_MAX];
    int pot[KP_LINES_MAX];
    int earn_rule[KP_LINES_MAX];
    int64_t points_minor[KP_LINES_MAX];
    int64_t paid[KP_LINES_MAX];
    int64_t earned[KP_LINES_MAX];

    bool any_burn_rule = false;
    const kp_rule *first_min = NULL;
    for (size_t r = 0; r < program->n_rules; r++) {
        if (program->rules[r].kind == KP_RULE_BURN_LIMIT) any_burn_rule = true;
        if (program->rules[r].kind == KP_RULE_FIRST_PURCHASE_MIN && first_min == NULL)
            first_min = &program->rules[r];
    }

    q->n_lines = n;
    for (size_t i = 0; i < n; i++) {
        const kp_line *l = &basket->lines[i];
        q->amount_minor += l->amount_minor;
        net[i] = l->amount_minor; /* no discount rules among the core kinds yet */
        pot[i] = burn_pot_for(program, l, any_burn_rule);
        earn_rule[i] = earn_rule_for(program, l);
        points_minor[i] = 0;
        earned[i] = 0;
    }

    /* Burn: the caps of every pot, then the balance. */
    q->burn_request = basket->burn_request;
    q->balance_before = account->balance;
    int64_t total_cap = 0;
    int64_t pot_cap[KP_RULES_MAX + 1];
    int64_t pot_base[KP_RULES_MAX + 1];
    for (size_t r = 0; r <= KP_RULES_MAX; r++) pot_cap[r] = pot_base[r] = 0;
    for (size_t i = 0; i < n; i++)
        if (pot[i] >= 0) pot_base[pot[i]] += net[i];
    for (size_t r = 0; r <= KP_RULES_MAX; r++) {
        if (r == KP_RULES_MAX) {
            pot_cap[r] = pot_base[r] / mpp;
        } else if (r < program->n_rules && program->rules[r].kind == KP_RULE_BURN_LIMIT) {
            pot_cap[r] = kp_muldiv(pot_base[r], program->rules[r].rate_bp, 10000 * mpp,
                                   KP_ROUND_DOWN);
        }
        total_cap += pot_cap[r];
    }
    int64_t spendable = kp_account_spendable(account, now);
    int64_t burn = basket->burn_request;
    if (burn > total_cap) {
        burn = total_cap;
        if (any_burn_rule) {
            int shown = 0;
            for (size_t r = 0; r < program->n_rules && shown < 1; r++) {
                const kp_rule *rule = &program->rules[r];
                if (rule->kind != KP_RULE_BURN_LIMIT) continue;
                char rate[16];
                kp_percent_format(rule->rate_bp, rate, sizeof rate);
                snprintf(q->burn_limited_by, sizeof q->burn_limited_by,
                         "rule %s: points pay at most %s of %s (%lld points on this basket)",
                         rule->id, rate, category_label(rule->category), (long long)total_cap);
                shown++;
            }
        } else {
            snprintf(q->burn_limited_by, sizeof q->burn_limited_by,
                     "points pay at most the non-promo part of the basket (%lld points)",
                     (long long)total_cap);
        }
    }
    if (burn > spendable) {
        burn = spendable;
        snprintf(q->burn_limited_by, sizeof q->burn_limited_by,
                 "balance: %lld points spendable now", (long long)spendable);
    }
    q->burned = burn;

    /* Fill the pots in rule order, then spread each pot over its lines. */
    int64_t left = burn;
    for (size_t r = 0; r <= KP_RULES_MAX && left > 0; r++) {
        if (pot_cap[r] == 0) continue;
        int64_t take = left < pot_cap[r] ? left : pot_cap[r];
        left -= take;
        distribute(net, pot, (int)r, n, take * mpp, points_minor);
    }
    assert(left == 0);
    if (any_burn_rule && basket->burn_request > 0) {
        for (size_t r = 0; r < program->n_rules; r++) {
            const kp_rule *rule = &program->rules[r];
            if (rule->kind != KP_RULE_BURN_LIMIT || pot_base[r] == 0) continue;
            kp_explain *x = explain_add(q, rule, rule->kind);
            x->base_minor = pot_base[r];
            x->rate_bp = rule->rate_bp;
            x->points = pot_cap[r];
            char rate[16], base[32];
            kp_percent_format(rule->rate_bp, rate, sizeof rate);
            kp_money_format(pot_base[r], base, sizeof base);
            snprintf(x->text, sizeof x->text, "points may pay %s of %s %s: at most %lld points",
                     rate, category_label(rule->category), base, (long long)pot_cap[r]);
        }
    }

    /* Take the burnt points from lots, earliest expiry first. The store loads
     * lots in that order; the engine checks rather than trusts it. */
    int64_t need = burn;
    for (size_t i = 0; i < account->n_lots && need > 0; i++) {
        const kp_lot *lot = &account->lots[i];
        if (i > 0) assert(account->lots[i - 1].expires_at <= lot->expires_at);
        if (!lot_spendable(lot, now)) continue;
        int64_t take = lot->remaining < need ? lot->remaining : need;
        q->takes[q->n_takes].lot_id = lot->id;
        q->takes[q->n_takes].points = take;
        q->n_takes++;
        need -= take;
    }
    assert(need == 0);

    /* Earn on what is paid in money. */
    for (size_t i = 0; i < n; i++) {
        paid[i] = net[i] - points_minor[i];
        assert(paid[i] >= 0);
        q->points_minor += points_minor[i];
        q->paid_minor += paid[i];
    }
    for (size_t r = 0; r < program->n_rules; r++) {
        const kp_rule *rule = &program->rules[r];
        if (rule->kind != KP_RULE_EARN_PERCENT) continue;
        int64_t cum = 0, given = 0;
        bool used = false;
        for (size_t i = 0; i < n; i++) {
            if (earn_rule[i] != (int)r) continue;
            used = true;
            cum += paid[i];
            int64_t upto = kp_muldiv(cum, rule->rate_bp, 10000 * mpp, program->rounding);
            earned[i] += upto - given;
            given = upto;
        }
        if (!used) continue;
        q->earned += given;
        kp_explain *x = explain_add(q, rule, rule->kind);
        x->base_minor = cum;
        x->rate_bp = rule->rate_bp;
        x->points = given;
        char rate[16], base[32];
        kp_percent_format(rule->rate_bp, rate, sizeof rate);
        kp_money_format(cum, base, sizeof base);
        snprintf(x->text, sizeof x->text, "%s of %s paid for %s = %lld points", rate, base,
                 category_label(rule->category), (long long)given);
    }
    if (first_min && account->purchases == 0 && q->paid_minor > 0 && q->earned < first_min->points) {
        int64_t bump = first_min->points - q->earned;
        int all[KP_LINES_MAX];
        for (size_t i = 0; i < n; i++) all[i] = 0;
        distribute(paid, all, 0, n, bump, earned);
        kp_explain *x = explain_add(q, first_min, first_min->kind);
        x->base_minor = q->paid_minor;
        x->points = bump;
        snprintf(x->text, sizeof x->text,
                 "first purchase earns at least %lld points: %lld added to the %lld earned",
                 (long long)first_min->points, (long long)bump, (long long)q->earned);
        q->earned += bump;
    }

    for (size_t i = 0; i < n; i++) {
        q->lines[i].discount_minor = 0;
        q->lines[i].points_minor = points_minor[i];
        q->lines[i].paid_minor = paid[i];
        q->lines[i].earned = earned[i];
    }
    q->balance_after = account->balance - q->burned + q->earned;
    return KP_OK;
}
