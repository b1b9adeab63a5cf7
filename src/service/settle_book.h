/*
 * settle_book.h: the service's booking of settlement entries (coalition.h)
 * beside each ledger operation of a coalition program: the entries are
 * planned by settle.c's pure kp_settle_* and written with
 * kp_store_ops.settle->entries_put in the operation's own transaction,
 * booked at the server's `now` in its period (kp_settle_period_of in the
 * program's calendar). Every function does nothing for a program without
 * partners, so their till path is unchanged.
 */
#ifndef KOPILKA_SETTLE_BOOK_H
#define KOPILKA_SETTLE_BOOK_H

#include <kopilka/coalition.h>
#include <kopilka/store.h>

/* Writes `plan` as the entries of op `op_id` (nothing for an empty plan). */
kp_err kp_book_put(kp_store *st, const kp_program *p, int64_t op_id, kp_time now,
                   const kp_settle_plan *plan, kp_error *e);

/* A purchase at `store` in `currency` ("" = the program's own) stored as
 * op `op_id`, priced as `q` on `before`
 * (the account before it) at `at` with burn ceiling `burn_max` (-1 none).
 * When a partner-funded promotion priced a line, the basket is priced again
 * without such rules (kp_price_opts.no_partner_promos) for the promotion's
 * share. */
kp_err kp_book_purchase(kp_store *st, const kp_program *p, const char *store,
                        const char *currency, const kp_account *before, const kp_basket *basket,
                        const kp_quote *q, kp_time at, int64_t op_id, kp_time now, kp_error *e);

/* A return stored as op `op_id` of the purchase `orig_op_id` (earned and
 * burned points), all its returns having reversed earned_before and
 * burned_before before this one and earned_after, burned_after with it
 * (kp_settle_return_step). Nothing when the purchase booked no entry. */
kp_err kp_book_return(kp_store *st, const kp_program *p, int64_t orig_op_id, int64_t earned,
                      int64_t earned_before, int64_t earned_after, int64_t burned,
                      int64_t burned_before, int64_t burned_after, int64_t op_id, kp_time now,
                      kp_error *e);

/* What a return of `request` will have reversed of `record` before it:
 * the earned and burnt points of its earlier returns, as the ledger
 * computes them (call before kp_ledger_plan_return updates the record). */
void kp_book_return_before(const kp_purchase_record *record, int64_t *earned_before,
                           int64_t *burned_before);

/* An expiry plan of `account`, an account in `currency` ("" = the
 * program's own), stored as op `op_id`. */
kp_err kp_book_expire(kp_store *st, const kp_program *p, const char *currency,
                      const kp_account *account,
                      const kp_ledger_plan *plan, int64_t op_id, kp_time now, kp_error *e);

/* A credit of `points` from the issued account funded by `partner` ("" the
 * operator): a grant. */
kp_err kp_book_credit(kp_store *st, const kp_program *p, const char *partner, int64_t points,
                      int64_t op_id, kp_time now, kp_error *e);
/* The same for a credit to an account in `currency` ("" = the program's
 * own): a bank's cashback on a card transaction in that currency. */
kp_err kp_book_credit_in(kp_store *st, const kp_program *p, const char *partner,
                         const char *currency, int64_t points, int64_t op_id, kp_time now,
                         kp_error *e);

/* Points of `account`'s lots taken (`takes`) at `payee` ("" = the
 * operator: a rewards order, a transfer's sender). */
kp_err kp_book_burn(kp_store *st, const kp_program *p, const char *payee, const kp_account *account,
                    const kp_lot_take *takes, size_t n_takes, int64_t op_id, kp_time now,
                    kp_error *e);

/* The entries of operation `of_op_id` booked again negated as op `op_id`
 * (a cancelled rewards order). */
kp_err kp_book_negate(kp_store *st, const kp_program *p, int64_t of_op_id, int64_t op_id,
                      kp_time now, kp_error *e);

#endif
