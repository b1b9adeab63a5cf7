/*
 * settle_book.c: settlement entries booked beside ledger operations of a
 * coalition program (settle_book.h says what each function books).
 */
#include "settle_book.h"

#include <stdlib.h>
#include <string.h>

#include <kopilka/engine.h>
#include <kopilka/money.h>

kp_err kp_book_put(kp_store *st, const kp_program *p, int64_t op_id, kp_time now,
                   const kp_settle_plan *plan, kp_error *e)
{
    if (plan->n == 0) return KP_OK;
    kp_err err = st->ops->settle->entries_put(
        st, op_id, now, kp_settle_period_of(now, p->utc_offset_minutes), plan->entries, plan->n);
    if (err)
        return kp_error_set(e, err, "", "cannot book the settlement entries of operation %lld: %s",
                            (long long)op_id, st->last_error);
    return KP_OK;
}

static kp_settle_plan *plan_new(kp_error *e)
{
    kp_settle_plan *plan = malloc(sizeof *plan);
    if (plan == NULL) kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    return plan;
}

/* Whether a partner-funded promotion (a rule with at_partner) earned on a
 * line of the quote. */
static bool promo_priced(const kp_program *p, const kp_quote *q)
{
    for (size_t i = 0; i < q->n_lines; i++) {
        int r = q->lines[i].earn_rule;
        if (r >= 0 && (size_t)r < p->n_rules && p->rules[r].at_partner[0] && q->lines[i].earned)
            return true;
    }
    return false;
}

