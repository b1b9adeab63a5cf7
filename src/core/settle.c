/*
 * settle.c: the settlement entries of ledger operations at a coalition
 * program (coalition.h, docs/coalition.md "Funding follows the lots"). Pure:
 * the service plans them beside the ledger plan and the store writes both
 * in one transaction.
 *
 * Money: a point is worth kp_program_minor_per_point() of the receipt's
 * currency. Burns and promotions are whole points times that value, exact.
 * The per-point fee and the operator's share of breakage are percentages:
 * they round half up to the minor unit, once per entry (one operation, one
 * partner). A return scales the purchase's entries: each kind's points add
 * up exactly to what the return reverses (largest remainder), and each
 * entry's amount follows its points (half up).
 */
#include <kopilka/coalition.h>

#include <stdio.h>
#include <string.h>

#include <kopilka/money.h>

const char *kp_settle_kind_name(kp_settle_kind kind)
{
    switch (kind) {
    case KP_SETTLE_ISSUE: return "issue";
    case KP_SETTLE_BURN: return "burn";
    case KP_SETTLE_EXPIRE: return "expire";
    case KP_SETTLE_PROMO: return "promo";
    case KP_SETTLE_FEE: return "fee";
    }
    return "unknown";
}

static void plan_reset(kp_settle_plan *out)
{
    out->n = 0;
}

/* Appends one entry; KP_ERR_LIMIT past KP_SETTLE_ENTRIES_MAX (never for a
 * plan of one account's lots: at most KP_LOTS_MAX issuers and a few more). */
static kp_err add(kp_settle_plan *out, kp_settle_kind kind, const char *currency, const char *payer,
                  const char *payee, int64_t points, int64_t amount, kp_error *e)
{
    if (out->n == KP_SETTLE_ENTRIES_MAX)
        return kp_error_set(e, KP_ERR_LIMIT, "", "more than %d settlement entries in one operation",
                            KP_SETTLE_ENTRIES_MAX);
    kp_settle_entry *x = &out->entries[out->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->currency, sizeof x->currency, "%s", currency);
    x->kind = kind;
    snprintf(x->payer, sizeof x->payer, "%s", payer);
    snprintf(x->payee, sizeof x->payee, "%s", payee);
    x->points = points;
    x->amount_minor = amount;
    return KP_OK;
}

/* Starts a plan: empties it; for a coalition program sets *cur to the
 * currency entries are booked in (the receipt's, else the program's) and
 * *value to a point's value in it, and *go to true. KP_ERR_INVALID on
 * "currency" when the program does not accept it. */
static kp_err plan_start(const kp_program *p, const char *currency, kp_settle_plan *out, bool *go,
                         const char **cur, int64_t *value, kp_error *e)
{
    plan_reset(out);
    *go = kp_program_is_coalition(p);
    if (!*go) return KP_OK;
    *cur = currency && currency[0] ? currency : p->currency;
    *value = kp_program_minor_per_point(p, *cur);
    if (*value <= 0)
        return kp_error_set(e, KP_ERR_INVALID, "currency",
                            "the program does not accept %s: its currency is %s", *cur,
                            p->currency);
    return KP_OK;
}

/* points x value x bp / 10000, half up: a fee per point or a share of
 * breakage. */
static int64_t share(int64_t points, int64_t value, int32_t bp)
{
    if (points == 0 || bp == 0) return 0;
    return kp_muldiv(points * value, bp, 10000, KP_ROUND_HALF_UP);
}

/* The issuer of lot `id` of the account ("" when it is not there: a lot of
 * the operator's is the only kind that can be unknown to a plan). */
static const char *issuer_of(const kp_account *account, int64_t id)
{
    for (size_t i = 0; i < account->n_lots; i++)
        if (account->lots[i].id == id) return account->lots[i].partner;
    return KP_OPERATOR;
}

/* BURN entries of `takes` at a store of `payee`: one per issuer, in the
 * order the lots were taken. */
static kp_err burn_entries(const kp_account *account, const kp_lot_take *takes, size_t n_takes,
                           const char *payee, const char *currency, int64_t value,
                           kp_settle_plan *out, kp_error *e)
{
    size_t first = out->n;
    for (size_t t = 0; t < n_takes; t++) {
        if (takes[t].points == 0) continue;
        const char *issuer = issuer_of(account, takes[t].lot_id);
        kp_settle_entry *x = NULL;
        for (size_t i = first; i < out->n && x == NULL; i++)
            if (strcmp(out->entries[i].payer, issuer) == 0) x = &out->entries[i];
        if (x == NULL) {
            kp_err err = add(out, KP_SETTLE_BURN, currency, issuer, payee, 0, 0, e);
            if (err) return err;
            x = &out->entries[out->n - 1];
        }
        x->points += takes[t].points;
    }
    for (size_t i = first; i < out->n; i++) {
        kp_settle_entry *x = &out->entries[i];
        x->amount_minor = strcmp(x->payer, x->payee) != 0 ? x->points * value : 0;
    }
    return KP_OK;
}

