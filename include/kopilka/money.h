/*
 * money.h: integer money and points. Money is in minor units (kopecks),
 * points are whole numbers; there is no floating point anywhere in either.
 * Rates are basis points (1 % = 100 bp). Every sum is overflow-checked.
 */
#ifndef KOPILKA_MONEY_H
#define KOPILKA_MONEY_H

#include "kopilka.h"

typedef enum kp_rounding {
    KP_ROUND_DOWN = 0, /* default: the customer never gets a fraction */
    KP_ROUND_HALF_UP,
    KP_ROUND_UP,
} kp_rounding;

/* Adds b to *acc; false (and *acc unchanged) on overflow. */
static inline bool kp_add_checked(int64_t *acc, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(*acc, b, &r)) return false;
    *acc = r;
    return true;
}

/* Returns round(value * num / den) with the given rounding, computed in 128
 * bits so it cannot overflow for value < 2^63 and num, den < 2^62.
 * value and num must be >= 0 and den > 0. A broken precondition or a result
 * past INT64_MAX is a bug: it logs the invariant's name and aborts, in every
 * build, NDEBUG or not (check.h), rather than return a wrong amount. */
int64_t kp_muldiv(int64_t value, int64_t num, int64_t den, kp_rounding rounding);

/* Parses a percentage written "12", "12.5" or "12.55" into basis points.
 * Returns false on anything else (negative, more than 2 decimals, > 100000 %). */
bool kp_percent_parse(const char *text, int32_t *bp_out);

/* Writes "12%" or "12.5%" for a rate in basis points. */
void kp_percent_format(int32_t bp, char *out, size_t out_size);

/* Writes "1 234.56" for 123456 minor units (2 decimals). */
void kp_money_format(int64_t minor, char *out, size_t out_size);

const char *kp_rounding_name(kp_rounding r);

#endif
