/*
 * ledger.h: the points ledger. Turns a priced purchase, or a return, into a
 * plan of changes: balanced double-entry postings, lot changes, the account's
 * new balance and debt. Pure: the store applies a plan atomically, so the
 * ledger logic is the same for SQLite, PostgreSQL and the tests.
 *
 * Invariants every plan keeps (checked in every build, NDEBUG or not, by
 * kp_ledger_plan_check(); checked on disk by `verify`):
 *  - the postings of one operation sum to zero;
 *  - an account's balance equals the sum of its postings, and equals
 *    sum(lots.remaining) - debt;
 *  - no lot goes below zero or above its amount; debt is never negative;
 *  - a credit repays debt before it creates a lot;
 *  - an account has at most KP_LOTS_MAX open lots: at that many, a credit
 *    joins an open lot of its kind and pending state (the later expiry of
 *    the two is kept); with none to join, or when a return reopens spent
 *    lots past the cap, the plan asks the store to merge the nearest pairs
 *    (kp_lots_merge_plan()) in the same transaction (lots_merge below).
 */
#ifndef KOPILKA_LEDGER_H
#define KOPILKA_LEDGER_H

#include "engine.h"

typedef enum kp_op_type {
    KP_OP_PURCHASE = 1,
    KP_OP_RETURN = 2,
    KP_OP_ADJUST = 3,
    KP_OP_EXPIRE = 4,
    KP_OP_OPENING = 5,
    KP_OP_GRANT = 6,
    KP_OP_TRANSFER = 7,
    KP_OP_REWARD = 8,        /* points paying a rewards catalog order (catalog.h) */
    KP_OP_REWARD_CANCEL = 9, /* a cancelled order's points given back */
} kp_op_type;

const char *kp_op_type_name(kp_op_type type);

/* System ledger accounts have negative ids so they never meet a customer's. */
enum {
    KP_SYS_ISSUED = -1,     /* points given by the program (its liability) */
    KP_SYS_REDEEMED = -2,   /* points spent at a till */
    KP_SYS_EXPIRED = -3,    /* points that expired */
    KP_SYS_ADJUSTMENT = -4, /* manual adjustments */
    KP_SYS_OPENING = -5,    /* opening balances of imported accounts */
    KP_SYS_TRANSFER = -6,   /* transit of a transfer between customers: nets to 0 */
    KP_SYS__MIN = -6,
};
const char *kp_sys_account_name(int64_t id);

typedef struct kp_posting {
    int64_t account; /* customer account id (> 0) or KP_SYS_* (< 0) */
    int64_t points;  /* + credit to the account, - debit */
} kp_posting;

typedef struct kp_lot_change {
    int64_t lot_id;
    int64_t delta; /* remaining += delta */
} kp_lot_change;

typedef struct kp_ledger_plan {
    kp_op_type type;
    int64_t account_id;
    size_t n_postings;
    kp_posting postings[8];
    size_t n_changes;
    kp_lot_change changes[KP_LOTS_MAX];
    bool has_new_lot;
    kp_lot new_lot; /* new_lot.id != 0: add to that existing lot instead, whose
                     * start and expiry become the later of its own and
                     * new_lot's (an account at KP_LOTS_MAX open lots) */
    int64_t balance_after;
    int64_t debt_after;
    int64_t purchases_delta;
    int64_t spend_delta_minor;
    bool too_many_changes; /* more than KP_LOTS_MAX lots changed: refused */
    bool lots_full;        /* at KP_LOTS_MAX, a credit found no lot to join and no pair of
                            * lots that may merge to make room: refused */
    /* Set only when the plan would leave the account over KP_LOTS_MAX open
     * lots (a credit at the cap with no lot to join, a return reopening
     * spent lots at the cap): after the lot changes and the new lot, the
     * store merges the account's open lots down to KP_LOTS_MAX with
     * kp_lots_merge_plan() at lots_merge_at, in the same transaction, and
     * fails the plan with KP_ERR_LIMIT if they cannot merge that far.
     * Merges keep every point, the later expiry and the later start. */
    bool lots_merge;
    kp_time lots_merge_at;
} kp_ledger_plan;

/* Checks a plan's invariants in every build: postings sum to zero (without
 * overflow), debt is never negative, at most KP_LOTS_MAX lot changes.
 * KP_ERR_INTERNAL (logged to stderr with the invariant's name, check.h) for a
 * broken invariant, KP_ERR_LIMIT for too many lot changes; e may be NULL.
 * Every kp_ledger_plan_* function ends with it, and the store calls it again
 * before applying a plan. */
kp_err kp_ledger_plan_check(const kp_ledger_plan *plan, kp_error *e);

/* One line of a stored purchase, with how much of it was returned. */
typedef struct kp_op_line {
    kp_line line;
    kp_line_result result;
    int64_t returned_qty;
} kp_op_line;

/* What a return needs to know of the purchase it reverses. */
typedef struct kp_purchase_record {
    int64_t op_id;
    int64_t account_id;
    int64_t earned;
    int64_t burned;
    int64_t points_minor;
    bool not_joined;      /* the purchase was under the joining minimum: added no spend */
    size_t n_lines;
    kp_op_line lines[KP_LINES_MAX];
    size_t n_takes;
    kp_lot_take takes[KP_LOTS_MAX];
} kp_purchase_record;

