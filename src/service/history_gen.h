/*
 * history_gen.h: `kopilka history generate`, a synthetic sales history of
 * an auto service (labor, parts, oil, tires, wash) in the sales CSV of
 * docs/import.md / docs/analytics.md, deterministic for a seed (its own
 * xoshiro256** generator seeded by splitmix64, no libc random, no libm), and
 * built so that the four figures of seeds 000 and 001 hold by construction
 * (docs/analytics.md "## Synthetic history" defines each):
 *   1. members' average receipt = 2.6 x non-members';
 *   2. the top 10 % of non-members by spend give 25 % of non-members' revenue;
 *   3. 37 % of members bought almost nothing (exactly one receipt, at most
 *      the members' average receipt) and give 6 % of members' revenue;
 *   4. 70 % of members bought within the last 12 months of the history.
 */
#ifndef KOPILKA_HISTORY_GEN_H
#define KOPILKA_HISTORY_GEN_H

#include <kopilka/kopilka.h>

#include <stdint.h>
#include <stdio.h>

/* The targets, as the seeds give them. */
#define KP_HISTORY_MEMBER_RATIO 2.6  /* members' average receipt / non-members' */
#define KP_HISTORY_TOP_SHARE 0.10    /* the top share of non-members by spend ... */
#define KP_HISTORY_TOP_REVENUE 0.25  /* ... gives this share of their revenue */
#define KP_HISTORY_IDLE_SHARE 0.37   /* members who bought almost nothing ... */
#define KP_HISTORY_IDLE_REVENUE 0.06 /* ... give this share of members' revenue */
#define KP_HISTORY_RECENT_SHARE 0.70 /* members who bought in the last 12 months */

enum {
    KP_HISTORY_MEMBERS_MAX = 10000000,
    KP_HISTORY_NON_MEMBERS_MAX = 50000000,
    KP_HISTORY_MONTHS_MAX = 240,
    KP_HISTORY_STORES_MAX = 999,
};

typedef struct kp_history_params {
    uint64_t seed;
    int64_t members;     /* card holders, >= 10 (default 2000) */
    int64_t non_members; /* customers without a card, >= 10 (default 8000) */
    int months;          /* 13..240 (default 24): figure 4 needs more than 12 */
    int start_year, start_month, start_day; /* first day (default 2024-01-01) */
    int stores;          /* 1..999 (default 3) */
    double returns;      /* share of receipts returned later, 0..0.5 (default 0.02) */
} kp_history_params;

/* What was written, and the four figures measured on it (gross sales: the
 * rows of kind "sale"; returns are not subtracted). */
typedef struct kp_history_stats {
    int64_t rows;         /* CSV lines without the header, returns included */
    int64_t receipts;     /* sales (receipts of kind "sale") */
    int64_t returns;      /* receipts of kind "return" */
    int64_t cards;        /* member cards (rows of the cards file) */
    double member_ratio;  /* figure 1 */
    double top_revenue;   /* figure 2 */
    double idle_share;    /* figure 3, share of members */
    double idle_revenue;  /* figure 3, share of members' revenue */
    double recent_share;  /* figure 4 */
} kp_history_stats;

/* Called now and then with the receipts written so far (of *total). */
typedef void (*kp_history_progress_fn)(void *ctx, int64_t done, int64_t total);

/* The defaults above. */
void kp_history_defaults(kp_history_params *p);

/* Checks p; KP_ERR_INVALID naming the option, what is wrong and what is
 * allowed. */
kp_err kp_history_check(const kp_history_params *p, kp_error *e);

/* Writes the sales CSV (header first, rows in time order, a receipt's rows
 * consecutive) to sales and, when cards is not NULL, the members' cards
 * (cards.csv of docs/import.md: number,state with state "active") to cards.
 * The same params give the same bytes. KP_ERR_NOMEM, KP_ERR_IO (a write
 * failed) or KP_ERR_INVALID (kp_history_check). progress may be NULL. */
kp_err kp_history_generate(const kp_history_params *p, FILE *sales, FILE *cards,
                           kp_history_progress_fn progress, void *progress_ctx,
                           kp_history_stats *stats, kp_error *e);

#endif
