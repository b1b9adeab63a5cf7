/*
 * report.h: the back office's reports as the store computes them
 * (kp_store_ops.report, docs/analytics.md "Reports"): figures of the ledger
 * read in ONE read transaction (a consistent snapshot) on the caller's
 * connection, a reader for the server, never the writer. Each op states
 * what it sums; the ratios built on them are the service's (reports.c).
 *
 * Points are read from the postings of the program's side of the ledger
 * (ledger.h), as the dashboard does: program:issued is debited when points
 * are given, program:redeemed credited when they are spent,
 * program:expired when they expire, program:adjustment debited by a
 * manual credit.
 *
 * The general contract of store.h holds (errors, transactions). None of
 * these pointers is NULL; `store` in a query may be NULL or "".
 */
#ifndef KOPILKA_REPORT_H
#define KOPILKA_REPORT_H

#include "kopilka.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kp_store kp_store;

/* What a report is asked: the period from <= at < to (instants), months of
 * the program's clock (an instant t is in the UTC month of t +
 * utc_offset_minutes), the store whose operations count (NULL or "" =
 * every store; per partner later, when partners exist), and the currency. */
typedef struct kp_report_query {
    kp_time from, to;
    int32_t utc_offset_minutes;
    const char *store;
    /* The currency whose accounts count (docs/coalition.md "Currencies"):
     * NULL or "" = the program's own (the cards' own accounts), else a
     * code of the cards' currency accounts. The points report only. */
    const char *currency;
} kp_report_query;

/* Rows of the liability schedule one report holds: kinds x expiry months. */
enum { KP_REPORT_SCHEDULE_MAX = 256 };

/* The points still on customers' lots of one kind that expire in one
 * calendar month. */
typedef struct kp_report_schedule_row {
    char kind[KP_STR_MAX]; /* the lot's kind, as the program named it */
    char month[8];         /* "2027-03", the month of expires_at; "never" */
    int64_t points;        /* the lots' remaining points */
    int64_t lots;          /* how many lots */
} kp_report_schedule_row;

typedef struct kp_report_points {
    /* The period's points, of operations recorded under the store: issued
     * (net of returns' take-backs), burnt (net of returns' refunds),
     * expired (never filtered by store: expiry has none), adjusted (points
     * manual adjustments gave less those they took). */
    int64_t issued, burnt, expired, adjusted;
    /* Every posting to a customer's account before `to` (never filtered by
     * store). */
    int64_t outstanding;
    /* Members' revenue: the amounts of the ledger's purchases and returns
     * (a return's amount counts against it) in the period, at the store. */
    int64_t members_revenue_minor;
    /* Sales without a card in the period at the store (the sales history,
     * sales.h), returns subtracted: the rest of the revenue. */
    int64_t nonmembers_revenue_minor;
    /* Accounts with a purchase in the period at the store, and those of
     * them with a purchase (anywhere) before `from`: retained customers. */
    int64_t buyers, retained;
    /* The liability schedule at the time of the read (the lots as they
     * are, not at `to`; never filtered by store): open lots' remaining
     * points by kind and expiry month, ordered by kind then month ("never"
     * last). */
    size_t n_schedule;
    kp_report_schedule_row schedule[KP_REPORT_SCHEDULE_MAX];
} kp_report_points;

/* What the members report is asked (docs/analytics.md "The members
 * report"): the period and store of `period`, the tier whose members count
 * (NULL or "" = every member; non-members are never filtered by it), and
 * the first instant of "the last 12 months" before period.to (figure 4). */
typedef struct kp_report_members_query {
    kp_report_query period;
    const char *tier;
    kp_time recent_since;
} kp_report_members_query;

/* The sums behind the members report's four figures. A receipt is a sale
 * (returns are neither counted nor subtracted) at the store, in the period
 * unless said otherwise. A member's receipt: a purchase of the ledger (ops
 * type purchase, which always has a card) or an imported sale with a card.
 * One member: one account, the card's account when the cards table knows
 * the card, else the card's number alone. A non-member's receipt: a sale
 * without a card; such a customer is followed only by the sale's customer
 * key (sales.customer), receipts without one are counted, never guessed. */
typedef struct kp_report_members {
    /* Members (of the tier) with a receipt in the period, their receipts
     * and the receipts' sum. */
    int64_t members, member_receipts, member_revenue_minor;
    /* Sales without a card in the period, and of them those with a
     * customer key (followed), and how many keys. */
    int64_t nonmember_receipts, nonmember_revenue_minor;
    int64_t followed_receipts, followed_revenue_minor, followed_customers;
    /* The first top_customers of the followed customers by their spend in
     * the period (top_customers = round(followed_customers / 10), half up),
     * their spend, and the least of them (ties at the cut do not change
     * the sum: they spent the same). */
    int64_t top_customers, top_revenue_minor, top_threshold_minor;
    /* Members with exactly one receipt in the period, of at most the
     * members' average receipt (member_revenue_minor / member_receipts),
     * and the sum of those receipts. */
    int64_t idle_members, idle_revenue_minor;
    /* Members (of the tier) with a receipt before period.to (any time),
     * and of them those with one on or after recent_since. */
    int64_t members_before, members_recent;
} kp_report_members;

