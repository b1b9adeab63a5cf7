/*
 * rfm.h: RFM scoring of customers (docs/analytics.md "The customers
 * report"), pure: no storage, no SQL, no JSON. Each member's recency (days
 * from the last receipt to the end of the period), frequency (receipts)
 * and monetary value (spend in minor units) are scored 1 to 5 by quintiles
 * of the members scored together, and the (R, F) pair names a segment by
 * the usual map (kp_rfm_segment_of). The customers report uses it, and so
 * can anything else that needs a member's RFM class (segments, campaigns)
 * with the same cut-offs and names.
 *
 * Quintiles: the values of the n members sorted ascending, s[0..n-1], with
 * "better" last (recency is scored on -days: fewer days is better), the
 * k-th boundary (k = 1..4) is the largest value of the first k fifths,
 * s[ceil(k n / 5) - 1]; a value scores 1 + the number of boundaries it is
 * above. Equal values score alike, and ties go to the lower score (a
 * thousand members with one receipt each all score F 1).
 *
 * Memory: a kp_rfm_set holds 16 bytes a member (kp_rfm_member) and grows
 * by half again when full, so 10 000 000 members need 160 MB (up to
 * 240 MB while it grows); scoring sorts the set in place and needs
 * nothing more. A set refuses a member past its limit (KP_ERR_LIMIT).
 */
#ifndef KOPILKA_RFM_H
#define KOPILKA_RFM_H

#include "kopilka.h"

#include <stddef.h>
#include <stdint.h>

/* The segments of the R x F map, in the order reports list them. */
typedef enum kp_rfm_segment {
    KP_RFM_CHAMPIONS,
    KP_RFM_LOYAL,
    KP_RFM_POTENTIAL_LOYALISTS,
    KP_RFM_NEW,
    KP_RFM_PROMISING,
    KP_RFM_NEED_ATTENTION,
    KP_RFM_ABOUT_TO_SLEEP,
    KP_RFM_AT_RISK,
    KP_RFM_CANT_LOSE,
    KP_RFM_HIBERNATING,
    KP_RFM_LOST,
    KP_RFM_SEGMENTS
} kp_rfm_segment;

/* The members a set holds at most unless told otherwise (400 MB while it
 * grows). */
enum { KP_RFM_MEMBERS_DEFAULT_LIMIT = 16000000 };

/* One member's figures (16 bytes). */
typedef struct kp_rfm_member {
    int64_t monetary;     /* spend, minor units */
    int32_t frequency;    /* receipts, >= 1 */
    int32_t recency_days; /* whole days from the last receipt to the period's end, >= 0 */
} kp_rfm_member;

/* The four boundaries of each score in the members' own units: a member
 * scores 1 + the number of boundaries it beats (fewer days than recency[k],
 * more receipts than frequency[k], more spend than monetary[k]). n: the
 * members they were cut from (0: nothing scored, every score 1). */
typedef struct kp_rfm_cutoffs {
    size_t n;
    int64_t recency[4];   /* days, not increasing */
    int64_t frequency[4]; /* receipts, not decreasing */
    int64_t monetary[4];  /* minor units, not decreasing */
} kp_rfm_cutoffs;

/* A member's scores, each 1..5. */
typedef struct kp_rfm_score {
    int r, f, m;
} kp_rfm_score;

/* A growing array of members to score. Zero it, add, score, release. */
typedef struct kp_rfm_set {
    kp_rfm_member *members;
    size_t n, cap;
    size_t limit; /* 0: KP_RFM_MEMBERS_DEFAULT_LIMIT */
} kp_rfm_set;

/* Adds a member. KP_ERR_LIMIT past the set's limit, KP_ERR_NOMEM. */
kp_err kp_rfm_set_add(kp_rfm_set *set, kp_rfm_member m);
void kp_rfm_set_release(kp_rfm_set *set);

/* The quintile boundaries of the set's members (the set is reordered). */
void kp_rfm_cut(kp_rfm_set *set, kp_rfm_cutoffs *out);

/* A member's three scores under c (1..5 each; all 1 when c->n is 0). */
kp_rfm_score kp_rfm_score_of(const kp_rfm_cutoffs *c, const kp_rfm_member *m);

/* The segment of an (R, F) pair, 1..5 each (out of range: clamped). */
kp_rfm_segment kp_rfm_segment_of(int r, int f);

/* A segment's machine name ("champions", "cant_lose", ...), "" past the
 * last; and back: KP_RFM_SEGMENTS for an unknown name. */
const char *kp_rfm_segment_name(kp_rfm_segment s);
kp_rfm_segment kp_rfm_segment_parse(const char *name);

#endif
