/*
 * cobrand.h: a co-branded card's cashback (docs/coalition.md, "Co-branded
 * card"; docs/api.md, "Partners"): the bank partner's card transactions
 * credited to the holder's card as points, cashback = amount x the bank's
 * cashback share, rounded down to whole points at the value of a point in
 * the transaction's currency. Each transaction is a grant-like ledger
 * operation of its own under the store "#bank:<code>" and the bank's
 * transaction id as its receipt, so (bank, id) is unique and a transaction
 * sent again is answered as it was (the same fields) or refused (other
 * fields, 409); the points' lot is the bank's (kp_lot.partner) and the
 * credit books the bank's settlement entries ("issue", its per-point fee).
 * Fed by POST /v1/partner/card-transactions (the bank's
 * staff) and `kopilka import DB --card-transactions FILE.csv`.
 */
#ifndef KOPILKA_SERVICE_COBRAND_H
#define KOPILKA_SERVICE_COBRAND_H

#include "people.h"

enum {
    KP_CARD_TXNS_MAX = 1000, /* transactions one request carries at most */
};

/* One card transaction as the bank reports it. */
typedef struct kp_card_txn {
    char id[KP_STR_MAX];       /* the bank's transaction id */
    kp_time at;                /* when the card was used */
    char card[KP_STR_MAX];     /* the co-branded card's number (a Kopilka card) */
    int64_t amount_minor;      /* > 0, minor units of currency */
    char currency[4];          /* ISO 4217; the program's own */
    char merchant[KP_STR_MAX]; /* where (any merchant; kept in the answer) */
} kp_card_txn;

/* The bank partner `code` of the running program (NULL or "": its only
 * bank); KP_ERR_INVALID on field `field` naming the banks there are. */
kp_err kp_cobrand_bank(const kp_program *program, const char *code, const char *field,
                       const kp_partner **out, kp_error *e);

/* Checks a transaction before anything is written: id, card (a card of
 * the store, not replaced), amount, currency (the program's own: a
 * program's other currencies need a customer's account per currency,
 * which the currency work brings). Errors name `prefix` + the field. */
kp_err kp_card_txn_check(kp_office *o, const kp_card_txn *t, const char *prefix, kp_error *e);

/* Credits transaction t's cashback from `bank` in the caller's transaction
 * (checked first with kp_card_txn_check): *points given (0 when the
 * cashback is under one point: nothing is written), *replayed when the
 * same transaction was credited before. KP_ERR_CONFLICT (field `prefix`
 * "id") when the id was credited with other fields. Appends the
 * transaction's answer object to out (a comma before it when `comma`). */
kp_err kp_card_txn_credit(kp_office *o, const kp_partner *bank, const kp_card_txn *t,
                          const char *prefix, bool comma, kp_buf *out, int64_t *points,
                          bool *replayed, kp_error *e);

/* POST /v1/partner/card-transactions: {"transactions": [{"id", "at",
 * "card", "amount", "currency", "merchant"}]} from the bank's staff (o's
 * actor a partner's staff whose partner is a bank); every transaction is
 * checked before any is credited (errors name "transactions[i].field").
 * Answers {"bank", "credited": [{"id", "card", "points", "replayed"}],
 * "points"}. Audited once ("cobrand.credit"). */
kp_err kp_card_txns_http(kp_office *o, const char *body, size_t len, kp_buf *out, bool *replayed,
                         kp_error *e);

/* `kopilka import DB --card-transactions FILE.csv [--bank CODE]`: the CSV
 * (header id,at,card,amount,currency,merchant) checked whole, every bad
 * line reported through bad(ctx, line), then credited in one transaction
 * of the caller's. *credited, *replayed, *points: the counts. */
kp_err kp_card_txns_import(kp_office *o, const char *bank_code, const char *path,
                           void (*bad)(void *ctx, const char *line), void *ctx, int64_t *credited,
                           int64_t *replayed, int64_t *points, kp_error *e);

#endif