/* The funder of the partner-funded promotion that priced the basket: the
 * `partner` of the first line's rule that has an `at_partner`; NULL when
 * no such rule priced a line. */
static const char *promo_funder(const kp_program *p, const kp_quote *quote)
{
    for (size_t i = 0; i < quote->n_lines; i++) {
        int r = quote->lines[i].earn_rule;
        if (r >= 0 && (size_t)r < p->n_rules && p->rules[r].at_partner[0] &&
            quote->lines[i].earned > 0)
            return p->rules[r].partner;
    }
    return NULL;
}

kp_err kp_settle_purchase(const kp_program *p, const char *store, const char *currency,
                          const kp_account *account, const kp_quote *quote,
                          int64_t earned_without_promos, kp_settle_plan *out, kp_error *e)
{
    const char *cur = NULL;
    int64_t value = 0;
    bool go;
    kp_err err = plan_start(p, currency, out, &go, &cur, &value, e);
    if (err || !go) return err;
    const char *seller = kp_program_partner_of_store(p, store);
    const kp_partner *sp = kp_program_partner(p, seller);
    if (quote->earned != 0 &&
        (err = add(out, KP_SETTLE_ISSUE, cur, seller, seller, quote->earned, 0, e)))
        return err;
    int64_t added = quote->earned - earned_without_promos;
    const char *funder = added > 0 ? promo_funder(p, quote) : NULL;
    if (funder != NULL && strcmp(funder, seller) != 0 &&
        (err = add(out, KP_SETTLE_PROMO, cur, funder, seller, added, added * value, e)))
        return err;
    if ((err = burn_entries(account, quote->takes, quote->n_takes, seller, cur, value, out, e)))
        return err;
    if (sp != NULL && sp->fee_per_operation_minor > 0 &&
        (err =
             add(out, KP_SETTLE_FEE, cur, seller, KP_OPERATOR, 0, sp->fee_per_operation_minor, e)))
        return err;
    if (sp != NULL && sp->fee_per_point_bp > 0 && quote->earned > 0 &&
        (err = add(out, KP_SETTLE_FEE, cur, seller, KP_OPERATOR, quote->earned,
                   share(quote->earned, value, sp->fee_per_point_bp), e)))
        return err;
    return KP_OK;
}

kp_err kp_settle_burn(const kp_program *p, const char *payee, const char *currency,
                      const kp_account *account, const kp_lot_take *takes, size_t n_takes,
                      kp_settle_plan *out, kp_error *e)
{
    const char *cur = NULL;
    int64_t value = 0;
    bool go;
    kp_err err = plan_start(p, currency, out, &go, &cur, &value, e);
    if (err || !go) return err;
    return burn_entries(account, takes, n_takes, payee ? payee : KP_OPERATOR, cur, value, out, e);
}

/* Whether entry x is scaled by the earned points (else by the burnt ones);
 * per-operation fees (a FEE of 0 points) are not scaled at all. */
static bool by_earned(const kp_settle_entry *x)
{
    return x->kind != KP_SETTLE_BURN;
}

kp_err kp_settle_return(const kp_settle_entry *original, size_t n, int64_t earned,
                        int64_t earned_reversed, int64_t burned, int64_t burned_refunded,
                        kp_settle_plan *out, kp_error *e)
{
    plan_reset(out);
    if (earned_reversed < 0 || earned_reversed > earned || burned_refunded < 0 ||
        burned_refunded > burned)
        return kp_error_set(e, KP_ERR_INVALID, "", "a return reverses more than its purchase");
    if (n > KP_SETTLE_ENTRIES_MAX)
        return kp_error_set(e, KP_ERR_LIMIT, "", "more than %d settlement entries in one operation",
                            KP_SETTLE_ENTRIES_MAX);
    /* Each kind apart: its points scaled by num/den, the total floored, then
     * the points left over go one each to the largest remainders (the
     * earlier entry on a tie). */
    static const kp_settle_kind kinds[] = {KP_SETTLE_ISSUE, KP_SETTLE_PROMO, KP_SETTLE_BURN,
                                           KP_SETTLE_FEE, KP_SETTLE_EXPIRE};
    int64_t got[KP_SETTLE_ENTRIES_MAX], rem[KP_SETTLE_ENTRIES_MAX];
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        int64_t sum = 0;
        size_t first = SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
            const kp_settle_entry *x = &original[i];
            if (x->kind != kinds[k] || x->points == 0) continue;
            if (first == SIZE_MAX) first = i;
            sum += x->points;
        }
        if (first == SIZE_MAX || kinds[k] == KP_SETTLE_EXPIRE) continue;
        int64_t num = by_earned(&original[first]) ? earned_reversed : burned_refunded;
        int64_t den = by_earned(&original[first]) ? earned : burned;
        if (den == 0) continue;
        int64_t total = kp_muldiv(sum, num, den, KP_ROUND_DOWN), given = 0;
        for (size_t i = 0; i < n; i++) {
            const kp_settle_entry *x = &original[i];
            if (x->kind != kinds[k] || x->points == 0) continue;
            got[i] = kp_muldiv(x->points, num, den, KP_ROUND_DOWN);
            rem[i] = (int64_t)((__int128)x->points * num - (__int128)got[i] * den); /* [0, den) */
            given += got[i];
        }
        for (; given < total; given++) {
            size_t best = SIZE_MAX;
            for (size_t i = 0; i < n; i++) {
                const kp_settle_entry *x = &original[i];
                if (x->kind != kinds[k] || x->points == 0) continue;
                if (best == SIZE_MAX || rem[i] > rem[best]) best = i;
            }
            got[best]++;
            rem[best] = -1;
        }
        for (size_t i = 0; i < n; i++) {
            const kp_settle_entry *x = &original[i];
            if (x->kind != kinds[k] || x->points == 0 || got[i] == 0) continue;
            int64_t amount = kp_muldiv(x->amount_minor, got[i], x->points, KP_ROUND_HALF_UP);
            kp_err err = add(out, x->kind, x->currency, x->payer, x->payee, -got[i], -amount, e);
            if (err) return err;
        }
    }
    return KP_OK;
}

