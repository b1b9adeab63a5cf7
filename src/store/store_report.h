/*
 * store_report.h: the dashboard (kp_people_ops.dashboard, people.h) and the
 * reports (kp_store_ops.report, report.h), stated
 * once for every backend, as store_invariants.h states the ledger's
 * invariants: four queries in portable SQL that each backend runs unchanged
 * in one read-only snapshot, and the folding of their rows into a
 * kp_dashboard. So SQLite and PostgreSQL give the same figures by
 * construction.
 *
 * The queries group by day of the program's clock, (at + offset) / 86400,
 * which both backends compute alike with integer arithmetic; the days are
 * folded into calendar months here (kp_time_to_civil), not with either
 * backend's date functions. Parameters are $1, $2, ... (SQLite binds them
 * by name, PostgreSQL by number); a store of '' means every store.
 */
#ifndef KOPILKA_STORE_REPORT_H
#define KOPILKA_STORE_REPORT_H

#include <kopilka/people.h>
#include <kopilka/report.h>

/* The four queries. Each backend runs them in order, in one snapshot,
 * with the parameters store_dashboard_params() gives, and hands every row's
 * three columns (a missing one read as 0) to store_dashboard_fold(). */
typedef enum store_dashboard_part {
    /* (day, system account, sum of its postings) of the operations in the
     * period: $1 from, $2 to, $3 offset in seconds, $4 store. */
    STORE_DASHBOARD_POINTS,
    /* (day, purchases, receipts' amounts) of the purchases and returns in
     * the period; the same parameters. */
    STORE_DASHBOARD_OPS,
    /* (day, customers registered): $1 from, $2 to, $3 offset in seconds. */
    STORE_DASHBOARD_MEMBERS,
    /* One row (outstanding, members, members_active): $1 to,
     * $2 active_since, $3 store. */
    STORE_DASHBOARD_TOTALS,
    STORE_DASHBOARD_PARTS
} store_dashboard_part;

typedef struct store_dashboard_sql {
    const char *sql;
    int n_ints;     /* integer parameters $1..$n_ints */
    bool has_store; /* then $(n_ints + 1), the store ('' = every store) */
} store_dashboard_sql;

extern const store_dashboard_sql store_dashboard_queries[STORE_DASHBOARD_PARTS];

/* The integer parameters of `part` for q (at most 3), and its store. */
void store_dashboard_params(const kp_dashboard_query *q, store_dashboard_part part,
                            int64_t ints[3]);
const char *store_dashboard_store(const kp_dashboard_query *q);

/* Folds one row of `part` into d (zeroed by the caller first). KP_ERR_LIMIT
 * when the row's month would be past KP_DASHBOARD_MONTHS_MAX,
 * KP_ERR_OVERFLOW when a sum does not fit; `why` (may be NULL) then gets
 * the sentence. */
kp_err store_dashboard_fold(kp_dashboard *d, store_dashboard_part part, int64_t a, int64_t b,
                            int64_t c, char *why, size_t why_size);

/* ---- the points report (kp_report_ops.points) */

/* Its six queries, run in order in one snapshot like the dashboard's;
 * every row's four columns (text, a, b, c; a missing one read as "" or 0)
 * go to store_points_fold(). */
typedef enum store_points_part {
    /* ('', system account, sum of its postings) of the period's ops at the
     * store (expiries at every store). */
    STORE_POINTS_POSTINGS,
    /* One row ('', amounts of purchases and returns in the period). */
    STORE_POINTS_REVENUE,
    /* One row ('', customers' postings before `to`). */
    STORE_POINTS_OUTSTANDING,
    /* One row ('', buyers in the period, of them those who bought before). */
    STORE_POINTS_RETAINED,
    /* (kind, day of expiry, remaining points, lots) of the open lots. */
    STORE_POINTS_SCHEDULE,
    /* One row ('', sales without a card less their returns, in the period
     * at the store). */
    STORE_POINTS_SALES,
    STORE_POINTS_PARTS
} store_points_part;

typedef struct store_points_sql {
    const char *sql;
    /* Its parameters $1, $2, ... in order, one letter each: f from, t to,
     * o the offset in seconds (integers), s the store (text, '' = all). */
    const char *params;
} store_points_sql;

extern const store_points_sql store_points_queries[STORE_POINTS_PARTS];

/* The value of parameter letter `p` for q: integers in *v, the store's
 * text returned (NULL for an integer). */
const char *store_points_param(const kp_report_query *q, char p, int64_t *v);

/* ---- the members report (kp_report_ops.members) */

