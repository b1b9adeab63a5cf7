/*
 * engine.h: prices a basket under a program for one account at one instant.
 *
 * kp_engine_price() is pure: the same program, account state, basket and time
 * give the same result. It writes nothing; quotes, purchases, simulations and
 * tests all call it. It allocates nothing: every array is bounded (see the
 * limits in kopilka.h) and lives in the caller's structs.
 *
 * Order of work on a basket (docs/rules.md says the same):
 *  1. discounts (none of the core rule kinds gives one yet: discount = 0);
 *  2. burn: the request is clamped to the balance that is spendable now and to
 *     every burn_limit pot; points are taken from lots earliest expiry first;
 *  3. earn: each line's money part (amount - discount - paid with points) earns
 *     at the most specific earn_percent rule; then the first-purchase minimum.
 */
#ifndef KOPILKA_ENGINE_H
#define KOPILKA_ENGINE_H

#include "kopilka.h"
#include "program.h"

typedef struct kp_line {
    char sku[KP_STR_MAX];
    char category[KP_STR_MAX];
    int64_t amount_minor; /* total of the line, >= 0 */
    int64_t qty;          /* >= 1 */
    bool promo;           /* promotional: cannot be paid with points */
} kp_line;

typedef struct kp_basket {
    size_t n_lines;
    int64_t burn_request; /* points the customer asks to spend, >= 0 */
    kp_line lines[KP_LINES_MAX];
} kp_basket;

typedef struct kp_lot {
    int64_t id;            /* 0 for a lot not stored yet */
    char kind[16];         /* "regular", "premium", ... */
    int64_t amount;
    int64_t remaining;     /* 0..amount */
    kp_time earned_at;
    kp_time active_from;   /* spendable from */
    kp_time expires_at;    /* KP_TIME_NEVER = never */
} kp_lot;

/* What the engine needs to know of an account. */
typedef struct kp_account {
    int64_t id;
    int64_t balance;       /* = sum(lots.remaining) - debt */
    int64_t debt;          /* points owed after a return clawed back spent points */
    int64_t purchases;     /* purchases so far */
    int64_t spend_minor;   /* accumulated spend (returns lower it) */
    bool registered;
    size_t n_lots;
    kp_lot lots[KP_LOTS_MAX]; /* open lots (remaining > 0), burn order */
} kp_account;

typedef struct kp_line_result {
    int64_t discount_minor;
    int64_t points_minor;  /* part of the line paid with points, minor units */
    int64_t paid_minor;    /* amount - discount - points_minor */
    int64_t earned;        /* points this line earned */
} kp_line_result;

typedef struct kp_explain {
    char rule[48];
    kp_rule_kind kind;
    int64_t base_minor;    /* what the rate applied to */
    int32_t rate_bp;
    int64_t points;        /* points earned, or the cap of a burn limit */
    char text[192];        /* one sentence a cashier can read */
} kp_explain;

typedef struct kp_lot_take {
    int64_t lot_id;
    int64_t points;
} kp_lot_take;

typedef struct kp_quote {
    int64_t amount_minor;
    int64_t discount_minor;
    int64_t points_minor;  /* money value of the points burnt */
    int64_t paid_minor;
    int64_t burn_request;
    int64_t burned;
    int64_t earned;
    int64_t balance_before;
    int64_t balance_after;
    char burn_limited_by[192]; /* "" when the whole request was granted */
    size_t n_lines;
    kp_line_result lines[KP_LINES_MAX];
    size_t n_explain;
    kp_explain explain[KP_EXPLAIN_MAX];
    size_t n_takes;
    kp_lot_take takes[KP_LOTS_MAX];
} kp_quote;

/* Validates a basket against the limits: amounts in range, totals without
 * overflow, qty in range. Fills e->field with "lines[i].amount" etc. */
kp_err kp_basket_validate(const kp_basket *basket, kp_error *e);

/* Prices `basket` for `account` under `program` at `now` into *out.
 * Returns KP_ERR_INVALID/KP_ERR_OVERFLOW for a bad basket; out is zeroed first. */
kp_err kp_engine_price(const kp_program *program, const kp_account *account,
                       const kp_basket *basket, kp_time now, kp_quote *out, kp_error *e);

/* Spendable points of an account at `now` (active, unexpired lots, less debt). */
int64_t kp_account_spendable(const kp_account *account, kp_time now);

#endif