kp_err kp_book_purchase(kp_store *st, const kp_program *p, const char *store,
                        const char *currency, const kp_account *before, const kp_basket *basket,
                        const kp_quote *q, kp_time at, int64_t op_id, kp_time now, kp_error *e)
{
    if (!kp_program_is_coalition(p)) return KP_OK;
    int64_t without = q->earned;
    kp_err err = KP_OK;
    if (promo_priced(p, q)) {
        kp_quote *q2 = malloc(sizeof *q2);
        if (q2 == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        kp_price_opts opts = {.store = store,
                              .burn_max = q->burned,
                              .currency = currency,
                              .no_partner_promos = true,
                              .index = p->compiled,
                              .defer_text = true}; /* only its points are read */
        err = kp_engine_price_opts(p, before, basket, &opts, at, q2, e);
        if (err == KP_OK) without = q2->earned < q->earned ? q2->earned : q->earned;
        free(q2);
        if (err) return err;
    }
    kp_settle_plan *plan = plan_new(e);
    if (plan == NULL) return KP_ERR_NOMEM;
    err = kp_settle_purchase(p, store, currency, before, q, without, plan, e);
    if (err == KP_OK) err = kp_book_put(st, p, op_id, now, plan, e);
    free(plan);
    return err;
}

void kp_book_return_before(const kp_purchase_record *rec, int64_t *earned_before,
                           int64_t *burned_before)
{
    int64_t earned = 0, pm = 0;
    for (size_t i = 0; i < rec->n_lines; i++) {
        const kp_op_line *ol = &rec->lines[i];
        if (ol->line.qty == 0) continue;
        earned += kp_muldiv(ol->result.earned, ol->returned_qty, ol->line.qty, KP_ROUND_DOWN);
        pm += kp_muldiv(ol->result.points_minor, ol->returned_qty, ol->line.qty, KP_ROUND_DOWN);
    }
    *earned_before = earned;
    *burned_before =
        rec->points_minor ? kp_muldiv(rec->burned, pm, rec->points_minor, KP_ROUND_DOWN) : 0;
}

kp_err kp_book_return(kp_store *st, const kp_program *p, int64_t orig_op_id, int64_t earned,
                      int64_t earned_before, int64_t earned_after, int64_t burned,
                      int64_t burned_before, int64_t burned_after, int64_t op_id, kp_time now,
                      kp_error *e)
{
    if (!kp_program_is_coalition(p)) return KP_OK;
    kp_settle_plan *orig = plan_new(e), *plan = orig ? plan_new(e) : NULL;
    if (plan == NULL) {
        free(orig);
        return KP_ERR_NOMEM;
    }
    kp_err err = st->ops->settle->entries_of_op(st, orig_op_id, orig->entries,
                                                KP_SETTLE_ENTRIES_MAX, &orig->n);
    if (err)
        err = kp_error_set(e, err, "", "cannot read the settlement entries of operation %lld: %s",
                           (long long)orig_op_id, st->last_error);
    if (err == KP_OK && orig->n > 0)
        err = kp_settle_return_step(orig->entries, orig->n, earned, earned_before, earned_after,
                                    burned, burned_before, burned_after, plan, e);
    if (err == KP_OK && orig->n > 0) err = kp_book_put(st, p, op_id, now, plan, e);
    free(orig);
    free(plan);
    return err;
}

kp_err kp_book_expire(kp_store *st, const kp_program *p, const char *currency,
                      const kp_account *account,
                      const kp_ledger_plan *lp, int64_t op_id, kp_time now, kp_error *e)
{
    if (!kp_program_is_coalition(p)) return KP_OK;
    kp_settle_plan *plan = plan_new(e);
    if (plan == NULL) return KP_ERR_NOMEM;
    kp_err err = kp_settle_expire(p, currency, account, lp, plan, e);
    if (err == KP_OK) err = kp_book_put(st, p, op_id, now, plan, e);
    free(plan);
    return err;
}

kp_err kp_book_credit(kp_store *st, const kp_program *p, const char *partner, int64_t points,
                      int64_t op_id, kp_time now, kp_error *e)
{
    return kp_book_credit_in(st, p, partner, "", points, op_id, now, e);
}

kp_err kp_book_credit_in(kp_store *st, const kp_program *p, const char *partner,
                         const char *currency, int64_t points, int64_t op_id, kp_time now,
                         kp_error *e)
{
    if (!kp_program_is_coalition(p)) return KP_OK;
    kp_settle_plan *plan = plan_new(e);
    if (plan == NULL) return KP_ERR_NOMEM;
    kp_err err = kp_settle_credit(p, partner, currency, points, plan, e);
    if (err == KP_OK) err = kp_book_put(st, p, op_id, now, plan, e);
    free(plan);
    return err;
}

kp_err kp_book_burn(kp_store *st, const kp_program *p, const char *payee, const kp_account *account,
                    const kp_lot_take *takes, size_t n_takes, int64_t op_id, kp_time now,
                    kp_error *e)
{
    if (!kp_program_is_coalition(p)) return KP_OK;
    kp_settle_plan *plan = plan_new(e);
    if (plan == NULL) return KP_ERR_NOMEM;
    kp_err err = kp_settle_burn(p, payee, "", account, takes, n_takes, plan, e);
    if (err == KP_OK) err = kp_book_put(st, p, op_id, now, plan, e);
    free(plan);
    return err;
}

kp_err kp_book_negate(kp_store *st, const kp_program *p, int64_t of_op_id, int64_t op_id,
                      kp_time now, kp_error *e)
{
    if (!kp_program_is_coalition(p)) return KP_OK;
    kp_settle_plan *plan = plan_new(e);
    if (plan == NULL) return KP_ERR_NOMEM;
    kp_err err = st->ops->settle->entries_of_op(st, of_op_id, plan->entries, KP_SETTLE_ENTRIES_MAX,
                                                &plan->n);
    if (err)
        err = kp_error_set(e, err, "", "cannot read the settlement entries of operation %lld: %s",
                           (long long)of_op_id, st->last_error);
    for (size_t i = 0; err == KP_OK && i < plan->n; i++) {
        plan->entries[i].points = -plan->entries[i].points;
        plan->entries[i].amount_minor = -plan->entries[i].amount_minor;
    }
    if (err == KP_OK) err = kp_book_put(st, p, op_id, now, plan, e);
    free(plan);
    return err;
}
