/*
 * bench_rng.h: the benchmarks' random numbers: xorshift64*, small and fast,
 * good enough to pick cards and amounts. bench/loadgen.c and
 * bench/bench_fill.c draw the same purchases from the same seed with it.
 * Header-only.
 */
#ifndef KOPILKA_BENCH_RNG_H
#define KOPILKA_BENCH_RNG_H

#include <stdint.h>

static inline uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A uniform integer in [lo, hi] (bias is negligible for these ranges). */
static inline uint64_t rng_range(uint64_t *state, uint64_t lo, uint64_t hi)
{
    return lo + rng_next(state) % (hi - lo + 1);
}

#endif
