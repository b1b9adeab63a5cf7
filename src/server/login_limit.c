/*
 * login_limit.c: attempts per key over a sliding window (login_limit.h).
 * An open-addressed table of SLOTS entries; a key's entry is looked for in
 * the PROBE slots from its home slot. Each entry keeps the times of its
 * last `limit` counted attempts; the oldest leaves when a newer is counted,
 * or when the window has passed it.
 */
#include "login_limit.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

enum { SLOTS = 4096, PROBE = 8, KEY_BYTES = 16 };

typedef struct slot {
    uint8_t key[KEY_BYTES];
    bool used;
    bool refused; /* a refusal was reported since the key reached the limit */
    int n;        /* attempts in at[], the newest last */
    kp_time at[KP_ATTEMPTS_LIMIT_MAX];
} slot;

struct kp_attempts {
    pthread_mutex_t lock;
    int limit;
    int64_t window_s;
    uint8_t hash_key[crypto_generichash_KEYBYTES];
    slot slots[SLOTS];
};

kp_attempts *kp_attempts_new(int limit, int64_t window_s)
{
    if (limit < 1 || limit > KP_ATTEMPTS_LIMIT_MAX || window_s <= 0) return NULL;
    kp_attempts *a = calloc(1, sizeof *a);
    if (a == NULL) return NULL;
    pthread_mutex_init(&a->lock, NULL);
    a->limit = limit;
    a->window_s = window_s;
    randombytes_buf(a->hash_key, sizeof a->hash_key);
    return a;
}

void kp_attempts_free(kp_attempts *a)
{
    if (a == NULL) return;
    pthread_mutex_destroy(&a->lock);
    sodium_memzero(a, sizeof *a);
    free(a);
}

/* Drops the attempts of s that the window has passed at `now`. */
static void expire(const kp_attempts *a, slot *s, kp_time now)
{
    int keep = 0;
    while (keep < s->n && now - s->at[keep] >= a->window_s) keep++;
    if (keep == 0) return;
    memmove(s->at, s->at + keep, (size_t)(s->n - keep) * sizeof s->at[0]);
    s->n -= keep;
}

/* When a slot was last tried: never for a free one (or one whose attempts
 * all left the window), so free slots are taken first. */
static kp_time last_tried(const slot *s)
{
    return s->used && s->n > 0 ? s->at[s->n - 1] : INT64_MIN;
}

/* The slot of `key`; when it has none and `make`, a new one in the free,
 * stale or else the longest-untried slot of its neighbourhood. NULL when
 * not found (and not made). Under the lock. */
static slot *find(kp_attempts *a, const char *key, kp_time now, bool make)
{
    uint8_t h[KEY_BYTES];
    crypto_generichash(h, sizeof h, (const uint8_t *)key, strlen(key), a->hash_key,
                       sizeof a->hash_key);
    size_t home = ((size_t)h[0] << 8 | h[1]) % SLOTS;
    slot *spare = NULL;
    for (size_t k = 0; k < PROBE; k++) {
        slot *s = &a->slots[(home + k) % SLOTS];
        if (s->used && memcmp(s->key, h, KEY_BYTES) == 0) return s;
        if (!make) continue;
        if (s->used) expire(a, s, now);
        if (spare == NULL || last_tried(s) < last_tried(spare)) spare = s;
    }
    if (spare == NULL) return NULL;
    memset(spare, 0, sizeof *spare);
    spare->used = true;
    memcpy(spare->key, h, KEY_BYTES);
    return spare;
}

bool kp_attempts_take(kp_attempts *a, const char *key, kp_time now, int64_t *retry_after,
                      bool *first_refusal)
{
    *retry_after = 0;
    *first_refusal = false;
    if (key == NULL || key[0] == '\0') return true;
    pthread_mutex_lock(&a->lock);
    slot *s = find(a, key, now, true);
    bool ok = true;
    if (s) {
        expire(a, s, now);
        if (s->n >= a->limit) {
            ok = false;
            *retry_after = s->at[0] + a->window_s - now;
            *first_refusal = !s->refused;
            s->refused = true;
        } else {
            s->at[s->n++] = now;
            s->refused = false;
        }
    }
    pthread_mutex_unlock(&a->lock);
    if (!ok && *retry_after < 1) *retry_after = 1;
    return ok;
}

void kp_attempts_give_back(kp_attempts *a, const char *key)
{
    if (key == NULL || key[0] == '\0') return;
    pthread_mutex_lock(&a->lock);
    slot *s = find(a, key, 0, false);
    if (s && s->n > 0) s->n--;
    pthread_mutex_unlock(&a->lock);
}

void kp_attempts_clear(kp_attempts *a, const char *key)
{
    if (key == NULL || key[0] == '\0') return;
    pthread_mutex_lock(&a->lock);
    slot *s = find(a, key, 0, false);
    if (s) s->n = 0;
    pthread_mutex_unlock(&a->lock);
}

kp_login_limits *kp_login_limits_new(void)
{
    kp_login_limits *l = calloc(1, sizeof *l);
    if (l == NULL) return NULL;
    l->staff_login = kp_attempts_new(KP_LOGIN_FAILURES_PER_ACCOUNT, KP_LOGIN_WINDOW_S);
    l->staff_address = kp_attempts_new(KP_LOGIN_FAILURES_PER_ADDRESS, KP_LOGIN_WINDOW_S);
    l->customer_address = kp_attempts_new(KP_LOGIN_FAILURES_PER_ADDRESS, KP_LOGIN_WINDOW_S);
    if (l->staff_login == NULL || l->staff_address == NULL || l->customer_address == NULL) {
        kp_login_limits_free(l);
        return NULL;
    }
    return l;
}

void kp_login_limits_free(kp_login_limits *l)
{
    if (l == NULL) return;
    kp_attempts_free(l->staff_login);
    kp_attempts_free(l->staff_address);
    kp_attempts_free(l->customer_address);
    free(l);
}
