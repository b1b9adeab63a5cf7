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
/* Writes a new random number with `prefix` (2 digits) into out[KP_CARD_DIGITS+1]. */
void kp_card_number_generate(const char *prefix, char *out);

#endif
