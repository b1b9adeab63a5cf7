/*
 * clock.h: time, injectable. The library never reads the system clock on its
 * own: callers pass "now", and kp_clock lets a server or a test decide what
 * now is (the real clock, or a fixed instant).
 */
#ifndef KOPILKA_CLOCK_H
#define KOPILKA_CLOCK_H

#include "kopilka.h"

typedef struct kp_clock {
    kp_time fixed; /* when non-zero, now() returns this */
} kp_clock;

kp_time kp_clock_now(const kp_clock *clock);

/* Parses RFC 3339 ("2026-11-23T10:00:00Z", "...+03:00", fraction ignored). */
bool kp_time_parse(const char *text, kp_time *out);

/* Formats as "2026-11-23T10:00:00Z" into out (at least 21 bytes). */
void kp_time_format(kp_time t, char *out, size_t out_size);

/* Adds whole months in UTC, clamping the day (Jan 31 + 1 month = Feb 28/29). */
kp_time kp_time_add_months(kp_time t, int months);

/* The UTC calendar date of t, and the instant a UTC date starts. Month
 * 1..12, day 1..31; kp_time_from_civil clamps the day to the month. */
void kp_time_to_civil(kp_time t, int *year, int *month, int *day);
kp_time kp_time_from_civil(int year, int month, int day);

#define KP_DAY_SECONDS 86400

#endif