/* Its two queries, run one after the other in one snapshot; each gives ONE
 * row of up to STORE_MEMBERS_COLS integers (a missing one read as 0),
 * handed to store_members_fold(). Each reads its receipts once: the
 * database groups them (one row a member, one a customer key) and ranks
 * the followed customers; nothing of it comes to C. */
typedef enum store_members_part {
    /* (members' receipts, their sum, in the period; members before `to`,
     * of them recent; members in the period, idle members, their sum), of
     * the tier. */
    STORE_MEMBERS_MEMBERS,
    /* (receipts, sum, followed receipts, their sum, followed customers,
     * top customers, their spend, the least of it) of the sales without a
     * card in the period. */
    STORE_MEMBERS_SALES,
    STORE_MEMBERS_PARTS
} store_members_part;

enum { STORE_MEMBERS_COLS = 8 };

/* The queries; params letters: f from, t to, r recent_since (integers),
 * s store, g tier (texts, '' = all). */
extern const store_points_sql store_members_queries[STORE_MEMBERS_PARTS];

/* The value of letter `p` for q: integers in *v, a text returned (NULL for
 * an integer). */
const char *store_members_param(const kp_report_members_query *q, char p, int64_t *v);

/* Folds the row of `part` into r (zeroed by the caller first). */
void store_members_fold(kp_report_members *r, store_members_part part,
                        const int64_t v[STORE_MEMBERS_COLS]);

/* Folds one row of `part` into r (zeroed by the caller first). KP_ERR_LIMIT
 * past KP_REPORT_SCHEDULE_MAX rows of the schedule, KP_ERR_OVERFLOW when a
 * sum does not fit; `why` (may be NULL) then gets the sentence. */
kp_err store_points_fold(kp_report_points *r, store_points_part part, const char *text, int64_t a,
                         int64_t b, int64_t c, char *why, size_t why_size);

/* ---- the customers report (kp_report_ops.customers) */

/* Its queries, run in order in one snapshot like the points report's; each
 * row has eight columns (text, text, six integers; a missing one read as
 * "" or 0). The rows of STORE_CUSTOMERS_MEMBERS go one by one to
 * store_customers_member(), never held; the others to
 * store_customers_fold(). */
typedef enum store_customers_part {
    /* (tier, '', accounts) of every account by its tier. */
    STORE_CUSTOMERS_TIERS,
    /* (from tier, to tier, changes) in the period. */
    STORE_CUSTOMERS_MOVES,
    /* ('', '', month number of joining, members) of those who joined in
     * the period. */
    STORE_CUSTOMERS_COHORTS,
    /* ('', '', month of joining, month of a receipt, members). */
    STORE_CUSTOMERS_ACTIVE,
    /* One row ('', '', members with a whole window after, followed,
     * receipts and amounts before, receipts and amounts after). */
    STORE_CUSTOMERS_BEFORE_AFTER,
    /* (card, '', account, last receipt, receipts, spend) of each member
     * who bought in the period. */
    STORE_CUSTOMERS_MEMBERS,
    STORE_CUSTOMERS_PARTS
} store_customers_part;

typedef struct store_customers_sql {
    const char *sql;
    /* Its parameters $1, $2, ... in order: f from, t to, o the offset and
     * w the window in seconds (integers), s the store, r the tier (text,
     * '' = all). */
    const char *params;
} store_customers_sql;

extern const store_customers_sql store_customers_queries[STORE_CUSTOMERS_PARTS];

/* The value of parameter letter `p` for q: integers in *v, text returned
 * (NULL for an integer). */
const char *store_customers_param(const kp_customers_query *q, char p, int64_t *v);

/* The month number the queries compute for an instant on the program's
 * clock (consecutive months differ by 1; see store_report.c). */
int64_t store_month_number(kp_time at, int64_t offset_seconds);

/* Folds one row of `part` (not MEMBERS) into r (zeroed by the caller
 * first). KP_ERR_LIMIT past the tiers' or moves' room, KP_ERR_OVERFLOW
 * when a sum does not fit; `why` (may be NULL) then gets the sentence. */
kp_err store_customers_fold(const kp_customers_query *q, kp_report_customers *r,
                            store_customers_part part, const char *t1, const char *t2,
                            const int64_t v[6], char *why, size_t why_size);

/* Hands one row of STORE_CUSTOMERS_MEMBERS to fn. */
kp_err store_customers_member(const char *card, const int64_t v[6], kp_report_member_fn fn,
                              void *ctx);

#endif