/* ---- the customers report (kp_report_ops.customers) */

/* Tiers and moves one report holds at most, and the months of cohorts (a
 * period of at most 36 months spans at most 37). */
enum { KP_REPORT_TIERS_MAX = 32, KP_REPORT_MOVES_MAX = 256, KP_REPORT_COHORT_MONTHS = 37 };

/* What the customers report is asked: the period, months and store of
 * `period`; `tier` ("" or NULL = every member) keeps the members whose
 * account holds that tier at the read; `window` (seconds, > 0) is the
 * length of each side of "before and after joining". */
typedef struct kp_customers_query {
    kp_report_query period;
    const char *tier;
    int64_t window;
} kp_customers_query;

/* One member who bought in the period (a receipt with a card: a purchase
 * at a till, from ops, or an imported sale with a card): the account when
 * the card is known (card ""), else the card (account 0). */
typedef struct kp_report_member {
    int64_t account_id;
    char card[KP_STR_MAX];
    kp_time last_at;     /* the last receipt before `to` */
    int64_t receipts;    /* receipts in the period */
    int64_t spend_minor; /* their amounts */
} kp_report_member;

/* Called once a member, in no particular order; a failure stops the read
 * and is returned. */
typedef kp_err (*kp_report_member_fn)(void *ctx, const kp_report_member *m);

typedef struct kp_report_tier_count {
    char tier[KP_STR_MAX]; /* "" = none */
    int64_t accounts;
} kp_report_tier_count;

typedef struct kp_report_tier_move {
    char from[KP_STR_MAX], to[KP_STR_MAX]; /* "" = none */
    int64_t moves;
} kp_report_tier_move;

typedef struct kp_report_customers {
    /* Every account by its tier at the read (never by store), by tier name. */
    size_t n_tiers;
    kp_report_tier_count tiers[KP_REPORT_TIERS_MAX];
    /* The tier changes in the period (never by store), by (from, to). */
    size_t n_moves;
    kp_report_tier_move moves[KP_REPORT_MOVES_MAX];
    /* Cohorts by month of joining, month 0 = the month of `from` on the
     * program's clock: cohort[j] members joined in month j of the period;
     * active[j][k] of them had a receipt (at the store) at or after joining
     * in month j + k. */
    size_t n_months;
    int64_t cohort[KP_REPORT_COHORT_MONTHS];
    int64_t active[KP_REPORT_COHORT_MONTHS][KP_REPORT_COHORT_MONTHS];
    /* Before and after joining: members who joined in the period early
     * enough for the window after to end by `to`; of them those followed
     * (a customer key on a sale with their card); the followed members'
     * receipts (at the store) and their amounts in the window before
     * joining and in the window after. */
    int64_t ba_members, ba_followed;
    int64_t before_receipts, before_minor, after_receipts, after_minor;
} kp_report_customers;

typedef struct kp_report_ops {
    /* (read) The points report of q into *out (zeroed first, and again on
     * failure), in one snapshot: inside the caller's transaction when one
     * is open, else one read transaction of its own. KP_ERR_LIMIT when the
     * schedule has more than KP_REPORT_SCHEDULE_MAX rows, KP_ERR_OVERFLOW
     * when a sum does not fit in 64 bits (last_error says which). */
    kp_err (*points)(kp_store *s, const kp_report_query *q, kp_report_points *out);

    /* (read) The members report's sums of q into *out (zeroed first, and
     * again on failure), in one snapshot as `points`. The database groups
     * the receipts (one row a member, one a customer key) and ranks the
     * followed customers; this side holds O(1) memory whatever the
     * history's size. A sum past 64 bits is the database's error. */
    kp_err (*members)(kp_store *s, const kp_report_members_query *q, kp_report_members *out);

    /* (read) The customers report of q in one snapshot as `points` reads:
     * *out (zeroed first, and again on failure) gets the tiers, moves,
     * cohorts and before/after; fn gets each member who bought in the
     * period (at q's store, of q's tier), streamed, never held: the store
     * keeps no member in memory. Joining: the customer's registration
     * (customers.created_at) for an account that has a customer, else the
     * member's first receipt (anywhere). A person's receipts before joining
     * are the sales without a card whose customer key is on a sale with
     * the member's card (docs/analytics.md "Before and after joining").
     * KP_ERR_LIMIT past KP_REPORT_TIERS_MAX tiers or KP_REPORT_MOVES_MAX
     * moves, KP_ERR_OVERFLOW when a sum does not fit (last_error says
     * which); fn's error as it returned it. */
    kp_err (*customers)(kp_store *s, const kp_customers_query *q, kp_report_customers *out,
                        kp_report_member_fn fn, void *ctx);
} kp_report_ops;

#endif
