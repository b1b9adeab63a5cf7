/*
 * login_limit.h: the limits on login attempts (docs/api.md, "Login
 * limits"), counted in the server's memory: each server counts its own,
 * and a restart forgets the counts, as the per-contact limit of login
 * codes does (src/notify/office.h).
 *
 * A kp_attempts counts attempts per key (a staff login, a client address)
 * over a sliding window: at most `limit` within `window_s` seconds. A
 * route takes an attempt before it does the work and gives it back when
 * the attempt turned out not to be a failure, so concurrent attempts
 * cannot overshoot the limit, and only failures are left counted. Keys are
 * kept as keyed hashes (a random key per process), so a table in memory
 * names no login and no address. The table has a fixed size: a key whose
 * neighbourhood is full takes the place of the one there that was tried
 * longest ago, never refusing a newcomer (which would let one client lock
 * everyone out by filling the table).
 *
 * Thread-safe (one lock per kp_attempts, held for a few hundred
 * nanoseconds).
 */
#ifndef KOPILKA_LOGIN_LIMIT_H
#define KOPILKA_LOGIN_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include <kopilka/kopilka.h>

enum {
    KP_LOGIN_WINDOW_S = 15 * 60,        /* the window of every login limit */
    KP_LOGIN_FAILURES_PER_ACCOUNT = 5,  /* failed staff logins per login */
    KP_LOGIN_FAILURES_PER_ADDRESS = 20, /* failed logins per client address */
    KP_ATTEMPTS_LIMIT_MAX = 64,         /* the largest `limit` a kp_attempts takes */
};

typedef struct kp_attempts kp_attempts;

/* limit 1..KP_ATTEMPTS_LIMIT_MAX, window_s > 0. NULL when out of memory. */
kp_attempts *kp_attempts_new(int limit, int64_t window_s);
void kp_attempts_free(kp_attempts *a);

/* Takes one attempt for `key` at `now`. True when fewer than `limit` were
 * counted for it within the window (this one is then counted too). False,
 * counting nothing, otherwise: *retry_after is how many seconds until one
 * of them leaves the window (at least 1), and *first_refusal whether this
 * is the first refusal since the key reached the limit (the caller audits
 * that one, not every one after). An empty key is never limited. */
bool kp_attempts_take(kp_attempts *a, const char *key, kp_time now, int64_t *retry_after,
                      bool *first_refusal);
/* Uncounts the attempt taken last for `key` (it was not a failure). */
void kp_attempts_give_back(kp_attempts *a, const char *key);
/* Forgets every attempt of `key` (its account logged in). */
void kp_attempts_clear(kp_attempts *a, const char *key);

/* The server's three limits: failed staff logins per login and per
 * address (POST /v1/admin/login), and the cabinet's attempts per address
 * (POST /v1/login, POST /v1/login/code). */
typedef struct kp_login_limits {
    kp_attempts *staff_login;
    kp_attempts *staff_address;
    kp_attempts *customer_address;
} kp_login_limits;

/* NULL when out of memory. */
kp_login_limits *kp_login_limits_new(void);
void kp_login_limits_free(kp_login_limits *l);

#endif
