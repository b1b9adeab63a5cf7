/*
 * triggers.h: what the rules keep beyond the ledger, and the store's
 * operations for it (kp_store_ops.triggers): an account's rule state (tier,
 * individual discount), external events (idempotent by store and event id),
 * the keys that make a grant happen once (per customer, per year, per
 * partner card), and the scheduler's state and its record of runs.
 *
 * Ownership: plain structs with fixed arrays, owned by the caller, except
 * kp_event_row.response, which the store mallocs and the caller frees with
 * kp_event_row_release().
 */
#ifndef KOPILKA_TRIGGERS_H
#define KOPILKA_TRIGGERS_H

#include "ledger.h"

typedef struct kp_store kp_store;

/* An account's rule state; all zero for an account no rule touched yet. */
typedef struct kp_account_rules {
    char tier[KP_TIER_NAME_MAX]; /* "" = none */
    kp_time tier_since;
    bool has_personal_discount;
    int32_t personal_discount_bp;
} kp_account_rules;

/* One account of a tier review page: its spend over the window and tier. */
typedef struct kp_review_row {
    int64_t account_id;
    int64_t spend_minor;
    char tier[KP_TIER_NAME_MAX];
} kp_review_row;

/* One external event as stored: replayed on a retry with the same id. */
typedef struct kp_event_row {
    char store[KP_STR_MAX];
    char id[KP_STR_MAX];
    char type[KP_EVENT_TYPE_MAX];
    int64_t account_id;
    uint8_t request_hash[16];
    kp_time at;
    char *response; /* the answer given; malloc'd by event_find */
} kp_event_row;
void kp_event_row_release(kp_event_row *row);

/* One run of a scheduled job. */
typedef struct kp_job_run {
    int64_t id;
    char job[32];
    kp_time due_at; /* the due item: a day, a review instant, a tick */
    kp_time ran_at;
    int64_t items; /* accounts touched */
    char detail[256];
} kp_job_run;

/* The store's operations for rules and time. Writes run inside the caller's
 * transaction. Lists return at most `limit` items and their count in *n. */
typedef struct kp_triggers_ops {
    /* ---- account rule state */
    kp_err (*account_rules_get)(kp_store *s, int64_t account_id, kp_account_rules *out);
    /* Sets the tier and logs the change with its reason. */
    kp_err (*account_tier_set)(kp_store *s, int64_t account_id, const char *tier,
                               int64_t spend_minor, kp_time at, const char *reason);
    /* has = false removes the individual rate. */
    kp_err (*account_discount_set)(kp_store *s, int64_t account_id, bool has, int32_t bp);
    /* Receipt amounts of an account's purchases less its returns in [from, to). */
    kp_err (*account_spend_between)(kp_store *s, int64_t account_id, kp_time from, kp_time to,
                                    int64_t *sum);
    /* Accounts after id `after`, in id order, with their spend in [from, to)
     * and their tier: a page of a tier review. */
    kp_err (*review_page)(kp_store *s, int64_t after, kp_time from, kp_time to, kp_review_row *out,
                          size_t limit, size_t *n);
    /* Accounts holding a lot with points left that expires at or before `now`. */
    kp_err (*accounts_expiring)(kp_store *s, kp_time now, int64_t *ids, size_t limit, size_t *n);
    /* Accounts after id `after` created before `before` on month-day
     * (month, day) of the calendar `offset_minutes` from UTC; with
     * created_at. The tenure job's anniversaries. */
    kp_err (*accounts_created_on)(kp_store *s, int month, int day, int32_t offset_minutes,
                                  kp_time before, int64_t after, int64_t *ids, kp_time *created_at,
                                  size_t limit, size_t *n);

    /* ---- events: idempotent by (store, id) */
    kp_err (*event_find)(kp_store *s, const char *store, const char *id, kp_event_row *out);
    kp_err (*event_insert)(kp_store *s, const kp_event_row *row);

    /* ---- grant keys: "<rule>/<account>/<year>", "<rule>/token/<token>", ... */
    kp_err (*grant_key_find)(kp_store *s, const char *key, int64_t *op_id); /* NOT_FOUND */
    kp_err (*grant_key_insert)(kp_store *s, const char *key, int64_t op_id, kp_time at);

    /* ---- scheduler: per job, due items up to done_until are done; a
     * job working through a long item keeps its place in cursor. */
    /* BUSY: another server holds this job until its transaction ends; skip the job, no failure. */
    kp_err (*job_state_get)(kp_store *s, const char *job, kp_time *done_until, int64_t *cursor);
    kp_err (*job_state_set)(kp_store *s, const char *job, kp_time done_until, int64_t cursor);
    kp_err (*job_run_insert)(kp_store *s, const kp_job_run *run);
    /* Newest first. */
    kp_err (*job_runs)(kp_store *s, kp_job_run *out, size_t limit, size_t *n);

    /* ---- birthdays: only a keyed hash of "MM-DD" (kp_pii_birthday_index),
     * never the date, so the scheduler can find whose birthday it is. */
    kp_err (*birthday_set)(kp_store *s, int64_t account_id, const uint8_t month_day_index[32]);
    /* Accounts after id `after`, in id order, with this month-day index. */
    kp_err (*birthday_accounts)(kp_store *s, const uint8_t month_day_index[32], int64_t after,
                                int64_t *ids, size_t limit, size_t *n);
} kp_triggers_ops;

#endif
