/*
 * card_number.h: card numbers. A number is 13 decimal digits: a 2-digit
 * program prefix, 10 random digits and a Luhn check digit (ISO/IEC 7812), so
 * a mistyped digit or a swap of two neighbours is caught at the till and
 * numbers cannot be guessed from one another.
 */
#ifndef KOPILKA_CARD_NUMBER_H
#define KOPILKA_CARD_NUMBER_H

#include "kopilka.h"

#define KP_CARD_DIGITS 13

/* True when `number` is all digits and its last digit is the Luhn check. */
bool kp_card_number_valid(const char *number);
/* The Luhn check digit ('0'..'9') for the digits of `payload`. */
char kp_card_luhn_digit(const char *payload);
/* Checks a typed number before it is looked up: a number in the form
 * Kopilka issues (KP_CARD_DIGITS digits) must carry its check digit, so a
 * mistyped digit is told as such, not as "no card with number". Any other
 * number (an imported old one: letters, dashes, other lengths) passes and is
 * looked up as it is. KP_ERR_INVALID with e->field = `field` ("card",
 * "new_card", ...) when the check digit is wrong. */
kp_err kp_card_number_check(const char *number, const char *field, kp_error *e);
/* What to answer when no card has `number`: the check-digit error above
 * when that is why, else KP_ERR_NOT_FOUND (reason unknown_card) on `field`.
 * Called after a lookup, never before: a card the database holds is served
 * whatever its digits (numbers imported from an older system). */
kp_err kp_card_unknown(const char *number, const char *field, kp_error *e);
/* Writes a new random number with `prefix` (2 digits) into out[KP_CARD_DIGITS+1]. */
void kp_card_number_generate(const char *prefix, char *out);

#endif
