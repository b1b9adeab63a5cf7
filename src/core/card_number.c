/* card_number.c: Luhn check digits and random card numbers (libsodium RNG). */
#include <kopilka/card_number.h>

#include <sodium.h>
#include <string.h>

char kp_card_luhn_digit(const char *payload)
{
    size_t n = strlen(payload);
    int sum = 0;
    /* Doubling starts from the rightmost payload digit, which will sit just
     * left of the check digit. */
    for (size_t i = 0; i < n; i++) {
        int d = payload[n - 1 - i] - '0';
        if (i % 2 == 0) {
            d *= 2;
            if (d > 9) d -= 9;
        }
        sum += d;
    }
    return (char)('0' + (10 - sum % 10) % 10);
}

bool kp_card_number_valid(const char *number)
{
    size_t n = strlen(number);
    if (n < 2 || n >= KP_STR_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (number[i] < '0' || number[i] > '9') return false;
    char payload[KP_STR_MAX];
    memcpy(payload, number, n - 1);
    payload[n - 1] = '\0';
    return kp_card_luhn_digit(payload) == number[n - 1];
}

kp_err kp_card_number_check(const char *number, const char *field, kp_error *e)
{
    if (strlen(number) != KP_CARD_DIGITS) return KP_OK;
    for (const char *p = number; *p; p++)
        if (*p < '0' || *p > '9') return KP_OK;
    if (kp_card_number_valid(number)) return KP_OK;
    return kp_error_set(e, KP_ERR_INVALID, field,
                        "card number %s has a wrong check digit (its last digit): a digit was "
                        "mistyped or two neighbouring digits swapped; type the number again",
                        number);
}

kp_err kp_card_unknown(const char *number, const char *field, kp_error *e)
{
    kp_err err = kp_card_number_check(number, field, e);
    if (err) return err;
    return kp_error_setr(e, KP_ERR_NOT_FOUND, KP_REASON_UNKNOWN_CARD, field,
                         "no card with number %s", number);
}

/* The random digits come from one randombytes_buf() call for the whole
 * number (one getrandom system call; randombytes_uniform() per digit made
 * ten, a third of a large `cards issue`'s time). A byte below 250 gives the
 * digit byte % 10, each digit equally likely; the rest are skipped. */
void kp_card_number_generate(const char *prefix, char *out)
{
    out[0] = prefix[0];
    out[1] = prefix[1];
    unsigned char random[32];
    size_t used = sizeof random;
    for (int i = 2; i < KP_CARD_DIGITS - 1; i++) {
        unsigned char b;
        do {
            if (used == sizeof random) {
                randombytes_buf(random, sizeof random);
                used = 0;
            }
            b = random[used++];
        } while (b >= 250);
        out[i] = (char)('0' + b % 10);
    }
    sodium_memzero(random, sizeof random);
    out[KP_CARD_DIGITS - 1] = '\0';
    out[KP_CARD_DIGITS - 1] = kp_card_luhn_digit(out);
    out[KP_CARD_DIGITS] = '\0';
}
