/*
 * phone.h: telephone numbers as people type them, read by libphonenumber
 * (Google's metadata of every country's numbering plan, Debian's
 * libphonenumber-dev) and written in one form: E.164 ("+79167654321").
 *
 * This is the C face of a small C++ shim (phone.cc): no C++ type, exception
 * or allocation crosses it. Both functions are pure (the library's metadata
 * is loaded once, on first use, behind its own lock) and safe to call from
 * any thread.
 */
#ifndef KOPILKA_SERVICE_PHONE_H
#define KOPILKA_SERVICE_PHONE_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The longest typed text looked at, in bytes: more is refused, not cut. */
enum { KP_PHONE_TYPED_MAX = 64 };

/* Reads `typed` ("8 916 765-43-21", "+380 50 123 4567") as a number of
 * `region` (an ISO 3166 two-letter code, "RU") when it does not start with
 * + and the country code; "" or NULL: every number must start with +.
 * The number must be valid: a known country code, the right length and a
 * range in use (an operator or area code), with no extension.
 * On success writes "+" and 8 to 15 digits into out (out_size >= 17) and
 * returns true. On failure returns false, leaves out empty and points *why
 * at a static sentence for the user ("has too few digits ..."). */
bool kp_phone_e164(const char *typed, const char *region, char *out, size_t out_size,
                   const char **why);

/* True when libphonenumber knows `region` ("RU", "UA", "KZ", ...). */
bool kp_phone_region_known(const char *region);

#ifdef __cplusplus
}
#endif

#endif
