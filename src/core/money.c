/* money.c: integer rates, rounding and formatting of money and points. */
#include <kopilka/money.h>

#include <kopilka/check.h>

#include <stdio.h>
#include <string.h>

int64_t kp_muldiv(int64_t value, int64_t num, int64_t den, kp_rounding rounding)
{
    /* Checked in every build (check.h): there is no error path through an
     * amount, and a wrong amount must never reach a ledger. */
    KP_CHECK_ABORT(value >= 0 && num >= 0 && den > 0,
                   "kp_muldiv: value >= 0, num >= 0 and den > 0");
    /* Most products fit in 64 bits: dividing them there avoids the 128-bit
     * division's library call and gives the same quotient and remainder. */
    int64_t p64;
    if (!__builtin_mul_overflow(value, num, &p64)) {
        int64_t q64 = p64 / den, r64 = p64 % den;
        switch (rounding) {
        case KP_ROUND_DOWN: break;
        case KP_ROUND_HALF_UP:
            if (r64 >= den - r64) q64++;
            break;
        case KP_ROUND_UP:
            if (r64 != 0) q64++;
            break;
        }
        return q64;
    }
    __int128 p = (__int128)value * num;
    __int128 q = p / den;
    __int128 r = p % den;
    switch (rounding) {
    case KP_ROUND_DOWN: break;
    case KP_ROUND_HALF_UP:
        if (r * 2 >= den) q++;
        break;
    case KP_ROUND_UP:
        if (r != 0) q++;
        break;
    }
    KP_CHECK_ABORT(q <= INT64_MAX, "kp_muldiv: the result fits in 64 bits");
    return (int64_t)q;
}

bool kp_percent_parse(const char *text, int32_t *bp_out)
{
    /* Why a string: the program file must not carry binary floating point;
     * "12.5" is read digit by digit into 1250 basis points. */
    int64_t whole = 0, frac = 0;
    int frac_digits = 0;
    const char *p = text;
    if (*p < '0' || *p > '9') return false;
    while (*p >= '0' && *p <= '9') {
        whole = whole * 10 + (*p - '0');
        if (whole > 100000) return false;
        p++;
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') return false;
        while (*p >= '0' && *p <= '9') {
            if (++frac_digits > 2) return false;
            frac = frac * 10 + (*p - '0');
            p++;
        }
        if (frac_digits == 1) frac *= 10;
    }
    if (*p != '\0') return false;
    *bp_out = (int32_t)(whole * 100 + frac);
    return true;
}

void kp_percent_format(int32_t bp, char *out, size_t out_size)
{
    if (bp % 100 == 0)
        snprintf(out, out_size, "%d%%", bp / 100);
    else if (bp % 10 == 0)
        snprintf(out, out_size, "%d.%d%%", bp / 100, (bp % 100) / 10);
    else
        snprintf(out, out_size, "%d.%02d%%", bp / 100, bp % 100);
}

void kp_money_format(int64_t minor, char *out, size_t out_size)
{
    const char *sign = minor < 0 ? "-" : "";
    uint64_t v = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    snprintf(out, out_size, "%s%llu.%02llu", sign, (unsigned long long)(v / 100),
             (unsigned long long)(v % 100));
}

const char *kp_rounding_name(kp_rounding r)
{
    switch (r) {
    case KP_ROUND_DOWN: return "down";
    case KP_ROUND_HALF_UP: return "half_up";
    case KP_ROUND_UP: return "up";
    }
    return "?";
}
