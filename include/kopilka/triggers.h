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

/* The store's operations for rules and time. The general contract of
 * store.h holds (errors, transactions, lists, ownership); each says what
 * it adds. Writes (write) run inside the caller's transaction, or are one of
 * their own outside one. None of these pointers is NULL. */
typedef struct kp_triggers_ops {
    /* ---- account rule state */
    /* Zeroes *out, then fills it: an account no rule touched yet (or no
     * such account) is KP_OK with everything zero. */
    kp_err (*account_rules_get)(kp_store *s, int64_t account_id, kp_account_rules *out);
    /* (write) Sets the tier (tier_since = at) and logs the change from the
     * tier before with `spend_minor` and `reason`. */
    kp_err (*account_tier_set)(kp_store *s, int64_t account_id, const char *tier,
                               int64_t spend_minor, kp_time at, const char *reason);
    /* (write) Sets the individual discount rate (bp: basis points); has =
     * false removes it. */
    kp_err (*account_discount_set)(kp_store *s, int64_t account_id, bool has, int32_t bp);
    /* Receipt amounts of an account's purchases less its returns with `at`
     * in [from, to), in *sum (0 when none). */
    kp_err (*account_spend_between)(kp_store *s, int64_t account_id, kp_time from, kp_time to,
                                    int64_t *sum);
    /* Accounts after id `after`, in id order, with their spend in [from, to)
     * and their tier ("" for none): a page of a tier review. */
    kp_err (*review_page)(kp_store *s, int64_t after, kp_time from, kp_time to, kp_review_row *out,
                          size_t limit, size_t *n);
    /* Accounts holding a lot with points left that expires at or before
     * `now`, in id order, each once. */
    kp_err (*accounts_expiring)(kp_store *s, kp_time now, int64_t *ids, size_t limit, size_t *n);
    /* Accounts after id `after` created before `before` on month-day
     * (month, day) of the calendar `offset_minutes` from UTC, in id order,
     * with created_at (both arrays hold `limit`). The tenure job's
     * anniversaries. */
    kp_err (*accounts_created_on)(kp_store *s, int month, int day, int32_t offset_minutes,
                                  kp_time before, int64_t after, int64_t *ids, kp_time *created_at,
                                  size_t limit, size_t *n);

    /* ---- events: idempotent by (store, id) */
    /* The event stored under (store, id); out->response is malloc'd
     * (kp_event_row_release() frees it). KP_ERR_NOT_FOUND. */
    kp_err (*event_find)(kp_store *s, const char *store, const char *id, kp_event_row *out);
    /* (write) Stores the event (row->response is copied). KP_ERR_CONFLICT
     * when (store, id) is stored already; KP_ERR_BUSY when another writer
     * inserted it and has not committed yet (run again: event_find then
     * finds it). */
    kp_err (*event_insert)(kp_store *s, const kp_event_row *row);

    /* ---- grant keys: "<rule>/<account>/<year>", "<rule>/token/<token>", ...
     * A key makes a grant happen once. */
    /* The operation that used `key`, in *op_id. KP_ERR_NOT_FOUND. */
    kp_err (*grant_key_find)(kp_store *s, const char *key, int64_t *op_id);
    /* (write) KP_ERR_CONFLICT when the key is used already; KP_ERR_BUSY as
     * for event_insert. */
    kp_err (*grant_key_insert)(kp_store *s, const char *key, int64_t op_id, kp_time at);

    /* ---- scheduler: per job, due items up to done_until are done; a
     * job working through a long item keeps its place in cursor. */
    /* The job's state; KP_ERR_NOT_FOUND for a job that never ran (then
     * *done_until and *cursor are 0). Inside a transaction the job's state
     * stays locked against other servers until the transaction ends.
     * BUSY: another server holds this job until its transaction ends; skip the job, no failure. */
    kp_err (*job_state_get)(kp_store *s, const char *job, kp_time *done_until, int64_t *cursor);
    /* (write) Creates or replaces the job's state. */
    kp_err (*job_state_set)(kp_store *s, const char *job, kp_time done_until, int64_t cursor);
    /* Holds `job` for this connection across transactions, against other
     * servers (several servers on one PostgreSQL database: a session-level
     * advisory lock, apart from job_state_get's), until job_release or the
     * connection's end (a crash releases it). *held false: another server
     * holds it. Outside a transaction. SQLite (one server a database):
     * always held, nothing taken. */
    kp_err (*job_hold)(kp_store *s, const char *job, bool *held);
    void (*job_release)(kp_store *s, const char *job);
    /* (write) Records a run (run->id is not read: the store numbers runs). */
    kp_err (*job_run_insert)(kp_store *s, const kp_job_run *run);
    /* The latest runs, newest first. */
    kp_err (*job_runs)(kp_store *s, kp_job_run *out, size_t limit, size_t *n);

    /* ---- birthdays: only a keyed hash of "MM-DD" (kp_pii_birthday_index),
     * never the date, so the scheduler can find whose birthday it is. */
    /* (write) Creates or replaces the account's index. */
    kp_err (*birthday_set)(kp_store *s, int64_t account_id, const uint8_t month_day_index[32]);
    /* Accounts after id `after`, in id order, with this month-day index. */
    kp_err (*birthday_accounts)(kp_store *s, const uint8_t month_day_index[32], int64_t after,
                                int64_t *ids, size_t limit, size_t *n);
} kp_triggers_ops;

#endif