/* A return request: which lines, how many (qty 0 = all that is left). */
typedef struct kp_return_request {
    bool whole;
    size_t n_lines;
    struct { char sku[KP_STR_MAX]; int64_t qty; } lines[KP_LINES_MAX];
} kp_return_request;

typedef struct kp_return_result {
    int64_t earned_reversed;
    int64_t burned_refunded;
    int64_t spend_reversed_minor;  /* net of discounts: what accumulated spend loses */
    int64_t amount_reversed_minor; /* the receipt amount returned, before discounts */
    size_t n_lines;
    struct { size_t index; int64_t qty; int64_t earned_reversed; int64_t points_minor; } lines[KP_LINES_MAX];
} kp_return_result;

/* Plans a purchase priced by kp_engine_price(). `program` gives the kind,
 * pending period and validity of the earned lot. */
kp_err kp_ledger_plan_purchase(const kp_program *program, const kp_account *account,
                               const kp_basket *basket, const kp_quote *quote, kp_time now,
                               kp_ledger_plan *plan);
/* The same, the earned lot issued by partner `issuer` (kp_lot.partner: the
 * store's partner in a coalition program; "" or NULL = the operator, as
 * kp_ledger_plan_purchase): it joins only an open lot of that issuer. */
kp_err kp_ledger_plan_purchase_issued(const kp_program *program, const kp_account *account,
                                      const kp_basket *basket, const kp_quote *quote,
                                      const char *issuer, kp_time now, kp_ledger_plan *plan);

/* Plans a return of `request` against `record` (updating record's
 * returned_qty). Refunds the burnt points to the lots they came from and
 * claws back the earned points; if they were spent, the account goes into
 * debt, which later credits repay. A refund that reopens spent lots past
 * KP_LOTS_MAX sets plan->lots_merge, merging at `now`. KP_ERR_INVALID when a line is unknown or
 * more is returned than is left. */
kp_err kp_ledger_plan_return(const kp_account *account, kp_purchase_record *record,
                             const kp_return_request *request, kp_return_result *result,
                             kp_time now, kp_ledger_plan *plan, kp_error *e);

/* Plans a credit (adjustment, grant, opening balance) of `points` > 0 from
 * system account `source` as a new lot `lot` (its `partner` the issuer:
 * the grant's funder, "" = the operator), or a debit (points < 0) taken
 * earliest expiry first; a debit past the balance fails with KP_ERR_INVALID. */
kp_err kp_ledger_plan_move(const kp_account *account, kp_op_type type, int64_t source,
                           int64_t points, const kp_lot *lot, kp_time now,
                           kp_ledger_plan *plan, kp_error *e);

/* Plans the points of a rewards catalog order (KP_OP_REWARD): `points`
 * (> 0) taken from the account's spendable lots of `kind` ("" = any kind):
 * active at `now`, not expired, in burn order (earliest expiry first),
 * moved to KP_SYS_REDEEMED. The lots taken go to takes[KP_LOTS_MAX] and
 * *n_takes, for the cancellation. KP_ERR_LIMIT on field "points" when the
 * account has fewer such points (or a smaller balance, debt counted): the
 * message says how many it has. */
kp_err kp_ledger_plan_reward(const kp_account *account, const char *kind, int64_t points,
                             kp_time now, kp_ledger_plan *plan, kp_lot_take *takes,
                             size_t *n_takes, kp_error *e);

/* Plans the cancellation of such an order (KP_OP_REWARD_CANCEL): the
 * points of its n takes go back from KP_SYS_REDEEMED to the lots they came
 * from (debt repaid first, as a return's refund), an expired lot keeping
 * its expiry; reopening spent lots past KP_LOTS_MAX sets lots_merge. */
kp_err kp_ledger_plan_reward_cancel(const kp_account *account, const kp_lot_take *takes,
                                    size_t n, kp_time now, kp_ledger_plan *plan, kp_error *e);

/* Plans the expiry of every lot of `account` that expired at or before
 * `now` with points left: they move to KP_SYS_EXPIRED. Sets *expired to the
 * points; plan->n_changes is 0 when no lot expired. A plan expires at most
 * KP_LOTS_MAX lots: when n_changes is KP_LOTS_MAX, apply it and plan again. */
kp_err kp_ledger_plan_expire(const kp_account *account, kp_time now, kp_ledger_plan *plan,
                             int64_t *expired);

/* One merge of kp_lots_merge_plan(): lot `from_id` gives its remaining
 * points to lot `into_id`, whose start and expiry become active_from and
 * expires_at (the later of the two lots' each). */
typedef struct kp_lot_merge {
    int64_t into_id;
    int64_t from_id;
    int64_t points;
    kp_time active_from;
    kp_time expires_at;
} kp_lot_merge;

/* Plans merges that bring `n` open lots in burn order (earliest expiry
 * first) down to at most `max`, the way a credit joins a lot at the cap:
 * only lots of the same kind, pending state at `now` and issuer merge, the pair with
 * the nearest expiries first, and the merged lot keeps the later expiry and
 * start, so no customer loses a day of validity and no pending point becomes
 * spendable early. Rewrites lots[] (the merged ones removed, *n updated) and
 * writes the merges to merges[] (room for the original *n - max). Returns
 * the number of merges; *n stays above max when no more lots can merge. For
 * an operator's one-off repair (`kopilka lots merge`): O(n^2). */
size_t kp_lots_merge_plan(kp_lot *lots, size_t *n, size_t max, kp_time now, kp_lot_merge *merges);

#endif