kp_err kp_settle_expire(const kp_program *p, const char *currency, const kp_account *account,
                        const kp_ledger_plan *plan, kp_settle_plan *out, kp_error *e)
{
    const char *cur = NULL;
    int64_t value = 0;
    bool go;
    kp_err err = plan_start(p, currency, out, &go, &cur, &value, e);
    if (err || !go) return err;
    for (size_t c = 0; c < plan->n_changes; c++) {
        if (plan->changes[c].delta >= 0) continue;
        const char *issuer = issuer_of(account, plan->changes[c].lot_id);
        kp_settle_entry *x = NULL;
        for (size_t i = 0; i < out->n && x == NULL; i++)
            if (strcmp(out->entries[i].payer, issuer) == 0) x = &out->entries[i];
        if (x == NULL) {
            if ((err = add(out, KP_SETTLE_EXPIRE, cur, issuer, KP_OPERATOR, 0, 0, e))) return err;
            x = &out->entries[out->n - 1];
        }
        x->points -= plan->changes[c].delta;
    }
    for (size_t i = 0; i < out->n; i++) {
        const kp_partner *ip = kp_program_partner(p, out->entries[i].payer);
        out->entries[i].amount_minor =
            ip ? share(out->entries[i].points, value, ip->breakage_to_operator_bp) : 0;
    }
    return KP_OK;
}

kp_err kp_settle_credit(const kp_program *p, const char *partner, const char *currency,
                        int64_t points, kp_settle_plan *out, kp_error *e)
{
    const char *cur = NULL;
    int64_t value = 0;
    bool go;
    kp_err err = plan_start(p, currency, out, &go, &cur, &value, e);
    if (err || !go || points == 0) return err;
    const char *issuer = partner ? partner : KP_OPERATOR;
    const kp_partner *ip = kp_program_partner(p, issuer);
    if (issuer[0] && ip == NULL)
        return kp_error_set(e, KP_ERR_INVALID, "partner", "the program has no partner \"%s\"",
                            issuer);
    if ((err = add(out, KP_SETTLE_ISSUE, cur, issuer, issuer, points, 0, e))) return err;
    if (ip != NULL && ip->fee_per_point_bp > 0 && points > 0)
        err = add(out, KP_SETTLE_FEE, cur, issuer, KP_OPERATOR, points,
                  share(points, value, ip->fee_per_point_bp), e);
    return err;
}

kp_err kp_settle_return_step(const kp_settle_entry *original, size_t n, int64_t earned,
                             int64_t earned_before, int64_t earned_after, int64_t burned,
                             int64_t burned_before, int64_t burned_after, kp_settle_plan *out,
                             kp_error *e)
{
    static _Thread_local kp_settle_plan before;
    kp_err err = kp_settle_return(original, n, earned, earned_after, burned, burned_after, out, e);
    if (err == KP_OK)
        err =
            kp_settle_return(original, n, earned, earned_before, burned, burned_before, &before, e);
    if (err) {
        plan_reset(out);
        return err;
    }
    /* Each (kind, payer, payee) appears once in a plan: subtract the
     * earlier returns' share, entry by entry, and drop what nets to 0. */
    size_t w = 0;
    for (size_t i = 0; i < out->n; i++) {
        kp_settle_entry x = out->entries[i];
        for (size_t j = 0; j < before.n; j++) {
            const kp_settle_entry *b = &before.entries[j];
            if (b->kind == x.kind && strcmp(b->payer, x.payer) == 0 &&
                strcmp(b->payee, x.payee) == 0) {
                x.points -= b->points;
                x.amount_minor -= b->amount_minor;
                break;
            }
        }
        if (x.points != 0 || x.amount_minor != 0) out->entries[w++] = x;
    }
    out->n = w;
    return KP_OK;
}
